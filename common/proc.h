/*
 * The process vocabulary: who exists, the imsg types they exchange, and the
 * child side of start-up (privilege drop, receiving config and fds).
 */
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config.h"
#include "fd.h"
#include "imsg.h"

struct event_base;
struct event;

namespace posthorn {

enum class ProcId : uint32_t { parent = 0, smtpd, httpd, relayer, control };
inline constexpr ProcId CHILD_PROCS[] = {ProcId::smtpd, ProcId::httpd, ProcId::relayer,
    ProcId::control};

const char *proc_name(ProcId id);
bool proc_from_name(std::string_view name, ProcId &out);

/* Channels between children, created by the parent and handed over with IMSG_PROC_PEER. */
struct PeerLink {
	ProcId a, b;
};
inline constexpr PeerLink PEER_LINKS[] = {
	{ProcId::smtpd, ProcId::relayer},
	{ProcId::httpd, ProcId::relayer},
	{ProcId::control, ProcId::relayer},
	{ProcId::control, ProcId::smtpd},
	{ProcId::control, ProcId::httpd},
};

/*
 * Every imsg type, one enum (name table in proc.cc). Payloads use ImsgWriter.
 */
enum ImsgType : uint32_t {
	IMSG_NONE = 0,
	/* parent -> child, first message: u32 uid, u32 gid, str chroot, str workdir,
	 * u8 dumpable, u8 log dest, u8 log format, u8 log level */
	IMSG_PROC_SETUP,
	/* parent -> child: u32 peer ProcId; fd = socket to that peer */
	IMSG_PROC_PEER,
	/* parent -> child: u64 generation; fd = sealed memfd with the JSON config slice */
	IMSG_CONF_START,
	/* parent -> child: u64 generation, str kind (smtp|http|control), str name, str address;
	 * fd = listening socket */
	IMSG_CONF_LISTENER,
	/* parent -> child: u64 generation. The child swaps to the new config now. */
	IMSG_CONF_END,
	/* child -> parent: u64 generation */
	IMSG_CONF_LOADED,
	/* parent -> child: u32 verbosity (posthornctl log verbose|brief) */
	IMSG_LOG_VERBOSE,
	/* front -> relayer: u64 request id; fd = sealed memfd with the message JSON */
	IMSG_SUBMIT,
	/* relayer -> front: u64 request id, u8 SubmitStatus, str submission id,
	 * str detail (safe for clients), str provider message id */
	IMSG_SUBMIT_RESULT,
	/* control -> smtpd, httpd, relayer; httpd -> control (for /metrics): u64 request id */
	IMSG_STATS_REQUEST,
	/* the answer: u64 request id, str JSON snapshot (empty: in a sealed memfd); stats.h */
	IMSG_STATS_REPLY,
	/*
	 * The control protocol (ctl.h). parent -> control: u64 start time, u8 privileged,
	 * str version, u32 socket gid, u32 n + n u32 member uids, u32 n + n (u32 ProcId, u32 pid)
	 */
	IMSG_CTL_INFO,
	/*
	 * Commands: posthornctl -> control as str arg, u8 flag; control -> relayer or
	 * parent with a u64 request id first. Answered with IMSG_CTL_REPLY.
	 */
	IMSG_CTL_SHOW_STATUS,
	IMSG_CTL_SHOW_STATS,
	IMSG_CTL_SHOW_QUEUE,
	IMSG_CTL_SHOW_MESSAGE,     /* arg: id, flag: with body */
	IMSG_CTL_SHOW_TRANSPORTS,
	IMSG_CTL_MONITOR,          /* control -> relayer flag: on/off */
	IMSG_CTL_PAUSE,            /* arg: transport, "" = all */
	IMSG_CTL_RESUME,           /* arg: transport, "" = all */
	IMSG_CTL_SCHEDULE,         /* arg: id or "all" */
	IMSG_CTL_REMOVE,           /* arg: id or "all" */
	IMSG_CTL_RELOAD,
	IMSG_CTL_LOG_VERBOSE,      /* flag: 1 verbose, 0 brief */
	/* u64 request id, u8 ok, str error; fd: sealed memfd with the JSON result */
	IMSG_CTL_REPLY,
	/* relayer -> control -> monitoring clients: str JSON log line */
	IMSG_CTL_EVENT,
	IMSG_TYPE_MAX
};
const char *imsg_type_name(uint32_t type);

struct Listener {
	std::string kind;    /* smtp | http | control */
	std::string name;    /* listener name, "http", "control" */
	std::string address; /* as configured */
	Fd fd;
};

struct ProcSetup {
	uid_t uid = 0;
	gid_t gid = 0;
	std::string chroot;  /* empty: no chroot */
	std::string workdir; /* chdir target after the drop ("/" when chrooted) */
	bool dumpable = true;
	LogSettings log;
};

std::vector<uint8_t> proc_setup_encode(const ProcSetup &setup);
ProcSetup proc_setup_decode(const Imsg &msg);
/* chroot, setgroups, setresgid, setresuid, verify with getresuid/getresgid; fatal on failure. */
void proc_drop_privileges(const ProcSetup &setup);

/*
 * The child side: owns the event loop and the channel to the parent (fd 3),
 * runs the start-up protocol and hands each process its config at CONF_END.
 */
class Child {
public:
	Child(ProcId id, int verbose);
	virtual ~Child();
	Child(const Child &) = delete;
	Child &operator=(const Child &) = delete;

	/* Run the event loop until shutdown; returns the exit status. */
	int run();

	ProcId id() const { return id_; }
	event_base *base() const { return base_; }
	ImsgChannel &parent() { return *parent_; }
	uint64_t generation() const { return generation_; }

protected:
	/* The new configuration (every generation). Listeners are this generation's full set. */
	virtual void configure(uint64_t generation, Config &&cfg, std::vector<Listener> &&listeners) = 0;
	/* A channel to a sibling process; default: keep it and ignore what it sends. */
	virtual void peer(ProcId peer, Fd fd);
	/* Messages from the parent beyond the start-up protocol; false: unexpected (fatal). */
	virtual bool parent_imsg(Imsg &msg);
	/* SIGTERM: stop accepting; call finish() when done (default: at once). */
	virtual void shutdown();
	void finish(int status = 0);

	std::vector<std::unique_ptr<ImsgChannel>> peers_;

private:
	void dispatch_parent(Imsg &msg);
	void conf_start(Imsg &msg);
	void conf_listener(Imsg &msg);
	void conf_end(Imsg &msg);
	static void on_signal(int, short, void *) noexcept;

	ProcId id_;
	event_base *base_;
	std::unique_ptr<ImsgChannel> parent_;
	event *sigterm_ = nullptr;
	bool setup_done_ = false;
	uint64_t generation_ = 0;
	uint64_t pending_gen_ = 0;
	std::string pending_json_;
	std::vector<Listener> pending_listeners_;
	int status_ = 0;
};

/* Entry points of the children (one file each). */
int smtpd_main(int verbose);
int httpd_main(int verbose);
int relayer_main(int verbose);
int control_main(int verbose);

} // namespace posthorn
