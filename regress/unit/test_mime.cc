/* The SMTP front's MIME walker: headers, RFC 2047, transfer encodings, charsets, structure, bounds. */
#include <string>
#include <vector>

#include "common/base64.h"
#include "common/message.h"
#include "smtpd/mime.h"
#include "regress/unit/unit.h"

using namespace posthorn;

namespace {

/* Lines joined with CRLF, as smtpd hands the message over after DATA. */
std::string crlf(std::initializer_list<std::string_view> lines)
{
	std::string s;
	for (std::string_view l : lines) {
		s += l;
		s += "\r\n";
	}
	return s;
}

bool parse(const std::string &raw, ParsedMail &m, std::string &why)
{
	return mime_parse(raw, MimeLimits{}, m, why);
}

void expect_ok(const std::string &raw, ParsedMail &m)
{
	std::string why;
	bool ok = parse(raw, m, why);
	if (!ok)
		print_error("mime_parse refused: %s\n", why.c_str());
	assert_true(ok);
}

void expect_refused(const std::string &raw, const char *why_part)
{
	ParsedMail m;
	std::string why;
	assert_false(parse(raw, m, why));
	if (why.find(why_part) == std::string::npos)
		print_error("why = \"%s\", expected \"%s\"\n", why.c_str(), why_part);
	assert_true(why.find(why_part) != std::string::npos);
}

/* The fields a front fills in around a parsed mail, then the relayer's own validation. */
bool validates(const ParsedMail &p)
{
	Message msg;
	msg.id = new_submission_id();
	msg.envelope_from = "alice@example.com";
	msg.recipients = {"bob@example.org"};
	msg.from = p.from;
	msg.reply_to = p.reply_to;
	msg.subject = p.subject;
	msg.text_body = p.text_body;
	msg.html_body = p.html_body;
	msg.attachments = p.attachments;
	msg.headers = p.forward_headers;
	msg.source = "smtp:test";
	msg.transport = "file";
	std::string why;
	bool ok = message_validate(msg, why);
	if (!ok)
		print_error("message_validate: %s\n", why.c_str());
	return ok;
}

const std::string *find_header(const ParsedMail &m, std::string_view name)
{
	for (const auto &[k, v] : m.forward_headers)
		if (k == name)
			return &v;
	return nullptr;
}

} // namespace

static void test_plain_ascii(void **)
{
	std::string raw = crlf({
	    "Return-Path: <alice@example.com>",
	    "From: Alice Example <alice@example.com>",
	    "To: Bob <bob@example.org>",
	    "Cc: carol@example.org",
	    "Bcc: hidden@evil.example",
	    "Subject: Hello there",
	    "Message-ID: <abc.123@example.com>",
	    "In-Reply-To: <prev@example.com>",
	    "References: <root@example.com> <prev@example.com>",
	    "List-Unsubscribe: <https://example.com/u/1>",
	    "X-Mailer: something",
	    "Date: Wed, 25 Nov 2026 13:00:00 +0000",
	    "",
	    "Hi Bob,",
	    "",
	    "plain text.",
	});
	ParsedMail m;
	expect_ok(raw, m);
	assert_string_equal(m.from.c_str(), "Alice Example <alice@example.com>");
	assert_true(m.reply_to.empty());
	assert_string_equal(m.subject.c_str(), "Hello there");
	assert_string_equal(m.text_body.c_str(), "Hi Bob,\r\n\r\nplain text.\r\n");
	assert_true(m.html_body.empty());
	assert_int_equal(m.attachments.size(), 0);
	assert_string_equal(m.message_id.c_str(), "<abc.123@example.com>");
	assert_int_equal(m.forward_headers.size(), 3);
	assert_string_equal(find_header(m, "In-Reply-To")->c_str(), "<prev@example.com>");
	assert_string_equal(find_header(m, "References")->c_str(),
	    "<root@example.com> <prev@example.com>");
	assert_string_equal(find_header(m, "List-Unsubscribe")->c_str(), "<https://example.com/u/1>");
	assert_true(validates(m));
}

/*
 * Recipients are RCPT TO only: a smuggled Bcc lands in no field; To and Cc
 * only in ParsedMail::to/cc, which say who is shown, never who receives.
 */
