/* HttpClient: libcurl multi on libevent, against an in-process evhttp server. */
#include "relayer/http_client.h"

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <set>
#include <string>

#include "regress/unit/unit.h"
#include "regress/unit/fake_http.h"

using namespace posthorn;

namespace {

/* One event_base shared by the fake server and the client under test. */
using Fixture = test::FakeHttpServer;
using test::Captured;

void reply(evhttp_request *req, int code, const std::string &body,
    std::initializer_list<std::pair<const char *, const char *>> headers = {})
{
	evkeyvalq *out = evhttp_request_get_output_headers(req);
	for (const auto &[n, v] : headers)
		evhttp_add_header(out, n, v);
	evbuffer *b = evbuffer_new();
	evbuffer_add(b, body.data(), body.size());
	evhttp_send_reply(req, code, "X", b);
	evbuffer_free(b);
}

struct Outcome {
	int calls = 0;
	HttpResponse resp;
	HttpClient::Done done()
	{
		return [this](HttpResponse r) {
			calls++;
			resp = std::move(r);
		};
	}
};

} // namespace

static void test_post_and_response(void **)
{
	Fixture f;
	f.respond = [](evhttp_request *req) {
		reply(req, 201, "{\"ok\":true}", {{"X-Thing", "  padded value  "}, {"Content-Type", "application/json"}});
	};
	HttpClient client(f.base);
	HttpRequest req;
	req.url = f.url("/v1/send?x=1");
	req.headers = {"Content-Type: application/json", "X-Token: secret-token"};
	req.body = "{\"hello\":\"world\"}";
	Outcome o;
	client.perform(req, o.done());
	assert_int_equal(o.calls, 0);
	assert_int_equal(client.in_flight(), 1);
	assert_true(f.run_until([&] { return o.calls > 0; }));

	assert_int_equal(f.requests.size(), 1);
	const Captured &c = f.requests[0];
	assert_string_equal(c.method.c_str(), "POST");
	assert_string_equal(c.uri.c_str(), "/v1/send?x=1");
	assert_string_equal(c.header("Content-Type").c_str(), "application/json");
	assert_string_equal(c.header("X-Token").c_str(), "secret-token");
	assert_string_equal(c.body.c_str(), "{\"hello\":\"world\"}");

	assert_int_equal(o.resp.curl_code, 0);
	assert_int_equal(o.resp.status, 201);
	assert_string_equal(o.resp.body.c_str(), "{\"ok\":true}");
	assert_false(o.resp.body_truncated);
	assert_false(o.resp.timed_out);
	assert_non_null(o.resp.header("x-thing"));
	assert_string_equal(o.resp.header("x-thing")->c_str(), "padded value");
	assert_string_equal(o.resp.header("content-type")->c_str(), "application/json");
	assert_null(o.resp.header("X-Thing"));
	assert_int_equal(client.in_flight(), 0);
	f.run_for(100);
	assert_int_equal(o.calls, 1);
}

static void test_body_cap(void **)
{
	Fixture f;
	f.respond = [](evhttp_request *req) { reply(req, 200, std::string(100 * 1024, 'b')); };
	HttpClient client(f.base);
	HttpRequest req;
	req.url = f.url("/big");
	Outcome o;
	client.perform(req, o.done());
	assert_true(f.run_until([&] { return o.calls > 0; }));
	assert_int_equal(o.resp.curl_code, 0);
	assert_int_equal(o.resp.status, 200);
	assert_int_equal(o.resp.body.size(), 64 * 1024);
	assert_true(o.resp.body_truncated);
}

static void test_timeout(void **)
{
	Fixture f;
	f.respond = [](evhttp_request *) {}; /* never answers */
	HttpClient client(f.base);
	HttpRequest req;
	req.url = f.url("/slow");
	req.timeout_ms = 300;
	Outcome o;
	timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	client.perform(req, o.done());
	assert_true(f.run_until([&] { return o.calls > 0; }));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms >= 250 && ms < 3000);
	assert_true(o.resp.timed_out);
	assert_int_equal(o.resp.curl_code, CURLE_OPERATION_TIMEDOUT);
	assert_false(o.resp.error.empty());
	f.run_for(300);
	assert_int_equal(o.calls, 1);
}

