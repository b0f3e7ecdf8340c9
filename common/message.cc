/*
 * The canonical message: JSON codec (cJSON) and validation.
 *
 * message_from_json() reads untrusted bytes (a front's submission, a spool
 * file). It works in three steps, cheapest first:
 *   1. prescan: size bound, no NUL or raw control bytes, no "\u0000" escape
 *      (cJSON would silently cut the string there), a bound on nesting depth
 *      and element count (cJSON allocates a node per element);
 *   2. decode: cJSON parse, no trailing bytes, every key known and seen once,
 *      every value of the right type, base64 attachments decoded within the
 *      byte budget;
 *   3. message_validate(): the rules that hold for every message however it
 *      was built.
 * A `why` names the field and the problem and never quotes a value.
 */
#include "message.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <new>
#include <set>

#include "base64.h"
#include "log.h"
#include "text.h"

namespace posthorn {

namespace {

constexpr size_t kMaxLocalPart = 64;
constexpr size_t kMaxDomain = 255;
constexpr size_t kMaxLabel = 63;
constexpr size_t kMaxHeaderName = 128;
constexpr size_t kMaxFilename = 255;
constexpr size_t kMaxContentType = 255;
constexpr size_t kMaxSource = 256;
constexpr size_t kMaxTransport = 128;
constexpr size_t kMaxIdempotencyKey = 255;
/* 9999-12-31T23:59:59Z: far enough, and exact through cJSON's number printing. */
constexpr int64_t kMaxCreated = 253402300799;
/* A valid document has at most ~2600 elements and nests three deep. */
constexpr size_t kMaxJsonElements = 4096;
constexpr int kMaxJsonDepth = 3;

struct CjsonDeleter {
	void operator()(cJSON *j) const noexcept { cJSON_Delete(j); }
};
using CjsonPtr = std::unique_ptr<cJSON, CjsonDeleter>;

bool fail(std::string &why, std::string_view field, std::string_view problem)
{
	why.assign(field);
	why += ": ";
	why += problem;
	return false;
}

std::string indexed(std::string_view field, size_t i, std::string_view member = {})
{
	std::string s(field);
	s += '[';
	s += std::to_string(i);
	s += ']';
	if (!member.empty()) {
		s += '.';
		s += member;
	}
	return s;
}

/* ---- character classes ------------------------------------------------ */

bool is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* RFC 5322 atext (ASCII part). */
bool is_atext(unsigned char c)
{
	return is_alnum(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != nullptr);
}

bool is_lower_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* RFC 2045 token character: printable ASCII except tspecials. */
bool is_token_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == nullptr;
}

std::string_view trim_wsp(std::string_view s)
{
	while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
		s.remove_prefix(1);
	while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
		s.remove_suffix(1);
	return s;
}

/* ---- addresses -------------------------------------------------------- */

bool valid_local_part(std::string_view l)
{
	if (l.empty() || l.size() > kMaxLocalPart)
		return false;
	if (l.front() == '"') {
		/* quoted-string; the caller already refused controls and spaces */
		if (l.size() < 3 || l.back() != '"')
			return false;
		for (size_t i = 1; i + 1 < l.size(); i++) {
			if (l[i] == '"')
				return false;
			if (l[i] == '\\' && ++i + 1 >= l.size())
				return false; /* a quoted-pair needs its second character */
		}
		return true;
	}
	if (l.front() == '.' || l.back() == '.')
		return false;
	for (size_t i = 0; i < l.size(); i++) {
		unsigned char c = l[i];
		if (c == '.') {
			if (l[i + 1] == '.')
				return false;
		} else if (c < 0x80 && !is_atext(c)) {
			return false;
		}
	}
	return true;
}

bool valid_address_literal(std::string_view d)
{
	std::string inner(d.substr(1, d.size() - 2));
	unsigned char buf[16];
	if (strncasecmp(inner.c_str(), "IPv6:", 5) == 0)
		return inet_pton(AF_INET6, inner.c_str() + 5, buf) == 1;
	return inet_pton(AF_INET, inner.c_str(), buf) == 1;
}

bool valid_domain(std::string_view d)
{
	if (d.empty() || d.size() > kMaxDomain)
		return false;
	if (d.front() == '[')
		return d.size() > 2 && d.back() == ']' && valid_address_literal(d);
	size_t labels = 0;
	while (true) {
		size_t dot = d.find('.');
		std::string_view label = d.substr(0, dot);
		if (label.empty() || label.size() > kMaxLabel)
			return false;
		if (label.front() == '-' || label.back() == '-')
			return false;
		for (unsigned char c : label)
			if (c < 0x80 && !is_alnum(c) && c != '-')
				return false;
		labels++;
		if (dot == std::string_view::npos)
			break;
		d.remove_prefix(dot + 1);
	}
	return labels >= 2;
}

/* An unquoted display name: atoms, dots (obs-phrase) and blanks, or UTF-8. */
bool valid_phrase(std::string_view p)
{
	for (unsigned char c : p)
		if (c < 0x80 && !is_atext(c) && c != '.' && c != ' ' && c != '\t')
			return false;
	return true;
}

/* ---- header fields ---------------------------------------------------- */

/* Headers the gateway writes itself, or that would add recipients or alter structure. */
constexpr const char *kReservedHeaders[] = {
	"from", "to", "cc", "bcc", "subject", "reply-to", "sender", "date", "message-id",
	"mime-version", "content-type", "content-transfer-encoding", "return-path", "received",
};
/* Whole families: MIME structure (Content-*) and resent blocks (Resent-To, Resent-Bcc…). */
constexpr const char *kReservedPrefixes[] = { "content-", "resent-" };

bool valid_header_name(std::string_view n)
{
	if (n.empty() || n.size() > kMaxHeaderName)
		return false;
	for (unsigned char c : n)
		if (c < 33 || c > 126 || c == ':')
			return false;
	return true;
}

bool reserved_header(std::string_view n)
{
	for (const char *r : kReservedHeaders)
		if (n.size() == strlen(r) && strncasecmp(n.data(), r, n.size()) == 0)
			return true;
	for (const char *p : kReservedPrefixes)
		if (n.size() >= strlen(p) && strncasecmp(n.data(), p, strlen(p)) == 0)
			return true;
	return false;
}

bool valid_content_type(std::string_view ct)
{
	if (ct.empty() || ct.size() > kMaxContentType)
		return false;
	size_t slash = ct.find('/');
	if (slash == std::string_view::npos || slash == 0 || slash + 1 == ct.size())
		return false;
	for (size_t i = 0; i < ct.size(); i++)
		if (i != slash && !is_token_char(ct[i]))
			return false;
	return true;
}

/* ---- delivery mode, locally so this file links without config.cc ------ */

const char *delivery_name(Delivery d)
{
	return d == Delivery::sync ? "sync" : "queue";
}

bool delivery_parse(std::string_view s, Delivery &out)
{
	if (s == "queue")
		out = Delivery::queue;
	else if (s == "sync")
		out = Delivery::sync;
	else
		return false;
	return true;
}

/* ---- validation ------------------------------------------------------- */

/* Header-bound text: CR/LF/NUL first (the injection check), then size, then UTF-8. */
bool check_text(std::string_view field, std::string_view v, size_t max, std::string &why)
{
	if (!header_safe(v))
		return fail(why, field, "contains CR, LF or NUL");
	if (v.size() > max)
		return fail(why, field, "too long");
	if (!utf8_valid(v))
		return fail(why, field, "not valid UTF-8");
	return true;
}

bool check_address(std::string_view field, std::string_view v, std::string &why)
{
	if (!check_text(field, v, MESSAGE_MAX_ADDRESS, why))
		return false;
	if (!valid_addr_spec(v))
		return fail(why, field, "invalid address");
	return true;
}

bool check_mailbox(std::string_view field, std::string_view v, std::string &why)
{
	std::string name, addr;
	if (!check_text(field, v, MESSAGE_MAX_HEADER_VALUE, why))
		return false;
	if (!parse_mailbox(v, name, addr))
		return fail(why, field, "invalid mailbox");
	return true;
}

bool check_envelope(const Message &m, std::string &why)
{
	if (!header_safe(m.id))
		return fail(why, "id", "contains CR, LF or NUL");
	if (!valid_submission_id(m.id))
		return fail(why, "id", "not a submission id");
	if (!m.envelope_from.empty() && !check_address("envelope_from", m.envelope_from, why))
		return false;
	if (m.recipients.empty())
		return fail(why, "recipients", "none");
	if (m.recipients.size() > MESSAGE_MAX_RECIPIENTS)
		return fail(why, "recipients", "too many");
	for (size_t i = 0; i < m.recipients.size(); i++)
		if (!check_address(indexed("recipients", i), m.recipients[i], why))
			return false;
	return true;
}

/* to_visible and cc_visible: recipients, each named once in the two lists together. */
bool check_visible(const Message &m, std::string &why)
{
	std::set<std::string> rcpts, shown;
	for (const std::string &r : m.recipients)
		rcpts.insert(address_key(r));
	for (const auto &[name, list] : {std::pair{"to", &m.to_visible}, {"cc", &m.cc_visible}}) {
		if (list->size() > MESSAGE_MAX_RECIPIENTS)
			return fail(why, name, "too many");
		for (size_t i = 0; i < list->size(); i++) {
			std::string field = indexed(name, i);
			if (!check_address(field, (*list)[i], why))
				return false;
			std::string key = address_key((*list)[i]);
			if (rcpts.count(key) == 0)
				return fail(why, field, "not a recipient");
			if (!shown.insert(std::move(key)).second)
				return fail(why, field, "repeated");
		}
	}
	return true;
}

bool check_header_fields(const Message &m, std::string &why)
{
	if (m.from.empty())
		return fail(why, "from", "missing");
	if (!check_mailbox("from", m.from, why))
		return false;
	if (!m.reply_to.empty() && !check_mailbox("reply_to", m.reply_to, why))
		return false;
	return check_text("subject", m.subject, MESSAGE_MAX_HEADER_VALUE, why);
}

/* Bodies are not header-bound (CR and LF are fine) but are text: no NUL, UTF-8. */
bool check_body(std::string_view field, std::string_view v, std::string &why)
{
	if (v.size() > MESSAGE_MAX_BODY)
		return fail(why, field, "too large");
	if (memchr(v.data(), '\0', v.size()) != nullptr)
		return fail(why, field, "contains NUL");
	if (!utf8_valid(v))
		return fail(why, field, "not valid UTF-8");
	return true;
}

bool check_bodies(const Message &m, std::string &why)
{
	if (m.text_body.empty() && m.html_body.empty())
		return fail(why, "text_body", "no text or HTML body");
	return check_body("text_body", m.text_body, why) && check_body("html_body", m.html_body, why);
}

bool check_attachments(const Message &m, std::string &why)
{
	if (m.attachments.size() > MESSAGE_MAX_ATTACHMENTS)
		return fail(why, "attachments", "too many");
	size_t total = 0;
	for (size_t i = 0; i < m.attachments.size(); i++) {
		const Attachment &a = m.attachments[i];
		std::string fname = indexed("attachments", i, "filename");
		if (!check_text(fname, a.filename, kMaxFilename, why))
			return false;
		if (a.filename.empty())
			return fail(why, fname, "empty");
		for (unsigned char c : a.filename)
			if (c == '/' || c == '\\' || c < 0x20 || c == 0x7f)
				return fail(why, fname, "contains a path separator or control character");
		if (a.filename == "." || a.filename == "..")
			return fail(why, fname, "not a file name");
		std::string ctype = indexed("attachments", i, "content_type");
		if (!check_text(ctype, a.content_type, kMaxContentType, why))
			return false;
		if (!valid_content_type(a.content_type))
			return fail(why, ctype, "not type/subtype");
		total += a.data.size();
		if (total > MESSAGE_MAX_ATTACHMENT_BYTES)
			return fail(why, "attachments", "total size too large");
	}
	return true;
}

bool check_extra_headers(const Message &m, std::string &why)
{
	if (m.headers.size() > MESSAGE_MAX_EXTRA_HEADERS)
		return fail(why, "headers", "too many");
	for (size_t i = 0; i < m.headers.size(); i++) {
		const auto &[name, value] = m.headers[i];
		std::string nfield = indexed("headers", i, "name");
		if (!header_safe(name))
			return fail(why, nfield, "contains CR, LF or NUL");
		if (!valid_header_name(name))
			return fail(why, nfield, "not a header field name");
		if (reserved_header(name))
			return fail(why, nfield, "reserved header");
		if (!check_text(indexed("headers", i, "value"), value, MESSAGE_MAX_HEADER_VALUE, why))
			return false;
	}
	return true;
}

bool check_meta(const Message &m, std::string &why)
{
	if (!check_text("source", m.source, kMaxSource, why))
		return false;
	if (!check_text("transport", m.transport, kMaxTransport, why))
		return false;
	if (m.transport.empty())
		return fail(why, "transport", "missing");
	if (m.delivery != Delivery::queue && m.delivery != Delivery::sync)
		return fail(why, "delivery", "neither queue nor sync");
	if (!header_safe(m.idempotency_key))
		return fail(why, "idempotency_key", "contains CR, LF or NUL");
	if (m.idempotency_key.size() > kMaxIdempotencyKey)
		return fail(why, "idempotency_key", "too long");
	for (unsigned char c : m.idempotency_key)
		if (c < 0x20 || c > 0x7e)
			return fail(why, "idempotency_key", "not printable ASCII");
	if (m.created < 0 || m.created > kMaxCreated)
		return fail(why, "created", "out of range");
	return true;
}

/* An upper bound of a string's size in cJSON's output (quotes, escapes). */
size_t json_string_bound(std::string_view s)
{
	size_t n = 2 + s.size();
	for (unsigned char c : s)
		if (c < 0x20)
			n += 5;
		else if (c == '"' || c == '\\')
			n += 1;
	return n;
}

/* What message_to_json() writes must be readable by message_from_json(). */
bool check_document_size(const Message &m, std::string &why)
{
	constexpr size_t kPerField = 32; /* key, quotes, colon, comma */
	size_t n = 512;
	for (const std::string *s : { &m.id, &m.envelope_from, &m.from, &m.reply_to, &m.subject,
		 &m.text_body, &m.html_body, &m.source, &m.transport, &m.idempotency_key })
		n += json_string_bound(*s) + kPerField;
	for (const std::vector<std::string> *list : {&m.recipients, &m.to_visible, &m.cc_visible})
		for (const std::string &r : *list)
			n += json_string_bound(r) + 1;
	for (const Attachment &a : m.attachments)
		n += json_string_bound(a.filename) + json_string_bound(a.content_type) +
		    (a.data.size() + 2) / 3 * 4 + 3 * kPerField;
	for (const auto &[name, value] : m.headers)
		n += json_string_bound(name) + json_string_bound(value) + 4;
	if (n > MESSAGE_MAX_DOCUMENT)
		return fail(why, "message", "serialised document too large");
	return true;
}

/* ---- JSON reading ----------------------------------------------------- */

/*
 * Walk the raw bytes once before cJSON sees them: refuse NUL (raw or as
 * \u0000, which cJSON would decode into a silently truncated string), raw
 * control bytes inside strings (invalid JSON cJSON lets through), and bound
 * nesting and the number of elements so cJSON's allocations stay small.
 */
bool prescan(std::string_view doc, std::string &why)
{
	size_t elements = 0;
	int depth = 0;
	bool in_string = false;

	for (size_t i = 0; i < doc.size(); i++) {
		unsigned char c = doc[i];
		if (c == '\0')
			return fail(why, "document", "contains NUL");
		if (in_string) {
			if (c == '"') {
				in_string = false;
			} else if (c == '\\') {
				if (doc.substr(i + 1, 5) == "u0000")
					return fail(why, "document", "contains an escaped NUL");
				i++;
			} else if (c < 0x20) {
				return fail(why, "document", "control character in a string");
			}
			continue;
		}
		switch (c) {
		case '"':
			in_string = true;
			break;
		case '[':
		case '{':
			if (++depth > kMaxJsonDepth)
				return fail(why, "document", "nested too deeply");
			elements++;
			break;
		case ']':
		case '}':
			depth--;
			break;
		case ',':
			elements++;
			break;
		default:
			break;
		}
		if (elements > kMaxJsonElements)
			return fail(why, "document", "too many elements");
	}
	return true;
}

bool get_string(const cJSON *v, std::string_view field, std::string &out, std::string &why)
{
	if (!cJSON_IsString(v) || v->valuestring == nullptr)
		return fail(why, field, "not a string");
	out.assign(v->valuestring);
	return true;
}

/* A JSON number holding an exact integer in [0, max]. */
bool get_integer(const cJSON *v, std::string_view field, int64_t max, int64_t &out,
    std::string &why)
{
	if (!cJSON_IsNumber(v))
		return fail(why, field, "not a number");
	double d = v->valuedouble;
	if (!(d >= 0) || d > static_cast<double>(max) || std::floor(d) != d)
		return fail(why, field, "not an integer in range");
	out = static_cast<int64_t>(d);
	return true;
}

/* recipients, to, cc: arrays of strings. */
bool decode_address_list(const cJSON *v, const char *field, std::vector<std::string> &out,
    std::string &why)
{
	if (!cJSON_IsArray(v))
		return fail(why, field, "not an array");
	if (static_cast<size_t>(cJSON_GetArraySize(v)) > MESSAGE_MAX_RECIPIENTS)
		return fail(why, field, "too many");
	size_t i = 0;
	for (const cJSON *r = v->child; r != nullptr; r = r->next, i++)
		if (!get_string(r, indexed(field, i), out.emplace_back(), why))
			return false;
	return true;
}

bool decode_attachment(const cJSON *v, size_t i, Attachment &a, size_t &budget, std::string &why)
{
	std::string field = indexed("attachments", i);
	if (!cJSON_IsObject(v))
		return fail(why, field, "not an object");
	const cJSON *data = nullptr;
	bool have_name = false, have_type = false;
	for (const cJSON *k = v->child; k != nullptr; k = k->next) {
		std::string_view key = k->string ? k->string : "";
		if (key == "filename" && !have_name) {
			have_name = true;
			if (!get_string(k, indexed("attachments", i, "filename"), a.filename, why))
				return false;
		} else if (key == "content_type" && !have_type) {
			have_type = true;
			if (!get_string(k, indexed("attachments", i, "content_type"), a.content_type, why))
				return false;
		} else if (key == "data" && data == nullptr) {
			data = k;
		} else {
			return fail(why, field, "unknown or repeated field");
		}
	}
	if (!have_name || !have_type || data == nullptr)
		return fail(why, field, "needs filename, content_type and data");
	std::string dfield = indexed("attachments", i, "data");
	if (!cJSON_IsString(data) || data->valuestring == nullptr)
		return fail(why, dfield, "not a string");
	std::string_view b64(data->valuestring);
	size_t size = base64_decoded_size(b64);
	if (size > budget)
		return fail(why, "attachments", "total size too large");
	if (!base64_decode(b64, a.data))
		return fail(why, dfield, "not valid base64");
	budget -= size;
	return true;
}

bool decode_attachments(const cJSON *v, Message &m, std::string &why)
{
	if (!cJSON_IsArray(v))
		return fail(why, "attachments", "not an array");
	if (static_cast<size_t>(cJSON_GetArraySize(v)) > MESSAGE_MAX_ATTACHMENTS)
		return fail(why, "attachments", "too many");
	size_t budget = MESSAGE_MAX_ATTACHMENT_BYTES, i = 0;
	for (const cJSON *a = v->child; a != nullptr; a = a->next, i++)
		if (!decode_attachment(a, i, m.attachments.emplace_back(), budget, why))
			return false;
	return true;
}

bool decode_headers(const cJSON *v, Message &m, std::string &why)
{
	if (!cJSON_IsArray(v))
		return fail(why, "headers", "not an array");
	if (static_cast<size_t>(cJSON_GetArraySize(v)) > MESSAGE_MAX_EXTRA_HEADERS)
		return fail(why, "headers", "too many");
	size_t i = 0;
	for (const cJSON *h = v->child; h != nullptr; h = h->next, i++) {
		if (!cJSON_IsArray(h) || cJSON_GetArraySize(h) != 2)
			return fail(why, indexed("headers", i), "not a [name, value] pair");
		auto &[name, value] = m.headers.emplace_back();
		if (!get_string(h->child, indexed("headers", i, "name"), name, why) ||
		    !get_string(h->child->next, indexed("headers", i, "value"), value, why))
			return false;
	}
	return true;
}

enum class Key {
	version, id, envelope_from, recipients, to, cc, visibility_known, from, reply_to, subject,
	text_body, html_body, attachments, headers, source, transport, delivery, idempotency_key, created,
};

struct KeyInfo {
	const char *name;
	Key key;
	bool required;
	std::string Message::*text; /* plain string fields */
};

constexpr KeyInfo kKeys[] = {
	{ "version", Key::version, true, nullptr },
	{ "id", Key::id, true, &Message::id },
	{ "envelope_from", Key::envelope_from, false, &Message::envelope_from },
	{ "recipients", Key::recipients, true, nullptr },
	{ "to", Key::to, false, nullptr },
	{ "cc", Key::cc, false, nullptr },
	{ "visibility_known", Key::visibility_known, false, nullptr },
	{ "from", Key::from, true, &Message::from },
	{ "reply_to", Key::reply_to, false, &Message::reply_to },
	{ "subject", Key::subject, false, &Message::subject },
	{ "text_body", Key::text_body, false, &Message::text_body },
	{ "html_body", Key::html_body, false, &Message::html_body },
	{ "attachments", Key::attachments, false, nullptr },
	{ "headers", Key::headers, false, nullptr },
	{ "source", Key::source, false, &Message::source },
	{ "transport", Key::transport, true, &Message::transport },
	{ "delivery", Key::delivery, true, nullptr },
	{ "idempotency_key", Key::idempotency_key, false, &Message::idempotency_key },
	{ "created", Key::created, true, nullptr },
};
constexpr size_t kNumKeys = sizeof(kKeys) / sizeof(kKeys[0]);

bool decode_value(const KeyInfo &k, const cJSON *v, Message &m, std::string &why)
{
	if (k.text != nullptr)
		return get_string(v, k.name, m.*k.text, why);
	switch (k.key) {
	case Key::version: {
		int64_t version;
		if (!get_integer(v, "version", MESSAGE_SCHEMA_VERSION, version, why) ||
		    version != MESSAGE_SCHEMA_VERSION)
			return fail(why, "version", "unsupported");
		return true;
	}
	case Key::recipients:
		return decode_address_list(v, "recipients", m.recipients, why);
	case Key::to:
		return decode_address_list(v, "to", m.to_visible, why);
	case Key::cc:
		return decode_address_list(v, "cc", m.cc_visible, why);
	case Key::visibility_known:
		if (!cJSON_IsBool(v))
			return fail(why, "visibility_known", "not a boolean");
		m.visibility_known = cJSON_IsTrue(v);
		return true;
	case Key::attachments:
		return decode_attachments(v, m, why);
	case Key::headers:
		return decode_headers(v, m, why);
	case Key::delivery: {
		std::string s;
		if (!get_string(v, "delivery", s, why))
			return false;
		if (!delivery_parse(s, m.delivery))
			return fail(why, "delivery", "neither queue nor sync");
		return true;
	}
	case Key::created:
		return get_integer(v, "created", kMaxCreated, m.created, why);
	default:
		return fail(why, k.name, "internal: no decoder"); /* unreachable */
	}
}

bool decode_document(const cJSON *root, Message &m, std::string &why)
{
	bool seen[kNumKeys] = {};

	if (!cJSON_IsObject(root))
		return fail(why, "document", "not a JSON object");
	for (const cJSON *v = root->child; v != nullptr; v = v->next) {
		std::string_view name = v->string ? v->string : "";
		size_t i = 0;
		while (i < kNumKeys && name != kKeys[i].name)
			i++;
		if (i == kNumKeys)
			return fail(why, "document", "unknown field");
		if (seen[i])
			return fail(why, kKeys[i].name, "repeated");
		seen[i] = true;
		if (!decode_value(kKeys[i], v, m, why))
			return false;
	}
	for (size_t i = 0; i < kNumKeys; i++)
		if (kKeys[i].required && !seen[i])
			return fail(why, kKeys[i].name, "missing");
	return true;
}

/* ---- JSON writing ----------------------------------------------------- */

cJSON *checked(cJSON *j)
{
	if (j == nullptr)
		throw std::bad_alloc();
	return j;
}

void add_string(cJSON *obj, const char *key, const std::string &v)
{
	checked(cJSON_AddStringToObject(obj, key, v.c_str()));
}

void add_item(cJSON *obj, const char *key, cJSON *item)
{
	CjsonPtr owned(checked(item));
	if (!cJSON_AddItemToObject(obj, key, owned.get()))
		throw std::bad_alloc();
	owned.release();
}

void append(cJSON *array, cJSON *item)
{
	CjsonPtr owned(checked(item));
	if (!cJSON_AddItemToArray(array, owned.get()))
		throw std::bad_alloc();
	owned.release();
}

} // namespace

