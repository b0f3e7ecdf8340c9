/*
 * From a received message to the relayer and back: the canonical Message
 * built from the envelope and the MIME walk, and the SMTP reply for the
 * relayer's answer (DESIGN.md section 6).
 */
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/message.h"
#include "common/submit.h"
#include "smtpd/mime.h"
#include "smtpd/server.h"

namespace posthorn {

/* What the relayer's answer is recorded against, even when the session is gone. */
struct SubmissionNote {
	std::string session_id, listener, endpoint, transport;
	ListenerState *state;
	std::string submission_id;
	size_t recipients;
	int64_t submitted_ms; /* monotonic */
	/* Counters and the smtp_submission_sent / smtp_submission_failed line. */
	void record(const SubmitResult &r) const;
};

Message build_message(const ListenerCtx &ctx, const std::string &sender,
    const std::vector<std::string> &rcpts, ParsedMail &&mail);
/* The reply line for a relayer result in the listener's delivery mode. */
std::string submit_reply(const SubmitResult &r, Delivery mode, const std::string &id);
bool submit_ok(const SubmitResult &r);
/* Milliseconds on the monotonic clock. */
int64_t monotonic_ms();

} // namespace posthorn
