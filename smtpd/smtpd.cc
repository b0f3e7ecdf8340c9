/*
 * smtpd: the SMTP front. Chrooted, unprivileged; receives its listening
 * sockets and listener settings from the parent (every generation: the new
 * listener set replaces the old, sessions in progress keep their settings),
 * accepts sessions within max_sessions / max_sessions_per_ip, and submits
 * their messages to the relayer.
 *
 *   smtpd_main()   start-up: TLS and charset tables before the chroot
 *   configure()    a generation's listeners
 *   peer()         the relayer channel: IMSG_SUBMIT_RESULT to the Submitter
 *   shutdown()     stop accepting, 421 to idle sessions, let transactions
 *                  finish for up to 15 s, exit
 */
#include <sys/socket.h>
#include <tls.h>

#include <map>
#include <unordered_map>

#include "common/log.h"
#include "common/stats.h"
#include "common/proc.h"
#include "common/submit.h"
#include "smtpd/ev.h"
#include "smtpd/listener.h"
#include "smtpd/metrics.h"
#include "smtpd/mime.h"
#include "smtpd/session.h"

namespace posthorn {

namespace {

constexpr double DRAIN_SECONDS = 15;
constexpr double SWEEP_SECONDS = 60;

class Smtpd final : public Child, public SessionHost {
public:
	explicit Smtpd(int verbose);

	Submitter &submitter() override { return submitter_; }
	void session_done(uint64_t serial) override;
	Session *find_session(uint64_t serial) override;

protected:
	void configure(uint64_t generation, Config &&cfg, std::vector<Listener> &&listeners) override;
	void peer(ProcId peer, Fd fd) override;
	void shutdown() override;

private:
	std::shared_ptr<ListenerCtx> make_ctx(const SmtpListenerConfig &l, const Config &cfg);
	void accept(const std::shared_ptr<const ListenerCtx> &ctx, Fd fd, std::string client);
	bool admit(const ListenerCtx &ctx, const std::string &client, const char *&why);
	void refuse(const ListenerCtx &ctx, Fd fd, const std::string &client, const char *why);
	void relayer_closed();
	void control_peer(Fd fd);
	static void on_reap(int, short, void *) noexcept;
	static void on_drain_deadline(int, short, void *) noexcept;
	static void on_sweep(int, short, void *) noexcept;

