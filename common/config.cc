/*
 * posthorn.conf(5), stages 1-3: read the file, feed inih line by line,
 * collect sections and entries, substitute ${env.NAME} and ${file:/path},
 * apply the literal-secret file mode rule. Stage 4 is in config_build.cc.
 */
#include <sys/stat.h>

#include <fcntl.h>
#include <ini.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "config.h"
#include "config_internal.h"

namespace posthorn {

using namespace config_detail;

namespace config_detail {

namespace {

const char *const global_keys[] = {
	"hostname", "user", "relay_user", "chroot", "spool", "control_socket", "log",
	"log_format", "log_level", "strip_client_ip", "queue_lifetime", "retry_initial", "retry_max",
};
const char *const http_keys[] = {
	"listen", "trusted_proxies", "read_timeout", "max_header_size",
};
const char *const transport_keys[] = {
	"type", "api_key", "base_url", "message_stream", "timeout", "max_inflight", "region",
	"access_key_id", "secret_access_key", "session_token", "domain", "host", "port", "tls",
	"username", "password", "helo", "tls_verify", "directory",
};
const char *const smtp_keys[] = {
	"listen", "tls", "require_tls", "tls_cert", "tls_key", "client_cert_ca", "auth_required",
	"smtp_user", "allowed_senders", "allowed_recipients", "max_recipients_per_session",
	"max_message_size", "idle_timeout", "transport", "delivery", "max_sessions",
	"max_sessions_per_ip", "max_auth_failures",
};
const char *const endpoint_keys[] = {
	"auth", "to", "from", "subject", "body", "body_file", "required", "email_field",
	"reply_to_email_field", "honeypot", "allowed_origins", "csrf_secret", "csrf_token_ttl",
	"rate_limit", "redirect_success", "redirect_error", "transport", "api_keys",
	"idempotency_cache_size", "max_body_size", "trusted_proxies", "log_failed_submissions",
	"dry_run", "strip_client_ip", "delivery", "attachments", "max_attachment_size",
	"max_attachments", "attachment_types",
};
const char *const list_keys[] = {
	"listen", "smtp_user", "allowed_senders", "allowed_recipients", "to", "required",
	"allowed_origins", "api_keys", "trusted_proxies", "attachment_types",
};
const char *const secret_keys[] = {
	"api_key", "secret_access_key", "session_token", "password", "smtp_user", "api_keys",
	"csrf_secret",
};

template <size_t N>
bool contains(const char *const (&set)[N], std::string_view key)
{
	for (const char *k : set)
		if (key == k)
			return true;
	return false;
}

} // namespace

bool key_valid(SectionKind kind, std::string_view key)
{
	switch (kind) {
	case SectionKind::global: return contains(global_keys, key);
	case SectionKind::http: return contains(http_keys, key);
	case SectionKind::transport: return contains(transport_keys, key);
	case SectionKind::smtp: return contains(smtp_keys, key);
	case SectionKind::endpoint: return contains(endpoint_keys, key);
	}
	return false;
}

bool is_list_key(std::string_view key) { return contains(list_keys, key); }
bool is_secret_key(std::string_view key) { return contains(secret_keys, key); }

std::string section_title(const RawSection &s)
{
	static const char *const kinds[] = {"global", "http", "transport", "smtp", "endpoint"};
	std::string t = std::string("[") + kinds[int(s.kind)];
	if (!s.name.empty())
		t += " " + s.name;
	return t + "]";
}

std::string shown(std::string_view key, std::string_view value)
{
	if (is_secret_key(key))
		return "";
	std::string v(value.substr(0, 80));
	for (char &c : v)
		if ((unsigned char)c < 0x20 || c == 0x7f)
			c = '?';
	return " \"" + v + (value.size() > 80 ? "...\"" : "\"");
}

const RawEntry *RawSection::find(std::string_view key) const
{
	for (const RawEntry &e : entries)
		if (e.key == key)
			return &e;
	return nullptr;
}

void Parsed::error(int line, std::string_view key, std::string msg)
{
	errors.push_back({path, line, std::string(key), std::move(msg)});
}

bool read_small_file(const std::string &path, std::string &out, std::string &why)
{
	int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd == -1) {
		why = strerror(errno);
		return false;
	}
	struct stat st;
	std::string buf;
	bool ok = false;
	if (fstat(fd, &st) == -1)
		why = strerror(errno);
	else if (!S_ISREG(st.st_mode))
		why = "not a regular file";
	else if (size_t(st.st_size) > kMaxFile)
		why = "larger than " + std::to_string(kMaxFile) + " bytes";
	else {
		buf.resize(size_t(st.st_size));
		size_t got = 0;
		ssize_t n = 1;
		while (got < buf.size() && (n = read(fd, buf.data() + got, buf.size() - got)) > 0)
			got += size_t(n);
		if (n == -1)
			why = strerror(errno);
		else {
			buf.resize(got);
			out = std::move(buf);
			ok = true;
		}
	}
	close(fd);
	return ok;
}

} // namespace config_detail

