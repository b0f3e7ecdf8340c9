/*
 * The canonical message: JSON round trip, every rejection rule of
 * message_validate()/message_from_json(), header injection, the base64 and
 * UTF-8 codecs, addr-spec and mailbox syntax, submission ids.
 */
#include <cjson/cJSON.h>

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "common/base64.h"
#include "common/message.h"
#include "regress/unit/unit.h"

using namespace posthorn;
using namespace std::string_literals;

namespace {

std::string binary_blob()
{
	std::string s;
	for (int i = 0; i < 256; i++)
		s += static_cast<char>(i);
	s += "\0\0tail\0"s;
	return s;
}

Message full_message()
{
	Message m;
	m.id = "0123456789abcdef0123456789abcdef";
	m.envelope_from = "bounce@example.com";
	m.recipients = {"alice@example.org", "bob+tag@example.net", "\"odd@local\"@example.com"};
	m.from = "\"Example, Inc.\" <noreply@example.com>";
	m.reply_to = "Support <support@example.com>";
	m.subject = "Grüße \"quoted\" \\ back\tslash";
	m.text_body = "Line one\r\nLine two \"q\" \\ \x01 ünïcödé 𝄞\n";
	m.html_body = "<p>Hello &amp; <b>world</b></p>";
	m.attachments = {
		{"report.pdf", "application/pdf", binary_blob()},
		{"empty.txt", "text/plain", ""},
		{"naïve résumé.txt", "text/plain", "x"},
	};
	m.headers = {
		{"X-Campaign", "spring"},
		{"List-Unsubscribe", "<mailto:unsub@example.com>"},
		{"In-Reply-To", "<abc@example.com>"},
	};
	m.source = "smtp:submission";
	m.transport = "postmark";
	m.delivery = Delivery::sync;
	m.idempotency_key = "order-42 retry";
	m.created = 1700000000;
	return m;
}

/* full_message() as smtpd builds it: header To alice, Cc bob, the third recipient a blind copy. */
Message visible_message()
{
	Message m = full_message();
	m.to_visible = {"alice@example.org"};
	m.cc_visible = {"bob+tag@example.net"};
	m.visibility_known = true;
	return m;
}

/* The smallest valid message. */
Message min_message()
{
	Message m;
	m.id = "0123456789abcdef0123456789abcdef";
	m.recipients = {"a@example.org"};
	m.from = "b@example.com";
	m.text_body = "hi";
	m.transport = "outbox";
	return m;
}

void check_why(const std::string &why, const char *field)
{
	if (strstr(why.c_str(), field) == nullptr) {
		print_error("why \"%s\" does not name \"%s\"\n", why.c_str(), field);
		fail();
	}
}

bool has_nul(const Message &m)
{
	auto nul = [](const std::string &s) { return s.find('\0') != std::string::npos; };
	for (const std::string *s : {&m.id, &m.envelope_from, &m.from, &m.reply_to, &m.subject,
		 &m.text_body, &m.html_body, &m.source, &m.transport, &m.idempotency_key})
		if (nul(*s))
			return true;
	for (const auto *list : {&m.recipients, &m.to_visible, &m.cc_visible})
		for (const auto &r : *list)
			if (nul(r))
				return true;
	for (const auto &a : m.attachments)
		if (nul(a.filename) || nul(a.content_type))
			return true;
	for (const auto &[n, v] : m.headers)
		if (nul(n) || nul(v))
			return true;
	return false;
}

/*
 * Rejected in memory, and again when written by message_to_json() and read
 * back (cJSON strings end at NUL, so NUL goes through the document tests).
 */
void expect_rejected(const Message &m, const char *field)
{
	std::string why;
	assert_false(message_validate(m, why));
	check_why(why, field);
	if (has_nul(m))
		return;
	Message out;
	why.clear();
	assert_false(message_from_json(message_to_json(m), out, why));
	check_why(why, field);
}

void expect_accepted(const Message &m)
{
	std::string why;
	if (!message_validate(m, why)) {
		print_error("rejected: %s\n", why.c_str());
		fail();
	}
	Message out;
	if (!message_from_json(message_to_json(m), out, why)) {
		print_error("rejected after round trip: %s\n", why.c_str());
		fail();
	}
}

/* A document edited as a cJSON tree, for type and schema errors. */
void expect_doc_rejected(const std::function<void(cJSON *)> &edit, const char *field)
{
	cJSON *doc = cJSON_Parse(message_to_json(full_message()).c_str());
	assert_non_null(doc);
	edit(doc);
	char *text = cJSON_PrintUnformatted(doc);
	cJSON_Delete(doc);
	Message out;
	std::string why;
	bool ok = message_from_json(text, out, why);
	cJSON_free(text);
	assert_false(ok);
	check_why(why, field);
}

void replace(cJSON *doc, const char *key, cJSON *value)
{
	if (cJSON_HasObjectItem(doc, key))
		cJSON_ReplaceItemInObject(doc, key, value);
	else
		cJSON_AddItemToObject(doc, key, value);
}

void assert_same(const Message &a, const Message &b)
{
	assert_true(a.id == b.id);
	assert_true(a.envelope_from == b.envelope_from);
	assert_true(a.recipients == b.recipients);
	assert_true(a.to_visible == b.to_visible);
	assert_true(a.cc_visible == b.cc_visible);
	assert_true(a.visibility_known == b.visibility_known);
	assert_true(a.from == b.from);
	assert_true(a.reply_to == b.reply_to);
	assert_true(a.subject == b.subject);
	assert_true(a.text_body == b.text_body);
	assert_true(a.html_body == b.html_body);
	assert_int_equal(a.attachments.size(), b.attachments.size());
	for (size_t i = 0; i < a.attachments.size(); i++) {
		assert_true(a.attachments[i].filename == b.attachments[i].filename);
		assert_true(a.attachments[i].content_type == b.attachments[i].content_type);
		assert_true(a.attachments[i].data == b.attachments[i].data);
	}
	assert_true(a.headers == b.headers);
	assert_true(a.source == b.source);
	assert_true(a.transport == b.transport);
	assert_true(a.delivery == b.delivery);
	assert_true(a.idempotency_key == b.idempotency_key);
	assert_int_equal(a.created, b.created);
}

} // namespace

