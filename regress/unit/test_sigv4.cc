/*
 * AWS Signature Version 4: AWS's published test vectors (regress/data/sigv4/vectors.json), the
 * building blocks, session tokens, and an SES SendEmail request checked against botocore.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "relayer/sigv4.h"
#include "regress/unit/unit.h"

using namespace posthorn;

namespace {

struct CJsonDelete {
	void operator()(cJSON *p) const noexcept { cJSON_Delete(p); }
};
using CJsonPtr = std::unique_ptr<cJSON, CJsonDelete>;

constexpr const char *VECTORS = "regress/data/sigv4/vectors.json";
constexpr const char *AKID = "AKIDEXAMPLE";
constexpr const char *SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
constexpr const char *SES_HOST = "email.eu-west-1.amazonaws.com";
constexpr const char *SES_DATE = "20260115T093000Z";
constexpr const char *SES_BODY =
    "{\"FromEmailAddress\":\"noreply@example.com\",\"Destination\":{\"ToAddresses\":"
    "[\"a@example.org\"]},\"Content\":{\"Simple\":{\"Subject\":{\"Data\":\"Hi\",\"Charset\":"
    "\"UTF-8\"},\"Body\":{\"Text\":{\"Data\":\"Hello\",\"Charset\":\"UTF-8\"}}}}}";
constexpr const char *SES_TOKEN = "FQoGZXIvYXdzEXAMPLETOKEN/+==";

/* The vectors file, found from the repo root (where `make unit` runs) or $POSTHORN_TOP. */
CJsonPtr load_vectors()
{
	std::string path = VECTORS;
	if (const char *top = getenv("POSTHORN_TOP"); top && *top)
		path = std::string(top) + "/" + VECTORS;
	std::ifstream in(path, std::ios::binary);
	if (!in) {
		print_error("cannot open %s (run from the repo root or set POSTHORN_TOP)\n",
		    path.c_str());
		return nullptr;
	}
	std::stringstream ss;
	ss << in.rdbuf();
	return CJsonPtr(cJSON_Parse(ss.str().c_str()));
}

std::string str(const cJSON *obj, const char *key)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
	assert_true(cJSON_IsString(item));
	return item->valuestring;
}

/* A test-suite request: "METHOD TARGET HTTP/1.1\nName:value\n...[\n\nbody]". */
SigV4Request parse_raw(const std::string &raw)
{
	SigV4Request req;
	std::string head = raw;
	if (size_t blank = raw.find("\n\n"); blank != std::string::npos) {
		head = raw.substr(0, blank);
		req.body = raw.substr(blank + 2);
	}
	std::istringstream lines(head);
	std::string line;
	std::getline(lines, line);
	size_t sp1 = line.find(' '), sp2 = line.rfind(' ');
	assert_true(sp1 != std::string::npos && sp2 > sp1);
	req.method = line.substr(0, sp1);
	std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
	if (size_t q = target.find('?'); q != std::string::npos) {
		req.path = target.substr(0, q);
		req.query = target.substr(q + 1);
	} else {
		req.path = target;
	}
	while (std::getline(lines, line)) {
		size_t colon = line.find(':');
		assert_true(colon != std::string::npos);
		req.headers.emplace_back(line.substr(0, colon), line.substr(colon + 1));
	}
	return req;
}

const cJSON *find_case(const cJSON *doc, const char *name)
{
	const cJSON *c;
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(doc, "cases"))
		if (str(c, "name") == name)
			return c;
	print_error("no case %s in %s\n", name, VECTORS);
	fail();
	return nullptr;
}

SigV4Result sign_vector(const cJSON *doc, const SigV4Request &req, const SigV4Credentials &creds)
{
	return sigv4_sign(req, creds, str(doc, "region"), str(doc, "service"), str(doc, "amz_date"));
}

SigV4Credentials vector_creds(const cJSON *doc)
{
	return {str(doc, "access_key_id"), str(doc, "secret_access_key"), ""};
}

void expect_equal(const std::string &what, const std::string &name, const std::string &got,
    const std::string &want)
{
	if (got != want) {
		print_error("case %s: %s differs\n got: %s\nwant: %s\n", name.c_str(), what.c_str(),
		    got.c_str(), want.c_str());
		fail();
	}
}

