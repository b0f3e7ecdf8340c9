/*
 * relayer: the only process holding provider credentials. Owns the spool,
 * schedules deliveries and talks to providers. Not chrooted (it needs CA
 * certificates and the resolver), runs as relay_user, not dumpable.
 *
 * Fronts submit with IMSG_SUBMIT; the document is untrusted input. In queue
 * mode the answer goes out once the message is durable (one directory fsync
 * shared by every submission of a loop iteration); in sync mode after the
 * first attempt and at most one retry, within SYNC_BUDGET_SECONDS.
 */
#include <sys/stat.h>

#include <algorithm>
#include <time.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "common/log.h"
#include "common/memfd.h"
#include "common/proc.h"
#include "common/stats.h"
#include "common/submit.h"
#include "relayer/ctl.h"
#include "relayer/http_client.h"
#include "relayer/queue.h"
#include "relayer/spool.h"

namespace posthorn {

namespace {

constexpr int SYNC_BUDGET_SECONDS = 10;
constexpr int DRAIN_SECONDS = 15;

struct PendingReply {
	ImsgChannel *chan;
	uint64_t reqid;
	SubmitResult result;
};

/* One sync-mode submission: first attempt, maybe one retry, then the answer. */
struct SyncJob {
	ImsgChannel *chan;
	uint64_t reqid;
	SpoolEntry entry;
	std::shared_ptr<Transport> transport;
	int64_t deadline;
	bool answered = false;
};

class Relayer final : public Child {
public:
	explicit Relayer(int verbose)
	    : Child(ProcId::relayer, verbose), spool_("."), http_(base()), queue_(base(), spool_)
	{
	}
	~Relayer() override;

protected:
	void configure(uint64_t generation, Config &&cfg, std::vector<Listener> &&) override;
	void peer(ProcId peer, Fd fd) override;
	void shutdown() override;
	bool drained() const;

private:
	void front_imsg(ImsgChannel &chan, ProcId from, Imsg &msg);
	void submit(ImsgChannel &chan, Imsg &msg);
	void reply(ImsgChannel *chan, uint64_t reqid, const SubmitResult &r);
	void flush_commits();
	static void on_flush(int, short, void *) noexcept;
	void arm_sync_deadline(const std::shared_ptr<SyncJob> &job);
	void sync_attempt(const std::shared_ptr<SyncJob> &job);
	void sync_done(const std::shared_ptr<SyncJob> &job, const DeliveryResult &r);
	void sync_answer(const std::shared_ptr<SyncJob> &job, SubmitStatus st,
	    const std::string &detail, const std::string &provider_id);

