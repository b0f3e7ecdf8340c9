/*
 * imsg: framing, fd passing and the libevent channel. See imsg.h for the
 * wire format.
 */
#include "imsg.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <time.h>

#include <algorithm>

#include <event2/event.h>

#include "log.h"

namespace posthorn {

namespace {

/* Bytes asked of one recvmsg(). */
constexpr size_t READ_CHUNK = 64 * 1024;
/* Frames gathered into one sendmsg(). */
constexpr size_t MAX_IOV = 64;
/*
 * Control space of one recvmsg(): 16 single-fd messages, more than an honest
 * peer sends per read. What does not fit is MSG_CTRUNC, a broken stream.
 */
constexpr size_t CMSG_FDS = 16;
/*
 * Received but unclaimed descriptors. An honest peer has at most a few in
 * flight; a hostile one attaching fds to fd-less frames must not fill our
 * descriptor table.
 */
constexpr size_t MAX_PENDING_FDS = 64;

int64_t now_ms()
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

} // namespace

/*
 * ImsgBuffer
 */

ImsgBuffer::ImsgBuffer(int fd, size_t queue_limit) : fd_(fd), queue_limit_(queue_limit) {}

bool ImsgBuffer::compose(uint32_t type, uint32_t peerid, uint32_t pid, Fd fd,
    std::span<const uint8_t> payload)
{
	if (payload.size() > IMSG_MAX_PAYLOAD)
		return false;
	size_t len = IMSG_HEADER_SIZE + payload.size();
	if (queued_ + len > queue_limit_)
		return false;

	ImsgHeader hdr;
	hdr.type = type;
	hdr.len = static_cast<uint16_t>(len);
	hdr.flags = fd.valid() ? IMSGF_HASFD : 0;
	hdr.peerid = peerid;
	hdr.pid = pid;

	OutMsg m;
	m.bytes.resize(len);
	memcpy(m.bytes.data(), &hdr, sizeof(hdr));
	if (!payload.empty())
		memcpy(m.bytes.data() + IMSG_HEADER_SIZE, payload.data(), payload.size());
	m.fd = std::move(fd);
	out_.push_back(std::move(m));
	queued_ += len;
	return true;
}

/*
 * One sendmsg(): from the head frame on, fd-less frames coalesced. A frame
 * with a descriptor starts a call of its own, so SCM_RIGHTS rides on its
 * first byte and never on the tail of the frame before it.
 */
ssize_t ImsgBuffer::send_some()
{
	struct iovec iov[MAX_IOV];
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int))];
	} cmsgbuf;
	struct msghdr mh = {};
	size_t niov = 0;

	OutMsg &head = out_.front();
	bool sendfd = head.fd.valid() && head.off == 0;
	for (auto &m : out_) {
		if (niov == MAX_IOV || (niov > 0 && m.fd.valid()))
			break;
		iov[niov].iov_base = m.bytes.data() + m.off;
		iov[niov].iov_len = m.bytes.size() - m.off;
		niov++;
	}
	mh.msg_iov = iov;
	mh.msg_iovlen = niov;
	if (sendfd) {
		memset(&cmsgbuf, 0, sizeof(cmsgbuf));
		mh.msg_control = cmsgbuf.buf;
		mh.msg_controllen = sizeof(cmsgbuf.buf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		int fd = head.fd.get();
		memcpy(CMSG_DATA(c), &fd, sizeof(fd));
	}

	ssize_t n;
	while ((n = sendmsg(fd_, &mh, MSG_NOSIGNAL)) == -1 && errno == EINTR)
		;
	/* The peer holds its own reference now. */
	if (n > 0 && sendfd)
		head.fd.reset();
	return n;
}

int ImsgBuffer::flush()
{
	while (!out_.empty()) {
		ssize_t n = send_some();
		if (n == -1)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 1 : -1;
		size_t left = static_cast<size_t>(n);
		queued_ -= left;
		while (left > 0) {
			OutMsg &m = out_.front();
			size_t chunk = std::min(left, m.bytes.size() - m.off);
			m.off += chunk;
			left -= chunk;
			if (m.off == m.bytes.size())
				out_.pop_front();
		}
	}
	return 1;
}

/* Take ownership of every descriptor in the control data. */
static void take_fds(struct msghdr &mh, std::deque<Fd> &fds)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			fds.emplace_back(fd);
		}
	}
}

