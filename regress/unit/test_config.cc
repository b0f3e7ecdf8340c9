/*
 * posthorn.conf(5) parser: one small test per rule and per error message.
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "common/config.h"
#include "regress/unit/unit.h"

using namespace posthorn;

namespace {

const char *const kPath = "/nonexistent/posthorn-test.conf";

const char *const kCert =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBhjCCAS2gAwIBAgIUREH5yMb2idpmTyISP6zRKbc/aN8wCgYIKoZIzj0EAwIw\n"
    "GDEWMBQGA1UEAwwNcG9zdGhvcm4tdGVzdDAgFw0yNjExMjUxMzE2MDhaGA8yMTI2\n"
    "MTEwMTEzMTYwOFowGDEWMBQGA1UEAwwNcG9zdGhvcm4tdGVzdDBZMBMGByqGSM49\n"
    "AgEGCCqGSM49AwEHA0IABPfYsOAKRYdn0FCOArBB6vID+/EgruBixpXV91kmOqiH\n"
    "qsKg+3ye4J+nnK4eZ+/9JLQ+8xjIEYDWxqtF/bNK5t+jUzBRMB0GA1UdDgQWBBTO\n"
    "DL4IRiBq37lTyqL04F1XpGdSxzAfBgNVHSMEGDAWgBTODL4IRiBq37lTyqL04F1X\n"
    "pGdSxzAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCIDXdb9g5gB/s\n"
    "100MO+vTVnwDoZRpnc/RyygSO6xImwzdAiB7U0yCiTR9yc38+FRuPmcMvNsFWuDV\n"
    "3fopEPl+jIH89A==\n"
    "-----END CERTIFICATE-----\n";
const char *const kKey =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgpMcaZi45ysPGtWHH\n"
    "9HH8QJTKzBmUNVyYgvFiJ8ZxcAGhRANCAAT32LDgCkWHZ9BQjgKwQeryA/vxIK7g\n"
    "YsaV1fdZJjqoh6rCoPt8nuCfp5yuHmfv/SS0PvMYyBGA1sarRf2zSubf\n"
    "-----END PRIVATE KEY-----\n";
/* A valid key that does not belong to kCert. */
const char *const kOtherKey =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgOCL79VdDzupVaH6v\n"
    "i+Z7+A27jSChO3eevzGsuIrSpZehRANCAARWxrGkRWlMvukhvNG2rEnP82x5tBNS\n"
    "TOW9MVoMWIK6hc8N3fYXvcJ6F8sgdSU1CBOdwzOLyzkXvzdLkC6gG8MV\n"
    "-----END PRIVATE KEY-----\n";

/* The smallest configuration that passes: one file transport, one open listener. */
const char *const kBase =
    "[transport out]\n"
    "type = file\n"
    "directory = /tmp\n"
    "[smtp local]\n"
    "listen = 127.0.0.1:2525\n"
    "auth_required = none\n"
    "allowed_senders = *\n";

std::vector<std::string> g_tmpfiles;
std::map<std::string, std::string> g_env;

std::optional<std::string> test_env(std::string_view name, void *)
{
	auto it = g_env.find(std::string(name));
	if (it == g_env.end())
		return std::nullopt;
	return it->second;
}

ConfigOptions opts()
{
	ConfigOptions o;
	o.env = test_env;
	return o;
}

ConfigResult parse(const std::string &text, const ConfigOptions &o = opts())
{
	return config_parse_string(text, kPath, o);
}

std::string tmpfile(const std::string &content, mode_t mode = 0600)
{
	char name[] = "/tmp/posthorn-test-XXXXXX";
	int fd = mkstemp(name);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content.data(), content.size()), (ssize_t)content.size());
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	g_tmpfiles.push_back(name);
	return name;
}

void dump(const ConfigResult &r)
{
	for (const ConfigError &e : r.errors)
		fprintf(stderr, "  error: %s\n", e.to_string().c_str());
}

/* True when some error reads "FILE:LINE: KEY: ...needle..." (":LINE" absent for 0, "KEY: " for ""). */
bool has_error(const ConfigResult &r, int line, const std::string &key, const std::string &needle,
    const std::string &file = kPath)
{
	std::string prefix = file + (line ? ":" + std::to_string(line) : "") + ": " +
	    (key.empty() ? "" : key + ": ");
	for (const ConfigError &e : r.errors) {
		std::string s = e.to_string();
		if (s.compare(0, prefix.size(), prefix) == 0 && s.find(needle, prefix.size()) != std::string::npos)
			return true;
	}
	fprintf(stderr, "  wanted: %s...%s\n", prefix.c_str(), needle.c_str());
	dump(r);
	return false;
}

void expect_ok(const ConfigResult &r)
{
	if (!r.ok())
		dump(r);
	assert_true(r.ok());
}

#define EXPECT_ERROR(r, line, key, needle) assert_true(has_error((r), (line), (key), (needle)))

bool contains(const std::string &hay, const std::string &needle)
{
	return hay.find(needle) != std::string::npos;
}

int teardown(void **)
{
	for (const std::string &f : g_tmpfiles)
		unlink(f.c_str());
	g_tmpfiles.clear();
	g_env.clear();
	return 0;
}

/* ---- value parsers ---- */

void test_parse_duration(void **)
{
	uint64_t s = 0;
	assert_true(parse_duration("30s", s)); assert_int_equal(s, 30);
	assert_true(parse_duration("5m", s)); assert_int_equal(s, 300);
	assert_true(parse_duration("1h30m", s)); assert_int_equal(s, 5400);
	assert_true(parse_duration("4d", s)); assert_int_equal(s, 4 * 86400);
	assert_true(parse_duration("1d2h3m4s", s)); assert_int_equal(s, 93784);
	assert_true(parse_duration("0s", s)); assert_int_equal(s, 0);
	for (const char *bad : {"", "30", "s", "5x", "1m1h", "1h1h", "1h ", " 1h", "-1s", "1.5h",
	    "99999999999999999999s", "36501d", "1H"})
		assert_false(parse_duration(bad, s));
}

void test_parse_size(void **)
{
	uint64_t b = 0;
	assert_true(parse_size("512", b)); assert_int_equal(b, 512);
	assert_true(parse_size("64KB", b)); assert_int_equal(b, 65536);
	assert_true(parse_size("64k", b)); assert_int_equal(b, 65536);
	assert_true(parse_size("1MB", b)); assert_int_equal(b, 1048576);
	assert_true(parse_size("1 mb", b)); assert_int_equal(b, 1048576);
	assert_true(parse_size("2G", b)); assert_int_equal(b, 2ull << 30);
	assert_true(parse_size("10B", b)); assert_int_equal(b, 10);
	for (const char *bad : {"", "KB", "1TB", "1.5MB", "-1", "12 34", "99999999999999999999",
	    "17179869184GB"})
		assert_false(parse_size(bad, b));
}

void test_parse_bool(void **)
{
	bool v = false;
	for (const char *t : {"yes", "true", "on", "YES"}) {
		assert_true(parse_bool(t, v));
		assert_true(v);
	}
	for (const char *f : {"no", "false", "off"}) {
		assert_true(parse_bool(f, v));
		assert_false(v);
	}
	assert_false(parse_bool("1", v));
	assert_false(parse_bool("", v));
}

