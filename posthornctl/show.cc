/* posthornctl(8): answers as tables and lines for a person. */
#include <stdio.h>
#include <time.h>

#include <string>
#include <vector>

#include "common/json.h"
#include "common/stats.h"
#include "posthornctl/posthornctl.h"

namespace posthorn::ctl {

namespace {

std::string str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : "";
}

int64_t num(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsNumber(v) ? static_cast<int64_t>(v->valuedouble) : 0;
}

const cJSON *array(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsArray(v) ? v : nullptr;
}

/* Control characters from the daemon never reach the terminal. */
std::string safe(std::string s)
{
	for (char &c : s)
		if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
			c = '?';
	return s;
}

/* A body keeps its lines and tabs; CR goes, other control characters (escapes) do not pass. */
std::string safe_text(const std::string &s)
{
	std::string out;
	for (char c : s) {
		if (c == '\r')
			continue;
		bool control = static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t';
		out += control || c == 0x7f ? '?' : c;
	}
	return out;
}

std::string utc(int64_t t)
{
	char buf[32];
	time_t tt = static_cast<time_t>(t);
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

/* Columns padded to the widest cell. */
void table(const std::vector<std::vector<std::string>> &rows)
{
	std::vector<size_t> width;
	for (const auto &row : rows)
		for (size_t i = 0; i < row.size(); i++) {
			if (width.size() <= i)
				width.push_back(0);
			width[i] = std::max(width[i], row[i].size());
		}
	for (const auto &row : rows) {
		std::string line;
		for (size_t i = 0; i < row.size(); i++)
			line += i + 1 == row.size() ? row[i] : row[i] + std::string(width[i] - row[i].size() + 2, ' ');
		printf("%s\n", safe(line).c_str());
	}
}

bool status(const cJSON *d)
{
	printf("version     %s\n", safe(str(d, "version")).c_str());
	printf("hostname    %s\n", safe(str(d, "hostname")).c_str());
	printf("started     %s (up %s)\n", utc(num(d, "started")).c_str(),
	    duration(num(d, "uptime")).c_str());
	printf("generation  %lld\n", static_cast<long long>(num(d, "generation")));
	printf("config      %s\n", safe(str(d, "config")).c_str());
	const char *label = "listeners";
	const cJSON *o;
	cJSON_ArrayForEach(o, array(d, "listeners")) {
		printf("%-11s %s %s %s\n", label, safe(str(o, "kind")).c_str(),
		    safe(str(o, "name")).c_str(), safe(str(o, "address")).c_str());
		label = "";
	}
	label = "processes";
	cJSON_ArrayForEach(o, array(d, "processes")) {
		printf("%-11s %-8s %lld\n", label, safe(str(o, "name")).c_str(),
		    static_cast<long long>(num(o, "pid")));
		label = "";
	}
	return true;
}

bool stats(const cJSON *d)
{
	StatsSnapshot s;
	if (!stats_from_json(json_print(d), s))
		return false;
	fputs(stats_prometheus(s).c_str(), stdout);
	return true;
}

std::string next_attempt(const cJSON *m, int64_t now)
{
	std::string state = str(m, "state");
	if (state != "waiting")
		return state;
	return "in " + duration(num(m, "next_attempt") - now);
}

bool queue(const cJSON *d)
{
	std::vector<std::vector<std::string>> rows = {
	    {"ID", "AGE", "TRANSPORT", "ATTEMPTS", "NEXT", "LAST ERROR"}};
	int64_t now = num(d, "now");
	const cJSON *m;
	cJSON_ArrayForEach(m, array(d, "messages"))
		rows.push_back({str(m, "id"), duration(num(m, "age")), str(m, "transport"),
		    std::to_string(num(m, "attempts")), next_attempt(m, now), str(m, "last_error")});
	if (rows.size() == 1) {
		printf("the queue is empty\n");
		return true;
	}
	table(rows);
	return true;
}

std::string joined(const cJSON *a)
{
	std::string out;
	const cJSON *v;
	cJSON_ArrayForEach(v, a)
		if (cJSON_IsString(v))
			out += (out.empty() ? "" : ", ") + std::string(v->valuestring);
	return out;
}

bool message(const cJSON *d)
{
	std::vector<std::vector<std::string>> rows;
	for (const char *key : {"id", "state", "source", "transport", "delivery", "envelope_from"})
		rows.push_back({std::string(key) + ":", str(d, key)});
	rows.push_back({"recipients:", joined(array(d, "recipients"))});
	for (const char *key : {"from", "reply_to", "subject"})
		rows.push_back({std::string(key) + ":", str(d, key)});
	rows.push_back({"created:", utc(num(d, "created"))});
	rows.push_back({"queued_at:", utc(num(d, "queued_at"))});
	rows.push_back({"attempts:", std::to_string(num(d, "attempts"))});
	rows.push_back({"next_attempt:", utc(num(d, "next_attempt"))});
	rows.push_back({"last_error:", str(d, "last_error")});
	const cJSON *o;
	cJSON_ArrayForEach(o, array(d, "headers"))
		rows.push_back({"header:", str(o, "name") + ": " + str(o, "value")});
	cJSON_ArrayForEach(o, array(d, "attachments"))
		rows.push_back({"attachment:", str(o, "filename") + " (" + str(o, "content_type") + ", " +
		    std::to_string(num(o, "size")) + " bytes)"});
	rows.push_back({"body:", std::to_string(num(d, "text_size")) + " bytes text, " +
	    std::to_string(num(d, "html_size")) + " bytes html"});
	table(rows);
	/* -v: the bodies as they are (text is the operator's to read). */
	if (cJSON_GetObjectItemCaseSensitive(d, "text_body"))
		printf("\n%s\n", safe_text(str(d, "text_body")).c_str());
	if (!str(d, "html_body").empty())
		printf("\n%s\n", safe_text(str(d, "html_body")).c_str());
	return true;
}

bool transports(const cJSON *d)
{
	std::vector<std::vector<std::string>> rows = {
	    {"NAME", "TYPE", "STATE", "IN FLIGHT", "QUEUED"}};
	const cJSON *t;
	cJSON_ArrayForEach(t, array(d, "transports"))
		rows.push_back({str(t, "name"), str(t, "type"), str(t, "state"),
		    std::to_string(num(t, "in_flight")) + "/" + std::to_string(num(t, "max_inflight")),
		    std::to_string(num(t, "queued"))});
	table(rows);
	return true;
}

bool count(const cJSON *d, const char *key, const char *verb)
{
	int64_t n = num(d, key);
	printf("%lld message%s %s\n", static_cast<long long>(n), n == 1 ? "" : "s", verb);
	return true;
}

} // namespace

std::string duration(int64_t s)
{
	if (s < 0)
		s = 0;
	char buf[64];
	if (s >= 86400)
		snprintf(buf, sizeof(buf), "%lldd%02lldh", static_cast<long long>(s / 86400),
		    static_cast<long long>(s % 86400 / 3600));
	else if (s >= 3600)
		snprintf(buf, sizeof(buf), "%lldh%02lldm", static_cast<long long>(s / 3600),
		    static_cast<long long>(s % 3600 / 60));
	else if (s >= 60)
		snprintf(buf, sizeof(buf), "%lldm%02llds", static_cast<long long>(s / 60),
		    static_cast<long long>(s % 60));
	else
		snprintf(buf, sizeof(buf), "%llds", static_cast<long long>(s));
	return buf;
}

bool render(Render how, const cJSON *doc, const Options &)
{
	switch (how) {
	case Render::status: return status(doc);
	case Render::stats: return stats(doc);
	case Render::queue: return queue(doc);
	case Render::message: return message(doc);
	case Render::transports:
	case Render::paused: return transports(doc);
	case Render::scheduled: return count(doc, "scheduled", "scheduled");
	case Render::removed: return count(doc, "removed", "removed");
	case Render::reload:
		printf("configuration reloaded, generation %lld\n",
		    static_cast<long long>(num(doc, "generation")));
		return true;
	case Render::log:
	case Render::monitor: return true;
	}
	return false;
}

/* "time level proc: msg key=value ..." like log_format = text. */
void render_event(const std::string &line, const Options &opts)
{
	Json ev = json_parse(line);
	if (opts.json || !cJSON_IsObject(ev.get())) {
		printf("%s\n", safe(line).c_str());
		return;
	}
	std::string out = str(ev.get(), "time") + " " + str(ev.get(), "level") + " " +
	    str(ev.get(), "proc") + ": " + str(ev.get(), "msg");
	const cJSON *f;
	cJSON_ArrayForEach(f, ev.get()) {
		std::string key = f->string;
		if (key == "time" || key == "level" || key == "proc" || key == "msg")
			continue;
		if (cJSON_IsString(f))
			out += " " + key + "=" + f->valuestring;
		else
			out += " " + key + "=" + json_print(f);
	}
	printf("%s\n", safe(out).c_str());
}

} // namespace posthorn::ctl
