/*
 * evhttp glue: requests in, replies out, sockets across reloads.
 */
#include "server.h"

#include <strings.h>
#include <sys/time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include <set>

#include "common/log.h"

namespace posthorn::http {

namespace {

const char *method_name(evhttp_cmd_type t)
{
	switch (t) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	case EVHTTP_REQ_TRACE: return "TRACE";
	case EVHTTP_REQ_CONNECT: return "CONNECT";
	case EVHTTP_REQ_PATCH: return "PATCH";
	}
	return "";
}

struct EvbufferFree {
	void operator()(evbuffer *b) const noexcept { evbuffer_free(b); }
};

} // namespace

/* ---- Exchange ---- */

Exchange::Exchange(HttpServer &server, evhttp_request *req) : server_(server), req_(req)
{
	const evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *p = uri ? evhttp_uri_get_path(uri) : nullptr;
	path_ = p ? p : "";
	evhttp_connection *evcon = evhttp_request_get_connection(req);
	if (evcon)
		ip_from_sockaddr(evhttp_connection_get_addr(evcon), peer_);
}

Exchange::~Exchange()
{
	if (!answered_ && !gone_) {
		log_warnx("http: request dropped without an answer");
		send(json_error(500, "internal_error", "internal error"));
	}
	if (owned_)
		evhttp_request_free(req_);
}

const char *Exchange::method() const
{
	return method_name(evhttp_request_get_command(req_));
}

const char *Exchange::header(const char *name) const
{
	return evhttp_find_header(evhttp_request_get_input_headers(req_), name);
}

std::string Exchange::headers_joined(const char *name) const
{
	std::string out;
	const evkeyvalq *h = evhttp_request_get_input_headers(req_);
	for (const evkeyval *kv = h->tqh_first; kv; kv = kv->next.tqe_next) {
		if (strcasecmp(kv->key, name) != 0)
			continue;
		if (!out.empty())
			out += ", ";
		out += kv->value;
	}
	return out;
}

std::string_view Exchange::body() const
{
	evbuffer *in = evhttp_request_get_input_buffer(req_);
	size_t len = evbuffer_get_length(in);
	if (len == 0)
		return {};
	const unsigned char *p = evbuffer_pullup(in, -1);
	return p ? std::string_view(reinterpret_cast<const char *>(p), len) : std::string_view();
}

void Exchange::send(const Reply &r)
{
	if (answered_ || gone_)
		return;
	answered_ = true;
	server_.release(this);
	evkeyvalq *out = evhttp_request_get_output_headers(req_);
	for (const auto &[k, v] : r.headers)
		evhttp_add_header(out, k.c_str(), v.c_str());
	evhttp_add_header(out, "Cache-Control", "no-store");
	evhttp_add_header(out, "X-Content-Type-Options", "nosniff");
	std::unique_ptr<evbuffer, EvbufferFree> body(evbuffer_new());
	if (!body || evbuffer_add(body.get(), r.body.data(), r.body.size()) == -1) {
		evhttp_send_error(req_, 500, nullptr);
		return;
	}
	/* Fetched before the reply: sending may free a request whose connection is gone. */
	server_.guard_.rearm(evhttp_request_get_connection(req_));
	evhttp_send_reply(req_, r.status, reason_phrase(r.status), body.get());
}

/* ---- HttpServer ---- */

void HttpServer::EvhttpFree::operator()(evhttp *h) const noexcept
{
	evhttp_free(h);
}

