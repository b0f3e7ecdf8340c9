#include "sigv4.h"
#include "common/text.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <map>

namespace posthorn {

namespace {

constexpr std::string_view ALGORITHM = "AWS4-HMAC-SHA256";
constexpr char HEX[] = "0123456789abcdef";
constexpr char HEX_UPPER[] = "0123456789ABCDEF";

using Digest = std::array<unsigned char, 32>;

/* Wipes key material when it goes out of scope. */
template <typename T> struct Wipe {
	T &v;
	~Wipe() { OPENSSL_cleanse(v.data(), v.size()); }
};

bool hmac(std::string_view key, std::string_view data, Digest &out)
{
	unsigned int len = 0;
	const unsigned char *r = HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
	    reinterpret_cast<const unsigned char *>(data.data()), data.size(), out.data(), &len);
	return r != nullptr && len == out.size();
}

std::string_view as_view(const Digest &d)
{
	return {reinterpret_cast<const char *>(d.data()), d.size()};
}

std::string hex(const unsigned char *p, size_t n)
{
	std::string s;
	s.reserve(n * 2);
	for (size_t i = 0; i < n; i++) {
		s += HEX[p[i] >> 4];
		s += HEX[p[i] & 0xf];
	}
	return s;
}

bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

std::string lower(std::string_view s)
{
	std::string r(s);
	for (char &c : r)
		if (c >= 'A' && c <= 'Z')
			c = static_cast<char>(c - 'A' + 'a');
	return r;
}

bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Headers that are never signed: the signature itself, and what proxies or libcurl change. */
bool unsigned_header(std::string_view lname)
{
	return lname == "authorization" || lname == "user-agent" || lname == "expect" ||
	       lname == "x-amzn-trace-id";
}

/* Remove "." and ".." segments and empty segments, keeping a leading and trailing slash. */
std::string remove_dot_segments(std::string_view path)
{
	std::vector<std::string_view> out;
	size_t pos = 0;
	while (pos <= path.size()) {
		size_t slash = path.find('/', pos);
		if (slash == std::string_view::npos)
			slash = path.size();
		std::string_view seg = path.substr(pos, slash - pos);
		if (seg == "..") {
			if (!out.empty())
				out.pop_back();
		} else if (!seg.empty() && seg != ".") {
			out.push_back(seg);
		}
		pos = slash + 1;
	}
	std::string r = "/";
	for (size_t i = 0; i < out.size(); i++) {
		if (i > 0)
			r += '/';
		r += out[i];
	}
	if (!out.empty() && path.back() == '/')
		r += '/';
	return r;
}

} // namespace

std::string sigv4_uri_encode(std::string_view s, bool keep_slash)
{
	std::string r;
	r.reserve(s.size());
	for (char ch : s) {
		unsigned char c = static_cast<unsigned char>(ch);
		if (unreserved(c) || (keep_slash && c == '/')) {
			r += ch;
		} else {
			r += '%';
			r += HEX_UPPER[c >> 4];
			r += HEX_UPPER[c & 0xf];
		}
	}
	return r;
}

std::string sigv4_uri_decode(std::string_view s)
{
	std::string r;
	r.reserve(s.size());
	for (size_t i = 0; i < s.size(); i++) {
		int hi, lo;
		if (s[i] == '%' && i + 2 < s.size() && (hi = hexval(s[i + 1])) >= 0 &&
		    (lo = hexval(s[i + 2])) >= 0) {
			r += static_cast<char>(hi << 4 | lo);
			i += 2;
		} else {
			r += s[i];
		}
	}
	return r;
}

std::string sigv4_canonical_uri(std::string_view path)
{
	if (path.empty())
		return "/";
	return sigv4_uri_encode(remove_dot_segments(path), true);
}

std::string sigv4_canonical_query(std::string_view query)
{
	std::vector<std::pair<std::string, std::string>> params;
	size_t pos = 0;
	while (pos < query.size()) {
		size_t amp = query.find('&', pos);
		if (amp == std::string_view::npos)
			amp = query.size();
		std::string_view part = query.substr(pos, amp - pos);
		pos = amp + 1;
		if (part.empty())
			continue;
		size_t eq = part.find('=');
		std::string_view key = part.substr(0, eq);
		std::string_view value = eq == std::string_view::npos ? "" : part.substr(eq + 1);
		params.emplace_back(sigv4_uri_encode(sigv4_uri_decode(key), false),
		    sigv4_uri_encode(sigv4_uri_decode(value), false));
	}
	std::sort(params.begin(), params.end());
	std::string r;
	for (const auto &[k, v] : params) {
		if (!r.empty())
			r += '&';
		r += k;
		r += '=';
		r += v;
	}
	return r;
}

