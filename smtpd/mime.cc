/*
 * MIME walker (RFC 2045, 2046, 2047, 2231, 5322) for the SMTP front.
 *
 * One pass splits a header section into unfolded fields; a multipart body is
 * cut into parts by scanning its lines once for the delimiter, and each part
 * is walked in turn (recursion bounded by MimeLimits::max_depth). Nothing is
 * searched again from the start, so the cost is linear in the input for each
 * nesting level. Text is made UTF-8 here; message_validate() checks the
 * assembled message again before it is submitted.
 */
#include "mime.h"

#include <errno.h>
#include <iconv.h>
#include <string.h>

#include <array>
#include <cstdint>

#include "common/base64.h"
#include "common/text.h"

namespace posthorn {

namespace {

constexpr size_t kMaxCharsetName = 40;
constexpr size_t kMaxParams = 64;       /* parameters read from one header */
constexpr size_t kMaxContinuations = 64; /* RFC 2231 segments of one parameter */
constexpr size_t kMaxBoundary = 200;     /* RFC 2046 says 70; be lenient */
constexpr size_t kMaxFilename = 255;
constexpr size_t kMaxMessageId = 250;
constexpr size_t kIconvCacheMax = 64;
constexpr std::string_view kReplacement = "\xEF\xBF\xBD"; /* U+FFFD */

/* ---- small helpers ----------------------------------------------------- */

bool fail(std::string &why, std::string_view what)
{
	why.assign(what);
	return false;
}

bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

std::string_view trim_space(std::string_view s)
{
	while (!s.empty() && (is_wsp(s.front()) || s.front() == '\r' || s.front() == '\n'))
		s.remove_prefix(1);
	while (!s.empty() && (is_wsp(s.back()) || s.back() == '\r' || s.back() == '\n'))
		s.remove_suffix(1);
	return s;
}

bool all_wsp(std::string_view s)
{
	for (char c : s)
		if (!is_wsp(c))
			return false;
	return true;
}

/* RFC 2045 token character: printable ASCII except tspecials. */
bool is_token_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == nullptr;
}

bool is_token(std::string_view s)
{
	if (s.empty())
		return false;
	for (unsigned char c : s)
		if (!is_token_char(c))
			return false;
	return true;
}

/* RFC 5322 atext, ASCII part. */
bool is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != nullptr);
}

/* Shortens `s` to at most `max` bytes without splitting a UTF-8 sequence. */
void utf8_truncate(std::string &s, size_t max)
{
	if (s.size() <= max)
		return;
	size_t n = max;
	while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xc0) == 0x80)
		n--;
	s.resize(n);
}

/* ---- UTF-8 and windows-1252 -------------------------------------------- */

void append_utf8(std::string &out, uint32_t cp)
{
	if (cp < 0x80) {
		out += static_cast<char>(cp);
	} else if (cp < 0x800) {
		out += static_cast<char>(0xc0 | cp >> 6);
		out += static_cast<char>(0x80 | (cp & 0x3f));
	} else {
		out += static_cast<char>(0xe0 | cp >> 12);
		out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
		out += static_cast<char>(0x80 | (cp & 0x3f));
	}
}

/* 0x80-0x9f of windows-1252; the five undefined bytes map to their C1 code points. */
constexpr std::array<uint16_t, 32> kCp1252 = {
	0x20ac, 0x0081, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021,
	0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008d, 0x017d, 0x008f,
	0x0090, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014,
	0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0x009d, 0x017e, 0x0178,
};

void cp1252_append(std::string_view in, std::string &out)
{
	out.reserve(out.size() + in.size() + in.size() / 2);
	for (unsigned char c : in) {
		if (c < 0x80)
			out += static_cast<char>(c);
		else if (c < 0xa0)
			append_utf8(out, kCp1252[c - 0x80]);
		else
			append_utf8(out, c);
	}
}

/* Valid UTF-8 copied; each byte that starts no valid sequence becomes U+FFFD. */
void utf8_repair_append(std::string_view in, std::string &out)
{
	if (utf8_valid(in)) {
		out.append(in);
		return;
	}
	const unsigned char *p = reinterpret_cast<const unsigned char *>(in.data());
	const unsigned char *end = p + in.size();
	out.reserve(out.size() + in.size() + 16);
	while (p < end) {
		size_t n = utf8_seq(p, end);
		if (n == 0) {
			out += kReplacement;
			p++;
		} else {
			out.append(reinterpret_cast<const char *>(p), n);
			p += n;
		}
	}
}

/* Undeclared 8-bit text: UTF-8 when it is valid UTF-8, else windows-1252. */
void guess_append(std::string_view in, std::string &out)
{
	if (utf8_valid(in))
		out.append(in);
	else
		cp1252_append(in, out);
}

/* ---- iconv --------------------------------------------------------------- */

struct IconvCache {
	struct Entry {
		std::string name;
		iconv_t cd;
	};
	std::vector<Entry> entries;
	~IconvCache()
	{
		for (auto &e : entries)
			iconv_close(e.cd);
	}
};

IconvCache &iconv_cache()
{
	static IconvCache cache; /* smtpd is single-threaded */
	return cache;
}

bool valid_charset_name(std::string_view n)
{
	if (n.empty() || n.size() > kMaxCharsetName)
		return false;
	for (unsigned char c : n)
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("-_.:+()", c)))
			return false;
	return true;
}

/* A cached descriptor for UTF-8 <- name, or (iconv_t)-1. `owned` when the caller must close it. */
iconv_t iconv_get(const std::string &name, bool &owned)
{
	owned = false;
	IconvCache &cache = iconv_cache();
	for (auto &e : cache.entries)
		if (e.name == name)
			return e.cd;
	iconv_t cd = iconv_open("UTF-8", name.c_str());
	if (cd == reinterpret_cast<iconv_t>(-1))
		return cd;
	if (cache.entries.size() < kIconvCacheMax)
		cache.entries.push_back({name, cd});
	else
		owned = true;
	return cd;
}

