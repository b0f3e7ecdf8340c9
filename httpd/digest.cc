/*
 * libcrypto one-shot calls: EVP_Digest and HMAC are not deprecated in
 * OpenSSL 3, and CRYPTO_memcmp is its constant-time comparison.
 */
#include "digest.h"

#include <errno.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/log.h"
#include "common/text.h"

namespace posthorn::http {

namespace {

constexpr char kHex[] = "0123456789abcdef";

void random_bytes(uint8_t *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = getrandom(buf + got, n - got, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			fatal("getrandom");
		}
		got += size_t(r);
	}
}

} // namespace

Digest sha256(std::string_view data)
{
	Digest d{};
	unsigned int len = 0;
	if (EVP_Digest(data.data(), data.size(), d.data(), &len, EVP_sha256(), nullptr) != 1 ||
	    len != d.size())
		fatalx("EVP_Digest failed");
	return d;
}

Digest hmac_sha256(std::string_view key, std::string_view data)
{
	Digest d{};
	unsigned int len = 0;
	if (!HMAC(EVP_sha256(), key.data(), int(key.size()),
	    reinterpret_cast<const unsigned char *>(data.data()), data.size(), d.data(), &len) ||
	    len != d.size())
		fatalx("HMAC failed");
	return d;
}

bool digest_equal(const Digest &a, const Digest &b)
{
	return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string hex(const Digest &d)
{
	std::string out(d.size() * 2, '\0');
	for (size_t i = 0; i < d.size(); i++) {
		out[2 * i] = kHex[d[i] >> 4];
		out[2 * i + 1] = kHex[d[i] & 15];
	}
	return out;
}

bool unhex(std::string_view s, Digest &out)
{
	if (s.size() != out.size() * 2)
		return false;
	for (size_t i = 0; i < out.size(); i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[i] = uint8_t(hi << 4 | lo);
	}
	return true;
}

std::string new_uuid()
{
	uint8_t b[16];
	random_bytes(b, sizeof(b));
	b[6] = uint8_t((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = uint8_t((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	std::string out;
	out.reserve(36);
	for (size_t i = 0; i < sizeof(b); i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out += '-';
		out += kHex[b[i] >> 4];
		out += kHex[b[i] & 15];
	}
	return out;
}

} // namespace posthorn::http
