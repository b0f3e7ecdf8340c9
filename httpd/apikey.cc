/*
 * API key verification.
 */
#include "apikey.h"

#include <strings.h>

namespace posthorn::http {

bool bearer_token(const char *authorization, std::string_view &token)
{
	if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0)
		return false;
	std::string_view t(authorization + 7);
	while (!t.empty() && t.front() == ' ')
		t.remove_prefix(1);
	while (!t.empty() && (t.back() == ' ' || t.back() == '\t'))
		t.remove_suffix(1);
	if (t.empty() || t.find_first_of(" \t") != std::string_view::npos)
		return false;
	token = t;
	return true;
}

void ApiKeys::load(const std::vector<std::string> &keys)
{
	digests_.clear();
	for (const std::string &k : keys) {
		Digest d;
		if (k.compare(0, 7, "sha256:") == 0 && unhex(std::string_view(k).substr(7), d))
			digests_.push_back(d);
		else
			digests_.push_back(sha256(k));
	}
}

std::string ApiKeys::match(std::string_view presented) const
{
	Digest got = sha256(presented);
	const Digest *hit = nullptr;
	for (const Digest &d : digests_)
		if (digest_equal(got, d) && !hit)
			hit = &d;
	return hit ? hex(*hit) : "";
}

} // namespace posthorn::http