/* ---- public ----------------------------------------------------------- */

bool header_safe(std::string_view v)
{
	for (char c : v)
		if (c == '\r' || c == '\n' || c == '\0')
			return false;
	return true;
}

bool utf8_valid(std::string_view s)
{
	const unsigned char *p = reinterpret_cast<const unsigned char *>(s.data());
	const unsigned char *end = p + s.size();

	while (p < end) {
		/* ASCII fast path, eight bytes at a time */
		while (end - p >= 8) {
			uint64_t w;
			memcpy(&w, p, sizeof(w));
			if (w & 0x8080808080808080ull)
				break;
			p += 8;
		}
		if (p == end)
			break;
		size_t n = utf8_seq(p, end);
		if (n == 0)
			return false;
		p += n;
	}
	return true;
}

bool valid_addr_spec(std::string_view a)
{
	if (a.empty() || a.size() > MESSAGE_MAX_ADDRESS)
		return false;
	for (unsigned char c : a)
		if (c <= 0x20 || c == 0x7f || c == '<' || c == '>')
			return false;
	if (!utf8_valid(a))
		return false;
	size_t at = a.rfind('@'); /* a quoted local part may hold '@'; a domain never does */
	if (at == std::string_view::npos)
		return false;
	return valid_local_part(a.substr(0, at)) && valid_domain(a.substr(at + 1));
}

