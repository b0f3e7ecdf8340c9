/*
 * RFC 5322 / MIME builder (RFC 2045, 2046, 2047, 2231).
 *
 * Boundaries are "=_posthorn_<kind>_<hex>". No part body we emit can contain
 * "=_", so no boundary can occur inside the content, whatever the random part:
 *   - base64 uses A-Z a-z 0-9 + / and '=' only as final padding: never "=_";
 *   - quoted-printable writes '=' only as "=XX" (upper-case hex) or as a soft
 *     break "=" CRLF: never "=_";
 *   - a body is sent 7bit only when it does not contain "=_" (else it goes
 *     quoted-printable, which escapes every '=');
 *   - part header lines start with a field name or a folding space, never "--".
 * The two kinds ("mix", "alt") keep the nested boundaries distinct, and neither
 * is a prefix of the other. The random hex is belt and braces.
 *
 * A line starting with "." is left alone: SMTP dot-stuffing is libcurl's job
 * (and the file and SES transports must not have it).
 */
#include "mime_build.h"

#include <sys/random.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "common/base64.h"
#include "common/text.h"

namespace posthorn {

namespace {

constexpr size_t LINE_SOFT = 78;  /* RFC 5322 2.1.1: SHOULD */
constexpr size_t LINE_HARD = 998; /* RFC 5322 2.1.1: MUST */
constexpr size_t QP_LINE = 76;    /* RFC 2045 6.7 (5), the '=' of a soft break included */
constexpr size_t B64_LINE = 76;   /* RFC 2045 6.8 */
constexpr size_t EW_MAX = 75;     /* RFC 2047 2: one encoded-word */
constexpr size_t EW_OVERHEAD = 12; /* "=?utf-8?q?" + "?=" */
constexpr size_t MAILBOX_NAME_LEN = 8; /* "Reply-To", the longer of From and Reply-To */
constexpr size_t MAX_EXTRA_NAME = 76;
constexpr std::string_view CRLF = "\r\n";
constexpr char HEX_UPPER[] = "0123456789ABCDEF";

bool is_alnum(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool in_set(unsigned char c, std::string_view set)
{
	return c != '\0' && set.find(static_cast<char>(c)) != std::string_view::npos;
}

/* Defence in depth: checked input has no CR, LF or NUL; any that slips through becomes a space. */
std::string one_line(std::string_view v)
{
	std::string s(v);
	for (char &c : s)
		if (c == '\r' || c == '\n' || c == '\0')
			c = ' ';
	return s;
}

/* Printable ASCII, space and tab: may appear in a header as is. */
bool header_ascii(std::string_view v)
{
	for (unsigned char c : v)
		if ((c < 0x20 && c != '\t') || c > 0x7e)
			return false;
	return true;
}

/* Text a reader would decode as an encoded-word must itself be encoded to survive. */
bool looks_encoded(std::string_view v)
{
	return v.find("=?") != std::string_view::npos;
}

/* Length of the UTF-8 character at s[i]; a malformed sequence counts byte by byte. */
size_t utf8_char_len(std::string_view s, size_t i)
{
	unsigned char c = static_cast<unsigned char>(s[i]);
	size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 1;
	if (i + n > s.size())
		return 1;
	for (size_t k = 1; k < n; k++)
		if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80)
			return 1;
	return n;
}

/* Columns used on the last line of a header whose first line starts with prefix_len columns. */
size_t last_line_len(std::string_view folded, size_t prefix_len)
{
	size_t nl = folded.rfind(CRLF);
	return nl == std::string_view::npos ? prefix_len + folded.size() : folded.size() - nl - 2;
}

void append_hex(std::string &out, unsigned char c, char lead)
{
	out += lead;
	out += HEX_UPPER[c >> 4];
	out += HEX_UPPER[c & 0xf];
}

/*
 * Encoded-words. Q keeps only the characters RFC 2047 5(3) allows in a
 * phrase (so the same words serve Subject and display names); space is '_'.
 */
bool q_literal(unsigned char c)
{
	return is_alnum(c) || in_set(c, "!*+-/");
}

size_t q_cost(std::string_view bytes)
{
	size_t n = 0;
	for (unsigned char c : bytes)
		n += (c == ' ' || q_literal(c)) ? 1 : 3;
	return n;
}

size_t b_cost(size_t nbytes)
{
	return (nbytes + 2) / 3 * 4;
}

std::string q_encode(std::string_view bytes)
{
	std::string out;
	for (unsigned char c : bytes) {
		if (c == ' ')
			out += '_';
		else if (q_literal(c))
			out += static_cast<char>(c);
		else
			append_hex(out, c, '=');
	}
	return out;
}

std::string make_word(std::string_view chunk, bool q)
{
	return q ? "=?utf-8?q?" + q_encode(chunk) + "?=" : "=?utf-8?b?" + base64_encode(chunk) + "?=";
}

/*
 * Split value into runs of whole UTF-8 characters whose encoding fits the
 * payload of each word. A run ends before a space when it can, so the next word
 * starts with the (encoded) space: decoders that wrongly insert a blank between
 * adjacent encoded-words (Python's address parser does) then show two spaces
 * rather than one inside a word.
 */
std::vector<std::string_view> word_chunks(std::string_view v, bool q, size_t first_payload)
{
	std::vector<std::string_view> chunks;
	size_t payload = first_payload, start = 0, i = 0, space = 0;
	while (i < v.size()) {
		size_t n = utf8_char_len(v, i);
		std::string_view grown = v.substr(start, i + n - start);
		size_t cost = q ? q_cost(grown) : b_cost(grown.size());
		if (cost > payload && i > start) {
			if (space > start)
				i = space;
			chunks.push_back(v.substr(start, i - start));
			start = i;
			payload = EW_MAX - EW_OVERHEAD;
			continue;
		}
		if (v[i] == ' ')
			space = i;
		i += n;
	}
	if (start < v.size() || chunks.empty())
		chunks.push_back(v.substr(start));
	return chunks;
}

/* Encoded-words for a value following "<name>: ", one per line. */
std::string encode_words(std::string_view raw, size_t name_len)
{
	std::string v = one_line(raw);
	/* Q reads better; B only when clearly shorter (like Python's email package). */
	bool q = q_cost(v) < b_cost(v.size()) + 5;
	/* The first word shares its line with "<name>: "; give it at least room for one character. */
	size_t room = LINE_SOFT > name_len + 2 ? LINE_SOFT - name_len - 2 : 0;
	size_t first = std::min(EW_MAX, room);
	first = first > EW_OVERHEAD + 12 ? first - EW_OVERHEAD : 12;
	std::string out;
	for (std::string_view chunk : word_chunks(v, q, first)) {
		if (!out.empty())
			out += "\r\n "; /* whitespace between encoded-words is not part of the text */
		out += make_word(chunk, q);
	}
	return out;
}

/* atext (RFC 5322 3.2.3) */
bool is_atext(unsigned char c)
{
	return is_alnum(c) || in_set(c, "!#$%&'*+-/=?^_`{|}~");
}

/* A phrase that can go out as atoms: atext words separated by single spaces. */
bool plain_phrase(std::string_view s)
{
	if (s.empty() || s.front() == ' ' || s.back() == ' ' || looks_encoded(s))
		return false;
	for (size_t i = 0; i < s.size(); i++) {
		unsigned char c = static_cast<unsigned char>(s[i]);
		if (c == ' ' ? s[i - 1] == ' ' : !is_atext(c))
			return false;
	}
	return true;
}

std::string quote_string(std::string_view s)
{
	std::string out = "\"";
	for (char c : s) {
		if (c == '"' || c == '\\')
			out += '\\';
		out += c;
	}
	return out + "\"";
}

/* If s is exactly one quoted-string, its content with escapes removed. */
bool unquote(std::string_view s, std::string &out)
{
	if (s.size() < 2 || s.front() != '"' || s.back() != '"')
		return false;
	out.clear();
	for (size_t i = 1; i + 1 < s.size(); i++) {
		if (s[i] == '\\' && i + 2 < s.size())
			out += s[++i];
		else if (s[i] == '"' || s[i] == '\\')
			return false;
		else
			out += s[i];
	}
	return true;
}

/*
 * Split a validated mailbox for rendering: "Name <addr>" -> (Name, addr),
 * "addr" -> ("", addr). An addr-spec holds no '<' or '>', so the last '<' opens it.
 */
void split_mailbox(std::string_view mb, std::string &name, std::string &addr)
{
	mb = trim(mb);
	size_t lt = mb.rfind('<');
	if (mb.empty() || mb.back() != '>' || lt == std::string_view::npos) {
		name.clear();
		addr = std::string(mb);
		return;
	}
	addr = std::string(trim(mb.substr(lt + 1, mb.size() - lt - 2)));
	std::string_view n = trim(mb.substr(0, lt));
	std::string unquoted;
	name = unquote(n, unquoted) ? unquoted : std::string(n);
}

/* The display name as atoms, a quoted-string or encoded-words. */
std::string render_display_name(std::string_view name)
{
	if (!header_ascii(name))
		return encode_words(name, MAILBOX_NAME_LEN);
	if (plain_phrase(name))
		return std::string(name);
	std::string q = quote_string(name);
	if (MAILBOX_NAME_LEN + 2 + q.size() > LINE_HARD)
		return encode_words(name, MAILBOX_NAME_LEN);
	return q;
}

void random_bytes(unsigned char *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = getrandom(buf + got, n - got, 0);
		if (r <= 0)
			break;
		got += static_cast<size_t>(r);
	}
	/* Uniqueness does not rest on this (see the comment at the top); fill any rest anyway. */
	static unsigned long counter;
	for (; got < n; got++)
		buf[got] = static_cast<unsigned char>((time(nullptr) >> (got % 8)) ^ ++counter);
}

std::string random_hex(size_t nbytes)
{
	std::vector<unsigned char> buf(nbytes);
	random_bytes(buf.data(), buf.size());
	std::string out;
	for (unsigned char c : buf) {
		out += "0123456789abcdef"[c >> 4];
		out += "0123456789abcdef"[c & 0xf];
	}
	return out;
}

std::string make_boundary(std::string_view kind, const MimeOptions &opts)
{
	std::string tail;
	for (unsigned char c : opts.boundary_seed)
		if (is_alnum(c) && tail.size() < 40)
			tail += static_cast<char>(c);
	if (tail.empty())
		tail = random_hex(16);
	return "=_posthorn_" + std::string(kind) + "_" + tail;
}

/* Keep only what a Message-ID's id-left or id-right may hold as a dot-atom. */
std::string id_atom(std::string_view s)
{
	std::string out;
	for (unsigned char c : s)
		if (is_alnum(c) || c == '.' || c == '-')
			out += static_cast<char>(c);
	while (!out.empty() && out.front() == '.')
		out.erase(0, 1);
	while (!out.empty() && out.back() == '.')
		out.pop_back();
	return out.substr(0, 253);
}

std::string message_id(const Message &msg, const MimeOptions &opts)
{
	std::string left = id_atom(msg.id);
	if (left.empty())
		left = random_hex(16);
	std::string right = id_atom(opts.hostname);
	if (right.empty()) {
		std::string name, addr;
		split_mailbox(msg.from, name, addr);
		size_t at = addr.rfind('@');
		if (at != std::string::npos)
			right = id_atom(std::string_view(addr).substr(at + 1));
	}
	if (right.empty())
		right = "localhost";
	return "<" + left + "@" + right + ">";
}

/* "<name>: a, b", folded after a comma when the line would pass 78. */
std::string address_header(std::string_view name, const std::vector<std::string> &addrs)
{
	std::string out = std::string(name) + ": ";
	size_t col = out.size();
	for (size_t i = 0; i < addrs.size(); i++) {
		std::string a = one_line(addrs[i]);
		if (i > 0) {
			bool fold = col + 2 + a.size() > LINE_SOFT;
			out += fold ? ",\r\n " : ", ";
			col = fold ? 1 : col + 2;
		}
		out += a;
		col += a.size();
	}
	return out + "\r\n";
}

/*
 * To and Cc as split_visibility() says; Bcc recipients are in the envelope
 * only, never in a header. With nobody to show, "To: undisclosed-recipients:;"
 * (an empty group), as MTAs write; with only Cc, no To header (RFC 5322
 * allows it).
 */
std::string recipient_headers(const Message &msg)
{
	std::vector<std::string> to, cc, bcc;
	split_visibility(msg, to, cc, bcc);
	if (to.empty() && cc.empty())
		return "To: undisclosed-recipients:;\r\n";
	std::string h;
	if (!to.empty())
		h += address_header("To", to);
	if (!cc.empty())
		h += address_header("Cc", cc);
	return h;
}

std::string subject_value(std::string_view subject)
{
	constexpr size_t name_len = 7; /* "Subject" */
	std::string v = one_line(subject);
	/* ASCII that fits on one line stays readable; anything longer is folded between encoded-words. */
	if (header_ascii(v) && !looks_encoded(v) && name_len + 2 + v.size() <= LINE_SOFT)
		return v;
	return encode_words(v, name_len);
}

bool valid_field_name(std::string_view name)
{
	if (name.empty() || name.size() > MAX_EXTRA_NAME)
		return false;
	for (unsigned char c : name)
		if (c < 33 || c > 126 || c == ':')
			return false;
	return true;
}

/* Fields the builder writes itself: a copy in msg.headers would make the message ambiguous. */
bool reserved_field(std::string_view name)
{
	static constexpr std::string_view reserved[] = {"date", "from", "sender", "to", "cc", "bcc",
	    "reply-to", "subject", "message-id", "mime-version"};
	for (std::string_view r : reserved)
		if (iequals(name, r))
			return true;
	return name.size() >= 8 && iequals(name.substr(0, 8), "content-");
}

/* A MIME part: header lines (each ending CRLF) and body (without the CRLF before a delimiter). */
struct Part {
	std::string headers;
	std::string body;
};

/* 7bit only for plain ASCII with short lines, no trailing blanks, no lone CR, and no "=_". */
bool sevenbit_ok(std::string_view text)
{
	if (text.find("=_") != std::string_view::npos)
		return false;
	size_t col = 0;
	for (size_t i = 0; i < text.size(); i++) {
		unsigned char c = static_cast<unsigned char>(text[i]);
		bool eol = c == '\n' || (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n');
		if (eol) {
			if (i > 0 && (text[i - 1] == ' ' || text[i - 1] == '\t'))
				return false;
			if (c == '\r')
				i++;
			col = 0;
			continue;
		}
		if ((c < 0x20 && c != '\t') || c > 0x7e || ++col > LINE_SOFT)
			return false;
	}
	return text.empty() || (text.back() != ' ' && text.back() != '\t');
}

/* LF and CRLF both become CRLF (sevenbit_ok() has ruled out a lone CR). */
std::string crlf_lines(std::string_view text)
{
	std::string out;
	out.reserve(text.size() + text.size() / 32);
	for (size_t i = 0; i < text.size(); i++) {
		if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n')
			continue;
		if (text[i] == '\n')
			out += CRLF;
		else
			out += text[i];
	}
	return out;
}

Part text_part(std::string_view text, std::string_view subtype)
{
	bool seven = sevenbit_ok(text);
	Part p;
	p.headers = "Content-Type: text/" + std::string(subtype) + "; charset=utf-8\r\n"
		    "Content-Transfer-Encoding: " + (seven ? "7bit" : "quoted-printable") + "\r\n";
	p.body = seven ? crlf_lines(text) : quoted_printable_encode(text);
	return p;
}

/* RFC 2231 attribute-char: what may stand unencoded in an extended parameter value. */
bool attr_char(unsigned char c)
{
	return is_alnum(c) || in_set(c, "!#$&+-.^_`|~");
}

/*
 * One parameter of a content header, to follow its ';'. col is the column
 * after that ';'. Printable ASCII goes out as a quoted-string; anything else,
 * or a value too long for one line, as RFC 2231 utf-8'' percent-encoding,
 * split into numbered continuations (never inside a %XX) to keep lines within 78.
 */
std::string header_param(std::string_view attr, std::string_view raw, size_t col)
{
	std::string value = one_line(raw);
	std::string a(attr);
	if (header_ascii(value)) {
		std::string q = a + "=" + quote_string(value);
		if (col + 1 + q.size() <= LINE_SOFT)
			return " " + q;
		if (1 + q.size() <= LINE_SOFT)
			return "\r\n " + q;
	}
	std::vector<std::string> tokens; /* one per byte: "x" or "%XX" */
	for (unsigned char c : value) {
		std::string t;
		if (attr_char(c))
			t = static_cast<char>(c);
		else
			append_hex(t, c, '%');
		tokens.push_back(t);
	}
	std::string whole = a + "*=utf-8''";
	for (const std::string &t : tokens)
		whole += t;
	if (col + 1 + whole.size() <= LINE_SOFT)
		return " " + whole;
	if (1 + whole.size() <= LINE_SOFT)
		return "\r\n " + whole;
	std::string out, line;
	size_t n = 0;
	auto start = [&]() {
		line = a + "*" + std::to_string(n) + "*=" + (n == 0 ? "utf-8''" : "");
		n++;
	};
	start();
	for (const std::string &t : tokens) {
		/* " " + line + t + ";" must fit */
		if (line.back() != '=' && line.back() != '\'' && 1 + line.size() + t.size() + 1 > LINE_SOFT) {
			out += "\r\n " + line + ";";
			start();
		}
		line += t;
	}
	return out + "\r\n " + line;
}

/* A Content-Type must be type/subtype tokens (RFC 2045 5.1); anything else is octet-stream. */
std::string content_type(std::string_view ct)
{
	size_t slash = ct.find('/');
	if (slash == std::string_view::npos || slash == 0 || slash + 1 == ct.size() || ct.size() > 127)
		return "application/octet-stream";
	for (size_t i = 0; i < ct.size(); i++) {
		unsigned char c = static_cast<unsigned char>(ct[i]);
		if (i != slash && (c <= 32 || c >= 127 || in_set(c, "()<>@,;:\\\"/[]?=")))
			return "application/octet-stream";
	}
	return std::string(ct);
}

Part attachment_part(const Attachment &a)
{
	Part p;
	std::string ct = "Content-Type: " + content_type(a.content_type);
	std::string cd = "Content-Disposition: attachment";
	if (!a.filename.empty()) {
		ct += ";" + header_param("name", a.filename, ct.size() + 1);
		cd += ";" + header_param("filename", a.filename, cd.size() + 1);
	}
	p.headers = ct + "\r\n" + cd + "\r\nContent-Transfer-Encoding: base64\r\n";
	p.body = base64_encode_lines(a.data);
	if (!p.body.empty())
		p.body.resize(p.body.size() - 2); /* the delimiter's CRLF ends the last line */
	return p;
}

Part multipart(std::string_view subtype, const std::string &boundary,
    const std::vector<Part> &parts)
{
	Part m;
	m.headers = "Content-Type: multipart/" + std::string(subtype) + ";\r\n boundary=\"" + boundary +
		    "\"\r\n";
	for (const Part &p : parts)
		m.body += "--" + boundary + "\r\n" + p.headers + "\r\n" + p.body + "\r\n";
	m.body += "--" + boundary + "--";
	return m;
}

Part body_part(const Message &msg, const MimeOptions &opts)
{
	if (msg.html_body.empty())
		return text_part(msg.text_body, "plain");
	if (msg.text_body.empty())
		return text_part(msg.html_body, "html");
	return multipart("alternative", make_boundary("alt", opts),
	    {text_part(msg.text_body, "plain"), text_part(msg.html_body, "html")});
}

Part content(const Message &msg, const MimeOptions &opts)
{
	Part body = body_part(msg, opts);
	if (msg.attachments.empty())
		return body;
	std::vector<Part> parts;
	parts.reserve(msg.attachments.size() + 1);
	parts.push_back(std::move(body));
	for (const Attachment &a : msg.attachments)
		parts.push_back(attachment_part(a));
	return multipart("mixed", make_boundary("mix", opts), parts);
}

std::string top_headers(const Message &msg, const MimeOptions &opts)
{
	std::string h;
	h += "Date: " + rfc5322_date(opts.date != 0 ? opts.date : time(nullptr)) + "\r\n";
	h += "From: " + format_mailbox_header(msg.from) + "\r\n";
	h += recipient_headers(msg);
	if (!msg.reply_to.empty())
		h += "Reply-To: " + format_mailbox_header(msg.reply_to) + "\r\n";
	h += "Subject: " + subject_value(msg.subject) + "\r\n";
	h += "Message-ID: " + message_id(msg, opts) + "\r\n";
	h += "MIME-Version: 1.0\r\n";
	for (const auto &[name, value] : msg.headers) {
		if (!valid_field_name(name) || reserved_field(name))
			continue;
		h += name + ": " + rfc2047_encode(value, name.size()) + "\r\n";
	}
	return h;
}

} // namespace

std::string rfc2047_encode(std::string_view value, size_t header_name_len)
{
	std::string v = one_line(value);
	if (header_ascii(v) && !looks_encoded(v) && header_name_len + 2 + v.size() <= LINE_HARD)
		return v;
	return encode_words(v, header_name_len);
}

std::string rfc2047_encode_words(std::string_view value, size_t header_name_len)
{
	return encode_words(value, header_name_len);
}

std::string format_mailbox_header(std::string_view mailbox)
{
	std::string name, addr;
	split_mailbox(one_line(mailbox), name, addr);
	if (name.empty())
		return addr;
	std::string out = render_display_name(name);
	/* The space before '<' is ours, so the fold may go there. */
	bool fold = last_line_len(out, MAILBOX_NAME_LEN + 2) + 2 + addr.size() + 1 > LINE_SOFT;
	return out + (fold ? "\r\n <" : " <") + addr + ">";
}

std::string rfc5322_date(time_t t)
{
	static constexpr const char *days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static constexpr const char *months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
	    "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct tm tm;
	if (gmtime_r(&t, &tm) == nullptr) {
		t = 0;
		gmtime_r(&t, &tm);
	}
	char buf[64];
	snprintf(buf, sizeof(buf), "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday % 7],
	    tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
	return buf;
}

std::string quoted_printable_encode(std::string_view text)
{
	std::string out;
	out.reserve(text.size() + text.size() / 8);
	size_t i = 0;
	for (;;) {
		size_t nl = text.find('\n', i);
		std::string_view line =
		    text.substr(i, nl == std::string_view::npos ? std::string_view::npos : nl - i);
		if (nl != std::string_view::npos && !line.empty() && line.back() == '\r')
			line.remove_suffix(1);
		size_t col = 0;
		for (size_t k = 0; k < line.size(); k++) {
			unsigned char c = static_cast<unsigned char>(line[k]);
			bool last = k + 1 == line.size();
			bool literal = (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !last);
			size_t n = literal ? 1 : 3;
			/* Room for this, and for the '=' of a soft break unless the line ends here. */
			if (col + n > (last ? QP_LINE : QP_LINE - 1)) {
				out += "=\r\n";
				col = 0;
			}
			if (literal)
				out += static_cast<char>(c);
			else
				append_hex(out, c, '=');
			col += n;
		}
		if (nl == std::string_view::npos)
			return out;
		out += CRLF;
		i = nl + 1;
	}
}

std::string base64_encode_lines(std::string_view data)
{
	std::string b = base64_encode(data);
	std::string out;
	out.reserve(b.size() + b.size() / B64_LINE * 2 + 2);
	for (size_t i = 0; i < b.size(); i += B64_LINE) {
		out.append(b, i, B64_LINE);
		out += CRLF;
	}
	return out;
}

std::string build_rfc5322(const Message &msg, const MimeOptions &opts)
{
	Part c = content(msg, opts);
	std::string out = top_headers(msg, opts);
	out += c.headers;
	out += CRLF;
	out += c.body;
	if (out.size() < 2 || out.compare(out.size() - 2, 2, CRLF) != 0)
		out += CRLF;
	return out;
}

} // namespace posthorn
