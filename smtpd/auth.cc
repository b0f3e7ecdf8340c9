#include "auth.h"

#include <crypt.h>
#include <time.h>

#include <memory>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/base64.h"

namespace posthorn {

namespace {
constexpr size_t MAX_THROTTLED_ADDRESSES = 100000;
}

SaslResult sasl_decode(std::string_view line, std::string &out)
{
	out.clear();
	if (line == "*")
		return SaslResult::cancelled;
	if (line == "=")
		return SaslResult::ok;
	if (line.empty() || !base64_decode(line, out))
		return SaslResult::bad_encoding;
	return SaslResult::ok;
}

bool sasl_plain_split(std::string_view msg, std::string &user, std::string &pass)
{
	size_t a = msg.find('\0');
	if (a == std::string_view::npos)
		return false;
	size_t b = msg.find('\0', a + 1);
	if (b == std::string_view::npos || msg.find('\0', b + 1) != std::string_view::npos)
		return false;
	std::string_view authzid = msg.substr(0, a);
	user.assign(msg.substr(a + 1, b - a - 1));
	pass.assign(msg.substr(b + 1));
	return !user.empty() && (authzid.empty() || authzid == user);
}

bool ct_equal(std::string_view a, std::string_view b)
{
	unsigned char da[EVP_MAX_MD_SIZE], db[EVP_MAX_MD_SIZE];
	unsigned int la = 0, lb = 0;
	if (EVP_Digest(a.data(), a.size(), da, &la, EVP_sha256(), nullptr) != 1 ||
	    EVP_Digest(b.data(), b.size(), db, &lb, EVP_sha256(), nullptr) != 1 || la != lb)
		return false;
	/* Equal digests and equal lengths: a collision cannot make a wrong password pass. */
	return CRYPTO_memcmp(da, db, la) == 0 && a.size() == b.size();
}

bool secret_is_hash(std::string_view secret)
{
	if (secret.size() < 4 || secret[0] != '$')
		return false;
	std::string s(secret);
	int r = crypt_checksalt(s.c_str());
	return r == CRYPT_SALT_OK || r == CRYPT_SALT_METHOD_LEGACY || r == CRYPT_SALT_TOO_CHEAP;
}

bool secret_matches(std::string_view secret, std::string_view password)
{
	if (!secret_is_hash(secret))
		return ct_equal(secret, password);
	if (password.find('\0') != std::string_view::npos)
		return false; /* crypt would see a shorter password */
	auto data = std::make_unique<crypt_data>();
	std::string pw(password), setting(secret);
	const char *h = crypt_rn(pw.c_str(), setting.c_str(), data.get(), sizeof(*data));
	bool ok = h && h[0] != '*' && ct_equal(h, secret);
	OPENSSL_cleanse(pw.data(), pw.size());
	OPENSSL_cleanse(data.get(), sizeof(*data));
	return ok;
}

bool verify_user(const std::vector<SmtpUser> &users, std::string_view user, std::string_view pass)
{
	for (const SmtpUser &u : users)
		if (u.name == user)
			return secret_matches(u.secret, pass);
	/* Unknown user: spend the time a known one would cost, then refuse. */
	if (!users.empty())
		(void)secret_matches(users.front().secret, pass);
	return false;
}

void AuthThrottle::prune(std::deque<time_t> &q, time_t now) const
{
	while (!q.empty() && q.front() + window_ <= now)
		q.pop_front();
}

bool AuthThrottle::blocked(const std::string &addr, uint32_t max, time_t now)
{
	auto it = fails_.find(addr);
	if (it == fails_.end())
		return false;
	prune(it->second, now);
	return it->second.size() >= max;
}

void AuthThrottle::failure(const std::string &addr, uint32_t max, time_t now)
{
	if (fails_.size() >= MAX_THROTTLED_ADDRESSES && !fails_.count(addr))
		expire(now);
	if (fails_.size() >= MAX_THROTTLED_ADDRESSES)
		return; /* under a flood of addresses, forget rather than grow without bound */
	std::deque<time_t> &q = fails_[addr];
	prune(q, now);
	q.push_back(now);
	while (q.size() > max)
		q.pop_front();
}

void AuthThrottle::expire(time_t now)
{
	for (auto it = fails_.begin(); it != fails_.end();) {
		prune(it->second, now);
		it = it->second.empty() ? fails_.erase(it) : std::next(it);
	}
}

time_t monotonic_now()
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

} // namespace posthorn