ssize_t ImsgBuffer::read()
{
	union {
		struct cmsghdr hdr;
		char buf[CMSG_FDS * CMSG_SPACE(sizeof(int))];
	} cmsgbuf;
	struct msghdr mh = {};
	struct iovec iov;

	/* Parsed frames are gone; keep only the unparsed tail. */
	if (in_off_ > 0) {
		in_.erase(in_.begin(), in_.begin() + static_cast<ptrdiff_t>(in_off_));
		in_off_ = 0;
	}
	size_t old = in_.size();
	in_.resize(old + READ_CHUNK);
	iov.iov_base = in_.data() + old;
	iov.iov_len = READ_CHUNK;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cmsgbuf.buf;
	mh.msg_controllen = sizeof(cmsgbuf.buf);

	ssize_t n;
	while ((n = recvmsg(fd_, &mh, MSG_CMSG_CLOEXEC)) == -1 && errno == EINTR)
		;
	in_.resize(old + (n > 0 ? static_cast<size_t>(n) : 0));
	if (n == -1)
		return -1;

	std::deque<Fd> got;
	take_fds(mh, got);
	/* Descriptors were lost: the fd queue no longer matches the frames. */
	if (mh.msg_flags & MSG_CTRUNC || in_fds_.size() + got.size() > MAX_PENDING_FDS) {
		in_.resize(old);
		errno = EMSGSIZE;
		return -1;
	}
	for (auto &fd : got)
		in_fds_.push_back(std::move(fd));
	return n;
}

ImsgGet ImsgBuffer::get(Imsg &out)
{
	size_t avail = buffered();
	if (avail < IMSG_HEADER_SIZE)
		return ImsgGet::more;

	ImsgHeader hdr;
	const uint8_t *p = in_.data() + in_off_;
	memcpy(&hdr, p, sizeof(hdr));
	if (hdr.len < IMSG_HEADER_SIZE || hdr.len > IMSG_HEADER_SIZE + IMSG_MAX_PAYLOAD)
		return ImsgGet::error;
	if (avail < hdr.len)
		return ImsgGet::more;

	Fd fd;
	if (hdr.flags & IMSGF_HASFD) {
		/* The descriptor travels with the frame's first byte: it must be here. */
		if (in_fds_.empty())
			return ImsgGet::error;
		fd = std::move(in_fds_.front());
		in_fds_.pop_front();
	}
	out.hdr = hdr;
	out.data.assign(p + IMSG_HEADER_SIZE, p + hdr.len);
	out.fd = std::move(fd);
	in_off_ += hdr.len;
	return ImsgGet::ok;
}

/*
 * ImsgChannel
 */

ImsgChannel::ImsgChannel(event_base *base, Fd fd, Handler on_msg, CloseHandler on_close,
    size_t queue_limit)
    : fd_(std::move(fd)), buf_(fd_.get(), queue_limit), on_msg_(std::move(on_msg)),
      on_close_(std::move(on_close))
{
	int flags = fcntl(fd_.get(), F_GETFL);
	if (flags == -1 || fcntl(fd_.get(), F_SETFL, flags | O_NONBLOCK) == -1)
		fatal("imsg: fcntl O_NONBLOCK");
	rev_ = event_new(base, fd_.get(), EV_READ | EV_PERSIST, on_read, this);
	wev_ = event_new(base, fd_.get(), EV_WRITE | EV_PERSIST, on_write, this);
	if (!rev_ || !wev_)
		fatalx("imsg: event_new");
	event_add(rev_, nullptr);
}

ImsgChannel::~ImsgChannel()
{
	/* Tell a handle_read() further up the stack that we are gone. */
	if (destroyed_flag_)
		*destroyed_flag_ = true;
	event_free(rev_);
	event_free(wev_);
}

bool ImsgChannel::compose(uint32_t type, std::span<const uint8_t> payload, Fd fd,
    uint32_t peerid)
{
	if (dead_)
		return false;
	if (!buf_.compose(type, peerid, 0, std::move(fd), payload))
		return false;
	/*
	 * No immediate write: a write error would run on_close, which may
	 * destroy us under the caller's feet. The loop flushes soon enough
	 * and batches what a handler composes.
	 */
	arm_write();
	return true;
}

void ImsgChannel::pause_reading()
{
	if (!reading_)
		return;
	reading_ = false;
	event_del(rev_);
}

void ImsgChannel::resume_reading()
{
	if (reading_ || dead_)
		return;
	reading_ = true;
	event_add(rev_, nullptr);
	/* Frames may have been left buffered when reading paused. */
	if (buf_.buffered() > 0)
		event_active(rev_, EV_READ, 0);
}

void ImsgChannel::flush_blocking(int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;

	while (!dead_ && buf_.pending()) {
		/* An error is left for the write event to report. */
		if (buf_.flush() == -1) {
			log_warn("imsg: flush to %s", name.c_str());
			return;
		}
		if (!buf_.pending())
			break;
		int64_t left = deadline - now_ms();
		if (left <= 0)
			break;
		struct pollfd pfd = {fd_.get(), POLLOUT, 0};
		if (poll(&pfd, 1, static_cast<int>(left)) == -1 && errno != EINTR) {
			log_warn("imsg: poll");
			return;
		}
	}
	if (!buf_.pending() && write_armed_) {
		event_del(wev_);
		write_armed_ = false;
	}
}

void ImsgChannel::on_read(int, short, void *arg) noexcept
{
	static_cast<ImsgChannel *>(arg)->handle_read();
}

void ImsgChannel::on_write(int, short, void *arg) noexcept
{
	static_cast<ImsgChannel *>(arg)->handle_write();
}

