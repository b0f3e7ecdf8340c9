/*
 * /metrics: own counters plus the other processes' (through control).
 */
#include "metrics.h"

#include <event2/event.h>

#include "common/log.h"
#include "common/proc.h"
#include "reply.h"

namespace posthorn::http {

MetricsPage::Wait::~Wait()
{
	if (timer)
		event_free(timer);
}

MetricsPage::~MetricsPage()
{
	waits_.clear();
}

void MetricsPage::serve(const std::shared_ptr<Exchange> &ex)
{
	std::string_view m = ex->method();
	if (m != "GET" && m != "HEAD") {
		Reply r = json_error(405, "method_not_allowed", "method not allowed");
		r.headers.emplace_back("Allow", "GET, HEAD");
		ex->send(r);
		return;
	}
	uint64_t id = next_id_++;
	if (!control_ || !stats_request(*control_, id)) {
		ex->send(text(200, PROMETHEUS_CONTENT_TYPE, stats_prometheus(own_.snapshot())));
		return;
	}
	auto w = std::make_unique<Wait>();
	w->page = this;
	w->id = id;
	w->ex = ex;
	w->timer = evtimer_new(base_, on_timeout, w.get());
	struct timeval tv = {METRICS_WAIT_MS / 1000, (METRICS_WAIT_MS % 1000) * 1000};
	evtimer_add(w->timer, &tv);
	waits_[id] = std::move(w);
}

void MetricsPage::answer(uint64_t id, const StatsSnapshot *others)
{
	auto it = waits_.find(id);
	if (it == waits_.end())
		return; /* timed out before; the late answer is dropped */
	std::shared_ptr<Exchange> ex = it->second->ex;
	waits_.erase(it);
	StatsSnapshot all = own_.snapshot();
	if (others)
		stats_merge(all, *others);
	ex->send(text(200, PROMETHEUS_CONTENT_TYPE, stats_prometheus(all)));
}

bool MetricsPage::handle(Imsg &msg)
{
	if (msg.type() != IMSG_STATS_REPLY)
		return false;
	uint64_t id = 0;
	StatsSnapshot others;
	if (!stats_reply_decode(msg, id, others)) {
		log_warnx("metrics: malformed statistics from control");
		answer(id, nullptr);
		return true;
	}
	answer(id, &others);
	return true;
}

void MetricsPage::on_timeout(int, short, void *arg) noexcept
{
	auto *w = static_cast<Wait *>(arg);
	log_warnx("metrics: no statistics from control in %d ms, serving httpd's own", METRICS_WAIT_MS);
	try {
		w->page->answer(w->id, nullptr);
	} catch (const std::exception &e) {
		log_warnx("metrics: %s", e.what());
	}
}

void MetricsPage::fail_all()
{
	control_ = nullptr;
	std::vector<uint64_t> ids;
	for (auto &[id, w] : waits_)
		ids.push_back(id);
	for (uint64_t id : ids)
		answer(id, nullptr);
}

} // namespace posthorn::http
