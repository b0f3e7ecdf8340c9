/*
 * The canonical message: what a front (smtpd, httpd) submits to the relayer
 * and what the spool stores. Serialised as JSON with cJSON. The relayer
 * treats every document as untrusted: message_from_json() checks the schema,
 * sizes, address syntax, and that header-bound fields hold no CR, LF or NUL.
 */
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config.h"

namespace posthorn {

inline constexpr int MESSAGE_SCHEMA_VERSION = 1;

/* Bounds a document must respect (also the relayer's parser limits). */
inline constexpr size_t MESSAGE_MAX_DOCUMENT = 48u << 20;  /* JSON bytes */
inline constexpr size_t MESSAGE_MAX_RECIPIENTS = 1000;
inline constexpr size_t MESSAGE_MAX_HEADER_VALUE = 998;    /* RFC 5322 line limit */
inline constexpr size_t MESSAGE_MAX_ADDRESS = 320;
inline constexpr size_t MESSAGE_MAX_BODY = 25u << 20;      /* each of text and html */
inline constexpr size_t MESSAGE_MAX_ATTACHMENTS = 100;
inline constexpr size_t MESSAGE_MAX_ATTACHMENT_BYTES = 25u << 20; /* decoded, total */
inline constexpr size_t MESSAGE_MAX_EXTRA_HEADERS = 50;

struct Attachment {
	std::string filename;     /* header-bound: no CR/LF/NUL, no '/' or '\\' */
	std::string content_type; /* type/subtype */
	std::string data;         /* raw bytes (base64 in JSON) */
};

struct Message {
	std::string id;                       /* submission id: 32 lower-case hex or a UUID */
	std::string envelope_from;            /* addr-spec; empty = null sender "<>" */
	std::vector<std::string> recipients;  /* addr-specs, from RCPT TO / endpoint `to` */
	/*
	 * Who is shown to whom (see split_visibility): the recipients the
	 * message's To and Cc headers name, in header order, each once and in at
	 * most one of the two lists, spelled as in `recipients`. With
	 * visibility_known, every other recipient is a blind copy, even when
	 * both lists are empty (a Bcc-only message); smtpd always sets it.
	 * Without it and with both lists empty, every recipient is shown in To:
	 * HTTP endpoints, whose `to` is visible by design, and older documents.
	 */
	std::vector<std::string> to_visible, cc_visible;
	bool visibility_known = false;
	std::string from;                     /* header From: "Name <addr>" or addr */
	std::string reply_to;                 /* optional, same syntax as from */
	std::string subject;
	std::string text_body;                /* UTF-8 */
	std::string html_body;                /* UTF-8, optional */
	std::vector<Attachment> attachments;
	/* Extra headers safe to forward (name, value); never From/To/Cc/Bcc/Subject etc. */
	std::vector<std::pair<std::string, std::string>> headers;
	std::string source;                   /* "smtp:<listener>" or the endpoint path */
	std::string transport;                /* transport name */
	Delivery delivery = Delivery::queue;
	std::string idempotency_key;          /* optional; sent to providers that support it */
	int64_t created = 0;                  /* unix seconds */
};

std::string message_to_json(const Message &msg);
/* Untrusted input: false with a reason (never containing the body) when invalid. */
bool message_from_json(std::string_view json, Message &out, std::string &why);
/* The same checks on an in-memory message (fronts call it before submitting). */
bool message_validate(const Message &msg, std::string &why);

/*
 * The provider's To, Cc and Bcc lists for msg, together exactly its
 * recipients (each once): legacy (visibility_known unset, both visible lists
 * empty) puts every recipient in To; otherwise to = to_visible, cc =
 * cc_visible and bcc = every other recipient. To may come out empty.
 */
void split_visibility(const Message &msg, std::vector<std::string> &to,
    std::vector<std::string> &cc, std::vector<std::string> &bcc);
/*
 * Same mailbox? The local part compares exactly (RFC 5321 lets it be case
 * sensitive), the domain case-insensitively (ASCII). A mismatch only ever
 * hides a recipient (makes it a blind copy), never shows one.
 */
bool same_address(std::string_view a, std::string_view b);
/* The key same_address() compares: the local part as is, the domain in lower case. */
std::string address_key(std::string_view addr);

/* addr-spec syntax: local@domain, printable ASCII or UTF-8, no spaces/controls/<>. */
bool valid_addr_spec(std::string_view addr);
/* "Name <addr>" or "addr" (the display name may be quoted); the addr-spec out. */
bool parse_mailbox(std::string_view mailbox, std::string &display_name, std::string &addr);
/* No CR, LF or NUL: safe to put in a header line. */
bool header_safe(std::string_view v);

/* 32 random lower-case hex characters (getrandom). */
std::string new_submission_id();
/* 32 lower-case hex characters, or a lower-case canonical UUID (8-4-4-4-12). */
bool valid_submission_id(std::string_view id);
/* Well-formed UTF-8 (RFC 3629): no overlong forms, surrogates or code points above U+10FFFF. */
bool utf8_valid(std::string_view s);

} // namespace posthorn
