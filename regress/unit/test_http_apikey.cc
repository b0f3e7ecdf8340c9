/*
 * httpd API keys: Bearer parsing, plain and sha256:<hex> keys.
 */
#include <string>

#include "httpd/apikey.h"
#include "httpd/digest.h"
#include "regress/unit/unit.h"

using namespace posthorn::http;

namespace {

void test_bearer(void **)
{
	std::string_view t;
	assert_true(bearer_token("Bearer abc123", t));
	assert_string_equal(std::string(t).c_str(), "abc123");
	assert_true(bearer_token("bearer  abc123 ", t));
	assert_string_equal(std::string(t).c_str(), "abc123");
	assert_true(bearer_token("BEARER x", t));
	for (const char *bad : {"", "Bearer", "Bearer ", "Basic abc", "Bearerabc", "Bearer a b", "abc"})
		assert_false(bearer_token(bad, t));
	assert_false(bearer_token(nullptr, t));
}

void test_match(void **)
{
	std::string plain = "worker-key-primary-0123456789";
	std::string hashed = "worker-key-backup-9876543210";
	ApiKeys keys;
	keys.load({plain, "sha256:" + hex(sha256(hashed)), "sha256:" + std::string(64, 'A')});
	assert_int_equal(keys.size(), 3);
	std::string a = keys.match(plain), b = keys.match(hashed);
	assert_string_equal(a.c_str(), hex(sha256(plain)).c_str());
	assert_string_equal(b.c_str(), hex(sha256(hashed)).c_str());
	assert_string_not_equal(a.c_str(), b.c_str());
	/* the digest form is not itself a key */
	assert_string_equal(keys.match("sha256:" + hex(sha256(hashed))).c_str(), "");
	assert_string_equal(keys.match(plain + "x").c_str(), "");
	assert_string_equal(keys.match(plain.substr(1)).c_str(), "");
	assert_string_equal(keys.match("").c_str(), "");
	/* upper-case hex in the config is the same digest */
	ApiKeys upper;
	std::string h = hex(sha256(hashed));
	for (char &c : h)
		c = char(toupper((unsigned char)c));
	upper.load({"sha256:" + h});
	assert_string_equal(upper.match(hashed).c_str(), b.c_str());
}

void test_digest_helpers(void **)
{
	/* SHA-256("abc"), FIPS 180-2 */
	assert_string_equal(hex(sha256("abc")).c_str(),
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	/* RFC 4231 test case 2 */
	assert_string_equal(hex(hmac_sha256("Jefe", "what do ya want for nothing?")).c_str(),
	    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	Digest d;
	assert_false(unhex("abc", d));
	assert_false(unhex(std::string(63, 'a') + "g", d));
	std::string u = new_uuid();
	assert_int_equal(u.size(), 36);
	assert_int_equal(u[14], '4');
	assert_true(u[19] == '8' || u[19] == '9' || u[19] == 'a' || u[19] == 'b');
	assert_string_not_equal(u.c_str(), new_uuid().c_str());
}

} // namespace

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bearer),
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_digest_helpers),
	};
	return cmocka_run_group_tests(tests, nullptr, nullptr);
}
