/*
 * HTTP provider transports: the exact request each one sends to an in-process
 * fake provider (evhttp), the message id it reads back, the classification of
 * the answers, and that credentials never reach DeliveryResult::detail.
 */
#include "common/base64.h"
#include "common/config.h"
#include "common/message.h"
#include "relayer/http_client.h"
#include "relayer/sigv4.h"
#include "relayer/transport.h"

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "regress/unit/unit.h"
#include "regress/unit/fake_http.h"

using namespace posthorn;

namespace {

const char *const SENTINEL = "SENTINEL-api-key-5e3f9a";
const char *const SES_SECRET = "SENTINEL-aws-secret-77c1";
const char *const SES_TOKEN = "SENTINEL-session-token-0b2d";
const char *const AKID = "AKIDEXAMPLE";

using test::Captured;

/* What the fake provider answers next. */
struct Answer {
	int status = 200;
	std::string body;
	std::vector<std::pair<std::string, std::string>> headers;
};

/* A fake provider on 127.0.0.1 sharing the event_base with the client under test. */
struct Provider : test::FakeHttpServer {
	Answer answer;

	Provider()
	{
		respond = [this](evhttp_request *req) {
			evkeyvalq *out = evhttp_request_get_output_headers(req);
			evhttp_add_header(out, "Content-Type", "application/json");
			for (const auto &[name, value] : answer.headers)
				evhttp_add_header(out, name.c_str(), value.c_str());
			evbuffer *b = evbuffer_new();
			evbuffer_add(b, answer.body.data(), answer.body.size());
			evhttp_send_reply(req, answer.status, "X", b);
			evbuffer_free(b);
		};
	}

	/* Deliver msg through t and run the loop until the result arrives. */
	DeliveryResult deliver(Transport &t, const Message &msg, int ms = 5000)
	{
		bool got = false;
		int calls = 0;
		DeliveryResult res;
		t.deliver(msg, [&](DeliveryResult r) {
			calls++;
			got = true;
			res = std::move(r);
		});
		if (!run_until([&] { return got; }, ms))
			fail_msg("no delivery result within %d ms", ms);
		assert_int_equal(calls, 1);
		return res;
	}
};

Message test_message(bool with_attachment = true)
{
	Message m;
	m.id = "0123456789abcdef0123456789abcdef";
	m.from = "Sender <from@example.com>";
	m.recipients = {"a@example.org", "b@example.org"};
	m.reply_to = "reply@example.com";
	m.subject = "Hello \xe2\x9c\x93";
	m.text_body = "text body\n";
	m.html_body = "<p>html body</p>";
	m.headers = {{"X-Campaign", "spring"}};
	if (with_attachment)
		m.attachments.push_back({"note.txt", "text/plain", "hello attachment"});
	m.idempotency_key = "client-key-1";
	return m;
}

/* Header To a, Cc b; c only in RCPT TO: a blind copy. */
Message visible_message(bool with_attachment = false)
{
	Message m = test_message(with_attachment);
	m.recipients = {"a@example.org", "b@example.org", "c@example.org"};
	m.to_visible = {"a@example.org"};
	m.cc_visible = {"b@example.org"};
	m.visibility_known = true;
	return m;
}

size_t occurrences(const std::string &s, const std::string &what)
{
	size_t n = 0;
	for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1))
		n++;
	return n;
}

std::vector<std::string> strings(const cJSON *array)
{
	assert_true(cJSON_IsArray(array));
	std::vector<std::string> out;
	for (const cJSON *i = array->child; i; i = i->next) {
		assert_true(cJSON_IsString(i));
		out.push_back(i->valuestring);
	}
	return out;
}

using Strings = std::vector<std::string>;

TransportConfig config_for(TransportType type, const Provider &p)
{
	TransportConfig c;
	c.name = "t";
	c.type = type;
	c.api_key = SENTINEL;
	c.base_url = p.url() + "/";
	c.timeout = 5;
	c.domain = "mg.example.com";
	if (type == TransportType::ses) {
		c.api_key.clear();
		c.region = "us-east-1";
		c.access_key_id = AKID;
		c.secret_access_key = SES_SECRET;
	}
	return c;
}

struct JsonDel {
	void operator()(cJSON *j) const { cJSON_Delete(j); }
};
using Json = std::unique_ptr<cJSON, JsonDel>;

Json parse(const std::string &s)
{
	Json j(cJSON_ParseWithLength(s.data(), s.size()));
	assert_non_null(j.get());
	return j;
}

