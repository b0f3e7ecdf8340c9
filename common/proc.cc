/*
 * Child start-up: the parent's first message carries the credentials to drop
 * to; config slices and listening sockets follow between CONF_START and
 * CONF_END, for the first generation and for every reload.
 */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "memfd.h"
#include "stats.h"

namespace posthorn {

namespace {
constexpr size_t MAX_CONFIG_JSON = 64u << 20;

const char *const PROC_NAMES[] = {"parent", "smtpd", "httpd", "relayer", "control"};

const char *const IMSG_NAMES[] = {
	"IMSG_NONE",
	"IMSG_PROC_SETUP",
	"IMSG_PROC_PEER",
	"IMSG_CONF_START",
	"IMSG_CONF_LISTENER",
	"IMSG_CONF_END",
	"IMSG_CONF_LOADED",
	"IMSG_LOG_VERBOSE",
	"IMSG_SUBMIT",
	"IMSG_SUBMIT_RESULT",
	"IMSG_STATS_REQUEST",
	"IMSG_STATS_REPLY",
	"IMSG_CTL_INFO",
	"IMSG_CTL_SHOW_STATUS",
	"IMSG_CTL_SHOW_STATS",
	"IMSG_CTL_SHOW_QUEUE",
	"IMSG_CTL_SHOW_MESSAGE",
	"IMSG_CTL_SHOW_TRANSPORTS",
	"IMSG_CTL_MONITOR",
	"IMSG_CTL_PAUSE",
	"IMSG_CTL_RESUME",
	"IMSG_CTL_SCHEDULE",
	"IMSG_CTL_REMOVE",
	"IMSG_CTL_RELOAD",
	"IMSG_CTL_LOG_VERBOSE",
	"IMSG_CTL_REPLY",
	"IMSG_CTL_EVENT",
};
static_assert(std::size(IMSG_NAMES) == IMSG_TYPE_MAX);
} // namespace

const char *proc_name(ProcId id)
{
	auto i = static_cast<size_t>(id);
	return i < std::size(PROC_NAMES) ? PROC_NAMES[i] : "unknown";
}

bool proc_from_name(std::string_view name, ProcId &out)
{
	for (size_t i = 0; i < std::size(PROC_NAMES); i++)
		if (name == PROC_NAMES[i]) {
			out = static_cast<ProcId>(i);
			return true;
		}
	return false;
}

const char *imsg_type_name(uint32_t type)
{
	return type < IMSG_TYPE_MAX ? IMSG_NAMES[type] : "IMSG_UNKNOWN";
}

std::vector<uint8_t> proc_setup_encode(const ProcSetup &s)
{
	ImsgWriter w;
	w.u32(s.uid).u32(s.gid).str(s.chroot).str(s.workdir).u8(s.dumpable);
	w.u8(static_cast<uint8_t>(s.log.dest)).u8(static_cast<uint8_t>(s.log.format));
	w.u8(static_cast<uint8_t>(s.log.level));
	return w.data();
}

ProcSetup proc_setup_decode(const Imsg &msg)
{
	ImsgReader r(msg);
	ProcSetup s;
	s.uid = r.u32();
	s.gid = r.u32();
	s.chroot = r.str(4096);
	s.workdir = r.str(4096);
	s.dumpable = r.u8() != 0;
	uint8_t dest = r.u8(), format = r.u8(), level = r.u8();
	r.end();
	if (dest > 1 || format > 1 || level > 3)
		fatalx("proc: bad log settings in setup");
	s.log.dest = static_cast<LogDest>(dest);
	s.log.format = static_cast<LogFormat>(format);
	s.log.level = static_cast<LogLevel>(level);
	return s;
}

void proc_drop_privileges(const ProcSetup &s)
{
	if (geteuid() == 0) {
		if (!s.chroot.empty()) {
			if (chroot(s.chroot.c_str()) == -1)
				fatal("chroot %s", s.chroot.c_str());
			if (chdir("/") == -1)
				fatal("chdir /");
		} else if (!s.workdir.empty() && chdir(s.workdir.c_str()) == -1)
			fatal("chdir %s", s.workdir.c_str());
		gid_t gid = s.gid;
		if (setgroups(1, &gid) == -1)
			fatal("setgroups");
		if (setresgid(s.gid, s.gid, s.gid) == -1)
			fatal("setresgid");
		if (setresuid(s.uid, s.uid, s.uid) == -1)
			fatal("setresuid");
	} else {
		/* Unprivileged mode: one uid for all, no chroot; the parent warned. */
		if (!s.workdir.empty() && chdir(s.workdir.c_str()) == -1)
			fatal("chdir %s", s.workdir.c_str());
	}
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	if (getresuid(&ru, &eu, &su) == -1 || getresgid(&rg, &eg, &sg) == -1)
		fatal("getresuid");
	if (ru != s.uid || eu != s.uid || su != s.uid || rg != s.gid || eg != s.gid || sg != s.gid)
		fatalx("privilege drop did not take: uid %u/%u/%u gid %u/%u/%u", ru, eu, su, rg, eg,
		    sg);
	if (!s.dumpable && prctl(PR_SET_DUMPABLE, 0) == -1)
		fatal("prctl PR_SET_DUMPABLE");
}

Child::Child(ProcId id, int verbose) : id_(id)
{
	log_set_proc(proc_name(id));
	log_set_verbose(verbose);
	signal(SIGPIPE, SIG_IGN);
	/* The parent decides when we stop: ^C on a terminal reaches the parent. */
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	base_ = event_base_new();
	if (!base_)
		fatalx("event_base_new");
	if (fcntl(3, F_GETFD) == -1)
		fatalx("no channel to the parent on fd 3");
	parent_ = std::make_unique<ImsgChannel>(
	    base_, Fd(3), [this](ImsgChannel &, Imsg &m) { dispatch_parent(m); },
	    [this](ImsgChannel &) {
		    log_debug("parent closed the channel, exiting");
		    finish(0);
	    });
	parent_->name = "parent";
	sigterm_ = evsignal_new(base_, SIGTERM, on_signal, this);
	evsignal_add(sigterm_, nullptr);
}

Child::~Child()
{
	peers_.clear();
	parent_.reset();
	if (sigterm_)
		event_free(sigterm_);
	event_base_free(base_);
}

int Child::run()
{
	event_base_dispatch(base_);
	return status_;
}

void Child::finish(int status)
{
	status_ = status;
	/* A short grace lets replies queued just now (a last 421, a final HTTP answer) reach the socket. */
	struct timeval grace = {0, 100 * 1000};
	event_base_loopexit(base_, &grace);
}

void Child::on_signal(int, short, void *arg) noexcept
{
	auto *self = static_cast<Child *>(arg);
	log_debug("received SIGTERM, shutting down");
	self->shutdown();
}

void Child::shutdown() { finish(0); }

void Child::peer(ProcId peer, Fd fd)
{
	auto chan = std::make_unique<ImsgChannel>(
	    base_, std::move(fd),
	    [peer](ImsgChannel &c, Imsg &m) {
		    /* Every process answers the control process's statistics requests. */
		    if (!stats_handle_request(c, m))
			    fatalx("unexpected %s from %s", imsg_type_name(m.type()), proc_name(peer));
	    },
	    [peer](ImsgChannel &) { log_debug("channel to %s closed", proc_name(peer)); });
	chan->name = proc_name(peer);
	peers_.push_back(std::move(chan));
}

bool Child::parent_imsg(Imsg &msg)
{
	if (msg.type() == IMSG_LOG_VERBOSE) {
		ImsgReader r(msg);
		log_set_verbose(static_cast<int>(r.u32()));
		r.end();
		return true;
	}
	return false;
}

void Child::dispatch_parent(Imsg &msg)
{
	if (!setup_done_) {
		if (msg.type() != IMSG_PROC_SETUP)
			fatalx("expected IMSG_PROC_SETUP, got %s", imsg_type_name(msg.type()));
		ProcSetup setup = proc_setup_decode(msg);
		log_apply(setup.log);
		proc_drop_privileges(setup);
		setup_done_ = true;
		log_debug("privileges dropped to uid %u gid %u%s%s", setup.uid, setup.gid,
		    setup.chroot.empty() ? "" : ", chroot ", setup.chroot.c_str());
		return;
	}
	switch (msg.type()) {
	case IMSG_PROC_PEER: {
		ImsgReader r(msg);
		uint32_t peer_id = r.u32();
		r.end();
		if (!msg.fd || peer_id > static_cast<uint32_t>(ProcId::control))
			fatalx("bad IMSG_PROC_PEER");
		peer(static_cast<ProcId>(peer_id), std::move(msg.fd));
		break;
	}
	case IMSG_CONF_START:
		conf_start(msg);
		break;
	case IMSG_CONF_LISTENER:
		conf_listener(msg);
		break;
	case IMSG_CONF_END:
		conf_end(msg);
		break;
	default:
		if (!parent_imsg(msg))
			fatalx("unexpected %s from parent", imsg_type_name(msg.type()));
	}
}

void Child::conf_start(Imsg &msg)
{
	ImsgReader r(msg);
	pending_gen_ = r.u64();
	r.end();
	if (!msg.fd)
		fatalx("IMSG_CONF_START without a config document");
	if (!memfd_is_sealed(msg.fd.get()))
		fatalx("IMSG_CONF_START: config document is not sealed");
	if (!memfd_read(msg.fd.get(), pending_json_, MAX_CONFIG_JSON))
		fatal("reading config document");
	pending_listeners_.clear();
}

void Child::conf_listener(Imsg &msg)
{
	ImsgReader r(msg);
	uint64_t gen = r.u64();
	Listener l;
	l.kind = r.str(64);
	l.name = r.str(1024);
	l.address = r.str(1024);
	r.end();
	if (gen != pending_gen_ || !msg.fd)
		fatalx("IMSG_CONF_LISTENER out of sequence");
	l.fd = std::move(msg.fd);
	pending_listeners_.push_back(std::move(l));
}

void Child::conf_end(Imsg &msg)
{
	ImsgReader r(msg);
	uint64_t gen = r.u64();
	r.end();
	if (gen != pending_gen_ || pending_json_.empty())
		fatalx("IMSG_CONF_END out of sequence");
	Config cfg = config_from_json(pending_json_);
	pending_json_.clear();
	pending_json_.shrink_to_fit();
	log_apply(cfg.global.log);
	generation_ = gen;
	configure(gen, std::move(cfg), std::move(pending_listeners_));
	pending_listeners_.clear();
	ImsgWriter w;
	w.u64(gen);
	parent_->compose(IMSG_CONF_LOADED, w);
}

} // namespace posthorn