bool parse_mailbox(std::string_view s, std::string &display_name, std::string &addr)
{
	display_name.clear();
	addr.clear();
	if (!header_safe(s) || s.size() > MESSAGE_MAX_HEADER_VALUE || !utf8_valid(s))
		return false;
	s = trim_wsp(s);
	if (s.empty())
		return false;
	if (s.back() != '>') { /* a bare addr-spec */
		if (!valid_addr_spec(s))
			return false;
		addr.assign(s);
		return true;
	}

	std::string name;
	std::string_view angle;
	if (s.front() == '"') {
		size_t i = 1;
		for (; i < s.size() && s[i] != '"'; i++) {
			if (s[i] == '\\' && ++i == s.size())
				return false;
			name += s[i];
		}
		if (i == s.size())
			return false; /* unterminated */
		angle = trim_wsp(s.substr(i + 1));
	} else {
		size_t lt = s.find('<');
		if (lt == std::string_view::npos)
			return false;
		std::string_view phrase = trim_wsp(s.substr(0, lt));
		if (!valid_phrase(phrase))
			return false;
		name.assign(phrase);
		angle = s.substr(lt);
	}
	/* angle is "<addr-spec>"; its last character is the final '>' of s */
	if (angle.size() < 2 || angle.front() != '<')
		return false;
	std::string_view spec = angle.substr(1, angle.size() - 2);
	if (!valid_addr_spec(spec)) /* also refuses a '<' or '>' inside */
		return false;
	display_name = std::move(name);
	addr.assign(spec);
	return true;
}

