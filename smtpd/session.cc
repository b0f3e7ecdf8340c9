/* The session's life cycle, its input loop and the command table. */
#include "session.h"

#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "common/log.h"
#include "smtpd/submission.h"

namespace posthorn {


std::string new_session_id()
{
	uint8_t b[8];
	size_t got = 0;
	while (got < sizeof(b)) {
		ssize_t r = getrandom(b + got, sizeof(b) - got, 0);
		if (r <= 0) {
			if (r == -1 && errno == EINTR)
				continue;
			fatal("getrandom");
		}
		got += static_cast<size_t>(r);
	}
	static const char hex[] = "0123456789abcdef";
	std::string id;
	for (uint8_t c : b) {
		id += hex[c >> 4];
		id += hex[c & 15];
	}
	return id;
}

Session::Session(event_base *base, SessionHost &host, std::shared_ptr<const ListenerCtx> ctx, Fd fd,
    std::string client, uint64_t serial)
    : base_(base), host_(host), ctx_(std::move(ctx)), cfg_(ctx_->cfg), client_(std::move(client)),
      serial_(serial), id_(new_session_id()), io_(base, std::move(fd), *this)
{
	idle_ev_.reset(evtimer_new(base_, on_idle, this));
	delay_ev_.reset(evtimer_new(base_, on_delay, this));
	started_ms_ = monotonic_ms();
}

Session::~Session() = default;

void Session::start()
{
	log(LogLevel::info, "smtp_session_open",
	    LogField("client", ctx_->strip_client_ip ? "" : client_),
	    LogField("tls", cfg_.tls == TlsMode::implicit));
	arm_idle();
	if (cfg_.tls == TlsMode::implicit) {
		phase_ = Phase::handshake;
		io_.start_tls(ctx_->tls->ctx());
		return;
	}
	greet();
}

void Session::greet()
{
	reply("220 " + ctx_->hostname + " ESMTP posthorn");
	phase_ = Phase::command;
	io_.flush();
}

void Session::reply(std::string_view text)
{
	io_.write(text);
	io_.write("\r\n");
}

bool Session::fail(std::string_view text)
{
	reply(text);
	if (++errors_ >= SMTP_MAX_ERRORS)
		close("too many errors", "421 4.7.0 " + ctx_->hostname + " Too many errors, closing connection");
	return false;
}

bool Session::refuse(std::string_view text)
{
	reply(text);
	return false;
}

void Session::close(std::string_view why, std::string_view last_reply)
{
	if (phase_ == Phase::closing)
		return;
	if (!last_reply.empty() && !io_.handshaking())
		reply(last_reply);
	phase_ = Phase::closing;
	reset_transaction();
	evtimer_arm(idle_ev_.get(), SMTP_CLOSE_LINGER);
	io_.close_after_flush(why);
}

void Session::abort(std::string_view why)
{
	phase_ = Phase::closing;
	io_.abort(why);
}

void Session::arm_idle()
{
	evtimer_arm(idle_ev_.get(), static_cast<double>(cfg_.idle_timeout));
}

void Session::wait()
{
	phase_ = Phase::waiting;
	evtimer_del(idle_ev_.get()); /* our delay, not the client's */
}

void Session::resume()
{
	phase_ = Phase::command;
	arm_idle();
	process();
}

void Session::on_idle(int, short, void *arg) noexcept { static_cast<Session *>(arg)->idle_fired(); }

void Session::idle_fired()
{
	if (phase_ == Phase::closing) {
		io_.abort("close timed out");
		return;
	}
	if (phase_ == Phase::handshake || phase_ == Phase::greeting) {
		abort("idle timeout in TLS handshake");
		return;
	}
	close("idle timeout", "421 4.4.2 " + ctx_->hostname + " Idle timeout, closing connection");
}

void Session::shutdown()
{
	draining_ = true;
	if (phase_ == Phase::handshake || phase_ == Phase::greeting)
		abort("shutting down");
	else if (phase_ == Phase::command || phase_ == Phase::sasl) {
		close("shutting down", "421 4.3.2 " + ctx_->hostname + " Service shutting down, closing connection");
		io_.flush();
	}
	/* data and waiting: the transaction finishes first (see process()). */
}

void Session::io_input()
{
	if (phase_ == Phase::closing)
		return;
	if (phase_ != Phase::waiting)
		arm_idle();
	process();
}

void Session::io_tls_ready()
{
	tls_ = true;
	client_cert_check();
	const char *version = tls_conn_version(io_.tls());
	const char *cipher = tls_conn_cipher(io_.tls());
	log(LogLevel::info, "smtp_tls_established", LogField("version", version ? version : ""),
	    LogField("cipher", cipher ? cipher : ""), LogField("client_cert", cert_ok_));
	arm_idle();
	if (cfg_.tls == TlsMode::implicit) {
		greet(); /* implicit TLS: the banner comes once the channel is secure */
		return;
	}
	phase_ = Phase::command;
}

void Session::io_closed(std::string_view why)
{
	evtimer_del(idle_ev_.get());
	evtimer_del(delay_ev_.get());
	phase_ = Phase::closing;
	log(LogLevel::info, "smtp_session_close", LogField("reason", why), LogField("messages", messages_),
	    LogField("duration_ms", monotonic_ms() - started_ms_));
	host_.session_done(serial_);
}

Session::LineResult Session::next_line(std::string &line)
{
	for (;;) {
		std::string_view in = io_.input();
		size_t lf = in.find('\n');
		if (discarding_) {
			/* The rest of an over-long line, already answered. */
			io_.consume(lf == std::string_view::npos ? in.size() : lf + 1);
			if (lf == std::string_view::npos)
				return LineResult::none;
			discarding_ = false;
			continue;
		}
		if (lf == std::string_view::npos) {
			if (in.size() < SMTP_MAX_LINE)
				return LineResult::none;
			io_.consume(in.size());
			discarding_ = true;
			return LineResult::too_long;
		}
		bool too_long = lf + 1 > SMTP_MAX_LINE;
		std::string_view l = in.substr(0, lf);
		if (!l.empty() && l.back() == '\r')
			l.remove_suffix(1);
		if (!too_long)
			line.assign(l); /* before consume(): it may reuse the buffer */
		io_.consume(lf + 1);
		return too_long ? LineResult::too_long : LineResult::ok;
	}
}

void Session::process()
{
	for (;;) {
		if (draining_ && (phase_ == Phase::command || phase_ == Phase::sasl)) {
			close("shutting down", "421 4.3.2 " + ctx_->hostname + " Service shutting down, closing connection");
			break;
		}
		if (phase_ == Phase::data) {
			if (!read_data())
				break;
			continue;
		}
		if (phase_ != Phase::command && phase_ != Phase::sasl)
			break;
		std::string line;
		LineResult r = next_line(line);
		if (r == LineResult::none)
			break;
		if (r == LineResult::too_long) {
			sasl_ = Sasl::none;
			phase_ = Phase::command;
			fail("500 5.5.2 Line too long");
			continue;
		}
		if (phase_ == Phase::sasl)
			sasl_line(line);
		else
			command(line);
	}
	if (io_.eof() && (phase_ == Phase::command || phase_ == Phase::sasl || phase_ == Phase::data))
		close(phase_ == Phase::data ? "client closed the connection in DATA" :
		    "client closed the connection");
	io_.flush();
}

void Session::command(std::string_view line)
{
	size_t sp = line.find(' ');
	CommandArgs a;
	a.verb = line.substr(0, sp);
	a.args = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
	while (!a.args.empty() && (a.args.back() == ' ' || a.args.back() == '\t'))
		a.args.remove_suffix(1);
	/* The command table: {verb, check, proceed}. */
	static constexpr Command commands[] = {
		{"EHLO", &Session::check_helo, &Session::proceed_ehlo},
		{"HELO", &Session::check_helo, &Session::proceed_helo},
		{"STARTTLS", &Session::check_starttls, &Session::proceed_starttls},
		{"AUTH", &Session::check_auth, &Session::proceed_auth},
		{"MAIL", &Session::check_mail, &Session::proceed_mail},
		{"RCPT", &Session::check_rcpt, &Session::proceed_rcpt},
		{"DATA", &Session::check_data, &Session::proceed_data},
		{"RSET", &Session::check_noargs, &Session::proceed_rset},
		{"NOOP", &Session::check_any, &Session::proceed_noop},
		{"QUIT", &Session::check_noargs, &Session::proceed_quit},
		{"HELP", &Session::check_any, &Session::proceed_help},
		{"VRFY", &Session::check_vrfy, &Session::proceed_vrfy},
	};
	for (const Command &c : commands) {
		if (c.verb.size() != a.verb.size() ||
		    strncasecmp(c.verb.data(), a.verb.data(), a.verb.size()) != 0)
			continue;
		if ((this->*c.check)(a))
			(this->*c.proceed)(a);
		return;
	}
	fail("500 5.5.1 Command unrecognized");
}

} // namespace posthorn
