/*
 * Amazon SES v2 SendEmail: POST {base}/v2/email/outbound-emails, JSON,
 * signed with AWS Signature V4 (service "ses"). Content.Simple for plain
 * messages, Content.Raw (a full RFC 5322 message) when there are attachments.
 * https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_SendEmail.html
 */
#include <curl/curl.h>

#include <time.h>

#include "common/base64.h"
#include "relayer/mime_build.h"
#include "relayer/sigv4.h"
#include "relayer/transport_http.h"

namespace posthorn {

namespace {

constexpr const char *SES_PATH = "/v2/email/outbound-emails";

struct UrlFree {
	void operator()(CURLU *u) const noexcept { curl_url_cleanup(u); }
};

/* Host header value ("host" or "host:port" as curl would send it) and path of url. */
bool split_url(const std::string &url, std::string &host, std::string &path)
{
	std::unique_ptr<CURLU, UrlFree> u(curl_url());
	if (!u || curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK)
		return false;
	auto part = [&](CURLUPart which, std::string &out) {
		char *s = nullptr;
		if (curl_url_get(u.get(), which, &s, 0) != CURLUE_OK)
			return false;
		out = s;
		curl_free(s);
		return true;
	};
	std::string port;
	if (!part(CURLUPART_HOST, host) || !part(CURLUPART_PATH, path))
		return false;
	if (part(CURLUPART_PORT, port)) /* only when the URL names one */
		host += ":" + port;
	return true;
}

void add_text(JsonBuilder &j, cJSON *parent, const char *name, const std::string &data)
{
	cJSON *o = j.add_object(parent, name);
	j.add(o, "Data", data);
	j.add(o, "Charset", "UTF-8");
}

void add_simple(JsonBuilder &j, cJSON *content, const Message &msg)
{
	cJSON *simple = j.add_object(content, "Simple");
	add_text(j, simple, "Subject", msg.subject);
	cJSON *body = j.add_object(simple, "Body");
	if (!msg.text_body.empty() || msg.html_body.empty())
		add_text(j, body, "Text", msg.text_body);
	if (!msg.html_body.empty())
		add_text(j, body, "Html", msg.html_body);
	if (!msg.headers.empty()) {
		cJSON *headers = j.add_array(simple, "Headers");
		for (const auto &[name, value] : msg.headers) {
			cJSON *h = j.push_object(headers);
			j.add(h, "Name", name);
			j.add(h, "Value", value);
		}
	}
}

/* SES builds the MIME itself for Simple; attachments need our own (Raw). */
void add_raw(JsonBuilder &j, cJSON *content, const Message &msg)
{
	cJSON *raw = j.add_object(content, "Raw");
	j.add(raw, "Data", base64_encode(build_rfc5322(msg, MimeOptions{})));
}

bool body_json(const Message &msg, std::string &out)
{
	JsonBuilder j;
	cJSON *root = j.root();
	j.add(root, "FromEmailAddress", msg.from);
	/*
	 * Every recipient, Simple or Raw: SES delivers a Raw message to its
	 * Destination, not to the addresses its headers name, and the Raw MIME
	 * has no Bcc header. SES accepts an empty To, so no fallback is needed.
	 */
	std::vector<std::string> to, cc, bcc;
	split_visibility(msg, to, cc, bcc);
	cJSON *dest = j.add_object(root, "Destination");
	for (const auto &[name, list] : {std::pair{"ToAddresses", &to}, {"CcAddresses", &cc},
		 {"BccAddresses", &bcc}}) {
		if (list->empty())
			continue;
		cJSON *a = j.add_array(dest, name);
		for (const auto &rcpt : *list)
			j.push(a, rcpt);
	}
	if (!msg.reply_to.empty())
		j.push(j.add_array(root, "ReplyToAddresses"), msg.reply_to);
	cJSON *content = j.add_object(root, "Content");
	if (msg.attachments.empty())
		add_simple(j, content, msg);
	else
		add_raw(j, content, msg);
	return j.print(out);
}

class SesTransport final : public HttpTransport {
public:
	using HttpTransport::HttpTransport;

protected:
	bool build(const Message &msg, HttpRequest &req, DeliveryResult &err) override;
	const char *id_member() const override { return "MessageId"; }

private:
	bool sign(HttpRequest &req, const std::string &host, const std::string &path) const;
};

/* Sign exactly the headers we send; curl adds only unsigned ones (Accept, Content-Length). */
bool SesTransport::sign(HttpRequest &req, const std::string &host, const std::string &path) const
{
	SigV4Request sr;
	sr.method = "POST";
	sr.path = path;
	sr.headers = {{"host", host}, {"content-type", "application/json"}};
	sr.body = req.body;
	SigV4Credentials creds{cfg_.access_key_id, cfg_.secret_access_key, cfg_.session_token};
	SigV4Result sig = sigv4_sign(sr, creds, cfg_.region, "ses", sigv4_amz_date(time(nullptr)));
	if (sig.authorization.empty())
		return false;
	/* curl sends our Host header instead of its own, so the signed value is the sent one. */
	req.headers = {"Host: " + host, "Content-Type: application/json", "Accept: application/json"};
	for (const auto &[name, value] : sig.add_headers)
		req.headers.push_back(name + ": " + value);
	req.headers.push_back("Authorization: " + sig.authorization);
	return true;
}

bool SesTransport::build(const Message &msg, HttpRequest &req, DeliveryResult &err)
{
	err.outcome = DeliveryOutcome::permanent;
	if (cfg_.region.empty() || cfg_.access_key_id.empty() || cfg_.secret_access_key.empty()) {
		err.detail = "transport lacks region or AWS credentials";
		return false;
	}
	req.url = endpoint(SES_PATH);
	std::string host, path;
	if (!split_url(req.url, host, path)) {
		err.detail = "invalid base_url";
		return false;
	}
	if (!body_json(msg, req.body)) {
		err.detail = "cannot encode the message as JSON";
		return false;
	}
	if (!sign(req, host, path)) {
		err.outcome = DeliveryOutcome::transient;
		err.detail = "cannot sign the request";
		return false;
	}
	return true;
}

} // namespace

std::unique_ptr<Transport> make_ses_transport(const TransportConfig &cfg, HttpClient &http)
{
	return std::make_unique<SesTransport>(cfg, http);
}

} // namespace posthorn
