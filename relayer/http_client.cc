/*
 * libcurl multi on libevent. curl tells us which sockets to watch
 * (socket_cb) and when to wake it (timer_cb); libevent tells curl what
 * happened (curl_multi_socket_action). Finished transfers are collected from
 * curl_multi_info_read, detached from curl, and only then handed to their
 * callbacks, which may start transfers or destroy the client.
 */
#include "relayer/http_client.h"

#include <curl/curl.h>
#include <event2/event.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <map>
#include <mutex>
#include <unordered_map>

#include "common/log.h"

namespace posthorn {

namespace {

struct EventFree {
	void operator()(event *ev) const noexcept { event_free(ev); }
};
struct EasyFree {
	void operator()(CURL *e) const noexcept { curl_easy_cleanup(e); }
};
struct MultiFree {
	void operator()(CURLM *m) const noexcept { curl_multi_cleanup(m); }
};
struct SlistFree {
	void operator()(curl_slist *l) const noexcept { curl_slist_free_all(l); }
};
using EventPtr = std::unique_ptr<event, EventFree>;
using EasyPtr = std::unique_ptr<CURL, EasyFree>;
using MultiPtr = std::unique_ptr<CURLM, MultiFree>;
using SlistPtr = std::unique_ptr<curl_slist, SlistFree>;

constexpr long MAX_CONNECTS = 32;
constexpr size_t HEADERS_CAP = 64 * 1024;   /* total bytes of kept response headers */
constexpr size_t REPLY_CAP = 512;           /* an SMTP reply line we keep */

void global_init_once()
{
	static std::once_flag once;
	std::call_once(once, [] {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			fatalx("curl_global_init failed");
	});
}

std::string_view trim(std::string_view s)
{
	while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
		s.remove_prefix(1);
	while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' ||
	    s.back() == '\n'))
		s.remove_suffix(1);
	return s;
}

bool starts_with_nocase(std::string_view s, std::string_view prefix)
{
	if (s.size() < prefix.size())
		return false;
	for (size_t i = 0; i < prefix.size(); i++)
		if (tolower((unsigned char)s[i]) != prefix[i])
			return false;
	return true;
}

struct Transfer {
	/* Declared before `easy`: what customize captured (a curl_mime) outlives the handle. */
	HttpRequest req;
	HttpClient::Done done;
	HttpResponse resp;
	size_t header_bytes = 0;
	bool smtp = false;
	bool in_http_headers = false;
	char errbuf[CURL_ERROR_SIZE] = {};
	SlistPtr headers;
	EasyPtr easy;
};

/* One HTTP response header line; a status line starts a new header set (after 100-continue). */
void take_http_header(Transfer &t, std::string_view line)
{
	if (line.starts_with("HTTP/")) {
		t.resp.headers.clear();
		t.header_bytes = 0;
		t.in_http_headers = true;
		return;
	}
	if (!t.in_http_headers || trim(line).empty())
		return;
	if (t.header_bytes + line.size() > HEADERS_CAP)
		return;
	t.header_bytes += line.size();
	if ((line[0] == ' ' || line[0] == '\t') && !t.resp.headers.empty()) {
		/* obsolete folding: a continuation of the previous value */
		auto &v = t.resp.headers.back().second;
		v += ' ';
		v += trim(line);
		return;
	}
	size_t colon = line.find(':');
	if (colon == std::string_view::npos || colon == 0)
		return;
	std::string name(trim(line.substr(0, colon)));
	for (char &c : name)
		c = (char)tolower((unsigned char)c);
	t.resp.headers.emplace_back(std::move(name), std::string(trim(line.substr(colon + 1))));
}

/*
 * Header callback. For SMTP, libcurl passes every server reply line here too
 * (as for all "pingpong" protocols), which gives last_reply without
 * CURLOPT_VERBOSE, so request lines (AUTH) never pass through our code.
 */
