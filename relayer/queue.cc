#include "queue.h"

#include <sys/random.h>
#include <time.h>

#include <algorithm>

#include <event2/event.h>

#include "common/log.h"
#include "common/stats.h"

namespace posthorn {

namespace {

int64_t now_s() { return static_cast<int64_t>(time(nullptr)); }

double realtime_now()
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return static_cast<double>(ts.tv_sec) + ts.tv_nsec / 1e9;
}

double random01()
{
	uint32_t r;
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		return 0.5;
	return r / 4294967296.0;
}

} // namespace

uint64_t retry_delay(const QueueSettings &s, uint32_t failures, long retry_after, double jitter01)
{
	if (retry_after >= 0)
		return std::clamp<uint64_t>(static_cast<uint64_t>(retry_after), 1, s.retry_max);
	uint64_t d = s.retry_initial;
	for (uint32_t i = 1; i < failures && d < s.retry_max; i++)
		d *= 2;
	d = std::min(d, s.retry_max);
	double jittered = static_cast<double>(d) * (0.8 + 0.4 * jitter01);
	return std::max<uint64_t>(1, static_cast<uint64_t>(jittered + 0.5));
}

DeliveryQueue::DeliveryQueue(event_base *base, Spool &spool) : base_(base), spool_(spool)
{
	timer_ = evtimer_new(base_, on_timer, this);
}

DeliveryQueue::~DeliveryQueue()
{
	*alive_ = false;
	event_free(timer_);
}

void DeliveryQueue::configure(TransportMap transports, const QueueSettings &settings)
{
	transports_ = std::move(transports);
	settings_ = settings;
	for (auto &[name, t] : transports_)
		start_ready(name);
	arm();
}

unsigned DeliveryQueue::in_flight(const std::string &transport) const
{
	auto it = inflight_.find(transport);
	return it == inflight_.end() ? 0 : it->second;
}

unsigned DeliveryQueue::total_in_flight() const
{
	unsigned n = 0;
	for (const auto &[name, count] : inflight_)
		n += count;
	return n;
}

void DeliveryQueue::add(SpoolEntry e)
{
	std::string id = e.msg.id;
	int64_t due = e.next_attempt;
	/* A fresh submission is timed from now; one recovered from the spool from queued_at. */
	double accepted = now_s() - e.queued_at <= 1 ? realtime_now() : e.queued_at;
	auto [it, fresh] = items_.emplace(id, Item{std::move(e), false, accepted});
	if (!fresh)
		return;
	timeline_.emplace(due, id);
	arm();
}

void DeliveryQueue::arm()
{
	evtimer_del(timer_);
	if (timeline_.empty())
		return;
	int64_t wait = std::max<int64_t>(0, timeline_.begin()->first - now_s());
	struct timeval tv = {static_cast<time_t>(wait), 0};
	evtimer_add(timer_, &tv);
}

void DeliveryQueue::on_timer(int, short, void *arg) noexcept
{
	auto *self = static_cast<DeliveryQueue *>(arg);
	self->promote_due();
	self->arm();
}

void DeliveryQueue::promote_due()
{
	int64_t now = now_s();
	std::set<std::string> touched;
	while (!timeline_.empty() && timeline_.begin()->first <= now) {
		std::string id = timeline_.begin()->second;
		timeline_.erase(timeline_.begin());
		auto it = items_.find(id);
		if (it == items_.end())
			continue;
		const std::string &t = it->second.entry.msg.transport;
		ready_[t].push_back(id);
		touched.insert(t);
	}
	for (const std::string &t : touched)
		start_ready(t);
}

void DeliveryQueue::start_ready(const std::string &transport)
{
	/*
	 * A transport that answers inside deliver() (file) comes back here from
	 * start(): the loop below carries on rather than recursing once per
	 * waiting message.
	 */
	if (!starting_.insert(transport).second)
		return;
	auto tit = transports_.find(transport);
	auto &ready = ready_[transport];
	while (!ready.empty() && !stopped_ && !paused(transport)) {
		auto it = items_.find(ready.front());
		if (it == items_.end()) {
			ready.pop_front();
			continue;
		}
		if (tit == transports_.end()) {
			/* Removed by a reload: wait for it to come back or the message to expire. */
			Item &item = it->second;
			ready.pop_front();
			DeliveryResult r;
			r.detail = "transport " + transport + " is not configured";
			retry_or_expire(item, r);
			continue;
		}
		if (in_flight(transport) >= tit->second->config().max_inflight)
			break;
		ready.pop_front();
		start(it->second, tit->second);
	}
	starting_.erase(transport);
}

