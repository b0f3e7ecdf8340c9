/*
 * The operator's levers on the delivery queue (posthornctl(8)): look at what
 * waits, pause and resume transports, make messages due now, remove them.
 */
#include <time.h>

#include "common/log.h"
#include "relayer/queue.h"

namespace posthorn {

void DeliveryQueue::each(const std::function<void(const SpoolEntry &, bool running)> &fn) const
{
	for (const auto &[id, item] : items_)
		fn(item.entry, item.running);
}

const SpoolEntry *DeliveryQueue::find(const std::string &id, bool *running) const
{
	auto it = items_.find(id);
	if (it == items_.end())
		return nullptr;
	if (running)
		*running = it->second.running;
	return &it->second.entry;
}

void DeliveryQueue::pause(const std::string &transport)
{
	if (!transport.empty()) {
		paused_.insert(transport);
		return;
	}
	for (const auto &[name, t] : transports_)
		paused_.insert(name);
}

void DeliveryQueue::resume(const std::string &transport)
{
	std::set<std::string> resumed;
	if (transport.empty())
		resumed.swap(paused_);
	else if (paused_.erase(transport))
		resumed.insert(transport);
	for (const std::string &name : resumed)
		start_ready(name);
}

/*
 * A waiting message is on the timeline under (next_attempt, id); one that is
 * already due sits in its transport's ready list or is running.
 */
size_t DeliveryQueue::schedule(const std::string &id)
{
	int64_t now = static_cast<int64_t>(time(nullptr));
	size_t n = 0;
	auto one = [&](Item &item) {
		SpoolEntry &e = item.entry;
		if (item.running || timeline_.erase({e.next_attempt, e.msg.id}) == 0)
			return;
		e.next_attempt = now;
		timeline_.emplace(now, e.msg.id);
		n++;
	};
	if (id == "all")
		for (auto &[key, item] : items_)
			one(item);
	else if (auto it = items_.find(id); it != items_.end())
		one(it->second);
	if (n > 0)
		arm();
	return n;
}

/*
 * A running delivery cannot be called back: its answer finds no item and
 * only frees the slot (finished()). Stale ids in the ready lists are skipped.
 */
size_t DeliveryQueue::remove(const std::string &id)
{
	std::vector<std::string> ids;
	if (id == "all")
		for (const auto &[key, item] : items_)
			ids.push_back(key);
	else if (items_.count(id))
		ids.push_back(id);
	for (const std::string &key : ids) {
		Item &item = items_.at(key);
		timeline_.erase({item.entry.next_attempt, key});
		spool_.remove(key);
		log_event(LogLevel::info, "submission_removed",
		    {{"submission_id", key}, {"transport", item.entry.msg.transport},
			{"attempts", item.entry.attempts}});
		forget(key);
	}
	if (!ids.empty())
		arm();
	return ids.size();
}

} // namespace posthorn