/* ---- round trip ------------------------------------------------------- */

static void test_round_trip(void **)
{
	Message m = full_message();
	std::string why;
	assert_true(message_validate(m, why));
	std::string json = message_to_json(m);
	assert_null(memchr(json.data(), '\0', json.size()));
	assert_null(strchr(json.c_str(), '\n')); /* one line: CR/LF in values are escaped */

	Message out;
	assert_true(message_from_json(json, out, why));
	assert_same(m, out);
	assert_int_equal(out.attachments[0].data.size(), 256 + 7);

	/* The document is what the schema says. */
	cJSON *doc = cJSON_Parse(json.c_str());
	assert_non_null(doc);
	assert_int_equal(cJSON_GetObjectItem(doc, "version")->valueint, 1);
	assert_string_equal(cJSON_GetObjectItem(doc, "delivery")->valuestring, "sync");
	assert_true(cJSON_IsNumber(cJSON_GetObjectItem(doc, "created")));
	cJSON *att = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "attachments"), 0);
	std::string decoded;
	assert_true(base64_decode(cJSON_GetObjectItem(att, "data")->valuestring, decoded));
	assert_true(decoded == binary_blob());
	cJSON *hdr = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "headers"), 1);
	assert_string_equal(cJSON_GetArrayItem(hdr, 0)->valuestring, "List-Unsubscribe");
	cJSON_Delete(doc);

	/* Writing what was read gives the same document. */
	assert_true(message_to_json(out) == json);
}

/* to, cc and visibility_known: written only when set, read back as written. */
static void test_visibility_round_trip(void **)
{
	std::string why;
	Message out;
	std::string legacy = message_to_json(full_message());
	for (const char *key : {"\"to\"", "\"cc\"", "\"visibility_known\""})
		assert_null(strstr(legacy.c_str(), key));

	Message m = visible_message();
	expect_accepted(m);
	std::string json = message_to_json(m);
	assert_true(message_from_json(json, out, why));
	assert_same(m, out);
	assert_true(message_to_json(out) == json);
	cJSON *doc = cJSON_Parse(json.c_str());
	assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "to"), 0)->valuestring,
	    "alice@example.org");
	assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "cc"), 0)->valuestring,
	    "bob+tag@example.net");
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(doc, "visibility_known")));
	cJSON_Delete(doc);

	/* Bcc only: nobody shown, and that is kept. */
	m.to_visible.clear();
	m.cc_visible.clear();
	assert_true(message_from_json(message_to_json(m), out, why));
	assert_same(m, out);
	/* Shown lists without the flag (no smtpd writes it, but it is well formed). */
	m = visible_message();
	m.visibility_known = false;
	assert_true(message_from_json(message_to_json(m), out, why));
	assert_same(m, out);

	/* The largest: every recipient distinct and shown; the element bound still holds. */
	m = full_message();
	m.recipients.clear();
	for (size_t i = 0; i < MESSAGE_MAX_RECIPIENTS; i++)
		m.recipients.push_back("r" + std::to_string(i) + "@example.org");
	m.to_visible.assign(m.recipients.begin(), m.recipients.begin() + 600);
	m.cc_visible.assign(m.recipients.begin() + 600, m.recipients.end());
	m.visibility_known = true;
	expect_accepted(m);
}

static void test_reject_visibility(void **)
{
	Message m = visible_message();
	m.to_visible = {"nobody@example.org"};
	expect_rejected(m, "to[0]: not a recipient");
	m = visible_message();
	m.cc_visible = {"bob+tag@example.net", "carol@example.org"};
	expect_rejected(m, "cc[1]: not a recipient");
	m = visible_message();
	m.to_visible = {"Alice <alice@example.org>"};
	expect_rejected(m, "to[0]: invalid address");
	m.to_visible = {""};
	expect_rejected(m, "to[0]");
	m.to_visible = {std::string(64, 'a') + "@" + std::string(300, 'b') + ".com"};
	expect_rejected(m, "to[0]");

	/* Each recipient at most once in the two lists together. */
	m = visible_message();
	m.to_visible = {"alice@example.org", "alice@example.org"};
	expect_rejected(m, "to[1]: repeated");
	m = visible_message();
	m.cc_visible = {"alice@example.org"};
	expect_rejected(m, "cc[0]: repeated");

	/* The domain compares case-insensitively, the local part exactly. */
	m = visible_message();
	m.to_visible = {"alice@EXAMPLE.Org"};
	expect_accepted(m);
	m.to_visible = {"alice@example.org", "alice@Example.ORG"};
	expect_rejected(m, "to[1]: repeated");
	m.to_visible = {"Alice@example.org"};
	expect_rejected(m, "to[0]: not a recipient");

	/* Bounds, as for recipients. */
	m = visible_message();
	m.to_visible.assign(MESSAGE_MAX_RECIPIENTS + 1, "alice@example.org");
	expect_rejected(m, "to: too many");
	m = visible_message();
	m.cc_visible.assign(MESSAGE_MAX_RECIPIENTS + 1, "alice@example.org");
	expect_rejected(m, "cc: too many");

	/* Types in the document. */
	auto visible_doc_rejected = [](const std::function<void(cJSON *)> &edit, const char *field) {
		cJSON *doc = cJSON_Parse(message_to_json(visible_message()).c_str());
		edit(doc);
		char *text = cJSON_PrintUnformatted(doc);
		cJSON_Delete(doc);
		Message out;
		std::string why;
		bool ok = message_from_json(text, out, why);
		cJSON_free(text);
		assert_false(ok);
		check_why(why, field);
	};
	visible_doc_rejected([](cJSON *d) { replace(d, "to", cJSON_CreateString("alice@example.org")); }, "to: not an array");
	visible_doc_rejected([](cJSON *d) { cJSON_AddItemToArray(cJSON_GetObjectItem(d, "cc"), cJSON_CreateNumber(1)); }, "cc[1]: not a string");
	visible_doc_rejected([](cJSON *d) { cJSON_AddItemToObject(d, "to", cJSON_CreateArray()); }, "to: repeated");
	visible_doc_rejected([](cJSON *d) { replace(d, "visibility_known", cJSON_CreateString("true")); }, "visibility_known: not a boolean");
	visible_doc_rejected([](cJSON *d) { replace(d, "visibility_known", cJSON_CreateNumber(1)); }, "visibility_known: not a boolean");
	visible_doc_rejected([](cJSON *d) { cJSON_AddStringToObject(d, "bcc", "carol@example.org"); }, "unknown");
}