void DeliveryQueue::start(Item &item, const std::shared_ptr<Transport> &t)
{
	item.running = true;
	item.entry.attempts++;
	inflight_[t->name()]++;
	std::string id = item.entry.msg.id, name = t->name();
	std::weak_ptr<bool> alive = alive_;
	/* The transport is held until it answers, even across a reload. */
	t->deliver(item.entry.msg, [this, alive, id, name, t](DeliveryResult r) {
		if (alive.expired() || !*alive.lock())
			return;
		finished(id, name, std::move(r));
	});
}

void DeliveryQueue::note_finished(const std::string &transport)
{
	auto it = inflight_.find(transport);
	if (it != inflight_.end() && it->second > 0)
		it->second--;
	start_ready(transport);
}

void DeliveryQueue::finished(const std::string &id, const std::string &transport, DeliveryResult r)
{
	process_stats().add("posthorn_delivery_attempts_total", {transport, to_string(r.outcome)});
	auto it = items_.find(id);
	if (it == items_.end()) {
		note_finished(transport);
		return;
	}
	Item &item = it->second;
	item.running = false;
	log_event(r.outcome == DeliveryOutcome::sent ? LogLevel::info : LogLevel::warn,
	    "delivery_attempt",
	    {{"submission_id", id}, {"transport", transport}, {"attempt", item.entry.attempts},
		{"result", to_string(r.outcome)}, {"status", r.status}, {"detail", r.detail}});
	switch (r.outcome) {
	case DeliveryOutcome::sent:
		log_event(LogLevel::info, "submission_sent",
		    {{"submission_id", id}, {"endpoint", item.entry.msg.source},
			{"transport", transport}, {"provider_id", r.provider_id},
			{"attempts", item.entry.attempts}});
		process_stats().add("posthorn_submissions_sent_total", {item.entry.msg.source, transport});
		process_stats().observe("posthorn_send_latency_seconds", {item.entry.msg.source, transport},
		    realtime_now() - item.accepted);
		spool_.remove(id);
		forget(id);
		break;
	case DeliveryOutcome::permanent:
		fail(item, "submission_failed", r);
		break;
	case DeliveryOutcome::transient:
		retry_or_expire(item, r);
		break;
	}
	note_finished(transport);
}

void DeliveryQueue::retry_or_expire(Item &item, const DeliveryResult &r)
{
	SpoolEntry &e = item.entry;
	int64_t now = now_s();
	uint64_t delay = retry_delay(settings_, std::max<uint32_t>(e.attempts, 1), r.retry_after,
	    random01());
	e.last_error = r.detail;
	if (now + static_cast<int64_t>(delay) > e.queued_at + static_cast<int64_t>(settings_.lifetime)) {
		fail(item, "delivery_expired", r);
		return;
	}
	e.next_attempt = now + static_cast<int64_t>(delay);
	std::string why;
	/* Persisting the attempt count is best effort: losing it only resets the backoff. */
	if (!spool_.update(e, why))
		log_event(LogLevel::warn, "spool_update_failed", {{"submission_id", e.msg.id},
		    {"error", why}});
	log_event(LogLevel::info, "delivery_retry_scheduled",
	    {{"submission_id", e.msg.id}, {"transport", e.msg.transport},
		{"attempts", e.attempts}, {"retry_in_seconds", delay}});
	timeline_.emplace(e.next_attempt, e.msg.id);
	arm();
}

void DeliveryQueue::fail(Item &item, const char *event, const DeliveryResult &r)
{
	SpoolEntry &e = item.entry;
	const char *error_class = r.outcome == DeliveryOutcome::permanent ? "permanent" : "expired";
	e.last_error = r.detail;
	std::string why;
	process_stats().add("posthorn_submissions_failed_total",
	    {e.msg.source, e.msg.transport, error_class});
	if (!spool_.bury(e, why)) {
		log_event(LogLevel::error, "spool_bury_failed", {{"submission_id", e.msg.id},
		    {"error", why}});
		spool_.remove(e.msg.id);
	}
	log_event(LogLevel::error, event,
	    {{"submission_id", e.msg.id}, {"endpoint", e.msg.source},
		{"transport", e.msg.transport},
		{"error_class", error_class},
		{"attempts", e.attempts}, {"error", r.detail}});
	forget(e.msg.id);
}

void DeliveryQueue::forget(const std::string &id)
{
	items_.erase(id);
}

} // namespace posthorn
