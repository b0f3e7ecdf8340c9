/*
 * Token buckets keyed by client (address or API key), LRU-bounded, and the
 * per-address API-key failure lockout built on them. Time is passed in
 * (monotonic seconds) so tests can drive it.
 */
#pragma once

#include <cstdint>
#include <string>

#include "common/config.h"
#include "lru.h"

namespace posthorn::http {

inline constexpr size_t RATE_MAX_KEYS = 10000;

class TokenBuckets {
public:
	explicit TokenBuckets(RateLimit limit = {}, size_t max_keys = RATE_MAX_KEYS);
	/* New parameters; existing buckets keep their level, capped at the new size. */
	void set_limit(RateLimit limit);
	bool enabled() const { return limit_.count > 0 && limit_.interval > 0; }

	/* Take a token: true, or false with the whole seconds until one is available. */
	bool take(const std::string &key, double now, uint64_t &retry_after);
	/* Would take() fail? Does not consume. */
	bool exhausted(const std::string &key, double now, uint64_t &retry_after);
	size_t keys() const { return buckets_.size(); }

private:
	struct Bucket {
		double tokens;
		double at;
	};
	Bucket &refill(const std::string &key, double now);
	uint64_t wait_for_one(const Bucket &b) const;

	RateLimit limit_;
	LruMap<Bucket> buckets_;
};

/* API keys: after `failures` wrong keys from one address within `window` seconds, that
 * address is refused (429) until the bucket refills. */
class AuthLockout {
public:
	explicit AuthLockout(uint32_t failures = 10, uint64_t window = 60);
	bool locked(const std::string &addr, double now, uint64_t &retry_after);
	void failed(const std::string &addr, double now);

private:
	TokenBuckets buckets_;
};

/* CLOCK_MONOTONIC in seconds. */
double monotonic_now();

} // namespace posthorn::http
