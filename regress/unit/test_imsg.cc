/* imsg: framing, fd passing, back-pressure, the payload codec and the libevent channel. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
/* cmocka 1.1 has no extern "C" of its own. */
extern "C" {
#include <cmocka.h>
}

#include <sys/mman.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include <functional>
#include <string>
#include <vector>

#include "common/imsg.h"

using namespace posthorn;

namespace {

struct Pair {
	int a = -1, b = -1;
	Pair()
	{
		int sv[2];
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
		a = sv[0];
		b = sv[1];
	}
	~Pair()
	{
		if (a != -1)
			close(a);
		if (b != -1)
			close(b);
	}
};

void set_nonblock(int fd)
{
	assert_int_not_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), -1);
}

std::vector<uint8_t> bytes_of(std::string_view s)
{
	return std::vector<uint8_t>(s.begin(), s.end());
}

std::string str_of(const Imsg &m)
{
	return std::string(m.data.begin(), m.data.end());
}

/* A memfd holding `s`, to pass and read back through the received copy. */
Fd memfd_with(std::string_view s)
{
	int fd = memfd_create("test_imsg", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, s.data(), s.size()), (ssize_t)s.size());
	return Fd(fd);
}

std::string fd_contents(int fd)
{
	char buf[256];
	ssize_t n = pread(fd, buf, sizeof(buf), 0);
	assert_true(n >= 0);
	return std::string(buf, static_cast<size_t>(n));
}

bool fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1;
}

/* Read (polling up to a second per step) until `want` messages are parsed. */
void recv_msgs(ImsgBuffer &ib, size_t want, std::vector<Imsg> &out)
{
	while (out.size() < want) {
		Imsg m;
		ImsgGet r = ib.get(m);
		assert_int_not_equal(r, ImsgGet::error);
		if (r == ImsgGet::ok) {
			out.push_back(std::move(m));
			continue;
		}
		struct pollfd pfd = {ib.fd(), POLLIN, 0};
		assert_int_equal(poll(&pfd, 1, 1000), 1);
		assert_true(ib.read() > 0);
	}
}

void write_all(int fd, const void *p, size_t n)
{
	assert_int_equal(write(fd, p, n), (ssize_t)n);
}

void write_hdr(int fd, uint32_t type, uint16_t len, uint16_t flags = 0)
{
	ImsgHeader h;
	h.type = type;
	h.len = len;
	h.flags = flags;
	write_all(fd, &h, sizeof(h));
}

} // namespace

/*
 * ImsgBuffer
 */

static void test_several_in_one_read(void **)
{
	Pair p;
	ImsgBuffer out(p.a), in(p.b);

	auto one = bytes_of("one"), three = bytes_of("three");
	assert_true(out.compose(1, one));
	assert_true(out.compose(2));
	assert_true(out.compose(3, 77, 1234, Fd(), three));
	assert_int_equal(out.queued_bytes(), 3 * IMSG_HEADER_SIZE + 3 + 5);
	assert_int_equal(out.flush(), 1);
	assert_false(out.pending());
	assert_int_equal(out.queued_bytes(), 0);

	assert_int_equal(in.read(), 3 * IMSG_HEADER_SIZE + 3 + 5);
	Imsg m;
	assert_int_equal(in.get(m), ImsgGet::ok);
	assert_int_equal(m.type(), 1);
	assert_int_equal(m.hdr.len, IMSG_HEADER_SIZE + 3);
	assert_int_equal(m.hdr.flags, 0);
	assert_string_equal(str_of(m).c_str(), "one");
	assert_false(m.fd.valid());
	assert_int_equal(in.get(m), ImsgGet::ok);
	assert_int_equal(m.type(), 2);
	assert_int_equal(m.data.size(), 0);
	assert_int_equal(in.get(m), ImsgGet::ok);
	assert_int_equal(m.type(), 3);
	assert_int_equal(m.hdr.peerid, 77);
	assert_int_equal(m.hdr.pid, 1234);
	assert_string_equal(str_of(m).c_str(), "three");
	assert_int_equal(in.get(m), ImsgGet::more);
	assert_int_equal(in.buffered(), 0);
}