void expect_split(const Message &m, std::vector<std::string> to, std::vector<std::string> cc,
    std::vector<std::string> bcc)
{
	std::vector<std::string> got_to = {"stale"}, got_cc = {"stale"}, got_bcc = {"stale"};
	split_visibility(m, got_to, got_cc, got_bcc);
	assert_true(got_to == to);
	assert_true(got_cc == cc);
	assert_true(got_bcc == bcc);
}

static void test_split_visibility(void **)
{
	Message m = min_message();
	m.recipients = {"a@example.org", "b@example.org", "c@example.org"};
	/* Legacy (HTTP endpoints, older documents): everyone in To. */
	expect_split(m, {"a@example.org", "b@example.org", "c@example.org"}, {}, {});
	/* To a, Cc b, the rest blind. */
	m.to_visible = {"a@example.org"};
	m.cc_visible = {"b@example.org"};
	expect_split(m, {"a@example.org"}, {"b@example.org"}, {"c@example.org"});
	m.visibility_known = true;
	expect_split(m, {"a@example.org"}, {"b@example.org"}, {"c@example.org"});
	/* Cc only: To stays empty. */
	m.to_visible.clear();
	expect_split(m, {}, {"b@example.org"}, {"a@example.org", "c@example.org"});
	/* Bcc only: known, so nobody is shown, however empty the lists. */
	m.cc_visible.clear();
	expect_split(m, {}, {}, {"a@example.org", "b@example.org", "c@example.org"});
	/* Order of the header, not of RCPT TO; a repeated recipient is a blind copy once. */
	m.recipients = {"a@example.org", "c@example.org", "b@Example.ORG", "c@example.org"};
	m.to_visible = {"b@example.org", "a@example.org"};
	expect_split(m, {"b@example.org", "a@example.org"}, {}, {"c@example.org"});

	assert_true(same_address("a@Example.ORG", "a@example.org"));
	assert_false(same_address("A@example.org", "a@example.org"));
	assert_false(same_address("a@example.org", "a@example.org.uk"));
	assert_true(same_address("\"x@Y\"@Z.example", "\"x@Y\"@z.example"));
	assert_false(same_address("\"x@y\"@z.example", "\"x@Y\"@z.example"));
}

static void test_minimal_and_optional_keys(void **)
{
	Message m = min_message();
	expect_accepted(m);
	Message out;
	std::string why;
	assert_true(message_from_json(message_to_json(m), out, why));
	assert_same(m, out);
	assert_true(out.delivery == Delivery::queue);

	/* Optional keys may be absent altogether. */
	const char *doc = R"({"version":1,"id":"123e4567-e89b-12d3-a456-426614174000",)"
			  R"("recipients":["a@example.org"],"from":"b@example.com",)"
			  R"("html_body":"<p>x</p>","transport":"t","delivery":"queue","created":0})";
	assert_true(message_from_json(doc, out, why));
	assert_true(out.text_body.empty());
	assert_true(out.html_body == "<p>x</p>");
	assert_true(out.id == "123e4567-e89b-12d3-a456-426614174000");
	/* Whitespace around the value is fine. */
	assert_true(message_from_json("\n "s + doc + " \r\n\t", out, why));
}

static void test_failure_leaves_output(void **)
{
	Message out = full_message();
	std::string why;
	assert_false(message_from_json("{\"version\":1}", out, why));
	assert_same(out, full_message());
}

/* ---- validation rules, one per assertion ------------------------------ */

static void test_reject_id(void **)
{
	Message m = full_message();
	m.id = "";
	expect_rejected(m, "id");
	m.id = "0123456789ABCDEF0123456789ABCDEF";
	expect_rejected(m, "id");
	m.id = "0123456789abcdef0123456789abcde";
	expect_rejected(m, "id");
	m.id = "../../../../etc/passwd";
	expect_rejected(m, "id");
	m.id = "123e4567e89b-12d3-a456-4266141740000";
	expect_rejected(m, "id");
	m.id = "123e4567-e89b-12d3-a456-426614174000";
	expect_accepted(m);
}

static void test_reject_recipients(void **)
{
	Message m = full_message();
	m.recipients.clear();
	expect_rejected(m, "recipients");
	m.recipients.assign(MESSAGE_MAX_RECIPIENTS + 1, "a@example.org");
	expect_rejected(m, "recipients");
	m.recipients.assign(MESSAGE_MAX_RECIPIENTS, "a@example.org");
	expect_accepted(m);
	m.recipients = {"a@example.org", "not an address"};
	expect_rejected(m, "recipients[1]");
	m.recipients = {std::string(64, 'a') + "@" + std::string(300, 'b') + ".com"};
	expect_rejected(m, "recipients[0]");
	m.recipients = {"Name <a@example.org>"}; /* an addr-spec, not a mailbox */
	expect_rejected(m, "recipients[0]");
}

static void test_reject_envelope_from(void **)
{
	Message m = full_message();
	m.envelope_from = "bounce";
	expect_rejected(m, "envelope_from");
	m.envelope_from = "<bounce@example.com>";
	expect_rejected(m, "envelope_from");
	m.envelope_from = ""; /* the null sender */
	expect_accepted(m);
}

