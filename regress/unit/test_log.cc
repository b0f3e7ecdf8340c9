/* Log line formats: JSON with escaping and bare numbers, and text. */
#include <cjson/cJSON.h>

#include <string>

#include "common/log.h"
#include "regress/unit/unit.h"

using namespace posthorn;

static void test_json_line(void **)
{
	std::string line = log_format_line(LogFormat::json, LogLevel::info, "smtpd", "smtp_auth_ok",
	    {{"user", "gh\"ost\n"}, {"count", 3}, {"tls", true}});
	cJSON *doc = cJSON_Parse(line.c_str());
	assert_non_null(doc);
	assert_string_equal(cJSON_GetObjectItem(doc, "level")->valuestring, "info");
	assert_string_equal(cJSON_GetObjectItem(doc, "proc")->valuestring, "smtpd");
	assert_string_equal(cJSON_GetObjectItem(doc, "msg")->valuestring, "smtp_auth_ok");
	assert_string_equal(cJSON_GetObjectItem(doc, "user")->valuestring, "gh\"ost\n");
	assert_true(cJSON_IsNumber(cJSON_GetObjectItem(doc, "count")));
	assert_int_equal(cJSON_GetObjectItem(doc, "count")->valueint, 3);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(doc, "tls")));
	const char *time = cJSON_GetObjectItem(doc, "time")->valuestring;
	assert_int_equal(strlen(time), 24);
	assert_int_equal(time[23], 'Z');
	assert_null(strchr(line.c_str(), '\n'));
	cJSON_Delete(doc);
}

static void test_text_line(void **)
{
	std::string line = log_format_line(LogFormat::text, LogLevel::warn, "parent", "child_exited",
	    {{"child", "relayer"}, {"status", "killed by signal 9"}});
	assert_non_null(strstr(line.c_str(), " warn parent: child_exited child=relayer "
					     "status=\"killed by signal 9\""));
	assert_null(strchr(line.c_str(), '\n'));
}

static void test_control_chars_escaped(void **)
{
	assert_string_equal(json_escape(std::string("a\r\nb\x01", 5)).c_str(), "a\\r\\nb\\u0001");
	std::string line = log_format_line(LogFormat::text, LogLevel::info, "httpd", "x\ny", {});
	assert_null(strchr(line.c_str(), '\n'));
}

static void test_levels(void **)
{
	LogLevel l;
	assert_true(log_level_parse("warn", l));
	assert_int_equal(static_cast<int>(l), static_cast<int>(LogLevel::warn));
	assert_false(log_level_parse("verbose", l));
	log_init("test", {LogDest::stderr_, LogFormat::json, LogLevel::warn});
	log_set_verbose(0);
	assert_false(log_enabled(LogLevel::info));
	log_set_verbose(1);
	assert_true(log_enabled(LogLevel::info));
	assert_false(log_enabled(LogLevel::debug));
	log_set_verbose(5);
	assert_true(log_enabled(LogLevel::debug));
	log_set_verbose(0);
}

int main()
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_line),
		cmocka_unit_test(test_text_line),
		cmocka_unit_test(test_control_chars_escaped),
		cmocka_unit_test(test_levels),
	};
	return cmocka_run_group_tests(tests, nullptr, nullptr);
}