void test_split_list(void **)
{
	auto l = split_list(" a , b,,c ");
	assert_int_equal(l.size(), 3);
	assert_string_equal(l[0].c_str(), "a");
	assert_string_equal(l[2].c_str(), "c");
	l = split_list("\"Doe, John\" <j@example.com>, Team <a,b@example.com>");
	assert_int_equal(l.size(), 2);
	assert_string_equal(l[0].c_str(), "\"Doe, John\" <j@example.com>");
	assert_string_equal(l[1].c_str(), "Team <a,b@example.com>");
	l = split_list("${file:/a,b}, x");
	assert_int_equal(l.size(), 2);
	assert_string_equal(l[0].c_str(), "${file:/a,b}");
	assert_int_equal(split_list(" , ").size(), 0);
}

void test_parse_rate_limit(void **)
{
	RateLimit r;
	assert_true(parse_rate_limit("5/1m", r));
	assert_int_equal(r.count, 5);
	assert_int_equal(r.interval, 60);
	assert_true(parse_rate_limit("100/1h", r));
	assert_int_equal(r.interval, 3600);
	for (const char *bad : {"", "5", "/1m", "5/", "0/1m", "5/0s", "x/1m", "5/1x", "5/60"})
		assert_false(parse_rate_limit(bad, r));
}

void test_valid_address(void **)
{
	for (const char *ok : {"a@example.com", "Contact Form <noreply@example.com>",
	    "<a@b.example>", "\"Doe, J\" <j.doe+x@mail.example.org>"})
		assert_true(valid_address(ok));
	for (const char *bad : {"", "a", "@example.com", "a@", "a b@example.com", "a@exa mple.com",
	    "Name <a@example.com", "Name <a@example.com> x", "a@example..com", "Name <a@b>\r\nBcc: x@y",
	    "a@b@c", "<>"})
		assert_false(valid_address(bad));
	assert_false(valid_address(std::string_view("a@b\0c", 5)));
}

void test_normalize_origin(void **)
{
	std::string o;
	assert_true(normalize_origin("https://Example.COM/", o));
	assert_string_equal(o.c_str(), "https://example.com");
	assert_true(normalize_origin("https://example.com:443", o));
	assert_string_equal(o.c_str(), "https://example.com");
	assert_true(normalize_origin("HTTP://example.com:80", o));
	assert_string_equal(o.c_str(), "http://example.com");
	assert_true(normalize_origin("http://example.com:8080", o));
	assert_string_equal(o.c_str(), "http://example.com:8080");
	assert_true(normalize_origin("https://[::1]:8443", o));
	assert_string_equal(o.c_str(), "https://[::1]:8443");
	for (const char *bad : {"example.com", "ftp://example.com", "https://", "https://example.com/path",
	    "https://example.com:0", "https://example.com:99999", "https://user@example.com",
	    "https://example.com?q", "https://exa mple.com", "https://[zz]"})
		assert_false(normalize_origin(bad, o));
}

void test_template_compiles(void **)
{
	std::string why;
	assert_true(template_compiles("Contact from {{.name}} <{{.e-mail_2}}>", why));
	assert_true(template_compiles("no actions }} here", why));
	assert_false(template_compiles("Hello {{.name", why));
	assert_true(contains(why, "unclosed"));
	assert_false(template_compiles("{{if .x}}y{{end}}", why));
	assert_true(contains(why, "only {{.name}}"));
	assert_false(template_compiles("{{.}}", why));
	assert_false(template_compiles("{{.a b}}", why));
}

void test_error_to_string(void **)
{
	assert_string_equal((ConfigError{"f.conf", 3, "k", "bad"}).to_string().c_str(), "f.conf:3: k: bad");
	assert_string_equal((ConfigError{"f.conf", 0, "k", "bad"}).to_string().c_str(), "f.conf: k: bad");
	assert_string_equal((ConfigError{"f.conf", 3, "", "bad"}).to_string().c_str(), "f.conf:3: bad");
}

/* ---- reading ---- */

void test_minimal_and_defaults(void **)
{
	ConfigResult r = parse(kBase);
	expect_ok(r);
	const Config &c = *r.config;
	assert_int_equal(c.smtp.size(), 1);
	assert_string_equal(c.smtp[0].transport.c_str(), "out");  /* the only transport */
	assert_false(c.smtp[0].require_tls);                      /* meaningless without TLS */
	assert_false(c.global.hostname.empty());                  /* gethostname() */
	assert_string_equal(c.global.user.c_str(), "_posthorn");
	assert_int_equal(c.global.queue_lifetime, 4 * 86400);
	assert_true(c.smtp[0].delivery == Delivery::queue);
	assert_string_equal(c.path.c_str(), kPath);
	assert_non_null(c.find_transport("out"));
	assert_null(c.find_transport("nope"));
}

void test_line_too_long(void **)
{
	std::string ok = "[global]\nhostname = " + std::string(199 - 11, 'a') + "\n";
	ConfigResult r = parse(ok + kBase);
	expect_ok(r);
	assert_int_equal(r.config->global.hostname.size(), 188);

	std::string body = "x" + std::string(199, 'y');
	r = parse(std::string(kBase) + "[global]\n; " + body + "\n");
	EXPECT_ERROR(r, 9, "", "line too long (202 bytes, limit 199): split it with continuation "
	    "lines or use body_file");
	assert_int_equal(r.errors.size(), 1);
}

void test_crlf_and_bom(void **)
{
	std::string text = "\xEF\xBB\xBF[global]\r\nhostname = mx.example\r\n";
	ConfigResult r = parse(text + kBase);
	expect_ok(r);
	assert_string_equal(r.config->global.hostname.c_str(), "mx.example");
}

void test_inline_comment(void **)
{
	ConfigResult r = parse(std::string(kBase) +
	    "[global]\nhostname = mx.example   ; the banner name\nuser = a;b\n");
	expect_ok(r);
	assert_string_equal(r.config->global.hostname.c_str(), "mx.example");
	assert_string_equal(r.config->global.user.c_str(), "a;b");
}

void test_continuation_lines(void **)
{
	std::string text = std::string(kBase) +
	    "[http]\nlisten = 127.0.0.1:8080\n"
	    "[endpoint /c]\n"            /* line 10 */
	    "to = a@example.com,\n"
	    "  b@example.com\n"
	    "   c@example.com\n"
	    "from = Form <f@example.com>\n"
	    "body = Hello {{.name}}\n"   /* line 15 */
	    "  second line\n"
	    "\n"
	    "  ; a comment is not part of it\n"
	    "  after a blank line\n";
	ConfigResult r = parse(text);
	expect_ok(r);
	const EndpointConfig &e = r.config->endpoints[0];
	assert_int_equal(e.to.size(), 3);
	assert_string_equal(e.to[2].c_str(), "c@example.com");
	assert_string_equal(e.body.c_str(), "Hello {{.name}}\nsecond line\n\nafter a blank line");

	r = parse(std::string(kBase) + "[http]\nlisten = 127.0.0.1:8080\n[endpoint /c]\nto = a@example.com\n"
	    "from = f@example.com\nbody =\n  first\n  second\n");
	expect_ok(r);
	assert_string_equal(r.config->endpoints[0].body.c_str(), "first\nsecond");
}

