/*
 * The control protocol's codec, who may connect, the status document, and
 * the relayer's levers on the queue (pause, resume, schedule, remove) with
 * the documents posthornctl shows.
 */
#include <dirent.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <event2/event.h>

#include "common/ctl.h"
#include "common/json.h"
#include "common/proc.h"
#include "posthornd/control.h"
#include "relayer/ctl.h"
#include "relayer/queue.h"
#include "relayer/spool.h"
#include "regress/unit/unit.h"

using namespace posthorn;

static const char *const ID1 = "0123456789abcdef0123456789abcdef";
static const char *const ID2 = "fedcba9876543210fedcba9876543210";

static Imsg frame(uint32_t type, const std::vector<uint8_t> &payload)
{
	Imsg m;
	m.hdr.type = type;
	m.data = payload;
	return m;
}

static void test_command_codec(void **)
{
	CtlCommand c{7, "postmark", true}, back;
	Imsg m = frame(IMSG_CTL_PAUSE, ctl_command_encode(c, true));
	assert_true(ctl_command_decode(m, back, true, true));
	assert_int_equal(back.reqid, 7);
	assert_string_equal(back.arg.c_str(), "postmark");
	assert_true(back.flag);
	/* A client's frames: no request id, and garbage is refused without dying. */
	m = frame(IMSG_CTL_SHOW_QUEUE, ctl_command_encode({0, "", false}, false));
	assert_true(ctl_command_decode(m, back, false, false));
	std::vector<std::vector<uint8_t>> bad = {
		{},
		{1, 2, 3},
		ImsgWriter().str("x").data(),                       /* no flag */
		ImsgWriter().str("x").u8(2).data(),                 /* flag out of range */
		ImsgWriter().str("x").u8(0).u8(0).data(),           /* trailing */
		ImsgWriter().u32(0xffffffff).data(),                /* length beyond the frame */
		ImsgWriter().str(std::string(CTL_MAX_ARG + 1, 'a')).u8(0).data(),
	};
	for (const auto &payload : bad)
		assert_false(ctl_command_decode(frame(IMSG_CTL_SHOW_QUEUE, payload), back, false, false));
	assert_true(ctl_is_client_command(IMSG_CTL_SHOW_STATUS));
	assert_true(ctl_is_client_command(IMSG_CTL_LOG_VERBOSE));
	assert_false(ctl_is_client_command(IMSG_CTL_INFO));
	assert_false(ctl_is_client_command(IMSG_CTL_REPLY));
	assert_false(ctl_is_client_command(IMSG_CTL_EVENT));
	assert_false(ctl_is_client_command(IMSG_SUBMIT));
	assert_false(ctl_is_client_command(9999));
}

static void test_targets(void **)
{
	assert_true(ctl_valid_target(ID1, false));
	assert_true(ctl_valid_target("all", true));
	assert_false(ctl_valid_target("all", false));
	assert_false(ctl_valid_target("../../etc/passwd", true));
	assert_false(ctl_valid_target("", true));
	assert_false(ctl_valid_target(std::string(ID1) + "/", true));
}

static void test_reply_codec(void **)
{
	CtlReply r{9, false, "reload failed: 1 error", "{\"errors\":[\"x\"]}"}, back;
	std::vector<uint8_t> payload;
	Fd doc;
	assert_true(ctl_reply_frame(r, payload, doc));
	assert_true(doc.valid());
	Imsg m = frame(IMSG_CTL_REPLY, payload);
	m.fd = std::move(doc);
	assert_int_equal(ctl_reply_reqid(m), 9);
	assert_true(ctl_reply_decode(m, back, false));
	assert_false(back.ok);
	assert_string_equal(back.error.c_str(), "reload failed: 1 error");
	assert_string_equal(back.document.c_str(), "{\"errors\":[\"x\"]}");
	/* No document: no descriptor. */
	assert_true(ctl_reply_frame({1, true, "", ""}, payload, doc));
	assert_false(doc.valid());
	assert_false(ctl_reply_decode(frame(IMSG_CTL_REPLY, {1, 2}), back, false));
}

