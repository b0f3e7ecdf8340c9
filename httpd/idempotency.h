/*
 * The Idempotency-Key cache of one API endpoint (DESIGN §7). Entries are
 * scoped by the caller (endpoint and API key identity in the key string),
 * bound to a digest of the request body, kept 24 h, LRU-bounded at
 * idempotency_cache_size. A key is "in flight" from begin() until
 * complete() or abandon(); in-flight keys are not counted or evicted.
 */
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "digest.h"
#include "lru.h"
#include "reply.h"

namespace posthorn::http {

inline constexpr uint64_t IDEMPOTENCY_TTL = 24 * 3600;

/* 1 to 255 printable ASCII characters. */
bool idempotency_key_valid(std::string_view key);

class IdempotencyCache {
public:
	enum class Begin {
		claimed,  /* new: go ahead, then complete() or abandon() */
		replay,   /* a stored reply for the same body: send *stored again */
		in_flight,/* the first request with this key has not finished: 409 */
		reused,   /* the key was used with a different body: 422 */
	};

	explicit IdempotencyCache(size_t capacity, uint64_t ttl = IDEMPOTENCY_TTL);
	void set_capacity(size_t capacity) { done_.set_capacity(capacity); }

	Begin begin(const std::string &key, const Digest &body, double now, Reply *stored);
	void complete(const std::string &key, const Reply &reply, double now);
	void abandon(const std::string &key);
	size_t size() const { return done_.size(); }
	size_t in_flight() const { return pending_.size(); }

private:
	struct Entry {
		Digest body;
		Reply reply;
		double expires;
	};
	uint64_t ttl_;
	LruMap<Entry> done_;
	std::map<std::string, Digest> pending_;
};

} // namespace posthorn::http
