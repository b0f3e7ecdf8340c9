/*
 * RFC 5322 / MIME message builder: the bytes the smtp transport sends, the
 * file transport writes as <id>.eml, and the ses transport puts in
 * Content.Raw.
 *
 * The output uses CRLF line endings throughout; no line exceeds 998 bytes, and
 * header lines stay within 78 columns wherever the content allows. Input
 * CR, LF and NUL never reach a header: the message was validated upstream
 * (message_validate), and the builder replaces any that slip through with a
 * space. Header values are folded only at whitespace the builder inserts itself
 * (between encoded-words, recipients, parameters), never inside the caller's text.
 *
 * Structure:
 *   text only            -> text/plain; charset=utf-8
 *   html only            -> text/html; charset=utf-8
 *   text + html          -> multipart/alternative (text first, then html)
 *   with attachments     -> multipart/mixed: the body part (single or
 *                           alternative), then one base64 part per attachment
 */
#pragma once

#include <time.h>

#include <string>
#include <string_view>

#include "common/message.h"

namespace posthorn {

struct MimeOptions {
	std::string hostname;      /* right-hand side of Message-ID; empty = the From domain */
	time_t date = 0;           /* Date header; 0 = now */
	std::string boundary_seed; /* tests: deterministic boundaries; empty = random */
};

/* The complete message: headers, blank line, body; ends with CRLF. */
std::string build_rfc5322(const Message &msg, const MimeOptions &opts);

/*
 * A header value ready to follow "<name>: " (header_name_len is the length of
 * <name>). Printable ASCII that fits the 998-byte line limit comes back
 * unchanged; anything else (non-ASCII, control characters, text that would
 * read as an encoded-word, an overlong line) becomes UTF-8 encoded-words
 * (Q or B, whichever is shorter), each at most 75 characters, never splitting
 * a UTF-8 character, one per line so that folded lines stay within 78.
 */
std::string rfc2047_encode(std::string_view value, size_t header_name_len);

/* Always encoded-words, as above (used for long ASCII subjects, exposed for tests). */
std::string rfc2047_encode_words(std::string_view value, size_t header_name_len);

/*
 * "Name <addr>" or "addr" as a From/Reply-To value: the display name is kept
 * as atoms, quoted (with \" and \\ escapes), or encoded-words when it is not
 * ASCII; the addr-spec is copied untouched. The mailbox must already have
 * passed parse_mailbox() (message_validate does that).
 */
std::string format_mailbox_header(std::string_view mailbox);

/* "Wed, 25 Nov 2026 13:00:00 +0000" (UTC, English names whatever the locale). */
std::string rfc5322_date(time_t t);

/*
 * Quoted-printable (RFC 2045 section 6.7) of a text body: LF, CRLF and a
 * final line without a newline are all kept as hard CRLF line breaks; '=',
 * controls (a lone CR included) and 8-bit bytes become =XX; a space or tab at
 * the end of a line is encoded; soft breaks keep every line within 76.
 */
std::string quoted_printable_encode(std::string_view text);

/* base64 with CRLF after every 76 characters (and after the last line). */
std::string base64_encode_lines(std::string_view data);

} // namespace posthorn