static void test_bcc_ignored(void **)
{
	std::string raw = crlf({
	    "From: alice@example.com",
	    "Bcc: hidden@evil.example",
	    "To: also-hidden@evil.example",
	    "Subject: x",
	    "",
	    "body",
	});
	ParsedMail m;
	expect_ok(raw, m);
	std::vector<std::string> fields = {m.from, m.reply_to, m.subject, m.text_body, m.html_body,
	    m.message_id};
	for (const auto &[k, v] : m.forward_headers) {
		fields.push_back(k);
		fields.push_back(v);
	}
	for (const std::string &f : fields)
		assert_true(f.find("evil.example") == std::string::npos);
	assert_string_equal(m.from.c_str(), "alice@example.com");
	assert_int_equal(m.to.size(), 1);
	assert_string_equal(m.to[0].c_str(), "also-hidden@evil.example");
	assert_true(m.cc.empty());
}

void expect_list(const std::vector<std::string> &got, std::vector<std::string> want)
{
	if (got != want) {
		for (const auto &g : got)
			print_error("got \"%s\"\n", g.c_str());
		fail();
	}
}

/* To and Cc address lists: addr-specs only, in order, from every field of the name. */
static void test_to_cc_addresses(void **)
{
	ParsedMail m;
	expect_ok(crlf({
	    "From: alice@example.com",
	    "To: Bob <bob@example.org>, \"Doe, Jane\" <jane@example.org>,",
	    "  carol@example.org (Carol), =?UTF-8?B?w4lsaXNl?= <elise@example.org>",
	    "Cc: undisclosed-recipients:;",
	    "cc: Team: dave@example.org, Erin <erin@example.org>;, frank@Example.ORG",
	    "TO: \"odd@local\"@example.org, <@route.example:gina@example.org>",
	    "Bcc: hidden@example.org",
	    "",
	    "body",
	}), m);
	expect_list(m.to, {"bob@example.org", "jane@example.org", "carol@example.org",
	    "elise@example.org", "\"odd@local\"@example.org", "gina@example.org"});
	expect_list(m.cc, {"dave@example.org", "erin@example.org", "frank@Example.ORG"});

	/* Groups alone, no To at all, and junk: nothing, and never a refusal. */
	expect_ok(crlf({"From: alice@example.com", "To: undisclosed-recipients:;", "", "b"}), m);
	assert_true(m.to.empty() && m.cc.empty());
	expect_ok(crlf({"From: alice@example.com", "", "b"}), m);
	assert_true(m.to.empty() && m.cc.empty());
	expect_ok(crlf({"From: alice@example.com",
	    "To: Just A Name, <not an address>, \"unterminated <x@example.org>, (open",
	    "Cc: a@[IPv6:2001:db8::1], <b@example.org> <c@example.org>, d@example.org; e@",
	    "", "b"}), m);
	assert_true(m.to.empty());
	expect_list(m.cc, {"a@[IPv6:2001:db8::1]", "b@example.org", "d@example.org"});
}

static void test_rfc2047_subject(void **)
{
	/* UTF-8 B */
	std::string b = "=?UTF-8?B?" + base64_encode("Grüße aus Köln ✓") + "?=";
	ParsedMail m;
	expect_ok(crlf({"From: a@example.com", ("Subject: " + b).c_str(), "", "x"}), m);
	assert_string_equal(m.subject.c_str(), "Grüße aus Köln ✓");

	/* ISO-8859-1 Q, lower-case encoding letter too */
	assert_string_equal(rfc2047_decode("=?ISO-8859-1?Q?Gr=FC=DFe?=").c_str(), "Grüße");
	assert_string_equal(rfc2047_decode("=?iso-8859-1?q?Gr=fc=dfe?=").c_str(), "Grüße");
	/* '_' is a space in Q */
	assert_string_equal(rfc2047_decode("=?UTF-8?Q?a_b?=").c_str(), "a b");
	/* adjacent words: the whitespace between them (folding included) disappears */
	assert_string_equal(rfc2047_decode("=?UTF-8?Q?Gr=C3=BC?= \t =?ISO-8859-1?Q?=DFe?=").c_str(),
	    "Grüße");
	assert_string_equal(rfc2047_decode("=?UTF-8?Q?a?=   =?UTF-8?Q?b?=").c_str(), "ab");
	/* a UTF-8 character split across two words survives */
	assert_string_equal(rfc2047_decode("=?UTF-8?Q?=C3?= =?UTF-8?Q?=BC?=").c_str(), "ü");
	/* whitespace between a word and plain text stays */
	assert_string_equal(rfc2047_decode("Re: =?UTF-8?Q?caf=C3=A9?= ok").c_str(), "Re: café ok");
	/* RFC 2231 language suffix on the charset */
	assert_string_equal(rfc2047_decode("=?UTF-8*de?Q?=C3=A4?=").c_str(), "ä");
	/* malformed or unknown words are left alone */
	assert_string_equal(rfc2047_decode("=?UTF-8?X?abc?=").c_str(), "=?UTF-8?X?abc?=");
	assert_string_equal(rfc2047_decode("=?UTF-8?Q?no end").c_str(), "=?UTF-8?Q?no end");
	assert_string_equal(rfc2047_decode("=?x-no-such-charset?Q?abc?= z").c_str(),
	    "=?x-no-such-charset?Q?abc?= z");
	assert_string_equal(rfc2047_decode("=?=?=?").c_str(), "=?=?=?");
	assert_string_equal(rfc2047_decode("plain").c_str(), "plain");
	/* a charset only iconv knows */
	assert_string_equal(rfc2047_decode("=?KOI8-R?B?8NLJ18XU?=").c_str(), "Привет");

	/* folded encoded subject from a real client */
	expect_ok(crlf({"From: a@example.com",
	    "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=",
	    " =?UTF-8?Q?_aus_K=C3=B6ln?=", "", "x"}), m);
	assert_string_equal(m.subject.c_str(), "Grüße aus Köln");
	assert_true(validates(m));
}

