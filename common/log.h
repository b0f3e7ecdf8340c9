/*
 * Logging: one line per event, JSON (default) or text, to stderr or syslog.
 * Every line carries the process name ("proc"). Secrets are never passed in.
 */
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace posthorn {

enum class LogLevel { debug = 0, info = 1, warn = 2, error = 3 };
enum class LogFormat { json, text };
enum class LogDest { stderr_, syslog };

/* One key=value pair of a log line. Numbers and booleans are written bare in JSON. */
struct LogField {
	std::string_view key;
	std::string value;
	bool quoted = true;

	LogField(std::string_view k, std::string_view v) : key(k), value(v) {}
	LogField(std::string_view k, const char *v) : key(k), value(v ? v : "") {}
	LogField(std::string_view k, const std::string &v) : key(k), value(v) {}
	LogField(std::string_view k, bool v) : key(k), value(v ? "true" : "false"), quoted(false) {}
	template <typename I>
	requires std::is_integral_v<I>
	LogField(std::string_view k, I v) : key(k), value(std::to_string(v)), quoted(false) {}
};

struct LogSettings {
	LogDest dest = LogDest::stderr_;
	LogFormat format = LogFormat::json;
	LogLevel level = LogLevel::info;
};

void log_init(std::string_view proc, LogSettings settings);
void log_set_proc(std::string_view proc);
void log_apply(LogSettings settings);
LogSettings log_settings();
/* -v on the command line: each step lowers the threshold by one level. */
void log_set_verbose(int verbose);
bool log_enabled(LogLevel level);

/* The main entry: an event name (e.g. "smtp_auth_ok") and its fields. */
void log_event(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields = {});

/*
 * A tap sees every log_event(), whatever the level threshold (posthornctl
 * monitor); log_format_line() makes the line. Its own logging is not tapped.
 */
using LogTap = void (*)(LogLevel level, std::string_view msg,
    std::initializer_list<LogField> fields);
void log_set_tap(LogTap tap);

/* printf-style messages for operational text; *_warn variants append strerror(errno). */
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
[[noreturn]] void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
[[noreturn]] void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Formatting helpers, exposed for tests. */
std::string log_format_line(LogFormat format, LogLevel level, std::string_view proc,
    std::string_view msg, std::initializer_list<LogField> fields);
std::string json_escape(std::string_view s);
const char *log_level_name(LogLevel level);
bool log_level_parse(std::string_view s, LogLevel &out);

} // namespace posthorn
