/*
 * httpd Idempotency-Key cache: claim, replay, in flight, reused with another
 * body, expiry after 24 h, LRU bound, key syntax.
 */
#include <string>

#include "httpd/digest.h"
#include "httpd/idempotency.h"
#include "regress/unit/unit.h"

using namespace posthorn::http;

namespace {

Reply ok_reply()
{
	Reply r;
	r.status = 200;
	r.headers = {{"Content-Type", "application/json; charset=utf-8"}};
	r.body = "{\"status\":\"ok\",\"submission_id\":\"x\"}\n";
	return r;
}

void test_claim_and_replay(void **)
{
	IdempotencyCache c(10);
	Digest body = sha256("{\"a\":1}");
	Reply stored;
	assert_true(c.begin("key1:abc", body, 0, &stored) == IdempotencyCache::Begin::claimed);
	assert_int_equal(c.in_flight(), 1);
	assert_true(c.begin("key1:abc", body, 1, &stored) == IdempotencyCache::Begin::in_flight);
	assert_true(c.begin("key1:abc", sha256("{}"), 1, &stored) == IdempotencyCache::Begin::reused);
	c.complete("key1:abc", ok_reply(), 2);
	assert_int_equal(c.in_flight(), 0);
	assert_int_equal(c.size(), 1);
	assert_true(c.begin("key1:abc", body, 3, &stored) == IdempotencyCache::Begin::replay);
	assert_int_equal(stored.status, 200);
	assert_string_equal(stored.body.c_str(), ok_reply().body.c_str());
	assert_string_equal(stored.header("content-type")->c_str(), "application/json; charset=utf-8");
	assert_true(c.begin("key1:abc", sha256("{\"a\":2}"), 3, &stored) == IdempotencyCache::Begin::reused);
	/* another API key's scope is another entry */
	assert_true(c.begin("key2:abc", body, 3, &stored) == IdempotencyCache::Begin::claimed);
}

void test_abandon(void **)
{
	IdempotencyCache c(10);
	Digest body = sha256("x");
	assert_true(c.begin("k", body, 0, nullptr) == IdempotencyCache::Begin::claimed);
	c.abandon("k");
	assert_true(c.begin("k", body, 0, nullptr) == IdempotencyCache::Begin::claimed);
	/* completing an unclaimed key stores nothing */
	c.complete("other", ok_reply(), 0);
	assert_int_equal(c.size(), 0);
}

void test_expiry(void **)
{
	IdempotencyCache c(10);
	Digest body = sha256("x");
	c.begin("k", body, 100, nullptr);
	c.complete("k", ok_reply(), 100);
	assert_true(c.begin("k", body, 100 + IDEMPOTENCY_TTL - 1, nullptr) == IdempotencyCache::Begin::replay);
	assert_true(c.begin("k", body, 100 + IDEMPOTENCY_TTL, nullptr) == IdempotencyCache::Begin::claimed);
}

void test_lru(void **)
{
	IdempotencyCache c(2);
	Digest body = sha256("x");
	for (const char *k : {"a", "b", "c"}) {
		c.begin(k, body, 0, nullptr);
		c.complete(k, ok_reply(), 0);
	}
	assert_int_equal(c.size(), 2);
	assert_true(c.begin("a", body, 0, nullptr) == IdempotencyCache::Begin::claimed);
	assert_true(c.begin("c", body, 0, nullptr) == IdempotencyCache::Begin::replay);
	c.set_capacity(1);
	assert_int_equal(c.size(), 1);
}

void test_key_syntax(void **)
{
	assert_true(idempotency_key_valid("a"));
	assert_true(idempotency_key_valid("order-123 retry ~!"));
	assert_true(idempotency_key_valid(std::string(255, 'k')));
	assert_false(idempotency_key_valid(""));
	assert_false(idempotency_key_valid(std::string(256, 'k')));
	assert_false(idempotency_key_valid("tab\there"));
	assert_false(idempotency_key_valid("caf\xc3\xa9"));
	assert_false(idempotency_key_valid("del\x7f"));
}

} // namespace

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_claim_and_replay),
		cmocka_unit_test(test_abandon),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_lru),
		cmocka_unit_test(test_key_syntax),
	};
	return cmocka_run_group_tests(tests, nullptr, nullptr);
}
