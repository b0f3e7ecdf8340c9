/*
 * A bounded map that forgets its least recently used entry: the storage of
 * rate-limit buckets, the auth lockout and the idempotency cache.
 */
#pragma once

#include <cstddef>
#include <list>
#include <string>
#include <unordered_map>
#include <utility>

namespace posthorn::http {

template <typename V>
class LruMap {
public:
	explicit LruMap(size_t capacity) : capacity_(capacity ? capacity : 1) {}

	/* The entry, now the most recent; nullptr if absent. */
	V *find(const std::string &key)
	{
		auto it = index_.find(key);
		if (it == index_.end())
			return nullptr;
		order_.splice(order_.begin(), order_, it->second);
		return &it->second->second;
	}

	/* Insert or replace; evicts the least recently used entry when full. */
	V &put(const std::string &key, V value)
	{
		if (V *v = find(key)) {
			*v = std::move(value);
			return *v;
		}
		while (index_.size() >= capacity_)
			evict();
		order_.emplace_front(key, std::move(value));
		index_[key] = order_.begin();
		return order_.front().second;
	}

	void erase(const std::string &key)
	{
		auto it = index_.find(key);
		if (it == index_.end())
			return;
		order_.erase(it->second);
		index_.erase(it);
	}

	void set_capacity(size_t capacity)
	{
		capacity_ = capacity ? capacity : 1;
		while (index_.size() > capacity_)
			evict();
	}

	size_t size() const { return index_.size(); }
	size_t capacity() const { return capacity_; }

private:
	void evict()
	{
		index_.erase(order_.back().first);
		order_.pop_back();
	}

	size_t capacity_;
	std::list<std::pair<std::string, V>> order_; /* front: most recent */
	std::unordered_map<std::string, typename std::list<std::pair<std::string, V>>::iterator> index_;
};

} // namespace posthorn::http