static void test_folded_headers(void **)
{
	std::string raw = crlf({
	    "From: \"Alice",
	    "  Example\"",
	    "\t<alice@example.com>",
	    "Subject: a long subject",
	    "   continued here",
	    "content-type: text/plain;",
	    "  charset=\"utf-8\"",
	    "",
	    "caf\xc3\xa9",
	});
	ParsedMail m;
	expect_ok(raw, m);
	assert_string_equal(m.from.c_str(), "Alice Example <alice@example.com>");
	assert_string_equal(m.subject.c_str(), "a long subject   continued here");
	assert_string_equal(m.text_body.c_str(), "café\r\n");
}

static void test_from_forms(void **)
{
	ParsedMail m;
	/* an encoded display name with a comma is quoted so parse_mailbox reads it back */
	std::string raw = crlf({"From: =?UTF-8?Q?M=C3=BCller=2C_Hans?= <hans@example.de>",
	    "Reply-To: \"Support\" <help@example.de>, other@example.de", "", "x"});
	expect_ok(raw, m);
	assert_string_equal(m.from.c_str(), "\"Müller, Hans\" <hans@example.de>");
	assert_string_equal(m.reply_to.c_str(), "Support <help@example.de>");
	std::string name, addr;
	assert_true(parse_mailbox(m.from, name, addr));
	assert_string_equal(name.c_str(), "Müller, Hans");
	assert_string_equal(addr.c_str(), "hans@example.de");
	assert_true(validates(m));

	/* the old "addr (Name)" form, and a '<' inside a quoted name */
	expect_ok(crlf({"From: alice@example.com (Alice A.)", "", "x"}), m);
	assert_string_equal(m.from.c_str(), "Alice A. <alice@example.com>");
	expect_ok(crlf({"From: \"a <b> c\" <alice@example.com>", "", "x"}), m);
	assert_string_equal(m.from.c_str(), "\"a <b> c\" <alice@example.com>");

	expect_refused(crlf({"From: a@example.com, b@example.com", "", "x"}), "more than one mailbox");
	expect_refused(crlf({"From: a@example.com", "From: b@example.com", "", "x"}),
	    "more than one From");
	expect_refused(crlf({"From: not an address", "", "x"}), "invalid From");
	expect_refused(crlf({"From: <a@example.com", "", "x"}), "invalid From");
	expect_refused(crlf({"From: undisclosed:;", "", "x"}), "invalid From");
}

static void test_missing_from(void **)
{
	expect_refused(crlf({"Sender: a@example.com", "Subject: x", "", "body"}), "missing From header");
	expect_refused("", "missing From header");
}

static void test_no_body(void **)
{
	expect_refused(crlf({"From: a@example.com", "Subject: x"}), "no text or HTML body");
	expect_refused(crlf({"From: a@example.com", "", ""}), "no text or HTML body");
	/* only an attachment */
	expect_refused(crlf({"From: a@example.com", "Content-Type: application/pdf",
	    "Content-Transfer-Encoding: base64", "", "JVBERi0="}), "no text or HTML body");
}

