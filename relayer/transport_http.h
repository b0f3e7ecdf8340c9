/*
 * The shared half of the HTTP provider transports (postmark, resend,
 * mailgun, ses): each subclass only builds its request; sending, the
 * classification (DESIGN §3), Retry-After, the provider's message id and a
 * log-safe detail text are common.
 */
#pragma once

#include <cjson/cJSON.h>

#include <memory>
#include <string>
#include <string_view>

#include "relayer/http_client.h"
#include "relayer/transport.h"

namespace posthorn {

/* Longest provider error text echoed into DeliveryResult::detail. */
inline constexpr size_t DETAIL_EXCERPT_MAX = 200;

class HttpTransport : public Transport {
public:
	HttpTransport(const TransportConfig &cfg, HttpClient &http);
	void deliver(const Message &msg, Done done) override;

protected:
	/*
	 * Fill url, headers and body (or customize) of req. On failure set
	 * err's outcome and detail (no secrets) and return false.
	 */
	virtual bool build(const Message &msg, HttpRequest &req, DeliveryResult &err) = 0;
	/* The member of the JSON success answer holding the provider's message id. */
	virtual const char *id_member() const = 0;
	/* base_url (trailing slashes dropped) followed by path. */
	std::string endpoint(std::string_view path) const;
	/*
	 * A JSON POST of body to path with one auth header. encoded false (the
	 * JsonBuilder failed) makes it a permanent failure instead.
	 */
	bool json_post(std::string_view path, std::string body, bool encoded, std::string auth_header,
	    HttpRequest &req, DeliveryResult &err) const;

private:
	HttpClient &http_;
	/* What completions need: shared so a callback outliving this transport stays valid. */
	std::shared_ptr<const TransportConfig> shared_cfg_;
};

/* Turn a finished transfer into a result; secrets of cfg are redacted from the detail. */
DeliveryResult http_delivery_result(const HttpResponse &resp, const char *id_member,
    const TransportConfig &cfg, long now);
/* Provider text made safe for a log line: controls become spaces, cut at max bytes (UTF-8 aware). */
std::string detail_excerpt(std::string_view text, size_t max = DETAIL_EXCERPT_MAX);
/* Replace every occurrence of each non-empty secret of cfg with "[redacted]". */
void redact_secrets(std::string &s, const TransportConfig &cfg);

struct JsonFree {
	void operator()(cJSON *j) const noexcept { cJSON_Delete(j); }
};
using JsonPtr = std::unique_ptr<cJSON, JsonFree>;

/*
 * A JSON document under construction with a sticky failure flag (cJSON's
 * allocation failures, a string holding NUL that cJSON would cut): one
 * check at print() instead of one per member.
 */
class JsonBuilder {
public:
	JsonBuilder();
	cJSON *root() { return root_.get(); }
	void add(cJSON *obj, const char *name, std::string_view value);
	cJSON *add_object(cJSON *obj, const char *name);
	cJSON *add_array(cJSON *obj, const char *name);
	void push(cJSON *array, std::string_view value);
	cJSON *push_object(cJSON *array);
	/* The compact document; false if anything failed on the way. */
	bool print(std::string &out);

private:
	cJSON *attach(cJSON *parent, const char *name, cJSON *item);
	JsonPtr root_;
	bool ok_;
};

/* Who goes in the provider's To, Cc and Bcc: all recipients, each once, in one request. */
struct ProviderRecipients {
	std::vector<std::string> to, cc, bcc;
};

/*
 * split_visibility() for providers whose API refuses an empty To (postmark,
 * resend, mailgun), which a Bcc-only or Cc-only message would give. The
 * fallback shows nobody an address the message did not already show them:
 *   - no To but Cc: the Cc recipients become the To recipients;
 *   - Bcc only, one recipient: that recipient is the To (they see only
 *     their own address);
 *   - Bcc only, several: To is the header From address (the usual "to
 *     myself, Bcc everyone"), so the sender receives a copy; every
 *     recipient stays in Bcc.
 */
ProviderRecipients provider_recipients(const Message &msg);

/* "a, b, c" */
std::string join_list(const std::vector<std::string> &items, std::string_view sep);

} // namespace posthorn
