/*
 * HttpClient: libcurl's multi interface driven by libevent
 * (curl_multi_socket_action). One multi handle per relayer, so connections
 * are reused across messages. Every request has a timeout; response bodies
 * are kept up to RESPONSE_BODY_CAP bytes, the rest is discarded.
 * The same engine runs SMTP transfers (libcurl's smtp:// and smtps://).
 */
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

struct event_base;
typedef void CURL;

namespace posthorn {

inline constexpr size_t RESPONSE_BODY_CAP = 64 * 1024;

struct HttpRequest {
	std::string method = "POST";
	std::string url;
	std::vector<std::string> headers;  /* "Name: value"; secrets allowed here only */
	std::string body;
	long timeout_ms = 10000;
	long connect_timeout_ms = 5000;
	/*
	 * Optional extra easy-handle setup (SMTP transfers, TLS options, forms),
	 * run last, inside perform(). It may throw to fail the transfer; what it
	 * captures lives until the easy handle is gone.
	 */
	std::function<void(CURL *)> customize;
};

struct HttpResponse {
	int curl_code = 0;                 /* CURLcode; 0 = transfer completed */
	std::string error;                 /* curl's error text when curl_code != 0 */
	long status = 0;                   /* HTTP status, or the last SMTP reply code */
	std::vector<std::pair<std::string, std::string>> headers; /* lower-cased names */
	std::string body;                  /* at most RESPONSE_BODY_CAP bytes */
	bool body_truncated = false;
	bool timed_out = false;
	std::string last_reply;            /* SMTP: the server's last reply line */

	const std::string *header(std::string_view lower_name) const;
};

class HttpClient {
public:
	using Done = std::function<void(HttpResponse)>;

	explicit HttpClient(event_base *base);
	~HttpClient();
	HttpClient(const HttpClient &) = delete;
	HttpClient &operator=(const HttpClient &) = delete;

	/* Start a transfer; `done` runs exactly once, from the event loop, never inside perform(). */
	void perform(HttpRequest req, Done done);
	size_t in_flight() const;

private:
	struct Impl;
	std::unique_ptr<Impl> impl_;
};

/* Retry-After: delta-seconds or an HTTP date; -1 when absent or unparsable. */
long parse_retry_after(const std::string &value, long now);

} // namespace posthorn
