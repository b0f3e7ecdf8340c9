/*
 * The configuration as JSON (cJSON): what the parent sends each child.
 * A slice holds only what its process needs; provider credentials go to the
 * relayer (and stay in the parent), nowhere else.
 */
#include <cjson/cJSON.h>

#include <cmath>
#include <memory>

#include "config.h"
#include "config_internal.h"

namespace posthorn {

using namespace config_detail;

namespace {

struct JsonFree {
	void operator()(cJSON *j) const { cJSON_Delete(j); }
};
using Json = std::unique_ptr<cJSON, JsonFree>;

/* ---- writing ---- */

cJSON *add_obj(cJSON *parent, const char *key)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddItemToObject(parent, key, o);
	return o;
}

void put(cJSON *o, const char *key, const std::string &v) { cJSON_AddStringToObject(o, key, v.c_str()); }
void put(cJSON *o, const char *key, const char *v) { cJSON_AddStringToObject(o, key, v); }
void put(cJSON *o, const char *key, uint64_t v) { cJSON_AddNumberToObject(o, key, double(v)); }
void put_bool(cJSON *o, const char *key, bool v) { cJSON_AddBoolToObject(o, key, v); }

void put(cJSON *o, const char *key, const std::vector<std::string> &v)
{
	cJSON *a = cJSON_AddArrayToObject(o, key);
	for (const std::string &s : v)
		cJSON_AddItemToArray(a, cJSON_CreateString(s.c_str()));
}

void global_to(cJSON *root, const GlobalConfig &g)
{
	cJSON *o = add_obj(root, "global");
	put(o, "hostname", g.hostname);
	put(o, "user", g.user);
	put(o, "relay_user", g.relay_user);
	put(o, "chroot", g.chroot);
	put(o, "spool", g.spool);
	put(o, "control_socket", g.control_socket);
	put(o, "log", enum_name(g.log.dest));
	put(o, "log_format", enum_name(g.log.format));
	put(o, "log_level", enum_name(g.log.level));
	put_bool(o, "strip_client_ip", g.strip_client_ip);
	put(o, "queue_lifetime", g.queue_lifetime);
	put(o, "retry_initial", g.retry_initial);
	put(o, "retry_max", g.retry_max);
}

void http_to(cJSON *root, const HttpConfig &h, bool full)
{
	cJSON *o = add_obj(root, "http");
	put(o, "listen", h.listen);
	if (!full)
		return;
	put(o, "trusted_proxies", h.trusted_proxies);
	put(o, "read_timeout", h.read_timeout);
	put(o, "max_header_size", h.max_header_size);
}

/* Without `full`, only {name, type}: fronts must not hold provider credentials. */
void transport_to(cJSON *a, const TransportConfig &t, bool full)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddItemToArray(a, o);
	put(o, "name", t.name);
	put(o, "type", to_string(t.type));
	if (!full)
		return;
	put(o, "api_key", t.api_key);
	put(o, "base_url", t.base_url);
	put(o, "message_stream", t.message_stream);
	put(o, "timeout", t.timeout);
	put(o, "max_inflight", uint64_t(t.max_inflight));
	put(o, "region", t.region);
	put(o, "access_key_id", t.access_key_id);
	put(o, "secret_access_key", t.secret_access_key);
	put(o, "session_token", t.session_token);
	put(o, "domain", t.domain);
	put(o, "host", t.host);
	put(o, "port", uint64_t(t.port));
	put(o, "tls", to_string(t.tls));
	put(o, "username", t.username);
	put(o, "password", t.password);
	put(o, "helo", t.helo);
	put_bool(o, "tls_verify", t.tls_verify);
	put(o, "directory", t.directory);
}

void smtp_to(cJSON *a, const SmtpListenerConfig &l, bool full)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddItemToArray(a, o);
	put(o, "name", l.name);
	put(o, "listen", l.listen);
	if (!full)
		return;
	put(o, "tls", to_string(l.tls));
	put_bool(o, "require_tls", l.require_tls);
	put(o, "tls_cert", l.tls_cert_file);
	put(o, "tls_key", l.tls_key_file);
	put(o, "client_cert_ca", l.client_cert_ca_file);
	put(o, "tls_cert_pem", l.tls_cert_pem);
	put(o, "tls_key_pem", l.tls_key_pem);
	put(o, "client_cert_ca_pem", l.client_cert_ca_pem);
	put(o, "auth_required", to_string(l.auth_required));
	cJSON *users = cJSON_AddArrayToObject(o, "users");
	for (const SmtpUser &u : l.users) {
		cJSON *uo = cJSON_CreateObject();
		cJSON_AddItemToArray(users, uo);
		put(uo, "name", u.name);
		put(uo, "secret", u.secret);
	}
	put(o, "allowed_senders", l.allowed_senders);
	put(o, "allowed_recipients", l.allowed_recipients);
	put(o, "max_recipients_per_session", uint64_t(l.max_recipients_per_session));
	put(o, "max_message_size", l.max_message_size);
	put(o, "idle_timeout", l.idle_timeout);
	put(o, "transport", l.transport);
	put(o, "delivery", to_string(l.delivery));
	put(o, "max_sessions", uint64_t(l.max_sessions));
	put(o, "max_sessions_per_ip", uint64_t(l.max_sessions_per_ip));
	put(o, "max_auth_failures", uint64_t(l.max_auth_failures));
}

