/*
 * Client addresses and trusted proxies.
 */
#include "clientip.h"
#include "common/text.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace posthorn::http {

const char *const CLOUDFLARE_RANGES[] = {
	"173.245.48.0/20", "103.21.244.0/22", "103.22.200.0/22", "103.31.4.0/22",
	"141.101.64.0/18", "108.162.192.0/18", "190.93.240.0/20", "188.114.96.0/20",
	"197.234.240.0/22", "198.41.128.0/17", "162.158.0.0/15", "104.16.0.0/13",
	"104.24.0.0/14", "172.64.0.0/13", "131.0.72.0/22",
	"2400:cb00::/32", "2606:4700::/32", "2803:f800::/32", "2405:b500::/32",
	"2405:8100::/32", "2a06:98c0::/29", "2c0f:f248::/32",
};
const size_t CLOUDFLARE_RANGES_COUNT = std::size(CLOUDFLARE_RANGES);

namespace {

constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

void unmap(IpAddr &a)
{
	if (a.family == AF_INET6 && memcmp(a.b.data(), kMappedPrefix, 12) == 0) {
		memmove(a.b.data(), a.b.data() + 12, 4);
		memset(a.b.data() + 4, 0, 12);
		a.family = AF_INET;
	}
}

/* One X-Forwarded-For entry: an address, optionally "v4:port" or "[v6]:port". */
bool xff_entry(std::string_view s, IpAddr &out)
{
	s = trim(s);
	if (!s.empty() && s.front() == '[') {
		size_t close = s.find(']');
		if (close == std::string_view::npos)
			return false;
		return ip_parse(s.substr(0, close + 1), out);
	}
	size_t colon = s.find(':');
	if (colon != std::string_view::npos && s.find(':', colon + 1) == std::string_view::npos)
		s = s.substr(0, colon); /* IPv4 with a port */
	return ip_parse(s, out);
}

} // namespace

std::string IpAddr::str() const
{
	char buf[INET6_ADDRSTRLEN] = "";
	if (family == 0 || !inet_ntop(family, b.data(), buf, sizeof(buf)))
		return "";
	return buf;
}

bool ip_parse(std::string_view s, IpAddr &out)
{
	if (s.size() >= 2 && s.front() == '[' && s.back() == ']')
		s = s.substr(1, s.size() - 2);
	if (s.empty() || s.size() >= INET6_ADDRSTRLEN)
		return false;
	std::string z(s);
	IpAddr a;
	if (z.find(':') != std::string::npos) {
		if (inet_pton(AF_INET6, z.c_str(), a.b.data()) != 1)
			return false;
		a.family = AF_INET6;
	} else {
		if (inet_pton(AF_INET, z.c_str(), a.b.data()) != 1)
			return false;
		a.family = AF_INET;
	}
	unmap(a);
	out = a;
	return true;
}

bool ip_from_sockaddr(const sockaddr *sa, IpAddr &out)
{
	IpAddr a;
	if (!sa)
		return false;
	if (sa->sa_family == AF_INET) {
		memcpy(a.b.data(), &reinterpret_cast<const sockaddr_in *>(sa)->sin_addr, 4);
		a.family = AF_INET;
	} else if (sa->sa_family == AF_INET6) {
		memcpy(a.b.data(), &reinterpret_cast<const sockaddr_in6 *>(sa)->sin6_addr, 16);
		a.family = AF_INET6;
		unmap(a);
	} else {
		return false;
	}
	out = a;
	return true;
}

bool Cidr::contains(const IpAddr &a) const
{
	if (a.family != net.family)
		return false;
	unsigned full = bits / 8, rest = bits % 8;
	if (memcmp(a.b.data(), net.b.data(), full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = uint8_t(0xff << (8 - rest));
	return (a.b[full] & mask) == (net.b[full] & mask);
}

bool cidr_parse(std::string_view s, Cidr &out)
{
	size_t slash = s.find('/');
	Cidr c;
	if (!ip_parse(s.substr(0, slash), c.net))
		return false;
	unsigned max = c.net.family == AF_INET ? 32 : 128;
	c.bits = max;
	if (slash != std::string_view::npos) {
		std::string_view p = s.substr(slash + 1);
		if (p.empty() || p.size() > 3)
			return false;
		c.bits = 0;
		for (char ch : p) {
			if (ch < '0' || ch > '9')
				return false;
			c.bits = c.bits * 10 + unsigned(ch - '0');
		}
		if (c.bits > max)
			return false;
	}
	/* Host bits ("10.1.2.3/8") are ignored, as the configuration check allows them. */
	for (unsigned i = c.bits; i < max; i++)
		c.net.b[i / 8] &= uint8_t(~(0x80 >> (i % 8)));
	out = c;
	return true;
}

bool ProxySet::add(std::string_view entry)
{
	if (entry == "cloudflare") {
		for (const char *r : CLOUDFLARE_RANGES) {
			Cidr c;
			cidr_parse(r, c);
			nets_.push_back(c);
		}
		return true;
	}
	Cidr c;
	if (!cidr_parse(entry, c))
		return false;
	nets_.push_back(c);
	return true;
}

bool ProxySet::contains(const IpAddr &a) const
{
	for (const Cidr &c : nets_)
		if (c.contains(a))
			return true;
	return false;
}

IpAddr client_address(const IpAddr &peer, std::string_view xff, const ProxySet &trusted)
{
	IpAddr client = peer;
	if (!trusted.contains(peer))
		return client;
	while (!xff.empty()) {
		size_t comma = xff.rfind(',');
		std::string_view entry = comma == std::string_view::npos ? xff : xff.substr(comma + 1);
		xff = comma == std::string_view::npos ? std::string_view() : xff.substr(0, comma);
		if (trim(entry).empty())
			continue;
		IpAddr hop;
		if (!xff_entry(entry, hop))
			break;
		client = hop;
		if (!trusted.contains(hop))
			break;
	}
	return client;
}

std::string rate_key(const IpAddr &a)
{
	if (a.family != AF_INET6)
		return a.str();
	IpAddr net = a;
	memset(net.b.data() + 8, 0, 8);
	return net.str() + "/64";
}

} // namespace posthorn::http