static void test_split_across_reads(void **)
{
	Pair p;
	ImsgBuffer in(p.b);
	const char payload[] = "split payload";
	ImsgHeader h;
	h.type = 9;
	h.len = IMSG_HEADER_SIZE + sizeof(payload);
	uint8_t frame[IMSG_HEADER_SIZE + sizeof(payload)];
	memcpy(frame, &h, sizeof(h));
	memcpy(frame + IMSG_HEADER_SIZE, payload, sizeof(payload));

	/* First a partial header, then the header and part of the payload, then the rest. */
	Imsg m;
	write_all(p.a, frame, 7);
	assert_int_equal(in.read(), 7);
	assert_int_equal(in.get(m), ImsgGet::more);
	write_all(p.a, frame + 7, 20);
	assert_int_equal(in.read(), 20);
	assert_int_equal(in.get(m), ImsgGet::more);
	assert_int_equal(in.buffered(), 27);
	write_all(p.a, frame + 27, sizeof(frame) - 27);
	assert_int_equal(in.read(), (ssize_t)(sizeof(frame) - 27));
	assert_int_equal(in.get(m), ImsgGet::ok);
	assert_int_equal(m.type(), 9);
	assert_memory_equal(m.data.data(), payload, sizeof(payload));
	assert_int_equal(in.buffered(), 0);
}

static void test_fd_passing(void **)
{
	Pair p;
	ImsgBuffer out(p.a), in(p.b);

	Fd mfd = memfd_with("through the fd");
	int sent = mfd.get();
	auto hello = bytes_of("hello");
	assert_true(out.compose(5, 0, 0, std::move(mfd), hello));
	assert_int_equal(out.flush(), 1);
	/* Our copy is closed once the kernel holds it for the peer. */
	assert_false(fd_is_open(sent));

	std::vector<Imsg> got;
	recv_msgs(in, 1, got);
	assert_int_equal(got[0].type(), 5);
	assert_int_equal(got[0].hdr.flags, IMSGF_HASFD);
	assert_string_equal(str_of(got[0]).c_str(), "hello");
	assert_true(got[0].fd.valid());
	assert_string_equal(fd_contents(got[0].fd.get()).c_str(), "through the fd");
	assert_true(fcntl(got[0].fd.get(), F_GETFD) & FD_CLOEXEC);
}

static void test_fd_pipe(void **)
{
	Pair p;
	ImsgBuffer out(p.a), in(p.b);
	int pp[2];
	assert_int_equal(pipe(pp), 0);

	assert_true(out.compose(6, 0, 0, Fd(pp[1]), {}));
	assert_int_equal(out.flush(), 1);
	std::vector<Imsg> got;
	recv_msgs(in, 1, got);
	write_all(got[0].fd.get(), "pipe", 4);
	got[0].fd.reset();
	char buf[8];
	assert_int_equal(read(pp[0], buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "pipe", 4);
	/* Both write ends gone: EOF. */
	assert_int_equal(read(pp[0], buf, sizeof(buf)), 0);
	close(pp[0]);
}

static void test_fds_interleaved(void **)
{
	Pair p;
	ImsgBuffer out(p.a), in(p.b);
	const char *fdtext[] = {nullptr, "first", "second", nullptr, "third", nullptr, nullptr, "fourth"};
	const size_t n = sizeof(fdtext) / sizeof(fdtext[0]);

	for (uint32_t i = 0; i < n; i++) {
		Fd fd = fdtext[i] ? memfd_with(fdtext[i]) : Fd();
		auto pl = bytes_of("msg" + std::to_string(i));
		assert_true(out.compose(100 + i, 0, 0, std::move(fd), pl));
	}
	assert_int_equal(out.flush(), 1);

	std::vector<Imsg> got;
	recv_msgs(in, n, got);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(got[i].type(), 100 + i);
		assert_string_equal(str_of(got[i]).c_str(), ("msg" + std::to_string(i)).c_str());
		if (fdtext[i]) {
			assert_true(got[i].fd.valid());
			assert_string_equal(fd_contents(got[i].fd.get()).c_str(), fdtext[i]);
		} else
			assert_false(got[i].fd.valid());
	}
}

