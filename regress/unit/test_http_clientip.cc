/*
 * httpd client addresses: IP and CIDR parsing, the cloudflare preset,
 * X-Forwarded-For through trusted and untrusted proxies, rate keys.
 */
#include <arpa/inet.h>

#include <string>

#include "httpd/clientip.h"
#include "regress/unit/unit.h"

using namespace posthorn::http;

namespace {

IpAddr ip(const char *s)
{
	IpAddr a;
	if (!ip_parse(s, a))
		fail_msg("bad test address %s", s);
	return a;
}

ProxySet proxies(std::initializer_list<const char *> entries)
{
	ProxySet p;
	for (const char *e : entries)
		assert_true(p.add(e));
	return p;
}

void test_ip_parse(void **)
{
	IpAddr a;
	assert_true(ip_parse("192.0.2.1", a));
	assert_int_equal(a.family, AF_INET);
	assert_string_equal(a.str().c_str(), "192.0.2.1");
	assert_true(ip_parse("[2001:DB8::1]", a));
	assert_int_equal(a.family, AF_INET6);
	assert_string_equal(a.str().c_str(), "2001:db8::1");
	assert_true(ip_parse("::ffff:198.51.100.9", a));
	assert_int_equal(a.family, AF_INET);
	assert_string_equal(a.str().c_str(), "198.51.100.9");
	for (const char *bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "example.com", "1.2.3.4:80",
	    "[::1", "::g"})
		assert_false(ip_parse(bad, a));
}

void test_cidr(void **)
{
	Cidr c;
	assert_true(cidr_parse("10.0.0.0/8", c));
	assert_true(c.contains(ip("10.255.1.2")));
	assert_false(c.contains(ip("11.0.0.1")));
	assert_false(c.contains(ip("::ffff:11.0.0.1")));
	assert_true(c.contains(ip("::ffff:10.0.0.1")));
	assert_true(cidr_parse("10.1.2.3/8", c)); /* host bits masked, as config accepts them */
	assert_true(c.contains(ip("10.9.9.9")));
	assert_true(cidr_parse("2a06:98c0::/29", c));
	assert_true(c.contains(ip("2a06:98c7:ffff::1")));
	assert_false(c.contains(ip("2a06:98c8::1")));
	assert_true(cidr_parse("192.0.2.7", c));
	assert_int_equal(c.bits, 32);
	assert_false(c.contains(ip("192.0.2.8")));
	assert_true(cidr_parse("0.0.0.0/0", c));
	assert_true(c.contains(ip("203.0.113.1")));
	assert_false(c.contains(ip("2001:db8::1")));
	for (const char *bad : {"10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/x", "x/8", "10.0.0.0/0008"})
		assert_false(cidr_parse(bad, c));
}

void test_cloudflare_preset(void **)
{
	ProxySet cf = proxies({"cloudflare"});
	assert_int_equal(CLOUDFLARE_RANGES_COUNT, 22);
	for (size_t i = 0; i < CLOUDFLARE_RANGES_COUNT; i++) {
		Cidr c;
		assert_true(cidr_parse(CLOUDFLARE_RANGES[i], c));
		assert_true(cf.contains(c.net));
	}
	assert_true(cf.contains(ip("173.245.48.1")));
	assert_true(cf.contains(ip("104.16.0.1")));
	assert_true(cf.contains(ip("172.71.255.254")));
	assert_true(cf.contains(ip("2606:4700::6810:85e5")));
	assert_false(cf.contains(ip("8.8.8.8")));
	assert_false(cf.contains(ip("172.72.0.1")));
	assert_false(cf.contains(ip("2001:db8::1")));
	ProxySet bad;
	assert_false(bad.add("cloudfare"));
	assert_true(bad.empty());
}

void test_xff_untrusted_peer(void **)
{
	ProxySet p = proxies({"10.0.0.0/8"});
	/* a client that is not a proxy cannot choose its address */
	IpAddr c = client_address(ip("203.0.113.5"), "1.2.3.4", p);
	assert_string_equal(c.str().c_str(), "203.0.113.5");
	ProxySet none;
	c = client_address(ip("10.0.0.1"), "1.2.3.4", none);
	assert_string_equal(c.str().c_str(), "10.0.0.1");
}

void test_xff_trusted_peer(void **)
{
	ProxySet p = proxies({"10.0.0.0/8", "cloudflare"});
	/* the right-most entry that is not a trusted proxy */
	IpAddr c = client_address(ip("10.0.0.1"), "1.2.3.4, 198.51.100.7, 104.16.0.9", p);
	assert_string_equal(c.str().c_str(), "198.51.100.7");
	/* a spoofed left-most entry is not believed */
	c = client_address(ip("10.0.0.1"), "6.6.6.6, 198.51.100.7", p);
	assert_string_equal(c.str().c_str(), "198.51.100.7");
	/* every hop trusted: the left-most */
	c = client_address(ip("10.0.0.1"), "10.1.1.1, 10.2.2.2", p);
	assert_string_equal(c.str().c_str(), "10.1.1.1");
	/* no header: the peer */
	c = client_address(ip("10.0.0.1"), "", p);
	assert_string_equal(c.str().c_str(), "10.0.0.1");
	/* several headers arrive joined with ", "; ports and brackets are tolerated */
	c = client_address(ip("10.0.0.1"), "198.51.100.7:5555, ,[2001:db8::5]:443", p);
	assert_string_equal(c.str().c_str(), "2001:db8::5");
	/* a malformed hop stops the walk at the last good one */
	c = client_address(ip("10.0.0.1"), "198.51.100.7, garbage, 10.3.3.3", p);
	assert_string_equal(c.str().c_str(), "10.3.3.3");
	c = client_address(ip("10.0.0.1"), "garbage", p);
	assert_string_equal(c.str().c_str(), "10.0.0.1");
}

void test_rate_key(void **)
{
	assert_string_equal(rate_key(ip("192.0.2.1")).c_str(), "192.0.2.1");
	assert_string_equal(rate_key(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")).c_str(), "2001:db8:1:2::/64");
	assert_string_equal(rate_key(ip("2001:db8:1:2::1")).c_str(), rate_key(ip("2001:db8:1:2:ffff::9")).c_str());
	assert_string_not_equal(rate_key(ip("2001:db8:1:2::1")).c_str(), rate_key(ip("2001:db8:1:3::1")).c_str());
}

} // namespace

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ip_parse),
		cmocka_unit_test(test_cidr),
		cmocka_unit_test(test_cloudflare_preset),
		cmocka_unit_test(test_xff_untrusted_peer),
		cmocka_unit_test(test_xff_trusted_peer),
		cmocka_unit_test(test_rate_key),
	};
	return cmocka_run_group_tests(tests, nullptr, nullptr);
}
