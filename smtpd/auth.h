/*
 * SMTP AUTH: the SASL PLAIN and LOGIN decoding, verification of a user's
 * secret (plain text compared in constant time, or a crypt(3) hash through
 * libcrypt), and the per-address failure throttle.
 */
#pragma once

#include <cstdint>
#include <ctime>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/config.h"

namespace posthorn {

enum class SaslResult { ok, cancelled, bad_encoding };

/* One SASL response line: "*" cancels, otherwise strict base64 ("=" is empty). */
SaslResult sasl_decode(std::string_view line, std::string &out);
/* A decoded PLAIN message "[authzid] NUL authcid NUL passwd"; the authzid must be empty or authcid. */
bool sasl_plain_split(std::string_view msg, std::string &user, std::string &pass);

/* Equal contents, in time independent of where they differ and of their lengths. */
bool ct_equal(std::string_view a, std::string_view b);
/* A secret in crypt(3) form ("$y$…", "$2b$…", "$6$…") that libcrypt can check. */
bool secret_is_hash(std::string_view secret);
bool secret_matches(std::string_view secret, std::string_view password);
/* true when a configured user has this name and secret. The name lookup is exact. */
bool verify_user(const std::vector<SmtpUser> &users, std::string_view user, std::string_view pass);

/*
 * Failed AUTH attempts per client address over a sliding window: once an
 * address has `max` failures within the window it is refused until the
 * oldest of them ages out.
 */
class AuthThrottle {
public:
	explicit AuthThrottle(time_t window = 60) : window_(window) {}
	bool blocked(const std::string &addr, uint32_t max, time_t now);
	void failure(const std::string &addr, uint32_t max, time_t now);
	/* Forget addresses with no failure inside the window. */
	void expire(time_t now);
	size_t size() const { return fails_.size(); }

private:
	void prune(std::deque<time_t> &q, time_t now) const;

	time_t window_;
	std::unordered_map<std::string, std::deque<time_t>> fails_;
};

/* Seconds on the monotonic clock. */
time_t monotonic_now();

} // namespace posthorn
