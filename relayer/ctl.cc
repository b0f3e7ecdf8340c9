/*
 * The relayer's answers to posthornctl(8), forwarded by the control process.
 * Control is a trusted process: its requests are decoded strictly. What goes
 * back is the queue's metadata; never a credential, and a message body only
 * for `show message -v`.
 */
#include "relayer/ctl.h"

#include <time.h>

#include <algorithm>
#include <string_view>

#include "common/ctl.h"
#include "common/json.h"
#include "common/proc.h"
#include "common/stats.h"

namespace posthorn {

namespace {

/* The relay events `posthornctl monitor` streams. */
constexpr std::string_view MONITOR_EVENTS[] = {
	"submission_queued", "submission_refused", "delivery_attempt", "delivery_retry_scheduled",
	"delivery_expired", "submission_sent", "submission_failed", "submission_removed",
	"delivery_paused", "delivery_resumed",
};

ImsgChannel *monitor_ = nullptr;

void monitor_tap(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields)
{
	if (!monitor_ ||
	    std::find(std::begin(MONITOR_EVENTS), std::end(MONITOR_EVENTS), msg) ==
		std::end(MONITOR_EVENTS))
		return;
	std::string line = log_format_line(LogFormat::json, level, "relayer", msg, fields);
	if (line.size() + 4 > IMSG_MAX_PAYLOAD)
		return;
	/* A full channel drops the event: the monitor is best effort, delivery is not. */
	ImsgWriter w;
	w.str(line);
	monitor_->compose(IMSG_CTL_EVENT, w);
}

void monitor(ImsgChannel &control, bool on)
{
	monitor_ = on ? &control : nullptr;
	log_set_tap(on ? monitor_tap : nullptr);
}

const char *message_state(const DeliveryQueue &q, const SpoolEntry &e, bool running, int64_t now)
{
	if (running)
		return "running";
	if (e.next_attempt > now)
		return "waiting";
	return q.paused(e.msg.transport) ? "paused" : "due";
}

void add_str(cJSON *o, const char *key, const std::string &v)
{
	cJSON_AddStringToObject(o, key, v.c_str());
}

void add_num(cJSON *o, const char *key, int64_t v)
{
	cJSON_AddNumberToObject(o, key, static_cast<double>(v));
}

cJSON *string_array(const std::vector<std::string> &v)
{
	cJSON *a = cJSON_CreateArray();
	for (const std::string &s : v)
		cJSON_AddItemToArray(a, cJSON_CreateString(s.c_str()));
	return a;
}

void message_body(cJSON *o, const Message &m, bool with_body)
{
	cJSON *headers = cJSON_AddArrayToObject(o, "headers");
	for (const auto &[name, value] : m.headers) {
		cJSON *h = cJSON_CreateObject();
		add_str(h, "name", name);
		add_str(h, "value", value);
		cJSON_AddItemToArray(headers, h);
	}
	cJSON *atts = cJSON_AddArrayToObject(o, "attachments");
	for (const Attachment &a : m.attachments) {
		cJSON *j = cJSON_CreateObject();
		add_str(j, "filename", a.filename);
		add_str(j, "content_type", a.content_type);
		add_num(j, "size", static_cast<int64_t>(a.data.size()));
		cJSON_AddItemToArray(atts, j);
	}
	add_num(o, "text_size", static_cast<int64_t>(m.text_body.size()));
	add_num(o, "html_size", static_cast<int64_t>(m.html_body.size()));
	if (!with_body)
		return;
	add_str(o, "text_body", m.text_body);
	add_str(o, "html_body", m.html_body);
}

CtlReply show_message(const DeliveryQueue &queue, const CtlCommand &c)
{
	CtlReply r{c.reqid, false, "", ""};
	bool running = false;
	const SpoolEntry *e = ctl_valid_target(c.arg, false) ? queue.find(c.arg, &running) : nullptr;
	if (!e) {
		r.error = "no message " + c.arg + " in the queue";
		return r;
	}
	r.ok = true;
	r.document = relayer_message_json(*e, running, c.flag);
	return r;
}

CtlReply pause_resume(DeliveryQueue &queue, const CtlCommand &c, bool pause)
{
	CtlReply r{c.reqid, true, "", ""};
	if (!c.arg.empty() && !queue.transports().count(c.arg)) {
		r.ok = false;
		r.error = "no transport " + c.arg;
		return r;
	}
	if (pause)
		queue.pause(c.arg);
	else
		queue.resume(c.arg);
	log_event(LogLevel::info, pause ? "delivery_paused" : "delivery_resumed",
	    {{"transport", c.arg.empty() ? std::string("all") : c.arg}});
	r.document = relayer_transports_json(queue);
	return r;
}

CtlReply schedule_remove(DeliveryQueue &queue, const CtlCommand &c, bool remove)
{
	CtlReply r{c.reqid, false, "", ""};
	if (!ctl_valid_target(c.arg, true)) {
		r.error = "not a submission id: " + c.arg;
		return r;
	}
	if (c.arg != "all" && !queue.contains(c.arg)) {
		r.error = "no message " + c.arg + " in the queue";
		return r;
	}
	size_t n = remove ? queue.remove(c.arg) : queue.schedule(c.arg);
	Json doc(cJSON_CreateObject());
	add_num(doc.get(), remove ? "removed" : "scheduled", static_cast<int64_t>(n));
	r.ok = true;
	r.document = json_print(doc.get());
	return r;
}

} // namespace

std::string relayer_queue_json(const DeliveryQueue &queue, int64_t now)
{
	std::vector<std::pair<const SpoolEntry *, bool>> all;
	queue.each([&](const SpoolEntry &e, bool running) { all.emplace_back(&e, running); });
	std::sort(all.begin(), all.end(), [](const auto &a, const auto &b) {
		return std::tie(a.first->queued_at, a.first->msg.id) <
		    std::tie(b.first->queued_at, b.first->msg.id);
	});
	Json doc(cJSON_CreateObject());
	add_num(doc.get(), "now", now);
	cJSON *list = cJSON_AddArrayToObject(doc.get(), "messages");
	for (const auto &[e, running] : all) {
		cJSON *o = cJSON_CreateObject();
		add_str(o, "id", e->msg.id);
		add_num(o, "age", std::max<int64_t>(0, now - e->queued_at));
		add_num(o, "queued_at", e->queued_at);
		add_str(o, "transport", e->msg.transport);
		add_str(o, "source", e->msg.source);
		add_num(o, "recipients", static_cast<int64_t>(e->msg.recipients.size()));
		add_num(o, "attempts", e->attempts);
		add_num(o, "next_attempt", e->next_attempt);
		add_str(o, "state", message_state(queue, *e, running, now));
		add_str(o, "last_error", e->last_error);
		cJSON_AddItemToArray(list, o);
	}
	return json_print(doc.get());
}

std::string relayer_message_json(const SpoolEntry &e, bool running, bool with_body)
{
	const Message &m = e.msg;
	int64_t now = static_cast<int64_t>(time(nullptr));
	Json o(cJSON_CreateObject());
	add_str(o.get(), "id", m.id);
	add_str(o.get(), "state", running ? "running" : e.next_attempt > now ? "waiting" : "due");
	add_str(o.get(), "source", m.source);
	add_str(o.get(), "transport", m.transport);
	add_str(o.get(), "delivery", to_string(m.delivery));
	add_str(o.get(), "envelope_from", m.envelope_from);
	cJSON_AddItemToObject(o.get(), "recipients", string_array(m.recipients));
	add_str(o.get(), "from", m.from);
	add_str(o.get(), "reply_to", m.reply_to);
	add_str(o.get(), "subject", m.subject);
	add_num(o.get(), "created", m.created);
	add_num(o.get(), "queued_at", e.queued_at);
	add_num(o.get(), "attempts", e.attempts);
	add_num(o.get(), "next_attempt", e.next_attempt);
	add_str(o.get(), "last_error", e.last_error);
	message_body(o.get(), m, with_body);
	return json_print(o.get());
}

std::string relayer_transports_json(const DeliveryQueue &queue)
{
	std::map<std::string, int64_t> queued;
	queue.each([&](const SpoolEntry &e, bool) { queued[e.msg.transport]++; });
	Json doc(cJSON_CreateObject());
	cJSON *list = cJSON_AddArrayToObject(doc.get(), "transports");
	for (const auto &[name, t] : queue.transports()) {
		cJSON *o = cJSON_CreateObject();
		add_str(o, "name", name);
		add_str(o, "type", to_string(t->config().type));
		add_str(o, "state", queue.paused(name) ? "paused" : "active");
		add_num(o, "in_flight", queue.in_flight(name));
		add_num(o, "max_inflight", t->config().max_inflight);
		add_num(o, "queued", queued[name]);
		cJSON_AddItemToArray(list, o);
	}
	return json_print(doc.get());
}

bool relayer_ctl_imsg(ImsgChannel &control, Imsg &msg, DeliveryQueue &queue)
{
	if (msg.type() == IMSG_STATS_REQUEST) {
		process_stats().set("posthorn_queue_messages", {}, static_cast<double>(queue.size()));
		return stats_handle_request(control, msg);
	}
	/* The parent answers reload and log; control itself status and stats. */
	if (!ctl_is_client_command(msg.type()) || msg.type() == IMSG_CTL_SHOW_STATUS ||
	    msg.type() == IMSG_CTL_SHOW_STATS || msg.type() == IMSG_CTL_RELOAD ||
	    msg.type() == IMSG_CTL_LOG_VERBOSE)
		return false;
	CtlCommand c;
	ctl_command_decode(msg, c, true, true);
	CtlReply r{c.reqid, true, "", ""};
	switch (msg.type()) {
	case IMSG_CTL_SHOW_QUEUE:
		r.document = relayer_queue_json(queue, static_cast<int64_t>(time(nullptr)));
		break;
	case IMSG_CTL_SHOW_MESSAGE: r = show_message(queue, c); break;
	case IMSG_CTL_SHOW_TRANSPORTS: r.document = relayer_transports_json(queue); break;
	case IMSG_CTL_PAUSE: r = pause_resume(queue, c, true); break;
	case IMSG_CTL_RESUME: r = pause_resume(queue, c, false); break;
	case IMSG_CTL_SCHEDULE: r = schedule_remove(queue, c, false); break;
	case IMSG_CTL_REMOVE: r = schedule_remove(queue, c, true); break;
	case IMSG_CTL_MONITOR:
		monitor(control, c.flag);
		return true;
	}
	if (!ctl_reply_send(control, r))
		log_warnx("control: cannot answer %s", imsg_type_name(msg.type()));
	return true;
}

} // namespace posthorn