/* Encoded CR/LF/NUL in a header-bound value would be a header injection. */
static void test_header_injection(void **)
{
	std::string evil = "=?UTF-8?B?" + base64_encode("Hi\r\nBcc: victim@example.org") + "?=";
	expect_refused(crlf({"From: a@example.com", ("Subject: " + evil).c_str(), "", "x"}),
	    "Subject contains CR, LF or NUL");
	expect_refused(crlf({"From: a@example.com", "Subject: =?UTF-8?Q?a=0Ab?=", "", "x"}),
	    "Subject contains CR, LF or NUL");
	expect_refused(crlf({"From: a@example.com", "Subject: =?UTF-8?Q?a=00b?=", "", "x"}),
	    "Subject contains CR, LF or NUL");
	expect_refused(crlf({"From: =?UTF-8?Q?x=0D=0ABcc:_v@example.org?= <a@example.com>", "", "x"}),
	    "From header contains CR, LF or NUL");
	expect_refused(crlf({"From: a@example.com",
	    "Reply-To: =?UTF-8?Q?x=0A?= <b@example.com>", "", "x"}),
	    "Reply-To header contains CR, LF or NUL");
	/* a bare CR inside a raw header line */
	expect_refused(std::string("From: a@example.com\r\nSubject: a\rb\r\n\r\nx\r\n"),
	    "Subject contains CR, LF or NUL");
	/* a filename */
	std::string mp = crlf({
	    "From: a@example.com",
	    "Content-Type: multipart/mixed; boundary=b",
	    "",
	    "--b",
	    "",
	    "text",
	    "--b",
	    "Content-Type: application/octet-stream; name=\"=?UTF-8?Q?a=0D=0Ab.txt?=\"",
	    "",
	    "data",
	    "--b--",
	});
	expect_refused(mp, "attachment filename contains CR, LF or NUL");
}

static void test_qp_iso8859_body(void **)
{
	std::string raw = crlf({
	    "From: a@example.com",
	    "Subject: =?ISO-8859-1?Q?Gr=FC=DFe?=",
	    "MIME-Version: 1.0",
	    "Content-Type: text/plain; charset=ISO-8859-1",
	    "Content-Transfer-Encoding: quoted-printable",
	    "",
	    "Gr=FC=DFe aus K=F6ln, sch=F6ne Gr=FC=DFe und ein sehr langer Satz der =",
	    "umgebrochen wird.   ",
	    "Preis: 5 =80 =3D f=fcnf",
	});
	ParsedMail m;
	expect_ok(raw, m);
	assert_string_equal(m.subject.c_str(), "Grüße");
	assert_string_equal(m.text_body.c_str(),
	    "Grüße aus Köln, schöne Grüße und ein sehr langer Satz der umgebrochen wird.\r\n"
	    "Preis: 5 € = fünf\r\n");
	assert_true(validates(m));
}

static void test_qp_decode(void **)
{
	assert_string_equal(qp_decode("a=3Db=3db").c_str(), "a=b=b");
	assert_string_equal(qp_decode("soft=\r\nbreak").c_str(), "softbreak");
	assert_string_equal(qp_decode("soft= \t\r\nbreak").c_str(), "softbreak");
	assert_string_equal(qp_decode("lf=\nonly").c_str(), "lfonly");
	assert_string_equal(qp_decode("trail  \r\nnext\t").c_str(), "trail\r\nnext");
	assert_string_equal(qp_decode("keep=20\r\n").c_str(), "keep \r\n");
	assert_string_equal(qp_decode("stray = sign =Zx end=").c_str(), "stray = sign =Zx end");
	assert_string_equal(qp_decode("").c_str(), "");
}

