/*
 * posthorn.conf(5): parsing, substitution, validation, and the per-process
 * slices the parent sends to its children.
 *
 * Stages (config.cc):
 *   1. read the file, reject over-long lines, feed inih line by line
 *      (inih truncates at 200 bytes; we refuse instead of misreading);
 *   2. collect sections and key/value entries with their line numbers,
 *      rejecting unknown sections and keys;
 *   3. substitute ${env.NAME} and ${file:/path} in values (every missing env
 *      name reported at once);
 *   4. convert to the typed structs below and apply every parse-time rule.
 * All errors are collected; each names file, line and key.
 */
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "log.h"

namespace posthorn {

struct ConfigError {
	std::string file;
	int line = 0;       /* 0: not tied to a line */
	std::string key;    /* may be empty (section-level errors) */
	std::string message;
	std::string to_string() const; /* "file:line: key: message" */
};

enum class TransportType { postmark, resend, mailgun, ses, smtp, file };
enum class TlsMode { starttls, implicit, none };
enum class AuthRequired { smtp_auth, client_cert, either, none };
enum class EndpointAuth { form, api_key };
enum class Delivery { queue, sync };

const char *to_string(TransportType);
const char *to_string(TlsMode);
const char *to_string(AuthRequired);
const char *to_string(EndpointAuth);
const char *to_string(Delivery);

struct GlobalConfig {
	std::string hostname;                /* default: gethostname() */
	std::string user = "_posthorn";
	std::string relay_user = "_posthorn_relay";
	std::string chroot = "/var/lib/posthorn/empty";
	std::string spool = "/var/spool/posthorn";
	std::string control_socket = "/run/posthorn.sock";
	LogSettings log;                     /* log, log_format, log_level */
	bool strip_client_ip = false;
	uint64_t queue_lifetime = 4 * 86400; /* seconds */
	uint64_t retry_initial = 30;         /* first backoff, doubling */
	uint64_t retry_max = 3600;           /* backoff ceiling */
};

struct HttpConfig {
	std::vector<std::string> listen;     /* host:port, [v6]:port */
	std::vector<std::string> trusted_proxies; /* CIDRs, "cloudflare" kept as a name */
	uint64_t read_timeout = 15;          /* seconds */
	uint64_t max_header_size = 64 * 1024;
};

struct TransportConfig {
	std::string name;
	TransportType type = TransportType::file;
	std::string api_key;                 /* secret */
	std::string base_url;                /* default per type */
	std::string message_stream;
	uint64_t timeout = 10;               /* seconds */
	uint32_t max_inflight = 8;
	/* ses */
	std::string region;
	std::string access_key_id;
	std::string secret_access_key;       /* secret */
	std::string session_token;           /* secret */
	/* mailgun */
	std::string domain;
	/* smtp */
	std::string host;
	uint16_t port = 0;                   /* default from tls: 587/465/25 */
	TlsMode tls = TlsMode::starttls;
	std::string username;
	std::string password;                /* secret */
	std::string helo;
	bool tls_verify = true;
	/* file */
	std::string directory;
};

struct SmtpUser {
	std::string name;
	std::string secret;                  /* plain text or crypt(3) hash; secret */
};

struct SmtpListenerConfig {
	std::string name;
	std::vector<std::string> listen;
	TlsMode tls = TlsMode::none;
	bool require_tls = true;
	std::string tls_cert_file, tls_key_file, client_cert_ca_file;
	std::string tls_cert_pem, tls_key_pem, client_cert_ca_pem; /* loaded by the parent */
	AuthRequired auth_required = AuthRequired::smtp_auth;
	std::vector<SmtpUser> users;
	std::vector<std::string> allowed_senders;
	std::vector<std::string> allowed_recipients;
	uint32_t max_recipients_per_session = 10;
	uint64_t max_message_size = 1024 * 1024;
	uint64_t idle_timeout = 60;          /* seconds */
	std::string transport;
	Delivery delivery = Delivery::queue;
	uint32_t max_sessions = 1000;
	uint32_t max_sessions_per_ip = 50;
	uint32_t max_auth_failures = 5;      /* per client address per minute */
};

struct RateLimit {
	uint32_t count = 0;                  /* 0: no limit */
	uint64_t interval = 0;               /* seconds */
};

struct EndpointConfig {
	std::string path;
	EndpointAuth auth = EndpointAuth::form;
	std::vector<std::string> to;
	std::string from;
	std::string subject;
	std::string body;                    /* body or the content of body_file */
	std::string body_file;
	std::vector<std::string> required;
	std::string email_field;
	std::string reply_to_email_field;
	std::string honeypot;
	std::vector<std::string> allowed_origins; /* normalised scheme://host[:port] */
	std::string csrf_secret;             /* secret */
	uint64_t csrf_token_ttl = 3600;
	RateLimit rate_limit;
	std::string redirect_success, redirect_error;
	std::string transport;
	std::vector<std::string> api_keys;   /* secret; plain or sha256:<hex> */
	uint32_t idempotency_cache_size = 10000;
	uint64_t max_body_size = 1024 * 1024;
	/* form endpoints: multipart file parts become attachments (default: ignored) */
	bool attachments = false;
	uint64_t max_attachment_size = 1024 * 1024; /* per file */
	uint32_t max_attachments = 10;
	std::vector<std::string> attachment_types = {"image/*", "application/pdf", "text/plain"};
	std::vector<std::string> trusted_proxies;
	bool log_failed_submissions = true;
	bool dry_run = false;
	std::optional<bool> strip_client_ip; /* unset: global value */
	Delivery delivery = Delivery::sync;
};

struct Config {
	std::string path;
	GlobalConfig global;
	std::optional<HttpConfig> http;
	std::vector<TransportConfig> transports;
	std::vector<SmtpListenerConfig> smtp;
	std::vector<EndpointConfig> endpoints;