void test_continuation_of_scalar(void **)
{
	ConfigResult r = parse(std::string(kBase) + "[global]\nhostname = mx.example\n  user = x\n");
	EXPECT_ERROR(r, 10, "hostname", "continues the value of hostname (line 9)");
}

void test_repeated_keys(void **)
{
	ConfigResult r = parse(std::string(kBase) + "[global]\nuser = a\nuser = b\n");
	EXPECT_ERROR(r, 10, "user", "given more than once in [global] (first on line 9)");

	r = parse(std::string(kBase) + "listen = 127.0.0.1:2526\nallowed_senders = a@example.com\n");
	expect_ok(r);
	assert_int_equal(r.config->smtp[0].listen.size(), 2);
	assert_int_equal(r.config->smtp[0].allowed_senders.size(), 2);
}

void test_sections(void **)
{
	ConfigResult r = parse(std::string(kBase) +
	    "[mailbox x]\n"            /* 8 */
	    "a = b\n"
	    "[transport]\n"            /* 10 */
	    "[global extra]\n"
	    "[transport out]\n"
	    "[endpoint api]\n"
	    "[global\n"
	    "[http] junk\n"            /* 15 */
	    "[smtp bad/name]\n");
	EXPECT_ERROR(r, 8, "", "unknown section [mailbox x]");
	EXPECT_ERROR(r, 10, "", "[transport] needs a name");
	EXPECT_ERROR(r, 11, "", "[global] takes no name");
	EXPECT_ERROR(r, 12, "", "[transport out] given more than once (first on line 1)");
	EXPECT_ERROR(r, 13, "", "endpoint path must start with '/'");
	EXPECT_ERROR(r, 14, "", "without closing ']'");
	EXPECT_ERROR(r, 15, "", "unexpected text after ']'");
	EXPECT_ERROR(r, 16, "", "section name must be");
	assert_int_equal(r.errors.size(), 8);  /* keys of a bad section add no noise */
}

void test_long_section_name(void **)
{
	/* inih would cut section names at 50 bytes; ours are read whole. */
	std::string path = "/" + std::string(80, 'p');
	ConfigResult r = parse(std::string(kBase) + "[http]\nlisten = 127.0.0.1:8080\n[endpoint " + path +
	    "]\nto = a@example.com\nfrom = b@example.com\n");
	expect_ok(r);
	assert_string_equal(r.config->endpoints[0].path.c_str(), path.c_str());
}

void test_unknown_key_and_syntax(void **)
{
	ConfigResult r = parse("stray = 1\n" + std::string(kBase) + "colour = blue\njust words\n");
	EXPECT_ERROR(r, 1, "stray", "key outside of any section");
	EXPECT_ERROR(r, 9, "colour", "unknown key in [smtp local]");
	EXPECT_ERROR(r, 10, "", "syntax error: expected KEY = VALUE");
}

void test_collects_all_errors(void **)
{
	ConfigResult r = parse(std::string(kBase) +
	    "idle_timeout = 5x\nmax_message_size = lots\nmax_recipients_per_session = 0\n"
	    "[global]\nlog = file\nlog_format = xml\nlog_level = loud\nhostname = a b\n");
	EXPECT_ERROR(r, 8, "idle_timeout", "invalid duration \"5x\" (use e.g. 30s, 5m, 1h30m, 4d)");
	EXPECT_ERROR(r, 9, "max_message_size", "invalid size \"lots\"");
	EXPECT_ERROR(r, 10, "max_recipients_per_session", "must be a number from 1 to 100000");
	EXPECT_ERROR(r, 12, "log", "expected stderr or syslog");
	EXPECT_ERROR(r, 13, "log_format", "expected json or text");
	EXPECT_ERROR(r, 14, "log_level", "expected debug, info, warn or error");
	EXPECT_ERROR(r, 15, "hostname", "must hold no spaces");
	assert_int_equal(r.errors.size(), 7);
	assert_false(r.config.has_value());
}

void test_bounds(void **)
{
	ConfigResult r = parse(std::string(kBase) + "idle_timeout = 2d\nmax_message_size = 2GB\n");
	EXPECT_ERROR(r, 8, "idle_timeout", "must be between 1s and 1h");
	EXPECT_ERROR(r, 9, "max_message_size", "must be between 1KB and 1GB");
}

void test_retry_order(void **)
{
	ConfigResult r = parse(std::string(kBase) + "[global]\nretry_initial = 10m\nretry_max = 5m\n");
	EXPECT_ERROR(r, 10, "retry_max", "must not be less than retry_initial (10m)");
}

void test_users_and_spool_apart(void **)
{
	ConfigResult r = parse(std::string(kBase) + "[global]\nuser = mail\nrelay_user = mail\n"
	    "chroot = /var/empty\nspool = /var/empty/spool\n");
	EXPECT_ERROR(r, 10, "relay_user", "must differ from user (mail)");
	EXPECT_ERROR(r, 12, "spool", "must not be inside chroot (/var/empty)");
	r = parse(std::string(kBase) + "[global]\nchroot = /var/empty\nspool = /var/empty-spool\n");
	assert_true(r.ok());
}

void test_empty_value(void **)
{
	ConfigResult r = parse(std::string(kBase) + "[global]\nuser =\n");
	EXPECT_ERROR(r, 9, "user", "empty value");
}

void test_parse_file_missing(void **)
{
	ConfigResult r = config_parse_file("/nonexistent/dir/posthorn.conf", opts());
	assert_true(has_error(r, 0, "", "cannot read configuration", "/nonexistent/dir/posthorn.conf"));
}

/* ---- substitution ---- */

void test_env_substitution(void **)
{
	g_env["HOST"] = "mx.example";
	g_env["LOOP"] = "${env.HOST}";
	ConfigResult r = parse(std::string(kBase) + "[global]\nhostname = ${env.HOST}\nuser = u${env.LOOP}\n");
	expect_ok(r);
	assert_string_equal(r.config->global.hostname.c_str(), "mx.example");
	assert_string_equal(r.config->global.user.c_str(), "u${env.HOST}");  /* not re-scanned */
}

void test_env_missing_listed_once(void **)
{
	ConfigResult r = parse(std::string(kBase) +
	    "[global]\nhostname = ${env.MISSING_A}\nuser = ${env.MISSING_B}\nspool = /${env.MISSING_A}\n");
	EXPECT_ERROR(r, 9, "hostname", "undefined environment variables: MISSING_A, MISSING_B");
	assert_int_equal(r.errors.size(), 1);
}

void test_env_multiline_rejected(void **)
{
	g_env["EVIL"] = "mx.example\r\nX: y";
	ConfigResult r = parse(std::string(kBase) + "[global]\nhostname = ${env.EVIL}\n");
	EXPECT_ERROR(r, 9, "hostname", "value must be a single line");
	g_env["EVIL_KEY"] = "secret-value-123\nmore";
	r = parse("[transport pm]\ntype = postmark\napi_key = ${env.EVIL_KEY}\n" + std::string(kBase));
	EXPECT_ERROR(r, 3, "api_key", "single line");
	for (const ConfigError &e : r.errors)
		assert_false(contains(e.to_string(), "secret-value-123"));
}

