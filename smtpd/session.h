/*
 * One SMTP session (RFC 5321 with PIPELINING, STARTTLS, AUTH, SIZE,
 * 8BITMIME, ENHANCEDSTATUSCODES), written as OpenSMTPD writes it: a command
 * table of {verb, check, proceed} rows. check_<cmd>() validates sequence,
 * syntax and policy and writes the refusal itself; proceed_<cmd>() does the
 * work. A Transaction is created at MAIL and freed at the end of DATA, at
 * RSET, EHLO/HELO and STARTTLS.
 *
 * Phases: greeting (implicit TLS handshake) → command ⇄ sasl (an AUTH
 * exchange) → data (DATA lines) → waiting (AUTH failure delay, or the
 * relayer's answer) → command … → closing. Pipelined input stays buffered
 * while waiting and is answered in order afterwards; each batch of replies
 * is flushed with one write.
 *
 * Files: session.cc (life cycle, input, table), session_cmd.cc (EHLO to
 * QUIT), session_auth.cc (AUTH), session_data.cc (DATA and submission).
 */
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/fd.h"
#include "common/log.h"
#include "common/submit.h"
#include "smtpd/data.h"
#include "smtpd/ev.h"
#include "smtpd/io.h"
#include "smtpd/policy.h"
#include "smtpd/server.h"

namespace posthorn {

inline constexpr size_t SMTP_MAX_LINE = 1000;   /* bytes, CRLF included */
inline constexpr unsigned SMTP_MAX_ERRORS = 20; /* bad commands before 421 */
inline constexpr double SMTP_CLOSE_LINGER = 5;  /* seconds to flush a last reply */

struct Transaction {
	std::string sender; /* empty: null sender */
	std::vector<std::string> rcpts;
	uint64_t declared_size = 0;
	std::optional<DataReader> data;
};

/* The parsed arguments a check hands to its proceed. */
struct CommandArgs {
	std::string_view verb, args;
	SmtpPath path;
	MailParams params;
	std::string mechanism, initial;
	bool has_initial = false;
};

class Session final : public IoEvents {
public:
	Session(event_base *base, SessionHost &host, std::shared_ptr<const ListenerCtx> ctx, Fd fd,
	    std::string client, uint64_t serial);
	~Session();
	Session(const Session &) = delete;
	Session &operator=(const Session &) = delete;

	void start();
	/* The daemon is stopping: idle sessions get 421 now, others after their transaction. */
	void shutdown();
	/* Close at once (the shutdown deadline passed). */
	void abort(std::string_view why);
	void submission_done(const SubmitResult &r);

	uint64_t serial() const { return serial_; }
	const std::string &id() const { return id_; }
	const std::string &client() const { return client_; }
	const ListenerCtx &listener() const { return *ctx_; }

	void io_input() override;
	void io_tls_ready() override;
	void io_closed(std::string_view why) override;

	struct Command {
		std::string_view verb;
		bool (Session::*check)(CommandArgs &);
		void (Session::*proceed)(CommandArgs &);
	};

private:
	enum class Phase { greeting, command, sasl, data, waiting, handshake, closing };
	enum class Sasl { none, plain, login_user, login_pass };
	enum class LineResult { none, ok, too_long };

	/* session.cc */
	void process();
	LineResult next_line(std::string &line);
	void command(std::string_view line);
	void greet();
	void reply(std::string_view text);
	bool fail(std::string_view text);  /* a client error: counted; false for check chains */
	bool refuse(std::string_view text); /* a policy refusal: not counted */
	void close(std::string_view why, std::string_view last_reply = {});
	void arm_idle();
	void wait(); /* stop reading commands until resume() */
	void resume();
	void reset_transaction() { tx_.reset(); }
	/* Every line carries session_id and listener. */
	template <typename... F> void log(LogLevel level, std::string_view msg, F &&...extra) const {
		log_event(level, msg, {LogField("session_id", id_), LogField("listener", cfg_.name),
		    LogField(std::forward<F>(extra))...});
	}
	static void on_idle(int, short, void *) noexcept;
	void idle_fired();

	/* session_cmd.cc */
	bool needs_tls() const;
	bool authorized() const;
	bool auth_offered() const;
	bool check_helo(CommandArgs &a);
	void proceed_ehlo(CommandArgs &a);
	void proceed_helo(CommandArgs &a);
	bool check_starttls(CommandArgs &a);
	void proceed_starttls(CommandArgs &a);
	bool check_mail(CommandArgs &a);
	bool check_mail_policy(CommandArgs &a);
	void proceed_mail(CommandArgs &a);
	bool check_rcpt(CommandArgs &a);
	void proceed_rcpt(CommandArgs &a);
	bool check_noargs(CommandArgs &a);
	bool check_any(CommandArgs &a);
	bool check_vrfy(CommandArgs &a);
	void proceed_rset(CommandArgs &a);
	void proceed_noop(CommandArgs &a);
	void proceed_quit(CommandArgs &a);
	void proceed_help(CommandArgs &a);
	void proceed_vrfy(CommandArgs &a);

	/* session_auth.cc */
	bool check_auth(CommandArgs &a);
	void proceed_auth(CommandArgs &a);
	void sasl_line(std::string_view line);
	void sasl_step(std::string_view decoded);
	void auth_finish(const std::string &user, std::string &pass);
	void auth_failed(const std::string &user, std::string_view reason);
	void client_cert_check();
	static void on_delay(int, short, void *) noexcept;

	/* session_data.cc */
	bool check_data(CommandArgs &a);
	void proceed_data(CommandArgs &a);
	bool read_data();
	void end_of_data();
	void submit(std::string raw);
	void submission_refused(std::string_view reply, std::string_view error);

	event_base *base_;
	SessionHost &host_;
	std::shared_ptr<const ListenerCtx> ctx_;
	const SmtpListenerConfig &cfg_;
	std::string client_;
	uint64_t serial_;
	std::string id_;
	Io io_;
	EventPtr idle_ev_, delay_ev_;
	Phase phase_ = Phase::greeting;
	Sasl sasl_ = Sasl::none;
	std::string sasl_user_;
	std::string helo_;
	bool greeted_ = false, esmtp_ = false;
	bool tls_ = false, cert_ok_ = false, authenticated_ = false;
	bool draining_ = false, discarding_ = false;
	std::string auth_user_;
	std::string delayed_reply_;
	std::string pending_id_; /* the submission awaiting the relayer's answer */
	std::unique_ptr<Transaction> tx_;
	unsigned errors_ = 0;
	uint64_t messages_ = 0;
	int64_t started_ms_ = 0;
};

} // namespace posthorn
