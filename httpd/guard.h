/*
 * Slow-client guard. evhttp's read timeout is an inactivity timer: a client
 * that drips one header byte every few seconds never trips it and holds a
 * connection for as long as it likes (slowloris). The guard gives each new
 * connection a deadline for its first complete request, and a keep-alive
 * connection the same deadline again for each following request, counted
 * from the previous answer; a connection still reading when it passes is
 * shut down (evhttp then sees EOF and frees it).
 *
 * It creates the connections' bufferevents for evhttp (evhttp_set_bevcb)
 * and keeps a reference on each while it waits for a request, until the
 * request is dispatched or evhttp has freed the connection, so a sweep never
 * touches freed memory.
 */
#pragma once

#include <cstddef>
#include <map>

struct bufferevent;
struct event;
struct event_base;
struct evhttp_connection;

namespace posthorn::http {

class FirstRequestGuard {
public:
	explicit FirstRequestGuard(event_base *base);
	~FirstRequestGuard();
	FirstRequestGuard(const FirstRequestGuard &) = delete;
	FirstRequestGuard &operator=(const FirstRequestGuard &) = delete;

	/* Seconds a new connection has for its first complete request. */
	void set_deadline(double seconds) { deadline_ = seconds; }
	/* For evhttp_set_bevcb: a bufferevent for a new connection. */
	static bufferevent *make(event_base *base, void *arg) noexcept;
	/* A request arrived on this connection: it is no longer watched. */
	void dispatched(evhttp_connection *evcon);
	/* An answer is going out: the next request on this connection has a deadline too. */
	void rearm(evhttp_connection *evcon);
	/* Let go of every connection (evhttp was freed). */
	void release_all();
	size_t watched() const { return conns_.size(); }

private:
	struct Conn {
		double accepted;
		bool cut = false;
	};
	static void on_sweep(int, short, void *arg) noexcept;
	void sweep();

	event_base *base_;
	event *timer_ = nullptr;
	double deadline_ = 30;
	std::map<bufferevent *, Conn> conns_;
};

} // namespace posthorn::http
