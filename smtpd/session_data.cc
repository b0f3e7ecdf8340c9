/* DATA, the end of data, and the submission to the relayer. */
#include "session.h"

#include "smtpd/metrics.h"
#include "smtpd/mime.h"
#include "smtpd/submission.h"

namespace posthorn {

bool Session::check_data(CommandArgs &a)
{
	if (!tx_)
		return fail("503 5.5.1 Need MAIL command");
	if (tx_->rcpts.empty())
		return fail("503 5.5.1 Need RCPT command");
	if (!a.args.empty())
		return fail("501 5.5.4 Syntax: DATA");
	return true;
}

void Session::proceed_data(CommandArgs &)
{
	tx_->data.emplace(cfg_.max_message_size, SMTP_MAX_LINE);
	phase_ = Phase::data;
	reply("354 End data with <CR><LF>.<CR><LF>");
}

/* false: more input needed. */
bool Session::read_data()
{
	DataReader &r = *tx_->data;
	io_.consume(r.feed(io_.input()));
	if (!r.done())
		return false;
	end_of_data();
	return true;
}

void Session::end_of_data()
{
	DataReader &r = *tx_->data;
	phase_ = Phase::command;
	switch (r.error()) {
	case DataReader::Error::too_big:
		reset_transaction();
		refuse("552 5.3.4 Message too big");
		return;
	case DataReader::Error::line_too_long:
		reset_transaction();
		refuse("500 5.5.2 Line too long");
		return;
	case DataReader::Error::none: break;
	}
	submit(r.take());
}

void Session::submission_refused(std::string_view reply_text, std::string_view error)
{
	ctx_->state->counters.submissions_failed++;
	log(LogLevel::info, "smtp_submission_failed", LogField("error", error),
	    LogField("sender", tx_ ? tx_->sender : ""));
	reset_transaction();
	refuse(reply_text);
}

void Session::submit(std::string raw)
{
	ctx_->state->counters.submissions_received++;
	messages_++;
	ParsedMail mail;
	std::string why;
	if (!mime_parse(raw, MimeLimits(), mail, why)) {
		std::string safe = printable(why, 200);
		metric_validation_failed(ctx_->endpoint());
		submission_refused("550 5.6.0 Malformed message: " + safe, safe);
		return;
	}
	std::string name, addr;
	if (!parse_mailbox(mail.from, name, addr) || !address_allowed(cfg_.allowed_senders, addr)) {
		log(LogLevel::info, "smtp_sender_rejected", LogField("sender", printable(addr, 320)),
		    LogField("where", "header"), LogField("user", auth_user_));
		submission_refused("550 5.7.1 Sender not authorized", "header From not authorized");
		return;
	}
	Message m = build_message(*ctx_, tx_->sender, tx_->rcpts, std::move(mail));
	raw.clear();
	raw.shrink_to_fit();
	if (!message_validate(m, why)) {
		std::string safe = printable(why, 200);
		metric_validation_failed(ctx_->endpoint());
		submission_refused("550 5.6.0 Malformed message: " + safe, safe);
		return;
	}
	metric_received(ctx_->endpoint());
	SubmissionNote note{id_, cfg_.name, ctx_->endpoint(), m.transport, ctx_->state, m.id,
	    m.recipients.size(), monotonic_ms()};
	SessionHost *host = &host_;
	uint64_t serial = serial_;
	auto done = [host, serial, note](const SubmitResult &r) {
		note.record(r);
		if (Session *s = host->find_session(serial))
			s->submission_done(r);
	};
	if (!host_.submitter().submit(m, std::move(done), &why)) {
		SubmitResult r;
		r.status = SubmitStatus::temp_fail;
		metric_result(ctx_->endpoint(), m.transport, r, 0);
		submission_refused("451 4.3.0 Queue unavailable, try again later", printable(why, 200));
		return;
	}
	pending_id_ = m.id;
	wait();
}

void Session::submission_done(const SubmitResult &r)
{
	if (phase_ != Phase::waiting)
		return;
	reply(submit_reply(r, cfg_.delivery, pending_id_));
	pending_id_.clear();
	reset_transaction();
	resume();
}

} // namespace posthorn
