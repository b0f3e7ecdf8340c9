/*
 * httpd templates: {{.field}} substitution, the Additional fields block,
 * header-bound text.
 */
#include <string>

#include "httpd/tmpl.h"
#include "regress/unit/unit.h"

using namespace posthorn::http;

namespace {

void test_render(void **)
{
	Template t;
	std::string why;
	assert_true(t.compile("From: {{.name}} <{{.email}}>\n{{.message}}{{.missing}}!", why));
	Fields f = {{"name", "Bob"}, {"email", "bob@example.com"}, {"message", "Hi {{.name}}"}};
	/* values are never re-expanded */
	assert_string_equal(t.render(f).c_str(), "From: Bob <bob@example.com>\nHi {{.name}}!");
	std::set<std::string> names;
	t.names(names);
	assert_int_equal(names.size(), 4);
	assert_true(names.count("missing"));
	assert_false(t.empty());

	Template plain;
	assert_true(plain.compile("no fields at all", why));
	assert_string_equal(plain.render(f).c_str(), "no fields at all");
	Template none;
	assert_true(none.compile("", why));
	assert_true(none.empty());
	assert_string_equal(none.render(f).c_str(), "");
	Template bad;
	assert_false(bad.compile("{{.name}", why));
	assert_false(bad.compile("{{ .name }}", why));
}

void test_additional_fields(void **)
{
	Fields f = {{"zeta", "last"}, {"name", "Bob"}, {"alpha", "first"}, {"_gotcha", ""}};
	std::string extra = additional_fields(f, {"name", "_gotcha"});
	assert_string_equal(extra.c_str(), "Additional fields:\nalpha: first\nzeta: last\n");
	assert_string_equal(additional_fields(f, {"name", "_gotcha", "alpha", "zeta"}).c_str(), "");
	assert_string_equal(additional_fields({}, {}).c_str(), "");
}

void test_header_text(void **)
{
	assert_string_equal(header_text("Hello\r\nBcc: evil@example.com").c_str(),
	    "Hello Bcc: evil@example.com");
	assert_string_equal(header_text("  a\t\tb \n").c_str(), "a b");
	assert_string_equal(header_text(std::string("x\0y", 3)).c_str(), "xy");
	/* cut on a UTF-8 boundary: "é" is two bytes */
	assert_string_equal(header_text("aé", 2).c_str(), "a");
	assert_string_equal(header_text("abc", 2).c_str(), "ab");
}

} // namespace

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render),
		cmocka_unit_test(test_additional_fields),
		cmocka_unit_test(test_header_text),
	};
	return cmocka_run_group_tests(tests, nullptr, nullptr);
}
