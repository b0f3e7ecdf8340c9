/*
 * control: serves posthornctl(8) on the control socket the parent created
 * (mode 0660, root and the group of `user`). Chrooted, unprivileged, holds
 * no secrets.
 *
 * A client connects, is checked (SO_PEERCRED: root or a member of the
 * socket's group; a per-uid and a total cap), and sends one command at a
 * time. Control answers `show status` itself, gathers `show stats` from
 * smtpd, httpd and relayer, forwards the queue commands to the relayer and
 * `reload` and `log` to the parent, and relays each answer back. A client is
 * untrusted: anything malformed, unexpected or too slow to read closes that
 * client and nothing else.
 */
#include <sys/socket.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include <map>
#include <memory>

#include <event2/event.h>

#include "common/ctl.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/stats.h"
#include "posthornd/control.h"

namespace posthorn {

namespace {

struct EventDeleter {
	void operator()(event *ev) const noexcept { event_free(ev); }
};
using EventPtr = std::unique_ptr<event, EventDeleter>;

bool peer_cred(int fd, PeerCred &out)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) == -1)
		return false;
	out.pid = uc.pid;
	out.uid = uc.uid;
	out.gid = uc.gid;
	out.groups.resize(64);
	len = static_cast<socklen_t>(out.groups.size() * sizeof(gid_t));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, out.groups.data(), &len) == -1) {
		if (errno != ERANGE)
			return false;
		out.groups.resize(len / sizeof(gid_t));
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, out.groups.data(), &len) == -1)
			return false;
	}
	out.groups.resize(len / sizeof(gid_t));
	return true;
}

/* "IMSG_CTL_SHOW_QUEUE" -> "show_queue", for log lines. */
std::string command_name(uint32_t type)
{
	std::string name = imsg_type_name(type);
	if (name.starts_with("IMSG_CTL_"))
		name.erase(0, 9);
	for (char &c : name)
		c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
	return name;
}

/* One answer on a fresh socket, then close: for clients we do not serve. */
void refuse(Fd fd, const std::string &why)
{
	CtlReply r{0, false, why, ""};
	std::vector<uint8_t> payload;
	Fd doc;
	ctl_reply_frame(r, payload, doc);
	ImsgBuffer buf(fd.get());
	if (buf.compose(IMSG_CTL_REPLY, payload))
		buf.flush();
}

class Control final : public Child {
public:
	explicit Control(int verbose) : Child(ProcId::control, verbose)
	{
		gc_.reset(event_new(base(), -1, 0, on_gc, this));
	}
	~Control() override;

protected:
	void configure(uint64_t generation, Config &&cfg, std::vector<Listener> &&listeners) override;
	void peer(ProcId peer, Fd fd) override;
	bool parent_imsg(Imsg &msg) override;
	void shutdown() override;

private:
	struct Client {
		Control *self;
		uint64_t id;
		PeerCred cred;
		std::unique_ptr<ImsgChannel> chan;
		EventPtr idle;
		bool busy = false;    /* a command is being answered */
		bool monitor = false; /* streaming events until it disconnects */
	};
	/* A command waiting for other processes. */
	struct Request {
		Control *self;
		uint64_t id;
		uint64_t client = 0;        /* 0: a process asked (asker) */
		ProcId asker = ProcId::control;
		uint64_t asker_reqid = 0;
		bool stats = false;
		unsigned waiting = 0;       /* statistics answers still to come */
		StatsSnapshot snapshot;
		EventPtr timer;
	};