HttpServer::HttpServer(event_base *base, Handler handler)
    : handler_(std::move(handler)), guard_(base), http_(evhttp_new(base))
{
	if (!http_)
		fatalx("evhttp_new");
	evhttp_set_gencb(http_.get(), on_request, this);
	evhttp_set_bevcb(http_.get(), FirstRequestGuard::make, &guard_);
	evhttp_set_allowed_methods(http_.get(), EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
	    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
	    EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
}

HttpServer::~HttpServer()
{
	/* Freeing evhttp closes every connection: Exchanges still held become gone. */
	http_.reset();
	guard_.release_all();
	for (auto &[evcon, ex] : waiting_)
		ex->gone_ = true;
	waiting_.clear();
}

void HttpServer::apply(const HttpConfig &cfg, uint64_t max_body)
{
	struct timeval tv = {static_cast<time_t>(cfg.read_timeout), 0};
	evhttp_set_timeout_tv(http_.get(), &tv);
	guard_.set_deadline(2.0 * double(cfg.read_timeout));
	evhttp_set_max_headers_size(http_.get(), ev_ssize_t(cfg.max_header_size));
	evhttp_set_max_body_size(http_.get(), ev_ssize_t(max_body));
}

void HttpServer::listen(std::vector<Listener> &&listeners)
{
	std::set<std::string> wanted;
	for (Listener &l : listeners) {
		if (l.kind != "http" || !l.fd)
			continue;
		wanted.insert(l.address);
		if (bound_.count(l.address))
			continue; /* already served: l.fd, a dup of the same socket, closes */
		evhttp_bound_socket *b = evhttp_accept_socket_with_handle(http_.get(), l.fd.get());
		if (!b) {
			log_warnx("http: cannot serve %s", l.address.c_str());
			continue;
		}
		l.fd.release(); /* evhttp closes it when the bound socket goes */
		bound_[l.address] = b;
		log_event(LogLevel::debug, "http_listening", {{"address", l.address}});
	}
	for (auto it = bound_.begin(); it != bound_.end();) {
		if (wanted.count(it->first)) {
			++it;
			continue;
		}
		evhttp_del_accept_socket(http_.get(), it->second);
		it = bound_.erase(it);
	}
}

void HttpServer::close_listeners()
{
	for (auto &[addr, b] : bound_)
		evhttp_del_accept_socket(http_.get(), b);
	bound_.clear();
}

void HttpServer::on_request(evhttp_request *req, void *arg) noexcept
{
	auto *self = static_cast<HttpServer *>(arg);
	try {
		self->request(req);
	} catch (const std::exception &e) {
		log_warnx("http: request failed: %s", e.what());
		evhttp_send_error(req, 500, nullptr);
	}
}

void HttpServer::request(evhttp_request *req)
{
	guard_.dispatched(evhttp_request_get_connection(req));
	auto ex = std::make_shared<Exchange>(*this, req);
	handler_(ex);
	if (ex->answered_)
		return;
	if (ex.use_count() > 1) {
		keep(ex.get()); /* a handler will answer later */
		return;
	}
	log_warnx("http: handler left %s unanswered", ex->path_.c_str());
	ex->send(json_error(500, "internal_error", "internal error"));
}

void HttpServer::keep(Exchange *ex)
{
	evhttp_connection *evcon = evhttp_request_get_connection(ex->req_);
	if (!evcon)
		return;
	waiting_[evcon] = ex;
	evhttp_connection_set_closecb(evcon, on_close, this);
}

void HttpServer::release(Exchange *ex)
{
	auto it = waiting_.find(evhttp_request_get_connection(ex->req_));
	if (it != waiting_.end() && it->second == ex)
		waiting_.erase(it);
}

void HttpServer::on_close(evhttp_connection *evcon, void *arg) noexcept
{
	auto *self = static_cast<HttpServer *>(arg);
	auto it = self->waiting_.find(evcon);
	if (it == self->waiting_.end())
		return;
	Exchange *ex = it->second;
	ex->gone_ = true;
	/*
	 * A client that hangs up before its answer makes evhttp detach the
	 * request (evcon = NULL) and free only the connection; the request and
	 * its body would leak unless we free it. When evhttp itself is freed the
	 * request is still attached and evhttp frees it.
	 */
	ex->owned_ = evhttp_request_get_connection(ex->req_) == nullptr;
	self->waiting_.erase(it);
}

} // namespace posthorn::http
