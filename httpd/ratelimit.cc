/*
 * Token buckets: `count` tokens, refilled continuously at count/interval
 * per second.
 */
#include "ratelimit.h"

#include <time.h>

#include <algorithm>
#include <cmath>

namespace posthorn::http {

TokenBuckets::TokenBuckets(RateLimit limit, size_t max_keys) : limit_(limit), buckets_(max_keys) {}

void TokenBuckets::set_limit(RateLimit limit)
{
	limit_ = limit;
}

TokenBuckets::Bucket &TokenBuckets::refill(const std::string &key, double now)
{
	double size = double(limit_.count);
	Bucket *b = buckets_.find(key);
	if (!b)
		return buckets_.put(key, Bucket{size, now});
	double rate = size / double(limit_.interval);
	if (now > b->at)
		b->tokens = std::min(size, b->tokens + (now - b->at) * rate);
	b->tokens = std::min(size, b->tokens);
	b->at = std::max(b->at, now);
	return *b;
}

uint64_t TokenBuckets::wait_for_one(const Bucket &b) const
{
	double rate = double(limit_.count) / double(limit_.interval);
	double secs = (1.0 - b.tokens) / rate;
	return std::max<uint64_t>(1, uint64_t(std::ceil(secs - 1e-9)));
}

bool TokenBuckets::take(const std::string &key, double now, uint64_t &retry_after)
{
	if (!enabled())
		return true;
	Bucket &b = refill(key, now);
	if (b.tokens >= 1.0) {
		b.tokens -= 1.0;
		return true;
	}
	retry_after = wait_for_one(b);
	return false;
}

bool TokenBuckets::exhausted(const std::string &key, double now, uint64_t &retry_after)
{
	if (!enabled() || !buckets_.find(key))
		return false; /* a key never seen has a full bucket: do not store it */
	Bucket &b = refill(key, now);
	if (b.tokens >= 1.0)
		return false;
	retry_after = wait_for_one(b);
	return true;
}

AuthLockout::AuthLockout(uint32_t failures, uint64_t window)
    : buckets_(RateLimit{failures, window}, RATE_MAX_KEYS)
{
}

bool AuthLockout::locked(const std::string &addr, double now, uint64_t &retry_after)
{
	return buckets_.exhausted(addr, now, retry_after);
}

void AuthLockout::failed(const std::string &addr, double now)
{
	uint64_t ignored;
	buckets_.take(addr, now, ignored);
}

double monotonic_now()
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

} // namespace posthorn::http