	Config cfg_;
	Spool spool_;
	HttpClient http_;
	DeliveryQueue queue_;
	TransportMap transports_;
	bool started_ = false;
	bool stopping_ = false;
	unsigned sync_active_ = 0; /* sync submissions not yet answered for good */
	std::vector<PendingReply> commits_;
	std::vector<SpoolEntry> committed_;
	event *flush_ev_ = nullptr;
	event *drain_ev_ = nullptr;
	int64_t drain_deadline_ = 0;
};

Relayer::~Relayer()
{
	if (flush_ev_)
		event_free(flush_ev_);
	if (drain_ev_)
		event_free(drain_ev_);
}

/*
 * Drain: nothing new starts; deliveries in flight get up to DRAIN_SECONDS to
 * finish so a provider that accepted a message does not see it again after
 * the restart. Whatever is still running then stays in the spool.
 */
bool Relayer::drained() const
{
	return queue_.total_in_flight() == 0 && sync_active_ == 0;
}

void Relayer::shutdown()
{
	stopping_ = true;
	queue_.stop();
	if (!drain_ev_) {
		drain_deadline_ = time(nullptr) + DRAIN_SECONDS;
		drain_ev_ = event_new(base(), -1, EV_PERSIST, [](int, short, void *arg) noexcept {
			auto *self = static_cast<Relayer *>(arg);
			if (self->drained() || time(nullptr) >= self->drain_deadline_)
				self->finish(0);
		}, this);
		struct timeval tv = {0, 50000};
		event_add(drain_ev_, &tv);
	}
	if (drained())
		finish(0);
}

void Relayer::configure(uint64_t generation, Config &&cfg, std::vector<Listener> &&)
{
	cfg_ = std::move(cfg);
	TransportMap transports;
	for (TransportConfig &tc : cfg_.transports) {
		if (tc.type == TransportType::smtp && tc.helo.empty())
			tc.helo = cfg_.global.hostname; /* posthorn.conf(5): helo defaults to hostname */
		transports[tc.name] = std::shared_ptr<Transport>(make_transport(tc, http_));
	}
	transports_ = transports;
	QueueSettings qs;
	qs.lifetime = cfg_.global.queue_lifetime;
	qs.retry_initial = cfg_.global.retry_initial;
	qs.retry_max = cfg_.global.retry_max;
	if (!started_) {
		std::string why;
		if (!spool_.open(why))
			fatalx("spool %s: %s", cfg_.global.spool.c_str(), why.c_str());
		flush_ev_ = event_new(base(), -1, 0, on_flush, this);
		SpoolRecovery rec = spool_.recover();
		log_event(LogLevel::info, "spool_recovered",
		    {{"messages", rec.entries.size()}, {"removed_partial", rec.removed_tmp},
			{"quarantined", rec.quarantined}});
		for (SpoolEntry &e : rec.entries)
			queue_.add(std::move(e));
		started_ = true;
	}
	queue_.configure(std::move(transports), qs);
	log_event(LogLevel::debug, "relayer_configured",
	    {{"generation", generation}, {"transports", cfg_.transports.size()}});
}

void Relayer::peer(ProcId peer, Fd fd)
{
	auto chan = std::make_unique<ImsgChannel>(
	    base(), std::move(fd),
	    [this, peer](ImsgChannel &c, Imsg &m) { front_imsg(c, peer, m); },
	    [peer](ImsgChannel &) { log_debug("channel to %s closed", proc_name(peer)); });
	/* Channels live as long as the process: a dead one just refuses to compose. */
	chan->name = proc_name(peer);
	peers_.push_back(std::move(chan));
}

void Relayer::front_imsg(ImsgChannel &chan, ProcId from, Imsg &msg)
{
	switch (msg.type()) {
	case IMSG_SUBMIT:
		if (from != ProcId::smtpd && from != ProcId::httpd)
			fatalx("IMSG_SUBMIT from %s", proc_name(from));
		submit(chan, msg);
		break;
	default:
		if (from == ProcId::control && relayer_ctl_imsg(chan, msg, queue_))
			break;
		fatalx("unexpected %s from %s", imsg_type_name(msg.type()), proc_name(from));
	}
}

void Relayer::reply(ImsgChannel *chan, uint64_t reqid, const SubmitResult &r)
{
	/* A front that is gone gets nothing; a spooled message is still delivered. */
	chan->compose(IMSG_SUBMIT_RESULT, submit_result_encode(reqid, r));
}

void Relayer::submit(ImsgChannel &chan, Imsg &msg)
{
	ImsgReader rd(msg);
	uint64_t reqid = rd.u64();
	rd.end();
	SubmitResult res;
	std::string doc, why;
	SpoolEntry e;
	/* The front is a trusted process but its document is untrusted input. */
	if (!msg.fd || !memfd_is_sealed(msg.fd.get()) ||
	    !memfd_read(msg.fd.get(), doc, MESSAGE_MAX_DOCUMENT))
		why = "message document missing, unsealed or too large";
	else if (!message_from_json(doc, e.msg, why))
		;
	else if (!transports_.count(e.msg.transport))
		why = "unknown transport";
	else if (spool_.contains(e.msg.id) || queue_.contains(e.msg.id))
		why = "duplicate submission id";
	res.submission_id = e.msg.id;
	if (!why.empty()) {
		res.status = SubmitStatus::rejected;
		res.detail = why;
		log_event(LogLevel::warn, "submission_refused", {{"from", chan.name}, {"error", why}});
		reply(&chan, reqid, res);
		return;
	}
	e.queued_at = time(nullptr);
	e.next_attempt = e.queued_at;
	if (!spool_.write(e, why)) {
		log_event(LogLevel::error, "spool_write_failed",
		    {{"submission_id", e.msg.id}, {"error", why}});
		res.status = SubmitStatus::temp_fail;
		res.detail = "queue unavailable";
		reply(&chan, reqid, res);
		return;
	}
	res.status = SubmitStatus::queued;
	commits_.push_back({&chan, reqid, res});
	committed_.push_back(std::move(e));
	/* Every submission read in this loop iteration shares one directory fsync. */
	event_active(flush_ev_, EV_TIMEOUT, 0);
}

void Relayer::on_flush(int, short, void *arg) noexcept
{
	static_cast<Relayer *>(arg)->flush_commits();
}

void Relayer::flush_commits()
{
	std::string why;
	bool ok = spool_.sync(why);
	std::vector<PendingReply> replies = std::move(commits_);
	std::vector<SpoolEntry> entries = std::move(committed_);
	commits_.clear();
	committed_.clear();
	for (size_t i = 0; i < entries.size(); i++) {
		PendingReply &p = replies[i];
		SpoolEntry &e = entries[i];
		if (!ok) {
			spool_.remove(e.msg.id);
			p.result.status = SubmitStatus::temp_fail;
			p.result.detail = "queue unavailable";
			log_event(LogLevel::error, "spool_write_failed",
			    {{"submission_id", e.msg.id}, {"error", why}});
			reply(p.chan, p.reqid, p.result);
			continue;
		}
		log_event(LogLevel::info, "submission_queued",
		    {{"submission_id", e.msg.id}, {"endpoint", e.msg.source},
			{"transport", e.msg.transport}, {"delivery", to_string(e.msg.delivery)},
			{"recipients", e.msg.recipients.size()}});
		if (e.msg.delivery == Delivery::queue) {
			reply(p.chan, p.reqid, p.result);
			queue_.add(std::move(e));
			continue;
		}
		auto tit = transports_.find(e.msg.transport);
		if (queue_.paused(e.msg.transport) || tit == transports_.end()) {
			/*
			 * posthornctl pause: the transport starts nothing new, sync mode
			 * included. A reload read in the same loop iteration may have
			 * removed the transport since submit() checked it.
			 */
			spool_.remove(e.msg.id);
			p.result.status = SubmitStatus::temp_fail;
			p.result.detail = tit == transports_.end() ? "unknown transport" : "delivery paused";
			reply(p.chan, p.reqid, p.result);
			continue;
		}
		auto job = std::make_shared<SyncJob>();
		sync_active_++;
		job->chan = p.chan;
		job->reqid = p.reqid;
		job->transport = tit->second;
		job->deadline = time(nullptr) + SYNC_BUDGET_SECONDS;
		job->entry = std::move(e);
		arm_sync_deadline(job);
		sync_attempt(job);
	}
}

void Relayer::arm_sync_deadline(const std::shared_ptr<SyncJob> &job)
{
	struct Deadline {
		Relayer *self;
		std::shared_ptr<SyncJob> job;
	};
	struct timeval tv = {SYNC_BUDGET_SECONDS, 0};
	event_base_once(base(), -1, EV_TIMEOUT, [](int, short, void *arg) noexcept {
		auto *d = static_cast<Deadline *>(arg);
		/* The attempt may still finish; the client already has its answer. */
		d->self->sync_answer(d->job, SubmitStatus::temp_fail, "delivery timed out", "");
		delete d;
	}, new Deadline{this, job}, &tv);
}

void Relayer::sync_attempt(const std::shared_ptr<SyncJob> &job)
{
	job->entry.attempts++;
	queue_.note_started(job->transport->name());
	job->transport->deliver(job->entry.msg, [this, job](DeliveryResult r) { sync_done(job, r); });
}

void Relayer::sync_done(const std::shared_ptr<SyncJob> &job, const DeliveryResult &r)
{
	const Message &m = job->entry.msg;
	queue_.note_finished(job->transport->name());
	process_stats().add("posthorn_delivery_attempts_total", {m.transport, to_string(r.outcome)});
	log_event(r.outcome == DeliveryOutcome::sent ? LogLevel::info : LogLevel::warn,
	    "delivery_attempt",
	    {{"submission_id", m.id}, {"transport", m.transport}, {"attempt", job->entry.attempts},
		{"result", to_string(r.outcome)}, {"status", r.status}, {"detail", r.detail}});
	/* Retry-After is clamped as in queue mode; the 10 s budget bounds it further. */
	long wait = r.retry_after >= 0
	    ? std::clamp<long>(r.retry_after, 1, static_cast<long>(cfg_.global.retry_max))
	    : 1;
	/* No retry once stopping: the client gets its answer before the drain ends. */
	if (r.outcome == DeliveryOutcome::transient && job->entry.attempts == 1 && !stopping_ &&
	    time(nullptr) + wait < job->deadline) {
		struct Retry {
			Relayer *self;
			std::shared_ptr<SyncJob> job;
		};
		auto *retry = new Retry{this, job};
		struct timeval tv = {static_cast<time_t>(wait), 0};
		event_base_once(base(), -1, EV_TIMEOUT, [](int, short, void *arg) noexcept {
			auto *rt = static_cast<Retry *>(arg);
			rt->self->sync_attempt(rt->job);
			delete rt;
		}, retry, &tv);
		return;
	}
	spool_.remove(m.id);
	sync_active_--;
	switch (r.outcome) {
	case DeliveryOutcome::sent:
		log_event(LogLevel::info, "submission_sent",
		    {{"submission_id", m.id}, {"endpoint", m.source}, {"transport", m.transport},
			{"provider_id", r.provider_id}, {"attempts", job->entry.attempts}});
		sync_answer(job, SubmitStatus::sent, "", r.provider_id);
		break;
	case DeliveryOutcome::permanent:
	case DeliveryOutcome::transient:
		log_event(LogLevel::error, "submission_failed",
		    {{"submission_id", m.id}, {"endpoint", m.source}, {"transport", m.transport},
			{"error_class", r.outcome == DeliveryOutcome::permanent ? "permanent"
										 : "transient"},
			{"attempts", job->entry.attempts}, {"error", r.detail}});
		sync_answer(job,
		    r.outcome == DeliveryOutcome::permanent ? SubmitStatus::perm_fail
							    : SubmitStatus::temp_fail,
		    r.detail, "");
		break;
	}
}

void Relayer::sync_answer(const std::shared_ptr<SyncJob> &job, SubmitStatus st,
    const std::string &detail, const std::string &provider_id)
{
	if (job->answered)
		return;
	job->answered = true;
	SubmitResult res;
	res.status = st;
	res.submission_id = job->entry.msg.id;
	res.detail = detail;
	res.provider_id = provider_id;
	reply(job->chan, job->reqid, res);
}

} // namespace

int relayer_main(int verbose)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	Relayer proc(verbose);
	return proc.run();
}

} // namespace posthorn