static void test_allowed(void **)
{
	ControlInfo info;
	info.privileged = true;
	info.gid = 995;
	info.members = {1000};
	auto peer = [](uid_t uid, gid_t gid, std::vector<gid_t> groups = {}) {
		PeerCred p;
		p.uid = uid;
		p.gid = gid;
		p.groups = std::move(groups);
		return p;
	};
	uid_t self = 999;
	assert_true(control_allowed(info, self, peer(0, 0)));
	assert_true(control_allowed(info, self, peer(1000, 1000)));         /* listed member */
	assert_true(control_allowed(info, self, peer(1001, 995)));          /* the group as gid */
	assert_true(control_allowed(info, self, peer(1002, 1002, {5, 995}))); /* supplementary */
	assert_false(control_allowed(info, self, peer(65534, 65534)));
	assert_false(control_allowed(info, self, peer(65534, 65534, {5, 6})));
	assert_false(control_allowed(info, self, peer(self, 1234))); /* privileged: not by uid */
	info.privileged = false;
	assert_true(control_allowed(info, self, peer(self, 1234)));  /* unprivileged: same uid */
	assert_false(control_allowed(info, self, peer(65534, 65534)));
}

static void test_info_and_status(void **)
{
	ImsgWriter w;
	w.u64(1700000000).u8(1).str("0.1.0").u32(995).u32(2).u32(1000).u32(1001);
	w.u32(2).u32(static_cast<uint32_t>(ProcId::parent)).u32(100);
	w.u32(static_cast<uint32_t>(ProcId::relayer)).u32(103);
	ControlInfo info = control_info_decode(frame(IMSG_CTL_INFO, w.data()));
	assert_int_equal(info.started, 1700000000);
	assert_true(info.privileged);
	assert_int_equal(info.gid, 995);
	assert_int_equal(info.members.size(), 2);
	assert_int_equal(info.pids.size(), 2);

	Config cfg;
	cfg.path = "/etc/posthorn/posthorn.conf";
	cfg.global.hostname = "mail.example.com";
	SmtpListenerConfig l;
	l.name = "submission";
	l.listen = {"0.0.0.0:2525", "[::]:2525"};
	cfg.smtp.push_back(l);
	cfg.http.emplace();
	cfg.http->listen = {"127.0.0.1:8080"};
	TransportConfig t;
	t.name = "postmark";
	t.type = TransportType::postmark;
	t.api_key = "must-not-appear";
	cfg.transports.push_back(t);
	std::string doc = control_status_json(info, cfg, 3, 1700000100);
	assert_null(strstr(doc.c_str(), "must-not-appear"));
	Json j = json_parse(doc);
	assert_non_null(j.get());
	assert_int_equal(cJSON_GetObjectItem(j.get(), "uptime")->valueint, 100);
	assert_int_equal(cJSON_GetObjectItem(j.get(), "generation")->valueint, 3);
	assert_string_equal(cJSON_GetObjectItem(j.get(), "version")->valuestring, "0.1.0");
	cJSON *ls = cJSON_GetObjectItem(j.get(), "listeners");
	assert_int_equal(cJSON_GetArraySize(ls), 4); /* two smtp, http, control */
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(ls, 1), "address")->valuestring,
	    "[::]:2525");
	cJSON *ps = cJSON_GetObjectItem(j.get(), "processes");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(ps, 1), "name")->valuestring,
	    "relayer");
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(ps, 1), "pid")->valueint, 103);
}

/*
 * The queue's levers, with a transport that holds every delivery until the
 * test answers it.
 */
class HeldTransport final : public Transport {
public:
	explicit HeldTransport(const TransportConfig &cfg) : Transport(cfg) {}
	void deliver(const Message &msg, Done done) override
	{
		started.push_back(msg.id);
		pending.push_back(std::move(done));
	}
	std::vector<std::string> started;
	std::vector<Done> pending;
};

struct QueueFixture {
	std::string dir;
	event_base *base;
	Spool spool;
	DeliveryQueue queue;
	std::shared_ptr<HeldTransport> t;