std::string address_key(std::string_view a)
{
	std::string k(a);
	size_t at = k.rfind('@'); /* a quoted local part may hold '@'; a domain never does */
	if (at == std::string::npos)
		return k;
	for (size_t i = at + 1; i < k.size(); i++)
		if (k[i] >= 'A' && k[i] <= 'Z')
			k[i] = static_cast<char>(k[i] - 'A' + 'a');
	return k;
}

bool same_address(std::string_view a, std::string_view b)
{
	return a.size() == b.size() && address_key(a) == address_key(b);
}

void split_visibility(const Message &msg, std::vector<std::string> &to,
    std::vector<std::string> &cc, std::vector<std::string> &bcc)
{
	to.clear();
	cc.clear();
	bcc.clear();
	if (!msg.visibility_known && msg.to_visible.empty() && msg.cc_visible.empty()) {
		to = msg.recipients;
		return;
	}
	to = msg.to_visible;
	cc = msg.cc_visible;
	std::set<std::string> seen;
	for (const auto *list : {&to, &cc})
		for (const std::string &a : *list)
			seen.insert(address_key(a));
	for (const std::string &r : msg.recipients)
		if (seen.insert(address_key(r)).second)
			bcc.push_back(r);
}

bool valid_submission_id(std::string_view id)
{
	if (id.size() == 32) {
		for (unsigned char c : id)
			if (!is_lower_hex(c))
				return false;
		return true;
	}
	if (id.size() != 36)
		return false;
	for (size_t i = 0; i < id.size(); i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? id[i] != '-' : !is_lower_hex(id[i]))
			return false;
	}
	return true;
}

