/*
 * Postmark: POST {base}/email, JSON, X-Postmark-Server-Token.
 * https://postmarkapp.com/developer/api/email-api
 */
#include "common/base64.h"
#include "relayer/transport_http.h"

namespace posthorn {

namespace {

class PostmarkTransport final : public HttpTransport {
public:
	using HttpTransport::HttpTransport;

protected:
	bool build(const Message &msg, HttpRequest &req, DeliveryResult &err) override;
	const char *id_member() const override { return "MessageID"; }

private:
	std::string body_json(const Message &msg, bool &ok) const;
};

std::string PostmarkTransport::body_json(const Message &msg, bool &ok) const
{
	JsonBuilder j;
	cJSON *root = j.root();
	j.add(root, "From", msg.from);
	/* One request; Bcc recipients appear in no header (see provider_recipients). */
	ProviderRecipients rcpts = provider_recipients(msg);
	j.add(root, "To", join_list(rcpts.to, ", "));
	if (!rcpts.cc.empty())
		j.add(root, "Cc", join_list(rcpts.cc, ", "));
	if (!rcpts.bcc.empty())
		j.add(root, "Bcc", join_list(rcpts.bcc, ", "));
	if (!msg.reply_to.empty())
		j.add(root, "ReplyTo", msg.reply_to);
	j.add(root, "Subject", msg.subject);
	/* Postmark needs at least one body; an HTML-only message sends no TextBody. */
	if (!msg.text_body.empty() || msg.html_body.empty())
		j.add(root, "TextBody", msg.text_body);
	if (!msg.html_body.empty())
		j.add(root, "HtmlBody", msg.html_body);
	if (!cfg_.message_stream.empty())
		j.add(root, "MessageStream", cfg_.message_stream);
	if (!msg.headers.empty()) {
		cJSON *headers = j.add_array(root, "Headers");
		for (const auto &[name, value] : msg.headers) {
			cJSON *h = j.push_object(headers);
			j.add(h, "Name", name);
			j.add(h, "Value", value);
		}
	}
	if (!msg.attachments.empty()) {
		cJSON *atts = j.add_array(root, "Attachments");
		for (const auto &a : msg.attachments) {
			cJSON *o = j.push_object(atts);
			j.add(o, "Name", a.filename);
			j.add(o, "Content", base64_encode(a.data));
			j.add(o, "ContentType", a.content_type);
		}
	}
	std::string out;
	ok = j.print(out);
	return out;
}

bool PostmarkTransport::build(const Message &msg, HttpRequest &req, DeliveryResult &err)
{
	bool ok = false;
	std::string body = body_json(msg, ok);
	return json_post("/email", std::move(body), ok, "X-Postmark-Server-Token: " + cfg_.api_key,
	    req, err);
}

} // namespace

std::unique_ptr<Transport> make_postmark_transport(const TransportConfig &cfg, HttpClient &http)
{
	return std::make_unique<PostmarkTransport>(cfg, http);
}

} // namespace posthorn
