/* RFC 5322 / MIME builder: exact output, structure, encodings, line discipline. */
#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "common/base64.h"
#include "common/message.h"
#include "relayer/mime_build.h"
#include "regress/unit/unit.h"

using namespace posthorn;

/* Wed, 25 Nov 2026 13:00:00 UTC */
static constexpr time_t FIXED_DATE = 1795611600;
static constexpr const char *ID = "0123456789abcdef0123456789abcdef";

/* ---- helpers: a small reader for what the builder writes ---- */

static std::vector<std::string> split_lines(std::string_view s)
{
	std::vector<std::string> lines;
	size_t start = 0;
	for (;;) {
		size_t nl = s.find("\r\n", start);
		if (nl == std::string_view::npos) {
			if (start < s.size())
				lines.emplace_back(s.substr(start));
			return lines;
		}
		lines.emplace_back(s.substr(start, nl - start));
		start = nl + 2;
	}
}

/* Every CR is followed by LF and every LF preceded by CR; the text ends with CRLF. */
static void assert_crlf_only(std::string_view s)
{
	for (size_t i = 0; i < s.size(); i++) {
		if (s[i] == '\r')
			assert_true(i + 1 < s.size() && s[i + 1] == '\n');
		if (s[i] == '\n')
			assert_true(i > 0 && s[i - 1] == '\r');
	}
	assert_true(s.size() >= 2 && s.substr(s.size() - 2) == "\r\n");
}

static size_t max_line(std::string_view s)
{
	size_t m = 0;
	for (const std::string &l : split_lines(s))
		m = std::max(m, l.size());
	return m;
}

static std::string header_block(const std::string &msg)
{
	size_t end = msg.find("\r\n\r\n");
	assert_true(end != std::string::npos);
	return msg.substr(0, end + 2);
}

/* The value of a header (first match) with its folds kept; "" if absent. */
static std::string header_raw(const std::string &block, std::string_view name)
{
	std::string key = "\r\n" + std::string(name) + ": ";
	std::string hay = "\r\n" + block;
	size_t at = hay.find(key);
	if (at == std::string::npos)
		return "";
	size_t start = at + key.size(), end = start;
	for (;;) {
		end = hay.find("\r\n", end);
		if (end + 2 >= hay.size() || (hay[end + 2] != ' ' && hay[end + 2] != '\t'))
			break;
		end += 2;
	}
	return hay.substr(start, end - start);
}

