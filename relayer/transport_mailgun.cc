/*
 * Mailgun: POST {base}/v3/{domain}/messages as multipart/form-data, Basic
 * auth "api:<key>" through libcurl (CURLOPT_USERNAME/PASSWORD, never a
 * header we log). https://documentation.mailgun.com/docs/mailgun/api-reference/
 */
#include <curl/curl.h>

#include <new>

#include "relayer/transport_http.h"

namespace posthorn {

namespace {

struct MimeFree {
	void operator()(curl_mime *m) const noexcept { curl_mime_free(m); }
};

struct FormPart {
	std::string name;
	std::string data;
	std::string filename; /* attachments only */
	std::string type;
};

/* The form's parts until the easy handle exists, then the curl_mime built from them. */
struct Form {
	std::vector<FormPart> parts;
	std::unique_ptr<curl_mime, MimeFree> mime;

	void add(std::string name, std::string data) { parts.push_back({std::move(name), std::move(data)}); }
	void attach(CURL *easy);
};

void Form::attach(CURL *easy)
{
	mime.reset(curl_mime_init(easy));
	if (!mime)
		throw std::bad_alloc();
	for (const FormPart &p : parts) {
		curl_mimepart *part = curl_mime_addpart(mime.get());
		bool ok = part && curl_mime_name(part, p.name.c_str()) == CURLE_OK &&
		    curl_mime_data(part, p.data.data(), p.data.size()) == CURLE_OK;
		if (ok && !p.filename.empty())
			ok = curl_mime_filename(part, p.filename.c_str()) == CURLE_OK &&
			    curl_mime_type(part, p.type.c_str()) == CURLE_OK;
		if (!ok)
			throw std::bad_alloc();
	}
	/* curl copied every part; the request need not hold the message twice. */
	parts = {};
	if (curl_easy_setopt(easy, CURLOPT_MIMEPOST, mime.get()) != CURLE_OK)
		throw std::bad_alloc();
}

class MailgunTransport final : public HttpTransport {
public:
	using HttpTransport::HttpTransport;

protected:
	bool build(const Message &msg, HttpRequest &req, DeliveryResult &err) override;
	const char *id_member() const override { return "id"; }
};

std::shared_ptr<Form> make_form(const Message &msg)
{
	auto form = std::make_shared<Form>();
	form->add("from", msg.from);
	/* One request; Bcc recipients appear in no header (see provider_recipients). */
	ProviderRecipients rcpts = provider_recipients(msg);
	for (const auto &[name, list] : {std::pair{"to", &rcpts.to}, {"cc", &rcpts.cc},
		 {"bcc", &rcpts.bcc}})
		for (const auto &rcpt : *list)
			form->add(name, rcpt);
	form->add("subject", msg.subject);
	if (!msg.text_body.empty() || msg.html_body.empty())
		form->add("text", msg.text_body);
	if (!msg.html_body.empty())
		form->add("html", msg.html_body);
	if (!msg.reply_to.empty())
		form->add("h:Reply-To", msg.reply_to);
	for (const auto &[name, value] : msg.headers)
		form->add("h:" + name, value);
	for (const auto &a : msg.attachments)
		form->parts.push_back({"attachment", a.data, a.filename, a.content_type});
	return form;
}

bool MailgunTransport::build(const Message &msg, HttpRequest &req, DeliveryResult &err)
{
	if (cfg_.domain.empty()) {
		err.outcome = DeliveryOutcome::permanent;
		err.detail = "transport has no domain";
		return false;
	}
	req.url = endpoint("/v3/" + cfg_.domain + "/messages");
	req.headers = {"Accept: application/json"};
	req.customize = [form = make_form(msg), key = cfg_.api_key](CURL *easy) {
		form->attach(easy);
		bool ok = curl_easy_setopt(easy, CURLOPT_HTTPAUTH, CURLAUTH_BASIC) == CURLE_OK &&
		    curl_easy_setopt(easy, CURLOPT_USERNAME, "api") == CURLE_OK &&
		    curl_easy_setopt(easy, CURLOPT_PASSWORD, key.c_str()) == CURLE_OK;
		if (!ok)
			throw std::bad_alloc();
	};
	return true;
}

} // namespace

std::unique_ptr<Transport> make_mailgun_transport(const TransportConfig &cfg, HttpClient &http)
{
	return std::make_unique<MailgunTransport>(cfg, http);
}

} // namespace posthorn