/* A full socket: flush leaves the rest queued, partial frames resume, fds still match. */
static void test_partial_writes(void **)
{
	Pair p;
	int sz = 4096;
	assert_int_equal(setsockopt(p.a, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)), 0);
	set_nonblock(p.a);
	set_nonblock(p.b);
	ImsgBuffer out(p.a), in(p.b);
	const size_t n = 24;

	for (size_t i = 0; i < n; i++) {
		std::vector<uint8_t> pl(IMSG_MAX_PAYLOAD - i, static_cast<uint8_t>(i));
		Fd fd = i % 5 == 3 ? memfd_with("fd" + std::to_string(i)) : Fd();
		assert_true(out.compose(static_cast<uint32_t>(i), 0, 0, std::move(fd), pl));
	}
	assert_int_equal(out.flush(), 1);
	assert_true(out.pending());

	std::vector<Imsg> got;
	for (int rounds = 0; got.size() < n && rounds < 10000; rounds++) {
		assert_int_equal(out.flush(), 1);
		ssize_t r = in.read();
		assert_true(r > 0 || (r == -1 && errno == EAGAIN));
		Imsg m;
		ImsgGet g;
		while ((g = in.get(m)) == ImsgGet::ok)
			got.push_back(std::move(m));
		assert_int_equal(g, ImsgGet::more);
	}
	assert_int_equal(got.size(), n);
	assert_false(out.pending());
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(got[i].type(), i);
		assert_int_equal(got[i].data.size(), IMSG_MAX_PAYLOAD - i);
		assert_int_equal(got[i].data.front(), i);
		assert_int_equal(got[i].data.back(), i);
		if (i % 5 == 3)
			assert_string_equal(fd_contents(got[i].fd.get()).c_str(),
			    ("fd" + std::to_string(i)).c_str());
		else
			assert_false(got[i].fd.valid());
	}
}

static void test_oversize_compose(void **)
{
	Pair p;
	ImsgBuffer out(p.a);
	std::vector<uint8_t> big(IMSG_MAX_PAYLOAD + 1, 'x');
	int pp[2];
	assert_int_equal(pipe(pp), 0);

	/* Refused, and the fd handed over is closed: the pipe reads EOF. */
	assert_false(out.compose(1, 0, 0, Fd(pp[1]), big));
	assert_int_equal(out.queued_bytes(), 0);
	assert_false(out.pending());
	char c;
	assert_int_equal(read(pp[0], &c, 1), 0);
	close(pp[0]);

	big.pop_back();
	assert_true(out.compose(1, big));
	assert_int_equal(out.queued_bytes(), IMSG_HEADER_SIZE + IMSG_MAX_PAYLOAD);
}

static void test_oversize_receive(void **)
{
	Pair p;
	ImsgBuffer in(p.b);
	write_hdr(p.a, 1, IMSG_HEADER_SIZE + IMSG_MAX_PAYLOAD + 1);
	assert_int_equal(in.read(), (ssize_t)IMSG_HEADER_SIZE);
	Imsg m;
	/* Rejected on the header alone, before any payload arrives. */
	assert_int_equal(in.get(m), ImsgGet::error);
}

static void test_short_len(void **)
{
	Pair p;
	ImsgBuffer in(p.b);
	write_hdr(p.a, 1, IMSG_HEADER_SIZE - 1);
	write_all(p.a, "xxxxxxxx", 8);
	assert_true(in.read() > 0);
	Imsg m;
	assert_int_equal(in.get(m), ImsgGet::error);
}

static void test_hasfd_without_fd(void **)
{
	Pair p;
	ImsgBuffer in(p.b);
	write_hdr(p.a, 1, IMSG_HEADER_SIZE, IMSGF_HASFD);
	assert_int_equal(in.read(), (ssize_t)IMSG_HEADER_SIZE);
	Imsg m;
	assert_int_equal(in.get(m), ImsgGet::error);
}

namespace {

size_t open_fds()
{
	size_t n = 0;
	for (int fd = 0; fd < 1024; fd++)
		n += fd_is_open(fd);
	return n;
}

/* One frame carrying nfds descriptors in one SCM_RIGHTS message. */
void send_many_fds(int sock, int fd, int nfds)
{
	ImsgHeader h;
	h.type = 1;
	h.len = IMSG_HEADER_SIZE;
	h.flags = IMSGF_HASFD;
	struct iovec iov = {&h, sizeof(h)};
	std::vector<int> fds(static_cast<size_t>(nfds), fd);
	std::vector<char> cbuf(CMSG_SPACE(fds.size() * sizeof(int)));
	struct msghdr mh = {};
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf.data();
	mh.msg_controllen = cbuf.size();
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
	memcpy(CMSG_DATA(c), fds.data(), fds.size() * sizeof(int));
	assert_int_equal(sendmsg(sock, &mh, 0), (ssize_t)sizeof(h));
}

} // namespace