void endpoint_to(cJSON *a, const EndpointConfig &e, bool full)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddItemToArray(a, o);
	put(o, "path", e.path);
	if (!full)
		return;
	put(o, "auth", to_string(e.auth));
	put(o, "to", e.to);
	put(o, "from", e.from);
	put(o, "subject", e.subject);
	put(o, "body", e.body);
	put(o, "body_file", e.body_file);
	put(o, "required", e.required);
	put(o, "email_field", e.email_field);
	put(o, "reply_to_email_field", e.reply_to_email_field);
	put(o, "honeypot", e.honeypot);
	put(o, "allowed_origins", e.allowed_origins);
	put(o, "csrf_secret", e.csrf_secret);
	put(o, "csrf_token_ttl", e.csrf_token_ttl);
	put(o, "rate_limit_count", uint64_t(e.rate_limit.count));
	put(o, "rate_limit_interval", e.rate_limit.interval);
	put(o, "redirect_success", e.redirect_success);
	put(o, "redirect_error", e.redirect_error);
	put(o, "transport", e.transport);
	put(o, "api_keys", e.api_keys);
	put(o, "idempotency_cache_size", uint64_t(e.idempotency_cache_size));
	put(o, "max_body_size", e.max_body_size);
	put_bool(o, "attachments", e.attachments);
	put(o, "max_attachment_size", e.max_attachment_size);
	put(o, "max_attachments", uint64_t(e.max_attachments));
	put(o, "attachment_types", e.attachment_types);
	put(o, "trusted_proxies", e.trusted_proxies);
	put_bool(o, "log_failed_submissions", e.log_failed_submissions);
	put_bool(o, "dry_run", e.dry_run);
	if (e.strip_client_ip)
		put_bool(o, "strip_client_ip", *e.strip_client_ip);
	put(o, "delivery", to_string(e.delivery));
}

const char *slice_name(ConfigSlice s)
{
	switch (s) {
	case ConfigSlice::parent: return "parent";
	case ConfigSlice::smtpd: return "smtpd";
	case ConfigSlice::httpd: return "httpd";
	case ConfigSlice::relayer: return "relayer";
	case ConfigSlice::control: return "control";
	}
	return "?";
}

/* ---- reading: the parent is trusted, so anything unexpected is fatal ---- */

const cJSON *member(const cJSON *o, const char *key)
{
	return cJSON_GetObjectItemCaseSensitive(o, key);
}

void get(const cJSON *o, const char *key, std::string &out)
{
	const cJSON *j = member(o, key);
	if (!j)
		return;
	if (!cJSON_IsString(j))
		fatalx("config json: %s: expected a string", key);
	out = j->valuestring;
}

template <typename T>
void get(const cJSON *o, const char *key, T &out) requires std::is_integral_v<T>
{
	const cJSON *j = member(o, key);
	if (!j)
		return;
	double d = cJSON_IsNumber(j) ? j->valuedouble : -1;
	/* doubles hold integers exactly up to 2^53 */
	if (d < 0 || d != std::floor(d) || d > 9007199254740992.0 || uint64_t(d) > uint64_t(T(~T(0))))
		fatalx("config json: %s: expected a non-negative integer in range", key);
	out = T(d);
}

void get_bool(const cJSON *o, const char *key, bool &out)
{
	const cJSON *j = member(o, key);
	if (!j)
		return;
	if (!cJSON_IsBool(j))
		fatalx("config json: %s: expected a boolean", key);
	out = cJSON_IsTrue(j);
}

