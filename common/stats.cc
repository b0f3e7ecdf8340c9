/*
 * The metric table, the registry, merging, the Prometheus exposition and the
 * snapshot codec. See stats.h.
 */
#include "stats.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "imsg.h"
#include "json.h"
#include "memfd.h"
#include "proc.h"

namespace posthorn {

namespace {

using T = MetricType;

constexpr size_t MAX_SERIES = 100000;   /* over all families of one snapshot */
constexpr size_t MAX_LABEL = 1024;      /* bytes of one label value */
constexpr size_t MAX_STATS_JSON = 64u << 20;
constexpr double MAX_EXACT = 9007199254740992.0; /* 2^53 */

const char *type_name(MetricType t)
{
	switch (t) {
	case T::counter: return "counter";
	case T::gauge: return "gauge";
	case T::histogram: return "histogram";
	}
	return "untyped";
}

/* Format 0.0.4: backslash and newline escaped; in label values the double quote too. */
std::string escape(std::string_view v, bool label)
{
	std::string out;
	out.reserve(v.size());
	for (char c : v) {
		if (c == '\\')
			out += "\\\\";
		else if (c == '"' && label)
			out += "\\\"";
		else if (c == '\n')
			out += "\\n";
		else
			out += c;
	}
	return out;
}

std::string number(double v)
{
	if (std::isinf(v))
		return v > 0 ? "+Inf" : "-Inf";
	if (std::isnan(v))
		return "NaN";
	char buf[64];
	if (v == std::floor(v) && std::fabs(v) < 1e15) {
		snprintf(buf, sizeof(buf), "%.0f", v);
		return buf;
	}
	auto r = std::to_chars(buf, buf + sizeof(buf), v); /* shortest round-trip form */
	return std::string(buf, r.ptr);
}

std::string label_set(const MetricFamily &f, const std::vector<std::string> &values,
    const char *extra_name = nullptr, std::string_view extra_value = {})
{
	if (f.labels.empty() && !extra_name)
		return "";
	std::string out = "{";
	for (size_t i = 0; i < f.labels.size(); i++) {
		if (i)
			out += ',';
		out += f.labels[i];
		out += "=\"" + escape(values[i], true) + "\"";
	}
	if (extra_name) {
		if (!f.labels.empty())
			out += ',';
		out += extra_name;
		out += "=\"" + escape(extra_value, true) + "\"";
	}
	return out + "}";
}

void render_histogram(std::string &out, const MetricFamily &f, const std::vector<std::string> &lv,
    const StatsSeries &s)
{
	const std::vector<double> &bounds = latency_buckets();
	std::string name = f.name;
	uint64_t cumulative = 0;
	for (size_t i = 0; i < bounds.size(); i++) {
		cumulative += i < s.buckets.size() ? s.buckets[i] : 0;
		out += name + "_bucket" + label_set(f, lv, "le", number(bounds[i])) + " " +
		    std::to_string(cumulative) + "\n";
	}
	out += name + "_bucket" + label_set(f, lv, "le", "+Inf") + " " + std::to_string(s.count) +
	    "\n";
	out += name + "_sum" + label_set(f, lv) + " " + number(s.sum) + "\n";
	out += name + "_count" + label_set(f, lv) + " " + std::to_string(s.count) + "\n";
}

void render_family(std::string &out, const MetricFamily &f, const StatsSnapshot &s)
{
	out += "# HELP " + std::string(f.name) + " " + escape(f.help, false) + "\n";
	out += "# TYPE " + std::string(f.name) + " " + type_name(f.type) + "\n";
	auto it = s.find(f.name);
	if (it == s.end() || it->second.empty()) {
		/* A family without labels always has its one series, even at zero. */
		if (f.labels.empty() && f.type == T::histogram)
			render_histogram(out, f, {}, StatsSeries{});
		else if (f.labels.empty())
			out += std::string(f.name) + " 0\n";
		return;
	}
	for (const auto &[labels, series] : it->second) {
		if (f.type == T::histogram)
			render_histogram(out, f, labels, series);
		else
			out += std::string(f.name) + label_set(f, labels) + " " + number(series.value) +
			    "\n";
	}
}

void merge_series(StatsSeries &into, const StatsSeries &from, MetricType type)
{
	if (type != T::histogram) {
		into.value += from.value;
		return;
	}
	into.buckets.resize(latency_buckets().size());
	for (size_t i = 0; i < from.buckets.size() && i < into.buckets.size(); i++)
		into.buckets[i] += from.buckets[i];
	into.sum += from.sum;
	into.count += from.count;
}

cJSON *series_to_json(const MetricFamily &f, const std::vector<std::string> &labels,
    const StatsSeries &s)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *l = cJSON_AddArrayToObject(o, "labels");
	for (const std::string &v : labels)
		cJSON_AddItemToArray(l, cJSON_CreateString(v.c_str()));
	if (f.type != T::histogram) {
		cJSON_AddNumberToObject(o, "value", s.value);
		return o;
	}
	cJSON *b = cJSON_AddArrayToObject(o, "buckets");
	for (uint64_t n : s.buckets)
		cJSON_AddItemToArray(b, cJSON_CreateNumber(static_cast<double>(n)));
	cJSON_AddNumberToObject(o, "sum", s.sum);
	cJSON_AddNumberToObject(o, "count", static_cast<double>(s.count));
	return o;
}

bool json_count(const cJSON *v, uint64_t &out)
{
	if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble > MAX_EXACT ||
	    v->valuedouble != std::floor(v->valuedouble))
		return false;
	out = static_cast<uint64_t>(v->valuedouble);
	return true;
}

