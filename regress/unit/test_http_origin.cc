/*
 * httpd Origin/Referer rule: Origin decides when present; Referer only when
 * Origin is absent or "null"; neither is a refusal; both normalised.
 */
#include <string>
#include <vector>

#include "httpd/origin.h"
#include "regress/unit/unit.h"

using namespace posthorn::http;

namespace {

const std::vector<std::string> kAllowed = {"https://example.com", "http://localhost:8080"};

void test_origin(void **)
{
	assert_true(origin_check("https://example.com", nullptr, kAllowed) == OriginResult::ok);
	assert_true(origin_check("HTTPS://Example.COM:443", nullptr, kAllowed) == OriginResult::ok);
	assert_true(origin_check("https://example.com/", nullptr, kAllowed) == OriginResult::ok);
	assert_true(origin_check("http://localhost:8080", nullptr, kAllowed) == OriginResult::ok);
	assert_true(origin_check("http://example.com", nullptr, kAllowed) == OriginResult::mismatch);
	assert_true(origin_check("https://example.com:8443", nullptr, kAllowed) == OriginResult::mismatch);
	assert_true(origin_check("https://evil.example", nullptr, kAllowed) == OriginResult::mismatch);
	assert_true(origin_check("https://example.com.evil.example", nullptr, kAllowed) ==
	    OriginResult::mismatch);
	assert_true(origin_check("garbage", nullptr, kAllowed) == OriginResult::mismatch);
}

void test_origin_wins_over_referer(void **)
{
	/* a mismatching Origin is refused even when the Referer matches */
	assert_true(origin_check("https://evil.example", "https://example.com/contact", kAllowed) ==
	    OriginResult::mismatch);
	assert_true(origin_check("https://example.com", "https://evil.example/", kAllowed) ==
	    OriginResult::ok);
}

void test_referer_fallback(void **)
{
	assert_true(origin_check(nullptr, "https://example.com/contact?x=1#top", kAllowed) ==
	    OriginResult::ok);
	assert_true(origin_check("null", "https://example.com/contact", kAllowed) == OriginResult::ok);
	assert_true(origin_check("", "https://example.com", kAllowed) == OriginResult::ok);
	assert_true(origin_check(nullptr, "https://example.com:443/", kAllowed) == OriginResult::ok);
	assert_true(origin_check(nullptr, "https://evil.example/https://example.com", kAllowed) ==
	    OriginResult::mismatch);
	assert_true(origin_check(nullptr, "https://user@example.com/", kAllowed) ==
	    OriginResult::mismatch);
	assert_true(origin_check(nullptr, "/relative/path", kAllowed) == OriginResult::mismatch);
	assert_true(origin_check("null", "https://evil.example/", kAllowed) == OriginResult::mismatch);
}

void test_missing(void **)
{
	assert_true(origin_check(nullptr, nullptr, kAllowed) == OriginResult::missing);
	assert_true(origin_check("null", nullptr, kAllowed) == OriginResult::missing);
	assert_true(origin_check("", "", kAllowed) == OriginResult::missing);
	assert_string_equal(to_string(OriginResult::missing), "missing");
}

void test_referer_origin(void **)
{
	std::string o;
	assert_true(referer_origin("HTTP://Example.com:80/a/b", o));
	assert_string_equal(o.c_str(), "http://example.com");
	assert_true(referer_origin("https://[2001:db8::1]:8443/x", o));
	assert_string_equal(o.c_str(), "https://[2001:db8::1]:8443");
	assert_false(referer_origin("example.com/x", o));
	assert_false(referer_origin("ftp://example.com/x", o));
}

} // namespace

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_origin),
		cmocka_unit_test(test_origin_wins_over_referer),
		cmocka_unit_test(test_referer_fallback),
		cmocka_unit_test(test_missing),
		cmocka_unit_test(test_referer_origin),
	};
	return cmocka_run_group_tests(tests, nullptr, nullptr);
}