const cJSON *get(const cJSON *obj, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
	if (!v)
		fail_msg("missing member %s", name);
	return v;
}

std::string str(const cJSON *obj, const char *name)
{
	const cJSON *v = get(obj, name);
	assert_true(cJSON_IsString(v));
	return v->valuestring;
}

void assert_members(const cJSON *obj, std::vector<const char *> names)
{
	assert_int_equal(cJSON_GetArraySize(obj), names.size());
	for (const char *n : names)
		get(obj, n);
}

void assert_no_secret(const DeliveryResult &r)
{
	for (const char *s : {SENTINEL, SES_SECRET, SES_TOKEN})
		if (r.detail.find(s) != std::string::npos || r.provider_id.find(s) != std::string::npos)
			fail_msg("secret in result: %s", r.detail.c_str());
}

/* The configured secrets, as a careless provider might echo them in an error body. */
std::string echo_secrets(const TransportConfig &cfg)
{
	std::string out;
	for (const std::string *s : {&cfg.api_key, &cfg.secret_access_key, &cfg.session_token})
		if (!s->empty())
			out += " " + *s;
	return out;
}

/*
 * The answers every transport must classify alike; the error bodies echo
 * the credentials, as a careless provider might, to prove they are redacted.
 */
void check_outcomes(TransportType type, int permanent_status, const TransportConfig *override = nullptr)
{
	Provider p;
	TransportConfig cfg = override ? *override : config_for(type, p);
	cfg.base_url = p.url();
	HttpClient http(p.base);
	auto t = make_transport(cfg, http);
	std::string echo = "{\"message\":\"bad credentials" + echo_secrets(cfg) + "\",\"ErrorCode\":300}";

	p.answer = {permanent_status, echo, {}};
	DeliveryResult r = p.deliver(*t, test_message());
	assert_int_equal(r.outcome, DeliveryOutcome::permanent);
	assert_int_equal(r.status, permanent_status);
	assert_true(r.detail.find("bad credentials") != std::string::npos);
	assert_no_secret(r);

	p.answer = {429, echo, {{"Retry-After", "7"}}};
	r = p.deliver(*t, test_message());
	assert_int_equal(r.outcome, DeliveryOutcome::transient);
	assert_int_equal(r.retry_after, 7);
	assert_int_equal(r.status, 429);
	assert_no_secret(r);

	p.answer = {503, "Service Unavailable\r\nX-Injected: yes" + echo_secrets(cfg), {}};
	r = p.deliver(*t, test_message());
	assert_int_equal(r.outcome, DeliveryOutcome::transient);
	assert_int_equal(r.retry_after, -1);
	assert_null(strchr(r.detail.c_str(), '\n'));
	assert_null(strchr(r.detail.c_str(), '\r'));
	assert_no_secret(r);

	p.answer = {200, std::string(5000, 'x'), {}};
	r = p.deliver(*t, test_message());
	assert_int_equal(r.outcome, DeliveryOutcome::sent);
	assert_true(r.provider_id.empty()); /* not JSON: sent, id unknown */

	p.answer = {400, std::string(5000, 'y'), {}};
	r = p.deliver(*t, test_message());
	assert_true(r.detail.size() <= 220);
}

/* Pieces of a multipart/form-data body named `name`, in order. */
std::vector<std::string> form_values(const std::string &body, const std::string &name,
    std::vector<std::string> *part_headers = nullptr)
{
	std::vector<std::string> out;
	std::string key = "Content-Disposition: form-data; name=\"" + name + "\"";
	for (size_t at = body.find(key); at != std::string::npos; at = body.find(key, at + 1)) {
		size_t start = body.find("\r\n\r\n", at);
		size_t end = body.find("\r\n--", start);
		assert_true(start != std::string::npos && end != std::string::npos);
		if (part_headers)
			part_headers->push_back(body.substr(at, start - at));
		out.push_back(body.substr(start + 4, end - start - 4));
	}
	return out;
}

} // namespace

static void test_classify(void **)
{
	assert_int_equal(classify_http_status(200), DeliveryOutcome::sent);
	assert_int_equal(classify_http_status(202), DeliveryOutcome::sent);
	assert_int_equal(classify_http_status(299), DeliveryOutcome::sent);
	for (long s : {408L, 425L, 429L, 500L, 502L, 503L, 599L, 0L, 100L, 301L, 304L})
		assert_int_equal(classify_http_status(s), DeliveryOutcome::transient);
	for (long s : {400L, 401L, 403L, 404L, 409L, 413L, 422L, 499L})
		assert_int_equal(classify_http_status(s), DeliveryOutcome::permanent);
	assert_string_equal(to_string(DeliveryOutcome::sent), "sent");
	assert_string_equal(to_string(DeliveryOutcome::transient), "transient");
	assert_string_equal(to_string(DeliveryOutcome::permanent), "permanent");
}

