/*
 * Value syntax of posthorn.conf(5): durations, sizes, booleans, lists, rate
 * limits, addresses, origins, templates, enum names. Pure functions.
 */
#include <arpa/inet.h>

#include <cctype>
#include <cstdlib>
#include <iterator>
#include <utility>

#include "config.h"
#include "config_internal.h"
#include "message.h"
#include "text.h"

namespace posthorn {

namespace {

using namespace config_detail;

bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* Leading decimal digits of s into n; false on none or overflow. */
bool take_number(std::string_view &s, uint64_t &n)
{
	size_t i = 0;
	n = 0;
	while (i < s.size() && is_digit(s[i])) {
		if (__builtin_mul_overflow(n, 10, &n) ||
		    __builtin_add_overflow(n, uint64_t(s[i] - '0'), &n))
			return false;
		i++;
	}
	s.remove_prefix(i);
	return i > 0;
}

bool parse_port(std::string_view s, unsigned &port)
{
	uint64_t n;
	if (s.empty() || s.size() > 5 || !take_number(s, n) || !s.empty() || n < 1 || n > 65535)
		return false;
	port = unsigned(n);
	return true;
}

bool has_ctl_or_space(std::string_view s)
{
	for (unsigned char c : s)
		if (c <= 0x20 || c == 0x7f)
			return true;
	return false;
}

template <typename E, size_t N>
bool lookup(const std::pair<E, const char *> (&table)[N], std::string_view s, E &out)
{
	for (const auto &[v, name] : table)
		if (s == name) {
			out = v;
			return true;
		}
	return false;
}

template <typename E, size_t N>
const char *name_of(const std::pair<E, const char *> (&table)[N], E v)
{
	for (const auto &[e, name] : table)
		if (e == v)
			return name;
	return "?";
}

const std::pair<TransportType, const char *> transport_names[] = {
	{TransportType::postmark, "postmark"}, {TransportType::resend, "resend"},
	{TransportType::mailgun, "mailgun"}, {TransportType::ses, "ses"},
	{TransportType::smtp, "smtp"}, {TransportType::file, "file"},
};
const std::pair<TlsMode, const char *> tls_names[] = {
	{TlsMode::starttls, "starttls"}, {TlsMode::implicit, "implicit"}, {TlsMode::none, "none"},
};
const std::pair<AuthRequired, const char *> auth_required_names[] = {
	{AuthRequired::smtp_auth, "smtp-auth"}, {AuthRequired::client_cert, "client-cert"},
	{AuthRequired::either, "either"}, {AuthRequired::none, "none"},
};
const std::pair<EndpointAuth, const char *> endpoint_auth_names[] = {
	{EndpointAuth::form, "form"}, {EndpointAuth::api_key, "api-key"},
};
const std::pair<Delivery, const char *> delivery_names[] = {
	{Delivery::queue, "queue"}, {Delivery::sync, "sync"},
};
const std::pair<LogDest, const char *> log_dest_names[] = {
	{LogDest::stderr_, "stderr"}, {LogDest::syslog, "syslog"},
};
const std::pair<LogFormat, const char *> log_format_names[] = {
	{LogFormat::json, "json"}, {LogFormat::text, "text"},
};
const std::pair<LogLevel, const char *> log_level_names[] = {
	{LogLevel::debug, "debug"}, {LogLevel::info, "info"},
	{LogLevel::warn, "warn"}, {LogLevel::error, "error"},
};

bool valid_domain(std::string_view d)
{
	if (d.empty() || d.size() > 253 || d.front() == '.' || d.back() == '.' ||
	    d.find("..") != std::string_view::npos)
		return false;
	for (unsigned char c : d)
		if (!(std::isalnum(c) || c == '-' || c == '.' || c >= 0x80))
			return false;
	return true;
}

} // namespace

std::string ConfigError::to_string() const
{
	std::string s = file;
	if (line > 0)
		s += ":" + std::to_string(line);
	s += ": ";
	if (!key.empty())
		s += key + ": ";
	return s + message;
}

const TransportConfig *Config::find_transport(std::string_view name) const
{
	for (const TransportConfig &t : transports)
		if (t.name == name)
			return &t;
	return nullptr;
}

const char *to_string(TransportType v) { return name_of(transport_names, v); }
const char *to_string(TlsMode v) { return name_of(tls_names, v); }
const char *to_string(AuthRequired v) { return name_of(auth_required_names, v); }
const char *to_string(EndpointAuth v) { return name_of(endpoint_auth_names, v); }
const char *to_string(Delivery v) { return name_of(delivery_names, v); }

namespace config_detail {

bool enum_parse(std::string_view s, TransportType &o) { return lookup(transport_names, s, o); }
bool enum_parse(std::string_view s, TlsMode &o) { return lookup(tls_names, s, o); }
bool enum_parse(std::string_view s, AuthRequired &o) { return lookup(auth_required_names, s, o); }
bool enum_parse(std::string_view s, EndpointAuth &o) { return lookup(endpoint_auth_names, s, o); }
bool enum_parse(std::string_view s, Delivery &o) { return lookup(delivery_names, s, o); }
bool enum_parse(std::string_view s, LogDest &o) { return lookup(log_dest_names, s, o); }
bool enum_parse(std::string_view s, LogFormat &o) { return lookup(log_format_names, s, o); }
bool enum_parse(std::string_view s, LogLevel &o) { return lookup(log_level_names, s, o); }
const char *enum_name(LogDest v) { return name_of(log_dest_names, v); }
const char *enum_name(LogFormat v) { return name_of(log_format_names, v); }
const char *enum_name(LogLevel v) { return name_of(log_level_names, v); }

bool valid_hostname(std::string_view s)
{
	return !s.empty() && s.size() <= 253 && !has_ctl_or_space(s);
}

bool valid_field_name(std::string_view s)
{
	if (s.empty() || s.size() > 128)
		return false;
	for (unsigned char c : s)
		if (!(std::isalnum(c) || c == '_' || c == '-'))
			return false;
	return true;
}

bool valid_address_pattern(std::string_view s)
{
	if (s == "*")
		return true;
	if (s.substr(0, 2) == "*@")
		return valid_domain(s.substr(2));
	return valid_addr_spec(s);
}

/* host:port or [v6]:port; host a name or an IPv4 address. */
bool valid_listen(std::string_view s, std::string &why)
{
	size_t colon = s.rfind(':');
	if (colon == std::string_view::npos) {
		why = "expected HOST:PORT or [IPV6]:PORT";
		return false;
	}
	std::string_view host = s.substr(0, colon);
	unsigned port;
	if (!parse_port(s.substr(colon + 1), port)) {
		why = "port must be 1..65535";
		return false;
	}
	if (!host.empty() && host.front() == '[') {
		unsigned char buf[16];
		std::string v6(host.substr(1, host.size() - 1));
		if (host.back() != ']' || (v6.pop_back(), inet_pton(AF_INET6, v6.c_str(), buf) != 1)) {
			why = "invalid IPv6 address";
			return false;
		}
		return true;
	}
	if (host.find(':') != std::string_view::npos) {
		why = "an IPv6 address needs brackets: [ADDR]:PORT";
		return false;
	}
	if (!valid_domain(host)) {
		why = "invalid host";
		return false;
	}
	return true;
}

/* "cloudflare", an address, or ADDR/PREFIX. */
bool valid_proxy(std::string_view s)
{
	if (s == "cloudflare")
		return true;
	size_t slash = s.find('/');
	std::string addr(s.substr(0, slash));
	unsigned char buf[16];
	int af = addr.find(':') != std::string::npos ? AF_INET6 : AF_INET;
	if (inet_pton(af, addr.c_str(), buf) != 1)
		return false;
	if (slash == std::string_view::npos)
		return true;
	std::string_view p = s.substr(slash + 1);
	uint64_t bits;
	if (p.empty() || p.size() > 3 || !take_number(p, bits) || !p.empty())
		return false;
	return bits <= (af == AF_INET6 ? 128u : 32u);
}

} // namespace config_detail

/*
 * Components in order d, h, m, s, each at most once: "1h30m", "4d", "30s".
 * A bare number has no unit and is refused: "30" could mean anything.
 */
bool parse_duration(std::string_view s, uint64_t &seconds)
{
	static const std::pair<char, uint64_t> units[] = {
		{'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1},
	};
	constexpr uint64_t max = 36500ull * 86400; /* a century is surely a typo already */
	size_t next = 0;
	uint64_t total = 0;

	if (s.empty())
		return false;
	while (!s.empty()) {
		uint64_t n;
		if (!take_number(s, n) || s.empty())
			return false;
		char u = s.front();
		s.remove_prefix(1);
		while (next < std::size(units) && units[next].first != u)
			next++;
		if (next == std::size(units))
			return false;
		if (__builtin_mul_overflow(n, units[next].second, &n) ||
		    __builtin_add_overflow(total, n, &total))
			return false;
		next++;
	}
	if (total > max)
		return false;
	seconds = total;
	return true;
}

/* "512", "64KB", "1 MB", "2g": binary multiples, unit case-insensitive. */
bool parse_size(std::string_view s, uint64_t &bytes)
{
	static const std::pair<const char *, uint64_t> units[] = {
		{"", 1}, {"b", 1}, {"k", 1ull << 10}, {"kb", 1ull << 10}, {"kib", 1ull << 10},
		{"m", 1ull << 20}, {"mb", 1ull << 20}, {"mib", 1ull << 20},
		{"g", 1ull << 30}, {"gb", 1ull << 30}, {"gib", 1ull << 30},
	};
	uint64_t n;
	if (!take_number(s, n))
		return false;
	s = trim(s);
	for (const auto &[name, mult] : units)
		if (iequals(s, name)) {
			if (__builtin_mul_overflow(n, mult, &n))
				return false;
			bytes = n;
			return true;
		}
	return false;
}

bool parse_bool(std::string_view s, bool &out)
{
	static const std::pair<const char *, bool> words[] = {
		{"yes", true}, {"true", true}, {"on", true},
		{"no", false}, {"false", false}, {"off", false},
	};
	for (const auto &[w, v] : words)
		if (iequals(s, w)) {
			out = v;
			return true;
		}
	return false;
}

/*
 * Comma-separated items, trimmed, empty ones dropped. A comma inside "...",
 * <...> or ${...} does not split ("Doe, John" <j@example.com>).
 */
std::vector<std::string> split_list(std::string_view s)
{
	std::vector<std::string> items;
	std::string cur;
	bool quoted = false, subst = false;
	int angle = 0;

	auto flush = [&] {
		std::string_view t = trim(cur);
		if (!t.empty())
			items.emplace_back(t);
		cur.clear();
	};
	for (size_t i = 0; i < s.size(); i++) {
		char c = s[i];
		if (quoted) {
			if (c == '\\' && i + 1 < s.size())
				cur += s[i++];
			else if (c == '"')
				quoted = false;
		} else if (subst) {
			subst = c != '}';
		} else if (c == '"') {
			quoted = true;
		} else if (c == '$' && i + 1 < s.size() && s[i + 1] == '{') {
			subst = true;
		} else if (c == '<') {
			angle++;
		} else if (c == '>' && angle > 0) {
			angle--;
		} else if (c == ',' && angle == 0) {
			flush();
			continue;
		}
		cur += s[i];
	}
	flush();
	return items;
}

/* COUNT/INTERVAL, e.g. 5/1m, 100/1h. */
bool parse_rate_limit(std::string_view s, RateLimit &out)
{
	size_t slash = s.find('/');
	if (slash == std::string_view::npos)
		return false;
	std::string_view c = s.substr(0, slash);
	uint64_t count, interval;
	if (!take_number(c, count) || !c.empty() || count < 1 || count > 1000000)
		return false;
	if (!parse_duration(s.substr(slash + 1), interval) || interval == 0)
		return false;
	out.count = uint32_t(count);
	out.interval = interval;
	return true;
}

/* The same rules the relayer applies to every message (message.cc), so -n cannot pass what delivery refuses. */
bool valid_address(std::string_view s)
{
	std::string name, addr;
	return parse_mailbox(s, name, addr);
}

bool normalize_origin(std::string_view s, std::string &out)
{
	size_t sep = s.find("://");
	if (sep == std::string_view::npos)
		return false;
	std::string scheme = ascii_lowered(s.substr(0, sep));
	if (scheme != "http" && scheme != "https")
		return false;
	std::string_view rest = s.substr(sep + 3);
	if (!rest.empty() && rest.back() == '/')
		rest.remove_suffix(1);
	if (rest.empty() || has_ctl_or_space(rest) || rest.find_first_of("/?#@") != std::string_view::npos)
		return false;

	std::string_view host = rest, port_s;
	if (rest.front() == '[') {
		size_t close = rest.find(']');
		if (close == std::string_view::npos)
			return false;
		host = rest.substr(0, close + 1);
		std::string_view after = rest.substr(close + 1);
		if (!after.empty() && (after.front() != ':' || (port_s = after.substr(1)).empty()))
			return false;
		std::string v6(host.substr(1, host.size() - 2));
		unsigned char buf[16];
		if (inet_pton(AF_INET6, v6.c_str(), buf) != 1)
			return false;
	} else {
		size_t colon = rest.find(':');
		if (colon != std::string_view::npos) {
			host = rest.substr(0, colon);
			if ((port_s = rest.substr(colon + 1)).empty())
				return false;
		}
		if (!valid_domain(host))
			return false;
	}
	unsigned port = 0;
	if (!port_s.empty() && !parse_port(port_s, port))
		return false;
	if ((scheme == "http" && port == 80) || (scheme == "https" && port == 443))
		port = 0;
	out = scheme + "://" + ascii_lowered(host);
	if (port != 0)
		out += ":" + std::to_string(port);
	return true;
}

bool template_compiles(std::string_view tmpl, std::string &why)
{
	for (size_t i = 0; (i = tmpl.find("{{", i)) != std::string_view::npos;) {
		size_t close = tmpl.find("}}", i + 2);
		if (close == std::string_view::npos) {
			why = "unclosed \"{{\" at offset " + std::to_string(i);
			return false;
		}
		std::string_view inner = tmpl.substr(i + 2, close - i - 2);
		if (inner.size() < 2 || inner.front() != '.' || !valid_field_name(inner.substr(1))) {
			if (inner.size() > 40)
				inner = inner.substr(0, 40);
			why = "unsupported template action \"{{" + std::string(inner) +
			    "}}\" (only {{.name}} is supported)";
			return false;
		}
		i = close + 2;
	}
	return true;
}

} // namespace posthorn
