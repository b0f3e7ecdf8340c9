/*
 * The delivery scheduler. Every message here is already durable in the
 * spool. Due messages wait in a per-transport ready list and start while the
 * transport has fewer than max_inflight deliveries running. Transient
 * failures back off exponentially with jitter (retry_initial doubling to
 * retry_max, or the provider's Retry-After); after queue_lifetime, or on a
 * permanent failure, the message goes to dead/ with a log line.
 */
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "relayer/spool.h"
#include "relayer/transport.h"

struct event_base;
struct event;

namespace posthorn {

struct QueueSettings {
	uint64_t lifetime = 4 * 86400;
	uint64_t retry_initial = 30;
	uint64_t retry_max = 3600;
};

using TransportMap = std::map<std::string, std::shared_ptr<Transport>>;

/* Backoff before attempt n+1 after n failures (n >= 1), with ±20 % jitter. */
uint64_t retry_delay(const QueueSettings &s, uint32_t failures, long retry_after, double jitter01);

class DeliveryQueue {
public:
	DeliveryQueue(event_base *base, Spool &spool);
	~DeliveryQueue();
	DeliveryQueue(const DeliveryQueue &) = delete;
	DeliveryQueue &operator=(const DeliveryQueue &) = delete;

	void configure(TransportMap transports, const QueueSettings &settings);
	/* Take a spooled message; it starts when due and its transport has room. */
	void add(SpoolEntry e);
	size_t size() const { return items_.size(); }
	unsigned in_flight(const std::string &transport) const;
	bool contains(const std::string &id) const { return items_.count(id) != 0; }

	/* posthornctl(8): what is queued, and the operator's levers. */
	void each(const std::function<void(const SpoolEntry &, bool running)> &fn) const;
	const SpoolEntry *find(const std::string &id, bool *running = nullptr) const;
	const TransportMap &transports() const { return transports_; }
	/* A paused transport starts nothing new; "" means every configured transport. */
	void pause(const std::string &transport);
	void resume(const std::string &transport);
	bool paused(const std::string &transport) const { return paused_.count(transport) != 0; }
	/* Make waiting messages due now: an id or "all"; returns how many moved. */
	size_t schedule(const std::string &id);
	/* Drop from the queue and the spool: an id or "all"; returns how many. */
	size_t remove(const std::string &id);

	/* Deliveries outside the queue (sync mode) count against the same cap. */
	void note_started(const std::string &transport) { inflight_[transport]++; }
	void note_finished(const std::string &transport);
	/* Shutdown: start nothing new; running deliveries finish. */
	void stop() { stopped_ = true; }
	unsigned total_in_flight() const;

private:
	struct Item {
		SpoolEntry entry;
		bool running = false;
		double accepted = 0; /* unix time, for posthorn_send_latency_seconds */
	};
	static void on_timer(int, short, void *) noexcept;
	void arm();
	void promote_due();
	void start_ready(const std::string &transport);
	void start(Item &item, const std::shared_ptr<Transport> &t);
	void finished(const std::string &id, const std::string &transport, DeliveryResult r);
	void retry_or_expire(Item &item, const DeliveryResult &r);
	void fail(Item &item, const char *event, const DeliveryResult &r);
	void forget(const std::string &id);

	event_base *base_;
	Spool &spool_;
	QueueSettings settings_;
	TransportMap transports_;
	std::map<std::string, Item> items_;
	std::set<std::pair<int64_t, std::string>> timeline_;
	std::map<std::string, std::deque<std::string>> ready_;
	std::map<std::string, unsigned> inflight_;
	std::set<std::string> paused_;
	std::set<std::string> starting_; /* transports inside start_ready() */
	event *timer_;
	bool stopped_ = false;
	/* Guards completions that arrive after the queue is gone. */
	std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

} // namespace posthorn
