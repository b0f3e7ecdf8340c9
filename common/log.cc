/*
 * Logging. Each line is built whole and written with one write(2) so that the
 * lines of several processes sharing stderr never interleave.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>

namespace posthorn {

namespace {

struct LogState {
	std::string proc = "posthornd";
	LogSettings settings;
	int verbose = 0;
	bool syslog_open = false;
	LogTap tap = nullptr;
	bool in_tap = false;
};

LogState &state()
{
	static LogState s;
	return s;
}

LogLevel effective_level()
{
	int lvl = static_cast<int>(state().settings.level) - state().verbose;
	return static_cast<LogLevel>(lvl < 0 ? 0 : lvl);
}

std::string now_rfc3339()
{
	struct timespec ts;
	struct tm tm;
	char buf[64];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, sizeof(buf) - n, ".%03ldZ", ts.tv_nsec / 1000000);
	return buf;
}

/* Text values are quoted when they hold anything but plain characters. */
std::string text_value(const LogField &f)
{
	bool plain = !f.value.empty();
	for (unsigned char c : f.value)
		if (c <= ' ' || c == '"' || c == '=' || c >= 0x7f)
			plain = false;
	if (plain || !f.quoted)
		return f.value;
	return "\"" + json_escape(f.value) + "\"";
}

int syslog_priority(LogLevel level)
{
	switch (level) {
	case LogLevel::debug: return LOG_DEBUG;
	case LogLevel::info: return LOG_INFO;
	case LogLevel::warn: return LOG_WARNING;
	case LogLevel::error: return LOG_ERR;
	}
	return LOG_INFO;
}

void emit(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields)
{
	LogState &s = state();
	std::string line = log_format_line(s.settings.format, level, s.proc, msg, fields);
	if (s.settings.dest == LogDest::syslog) {
		if (!s.syslog_open) {
			openlog("posthornd", LOG_PID | LOG_NDELAY, LOG_MAIL);
			s.syslog_open = true;
		}
		syslog(syslog_priority(level), "%s", line.c_str());
		return;
	}
	line.push_back('\n');
	int saved = errno;
	const char *p = line.data();
	size_t left = line.size();
	while (left > 0) {
		ssize_t n = write(STDERR_FILENO, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		p += n;
		left -= static_cast<size_t>(n);
	}
	errno = saved;
}

void vlog(LogLevel level, bool with_errno, const char *fmt, va_list ap)
{
	int saved = errno;
	if (!log_enabled(level))
		return;
	char buf[2048];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (with_errno)
		emit(level, buf, {{"error", strerror(saved)}});
	else
		emit(level, buf, {});
	errno = saved;
}

} // namespace

std::string json_escape(std::string_view s)
{
	std::string out;
	out.reserve(s.size() + 8);
	for (unsigned char c : s) {
		switch (c) {
		case '"': out += "\\\""; break;
		case '\\': out += "\\\\"; break;
		case '\n': out += "\\n"; break;
		case '\r': out += "\\r"; break;
		case '\t': out += "\\t"; break;
		default:
			if (c < 0x20 || c == 0x7f) {
				char esc[8];
				snprintf(esc, sizeof(esc), "\\u%04x", c);
				out += esc;
			} else
				out.push_back(static_cast<char>(c));
		}
	}
	return out;
}

const char *log_level_name(LogLevel level)
{
	switch (level) {
	case LogLevel::debug: return "debug";
	case LogLevel::info: return "info";
	case LogLevel::warn: return "warn";
	case LogLevel::error: return "error";
	}
	return "info";
}

bool log_level_parse(std::string_view s, LogLevel &out)
{
	static constexpr LogLevel all[] = {LogLevel::debug, LogLevel::info, LogLevel::warn,
	    LogLevel::error};
	for (LogLevel l : all)
		if (s == log_level_name(l)) {
			out = l;
			return true;
		}
	return false;
}

std::string log_format_line(LogFormat format, LogLevel level, std::string_view proc,
    std::string_view msg, std::initializer_list<LogField> fields)
{
	std::string line;
	if (format == LogFormat::json) {
		line = "{\"time\":\"" + now_rfc3339() + "\",\"level\":\"" + log_level_name(level) +
		    "\",\"proc\":\"" + json_escape(proc) + "\",\"msg\":\"" + json_escape(msg) + "\"";
		for (const LogField &f : fields) {
			line += ",\"" + json_escape(f.key) + "\":";
			line += f.quoted ? "\"" + json_escape(f.value) + "\"" : f.value;
		}
		line += "}";
		return line;
	}
	line = now_rfc3339() + " " + log_level_name(level) + " " + std::string(proc) + ": " +
	    json_escape(msg);
	for (const LogField &f : fields)
		line += " " + std::string(f.key) + "=" + text_value(f);
	return line;
}

void log_init(std::string_view proc, LogSettings settings)
{
	state().proc = proc;
	log_apply(settings);
}

void log_set_proc(std::string_view proc) { state().proc = proc; }

void log_apply(LogSettings settings)
{
	LogState &s = state();
	s.settings = settings;
	if (settings.dest == LogDest::syslog && !s.syslog_open) {
		/* Connect now: chrooted processes cannot reach /dev/log later. */
		openlog("posthornd", LOG_PID | LOG_NDELAY, LOG_MAIL);
		s.syslog_open = true;
	}
}

LogSettings log_settings() { return state().settings; }

void log_set_verbose(int verbose) { state().verbose = verbose; }

bool log_enabled(LogLevel level) { return level >= effective_level(); }

void log_set_tap(LogTap tap) { state().tap = tap; }

void log_event(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields)
{
	LogState &s = state();
	if (s.tap && !s.in_tap) {
		s.in_tap = true; /* a tap that logs does not recurse */
		s.tap(level, msg, fields);
		s.in_tap = false;
	}
	if (log_enabled(level))
		emit(level, msg, fields);
}

#define LOG_VARIANT(name, level, with_errno)                                                      \
	void name(const char *fmt, ...)                                                            \
	{                                                                                          \
		va_list ap;                                                                        \
		va_start(ap, fmt);                                                                 \
		vlog(level, with_errno, fmt, ap);                                                  \
		va_end(ap);                                                                        \
	}

LOG_VARIANT(log_debug, LogLevel::debug, false)
LOG_VARIANT(log_info, LogLevel::info, false)
LOG_VARIANT(log_warn, LogLevel::warn, true)
LOG_VARIANT(log_warnx, LogLevel::warn, false)

void fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(LogLevel::error, true, fmt, ap);
	va_end(ap);
	_exit(1);
}

void fatalx(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(LogLevel::error, false, fmt, ap);
	va_end(ap);
	_exit(1);
}

} // namespace posthorn
