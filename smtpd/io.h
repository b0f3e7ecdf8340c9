/*
 * One client connection on libevent: plaintext or libtls, non-blocking.
 *
 * Input is read into a bounded buffer that the session consumes; output is
 * collected and written with one write (one TLS record) per flush, so a
 * batch of pipelined replies leaves in one segment. STARTTLS discards any
 * input buffered so far and reads nothing more in plaintext; the handshake
 * starts once the 220 has been written. The owner learns about input, the
 * end of a handshake and the end of the connection through IoEvents, never
 * from inside one of its own calls into Io.
 */
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "common/fd.h"
#include "smtpd/ev.h"
#include "smtpd/tls.h"

namespace posthorn {

class IoEvents {
public:
	virtual void io_input() = 0;
	virtual void io_tls_ready() = 0;
	/* The connection is gone (peer closed, error, or our close finished). */
	virtual void io_closed(std::string_view why) = 0;

protected:
	~IoEvents() = default;
};

class Io {
public:
	static constexpr size_t INPUT_LIMIT = 64 * 1024;

	Io(event_base *base, Fd fd, IoEvents &owner);
	~Io();
	Io(const Io &) = delete;
	Io &operator=(const Io &) = delete;

	std::string_view input() const { return std::string_view(in_).substr(in_off_); }
	void consume(size_t n);
	void write(std::string_view s) { out_.append(s); }
	void flush();

	/* Implicit TLS: start the handshake now. */
	void start_tls(struct tls *server);
	/* STARTTLS: drop buffered input; handshake once pending output is written. */
	void starttls_after_flush(struct tls *server);
	bool tls_active() const { return state_ == State::tls; }
	struct tls *tls() const { return conn_.get(); }

	/* Write what is pending, then close (bounded by the owner's timer). */
	void close_after_flush(std::string_view why);
	/* Close now; io_closed() follows from the event loop. */
	void abort(std::string_view why);
	bool closing() const { return state_ == State::closing || state_ == State::dead; }
	/* In a TLS handshake (or about to start one): nothing may be written in plaintext. */
	bool handshaking() const { return state_ == State::handshake || state_ == State::tls_pending; }
	/* The peer closed its side; what it sent before is still in input(). */
	bool eof() const { return read_eof_; }

private:
	enum class State { plain, tls_pending, handshake, tls, closing, dead };
	enum Want { WANT_NONE = 0, WANT_READ = 1, WANT_WRITE = 2 };
	static void on_event(int, short, void *) noexcept;
	static void on_closed(int, short, void *) noexcept;
	void run();
	bool handshake();
	bool write_some();
	ssize_t read_some(bool &eof);
	void begin_handshake();
	void update();
	void die(std::string_view why);

	event_base *base_;
	Fd fd_;
	IoEvents &owner_;
	EventPtr rev_, wev_, closed_ev_;
	State state_ = State::plain;
	struct tls *tls_server_ = nullptr;
	TlsPtr conn_;
	std::string in_, out_;
	size_t in_off_ = 0;
	int read_want_ = WANT_NONE, write_want_ = WANT_NONE;
	bool read_armed_ = false, write_armed_ = false;
	std::string close_reason_;
	bool read_eof_ = false;
};

} // namespace posthorn