bool json_finite(const cJSON *v, double &out)
{
	if (!cJSON_IsNumber(v) || !std::isfinite(v->valuedouble))
		return false;
	out = v->valuedouble;
	return true;
}

bool labels_from_json(const MetricFamily &f, const cJSON *l, std::vector<std::string> &out)
{
	if (!cJSON_IsArray(l) || static_cast<size_t>(cJSON_GetArraySize(l)) != f.labels.size())
		return false;
	const cJSON *v;
	cJSON_ArrayForEach(v, l) {
		if (!cJSON_IsString(v) || strlen(v->valuestring) > MAX_LABEL)
			return false;
		out.emplace_back(v->valuestring);
	}
	return true;
}

bool histogram_from_json(const cJSON *o, StatsSeries &s)
{
	const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "buckets");
	if (!cJSON_IsArray(b) ||
	    static_cast<size_t>(cJSON_GetArraySize(b)) != latency_buckets().size())
		return false;
	const cJSON *v;
	cJSON_ArrayForEach(v, b) {
		uint64_t n;
		if (!json_count(v, n))
			return false;
		s.buckets.push_back(n);
	}
	return json_finite(cJSON_GetObjectItemCaseSensitive(o, "sum"), s.sum) &&
	    json_count(cJSON_GetObjectItemCaseSensitive(o, "count"), s.count);
}

bool series_from_json(const MetricFamily &f, const cJSON *o, std::vector<std::string> &labels,
    StatsSeries &s)
{
	if (!cJSON_IsObject(o) ||
	    !labels_from_json(f, cJSON_GetObjectItemCaseSensitive(o, "labels"), labels))
		return false;
	if (f.type == T::histogram)
		return histogram_from_json(o, s);
	return json_finite(cJSON_GetObjectItemCaseSensitive(o, "value"), s.value);
}

} // namespace

const std::vector<MetricFamily> &metric_families()
{
	static const std::vector<MetricFamily> families = {
		{"posthorn_auth_failed_total", T::counter, {"endpoint"},
		    "Requests refused for a missing or wrong API key or SMTP credentials."},
		{"posthorn_delivery_attempts_total", T::counter, {"transport", "result"},
		    "Delivery attempts made by the relayer, by result (sent, transient, permanent)."},
		{"posthorn_idempotent_replay_total", T::counter, {"endpoint"},
		    "API requests answered from the idempotency cache."},
		{"posthorn_queue_messages", T::gauge, {},
		    "Messages in the spool waiting for delivery."},
		{"posthorn_rate_limited_total", T::counter, {"endpoint"},
		    "Requests refused by the rate limit."},
		{"posthorn_send_latency_seconds", T::histogram, {"endpoint", "transport"},
		    "Time from accepting a submission to the provider's acceptance."},
		{"posthorn_smtp_sessions_active", T::gauge, {},
		    "SMTP sessions in progress."},
		{"posthorn_spam_blocked_total", T::counter, {"endpoint", "kind"},
		    "Submissions stopped by the honeypot, origin or CSRF checks."},
		{"posthorn_submissions_failed_total", T::counter,
		    {"endpoint", "transport", "error_class"},
		    "Submissions that could not be delivered or queued."},
		{"posthorn_submissions_received_total", T::counter, {"endpoint"},
		    "Submissions that passed validation."},
		{"posthorn_submissions_sent_total", T::counter, {"endpoint", "transport"},
		    "Submissions the provider accepted."},
		{"posthorn_validation_failed_total", T::counter, {"endpoint"},
		    "Submissions refused for missing fields or bad addresses."},
	};
	return families;
}

const MetricFamily *metric_family(std::string_view name)
{
	for (const MetricFamily &f : metric_families())
		if (name == f.name)
			return &f;
	return nullptr;
}

const std::vector<double> &latency_buckets()
{
	static const std::vector<double> b = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
	    10, 30};
	return b;
}

StatsSeries *Stats::series(std::string_view family, std::initializer_list<std::string_view> labels,
    MetricType want)
{
	const MetricFamily *f = metric_family(family);
	if (!f || f->type != want || labels.size() != f->labels.size())
		return nullptr;
	std::vector<std::string> key(labels.begin(), labels.end());
	StatsSeries &s = snap_[f->name][std::move(key)];
	if (want == T::histogram && s.buckets.empty())
		s.buckets.resize(latency_buckets().size());
	return &s;
}