static void test_reject_from_reply_to(void **)
{
	Message m = full_message();
	m.from = "";
	expect_rejected(m, "from");
	m.from = "Name, Jr. <a@example.com>";
	expect_rejected(m, "from");
	m.from = full_message().from;
	m.reply_to = "nobody";
	expect_rejected(m, "reply_to");
	m.reply_to = "";
	expect_accepted(m);
}

static void test_reject_subject(void **)
{
	Message m = full_message();
	m.subject = std::string(MESSAGE_MAX_HEADER_VALUE + 1, 's');
	expect_rejected(m, "subject");
	m.subject = "\xc3\x28";
	expect_rejected(m, "subject");
	m.subject = std::string(MESSAGE_MAX_HEADER_VALUE, 's');
	expect_accepted(m);
	m.subject = "";
	expect_accepted(m);
}

static void test_reject_bodies(void **)
{
	Message m = full_message();
	m.text_body.clear();
	m.html_body.clear();
	expect_rejected(m, "body");
	m.html_body = "<p>html only</p>";
	expect_accepted(m);

	m = full_message();
	m.text_body = "SECRET-BODY \xed\xa0\x80"; /* a surrogate */
	expect_rejected(m, "text_body");
	std::string why;
	message_validate(m, why);
	assert_null(strstr(why.c_str(), "SECRET")); /* never echoes the body */

	m = full_message();
	m.html_body = "<p>\xc0\xaf</p>"; /* overlong '/' */
	expect_rejected(m, "html_body");
	m.html_body = "a\0b"s;
	expect_rejected(m, "html_body");

	m = full_message();
	m.attachments.clear();
	m.html_body.clear();
	m.text_body.assign(MESSAGE_MAX_BODY + 1, 'x');
	expect_rejected(m, "text_body");
	m.text_body.pop_back();
	expect_accepted(m); /* the largest body still fits the document */
}

static void test_reject_document_too_large_to_write(void **)
{
	/* Two maximal bodies are each valid but would not fit one document. */
	Message m = min_message();
	m.text_body.assign(MESSAGE_MAX_BODY, 'x');
	m.html_body.assign(MESSAGE_MAX_BODY, 'y');
	std::string why;
	assert_false(message_validate(m, why));
	check_why(why, "message");
}

static void test_reject_attachments(void **)
{
	Message m = full_message();
	m.attachments.assign(MESSAGE_MAX_ATTACHMENTS + 1, {"a.txt", "text/plain", "x"});
	expect_rejected(m, "attachments");
	m.attachments.assign(MESSAGE_MAX_ATTACHMENTS, {"a.txt", "text/plain", "x"});
	expect_accepted(m);

	m = min_message();
	m.attachments = {{"a.bin", "application/octet-stream", std::string(MESSAGE_MAX_ATTACHMENT_BYTES / 2, 'a')},
		{"b.bin", "application/octet-stream", std::string(MESSAGE_MAX_ATTACHMENT_BYTES / 2 + 1, 'b')}};
	expect_rejected(m, "attachments");

	const char *bad_names[] = {"", "../etc/passwd", "dir/file", "c:\\x.exe", ".", "..",
		"tab\there", "a\x7f" "b"};
	for (const char *name : bad_names) {
		m = full_message();
		m.attachments[1].filename = name;
		expect_rejected(m, "attachments[1].filename");
	}
	m = full_message();
	m.attachments[0].filename = std::string(256, 'f');
	expect_rejected(m, "attachments[0].filename");

	const char *bad_types[] = {"", "text", "text/", "/plain", "text/plain; charset=utf-8",
		"text/pl ain", "text/plain/x", "té/xt", "text/(x)"};
	for (const char *type : bad_types) {
		m = full_message();
		m.attachments[2].content_type = type;
		expect_rejected(m, "attachments[2].content_type");
	}
	m.attachments[2].content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
	expect_accepted(m);
}

static void test_reject_extra_headers(void **)
{
	Message m = full_message();
	m.headers.assign(MESSAGE_MAX_EXTRA_HEADERS + 1, {"X-A", "b"});
	expect_rejected(m, "headers");
	m.headers.assign(MESSAGE_MAX_EXTRA_HEADERS, {"X-A", "b"});
	expect_accepted(m);

	const char *bad_names[] = {"", "X Spaced", "X-Colon:", "Xé", "X\x7f", "X\tTab"};
	for (const char *name : bad_names) {
		m = full_message();
		m.headers[2].first = name;
		expect_rejected(m, "headers[2].name");
	}
	m = full_message();
	m.headers[0].second = std::string(MESSAGE_MAX_HEADER_VALUE + 1, 'v');
	expect_rejected(m, "headers[0].value");
	m.headers[0].second = "\xff";
	expect_rejected(m, "headers[0].value");
}

/* Recipients come from the envelope only: no header may add or change them. */
static void test_reject_smuggled_headers(void **)
{
	const char *reserved[] = {"from", "to", "cc", "bcc", "subject", "reply-to", "sender",
		"date", "message-id", "mime-version", "content-type", "content-transfer-encoding",
		"return-path", "received",
		"Bcc", "BCC", "To", "tO", "Cc", "Message-ID", "Content-Disposition", "Resent-To",
		"resent-bcc", "RESENT-CC"};
	for (const char *name : reserved) {
		Message m = full_message();
		m.headers.push_back({name, "evil@attacker.example"});
		expect_rejected(m, "headers[3].name");
		std::string why;
		message_validate(m, why);
		check_why(why, "reserved");
	}
	/* Similar names are fine. */
	Message m = full_message();
	m.headers = {{"X-To", "a"}, {"Tox", "b"}, {"Bccx", "c"}, {"X-Original-Bcc", "d"}};
	expect_accepted(m);
}

