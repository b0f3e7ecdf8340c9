/*
 * SMTP AUTH pieces: SASL decoding (cancel, strict base64), PLAIN splitting
 * and the authzid rule, constant-time comparison, crypt(3) hashes through
 * libcrypt, and the per-address failure throttle.
 */
#include <crypt.h>

#include <string>
#include <vector>

#include "smtpd/auth.h"
#include "regress/unit/unit.h"

using namespace posthorn;
using namespace std::string_literals;

namespace {

std::string make_hash(const char *prefix, const char *password)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	if (!crypt_gensalt_rn(prefix, 0, nullptr, 0, salt, sizeof(salt)))
		return "";
	crypt_data data = {};
	const char *h = crypt_rn(password, salt, &data, sizeof(data));
	return h && h[0] != '*' ? h : "";
}

void test_sasl_decode(void **)
{
	std::string out;
	assert_int_equal(sasl_decode("*", out), SaslResult::cancelled);
	assert_int_equal(sasl_decode("=", out), SaslResult::ok);
	assert_true(out.empty());
	assert_int_equal(sasl_decode("YWxpY2U=", out), SaslResult::ok);
	assert_string_equal(out.c_str(), "alice");
	assert_int_equal(sasl_decode("YWxpY2U", out), SaslResult::bad_encoding);
	assert_int_equal(sasl_decode("!!!!", out), SaslResult::bad_encoding);
	assert_int_equal(sasl_decode("", out), SaslResult::bad_encoding);
	assert_int_equal(sasl_decode("YW xp", out), SaslResult::bad_encoding);
}

void test_plain_split(void **)
{
	std::string u, p;
	assert_true(sasl_plain_split("\0alice\0secret"s, u, p));
	assert_string_equal(u.c_str(), "alice");
	assert_string_equal(p.c_str(), "secret");
	assert_true(sasl_plain_split("alice\0alice\0secret"s, u, p));
	assert_false(sasl_plain_split("mallory\0alice\0secret"s, u, p));
	assert_false(sasl_plain_split("\0\0secret"s, u, p));
	assert_false(sasl_plain_split("alice secret"s, u, p));
	assert_false(sasl_plain_split("\0alice\0sec\0ret"s, u, p));
	assert_true(sasl_plain_split("\0alice\0"s, u, p)); /* empty password: simply wrong later */
	assert_true(p.empty());
}

void test_ct_equal(void **)
{
	assert_true(ct_equal("", ""));
	assert_true(ct_equal("secret", "secret"));
	assert_false(ct_equal("secret", "secreT"));
	assert_false(ct_equal("secret", "secret "));
	assert_false(ct_equal("secret", ""));
	assert_true(ct_equal("a\0b"s, "a\0b"s));
	assert_false(ct_equal("a\0b"s, "a\0c"s));
}

void test_plain_secret(void **)
{
	std::vector<SmtpUser> users = {{"alice", "correct horse"}, {"bob", "$notahash"}};
	assert_true(verify_user(users, "alice", "correct horse"));
	assert_false(verify_user(users, "alice", "correct horse "));
	assert_false(verify_user(users, "Alice", "correct horse"));
	assert_false(verify_user(users, "carol", "correct horse"));
	assert_true(verify_user(users, "bob", "$notahash"));
	assert_false(verify_user({}, "alice", "x"));
}

void test_crypt_hashes(void **)
{
	for (const char *prefix : {"$y$", "$2b$", "$6$", "$5$"}) {
		std::string h = make_hash(prefix, "hunter2");
		if (h.empty())
			continue; /* method not built into this libcrypt */
		assert_true(secret_is_hash(h));
		assert_true(secret_matches(h, "hunter2"));
		assert_false(secret_matches(h, "hunter3"));
		assert_false(secret_matches(h, h));
		assert_false(secret_matches(h, "hunter2\0x"s));
	}
	std::string y = make_hash("$y$", "pw");
	assert_false(y.empty()); /* Debian's libcrypt has yescrypt: the default */
	std::vector<SmtpUser> users = {{"gitea", y}};
	assert_true(verify_user(users, "gitea", "pw"));
	assert_false(verify_user(users, "gitea", "pW"));
	assert_false(secret_is_hash("plain"));
	assert_false(secret_is_hash("$"));
	assert_false(secret_is_hash("$zz$bogus"));
}

void test_throttle(void **)
{
	AuthThrottle t(60);
	assert_false(t.blocked("192.0.2.1", 3, 1000));
	t.failure("192.0.2.1", 3, 1000);
	t.failure("192.0.2.1", 3, 1010);
	assert_false(t.blocked("192.0.2.1", 3, 1020));
	t.failure("192.0.2.1", 3, 1020);
	assert_true(t.blocked("192.0.2.1", 3, 1021));
	assert_false(t.blocked("192.0.2.2", 3, 1021)); /* per address */
	assert_true(t.blocked("192.0.2.1", 3, 1059));
	assert_false(t.blocked("192.0.2.1", 3, 1060)); /* the oldest aged out */
	t.expire(2000);
	assert_int_equal(t.size(), 0);
}

} // namespace

int main()
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sasl_decode),
		cmocka_unit_test(test_plain_split),
		cmocka_unit_test(test_ct_equal),
		cmocka_unit_test(test_plain_secret),
		cmocka_unit_test(test_crypt_hashes),
		cmocka_unit_test(test_throttle),
	};
	return cmocka_run_group_tests(tests, nullptr, nullptr);
}
