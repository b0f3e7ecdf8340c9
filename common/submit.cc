#include "submit.h"

#include <event2/event.h>

#include "log.h"
#include "memfd.h"
#include "proc.h"

namespace posthorn {

namespace {
struct TimerArg {
	Submitter *self;
	uint64_t reqid;
};
} // namespace

const char *to_string(SubmitStatus s)
{
	switch (s) {
	case SubmitStatus::queued: return "queued";
	case SubmitStatus::sent: return "sent";
	case SubmitStatus::temp_fail: return "temp_fail";
	case SubmitStatus::perm_fail: return "perm_fail";
	case SubmitStatus::rejected: return "rejected";
	}
	return "unknown";
}

std::vector<uint8_t> submit_result_encode(uint64_t reqid, const SubmitResult &r)
{
	ImsgWriter w;
	/*
	 * Bounded as Submitter::handle() reads them (strictly), so neither a long
	 * provider text nor the id of a rejected document (echoed as the front
	 * sent it) can overflow one imsg or be fatal to the front.
	 */
	w.u64(reqid).u8(static_cast<uint8_t>(r.status)).str(r.submission_id.substr(0, 256));
	w.str(r.detail.substr(0, 1024)).str(r.provider_id.substr(0, 512));
	return w.data();
}

Submitter::Submitter(event_base *base, unsigned timeout_s) : base_(base), timeout_s_(timeout_s) {}

Submitter::~Submitter()
{
	for (auto &[id, p] : pending_) {
		delete static_cast<TimerArg *>(event_get_callback_arg(p.timer));
		event_free(p.timer);
	}
}

bool Submitter::submit(const Message &msg, Callback cb, std::string *why)
{
	std::string reason;
	if (!relayer_) {
		if (why)
			*why = "relayer unavailable";
		return false;
	}
	if (!message_validate(msg, reason)) {
		if (why)
			*why = reason;
		return false;
	}
	Fd doc = memfd_sealed("posthorn-message", message_to_json(msg));
	if (!doc) {
		if (why)
			*why = "cannot create message document";
		return false;
	}
	uint64_t reqid = next_id_++;
	ImsgWriter w;
	w.u64(reqid);
	if (!relayer_->compose(IMSG_SUBMIT, w, std::move(doc))) {
		if (why)
			*why = "relayer queue full";
		return false;
	}
	Pending p;
	p.cb = std::move(cb);
	TimerArg *arg = new TimerArg{this, reqid};
	p.timer = evtimer_new(base_, on_timeout, arg);
	struct timeval tv = {static_cast<time_t>(timeout_s_), 0};
	evtimer_add(p.timer, &tv);
	pending_.emplace(reqid, std::move(p));
	return true;
}

void Submitter::complete(uint64_t reqid, const SubmitResult &r)
{
	auto it = pending_.find(reqid);
	if (it == pending_.end())
		return; /* timed out earlier; the late answer has no one to go to */
	Callback cb = std::move(it->second.cb);
	delete static_cast<TimerArg *>(event_get_callback_arg(it->second.timer));
	event_free(it->second.timer);
	pending_.erase(it);
	cb(r);
}

void Submitter::on_timeout(int, short, void *arg) noexcept
{
	auto *t = static_cast<TimerArg *>(arg);
	SubmitResult r;
	r.status = SubmitStatus::temp_fail;
	r.detail = "relayer did not answer in time";
	t->self->complete(t->reqid, r);
}

bool Submitter::handle(Imsg &msg)
{
	if (msg.type() != IMSG_SUBMIT_RESULT)
		return false;
	ImsgReader rd(msg);
	uint64_t reqid = rd.u64();
	uint8_t status = rd.u8();
	SubmitResult r;
	r.submission_id = rd.str(256);
	r.detail = rd.str(1024);
	r.provider_id = rd.str(512);
	rd.end();
	if (status > static_cast<uint8_t>(SubmitStatus::rejected))
		fatalx("IMSG_SUBMIT_RESULT: bad status %u", status);
	r.status = static_cast<SubmitStatus>(status);
	complete(reqid, r);
	return true;
}

void Submitter::fail_all(const std::string &detail)
{
	std::vector<uint64_t> ids;
	for (auto &[id, p] : pending_)
		ids.push_back(id);
	SubmitResult r;
	r.status = SubmitStatus::temp_fail;
	r.detail = detail;
	for (uint64_t id : ids)
		complete(id, r);
}

} // namespace posthorn
