/*
 * CSRF tokens. The signature is checked (in constant time) before the time
 * window, so an attacker learns nothing about the window from a forgery.
 */
#include "csrf.h"

#include "digest.h"

namespace posthorn::http {

const char *to_string(CsrfResult r)
{
	switch (r) {
	case CsrfResult::ok: return "ok";
	case CsrfResult::missing: return "missing";
	case CsrfResult::malformed: return "malformed";
	case CsrfResult::forged: return "forged";
	case CsrfResult::expired: return "expired";
	case CsrfResult::future: return "future";
	}
	return "unknown";
}

std::string csrf_issue(std::string_view secret, int64_t now)
{
	std::string ts = std::to_string(now);
	return ts + "." + hex(hmac_sha256(secret, ts));
}

CsrfResult csrf_verify(std::string_view token, std::string_view secret, uint64_t ttl, int64_t now)
{
	if (token.empty())
		return CsrfResult::missing;
	size_t dot = token.find('.');
	if (dot == std::string_view::npos || dot == 0 || dot > 12)
		return CsrfResult::malformed;
	std::string_view ts = token.substr(0, dot);
	int64_t when = 0;
	for (char c : ts) {
		if (c < '0' || c > '9')
			return CsrfResult::malformed;
		when = when * 10 + (c - '0');
	}
	Digest got;
	if (!unhex(token.substr(dot + 1), got))
		return CsrfResult::malformed;
	if (!digest_equal(got, hmac_sha256(secret, ts)))
		return CsrfResult::forged;
	if (when > now + CSRF_MAX_SKEW)
		return CsrfResult::future;
	if (now - when > int64_t(ttl))
		return CsrfResult::expired;
	return CsrfResult::ok;
}

} // namespace posthorn::http