static void test_charsets(void **)
{
	std::string out;
	assert_true(charset_to_utf8("utf-8", "caf\xc3\xa9", out));
	assert_string_equal(out.c_str(), "café");
	/* invalid UTF-8 under a utf-8 label: U+FFFD */
	assert_true(charset_to_utf8("UTF-8", "a\xff" "b", out));
	assert_string_equal(out.c_str(), "a\xef\xbf\xbd" "b");
	/* undeclared 8-bit: UTF-8 if valid, else windows-1252 */
	assert_true(charset_to_utf8("us-ascii", "caf\xc3\xa9", out));
	assert_string_equal(out.c_str(), "café");
	assert_true(charset_to_utf8("us-ascii", "caf\xe9 \x80", out));
	assert_string_equal(out.c_str(), "café €");
	assert_true(charset_to_utf8("\"ISO-8859-1\"", "\xfc", out));
	assert_string_equal(out.c_str(), "ü");
	/* through iconv */
	assert_true(charset_to_utf8("iso-8859-15", "\xa4", out));
	assert_string_equal(out.c_str(), "€");
	assert_true(charset_to_utf8("windows-1251", "\xcf\xf0\xe8\xe2\xe5\xf2", out));
	assert_string_equal(out.c_str(), "Привет");
	assert_true(charset_to_utf8("iso-2022-jp", "\x1b$B$3$s$K$A$O\x1b(B", out));
	assert_string_equal(out.c_str(), "こんにちは");
	/* unknown or hostile names */
	assert_false(charset_to_utf8("x-no-such-charset", "abc", out));
	assert_false(charset_to_utf8("utf-8//translit/../../x", "abc", out));
	charset_preload(); /* idempotent, and does not break what follows */
	assert_true(charset_to_utf8("koi8-r", "\xf0\xd2\xc9\xd7\xc5\xd4", out));
	assert_string_equal(out.c_str(), "Привет");
}

static void test_multipart_alternative(void **)
{
	std::string raw = crlf({
	    "From: a@example.com",
	    "Subject: alt",
	    "MIME-Version: 1.0",
	    "Content-Type: multipart/alternative;",
	    " boundary=\"--=_alt 42\"",
	    "",
	    "This is a multi-part message in MIME format.",
	    "----=_alt 42",
	    "Content-Type: text/plain; charset=utf-8",
	    "Content-Transfer-Encoding: 7bit",
	    "",
	    "Hello, plain.",
	    "----=_alt 42",
	    "Content-Type: text/html; charset=utf-8",
	    "Content-Transfer-Encoding: base64",
	    "",
	    base64_encode("<p>Hello, <b>html</b> ✓</p>").c_str(),
	    "----=_alt 42--",
	    "epilogue is ignored",
	});
	ParsedMail m;
	expect_ok(raw, m);
	assert_string_equal(m.text_body.c_str(), "Hello, plain.");
	assert_string_equal(m.html_body.c_str(), "<p>Hello, <b>html</b> ✓</p>");
	assert_int_equal(m.attachments.size(), 0);
	assert_true(validates(m));
}

static void test_nested_with_attachment(void **)
{
	static const char pdf_bytes[] = "%PDF-1.4\n\0\x01\x02\xff binary \0 tail";
	std::string pdf(pdf_bytes, sizeof(pdf_bytes) - 1);
	std::string b64 = base64_encode(pdf);
	std::string b64_lines = b64.substr(0, 20) + "\r\n" + b64.substr(20);
	std::string raw = crlf({
	    "From: \"Shop\" <shop@example.com>",
	    "Subject: Your invoice",
	    "MIME-Version: 1.0",
	    "Content-Type: multipart/mixed; boundary=\"mixed\"",
	    "",
	    "--mixed",
	    "Content-Type: multipart/related; boundary=related; type=\"multipart/alternative\"",
	    "",
	    "--related",
	    "Content-Type: multipart/alternative; boundary=alt",
	    "",
	    "--alt",
	    "Content-Type: text/plain; charset=\"iso-8859-1\"",
	    "Content-Transfer-Encoding: quoted-printable",
	    "",
	    "Rechnung f=FCr Sie",
	    "--alt",
	    "Content-Type: text/html; charset=utf-8",
	    "Content-Transfer-Encoding: quoted-printable",
	    "",
	    "<p>Rechnung f=C3=BCr Sie<img src=3D\"cid:logo\"></p>",
	    "--alt--",
	    "",
	    "--related",
	    "Content-Type: image/png",
	    "Content-ID: <logo>",
	    "Content-Transfer-Encoding: base64",
	    "",
	    "iVBORw0KGgo=",
	    "--related--",
	    "",
	    "--mixed",
	    "Content-Type: application/pdf; name=\"ignored.pdf\"",
	    "Content-Disposition: attachment; filename=\"Rechnung 2026.pdf\"",
	    "Content-Transfer-Encoding: base64",
	    "",
	    b64_lines.c_str(),
	    "--mixed--",
	});
	ParsedMail m;
	expect_ok(raw, m);
	assert_string_equal(m.text_body.c_str(), "Rechnung für Sie");
	assert_string_equal(m.html_body.c_str(), "<p>Rechnung für Sie<img src=\"cid:logo\"></p>");
	assert_int_equal(m.attachments.size(), 2);
	assert_string_equal(m.attachments[0].filename.c_str(), "attachment-1");
	assert_string_equal(m.attachments[0].content_type.c_str(), "image/png");
	assert_int_equal(m.attachments[0].data.size(), 8);
	assert_memory_equal(m.attachments[0].data.data(), "\x89PNG\r\n\x1a\n", 8);
	assert_string_equal(m.attachments[1].filename.c_str(), "Rechnung 2026.pdf");
	assert_string_equal(m.attachments[1].content_type.c_str(), "application/pdf");
	assert_int_equal(m.attachments[1].data.size(), pdf.size());
	assert_memory_equal(m.attachments[1].data.data(), pdf.data(), pdf.size());
	assert_true(validates(m));
}

