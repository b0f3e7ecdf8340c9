/*
 * Base64 (RFC 4648 section 4, standard alphabet, with padding).
 * The decoder is strict: no whitespace, length a multiple of four, padding
 * only at the end, and the unused bits of the last quantum must be zero, so
 * every byte string has exactly one accepted encoding.
 */
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace posthorn {

std::string base64_encode(std::string_view in);
/* Replaces `out` with the decoded bytes; false (out unspecified) if `in` is not canonical base64. */
bool base64_decode(std::string_view in, std::string &out);
/* The decoded size of a well-formed encoding, computed without decoding (0 if malformed length). */
size_t base64_decoded_size(std::string_view in);

} // namespace posthorn
