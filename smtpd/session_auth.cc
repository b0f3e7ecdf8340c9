/* AUTH PLAIN and LOGIN (RFC 4954), and client certificates. */
#include "session.h"

#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <openssl/crypto.h>

#include "smtpd/auth.h"
#include "smtpd/metrics.h"

namespace posthorn {

namespace {

/* 200 to 700 ms before a 535: slows guessing without blocking the loop. */
double failure_delay()
{
	uint16_t r = 0;
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = 0;
	return 0.2 + (r % 500) / 1000.0;
}

bool iequal(std::string_view a, const char *b)
{
	return a.size() == strlen(b) && strncasecmp(a.data(), b, a.size()) == 0;
}

/* A user name as it may appear in a log line. */
std::string loggable(std::string_view user) { return printable(user, 64); }

void wipe(std::string &s)
{
	OPENSSL_cleanse(s.data(), s.size());
	s.clear();
}

} // namespace

bool Session::check_auth(CommandArgs &a)
{
	if (!greeted_ || !esmtp_)
		return fail("503 5.5.1 Send EHLO first");
	if (needs_tls())
		return fail("530 5.7.0 Must issue STARTTLS first");
	if (!auth_offered())
		return fail("503 5.5.1 AUTH not available");
	if (authenticated_)
		return fail("503 5.5.1 Already authenticated");
	if (tx_)
		return fail("503 5.5.1 AUTH not allowed during a mail transaction");
	std::string_view args = a.args;
	size_t sp = args.find(' ');
	a.mechanism.assign(args.substr(0, sp));
	if (sp != std::string_view::npos) {
		a.initial.assign(args.substr(sp + 1));
		a.has_initial = true;
	}
	if (a.mechanism.empty() || (a.has_initial && (a.initial.empty() ||
	    a.initial.find(' ') != std::string::npos)))
		return fail("501 5.5.4 Syntax: AUTH mechanism [initial-response]");
	if (!iequal(a.mechanism, "PLAIN") && !iequal(a.mechanism, "LOGIN"))
		return fail("504 5.5.4 Unrecognized authentication type");
	if (ctx_->state->throttle.blocked(client_, cfg_.max_auth_failures, monotonic_now())) {
		log(LogLevel::warn, "smtp_auth_failed", LogField("reason", "throttled"),
		    LogField("client", ctx_->strip_client_ip ? "" : client_));
		return refuse("454 4.7.0 Too many authentication failures, try again later");
	}
	return true;
}

void Session::proceed_auth(CommandArgs &a)
{
	bool plain = iequal(a.mechanism, "PLAIN");
	sasl_ = plain ? Sasl::plain : Sasl::login_user;
	phase_ = Phase::sasl;
	if (a.has_initial) {
		sasl_line(a.initial);
		wipe(a.initial);
		return;
	}
	reply(plain ? "334 " : "334 VXNlcm5hbWU6");
}

void Session::sasl_line(std::string_view line)
{
	std::string decoded;
	switch (sasl_decode(line, decoded)) {
	case SaslResult::cancelled:
		sasl_ = Sasl::none;
		phase_ = Phase::command;
		fail("501 5.5.2 Authentication cancelled");
		return;
	case SaslResult::bad_encoding:
		sasl_ = Sasl::none;
		phase_ = Phase::command;
		fail("501 5.5.2 Invalid base64 data");
		return;
	case SaslResult::ok: break;
	}
	sasl_step(decoded);
	wipe(decoded);
}

void Session::sasl_step(std::string_view decoded)
{
	std::string user, pass;
	switch (sasl_) {
	case Sasl::plain:
		sasl_ = Sasl::none;
		phase_ = Phase::command;
		if (!sasl_plain_split(decoded, user, pass)) {
			fail("501 5.5.2 Malformed PLAIN response");
			break;
		}
		auth_finish(user, pass);
		break;
	case Sasl::login_user:
		sasl_user_.assign(decoded);
		sasl_ = Sasl::login_pass;
		reply("334 UGFzc3dvcmQ6");
		break;
	case Sasl::login_pass:
		sasl_ = Sasl::none;
		phase_ = Phase::command;
		pass.assign(decoded);
		user = std::move(sasl_user_);
		sasl_user_.clear();
		auth_finish(user, pass);
		break;
	case Sasl::none: break;
	}
	wipe(pass);
}

void Session::auth_finish(const std::string &user, std::string &pass)
{
	bool ok = !user.empty() && verify_user(cfg_.users, user, pass);
	wipe(pass);
	if (!ok) {
		auth_failed(user, "bad credentials");
		return;
	}
	authenticated_ = true;
	auth_user_ = user;
	log(LogLevel::info, "smtp_auth_ok", LogField("user", loggable(user)), LogField("method", "smtp-auth"));
	reply("235 2.7.0 Authentication successful");
}

void Session::auth_failed(const std::string &user, std::string_view reason)
{
	ctx_->state->throttle.failure(client_, cfg_.max_auth_failures, monotonic_now());
	ctx_->state->counters.auth_failures++;
	metric_auth_failed(ctx_->endpoint());
	log(LogLevel::warn, "smtp_auth_failed", LogField("user", loggable(user)), LogField("reason", reason),
	    LogField("client", ctx_->strip_client_ip ? "" : client_));
	delayed_reply_ = "535 5.7.8 Authentication failed";
	wait();
	evtimer_arm(delay_ev_.get(), failure_delay());
}

void Session::on_delay(int, short, void *arg) noexcept
{
	auto *s = static_cast<Session *>(arg);
	if (s->phase_ != Phase::waiting)
		return;
	s->reply(s->delayed_reply_);
	s->delayed_reply_.clear();
	s->resume();
}

void Session::client_cert_check()
{
	if (!ctx_->tls || !ctx_->tls->asks_client_cert() || !io_.tls())
		return;
	/* With a CA configured, libtls verifies a presented certificate in the handshake. */
	cert_ok_ = tls_peer_cert_provided(io_.tls()) == 1;
	bool counts = cfg_.auth_required == AuthRequired::client_cert ||
	    cfg_.auth_required == AuthRequired::either;
	if (cert_ok_ && counts) {
		const char *subject = tls_peer_cert_subject(io_.tls());
		log(LogLevel::info, "smtp_auth_ok", LogField("method", "client-cert"),
		    LogField("subject", printable(subject ? subject : "", 200)));
	}
}

} // namespace posthorn
