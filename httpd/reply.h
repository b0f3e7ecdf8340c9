/*
 * What httpd answers: a status, headers and a body, built here in the
 * shapes of DESIGN §7 so every path uses the same JSON. A Reply is a plain
 * value: the idempotency cache stores it and replays it byte for byte.
 */
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace posthorn::http {

inline constexpr std::string_view JSON_TYPE = "application/json; charset=utf-8";

struct Reply {
	int status = 200;
	std::vector<std::pair<std::string, std::string>> headers; /* Content-Type among them */
	std::string body;

	const std::string *header(std::string_view name) const;
};

const char *reason_phrase(int status);

/* {"error":"<message>","code":"<code>"} */
Reply json_error(int status, std::string_view code, std::string_view message);
/* 422 {"error":"validation failed","code":"validation_failed","fields":{...}} (sorted) */
Reply json_validation(const std::vector<std::pair<std::string, std::string>> &fields);
/* {"status":"<status>","submission_id":"<id>"} */
Reply json_status(int http_status, std::string_view status, std::string_view submission_id);
/* 303 See Other to `location`. */
Reply redirect(std::string_view location);
/* Plain text (healthz, metrics). */
Reply text(int status, std::string_view content_type, std::string body);

/* Does the Accept header rank text/html above application/json? (absent or * / * -> no) */
bool prefers_html(const char *accept);

/* A minimal JSON writer for flat objects (and arrays of strings). */
class JsonOut {
public:
	JsonOut &key(std::string_view k);
	JsonOut &str(std::string_view v);
	JsonOut &raw(std::string_view v); /* already JSON */
	JsonOut &strings(const std::vector<std::string> &v);
	JsonOut &open();
	JsonOut &close();
	std::string take() { return std::move(out_); }

private:
	void comma();
	std::string out_;
	bool first_ = true;
};

} // namespace posthorn::http
