/*
 * Idempotency cache.
 */
#include "idempotency.h"

namespace posthorn::http {

bool idempotency_key_valid(std::string_view key)
{
	if (key.empty() || key.size() > 255)
		return false;
	for (unsigned char c : key)
		if (c < 0x20 || c > 0x7e)
			return false;
	return true;
}

IdempotencyCache::IdempotencyCache(size_t capacity, uint64_t ttl) : ttl_(ttl), done_(capacity) {}

IdempotencyCache::Begin IdempotencyCache::begin(const std::string &key, const Digest &body,
    double now, Reply *stored)
{
	auto p = pending_.find(key);
	if (p != pending_.end())
		return digest_equal(p->second, body) ? Begin::in_flight : Begin::reused;
	if (Entry *e = done_.find(key)) {
		if (e->expires > now) {
			if (!digest_equal(e->body, body))
				return Begin::reused;
			if (stored)
				*stored = e->reply;
			return Begin::replay;
		}
		done_.erase(key);
	}
	pending_.emplace(key, body);
	return Begin::claimed;
}

void IdempotencyCache::complete(const std::string &key, const Reply &reply, double now)
{
	auto p = pending_.find(key);
	if (p == pending_.end())
		return;
	done_.put(key, Entry{p->second, reply, now + double(ttl_)});
	pending_.erase(p);
}

void IdempotencyCache::abandon(const std::string &key)
{
	pending_.erase(key);
}

} // namespace posthorn::http
