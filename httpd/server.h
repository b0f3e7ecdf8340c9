/*
 * The HTTP server: one evhttp for the life of the process, serving the
 * listening sockets the parent hands over. On reload the parent sends the
 * same addresses again as fresh descriptors (dups of the sockets it keeps):
 * an address already served keeps its bound socket and the dup is closed;
 * new addresses are added, vanished ones removed.
 *
 * Each request becomes an Exchange. A handler may answer at once or keep
 * the Exchange (a shared_ptr) and answer later from the event loop; if the
 * client's connection goes away first, the Exchange is marked gone and its
 * answer is dropped instead of touching a freed request.
 */
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "clientip.h"
#include "common/config.h"
#include "common/proc.h"
#include "guard.h"
#include "reply.h"

struct evhttp;
struct evhttp_request;
struct evhttp_connection;
struct evhttp_bound_socket;
struct event_base;

namespace posthorn::http {

class HttpServer;

class Exchange {
public:
	Exchange(HttpServer &server, evhttp_request *req);
	/* Never answered and the client still there: a 500, so no request is stranded. */
	~Exchange();
	Exchange(const Exchange &) = delete;
	Exchange &operator=(const Exchange &) = delete;

	/* "GET", "POST", ... ("" for a method evhttp does not name). */
	const char *method() const;
	std::string_view path() const { return path_; }
	/* First header of that name; nullptr when absent. */
	const char *header(const char *name) const;
	/* Every header of that name joined with ", " (X-Forwarded-For). */
	std::string headers_joined(const char *name) const;
	/* The request body (valid for the life of the Exchange). */
	std::string_view body() const;
	const IpAddr &peer() const { return peer_; }

	/* Answer (once; later calls and answers to a gone client are ignored). */
	void send(const Reply &r);
	bool answered() const { return answered_; }
	bool gone() const { return gone_; }

private:
	friend class HttpServer;
	HttpServer &server_;
	evhttp_request *req_;
	std::string path_;
	IpAddr peer_;
	bool answered_ = false;
	bool gone_ = false;
	/* The client left mid-request and evhttp detached req_: freeing it is ours. */
	bool owned_ = false;
};

class HttpServer {
public:
	using Handler = std::function<void(const std::shared_ptr<Exchange> &)>;

	HttpServer(event_base *base, Handler handler);
	~HttpServer();
	HttpServer(const HttpServer &) = delete;
	HttpServer &operator=(const HttpServer &) = delete;

	/* Limits from [http]; max_body: the largest body any endpoint accepts. A connection's
	 * first request must arrive within twice read_timeout (the slow-client guard). */
	void apply(const HttpConfig &cfg, uint64_t max_body);
	/* This generation's sockets (kind "http"); takes ownership. */
	void listen(std::vector<Listener> &&listeners);
	/* Stop accepting (shutdown). Connections in progress continue. */
	void close_listeners();
	/* Exchanges kept by handlers and not yet answered. */
	size_t waiting() const { return waiting_.size(); }

private:
	friend class Exchange;
	struct EvhttpFree {
		void operator()(evhttp *h) const noexcept;
	};
	static void on_request(evhttp_request *req, void *arg) noexcept;
	static void on_close(evhttp_connection *evcon, void *arg) noexcept;
	void request(evhttp_request *req);
	void keep(Exchange *ex);
	void release(Exchange *ex);

	Handler handler_;
	FirstRequestGuard guard_;
	std::unique_ptr<evhttp, EvhttpFree> http_;
	std::map<std::string, evhttp_bound_socket *> bound_; /* by address */
	std::map<evhttp_connection *, Exchange *> waiting_;
};

} // namespace posthorn::http