void iconv_convert(iconv_t cd, std::string_view in, std::string &out)
{
	iconv(cd, nullptr, nullptr, nullptr, nullptr); /* initial shift state */
	out.reserve(in.size() + in.size() / 2 + 16);
	char *ip = const_cast<char *>(in.data());
	size_t il = in.size();
	char buf[16384];
	while (il > 0) {
		char *op = buf;
		size_t ol = sizeof(buf);
		size_t r = iconv(cd, &ip, &il, &op, &ol);
		out.append(buf, static_cast<size_t>(op - buf));
		if (r != static_cast<size_t>(-1) || errno == E2BIG)
			continue;
		out += kReplacement;
		if (errno != EILSEQ) /* EINVAL: an incomplete sequence at the end */
			break;
		ip++;
		il--;
	}
	char *op = buf;
	size_t ol = sizeof(buf);
	iconv(cd, nullptr, nullptr, &op, &ol); /* back to the initial state */
	out.append(buf, static_cast<size_t>(op - buf));
}

enum class Charset { ascii, utf8, cp1252, other };

Charset classify_charset(std::string_view lc)
{
	if (lc.empty() || lc == "us-ascii" || lc == "ascii" || lc == "us" ||
	    lc == "ansi_x3.4-1968" || lc == "iso646-us")
		return Charset::ascii;
	if (lc == "utf-8" || lc == "utf8")
		return Charset::utf8;
	if (lc == "iso-8859-1" || lc == "iso8859-1" || lc == "iso_8859-1" || lc == "latin1" ||
	    lc == "latin-1" || lc == "l1" || lc == "windows-1252" || lc == "cp1252" ||
	    lc == "x-cp1252")
		return Charset::cp1252;
	return Charset::other;
}

/* Body text: an unknown charset is read as undeclared 8-bit text. */
void body_to_utf8(std::string_view charset, std::string_view in, std::string &out)
{
	if (!charset_to_utf8(charset, in, out)) {
		out.clear();
		guess_append(in, out);
	}
}

/* ---- base64 and quoted-printable ----------------------------------------- */

int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Makes `chunk` (alphabet characters only) canonical for base64_decode():
 * drops a dangling sixth of a quantum, pads, clears unused bits; appends the
 * bytes to `out`.
 */
void b64_flush(std::string &chunk, std::string &tmp, std::string &out)
{
	static constexpr char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t rem = chunk.size() % 4;
	if (rem == 1) {
		chunk.pop_back();
	} else if (rem == 2) {
		chunk.back() = alphabet[b64_value(chunk.back()) & 0x30];
		chunk += "==";
	} else if (rem == 3) {
		chunk.back() = alphabet[b64_value(chunk.back()) & 0x3c];
		chunk += '=';
	}
	if (!chunk.empty() && base64_decode(chunk, tmp))
		out += tmp;
	chunk.clear();
}

/*
 * Lenient base64 of a body or an encoded-word: line breaks and other
 * characters outside the alphabet are skipped; padding ends a run, and
 * runs padded separately (concatenated encodings) are all decoded.
 */
std::string b64_lenient(std::string_view in)
{
	std::string out, chunk, tmp;
	out.reserve(in.size() / 4 * 3 + 3);
	chunk.reserve(in.size());
	for (char c : in) {
		if (b64_value(c) >= 0)
			chunk += c;
		else if (c == '=' && chunk.size() % 4 != 0)
			b64_flush(chunk, tmp, out);
	}
	b64_flush(chunk, tmp, out);
	return out;
}

/* The Q encoding of RFC 2047 4.2: '_' is a space, =XX a byte. */
std::string q_decode(std::string_view in)
{
	std::string out;
	out.reserve(in.size());
	for (size_t i = 0; i < in.size(); i++) {
		char c = in[i];
		if (c == '_') {
			out += ' ';
		} else if (c == '=' && i + 2 < in.size() && hexval(in[i + 1]) >= 0 &&
			   hexval(in[i + 2]) >= 0) {
			out += static_cast<char>(hexval(in[i + 1]) << 4 | hexval(in[i + 2]));
			i += 2;
		} else {
			out += c;
		}
	}
	return out;
}

} // namespace

std::string qp_decode(std::string_view in)
{
	std::string out;
	out.reserve(in.size());
	size_t blanks = std::string::npos; /* where literal trailing blanks began in out */
	size_t n = in.size();
	for (size_t i = 0; i < n; i++) {
		char c = in[i];
		if (c == '=') {
			if (i + 2 < n && hexval(in[i + 1]) >= 0 && hexval(in[i + 2]) >= 0) {
				out += static_cast<char>(hexval(in[i + 1]) << 4 | hexval(in[i + 2]));
				i += 2;
				blanks = std::string::npos;
				continue;
			}
			/* soft break: '=', optional transport padding, then CRLF, LF or the end */
			size_t j = i + 1;
			while (j < n && is_wsp(in[j]))
				j++;
			if (j == n) {
				i = j;
				continue;
			}
			if (in[j] == '\n' || (in[j] == '\r' && j + 1 < n && in[j + 1] == '\n')) {
				i = in[j] == '\r' ? j + 1 : j;
				continue;
			}
			out += '=';
			blanks = std::string::npos;
		} else if (c == '\n' || (c == '\r' && i + 1 < n && in[i + 1] == '\n')) {
			if (blanks != std::string::npos)
				out.resize(blanks);
			blanks = std::string::npos;
			if (c == '\r') {
				out += "\r\n";
				i++;
			} else {
				out += '\n';
			}
		} else if (is_wsp(c)) {
			if (blanks == std::string::npos)
				blanks = out.size();
			out += c;
		} else {
			out += c;
			blanks = std::string::npos;
		}
	}
	if (blanks != std::string::npos)
		out.resize(blanks);
	return out;
}

