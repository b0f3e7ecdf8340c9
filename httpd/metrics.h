/*
 * GET /metrics: DESIGN §9 families counted across all processes.
 *
 * httpd counts its own families in process_stats() (common/stats.h). For a
 * scrape it asks the control process (IMSG_STATS_REQUEST) for the merged
 * snapshot of the other processes (smtpd, relayer, control), adds its own,
 * and renders the Prometheus text format. Contract with control: the reply
 * to httpd does not include httpd's own snapshot (no round trip back), so
 * nothing is counted twice. If control does not answer within
 * METRICS_WAIT_MS, httpd serves its own families alone and says so in the log.
 */
#pragma once

#include <cstdint>
#include <map>
#include <memory>

#include "common/imsg.h"
#include "common/stats.h"
#include "server.h"

struct event_base;
struct event;

namespace posthorn::http {

inline constexpr int METRICS_WAIT_MS = 2000;

class MetricsPage {
public:
	MetricsPage(event_base *base, const Stats &own) : base_(base), own_(own) {}
	~MetricsPage();
	MetricsPage(const MetricsPage &) = delete;
	MetricsPage &operator=(const MetricsPage &) = delete;

	/* The channel to the control process (nullptr: none; serve local counters). */
	void attach(ImsgChannel *control) { control_ = control; }
	void serve(const std::shared_ptr<Exchange> &ex);
	/* IMSG_STATS_REPLY from control; false for other types. */
	bool handle(Imsg &msg);
	/* The control channel closed: answer everyone with what we have. */
	void fail_all();

private:
	struct Wait {
		MetricsPage *page;
		uint64_t id;
		std::shared_ptr<Exchange> ex;
		event *timer = nullptr;
		~Wait();
	};
	static void on_timeout(int, short, void *arg) noexcept;
	void answer(uint64_t id, const StatsSnapshot *others);

	event_base *base_;
	const Stats &own_;
	ImsgChannel *control_ = nullptr;
	uint64_t next_id_ = 1;
	std::map<uint64_t, std::unique_ptr<Wait>> waits_;
};

} // namespace posthorn::http
