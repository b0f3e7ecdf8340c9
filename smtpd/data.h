/*
 * The DATA phase reader: takes bytes as they arrive, splits lines, undoes
 * dot-stuffing, enforces the line and message size limits, and finds the
 * end of data. Only <CRLF>.<CRLF> ends the data: a "." line ended by a bare
 * LF, or following a line ended by a bare LF, is content (no SMTP smuggling
 * through a different idea of the terminator). Bare LFs in content become
 * CRLF. Past a limit the rest is drained and discarded.
 */
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace posthorn {

class DataReader {
public:
	enum class Error { none, too_big, line_too_long };

	DataReader(size_t max_size, size_t max_line);

	/* Consumes complete lines (and over-long partial ones); returns bytes consumed. */
	size_t feed(std::string_view in);
	bool done() const { return done_; }
	Error error() const { return error_; }
	size_t size() const { return size_; } /* bytes of content seen, including discarded */
	std::string take() { return std::move(msg_); }

private:
	void line(std::string_view l);
	void fail(Error e);

	size_t max_size_, max_line_;
	std::string msg_;
	size_t size_ = 0;
	size_t partial_ = 0;      /* bytes of an over-long line already discarded */
	bool prev_crlf_ = true;   /* the previous line ended with CRLF (or none yet) */
	bool done_ = false;
	Error error_ = Error::none;
};

} // namespace posthorn