static void test_second_text_is_attachment(void **)
{
	std::string raw = crlf({
	    "From: a@example.com",
	    "Content-Type: multipart/mixed; boundary=b",
	    "",
	    "--b",
	    "Content-Type: text/plain",
	    "",
	    "first",
	    "--b",
	    "Content-Type: text/plain; charset=utf-8",
	    "",
	    "second",
	    "--b",
	    "Content-Type: text/html",
	    "Content-Disposition: attachment; filename=page.html",
	    "",
	    "<p>attached</p>",
	    "--b",
	    "Content-Type: TEXT/CSV",
	    "",
	    "a,b",
	    "--b",
	    "Content-Type: message/rfc822",
	    "",
	    "From: inner@example.com",
	    "Subject: inner",
	    "",
	    "inner body",
	    "--b--",
	});
	ParsedMail m;
	expect_ok(raw, m);
	assert_string_equal(m.text_body.c_str(), "first");
	assert_true(m.html_body.empty());
	assert_int_equal(m.attachments.size(), 4);
	assert_string_equal(m.attachments[0].filename.c_str(), "attachment-1");
	assert_string_equal(m.attachments[0].content_type.c_str(), "text/plain");
	assert_string_equal(m.attachments[0].data.c_str(), "second");
	assert_string_equal(m.attachments[1].filename.c_str(), "page.html");
	assert_string_equal(m.attachments[1].content_type.c_str(), "text/html");
	assert_string_equal(m.attachments[2].content_type.c_str(), "text/csv");
	assert_string_equal(m.attachments[3].content_type.c_str(), "message/rfc822");
	assert_string_equal(m.attachments[3].data.c_str(),
	    "From: inner@example.com\r\nSubject: inner\r\n\r\ninner body");
	assert_true(validates(m));
}

static void test_filenames(void **)
{
	std::string raw = crlf({
	    "From: a@example.com",
	    "Content-Type: multipart/mixed; boundary=b",
	    "",
	    "--b",
	    "",
	    "body",
	    "--b",
	    "Content-Type: application/pdf",
	    "Content-Disposition: attachment;",
	    " filename*0*=utf-8''%C3%84rger%20;",
	    " filename*1=\"und mehr\";",
	    " filename*2*=%2Epdf",
	    "",
	    "x",
	    "--b",
	    "Content-Type: application/octet-stream; name=\"..\\\\..\\\\windows\\\\evil.exe\"",
	    "",
	    "x",
	    "--b",
	    "Content-Disposition: attachment; filename=\"../../etc/passwd\"",
	    "Content-Type: text/plain",
	    "",
	    "x",
	    "--b",
	    "Content-Type: image/jpeg; name=\"=?UTF-8?B?" "w7xiZXIuanBn" "?=\"",
	    "",
	    "x",
	    "--b",
	    "Content-Type: application/zip",
	    "Content-Disposition: attachment; filename*=iso-8859-1'de'%E4%20tab%09.zip",
	    "",
	    "x",
	    "--b",
	    "Content-Type: application/weird; name=\"..\"",
	    "Content-Transfer-Encoding: x-uuencode",
	    "",
	    "x",
	    "--b--",
	});
	ParsedMail m;
	expect_ok(raw, m);
	assert_int_equal(m.attachments.size(), 6);
	assert_string_equal(m.attachments[0].filename.c_str(), "Ärger und mehr.pdf");
	assert_string_equal(m.attachments[1].filename.c_str(), "evil.exe");
	assert_string_equal(m.attachments[2].filename.c_str(), "passwd");
	assert_string_equal(m.attachments[2].content_type.c_str(), "text/plain");
	assert_string_equal(m.attachments[3].filename.c_str(), "über.jpg");
	assert_string_equal(m.attachments[4].filename.c_str(), "ä tab_.zip");
	/* unknown transfer encoding: opaque bytes; ".." is no name */
	assert_string_equal(m.attachments[5].filename.c_str(), "attachment-6");
	assert_string_equal(m.attachments[5].content_type.c_str(), "application/octet-stream");
	assert_true(validates(m));
}

