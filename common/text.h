/* Small ASCII text helpers shared by the parsers (config, MIME, HTTP, SigV4). */
#pragma once

#include <string>
#include <string_view>

namespace posthorn {

inline char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
std::string ascii_lowered(std::string_view s);
/* ASCII case-insensitive equality (header names, enum words, domains). */
bool iequals(std::string_view a, std::string_view b);
/* Spaces and tabs off both ends. */
std::string_view trim(std::string_view s);
/* 0-15 for a hex digit of either case, -1 otherwise. */
int hexval(char c);
/*
 * Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), 0 if it is not one. p < end.
 */
size_t utf8_seq(const unsigned char *p, const unsigned char *end);
/* write(2) until done or a real error (EINTR retried). */
bool write_all(int fd, std::string_view data);

} // namespace posthorn
