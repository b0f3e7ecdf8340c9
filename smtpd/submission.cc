#include "submission.h"

#include <time.h>

#include <map>

#include "common/log.h"
#include "smtpd/metrics.h"
#include "smtpd/policy.h"

namespace posthorn {

namespace {

/*
 * The recipients the header To and Cc name, spelled as in RCPT TO, each once
 * (To first); every other recipient is a blind copy (split_visibility). An
 * address only in the headers is nobody's business: it gets nothing and is
 * not shown by us.
 */
void show_recipients(Message &m, const std::vector<std::string> &to,
    const std::vector<std::string> &cc)
{
	std::map<std::string, const std::string *> rcpt; /* address_key -> RCPT TO spelling */
	for (const std::string &r : m.recipients)
		rcpt.emplace(address_key(r), &r);
	for (const auto &[from, into] : {std::pair{&to, &m.to_visible}, {&cc, &m.cc_visible}}) {
		for (const std::string &a : *from) {
			auto it = rcpt.find(address_key(a));
			if (it == rcpt.end() || it->second == nullptr)
				continue;
			into->push_back(*it->second);
			it->second = nullptr; /* shown once */
		}
	}
	m.visibility_known = true;
}

} // namespace

Message build_message(const ListenerCtx &ctx, const std::string &sender,
    const std::vector<std::string> &rcpts, ParsedMail &&mail)
{
	Message m;
	m.id = new_submission_id();
	m.envelope_from = sender;
	m.recipients = rcpts; /* RCPT TO only: To, Cc and Bcc headers add nobody */
	show_recipients(m, mail.to, mail.cc);
	m.from = std::move(mail.from);
	m.reply_to = std::move(mail.reply_to);
	m.subject = std::move(mail.subject);
	m.text_body = std::move(mail.text_body);
	m.html_body = std::move(mail.html_body);
	m.attachments = std::move(mail.attachments);
	m.headers = std::move(mail.forward_headers);
	m.source = ctx.endpoint();
	m.transport = ctx.cfg.transport;
	m.delivery = ctx.cfg.delivery;
	m.created = static_cast<int64_t>(time(nullptr));
	return m;
}

int64_t monotonic_ms()
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void SubmissionNote::record(const SubmitResult &r) const
{
	bool ok = submit_ok(r);
	metric_result(endpoint, transport, r, static_cast<double>(monotonic_ms() - submitted_ms) / 1000);
	(ok ? state->counters.submissions_sent : state->counters.submissions_failed)++;
	log_event(ok ? LogLevel::info : LogLevel::warn, ok ? "smtp_submission_sent" : "smtp_submission_failed",
	    {{"session_id", session_id}, {"listener", listener},
	    {"submission_id", r.submission_id.empty() ? submission_id : r.submission_id},
	    {"status", to_string(r.status)}, {"recipients", recipients},
	    {"error", ok ? "" : printable(r.detail, 200)}});
}

bool submit_ok(const SubmitResult &r)
{
	return r.status == SubmitStatus::queued || r.status == SubmitStatus::sent;
}

std::string submit_reply(const SubmitResult &r, Delivery mode, const std::string &id)
{
	const std::string &sid = r.submission_id.empty() ? id : r.submission_id;
	std::string detail = printable(r.detail, 200);
	switch (r.status) {
	case SubmitStatus::queued: return "250 2.0.0 OK queued as " + printable(sid, 64);
	case SubmitStatus::sent: return "250 2.0.0 OK sent as " + printable(sid, 64);
	case SubmitStatus::temp_fail:
		if (mode == Delivery::sync)
			return "451 4.4.1 Delivery failed temporarily" + (detail.empty() ? "" : ": " + detail);
		return "451 4.3.0 Queue unavailable, try again later";
	case SubmitStatus::perm_fail:
		return "554 5.0.0 Delivery failed" + (detail.empty() ? "" : ": " + detail);
	case SubmitStatus::rejected:
		return "550 5.6.0 Malformed message" + (detail.empty() ? "" : ": " + detail);
	}
	return "451 4.3.0 Queue unavailable, try again later";
}

} // namespace posthorn