	/* accepting */
	void start_accepting();
	static void on_accept(int, short, void *arg) noexcept;
	static void on_accept_resume(int, short, void *arg) noexcept;
	void accept_client();
	size_t clients_of(uid_t uid) const;
	/* clients */
	void client_imsg(Client &cl, Imsg &msg);
	bool check_args(uint32_t type, const CtlCommand &cmd, std::string &why) const;
	void answer(uint64_t client, const CtlReply &r);
	void deliver(uint64_t client, Imsg &reply);
	void answered(Client &cl);
	void arm_idle(Client &cl);
	static void on_idle(int, short, void *arg) noexcept;
	void close_client(uint64_t id, const char *why);
	static void on_gc(int, short, void *arg) noexcept;
	Client *find_client(uint64_t id);
	/* commands */
	void forward(Client &cl, ImsgChannel *to, uint32_t type, CtlCommand cmd);
	void start_monitor(Client &cl);
	void gather_stats(uint64_t client, ProcId asker, uint64_t asker_reqid);
	void stats_answer(Imsg &msg);
	void finish_stats(Request &rq);
	Request &new_request(uint64_t client, int seconds);
	static void on_request_timeout(int, short, void *arg) noexcept;
	/* the other processes */
	void peer_imsg(ProcId from, Imsg &msg);
	void forwarded_reply(Imsg &msg);
	void monitor_event(Imsg &msg);
	ImsgChannel *peer_chan(ProcId id) const;

	Config cfg_;
	ControlInfo info_;
	Fd socket_;
	EventPtr accept_ev_, accept_pause_, gc_;
	std::map<ProcId, ImsgChannel *> peer_chans_;
	std::map<uint64_t, std::unique_ptr<Client>> clients_;
	std::vector<std::unique_ptr<Client>> graveyard_;
	std::map<uint64_t, Request> requests_;
	uint64_t next_client_ = 1;
	uint64_t next_reqid_ = 1;
	size_t monitors_ = 0;
};

Control::~Control()
{
	requests_.clear();
	clients_.clear();
	graveyard_.clear();
}

void Control::configure(uint64_t generation, Config &&cfg, std::vector<Listener> &&listeners)
{
	cfg_ = std::move(cfg);
	/* The control socket is the same for every generation; keep the first. */
	if (!socket_ && !listeners.empty()) {
		socket_ = std::move(listeners.front().fd);
		start_accepting();
	}
	log_event(LogLevel::debug, "control_configured", {{"generation", generation}});
}

void Control::peer(ProcId peer, Fd fd)
{
	auto chan = std::make_unique<ImsgChannel>(
	    base(), std::move(fd), [this, peer](ImsgChannel &, Imsg &m) { peer_imsg(peer, m); },
	    [this, peer](ImsgChannel &) {
		    log_debug("channel to %s closed", proc_name(peer));
		    peer_chans_.erase(peer);
	    });
	chan->name = proc_name(peer);
	peer_chans_[peer] = chan.get();
	peers_.push_back(std::move(chan));
}

bool Control::parent_imsg(Imsg &msg)
{
	switch (msg.type()) {
	case IMSG_CTL_INFO:
		info_ = control_info_decode(msg);
		return true;
	case IMSG_CTL_REPLY:
		forwarded_reply(msg);
		return true;
	default:
		return Child::parent_imsg(msg);
	}
}

void Control::shutdown()
{
	accept_ev_.reset();
	accept_pause_.reset();
	while (!clients_.empty())
		close_client(clients_.begin()->first, nullptr);
	finish(0);
}

/*
 * Accepting
 */

void Control::start_accepting()
{
	accept_ev_.reset(event_new(base(), socket_.get(), EV_READ | EV_PERSIST, on_accept, this));
	event_add(accept_ev_.get(), nullptr);
}

void Control::on_accept(int, short, void *arg) noexcept
{
	static_cast<Control *>(arg)->accept_client();
}

void Control::on_accept_resume(int, short, void *arg) noexcept
{
	auto *self = static_cast<Control *>(arg);
	event_add(self->accept_ev_.get(), nullptr);
}

size_t Control::clients_of(uid_t uid) const
{
	size_t n = 0;
	for (const auto &[id, cl] : clients_)
		n += cl->cred.uid == uid;
	return n;
}

