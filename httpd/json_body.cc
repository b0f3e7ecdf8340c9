/*
 * API bodies with cJSON. cJSON keeps duplicate keys (refused here: which
 * one would win is a guess) and stops a string at an escaped NUL (refused
 * before parsing, as in common/message.cc).
 */
#include "json_body.h"

#include <cjson/cJSON.h>

#include <charconv>
#include <cmath>
#include <memory>
#include <set>

#include "common/message.h"

namespace posthorn::http {

namespace {

struct CjsonDelete {
	void operator()(cJSON *j) const noexcept { cJSON_Delete(j); }
};
using Json = std::unique_ptr<cJSON, CjsonDelete>;

bool fail(std::string &why, std::string_view field, std::string_view problem)
{
	why = "field \"";
	why += field.substr(0, 64);
	why += "\": ";
	why += problem;
	return false;
}

/* One scalar as a string; false for objects and arrays. */
bool scalar(const cJSON *j, std::string &out)
{
	if (cJSON_IsString(j))
		out = j->valuestring;
	else if (cJSON_IsBool(j))
		out = cJSON_IsTrue(j) ? "true" : "false";
	else if (cJSON_IsNumber(j))
		out = json_number(j->valuedouble);
	else if (cJSON_IsNull(j))
		out.clear();
	else
		return false;
	return true;
}

bool array_values(const cJSON *a, std::string_view name, std::vector<std::string> &out,
    std::string &why)
{
	const cJSON *e;
	cJSON_ArrayForEach(e, a) {
		std::string v;
		if (!scalar(e, v))
			return fail(why, name, "nested arrays and objects are not supported");
		out.push_back(std::move(v));
	}
	return true;
}

std::string joined(const std::vector<std::string> &v)
{
	std::string out;
	for (const std::string &s : v) {
		if (!out.empty())
			out += ", ";
		out += s;
	}
	return out;
}

bool member(const cJSON *j, JsonBody &out, std::string &why)
{
	std::string name = j->string ? j->string : "";
	if (name.empty() || name.size() > FORM_MAX_NAME || !utf8_valid(name))
		return fail(why, "", "empty, over-long or invalid field name");
	if (cJSON_IsObject(j))
		return fail(why, name, "nested objects are not supported");
	std::vector<std::string> values;
	if (cJSON_IsArray(j)) {
		if (!array_values(j, name, values, why))
			return false;
	} else if (cJSON_IsNull(j)) {
		return true; /* absent, as an unset form field */
	} else {
		values.emplace_back();
		scalar(j, values.back());
	}
	for (const std::string &v : values)
		if (!utf8_valid(v))
			return fail(why, name, "not valid UTF-8");
	if (name == TO_OVERRIDE_FIELD) {
		out.has_to_override = true;
		out.to_override = std::move(values);
	} else {
		out.fields[name] = joined(values);
	}
	return true;
}

} // namespace

std::string json_number(double d)
{
	if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9007199254740992.0) {
		char buf[32];
		auto r = std::to_chars(buf, buf + sizeof(buf), static_cast<long long>(d));
		return std::string(buf, r.ptr);
	}
	char buf[64];
	auto r = std::to_chars(buf, buf + sizeof(buf), d);
	return std::string(buf, r.ptr);
}

bool json_body_parse(std::string_view body, JsonBody &out, std::string &why)
{
	if (body.find("\\u0000") != std::string_view::npos) {
		why = "strings must not contain NUL";
		return false;
	}
	const char *end = nullptr;
	Json root(cJSON_ParseWithLengthOpts(body.data(), body.size(), &end, false));
	if (!root) {
		why = "body is not valid JSON";
		return false;
	}
	for (const char *p = end; p && p < body.data() + body.size(); p++)
		if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
			why = "unexpected data after the JSON object";
			return false;
		}
	if (!cJSON_IsObject(root.get())) {
		why = "body must be a JSON object";
		return false;
	}
	std::set<std::string> seen;
	size_t count = 0;
	const cJSON *j;
	cJSON_ArrayForEach(j, root.get()) {
		if (++count > FORM_MAX_FIELDS) {
			why = "too many fields";
			return false;
		}
		if (!seen.insert(j->string ? j->string : "").second)
			return fail(why, j->string ? j->string : "", "appears twice");
		if (!member(j, out, why))
			return false;
	}
	return true;
}

} // namespace posthorn::http