bool charset_to_utf8(std::string_view charset, std::string_view in, std::string &out)
{
	out.clear();
	std::string lc = ascii_lowered(trim_space(charset));
	if (lc.size() >= 2 && lc.front() == '"' && lc.back() == '"')
		lc = lc.substr(1, lc.size() - 2);
	switch (classify_charset(lc)) {
	case Charset::ascii:
		guess_append(in, out);
		return true;
	case Charset::utf8:
		utf8_repair_append(in, out);
		return true;
	case Charset::cp1252:
		cp1252_append(in, out);
		return true;
	case Charset::other:
		break;
	}
	if (!valid_charset_name(lc))
		return false;
	bool owned;
	iconv_t cd = iconv_get(lc, owned);
	if (cd == reinterpret_cast<iconv_t>(-1))
		return false;
	iconv_convert(cd, in, out);
	if (owned)
		iconv_close(cd);
	return true;
}

void charset_preload()
{
	static constexpr const char *common[] = {
		"iso-8859-2", "iso-8859-3", "iso-8859-4", "iso-8859-5", "iso-8859-6",
		"iso-8859-7", "iso-8859-8", "iso-8859-9", "iso-8859-10", "iso-8859-13",
		"iso-8859-14", "iso-8859-15", "iso-8859-16", "windows-1250", "windows-1251",
		"windows-1253", "windows-1254", "windows-1255", "windows-1256", "windows-1257",
		"windows-1258", "koi8-r", "koi8-u", "shift_jis", "euc-jp", "iso-2022-jp",
		"gb2312", "gbk", "gb18030", "big5", "euc-kr", "utf-16", "utf-16le", "utf-16be",
		"utf-7", "tis-620",
	};
	for (const char *name : common) {
		bool owned;
		iconv_t cd = iconv_get(name, owned);
		if (cd != reinterpret_cast<iconv_t>(-1) && owned)
			iconv_close(cd);
	}
}

/* ---- RFC 2047 ------------------------------------------------------------ */

namespace {

struct EncodedWord {
	std::string_view charset; /* without an RFC 2231 language suffix */
	std::string bytes;
	size_t end = 0; /* just past "?=" */
};

/* "=?charset?e?text?=" at `w`; false if malformed. Scans no further than the word. */
bool parse_encoded_word(std::string_view s, size_t w, EncodedWord &ew)
{
	size_t p = w + 2, n = s.size();
	size_t cs = p;
	while (p < n && s[p] != '?' && p - cs <= kMaxCharsetName && !is_wsp(s[p]) &&
	    s[p] != '\r' && s[p] != '\n')
		p++;
	if (p >= n || s[p] != '?' || p == cs || p - cs > kMaxCharsetName)
		return false;
	std::string_view charset = s.substr(cs, p - cs);
	if (size_t star = charset.find('*'); star != std::string_view::npos)
		charset = charset.substr(0, star);
	if (charset.empty() || p + 2 >= n || s[p + 2] != '?')
		return false;
	char enc = ascii_lower(s[p + 1]);
	if (enc != 'b' && enc != 'q')
		return false;
	size_t ts = p + 3;
	size_t te = ts;
	while (te < n && s[te] != '?') {
		if (is_wsp(s[te]) || s[te] == '\r' || s[te] == '\n')
			return false;
		te++;
	}
	if (te + 1 >= n || s[te + 1] != '=')
		return false;
	std::string_view text = s.substr(ts, te - ts);
	ew.charset = charset;
	ew.bytes = enc == 'b' ? b64_lenient(text) : q_decode(text);
	ew.end = te + 2;
	return true;
}

} // namespace

std::string rfc2047_decode(std::string_view in)
{
	std::string out;
	out.reserve(in.size());
	bool raw_utf8 = utf8_valid(in); /* raw 8-bit text: UTF-8 if valid, else windows-1252 */

	/* consecutive words in one charset, decoded together */
	struct Run {
		bool active = false;
		std::string_view charset;
		std::string bytes;
		size_t raw_begin = 0, raw_end = 0;
	} run;
	std::string conv;

	auto append_raw = [&](std::string_view text) {
		if (raw_utf8)
			out.append(text);
		else
			cp1252_append(text, out);
	};
	auto flush_run = [&] {
		if (!run.active)
			return;
		if (charset_to_utf8(run.charset, run.bytes, conv))
			out += conv;
		else /* unknown charset: the words as they came */
			append_raw(in.substr(run.raw_begin, run.raw_end - run.raw_begin));
		run.active = false;
		run.bytes.clear();
	};
	auto emit_raw = [&](std::string_view text) {
		if (text.empty())
			return;
		flush_run();
		append_raw(text);
	};

	size_t i = 0;
	size_t pending_begin = 0; /* text since the last word, not yet emitted */
	while (i < in.size()) {
		size_t w = in.find("=?", i);
		if (w == std::string_view::npos)
			break;
		EncodedWord ew;
		if (!parse_encoded_word(in, w, ew)) {
			i = w + 2; /* "=?" stays literal text */
			continue;
		}
		std::string_view between = in.substr(pending_begin, w - pending_begin);
		if (!(run.active && all_wsp(between)))
			emit_raw(between);
		if (run.active && iequals(run.charset, ew.charset)) {
			run.bytes += ew.bytes;
		} else {
			flush_run();
			run.active = true;
			run.charset = ew.charset;
			run.bytes = std::move(ew.bytes);
			run.raw_begin = w;
		}
		run.raw_end = ew.end;
		i = pending_begin = ew.end;
	}
	emit_raw(in.substr(pending_begin));
	flush_run();
	return out;
}