/*
 * A flood of descriptors (truncated control data, or more unclaimed than
 * any honest peer has in flight) fails the read and leaks none of them.
 */
static void test_too_many_fds(void **)
{
	for (int nfds : {70, 200}) {
		Pair p;
		ImsgBuffer in(p.b);
		size_t before = open_fds();
		send_many_fds(p.a, p.a, nfds);
		assert_int_equal(in.read(), -1);
		assert_int_equal(errno, EMSGSIZE);
		assert_int_equal(in.buffered(), 0);
		assert_int_equal(open_fds(), before);
	}
}

static void test_peer_closed(void **)
{
	Pair p;
	ImsgBuffer in(p.b);
	write_hdr(p.a, 1, IMSG_HEADER_SIZE);
	close(p.a);
	p.a = -1;
	assert_int_equal(in.read(), (ssize_t)IMSG_HEADER_SIZE);
	assert_int_equal(in.read(), 0);
	/* What came before EOF is still there. */
	Imsg m;
	assert_int_equal(in.get(m), ImsgGet::ok);
	assert_int_equal(m.type(), 1);
}

static void test_queue_limit(void **)
{
	Pair p;
	set_nonblock(p.b);
	ImsgBuffer out(p.a, 100), in(p.b);
	std::vector<uint8_t> pl(40, 'q');

	assert_true(out.compose(1, pl));
	assert_int_equal(out.queued_bytes(), 56);
	/* 112 > 100: refused whole, nothing of it queued. */
	assert_false(out.compose(2, pl));
	assert_int_equal(out.queued_bytes(), 56);
	/* A smaller one still fits. */
	assert_true(out.compose(3, std::span<const uint8_t>(pl.data(), 28)));
	assert_int_equal(out.queued_bytes(), 100);
	assert_false(out.compose(4));

	assert_int_equal(out.flush(), 1);
	assert_int_equal(out.queued_bytes(), 0);
	std::vector<Imsg> got;
	recv_msgs(in, 2, got);
	assert_int_equal(got[0].type(), 1);
	assert_int_equal(got[1].type(), 3);
	assert_int_equal(got[1].data.size(), 28);
	assert_int_equal(in.buffered(), 0);
	assert_int_equal(in.read(), -1);
	assert_int_equal(errno, EAGAIN);

	/* Drained: room again. */
	assert_true(out.compose(5, pl));
}

/*
 * ImsgWriter / ImsgReader
 */

static void test_codec_round_trip(void **)
{
	ImsgWriter w;
	w.u8(0xab).u32(0xdeadbeef).u64(0x0123456789abcdefULL).i64(-42).str("hello").str("");
	w.str(std::string(3, '\0'));

	ImsgReader r(w.data(), 7);
	assert_int_equal(r.u8(), 0xab);
	assert_int_equal(r.u32(), 0xdeadbeef);
	assert_true(r.u64() == 0x0123456789abcdefULL);
	assert_true(r.i64() == -42);
	assert_string_equal(r.str().c_str(), "hello");
	assert_true(r.str().empty());
	assert_int_equal(r.str().size(), 3);
	assert_true(r.end());
	assert_true(r.ok());

	/* Through the wire, read from an Imsg. */
	Pair p;
	ImsgBuffer out(p.a), in(p.b);
	assert_true(out.compose(8, w));
	assert_int_equal(out.flush(), 1);
	std::vector<Imsg> got;
	recv_msgs(in, 1, got);
	ImsgReader r2(got[0]);
	assert_int_equal(r2.u8(), 0xab);
	assert_int_equal(r2.u32(), 0xdeadbeef);
}

static void test_lenient_reader(void **)
{
	ImsgWriter w;
	w.u8(1).u8(2);

	/* Short: zero, not ok, and stays failed. */
	ImsgReader r(w.data(), 1, false);
	assert_int_equal(r.u32(), 0);
	assert_false(r.ok());
	assert_int_equal(r.u8(), 0);
	assert_false(r.end());

	/* String longer than max. */
	ImsgWriter w2;
	w2.str("abcdef");
	ImsgReader r2(w2.data(), 1, false);
	assert_true(r2.str(5).empty());
	assert_false(r2.ok());

	/* String length beyond the payload. */
	ImsgWriter w3;
	w3.u32(100).u8('a');
	ImsgReader r3(w3.data(), 1, false);
	assert_true(r3.str().empty());
	assert_false(r3.ok());

	/* Trailing bytes. */
	ImsgWriter w4;
	w4.u32(1).u8(0);
	ImsgReader r4(w4.data(), 1, false);
	assert_int_equal(r4.u32(), 1);
	assert_true(r4.ok());
	assert_false(r4.end());
	assert_false(r4.ok());
}