static void test_postmark_wire(void **)
{
	Provider p;
	TransportConfig cfg = config_for(TransportType::postmark, p);
	cfg.message_stream = "outbound";
	HttpClient http(p.base);
	auto t = make_transport(cfg, http);
	p.answer = {200, "{\"To\":\"a@example.org\",\"MessageID\":\"pm-0a1b\",\"ErrorCode\":0}", {}};
	DeliveryResult r = p.deliver(*t, test_message());
	assert_int_equal(r.outcome, DeliveryOutcome::sent);
	assert_string_equal(r.provider_id.c_str(), "pm-0a1b");
	assert_int_equal(r.status, 200);
	assert_no_secret(r);

	assert_int_equal(p.requests.size(), 1);
	const Captured &c = p.requests[0];
	assert_string_equal(c.method.c_str(), "POST");
	assert_string_equal(c.uri.c_str(), "/email");
	assert_string_equal(c.header("X-Postmark-Server-Token").c_str(), SENTINEL);
	assert_string_equal(c.header("Accept").c_str(), "application/json");
	assert_string_equal(c.header("Content-Type").c_str(), "application/json");
	assert_false(c.has_header("Authorization"));

	Json j = parse(c.body);
	assert_members(j.get(), {"From", "To", "ReplyTo", "Subject", "TextBody", "HtmlBody",
	    "MessageStream", "Headers", "Attachments"});
	assert_string_equal(str(j.get(), "From").c_str(), "Sender <from@example.com>");
	assert_string_equal(str(j.get(), "To").c_str(), "a@example.org, b@example.org");
	assert_string_equal(str(j.get(), "ReplyTo").c_str(), "reply@example.com");
	assert_string_equal(str(j.get(), "Subject").c_str(), "Hello \xe2\x9c\x93");
	assert_string_equal(str(j.get(), "TextBody").c_str(), "text body\n");
	assert_string_equal(str(j.get(), "HtmlBody").c_str(), "<p>html body</p>");
	assert_string_equal(str(j.get(), "MessageStream").c_str(), "outbound");
	const cJSON *headers = get(j.get(), "Headers");
	assert_int_equal(cJSON_GetArraySize(headers), 1);
	assert_string_equal(str(cJSON_GetArrayItem(headers, 0), "Name").c_str(), "X-Campaign");
	assert_string_equal(str(cJSON_GetArrayItem(headers, 0), "Value").c_str(), "spring");
	const cJSON *atts = get(j.get(), "Attachments");
	assert_int_equal(cJSON_GetArraySize(atts), 1);
	const cJSON *a = cJSON_GetArrayItem(atts, 0);
	assert_members(a, {"Name", "Content", "ContentType"});
	assert_string_equal(str(a, "Name").c_str(), "note.txt");
	assert_string_equal(str(a, "ContentType").c_str(), "text/plain");
	assert_string_equal(str(a, "Content").c_str(), base64_encode("hello attachment").c_str());
}

/* Optional members stay out when the message has nothing for them. */
static void test_postmark_minimal(void **)
{
	Provider p;
	HttpClient http(p.base);
	auto t = make_transport(config_for(TransportType::postmark, p), http);
	Message m = test_message(false);
	m.reply_to.clear();
	m.html_body.clear();
	m.headers.clear();
	m.recipients = {"a@example.org"};
	p.answer = {200, "{\"MessageID\":\"x\"}", {}};
	p.deliver(*t, m);
	Json j = parse(p.requests.at(0).body);
	assert_members(j.get(), {"From", "To", "Subject", "TextBody"});
	assert_string_equal(str(j.get(), "To").c_str(), "a@example.org");
}

/* The request Postmark gets for m: To, Cc, Bcc members (absent = ""). */
struct PostmarkRcpts {
	std::string to, cc, bcc, body;
};