void test_file_substitution(void **)
{
	std::string lf = tmpfile("mx.example\n");
	std::string crlf = tmpfile("relay-user\r\n");
	ConfigResult r = parse(std::string(kBase) + "[global]\nhostname = ${file:" + lf +
	    "}\nuser = ${file:" + crlf + "}\n");
	expect_ok(r);
	assert_string_equal(r.config->global.hostname.c_str(), "mx.example");
	assert_string_equal(r.config->global.user.c_str(), "relay-user");

	std::string two = tmpfile("a\n\n");
	r = parse(std::string(kBase) + "[global]\nuser = ${file:" + two + "}\n");
	EXPECT_ERROR(r, 9, "user", "single line");  /* only one newline is removed */
}

void test_file_substitution_errors(void **)
{
	ConfigResult r = parse(std::string(kBase) +
	    "[global]\nhostname = ${file:/nonexistent/x}\nuser = ${file:rel}\nspool = ${env.X\n"
	    "chroot = ${foo}\n");
	EXPECT_ERROR(r, 9, "hostname", "cannot read /nonexistent/x: No such file or directory");
	EXPECT_ERROR(r, 10, "user", "${file:PATH} needs an absolute path");
	EXPECT_ERROR(r, 11, "spool", "unterminated \"${\"");
	EXPECT_ERROR(r, 12, "chroot", "unknown substitution \"${foo}\": use ${env.NAME} or ${file:/path}");
}

void test_substituted_item_is_one_item(void **)
{
	g_env["PW"] = "pa,ss word";
	std::string text =
	    "[transport out]\ntype = file\ndirectory = /tmp\n"
	    "[smtp s]\nlisten = 127.0.0.1:25\nallowed_senders = *\n"
	    "smtp_user = ghost ${env.PW}, gitea $y$j9T$abc$def\n";
	ConfigResult r = parse(text);
	expect_ok(r);
	const auto &u = r.config->smtp[0].users;
	assert_int_equal(u.size(), 2);
	assert_string_equal(u[0].name.c_str(), "ghost");
	assert_string_equal(u[0].secret.c_str(), "pa,ss word");
	assert_string_equal(u[1].secret.c_str(), "$y$j9T$abc$def");
}

/* ---- secrecy ---- */

void test_secrecy_mode(void **)
{
	std::string literal = "[transport pm]\ntype = postmark\napi_key = literal-token\n"
	    "[smtp s]\nlisten = 127.0.0.1:25\nauth_required = none\nallowed_senders = *\n";
	std::string open = tmpfile(literal, 0644);
	ConfigResult r = config_parse_file(open, opts());
	assert_true(has_error(r, 3, "api_key", "file holds a literal secret (key api_key on line 3) but "
	    "is readable by group or others; chmod 600 it or use ${env.NAME}/${file:/path}", open));
	assert_false(contains(r.errors[0].to_string(), "literal-token"));

	expect_ok(config_parse_file(tmpfile(literal, 0600), opts()));

	ConfigOptions no = opts();
	no.check_secrecy = false;
	expect_ok(config_parse_file(open, no));

	g_env["TOKEN"] = "from-env";
	std::string indirect = "[transport pm]\ntype = postmark\napi_key = ${env.TOKEN}\n"
	    "[smtp s]\nlisten = 127.0.0.1:25\nauth_required = none\nallowed_senders = *\n";
	expect_ok(config_parse_file(tmpfile(indirect, 0644), opts()));
}

void test_secrecy_smtp_user(void **)
{
	g_env["PW"] = "x";
	std::string base = "[transport out]\ntype = file\ndirectory = /tmp\n"
	    "[smtp s]\nlisten = 127.0.0.1:25\nallowed_senders = *\n";
	/* The user name is not secret, the part after it is. */
	expect_ok(config_parse_file(tmpfile(base + "smtp_user = ghost ${env.PW}\n", 0640), opts()));
	std::string f = tmpfile(base + "smtp_user = ghost $2b$10$abcdefghijklmnopqrstuv\n", 0640);
	ConfigResult r = config_parse_file(f, opts());
	assert_true(has_error(r, 7, "smtp_user", "literal secret (key smtp_user on line 7)", f));
}

void test_secrets_not_in_errors(void **)
{
	std::string text = std::string(kBase) +
	    "[http]\nlisten = 127.0.0.1:8080\n"
	    "[endpoint /f]\nto = a@example.com\nfrom = b@example.com\ncsrf_secret = SENTINEL-short\n"
	    "[endpoint /a]\nauth = api-key\nto = a@example.com\nfrom = b@example.com\n"
	    "api_keys = sha256:SENTINEL-not-hex\n"
	    "[transport t2]\ntype = postmark\napi_key = SENTINEL-${bogus}\n";
	ConfigResult r = parse(text);
	EXPECT_ERROR(r, 13, "csrf_secret", "must be at least 16 bytes");
	EXPECT_ERROR(r, 18, "api_keys", "sha256: must be followed by 64 hex digits");
	EXPECT_ERROR(r, 21, "api_key", "unknown substitution: use ${env.NAME}");
	for (const ConfigError &e : r.errors)
		assert_false(contains(e.to_string(), "SENTINEL"));
}

/* ---- transports ---- */

void test_transport_rules(void **)
{
	ConfigResult r = parse(std::string(kBase) +
	    "[transport a]\n"                          /* 8 */
	    "api_key = k\n"
	    "[transport b]\ntype = postmark\n"         /* 10 */
	    "domain = mg.example\n"
	    "[transport c]\ntype = mailgun\napi_key = k\n"   /* 13 */
	    "[transport d]\ntype = ses\n"              /* 16 */
	    "[transport e]\ntype = resend\napi_key = k\nbase_url = ftp://x\n"  /* 18 */
	    "[transport f]\ntype = carrier-pigeon\n"   /* 22 */
	    "[transport g]\ntype = smtp\nhost = relay.example\npassword = p\n"); /* 24 */
	EXPECT_ERROR(r, 8, "type", "required in [transport a]");
	EXPECT_ERROR(r, 10, "api_key", "required in [transport b] for type postmark");
	EXPECT_ERROR(r, 12, "domain", "not valid for a postmark transport");
	EXPECT_ERROR(r, 13, "domain", "required in [transport c] for type mailgun");
	EXPECT_ERROR(r, 16, "region", "required in [transport d] for type ses");
	EXPECT_ERROR(r, 16, "access_key_id", "required");
	EXPECT_ERROR(r, 16, "secret_access_key", "required");
	EXPECT_ERROR(r, 21, "base_url", "must be an http:// or https:// URL");
	EXPECT_ERROR(r, 23, "type", "expected postmark, resend, mailgun, ses, smtp or file");
	EXPECT_ERROR(r, 27, "password", "needs username");
}

