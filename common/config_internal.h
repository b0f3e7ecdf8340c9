/*
 * Internals shared by the configuration stages (config*.cc). Not for other
 * modules: they see only config.h.
 */
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config.h"

namespace posthorn::config_detail {

/* inih's buffer is 200 bytes: 199 bytes of line plus the NUL. */
constexpr size_t kMaxLine = 199;
/* Any file the parser reads: ${file:}, body_file, TLS PEMs, the config. */
constexpr size_t kMaxFile = 1024 * 1024;

enum class SectionKind { global, http, transport, smtp, endpoint };

/* One value after substitution: a scalar, a list item or the joined body. */
struct RawValue {
	std::string text;
	std::string secret;     /* smtp_user: the SECRET part; text is the NAME */
	int line = 0;
};

/* One `key = value` line and its continuation lines. */
struct RawEntry {
	std::string key;
	int line = 0;
	std::vector<std::string> lines;  /* raw value text, key line first */
	std::vector<int> linenos;
	std::vector<RawValue> values;    /* filled by substitution */
	bool bad = false;                /* substitution failed: skip conversion */
	int literal_line = 0;            /* secret given literally on this line */
};

struct RawSection {
	SectionKind kind = SectionKind::global;
	std::string name;                /* transport/smtp name, endpoint path */
	int line = 0;
	std::vector<RawEntry> entries;

	const RawEntry *find(std::string_view key) const;
};

struct Parsed {
	std::string path;
	std::vector<RawSection> sections;
	std::vector<ConfigError> errors;

	void error(int line, std::string_view key, std::string msg);
};

bool key_valid(SectionKind kind, std::string_view key);
bool is_list_key(std::string_view key);
bool is_secret_key(std::string_view key);
/* "[transport NAME]" */
std::string section_title(const RawSection &s);
/* ` "value"` for messages, or "" when the key is secret. */
std::string shown(std::string_view key, std::string_view value);

bool read_small_file(const std::string &path, std::string &out, std::string &why);

/* Stage 4: typed structs and parse-time rules. */
void build_config(Parsed &p, const ConfigOptions &opts, Config &cfg);

bool enum_parse(std::string_view s, TransportType &out);
bool enum_parse(std::string_view s, TlsMode &out);
bool enum_parse(std::string_view s, AuthRequired &out);
bool enum_parse(std::string_view s, EndpointAuth &out);
bool enum_parse(std::string_view s, Delivery &out);
bool enum_parse(std::string_view s, LogDest &out);
bool enum_parse(std::string_view s, LogFormat &out);
bool enum_parse(std::string_view s, LogLevel &out);
const char *enum_name(LogDest);
const char *enum_name(LogFormat);
const char *enum_name(LogLevel);

/* Small syntax checks shared by the builder. */
bool valid_listen(std::string_view s, std::string &why);
bool valid_proxy(std::string_view s);
bool valid_field_name(std::string_view s);
bool valid_hostname(std::string_view s);
/* allowed_senders / allowed_recipients: "*", "*@domain" or an address. */
bool valid_address_pattern(std::string_view s);

} // namespace posthorn::config_detail