namespace {

/* ---- stage 1: lines ---- */

struct Line {
	std::string_view text;   /* without line terminator */
	bool refused = false;    /* over-long or NUL: handed to inih as blank */
};

std::vector<Line> split_lines(std::string_view text, Parsed &p)
{
	std::vector<Line> lines;
	if (text.substr(0, 3) == "\xEF\xBB\xBF")
		text.remove_prefix(3);
	while (!text.empty()) {
		size_t nl = text.find('\n');
		std::string_view l = text.substr(0, nl);
		text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
		if (!l.empty() && l.back() == '\r')
			l.remove_suffix(1);
		Line line{l};
		int no = int(lines.size()) + 1;
		if (l.size() > kMaxLine) {
			p.error(no, "", "line too long (" + std::to_string(l.size()) + " bytes, limit " +
			    std::to_string(kMaxLine) + "): split it with continuation lines or use body_file");
			line.refused = true;
		} else if (l.find('\0') != std::string_view::npos) {
			p.error(no, "", "line contains a NUL byte");
			line.refused = true;
		}
		lines.push_back(line);
	}
	return lines;
}

/* ---- stage 2: inih ---- */

bool ini_space(char c) { return isspace((unsigned char)c); }

/* inih's ini_find_chars_or_comment: first of `chars`, or a " ;" comment. */
size_t find_chars_or_comment(std::string_view s, size_t from, std::string_view chars)
{
	bool was_space = false;
	for (size_t i = from; i < s.size(); i++) {
		if (chars.find(s[i]) != std::string_view::npos || (was_space && s[i] == ';'))
			return i;
		was_space = ini_space(s[i]);
	}
	return s.size();
}

enum class LineKind { blank, comment, section, key, continuation };

constexpr int kNoSection = -1, kBadSection = -2;

/*
 * State shared by our inih reader and handler. The reader classifies each
 * line exactly as inih will, so the handler knows whether a call is a
 * continuation line or a (possibly repeated) key, and we parse section
 * headers ourselves (inih truncates their names at 50 bytes).
 */
struct IniState {
	Parsed &p;
	const std::vector<Line> &lines;
	size_t next = 0;            /* index of the next line to hand out */
	LineKind kind = LineKind::blank;
	bool handled = false;       /* handler called for the current line */
	bool prev_name = false;     /* inih's prev_name is set */
	int section = kNoSection;
	int entry = -1;             /* entry continuation lines extend */
	bool failed = false;        /* allocation failure inside a callback */

