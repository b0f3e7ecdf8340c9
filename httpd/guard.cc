/*
 * Slow-client guard: first-request deadlines on evhttp connections.
 */
#include "guard.h"

#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "common/log.h"
#include "ratelimit.h"

namespace posthorn::http {

namespace {

/* evhttp clears every callback of a bufferevent it frees; it always sets the event callback. */
bool freed_by_evhttp(bufferevent *bev)
{
	bufferevent_event_cb ecb = nullptr;
	bufferevent_getcb(bev, nullptr, nullptr, &ecb, nullptr);
	return ecb == nullptr;
}

} // namespace

FirstRequestGuard::FirstRequestGuard(event_base *base) : base_(base)
{
	timer_ = event_new(base, -1, EV_PERSIST, on_sweep, this);
	struct timeval tv = {1, 0};
	if (!timer_ || event_add(timer_, &tv) == -1)
		fatalx("guard: cannot start the sweep timer");
}

FirstRequestGuard::~FirstRequestGuard()
{
	release_all();
	event_free(timer_);
}

bufferevent *FirstRequestGuard::make(event_base *base, void *arg) noexcept
{
	auto *self = static_cast<FirstRequestGuard *>(arg);
	bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!bev)
		return nullptr; /* evhttp then makes its own, unguarded */
	try {
		self->conns_[bev] = Conn{monotonic_now()};
	} catch (...) {
		return bev;
	}
	bufferevent_incref(bev);
	return bev;
}

void FirstRequestGuard::dispatched(evhttp_connection *evcon)
{
	bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : nullptr;
	auto it = conns_.find(bev);
	if (it == conns_.end())
		return;
	conns_.erase(it);
	bufferevent_decref(bev); /* evhttp still holds its own reference */
}

void FirstRequestGuard::rearm(evhttp_connection *evcon)
{
	bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : nullptr;
	if (!bev || conns_.count(bev))
		return;
	try {
		conns_[bev] = Conn{monotonic_now()};
	} catch (...) {
		return;
	}
	bufferevent_incref(bev);
}

void FirstRequestGuard::release_all()
{
	for (auto &[bev, c] : conns_)
		bufferevent_decref(bev);
	conns_.clear();
}

void FirstRequestGuard::on_sweep(int, short, void *arg) noexcept
{
	static_cast<FirstRequestGuard *>(arg)->sweep();
}

void FirstRequestGuard::sweep()
{
	double now = monotonic_now();
	for (auto it = conns_.begin(); it != conns_.end();) {
		bufferevent *bev = it->first;
		if (freed_by_evhttp(bev)) {
			it = conns_.erase(it);
			bufferevent_decref(bev); /* the last reference: closes the socket */
			continue;
		}
		if (!it->second.cut && now - it->second.accepted > deadline_) {
			it->second.cut = true;
			log_event(LogLevel::debug, "http_request_timeout", {{"deadline_s", int64_t(deadline_)}});
			shutdown(bufferevent_getfd(bev), SHUT_RDWR); /* evhttp reads EOF and frees it */
		}
		++it;
	}
}

} // namespace posthorn::http
