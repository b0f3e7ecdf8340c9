/*
 * CSRF tokens for form endpoints: `<unix-seconds>.<hex HMAC-SHA256(secret,
 * seconds)>` in the form field `_csrf_token`. The operator's site issues
 * them; a token is good from its time until csrf_token_ttl later, and a
 * token from more than 60 s in the future (clock skew allowance) is refused.
 */
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace posthorn::http {

inline constexpr std::string_view CSRF_FIELD = "_csrf_token";
inline constexpr int64_t CSRF_MAX_SKEW = 60;

enum class CsrfResult { ok, missing, malformed, forged, expired, future };
const char *to_string(CsrfResult r);

std::string csrf_issue(std::string_view secret, int64_t now);
CsrfResult csrf_verify(std::string_view token, std::string_view secret, uint64_t ttl, int64_t now);

} // namespace posthorn::http
