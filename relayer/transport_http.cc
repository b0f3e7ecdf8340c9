/* Sending and classifying for the HTTP provider transports. */
#include "relayer/transport_http.h"

#include <time.h>

#include <algorithm>

namespace posthorn {

namespace {

constexpr size_t PROVIDER_ID_MAX = 256;
constexpr long CONNECT_TIMEOUT_MS = 5000;
constexpr uint64_t TIMEOUT_MAX_S = 3600;

/* The provider's own words from an error body: "message"/"Message" when JSON, else the body. */
std::string provider_error_text(const HttpResponse &resp)
{
	JsonPtr doc(cJSON_ParseWithLength(resp.body.data(), resp.body.size()));
	if (doc && cJSON_IsObject(doc.get())) {
		for (const char *name : {"message", "Message"}) {
			const cJSON *m = cJSON_GetObjectItemCaseSensitive(doc.get(), name);
			if (cJSON_IsString(m) && m->valuestring[0] != '\0')
				return m->valuestring;
		}
	}
	return resp.body;
}

std::string provider_id(const HttpResponse &resp, const char *id_member)
{
	JsonPtr doc(cJSON_ParseWithLength(resp.body.data(), resp.body.size()));
	const cJSON *id = doc ? cJSON_GetObjectItemCaseSensitive(doc.get(), id_member) : nullptr;
	if (!cJSON_IsString(id))
		return "";
	return detail_excerpt(id->valuestring, PROVIDER_ID_MAX);
}

} // namespace

HttpTransport::HttpTransport(const TransportConfig &cfg, HttpClient &http)
    : Transport(cfg), http_(http), shared_cfg_(std::make_shared<const TransportConfig>(cfg))
{
}

std::string HttpTransport::endpoint(std::string_view path) const
{
	std::string_view base = cfg_.base_url;
	while (!base.empty() && base.back() == '/')
		base.remove_suffix(1);
	std::string url(base);
	url += path;
	return url;
}

bool HttpTransport::json_post(std::string_view path, std::string body, bool encoded,
    std::string auth_header, HttpRequest &req, DeliveryResult &err) const
{
	if (!encoded) {
		err.outcome = DeliveryOutcome::permanent;
		err.detail = "cannot encode the message as JSON";
		return false;
	}
	req.body = std::move(body);
	req.url = endpoint(path);
	req.headers = {
		"Accept: application/json",
		"Content-Type: application/json",
		std::move(auth_header),
	};
	return true;
}

void HttpTransport::deliver(const Message &msg, Done done)
{
	HttpRequest req;
	/* 0 would mean "no timeout" to curl; every request has one (DESIGN §8). */
	uint64_t secs = cfg_.timeout == 0 ? 10 : std::min(cfg_.timeout, TIMEOUT_MAX_S);
	req.timeout_ms = (long)secs * 1000;
	req.connect_timeout_ms = std::min(CONNECT_TIMEOUT_MS, req.timeout_ms);
	DeliveryResult err;
	if (cfg_.base_url.empty()) {
		err.outcome = DeliveryOutcome::permanent;
		err.detail = "transport has no base_url";
		done(std::move(err));
		return;
	}
	if (!build(msg, req, err)) {
		redact_secrets(err.detail, cfg_);
		done(std::move(err));
		return;
	}
	/* Capture no `this`: the relayer may drop a transport (reload) with requests in flight. */
	http_.perform(std::move(req),
	    [cfg = shared_cfg_, id = id_member(), done = std::move(done)](HttpResponse resp) {
		    done(http_delivery_result(resp, id, *cfg, (long)time(nullptr)));
	    });
}

DeliveryResult http_delivery_result(const HttpResponse &resp, const char *id_member,
    const TransportConfig &cfg, long now)
{
	DeliveryResult r;
	r.status = resp.status;
	if (resp.curl_code != 0) {
		/* No complete answer: the provider may or may not have the message. */
		r.outcome = DeliveryOutcome::transient;
		std::string why = resp.error;
		redact_secrets(why, cfg);
		r.detail = resp.timed_out ? "timeout" : "connection failed: " + detail_excerpt(why);
		return r;
	}
	if (const std::string *ra = resp.header("retry-after"))
		r.retry_after = parse_retry_after(*ra, now);
	r.outcome = classify_http_status(resp.status);
	r.detail = "HTTP " + std::to_string(resp.status);
	if (r.outcome == DeliveryOutcome::sent) {
		r.provider_id = provider_id(resp, id_member);
		redact_secrets(r.provider_id, cfg);
		return r;
	}
	/* Redact before cutting, so no prefix of a secret survives the cut. */
	std::string text = provider_error_text(resp);
	redact_secrets(text, cfg);
	std::string excerpt = detail_excerpt(text);
	if (!excerpt.empty())
		r.detail += ": " + excerpt;
	return r;
}

std::string detail_excerpt(std::string_view text, size_t max)
{
	std::string out;
	size_t n = std::min(text.size(), max);
	/* Step back over UTF-8 continuation bytes so no character is cut in half. */
	if (n < text.size())
		while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
			n--;
	out.reserve(n);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)text[i];
		out += (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	while (!out.empty() && out.back() == ' ')
		out.pop_back();
	return out;
}

void redact_secrets(std::string &s, const TransportConfig &cfg)
{
	for (const std::string *secret :
	    {&cfg.api_key, &cfg.secret_access_key, &cfg.session_token, &cfg.password}) {
		if (secret->empty())
			continue;
		for (size_t at = s.find(*secret); at != std::string::npos;
		    at = s.find(*secret, at + 10)) {
			s.replace(at, secret->size(), "[redacted]");
		}
	}
}

JsonBuilder::JsonBuilder() : root_(cJSON_CreateObject()), ok_(root_ != nullptr) {}

cJSON *JsonBuilder::attach(cJSON *parent, const char *name, cJSON *item)
{
	bool added = item && parent &&
	    (name ? cJSON_AddItemToObject(parent, name, item) : cJSON_AddItemToArray(parent, item));
	if (!added) {
		cJSON_Delete(item);
		ok_ = false;
		return nullptr;
	}
	return item;
}

void JsonBuilder::add(cJSON *obj, const char *name, std::string_view value)
{
	if (value.find('\0') != std::string_view::npos) {
		ok_ = false;
		return;
	}
	attach(obj, name, cJSON_CreateString(std::string(value).c_str()));
}

cJSON *JsonBuilder::add_object(cJSON *obj, const char *name)
{
	return attach(obj, name, cJSON_CreateObject());
}

cJSON *JsonBuilder::add_array(cJSON *obj, const char *name)
{
	return attach(obj, name, cJSON_CreateArray());
}

void JsonBuilder::push(cJSON *array, std::string_view value)
{
	add(array, nullptr, value);
}

cJSON *JsonBuilder::push_object(cJSON *array)
{
	return attach(array, nullptr, cJSON_CreateObject());
}

bool JsonBuilder::print(std::string &out)
{
	if (!ok_)
		return false;
	char *s = cJSON_PrintUnformatted(root_.get());
	if (!s)
		return false;
	out = s;
	cJSON_free(s);
	return true;
}

ProviderRecipients provider_recipients(const Message &msg)
{
	ProviderRecipients r;
	split_visibility(msg, r.to, r.cc, r.bcc);
	if (!r.to.empty())
		return r;
	if (!r.cc.empty()) {
		r.to = std::move(r.cc);
		r.cc.clear();
	} else if (r.bcc.size() == 1) {
		r.to = std::move(r.bcc);
		r.bcc.clear();
	} else {
		std::string name, self;
		if (!parse_mailbox(msg.from, name, self))
			self = msg.from; /* unreachable: message_validate() parsed it */
		r.to = {self};
		std::erase_if(r.bcc, [&](const std::string &a) { return same_address(a, self); });
	}
	return r;
}

std::string join_list(const std::vector<std::string> &items, std::string_view sep)
{
	std::string out;
	for (const auto &item : items) {
		if (!out.empty())
			out += sep;
		out += item;
	}
	return out;
}

} // namespace posthorn
