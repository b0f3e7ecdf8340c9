/*
 * The submission protocol, front side: a front hands a canonical message to
 * the relayer (IMSG_SUBMIT, the JSON in a sealed memfd) and awaits one
 * IMSG_SUBMIT_RESULT. The relayer answers `queued` once the message is
 * durably spooled (queue mode) or after the delivery attempts (sync mode).
 */
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "imsg.h"
#include "message.h"

struct event_base;
struct event;

namespace posthorn {

enum class SubmitStatus : uint8_t {
	queued = 0,    /* committed to the spool; delivery continues in the background */
	sent = 1,      /* sync mode: the provider accepted it */
	temp_fail = 2, /* sync transient failure, spool error, queue unavailable: try later */
	perm_fail = 3, /* sync permanent failure */
	rejected = 4,  /* the document was invalid */
};
const char *to_string(SubmitStatus);

struct SubmitResult {
	SubmitStatus status = SubmitStatus::temp_fail;
	std::string submission_id;
	std::string detail;
	std::string provider_id;
};

std::vector<uint8_t> submit_result_encode(uint64_t reqid, const SubmitResult &r);

/* A front's client for the relayer channel. */
class Submitter {
public:
	using Callback = std::function<void(const SubmitResult &)>;

	/* Results that do not arrive within timeout_s become temp_fail. */
	Submitter(event_base *base, unsigned timeout_s = 30);
	~Submitter();
	Submitter(const Submitter &) = delete;
	Submitter &operator=(const Submitter &) = delete;

	/* The channel to the relayer (may be replaced; nullptr: unavailable). */
	void attach(ImsgChannel *relayer) { relayer_ = relayer; }
	/*
	 * Submit; the callback runs exactly once, later, from the event loop.
	 * false when the message cannot even be sent (no relayer, queue full,
	 * invalid): the callback is not called and the caller answers 4xx.
	 */
	bool submit(const Message &msg, Callback cb, std::string *why = nullptr);
	/* Feed IMSG_SUBMIT_RESULT here; false for other types. */
	bool handle(Imsg &msg);
	/* The relayer went away: fail everything pending. */
	void fail_all(const std::string &detail);
	size_t pending() const { return pending_.size(); }

private:
	struct Pending {
		Callback cb;
		event *timer = nullptr;
	};
	static void on_timeout(int, short, void *) noexcept;
	void complete(uint64_t reqid, const SubmitResult &r);

	event_base *base_;
	unsigned timeout_s_;
	ImsgChannel *relayer_ = nullptr;
	uint64_t next_id_ = 1;
	std::map<uint64_t, Pending> pending_;
};

} // namespace posthorn