/*
 * Read once, then hand out every complete frame. on_msg and on_close may
 * delete this channel: after either returns, `destroyed` is checked before
 * any member is touched.
 */
void ImsgChannel::handle_read()
{
	bool destroyed = false;
	ssize_t n = buf_.read();
	bool eof = n == 0 ||
	    (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
	if (n == -1 && eof)
		log_debug("imsg: read from %s: %s", name.c_str(), strerror(errno));

	destroyed_flag_ = &destroyed;
	/* Frames that arrived before EOF are still delivered. */
	while (!dead_ && reading_) {
		Imsg msg;
		ImsgGet r = buf_.get(msg);
		if (r == ImsgGet::more)
			break;
		if (r == ImsgGet::error) {
			if (trusted)
				fatalx("imsg: malformed message from %s", name.c_str());
			log_warnx("imsg: malformed message from %s", name.c_str());
			eof = true;
			break;
		}
		on_msg_(*this, msg);
		if (destroyed)
			return;
	}
	destroyed_flag_ = nullptr;
	if (eof)
		closed();
}

void ImsgChannel::handle_write()
{
	if (buf_.flush() == -1) {
		log_debug("imsg: write to %s: %s", name.c_str(), strerror(errno));
		closed();
		return;
	}
	if (!buf_.pending()) {
		event_del(wev_);
		write_armed_ = false;
	}
}

void ImsgChannel::arm_write()
{
	if (write_armed_ || dead_)
		return;
	event_add(wev_, nullptr);
	write_armed_ = true;
}

/* Stop all I/O and report once. on_close runs last: it may delete us. */
void ImsgChannel::closed()
{
	if (dead_)
		return;
	dead_ = true;
	event_del(rev_);
	event_del(wev_);
	write_armed_ = false;
	if (on_close_)
		on_close_(*this);
}

/*
 * ImsgWriter
 */

static void append(std::vector<uint8_t> &buf, const void *p, size_t n)
{
	auto *b = static_cast<const uint8_t *>(p);
	buf.insert(buf.end(), b, b + n);
}

ImsgWriter &ImsgWriter::u8(uint8_t v)
{
	buf_.push_back(v);
	return *this;
}

ImsgWriter &ImsgWriter::u32(uint32_t v)
{
	append(buf_, &v, sizeof(v));
	return *this;
}

ImsgWriter &ImsgWriter::u64(uint64_t v)
{
	append(buf_, &v, sizeof(v));
	return *this;
}

ImsgWriter &ImsgWriter::i64(int64_t v)
{
	append(buf_, &v, sizeof(v));
	return *this;
}

ImsgWriter &ImsgWriter::str(std::string_view v)
{
	u32(static_cast<uint32_t>(v.size()));
	append(buf_, v.data(), v.size());
	return *this;
}

/* Raw bytes, no length: for fixed-size fields or a trailing blob. */
ImsgWriter &ImsgWriter::bytes(std::span<const uint8_t> v)
{
	append(buf_, v.data(), v.size());
	return *this;
}

/*
 * ImsgReader
 */

ImsgReader::ImsgReader(const Imsg &msg, bool strict)
    : data_(msg.payload()), type_(msg.type()), strict_(strict)
{
}

ImsgReader::ImsgReader(std::span<const uint8_t> data, uint32_t type, bool strict)
    : data_(data), type_(type), strict_(strict)
{
}

void ImsgReader::malformed(const char *what)
{
	if (strict_)
		fatalx("imsg: malformed type %u message: %s", type_, what);
	ok_ = false;
}

/* Once failed, every later read yields zero: a lenient caller checks ok() once. */
bool ImsgReader::take(void *dst, size_t n)
{
	if (ok_ && data_.size() - off_ < n)
		malformed("short payload");
	if (!ok_) {
		memset(dst, 0, n);
		return false;
	}
	memcpy(dst, data_.data() + off_, n);
	off_ += n;
	return true;
}

uint8_t ImsgReader::u8()
{
	uint8_t v;
	take(&v, sizeof(v));
	return v;
}

uint32_t ImsgReader::u32()
{
	uint32_t v;
	take(&v, sizeof(v));
	return v;
}

uint64_t ImsgReader::u64()
{
	uint64_t v;
	take(&v, sizeof(v));
	return v;
}

int64_t ImsgReader::i64()
{
	int64_t v;
	take(&v, sizeof(v));
	return v;
}

std::string ImsgReader::str(size_t max)
{
	uint32_t len = u32();
	if (!ok_)
		return {};
	if (len > max) {
		malformed("string too long");
		return {};
	}
	if (data_.size() - off_ < len) {
		malformed("short string");
		return {};
	}
	std::string s(reinterpret_cast<const char *>(data_.data() + off_), len);
	off_ += len;
	return s;
}

bool ImsgReader::end()
{
	if (ok_ && off_ != data_.size())
		malformed("trailing bytes");
	return ok_;
}

} // namespace posthorn
