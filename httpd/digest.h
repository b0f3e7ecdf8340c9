/*
 * The few cryptographic primitives httpd needs (libcrypto): SHA-256 for API
 * key digests and body fingerprints, HMAC-SHA256 for CSRF tokens, a
 * constant-time comparison, hex, and random v4 UUIDs for submission ids.
 */
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace posthorn::http {

using Digest = std::array<uint8_t, 32>;

Digest sha256(std::string_view data);
Digest hmac_sha256(std::string_view key, std::string_view data);
/* Same length and same bytes, in time independent of where they differ. */
bool digest_equal(const Digest &a, const Digest &b);
std::string hex(const Digest &d);
/* 64 hex digits (either case) to bytes. */
bool unhex(std::string_view s, Digest &out);
/* A random (version 4) UUID, lower case, 8-4-4-4-12. */
std::string new_uuid();

} // namespace posthorn::http
