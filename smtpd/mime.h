/*
 * The MIME walker of the SMTP front (DESIGN.md section 6): a received message
 * (after DATA, dot-unstuffed, CRLF line endings) in, the parts of the
 * canonical message out.
 *
 * What is taken from the message:
 *   - From (required, exactly one mailbox), Reply-To (optional, the first
 *     mailbox), Subject, Message-ID: display names and Subject RFC 2047
 *     decoded to UTF-8. A decoded value holding CR, LF or NUL is refused.
 *   - The bodies: the first text/plain and the first text/html leaf not
 *     marked "Content-Disposition: attachment", transfer-decoded and
 *     converted to UTF-8. A message whose bodies are both empty or blank
 *     is refused.
 *   - Every other leaf (later text parts, images, application types,
 *     message/rfc822 unopened) as an Attachment.
 *   - forward_headers: In-Reply-To, References, List-Id, List-Unsubscribe,
 *     List-Unsubscribe-Post, Auto-Submitted and X-Entity-Ref-ID, the first of
 *     each, unfolded. These thread a reply, keep one-click unsubscribe working,
 *     stop auto-responders and stop Gmail collapsing notifications; none of
 *     them can add a recipient or change the structure.
 *   - The addr-specs of To and Cc (every field of each name, in order;
 *     groups contribute their members, "undisclosed-recipients:;" nothing;
 *     anything that is not a valid addr-spec is skipped, never refused).
 *     They only tell which recipients the message shows: recipients come
 *     from RCPT TO only, and Bcc is never read.
 *
 * Charsets: us-ascii (also the default) and utf-8 are fast paths; bytes that
 * are not valid UTF-8 under us-ascii, or under a charset iconv does not know,
 * are read as windows-1252, the de-facto meaning of undeclared 8-bit mail.
 * iso-8859-1 is also read as windows-1252 (as browsers do). Invalid sequences
 * in a known charset become U+FFFD. Raw 8-bit header text is treated the same
 * way (UTF-8 if valid, else windows-1252).
 *
 * Bounds: each header section is limited in bytes and lines, multipart
 * nesting by max_depth (deeper is refused, not truncated), the number of
 * entities by max_parts. Every pass is linear in the input per nesting level;
 * a multipart without its closing delimiter ends at the end of its data.
 */
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/message.h"

namespace posthorn {

struct ParsedMail {
	std::string from;     /* "Name <addr>" (name decoded, quoted if needed) or "addr" */
	std::string reply_to; /* same form; empty when absent */
	std::string subject;  /* decoded UTF-8, at most MESSAGE_MAX_HEADER_VALUE bytes */
	std::string text_body, html_body; /* UTF-8 */
	std::vector<Attachment> attachments;
	std::vector<std::pair<std::string, std::string>> forward_headers; /* the list above */
	std::string message_id; /* "<...>" when well-formed printable ASCII, else empty */
	std::vector<std::string> to, cc; /* addr-specs as written, duplicates kept */
};

struct MimeLimits {
	size_t max_depth = 10;               /* multipart levels below the top */
	size_t max_parts = 100;              /* entities, containers included */
	size_t max_header_bytes = 64 * 1024; /* per header section */
	size_t max_header_lines = 1000;      /* per header section, physical lines */
};

/*
 * Walks `raw`. False with `why` (a short phrase that never quotes the
 * message) when it must be refused; the SMTP layer answers
 * "550 5.6.0 Malformed message: <why>".
 */
bool mime_parse(std::string_view raw, const MimeLimits &limits, ParsedMail &out, std::string &why);

/*
 * RFC 2047: B and Q encoded-words in any charset charset_to_utf8() knows,
 * to UTF-8. Adjacent encoded-words separated only by whitespace are joined
 * (and the bytes of same-charset neighbours decoded together, so a character
 * split across words survives). Malformed words and words in an unknown
 * charset are left as they are. The result may hold CR, LF or NUL if the
 * words encode them: callers check.
 */
std::string rfc2047_decode(std::string_view header_value);

/*
 * `in` in `charset` to UTF-8 (see the charset rules above). False only when
 * the charset is unknown; `out` then holds nothing useful.
 */
bool charset_to_utf8(std::string_view charset, std::string_view in, std::string &out);

/*
 * Quoted-printable (RFC 2045 6.7), leniently: =XX in either case, soft breaks
 * ("=" before CRLF or LF, transport padding allowed), a stray '=' kept as is,
 * trailing blanks of a line dropped; line breaks are kept as they came.
 */
std::string qp_decode(std::string_view in);

/*
 * Opens iconv for the common mail charsets and keeps the handles, so that
 * glibc's gconv modules are loaded before smtpd chroots; after that,
 * charsets not loaded here are unknown (bodies fall back to windows-1252).
 */
void charset_preload();

} // namespace posthorn