static void test_missing_closing_boundary(void **)
{
	std::string raw = crlf({
	    "From: a@example.com",
	    "Content-Type: multipart/mixed; boundary=b",
	    "",
	    "--b",
	    "",
	    "text body",
	    "--b",
	    "Content-Type: application/octet-stream",
	    "Content-Transfer-Encoding: base64",
	    "",
	    "AAEC",
	});
	raw += "AwQ"; /* truncated mid-line, mid-quantum */
	ParsedMail m;
	expect_ok(raw, m);
	assert_string_equal(m.text_body.c_str(), "text body");
	assert_int_equal(m.attachments.size(), 1);
	assert_int_equal(m.attachments[0].data.size(), 5);
	assert_memory_equal(m.attachments[0].data.data(), "\0\1\2\3\4", 5);

	/* a multipart with no delimiter at all has no parts */
	expect_refused(crlf({"From: a@example.com", "Content-Type: multipart/mixed; boundary=b", "",
	    "just a preamble"}), "no text or HTML body");
	/* a line that only starts with the delimiter is content */
	expect_ok(crlf({"From: a@example.com", "Content-Type: multipart/mixed; boundary=b", "", "--b",
	    "", "one", "--bx not a delimiter", "--b--"}), m);
	assert_string_equal(m.text_body.c_str(), "one\r\n--bx not a delimiter");
	expect_refused(crlf({"From: a@example.com", "Content-Type: multipart/mixed", "", "--b", "", "x"}),
	    "boundary");
}

static std::string nested(size_t levels, std::string_view leaf)
{
	std::string s = "From: a@example.com\r\n";
	for (size_t i = 0; i < levels; i++)
		s += "Content-Type: multipart/mixed; boundary=\"b" + std::to_string(i) + "\"\r\n\r\n--b" +
		    std::to_string(i) + "\r\n";
	s += "Content-Type: text/plain\r\n\r\n";
	s += leaf;
	s += "\r\n";
	for (size_t i = levels; i-- > 0;)
		s += "--b" + std::to_string(i) + "--\r\n";
	return s;
}

static void test_depth_bomb(void **)
{
	ParsedMail m;
	expect_ok(nested(10, "deep enough"), m);
	assert_string_equal(m.text_body.c_str(), "deep enough");
	expect_refused(nested(11, "too deep"), "MIME nesting deeper than 10 levels");
	expect_refused(nested(50, "bomb"), "MIME nesting deeper than 10 levels");
	std::string why;
	MimeLimits tight;
	tight.max_depth = 2;
	assert_false(mime_parse(nested(3, "x"), tight, m, why));
	assert_string_equal(why.c_str(), "MIME nesting deeper than 2 levels");
}

static void test_part_bomb(void **)
{
	std::string raw = crlf({"From: a@example.com", "Content-Type: multipart/mixed; boundary=b", "",
	    "--b", "", "text"});
	for (int i = 0; i < 100000; i++)
		raw += "--b\r\n\r\n";
	expect_refused(raw, "more than 100 MIME parts");

	/* 99 parts under the top entity: 100 in all, accepted */
	raw = crlf({"From: a@example.com", "Content-Type: multipart/mixed; boundary=b", "",
	    "--b", "", "text"});
	for (int i = 0; i < 98; i++)
		raw += "--b\r\nContent-Type: application/octet-stream\r\n\r\nx\r\n";
	raw += "--b--\r\n";
	ParsedMail m;
	expect_ok(raw, m);
	assert_int_equal(m.attachments.size(), 98);
}

static void test_header_limits(void **)
{
	std::string raw = "From: a@example.com\r\n";
	for (int i = 0; i < 1000; i++)
		raw += "X-Filler: " + std::to_string(i) + "\r\n";
	raw += "\r\nbody\r\n";
	expect_refused(raw, "too many header lines");

	raw = "From: a@example.com\r\nSubject: x\r\n";
	for (int i = 0; i < 2000; i++)
		raw += " folded folded folded folded folded folded\r\n";
	raw += "\r\nbody\r\n";
	expect_refused(raw, "too many header lines");

	raw = "From: a@example.com\r\nX-Long: " + std::string(70000, 'a') + "\r\n\r\nbody\r\n";
	expect_refused(raw, "header section too large");

	expect_refused(crlf({"From: a@example.com", "no colon here", "", "x"}), "malformed header line");
	expect_refused(crlf({" From: a@example.com", "", "x"}), "malformed header line");
	expect_refused(crlf({"From: a@example.com", "Subject: a", "Subject: b", "", "x"}),
	    "more than one Subject");
}