PostmarkRcpts postmark_rcpts(const Message &m)
{
	Provider p;
	HttpClient http(p.base);
	auto t = make_transport(config_for(TransportType::postmark, p), http);
	p.answer = {200, "{\"MessageID\":\"x\"}", {}};
	p.deliver(*t, m);
	assert_int_equal(p.requests.size(), 1); /* every recipient in one request */
	PostmarkRcpts r;
	r.body = p.requests[0].body;
	Json j = parse(r.body);
	r.to = str(j.get(), "To");
	if (cJSON_HasObjectItem(j.get(), "Cc"))
		r.cc = str(j.get(), "Cc");
	if (cJSON_HasObjectItem(j.get(), "Bcc"))
		r.bcc = str(j.get(), "Bcc");
	return r;
}

/* A blind copy goes in Bcc only; Postmark needs a To, and none is invented from a Bcc. */
static void test_postmark_visibility(void **)
{
	PostmarkRcpts r = postmark_rcpts(visible_message(true));
	assert_string_equal(r.to.c_str(), "a@example.org");
	assert_string_equal(r.cc.c_str(), "b@example.org");
	assert_string_equal(r.bcc.c_str(), "c@example.org");
	assert_int_equal(occurrences(r.body, "c@example.org"), 1);

	/* Cc only: the Cc recipients are the To (nobody sees more than before). */
	Message m = visible_message();
	m.to_visible.clear();
	r = postmark_rcpts(m);
	assert_string_equal(r.to.c_str(), "b@example.org");
	assert_string_equal(r.cc.c_str(), "");
	assert_string_equal(r.bcc.c_str(), "a@example.org, c@example.org");

	/* One blind recipient: To is that recipient alone. */
	m.cc_visible.clear();
	m.recipients = {"c@example.org"};
	r = postmark_rcpts(m);
	assert_string_equal(r.to.c_str(), "c@example.org");
	assert_string_equal(r.cc.c_str(), "");
	assert_string_equal(r.bcc.c_str(), "");

	/* Several, all blind: To is the sender, every recipient in Bcc. */
	m.recipients = {"a@example.org", "from@EXAMPLE.com", "c@example.org"};
	r = postmark_rcpts(m);
	assert_string_equal(r.to.c_str(), "from@example.com");
	assert_string_equal(r.cc.c_str(), "");
	assert_string_equal(r.bcc.c_str(), "a@example.org, c@example.org");

	/* Legacy: all in To, no Cc or Bcc member. */
	m = test_message();
	r = postmark_rcpts(m);
	assert_string_equal(r.to.c_str(), "a@example.org, b@example.org");
	assert_false(strstr(r.body.c_str(), "\"Cc\"") || strstr(r.body.c_str(), "\"Bcc\""));
}

static void test_postmark_outcomes(void **)
{
	check_outcomes(TransportType::postmark, 422);
}