	const TransportConfig *find_transport(std::string_view name) const;
};

/* What a process may see of the configuration. */
enum class ConfigSlice { parent, smtpd, httpd, relayer, control };

struct ConfigResult {
	std::optional<Config> config;
	std::vector<ConfigError> errors;
	bool ok() const { return config.has_value() && errors.empty(); }
};

/* Environment lookup, injectable for tests. nullptr env means getenv(). */
using EnvLookup = std::optional<std::string> (*)(std::string_view name, void *ctx);

struct ConfigOptions {
	EnvLookup env = nullptr;
	void *env_ctx = nullptr;
	bool check_secrecy = true;           /* the literal-secret file mode rule */
	bool load_files = true;              /* TLS files, body_file: load and check */
};

ConfigResult config_parse_file(const std::string &path, const ConfigOptions &opts = {});
/* Parse from memory; `path` is used in messages and for the secrecy rule (stat) if it exists. */
ConfigResult config_parse_string(std::string_view text, const std::string &path,
    const ConfigOptions &opts = {});

/* Value parsers (exposed for tests). */
bool parse_duration(std::string_view s, uint64_t &seconds);
bool parse_size(std::string_view s, uint64_t &bytes);
bool parse_bool(std::string_view s, bool &out);
std::vector<std::string> split_list(std::string_view s);
bool parse_rate_limit(std::string_view s, RateLimit &out);
/* Lenient-but-safe addr-spec check: local@domain, no spaces/CR/LF/NUL, optional "Name <addr>". */
bool valid_address(std::string_view s);
/* Normalise "scheme://host[:port]" (default ports dropped, lower-case); false if invalid. */
bool normalize_origin(std::string_view s, std::string &out);
/* A template compiles when every "{{" opens a "{{.name}}" reference. */
bool template_compiles(std::string_view tmpl, std::string &why);

/* The JSON document a child receives (cJSON). Secrets appear only in the slice that needs them. */
std::string config_to_json(const Config &cfg, ConfigSlice slice);
/* Inverse; the parent is trusted, so a malformed document is fatal. */
Config config_from_json(std::string_view json);

} // namespace posthorn
