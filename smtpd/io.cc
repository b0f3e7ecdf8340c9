#include "io.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include <algorithm>

namespace posthorn {

namespace {
constexpr size_t READ_CHUNK = 16 * 1024;
} // namespace

Io::Io(event_base *base, Fd fd, IoEvents &owner) : base_(base), fd_(std::move(fd)), owner_(owner)
{
	rev_.reset(event_new(base_, fd_.get(), EV_READ | EV_PERSIST, on_event, this));
	wev_.reset(event_new(base_, fd_.get(), EV_WRITE | EV_PERSIST, on_event, this));
	closed_ev_.reset(event_new(base_, -1, 0, on_closed, this));
	read_want_ = WANT_READ;
	update();
}

Io::~Io() = default;

void Io::on_closed(int, short, void *arg) noexcept
{
	auto *self = static_cast<Io *>(arg);
	self->owner_.io_closed(self->close_reason_);
}

void Io::on_event(int, short, void *arg) noexcept { static_cast<Io *>(arg)->run(); }

void Io::run()
{
	if (state_ == State::dead)
		return;
	if (state_ == State::handshake && !handshake())
		return;
	if (!out_.empty() && !write_some())
		return;
	if (state_ == State::closing && out_.empty()) {
		die(close_reason_);
		return;
	}
	bool eof = false;
	size_t got = 0;
	if ((state_ == State::plain || state_ == State::tls) && !read_eof_) {
		ssize_t n = read_some(eof);
		if (n < 0)
			return;
		got = static_cast<size_t>(n);
	}
	update();
	if (got > 0 || eof)
		owner_.io_input();
}

void Io::update()
{
	if (state_ == State::dead)
		return;
	int want = read_want_ | write_want_;
	bool r = want & WANT_READ, w = want & WANT_WRITE;
	if (r != read_armed_) {
		r ? event_add(rev_.get(), nullptr) : event_del(rev_.get());
		read_armed_ = r;
	}
	if (w != write_armed_) {
		w ? event_add(wev_.get(), nullptr) : event_del(wev_.get());
		write_armed_ = w;
	}
}

bool Io::handshake()
{
	int r = tls_handshake(conn_.get());
	if (r == TLS_WANT_POLLIN || r == TLS_WANT_POLLOUT) {
		read_want_ = r == TLS_WANT_POLLIN ? WANT_READ : WANT_WRITE;
		update();
		return false;
	}
	if (r == -1) {
		const char *e = tls_error(conn_.get());
		die(std::string("TLS handshake failed: ") + (e ? e : "unknown error"));
		return false;
	}
	state_ = State::tls;
	read_want_ = WANT_READ;
	owner_.io_tls_ready();
	return state_ != State::dead;
}

bool Io::write_some()
{
	if (conn_ && state_ != State::handshake) {
		while (!out_.empty()) {
			ssize_t n = tls_write(conn_.get(), out_.data(), out_.size());
			if (n == TLS_WANT_POLLIN || n == TLS_WANT_POLLOUT) {
				write_want_ = n == TLS_WANT_POLLIN ? WANT_READ : WANT_WRITE;
				return true;
			}
			if (n < 0) {
				const char *e = tls_error(conn_.get());
				die(std::string("TLS write failed: ") + (e ? e : "unknown error"));
				return false;
			}
			out_.erase(0, static_cast<size_t>(n));
		}
		write_want_ = WANT_NONE;
		return true;
	}
	ssize_t n;
	do
		n = send(fd_.get(), out_.data(), out_.size(), MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	if (n == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			write_want_ = WANT_WRITE;
			return true;
		}
		die(std::string("write failed: ") + strerror(errno));
		return false;
	}
	out_.erase(0, static_cast<size_t>(n));
	write_want_ = out_.empty() ? WANT_NONE : WANT_WRITE;
	return true;
}

ssize_t Io::read_some(bool &eof)
{
	size_t total = 0;
	char buf[READ_CHUNK];
	while (input().size() < INPUT_LIMIT) {
		ssize_t n;
		if (state_ == State::tls) {
			n = tls_read(conn_.get(), buf, sizeof(buf));
			if (n == TLS_WANT_POLLIN || n == TLS_WANT_POLLOUT) {
				read_want_ = n == TLS_WANT_POLLIN ? WANT_READ : WANT_WRITE;
				return static_cast<ssize_t>(total);
			}
			if (n < 0) {
				const char *e = tls_error(conn_.get());
				die(std::string("TLS read failed: ") + (e ? e : "unknown error"));
				return -1;
			}
		} else {
			n = recv(fd_.get(), buf, sizeof(buf), 0);
			if (n == -1 && errno == EINTR)
				continue;
			if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				read_want_ = WANT_READ;
				return static_cast<ssize_t>(total);
			}
			if (n == -1) {
				die(std::string("read failed: ") + strerror(errno));
				return -1;
			}
		}
		if (n == 0) {
			eof = read_eof_ = true;
			read_want_ = WANT_NONE;
			return static_cast<ssize_t>(total);
		}
		in_.append(buf, static_cast<size_t>(n));
		total += static_cast<size_t>(n);
	}
	read_want_ = WANT_NONE; /* full: the owner resumes us by consuming */
	return static_cast<ssize_t>(total);
}

