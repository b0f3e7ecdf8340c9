#include "data.h"

namespace posthorn {

DataReader::DataReader(size_t max_size, size_t max_line) : max_size_(max_size), max_line_(max_line) {}

void DataReader::fail(Error e)
{
	if (error_ == Error::none)
		error_ = e;
	msg_.clear();
	msg_.shrink_to_fit();
}

void DataReader::line(std::string_view l)
{
	if (l.size() > 0 && l.front() == '.')
		l.remove_prefix(1);
	size_ += l.size() + 2;
	if (size_ > max_size_)
		fail(Error::too_big);
	if (error_ != Error::none)
		return;
	msg_.append(l);
	msg_.append("\r\n");
}

size_t DataReader::feed(std::string_view in)
{
	size_t used = 0;
	while (!done_ && used < in.size()) {
		std::string_view rest = in.substr(used);
		size_t lf = rest.find('\n');
		if (lf == std::string_view::npos) {
			if (partial_ + rest.size() <= max_line_)
				break; /* wait for the rest of the line */
			/* Over-long: discard what we have, remember we are mid-line. */
			partial_ += rest.size();
			size_ += rest.size();
			fail(Error::line_too_long);
			used += rest.size();
			break;
		}
		size_t len = partial_ + lf + 1;
		bool crlf = lf > 0 && rest[lf - 1] == '\r';
		std::string_view text = rest.substr(0, crlf ? lf - 1 : lf);
		used += lf + 1;
		if (partial_ > 0) {
			/* The tail of an over-long line: already counted as an error. */
			size_ += lf + 1;
			partial_ = 0;
			prev_crlf_ = crlf;
			continue;
		}
		if (crlf && prev_crlf_ && text == ".") {
			done_ = true;
			break;
		}
		if (len > max_line_)
			fail(Error::line_too_long);
		line(text);
		prev_crlf_ = crlf;
	}
	return used;
}

} // namespace posthorn
