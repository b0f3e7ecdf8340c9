/*
 * The Origin/Referer rule of form endpoints with allowed_origins (DESIGN
 * §7): Origin must match; Referer is consulted only when Origin is absent
 * or "null"; neither present is a refusal. Both sides are normalised as
 * config's normalize_origin() does (lower case, default ports dropped).
 */
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace posthorn::http {

enum class OriginResult { ok, mismatch, missing };
const char *to_string(OriginResult r);

/* The scheme://host[:port] of a Referer URL, normalised; false if it has none. */
bool referer_origin(std::string_view referer, std::string &out);
/* nullptr: the header is absent. */
OriginResult origin_check(const char *origin, const char *referer,
    const std::vector<std::string> &allowed);

} // namespace posthorn::http
