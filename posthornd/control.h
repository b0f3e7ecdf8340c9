/*
 * The control process's pure parts: what the parent tells it, who may
 * connect, and the `show status` document. The process itself is control.cc.
 */
#pragma once

#include <sys/types.h>
#include <time.h>

#include <string>
#include <utility>
#include <vector>

#include "common/config.h"
#include "common/proc.h"

namespace posthorn {

/* Limits on posthornctl clients. */
inline constexpr size_t CONTROL_MAX_CLIENTS = 128;
inline constexpr size_t CONTROL_MAX_PER_UID = 16;
/* Bytes queued to one client (monitor events) before it is dropped as too slow. */
inline constexpr size_t CONTROL_CLIENT_QUEUE = 1u << 20;
/* A client must send a command this soon after connecting or after an answer. */
inline constexpr int CONTROL_IDLE_SECONDS = 30;
/* How long a forwarded command may take (a reload re-reads everything). */
inline constexpr int CONTROL_REQUEST_SECONDS = 60;
/* How long `show stats` waits for the processes' snapshots. */
inline constexpr int CONTROL_STATS_SECONDS = 5;

/* IMSG_CTL_INFO: what the chrooted control process cannot find out itself. */
struct ControlInfo {
	time_t started = 0;
	bool privileged = true;
	std::string version;
	gid_t gid = 0;                /* the control socket's group */
	std::vector<uid_t> members;   /* users in that group (primary or listed) */
	std::vector<std::pair<ProcId, pid_t>> pids;
};

/* The parent is trusted: a malformed message is fatal. */
ControlInfo control_info_decode(const Imsg &msg);

/* The peer's credentials, from SO_PEERCRED and SO_PEERGROUPS. */
struct PeerCred {
	pid_t pid = 0;
	uid_t uid = 0;
	gid_t gid = 0;
	std::vector<gid_t> groups;
};

/*
 * Root, a member of the control socket's group (by the group database, the
 * peer's group or its supplementary groups), or, when posthornd runs
 * unprivileged, the daemon's own uid.
 */
bool control_allowed(const ControlInfo &info, uid_t self, const PeerCred &peer);

/* `show status`: version, uptime, generation, listeners, processes. */
std::string control_status_json(const ControlInfo &info, const Config &cfg, uint64_t generation,
    time_t now);

} // namespace posthorn