static void test_connection_refused(void **)
{
	Fixture f;
	/* A port that was just free: bind, read it back, close. */
	int s = socket(AF_INET, SOCK_STREAM, 0);
	sockaddr_in sin = {};
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s, (sockaddr *)&sin, sizeof(sin)), 0);
	socklen_t len = sizeof(sin);
	getsockname(s, (sockaddr *)&sin, &len);
	close(s);

	HttpClient client(f.base);
	HttpRequest req;
	req.url = "http://127.0.0.1:" + std::to_string(ntohs(sin.sin_port)) + "/";
	Outcome o;
	client.perform(req, o.done());
	assert_int_equal(o.calls, 0);
	assert_true(f.run_until([&] { return o.calls > 0; }));
	assert_int_not_equal(o.resp.curl_code, 0);
	assert_false(o.resp.timed_out);
	assert_false(o.resp.error.empty());
	f.run_for(100);
	assert_int_equal(o.calls, 1);
}

/* A scheme outside the allowed list fails, and not from inside perform(). */
static void test_protocol_refused(void **)
{
	Fixture f;
	HttpClient client(f.base);
	HttpRequest req;
	req.url = "ftp://127.0.0.1/x";
	Outcome o;
	client.perform(req, o.done());
	assert_int_equal(o.calls, 0);
	assert_true(f.run_until([&] { return o.calls > 0; }));
	assert_int_equal(o.resp.curl_code, CURLE_UNSUPPORTED_PROTOCOL);
}

/* The second request starts from the first one's callback and reuses its connection. */
static void test_connection_reuse(void **)
{
	Fixture f;
	f.respond = [](evhttp_request *req) { reply(req, 200, "ok"); };
	HttpClient client(f.base);
	HttpRequest req;
	req.url = f.url("/one");
	Outcome second;
	int first_calls = 0;
	client.perform(req, [&](HttpResponse r) {
		first_calls++;
		assert_int_equal(r.status, 200);
		HttpRequest again;
		again.url = f.url("/two");
		client.perform(again, second.done());
	});
	assert_true(f.run_until([&] { return second.calls > 0; }));
	assert_int_equal(first_calls, 1);
	assert_int_equal(second.resp.status, 200);
	assert_int_equal(f.requests.size(), 2);
	assert_int_equal(f.requests[0].peer_port, f.requests[1].peer_port);
}

/* A callback may destroy the client; nothing else of it runs afterwards. */
static void test_destroy_in_callback(void **)
{
	Fixture f;
	f.respond = [](evhttp_request *req) { reply(req, 200, "ok"); };
	auto client = std::make_unique<HttpClient>(f.base);
	HttpRequest req;
	req.url = f.url("/x");
	int calls = 0;
	client->perform(req, [&](HttpResponse) {
		calls++;
		client.reset();
	});
	assert_true(f.run_until([&] { return calls > 0; }));
	assert_null(client.get());
	f.run_for(100);
	assert_int_equal(calls, 1);
}

/* Destroying the client with transfers in flight drops their callbacks. */
static void test_destroy_in_flight(void **)
{
	Fixture f;
	f.respond = [](evhttp_request *) {};
	int calls = 0;
	{
		HttpClient client(f.base);
		HttpRequest req;
		req.url = f.url("/hang");
		client.perform(req, [&](HttpResponse) { calls++; });
		client.perform(req, [&](HttpResponse) { calls++; });
		f.run_until([&] { return f.requests.size() == 2; });
		assert_int_equal(client.in_flight(), 2);
	}
	f.run_for(100);
	assert_int_equal(calls, 0);
}

static void test_retry_after(void **)
{
	long now = (long)curl_getdate("Sun, 06 Nov 1994 08:49:37 GMT", nullptr);
	assert_true(now > 0);
	assert_int_equal(parse_retry_after("7", now), 7);
	assert_int_equal(parse_retry_after(" 120 ", now), 120);
	assert_int_equal(parse_retry_after("0", now), 0);
	assert_int_equal(parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now), 30);
	assert_int_equal(parse_retry_after("Sun, 06 Nov 1994 08:48:37 GMT", now), 0);
	assert_int_equal(parse_retry_after("", now), -1);
	assert_int_equal(parse_retry_after("soon", now), -1);
	assert_int_equal(parse_retry_after("-5", now), -1);
	assert_int_equal(parse_retry_after("99999999999999999999999", now), LONG_MAX);
}

int main()
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_post_and_response),
		cmocka_unit_test(test_body_cap),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_connection_refused),
		cmocka_unit_test(test_protocol_refused),
		cmocka_unit_test(test_connection_reuse),
		cmocka_unit_test(test_destroy_in_callback),
		cmocka_unit_test(test_destroy_in_flight),
		cmocka_unit_test(test_retry_after),
	};
	return cmocka_run_group_tests(tests, nullptr, nullptr);
}