namespace {

/* ---- header sections ----------------------------------------------------- */

struct Field {
	std::string_view name;
	std::string value; /* unfolded (CRLF removed, the folding blanks kept), trimmed */
};

/*
 * Splits `entity` into its header fields and its body. The header section
 * ends at the first empty line, or at the end of the data.
 */
bool parse_header_section(std::string_view entity, const MimeLimits &lim, std::vector<Field> &fields,
    std::string_view &body, std::string &why)
{
	fields.clear();
	size_t pos = 0, lines = 0, n = entity.size();
	body = {};
	while (pos < n) {
		const char *nl = static_cast<const char *>(memchr(entity.data() + pos, '\n', n - pos));
		size_t eol = nl ? static_cast<size_t>(nl - entity.data()) : n;
		size_t next = nl ? eol + 1 : n;
		if (eol > lim.max_header_bytes)
			return fail(why, "header section too large");
		if (++lines > lim.max_header_lines)
			return fail(why, "too many header lines");
		std::string_view line = entity.substr(pos, eol - pos);
		if (!line.empty() && line.back() == '\r')
			line.remove_suffix(1);
		pos = next;
		if (line.empty()) {
			body = entity.substr(pos);
			break;
		}
		if (is_wsp(line.front())) {
			if (fields.empty())
				return fail(why, "malformed header line");
			fields.back().value += line;
			continue;
		}
		size_t colon = line.find(':');
		if (colon == std::string_view::npos)
			return fail(why, "malformed header line");
		std::string_view name = line.substr(0, colon);
		while (!name.empty() && is_wsp(name.back()))
			name.remove_suffix(1);
		if (name.empty())
			return fail(why, "malformed header line");
		for (unsigned char c : name)
			if (c < 33 || c > 126)
				return fail(why, "malformed header line");
		fields.push_back({name, std::string(line.substr(colon + 1))});
	}
	for (Field &f : fields) {
		std::string_view t = trim_space(f.value);
		if (t.size() != f.value.size())
			f.value = std::string(t);
	}
	return true;
}

const Field *find_field(const std::vector<Field> &fields, std::string_view name)
{
	for (const Field &f : fields)
		if (iequals(f.name, name))
			return &f;
	return nullptr;
}

size_t count_field(const std::vector<Field> &fields, std::string_view name)
{
	size_t n = 0;
	for (const Field &f : fields)
		n += iequals(f.name, name);
	return n;
}

/* ---- structured values: Content-Type, Content-Disposition ------------------ */

/* Skips blanks and (nested) comments. */
void skip_cfws(std::string_view s, size_t &i)
{
	while (i < s.size()) {
		if (is_wsp(s[i]) || s[i] == '\r' || s[i] == '\n') {
			i++;
		} else if (s[i] == '(') {
			size_t depth = 0;
			for (; i < s.size(); i++) {
				if (s[i] == '\\') {
					i++;
				} else if (s[i] == '(') {
					depth++;
				} else if (s[i] == ')' && --depth == 0) {
					i++;
					break;
				}
			}
		} else {
			break;
		}
	}
}

/* A quoted-string at s[i] == '"', unescaped; an unterminated one runs to the end. */
std::string read_quoted(std::string_view s, size_t &i)
{
	std::string v;
	for (i++; i < s.size() && s[i] != '"'; i++) {
		if (s[i] == '\\' && i + 1 < s.size())
			i++;
		v += s[i];
	}
	if (i < s.size())
		i++;
	return v;
}

struct HeaderParams {
	std::string value; /* the part before the first ';', lower-case, comments removed */
	std::vector<std::pair<std::string, std::string>> params; /* lower-case name, UTF-8 value */

