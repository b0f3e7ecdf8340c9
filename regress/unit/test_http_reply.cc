/*
 * httpd response shapes (DESIGN §7) and content negotiation.
 */
#include <string>

#include "httpd/reply.h"
#include "regress/unit/unit.h"

using namespace posthorn::http;

namespace {

void test_shapes(void **)
{
	Reply r = json_error(429, "rate_limited", "rate limit exceeded");
	assert_int_equal(r.status, 429);
	assert_string_equal(r.body.c_str(), "{\"error\":\"rate limit exceeded\",\"code\":\"rate_limited\"}\n");
	assert_string_equal(r.header("Content-Type")->c_str(), "application/json; charset=utf-8");
	r = json_status(202, "queued", "d8647f29-7ba6-4f94-8f11-98b994bda809");
	assert_string_equal(r.body.c_str(),
	    "{\"status\":\"queued\",\"submission_id\":\"d8647f29-7ba6-4f94-8f11-98b994bda809\"}\n");
	r = json_validation({{"name", "required"}, {"email", "invalid email format"}});
	assert_int_equal(r.status, 422);
	assert_string_equal(r.body.c_str(), "{\"error\":\"validation failed\",\"code\":\"validation_failed\","
	    "\"fields\":{\"email\":\"invalid email format\",\"name\":\"required\"}}\n");
	r = json_error(400, "invalid_json", "field \"a\\\"b\": appears\ntwice");
	assert_string_equal(r.body.c_str(),
	    "{\"error\":\"field \\\"a\\\\\\\"b\\\": appears\\ntwice\",\"code\":\"invalid_json\"}\n");
	r = redirect("/thanks");
	assert_int_equal(r.status, 303);
	assert_string_equal(r.header("location")->c_str(), "/thanks");
	assert_null(r.header("Content-Type"));
	assert_string_equal(reason_phrase(413), "Content Too Large");
}

void test_json_out(void **)
{
	JsonOut j;
	j.open().key("a").str("1").key("list").strings({"x", "y"}).key("o").open().key("n").str("").close();
	j.key("r").raw("true").close();
	assert_string_equal(j.take().c_str(), "{\"a\":\"1\",\"list\":[\"x\",\"y\"],\"o\":{\"n\":\"\"},\"r\":true}");
}

void test_negotiation(void **)
{
	/* browsers */
	assert_true(prefers_html("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"));
	assert_true(prefers_html("application/xhtml+xml"));
	assert_true(prefers_html("application/json;q=0.5, text/html"));
	/* API clients and defaults */
	assert_false(prefers_html(nullptr));
	assert_false(prefers_html("*/*"));
	assert_false(prefers_html("application/json"));
	assert_false(prefers_html("application/json, text/html"));
	assert_false(prefers_html("text/html;q=0.5, application/json"));
	assert_false(prefers_html("text/html;q=0"));
	assert_false(prefers_html("text/*"));
	assert_false(prefers_html(""));
}

} // namespace

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shapes),
		cmocka_unit_test(test_json_out),
		cmocka_unit_test(test_negotiation),
	};
	return cmocka_run_group_tests(tests, nullptr, nullptr);
}
