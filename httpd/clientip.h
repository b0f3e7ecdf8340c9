/*
 * Client addresses: IP parsing, CIDR sets for trusted_proxies (with the
 * `cloudflare` preset), the X-Forwarded-For rule of DESIGN §7 and the
 * rate-limit key (IPv6 grouped by /64).
 */
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace posthorn::http {

struct IpAddr {
	int family = 0;                /* AF_INET (4 bytes used) or AF_INET6; 0: none */
	std::array<uint8_t, 16> b{};

	bool valid() const { return family != 0; }
	std::string str() const;
	bool operator==(const IpAddr &) const = default;
};

/* "192.0.2.1", "2001:db8::1", "[2001:db8::1]"; IPv4-mapped IPv6 becomes IPv4. */
bool ip_parse(std::string_view s, IpAddr &out);
bool ip_from_sockaddr(const sockaddr *sa, IpAddr &out);

struct Cidr {
	IpAddr net;
	unsigned bits = 0;
	bool contains(const IpAddr &a) const;
};
/* "10.0.0.0/8", "2001:db8::/32", or one address (a /32 or /128); host bits are masked. */
bool cidr_parse(std::string_view s, Cidr &out);

/* Cloudflare's published edge ranges (https://www.cloudflare.com/ips/). */
extern const char *const CLOUDFLARE_RANGES[];
extern const size_t CLOUDFLARE_RANGES_COUNT;

class ProxySet {
public:
	/* "cloudflare", a CIDR or an address; false when it is none of these. */
	bool add(std::string_view entry);
	bool contains(const IpAddr &a) const;
	bool empty() const { return nets_.empty(); }

private:
	std::vector<Cidr> nets_;
};

/*
 * The client of a request: the peer, or, when the peer is a trusted proxy,
 * the right-most X-Forwarded-For entry that is not a trusted proxy. A
 * malformed entry stops the walk at the last good hop.
 */
IpAddr client_address(const IpAddr &peer, std::string_view xff, const ProxySet &trusted);

/* Bucket key: the IPv4 address, or the /64 of an IPv6 address ("2001:db8:1:2::/64"). */
std::string rate_key(const IpAddr &a);

} // namespace posthorn::http
