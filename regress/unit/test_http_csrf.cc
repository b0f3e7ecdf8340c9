/*
 * httpd CSRF tokens: good, expired, forged, from the future, malformed.
 */
#include <string>

#include "httpd/csrf.h"
#include "httpd/digest.h"
#include "regress/unit/unit.h"

using namespace posthorn::http;

namespace {

const std::string kSecret = "0123456789abcdef-secret";
constexpr int64_t kNow = 1780000000;

void test_issue_format(void **)
{
	std::string t = csrf_issue(kSecret, kNow);
	assert_int_equal(t.size(), 10 + 1 + 64);
	assert_string_equal(t.substr(0, 11).c_str(), "1780000000.");
	assert_string_equal(t.substr(11).c_str(), hex(hmac_sha256(kSecret, "1780000000")).c_str());
}

void test_good(void **)
{
	std::string t = csrf_issue(kSecret, kNow);
	assert_true(csrf_verify(t, kSecret, 3600, kNow) == CsrfResult::ok);
	assert_true(csrf_verify(t, kSecret, 3600, kNow + 3600) == CsrfResult::ok);
	/* a little clock skew on the issuing side is fine */
	assert_true(csrf_verify(t, kSecret, 3600, kNow - 60) == CsrfResult::ok);
	/* upper-case hex is still the same signature */
	std::string upper = t;
	for (size_t i = 11; i < upper.size(); i++)
		upper[i] = char(toupper((unsigned char)upper[i]));
	assert_true(csrf_verify(upper, kSecret, 3600, kNow) == CsrfResult::ok);
}

void test_expired_and_future(void **)
{
	std::string t = csrf_issue(kSecret, kNow);
	assert_true(csrf_verify(t, kSecret, 3600, kNow + 3601) == CsrfResult::expired);
	assert_true(csrf_verify(t, kSecret, 3600, kNow - 61) == CsrfResult::future);
}

void test_forged(void **)
{
	std::string t = csrf_issue("another secret, 16+ bytes", kNow);
	assert_true(csrf_verify(t, kSecret, 3600, kNow) == CsrfResult::forged);
	/* the timestamp is covered by the signature */
	std::string moved = csrf_issue(kSecret, kNow);
	moved[9] = '1';
	assert_true(csrf_verify(moved, kSecret, 3600, kNow) == CsrfResult::forged);
	/* a forged token from far away is reported as forged, not as expired */
	std::string old = csrf_issue("wrong-secret-0123456", kNow - 99999);
	assert_true(csrf_verify(old, kSecret, 3600, kNow) == CsrfResult::forged);
}

void test_malformed(void **)
{
	assert_true(csrf_verify("", kSecret, 3600, kNow) == CsrfResult::missing);
	std::string sig = hex(hmac_sha256(kSecret, "1780000000"));
	for (std::string bad : {std::string("nodot"), "." + sig, "17800x0000." + sig,
	    "1780000000." + sig.substr(1), "1780000000." + sig + "0", "1780000000.zz" + sig.substr(2),
	    "-1780000000." + sig, "1234567890123." + sig})
		assert_true(csrf_verify(bad, kSecret, 3600, kNow) == CsrfResult::malformed);
	assert_string_equal(to_string(CsrfResult::future), "future");
}

} // namespace

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_issue_format),
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_expired_and_future),
		cmocka_unit_test(test_forged),
		cmocka_unit_test(test_malformed),
	};
	return cmocka_run_group_tests(tests, nullptr, nullptr);
}