static std::string unfold(std::string_view v)
{
	std::string out;
	for (size_t i = 0; i < v.size(); i++) {
		if (v[i] == '\r' && i + 1 < v.size() && v[i + 1] == '\n') {
			i++;
			continue;
		}
		out += v[i];
	}
	return out;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* One encoded-word at s[i] ("=?utf-8?q?...?=" or b); its end in `end`. */
static bool decode_word(std::string_view s, size_t i, std::string &out, size_t &end)
{
	if (s.compare(i, 8, "=?utf-8?") != 0 || i + 10 > s.size() || s[i + 9] != '?')
		return false;
	char enc = s[i + 8];
	size_t close = s.find("?=", i + 10);
	if (close == std::string_view::npos)
		return false;
	std::string_view text = s.substr(i + 10, close - i - 10);
	assert_true(close + 2 - i <= 75); /* RFC 2047: an encoded-word is at most 75 characters */
	if (enc == 'b' || enc == 'B') {
		std::string d;
		assert_true(base64_decode(text, d));
		out += d;
	} else {
		for (size_t k = 0; k < text.size(); k++) {
			if (text[k] == '_') {
				out += ' ';
			} else if (text[k] == '=') {
				assert_true(k + 2 < text.size());
				out += static_cast<char>(hexval(text[k + 1]) * 16 + hexval(text[k + 2]));
				k += 2;
			} else {
				out += text[k];
			}
		}
	}
	end = close + 2;
	return true;
}

/* RFC 2047 decoding of an unfolded value: whitespace between adjacent encoded-words is dropped. */
static std::string decode_2047(std::string_view folded)
{
	std::string s = unfold(folded), out;
	size_t i = 0;
	bool after_word = false;
	while (i < s.size()) {
		size_t end;
		if (decode_word(s, i, out, end)) {
			i = end;
			after_word = true;
			continue;
		}
		if (after_word && (s[i] == ' ' || s[i] == '\t')) {
			size_t j = s.find_first_not_of(" \t", i);
			size_t dummy;
			std::string probe;
			if (j != std::string::npos && decode_word(s, j, probe, dummy)) {
				i = j;
				continue;
			}
		}
		after_word = false;
		out += s[i++];
	}
	return out;
}

static std::string qp_decode(std::string_view s)
{
	std::string out;
	for (size_t i = 0; i < s.size(); i++) {
		if (s[i] != '=') {
			out += s[i];
			continue;
		}
		if (s.compare(i + 1, 2, "\r\n") == 0) { /* soft break */
			i += 2;
			continue;
		}
		assert_true(i + 2 < s.size());
		int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
		assert_true(hi >= 0 && lo >= 0);
		out += static_cast<char>(hi * 16 + lo);
		i += 2;
	}
	return out;
}

/* RFC 2231 value: "utf-8''" then %XX; continuations already concatenated. */
static std::string pct_decode(std::string_view s)
{
	std::string out;
	for (size_t i = 0; i < s.size(); i++) {
		if (s[i] == '%') {
			out += static_cast<char>(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		} else {
			out += s[i];
		}
	}
	return out;
}

static Message base_message()
{
	Message m;
	m.id = ID;
	m.from = "Posthorn Test <sender@example.com>";
	m.recipients = {"alice@example.org", "bob@example.org"};
	m.subject = "Hello";
	m.text_body = "Hello Alice,\n\nSee you.\n";
	return m;
}

static MimeOptions fixed_opts(const char *seed = "t1")
{
	MimeOptions o;
	o.hostname = "mx.example.net";
	o.date = FIXED_DATE;
	o.boundary_seed = seed;
	return o;
}

/* The content of the part following "--boundary" number n (0-based). */
static std::string part_at(const std::string &msg, const std::string &boundary, int n)
{
	std::string delim = "\r\n--" + boundary;
	size_t at = std::string::npos, from = 0;
	for (int k = 0; k <= n; k++) {
		at = msg.find(delim + "\r\n", from);
		assert_true(at != std::string::npos);
		from = at + 1;
	}
	size_t start = at + delim.size() + 2;
	size_t end = msg.find(delim, start);
	assert_true(end != std::string::npos);
	return msg.substr(start, end - start);
}

static std::string part_body(const std::string &part)
{
	size_t sep = part.find("\r\n\r\n");
	assert_true(sep != std::string::npos);
	return part.substr(sep + 4);
}

/* ---- tests ---- */

static void test_date(void **)
{
	assert_string_equal(rfc5322_date(FIXED_DATE).c_str(), "Wed, 25 Nov 2026 13:00:00 +0000");
	assert_string_equal(rfc5322_date(0).c_str(), "Thu, 01 Jan 1970 00:00:00 +0000");
	assert_string_equal(rfc5322_date(951782400).c_str(), "Tue, 29 Feb 2000 00:00:00 +0000");
}

static void test_text_only_exact(void **)
{
	std::string got = build_rfc5322(base_message(), fixed_opts());
	const char *want =
	    "Date: Wed, 25 Nov 2026 13:00:00 +0000\r\n"
	    "From: Posthorn Test <sender@example.com>\r\n"
	    "To: alice@example.org, bob@example.org\r\n"
	    "Subject: Hello\r\n"
	    "Message-ID: <0123456789abcdef0123456789abcdef@mx.example.net>\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: 7bit\r\n"
	    "\r\n"
	    "Hello Alice,\r\n"
	    "\r\n"
	    "See you.\r\n";
	assert_string_equal(got.c_str(), want);
}

static void test_text_without_final_newline(void **)
{
	Message m = base_message();
	m.text_body = "one line";
	m.reply_to = "help@example.com";
	m.headers = {{"X-Campaign", "spring"}, {"Bcc", "hidden@example.com"},
	    {"content-type", "text/evil"}, {"Bad Name", "x"}};
	std::string got = build_rfc5322(m, fixed_opts());
	std::string h = header_block(got);
	/* order: ... To, Reply-To, Subject, Message-ID, MIME-Version, extras, content headers */
	size_t to = h.find("\r\nTo: "), rt = h.find("\r\nReply-To: help@example.com\r\n"),
	       subj = h.find("\r\nSubject: "), mid = h.find("\r\nMessage-ID: "),
	       mv = h.find("\r\nMIME-Version: 1.0\r\n"), x = h.find("\r\nX-Campaign: spring\r\n"),
	       ct = h.find("\r\nContent-Type: text/plain; charset=utf-8\r\n");
	assert_true(to < rt && rt < subj && subj < mid && mid < mv && mv < x && x < ct &&
		    ct != std::string::npos);
	assert_null(strstr(got.c_str(), "hidden@example.com"));
	assert_null(strstr(got.c_str(), "text/evil"));
	assert_null(strstr(got.c_str(), "Bad Name"));
	assert_true(got.size() > 12 && got.substr(got.size() - 12) == "\r\none line\r\n");
	assert_crlf_only(got);
}

static void test_alternative_exact(void **)
{
	Message m = base_message();
	m.text_body = "Hi\n";
	m.html_body = "<p>Hi</p>";
	std::string got = build_rfc5322(m, fixed_opts());
	std::string h = header_block(got);
	assert_string_equal(header_raw(h, "Content-Type").c_str(),
	    "multipart/alternative;\r\n boundary=\"=_posthorn_alt_t1\"");
	const char *body =
	    "\r\n\r\n"
	    "--=_posthorn_alt_t1\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: 7bit\r\n"
	    "\r\n"
	    "Hi\r\n"
	    "\r\n"
	    "--=_posthorn_alt_t1\r\n"
	    "Content-Type: text/html; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: 7bit\r\n"
	    "\r\n"
	    "<p>Hi</p>\r\n"
	    "--=_posthorn_alt_t1--\r\n";
	assert_string_equal(got.substr(got.find("\r\n\r\n")).c_str(), body);
	assert_crlf_only(got);

	/* html alone is a single text/html part */
	m.text_body.clear();
	got = build_rfc5322(m, fixed_opts());
	assert_string_equal(header_raw(header_block(got), "Content-Type").c_str(),
	    "text/html; charset=utf-8");
}

static void test_attachments(void **)
{
	Message m = base_message();
	m.html_body = "<p>Gr\xc3\xbc\xc3\x9f" "e</p>\n";
	std::string bin;
	for (int i = 0; i < 1000; i++)
		bin += static_cast<char>((i * 37 + 11) & 0xff);
	bin[0] = '\0';
	bin[500] = '\0';
	m.attachments.push_back({"report.pdf", "application/pdf", bin});
	m.attachments.push_back({"Gr\xc3\xbc\xc3\x9f" "e.txt", "text/plain", "hello"});
	std::string got = build_rfc5322(m, fixed_opts());
	assert_crlf_only(got);
	assert_string_equal(header_raw(header_block(got), "Content-Type").c_str(),
	    "multipart/mixed;\r\n boundary=\"=_posthorn_mix_t1\"");

	/* first part: the alternative, text first */
	std::string alt = part_at(got, "=_posthorn_mix_t1", 0);
	assert_true(alt.rfind("Content-Type: multipart/alternative;\r\n boundary=\"=_posthorn_alt_t1\"\r\n", 0) == 0);
	std::string text = part_at(alt, "=_posthorn_alt_t1", 0);
	std::string html = part_at(alt, "=_posthorn_alt_t1", 1);
	assert_non_null(strstr(text.c_str(), "Content-Type: text/plain; charset=utf-8\r\n"));
	assert_non_null(strstr(html.c_str(), "Content-Type: text/html; charset=utf-8\r\n"));
	assert_non_null(strstr(html.c_str(), "Content-Transfer-Encoding: quoted-printable\r\n"));
	assert_string_equal(qp_decode(part_body(html)).c_str(), "<p>Gr\xc3\xbc\xc3\x9f" "e</p>\r\n");
	assert_non_null(strstr(alt.c_str(), "\r\n--=_posthorn_alt_t1--"));

	/* second part: binary attachment, base64 in lines of at most 76, decodes back */
	std::string pdf = part_at(got, "=_posthorn_mix_t1", 1);
	assert_true(pdf.rfind("Content-Type: application/pdf; name=\"report.pdf\"\r\n"
			      "Content-Disposition: attachment; filename=\"report.pdf\"\r\n"
			      "Content-Transfer-Encoding: base64\r\n\r\n", 0) == 0);
	std::string b64 = part_body(pdf), joined;
	for (const std::string &l : split_lines(b64)) {
		assert_true(l.size() <= 76);
		joined += l;
	}
	std::string decoded;
	assert_true(base64_decode(joined, decoded));
	assert_int_equal(decoded.size(), bin.size());
	assert_memory_equal(decoded.data(), bin.data(), bin.size());

	/* third part: a non-ASCII file name in RFC 2231 form */
	std::string txt = part_at(got, "=_posthorn_mix_t1", 2);
	assert_non_null(strstr(txt.c_str(), "Content-Type: text/plain; name*=utf-8''Gr%C3%BC%C3%9Fe.txt\r\n"));
	assert_non_null(strstr(txt.c_str(),
	    "Content-Disposition: attachment; filename*=utf-8''Gr%C3%BC%C3%9Fe.txt\r\n"));
	assert_string_equal(part_body(txt).c_str(), "aGVsbG8=");
	std::string close = "\r\n--=_posthorn_mix_t1--\r\n";
	assert_true(got.size() > close.size() && got.substr(got.size() - close.size()) == close);
}

static void test_long_filename_continuations(void **)
{
	std::string name;
	for (int i = 0; i < 30; i++)
		name += "\xc3\x9c" "bersicht ";
	name += "\"q\".txt";
	Message m = base_message();
	m.attachments.push_back({name, "text/plain", ""});
	std::string got = build_rfc5322(m, fixed_opts());
	assert_crlf_only(got);
	assert_true(max_line(got) <= 78);
	std::string part = part_at(got, "=_posthorn_mix_t1", 1);
	std::string disp = header_raw(part.substr(0, part.find("\r\n\r\n") + 2), "Content-Disposition");
	assert_true(disp.rfind("attachment;\r\n filename*0*=utf-8''", 0) == 0);
	/* reassemble filename*0*, filename*1*, ... */
	std::string value;
	for (int n = 0;; n++) {
		std::string key = "filename*" + std::to_string(n) + "*=";
		size_t at = disp.find(key);
		if (at == std::string::npos) {
			assert_true(n > 2);
			break;
		}
		size_t start = at + key.size();
		size_t end = disp.find_first_of(";\r", start);
		value += disp.substr(start, end == std::string::npos ? std::string::npos : end - start);
	}
	assert_true(value.rfind("utf-8''", 0) == 0);
	assert_string_equal(pct_decode(value.substr(7)).c_str(), name.c_str());
	/* an empty attachment has an empty body */
	assert_string_equal(part_body(part).c_str(), "");
}

static void test_subject_rfc2047(void **)
{
	const char *subject = "Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln \xe2\x80\x94 \xe2\x9c\x93";
	Message m = base_message();
	m.subject = subject;
	std::string got = build_rfc5322(m, fixed_opts());
	std::string v = header_raw(header_block(got), "Subject");
	/* B is shorter than Q here (25 bytes, 11 of them needing =XX) */
	assert_string_equal(v.c_str(), "=?utf-8?b?R3LDvMOfZSBhdXMgS8O2bG4g4oCUIOKckw==?=");
	assert_string_equal(decode_2047(v).c_str(), subject);

	/* mostly ASCII goes Q (unless B is shorter by 5 or more), with the phrase-safe set */
	std::string q = rfc2047_encode("Caf\xc3\xa9 au lait? = yes_no", 7);
	assert_string_equal(q.c_str(), "=?utf-8?q?Caf=C3=A9_au_lait=3F_=3D_yes=5Fno?=");
	assert_string_equal(decode_2047(q).c_str(), "Caf\xc3\xa9 au lait? = yes_no");

	/* ASCII is left alone, unless it would read as an encoded-word */
	assert_string_equal(rfc2047_encode("Plain text", 7).c_str(), "Plain text");
	std::string tricky = rfc2047_encode("=?utf-8?q?x?=", 7);
	assert_string_not_equal(tricky.c_str(), "=?utf-8?q?x?=");
	assert_string_equal(decode_2047(tricky).c_str(), "=?utf-8?q?x?=");

	/* control characters (and a stray CR/LF) never reach the header raw */
	std::string ctl = rfc2047_encode(std::string("a\x01" "b\r\nc", 6), 7);
	assert_null(strchr(ctl.c_str(), '\n'));
	assert_string_equal(decode_2047(ctl).c_str(), "a\x01" "b  c");
}

static void check_folded_subject(const std::string &subject)
{
	Message m = base_message();
	m.subject = subject;
	std::string got = build_rfc5322(m, fixed_opts());
	assert_crlf_only(got);
	std::string h = header_block(got);
	std::string v = header_raw(h, "Subject");
	assert_true(max_line("Subject: " + v) <= 78);
	assert_true(max_line(got) <= 998);
	assert_string_equal(decode_2047(v).c_str(), subject.c_str());
	/* never a UTF-8 character split across words: every word decodes to valid UTF-8 starts */
	for (const std::string &l : split_lines("Subject: " + v)) {
		size_t at = l.find("=?utf-8?");
		std::string w;
		size_t end;
		assert_true(at != std::string::npos && decode_word(l, at, w, end));
		assert_true(w.empty() || (static_cast<unsigned char>(w[0]) & 0xc0) != 0x80);
	}
}

static void test_long_subject_folding(void **)
{
	std::string ascii;
	for (int i = 0; i < 20; i++)
		ascii += "word" + std::to_string(i) + " ";
	check_folded_subject(ascii); /* long ASCII: encoded-words folded at our own spaces */
	std::string utf;
	for (int i = 0; i < 60; i++)
		utf += "K\xc3\xb6ln \xe2\x9c\x93 ";
	check_folded_subject(utf);
	check_folded_subject(std::string(998, 'x')); /* no whitespace at all */
	std::string emoji;
	for (int i = 0; i < 200; i++)
		emoji += "\xf0\x9f\x93\xac"; /* 4-byte characters */
	check_folded_subject(emoji);

	/* a short ASCII subject is untouched; an extra header keeps long ASCII verbatim */
	assert_string_equal(rfc2047_encode(std::string(900, 'a'), 16).c_str(), std::string(900, 'a').c_str());
	std::string too_long = rfc2047_encode(std::string(998, 'a'), 16);
	assert_true(max_line("List-Unsubscribe: " + too_long) <= 78);
	assert_string_equal(decode_2047(too_long).c_str(), std::string(998, 'a').c_str());
}

static void test_display_names(void **)
{
	assert_string_equal(format_mailbox_header("John Doe <john@example.com>").c_str(),
	    "John Doe <john@example.com>");
	assert_string_equal(format_mailbox_header("john@example.com").c_str(), "john@example.com");
	assert_string_equal(format_mailbox_header("<john@example.com>").c_str(), "john@example.com");
	assert_string_equal(format_mailbox_header("Doe, John <john@example.com>").c_str(),
	    "\"Doe, John\" <john@example.com>");
	assert_string_equal(format_mailbox_header("\"Doe, John\" <john@example.com>").c_str(),
	    "\"Doe, John\" <john@example.com>");
	assert_string_equal(format_mailbox_header("Say \"Hi\" <a@example.com>").c_str(),
	    "\"Say \\\"Hi\\\"\" <a@example.com>");
	assert_string_equal(format_mailbox_header("\"Say \\\"Hi\\\" \\\\o/\" <a@example.com>").c_str(),
	    "\"Say \\\"Hi\\\" \\\\o/\" <a@example.com>");
	assert_string_equal(format_mailbox_header("John Q. Public <jqp@example.com>").c_str(),
	    "\"John Q. Public\" <jqp@example.com>");
	assert_string_equal(format_mailbox_header("=?x?= <a@example.com>").c_str(),
	    "\"=?x?=\" <a@example.com>");

	std::string enc = format_mailbox_header("J\xc3\xbcrgen M\xc3\xbcller <j@example.de>");
	assert_string_equal(enc.c_str(), "=?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <j@example.de>");

	/* a long name folds at the space we put before '<'; the address is copied untouched */
	std::string long_name;
	for (int i = 0; i < 12; i++)
		long_name += "J\xc3\xbcrgen ";
	long_name += "Z";
	std::string addr = "j\xc3\xbcrgen.m\xc3\xbcller@b\xc3\xbc" "cher.example";
	std::string got = format_mailbox_header(long_name + " <" + addr + ">");
	assert_true(max_line("Reply-To: " + got) <= 78);
	size_t lt = got.rfind(" <");
	assert_string_equal(got.substr(lt + 2).c_str(), (addr + ">").c_str());
	assert_string_equal(decode_2047(got.substr(0, lt)).c_str(), long_name.c_str());

	Message m = base_message();
	m.from = "Doe, \"JD\" John <jd@example.com>";
	std::string msg = build_rfc5322(m, fixed_opts());
	assert_string_equal(header_raw(header_block(msg), "From").c_str(),
	    "\"Doe, \\\"JD\\\" John\" <jd@example.com>");
}

static void test_qp_vectors(void **)
{
	assert_string_equal(quoted_printable_encode("a=b").c_str(), "a=3Db");
	assert_string_equal(quoted_printable_encode("trailing space \nnext").c_str(),
	    "trailing space=20\r\nnext");
	assert_string_equal(quoted_printable_encode("tab\t").c_str(), "tab=09");
	assert_string_equal(quoted_printable_encode("in between ok").c_str(), "in between ok");
	assert_string_equal(quoted_printable_encode("a\r\nb\nc\rd").c_str(), "a\r\nb\r\nc=0Dd");
	assert_string_equal(quoted_printable_encode("\xc3\xa9t\xc3\xa9 \xe2\x9c\x93").c_str(),
	    "=C3=A9t=C3=A9 =E2=9C=93");
	assert_string_equal(quoted_printable_encode(std::string("nul\0", 4)).c_str(), "nul=00");
	assert_string_equal(quoted_printable_encode(".dot\n").c_str(), ".dot\r\n");
	assert_string_equal(quoted_printable_encode("").c_str(), "");

	/* 76 characters fit; 77 need a soft break after 75 */
	std::string x76(76, 'x'), x75(75, 'x');
	assert_string_equal(quoted_printable_encode(x76).c_str(), x76.c_str());
	assert_string_equal(quoted_printable_encode(x76 + "y").c_str(), (x75 + "=\r\nxy").c_str());
	/* =XX is never split by a soft break */
	std::string x73(73, 'x'), x74(74, 'x');
	assert_string_equal(quoted_printable_encode(x73 + "=").c_str(), (x73 + "=3D").c_str());
	assert_string_equal(quoted_printable_encode(x74 + "=").c_str(), (x74 + "=\r\n=3D").c_str());
	assert_string_equal(quoted_printable_encode(x73 + "=z").c_str(), (x73 + "=\r\n=3Dz").c_str());
	/* a space before a soft break stays literal; a space ending the hard line is encoded */
	assert_string_equal(quoted_printable_encode(x74 + " y").c_str(), (x74 + " y").c_str());
	assert_string_equal(quoted_printable_encode(x74 + " yz").c_str(), (x74 + " =\r\nyz").c_str());
	assert_string_equal(quoted_printable_encode(x75 + " ").c_str(), (x75 + "=\r\n=20").c_str());

	/* round trip of awkward text, with every line within 76 */
	std::string text;
	for (int i = 0; i < 3000; i++) {
		unsigned char c = static_cast<unsigned char>((i * 131 + i / 7) & 0xff);
		text += c == '\r' ? ' ' : static_cast<char>(c);
		if (i % 97 == 0)
			text += " \n";
	}
	std::string enc = quoted_printable_encode(text);
	assert_true(max_line(enc) <= 76);
	assert_null(strstr(enc.c_str(), "=_"));
	std::string want;
	for (char c : text) {
		if (c == '\n')
			want += '\r';
		want += c;
	}
	std::string dec = qp_decode(enc);
	assert_int_equal(dec.size(), want.size());
	assert_memory_equal(dec.data(), want.data(), want.size());
}

static void test_body_encoding_choice(void **)
{
	Message m = base_message();
	/* bare LF and CRLF both become CRLF; 7bit stays */
	m.text_body = "a\nb\r\nc";
	std::string got = build_rfc5322(m, fixed_opts());
	assert_string_equal(got.substr(got.find("\r\n\r\n") + 4).c_str(), "a\r\nb\r\nc\r\n");
	/* a long line, trailing blank, or "=_" forces quoted-printable */
	const std::string cases[] = {std::string(79, 'x'), "end \n", "a =_posthorn_alt_t1 b", "\x7f"};
	for (const std::string &body : cases) {
		m.text_body = body;
		got = build_rfc5322(m, fixed_opts());
		assert_non_null(strstr(got.c_str(), "Content-Transfer-Encoding: quoted-printable\r\n"));
		assert_null(strstr(got.substr(got.find("\r\n\r\n")).c_str(), "=_"));
		assert_true(max_line(got) <= 78);
	}
	/* 78 columns still go 7bit; so does a leading dot (dot-stuffing is libcurl's job) */
	m.text_body = std::string(78, 'x') + "\n.\n";
	got = build_rfc5322(m, fixed_opts());
	assert_non_null(strstr(got.c_str(), "Content-Transfer-Encoding: 7bit\r\n"));
	assert_non_null(strstr(got.c_str(), "\r\n.\r\n"));
}

static void test_lines_and_headers_everywhere(void **)
{
	Message m = base_message();
	m.id = "123e4567-e89b-12d3-a456-426614174000";
	m.from = "\xc3\x89milie \"Lamb\" <emilie@example.fr>";
	m.reply_to = "Support Team <support@example.fr>";
	m.recipients.clear();
	for (int i = 0; i < 40; i++)
		m.recipients.push_back("recipient" + std::to_string(i) + "@example.org");
	m.subject = std::string(300, 'S') + " \xe2\x9c\x93";
	m.text_body = std::string(5000, 'y') + "\n\xc3\xa9\r\n\n";
	m.html_body = "<html>\n<body>" + std::string(2000, 'h') + "</body></html>";
	m.headers = {{"X-Mailer-Info", "\xc3\xa0 la carte"}, {"List-Unsubscribe", "<https://example.fr/u>"}};
	m.attachments.push_back({"a.bin", "application/octet-stream", std::string(5000, '\0')});
	m.attachments.push_back({"b.txt", "not a type", "x"});
	MimeOptions o; /* random boundaries, now, hostname from From */
	std::string got = build_rfc5322(m, o);
	assert_crlf_only(got);
	assert_true(max_line(got) <= 78);
	std::string h = header_block(got);
	assert_string_equal(header_raw(h, "Message-ID").c_str(),
	    "<123e4567-e89b-12d3-a456-426614174000@example.fr>");
	std::string date = header_raw(h, "Date");
	assert_int_equal(date.size(), 31);
	assert_true(date.substr(date.size() - 6) == " +0000");
	assert_true(date.substr(12, 2) == "20");
	assert_string_equal(header_raw(h, "X-Mailer-Info").c_str(), "=?utf-8?q?=C3=A0_la_carte?=");
	assert_string_equal(header_raw(h, "MIME-Version").c_str(), "1.0");
	assert_non_null(strstr(got.c_str(), "Content-Type: application/octet-stream; name=\"b.txt\"\r\n"));
	std::string to = unfold(header_raw(h, "To"));
	assert_non_null(strstr(to.c_str(), "recipient0@example.org, recipient1@example.org,"));
	assert_non_null(strstr(to.c_str(), "recipient39@example.org"));
	std::string from = header_raw(h, "From");
	size_t lt = from.rfind(" <");
	assert_string_equal(decode_2047(from.substr(0, lt)).c_str(), "\xc3\x89milie \"Lamb\"");

	/* random boundaries: different per build, hex, and delimiters only at the real places */
	std::string mix = header_raw(h, "Content-Type");
	size_t q = mix.find("boundary=\"");
	std::string b = mix.substr(q + 10, mix.find('"', q + 10) - q - 10);
	assert_true(b.rfind("=_posthorn_mix_", 0) == 0);
	assert_int_equal(b.size(), 15 + 32);
	size_t count = 0;
	for (size_t at = got.find(b); at != std::string::npos; at = got.find(b, at + 1))
		count++;
	assert_int_equal(count, 1 + 3 + 1); /* header, three parts, close */
	std::string again = build_rfc5322(m, o);
	assert_null(strstr(again.c_str(), b.c_str()));
}

/* To and Cc as the message showed them; a blind copy is in no header, ever. */
static void test_recipient_headers(void **)
{
	Message m = base_message();
	m.recipients = {"alice@example.org", "bob@example.org", "carol@example.org"};
	m.to_visible = {"alice@example.org"};
	m.cc_visible = {"bob@example.org"};
	m.visibility_known = true;
	std::string got = build_rfc5322(m, fixed_opts());
	assert_non_null(strstr(got.c_str(),
	    "\r\nFrom: Posthorn Test <sender@example.com>\r\n"
	    "To: alice@example.org\r\n"
	    "Cc: bob@example.org\r\n"
	    "Subject: Hello\r\n"));
	assert_null(strstr(got.c_str(), "carol"));
	assert_null(strcasestr(got.c_str(), "\nBcc:"));

	/* Cc only: no To header. */
	m.to_visible.clear();
	got = build_rfc5322(m, fixed_opts());
	std::string h = header_block(got);
	assert_null(strstr(h.c_str(), "\nTo:"));
	assert_non_null(strstr(h.c_str(), "\r\nCc: bob@example.org\r\n"));
	assert_null(strstr(got.c_str(), "alice"));
	assert_null(strstr(got.c_str(), "carol"));

	/* Bcc only: the empty group, nobody's address. */
	m.cc_visible.clear();
	got = build_rfc5322(m, fixed_opts());
	h = header_block(got);
	assert_non_null(strstr(h.c_str(), "\r\nTo: undisclosed-recipients:;\r\n"));
	assert_null(strstr(h.c_str(), "\nCc:"));
	for (const char *who : {"alice", "bob", "carol"})
		assert_null(strstr(got.c_str(), who));

	/* A long Cc folds like To. */
	m.recipients.clear();
	for (int i = 0; i < 30; i++)
		m.recipients.push_back("recipient" + std::to_string(i) + "@example.org");
	m.to_visible = {"recipient0@example.org"};
	m.cc_visible.assign(m.recipients.begin() + 1, m.recipients.end() - 1);
	got = build_rfc5322(m, fixed_opts());
	assert_true(max_line(got) <= 78);
	h = header_block(got);
	assert_string_equal(header_raw(h, "To").c_str(), "recipient0@example.org");
	std::string cc = unfold(header_raw(h, "Cc"));
	assert_non_null(strstr(cc.c_str(), "recipient1@example.org, recipient2@example.org,"));
	assert_non_null(strstr(cc.c_str(), "recipient28@example.org"));
	assert_null(strstr(got.c_str(), "recipient29@"));

	/* Legacy (no visibility): every recipient in To, as before. */
	m.to_visible.clear();
	m.cc_visible.clear();
	m.visibility_known = false;
	h = header_block(build_rfc5322(m, fixed_opts()));
	assert_non_null(strstr(unfold(header_raw(h, "To")).c_str(), "recipient29@example.org"));
	assert_null(strstr(h.c_str(), "\nCc:"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_date),
		cmocka_unit_test(test_text_only_exact),
		cmocka_unit_test(test_text_without_final_newline),
		cmocka_unit_test(test_alternative_exact),
		cmocka_unit_test(test_attachments),
		cmocka_unit_test(test_long_filename_continuations),
		cmocka_unit_test(test_subject_rfc2047),
		cmocka_unit_test(test_long_subject_folding),
		cmocka_unit_test(test_display_names),
		cmocka_unit_test(test_qp_vectors),
		cmocka_unit_test(test_body_encoding_choice),
		cmocka_unit_test(test_lines_and_headers_everywhere),
		cmocka_unit_test(test_recipient_headers),
	};
	return cmocka_run_group_tests(tests, nullptr, nullptr);
}