/* Over-long values: Subject cut at 998 bytes (on a character), References keeps its newest ids. */
static void test_long_headers(void **)
{
	std::string refs;
	for (int i = 0; i < 60; i++)
		refs += (i ? " <id" : "<id") + std::to_string(i) + ".xxxxxxxxxx@example.com>";
	std::string raw = "From: a@example.com\r\nSubject: " + std::string(1200, 'a') +
	    "\r\nReferences: " + refs + "\r\nList-Id: " + std::string(1200, 'l') + "\r\n\r\nx\r\n";
	ParsedMail m;
	expect_ok(raw, m);
	assert_int_equal(m.subject.size(), MESSAGE_MAX_HEADER_VALUE);
	const std::string *r = find_header(m, "References");
	assert_non_null(r);
	assert_true(r->size() <= MESSAGE_MAX_HEADER_VALUE);
	assert_true(r->find("<id59.") != std::string::npos);
	assert_true(r->find("<id0.") == std::string::npos);
	assert_null(find_header(m, "List-Id")); /* too long to forward: dropped */
	assert_true(validates(m));
}

/* A 5 MB text body and a 5 MB base64 attachment: one linear pass each (no timing assert). */
static void test_large_body(void **)
{
	std::string line(76, 'x');
	std::string raw = crlf({"From: a@example.com", "Subject: big", ""});
	raw.reserve(6 << 20);
	while (raw.size() < (5u << 20))
		raw += line + "\r\n";
	ParsedMail m;
	expect_ok(raw, m);
	assert_true(m.text_body.size() > (5u << 20) - 200);

	std::string blob(4u << 20, '\0');
	for (size_t i = 0; i < blob.size(); i++)
		blob[i] = static_cast<char>(i * 7 + (i >> 9));
	std::string b64 = base64_encode(blob);
	std::string body;
	body.reserve(b64.size() + b64.size() / 38);
	for (size_t i = 0; i < b64.size(); i += 76)
		body += b64.substr(i, 76) + "\r\n";
	raw = crlf({"From: a@example.com", "Content-Type: multipart/mixed; boundary=b", "", "--b", "",
	    "text", "--b", "Content-Type: application/octet-stream", "Content-Transfer-Encoding: base64",
	    ""});
	raw += body + "--b--\r\n";
	expect_ok(raw, m);
	assert_int_equal(m.attachments.size(), 1);
	assert_true(m.attachments[0].data == blob);

	/* many "=?" that never form a word do not make the decoder quadratic */
	std::string subject(200000, '=');
	for (size_t i = 1; i < subject.size(); i += 2)
		subject[i] = '?';
	assert_true(rfc2047_decode(subject) == subject);
}

static void test_nul_in_text_body(void **)
{
	expect_refused(crlf({"From: a@example.com", "Content-Transfer-Encoding: quoted-printable", "",
	    "a=00b"}), "NUL in text body");
}

int main()
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_ascii),
		cmocka_unit_test(test_bcc_ignored),
		cmocka_unit_test(test_to_cc_addresses),
		cmocka_unit_test(test_rfc2047_subject),
		cmocka_unit_test(test_folded_headers),
		cmocka_unit_test(test_from_forms),
		cmocka_unit_test(test_missing_from),
		cmocka_unit_test(test_no_body),
		cmocka_unit_test(test_header_injection),
		cmocka_unit_test(test_qp_iso8859_body),
		cmocka_unit_test(test_qp_decode),
		cmocka_unit_test(test_charsets),
		cmocka_unit_test(test_multipart_alternative),
		cmocka_unit_test(test_nested_with_attachment),
		cmocka_unit_test(test_second_text_is_attachment),
		cmocka_unit_test(test_filenames),
		cmocka_unit_test(test_missing_closing_boundary),
		cmocka_unit_test(test_depth_bomb),
		cmocka_unit_test(test_part_bomb),
		cmocka_unit_test(test_header_limits),
		cmocka_unit_test(test_long_headers),
		cmocka_unit_test(test_large_body),
		cmocka_unit_test(test_nul_in_text_body),
	};
	return cmocka_run_group_tests(tests, nullptr, nullptr);
}