void Stats::add(std::string_view family, std::initializer_list<std::string_view> labels, double n)
{
	if (StatsSeries *s = series(family, labels, T::counter))
		s->value += n;
}

void Stats::set(std::string_view family, std::initializer_list<std::string_view> labels, double v)
{
	if (StatsSeries *s = series(family, labels, T::gauge))
		s->value = v;
}

void Stats::observe(std::string_view family, std::initializer_list<std::string_view> labels,
    double v)
{
	StatsSeries *s = series(family, labels, T::histogram);
	if (!s)
		return;
	const std::vector<double> &bounds = latency_buckets();
	for (size_t i = 0; i < bounds.size(); i++)
		if (v <= bounds[i]) {
			s->buckets[i]++;
			break;
		}
	s->sum += v;
	s->count++;
}

Stats &process_stats()
{
	static Stats stats;
	return stats;
}

void stats_merge(StatsSnapshot &into, const StatsSnapshot &from)
{
	for (const auto &[name, series] : from) {
		const MetricFamily *f = metric_family(name);
		if (!f)
			continue;
		for (const auto &[labels, s] : series)
			if (labels.size() == f->labels.size())
				merge_series(into[name][labels], s, f->type);
	}
}

std::string stats_prometheus(const StatsSnapshot &s)
{
	std::string out;
	for (const MetricFamily &f : metric_families())
		render_family(out, f, s);
	return out;
}

std::string stats_to_json(const StatsSnapshot &s)
{
	Json root(cJSON_CreateObject());
	cJSON_AddNumberToObject(root.get(), "version", 1);
	cJSON *metrics = cJSON_AddObjectToObject(root.get(), "metrics");
	for (const auto &[name, series] : s) {
		const MetricFamily *f = metric_family(name);
		if (!f)
			continue;
		cJSON *a = cJSON_AddArrayToObject(metrics, f->name);
		for (const auto &[labels, one] : series)
			cJSON_AddItemToArray(a, series_to_json(*f, labels, one));
	}
	return json_print(root.get());
}

bool stats_from_json(std::string_view json, StatsSnapshot &out)
{
	if (json.size() > MAX_STATS_JSON)
		return false;
	Json root = json_parse(json);
	const cJSON *version = cJSON_GetObjectItemCaseSensitive(root.get(), "version");
	const cJSON *metrics = cJSON_GetObjectItemCaseSensitive(root.get(), "metrics");
	if (!cJSON_IsNumber(version) || version->valuedouble != 1 || !cJSON_IsObject(metrics))
		return false;
	StatsSnapshot s;
	size_t total = 0;
	const cJSON *family;
	cJSON_ArrayForEach(family, metrics) {
		const MetricFamily *f = metric_family(family->string);
		if (!f || !cJSON_IsArray(family) || s.count(f->name))
			return false;
		auto &series = s[f->name];
		const cJSON *o;
		cJSON_ArrayForEach(o, family) {
			std::vector<std::string> labels;
			StatsSeries one;
			if (++total > MAX_SERIES || !series_from_json(*f, o, labels, one) ||
			    !series.emplace(std::move(labels), std::move(one)).second)
				return false;
		}
	}
	out = std::move(s);
	return true;
}

bool stats_request(ImsgChannel &chan, uint64_t reqid)
{
	ImsgWriter w;
	w.u64(reqid);
	return chan.compose(IMSG_STATS_REQUEST, w);
}

bool stats_reply(ImsgChannel &chan, uint64_t reqid, const StatsSnapshot &s)
{
	std::string json = stats_to_json(s);
	ImsgWriter w;
	w.u64(reqid);
	if (json.size() + 12 <= IMSG_MAX_PAYLOAD) {
		w.str(json);
		return chan.compose(IMSG_STATS_REPLY, w);
	}
	Fd doc = memfd_sealed("posthorn-stats", json);
	if (!doc)
		return false;
	w.str("");
	return chan.compose(IMSG_STATS_REPLY, w, std::move(doc));
}

bool stats_reply_decode(const Imsg &msg, uint64_t &reqid, StatsSnapshot &out)
{
	ImsgReader r(msg, false);
	reqid = r.u64();
	std::string json = r.str();
	if (!r.end())
		return false;
	if (json.empty()) {
		if (!msg.fd || !memfd_is_sealed(msg.fd.get()) ||
		    !memfd_read(msg.fd.get(), json, MAX_STATS_JSON))
			return false;
	}
	return stats_from_json(json, out);
}

bool stats_handle_request(ImsgChannel &chan, Imsg &msg, const Stats &stats)
{
	if (msg.type() != IMSG_STATS_REQUEST)
		return false;
	ImsgReader r(msg);
	uint64_t reqid = r.u64();
	r.end();
	if (!stats_reply(chan, reqid, stats.snapshot()))
		log_warnx("stats: cannot answer %s", chan.name.c_str());
	return true;
}

} // namespace posthorn