	int lineno() const { return int(next); }
	RawSection &sec() { return p.sections[size_t(section)]; }
	void classify(std::string_view l);
	void finish_line();
	void section_header(std::string_view l, size_t start);
	void add_key(std::string_view name, std::string_view value);
	void add_continuation(std::string_view value);
};

void IniState::classify(std::string_view l)
{
	size_t start = 0;
	while (start < l.size() && ini_space(l[start]))
		start++;
	handled = false;
	if (start == l.size())
		kind = LineKind::blank;
	else if (l[start] == ';' || l[start] == '#')
		kind = LineKind::comment;
	else if (prev_name && start > 0)
		kind = LineKind::continuation;
	else if (l[start] == '[') {
		kind = LineKind::section;
		section_header(l, start);
	} else {
		kind = LineKind::key;
		size_t eq = find_chars_or_comment(l, start, "=:");
		if (eq < l.size() && l[eq] != ';')
			prev_name = true;
		entry = -1;
	}
}

/* A key line inih did not hand to us had no '=': a syntax error. */
void IniState::finish_line()
{
	if (next > 0 && kind == LineKind::key && !handled)
		p.error(lineno(), "", "syntax error: expected KEY = VALUE, [SECTION] or a comment");
	kind = LineKind::blank;
}

bool valid_section_name(std::string_view n)
{
	for (unsigned char c : n)
		if (!(isalnum(c) || c == '_' || c == '-' || c == '.'))
			return false;
	return !n.empty() && n.size() <= 64;
}

bool valid_path(std::string_view n)
{
	if (n.empty() || n.front() != '/' || n.size() > 128)
		return false;
	for (unsigned char c : n)
		if (c <= 0x20 || c == 0x7f || c == '?' || c == '#' || c == '"' || c == '\\')
			return false;
	return true;
}

/* "kind [name]" between the brackets into s; false with the reason. */
bool section_from(std::string_view in, RawSection &s, std::string &why)
{
	static const std::pair<const char *, SectionKind> kinds[] = {
		{"global", SectionKind::global}, {"http", SectionKind::http},
		{"transport", SectionKind::transport}, {"smtp", SectionKind::smtp},
		{"endpoint", SectionKind::endpoint},
	};
	in.remove_prefix(std::min(in.size(), in.find_first_not_of(" \t")));
	in = in.substr(0, in.find_last_not_of(" \t") + 1);
	size_t sp = in.find_first_of(" \t");
	std::string kind(in.substr(0, sp));
	if (sp != std::string_view::npos)
		s.name = in.substr(in.find_first_not_of(" \t", sp));

	bool known = false;
	for (const auto &[k, v] : kinds)
		if (kind == k) {
			s.kind = v;
			known = true;
		}
	bool named = s.kind != SectionKind::global && s.kind != SectionKind::http;
	if (!known)
		why = "unknown section [" + std::string(in) +
		    "] (expected global, http, transport NAME, smtp NAME or endpoint /PATH)";
	else if (!named && !s.name.empty())
		why = "[" + kind + "] takes no name";
	else if (named && s.name.empty())
		why = "[" + kind + "] needs a " + (s.kind == SectionKind::endpoint ?
		    "URL path: [endpoint /PATH]" : "name: [" + kind + " NAME]");
	else if (s.kind == SectionKind::endpoint && !valid_path(s.name))
		why = "endpoint path must start with '/' and hold no spaces, '?', '#', '\"' or '\\'";
	else if (named && s.kind != SectionKind::endpoint && !valid_section_name(s.name))
		why = "section name must be 1-64 characters of A-Z a-z 0-9 _ - .";
	return why.empty();
}

void IniState::section_header(std::string_view l, size_t start)
{
	size_t end = find_chars_or_comment(l, start + 1, "]");
	RawSection s;
	std::string why;

	s.line = lineno();
	entry = -1;
	section = kBadSection;
	if (end == l.size() || l[end] != ']') {
		p.error(s.line, "", "section header without closing ']'");
		return;
	}
	prev_name = false;
	size_t r = l.find_first_not_of(" \t", end + 1);
	if (r != std::string_view::npos && l[r] != ';')
		why = "unexpected text after ']'";
	else if (section_from(l.substr(start + 1, end - start - 1), s, why)) {
		for (const RawSection &o : p.sections)
			if (o.kind == s.kind && o.name == s.name)
				why = section_title(s) + " given more than once (first on line " +
				    std::to_string(o.line) + ")";
	}
	if (!why.empty()) {
		p.error(s.line, "", why);
		return;
	}
	p.sections.push_back(std::move(s));
	section = int(p.sections.size()) - 1;
}

void IniState::add_key(std::string_view name, std::string_view value)
{
	int no = lineno();
	entry = -1;
	if (section == kBadSection)
		return;  /* the header's error is enough */
	if (section == kNoSection) {
		p.error(no, name, "key outside of any section");
		return;
	}
	RawSection &s = sec();
	if (!key_valid(s.kind, name)) {
		p.error(no, name, "unknown key in " + section_title(s));
		return;
	}
	if (!is_list_key(name)) {
		if (const RawEntry *e = s.find(name)) {
			p.error(no, name, "given more than once in " + section_title(s) +
			    " (first on line " + std::to_string(e->line) + "); only list keys may repeat");
			return;
		}
	}
	s.entries.push_back({std::string(name), no, {std::string(value)}, {no}});
	entry = int(s.entries.size()) - 1;
}

/* Blank lines between continuation lines belong to the value (paragraphs in a body). */
void IniState::add_continuation(std::string_view value)
{
	if (entry < 0 || section < 0)
		return;
	RawEntry &e = sec().entries[size_t(entry)];
	int no = lineno();
	for (int l = e.linenos.back() + 1; l < no; l++) {
		const Line &raw = lines[size_t(l - 1)];
		if (raw.text.find_first_not_of(" \t\v\f\r") == std::string_view::npos) {
			e.lines.emplace_back();
			e.linenos.push_back(l);
		}
	}
	e.lines.emplace_back(value);
	e.linenos.push_back(no);
}

char *ini_reader_cb(char *str, int num, void *stream) noexcept
{
	IniState &st = *static_cast<IniState *>(stream);
	try {
		/* Never hand out a partial line; a smaller buffer is not a line read. */
		if (num < 0 || size_t(num) < kMaxLine + 1)
			return nullptr;
		st.finish_line();
		if (st.next >= st.lines.size())
			return nullptr;
		const Line &l = st.lines[st.next++];
		std::string_view text = l.refused ? std::string_view() : l.text;
		st.classify(text);
		text.copy(str, text.size());
		str[text.size()] = '\0';
		return str;
	} catch (...) {
		st.failed = true;
		return nullptr;
	}
}

int ini_handler_cb(void *user, const char *, const char *name, const char *value) noexcept
{
	IniState &st = *static_cast<IniState *>(user);
	try {
		st.handled = true;
		if (st.kind == LineKind::continuation)
			st.add_continuation(value);
		else
			st.add_key(name, value);
		return 1;
	} catch (...) {
		st.failed = true;
		return 0;
	}
}

void parse_ini(std::string_view text, Parsed &p)
{
	std::vector<Line> lines = split_lines(text, p);
	IniState st{p, lines};
	int rc = ini_parse_stream(ini_reader_cb, &st, ini_handler_cb, &st);
	if (st.failed || rc < 0 || st.next < lines.size())
		p.error(0, "", "internal error while reading the file");
}

/* ---- stage 3: substitution ---- */

struct Substituter {
	Parsed &p;
	const ConfigOptions &opts;
	std::vector<std::string> missing;
	int missing_line = 0;
	std::string missing_key;

