/*
 * SMTP envelope syntax and the listener's address policy: the argument of
 * MAIL FROM / RCPT TO with its ESMTP parameters, and the allowed_senders /
 * allowed_recipients patterns (an exact address, *@domain, or *).
 */
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace posthorn {

struct SmtpPath {
	std::string addr;  /* addr-spec; empty for the null path "<>" */
	std::vector<std::pair<std::string, std::string>> params; /* KEY (upper case), value */
};

enum class PathError { none, syntax, address };

/*
 * Parses "FROM:<addr> [params]" (keyword "FROM") or "TO:<addr> [params]".
 * Lenient where RFC 5321 allows: keyword case, blanks after the colon,
 * a source route (ignored). The null path is accepted only when allow_null.
 */
PathError parse_path(std::string_view arg, std::string_view keyword, bool allow_null,
    SmtpPath &out);

/* MAIL parameters we know: SIZE=n, BODY=7BIT|8BITMIME, AUTH=<mailbox> (ignored). */
struct MailParams {
	uint64_t size = 0; /* 0: not given */
};
enum class ParamError { none, syntax, unsupported };
ParamError parse_mail_params(const SmtpPath &path, MailParams &out, std::string &bad);

/*
 * Does addr match one of the patterns? Exact entries compare the whole
 * address case-insensitively, "*@domain" compares the domain
 * case-insensitively, "*" matches any address. The null sender only
 * matches "*".
 */
bool address_allowed(const std::vector<std::string> &patterns, std::string_view addr);

/* Text that may go into a reply or a log line: printable ASCII, bounded. */
std::string printable(std::string_view s, size_t max = 200);

} // namespace posthorn