	static std::string make_dir()
	{
		char tmpl[] = "/tmp/posthorn-ctl-XXXXXX";
		char *d = mkdtemp(tmpl);
		assert_non_null(d);
		return d;
	}
	QueueFixture() : dir(make_dir()), base(event_base_new()), spool(dir), queue(base, spool)
	{
		std::string why;
		assert_true(spool.open(why));
		TransportConfig tc;
		tc.name = "held";
		tc.type = TransportType::postmark;
		tc.max_inflight = 4;
		t = std::make_shared<HeldTransport>(tc);
		queue.configure({{"held", t}}, QueueSettings{});
	}
	~QueueFixture()
	{
		event_base_free(base);
		std::string cmd = "rm -rf " + dir;
		assert_int_equal(system(cmd.c_str()), 0);
	}
	void add(const char *id, int64_t next_attempt)
	{
		SpoolEntry e;
		e.msg.id = id;
		e.msg.envelope_from = "app@example.com";
		e.msg.recipients = {"a@example.org"};
		e.msg.from = "App <app@example.com>";
		e.msg.subject = "hello";
		e.msg.text_body = "the body\n";
		e.msg.source = "smtp:submission";
		e.msg.transport = "held";
		e.queued_at = time(nullptr) - 120;
		e.next_attempt = next_attempt;
		e.attempts = 1;
		e.last_error = "HTTP 503";
		std::string why;
		assert_true(spool.write(e, why));
		queue.add(std::move(e));
	}
	void run()
	{
		struct timeval tv = {0, 50000};
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
};

static cJSON *find_message(cJSON *doc, const char *id)
{
	cJSON *m;
	cJSON_ArrayForEach(m, cJSON_GetObjectItem(doc, "messages"))
		if (strcmp(cJSON_GetObjectItem(m, "id")->valuestring, id) == 0)
			return m;
	return nullptr;
}

static void test_queue_levers(void **)
{
	QueueFixture f;
	int64_t now = time(nullptr);
	f.queue.pause("");
	assert_true(f.queue.paused("held"));
	f.add(ID1, now);        /* due */
	f.add(ID2, now + 3600); /* waiting */
	f.run();
	assert_int_equal(f.t->started.size(), 0); /* paused: nothing starts */

	Json q = json_parse(relayer_queue_json(f.queue, now));
	assert_string_equal(cJSON_GetObjectItem(find_message(q.get(), ID1), "state")->valuestring, "paused");
	assert_string_equal(cJSON_GetObjectItem(find_message(q.get(), ID2), "state")->valuestring, "waiting");
	assert_int_equal(cJSON_GetObjectItem(find_message(q.get(), ID2), "age")->valueint, 120);
	Json t = json_parse(relayer_transports_json(f.queue));
	cJSON *held = cJSON_GetArrayItem(cJSON_GetObjectItem(t.get(), "transports"), 0);
	assert_string_equal(cJSON_GetObjectItem(held, "state")->valuestring, "paused");
	assert_int_equal(cJSON_GetObjectItem(held, "queued")->valueint, 2);

	f.queue.resume("held");
	f.run();
	assert_int_equal(f.t->started.size(), 1);
	assert_string_equal(f.t->started[0].c_str(), ID1);
	assert_int_equal(f.queue.in_flight("held"), 1);

	/* schedule: the waiting one becomes due now; the running one is left alone. */
	assert_int_equal(f.queue.schedule("all"), 1);
	f.run();
	assert_int_equal(f.t->started.size(), 2);
	assert_string_equal(f.t->started[1].c_str(), ID2);
	assert_int_equal(f.queue.schedule(ID2), 0);
	assert_int_equal(f.queue.schedule("all"), 0);

	/* remove: gone from the queue and the spool; a late answer only frees the slot. */
	assert_true(f.spool.contains(ID1));
	assert_int_equal(f.queue.remove(ID1), 1);
	assert_false(f.queue.contains(ID1));
	assert_false(f.spool.contains(ID1));
	DeliveryResult sent;
	sent.outcome = DeliveryOutcome::sent;
	f.t->pending[0](sent);
	assert_int_equal(f.queue.in_flight("held"), 1);
	assert_int_equal(f.queue.remove("all"), 1);
	assert_int_equal(f.queue.size(), 0);
	assert_false(f.spool.contains(ID2));
	assert_int_equal(f.queue.remove(ID2), 0);
}

static void test_message_document(void **)
{
	QueueFixture f;
	f.add(ID1, time(nullptr) + 60);
	bool running = true;
	const SpoolEntry *e = f.queue.find(ID1, &running);
	assert_non_null(e);
	assert_false(running);
	Json brief = json_parse(relayer_message_json(*e, false, false));
	assert_null(cJSON_GetObjectItem(brief.get(), "text_body"));
	assert_int_equal(cJSON_GetObjectItem(brief.get(), "text_size")->valueint, 9);
	assert_string_equal(cJSON_GetObjectItem(brief.get(), "subject")->valuestring, "hello");
	assert_string_equal(cJSON_GetObjectItem(brief.get(), "state")->valuestring, "waiting");
	Json full = json_parse(relayer_message_json(*e, false, true));
	assert_string_equal(cJSON_GetObjectItem(full.get(), "text_body")->valuestring, "the body\n");
	assert_null(f.queue.find(ID2));
}

int main()
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_command_codec),
		cmocka_unit_test(test_targets),
		cmocka_unit_test(test_reply_codec),
		cmocka_unit_test(test_allowed),
		cmocka_unit_test(test_info_and_status),
		cmocka_unit_test(test_queue_levers),
		cmocka_unit_test(test_message_document),
	};
	return cmocka_run_group_tests(tests, nullptr, nullptr);
}
