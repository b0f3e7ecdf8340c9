/*
 * SMTP envelope syntax and address policy: MAIL/RCPT arguments, ESMTP
 * parameters, allowed_senders / allowed_recipients patterns, reply text
 * sanitising.
 */
#include <string>
#include <vector>

#include "smtpd/policy.h"
#include "regress/unit/unit.h"

using namespace posthorn;

namespace {

PathError parse(const char *arg, const char *kw, bool null_ok, SmtpPath &p)
{
	return parse_path(arg, kw, null_ok, p);
}

void test_path_ok(void **)
{
	SmtpPath p;
	assert_int_equal(parse("FROM:<app@example.com>", "FROM", true, p), PathError::none);
	assert_string_equal(p.addr.c_str(), "app@example.com");
	assert_true(p.params.empty());
	assert_int_equal(parse("from: <app@example.com>", "FROM", true, p), PathError::none);
	assert_int_equal(parse("To:<a@example.org>", "TO", false, p), PathError::none);
	assert_int_equal(parse("TO:<@relay.example,@b.example:a@example.org>", "TO", false, p),
	    PathError::none);
	assert_string_equal(p.addr.c_str(), "a@example.org");
	assert_int_equal(parse("FROM:<> SIZE=10", "FROM", true, p), PathError::none);
	assert_true(p.addr.empty());
	assert_int_equal(p.params.size(), 1);
	assert_string_equal(p.params[0].first.c_str(), "SIZE");
	assert_string_equal(p.params[0].second.c_str(), "10");
	assert_int_equal(parse("FROM:<\"odd@local\"@example.com> body=8bitmime", "FROM", true, p),
	    PathError::none);
	assert_string_equal(p.params[0].first.c_str(), "BODY");
	assert_string_equal(p.params[0].second.c_str(), "8bitmime");
}

void test_path_bad(void **)
{
	SmtpPath p;
	const char *syntax[] = {
		"FROM app@example.com", "FROM:app@example.com", "FROM:<app@example.com", "TO:<a@b.c>",
		"FROM:<a@example.com>SIZE=1", "FROM:<a@example.com> =1", "FROM:<a@example.com> SIZE=",
		"FROM:<a@example.com> SIZE=1 SIZE=2", "FROM:<a@example.com> X=a=b", "", "FROM:",
	};
	for (const char *s : syntax)
		assert_int_equal(parse(s, "FROM", true, p), PathError::syntax);
	const char *address[] = {
		"FROM:<no-at-sign>", "FROM:<a b@example.com>", "FROM:<a@>", "FROM:<@x:>",
		"FROM:<a@exa\x01mple.com>",
	};
	for (const char *s : address)
		assert_int_equal(parse(s, "FROM", true, p), PathError::address);
	assert_int_equal(parse("TO:<>", "TO", false, p), PathError::address);
}

void test_mail_params(void **)
{
	SmtpPath p;
	MailParams mp;
	std::string bad;
	assert_int_equal(parse("FROM:<a@example.com> SIZE=1048576 BODY=7BIT AUTH=<>", "FROM", true, p),
	    PathError::none);
	assert_int_equal(parse_mail_params(p, mp, bad), ParamError::none);
	assert_int_equal(mp.size, 1048576);
	parse("FROM:<a@example.com> SIZE=12x", "FROM", true, p);
	assert_int_equal(parse_mail_params(p, mp, bad), ParamError::syntax);
	assert_string_equal(bad.c_str(), "SIZE");
	parse("FROM:<a@example.com> SIZE=99999999999999999999", "FROM", true, p);
	assert_int_equal(parse_mail_params(p, mp, bad), ParamError::syntax);
	parse("FROM:<a@example.com> BODY=BINARYMIME", "FROM", true, p);
	assert_int_equal(parse_mail_params(p, mp, bad), ParamError::syntax);
	parse("FROM:<a@example.com> SMTPUTF8", "FROM", true, p);
	assert_int_equal(parse_mail_params(p, mp, bad), ParamError::unsupported);
	assert_string_equal(bad.c_str(), "SMTPUTF8");
}

void test_patterns(void **)
{
	std::vector<std::string> pats = {"*@Example.COM", "ghost@blog.example"};
	assert_true(address_allowed(pats, "app@example.com"));
	assert_true(address_allowed(pats, "APP@EXAMPLE.COM"));
	assert_true(address_allowed(pats, "Ghost@Blog.Example"));
	assert_false(address_allowed(pats, "other@blog.example"));
	assert_false(address_allowed(pats, "app@sub.example.com"));
	assert_false(address_allowed(pats, "app@example.com.evil"));
	assert_false(address_allowed(pats, "\"x@example.com\"@evil.example"));
	assert_false(address_allowed(pats, ""));
	assert_false(address_allowed({}, "app@example.com"));
	assert_true(address_allowed({"*"}, "anyone@anywhere.example"));
	assert_true(address_allowed({"*"}, "")); /* the null sender only with "*" */
}

void test_printable(void **)
{
	assert_string_equal(printable("ok text").c_str(), "ok text");
	assert_string_equal(printable("a\r\nb\x01\xc3\xa9").c_str(), "a??b???");
	assert_string_equal(printable("abcdef", 3).c_str(), "abc...");
}

} // namespace

int main()
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_ok),
		cmocka_unit_test(test_path_bad),
		cmocka_unit_test(test_mail_params),
		cmocka_unit_test(test_patterns),
		cmocka_unit_test(test_printable),
	};
	return cmocka_run_group_tests(tests, nullptr, nullptr);
}