	bool run(std::string_view raw, const RawEntry &e, int line, std::string &out);
	bool env(std::string_view name, const RawEntry &e, int line, std::string &out);
	bool file(std::string_view path, const RawEntry &e, int line, std::string &out);
	void entry(RawEntry &e);
	void scalar(RawEntry &e);
	void body(RawEntry &e);
	void list(RawEntry &e);
	bool item(RawEntry &e, std::string_view raw, int line);
	void report_missing();
};

bool valid_env_name(std::string_view n)
{
	if (n.empty() || isdigit((unsigned char)n[0]))
		return false;
	for (unsigned char c : n)
		if (!(isalnum(c) || c == '_'))
			return false;
	return true;
}

/* Raw text outside ${...} references, other than blanks: a literal. */
bool has_literal(std::string_view raw)
{
	for (size_t i = 0; i < raw.size(); i++) {
		if (raw.compare(i, 2, "${") == 0) {
			size_t close = raw.find('}', i);
			if (close == std::string_view::npos)
				return true;
			i = close;
		} else if (!ini_space(raw[i]))
			return true;
	}
	return false;
}

bool Substituter::env(std::string_view name, const RawEntry &e, int line, std::string &out)
{
	if (!valid_env_name(name)) {
		p.error(line, e.key, "invalid environment variable name in ${env." +
		    (is_secret_key(e.key) ? std::string("...") : std::string(name)) + "}");
		return false;
	}
	std::optional<std::string> v;
	if (opts.env)
		v = opts.env(name, opts.env_ctx);
	else if (const char *s = getenv(std::string(name).c_str()))
		v = s;
	if (v) {
		out += *v;
		return true;
	}
	if (missing.empty()) {
		missing_line = line;
		missing_key = e.key;
	}
	if (std::find(missing.begin(), missing.end(), name) == missing.end())
		missing.emplace_back(name);
	return false;
}

bool Substituter::file(std::string_view path, const RawEntry &e, int line, std::string &out)
{
	std::string content, why;
	if (path.empty() || path.front() != '/') {
		p.error(line, e.key, "${file:PATH} needs an absolute path");
		return false;
	}
	if (!read_small_file(std::string(path), content, why)) {
		p.error(line, e.key, "cannot read " + std::string(path) + ": " + why);
		return false;
	}
	if (content.size() >= 2 && content.compare(content.size() - 2, 2, "\r\n") == 0)
		content.resize(content.size() - 2);
	else if (!content.empty() && content.back() == '\n')
		content.pop_back();
	out += content;
	return true;
}

/* One pass, left to right; substituted text is never scanned again. */
bool Substituter::run(std::string_view raw, const RawEntry &e, int line, std::string &out)
{
	bool ok = true;
	out.clear();
	for (size_t i = 0; i < raw.size();) {
		size_t at = raw.find("${", i);
		out.append(raw.substr(i, at - i));
		if (at == std::string_view::npos)
			break;
		size_t close = raw.find('}', at);
		if (close == std::string_view::npos) {
			p.error(line, e.key, "unterminated \"${\"");
			return false;
		}
		std::string_view ref = raw.substr(at + 2, close - at - 2);
		if (ref.substr(0, 4) == "env.")
			ok = env(ref.substr(4), e, line, out) && ok;
		else if (ref.substr(0, 5) == "file:")
			ok = file(ref.substr(5), e, line, out) && ok;
		else {
			p.error(line, e.key, "unknown substitution" +
			    (is_secret_key(e.key) ? std::string() : " \"${" + std::string(ref) + "}\"") +
			    ": use ${env.NAME} or ${file:/path}");
			ok = false;
		}
		i = close + 1;
	}
	return ok;
}

bool single_line(std::string_view s)
{
	return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

void Substituter::scalar(RawEntry &e)
{
	if (e.lines.size() > 1) {
		size_t i = 1;
		while (i + 1 < e.lines.size() && e.lines[i].empty())
			i++;
		p.error(e.linenos[i], e.key, "this indented line continues the value of " + e.key +
		    " (line " + std::to_string(e.line) +
		    "); only body and list keys take continuation lines: remove the indentation");
		e.bad = true;
		return;
	}
	if (is_secret_key(e.key) && has_literal(e.lines[0]))
		e.literal_line = e.line;
	std::string v;
	if (!run(e.lines[0], e, e.line, v)) {
		e.bad = true;
		return;
	}
	if (!single_line(v)) {
		p.error(e.line, e.key, "value must be a single line (CR, LF or NUL after substitution)");
		e.bad = true;
		return;
	}
	e.values.push_back({std::move(v), "", e.line});
}

/* Body lines are joined with "\n"; an empty key line (`body =`) adds no leading newline. */
void Substituter::body(RawEntry &e)
{
	std::string joined, v;
	size_t first = (e.lines.size() > 1 && e.lines[0].empty()) ? 1 : 0;
	for (size_t i = first; i < e.lines.size(); i++) {
		if (!run(e.lines[i], e, e.linenos[i], v))
			e.bad = true;
		if (i > first)
			joined += '\n';
		joined += v;
	}
	if (e.bad)
		return;
	if (joined.find('\0') != std::string::npos) {
		p.error(e.line, e.key, "value contains a NUL byte");
		e.bad = true;
		return;
	}
	e.values.push_back({std::move(joined), "", e.line});
}

/*
 * One list item. Items are split before substitution, so a substituted value
 * is always exactly one item (a password may hold a comma). smtp_user is
 * "NAME SECRET", split at the first blank run of the raw text.
 */
bool Substituter::item(RawEntry &e, std::string_view raw, int line)
{
	RawValue v{"", "", line};
	std::string_view secret_raw;
	if (e.key == "smtp_user") {
		size_t sp = raw.find_first_of(" \t");
		if (sp != std::string_view::npos) {
			secret_raw = raw.substr(raw.find_first_not_of(" \t", sp));
			raw = raw.substr(0, sp);
		}
		if (has_literal(secret_raw) && !e.literal_line)
			e.literal_line = line;
	} else if (is_secret_key(e.key) && has_literal(raw) && !e.literal_line)
		e.literal_line = line;

	if (!run(raw, e, line, v.text) || !run(secret_raw, e, line, v.secret))
		return false;
	if (e.key == "smtp_user" && secret_raw.empty()) {
		/* The whole "NAME SECRET" came from one substitution. */
		size_t sp = v.text.find_first_of(" \t");
		if (sp != std::string::npos) {
			size_t s2 = v.text.find_first_not_of(" \t", sp);
			v.secret = s2 == std::string::npos ? "" : v.text.substr(s2);
			v.text.resize(sp);
		}
	}
	if (!single_line(v.text) || !single_line(v.secret)) {
		p.error(line, e.key, "list item must be a single line (CR, LF or NUL after substitution)");
		return false;
	}
	if (!v.text.empty() || !v.secret.empty())
		e.values.push_back(std::move(v));
	return true;
}

void Substituter::list(RawEntry &e)
{
	for (size_t i = 0; i < e.lines.size(); i++)
		for (const std::string &raw : split_list(e.lines[i]))
			if (!item(e, raw, e.linenos[i]))
				e.bad = true;
}

void Substituter::entry(RawEntry &e)
{
	if (e.key == "body")
		body(e);
	else if (is_list_key(e.key))
		list(e);
	else
		scalar(e);
}

void Substituter::report_missing()
{
	if (missing.empty())
		return;
	std::string names;
	for (const std::string &n : missing)
		names += (names.empty() ? "" : ", ") + n;
	p.error(missing_line, missing_key, std::string("undefined environment variable") +
	    (missing.size() > 1 ? "s: " : ": ") + names);
}

void substitute(Parsed &p, const ConfigOptions &opts)
{
	Substituter s{p, opts};
	for (RawSection &sec : p.sections)
		for (RawEntry &e : sec.entries)
			s.entry(e);
	s.report_missing();
}

/* A literal secret in a file others can read is a leak waiting to happen. */
void check_secrecy(Parsed &p, const ConfigOptions &opts)
{
	const RawEntry *first = nullptr;
	for (const RawSection &sec : p.sections)
		for (const RawEntry &e : sec.entries)
			if (e.literal_line && (!first || e.literal_line < first->literal_line))
				first = &e;
	struct stat st;
	if (!opts.check_secrecy || !first || stat(p.path.c_str(), &st) == -1 || !(st.st_mode & 044))
		return;
	p.error(first->literal_line, first->key, "file holds a literal secret (key " + first->key +
	    " on line " + std::to_string(first->literal_line) +
	    ") but is readable by group or others; chmod 600 it or use ${env.NAME}/${file:/path}");
}

} // namespace

ConfigResult config_parse_string(std::string_view text, const std::string &path,
    const ConfigOptions &opts)
{
	Parsed p;
	Config cfg;
	ConfigResult res;

	p.path = path;
	cfg.path = path;
	parse_ini(text, p);
	substitute(p, opts);
	check_secrecy(p, opts);
	build_config(p, opts, cfg);

	/* By line; errors not tied to a line last. */
	std::stable_sort(p.errors.begin(), p.errors.end(), [](const ConfigError &a, const ConfigError &b) {
		return (a.line ? a.line : INT32_MAX) < (b.line ? b.line : INT32_MAX);
	});
	res.errors = std::move(p.errors);
	if (res.errors.empty())
		res.config = std::move(cfg);
	return res;
}

ConfigResult config_parse_file(const std::string &path, const ConfigOptions &opts)
{
	std::string text, why;
	if (!read_small_file(path, text, why)) {
		ConfigResult res;
		res.errors.push_back({path, 0, "", "cannot read configuration: " + why});
		return res;
	}
	return config_parse_string(text, path, opts);
}

} // namespace posthorn