void expect_vector(const cJSON *c, const SigV4Result &r)
{
	std::string name = str(c, "name");
	expect_equal("canonical_request", name, r.canonical_request, str(c, "canonical_request"));
	expect_equal("string_to_sign", name, r.string_to_sign, str(c, "string_to_sign"));
	expect_equal("authorization", name, r.authorization, str(c, "authorization"));
}

std::string header(const SigV4Headers &h, const std::string &name)
{
	for (const auto &[n, v] : h)
		if (n == name)
			return v;
	return "<absent>";
}

SigV4Request ses_request()
{
	SigV4Request req;
	req.method = "POST";
	req.path = "/v2/email/outbound-emails";
	req.headers = {{"Host", SES_HOST}, {"Content-Type", "application/json"}};
	req.body = SES_BODY;
	return req;
}

bool contains(const std::string &hay, const std::string &needle)
{
	return hay.find(needle) != std::string::npos;
}

} // namespace

/* Every case of the published subset: canonical request, string to sign, Authorization. */
static void test_vectors(void **)
{
	CJsonPtr doc = load_vectors();
	assert_non_null(doc.get());
	int n = 0;
	const cJSON *c;
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(doc.get(), "cases")) {
		SigV4Result r = sign_vector(doc.get(), parse_raw(str(c, "request")),
		    vector_creds(doc.get()));
		expect_vector(c, r);
		/* Every vector sends its own X-Amz-Date (and token): nothing to add. */
		assert_true(r.add_headers.empty());
		n++;
	}
	assert_true(n >= 7);
}

/* post-sts-header-before again, the token coming from the credentials instead of the request. */
static void test_vector_sts_from_credentials(void **)
{
	CJsonPtr doc = load_vectors();
	assert_non_null(doc.get());
	const cJSON *c = find_case(doc.get(), "post-sts-header-before");
	SigV4Request req = parse_raw(str(c, "request"));
	std::string token;
	std::erase_if(req.headers, [&token](const auto &h) {
		if (h.first != "X-Amz-Security-Token")
			return false;
		token = h.second;
		return true;
	});
	assert_false(token.empty());
	SigV4Credentials creds = vector_creds(doc.get());
	creds.session_token = token;
	SigV4Result r = sign_vector(doc.get(), req, creds);
	expect_vector(c, r);
	assert_int_equal(r.add_headers.size(), 1);
	assert_string_equal(header(r.add_headers, "x-amz-security-token").c_str(), token.c_str());
}

/* get-vanilla without its X-Amz-Date header: the signer adds it and signs it. */
static void test_adds_date(void **)
{
	CJsonPtr doc = load_vectors();
	assert_non_null(doc.get());
	const cJSON *c = find_case(doc.get(), "get-vanilla");
	SigV4Request req = parse_raw(str(c, "request"));
	std::erase_if(req.headers, [](const auto &h) { return h.first == "X-Amz-Date"; });
	assert_int_equal(req.headers.size(), 1);
	SigV4Result r = sign_vector(doc.get(), req, vector_creds(doc.get()));
	expect_vector(c, r);
	assert_int_equal(r.add_headers.size(), 1);
	assert_string_equal(header(r.add_headers, "x-amz-date").c_str(), "20150830T123600Z");
}

/*
 * An SES v2 SendEmail request. The expected values were computed independently with
 * botocore 1.43 (botocore.auth.SigV4Auth(creds, "ses", "eu-west-1"), clock fixed at
 * 2026-01-15T09:30:00Z, same headers and body).
 */
static void test_ses_request(void **)
{
	SigV4Credentials creds{AKID, SECRET, ""};
	SigV4Result r = sigv4_sign(ses_request(), creds, "eu-west-1", "ses", SES_DATE);
	assert_string_equal(r.authorization.c_str(),
	    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260115/eu-west-1/ses/aws4_request, "
	    "SignedHeaders=content-type;host;x-amz-date, "
	    "Signature=67872296b5c21ab5786f700cb110235a6fbc5ada672a0f51cb29a7b3774be6e4");
	assert_string_equal(r.canonical_request.c_str(),
	    "POST\n/v2/email/outbound-emails\n\n"
	    "content-type:application/json\nhost:email.eu-west-1.amazonaws.com\n"
	    "x-amz-date:20260115T093000Z\n\ncontent-type;host;x-amz-date\n"
	    "aea1d4696756e56e1ef5bdbeaf6ce59188673adedb267b452640a580dc2691fc");
	assert_int_equal(r.add_headers.size(), 1);
	assert_string_equal(header(r.add_headers, "x-amz-date").c_str(), SES_DATE);
	assert_int_equal(r.signature.size(), 64);
	assert_true(contains(r.authorization, ", Signature=" + r.signature));

	/* Deterministic; any change to the body, region or date changes the signature. */
	assert_string_equal(sigv4_sign(ses_request(), creds, "eu-west-1", "ses", SES_DATE)
				.authorization.c_str(),
	    r.authorization.c_str());
	SigV4Request other = ses_request();
	other.body += " ";
	assert_string_not_equal(sigv4_sign(other, creds, "eu-west-1", "ses", SES_DATE)
				    .signature.c_str(),
	    r.signature.c_str());
	assert_string_not_equal(sigv4_sign(ses_request(), creds, "us-east-1", "ses", SES_DATE)
				    .signature.c_str(),
	    r.signature.c_str());
	assert_string_not_equal(sigv4_sign(ses_request(), creds, "eu-west-1", "ses",
				    "20260115T093001Z")
				    .signature.c_str(),
	    r.signature.c_str());
}