void test_transport_defaults(void **)
{
	std::string text = std::string(kBase) + "transport = out\n"
	    "[transport pm]\ntype = postmark\napi_key = k\n"
	    "[transport mg]\ntype = mailgun\napi_key = k\ndomain = mg.example\nbase_url = https://api.eu.mailgun.net/\n"
	    "[transport ses]\ntype = ses\nregion = eu-west-1\naccess_key_id = A\nsecret_access_key = S\n"
	    "[transport rs]\ntype = resend\napi_key = k\n"
	    "[transport s1]\ntype = smtp\nhost = relay.example\n"
	    "[transport s2]\ntype = smtp\nhost = relay.example\ntls = implicit\n"
	    "[transport s3]\ntype = smtp\nhost = relay.example\ntls = none\nport = 2525\n";
	ConfigResult r = parse(text);
	expect_ok(r);
	const Config &c = *r.config;
	assert_string_equal(c.find_transport("pm")->base_url.c_str(), "https://api.postmarkapp.com");
	assert_string_equal(c.find_transport("mg")->base_url.c_str(), "https://api.eu.mailgun.net");
	assert_string_equal(c.find_transport("ses")->base_url.c_str(), "https://email.eu-west-1.amazonaws.com");
	assert_string_equal(c.find_transport("rs")->base_url.c_str(), "https://api.resend.com");
	assert_int_equal(c.find_transport("s1")->port, 587);
	assert_int_equal(c.find_transport("s2")->port, 465);
	assert_int_equal(c.find_transport("s3")->port, 2525);
	assert_int_equal(c.find_transport("pm")->timeout, 10);
}

void test_transport_reference(void **)
{
	std::string two = "[transport a]\ntype = file\ndirectory = /tmp\n"
	    "[transport b]\ntype = file\ndirectory = /tmp\n"
	    "[smtp s]\nlisten = 127.0.0.1:25\nauth_required = none\nallowed_senders = *\n";  /* 7 */
	ConfigResult r = parse(two);
	EXPECT_ERROR(r, 7, "transport", "required in [smtp s]: several transports are defined");
	r = parse(two + "transport = c\n");
	EXPECT_ERROR(r, 11, "transport", "no [transport c] is defined");
	r = parse("[smtp s]\nlisten = 127.0.0.1:25\nauth_required = none\nallowed_senders = *\n");
	EXPECT_ERROR(r, 1, "transport", "no [transport] section is defined");
	expect_ok(parse(two + "transport = b\n"));
}

/* ---- smtp listeners ---- */

void test_smtp_required(void **)
{
	ConfigResult r = parse("[transport out]\ntype = file\ndirectory = /tmp\n[smtp s]\nauth_required = none\n");
	EXPECT_ERROR(r, 4, "listen", "required in [smtp s]");
	EXPECT_ERROR(r, 4, "allowed_senders", "required in [smtp s]");
}

void test_smtp_listen_syntax(void **)
{
	ConfigResult r = parse(std::string(kBase) +
	    "listen = 127.0.0.1\nlisten = ::1:25\nlisten = [::1]:25, [::1]:0, [zz]:25\nlisten = 127.0.0.1:2525\n");
	EXPECT_ERROR(r, 8, "listen", "expected HOST:PORT");
	EXPECT_ERROR(r, 9, "listen", "needs brackets");
	EXPECT_ERROR(r, 10, "listen", "port must be 1..65535");
	EXPECT_ERROR(r, 10, "listen", "invalid IPv6 address");
	EXPECT_ERROR(r, 11, "listen", "\"127.0.0.1:2525\" is already used on line 5");
}

void test_smtp_users(void **)
{
	std::string base = "[transport out]\ntype = file\ndirectory = /tmp\n"
	    "[smtp s]\nlisten = 127.0.0.1:25\nallowed_senders = *@example.com\n";  /* 4 */
	ConfigResult r = parse(base);
	EXPECT_ERROR(r, 4, "smtp_user", "at least one user is required with auth_required = smtp-auth");
	r = parse(base + "smtp_user = ghost\nsmtp_user = a pw1, a pw2\n");
	EXPECT_ERROR(r, 7, "smtp_user", "expected NAME SECRET");
	EXPECT_ERROR(r, 8, "smtp_user", "user \"a\" given more than once");
	r = parse(base + "auth_required = none\nsmtp_user = a b\n");
	EXPECT_ERROR(r, 8, "smtp_user", "not valid with auth_required = none");
	r = parse(base + "allowed_senders = bad address, *@, x@y.example\nallowed_recipients = nope\n");
	EXPECT_ERROR(r, 7, "allowed_senders", "expected an address, *@domain or *, \"bad address\"");
	EXPECT_ERROR(r, 7, "allowed_senders", "\"*@\"");
	EXPECT_ERROR(r, 8, "allowed_recipients", "expected an address");
}

void test_smtp_tls_rules(void **)
{
	std::string base = "[transport out]\ntype = file\ndirectory = /tmp\n"
	    "[smtp s]\nlisten = 127.0.0.1:25\nallowed_senders = *\nauth_required = none\n";  /* 4 */
	ConfigResult r = parse(base + "tls = starttls\n");
	EXPECT_ERROR(r, 4, "tls_cert", "required in [smtp s] with tls = starttls");
	EXPECT_ERROR(r, 4, "tls_key", "required in [smtp s] with tls = starttls");
	r = parse(base + "require_tls = yes\ntls_cert = /x\n");
	EXPECT_ERROR(r, 8, "require_tls", "needs tls = starttls");
	EXPECT_ERROR(r, 9, "tls_cert", "not valid with tls = none");
	r = parse("[transport out]\ntype = file\ndirectory = /tmp\n"
	    "[smtp s]\nlisten = 127.0.0.1:25\nallowed_senders = *\nauth_required = client-cert\n");
	EXPECT_ERROR(r, 4, "client_cert_ca", "required in [smtp s] with auth_required = client-cert");
	EXPECT_ERROR(r, 7, "auth_required", "client certificates need tls = starttls or implicit");
	r = parse(base + "client_cert_ca = /x\n");
	EXPECT_ERROR(r, 8, "client_cert_ca", "not valid with auth_required = none");
}

void test_smtp_tls_load(void **)
{
	std::string cert = tmpfile(kCert), key = tmpfile(kKey), other = tmpfile(kOtherKey);
	std::string base = "[transport out]\ntype = file\ndirectory = /tmp\n"
	    "[smtp s]\nlisten = 127.0.0.1:25\nallowed_senders = *\nsmtp_user = a b\n"
	    "tls = starttls\ntls_cert = " + cert + "\n";  /* line 9 */
	ConfigResult r = parse(base + "tls_key = " + key + "\nauth_required = either\nclient_cert_ca = " +
	    cert + "\n");
	expect_ok(r);
	const SmtpListenerConfig &l = r.config->smtp[0];
	assert_string_equal(l.tls_cert_pem.c_str(), kCert);
	assert_string_equal(l.tls_key_pem.c_str(), kKey);
	assert_string_equal(l.client_cert_ca_pem.c_str(), kCert);
	assert_true(l.require_tls);

	r = parse(base + "tls_key = " + other + "\n");
	EXPECT_ERROR(r, 9, "tls_cert", "certificate and key do not load: ");
	r = parse(base + "tls_key = /nonexistent/key.pem\n");
	EXPECT_ERROR(r, 10, "tls_key", "cannot read /nonexistent/key.pem");
	r = parse(base + "tls_key = " + key + "\nauth_required = client-cert\nclient_cert_ca = " +
	    tmpfile("not a pem\n") + "\n");
	EXPECT_ERROR(r, 12, "client_cert_ca", "CA certificates do not load");

	ConfigOptions no = opts();
	no.load_files = false;
	r = parse(base + "tls_key = /nonexistent/key.pem\n", no);
	expect_ok(r);
	assert_true(r.config->smtp[0].tls_key_pem.empty());
}

