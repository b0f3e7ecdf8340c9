/*
 * Statistics: the metric families of DESIGN §9, a per-process registry,
 * snapshots that cross between processes, and the Prometheus text format.
 *
 * Every process counts in its own registry (process_stats()). The control
 * process asks each of smtpd, httpd and relayer for a snapshot
 * (IMSG_STATS_REQUEST / IMSG_STATS_REPLY, the snapshot as JSON), merges
 * them (counters, gauges and histogram buckets add up) and serves the result
 * to posthornctl(8) and to httpd's /metrics.
 *
 * Families and label names are a fixed table; label values come only from
 * the configuration (endpoint paths, "smtp:<listener>", transport names) or
 * fixed enums. A call with an unknown family or the wrong number of labels is
 * a programming error and is ignored: never a crash over a counter.
 *
 * Who counts what, so that nothing is counted twice:
 *   fronts   received, rate_limited, auth_failed, spam_blocked,
 *            validation_failed, idempotent_replay, smtp_sessions_active, and
 *            for sync-mode submissions sent/failed and send_latency_seconds
 *            (they see the outcome);
 *   relayer  delivery_attempts (every attempt, both modes), queue_messages,
 *            and for queue-mode submissions sent/failed and send_latency_seconds.
 */
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace posthorn {

class ImsgChannel;
struct Imsg;

enum class MetricType { counter, gauge, histogram };

struct MetricFamily {
	const char *name;
	MetricType type;
	std::vector<const char *> labels;
	const char *help;
};

/* The table, sorted by name. */
const std::vector<MetricFamily> &metric_families();
const MetricFamily *metric_family(std::string_view name);
/* Upper bounds of posthorn_send_latency_seconds in seconds (+Inf implied). */
const std::vector<double> &latency_buckets();

struct StatsSeries {
	double value = 0;              /* counter, gauge */
	std::vector<uint64_t> buckets; /* histogram: one count per bound, not cumulative */
	double sum = 0;
	uint64_t count = 0;
};

/* family name -> label values (in the family's label order) -> series */
using StatsSnapshot = std::map<std::string, std::map<std::vector<std::string>, StatsSeries>>;

class Stats {
public:
	void add(std::string_view family, std::initializer_list<std::string_view> labels,
	    double n = 1);
	void set(std::string_view family, std::initializer_list<std::string_view> labels, double v);
	void observe(std::string_view family, std::initializer_list<std::string_view> labels,
	    double v);
	const StatsSnapshot &snapshot() const { return snap_; }

private:
	StatsSeries *series(std::string_view family, std::initializer_list<std::string_view> labels,
	    MetricType want);
	StatsSnapshot snap_;
};

/* This process's registry. */
Stats &process_stats();

/* Add `from` into `into`; unknown families and wrong label counts are dropped. */
void stats_merge(StatsSnapshot &into, const StatsSnapshot &from);
/* Prometheus text format 0.0.4: every family with HELP and TYPE, series sorted by labels. */
std::string stats_prometheus(const StatsSnapshot &s);
inline constexpr std::string_view PROMETHEUS_CONTENT_TYPE =
    "text/plain; version=0.0.4; charset=utf-8";

/*
 * JSON form: {"version":1,"metrics":{"<family>":[{"labels":[...],"value":N}
 * | {"labels":[...],"buckets":[...],"sum":S,"count":C}, ...]}}.
 * Decoding treats the document as input: bounded, every field checked,
 * false (and `out` untouched) on any malformation.
 */
std::string stats_to_json(const StatsSnapshot &s);
bool stats_from_json(std::string_view json, StatsSnapshot &out);

/*
 * The imsg side. IMSG_STATS_REQUEST: u64 request id. IMSG_STATS_REPLY:
 * u64 request id, str JSON snapshot; when the JSON does not fit in one imsg
 * the string is empty and the snapshot travels in a sealed memfd.
 */
bool stats_request(ImsgChannel &chan, uint64_t reqid);
bool stats_reply(ImsgChannel &chan, uint64_t reqid, const StatsSnapshot &s);
/* Decode an IMSG_STATS_REPLY (checked like any input); false when malformed. */
bool stats_reply_decode(const Imsg &msg, uint64_t &reqid, StatsSnapshot &out);
/*
 * For a process's peer handler: answers an IMSG_STATS_REQUEST with `stats`
 * and returns true; returns false for any other message type.
 */
bool stats_handle_request(ImsgChannel &chan, Imsg &msg, const Stats &stats = process_stats());

} // namespace posthorn
