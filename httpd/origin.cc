/*
 * Origin and Referer checks.
 */
#include "origin.h"

#include <algorithm>

#include "common/config.h"

namespace posthorn::http {

namespace {

bool allowed_one(const std::string &o, const std::vector<std::string> &allowed)
{
	return std::find(allowed.begin(), allowed.end(), o) != allowed.end();
}

} // namespace

const char *to_string(OriginResult r)
{
	switch (r) {
	case OriginResult::ok: return "ok";
	case OriginResult::mismatch: return "mismatch";
	case OriginResult::missing: return "missing";
	}
	return "unknown";
}

bool referer_origin(std::string_view referer, std::string &out)
{
	size_t sep = referer.find("://");
	if (sep == std::string_view::npos)
		return false;
	size_t end = referer.find_first_of("/?#", sep + 3);
	return normalize_origin(referer.substr(0, end), out);
}

OriginResult origin_check(const char *origin, const char *referer,
    const std::vector<std::string> &allowed)
{
	std::string norm;
	if (origin && *origin && std::string_view(origin) != "null") {
		if (!normalize_origin(origin, norm))
			return OriginResult::mismatch;
		return allowed_one(norm, allowed) ? OriginResult::ok : OriginResult::mismatch;
	}
	if (!referer || !*referer)
		return OriginResult::missing;
	if (!referer_origin(referer, norm))
		return OriginResult::mismatch;
	return allowed_one(norm, allowed) ? OriginResult::ok : OriginResult::mismatch;
}

} // namespace posthorn::http
