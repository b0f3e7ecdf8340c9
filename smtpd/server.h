/*
 * What the smtpd modules share: a listener's settings for one configuration
 * generation (immutable, shared by the sessions it accepted, so a reload
 * never changes a session in progress), the per-listener state that outlives
 * reloads (counters, per-address session counts, the AUTH throttle), and the
 * interface a session uses to reach its process.
 */
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "common/config.h"
#include "smtpd/auth.h"
#include "smtpd/tls.h"

namespace posthorn {

class Session;
class Submitter;

/* Exported later by the control/metrics issue as posthorn_* with endpoint="smtp:<name>". */
struct SmtpCounters {
	uint64_t sessions_active = 0;
	uint64_t sessions_total = 0;
	uint64_t sessions_refused = 0;       /* max_sessions / max_sessions_per_ip */
	uint64_t submissions_received = 0;   /* complete DATA */
	uint64_t submissions_sent = 0;       /* queued or sent */
	uint64_t submissions_failed = 0;     /* refused after DATA, or failed */
	uint64_t auth_failures = 0;
};

struct ListenerState {
	SmtpCounters counters;
	std::unordered_map<std::string, uint32_t> sessions_per_ip;
	AuthThrottle throttle;
};

struct ListenerCtx {
	SmtpListenerConfig cfg;
	std::string hostname;
	bool strip_client_ip = false;
	std::unique_ptr<TlsServer> tls; /* null with tls = none */
	ListenerState *state = nullptr; /* owned by the process, stable across reloads */
	std::string endpoint() const { return "smtp:" + cfg.name; }
};

/* 16 random lower-case hex characters: the session_id of every log line. */
std::string new_session_id();

class SessionHost {
public:
	virtual Submitter &submitter() = 0;
	/* The session's connection is closed: destroy it (later, not from inside its call). */
	virtual void session_done(uint64_t serial) = 0;
	virtual Session *find_session(uint64_t serial) = 0;

protected:
	~SessionHost() = default;
};

} // namespace posthorn
