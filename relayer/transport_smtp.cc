/*
 * smtp: an ESMTP client through libcurl on the relayer's multi handle:
 * STARTTLS (required, not opportunistic), implicit TLS or none; AUTH when a
 * username is configured (libcurl picks PLAIN or LOGIN from the server's
 * EHLO), never without one; the EHLO name from `helo`. The message is built
 * here (RFC 5322 with Message-ID, Date, RFC 2047 words, multipart as needed);
 * libcurl does the dot-stuffing.
 */
#include <curl/curl.h>
#include <string.h>

#include "relayer/http_client.h"
#include "relayer/mime_build.h"
#include "relayer/transport_http.h"
#include "relayer/transport.h"

namespace posthorn {

namespace {

struct Upload {
	std::string data;
	size_t off = 0;
	curl_slist *rcpts = nullptr;
	~Upload() { curl_slist_free_all(rcpts); }
};

size_t read_upload(char *buf, size_t size, size_t nmemb, void *arg) noexcept
{
	auto *u = static_cast<Upload *>(arg);
	size_t n = std::min(size * nmemb, u->data.size() - u->off);
	memcpy(buf, u->data.data() + u->off, n);
	u->off += n;
	return n;
}

/* "250 2.0.0 Ok: queued as 4FqX1" → "4FqX1"; otherwise the whole reply text. */
std::string queued_id(const std::string &reply)
{
	size_t p = reply.find("queued as ");
	std::string id = p == std::string::npos ? reply : reply.substr(p + 10);
	while (!id.empty() && (id.back() == '\r' || id.back() == '\n' || id.back() == ' '))
		id.pop_back();
	return id.substr(0, 200);
}

class SmtpTransport final : public Transport {
public:
	SmtpTransport(const TransportConfig &cfg, HttpClient &http) : Transport(cfg), http_(http) {}

	void deliver(const Message &msg, Done done) override
	{
		auto up = std::make_shared<Upload>();
		MimeOptions opts;
		opts.hostname = cfg_.helo.empty() ? cfg_.host : cfg_.helo;
		up->data = build_rfc5322(msg, opts);
		for (const std::string &r : msg.recipients)
			up->rcpts = curl_slist_append(up->rcpts, ("<" + r + ">").c_str());

		HttpRequest req;
		req.method = "";
		req.url = std::string(cfg_.tls == TlsMode::implicit ? "smtps://" : "smtp://") +
		    cfg_.host + ":" + std::to_string(cfg_.port) + "/" +
		    (cfg_.helo.empty() ? "localhost" : cfg_.helo);
		req.timeout_ms = static_cast<long>(cfg_.timeout) * 1000;
		std::string from = "<" + msg.envelope_from + ">";
		/* By value: a reload may replace this transport while the transfer runs. */
		req.customize = [up, from, c = cfg_](CURL *h) {
			curl_easy_setopt(h, CURLOPT_MAIL_FROM, from.c_str());
			curl_easy_setopt(h, CURLOPT_MAIL_RCPT, up->rcpts);
			curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
			curl_easy_setopt(h, CURLOPT_READFUNCTION, read_upload);
			curl_easy_setopt(h, CURLOPT_READDATA, up.get());
			curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
			    static_cast<curl_off_t>(up->data.size()));
			curl_easy_setopt(h, CURLOPT_USE_SSL,
			    c.tls == TlsMode::starttls ? CURLUSESSL_ALL : CURLUSESSL_NONE);
			curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, c.tls_verify ? 1L : 0L);
			curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, c.tls_verify ? 2L : 0L);
			if (!c.username.empty()) {
				curl_easy_setopt(h, CURLOPT_USERNAME, c.username.c_str());
				curl_easy_setopt(h, CURLOPT_PASSWORD, c.password.c_str());
			}
		};
		http_.perform(std::move(req), [up, cfg = cfg_, done = std::move(done)](HttpResponse resp) {
			DeliveryResult r = classify(resp);
			/* A relay may echo what it was sent; the password never leaves in a detail. */
			redact_secrets(r.detail, cfg);
			done(std::move(r));
		});
	}

private:
	static DeliveryResult classify(const HttpResponse &resp)
	{
		DeliveryResult r;
		r.status = resp.status;
		if (resp.curl_code == 0) {
			r.outcome = DeliveryOutcome::sent;
			r.provider_id = queued_id(resp.last_reply);
			return r;
		}
		/* 5yz replies are permanent; 4yz, timeouts and network errors transient. */
		r.outcome = resp.status >= 500 && resp.status < 600 ? DeliveryOutcome::permanent
								    : DeliveryOutcome::transient;
		std::string text = resp.last_reply.empty() ? resp.error : resp.last_reply;
		for (char &ch : text)
			if (ch == '\r' || ch == '\n')
				ch = ' ';
		r.detail = resp.timed_out ? "timeout" : text.substr(0, 200);
		return r;
	}

	HttpClient &http_;
};

} // namespace

std::unique_ptr<Transport> make_smtp_transport(const TransportConfig &cfg, HttpClient &http)
{
	return std::make_unique<SmtpTransport>(cfg, http);
}

} // namespace posthorn