void get(const cJSON *o, const char *key, std::vector<std::string> &out)
{
	const cJSON *a = member(o, key), *j;
	if (!a)
		return;
	if (!cJSON_IsArray(a))
		fatalx("config json: %s: expected an array", key);
	out.clear();
	cJSON_ArrayForEach(j, a) {
		if (!cJSON_IsString(j))
			fatalx("config json: %s: expected an array of strings", key);
		out.emplace_back(j->valuestring);
	}
}

template <typename E>
void get_enum(const cJSON *o, const char *key, E &out) requires std::is_enum_v<E>
{
	std::string s;
	const cJSON *j = member(o, key);
	if (!j)
		return;
	get(o, key, s);
	if (!enum_parse(s, out))
		fatalx("config json: %s: unknown value", key);
}

const cJSON *object(const cJSON *o, const char *key)
{
	const cJSON *j = member(o, key);
	if (j && !cJSON_IsObject(j))
		fatalx("config json: %s: expected an object", key);
	return j;
}

/* Calls f for each object in the array `key`. */
template <typename F>
void each(const cJSON *o, const char *key, F f)
{
	const cJSON *a = member(o, key), *j;
	if (!a)
		return;
	if (!cJSON_IsArray(a))
		fatalx("config json: %s: expected an array", key);
	cJSON_ArrayForEach(j, a) {
		if (!cJSON_IsObject(j))
			fatalx("config json: %s: expected an array of objects", key);
		f(j);
	}
}

void global_from(const cJSON *o, GlobalConfig &g)
{
	get(o, "hostname", g.hostname);
	get(o, "user", g.user);
	get(o, "relay_user", g.relay_user);
	get(o, "chroot", g.chroot);
	get(o, "spool", g.spool);
	get(o, "control_socket", g.control_socket);
	get_enum(o, "log", g.log.dest);
	get_enum(o, "log_format", g.log.format);
	get_enum(o, "log_level", g.log.level);
	get_bool(o, "strip_client_ip", g.strip_client_ip);
	get(o, "queue_lifetime", g.queue_lifetime);
	get(o, "retry_initial", g.retry_initial);
	get(o, "retry_max", g.retry_max);
}

void http_from(const cJSON *o, HttpConfig &h)
{
	get(o, "listen", h.listen);
	get(o, "trusted_proxies", h.trusted_proxies);
	get(o, "read_timeout", h.read_timeout);
	get(o, "max_header_size", h.max_header_size);
}

TransportConfig transport_from(const cJSON *o)
{
	TransportConfig t;
	get(o, "name", t.name);
	get_enum(o, "type", t.type);
	get(o, "api_key", t.api_key);
	get(o, "base_url", t.base_url);
	get(o, "message_stream", t.message_stream);
	get(o, "timeout", t.timeout);
	get(o, "max_inflight", t.max_inflight);
	get(o, "region", t.region);
	get(o, "access_key_id", t.access_key_id);
	get(o, "secret_access_key", t.secret_access_key);
	get(o, "session_token", t.session_token);
	get(o, "domain", t.domain);
	get(o, "host", t.host);
	get(o, "port", t.port);
	get_enum(o, "tls", t.tls);
	get(o, "username", t.username);
	get(o, "password", t.password);
	get(o, "helo", t.helo);
	get_bool(o, "tls_verify", t.tls_verify);
	get(o, "directory", t.directory);
	return t;
}

SmtpListenerConfig smtp_from(const cJSON *o)
{
	SmtpListenerConfig l;
	get(o, "name", l.name);
	get(o, "listen", l.listen);
	get_enum(o, "tls", l.tls);
	get_bool(o, "require_tls", l.require_tls);
	get(o, "tls_cert", l.tls_cert_file);
	get(o, "tls_key", l.tls_key_file);
	get(o, "client_cert_ca", l.client_cert_ca_file);
	get(o, "tls_cert_pem", l.tls_cert_pem);
	get(o, "tls_key_pem", l.tls_key_pem);
	get(o, "client_cert_ca_pem", l.client_cert_ca_pem);
	get_enum(o, "auth_required", l.auth_required);
	each(o, "users", [&](const cJSON *u) {
		SmtpUser su;
		get(u, "name", su.name);
		get(u, "secret", su.secret);
		l.users.push_back(std::move(su));
	});
	get(o, "allowed_senders", l.allowed_senders);
	get(o, "allowed_recipients", l.allowed_recipients);
	get(o, "max_recipients_per_session", l.max_recipients_per_session);
	get(o, "max_message_size", l.max_message_size);
	get(o, "idle_timeout", l.idle_timeout);
	get(o, "transport", l.transport);
	get_enum(o, "delivery", l.delivery);
	get(o, "max_sessions", l.max_sessions);
	get(o, "max_sessions_per_ip", l.max_sessions_per_ip);
	get(o, "max_auth_failures", l.max_auth_failures);
	return l;
}

