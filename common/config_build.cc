/*
 * posthorn.conf(5), stage 4: convert the substituted entries to the typed
 * structs of config.h and apply every parse-time rule. Errors are collected;
 * a bad value leaves the default in place so later rules still run.
 */
#include <unistd.h>

#include <climits>
#include <cstring>
#include <memory>

#include <tls.h>

#include "config.h"
#include "config_internal.h"

namespace posthorn::config_detail {

namespace {

std::string fmt_duration(uint64_t s)
{
	static const std::pair<char, uint64_t> units[] = {{'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}};
	std::string out;
	for (const auto &[u, mult] : units)
		if (s >= mult || (u == 's' && out.empty())) {
			out += std::to_string(s / mult) + u;
			s %= mult;
		}
	return out;
}

std::string fmt_size(uint64_t b)
{
	if (b >= (1u << 30) && b % (1u << 30) == 0)
		return std::to_string(b >> 30) + "GB";
	if (b >= (1u << 20) && b % (1u << 20) == 0)
		return std::to_string(b >> 20) + "MB";
	if (b >= 1024 && b % 1024 == 0)
		return std::to_string(b >> 10) + "KB";
	return std::to_string(b);
}

bool has_word(const char *words, std::string_view w)
{
	std::string_view s(words);
	while (!s.empty()) {
		size_t sp = s.find(' ');
		if (s.substr(0, sp) == w)
			return true;
		s.remove_prefix(sp == std::string_view::npos ? s.size() : sp + 1);
	}
	return false;
}

/* Keys a transport type accepts beyond type, timeout and max_inflight, and those it needs. */
struct TransportKeys {
	TransportType type;
	const char *accepted;
	const char *required;
};
const TransportKeys transport_keys[] = {
	{TransportType::postmark, "api_key base_url message_stream", "api_key"},
	{TransportType::resend, "api_key base_url", "api_key"},
	{TransportType::mailgun, "api_key base_url domain", "api_key domain"},
	{TransportType::ses, "base_url region access_key_id secret_access_key session_token",
	    "region access_key_id secret_access_key"},
	{TransportType::smtp, "host port tls username password helo tls_verify", "host"},
	{TransportType::file, "directory", "directory"},
};

const TransportKeys &keys_of(TransportType t)
{
	for (const TransportKeys &k : transport_keys)
		if (k.type == t)
			return k;
	return transport_keys[0];
}

bool is_hex64(std::string_view s)
{
	if (s.size() != 64)
		return false;
	for (char c : s)
		if (!isxdigit((unsigned char)c))
			return false;
	return true;
}

bool absolute(std::string_view s) { return !s.empty() && s.front() == '/'; }

/* attachment_types: "type/subtype", or "type/" and a star for any subtype; RFC 2045 tokens. */
bool valid_media_range(std::string_view s)
{
	size_t slash = s.find('/');
	if (slash == std::string_view::npos || slash == 0 || slash + 1 == s.size() || s.size() > 255)
		return false;
	std::string_view type = s.substr(0, slash), sub = s.substr(slash + 1);
	auto token = [](std::string_view t) {
		for (unsigned char c : t)
			if (c <= 0x20 || c >= 0x7f || strchr("()<>@,;:\\\"/[]?=*", c))
				return false;
		return true;
	};
	return token(type) && (sub == "*" || token(sub));
}

struct TlsConfigFree {
	void operator()(struct tls_config *c) const { tls_config_free(c); }
};
struct TlsFree {
	void operator()(struct tls *t) const { tls_free(t); }
};

/* Load the PEMs into a server context as smtpd will; "" when they work. */
std::string tls_check(const std::string &cert, const std::string &key, const std::string *ca)
{
	if (tls_init() == -1)
		return "tls_init failed";
	std::unique_ptr<struct tls_config, TlsConfigFree> c(tls_config_new());
	std::unique_ptr<struct tls, TlsFree> t(tls_server());
	if (!c || !t)
		return "out of memory";
	auto fail = [&](const char *e) { return std::string(e ? e : "unknown TLS error"); };
	if (tls_config_set_cert_mem(c.get(), (const uint8_t *)cert.data(), cert.size()) == -1 ||
	    tls_config_set_key_mem(c.get(), (const uint8_t *)key.data(), key.size()) == -1)
		return fail(tls_config_error(c.get()));
	if (ca) {
		if (tls_config_set_ca_mem(c.get(), (const uint8_t *)ca->data(), ca->size()) == -1)
			return fail(tls_config_error(c.get()));
		tls_config_verify_client_optional(c.get());
	}
	if (tls_configure(t.get(), c.get()) == -1)
		return fail(tls_error(t.get()));
	return "";
}

class Builder {
public:
	Builder(Parsed &p, const ConfigOptions &o, Config &c) : p(p), opts(o), cfg(c) {}
	void run();

private:
	Parsed &p;
	const ConfigOptions &opts;
	Config &cfg;
	const RawSection *cur = nullptr;
	std::vector<std::string> transport_names;
	std::vector<std::pair<std::string, int>> listens;

	void error(int line, std::string_view key, std::string msg) { p.error(line, key, std::move(msg)); }
	bool has(std::string_view key) const { return cur->find(key) != nullptr; }
	bool bad(std::string_view key) const;
	void require(std::string_view key, std::string_view why);
	const RawValue *value(std::string_view key);
	std::vector<const RawValue *> list(std::string_view key);
	bool str(std::string_view key, std::string &out);
	bool path(std::string_view key, std::string &out);
	bool duration(std::string_view key, uint64_t &out, uint64_t min, uint64_t max);
	bool size(std::string_view key, uint64_t &out, uint64_t min, uint64_t max);
	bool boolean(std::string_view key, bool &out);
	template <typename T> bool number(std::string_view key, T &out, uint64_t min, uint64_t max);
	template <typename E> bool choice(std::string_view key, E &out, const char *choices);
	void listen_list(std::vector<std::string> &out);
	void proxies(std::vector<std::string> &out);
	void transport_ref(std::string &out);
	void reject_keys(const char *keys, const std::string &why);

	void global();
	void http();
	void transport();
	void transport_http(TransportConfig &t);
	void transport_smtp(TransportConfig &t);
	void smtp();
	void smtp_tls(SmtpListenerConfig &l);
	void smtp_auth(SmtpListenerConfig &l);
	void load_tls(SmtpListenerConfig &l);
	void endpoint();
	void endpoint_message(EndpointConfig &e);
	void endpoint_body(EndpointConfig &e);
	void endpoint_form(EndpointConfig &e);
	void endpoint_attachments(EndpointConfig &e);
	void endpoint_api(EndpointConfig &e);
	void finish();
};

bool Builder::bad(std::string_view key) const
{
	for (const RawEntry &e : cur->entries)
		if (e.key == key && e.bad)
			return true;
	return false;
}

void Builder::require(std::string_view key, std::string_view why)
{
	if (!has(key))
		error(cur->line, key, "required in " + section_title(*cur) + std::string(why));
}

/* The value of a scalar key that is present, substituted and not empty. */
const RawValue *Builder::value(std::string_view key)
{
	const RawEntry *e = cur->find(key);
	if (!e || e->bad || e->values.empty())
		return nullptr;
	if (e->values[0].text.empty()) {
		error(e->line, key, "empty value (remove the line to get the default)");
		return nullptr;
	}
	return &e->values[0];
}

std::vector<const RawValue *> Builder::list(std::string_view key)
{
	std::vector<const RawValue *> out;
	for (const RawEntry &e : cur->entries)
		if (e.key == key)
			for (const RawValue &v : e.values)
				out.push_back(&v);
	return out;
}

bool Builder::str(std::string_view key, std::string &out)
{
	const RawValue *v = value(key);
	if (v)
		out = v->text;
	return v != nullptr;
}

bool Builder::path(std::string_view key, std::string &out)
{
	const RawValue *v = value(key);
	if (!v)
		return false;
	if (!absolute(v->text)) {
		error(v->line, key, "must be an absolute path:" + shown(key, v->text));
		return false;
	}
	out = v->text;
	return true;
}

bool Builder::duration(std::string_view key, uint64_t &out, uint64_t min, uint64_t max)
{
	const RawValue *v = value(key);
	uint64_t n;
	if (!v)
		return false;
	if (!parse_duration(v->text, n)) {
		error(v->line, key, "invalid duration" + shown(key, v->text) + " (use e.g. 30s, 5m, 1h30m, 4d)");
		return false;
	}
	if (n < min || n > max) {
		error(v->line, key, "must be between " + fmt_duration(min) + " and " + fmt_duration(max));
		return false;
	}
	out = n;
	return true;
}

bool Builder::size(std::string_view key, uint64_t &out, uint64_t min, uint64_t max)
{
	const RawValue *v = value(key);
	uint64_t n;
	if (!v)
		return false;
	if (!parse_size(v->text, n)) {
		error(v->line, key, "invalid size" + shown(key, v->text) + " (use e.g. 512, 64KB, 1MB)");
		return false;
	}
	if (n < min || n > max) {
		error(v->line, key, "must be between " + fmt_size(min) + " and " + fmt_size(max));
		return false;
	}
	out = n;
	return true;
}

bool Builder::boolean(std::string_view key, bool &out)
{
	const RawValue *v = value(key);
	if (v && !parse_bool(v->text, out)) {
		error(v->line, key, "expected yes or no, got" + shown(key, v->text));
		return false;
	}
	return v != nullptr;
}

template <typename T>
bool Builder::number(std::string_view key, T &out, uint64_t min, uint64_t max)
{
	const RawValue *v = value(key);
	if (!v)
		return false;
	uint64_t n = 0;
	bool ok = v->text.size() <= 10;
	for (char c : v->text)
		ok = ok && c >= '0' && c <= '9';
	if (ok)
		n = strtoull(v->text.c_str(), nullptr, 10);
	if (!ok || n < min || n > max) {
		error(v->line, key, "must be a number from " + std::to_string(min) + " to " +
		    std::to_string(max) + "," + shown(key, v->text));
		return false;
	}
	out = T(n);
	return true;
}

template <typename E>
bool Builder::choice(std::string_view key, E &out, const char *choices)
{
	const RawValue *v = value(key);
	if (v && !enum_parse(v->text, out)) {
		error(v->line, key, "expected " + std::string(choices) + "," + shown(key, v->text));
		return false;
	}
	return v != nullptr;
}

void Builder::listen_list(std::vector<std::string> &out)
{
	for (const RawValue *v : list("listen")) {
		std::string why;
		if (!valid_listen(v->text, why)) {
			error(v->line, "listen", why + ":" + shown("listen", v->text));
			continue;
		}
		for (const auto &[addr, line] : listens)
			if (addr == v->text)
				error(v->line, "listen", "\"" + addr + "\" is already used on line " + std::to_string(line));
		listens.emplace_back(v->text, v->line);
		out.push_back(v->text);
	}
}

void Builder::proxies(std::vector<std::string> &out)
{
	for (const RawValue *v : list("trusted_proxies")) {
		if (valid_proxy(v->text))
			out.push_back(v->text);
		else
			error(v->line, "trusted_proxies", "expected cloudflare, an IP address or a CIDR," +
			    shown("trusted_proxies", v->text));
	}
}

/* `transport` may be left out when exactly one transport is defined. */
void Builder::transport_ref(std::string &out)
{
	const RawValue *v = value("transport");
	if (v) {
		for (const std::string &n : transport_names)
			if (n == v->text) {
				out = n;
				return;
			}
		error(v->line, "transport", "no [transport " + v->text + "] is defined");
	} else if (!has("transport")) {
		if (transport_names.size() == 1)
			out = transport_names[0];
		else
			require("transport", transport_names.empty() ? ": no [transport] section is defined" :
			    ": several transports are defined");
	}
}

void Builder::reject_keys(const char *keys, const std::string &why)
{
	for (const RawEntry &e : cur->entries)
		if (has_word(keys, e.key))
			error(e.line, e.key, "not valid " + why);
}

/* ---- sections ---- */

void Builder::global()
{
	GlobalConfig &g = cfg.global;
	if (str("hostname", g.hostname) && !valid_hostname(g.hostname))
		error(cur->find("hostname")->line, "hostname", "must hold no spaces or control characters");
	str("user", g.user);
	str("relay_user", g.relay_user);
	path("chroot", g.chroot);
	path("spool", g.spool);
	if (path("control_socket", g.control_socket) && g.control_socket.size() >= 108)
		error(cur->find("control_socket")->line, "control_socket", "path too long for a unix socket");
	choice("log", g.log.dest, "stderr or syslog");
	choice("log_format", g.log.format, "json or text");
	choice("log_level", g.log.level, "debug, info, warn or error");
	boolean("strip_client_ip", g.strip_client_ip);
	duration("queue_lifetime", g.queue_lifetime, 60, 365 * 86400);
	duration("retry_initial", g.retry_initial, 1, 86400);
	duration("retry_max", g.retry_max, 1, 86400);
	if (g.retry_max < g.retry_initial)
		error(cur->find("retry_max") ? cur->find("retry_max")->line : cur->find("retry_initial")->line,
		    "retry_max", "must not be less than retry_initial (" + fmt_duration(g.retry_initial) + ")");
	auto line_of = [this](const char *key) { return cur->find(key) ? cur->find(key)->line : 0; };
	/* Separate users are the point of the relayer: fronts must not be able to signal or ptrace it. */
	if (g.user == g.relay_user)
		error(line_of("relay_user") ? line_of("relay_user") : line_of("user"), "relay_user",
		    "must differ from user (" + g.user + "): the relayer holds the provider credentials");
	/* A spool inside the chroot would put the queue within the fronts' reach. */
	std::string root = g.chroot.back() == '/' ? g.chroot : g.chroot + "/";
	if (g.spool == g.chroot || g.spool.compare(0, root.size(), root) == 0)
		error(line_of("spool") ? line_of("spool") : line_of("chroot"), "spool",
		    "must not be inside chroot (" + g.chroot + ")");
}

void Builder::http()
{
	HttpConfig h;
	listen_list(h.listen);
	proxies(h.trusted_proxies);
	duration("read_timeout", h.read_timeout, 1, 3600);
	size("max_header_size", h.max_header_size, 1024, 1024 * 1024);
	cfg.http = std::move(h);
}

void Builder::transport_http(TransportConfig &t)
{
	str("api_key", t.api_key);
	str("message_stream", t.message_stream);
	str("access_key_id", t.access_key_id);
	str("secret_access_key", t.secret_access_key);
	str("session_token", t.session_token);
	if (str("domain", t.domain) && !valid_hostname(t.domain))
		error(cur->find("domain")->line, "domain", "invalid domain" + shown("domain", t.domain));
	if (str("region", t.region) && t.region.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") !=
	    std::string::npos)
		error(cur->find("region")->line, "region", "invalid AWS region" + shown("region", t.region));

	if (const RawValue *v = value("base_url")) {
		std::string_view u = v->text;
		size_t host = u.substr(0, 8) == "https://" ? 8 : u.substr(0, 7) == "http://" ? 7 : 0;
		if (!host || u.size() == host || !valid_hostname(u))
			error(v->line, "base_url", "must be an http:// or https:// URL" + shown("base_url", u));
		while (u.size() > host && u.back() == '/')
			u.remove_suffix(1);
		t.base_url = u;
	} else if (t.type == TransportType::postmark)
		t.base_url = "https://api.postmarkapp.com";
	else if (t.type == TransportType::resend)
		t.base_url = "https://api.resend.com";
	else if (t.type == TransportType::mailgun)
		t.base_url = "https://api.mailgun.net";
	else if (t.type == TransportType::ses && !t.region.empty())
		t.base_url = "https://email." + t.region + ".amazonaws.com";
}

void Builder::transport_smtp(TransportConfig &t)
{
	if (str("host", t.host) && !valid_hostname(t.host))
		error(cur->find("host")->line, "host", "invalid host" + shown("host", t.host));
	choice("tls", t.tls, "starttls, implicit or none");
	if (!number("port", t.port, 1, 65535))
		t.port = t.tls == TlsMode::starttls ? 587 : t.tls == TlsMode::implicit ? 465 : 25;
	str("username", t.username);
	str("password", t.password);
	if (str("helo", t.helo) && !valid_hostname(t.helo))
		error(cur->find("helo")->line, "helo", "must hold no spaces or control characters");
	boolean("tls_verify", t.tls_verify);
	if (has("password") && !has("username"))
		error(cur->find("password")->line, "password", "needs username");
	if (has("username") && !has("password"))
		error(cur->find("username")->line, "username", "needs password");
}

void Builder::transport()
{
	TransportConfig t;
	t.name = cur->name;
	if (!has("type")) {
		require("type", " (postmark, resend, mailgun, ses, smtp or file)");
		return;
	}
	if (!choice("type", t.type, "postmark, resend, mailgun, ses, smtp or file"))
		return;
	const TransportKeys &k = keys_of(t.type);
	for (const RawEntry &e : cur->entries)
		if (!has_word("type timeout max_inflight", e.key) && !has_word(k.accepted, e.key))
			error(e.line, e.key, std::string("not valid for a ") + to_string(t.type) + " transport");
	for (const char *r = k.required; *r;) {
		size_t n = strcspn(r, " ");
		require(std::string_view(r, n), std::string(" for type ") + to_string(t.type));
		r += n + (r[n] == ' ');
	}
	duration("timeout", t.timeout, 1, 600);
	number("max_inflight", t.max_inflight, 1, 1024);
	if (t.type == TransportType::smtp)
		transport_smtp(t);
	else if (t.type == TransportType::file)
		path("directory", t.directory);
	else
		transport_http(t);
	cfg.transports.push_back(std::move(t));
}

void Builder::load_tls(SmtpListenerConfig &l)
{
	struct {
		const char *key;
		const std::string &file;
		std::string &pem;
	} files[] = {
		{"tls_cert", l.tls_cert_file, l.tls_cert_pem},
		{"tls_key", l.tls_key_file, l.tls_key_pem},
		{"client_cert_ca", l.client_cert_ca_file, l.client_cert_ca_pem},
	};
	bool ok = true;
	for (auto &f : files) {
		std::string why;
		if (!f.file.empty() && !read_small_file(f.file, f.pem, why)) {
			error(cur->find(f.key)->line, f.key, "cannot read " + f.file + ": " + why);
			ok = false;
		}
	}
	if (!ok || l.tls_cert_pem.empty() || l.tls_key_pem.empty())
		return;
	std::string why = tls_check(l.tls_cert_pem, l.tls_key_pem, nullptr);
	if (!why.empty()) {
		error(cur->find("tls_cert")->line, "tls_cert", "certificate and key do not load: " + why);
		return;
	}
	if (!l.client_cert_ca_pem.empty() &&
	    !(why = tls_check(l.tls_cert_pem, l.tls_key_pem, &l.client_cert_ca_pem)).empty())
		error(cur->find("client_cert_ca")->line, "client_cert_ca", "CA certificates do not load: " + why);
}

void Builder::smtp_tls(SmtpListenerConfig &l)
{
	if (has("tls") && !choice("tls", l.tls, "starttls, implicit or none"))
		return;  /* the cert rules depend on a valid mode */
	bool req = false;
	if (boolean("require_tls", req) && req && l.tls == TlsMode::none)
		error(cur->find("require_tls")->line, "require_tls", "needs tls = starttls (tls is none)");
	l.require_tls = l.tls != TlsMode::none && (has("require_tls") ? req : true);
	path("tls_cert", l.tls_cert_file);
	path("tls_key", l.tls_key_file);
	path("client_cert_ca", l.client_cert_ca_file);
	if (l.tls != TlsMode::none) {
		std::string why = std::string(" with tls = ") + to_string(l.tls);
		require("tls_cert", why);
		require("tls_key", why);
	} else
		reject_keys("tls_cert tls_key", "with tls = none");
}

void Builder::smtp_auth(SmtpListenerConfig &l)
{
	choice("auth_required", l.auth_required, "smtp-auth, client-cert, either or none");
	std::string mode = std::string(" = ") + to_string(l.auth_required);
	bool certs = l.auth_required == AuthRequired::client_cert || l.auth_required == AuthRequired::either;
	bool users = l.auth_required == AuthRequired::smtp_auth || l.auth_required == AuthRequired::either;
	if (certs) {
		require("client_cert_ca", " with auth_required" + mode);
		if (l.tls == TlsMode::none)
			error(cur->find("auth_required") ? cur->find("auth_required")->line : cur->line,
			    "auth_required", "client certificates need tls = starttls or implicit");
	} else
		reject_keys("client_cert_ca", "with auth_required" + mode);

	for (const RawValue *v : list("smtp_user")) {
		if (v->text.empty() || v->secret.empty()) {
			error(v->line, "smtp_user", "expected NAME SECRET");
			continue;
		}
		for (const SmtpUser &u : l.users)
			if (u.name == v->text)
				error(v->line, "smtp_user", "user \"" + u.name + "\" given more than once");
		l.users.push_back({v->text, v->secret});
	}
	if (!users)
		reject_keys("smtp_user", "with auth_required" + mode);
	else if (l.users.empty() && !bad("smtp_user"))
		error(cur->find("smtp_user") ? cur->find("smtp_user")->line : cur->line, "smtp_user",
		    "at least one user is required with auth_required" + mode);
}

void Builder::smtp()
{
	SmtpListenerConfig l;
	l.name = cur->name;
	require("listen", "");
	listen_list(l.listen);
	smtp_tls(l);
	smtp_auth(l);
	require("allowed_senders", " (an address, *@domain or *)");
	for (auto [key, out] : {std::pair{"allowed_senders", &l.allowed_senders},
	    {"allowed_recipients", &l.allowed_recipients}})
		for (const RawValue *v : list(key)) {
			if (valid_address_pattern(v->text))
				out->push_back(v->text);
			else
				error(v->line, key, "expected an address, *@domain or *," + shown(key, v->text));
		}
	number("max_recipients_per_session", l.max_recipients_per_session, 1, 100000);
	size("max_message_size", l.max_message_size, 1024, 1ull << 30);
	duration("idle_timeout", l.idle_timeout, 1, 3600);
	choice("delivery", l.delivery, "queue or sync");
	number("max_sessions", l.max_sessions, 1, 1000000);
	number("max_sessions_per_ip", l.max_sessions_per_ip, 1, 1000000);
	number("max_auth_failures", l.max_auth_failures, 1, 10000);
	transport_ref(l.transport);
	if (opts.load_files)
		load_tls(l);
	cfg.smtp.push_back(std::move(l));
}

void Builder::endpoint_body(EndpointConfig &e)
{
	std::string why;
	if (const RawValue *v = value("subject")) {
		e.subject = v->text;
		if (!template_compiles(e.subject, why))
			error(v->line, "subject", why);
	}
	if (const RawValue *v = value("body")) {
		e.body = v->text;
		if (!template_compiles(e.body, why))
			error(v->line, "body", why);
	}
	if (!path("body_file", e.body_file))
		return;
	int line = cur->find("body_file")->line;
	if (has("body")) {
		error(line, "body_file", "body and body_file are mutually exclusive");
		return;
	}
	if (!opts.load_files)
		return;
	if (!read_small_file(e.body_file, e.body, why))
		error(line, "body_file", "cannot read " + e.body_file + ": " + why);
	else if (e.body.find('\0') != std::string::npos)
		error(line, "body_file", e.body_file + " contains a NUL byte");
	else if (!template_compiles(e.body, why))
		error(line, "body_file", e.body_file + ": " + why);
}

void Builder::endpoint_message(EndpointConfig &e)
{
	require("to", "");
	for (const RawValue *v : list("to")) {
		if (valid_address(v->text))
			e.to.push_back(v->text);
		else
			error(v->line, "to", "invalid address" + shown("to", v->text));
	}
	require("from", "");
	if (str("from", e.from) && !valid_address(e.from))
		error(cur->find("from")->line, "from", "invalid address" + shown("from", e.from));
	endpoint_body(e);
	for (const RawValue *v : list("required")) {
		if (valid_field_name(v->text))
			e.required.push_back(v->text);
		else
			error(v->line, "required", "invalid field name" + shown("required", v->text));
	}
	for (auto [key, field] : {std::pair{"email_field", &e.email_field},
	    {"reply_to_email_field", &e.reply_to_email_field}, {"honeypot", &e.honeypot}})
		if (str(key, *field) && !valid_field_name(*field))
			error(cur->find(key)->line, key, "invalid field name" + shown(key, *field));
}

void Builder::endpoint_form(EndpointConfig &e)
{
	reject_keys("api_keys idempotency_cache_size", "with auth = form (only for auth = api-key)");
	for (const RawValue *v : list("allowed_origins")) {
		std::string o;
		if (normalize_origin(v->text, o))
			e.allowed_origins.push_back(o);
		else
			error(v->line, "allowed_origins", "expected scheme://host[:port] (http or https)," +
			    shown("allowed_origins", v->text));
	}
	if (str("csrf_secret", e.csrf_secret) && e.csrf_secret.size() < 16)
		error(cur->find("csrf_secret")->line, "csrf_secret", "must be at least 16 bytes");
	for (auto [key, field] : {std::pair{"redirect_success", &e.redirect_success},
	    {"redirect_error", &e.redirect_error}}) {
		if (str(key, *field) && field->front() != '/' && field->compare(0, 7, "http://") != 0 &&
		    field->compare(0, 8, "https://") != 0)
			error(cur->find(key)->line, key, "expected a /path or an http(s):// URL" + shown(key, *field));
	}
	endpoint_attachments(e);
}

void Builder::endpoint_attachments(EndpointConfig &e)
{
	boolean("attachments", e.attachments);
	if (!e.attachments) {
		reject_keys("max_attachment_size max_attachments attachment_types",
		    "without attachments = yes");
		return;
	}
	size("max_attachment_size", e.max_attachment_size, 1, 25ull << 20);
	number("max_attachments", e.max_attachments, 1, 100);
	if (has("attachment_types"))
		e.attachment_types.clear();
	for (const RawValue *v : list("attachment_types")) {
		std::string t = v->text;
		for (char &c : t)
			c = char(tolower((unsigned char)c));
		if (valid_media_range(t))
			e.attachment_types.push_back(t);
		else
			error(v->line, "attachment_types", "expected type/subtype or type/*," +
			    shown("attachment_types", v->text));
	}
}

void Builder::endpoint_api(EndpointConfig &e)
{
	reject_keys("honeypot allowed_origins redirect_success redirect_error csrf_secret csrf_token_ttl "
	    "attachments "
	    "max_attachment_size max_attachments attachment_types",
	    "with auth = api-key (only for auth = form)");
	for (const RawValue *v : list("api_keys")) {
		if (v->text.compare(0, 7, "sha256:") == 0 && !is_hex64(v->text.substr(7)))
			error(v->line, "api_keys", "sha256: must be followed by 64 hex digits");
		else
			e.api_keys.push_back(v->text);
	}
	if (e.api_keys.empty() && !bad("api_keys"))
		error(cur->find("api_keys") ? cur->find("api_keys")->line : cur->line, "api_keys",
		    "at least one key is required with auth = api-key");
	number("idempotency_cache_size", e.idempotency_cache_size, 1, 10000000);
}

void Builder::endpoint()
{
	EndpointConfig e;
	e.path = cur->name;
	choice("auth", e.auth, "form or api-key");
	endpoint_message(e);
	if (e.auth == EndpointAuth::form)
		endpoint_form(e);
	else
		endpoint_api(e);
	duration("csrf_token_ttl", e.csrf_token_ttl, 60, 7 * 86400);
	if (const RawValue *v = value("rate_limit"); v && !parse_rate_limit(v->text, e.rate_limit))
		error(v->line, "rate_limit", "expected COUNT/INTERVAL, e.g. 5/1m," + shown("rate_limit", v->text));
	size("max_body_size", e.max_body_size, 1024, 64ull << 20);
	proxies(e.trusted_proxies);
	boolean("log_failed_submissions", e.log_failed_submissions);
	boolean("dry_run", e.dry_run);
	bool strip;
	if (boolean("strip_client_ip", strip))
		e.strip_client_ip = strip;
	choice("delivery", e.delivery, "queue or sync");
	transport_ref(e.transport);
	cfg.endpoints.push_back(std::move(e));
}

void Builder::finish()
{
	const RawSection *http = nullptr, *first_endpoint = nullptr;
	bool smtp = false;
	for (const RawSection &s : p.sections) {
		if (s.kind == SectionKind::http)
			http = &s;
		if (s.kind == SectionKind::endpoint && !first_endpoint)
			first_endpoint = &s;
		smtp = smtp || s.kind == SectionKind::smtp;
	}
	if (!smtp && !first_endpoint)
		error(0, "", "no [smtp NAME] listener and no [endpoint /PATH]: nothing to serve");
	if (first_endpoint && !http)
		error(first_endpoint->line, "", "endpoints need an [http] section with a listen address");
	else if (first_endpoint && !http->find("listen"))
		error(http->line, "listen", "required in [http] when endpoints are defined");

	if (cfg.global.hostname.empty()) {
		char name[HOST_NAME_MAX + 1] = "";
		if (gethostname(name, sizeof(name)) == 0)
			name[HOST_NAME_MAX] = '\0';
		cfg.global.hostname = name;
		if (!valid_hostname(cfg.global.hostname))
			error(0, "hostname", "the system host name is not usable: set hostname in [global]");
	}
}

void Builder::run()
{
	static const SectionKind order[] = {SectionKind::global, SectionKind::http,
	    SectionKind::transport, SectionKind::smtp, SectionKind::endpoint};
	for (const RawSection &s : p.sections)
		if (s.kind == SectionKind::transport)
			transport_names.push_back(s.name);
	for (SectionKind kind : order)
		for (const RawSection &s : p.sections) {
			if (s.kind != kind)
				continue;
			cur = &s;
			switch (kind) {
			case SectionKind::global: global(); break;
			case SectionKind::http: http(); break;
			case SectionKind::transport: transport(); break;
			case SectionKind::smtp: smtp(); break;
			case SectionKind::endpoint: endpoint(); break;
			}
		}
	finish();
}

} // namespace

void build_config(Parsed &p, const ConfigOptions &opts, Config &cfg)
{
	Builder(p, opts, cfg).run();
}

} // namespace posthorn::config_detail