/* Temporary credentials: x-amz-security-token added and signed (botocore agrees). */
static void test_session_token(void **)
{
	SigV4Credentials creds{AKID, SECRET, SES_TOKEN};
	SigV4Result r = sigv4_sign(ses_request(), creds, "eu-west-1", "ses", SES_DATE);
	assert_string_equal(r.authorization.c_str(),
	    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260115/eu-west-1/ses/aws4_request, "
	    "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, "
	    "Signature=baaa31c49cd2d98cb83b28e7fa5ddc69deba8507a60400b711108f761d072399");
	assert_int_equal(r.add_headers.size(), 2);
	assert_string_equal(header(r.add_headers, "x-amz-security-token").c_str(), SES_TOKEN);
	assert_true(contains(r.canonical_request,
	    std::string("\nx-amz-security-token:") + SES_TOKEN + "\n"));

	/* A request that already carries the token is not given a second one. */
	SigV4Request req = ses_request();
	req.headers.emplace_back("X-Amz-Security-Token", SES_TOKEN);
	SigV4Result r2 = sigv4_sign(req, creds, "eu-west-1", "ses", SES_DATE);
	assert_string_equal(r2.authorization.c_str(), r.authorization.c_str());
	assert_string_equal(header(r2.add_headers, "x-amz-security-token").c_str(), "<absent>");
}

/* x-amz-content-sha256 on request; a value already sent stands for the payload hash. */
static void test_content_sha256(void **)
{
	SigV4Credentials creds{AKID, SECRET, ""};
	SigV4Result r = sigv4_sign(ses_request(), creds, "eu-west-1", "ses", SES_DATE, true);
	std::string hash = sigv4_sha256_hex(SES_BODY);
	assert_string_equal(header(r.add_headers, "x-amz-content-sha256").c_str(), hash.c_str());
	assert_true(contains(r.authorization,
	    "SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date,"));
	assert_true(contains(r.canonical_request, "\nx-amz-content-sha256:" + hash + "\n"));

	SigV4Request req = ses_request();
	req.headers.emplace_back("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD");
	SigV4Result u = sigv4_sign(req, creds, "eu-west-1", "ses", SES_DATE, true);
	assert_string_equal(header(u.add_headers, "x-amz-content-sha256").c_str(), "<absent>");
	assert_true(contains(u.canonical_request, "x-amz-date\nUNSIGNED-PAYLOAD"));
}

/* The secret (or the "AWS4"-prefixed key) appears in no field of any result. */
static void test_secret_never_in_output(void **)
{
	CJsonPtr doc = load_vectors();
	assert_non_null(doc.get());
	std::string secret = str(doc.get(), "secret_access_key");
	auto check = [&secret](const SigV4Result &r) {
		for (const std::string *s :
		     {&r.canonical_request, &r.string_to_sign, &r.signature, &r.authorization}) {
			assert_false(contains(*s, secret));
			assert_false(contains(*s, secret.substr(0, 8)));
		}
		for (const auto &[n, v] : r.add_headers) {
			assert_false(contains(n, secret.substr(0, 8)));
			assert_false(contains(v, secret.substr(0, 8)));
		}
	};
	const cJSON *c;
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(doc.get(), "cases"))
		check(sign_vector(doc.get(), parse_raw(str(c, "request")), vector_creds(doc.get())));
	check(sigv4_sign(ses_request(), {AKID, SECRET, SES_TOKEN}, "eu-west-1", "ses", SES_DATE,
	    true));
}