EndpointConfig endpoint_from(const cJSON *o)
{
	EndpointConfig e;
	get(o, "path", e.path);
	get_enum(o, "auth", e.auth);
	get(o, "to", e.to);
	get(o, "from", e.from);
	get(o, "subject", e.subject);
	get(o, "body", e.body);
	get(o, "body_file", e.body_file);
	get(o, "required", e.required);
	get(o, "email_field", e.email_field);
	get(o, "reply_to_email_field", e.reply_to_email_field);
	get(o, "honeypot", e.honeypot);
	get(o, "allowed_origins", e.allowed_origins);
	get(o, "csrf_secret", e.csrf_secret);
	get(o, "csrf_token_ttl", e.csrf_token_ttl);
	get(o, "rate_limit_count", e.rate_limit.count);
	get(o, "rate_limit_interval", e.rate_limit.interval);
	get(o, "redirect_success", e.redirect_success);
	get(o, "redirect_error", e.redirect_error);
	get(o, "transport", e.transport);
	get(o, "api_keys", e.api_keys);
	get(o, "idempotency_cache_size", e.idempotency_cache_size);
	get(o, "max_body_size", e.max_body_size);
	get_bool(o, "attachments", e.attachments);
	get(o, "max_attachment_size", e.max_attachment_size);
	get(o, "max_attachments", e.max_attachments);
	get(o, "attachment_types", e.attachment_types);
	get(o, "trusted_proxies", e.trusted_proxies);
	get_bool(o, "log_failed_submissions", e.log_failed_submissions);
	get_bool(o, "dry_run", e.dry_run);
	if (member(o, "strip_client_ip")) {
		bool b = false;
		get_bool(o, "strip_client_ip", b);
		e.strip_client_ip = b;
	}
	get_enum(o, "delivery", e.delivery);
	return e;
}

} // namespace

std::string config_to_json(const Config &cfg, ConfigSlice slice)
{
	bool parent = slice == ConfigSlice::parent;
	bool relayer = parent || slice == ConfigSlice::relayer;
	bool smtpd = parent || slice == ConfigSlice::smtpd;
	bool httpd = parent || slice == ConfigSlice::httpd;
	bool control = slice == ConfigSlice::control;
	Json root(cJSON_CreateObject());

	put(root.get(), "version", uint64_t(1));
	put(root.get(), "slice", slice_name(slice));
	put(root.get(), "path", cfg.path);
	global_to(root.get(), cfg.global);
	if (cfg.http && (httpd || control))
		http_to(root.get(), *cfg.http, httpd);
	cJSON *a = cJSON_AddArrayToObject(root.get(), "transports");
	for (const TransportConfig &t : cfg.transports)
		transport_to(a, t, relayer);
	if (smtpd || control) {
		a = cJSON_AddArrayToObject(root.get(), "smtp");
		for (const SmtpListenerConfig &l : cfg.smtp)
			smtp_to(a, l, smtpd);
	}
	if (httpd || control) {
		a = cJSON_AddArrayToObject(root.get(), "endpoints");
		for (const EndpointConfig &e : cfg.endpoints)
			endpoint_to(a, e, httpd);
	}
	char *text = cJSON_PrintUnformatted(root.get());
	if (!text)
		fatalx("config_to_json: out of memory");
	std::string out(text);
	cJSON_free(text);
	return out;
}

Config config_from_json(std::string_view json)
{
	Json root(cJSON_ParseWithLength(json.data(), json.size()));
	if (!root || !cJSON_IsObject(root.get()))
		fatalx("config json: not a JSON object");
	uint64_t version = 0;
	get(root.get(), "version", version);
	if (version != 1)
		fatalx("config json: unsupported version");

	Config cfg;
	get(root.get(), "path", cfg.path);
	if (const cJSON *g = object(root.get(), "global"))
		global_from(g, cfg.global);
	if (const cJSON *h = object(root.get(), "http")) {
		cfg.http.emplace();
		http_from(h, *cfg.http);
	}
	each(root.get(), "transports", [&](const cJSON *o) { cfg.transports.push_back(transport_from(o)); });
	each(root.get(), "smtp", [&](const cJSON *o) { cfg.smtp.push_back(smtp_from(o)); });
	each(root.get(), "endpoints", [&](const cJSON *o) { cfg.endpoints.push_back(endpoint_from(o)); });
	return cfg;
}

} // namespace posthorn