	const std::string *get(std::string_view name) const
	{
		for (const auto &[k, v] : params)
			if (k == name)
				return &v;
		return nullptr;
	}
};

/* RFC 2231: %XX escapes of an extended value. */
std::string pct_decode(std::string_view s)
{
	std::string out;
	out.reserve(s.size());
	for (size_t i = 0; i < s.size(); i++) {
		if (s[i] == '%' && i + 2 < s.size() && hexval(s[i + 1]) >= 0 &&
		    hexval(s[i + 2]) >= 0) {
			out += static_cast<char>(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
			i += 2;
		} else {
			out += s[i];
		}
	}
	return out;
}

struct RawParam {
	std::string base;  /* name without any RFC 2231 suffix */
	int section = -1;  /* -1: no "*N" */
	bool extended = false;
	std::string value;
};

/*
 * "value; a=b; c="d"; e*=utf-8''%C3%A9; f*0=..; f*1*=.." with the RFC 2231
 * forms assembled and decoded. Lenient: an unquoted value runs to the next ';'.
 */
HeaderParams parse_params(std::string_view s)
{
	HeaderParams hp;
	size_t i = 0;
	skip_cfws(s, i);
	while (i < s.size() && s[i] != ';') {
		if (s[i] == '(') {
			skip_cfws(s, i);
			continue;
		}
		if (!is_wsp(s[i]))
			hp.value += ascii_lower(s[i]);
		i++;
	}

	std::vector<RawParam> raw;
	while (i < s.size() && raw.size() < kMaxParams) {
		i++; /* ';' */
		skip_cfws(s, i);
		size_t ns = i;
		while (i < s.size() && s[i] != '=' && s[i] != ';' && !is_wsp(s[i]) && s[i] != '(')
			i++;
		std::string name = ascii_lowered(s.substr(ns, i - ns));
		skip_cfws(s, i);
		if (i >= s.size() || s[i] != '=') {
			while (i < s.size() && s[i] != ';')
				i++;
			continue;
		}
		i++;
		skip_cfws(s, i);
		std::string value;
		if (i < s.size() && s[i] == '"') {
			value = read_quoted(s, i);
			while (i < s.size() && s[i] != ';')
				i++;
		} else {
			size_t vs = i;
			while (i < s.size() && s[i] != ';')
				i++;
			value = std::string(trim_space(s.substr(vs, i - vs)));
		}
		if (name.empty())
			continue;
		RawParam p;
		p.value = std::move(value);
		size_t star = name.find('*');
		if (star == std::string::npos) {
			p.base = name;
		} else {
			p.base = name.substr(0, star);
			std::string_view rest = std::string_view(name).substr(star + 1);
			if (!rest.empty() && rest.back() == '*') {
				p.extended = true;
				rest.remove_suffix(1);
			} else if (rest.empty()) {
				p.extended = true;
			}
			if (!rest.empty()) {
				if (rest.size() > 2 || rest.find_first_not_of("0123456789") != std::string::npos)
					continue;
				p.section = (rest[0] - '0') * (rest.size() == 2 ? 10 : 1) +
				    (rest.size() == 2 ? rest[1] - '0' : 0);
				if (static_cast<size_t>(p.section) >= kMaxContinuations)
					continue;
			}
		}
		if (!p.base.empty())
			raw.push_back(std::move(p));
	}

	/* Assemble: an RFC 2231 form wins over a plain one; the first plain one wins. */
	for (const RawParam &p : raw) {
		if (hp.get(p.base) != nullptr)
			continue;
		bool rfc2231 = false;
		for (const RawParam &q : raw)
			if (q.base == p.base && (q.section >= 0 || q.extended))
				rfc2231 = true;
		if (!rfc2231) {
			hp.params.emplace_back(p.base, p.value);
			continue;
		}
		std::array<const RawParam *, kMaxContinuations> seg{};
		const RawParam *single = nullptr;
		for (const RawParam &q : raw) {
			if (q.base != p.base)
				continue;
			if (q.section >= 0 && seg[static_cast<size_t>(q.section)] == nullptr)
				seg[static_cast<size_t>(q.section)] = &q;
			else if (q.section < 0 && q.extended && single == nullptr)
				single = &q;
		}
		if (single == nullptr && seg[0] == nullptr) { /* continuations without a start */
			hp.params.emplace_back(p.base, p.value);
			continue;
		}
		std::string charset, bytes;
		auto add = [&](const RawParam &q, bool first) {
			std::string_view v = q.value;
			if (q.extended && first) {
				size_t q1 = v.find('\'');
				size_t q2 = q1 == std::string_view::npos ? q1 : v.find('\'', q1 + 1);
				if (q2 != std::string_view::npos) {
					charset.assign(v.substr(0, q1));
					v.remove_prefix(q2 + 1);
				}
			}
			bytes += q.extended ? pct_decode(v) : std::string(v);
		};
		if (single != nullptr) {
			add(*single, true);
		} else {
			for (size_t k = 0; k < seg.size() && seg[k] != nullptr; k++)
				add(*seg[k], k == 0);
		}
		std::string utf8;
		if (charset.empty() || !charset_to_utf8(charset, bytes, utf8)) {
			utf8.clear();
			guess_append(bytes, utf8);
		}
		hp.params.emplace_back(p.base, std::move(utf8));
	}
	return hp;
}

/* ---- mailboxes (From, Reply-To) ------------------------------------------ */

/*
 * Cuts an address-list value at top-level commas, removing comments (the
 * text of the first comment of each mailbox is kept as a fallback display
 * name, for the old "addr (Name)" form). Quoted strings are kept raw.
 */
struct RawMailbox {
	std::string text;
	std::string comment;
};

bool split_mailboxes(std::string_view v, std::vector<RawMailbox> &out)
{
	out.assign(1, {});
	bool angle = false;
	for (size_t i = 0; i < v.size(); i++) {
		char c = v[i];
		if (c == '"') {
			size_t start = i;
			for (i++; i < v.size() && v[i] != '"'; i++)
				if (v[i] == '\\')
					i++;
			if (i >= v.size())
				return false;
			out.back().text.append(v.substr(start, i - start + 1));
		} else if (c == '(') {
			size_t depth = 0, start = i;
			for (; i < v.size(); i++) {
				if (v[i] == '\\')
					i++;
				else if (v[i] == '(')
					depth++;
				else if (v[i] == ')' && --depth == 0)
					break;
			}
			if (i >= v.size())
				return false;
			if (out.back().comment.empty())
				out.back().comment.assign(v.substr(start + 1, i - start - 1));
			out.back().text += ' ';
		} else if (c == '<') {
			if (angle)
				return false;
			angle = true;
			out.back().text += c;
		} else if (c == '>') {
			if (!angle)
				return false;
			angle = false;
			out.back().text += c;
		} else if (c == ',' && !angle) {
			out.emplace_back();
		} else {
			out.back().text += c;
		}
	}
	if (angle)
		return false;
	std::vector<RawMailbox> kept;
	for (auto &m : out)
		if (!trim_space(m.text).empty())
			kept.push_back(std::move(m));
	out = std::move(kept);
	return true;
}

/* A display-name phrase: quoted strings unquoted, blanks collapsed, RFC 2047 decoded. */
std::string decode_phrase(std::string_view p)
{
	std::string flat;
	bool space = false;
	for (size_t i = 0; i < p.size(); i++) {
		if (is_wsp(p[i])) {
			space = !flat.empty();
			continue;
		}
		if (space)
			flat += ' ';
		space = false;
		if (p[i] == '"') {
			flat += read_quoted(p, i);
			i--; /* read_quoted stopped after the closing quote */
		} else {
			flat += p[i];
		}
	}
	return rfc2047_decode(flat);
}

bool plain_phrase(std::string_view p)
{
	if (p.empty() || p.front() == ' ' || p.back() == ' ')
		return false;
	for (unsigned char c : p)
		if (c < 0x80 && !is_atext(c) && c != '.' && c != ' ')
			return false;
	return true;
}

/*
 * One mailbox to the canonical "Name <addr>" / "addr" form that
 * parse_mailbox() accepts. Returns false with `why` on a decoded CR/LF/NUL
 * or when the result is not a valid mailbox.
 */
bool canonical_mailbox(const RawMailbox &m, std::string_view field, std::string &out,
    std::string &why)
{
	std::string_view t = trim_space(m.text);
	std::string name, addr;
	size_t lt = std::string_view::npos;
	/* a '<' inside a quoted display name is not the angle: find the real one */
	for (size_t i = 0; i < t.size(); i++) {
		if (t[i] == '"') {
			for (i++; i < t.size() && t[i] != '"'; i++)
				if (t[i] == '\\')
					i++;
		} else if (t[i] == '<') {
			lt = i;
			break;
		}
	}
	if (lt != std::string_view::npos && t.back() == '>') {
		name = decode_phrase(t.substr(0, lt));
		std::string_view a = trim_space(t.substr(lt + 1, t.size() - lt - 2));
		if (!a.empty() && a.front() == '@') { /* obsolete route "@a,@b:addr" */
			size_t colon = a.find(':');
			if (colon != std::string_view::npos)
				a = trim_space(a.substr(colon + 1));
		}
		addr.assign(a);
	} else if (lt != std::string_view::npos) {
		return fail(why, std::string("invalid ") + std::string(field) + " header");
	} else {
		addr.assign(t);
		name = decode_phrase(m.comment);
	}
	if (!header_safe(name))
		return fail(why, std::string(field) + " header contains CR, LF or NUL");
	std::string flat; /* blanks collapsed: unfolding may have left runs of them */
	for (char c : name) {
		bool blank = is_wsp(c);
		if (blank && (flat.empty() || flat.back() == ' '))
			continue;
		flat += blank ? ' ' : c;
	}
	if (!flat.empty() && flat.back() == ' ')
		flat.pop_back();
	name = std::move(flat);
	if (name.empty()) {
		out = addr;
	} else if (plain_phrase(name)) {
		out = name + " <" + addr + ">";
	} else {
		out = "\"";
		for (char c : name) {
			if (c == '"' || c == '\\')
				out += '\\';
			out += c;
		}
		out += "\" <" + addr + ">";
	}
	std::string dn, spec;
	if (!parse_mailbox(out, dn, spec))
		return fail(why, std::string("invalid ") + std::string(field) + " header");
	return true;
}

/* ---- the walk ------------------------------------------------------------- */

struct ForwardName {
	const char *lower;
	const char *canonical;
};

constexpr ForwardName kForward[] = {
	{"in-reply-to", "In-Reply-To"},
	{"references", "References"},
	{"list-id", "List-Id"},
	{"list-unsubscribe", "List-Unsubscribe"},
	{"list-unsubscribe-post", "List-Unsubscribe-Post"},
	{"auto-submitted", "Auto-Submitted"},
	{"x-entity-ref-id", "X-Entity-Ref-ID"},
};

class Walker {
public:
	Walker(const MimeLimits &lim, ParsedMail &out, std::string &why)
	    : lim_(lim), out_(out), why_(why)
	{
	}

	bool top(const std::vector<Field> &fields, std::string_view body)
	{
		parts_ = 1;
		return entity(fields, body, 0, false);
	}

private:
	const MimeLimits &lim_;
	ParsedMail &out_;
	std::string &why_;
	size_t parts_ = 0;
	bool have_text_ = false, have_html_ = false;

	bool part(std::string_view data, size_t depth, bool in_digest)
	{
		if (++parts_ > lim_.max_parts)
			return fail(why_, "more than " + std::to_string(lim_.max_parts) + " MIME parts");
		std::vector<Field> fields;
		std::string_view body;
		if (!parse_header_section(data, lim_, fields, body, why_))
			return false;
		return entity(fields, body, depth, in_digest);
	}

	bool entity(const std::vector<Field> &fields, std::string_view body, size_t depth,
	    bool in_digest)
	{
		std::string type = in_digest ? "message" : "text";
		std::string subtype = in_digest ? "rfc822" : "plain";
		HeaderParams ct;
		if (const Field *f = find_field(fields, "content-type")) {
			ct = parse_params(f->value);
			size_t slash = ct.value.find('/');
			if (slash != std::string::npos && is_token(ct.value.substr(0, slash)) &&
			    is_token(ct.value.substr(slash + 1))) {
				type = ct.value.substr(0, slash);
				subtype = ct.value.substr(slash + 1);
			} else { /* RFC 2045 5.2: an invalid Content-Type means the default */
				ct.params.clear();
				type = "text";
				subtype = "plain";
			}
		}
		if (type == "multipart")
			return multipart(ct, subtype, body, depth);
		return leaf(fields, ct, type, subtype, body);
	}

	bool multipart(const HeaderParams &ct, const std::string &subtype, std::string_view body,
	    size_t depth)
	{
		if (depth >= lim_.max_depth)
			return fail(why_, "MIME nesting deeper than " + std::to_string(lim_.max_depth) +
				" levels");
		const std::string *b = ct.get("boundary");
		if (b == nullptr || b->empty() || b->size() > kMaxBoundary)
			return fail(why_, "multipart without a valid boundary");
		std::string dash = "--" + *b;
		bool digest = subtype == "digest";

		size_t pos = 0, n = body.size();
		size_t start = std::string_view::npos; /* of the current part */
		while (pos < n) {
			const char *nl = static_cast<const char *>(memchr(body.data() + pos, '\n', n - pos));
			size_t eol = nl ? static_cast<size_t>(nl - body.data()) : n;
			size_t next = nl ? eol + 1 : n;
			std::string_view line = body.substr(pos, eol - pos);
			if (line.size() >= dash.size() && line.compare(0, dash.size(), dash) == 0) {
				std::string_view rest = line.substr(dash.size());
				bool close = rest.size() >= 2 && rest[0] == '-' && rest[1] == '-';
				if (close)
					rest.remove_prefix(2);
				if (!rest.empty() && rest.back() == '\r')
					rest.remove_suffix(1);
				if (all_wsp(rest)) {
					if (start != std::string_view::npos) {
						/* the CRLF before a delimiter belongs to it */
						size_t end = pos;
						if (end > start && body[end - 1] == '\n')
							end--;
						if (end > start && body[end - 1] == '\r')
							end--;
						if (!part(body.substr(start, end - start), depth + 1, digest))
							return false;
					}
					if (close)
						return true; /* the epilogue is ignored */
					start = next;
				}
			}
			pos = next;
		}
		/* no closing delimiter: the last part runs to the end */
		if (start != std::string_view::npos && start <= n)
			return part(body.substr(start), depth + 1, digest);
		return true;
	}

	bool leaf(const std::vector<Field> &fields, const HeaderParams &ct, const std::string &type,
	    const std::string &subtype, std::string_view body)
	{
		std::string cte;
		if (const Field *f = find_field(fields, "content-transfer-encoding"))
			cte = parse_params(f->value).value;
		HeaderParams disp;
		if (const Field *f = find_field(fields, "content-disposition"))
			disp = parse_params(f->value);

		std::string data;
		bool known_cte = true;
		if (cte == "base64")
			data = b64_lenient(body);
		else if (cte == "quoted-printable")
			data = qp_decode(body);
		else if (cte.empty() || cte == "7bit" || cte == "8bit" || cte == "binary")
			data.assign(body);
		else
			known_cte = false; /* RFC 2045 6.4: opaque application/octet-stream */
		if (!known_cte)
			data.assign(body);

		bool is_attachment = disp.value == "attachment";
		if (known_cte && !is_attachment && type == "text" &&
		    (subtype == "plain" || subtype == "html")) {
			bool html = subtype == "html";
			bool &have = html ? have_html_ : have_text_;
			if (!have) {
				have = true;
				std::string &dst = html ? out_.html_body : out_.text_body;
				const std::string *cs = ct.get("charset");
				body_to_utf8(cs ? *cs : std::string_view(), data, dst);
				if (memchr(dst.data(), '\0', dst.size()) != nullptr)
					return fail(why_, "NUL in text body");
				return true;
			}
		}

		Attachment a;
		if (!known_cte)
			a.content_type = "application/octet-stream";
		else
			a.content_type = type + "/" + subtype;
		const std::string *fn = disp.get("filename");
		if (fn == nullptr || trim_space(*fn).empty())
			fn = ct.get("name");
		std::string name = fn ? *fn : std::string();
		if (!filename(name))
			return false;
		if (name.empty())
			name = "attachment-" + std::to_string(out_.attachments.size() + 1);
		a.filename = std::move(name);
		a.data = std::move(data);
		out_.attachments.push_back(std::move(a));
		return true;
	}

	/* Decoded, path stripped, controls replaced, bounded; empty when unusable. */
	bool filename(std::string &name)
	{
		if (name.find("=?") != std::string::npos)
			name = rfc2047_decode(name); /* not allowed there, but what clients send */
		else if (!utf8_valid(name)) {
			std::string u;
			cp1252_append(name, u);
			name = std::move(u);
		}
		if (!header_safe(name))
			return fail(why_, "attachment filename contains CR, LF or NUL");
		size_t sep = name.find_last_of("/\\");
		if (sep != std::string::npos)
			name.erase(0, sep + 1);
		for (char &c : name)
			if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
				c = '_';
		name = std::string(trim_space(name));
		if (name == "." || name == "..")
			name.clear();
		if (name.size() > kMaxFilename) {
			size_t dot = name.rfind('.');
			std::string ext;
			if (dot != std::string::npos && name.size() - dot <= 16)
				ext = name.substr(dot);
			name.resize(name.size() - ext.size());
			utf8_truncate(name, kMaxFilename - ext.size());
			name += ext;
		}
		return true;
	}
};

/* ---- top-level header fields ----------------------------------------------- */

bool header_from(const std::vector<Field> &fields, ParsedMail &out, std::string &why)
{
	size_t n = count_field(fields, "from");
	if (n == 0)
		return fail(why, "missing From header");
	if (n > 1)
		return fail(why, "more than one From header");
	std::vector<RawMailbox> boxes;
	if (!split_mailboxes(find_field(fields, "from")->value, boxes) || boxes.empty())
		return fail(why, "invalid From header");
	if (boxes.size() > 1)
		return fail(why, "From header has more than one mailbox");
	return canonical_mailbox(boxes[0], "From", out.from, why);
}

bool header_reply_to(const std::vector<Field> &fields, ParsedMail &out, std::string &why)
{
	size_t n = count_field(fields, "reply-to");
	if (n == 0)
		return true;
	if (n > 1)
		return fail(why, "more than one Reply-To header");
	std::vector<RawMailbox> boxes;
	if (!split_mailboxes(find_field(fields, "reply-to")->value, boxes))
		return fail(why, "invalid Reply-To header");
	if (boxes.empty())
		return true;
	/* the canonical message has one Reply-To mailbox: the first */
	return canonical_mailbox(boxes[0], "Reply-To", out.reply_to, why);
}

bool header_subject(const std::vector<Field> &fields, ParsedMail &out, std::string &why)
{
	size_t n = count_field(fields, "subject");
	if (n > 1)
		return fail(why, "more than one Subject header");
	if (n == 0)
		return true;
	out.subject = rfc2047_decode(find_field(fields, "subject")->value);
	if (!header_safe(out.subject))
		return fail(why, "Subject contains CR, LF or NUL");
	utf8_truncate(out.subject, MESSAGE_MAX_HEADER_VALUE);
	return true;
}

void header_message_id(const std::vector<Field> &fields, ParsedMail &out)
{
	const Field *f = find_field(fields, "message-id");
	if (f == nullptr)
		return;
	std::string_view v = f->value;
	size_t lt = v.find('<');
	size_t gt = lt == std::string_view::npos ? lt : v.find('>', lt);
	if (gt == std::string_view::npos || gt - lt < 2 || gt - lt + 1 > kMaxMessageId)
		return;
	std::string_view id = v.substr(lt, gt - lt + 1);
	for (unsigned char c : id.substr(1, id.size() - 2))
		if (c <= 0x20 || c >= 0x7f || c == '<')
			return;
	out.message_id.assign(id);
}

/*
 * The addr-specs of an address-list (RFC 5322 3.4), leniently: comments
 * dropped, quoted strings and domain literals kept whole, a group's display
 * name (up to ':') dropped and its ';' ending a member like ','; the
 * "<addr>" of a name-addr, without an obsolete route; a member that is no
 * valid addr-spec is skipped.
 */
void address_list(std::string_view v, std::vector<std::string> &out)
{
	std::string bare, angle;
	bool in_angle = false, has_angle = false;
	auto flush = [&] {
		std::string_view a = trim_space(has_angle ? angle : bare);
		if (has_angle && !a.empty() && a.front() == '@') { /* "@a,@b:addr" */
			size_t colon = a.find(':');
			a = colon == std::string_view::npos ? std::string_view() : trim_space(a.substr(colon + 1));
		}
		if (valid_addr_spec(a))
			out.emplace_back(a);
		bare.clear();
		angle.clear();
		in_angle = has_angle = false;
	};
	for (size_t i = 0; i < v.size(); i++) {
		char c = v[i];
		std::string &cur = in_angle ? angle : bare;
		if (c == '"' || c == '[') { /* quoted string, domain literal: copied whole */
			char close = c == '"' ? '"' : ']';
			size_t start = i;
			for (i++; i < v.size() && v[i] != close; i++)
				if (v[i] == '\\')
					i++;
			cur.append(v.substr(start, std::min(i, v.size() - 1) - start + 1));
		} else if (c == '(') {
			size_t depth = 0;
			for (; i < v.size(); i++) {
				if (v[i] == '\\')
					i++;
				else if (v[i] == '(')
					depth++;
				else if (v[i] == ')' && --depth == 0)
					break;
			}
			cur += ' ';
		} else if (in_angle) {
			if (c == '>')
				in_angle = false;
			else
				angle += c;
		} else if (c == '<') {
			if (!has_angle) /* a second "<...>" in one member is ignored */
				in_angle = has_angle = true;
		} else if (c == ',' || c == ';') {
			flush();
		} else if (c == ':') {
			bare.clear(); /* a group's display name */
		} else {
			bare += c;
		}
	}
	flush();
}

/* Every To (or Cc) field, in order: the message may hold more than one. */
void header_addresses(const std::vector<Field> &fields, std::string_view name,
    std::vector<std::string> &out)
{
	for (const Field &f : fields)
		if (iequals(f.name, name))
			address_list(f.value, out);
}

/* References keeps its most recent ids when the whole would be too long. */
void shorten_references(std::string &v)
{
	while (v.size() > MESSAGE_MAX_HEADER_VALUE) {
		size_t sp = v.find_first_of(" \t");
		if (sp == std::string::npos) {
			v.clear();
			return;
		}
		v = std::string(trim_space(std::string_view(v).substr(sp)));
	}
}

bool header_forward(const std::vector<Field> &fields, ParsedMail &out, std::string &why)
{
	for (const ForwardName &fw : kForward) {
		const Field *f = find_field(fields, fw.lower);
		if (f == nullptr)
			continue;
		std::string v;
		guess_append(f->value, v);
		if (!header_safe(v))
			return fail(why, std::string(fw.canonical) + " header contains CR, LF or NUL");
		if (std::string_view(fw.lower) == "references")
			shorten_references(v);
		if (v.empty() || v.size() > MESSAGE_MAX_HEADER_VALUE)
			continue; /* nothing useful, or too long to forward */
		out.forward_headers.emplace_back(fw.canonical, std::move(v));
	}
	return true;
}

} // namespace

bool mime_parse(std::string_view raw, const MimeLimits &limits, ParsedMail &out, std::string &why)
{
	out = ParsedMail{};
	why.clear();
	std::vector<Field> fields;
	std::string_view body;
	if (!parse_header_section(raw, limits, fields, body, why))
		return false;
	if (!header_from(fields, out, why) || !header_reply_to(fields, out, why) ||
	    !header_subject(fields, out, why) || !header_forward(fields, out, why))
		return false;
	header_message_id(fields, out);
	header_addresses(fields, "to", out.to);
	header_addresses(fields, "cc", out.cc);

	Walker walker(limits, out, why);
	if (!walker.top(fields, body))
		return false;
	/* a body of blank lines is no body either */
	if (trim_space(out.text_body).empty() && trim_space(out.html_body).empty())
		return fail(why, "no text or HTML body");
	return true;
}

} // namespace posthorn
