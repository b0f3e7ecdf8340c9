/*
 * httpd token buckets and the API key failure lockout.
 */
#include <string>

#include "httpd/ratelimit.h"
#include "regress/unit/unit.h"

using namespace posthorn;
using namespace posthorn::http;

namespace {

void test_five_per_minute(void **)
{
	TokenBuckets b(RateLimit{5, 60});
	uint64_t wait = 0;
	for (int i = 0; i < 5; i++)
		assert_true(b.take("198.51.100.7", 1000.0, wait));
	assert_false(b.take("198.51.100.7", 1000.0, wait));
	assert_int_equal(wait, 12); /* one token per 12 s */
	/* another client has its own bucket */
	assert_true(b.take("198.51.100.8", 1000.0, wait));
	/* 6 s later half a token: still 6 s to wait */
	assert_false(b.take("198.51.100.7", 1006.0, wait));
	assert_int_equal(wait, 6);
	assert_true(b.take("198.51.100.7", 1012.0, wait));
	assert_false(b.take("198.51.100.7", 1012.0, wait));
	/* a long pause refills to the size, not beyond */
	for (int i = 0; i < 5; i++)
		assert_true(b.take("198.51.100.7", 5000.0, wait));
	assert_false(b.take("198.51.100.7", 5000.0, wait));
}

void test_retry_after_at_least_one(void **)
{
	TokenBuckets b(RateLimit{100, 1});
	uint64_t wait = 0;
	for (int i = 0; i < 100; i++)
		assert_true(b.take("k", 0, wait));
	assert_false(b.take("k", 0, wait));
	assert_int_equal(wait, 1);
}

void test_disabled(void **)
{
	TokenBuckets b;
	uint64_t wait = 0;
	assert_false(b.enabled());
	for (int i = 0; i < 1000; i++)
		assert_true(b.take("k", 0, wait));
	assert_int_equal(b.keys(), 0);
}

void test_lru_bound(void **)
{
	TokenBuckets b(RateLimit{1, 3600}, 3);
	uint64_t wait = 0;
	for (const char *k : {"a", "b", "c"})
		assert_true(b.take(k, 0, wait));
	assert_false(b.take("a", 1, wait)); /* a is now the most recent */
	assert_true(b.take("d", 2, wait));  /* evicts b, the least recent */
	assert_int_equal(b.keys(), 3);
	assert_true(b.take("b", 3, wait));  /* b forgotten: a full bucket again */
	assert_false(b.take("a", 4, wait) && b.take("a", 4, wait));
}

void test_set_limit(void **)
{
	TokenBuckets b(RateLimit{10, 60});
	uint64_t wait = 0;
	assert_true(b.take("k", 0, wait));
	b.set_limit(RateLimit{2, 60}); /* 9 tokens left, capped at the new size */
	assert_true(b.take("k", 0, wait));
	assert_true(b.take("k", 0, wait));
	assert_false(b.take("k", 0, wait));
}

void test_lockout(void **)
{
	AuthLockout l;
	uint64_t wait = 0;
	for (int i = 0; i < 10; i++) {
		assert_false(l.locked("192.0.2.1", 100, wait));
		l.failed("192.0.2.1", 100);
	}
	assert_true(l.locked("192.0.2.1", 100, wait));
	assert_int_equal(wait, 6);
	assert_false(l.locked("192.0.2.2", 100, wait));
	assert_false(l.locked("192.0.2.1", 106, wait));
	l.failed("192.0.2.1", 106);
	assert_true(l.locked("192.0.2.1", 106, wait));
	assert_false(l.locked("192.0.2.1", 200, wait));
}

void test_lru_map(void **)
{
	LruMap<int> m(2);
	m.put("a", 1);
	m.put("b", 2);
	assert_int_equal(*m.find("a"), 1);
	m.put("c", 3);
	assert_null(m.find("b"));
	assert_int_equal(*m.find("c"), 3);
	m.put("a", 10);
	assert_int_equal(*m.find("a"), 10);
	assert_int_equal(m.size(), 2);
	m.erase("a");
	assert_null(m.find("a"));
	m.set_capacity(0);
	assert_int_equal(m.capacity(), 1);
	assert_int_equal(m.size(), 1);
}

} // namespace

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_five_per_minute),
		cmocka_unit_test(test_retry_after_at_least_one),
		cmocka_unit_test(test_disabled),
		cmocka_unit_test(test_lru_bound),
		cmocka_unit_test(test_set_limit),
		cmocka_unit_test(test_lockout),
		cmocka_unit_test(test_lru_map),
	};
	return cmocka_run_group_tests(tests, nullptr, nullptr);
}
