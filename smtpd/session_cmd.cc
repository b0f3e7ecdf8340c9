/* EHLO, HELO, STARTTLS, MAIL, RCPT, RSET, NOOP, QUIT, HELP, VRFY: checks and proceeds. */
#include "session.h"

namespace posthorn {

bool Session::needs_tls() const { return cfg_.require_tls && !tls_; }

bool Session::authorized() const
{
	switch (cfg_.auth_required) {
	case AuthRequired::smtp_auth: return authenticated_;
	case AuthRequired::client_cert: return cert_ok_;
	case AuthRequired::either: return authenticated_ || cert_ok_;
	case AuthRequired::none: return true;
	}
	return false;
}

bool Session::auth_offered() const
{
	bool mode = cfg_.auth_required == AuthRequired::smtp_auth ||
	    cfg_.auth_required == AuthRequired::either;
	return mode && !cfg_.users.empty() && !needs_tls();
}

bool Session::check_helo(CommandArgs &a)
{
	bool ok = !a.args.empty() && a.args.size() <= 255;
	for (unsigned char c : a.args)
		ok = ok && c > 0x20 && c < 0x7f;
	if (!ok)
		return fail(std::string("501 5.5.4 Syntax: ") + (a.verb.size() == 4 &&
		    (a.verb[0] | 0x20) == 'h' ? "HELO" : "EHLO") + " hostname");
	return true;
}

void Session::proceed_ehlo(CommandArgs &a)
{
	reset_transaction();
	greeted_ = esmtp_ = true;
	helo_.assign(a.args);
	std::string r = "250-" + ctx_->hostname + " Hello " + helo_ + "\r\n";
	if (cfg_.tls == TlsMode::starttls && !tls_)
		r += "250-STARTTLS\r\n";
	if (auth_offered())
		r += "250-AUTH PLAIN LOGIN\r\n";
	r += "250-SIZE " + std::to_string(cfg_.max_message_size) + "\r\n";
	r += "250-PIPELINING\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES";
	reply(r);
}

void Session::proceed_helo(CommandArgs &a)
{
	reset_transaction();
	greeted_ = true;
	esmtp_ = false;
	helo_.assign(a.args);
	reply("250 " + ctx_->hostname + " Hello " + helo_);
}

bool Session::check_starttls(CommandArgs &a)
{
	if (!a.args.empty())
		return fail("501 5.5.4 Syntax: STARTTLS");
	if (cfg_.tls != TlsMode::starttls || !ctx_->tls)
		return fail("502 5.5.1 STARTTLS not available");
	if (tls_)
		return fail("503 5.5.1 TLS already active");
	if (tx_)
		return fail("503 5.5.1 STARTTLS not allowed during a mail transaction");
	return true;
}

void Session::proceed_starttls(CommandArgs &)
{
	reply("220 2.0.0 Ready to start TLS");
	/* RFC 3207: forget everything learnt before the handshake. */
	reset_transaction();
	greeted_ = esmtp_ = authenticated_ = false;
	auth_user_.clear();
	phase_ = Phase::handshake;
	io_.starttls_after_flush(ctx_->tls->ctx());
}

bool Session::check_mail(CommandArgs &a)
{
	if (!greeted_)
		return fail("503 5.5.1 Send EHLO or HELO first");
	if (tx_)
		return fail("503 5.5.1 Nested MAIL command");
	if (needs_tls())
		return fail("530 5.7.0 Must issue STARTTLS first");
	if (!authorized())
		return fail("530 5.7.0 Authentication required");
	switch (parse_path(a.args, "FROM", true, a.path)) {
	case PathError::syntax: return fail("501 5.5.4 Syntax: MAIL FROM:<address> [parameters]");
	case PathError::address: return fail("501 5.5.4 Bad sender address syntax");
	case PathError::none: break;
	}
	std::string bad;
	switch (parse_mail_params(a.path, a.params, bad)) {
	case ParamError::syntax: return fail("501 5.5.4 Bad value for parameter " + bad);
	case ParamError::unsupported: return fail("555 5.5.4 Unsupported parameter " + bad);
	case ParamError::none: break;
	}
	return check_mail_policy(a);
}

bool Session::check_mail_policy(CommandArgs &a)
{
	if (a.params.size > cfg_.max_message_size)
		return refuse("552 5.3.4 Message too big");
	if (!address_allowed(cfg_.allowed_senders, a.path.addr)) {
		log(LogLevel::info, "smtp_sender_rejected", LogField("sender", a.path.addr),
		    LogField("where", "envelope"), LogField("user", auth_user_));
		return refuse("550 5.7.1 Sender not authorized");
	}
	return true;
}

void Session::proceed_mail(CommandArgs &a)
{
	tx_ = std::make_unique<Transaction>();
	tx_->sender = std::move(a.path.addr);
	tx_->declared_size = a.params.size;
	reply("250 2.1.0 Sender OK");
}

bool Session::check_rcpt(CommandArgs &a)
{
	if (!tx_)
		return fail("503 5.5.1 Need MAIL before RCPT");
	switch (parse_path(a.args, "TO", false, a.path)) {
	case PathError::syntax: return fail("501 5.5.4 Syntax: RCPT TO:<address>");
	case PathError::address: return fail("501 5.5.4 Bad recipient address syntax");
	case PathError::none: break;
	}
	if (!a.path.params.empty())
		return fail("555 5.5.4 Unsupported parameter " + a.path.params.front().first);
	if (tx_->rcpts.size() >= cfg_.max_recipients_per_session) {
		log(LogLevel::info, "smtp_recipient_rejected", LogField("recipient", a.path.addr),
		    LogField("reason", "too many recipients"));
		return refuse("452 4.5.3 Too many recipients");
	}
	if (!cfg_.allowed_recipients.empty() && !address_allowed(cfg_.allowed_recipients, a.path.addr)) {
		log(LogLevel::info, "smtp_recipient_rejected", LogField("recipient", a.path.addr),
		    LogField("reason", "not authorized"));
		return refuse("550 5.7.1 Recipient not authorized");
	}
	return true;
}

void Session::proceed_rcpt(CommandArgs &a)
{
	bool dup = false;
	for (const std::string &r : tx_->rcpts)
		dup = dup || r == a.path.addr;
	if (!dup)
		tx_->rcpts.push_back(std::move(a.path.addr));
	reply("250 2.1.5 Recipient OK");
}

bool Session::check_noargs(CommandArgs &a)
{
	if (!a.args.empty())
		return fail("501 5.5.4 Syntax: " + std::string(a.verb) + " takes no arguments");
	return true;
}

bool Session::check_any(CommandArgs &) { return true; }

bool Session::check_vrfy(CommandArgs &a)
{
	if (a.args.empty())
		return fail("501 5.5.4 Syntax: VRFY address");
	return true;
}

void Session::proceed_rset(CommandArgs &)
{
	reset_transaction();
	reply("250 2.0.0 Reset OK");
}

void Session::proceed_noop(CommandArgs &) { reply("250 2.0.0 OK"); }

void Session::proceed_quit(CommandArgs &)
{
	close("quit", "221 2.0.0 " + ctx_->hostname + " Bye");
}

void Session::proceed_help(CommandArgs &)
{
	reply("214-2.0.0 posthorn accepts mail for relay from authorized senders\r\n"
	      "214 2.0.0 Commands: EHLO HELO STARTTLS AUTH MAIL RCPT DATA RSET NOOP QUIT HELP VRFY");
}

void Session::proceed_vrfy(CommandArgs &)
{
	reply("252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery");
}

} // namespace posthorn