void Io::consume(size_t n)
{
	bool was_full = input().size() >= INPUT_LIMIT;
	in_off_ += std::min(n, in_.size() - in_off_);
	if (in_off_ == in_.size()) {
		in_.clear();
		in_off_ = 0;
	} else if (in_off_ > 4096 && in_off_ * 2 > in_.size()) {
		in_.erase(0, in_off_);
		in_off_ = 0;
	}
	if (was_full && input().size() < INPUT_LIMIT && state_ != State::dead)
		event_active(rev_.get(), EV_READ, 0); /* TLS may hold decrypted bytes: try now */
}

void Io::flush()
{
	if (state_ == State::dead)
		return;
	if (state_ != State::handshake && !out_.empty() && !write_some())
		return;
	if (out_.empty()) {
		if (state_ == State::tls_pending)
			begin_handshake();
		else if (state_ == State::closing) {
			die(close_reason_);
			return;
		}
	}
	update();
}

void Io::begin_handshake()
{
	struct tls *c = nullptr;
	if (tls_accept_socket(tls_server_, &c, fd_.get()) == -1) {
		const char *e = tls_error(tls_server_);
		die(std::string("TLS accept failed: ") + (e ? e : "unknown error"));
		return;
	}
	conn_.reset(c);
	state_ = State::handshake;
	read_want_ = WANT_READ;
	write_want_ = WANT_NONE;
	update();
}

void Io::start_tls(struct tls *server)
{
	tls_server_ = server;
	in_.clear();
	in_off_ = 0;
	begin_handshake();
}

void Io::starttls_after_flush(struct tls *server)
{
	tls_server_ = server;
	in_.clear();
	in_off_ = 0;
	state_ = State::tls_pending;
	read_want_ = WANT_NONE;
	flush();
}

void Io::close_after_flush(std::string_view why)
{
	if (state_ == State::dead || state_ == State::closing)
		return;
	if (state_ == State::handshake || state_ == State::tls_pending)
		out_.clear(); /* nothing may be said in plaintext on a TLS connection */
	close_reason_.assign(why);
	state_ = State::closing;
	read_want_ = WANT_NONE;
	flush();
}

void Io::abort(std::string_view why) { die(why); }

void Io::die(std::string_view why)
{
	if (state_ == State::dead)
		return;
	state_ = State::dead;
	close_reason_.assign(why);
	event_del(rev_.get());
	event_del(wev_.get());
	read_armed_ = write_armed_ = false;
	if (conn_)
		tls_close(conn_.get()); /* one attempt at close_notify; never waits */
	fd_.reset();
	event_active(closed_ev_.get(), 0, 0);
}

} // namespace posthorn