std::string sigv4_trim_value(std::string_view v)
{
	std::string r;
	r.reserve(v.size());
	bool pending_space = false;
	for (char c : v) {
		if (is_blank(c)) {
			pending_space = !r.empty();
			continue;
		}
		if (pending_space)
			r += ' ';
		pending_space = false;
		r += c;
	}
	return r;
}

std::string sigv4_sha256_hex(std::string_view data)
{
	Digest d;
	unsigned int len = 0;
	if (EVP_Digest(data.data(), data.size(), d.data(), &len, EVP_sha256(), nullptr) != 1 ||
	    len != d.size())
		return "";
	return hex(d.data(), d.size());
}

std::string sigv4_amz_date(time_t now)
{
	struct tm tm;
	if (gmtime_r(&now, &tm) == nullptr)
		return "";
	char buf[32];
	size_t n = strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm);
	if (n != 16)
		return "";
	return std::string(buf, n);
}

SigV4Result sigv4_sign(const SigV4Request &req, const SigV4Credentials &creds,
    std::string_view region, std::string_view service, std::string_view amz_date,
    bool add_content_sha256)
{
	SigV4Result res;

	/* Lower-case name -> values joined with ',' in the order sent; std::map sorts the names. */
	std::map<std::string, std::string> canon;
	auto add = [&canon](const std::string &lname, std::string_view value) {
		auto [it, fresh] = canon.try_emplace(lname);
		if (!fresh)
			it->second += ',';
		it->second += sigv4_trim_value(value);
	};
	for (const auto &[name, value] : req.headers) {
		std::string lname = lower(name);
		if (!unsigned_header(lname))
			add(lname, value);
	}

	std::string date;
	if (auto it = canon.find("x-amz-date"); it != canon.end()) {
		date = it->second;
	} else {
		date = std::string(amz_date);
		res.add_headers.emplace_back("x-amz-date", date);
		add("x-amz-date", date);
	}

	std::string payload_hash;
	if (auto it = canon.find("x-amz-content-sha256"); it != canon.end()) {
		payload_hash = it->second;
	} else {
		payload_hash = sigv4_sha256_hex(req.body);
		if (add_content_sha256) {
			res.add_headers.emplace_back("x-amz-content-sha256", payload_hash);
			add("x-amz-content-sha256", payload_hash);
		}
	}

	if (!creds.session_token.empty() && !canon.contains("x-amz-security-token")) {
		res.add_headers.emplace_back("x-amz-security-token", creds.session_token);
		add("x-amz-security-token", creds.session_token);
	}

	std::string canonical_headers, signed_headers;
	for (const auto &[name, value] : canon) {
		canonical_headers += name + ':' + value + '\n';
		if (!signed_headers.empty())
			signed_headers += ';';
		signed_headers += name;
	}

	res.canonical_request = req.method + '\n' + sigv4_canonical_uri(req.path) + '\n' +
	    sigv4_canonical_query(req.query) + '\n' + canonical_headers + '\n' + signed_headers +
	    '\n' + payload_hash;

	std::string scope_date = date.substr(0, 8);
	std::string scope = scope_date + '/' + std::string(region) + '/' + std::string(service) +
	    "/aws4_request";
	std::string request_hash = sigv4_sha256_hex(res.canonical_request);
	res.string_to_sign = std::string(ALGORITHM) + '\n' + date + '\n' + scope + '\n' + request_hash;
	if (payload_hash.empty() || request_hash.empty())
		return res;

	/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request") */
	std::string key;
	Wipe<std::string> wipe_key{key};
	key.reserve(4 + creds.secret_access_key.size());
	key += "AWS4";
	key += creds.secret_access_key;
	Digest k1, k2, k3, k4, sig;
	Wipe<Digest> w1{k1}, w2{k2}, w3{k3}, w4{k4};
	if (!hmac(key, scope_date, k1) || !hmac(as_view(k1), region, k2) ||
	    !hmac(as_view(k2), service, k3) || !hmac(as_view(k3), "aws4_request", k4) ||
	    !hmac(as_view(k4), res.string_to_sign, sig))
		return res;

	res.signature = hex(sig.data(), sig.size());
	res.authorization = std::string(ALGORITHM) + " Credential=" + creds.access_key_id + '/' +
	    scope + ", SignedHeaders=" + signed_headers + ", Signature=" + res.signature;
	return res;
}

} // namespace posthorn