	Submitter submitter_;
	std::map<std::string, ListenerState> states_; /* by listener name, across reloads */
	std::vector<std::unique_ptr<SmtpListener>> listeners_;
	std::unordered_map<uint64_t, std::unique_ptr<Session>> sessions_;
	std::vector<std::unique_ptr<Session>> graveyard_;
	EventPtr reap_ev_, drain_ev_, sweep_ev_;
	uint64_t next_serial_ = 1;
	bool stopping_ = false;
};

Smtpd::Smtpd(int verbose) : Child(ProcId::smtpd, verbose), submitter_(base())
{
	/* Before the chroot: libtls/OpenSSL initialisation and iconv's modules. */
	if (tls_init() == -1)
		fatalx("tls_init failed");
	charset_preload();
	metric_sessions_active(0);
	reap_ev_.reset(event_new(base(), -1, 0, on_reap, this));
	drain_ev_.reset(evtimer_new(base(), on_drain_deadline, this));
	sweep_ev_.reset(event_new(base(), -1, EV_PERSIST, on_sweep, this));
	struct timeval tv = {static_cast<time_t>(SWEEP_SECONDS), 0};
	event_add(sweep_ev_.get(), &tv);
}

std::shared_ptr<ListenerCtx> Smtpd::make_ctx(const SmtpListenerConfig &l, const Config &cfg)
{
	auto ctx = std::make_shared<ListenerCtx>();
	ctx->cfg = l;
	ctx->hostname = cfg.global.hostname;
	ctx->strip_client_ip = cfg.global.strip_client_ip;
	ctx->state = &states_[l.name];
	if (l.tls != TlsMode::none) {
		std::string why;
		/* The parent loaded these PEMs with the same library: failing here is a broken invariant. */
		ctx->tls = TlsServer::create(l.tls_cert_pem, l.tls_key_pem, l.client_cert_ca_pem, why);
		if (!ctx->tls)
			fatalx("smtp listener %s: TLS: %s", l.name.c_str(), why.c_str());
	}
	/* The secrets stay in the TLS context; drop our copies of the PEMs. */
	ctx->cfg.tls_key_pem.clear();
	ctx->cfg.tls_cert_pem.clear();
	ctx->cfg.client_cert_ca_pem.clear();
	return ctx;
}

void Smtpd::configure(uint64_t generation, Config &&cfg, std::vector<Listener> &&listeners)
{
	std::map<std::string, std::shared_ptr<ListenerCtx>> ctxs;
	for (const SmtpListenerConfig &l : cfg.smtp)
		ctxs[l.name] = make_ctx(l, cfg);
	std::vector<std::unique_ptr<SmtpListener>> fresh;
	for (Listener &l : listeners) {
		auto it = ctxs.find(l.name);
		if (l.kind != "smtp" || it == ctxs.end())
			fatalx("smtpd: unexpected %s listener %s", l.kind.c_str(), l.name.c_str());
		if (stopping_)
			continue;
		fresh.push_back(std::make_unique<SmtpListener>(base(), std::move(l.fd), it->second,
		    [this](const std::shared_ptr<const ListenerCtx> &c, Fd fd, std::string client) {
			    accept(c, std::move(fd), std::move(client));
		    }));
	}
	listeners_ = std::move(fresh);
	log_event(LogLevel::debug, "smtpd_configured",
	    {{"generation", generation}, {"listeners", listeners_.size()}, {"sessions", sessions_.size()}});
}

bool Smtpd::admit(const ListenerCtx &ctx, const std::string &client, const char *&why)
{
	const ListenerState &st = *ctx.state;
	if (st.counters.sessions_active >= ctx.cfg.max_sessions) {
		why = "too many sessions";
		return false;
	}
	auto it = st.sessions_per_ip.find(client);
	if (it != st.sessions_per_ip.end() && it->second >= ctx.cfg.max_sessions_per_ip) {
		why = "too many sessions from this address";
		return false;
	}
	return true;
}

void Smtpd::refuse(const ListenerCtx &ctx, Fd fd, const std::string &client, const char *why)
{
	ctx.state->counters.sessions_refused++;
	if (ctx.cfg.tls != TlsMode::implicit) {
		std::string r = "421 4.7.0 " + ctx.hostname + " " + why + ", try again later\r\n";
		(void)!send(fd.get(), r.data(), r.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
	}
	log_event(LogLevel::warn, "smtp_session_refused",
	    {{"session_id", new_session_id()}, {"listener", ctx.cfg.name},
	    {"client", ctx.strip_client_ip ? "" : client}, {"reason", why}});
}

void Smtpd::accept(const std::shared_ptr<const ListenerCtx> &ctx, Fd fd, std::string client)
{
	const char *why = nullptr;
	if (stopping_)
		return;
	if (!admit(*ctx, client, why)) {
		refuse(*ctx, std::move(fd), client, why);
		return;
	}
	ListenerState &st = *ctx->state;
	st.counters.sessions_active++;
	st.counters.sessions_total++;
	st.sessions_per_ip[client]++;
	metric_sessions_active(sessions_.size() + 1);
	uint64_t serial = next_serial_++;
	auto s = std::make_unique<Session>(base(), *this, ctx, std::move(fd), std::move(client), serial);
	Session *raw = s.get();
	sessions_.emplace(serial, std::move(s));
	raw->start();
}

Session *Smtpd::find_session(uint64_t serial)
{
	auto it = sessions_.find(serial);
	return it == sessions_.end() ? nullptr : it->second.get();
}

void Smtpd::session_done(uint64_t serial)
{
	auto it = sessions_.find(serial);
	if (it == sessions_.end())
		return;
	Session &s = *it->second;
	ListenerState &st = *s.listener().state;
	st.counters.sessions_active--;
	auto ip = st.sessions_per_ip.find(s.client());
	if (ip != st.sessions_per_ip.end() && --ip->second == 0)
		st.sessions_per_ip.erase(ip);
	graveyard_.push_back(std::move(it->second));
	sessions_.erase(it);
	metric_sessions_active(sessions_.size());
	event_active(reap_ev_.get(), 0, 0);
}

void Smtpd::on_reap(int, short, void *arg) noexcept
{
	auto *self = static_cast<Smtpd *>(arg);
	self->graveyard_.clear();
	if (self->stopping_ && self->sessions_.empty())
		self->finish(0);
}

void Smtpd::on_sweep(int, short, void *arg) noexcept
{
	auto *self = static_cast<Smtpd *>(arg);
	time_t now = monotonic_now();
	for (auto &[name, st] : self->states_)
		st.throttle.expire(now);
}

void Smtpd::peer(ProcId peer, Fd fd)
{
	if (peer == ProcId::control) {
		control_peer(std::move(fd));
		return;
	}
	if (peer != ProcId::relayer) {
		Child::peer(peer, std::move(fd));
		return;
	}
	auto chan = std::make_unique<ImsgChannel>(
	    base(), std::move(fd),
	    [this](ImsgChannel &, Imsg &m) {
		    if (!submitter_.handle(m))
			    fatalx("smtpd: unexpected %s from relayer", imsg_type_name(m.type()));
	    },
	    [this](ImsgChannel &) { relayer_closed(); });
	chan->name = "relayer";
	submitter_.attach(chan.get());
	peers_.push_back(std::move(chan));
}

/* The control process asks for statistics; nothing else. */
void Smtpd::control_peer(Fd fd)
{
	auto chan = std::make_unique<ImsgChannel>(
	    base(), std::move(fd),
	    [](ImsgChannel &c, Imsg &m) {
		    if (!stats_handle_request(c, m))
			    fatalx("smtpd: unexpected %s from control", imsg_type_name(m.type()));
	    },
	    [](ImsgChannel &) { log_debug("channel to control closed"); });
	chan->name = "control";
	peers_.push_back(std::move(chan));
}

void Smtpd::relayer_closed()
{
	log_warnx("smtpd: the relayer closed its channel");
	submitter_.attach(nullptr);
	submitter_.fail_all("relayer unavailable");
}

void Smtpd::shutdown()
{
	if (stopping_)
		return;
	stopping_ = true;
	listeners_.clear();
	log_event(LogLevel::info, "smtpd_draining", {{"sessions", sessions_.size()}});
	if (sessions_.empty()) {
		finish(0);
		return;
	}
	for (auto &[serial, s] : sessions_)
		s->shutdown();
	evtimer_arm(drain_ev_.get(), DRAIN_SECONDS);
}

void Smtpd::on_drain_deadline(int, short, void *arg) noexcept
{
	auto *self = static_cast<Smtpd *>(arg);
	for (auto &[serial, s] : self->sessions_)
		s->abort("shutdown deadline");
	if (self->sessions_.empty())
		self->finish(0);
}

} // namespace

int smtpd_main(int verbose)
{
	Smtpd proc(verbose);
	return proc.run();
}

} // namespace posthorn