std::string new_submission_id()
{
	unsigned char buf[16];
	size_t got = 0;
	while (got < sizeof(buf)) {
		ssize_t r = getrandom(buf + got, sizeof(buf) - got, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			fatal("getrandom");
		}
		got += static_cast<size_t>(r);
	}
	static constexpr char hex[] = "0123456789abcdef";
	std::string id(2 * sizeof(buf), '\0');
	for (size_t i = 0; i < sizeof(buf); i++) {
		id[2 * i] = hex[buf[i] >> 4];
		id[2 * i + 1] = hex[buf[i] & 15];
	}
	return id;
}

bool message_validate(const Message &msg, std::string &why)
{
	return check_envelope(msg, why) && check_visible(msg, why) &&
	    check_header_fields(msg, why) && check_bodies(msg, why) && check_attachments(msg, why) &&
	    check_extra_headers(msg, why) && check_meta(msg, why) &&
	    check_document_size(msg, why);
}

bool message_from_json(std::string_view json, Message &out, std::string &why)
{
	if (json.size() > MESSAGE_MAX_DOCUMENT)
		return fail(why, "document", "too large");
	if (!prescan(json, why))
		return false;

	const char *end = nullptr;
	CjsonPtr root(cJSON_ParseWithLengthOpts(json.data(), json.size(), &end, false));
	if (!root)
		return fail(why, "document", "not valid JSON");
	for (const char *p = end, *e = json.data() + json.size(); p < e; p++)
		if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
			return fail(why, "document", "trailing data after the JSON value");

	Message m;
	if (!decode_document(root.get(), m, why))
		return false;
	root.reset(); /* the message holds its own copies; free the tree before validating */
	if (!message_validate(m, why))
		return false;
	out = std::move(m);
	return true;
}

