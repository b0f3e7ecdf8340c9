/*
 * An in-process evhttp server on 127.0.0.1 that records every request, for
 * tests of the HTTP client and the provider transports: the client under
 * test shares its event_base, so run_until() drives both sides.
 */
#pragma once

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/text.h"

namespace posthorn::test {

struct Captured {
	std::string method, uri, body;
	std::vector<std::pair<std::string, std::string>> headers;
	uint16_t peer_port = 0;

	std::string header(std::string_view name) const
	{
		for (const auto &[n, v] : headers)
			if (iequals(n, name))
				return v;
		return "";
	}
	bool has_header(std::string_view name) const
	{
		for (const auto &h : headers)
			if (iequals(h.first, name))
				return true;
		return false;
	}
};

struct FakeHttpServer {
	event_base *base = event_base_new();
	evhttp *http = evhttp_new(base);
	event *tick = nullptr;
	uint16_t port = 0;
	std::vector<Captured> requests;
	/* How to answer; unset: 200 with an empty body. */
	std::function<void(evhttp_request *)> respond;

	FakeHttpServer()
	{
		assert_non_null(base);
		assert_non_null(http);
		evhttp_set_gencb(http, on_request, this);
		evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
		assert_non_null(bs);
		sockaddr_in sin = {};
		socklen_t len = sizeof(sin);
		assert_int_equal(getsockname(evhttp_bound_socket_get_fd(bs), (sockaddr *)&sin, &len), 0);
		port = ntohs(sin.sin_port);
		/* A heartbeat, so EVLOOP_ONCE returns and deadlines are checked. */
		tick = event_new(base, -1, EV_PERSIST, [](evutil_socket_t, short, void *) {}, nullptr);
		timeval tv = {0, 20000};
		event_add(tick, &tv);
	}
	~FakeHttpServer()
	{
		event_free(tick);
		evhttp_free(http);
		event_base_free(base);
	}
	FakeHttpServer(const FakeHttpServer &) = delete;
	FakeHttpServer &operator=(const FakeHttpServer &) = delete;

	std::string url(const std::string &path = "") const
	{
		return "http://127.0.0.1:" + std::to_string(port) + path;
	}

	static void on_request(evhttp_request *req, void *arg)
	{
		auto *f = static_cast<FakeHttpServer *>(arg);
		Captured c;
		switch (evhttp_request_get_command(req)) {
		case EVHTTP_REQ_GET:
			c.method = "GET";
			break;
		case EVHTTP_REQ_POST:
			c.method = "POST";
			break;
		default:
			c.method = "OTHER";
		}
		c.uri = evhttp_request_get_uri(req);
		evkeyvalq *in = evhttp_request_get_input_headers(req);
		for (evkeyval *kv = in->tqh_first; kv; kv = kv->next.tqe_next)
			c.headers.emplace_back(kv->key, kv->value);
		evbuffer *buf = evhttp_request_get_input_buffer(req);
		size_t n = evbuffer_get_length(buf);
		c.body.assign((const char *)evbuffer_pullup(buf, -1), n);
		char *addr = nullptr;
		evhttp_connection_get_peer(evhttp_request_get_connection(req), &addr, &c.peer_port);
		f->requests.push_back(std::move(c));
		if (f->respond)
			f->respond(req);
		else
			evhttp_send_reply(req, 200, "OK", nullptr);
	}

	/* Run the loop until pred() or the deadline; false on deadline. */
	bool run_until(const std::function<bool()> &pred, int ms = 5000)
	{
		timespec start;
		clock_gettime(CLOCK_MONOTONIC, &start);
		while (!pred()) {
			timespec now;
			clock_gettime(CLOCK_MONOTONIC, &now);
			long el = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
			if (el > ms)
				return false;
			event_base_loop(base, EVLOOP_ONCE);
		}
		return true;
	}

	void run_for(int ms)
	{
		run_until([] { return false; }, ms);
	}
};

} // namespace posthorn::test
