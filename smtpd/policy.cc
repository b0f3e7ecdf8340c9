#include "policy.h"

#include <strings.h>

#include "common/message.h"

namespace posthorn {

namespace {

bool iequal(std::string_view a, std::string_view b)
{
	return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

std::string upper(std::string_view s)
{
	std::string out(s);
	for (char &c : out)
		if (c >= 'a' && c <= 'z')
			c = static_cast<char>(c - 'a' + 'A');
	return out;
}

std::string_view skip_blanks(std::string_view s)
{
	while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
		s.remove_prefix(1);
	return s;
}

/* "<@a,@b:user@d>" → "user@d": RFC 5321 says to accept and ignore source routes. */
std::string_view strip_source_route(std::string_view a)
{
	if (a.empty() || a.front() != '@')
		return a;
	size_t colon = a.find(':');
	return colon == std::string_view::npos ? std::string_view() : a.substr(colon + 1);
}

bool esmtp_keyword(std::string_view k)
{
	if (k.empty() || k.size() > 64)
		return false;
	for (unsigned char c : k)
		if (!(isalnum(c) || c == '-'))
			return false;
	return isalnum(static_cast<unsigned char>(k.front()));
}

bool esmtp_value(std::string_view v)
{
	if (v.empty() || v.size() > 512)
		return false;
	for (unsigned char c : v)
		if (c < 33 || c > 126 || c == '=')
			return false;
	return true;
}

bool parse_params(std::string_view rest, SmtpPath &out)
{
	while (!(rest = skip_blanks(rest)).empty()) {
		size_t end = rest.find_first_of(" \t");
		std::string_view p = rest.substr(0, end);
		rest = end == std::string_view::npos ? std::string_view() : rest.substr(end);
		size_t eq = p.find('=');
		std::string_view key = p.substr(0, eq);
		std::string_view value = eq == std::string_view::npos ? std::string_view() : p.substr(eq + 1);
		if (!esmtp_keyword(key) || (eq != std::string_view::npos && !esmtp_value(value)))
			return false;
		std::string k = upper(key);
		for (const auto &[seen, v] : out.params)
			if (seen == k)
				return false;
		out.params.emplace_back(std::move(k), std::string(value));
		if (out.params.size() > 16)
			return false;
	}
	return true;
}

} // namespace

PathError parse_path(std::string_view arg, std::string_view keyword, bool allow_null, SmtpPath &out)
{
	out = SmtpPath();
	if (arg.size() < keyword.size() + 1 || !iequal(arg.substr(0, keyword.size()), keyword) ||
	    arg[keyword.size()] != ':')
		return PathError::syntax;
	arg = skip_blanks(arg.substr(keyword.size() + 1));
	if (arg.empty() || arg.front() != '<')
		return PathError::syntax;
	size_t close = arg.find('>');
	if (close == std::string_view::npos)
		return PathError::syntax;
	std::string_view addr = strip_source_route(arg.substr(1, close - 1));
	std::string_view rest = arg.substr(close + 1);
	if (!rest.empty() && rest.front() != ' ' && rest.front() != '\t')
		return PathError::syntax;
	if (!parse_params(rest, out))
		return PathError::syntax;
	if (addr.empty() && close == 1)
		return allow_null ? PathError::none : PathError::address;
	if (!valid_addr_spec(addr))
		return PathError::address;
	out.addr.assign(addr);
	return PathError::none;
}

ParamError parse_mail_params(const SmtpPath &path, MailParams &out, std::string &bad)
{
	out = MailParams();
	for (const auto &[key, value] : path.params) {
		bad = key;
		if (key == "SIZE") {
			if (value.empty() || value.size() > 19 ||
			    value.find_first_not_of("0123456789") != std::string::npos)
				return ParamError::syntax;
			out.size = std::stoull(value);
		} else if (key == "BODY") {
			if (!iequal(value, "7BIT") && !iequal(value, "8BITMIME"))
				return ParamError::syntax;
		} else if (key == "AUTH") {
			if (value.empty())
				return ParamError::syntax;
		} else
			return ParamError::unsupported;
	}
	bad.clear();
	return ParamError::none;
}

bool address_allowed(const std::vector<std::string> &patterns, std::string_view addr)
{
	size_t at = addr.rfind('@');
	std::string_view domain = at == std::string_view::npos ? std::string_view() : addr.substr(at + 1);
	for (const std::string &p : patterns) {
		if (p == "*")
			return true;
		if (addr.empty())
			continue;
		if (p.size() > 2 && p[0] == '*' && p[1] == '@') {
			if (at != std::string_view::npos && iequal(std::string_view(p).substr(2), domain))
				return true;
		} else if (iequal(p, addr))
			return true;
	}
	return false;
}

std::string printable(std::string_view s, size_t max)
{
	std::string out;
	for (unsigned char c : s.substr(0, max))
		out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
	if (s.size() > max)
		out += "...";
	return out;
}

} // namespace posthorn