/*
 * ImsgChannel
 */

namespace {

/* Run the loop in short slices until done() or about two seconds pass. */
void run_until(event_base *base, const std::function<bool()> &done)
{
	for (int i = 0; i < 200 && !done(); i++) {
		struct timeval tv = {0, 10000};
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
}

void run_briefly(event_base *base)
{
	struct timeval tv = {0, 50000};
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

struct Loop {
	event_base *base = event_base_new();
	Loop() { assert_non_null(base); }
	~Loop() { event_base_free(base); }
};

} // namespace

static void test_channel_dispatch(void **)
{
	Loop loop;
	Pair p;
	std::vector<std::string> seen;
	int closes = 0;
	ImsgChannel ch(loop.base, Fd(p.a),
	    [&](ImsgChannel &c, Imsg &m) {
		    seen.push_back(std::to_string(m.type()) + ":" + str_of(m));
		    if (m.type() == 3) {
			    auto pl = bytes_of("reply");
			    assert_true(c.compose(30, pl, memfd_with("chan fd")));
		    }
	    },
	    [&](ImsgChannel &) { closes++; });
	p.a = -1;
	ch.name = "test peer";

	ImsgBuffer peer(p.b);
	auto a = bytes_of("a"), b = bytes_of("b");
	assert_true(peer.compose(1, a));
	assert_true(peer.compose(2, b));
	assert_true(peer.compose(3));
	assert_int_equal(peer.flush(), 1);

	run_until(loop.base, [&] { return seen.size() == 3 && ch.queued_bytes() == 0; });
	assert_int_equal(seen.size(), 3);
	assert_string_equal(seen[0].c_str(), "1:a");
	assert_string_equal(seen[1].c_str(), "2:b");
	assert_string_equal(seen[2].c_str(), "3:");
	assert_int_equal(ch.queued_bytes(), 0);

	std::vector<Imsg> got;
	recv_msgs(peer, 1, got);
	assert_int_equal(got[0].type(), 30);
	assert_string_equal(str_of(got[0]).c_str(), "reply");
	assert_string_equal(fd_contents(got[0].fd.get()).c_str(), "chan fd");

	/* Peer goes away: on_close once, no more dispatch. */
	close(p.b);
	p.b = -1;
	run_until(loop.base, [&] { return closes > 0; });
	run_briefly(loop.base);
	assert_int_equal(closes, 1);
	assert_false(ch.compose(4));
}

static void test_channel_delete_in_handler(void **)
{
	Loop loop;
	Pair p;
	int dispatched = 0, closes = 0;
	ImsgChannel *ch = new ImsgChannel(
	    loop.base, Fd(p.a),
	    [&](ImsgChannel &c, Imsg &) {
		    dispatched++;
		    delete &c;
	    },
	    [&](ImsgChannel &) { closes++; });
	p.a = -1;

	/* Three frames in one read; the handler kills the channel at the first. */
	ImsgBuffer peer(p.b);
	assert_true(peer.compose(1));
	assert_true(peer.compose(2));
	assert_true(peer.compose(3));
	assert_int_equal(peer.flush(), 1);
	run_until(loop.base, [&] { return dispatched > 0; });
	run_briefly(loop.base);
	assert_int_equal(dispatched, 1);
	assert_int_equal(closes, 0);
	(void)ch;

	/* Its fd was closed with it. */
	char c;
	assert_int_equal(read(p.b, &c, 1), 0);
}

/* A control client sending garbage closes only that client, which may be deleted in on_close. */
static void test_channel_untrusted_garbage(void **)
{
	Loop loop;
	Pair p;
	int dispatched = 0, closes = 0;
	ImsgChannel *ch = new ImsgChannel(
	    loop.base, Fd(p.a), [&](ImsgChannel &, Imsg &) { dispatched++; },
	    [&](ImsgChannel &c) {
		    closes++;
		    delete &c;
	    });
	p.a = -1;
	ch->trusted = false;
	ch->name = "control client 7";

	ImsgBuffer peer(p.b);
	assert_true(peer.compose(1));
	assert_int_equal(peer.flush(), 1);
	write_hdr(p.b, 2, 3);
	run_until(loop.base, [&] { return closes > 0; });
	run_briefly(loop.base);
	assert_int_equal(dispatched, 1);
	assert_int_equal(closes, 1);
}

static void test_channel_delete_in_close(void **)
{
	Loop loop;
	Pair p;
	int closes = 0;
	new ImsgChannel(
	    loop.base, Fd(p.a), [](ImsgChannel &, Imsg &) {},
	    [&](ImsgChannel &c) {
		    closes++;
		    delete &c;
	    });
	p.a = -1;
	close(p.b);
	p.b = -1;
	run_until(loop.base, [&] { return closes > 0; });
	run_briefly(loop.base);
	assert_int_equal(closes, 1);
}

static void test_channel_pause_resume(void **)
{
	Loop loop;
	Pair p;
	int dispatched = 0;
	ImsgChannel ch(loop.base, Fd(p.a),
	    [&](ImsgChannel &c, Imsg &) {
		    /* Pausing inside the handler stops the rest of this read. */
		    if (++dispatched == 1)
			    c.pause_reading();
	    },
	    [](ImsgChannel &) {});
	p.a = -1;

	ImsgBuffer peer(p.b);
	assert_true(peer.compose(1));
	assert_true(peer.compose(2));
	assert_true(peer.compose(3));
	assert_int_equal(peer.flush(), 1);
	run_until(loop.base, [&] { return dispatched > 0; });
	run_briefly(loop.base);
	assert_int_equal(dispatched, 1);

	/* The buffered frames are delivered without new input. */
	ch.resume_reading();
	run_until(loop.base, [&] { return dispatched == 3; });
	assert_int_equal(dispatched, 3);
}

static void test_channel_flush_blocking(void **)
{
	Loop loop;
	Pair p;
	ImsgChannel ch(loop.base, Fd(p.a), [](ImsgChannel &, Imsg &) {}, [](ImsgChannel &) {});
	p.a = -1;
	auto pl = bytes_of("bye");
	assert_true(ch.compose(42, pl));
	ch.flush_blocking(1000);
	assert_int_equal(ch.queued_bytes(), 0);

	/* Sent without running the loop. */
	ImsgBuffer peer(p.b);
	std::vector<Imsg> got;
	recv_msgs(peer, 1, got);
	assert_int_equal(got[0].type(), 42);
	assert_string_equal(str_of(got[0]).c_str(), "bye");
}

static void test_channel_queue_limit(void **)
{
	Loop loop;
	Pair p;
	ImsgChannel ch(loop.base, Fd(p.a), [](ImsgChannel &, Imsg &) {}, [](ImsgChannel &) {},
	    100);
	p.a = -1;
	std::vector<uint8_t> pl(60, 'z');
	assert_true(ch.compose(1, pl));
	assert_false(ch.compose(2, pl));
	run_until(loop.base, [&] { return ch.queued_bytes() == 0; });
	assert_true(ch.compose(3, pl));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_several_in_one_read),
		cmocka_unit_test(test_split_across_reads),
		cmocka_unit_test(test_fd_passing),
		cmocka_unit_test(test_fd_pipe),
		cmocka_unit_test(test_fds_interleaved),
		cmocka_unit_test(test_partial_writes),
		cmocka_unit_test(test_oversize_compose),
		cmocka_unit_test(test_oversize_receive),
		cmocka_unit_test(test_short_len),
		cmocka_unit_test(test_hasfd_without_fd),
		cmocka_unit_test(test_too_many_fds),
		cmocka_unit_test(test_peer_closed),
		cmocka_unit_test(test_queue_limit),
		cmocka_unit_test(test_codec_round_trip),
		cmocka_unit_test(test_lenient_reader),
		cmocka_unit_test(test_channel_dispatch),
		cmocka_unit_test(test_channel_delete_in_handler),
		cmocka_unit_test(test_channel_untrusted_garbage),
		cmocka_unit_test(test_channel_delete_in_close),
		cmocka_unit_test(test_channel_pause_resume),
		cmocka_unit_test(test_channel_flush_blocking),
		cmocka_unit_test(test_channel_queue_limit),
	};
	return cmocka_run_group_tests(tests, nullptr, nullptr);
}