/* Network failures are transient and name no secret; a stalled provider times out. */
static void test_network_failures(void **)
{
	Provider p;
	TransportConfig cfg = config_for(TransportType::postmark, p);
	int s = socket(AF_INET, SOCK_STREAM, 0);
	sockaddr_in sin = {};
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s, (sockaddr *)&sin, sizeof(sin)), 0);
	socklen_t len = sizeof(sin);
	getsockname(s, (sockaddr *)&sin, &len);
	close(s);
	cfg.base_url = "http://127.0.0.1:" + std::to_string(ntohs(sin.sin_port));
	HttpClient http(p.base);
	auto t = make_transport(cfg, http);
	DeliveryResult r = p.deliver(*t, test_message());
	assert_int_equal(r.outcome, DeliveryOutcome::transient);
	assert_true(r.detail.rfind("connection failed: ", 0) == 0);
	assert_no_secret(r);

	/* A listener that accepts and never answers. */
	int ls = socket(AF_INET, SOCK_STREAM, 0);
	sin.sin_port = 0;
	assert_int_equal(bind(ls, (sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(ls, 4), 0);
	len = sizeof(sin);
	getsockname(ls, (sockaddr *)&sin, &len);
	cfg.base_url = "http://127.0.0.1:" + std::to_string(ntohs(sin.sin_port));
	cfg.timeout = 1;
	auto slow = make_transport(cfg, http);
	r = p.deliver(*slow, test_message(), 4000);
	close(ls);
	assert_int_equal(r.outcome, DeliveryOutcome::transient);
	assert_string_equal(r.detail.c_str(), "timeout");
}

static void test_resend_wire(void **)
{
	Provider p;
	HttpClient http(p.base);
	auto t = make_transport(config_for(TransportType::resend, p), http);
	p.answer = {200, "{\"id\":\"49a3999c-0ce1-4ea6-ab68-afcd6dc2e794\"}", {}};
	DeliveryResult r = p.deliver(*t, test_message());
	assert_int_equal(r.outcome, DeliveryOutcome::sent);
	assert_string_equal(r.provider_id.c_str(), "49a3999c-0ce1-4ea6-ab68-afcd6dc2e794");
	assert_no_secret(r);

	const Captured &c = p.requests.at(0);
	assert_string_equal(c.method.c_str(), "POST");
	assert_string_equal(c.uri.c_str(), "/emails");
	assert_string_equal(c.header("Authorization").c_str(), (std::string("Bearer ") + SENTINEL).c_str());
	assert_string_equal(c.header("Content-Type").c_str(), "application/json");
	assert_string_equal(c.header("Idempotency-Key").c_str(), "0123456789abcdef0123456789abcdef");

	Json j = parse(c.body);
	assert_members(j.get(), {"from", "to", "reply_to", "subject", "text", "html", "headers",
	    "attachments"}); /* legacy: no cc or bcc */
	assert_string_equal(str(j.get(), "from").c_str(), "Sender <from@example.com>");
	const cJSON *to = get(j.get(), "to");
	assert_true(cJSON_IsArray(to));
	assert_int_equal(cJSON_GetArraySize(to), 2);
	assert_string_equal(cJSON_GetArrayItem(to, 0)->valuestring, "a@example.org");
	assert_string_equal(cJSON_GetArrayItem(to, 1)->valuestring, "b@example.org");
	assert_string_equal(str(j.get(), "reply_to").c_str(), "reply@example.com");
	assert_string_equal(str(j.get(), "subject").c_str(), "Hello \xe2\x9c\x93");
	assert_string_equal(str(j.get(), "text").c_str(), "text body\n");
	assert_string_equal(str(j.get(), "html").c_str(), "<p>html body</p>");
	const cJSON *headers = get(j.get(), "headers");
	assert_true(cJSON_IsObject(headers));
	assert_members(headers, {"X-Campaign"});
	assert_string_equal(str(headers, "X-Campaign").c_str(), "spring");
	const cJSON *atts = get(j.get(), "attachments");
	assert_int_equal(cJSON_GetArraySize(atts), 1);
	const cJSON *a = cJSON_GetArrayItem(atts, 0);
	assert_members(a, {"filename", "content", "content_type"});
	assert_string_equal(str(a, "filename").c_str(), "note.txt");
	assert_string_equal(str(a, "content").c_str(), base64_encode("hello attachment").c_str());
	assert_string_equal(str(a, "content_type").c_str(), "text/plain");
}

static void test_resend_visibility(void **)
{
	Provider p;
	HttpClient http(p.base);
	auto t = make_transport(config_for(TransportType::resend, p), http);
	p.answer = {200, "{\"id\":\"x\"}", {}};
	p.deliver(*t, visible_message());
	Message m = visible_message();
	m.to_visible.clear();
	m.cc_visible.clear();
	p.deliver(*t, m);
	assert_int_equal(p.requests.size(), 2);

	Json j = parse(p.requests[0].body);
	assert_true(strings(get(j.get(), "to")) == Strings{"a@example.org"});
	assert_true(strings(get(j.get(), "cc")) == Strings{"b@example.org"});
	assert_true(strings(get(j.get(), "bcc")) == Strings{"c@example.org"});
	assert_int_equal(occurrences(p.requests[0].body, "c@example.org"), 1);
	/* Bcc only: Resend needs a `to`, the same fallback as Postmark's. */
	j = parse(p.requests[1].body);
	assert_true(strings(get(j.get(), "to")) == Strings{"from@example.com"});
	assert_false(cJSON_HasObjectItem(j.get(), "cc"));
	assert_true(strings(get(j.get(), "bcc")) ==
	    Strings({"a@example.org", "b@example.org", "c@example.org"}));
}

static void test_resend_outcomes(void **)
{
	check_outcomes(TransportType::resend, 422);
	check_outcomes(TransportType::resend, 400);
}

static void test_mailgun_wire(void **)
{
	Provider p;
	HttpClient http(p.base);
	auto t = make_transport(config_for(TransportType::mailgun, p), http);
	p.answer = {200, "{\"id\":\"<20260101.1@mg.example.com>\",\"message\":\"Queued. Thank you.\"}", {}};
	DeliveryResult r = p.deliver(*t, test_message());
	assert_int_equal(r.outcome, DeliveryOutcome::sent);
	assert_string_equal(r.provider_id.c_str(), "<20260101.1@mg.example.com>");
	assert_no_secret(r);

	const Captured &c = p.requests.at(0);
	assert_string_equal(c.method.c_str(), "POST");
	assert_string_equal(c.uri.c_str(), "/v3/mg.example.com/messages");
	std::string basic = "Basic " + base64_encode(std::string("api:") + SENTINEL);
	assert_string_equal(c.header("Authorization").c_str(), basic.c_str());
	assert_true(c.header("Content-Type").rfind("multipart/form-data; boundary=", 0) == 0);

	auto one = [&](const char *name) {
		auto v = form_values(c.body, name);
		if (v.size() != 1)
			fail_msg("field %s: %zu values", name, v.size());
		return v[0];
	};
	assert_string_equal(one("from").c_str(), "Sender <from@example.com>");
	auto to = form_values(c.body, "to");
	assert_int_equal(to.size(), 2);
	assert_string_equal(to[0].c_str(), "a@example.org");
	assert_string_equal(to[1].c_str(), "b@example.org");
	assert_string_equal(one("subject").c_str(), "Hello \xe2\x9c\x93");
	assert_string_equal(one("text").c_str(), "text body\n");
	assert_string_equal(one("html").c_str(), "<p>html body</p>");
	assert_string_equal(one("h:Reply-To").c_str(), "reply@example.com");
	assert_string_equal(one("h:X-Campaign").c_str(), "spring");
	std::vector<std::string> att_headers;
	auto att = form_values(c.body, "attachment", &att_headers);
	assert_int_equal(att.size(), 1);
	assert_string_equal(att[0].c_str(), "hello attachment");
	assert_non_null(strstr(att_headers[0].c_str(), "filename=\"note.txt\""));
	assert_non_null(strstr(att_headers[0].c_str(), "Content-Type: text/plain"));
	/* Nothing else in the form. */
	size_t parts = 0;
	for (size_t at = c.body.find("Content-Disposition:"); at != std::string::npos;
	    at = c.body.find("Content-Disposition:", at + 1))
		parts++;
	assert_int_equal(parts, 9);
	assert_null(strstr(c.body.c_str(), SENTINEL));
}

static void test_mailgun_visibility(void **)
{
	Provider p;
	HttpClient http(p.base);
	auto t = make_transport(config_for(TransportType::mailgun, p), http);
	p.answer = {200, "{\"id\":\"x\"}", {}};
	p.deliver(*t, visible_message(true));
	Message m = visible_message();
	m.to_visible.clear();
	p.deliver(*t, m);
	assert_int_equal(p.requests.size(), 2);

	const std::string &body = p.requests[0].body;
	assert_true(form_values(body, "to") == Strings{"a@example.org"});
	assert_true(form_values(body, "cc") == Strings{"b@example.org"});
	assert_true(form_values(body, "bcc") == Strings{"c@example.org"});
	assert_int_equal(occurrences(body, "c@example.org"), 1);
	/* Cc only: Mailgun needs a `to`; the Cc recipients become it. */
	const std::string &cc_only = p.requests[1].body;
	assert_true(form_values(cc_only, "to") == Strings{"b@example.org"});
	assert_true(form_values(cc_only, "cc").empty());
	assert_true(form_values(cc_only, "bcc") == Strings({"a@example.org", "c@example.org"}));
}

static void test_mailgun_outcomes(void **)
{
	check_outcomes(TransportType::mailgun, 400);
}

/* Re-sign what arrived: the provider-side check that the sent request is the signed one. */
void check_signature(const Captured &c, const TransportConfig &cfg)
{
	SigV4Request sr;
	sr.method = "POST";
	sr.path = c.uri;
	sr.headers = {{"host", c.header("Host")}, {"content-type", c.header("Content-Type")},
	    {"x-amz-date", c.header("X-Amz-Date")}};
	if (!cfg.session_token.empty())
		sr.headers.emplace_back("x-amz-security-token", c.header("X-Amz-Security-Token"));
	sr.body = c.body;
	SigV4Credentials creds{cfg.access_key_id, cfg.secret_access_key, cfg.session_token};
	SigV4Result sig = sigv4_sign(sr, creds, cfg.region, "ses", c.header("X-Amz-Date"));
	assert_string_equal(sig.authorization.c_str(), c.header("Authorization").c_str());
}

static void test_ses_simple_wire(void **)
{
	Provider p;
	TransportConfig cfg = config_for(TransportType::ses, p);
	HttpClient http(p.base);
	auto t = make_transport(cfg, http);
	p.answer = {200, "{\"MessageId\":\"0100018c-ses-id\"}", {}};
	DeliveryResult r = p.deliver(*t, test_message(false));
	assert_int_equal(r.outcome, DeliveryOutcome::sent);
	assert_string_equal(r.provider_id.c_str(), "0100018c-ses-id");
	assert_no_secret(r);

	const Captured &c = p.requests.at(0);
	assert_string_equal(c.method.c_str(), "POST");
	assert_string_equal(c.uri.c_str(), "/v2/email/outbound-emails");
	std::string auth = c.header("Authorization");
	std::string want = std::string("AWS4-HMAC-SHA256 Credential=") + AKID + "/";
	assert_true(auth.rfind(want, 0) == 0);
	std::string date = c.header("X-Amz-Date");
	assert_int_equal(date.size(), 16);
	assert_non_null(strstr(auth.c_str(), (date.substr(0, 8) + "/us-east-1/ses/aws4_request").c_str()));
	assert_false(c.has_header("X-Amz-Security-Token"));
	assert_string_equal(c.header("Host").c_str(), ("127.0.0.1:" + std::to_string(p.port)).c_str());
	check_signature(c, cfg);

	Json j = parse(c.body);
	assert_members(j.get(), {"FromEmailAddress", "Destination", "ReplyToAddresses", "Content"});
	assert_string_equal(str(j.get(), "FromEmailAddress").c_str(), "Sender <from@example.com>");
	const cJSON *dest = get(j.get(), "Destination");
	assert_members(dest, {"ToAddresses"});
	const cJSON *to = get(dest, "ToAddresses");
	assert_int_equal(cJSON_GetArraySize(to), 2);
	assert_string_equal(cJSON_GetArrayItem(to, 0)->valuestring, "a@example.org");
	assert_string_equal(cJSON_GetArrayItem(to, 1)->valuestring, "b@example.org");
	const cJSON *reply = get(j.get(), "ReplyToAddresses");
	assert_int_equal(cJSON_GetArraySize(reply), 1);
	assert_string_equal(cJSON_GetArrayItem(reply, 0)->valuestring, "reply@example.com");
	const cJSON *content = get(j.get(), "Content");
	assert_members(content, {"Simple"});
	const cJSON *simple = get(content, "Simple");
	assert_members(simple, {"Subject", "Body", "Headers"});
	const cJSON *subject = get(simple, "Subject");
	assert_members(subject, {"Data", "Charset"});
	assert_string_equal(str(subject, "Data").c_str(), "Hello \xe2\x9c\x93");
	assert_string_equal(str(subject, "Charset").c_str(), "UTF-8");
	const cJSON *body = get(simple, "Body");
	assert_members(body, {"Text", "Html"});
	assert_string_equal(str(get(body, "Text"), "Data").c_str(), "text body\n");
	assert_string_equal(str(get(body, "Text"), "Charset").c_str(), "UTF-8");
	assert_string_equal(str(get(body, "Html"), "Data").c_str(), "<p>html body</p>");
	assert_string_equal(str(get(body, "Html"), "Charset").c_str(), "UTF-8");
	const cJSON *headers = get(simple, "Headers");
	assert_int_equal(cJSON_GetArraySize(headers), 1);
	assert_string_equal(str(cJSON_GetArrayItem(headers, 0), "Name").c_str(), "X-Campaign");
	assert_string_equal(str(cJSON_GetArrayItem(headers, 0), "Value").c_str(), "spring");
}

static void test_ses_raw_and_token(void **)
{
	Provider p;
	TransportConfig cfg = config_for(TransportType::ses, p);
	cfg.session_token = SES_TOKEN;
	HttpClient http(p.base);
	auto t = make_transport(cfg, http);
	p.answer = {200, "{\"MessageId\":\"raw-id\"}", {}};
	DeliveryResult r = p.deliver(*t, test_message(true));
	assert_int_equal(r.outcome, DeliveryOutcome::sent);
	assert_string_equal(r.provider_id.c_str(), "raw-id");

	const Captured &c = p.requests.at(0);
	assert_string_equal(c.header("X-Amz-Security-Token").c_str(), SES_TOKEN);
	check_signature(c, cfg);
	Json j = parse(c.body);
	assert_members(j.get(), {"FromEmailAddress", "Destination", "ReplyToAddresses", "Content"});
	const cJSON *content = get(j.get(), "Content");
	assert_members(content, {"Raw"});
	const cJSON *raw = get(content, "Raw");
	assert_members(raw, {"Data"});
	std::string mime;
	assert_true(base64_decode(str(raw, "Data"), mime));
	assert_non_null(strstr(mime.c_str(), "\r\nSubject: "));
	assert_non_null(strstr(mime.c_str(), "multipart/mixed"));
	assert_non_null(strstr(mime.c_str(), "note.txt"));
	assert_non_null(strstr(mime.c_str(), base64_encode("hello attachment").c_str()));
	assert_null(strstr(c.body.c_str(), SES_SECRET));
}

/*
 * Destination holds every recipient, Simple or Raw (SES delivers Raw to its
 * Destination); the blind copy is only in BccAddresses, never in the MIME.
 */
static void test_ses_visibility(void **)
{
	Provider p;
	HttpClient http(p.base);
	auto t = make_transport(config_for(TransportType::ses, p), http);
	p.answer = {200, "{\"MessageId\":\"x\"}", {}};
	p.deliver(*t, visible_message(false));
	p.deliver(*t, visible_message(true));
	Message m = visible_message(true);
	m.to_visible.clear();
	m.cc_visible.clear();
	p.deliver(*t, m);
	assert_int_equal(p.requests.size(), 3);

	for (int i = 0; i < 2; i++) {
		Json j = parse(p.requests[i].body);
		const cJSON *dest = get(j.get(), "Destination");
		assert_members(dest, {"ToAddresses", "CcAddresses", "BccAddresses"});
		assert_true(strings(get(dest, "ToAddresses")) == Strings{"a@example.org"});
		assert_true(strings(get(dest, "CcAddresses")) == Strings{"b@example.org"});
		assert_true(strings(get(dest, "BccAddresses")) == Strings{"c@example.org"});
		assert_int_equal(occurrences(p.requests[i].body, "c@example.org"), 1);
	}
	Json j = parse(p.requests[1].body);
	std::string mime;
	assert_true(base64_decode(str(get(get(j.get(), "Content"), "Raw"), "Data"), mime));
	std::string head = mime.substr(0, mime.find("\r\n\r\n") + 2);
	assert_non_null(strstr(head.c_str(), "\r\nTo: a@example.org\r\n"));
	assert_non_null(strstr(head.c_str(), "\r\nCc: b@example.org\r\n"));
	assert_null(strstr(mime.c_str(), "c@example.org"));
	assert_null(strcasestr(mime.c_str(), "\nBcc:"));

	/* Bcc only: SES takes an empty To, so nothing is invented; the MIME shows nobody. */
	j = parse(p.requests[2].body);
	const cJSON *dest = get(j.get(), "Destination");
	assert_members(dest, {"BccAddresses"});
	assert_true(strings(get(dest, "BccAddresses")) ==
	    Strings({"a@example.org", "b@example.org", "c@example.org"}));
	assert_true(base64_decode(str(get(get(j.get(), "Content"), "Raw"), "Data"), mime));
	assert_non_null(strstr(mime.c_str(), "\r\nTo: undisclosed-recipients:;\r\n"));
	assert_null(strstr(mime.c_str(), "@example.org"));
}

static void test_ses_outcomes(void **)
{
	Provider unused;
	TransportConfig cfg = config_for(TransportType::ses, unused);
	cfg.session_token = SES_TOKEN;
	check_outcomes(TransportType::ses, 400, &cfg);
}

int main()
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_postmark_wire),
		cmocka_unit_test(test_postmark_minimal),
		cmocka_unit_test(test_postmark_visibility),
		cmocka_unit_test(test_postmark_outcomes),
		cmocka_unit_test(test_network_failures),
		cmocka_unit_test(test_resend_wire),
		cmocka_unit_test(test_resend_visibility),
		cmocka_unit_test(test_resend_outcomes),
		cmocka_unit_test(test_mailgun_wire),
		cmocka_unit_test(test_mailgun_visibility),
		cmocka_unit_test(test_mailgun_outcomes),
		cmocka_unit_test(test_ses_simple_wire),
		cmocka_unit_test(test_ses_raw_and_token),
		cmocka_unit_test(test_ses_visibility),
		cmocka_unit_test(test_ses_outcomes),
	};
	return cmocka_run_group_tests(tests, nullptr, nullptr);
}
