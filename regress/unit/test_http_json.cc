/*
 * httpd API bodies: a flat JSON object, scalars coerced to strings, arrays
 * joined, nesting refused, to_override kept aside.
 */
#include <string>

#include "httpd/json_body.h"
#include "regress/unit/unit.h"

using namespace posthorn::http;

namespace {

JsonBody parse_ok(const std::string &text)
{
	JsonBody b;
	std::string why;
	if (!json_body_parse(text, b, why))
		fail_msg("unexpected failure: %s", why.c_str());
	return b;
}

std::string parse_error(const std::string &text)
{
	JsonBody b;
	std::string why;
	assert_false(json_body_parse(text, b, why));
	return why;
}

void test_coercion(void **)
{
	JsonBody b = parse_ok(R"({"s":"text","i":42,"neg":-7,"f":1.5,"big":1e300,"t":true,)"
	    R"("n":false,"null":null,"arr":["a",2,true,null],"empty":[],"u":"Grüße"})");
	assert_string_equal(b.fields["s"].c_str(), "text");
	assert_string_equal(b.fields["i"].c_str(), "42");
	assert_string_equal(b.fields["neg"].c_str(), "-7");
	assert_string_equal(b.fields["f"].c_str(), "1.5");
	assert_string_equal(b.fields["big"].c_str(), "1e+300");
	assert_string_equal(b.fields["t"].c_str(), "true");
	assert_string_equal(b.fields["n"].c_str(), "false");
	assert_true(b.fields.find("null") == b.fields.end());
	assert_string_equal(b.fields["arr"].c_str(), "a, 2, true, ");
	assert_string_equal(b.fields["empty"].c_str(), "");
	assert_string_equal(b.fields["u"].c_str(), "Grüße");
	assert_false(b.has_to_override);
}

void test_numbers(void **)
{
	assert_string_equal(json_number(0).c_str(), "0");
	assert_string_equal(json_number(9007199254740991.0).c_str(), "9007199254740991");
	assert_string_equal(json_number(0.1).c_str(), "0.1");
	assert_string_equal(json_number(-2.5e-7).c_str(), "-2.5e-07");
}

void test_to_override(void **)
{
	JsonBody b = parse_ok(R"({"to_override":"a@example.com","x":"1"})");
	assert_true(b.has_to_override);
	assert_int_equal(b.to_override.size(), 1);
	assert_string_equal(b.to_override[0].c_str(), "a@example.com");
	assert_true(b.fields.find("to_override") == b.fields.end());
	b = parse_ok(R"({"to_override":["a@example.com","b@example.com"]})");
	assert_int_equal(b.to_override.size(), 2);
	b = parse_ok(R"({"to_override":[]})");
	assert_true(b.has_to_override);
	assert_true(b.to_override.empty());
	b = parse_ok(R"({"to_override":"evil@example.com\r\nBcc: x@example.com"})");
	assert_string_equal(b.to_override[0].c_str(), "evil@example.com\r\nBcc: x@example.com");
}

void test_refused(void **)
{
	assert_string_equal(parse_error(R"({"a":{"b":1}})").c_str(),
	    "field \"a\": nested objects are not supported");
	assert_string_equal(parse_error(R"({"a":[[1]]})").c_str(),
	    "field \"a\": nested arrays and objects are not supported");
	assert_string_equal(parse_error(R"({"a":[{"b":1}]})").c_str(),
	    "field \"a\": nested arrays and objects are not supported");
	assert_string_equal(parse_error(R"({"a":1,"a":2})").c_str(), "field \"a\": appears twice");
	assert_string_equal(parse_error(R"([1,2])").c_str(), "body must be a JSON object");
	assert_string_equal(parse_error(R"("x")").c_str(), "body must be a JSON object");
	assert_string_equal(parse_error(R"({"a":1} {"b":2})").c_str(), "unexpected data after the JSON object");
	assert_string_equal(parse_error(R"({"a":"x\u0000y"})").c_str(), "strings must not contain NUL");
	assert_string_equal(parse_error("{\"a\":\"\xff\"}").c_str(), "field \"a\": not valid UTF-8");
	assert_string_equal(parse_error(R"({"":1})").c_str(), "field \"\": empty, over-long or invalid field name");
	assert_string_equal(parse_error("").c_str(), "body is not valid JSON");
	assert_string_equal(parse_error("{").c_str(), "body is not valid JSON");
	parse_ok("  {}\r\n");
}

void test_field_count(void **)
{
	std::string s = "{";
	for (size_t i = 0; i <= FORM_MAX_FIELDS; i++)
		s += (i ? ",\"f" : "\"f") + std::to_string(i) + "\":1";
	s += "}";
	assert_string_equal(parse_error(s).c_str(), "too many fields");
}

} // namespace

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_coercion),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_to_override),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_field_count),
	};
	return cmocka_run_group_tests(tests, nullptr, nullptr);
}