size_t header_cb(char *data, size_t size, size_t n, void *userp) noexcept
{
	auto &t = *static_cast<Transfer *>(userp);
	size_t len = size * n;
	std::string_view line(data, len);
	try {
		if (t.smtp) {
			std::string_view l = trim(line);
			if (!l.empty())
				t.resp.last_reply = std::string(l.substr(0, REPLY_CAP));
		} else {
			take_http_header(t, line);
		}
	} catch (...) {
		return 0; /* out of memory: abort the transfer */
	}
	return len;
}

/* Keep the first RESPONSE_BODY_CAP bytes; accept (and drop) the rest so the transfer completes. */
size_t write_cb(char *data, size_t size, size_t n, void *userp) noexcept
{
	auto &t = *static_cast<Transfer *>(userp);
	size_t len = size * n;
	size_t room = RESPONSE_BODY_CAP - std::min(RESPONSE_BODY_CAP, t.resp.body.size());
	size_t take = std::min(room, len);
	try {
		t.resp.body.append(data, take);
	} catch (...) {
		return 0;
	}
	if (take < len)
		t.resp.body_truncated = true;
	return len;
}

} // namespace

const std::string *HttpResponse::header(std::string_view lower_name) const
{
	for (const auto &[name, value] : headers)
		if (name == lower_name)
			return &value;
	return nullptr;
}

struct HttpClient::Impl {
	/* A completion owed to a caller, run from a zero-timeout event. */
	struct Deferred {
		EventPtr ev;
		Done done;
		HttpResponse resp;
		Impl *impl = nullptr;
	};
	using Ready = std::vector<std::pair<Done, HttpResponse>>;

	event_base *base;
	MultiPtr multi;
	EventPtr timer;
	std::map<curl_socket_t, EventPtr> sockets;
	std::unordered_map<CURL *, std::unique_ptr<Transfer>> transfers;
	std::unordered_map<Deferred *, std::unique_ptr<Deferred>> deferred;
	/* Cleared by the destructor, so a callback that destroyed us ends the dispatch loop. */
	std::shared_ptr<bool> alive = std::make_shared<bool>(true);

	explicit Impl(event_base *b);
	~Impl();

	void start(HttpRequest req, Done done);
	bool setup(Transfer &t);
	void fail_later(Done done, CURLcode code, const char *why);
	void socket_action(curl_socket_t fd, int flags);
	Ready collect_done();
	void dispatch(Ready &ready);

	static int socket_cb(CURL *, curl_socket_t s, int what, void *userp, void *) noexcept;
	static int timer_cb(CURLM *, long timeout_ms, void *userp) noexcept;
	static void on_socket(evutil_socket_t fd, short what, void *arg) noexcept;
	static void on_timer(evutil_socket_t, short, void *arg) noexcept;
	static void on_deferred(evutil_socket_t, short, void *arg) noexcept;
};