/* ---- endpoints and http ---- */

const char *const kHttp =
    "[transport out]\ntype = file\ndirectory = /tmp\n"
    "[http]\nlisten = 127.0.0.1:8080\ntrusted_proxies = cloudflare, 10.0.0.0/8, ::1, 2001:db8::/32\n"
    "[endpoint /e]\nto = a@example.com\nfrom = Form <f@example.com>\n";  /* endpoint: 7 */

void test_endpoint_form_rules(void **)
{
	ConfigResult r = parse(std::string(kHttp) +
	    "api_keys = abcdefghijklmnopqrst\nidempotency_cache_size = 10\n"  /* 10 */
	    "allowed_origins = https://Example.com/, http://x.example:80, ftp://no\n"
	    "csrf_secret = short\nredirect_success = nowhere\n");
	EXPECT_ERROR(r, 10, "api_keys", "not valid with auth = form");
	EXPECT_ERROR(r, 11, "idempotency_cache_size", "not valid with auth = form");
	EXPECT_ERROR(r, 12, "allowed_origins", "expected scheme://host[:port] (http or https), \"ftp://no\"");
	EXPECT_ERROR(r, 13, "csrf_secret", "must be at least 16 bytes");
	EXPECT_ERROR(r, 14, "redirect_success", "expected a /path or an http(s):// URL");

	r = parse(std::string(kHttp) + "allowed_origins = https://Example.com/, http://x.example:80\n"
	    "csrf_secret = 0123456789abcdef\nrate_limit = 5/1m\nhoneypot = _gotcha\n"
	    "required = name, email\nemail_field = email\nredirect_success = /thanks\n");
	expect_ok(r);
	const EndpointConfig &e = r.config->endpoints[0];
	assert_string_equal(e.allowed_origins[0].c_str(), "https://example.com");
	assert_string_equal(e.allowed_origins[1].c_str(), "http://x.example");
	assert_int_equal(e.rate_limit.count, 5);
	assert_int_equal(e.rate_limit.interval, 60);
	assert_true(e.delivery == Delivery::sync);
	assert_int_equal(r.config->http->trusted_proxies.size(), 4);
}

void test_endpoint_api_rules(void **)
{
	std::string api = std::string(kHttp) + "auth = api-key\n";  /* 10 */
	ConfigResult r = parse(api + "honeypot = h\nallowed_origins = https://a.example\n"
	    "redirect_success = /a\nredirect_error = /b\ncsrf_secret = 0123456789abcdef\n"
	    "csrf_token_ttl = 1h\n");
	EXPECT_ERROR(r, 16, "csrf_token_ttl", "not valid with auth = api-key");
	EXPECT_ERROR(r, 11, "honeypot", "not valid with auth = api-key");
	EXPECT_ERROR(r, 12, "allowed_origins", "not valid with auth = api-key");
	EXPECT_ERROR(r, 13, "redirect_success", "not valid");
	EXPECT_ERROR(r, 14, "redirect_error", "not valid");
	EXPECT_ERROR(r, 15, "csrf_secret", "not valid");
	EXPECT_ERROR(r, 7, "api_keys", "at least one key is required with auth = api-key");

	std::string hex(64, 'a');
	r = parse(api + "api_keys = plain-key-0123456789, sha256:" + hex + "\n");
	expect_ok(r);
	assert_int_equal(r.config->endpoints[0].api_keys.size(), 2);
	r = parse(api + "api_keys = sha256:abc\n");
	EXPECT_ERROR(r, 11, "api_keys", "sha256: must be followed by 64 hex digits");
}

void test_endpoint_attachments(void **)
{
	ConfigResult r = parse(std::string(kHttp));
	expect_ok(r);
	assert_false(r.config->endpoints[0].attachments);

	r = parse(std::string(kHttp) + "attachments = yes\n");
	expect_ok(r);
	const EndpointConfig &d = r.config->endpoints[0];
	assert_true(d.attachments);
	assert_int_equal(d.max_attachment_size, 1024 * 1024);
	assert_int_equal(d.max_attachments, 10);
	assert_int_equal(d.attachment_types.size(), 3);
	assert_string_equal(d.attachment_types[0].c_str(), "image/*");

	r = parse(std::string(kHttp) + "attachments = yes\nmax_attachment_size = 2MB\nmax_attachments = 3\n"
	    "attachment_types = Application/PDF, image/*\n");
	expect_ok(r);
	const EndpointConfig &e = r.config->endpoints[0];
	assert_int_equal(e.max_attachment_size, 2 * 1024 * 1024);
	assert_int_equal(e.max_attachments, 3);
	assert_int_equal(e.attachment_types.size(), 2);
	assert_string_equal(e.attachment_types[0].c_str(), "application/pdf");
	Config back = config_from_json(config_to_json(*r.config, ConfigSlice::httpd));
	assert_true(back.endpoints[0].attachments);
	assert_int_equal(back.endpoints[0].max_attachment_size, 2 * 1024 * 1024);
	assert_int_equal(back.endpoints[0].max_attachments, 3);
	assert_int_equal(back.endpoints[0].attachment_types.size(), 2);
	assert_string_equal(back.endpoints[0].attachment_types[1].c_str(), "image/*");

	r = parse(std::string(kHttp) + "attachments = maybe\nmax_attachments = 3\n");   /* 10 */
	EXPECT_ERROR(r, 10, "attachments", "expected yes or no");
	EXPECT_ERROR(r, 11, "max_attachments", "not valid without attachments = yes");
	r = parse(std::string(kHttp) + "attachments = yes\nmax_attachments = 101\n"
	    "max_attachment_size = 26MB\nattachment_types = pdf, */*, text/pl ain\n");
	EXPECT_ERROR(r, 11, "max_attachments", "must be a number from 1 to 100");
	EXPECT_ERROR(r, 12, "max_attachment_size", "must be between");
	EXPECT_ERROR(r, 13, "attachment_types", "expected type/subtype or type/*, \"pdf\"");
	EXPECT_ERROR(r, 13, "attachment_types", "\"*/*\"");
	EXPECT_ERROR(r, 13, "attachment_types", "\"text/pl ain\"");
	r = parse(std::string(kHttp) + "auth = api-key\napi_keys = plain-key-0123456789\nattachments = yes\n");
	EXPECT_ERROR(r, 12, "attachments", "not valid with auth = api-key");
}

