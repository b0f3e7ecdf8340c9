/*
 * Response shapes and content negotiation.
 */
#include "reply.h"

#include <strings.h>

#include <algorithm>
#include <cstdlib>

#include "common/log.h"
#include "common/text.h"

namespace posthorn::http {

namespace {

/* q of one media range ("text/html;level=1;q=0.8"); 1 when absent. */
double quality(std::string_view params)
{
	while (!params.empty()) {
		size_t semi = params.find(';');
		std::string_view p = trim(params.substr(0, semi));
		params = semi == std::string_view::npos ? std::string_view() : params.substr(semi + 1);
		if (p.size() > 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
			std::string v(p.substr(2));
			char *end = nullptr;
			double q = strtod(v.c_str(), &end);
			return end && *end == '\0' && q >= 0 && q <= 1 ? q : 0;
		}
	}
	return 1;
}

Reply json_reply(int status, std::string body)
{
	Reply r;
	r.status = status;
	r.headers.emplace_back("Content-Type", std::string(JSON_TYPE));
	r.body = std::move(body);
	r.body += '\n';
	return r;
}

} // namespace

const std::string *Reply::header(std::string_view name) const
{
	for (const auto &[k, v] : headers)
		if (iequals(k, name))
			return &v;
	return nullptr;
}

const char *reason_phrase(int status)
{
	switch (status) {
	case 200: return "OK";
	case 202: return "Accepted";
	case 303: return "See Other";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Content";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	}
	return "Unknown";
}

Reply json_error(int status, std::string_view code, std::string_view message)
{
	JsonOut j;
	j.open().key("error").str(message).key("code").str(code).close();
	return json_reply(status, j.take());
}

Reply json_validation(const std::vector<std::pair<std::string, std::string>> &fields)
{
	auto sorted = fields;
	std::sort(sorted.begin(), sorted.end());
	JsonOut f;
	f.open();
	for (const auto &[name, problem] : sorted)
		f.key(name).str(problem);
	f.close();
	JsonOut j;
	j.open().key("error").str("validation failed").key("code").str("validation_failed");
	j.key("fields").raw(f.take()).close();
	return json_reply(422, j.take());
}

Reply json_status(int http_status, std::string_view status, std::string_view submission_id)
{
	JsonOut j;
	j.open().key("status").str(status).key("submission_id").str(submission_id).close();
	return json_reply(http_status, j.take());
}

Reply redirect(std::string_view location)
{
	Reply r;
	r.status = 303;
	r.headers.emplace_back("Location", std::string(location));
	return r;
}

Reply text(int status, std::string_view content_type, std::string body)
{
	Reply r;
	r.status = status;
	r.headers.emplace_back("Content-Type", std::string(content_type));
	r.body = std::move(body);
	return r;
}

bool prefers_html(const char *accept)
{
	if (!accept)
		return false;
	double html = 0, json = 0;
	std::string_view a(accept);
	while (!a.empty()) {
		size_t comma = a.find(',');
		std::string_view range = trim(a.substr(0, comma));
		a = comma == std::string_view::npos ? std::string_view() : a.substr(comma + 1);
		size_t semi = range.find(';');
		std::string_view type = trim(range.substr(0, semi));
		double q = quality(semi == std::string_view::npos ? "" : range.substr(semi + 1));
		if (iequals(type, "text/html") || iequals(type, "application/xhtml+xml"))
			html = std::max(html, q);
		else if (iequals(type, "application/json"))
			json = std::max(json, q);
	}
	return html > 0 && html > json;
}

void JsonOut::comma()
{
	if (!first_)
		out_ += ',';
	first_ = false;
}

JsonOut &JsonOut::open()
{
	out_ += '{';
	first_ = true;
	return *this;
}

JsonOut &JsonOut::close()
{
	out_ += '}';
	first_ = false;
	return *this;
}

JsonOut &JsonOut::key(std::string_view k)
{
	comma();
	out_ += '"';
	out_ += json_escape(k);
	out_ += "\":";
	first_ = true; /* the value follows without a comma */
	return *this;
}

JsonOut &JsonOut::str(std::string_view v)
{
	out_ += '"';
	out_ += json_escape(v);
	out_ += '"';
	first_ = false;
	return *this;
}

JsonOut &JsonOut::raw(std::string_view v)
{
	out_ += v;
	first_ = false;
	return *this;
}

JsonOut &JsonOut::strings(const std::vector<std::string> &v)
{
	out_ += '[';
	for (size_t i = 0; i < v.size(); i++) {
		if (i)
			out_ += ',';
		out_ += '"';
		out_ += json_escape(v[i]);
		out_ += '"';
	}
	out_ += ']';
	first_ = false;
	return *this;
}

} // namespace posthorn::http
