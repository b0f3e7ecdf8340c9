/*
 * Resend: POST {base}/emails, JSON, Authorization: Bearer.
 * https://resend.com/docs/api-reference/emails/send-email
 */
#include "common/base64.h"
#include "relayer/transport_http.h"

namespace posthorn {

namespace {

class ResendTransport final : public HttpTransport {
public:
	using HttpTransport::HttpTransport;

protected:
	bool build(const Message &msg, HttpRequest &req, DeliveryResult &err) override;
	const char *id_member() const override { return "id"; }

private:
	static std::string body_json(const Message &msg, bool &ok);
};

std::string ResendTransport::body_json(const Message &msg, bool &ok)
{
	JsonBuilder j;
	cJSON *root = j.root();
	j.add(root, "from", msg.from);
	/* One request; Bcc recipients appear in no header (see provider_recipients). */
	ProviderRecipients rcpts = provider_recipients(msg);
	for (const auto &[name, list] : {std::pair{"to", &rcpts.to}, {"cc", &rcpts.cc},
		 {"bcc", &rcpts.bcc}}) {
		if (list->empty() && std::string_view(name) != "to")
			continue;
		cJSON *a = j.add_array(root, name);
		for (const auto &rcpt : *list)
			j.push(a, rcpt);
	}
	if (!msg.reply_to.empty())
		j.add(root, "reply_to", msg.reply_to);
	j.add(root, "subject", msg.subject);
	if (!msg.text_body.empty() || msg.html_body.empty())
		j.add(root, "text", msg.text_body);
	if (!msg.html_body.empty())
		j.add(root, "html", msg.html_body);
	if (!msg.headers.empty()) {
		cJSON *headers = j.add_object(root, "headers");
		for (const auto &[name, value] : msg.headers)
			j.add(headers, name.c_str(), value);
	}
	if (!msg.attachments.empty()) {
		cJSON *atts = j.add_array(root, "attachments");
		for (const auto &a : msg.attachments) {
			cJSON *o = j.push_object(atts);
			j.add(o, "filename", a.filename);
			j.add(o, "content", base64_encode(a.data));
			j.add(o, "content_type", a.content_type);
		}
	}
	std::string out;
	ok = j.print(out);
	return out;
}

bool ResendTransport::build(const Message &msg, HttpRequest &req, DeliveryResult &err)
{
	bool ok = false;
	std::string body = body_json(msg, ok);
	if (!json_post("/emails", std::move(body), ok, "Authorization: Bearer " + cfg_.api_key, req,
	    err))
		return false;
	/*
	 * The submission id, not the client's Idempotency-Key: it is unique per
	 * message and stable across our retries, while client keys are scoped to
	 * one endpoint and API key here but to the whole account at Resend.
	 */
	if (!msg.id.empty())
		req.headers.push_back("Idempotency-Key: " + msg.id);
	return true;
}

} // namespace

std::unique_ptr<Transport> make_resend_transport(const TransportConfig &cfg, HttpClient &http)
{
	return std::make_unique<ResendTransport>(cfg, http);
}

} // namespace posthorn