static void test_reject_meta(void **)
{
	Message m = full_message();
	m.source = std::string(257, 's');
	expect_rejected(m, "source");
	m.source = "";
	expect_accepted(m);

	m = full_message();
	m.transport = "";
	expect_rejected(m, "transport");
	m.transport = std::string(129, 't');
	expect_rejected(m, "transport");

	m = full_message();
	m.delivery = static_cast<Delivery>(7);
	std::string why;
	assert_false(message_validate(m, why));
	check_why(why, "delivery");

	m = full_message();
	m.idempotency_key = std::string(256, 'k');
	expect_rejected(m, "idempotency_key");
	m.idempotency_key = "key\x01";
	expect_rejected(m, "idempotency_key");
	m.idempotency_key = "kéy";
	expect_rejected(m, "idempotency_key");
	m.idempotency_key = std::string(255, '~');
	expect_accepted(m);

	m = full_message();
	m.created = -1;
	expect_rejected(m, "created");
	m.created = 0;
	expect_accepted(m);
}

/* ---- header injection ------------------------------------------------- */

struct Field {
	const char *name;
	std::function<void(Message &, const std::string &)> set;
	std::string valid; /* a value the injection is appended to */
};

static void test_header_injection(void **)
{
	const Field fields[] = {
		{"id", [](Message &m, const std::string &v) { m.id = v; }, "0123456789abcdef0123456789abcdef"},
		{"envelope_from", [](Message &m, const std::string &v) { m.envelope_from = v; }, "a@example.com"},
		{"recipients[1]", [](Message &m, const std::string &v) { m.recipients[1] = v; }, "a@example.com"},
		{"to[0]", [](Message &m, const std::string &v) { m.to_visible = {v}; }, "alice@example.org"},
		{"cc[0]", [](Message &m, const std::string &v) { m.cc_visible = {v}; }, "alice@example.org"},
		{"from", [](Message &m, const std::string &v) { m.from = v; }, "A <a@example.com>"},
		{"reply_to", [](Message &m, const std::string &v) { m.reply_to = v; }, "a@example.com"},
		{"subject", [](Message &m, const std::string &v) { m.subject = v; }, "Hello"},
		{"attachments[0].filename", [](Message &m, const std::string &v) { m.attachments[0].filename = v; }, "a.pdf"},
		{"attachments[0].content_type", [](Message &m, const std::string &v) { m.attachments[0].content_type = v; }, "text/plain"},
		{"headers[0].name", [](Message &m, const std::string &v) { m.headers[0].first = v; }, "X-A"},
		{"headers[0].value", [](Message &m, const std::string &v) { m.headers[0].second = v; }, "b"},
		{"source", [](Message &m, const std::string &v) { m.source = v; }, "/api/contact"},
		{"transport", [](Message &m, const std::string &v) { m.transport = v; }, "postmark"},
		{"idempotency_key", [](Message &m, const std::string &v) { m.idempotency_key = v; }, "key"},
	};
	const std::string injections[] = {"\r\nBcc: evil@attacker.example", "\nBcc: x@y.example",
		"\rX", "\0Bcc: x@y.example"s, "\r", "\n", "\0"s};

	for (const Field &f : fields) {
		Message ok = full_message();
		f.set(ok, f.valid);
		expect_accepted(ok);
		for (const std::string &inj : injections) {
			Message m = full_message();
			f.set(m, f.valid + inj);
			expect_rejected(m, f.name);
			std::string why;
			message_validate(m, why);
			check_why(why, "CR, LF or NUL");
			m = full_message();
			f.set(m, inj + f.valid);
			expect_rejected(m, f.name);
		}
	}
}

/* A NUL can only reach a document as \u0000; it is refused before cJSON cuts the string. */
static void test_escaped_nul_in_document(void **)
{
	std::string json = message_to_json(full_message());
	Message out;
	std::string why;
	for (const char *key : {"\"subject\":\"", "\"text_body\":\"", "\"from\":\"", "\"id\":\""}) {
		std::string doc = json;
		size_t at = doc.find(key);
		assert_true(at != std::string::npos);
		doc.insert(at + strlen(key), "\\u0000");
		assert_false(message_from_json(doc, out, why));
		check_why(why, "NUL");
	}
	/* An escaped backslash followed by "u0000" is just text. */
	Message m = full_message();
	m.subject = "\\u0000";
	assert_true(message_from_json(message_to_json(m), out, why));
	assert_true(out.subject == "\\u0000");
	/* A raw NUL byte anywhere. */
	std::string doc = json + "\0"s;
	assert_false(message_from_json(doc, out, why));
	check_why(why, "NUL");
}

/* ---- document-level rules --------------------------------------------- */

static void test_document_oversize(void **)
{
	/* A valid document padded past the limit: refused on size alone, before parsing. */
	std::string doc = message_to_json(full_message());
	doc.append(MESSAGE_MAX_DOCUMENT + 1 - doc.size(), ' ');
	Message out;
	std::string why;
	assert_false(message_from_json(doc, out, why));
	assert_string_equal(why.c_str(), "document: too large");
	doc.resize(MESSAGE_MAX_DOCUMENT);
	assert_true(message_from_json(doc, out, why));
}

static void test_document_syntax(void **)
{
	Message out;
	std::string why;
	std::string json = message_to_json(full_message());

	assert_false(message_from_json("", out, why));
	check_why(why, "document");
	assert_false(message_from_json("{", out, why));
	check_why(why, "document");
	assert_false(message_from_json(json + "{}", out, why));
	check_why(why, "trailing");
	assert_false(message_from_json("[" + json + "]", out, why));
	check_why(why, "document");
	assert_false(message_from_json("\"x\"", out, why));
	check_why(why, "document");
	/* A raw control byte inside a string is not JSON (cJSON would accept it). */
	std::string doc = json;
	doc.insert(doc.find("\"subject\":\"") + 11, "\n");
	assert_false(message_from_json(doc, out, why));
	check_why(why, "control character");
	/* Deep nesting and huge element counts are refused before cJSON builds a tree. */
	assert_false(message_from_json(std::string(100000, '[') + std::string(100000, ']'), out, why));
	check_why(why, "nested");
	doc = json;
	std::string many = "\"a@example.org\"";
	for (int i = 0; i < 5000; i++)
		many += ",1";
	doc.insert(doc.find("\"recipients\":[") + 14, many + ",");
	assert_false(message_from_json(doc, out, why));
	check_why(why, "elements");
}