/*
 * Expects a message that passed message_validate(): cJSON strings are C
 * strings, so a NUL inside a field would cut it short. Every key is written,
 * optional ones as "", except to, cc and visibility_known: only when set, so
 * that a message without them reads as it did before they existed.
 */
std::string message_to_json(const Message &msg)
{
	CjsonPtr root(checked(cJSON_CreateObject()));
	cJSON *o = root.get();

	add_item(o, "version", cJSON_CreateNumber(MESSAGE_SCHEMA_VERSION));
	add_string(o, "id", msg.id);
	add_string(o, "envelope_from", msg.envelope_from);
	cJSON *rcpts = checked(cJSON_AddArrayToObject(o, "recipients"));
	for (const std::string &r : msg.recipients)
		append(rcpts, cJSON_CreateString(r.c_str()));
	for (const auto &[key, list] : {std::pair{"to", &msg.to_visible}, {"cc", &msg.cc_visible}}) {
		if (list->empty())
			continue;
		cJSON *a = checked(cJSON_AddArrayToObject(o, key));
		for (const std::string &r : *list)
			append(a, cJSON_CreateString(r.c_str()));
	}
	if (msg.visibility_known)
		add_item(o, "visibility_known", cJSON_CreateTrue());
	add_string(o, "from", msg.from);
	add_string(o, "reply_to", msg.reply_to);
	add_string(o, "subject", msg.subject);
	add_string(o, "text_body", msg.text_body);
	add_string(o, "html_body", msg.html_body);
	cJSON *atts = checked(cJSON_AddArrayToObject(o, "attachments"));
	for (const Attachment &a : msg.attachments) {
		CjsonPtr item(checked(cJSON_CreateObject()));
		add_string(item.get(), "filename", a.filename);
		add_string(item.get(), "content_type", a.content_type);
		add_string(item.get(), "data", base64_encode(a.data));
		append(atts, item.release());
	}
	cJSON *hdrs = checked(cJSON_AddArrayToObject(o, "headers"));
	for (const auto &[name, value] : msg.headers) {
		CjsonPtr pair(checked(cJSON_CreateArray()));
		append(pair.get(), cJSON_CreateString(name.c_str()));
		append(pair.get(), cJSON_CreateString(value.c_str()));
		append(hdrs, pair.release());
	}
	add_string(o, "source", msg.source);
	add_string(o, "transport", msg.transport);
	add_string(o, "delivery", delivery_name(msg.delivery));
	add_string(o, "idempotency_key", msg.idempotency_key);
	add_item(o, "created", cJSON_CreateNumber(static_cast<double>(msg.created)));

	char *text = cJSON_PrintUnformatted(o);
	if (text == nullptr)
		throw std::bad_alloc();
	std::string out(text);
	cJSON_free(text);
	return out;
}

} // namespace posthorn