void test_endpoint_addresses_and_templates(void **)
{
	ConfigResult r = parse(
	    "[transport out]\ntype = file\ndirectory = /tmp\n[http]\nlisten = 127.0.0.1:8080\n"
	    "[endpoint /e]\nto = good@example.com, bad address\nfrom = nobody\n"   /* 6 */
	    "subject = Hi {{.name}\nbody = {{ .x }}\nrate_limit = fast\nrequired = a b\n");
	EXPECT_ERROR(r, 7, "to", "invalid address \"bad address\"");
	EXPECT_ERROR(r, 8, "from", "invalid address \"nobody\"");
	EXPECT_ERROR(r, 9, "subject", "unclosed \"{{\"");
	EXPECT_ERROR(r, 10, "body", "unsupported template action");
	EXPECT_ERROR(r, 11, "rate_limit", "expected COUNT/INTERVAL");
	EXPECT_ERROR(r, 12, "required", "invalid field name");

	r = parse("[transport out]\ntype = file\ndirectory = /tmp\n[http]\nlisten = 127.0.0.1:8080\n"
	    "[endpoint /e]\nsubject = x\n");
	EXPECT_ERROR(r, 6, "to", "required in [endpoint /e]");
	EXPECT_ERROR(r, 6, "from", "required in [endpoint /e]");
}

void test_endpoint_body_file(void **)
{
	std::string f = tmpfile("Hello {{.name}}\n");
	ConfigResult r = parse(std::string(kHttp) + "body_file = " + f + "\n");
	expect_ok(r);
	assert_string_equal(r.config->endpoints[0].body.c_str(), "Hello {{.name}}\n");
	assert_string_equal(r.config->endpoints[0].body_file.c_str(), f.c_str());

	r = parse(std::string(kHttp) + "body = x\nbody_file = " + f + "\n");
	EXPECT_ERROR(r, 11, "body_file", "body and body_file are mutually exclusive");
	r = parse(std::string(kHttp) + "body_file = " + tmpfile("{{oops}}") + "\n");
	EXPECT_ERROR(r, 10, "body_file", "unsupported template action");
	r = parse(std::string(kHttp) + "body_file = /nonexistent/body\n");
	EXPECT_ERROR(r, 10, "body_file", "cannot read /nonexistent/body");
}

void test_http_rules(void **)
{
	ConfigResult r = parse("[transport out]\ntype = file\ndirectory = /tmp\n"
	    "[endpoint /e]\nto = a@example.com\nfrom = f@example.com\n");
	EXPECT_ERROR(r, 4, "", "endpoints need an [http] section with a listen address");
	r = parse("[transport out]\ntype = file\ndirectory = /tmp\n[http]\nread_timeout = 5s\n"
	    "[endpoint /e]\nto = a@example.com\nfrom = f@example.com\n");
	EXPECT_ERROR(r, 4, "listen", "required in [http] when endpoints are defined");
	r = parse(std::string(kHttp) + "trusted_proxies = 10.0.0.0/33, cloudfront\n[http]\n");
	EXPECT_ERROR(r, 10, "trusted_proxies", "\"10.0.0.0/33\"");
	EXPECT_ERROR(r, 10, "trusted_proxies", "\"cloudfront\"");
	EXPECT_ERROR(r, 11, "", "[http] given more than once (first on line 4)");
}

void test_nothing_to_serve(void **)
{
	ConfigResult r = parse("[transport out]\ntype = file\ndirectory = /tmp\n");
	EXPECT_ERROR(r, 0, "", "no [smtp NAME] listener and no [endpoint /PATH]: nothing to serve");
}

/* ---- JSON ---- */

/* Every section, secrets in every secret slot, sentinels to look for in the slices. */
std::string full_config()
{
	g_env["PM_KEY"] = "SENTINEL_API_KEY";
	g_env["CSRF"] = "SENTINEL_CSRF_SECRET_0123";
	std::string cert = tmpfile(kCert), key = tmpfile(kKey);
	return "[global]\nhostname = mx.example\nlog = syslog\nlog_format = text\nlog_level = debug\n"
	    "strip_client_ip = yes\nqueue_lifetime = 1d12h\nretry_initial = 10s\nretry_max = 20m\n"
	    "[http]\nlisten = 127.0.0.1:8080, [::1]:8080\ntrusted_proxies = cloudflare\n"
	    "read_timeout = 20s\nmax_header_size = 32KB\n"
	    "[transport postmark]\ntype = postmark\napi_key = ${env.PM_KEY}\nmessage_stream = outbound\n"
	    "timeout = 30s\nmax_inflight = 4\n"
	    "[transport ses]\ntype = ses\nregion = eu-west-1\naccess_key_id = SENTINEL_ACCESS_KEY_ID\n"
	    "secret_access_key = SENTINEL_SECRET_ACCESS\nsession_token = SENTINEL_SESSION\n"
	    "[transport relay]\ntype = smtp\nhost = smtp.example.net\nusername = SENTINEL_USERNAME\n"
	    "password = SENTINEL_PASSWORD\nhelo = posthorn.example\ntls_verify = no\n"
	    "[smtp submission]\nlisten = 0.0.0.0:2525\ntls = starttls\nrequire_tls = no\n"
	    "tls_cert = " + cert + "\ntls_key = " + key + "\n"
	    "smtp_user = ghost SENTINEL_SMTP_SECRET\nallowed_senders = *@example.com\n"
	    "allowed_recipients = *@example.org\nmax_recipients_per_session = 20\n"
	    "max_message_size = 2MB\nidle_timeout = 90s\ntransport = postmark\ndelivery = sync\n"
	    "max_sessions = 10\nmax_sessions_per_ip = 2\nmax_auth_failures = 3\n"
	    "[endpoint /api/contact]\nto = you@example.com\nfrom = Contact Form <noreply@example.com>\n"
	    "subject = Contact from {{.name}}\nbody = From: {{.name}} <{{.email}}>\n  {{.message}}\n"
	    "required = name, email, message\nemail_field = email\nreply_to_email_field = email\n"
	    "honeypot = _gotcha\nallowed_origins = https://example.com\ncsrf_secret = ${env.CSRF}\n"
	    "csrf_token_ttl = 2h\nrate_limit = 5/1m\nredirect_success = /thanks\nredirect_error = /oops\n"
	    "transport = postmark\nmax_body_size = 512KB\ntrusted_proxies = 10.0.0.0/8\n"
	    "log_failed_submissions = no\ndry_run = yes\nstrip_client_ip = no\n"
	    "[endpoint /api/tx]\nauth = api-key\napi_keys = SENTINEL_ENDPOINT_KEY_1\n"
	    "to = fallback@example.com\nfrom = YourApp <noreply@example.com>\ntransport = ses\n"
	    "idempotency_cache_size = 500\ndelivery = queue\n";
}

