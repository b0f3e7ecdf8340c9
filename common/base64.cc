/*
 * Base64 codec: table driven, one pass, output sized up front.
 */
#include "base64.h"

#include <array>
#include <cstdint>

namespace posthorn {

namespace {

constexpr char kAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr uint8_t kInvalid = 0xff;

constexpr std::array<uint8_t, 256> make_decode_table()
{
	std::array<uint8_t, 256> t{};
	for (auto &v : t)
		v = kInvalid;
	for (int i = 0; i < 64; i++)
		t[static_cast<unsigned char>(kAlphabet[i])] = static_cast<uint8_t>(i);
	return t;
}

constexpr std::array<uint8_t, 256> kDecode = make_decode_table();

inline uint8_t byte_at(std::string_view s, size_t i)
{
	return static_cast<uint8_t>(s[i]);
}

} // namespace

std::string base64_encode(std::string_view in)
{
	std::string out((in.size() + 2) / 3 * 4, '\0');
	char *o = out.data();
	size_t i = 0, n = in.size();

	for (; i + 3 <= n; i += 3) {
		uint32_t v = uint32_t(byte_at(in, i)) << 16 | uint32_t(byte_at(in, i + 1)) << 8 |
		    byte_at(in, i + 2);
		*o++ = kAlphabet[v >> 18];
		*o++ = kAlphabet[(v >> 12) & 63];
		*o++ = kAlphabet[(v >> 6) & 63];
		*o++ = kAlphabet[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = uint32_t(byte_at(in, i)) << 16;
		*o++ = kAlphabet[v >> 18];
		*o++ = kAlphabet[(v >> 12) & 63];
		*o++ = '=';
		*o++ = '=';
	} else if (n - i == 2) {
		uint32_t v = uint32_t(byte_at(in, i)) << 16 | uint32_t(byte_at(in, i + 1)) << 8;
		*o++ = kAlphabet[v >> 18];
		*o++ = kAlphabet[(v >> 12) & 63];
		*o++ = kAlphabet[(v >> 6) & 63];
		*o++ = '=';
	}
	return out;
}

size_t base64_decoded_size(std::string_view in)
{
	size_t n = in.size();
	if (n % 4 != 0)
		return 0;
	size_t pad = 0;
	if (n >= 1 && in[n - 1] == '=')
		pad++;
	if (n >= 2 && in[n - 2] == '=')
		pad++;
	return n / 4 * 3 - pad;
}

bool base64_decode(std::string_view in, std::string &out)
{
	size_t n = in.size();
	out.clear();
	if (n % 4 != 0)
		return false;
	if (n == 0)
		return true;

	size_t pad = 0;
	if (in[n - 1] == '=')
		pad = in[n - 2] == '=' ? 2 : 1;
	out.resize(n / 4 * 3 - pad);
	char *o = out.data();

	/* Every full quantum but the last: four alphabet characters, no padding. */
	size_t full = n - 4;
	for (size_t i = 0; i < full; i += 4) {
		uint8_t a = kDecode[byte_at(in, i)], b = kDecode[byte_at(in, i + 1)];
		uint8_t c = kDecode[byte_at(in, i + 2)], d = kDecode[byte_at(in, i + 3)];
		if ((a | b | c | d) & 0xc0) /* kInvalid has these bits set */
			return false;
		uint32_t v = uint32_t(a) << 18 | uint32_t(b) << 12 | uint32_t(c) << 6 | d;
		*o++ = static_cast<char>(v >> 16);
		*o++ = static_cast<char>(v >> 8);
		*o++ = static_cast<char>(v);
	}

	/* The last quantum: xxxx, xxx= or xx==, unused bits zero. */
	uint8_t a = kDecode[byte_at(in, full)], b = kDecode[byte_at(in, full + 1)];
	uint8_t c = pad == 2 ? 0 : kDecode[byte_at(in, full + 2)];
	uint8_t d = pad >= 1 ? 0 : kDecode[byte_at(in, full + 3)];
	if ((a | b | c | d) & 0xc0)
		return false;
	uint32_t v = uint32_t(a) << 18 | uint32_t(b) << 12 | uint32_t(c) << 6 | d;
	if (pad == 2 && (v & 0xffff) != 0)
		return false;
	if (pad == 1 && (v & 0xff) != 0)
		return false;
	*o++ = static_cast<char>(v >> 16);
	if (pad < 2)
		*o++ = static_cast<char>(v >> 8);
	if (pad < 1)
		*o++ = static_cast<char>(v);
	return true;
}

} // namespace posthorn