static void test_amz_date(void **)
{
	assert_string_equal(sigv4_amz_date(0).c_str(), "19700101T000000Z");
	assert_string_equal(sigv4_amz_date(1768469400).c_str(), SES_DATE);
	assert_string_equal(sigv4_amz_date(1709251199).c_str(), "20240229T235959Z");
	std::string now = sigv4_amz_date(time(nullptr));
	assert_int_equal(now.size(), 16);
	assert_int_equal(now[8], 'T');
	assert_int_equal(now[15], 'Z');
}

static void test_canonical_query(void **)
{
	assert_string_equal(sigv4_canonical_query("").c_str(), "");
	assert_string_equal(sigv4_canonical_query("Param2=value2&Param1=value1").c_str(),
	    "Param1=value1&Param2=value2");
	/* Decoded then re-encoded: %7e becomes ~, a bare key gets "=", sorted by key then value. */
	assert_string_equal(sigv4_canonical_query("b=2&a=%7e%20z&a=1&flag&&").c_str(),
	    "a=1&a=~%20z&b=2&flag=");
	/* '+' is itself; a stray '%' is itself; lower-case hex is upper-cased; UTF-8 bytes. */
	assert_string_equal(sigv4_canonical_query("k=1+2&%zz=%2f&u=\xc3\xa9").c_str(),
	    "%25zz=%2F&k=1%2B2&u=%C3%A9");
	assert_string_equal(sigv4_uri_decode("%4").c_str(), "%4");
	assert_string_equal(sigv4_uri_decode("a%41%").c_str(), "aA%");
	assert_string_equal(sigv4_uri_encode("a/b c~", true).c_str(), "a/b%20c~");
	assert_string_equal(sigv4_uri_encode("a/b c~", false).c_str(), "a%2Fb%20c~");
}

/* The path is encoded a second time, after removing dot segments (botocore agrees). */
static void test_canonical_uri(void **)
{
	assert_string_equal(sigv4_canonical_uri("").c_str(), "/");
	assert_string_equal(sigv4_canonical_uri("/").c_str(), "/");
	assert_string_equal(sigv4_canonical_uri("/v2/email/outbound-emails").c_str(),
	    "/v2/email/outbound-emails");
	assert_string_equal(
	    sigv4_canonical_uri("/v2/email/identities/user%40example.com/./x/../").c_str(),
	    "/v2/email/identities/user%2540example.com/");
	assert_string_equal(sigv4_canonical_uri("/a/../../b").c_str(), "/b");
}

static void test_headers(void **)
{
	assert_string_equal(sigv4_trim_value("  a   b\t\t c  ").c_str(), "a b c");
	assert_string_equal(sigv4_trim_value("").c_str(), "");
	assert_string_equal(sigv4_trim_value(" \t ").c_str(), "");

	/* Authorization, User-Agent, Expect and X-Amzn-Trace-Id are sent but not signed. */
	SigV4Request req = ses_request();
	req.headers.emplace_back("Authorization", "old");
	req.headers.emplace_back("User-Agent", "posthorn");
	req.headers.emplace_back("Expect", "100-continue");
	req.headers.emplace_back("X-Amzn-Trace-Id", "Root=1");
	SigV4Result r = sigv4_sign(req, {AKID, SECRET, ""}, "eu-west-1", "ses", SES_DATE);
	SigV4Result plain = sigv4_sign(ses_request(), {AKID, SECRET, ""}, "eu-west-1", "ses",
	    SES_DATE);
	assert_string_equal(r.authorization.c_str(), plain.authorization.c_str());
}

static void test_sha256(void **)
{
	assert_string_equal(sigv4_sha256_hex("").c_str(),
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	assert_string_equal(sigv4_sha256_hex("abc").c_str(),
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

int main()
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_vector_sts_from_credentials),
		cmocka_unit_test(test_adds_date),
		cmocka_unit_test(test_ses_request),
		cmocka_unit_test(test_session_token),
		cmocka_unit_test(test_content_sha256),
		cmocka_unit_test(test_secret_never_in_output),
		cmocka_unit_test(test_amz_date),
		cmocka_unit_test(test_canonical_query),
		cmocka_unit_test(test_canonical_uri),
		cmocka_unit_test(test_headers),
		cmocka_unit_test(test_sha256),
	};
	return cmocka_run_group_tests(tests, nullptr, nullptr);
}
