/*
 * The DATA reader: dot-unstuffing, the <CRLF>.<CRLF> terminator and nothing
 * else (no smuggling through bare LF), line and size limits with draining,
 * byte-at-a-time feeding.
 */
#include <string>

#include "smtpd/data.h"
#include "regress/unit/unit.h"

using namespace posthorn;

namespace {

/* Feed all of `in` (optionally byte by byte); returns the bytes consumed when done. */
size_t run(DataReader &r, const std::string &in, bool bytewise = false)
{
	size_t used = 0;
	if (!bytewise) {
		used = r.feed(in);
		return used;
	}
	std::string pending;
	for (char c : in) {
		if (r.done())
			break;
		pending += c;
		size_t n = r.feed(pending);
		pending.erase(0, n);
		used += n;
	}
	return used;
}

void test_simple_and_unstuffing(void **)
{
	for (bool bytewise : {false, true}) {
		DataReader r(1 << 20, 1000);
		std::string in = "Subject: x\r\n\r\n..dot\r\n...two\r\nplain\r\n.\r\nQUIT\r\n";
		size_t used = run(r, in, bytewise);
		assert_true(r.done());
		assert_int_equal(r.error(), DataReader::Error::none);
		assert_int_equal(used, in.size() - 6); /* QUIT stays for the command loop */
		assert_string_equal(r.take().c_str(), "Subject: x\r\n\r\n.dot\r\n..two\r\nplain\r\n");
	}
}

void test_empty_message(void **)
{
	DataReader r(100, 1000);
	assert_int_equal(r.feed(".\r\n"), 3);
	assert_true(r.done());
	assert_string_equal(r.take().c_str(), "");
}

void test_no_smuggling(void **)
{
	DataReader r(1 << 20, 1000);
	/* "\n.\n", "\r\n.\n" and "\n.\r\n" are content; only CRLF . CRLF ends it. */
	std::string in = "a\n.\nMAIL FROM:<x@y.z>\r\n.\nb\n.\r\nc\r\n.\r\n";
	run(r, in);
	assert_true(r.done());
	assert_string_equal(r.take().c_str(), "a\r\n\r\nMAIL FROM:<x@y.z>\r\n\r\nb\r\n\r\nc\r\n");
}

void test_waits_for_line(void **)
{
	DataReader r(1 << 20, 1000);
	assert_int_equal(r.feed("partial line"), 0);
	assert_int_equal(r.feed("partial line\r"), 0);
	assert_int_equal(r.feed("partial line\r\n."), 14);
	assert_false(r.done());
}

void test_line_limit(void **)
{
	for (bool bytewise : {false, true}) {
		DataReader r(1 << 20, 1000);
		std::string ok(998, 'x'), bad(999, 'y');
		run(r, ok + "\r\n" + bad + "\r\nafter\r\n.\r\n", bytewise);
		assert_true(r.done());
		assert_int_equal(r.error(), DataReader::Error::line_too_long);
	}
	DataReader r(1 << 20, 1000);
	std::string huge(5000, 'z');
	assert_int_equal(r.feed(huge), 5000); /* drained while waiting for its end */
	run(r, "\r\n.\r\n");
	assert_true(r.done());
	assert_int_equal(r.error(), DataReader::Error::line_too_long);
}

void test_size_limit_drains(void **)
{
	DataReader r(100, 1000);
	std::string body;
	for (int i = 0; i < 50; i++)
		body += "0123456789\r\n";
	size_t used = run(r, body + ".\r\nNOOP\r\n");
	assert_true(r.done());
	assert_int_equal(r.error(), DataReader::Error::too_big);
	assert_int_equal(used, body.size() + 3);
	assert_true(r.take().empty());
	DataReader exact(12, 1000);
	run(exact, "0123456789\r\n.\r\n");
	assert_int_equal(exact.error(), DataReader::Error::none);
}

} // namespace

int main()
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple_and_unstuffing),
		cmocka_unit_test(test_empty_message),
		cmocka_unit_test(test_no_smuggling),
		cmocka_unit_test(test_waits_for_line),
		cmocka_unit_test(test_line_limit),
		cmocka_unit_test(test_size_limit_drains),
	};
	return cmocka_run_group_tests(tests, nullptr, nullptr);
}