HttpClient::Impl::Impl(event_base *b) : base(b)
{
	global_init_once();
	multi.reset(curl_multi_init());
	timer.reset(evtimer_new(base, on_timer, this));
	if (!multi || !timer)
		fatalx("HttpClient: out of memory");
	curl_multi_setopt(multi.get(), CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(multi.get(), CURLMOPT_SOCKETDATA, this);
	curl_multi_setopt(multi.get(), CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(multi.get(), CURLMOPT_TIMERDATA, this);
	curl_multi_setopt(multi.get(), CURLMOPT_MAXCONNECTS, MAX_CONNECTS);
}

HttpClient::Impl::~Impl()
{
	*alive = false;
	/* curl wants every easy handle removed before the multi handle goes. */
	for (auto &[easy, t] : transfers)
		curl_multi_remove_handle(multi.get(), easy);
	transfers.clear();
	/* Closing cached connections calls socket_cb and timer_cb: keep their state until then. */
	multi.reset();
	sockets.clear();
	deferred.clear();
	timer.reset();
}

int HttpClient::Impl::socket_cb(CURL *, curl_socket_t s, int what, void *userp, void *) noexcept
{
	auto *self = static_cast<Impl *>(userp);
	if (what == CURL_POLL_REMOVE) {
		self->sockets.erase(s);
		return 0;
	}
	short flags = EV_PERSIST;
	if (what & CURL_POLL_IN)
		flags |= EV_READ;
	if (what & CURL_POLL_OUT)
		flags |= EV_WRITE;
	/* Re-arm with the new interest: a fresh event replaces the old one. */
	try {
		EventPtr ev(event_new(self->base, s, flags, on_socket, self));
		if (!ev || event_add(ev.get(), nullptr) == -1)
			return -1;
		self->sockets[s] = std::move(ev);
	} catch (...) {
		return -1;
	}
	return 0;
}

int HttpClient::Impl::timer_cb(CURLM *, long timeout_ms, void *userp) noexcept
{
	auto *self = static_cast<Impl *>(userp);
	if (timeout_ms < 0) {
		evtimer_del(self->timer.get());
		return 0;
	}
	timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	return evtimer_add(self->timer.get(), &tv) == -1 ? -1 : 0;
}

void HttpClient::Impl::on_socket(evutil_socket_t fd, short what, void *arg) noexcept
{
	int flags = 0;
	if (what & EV_READ)
		flags |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	static_cast<Impl *>(arg)->socket_action(fd, flags);
}

void HttpClient::Impl::on_timer(evutil_socket_t, short, void *arg) noexcept
{
	static_cast<Impl *>(arg)->socket_action(CURL_SOCKET_TIMEOUT, 0);
}

/* Drive curl, then run the completions; `this` may be gone after dispatch(). */
void HttpClient::Impl::socket_action(curl_socket_t fd, int flags)
{
	int running = 0;
	curl_multi_socket_action(multi.get(), fd, flags, &running);
	Ready ready;
	try {
		ready = collect_done();
	} catch (...) {
		fatalx("HttpClient: out of memory");
	}
	dispatch(ready);
}

/* Detach every finished transfer from curl and free it; keep only callback and response. */
HttpClient::Impl::Ready HttpClient::Impl::collect_done()
{
	Ready ready;
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(multi.get(), &left)) != nullptr) {
		if (m->msg != CURLMSG_DONE)
			continue;
		CURL *easy = m->easy_handle;
		CURLcode code = m->data.result; /* m is invalid after remove_handle */
		curl_multi_remove_handle(multi.get(), easy);
		auto node = transfers.extract(easy);
		if (node.empty())
			continue;
		Transfer &t = *node.mapped();
		t.resp.curl_code = code;
		t.resp.timed_out = code == CURLE_OPERATION_TIMEDOUT;
		if (code != CURLE_OK)
			t.resp.error = t.errbuf[0] ? t.errbuf : curl_easy_strerror(code);
		curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &t.resp.status);
		ready.emplace_back(std::move(t.done), std::move(t.resp));
	}
	return ready;
}

void HttpClient::Impl::dispatch(Ready &ready)
{
	std::shared_ptr<bool> guard = alive;
	for (auto &[done, resp] : ready) {
		if (!*guard)
			return;
		try {
			done(std::move(resp));
		} catch (...) {
			log_warnx("http: completion callback threw; ignored");
		}
	}
}

void HttpClient::Impl::on_deferred(evutil_socket_t, short, void *arg) noexcept
{
	auto *d = static_cast<Deferred *>(arg);
	auto node = d->impl->deferred.extract(d);
	Ready ready;
	ready.emplace_back(std::move(d->done), std::move(d->resp));
	Impl *self = d->impl;
	node = {}; /* frees the fired one-shot event before the callback runs */
	self->dispatch(ready);
}

/* perform() never calls back synchronously: an immediate failure is reported from the loop. */
void HttpClient::Impl::fail_later(Done done, CURLcode code, const char *why)
{
	auto d = std::make_unique<Deferred>();
	d->impl = this;
	d->done = std::move(done);
	d->resp.curl_code = code;
	d->resp.error = why;
	d->ev.reset(evtimer_new(base, on_deferred, d.get()));
	timeval zero = {0, 0};
	if (!d->ev || evtimer_add(d->ev.get(), &zero) == -1)
		fatalx("HttpClient: cannot schedule a completion");
	Deferred *key = d.get();
	deferred.emplace(key, std::move(d));
}