static void test_document_schema(void **)
{
	expect_doc_rejected([](cJSON *d) { cJSON_DeleteItemFromObject(d, "version"); }, "version");
	expect_doc_rejected([](cJSON *d) { replace(d, "version", cJSON_CreateNumber(2)); }, "version");
	expect_doc_rejected([](cJSON *d) { replace(d, "version", cJSON_CreateNumber(0)); }, "version");
	expect_doc_rejected([](cJSON *d) { replace(d, "version", cJSON_CreateString("1")); }, "version");
	expect_doc_rejected([](cJSON *d) { replace(d, "version", cJSON_CreateNumber(1.5)); }, "version");
	expect_doc_rejected([](cJSON *d) { cJSON_AddStringToObject(d, "bcc", "x@y.example"); }, "unknown");
	expect_doc_rejected([](cJSON *d) { cJSON_AddStringToObject(d, "subject", "again"); }, "subject");
	for (const char *key : {"id", "recipients", "from", "transport", "delivery", "created"})
		expect_doc_rejected([key](cJSON *d) { cJSON_DeleteItemFromObject(d, key); }, key);
	for (const char *key : {"id", "envelope_from", "from", "reply_to", "subject", "text_body",
		 "html_body", "source", "transport", "delivery", "idempotency_key"}) {
		expect_doc_rejected([key](cJSON *d) { replace(d, key, cJSON_CreateNumber(1)); }, key);
		expect_doc_rejected([key](cJSON *d) { replace(d, key, cJSON_CreateNull()); }, key);
		expect_doc_rejected([key](cJSON *d) {
			const char *items[] = {"a@example.com"};
			replace(d, key, cJSON_CreateStringArray(items, 1));
		}, key);
	}
	expect_doc_rejected([](cJSON *d) { replace(d, "recipients", cJSON_CreateString("a@example.org")); }, "recipients");
	expect_doc_rejected([](cJSON *d) { cJSON_AddItemToArray(cJSON_GetObjectItem(d, "recipients"), cJSON_CreateNumber(1)); }, "recipients[3]");
	expect_doc_rejected([](cJSON *d) { replace(d, "recipients", cJSON_CreateArray()); }, "recipients");
	expect_doc_rejected([](cJSON *d) { replace(d, "delivery", cJSON_CreateString("later")); }, "delivery");
	expect_doc_rejected([](cJSON *d) { replace(d, "delivery", cJSON_CreateString("SYNC")); }, "delivery");
	expect_doc_rejected([](cJSON *d) { replace(d, "created", cJSON_CreateNumber(-1)); }, "created");
	expect_doc_rejected([](cJSON *d) { replace(d, "created", cJSON_CreateNumber(1.5)); }, "created");
	expect_doc_rejected([](cJSON *d) { replace(d, "created", cJSON_CreateNumber(1e300)); }, "created");
	expect_doc_rejected([](cJSON *d) { replace(d, "created", cJSON_CreateString("1700000000")); }, "created");
	expect_doc_rejected([](cJSON *d) { replace(d, "attachments", cJSON_CreateObject()); }, "attachments");
	expect_doc_rejected([](cJSON *d) { replace(d, "headers", cJSON_CreateObject()); }, "headers");
}

static void test_document_attachments(void **)
{
	auto att = [](cJSON *d, int i) { return cJSON_GetArrayItem(cJSON_GetObjectItem(d, "attachments"), i); };
	expect_doc_rejected([&](cJSON *d) { cJSON_DeleteItemFromObject(att(d, 0), "data"); }, "attachments[0]");
	expect_doc_rejected([&](cJSON *d) { cJSON_DeleteItemFromObject(att(d, 1), "filename"); }, "attachments[1]");
	expect_doc_rejected([&](cJSON *d) { cJSON_AddStringToObject(att(d, 0), "path", "/etc/shadow"); }, "attachments[0]");
	expect_doc_rejected([&](cJSON *d) { cJSON_AddStringToObject(att(d, 0), "data", "eA=="); }, "attachments[0]");
	expect_doc_rejected([&](cJSON *d) { cJSON_ReplaceItemInObject(att(d, 0), "data", cJSON_CreateNumber(1)); }, "attachments[0].data");
	expect_doc_rejected([&](cJSON *d) { cJSON_ReplaceItemInObject(att(d, 0), "filename", cJSON_CreateNumber(1)); }, "attachments[0].filename");
	expect_doc_rejected([&](cJSON *d) { cJSON_ReplaceItemInObject(att(d, 2), "data", cJSON_CreateString("not base64!")); }, "attachments[2].data");
	expect_doc_rejected([&](cJSON *d) { cJSON_ReplaceItemInObject(att(d, 2), "data", cJSON_CreateString("eA")); }, "attachments[2].data");
	expect_doc_rejected([&](cJSON *d) { cJSON_ReplaceItemInArray(cJSON_GetObjectItem(d, "attachments"), 0, cJSON_CreateString("x")); }, "attachments[0]");

	/* The decoded-size budget is checked before decoding. */
	std::string big = base64_encode(std::string(MESSAGE_MAX_ATTACHMENT_BYTES / 2 + 3, 'z'));
	expect_doc_rejected([&](cJSON *d) {
		cJSON_ReplaceItemInObject(att(d, 0), "data", cJSON_CreateString(big.c_str()));
		cJSON_ReplaceItemInObject(att(d, 1), "data", cJSON_CreateString(big.c_str()));
	}, "attachments");
}

