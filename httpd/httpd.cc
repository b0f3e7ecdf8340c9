/*
 * httpd: the HTTP front. Chrooted and unprivileged; receives its listening
 * sockets and the endpoint settings from the parent (again on every
 * reload), serves the endpoints, /healthz and /metrics, and submits to the
 * relayer over the channel the parent set up.
 */
#include <event2/event.h>

#include <map>
#include <memory>

#include "common/log.h"
#include "common/proc.h"
#include "common/stats.h"
#include "common/submit.h"
#include "endpoint.h"
#include "metrics.h"
#include "ratelimit.h"
#include "reply.h"
#include "server.h"

namespace posthorn {

namespace {

using namespace http;

constexpr unsigned kSubmitTimeout = 30;   /* seconds; sync delivery answers within ~10 s */
constexpr int kDrainSeconds = 15;         /* SIGTERM: finish requests in progress */

class Httpd final : public Child {
public:
	explicit Httpd(int verbose);
	~Httpd() override;

protected:
	void configure(uint64_t generation, Config &&cfg, std::vector<Listener> &&listeners) override;
	void peer(ProcId peer, Fd fd) override;
	void shutdown() override;

private:
	void route(const std::shared_ptr<Exchange> &ex);
	void healthz(Exchange &ex);
	void relayer_imsg(Imsg &msg);
	void control_imsg(ImsgChannel &chan, Imsg &msg);
	static void on_drain(int, short, void *arg) noexcept;
	void drain();

	Submitter submitter_;
	AuthLockout lockout_;
	MetricsPage metrics_;
	HttpServer server_;
	std::map<std::string, std::shared_ptr<Endpoint>> endpoints_;
	std::map<std::string, std::shared_ptr<EndpointState>> states_;
	ImsgChannel *relayer_ = nullptr;
	event *drain_ev_ = nullptr;
	double drain_deadline_ = 0;
};

Httpd::Httpd(int verbose)
    : Child(ProcId::httpd, verbose), submitter_(base(), kSubmitTimeout),
      metrics_(base(), process_stats()),
      server_(base(), [this](const std::shared_ptr<Exchange> &ex) { route(ex); })
{
}

Httpd::~Httpd()
{
	if (drain_ev_)
		event_free(drain_ev_);
}

void Httpd::configure(uint64_t generation, Config &&cfg, std::vector<Listener> &&listeners)
{
	HttpConfig http = cfg.http.value_or(HttpConfig{});
	std::map<std::string, std::shared_ptr<Endpoint>> table;
	std::map<std::string, std::shared_ptr<EndpointState>> states;
	uint64_t max_body = 64 * 1024;
	Services svc{submitter_, process_stats(), lockout_};
	for (const EndpointConfig &e : cfg.endpoints) {
		auto it = states_.find(e.path);
		auto state = it != states_.end() ? it->second : std::make_shared<EndpointState>(e);
		state->update(e);
		states[e.path] = state;
		table[e.path] = std::make_shared<Endpoint>(e, http, cfg.global.strip_client_ip, state, svc);
		max_body = std::max(max_body, e.max_body_size);
	}
	/* Bodies a little over an endpoint's cap still reach it and get a JSON 413. */
	server_.apply(http, max_body * 2);
	server_.listen(std::move(listeners));
	endpoints_ = std::move(table);
	states_ = std::move(states);
	log_event(LogLevel::debug, "httpd_configured",
	    {{"generation", generation}, {"endpoints", endpoints_.size()}});
}

void Httpd::peer(ProcId peer, Fd fd)
{
	if (peer == ProcId::control) {
		auto chan = std::make_unique<ImsgChannel>(
		    base(), std::move(fd), [this](ImsgChannel &c, Imsg &m) { control_imsg(c, m); },
		    [this](ImsgChannel &) {
			    log_debug("channel to control closed");
			    metrics_.fail_all();
		    });
		chan->name = "control";
		metrics_.attach(chan.get());
		peers_.push_back(std::move(chan));
		return;
	}
	if (peer != ProcId::relayer) {
		Child::peer(peer, std::move(fd));
		return;
	}
	auto chan = std::make_unique<ImsgChannel>(
	    base(), std::move(fd), [this](ImsgChannel &, Imsg &m) { relayer_imsg(m); },
	    [this](ImsgChannel &) {
		    log_warnx("channel to the relayer closed");
		    submitter_.attach(nullptr);
		    submitter_.fail_all("relayer unavailable");
	    });
	chan->name = "relayer";
	relayer_ = chan.get();
	submitter_.attach(relayer_);
	peers_.push_back(std::move(chan));
}

void Httpd::relayer_imsg(Imsg &msg)
{
	if (!submitter_.handle(msg))
		fatalx("unexpected %s from relayer", imsg_type_name(msg.type()));
}

void Httpd::control_imsg(ImsgChannel &chan, Imsg &msg)
{
	if (!stats_handle_request(chan, msg) && !metrics_.handle(msg))
		fatalx("unexpected %s from control", imsg_type_name(msg.type()));
}

void Httpd::route(const std::shared_ptr<Exchange> &ex)
{
	std::string_view path = ex->path();
	auto it = endpoints_.find(std::string(path));
	if (it != endpoints_.end()) {
		std::shared_ptr<Endpoint> ep = it->second; /* survives a reload during the request */
		ep->handle(ex);
		return;
	}
	if (path == "/healthz")
		healthz(*ex);
	else if (path == "/metrics")
		metrics_.serve(ex);
	else
		ex->send(json_error(404, "not_found", "not found"));
}

void Httpd::healthz(Exchange &ex)
{
	std::string_view m = ex.method();
	if (m != "GET" && m != "HEAD") {
		Reply r = json_error(405, "method_not_allowed", "method not allowed");
		r.headers.emplace_back("Allow", "GET, HEAD");
		ex.send(r);
		return;
	}
	ex.send(text(200, "text/plain; charset=utf-8", "ok\n"));
}

void Httpd::shutdown()
{
	server_.close_listeners();
	drain_deadline_ = monotonic_now() + kDrainSeconds;
	drain_ev_ = event_new(base(), -1, EV_PERSIST, on_drain, this);
	struct timeval tv = {0, 100 * 1000};
	event_add(drain_ev_, &tv);
	drain();
}

void Httpd::on_drain(int, short, void *arg) noexcept
{
	static_cast<Httpd *>(arg)->drain();
}

void Httpd::drain()
{
	if (server_.waiting() > 0 && monotonic_now() < drain_deadline_)
		return;
	if (server_.waiting() > 0)
		log_warnx("shutting down with %zu requests unanswered", server_.waiting());
	event_del(drain_ev_);
	finish(0);
}

} // namespace

int httpd_main(int verbose)
{
	Httpd proc(verbose);
	return proc.run();
}

} // namespace posthorn
