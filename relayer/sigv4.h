/*
 * AWS Signature Version 4 (AWS4-HMAC-SHA256) for the SES transport.
 *
 * sigv4_sign() is pure: it takes the request exactly as it will be sent and returns the
 * headers to add to it. The secret key never appears in any field of the result; the derived
 * signing key is wiped after use. Hashes and HMACs come from OpenSSL libcrypto.
 *
 * Checked against AWS's published test vectors (regress/data/sigv4/vectors.json).
 */
#pragma once

#include <time.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace posthorn {

using SigV4Headers = std::vector<std::pair<std::string, std::string>>;

struct SigV4Credentials {
	std::string access_key_id;
	std::string secret_access_key;
	std::string session_token; /* empty unless temporary (STS) credentials */
};

struct SigV4Request {
	std::string method;
	std::string path;  /* raw, already URI-encoded path as sent; empty means "/" */
	std::string query; /* raw query string without '?' */
	SigV4Headers headers; /* as sent, must include host */
	std::string body;
};

struct SigV4Result {
	std::string canonical_request;
	std::string string_to_sign;
	std::string signature; /* lower-case hex */
	std::string authorization; /* the Authorization header's value */
	/*
	 * Headers the caller must send in addition to the request's own, all signed:
	 * x-amz-date (unless the request has one), x-amz-content-sha256 (when asked for and
	 * absent), x-amz-security-token (when the credentials have a session token and the request
	 * has none). Authorization itself is not in this list.
	 */
	SigV4Headers add_headers;
};

/*
 * Sign req for region and service at amz_date (YYYYMMDDTHHMMSSZ, see sigv4_amz_date()).
 *
 * Every header of req is signed except authorization, user-agent, expect and x-amzn-trace-id
 * (which proxies and libcurl may change or add). A request that already carries X-Amz-Date is
 * signed with that header's value, since that is the date the server checks against.
 * When the request carries X-Amz-Content-SHA256 its value stands for the payload hash.
 *
 * The path is URI-encoded once more (the rule for every service but S3) after removing dot
 * segments; the query is decoded and re-encoded per AWS rules, so '+' stands for itself and a
 * space must be sent as %20.
 *
 * On a libcrypto failure (out of memory) signature and authorization are empty: the caller
 * treats that as a temporary delivery failure.
 */
SigV4Result sigv4_sign(const SigV4Request &req, const SigV4Credentials &creds,
    std::string_view region, std::string_view service, std::string_view amz_date,
    bool add_content_sha256 = false);

/* now as YYYYMMDDTHHMMSSZ in UTC; empty if now cannot be represented. */
std::string sigv4_amz_date(time_t now);

/* The building blocks, exposed for tests. */

/* AWS URI encoding: A-Za-z0-9-._~ kept, every other byte %XX upper-case; '/' kept if asked. */
std::string sigv4_uri_encode(std::string_view s, bool keep_slash);
/* Decode %XX sequences; a '%' not followed by two hex digits stands for itself. */
std::string sigv4_uri_decode(std::string_view s);
/* The canonical URI: dot segments removed, then encoded (slashes kept). */
std::string sigv4_canonical_uri(std::string_view path);
/* The canonical query: pairs decoded, re-encoded, sorted by key then value, joined with '&'. */
std::string sigv4_canonical_query(std::string_view query);
/* Header value per AWS "trimall": outer blanks removed, inner runs of blanks made one space. */
std::string sigv4_trim_value(std::string_view v);
/* Lower-case hex SHA-256 of data; empty on a libcrypto failure. */
std::string sigv4_sha256_hex(std::string_view data);

} // namespace posthorn