void Control::accept_client()
{
	Fd fd(accept4(socket_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
	if (!fd) {
		if (errno == EMFILE || errno == ENFILE) {
			/* Out of descriptors: stop accepting for a second rather than spin. */
			log_warn("control: accept");
			event_del(accept_ev_.get());
			accept_pause_.reset(evtimer_new(base(), on_accept_resume, this));
			struct timeval tv = {1, 0};
			evtimer_add(accept_pause_.get(), &tv);
		} else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			log_warn("control: accept");
		return;
	}
	PeerCred cred;
	if (!peer_cred(fd.get(), cred)) {
		log_warn("control: peer credentials");
		return;
	}
	if (!control_allowed(info_, getuid(), cred)) {
		log_event(LogLevel::warn, "control_refused",
		    {{"uid", cred.uid}, {"pid", cred.pid}, {"reason", "not root or in the group"}});
		refuse(std::move(fd), "permission denied");
		return;
	}
	if (clients_.size() >= CONTROL_MAX_CLIENTS || clients_of(cred.uid) >= CONTROL_MAX_PER_UID) {
		log_event(LogLevel::warn, "control_refused",
		    {{"uid", cred.uid}, {"pid", cred.pid}, {"reason", "too many connections"}});
		refuse(std::move(fd), "too many connections");
		return;
	}
	uint64_t id = next_client_++;
	auto cl = std::make_unique<Client>(Client{this, id, cred, nullptr, nullptr});
	cl->chan = std::make_unique<ImsgChannel>(
	    base(), std::move(fd),
	    [this, id](ImsgChannel &, Imsg &m) {
		    if (Client *c = find_client(id))
			    client_imsg(*c, m);
	    },
	    [this, id](ImsgChannel &) { close_client(id, nullptr); }, CONTROL_CLIENT_QUEUE);
	cl->chan->name = "control client " + std::to_string(id);
	cl->chan->trusted = false;
	arm_idle(*cl);
	log_event(LogLevel::debug, "control_connected",
	    {{"client", id}, {"uid", cred.uid}, {"pid", cred.pid}});
	clients_[id] = std::move(cl);
}

/*
 * Clients
 */

Control::Client *Control::find_client(uint64_t id)
{
	auto it = clients_.find(id);
	return it == clients_.end() ? nullptr : it->second.get();
}

void Control::arm_idle(Client &cl)
{
	if (!cl.idle)
		cl.idle.reset(evtimer_new(base(), on_idle, &cl));
	struct timeval tv = {CONTROL_IDLE_SECONDS, 0};
	evtimer_add(cl.idle.get(), &tv);
}

void Control::on_idle(int, short, void *arg) noexcept
{
	auto *cl = static_cast<Client *>(arg);
	cl->self->close_client(cl->id, "idle");
}

/*
 * Closing happens from inside the client's own callbacks: the client moves
 * to the graveyard and is destroyed from the loop, never under its caller.
 */
void Control::close_client(uint64_t id, const char *why)
{
	auto it = clients_.find(id);
	if (it == clients_.end())
		return;
	std::unique_ptr<Client> cl = std::move(it->second);
	clients_.erase(it);
	if (why)
		log_event(LogLevel::warn, "control_client_closed",
		    {{"client", id}, {"uid", cl->cred.uid}, {"reason", why}});
	cl->idle.reset();
	cl->chan->pause_reading();
	if (cl->monitor && --monitors_ == 0)
		if (ImsgChannel *relayer = peer_chan(ProcId::relayer))
			relayer->compose(IMSG_CTL_MONITOR, ctl_command_encode({0, "", false}, true));
	graveyard_.push_back(std::move(cl));
	event_active(gc_.get(), EV_TIMEOUT, 0);
}

void Control::on_gc(int, short, void *arg) noexcept
{
	static_cast<Control *>(arg)->graveyard_.clear();
}

void Control::client_imsg(Client &cl, Imsg &msg)
{
	CtlCommand cmd;
	if (cl.busy || msg.fd || !ctl_is_client_command(msg.type()) ||
	    !ctl_command_decode(msg, cmd, false, false)) {
		close_client(cl.id, "malformed or unexpected message");
		return;
	}
	cl.busy = true;
	evtimer_del(cl.idle.get());
	bool changes = msg.type() >= IMSG_CTL_PAUSE;
	log_event(changes ? LogLevel::info : LogLevel::debug, "control_command",
	    {{"client", cl.id}, {"uid", cl.cred.uid}, {"command", command_name(msg.type())},
		{"arg", cmd.arg}});
	std::string why;
	if (!check_args(msg.type(), cmd, why)) {
		answer(cl.id, {0, false, why, ""});
		return;
	}
	switch (msg.type()) {
	case IMSG_CTL_SHOW_STATUS:
		answer(cl.id, {0, true, "",
		    control_status_json(info_, cfg_, generation(), time(nullptr))});
		break;
	case IMSG_CTL_SHOW_STATS:
		gather_stats(cl.id, ProcId::control, 0);
		break;
	case IMSG_CTL_MONITOR:
		start_monitor(cl);
		break;
	case IMSG_CTL_RELOAD:
	case IMSG_CTL_LOG_VERBOSE:
		forward(cl, &parent(), msg.type(), std::move(cmd));
		break;
	default:
		forward(cl, peer_chan(ProcId::relayer), msg.type(), std::move(cmd));
	}
}

bool Control::check_args(uint32_t type, const CtlCommand &cmd, std::string &why) const
{
	if (cmd.flag && type != IMSG_CTL_SHOW_MESSAGE && type != IMSG_CTL_LOG_VERBOSE)
		why = "unexpected flag";
	else if (type == IMSG_CTL_SHOW_MESSAGE && !ctl_valid_target(cmd.arg, false))
		why = "not a submission id";
	else if ((type == IMSG_CTL_SCHEDULE || type == IMSG_CTL_REMOVE) &&
	    !ctl_valid_target(cmd.arg, true))
		why = "expected a submission id or \"all\"";
	else if (type == IMSG_CTL_PAUSE || type == IMSG_CTL_RESUME) {
		if (!cmd.arg.empty() && !cfg_.find_transport(cmd.arg))
			why = "no such transport";
	} else if (!cmd.arg.empty() && type != IMSG_CTL_SHOW_MESSAGE && type != IMSG_CTL_SCHEDULE &&
	    type != IMSG_CTL_REMOVE)
		why = "unexpected argument";
	return why.empty();
}

void Control::answer(uint64_t client, const CtlReply &r)
{
	Client *cl = find_client(client);
	if (!cl)
		return; /* gone while we worked: its answer goes nowhere */
	if (!ctl_reply_send(*cl->chan, r)) {
		close_client(client, "cannot queue the answer");
		return;
	}
	answered(*cl);
}

/* An answer from the relayer or the parent, passed on with its document. */
void Control::deliver(uint64_t client, Imsg &reply)
{
	Client *cl = find_client(client);
	if (!cl)
		return;
	if (!cl->chan->compose(IMSG_CTL_REPLY, reply.data, std::move(reply.fd))) {
		close_client(client, "cannot queue the answer");
		return;
	}
	answered(*cl);
}

void Control::answered(Client &cl)
{
	if (cl.monitor)
		return;
	cl.busy = false;
	arm_idle(cl);
}

/*
 * Commands
 */

Control::Request &Control::new_request(uint64_t client, int seconds)
{
	uint64_t id = next_reqid_++;
	Request &rq = requests_[id];
	rq.self = this;
	rq.id = id;
	rq.client = client;
	rq.timer.reset(evtimer_new(base(), on_request_timeout, &rq));
	struct timeval tv = {seconds, 0};
	evtimer_add(rq.timer.get(), &tv);
	return rq;
}

void Control::on_request_timeout(int, short, void *arg) noexcept
{
	auto *rq = static_cast<Request *>(arg);
	Control *self = rq->self;
	if (rq->stats) {
		log_warnx("control: statistics incomplete, %u process(es) did not answer",
		    rq->waiting);
		self->finish_stats(*rq);
		return;
	}
	uint64_t client = rq->client;
	self->requests_.erase(rq->id);
	self->answer(client, {0, false, "no answer in time", ""});
}

void Control::forward(Client &cl, ImsgChannel *to, uint32_t type, CtlCommand cmd)
{
	if (!to) {
		answer(cl.id, {0, false, "the process is not available", ""});
		return;
	}
	Request &rq = new_request(cl.id, CONTROL_REQUEST_SECONDS);
	cmd.reqid = rq.id;
	if (!to->compose(type, ctl_command_encode(cmd, true))) {
		requests_.erase(rq.id);
		answer(cl.id, {0, false, "busy, try again", ""});
	}
}

void Control::forwarded_reply(Imsg &msg)
{
	auto it = requests_.find(ctl_reply_reqid(msg));
	if (it == requests_.end() || it->second.stats)
		return; /* timed out already */
	uint64_t client = it->second.client;
	requests_.erase(it);
	deliver(client, msg);
}

void Control::start_monitor(Client &cl)
{
	ImsgChannel *relayer = peer_chan(ProcId::relayer);
	if (!relayer) {
		answer(cl.id, {0, false, "the relayer is not available", ""});
		return;
	}
	cl.monitor = true;
	if (monitors_++ == 0)
		relayer->compose(IMSG_CTL_MONITOR, ctl_command_encode({0, "", true}, true));
	answer(cl.id, {0, true, "", ""});
}

void Control::monitor_event(Imsg &msg)
{
	std::vector<uint64_t> slow;
	for (auto &[id, cl] : clients_)
		if (cl->monitor && !cl->chan->compose(IMSG_CTL_EVENT, msg.data))
			slow.push_back(id);
	for (uint64_t id : slow)
		close_client(id, "monitor client too slow");
}

/* Statistics: one request to each process, merged as the answers come. */
void Control::gather_stats(uint64_t client, ProcId asker, uint64_t asker_reqid)
{
	Request &rq = new_request(client, CONTROL_STATS_SECONDS);
	rq.stats = true;
	rq.asker = asker;
	rq.asker_reqid = asker_reqid;
	for (ProcId id : {ProcId::smtpd, ProcId::httpd, ProcId::relayer}) {
		ImsgChannel *chan = peer_chan(id);
		if (id != asker && chan && stats_request(*chan, rq.id))
			rq.waiting++;
	}
	if (rq.waiting == 0)
		finish_stats(rq);
}

void Control::stats_answer(Imsg &msg)
{
	uint64_t reqid = 0;
	StatsSnapshot s;
	bool ok = stats_reply_decode(msg, reqid, s);
	auto it = requests_.find(reqid);
	if (it == requests_.end() || !it->second.stats)
		return; /* late */
	Request &rq = it->second;
	if (ok)
		stats_merge(rq.snapshot, s);
	else
		log_warnx("control: malformed statistics");
	if (--rq.waiting == 0)
		finish_stats(rq);
}

void Control::finish_stats(Request &rq)
{
	if (rq.client != 0)
		answer(rq.client, {0, true, "", stats_to_json(rq.snapshot)});
	else if (ImsgChannel *chan = peer_chan(rq.asker))
		stats_reply(*chan, rq.asker_reqid, rq.snapshot);
	requests_.erase(rq.id);
}

/*
 * The other processes: trusted, so anything unexpected is fatal.
 */

ImsgChannel *Control::peer_chan(ProcId id) const
{
	auto it = peer_chans_.find(id);
	return it == peer_chans_.end() ? nullptr : it->second;
}

void Control::peer_imsg(ProcId from, Imsg &msg)
{
	switch (msg.type()) {
	case IMSG_STATS_REPLY:
		stats_answer(msg);
		return;
	case IMSG_STATS_REQUEST:
		/* httpd's /metrics: everybody else's counters (httpd adds its own). */
		if (from == ProcId::httpd || from == ProcId::smtpd) {
			ImsgReader r(msg);
			uint64_t reqid = r.u64();
			r.end();
			gather_stats(0, from, reqid);
			return;
		}
		break;
	case IMSG_CTL_REPLY:
		if (from == ProcId::relayer) {
			forwarded_reply(msg);
			return;
		}
		break;
	case IMSG_CTL_EVENT:
		if (from == ProcId::relayer) {
			monitor_event(msg);
			return;
		}
		break;
	}
	fatalx("unexpected %s from %s", imsg_type_name(msg.type()), proc_name(from));
}

} // namespace

int control_main(int verbose)
{
	Control proc(verbose);
	return proc.run();
}

} // namespace posthorn