void test_json_round_trip(void **)
{
	ConfigOptions o = opts();
	o.check_secrecy = false;
	ConfigResult r = parse(full_config(), o);
	expect_ok(r);
	const Config &c = *r.config;
	std::string json = config_to_json(c, ConfigSlice::parent);
	Config back = config_from_json(json);
	assert_string_equal(config_to_json(back, ConfigSlice::parent).c_str(), json.c_str());

	/* spot checks that values really made it through */
	assert_string_equal(back.global.hostname.c_str(), "mx.example");
	assert_true(back.global.log.dest == LogDest::syslog);
	assert_true(back.global.log.format == LogFormat::text);
	assert_true(back.global.log.level == LogLevel::debug);
	assert_int_equal(back.global.queue_lifetime, 36 * 3600);
	assert_int_equal(back.global.retry_initial, 10);
	assert_int_equal(back.global.retry_max, 1200);
	assert_int_equal(back.http->listen.size(), 2);
	assert_int_equal(back.http->max_header_size, 32768);
	const TransportConfig *relay = back.find_transport("relay");
	assert_string_equal(relay->password.c_str(), "SENTINEL_PASSWORD");
	assert_false(relay->tls_verify);
	assert_int_equal(relay->port, 587);
	assert_int_equal(back.find_transport("postmark")->max_inflight, 4);
	const SmtpListenerConfig &l = back.smtp[0];
	assert_true(l.tls == TlsMode::starttls);
	assert_false(l.require_tls);
	assert_string_equal(l.tls_key_pem.c_str(), kKey);
	assert_string_equal(l.users[0].secret.c_str(), "SENTINEL_SMTP_SECRET");
	assert_int_equal(l.max_auth_failures, 3);
	assert_true(l.delivery == Delivery::sync);
	const EndpointConfig &e = back.endpoints[0];
	assert_string_equal(e.body.c_str(), "From: {{.name}} <{{.email}}>\n{{.message}}");
	assert_int_equal(e.rate_limit.interval, 60);
	assert_true(e.strip_client_ip.has_value() && !*e.strip_client_ip);
	assert_true(e.dry_run);
	assert_false(back.endpoints[1].strip_client_ip.has_value());
	assert_true(back.endpoints[1].auth == EndpointAuth::api_key);
	assert_int_equal(back.endpoints[1].idempotency_cache_size, 500);
}

void test_json_slices(void **)
{
	ConfigOptions o = opts();
	o.check_secrecy = false;
	ConfigResult r = parse(full_config(), o);
	expect_ok(r);
	const Config &c = *r.config;
	std::string parent = config_to_json(c, ConfigSlice::parent);
	std::string relayer = config_to_json(c, ConfigSlice::relayer);
	std::string smtpd = config_to_json(c, ConfigSlice::smtpd);
	std::string httpd = config_to_json(c, ConfigSlice::httpd);
	std::string control = config_to_json(c, ConfigSlice::control);

	/* Provider credentials: relayer and parent only. */
	for (const char *s : {"SENTINEL_API_KEY", "SENTINEL_ACCESS_KEY_ID", "SENTINEL_SECRET_ACCESS",
	    "SENTINEL_SESSION", "SENTINEL_USERNAME", "SENTINEL_PASSWORD"}) {
		assert_true(contains(parent, s));
		assert_true(contains(relayer, s));
		assert_false(contains(smtpd, s));
		assert_false(contains(httpd, s));
		assert_false(contains(control, s));
	}
	/* SMTP users and the TLS key: smtpd. API keys and CSRF secrets: httpd. */
	assert_true(contains(smtpd, "SENTINEL_SMTP_SECRET"));
	assert_true(contains(smtpd, "PRIVATE KEY"));
	assert_true(contains(httpd, "SENTINEL_ENDPOINT_KEY_1"));
	assert_true(contains(httpd, "SENTINEL_CSRF_SECRET"));
	for (const std::string *s : {&relayer, &httpd, &control}) {
		assert_false(contains(*s, "SENTINEL_SMTP_SECRET"));
		assert_false(contains(*s, "PRIVATE KEY"));
	}
	for (const std::string *s : {&relayer, &smtpd, &control}) {
		assert_false(contains(*s, "SENTINEL_ENDPOINT_KEY"));
		assert_false(contains(*s, "SENTINEL_CSRF_SECRET"));
	}

	Config rel = config_from_json(relayer);
	assert_int_equal(rel.transports.size(), 3);
	assert_true(rel.smtp.empty() && rel.endpoints.empty() && !rel.http);
	Config sm = config_from_json(smtpd);
	assert_int_equal(sm.smtp.size(), 1);
	assert_true(sm.endpoints.empty() && !sm.http);
	assert_true(sm.find_transport("ses")->type == TransportType::ses);
	assert_true(sm.find_transport("ses")->base_url.empty());
	Config ht = config_from_json(httpd);
	assert_int_equal(ht.endpoints.size(), 2);
	assert_true(ht.smtp.empty());
	assert_int_equal(ht.http->listen.size(), 2);
	Config ct = config_from_json(control);
	assert_string_equal(ct.smtp[0].name.c_str(), "submission");
	assert_string_equal(ct.smtp[0].listen[0].c_str(), "0.0.0.0:2525");
	assert_true(ct.smtp[0].users.empty());
	assert_string_equal(ct.endpoints[1].path.c_str(), "/api/tx");
	assert_true(ct.endpoints[1].api_keys.empty());
	assert_string_equal(ct.global.hostname.c_str(), "mx.example");
}

int exit_status_of(const char *json)
{
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 2);
		config_from_json(json);
		_exit(0);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void test_json_malformed_is_fatal(void **)
{
	assert_int_not_equal(exit_status_of("[1,2"), 0);
	assert_int_not_equal(exit_status_of("{\"version\":2}"), 0);
	assert_int_not_equal(exit_status_of("{\"version\":1,\"global\":{\"hostname\":5}}"), 0);
	assert_int_not_equal(exit_status_of("{\"version\":1,\"smtp\":[{\"max_sessions\":-1}]}"), 0);
	assert_int_not_equal(exit_status_of("{\"version\":1,\"transports\":[{\"type\":\"pigeon\"}]}"), 0);
	assert_int_not_equal(exit_status_of("{\"version\":1,\"transports\":[{\"port\":70000}]}"), 0);
	assert_int_equal(exit_status_of("{\"version\":1}"), 0);
}

} // namespace

#define T(f) cmocka_unit_test_teardown(f, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_parse_duration), T(test_parse_size), T(test_parse_bool), T(test_split_list),
		T(test_parse_rate_limit), T(test_valid_address), T(test_normalize_origin),
		T(test_template_compiles), T(test_error_to_string),
		T(test_minimal_and_defaults), T(test_line_too_long), T(test_crlf_and_bom),
		T(test_inline_comment), T(test_continuation_lines), T(test_continuation_of_scalar),
		T(test_repeated_keys), T(test_sections), T(test_long_section_name),
		T(test_unknown_key_and_syntax), T(test_collects_all_errors), T(test_bounds),
		T(test_retry_order), T(test_users_and_spool_apart), T(test_empty_value),
		T(test_parse_file_missing),
		T(test_env_substitution), T(test_env_missing_listed_once), T(test_env_multiline_rejected),
		T(test_file_substitution), T(test_file_substitution_errors),
		T(test_substituted_item_is_one_item),
		T(test_secrecy_mode), T(test_secrecy_smtp_user), T(test_secrets_not_in_errors),
		T(test_transport_rules), T(test_transport_defaults), T(test_transport_reference),
		T(test_smtp_required), T(test_smtp_listen_syntax), T(test_smtp_users),
		T(test_smtp_tls_rules), T(test_smtp_tls_load),
		T(test_endpoint_form_rules), T(test_endpoint_api_rules), T(test_endpoint_attachments),
		T(test_endpoint_addresses_and_templates), T(test_endpoint_body_file),
		T(test_http_rules), T(test_nothing_to_serve),
		T(test_json_round_trip), T(test_json_slices), T(test_json_malformed_is_fatal),
	};
	return cmocka_run_group_tests(tests, nullptr, nullptr);
}