static void test_document_headers(void **)
{
	auto hdrs = [](cJSON *d) { return cJSON_GetObjectItem(d, "headers"); };
	expect_doc_rejected([&](cJSON *d) { cJSON_ReplaceItemInArray(hdrs(d), 0, cJSON_CreateString("X-A: b")); }, "headers[0]");
	expect_doc_rejected([&](cJSON *d) {
		const char *three[] = {"X-A", "b", "c"};
		cJSON_ReplaceItemInArray(hdrs(d), 1, cJSON_CreateStringArray(three, 3));
	}, "headers[1]");
	expect_doc_rejected([&](cJSON *d) {
		cJSON *pair = cJSON_CreateArray();
		cJSON_AddItemToArray(pair, cJSON_CreateString("X-A"));
		cJSON_AddItemToArray(pair, cJSON_CreateNumber(1));
		cJSON_ReplaceItemInArray(hdrs(d), 2, pair);
	}, "headers[2].value");
	expect_doc_rejected([&](cJSON *d) {
		const char *bcc[] = {"Bcc", "evil@attacker.example"};
		cJSON_AddItemToArray(hdrs(d), cJSON_CreateStringArray(bcc, 2));
	}, "headers[3].name");
}

/* ---- base64 ----------------------------------------------------------- */

static void test_base64_vectors(void **)
{
	/* RFC 4648, section 10 */
	const char *vectors[][2] = {
		{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
		{"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
	};
	for (const auto &v : vectors) {
		assert_string_equal(base64_encode(v[0]).c_str(), v[1]);
		std::string out = "junk";
		assert_true(base64_decode(v[1], out));
		assert_string_equal(out.c_str(), v[0]);
		assert_int_equal(base64_decoded_size(v[1]), strlen(v[0]));
	}
	assert_string_equal(base64_encode("\xfb\xff\xbf").c_str(), "+/+/");

	/* Every byte value and every tail length. */
	std::string all = binary_blob();
	for (size_t n = 0; n <= all.size(); n++) {
		std::string in = all.substr(0, n), out;
		std::string enc = base64_encode(in);
		assert_int_equal(enc.size(), (n + 2) / 3 * 4);
		assert_true(base64_decode(enc, out));
		assert_true(out == in);
	}
}

static void test_base64_invalid(void **)
{
	const char *invalid[] = {
		"Zg", "Zg=", "Zm9vY", "=", "====", "Z===", "=Zm9", "Zm=v", "Zm9v====", "Zm9v=",
		"Zh==",     /* non-zero unused bits */
		"Zm9=",     /* non-zero unused bits */
		"Zm 9v", "Zm9v\n", "Zm9v\r\n", " Zm9v", "Zm9-", "Zm9_", "Zm9v!A==", "Zm\x80v",
	};
	for (const char *s : invalid) {
		std::string out;
		if (base64_decode(s, out)) {
			print_error("accepted \"%s\"\n", s);
			fail();
		}
	}
	std::string out;
	assert_false(base64_decode("Zm9v\0Zm9v"s, out));
}

/* ---- UTF-8 ------------------------------------------------------------ */

static void test_utf8(void **)
{
	const std::string valid[] = {
		"", "plain ascii longer than eight bytes", "\x01\x7f", "\xc2\x80", "\xc3\xa9",
		"\xe0\xa0\x80", "\xe2\x82\xac", "\xed\x9f\xbf", "\xee\x80\x80", "\xef\xbf\xbf",
		"\xf0\x90\x80\x80", "\xf0\x9d\x84\x9e", "\xf4\x8f\xbf\xbf",
		"abcdefgh\xc3\xa9" "abcdefgh\xf0\x9d\x84\x9e" "abc",
	};
	for (const std::string &s : valid)
		assert_true(utf8_valid(s));

	const std::string invalid[] = {
		"\x80", "\xbf", "\xc0\x80", "\xc1\xbf", "\xe0\x80\x80", "\xe0\x9f\xbf",
		"\xf0\x80\x80\x80", "\xf0\x8f\xbf\xbf",            /* overlong */
		"\xed\xa0\x80", "\xed\xbf\xbf", "\xed\xa0\x80\xed\xb0\x80", /* surrogates */
		"\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xf7\xbf\xbf\xbf", "\xf8\x88\x80\x80\x80",
		"\xfe", "\xff",                                     /* beyond U+10FFFF */
		"\xc3", "\xe2\x82", "\xf0\x9d\x84", "abcdefgh\xc3", /* truncated */
		"\xc3\x41", "\xe2\x28\xa1", "\xf0\x9d\x84\x41",    /* bad continuation */
	};
	for (const std::string &s : invalid)
		assert_false(utf8_valid(s));
}

/* ---- addresses -------------------------------------------------------- */

static void test_addr_spec(void **)
{
	const std::string valid[] = {
		"a@example.com", "first.last@example.co.uk", "user+tag@example.com",
		"!#$%&'*+-/=?^_`{|}~@example.com", "\"quoted@local\"@example.com",
		"\"a\\\"b\"@example.com", "\"a.\\\\.b\"@example.com", "user@[192.0.2.1]",
		"user@[IPv6:2001:db8::1]", "\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a",
		"jos\xc3\xa9@b\xc3\xbc" "cher.de", "a@b-c.example", "x@123.example", "x@xn--bcher-kva.example",
		std::string(64, 'l') + "@example.com",
		"a@" + std::string(63, 'd') + "." + std::string(63, 'd') + ".example",
	};
	for (const std::string &s : valid) {
		if (!valid_addr_spec(s)) {
			print_error("rejected \"%s\"\n", s.c_str());
			fail();
		}
	}

	const std::string invalid[] = {
		"", "plain", "@example.com", "user@", "user@localhost", ".user@example.com",
		"user.@example.com", "us..er@example.com", "user@-example.com", "user@example-.com",
		"user@exa_mple.com", "user@example..com", "user@example.com.", "user@.example.com",
		"us er@example.com", "user@exam ple.com", " user@example.com", "<user@example.com>",
		"user@example.com>", "user\r@example.com", "user@example.com\n", "user\0@example.com"s,
		"user\x01@example.com", "user@example.com\x7f", "user@[300.1.1.1]", "user@[1.2.3]",
		"user@[IPv6:zz::]", "user@[]", "user@[1.2.3.4", "user(comment)@example.com",
		"a@b@example.com", "\"unterminated@example.com", "\"a b\"@example.com",
		"\"\"@example.com", "\"a\\\"@example.com", "a\"b\"@example.com", "user,x@example.com",
		"user@exa,mple.com", "\xc3@example.com", "user@\xed\xa0\x80.example",
		std::string(65, 'l') + "@example.com",
		"a@" + std::string(64, 'd') + ".example",
		"a@" + std::string(250, 'd') + ".example",
	};
	for (const std::string &s : invalid) {
		if (valid_addr_spec(s)) {
			print_error("accepted \"%s\"\n", s.c_str());
			fail();
		}
	}
}

static void test_mailbox(void **)
{
	struct {
		std::string in, name, addr;
	} valid[] = {
		{"a@example.com", "", "a@example.com"},
		{"  a@example.com\t", "", "a@example.com"},
		{"<a@example.com>", "", "a@example.com"},
		{"Name <a@example.com>", "Name", "a@example.com"},
		{"\"Name, Jr.\" <a@example.com>", "Name, Jr.", "a@example.com"},
		{"\"Say \\\"hi\\\" \\\\o/\" <a@example.com>", "Say \"hi\" \\o/", "a@example.com"},
		{"  J. R. Smith   <a@example.com>  ", "J. R. Smith", "a@example.com"},
		{"Zo\xc3\xab \xc3\x86r\xc3\xb8 <zoe@example.com>", "Zo\xc3\xab \xc3\x86r\xc3\xb8", "zoe@example.com"},
		{"\"A <b@c.com>\" <a@example.com>", "A <b@c.com>", "a@example.com"},
		{"\"\"<a@example.com>", "", "a@example.com"},
		{"O'Brien-Smith <ob@example.com>", "O'Brien-Smith", "ob@example.com"},
	};
	for (const auto &v : valid) {
		std::string name = "junk", addr = "junk";
		if (!parse_mailbox(v.in, name, addr)) {
			print_error("rejected \"%s\"\n", v.in.c_str());
			fail();
		}
		assert_string_equal(name.c_str(), v.name.c_str());
		assert_string_equal(addr.c_str(), v.addr.c_str());
	}

	const std::string invalid[] = {
		"", "   ", "Name", "Name <>", "<>", "Name <a@example.com> junk", "Name <a@example.com>>",
		"Name <<a@example.com>>", "Name, Jr. <a@example.com>", "\"Name <a@example.com>",
		"Name\r\n <a@example.com>", "Name <a@example.com>\r\nBcc: x@y.example",
		"Name\0 <a@example.com>"s, "a@example.com, b@example.com", "Name a@example.com",
		"Name <a@localhost>", "\"Name\" junk <a@example.com>", "Na\"me <a@example.com>",
		"Name (c) <a@example.com>", "<a@example.com> Name", "Name < a@example.com>",
		"Name <a@example.com", "Name: <a@example.com>", "a@b@example.com",
		"\xc3 <a@example.com>", std::string(MESSAGE_MAX_HEADER_VALUE, 'n') + " <a@example.com>",
	};
	for (const std::string &s : invalid) {
		std::string name, addr;
		if (parse_mailbox(s, name, addr)) {
			print_error("accepted \"%s\"\n", s.c_str());
			fail();
		}
	}
}

static void test_header_safe(void **)
{
	assert_true(header_safe(""));
	assert_true(header_safe("Hello\tworld \xc3\xa9"));
	assert_false(header_safe("a\rb"));
	assert_false(header_safe("a\nb"));
	assert_false(header_safe("a\0b"s));
}

/* ---- submission ids --------------------------------------------------- */

static void test_submission_id(void **)
{
	std::set<std::string> seen;
	for (int i = 0; i < 10000; i++) {
		std::string id = new_submission_id();
		assert_int_equal(id.size(), 32);
		for (char c : id)
			assert_true((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
		assert_true(valid_submission_id(id));
		assert_true(seen.insert(id).second);
	}

	assert_true(valid_submission_id("123e4567-e89b-12d3-a456-426614174000"));
	const char *invalid[] = {
		"", "123E4567-E89B-12D3-A456-426614174000", "{123e4567-e89b-12d3-a456-426614174000}",
		"123e4567e89b-12d3-a456-4266141740000", "123e4567-e89b-12d3-a456-42661417400g",
		"0123456789abcdef0123456789abcde", "0123456789abcdef0123456789abcdef0",
		"0123456789abcdef0123456789abcdeg", "../../../../../../../../etc/passwd",
	};
	for (const char *s : invalid)
		assert_false(valid_submission_id(s));
}

int main()
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_visibility_round_trip),
		cmocka_unit_test(test_reject_visibility),
		cmocka_unit_test(test_split_visibility),
		cmocka_unit_test(test_minimal_and_optional_keys),
		cmocka_unit_test(test_failure_leaves_output),
		cmocka_unit_test(test_reject_id),
		cmocka_unit_test(test_reject_recipients),
		cmocka_unit_test(test_reject_envelope_from),
		cmocka_unit_test(test_reject_from_reply_to),
		cmocka_unit_test(test_reject_subject),
		cmocka_unit_test(test_reject_bodies),
		cmocka_unit_test(test_reject_document_too_large_to_write),
		cmocka_unit_test(test_reject_attachments),
		cmocka_unit_test(test_reject_extra_headers),
		cmocka_unit_test(test_reject_smuggled_headers),
		cmocka_unit_test(test_reject_meta),
		cmocka_unit_test(test_header_injection),
		cmocka_unit_test(test_escaped_nul_in_document),
		cmocka_unit_test(test_document_oversize),
		cmocka_unit_test(test_document_syntax),
		cmocka_unit_test(test_document_schema),
		cmocka_unit_test(test_document_attachments),
		cmocka_unit_test(test_document_headers),
		cmocka_unit_test(test_base64_vectors),
		cmocka_unit_test(test_base64_invalid),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_addr_spec),
		cmocka_unit_test(test_mailbox),
		cmocka_unit_test(test_header_safe),
		cmocka_unit_test(test_submission_id),
	};
	return cmocka_run_group_tests(tests, nullptr, nullptr);
}
