/*
 * API keys: `Authorization: Bearer <key>` checked against api_keys, each a
 * plain key or `sha256:<hex>`. Every configured key is kept as a SHA-256
 * digest and the presented key's digest is compared with all of them in
 * constant time, so neither the position nor the length of a match leaks.
 */
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "digest.h"

namespace posthorn::http {

/* The token of "Bearer <token>" (scheme case-insensitive); false otherwise. */
bool bearer_token(const char *authorization, std::string_view &token);

class ApiKeys {
public:
	/* Entries as validated by the config parser. */
	void load(const std::vector<std::string> &keys);
	/* The matching key's digest as hex (an identity safe to use as a map key); "" if none. */
	std::string match(std::string_view presented) const;
	size_t size() const { return digests_.size(); }

private:
	std::vector<Digest> digests_;
};

} // namespace posthorn::http
