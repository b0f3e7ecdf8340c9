/*
 * httpd form bodies: Content-Type parsing, percent-decoding,
 * application/x-www-form-urlencoded and multipart/form-data.
 */
#include <string>

#include "httpd/form.h"
#include "regress/unit/unit.h"

using namespace posthorn::http;
using namespace std::string_literals;

namespace {

void test_media_type(void **)
{
	MediaType mt;
	assert_true(media_type_parse("Multipart/Form-Data; boundary=\"a b\"; Charset=utf-8", mt));
	assert_string_equal(mt.type.c_str(), "multipart/form-data");
	assert_string_equal(mt.params["boundary"].c_str(), "a b");
	assert_string_equal(mt.params["charset"].c_str(), "utf-8");
	assert_true(media_type_parse("application/json;", mt));
	assert_true(mt.params.empty());
	assert_true(media_type_parse("application/x-www-form-urlencoded ; charset = UTF-8", mt));
	for (const char *bad : {"", "json", "text/", "/plain", "a/b; x", "a/b; x=\"open",
	    "a/b; x=1; x=2", "te xt/plain"})
		assert_false(media_type_parse(bad, mt));
}

void test_percent_decode(void **)
{
	std::string out;
	assert_true(percent_decode("a+b%20c%2B%c3%a9", out));
	assert_string_equal(out.c_str(), "a b c+é");
	assert_true(percent_decode("", out));
	assert_true(out.empty());
	for (const char *bad : {"%", "%2", "%zz", "a%g0"})
		assert_false(percent_decode(bad, out));
	assert_true(percent_decode("%00", out));
	assert_int_equal(out.size(), 1);
}

void test_urlencoded(void **)
{
	FormData f;
	std::string why;
	assert_true(form_urlencoded_parse("name=Bob+Smith&msg=hi%21&&flag&name=again&e=", f, why));
	assert_int_equal(f.fields.size(), 5);
	assert_string_equal(f.fields[0].value.c_str(), "Bob Smith");
	assert_string_equal(f.fields[1].value.c_str(), "hi!");
	assert_string_equal(f.fields[2].name.c_str(), "flag");
	assert_string_equal(f.fields[2].value.c_str(), "");
	Fields j = fields_join(f.fields);
	assert_string_equal(j["name"].c_str(), "Bob Smith, again");
	assert_int_equal(j.size(), 4);

	FormData g;
	assert_false(form_urlencoded_parse("a=%zz", g, why));
	assert_false(form_urlencoded_parse("=value", g, why));
	std::string many;
	for (int i = 0; i <= int(FORM_MAX_FIELDS); i++)
		many += "f" + std::to_string(i) + "=1&";
	FormData h;
	assert_false(form_urlencoded_parse(many, h, why));
	assert_string_equal(why.c_str(), "too many fields");
	FormData k;
	assert_false(form_urlencoded_parse(std::string(FORM_MAX_NAME + 1, 'n') + "=1", k, why));
}

const std::string kMultipart =
    "preamble ignored\r\n"
    "--XyZ\r\n"
    "Content-Disposition: form-data; name=\"name\"\r\n"
    "\r\n"
    "Bob\r\n"
    "--XyZ\r\n"
    "content-disposition: form-data; name=\"message\"\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "line one\r\nline two\r\n--not the boundary\r\n"
    "--XyZ\r\n"
    "Content-Disposition: form-data; name=\"file\"; filename=\"C:\\\\docs\\\\cv.pdf\"\r\n"
    "Content-Type: Application/PDF\r\n"
    "\r\n"
    "%PDF\0\x01\x02"s "\r\n"
    "--XyZ\r\n"
    "Content-Disposition: form-data; name=\"empty\"; filename=\"\"\r\n"
    "Content-Type: application/octet-stream\r\n"
    "\r\n"
    "\r\n"
    "--XyZ--\r\n"
    "epilogue";

void test_multipart(void **)
{
	FormData f;
	std::string why;
	assert_true(form_multipart_parse(kMultipart, "XyZ", f, why));
	assert_int_equal(f.fields.size(), 2);
	assert_string_equal(f.fields[0].name.c_str(), "name");
	assert_string_equal(f.fields[0].value.c_str(), "Bob");
	assert_string_equal(f.fields[1].value.c_str(), "line one\r\nline two\r\n--not the boundary");
	assert_int_equal(f.files.size(), 1); /* the empty file input is dropped */
	assert_string_equal(f.files[0].field.c_str(), "file");
	assert_string_equal(f.files[0].filename.c_str(), "cv.pdf");
	assert_string_equal(f.files[0].content_type.c_str(), "application/pdf");
	assert_true(f.files[0].data == "%PDF\0\x01\x02"s);
}

void test_multipart_no_preamble(void **)
{
	FormData f;
	std::string why;
	std::string body = "--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--b--";
	assert_true(form_multipart_parse(body, "b", f, why));
	assert_int_equal(f.fields.size(), 1);
	assert_string_equal(f.fields[0].value.c_str(), "1");
}

void test_multipart_malformed(void **)
{
	std::string why;
	const char *bad[] = {
		"no delimiter at all",
		"--b\r\nContent-Disposition: form-data; name=a\r\n\r\nunterminated",
		"--b\r\nContent-Disposition: attachment; name=a\r\n\r\n1\r\n--b--",
		"--b\r\nContent-Disposition: form-data\r\n\r\n1\r\n--b--",
		"--b\r\nContent-Disposition: form-data; name=a\r\n1\r\n--b--",
		"--b\r\n\r\n1\r\n--b--",
		"--bX\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--b--",
		"--b\r\nno colon here\r\n\r\n1\r\n--b--",
	};
	for (const char *b : bad) {
		FormData f;
		assert_false(form_multipart_parse(b, "b", f, why));
	}
	FormData f;
	assert_false(form_multipart_parse("--b--", "", f, why));
	assert_false(form_multipart_parse("--b--", std::string(71, 'b'), f, why));
	std::string huge = "--b\r\nContent-Disposition: form-data; name=a\r\nX-Pad: " +
	    std::string(FORM_MAX_PART_HEADERS, 'x') + "\r\n\r\n1\r\n--b--";
	assert_false(form_multipart_parse(huge, "b", f, why));
}

void test_multipart_too_many_parts(void **)
{
	std::string body;
	for (size_t i = 0; i <= FORM_MAX_FIELDS; i++)
		body += "--b\r\nContent-Disposition: form-data; name=f\r\n\r\n1\r\n";
	body += "--b--";
	FormData f;
	std::string why;
	assert_false(form_multipart_parse(body, "b", f, why));
	assert_string_equal(why.c_str(), "too many fields");
}

} // namespace

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_media_type),
		cmocka_unit_test(test_percent_decode),
		cmocka_unit_test(test_urlencoded),
		cmocka_unit_test(test_multipart),
		cmocka_unit_test(test_multipart_no_preamble),
		cmocka_unit_test(test_multipart_malformed),
		cmocka_unit_test(test_multipart_too_many_parts),
	};
	return cmocka_run_group_tests(tests, nullptr, nullptr);
}
