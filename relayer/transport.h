/*
 * Transports: one file each. A transport turns a canonical message into one
 * provider request and classifies the answer (DESIGN §3):
 *   2xx → sent; 408, 425, 429, 5xx, timeouts, network errors → transient;
 *   other 4xx → permanent.
 * Credentials live in the TransportConfig and go only into the auth header
 * or signature: never into a DeliveryResult, a log line or an error text.
 */
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/config.h"
#include "common/message.h"

namespace posthorn {

class HttpClient;

enum class DeliveryOutcome { sent, transient, permanent };
const char *to_string(DeliveryOutcome);

struct DeliveryResult {
	DeliveryOutcome outcome = DeliveryOutcome::transient;
	std::string detail;      /* short, safe for logs and clients: no secrets, no bodies */
	std::string provider_id; /* provider's message id on success */
	long retry_after = -1;   /* seconds from a Retry-After header, -1 if none */
	long status = 0;         /* HTTP status or SMTP reply code, 0 if none */
};

/* Classify an HTTP status as DESIGN §3 says. */
DeliveryOutcome classify_http_status(long status);

class Transport {
public:
	using Done = std::function<void(DeliveryResult)>;

	explicit Transport(const TransportConfig &cfg) : cfg_(cfg) {}
	virtual ~Transport() = default;
	Transport(const Transport &) = delete;
	Transport &operator=(const Transport &) = delete;

	/*
	 * Start one delivery; `done` is called exactly once, possibly before
	 * deliver() returns (the file transport is synchronous).
	 */
	virtual void deliver(const Message &msg, Done done) = 0;

	const TransportConfig &config() const { return cfg_; }
	const std::string &name() const { return cfg_.name; }

protected:
	TransportConfig cfg_;
};

/* The factory (transport.cc); the HTTP and SMTP transports share one HttpClient. */
std::unique_ptr<Transport> make_transport(const TransportConfig &cfg, HttpClient &http);

/* One per transport file; make_transport() picks by cfg.type. */
std::unique_ptr<Transport> make_postmark_transport(const TransportConfig &cfg, HttpClient &http);
std::unique_ptr<Transport> make_resend_transport(const TransportConfig &cfg, HttpClient &http);
std::unique_ptr<Transport> make_mailgun_transport(const TransportConfig &cfg, HttpClient &http);
std::unique_ptr<Transport> make_ses_transport(const TransportConfig &cfg, HttpClient &http);
std::unique_ptr<Transport> make_smtp_transport(const TransportConfig &cfg, HttpClient &http);
std::unique_ptr<Transport> make_file_transport(const TransportConfig &cfg);

} // namespace posthorn