/* Options common to every transfer; false if curl refused one. */
bool HttpClient::Impl::setup(Transfer &t)
{
	CURL *e = t.easy.get();
	const HttpRequest &r = t.req;
	bool ok = true;
	auto set = [&](CURLoption opt, auto value) {
		ok = ok && curl_easy_setopt(e, opt, value) == CURLE_OK;
	};
	set(CURLOPT_URL, r.url.c_str());
	set(CURLOPT_PROTOCOLS_STR, "http,https,smtp,smtps");
	set(CURLOPT_FOLLOWLOCATION, 0L);
	set(CURLOPT_NOSIGNAL, 1L);
	set(CURLOPT_TIMEOUT_MS, r.timeout_ms);
	set(CURLOPT_CONNECTTIMEOUT_MS, r.connect_timeout_ms);
	set(CURLOPT_TCP_KEEPALIVE, 1L);
	set(CURLOPT_ERRORBUFFER, t.errbuf);
	set(CURLOPT_HEADERFUNCTION, header_cb);
	set(CURLOPT_HEADERDATA, &t);
	set(CURLOPT_WRITEFUNCTION, write_cb);
	set(CURLOPT_WRITEDATA, &t);
	set(CURLOPT_USERAGENT, "posthorn");
	if (!t.smtp) {
		if (r.method == "GET") {
			set(CURLOPT_HTTPGET, 1L);
		} else {
			if (r.method != "POST")
				set(CURLOPT_CUSTOMREQUEST, r.method.c_str());
			set(CURLOPT_POSTFIELDS, r.body.data());
			set(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r.body.size());
		}
	}
	for (const auto &h : r.headers) {
		curl_slist *l = curl_slist_append(t.headers.get(), h.c_str());
		if (!l)
			return false;
		(void)t.headers.release();
		t.headers.reset(l);
	}
	if (t.headers)
		set(CURLOPT_HTTPHEADER, t.headers.get());
	if (!ok || !r.customize)
		return ok;
	try {
		r.customize(e);
	} catch (...) {
		return false; /* e.g. out of memory while building a form */
	}
	return true;
}

void HttpClient::Impl::start(HttpRequest req, Done done)
{
	auto t = std::make_unique<Transfer>();
	t->req = std::move(req);
	t->smtp = starts_with_nocase(t->req.url, "smtp://") ||
	    starts_with_nocase(t->req.url, "smtps://");
	t->easy.reset(curl_easy_init());
	if (!t->easy) {
		fail_later(std::move(done), CURLE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	if (!setup(*t)) {
		fail_later(std::move(done), CURLE_FAILED_INIT, "cannot set up the transfer");
		return;
	}
	CURL *easy = t->easy.get();
	t->done = std::move(done);
	auto [it, fresh] = transfers.emplace(easy, std::move(t));
	(void)fresh;
	if (curl_multi_add_handle(multi.get(), easy) != CURLM_OK) {
		Done d = std::move(it->second->done);
		transfers.erase(it);
		fail_later(std::move(d), CURLE_FAILED_INIT, "cannot start the transfer");
	}
}

HttpClient::HttpClient(event_base *base) : impl_(std::make_unique<Impl>(base)) {}

HttpClient::~HttpClient() = default;

void HttpClient::perform(HttpRequest req, Done done)
{
	impl_->start(std::move(req), std::move(done));
}

size_t HttpClient::in_flight() const
{
	return impl_->transfers.size() + impl_->deferred.size();
}

/* delta-seconds, or an HTTP date (curl_getdate takes IMF-fixdate and the obsolete forms). */
long parse_retry_after(const std::string &value, long now)
{
	std::string_view v = trim(value);
	if (v.empty())
		return -1;
	if (std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
		long secs = 0;
		for (char c : v) {
			if (secs > (LONG_MAX - 9) / 10)
				return LONG_MAX;
			secs = secs * 10 + (c - '0');
		}
		return secs;
	}
	std::string s(v);
	time_t when = curl_getdate(s.c_str(), nullptr);
	if (when == -1)
		return -1;
	return when > now ? (long)(when - now) : 0;
}

} // namespace posthorn
