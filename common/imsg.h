/*
 * imsg: the OpenBSD wire format between posthorn's processes.
 *
 *   struct imsg_hdr { uint32 type; uint16 len; uint16 flags; uint32 peerid; uint32 pid; }
 *
 * 16-byte header in host byte order, len counts header + payload, payload at
 * most IMSG_MAX_PAYLOAD bytes. A message may carry one file descriptor (flag
 * IMSGF_HASFD); the descriptor travels with SCM_RIGHTS on the first byte of
 * its message and is queued on receipt until its message is parsed.
 *
 * ImsgBuffer is the transport without an event loop (unit-testable);
 * ImsgChannel wraps it on libevent with a bounded outgoing queue.
 * ImsgWriter/ImsgReader are the typed payload codec: a reader in strict mode
 * calls fatalx() on a short or malformed payload (peer is trusted); in lenient
 * mode it only records the failure (control clients).
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fd.h"

struct event_base;
struct event;

namespace posthorn {

inline constexpr size_t IMSG_HEADER_SIZE = 16;
inline constexpr size_t IMSG_MAX_PAYLOAD = 16384;
inline constexpr uint16_t IMSGF_HASFD = 1;
/* Default bound on bytes waiting to be written on one channel. */
inline constexpr size_t IMSG_DEFAULT_QUEUE_LIMIT = 4u << 20;

struct ImsgHeader {
	uint32_t type = 0;
	uint16_t len = 0;
	uint16_t flags = 0;
	uint32_t peerid = 0;
	uint32_t pid = 0;
};
static_assert(sizeof(ImsgHeader) == IMSG_HEADER_SIZE);

struct Imsg {
	ImsgHeader hdr;
	std::vector<uint8_t> data;
	Fd fd; /* valid when hdr.flags & IMSGF_HASFD and one was received */

	uint32_t type() const { return hdr.type; }
	std::span<const uint8_t> payload() const { return data; }
};

enum class ImsgGet { ok, more, error };

class ImsgBuffer {
public:
	explicit ImsgBuffer(int fd = -1, size_t queue_limit = IMSG_DEFAULT_QUEUE_LIMIT);
	ImsgBuffer(const ImsgBuffer &) = delete;
	ImsgBuffer &operator=(const ImsgBuffer &) = delete;

	int fd() const { return fd_; }
	void set_fd(int fd) { fd_ = fd; }

	/*
	 * Queue one message. The fd, if >= 0, is duplicated by the caller's
	 * choice: compose takes ownership of `fd`. Returns false (and closes
	 * nothing it did not own) when the payload is too large or the queue
	 * limit would be exceeded: back-pressure for the caller to handle.
	 */
	bool compose(uint32_t type, uint32_t peerid, uint32_t pid, Fd fd,
	    std::span<const uint8_t> payload);
	bool compose(uint32_t type, std::span<const uint8_t> payload = {}) {
		return compose(type, 0, 0, Fd(), payload);
	}

	/* Write as much as the socket takes: 1 all written or still pending, -1 error (errno). */
	int flush();
	bool pending() const { return !out_.empty(); }
	size_t queued_bytes() const { return queued_; }

	/* One recvmsg(): >0 bytes read, 0 peer closed, -1 error (errno; EAGAIN not an error for callers to handle). */
	ssize_t read();
	/* Take the next complete message: ok, more (need more bytes), error (malformed: oversize/short len). */
	ImsgGet get(Imsg &out);

	/* Test hooks. */
	size_t buffered() const { return in_.size() - in_off_; }

private:
	struct OutMsg {
		std::vector<uint8_t> bytes;
		Fd fd;
		size_t off = 0;
	};
	ssize_t send_some();

	int fd_;
	size_t queue_limit_;
	std::vector<uint8_t> in_;
	size_t in_off_ = 0;
	std::deque<Fd> in_fds_;
	std::deque<OutMsg> out_;
	size_t queued_ = 0;
};

/* The libevent wrapper: dispatches each message to a handler; reports EOF/errors. */
class ImsgChannel {
public:
	using Handler = std::function<void(ImsgChannel &, Imsg &)>;
	using CloseHandler = std::function<void(ImsgChannel &)>;

	ImsgChannel(event_base *base, Fd fd, Handler on_msg, CloseHandler on_close,
	    size_t queue_limit = IMSG_DEFAULT_QUEUE_LIMIT);
	~ImsgChannel();
	ImsgChannel(const ImsgChannel &) = delete;
	ImsgChannel &operator=(const ImsgChannel &) = delete;

	bool compose(uint32_t type, std::span<const uint8_t> payload = {}, Fd fd = Fd(),
	    uint32_t peerid = 0);
	bool compose(uint32_t type, const std::vector<uint8_t> &payload, Fd fd = Fd(),
	    uint32_t peerid = 0) {
		return compose(type, std::span<const uint8_t>(payload), std::move(fd), peerid);
	}
	size_t queued_bytes() const { return buf_.queued_bytes(); }
	int fd() const { return fd_.get(); }
	/* Stop reading (e.g. during shutdown); writes still drain. */
	void pause_reading();
	void resume_reading();
	/* Flush synchronously (blocking poll) up to timeout_ms; used at exit. */
	void flush_blocking(int timeout_ms);

	/* A name for log lines ("relayer", "control client 7"). */
	std::string name;
	/* true: a malformed frame is fatal (trusted peer); false: channel closes. */
	bool trusted = true;

private:
	static void on_read(int, short, void *) noexcept;
	static void on_write(int, short, void *) noexcept;
	void handle_read();
	void handle_write();
	void arm_write();
	void closed();

	Fd fd_;
	ImsgBuffer buf_;
	Handler on_msg_;
	CloseHandler on_close_;
	event *rev_ = nullptr;
	event *wev_ = nullptr;
	bool write_armed_ = false;
	bool reading_ = true;
	bool dead_ = false;
	bool *destroyed_flag_ = nullptr;
};

/* Typed payload writer: integers little-endian-agnostic (host order), strings as u32 length + bytes. */
class ImsgWriter {
public:
	ImsgWriter &u8(uint8_t v);
	ImsgWriter &u32(uint32_t v);
	ImsgWriter &u64(uint64_t v);
	ImsgWriter &i64(int64_t v);
	ImsgWriter &str(std::string_view v);
	ImsgWriter &bytes(std::span<const uint8_t> v);
	const std::vector<uint8_t> &data() const { return buf_; }
	std::vector<uint8_t> &data() { return buf_; }
	operator std::span<const uint8_t>() const { return buf_; }

private:
	std::vector<uint8_t> buf_;
};

class ImsgReader {
public:
	/* strict: malformed input is fatal (the peer is a trusted process). */
	ImsgReader(const Imsg &msg, bool strict = true);
	ImsgReader(std::span<const uint8_t> data, uint32_t type, bool strict = true);

	uint8_t u8();
	uint32_t u32();
	uint64_t u64();
	int64_t i64();
	std::string str(size_t max = IMSG_MAX_PAYLOAD);
	/* Every byte consumed; in strict mode trailing bytes are fatal. */
	bool end();
	bool ok() const { return ok_; }

private:
	bool take(void *dst, size_t n);
	void malformed(const char *what); /* not "fail": cmocka defines that macro */
	std::span<const uint8_t> data_;
	size_t off_ = 0;
	uint32_t type_;
	bool strict_;
	bool ok_ = true;
};

} // namespace posthorn
