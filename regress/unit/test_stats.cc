/*
 * Statistics: the registry, merging, the Prometheus text format 0.0.4, the
 * JSON snapshot codec (and its refusal of bad input), and the imsg reply
 * inline and through a sealed memfd.
 */
#include <sys/mman.h>
#include <sys/socket.h>

#include <string>

#include <event2/event.h>

#include "common/json.h"
#include "common/memfd.h"
#include "common/proc.h"
#include "common/stats.h"
#include "regress/unit/unit.h"

using namespace posthorn;

static bool contains(const std::string &hay, const std::string &needle)
{
	return hay.find(needle) != std::string::npos;
}

static void test_counters_and_gauges(void **)
{
	Stats s;
	s.add("posthorn_delivery_attempts_total", {"postmark", "sent"});
	s.add("posthorn_delivery_attempts_total", {"postmark", "sent"}, 2);
	s.add("posthorn_delivery_attempts_total", {"postmark", "transient"});
	s.set("posthorn_queue_messages", {}, 7);
	s.set("posthorn_queue_messages", {}, 5);
	const StatsSnapshot &snap = s.snapshot();
	auto &attempts = snap.at("posthorn_delivery_attempts_total");
	assert_int_equal(attempts.size(), 2);
	assert_true(attempts.at({"postmark", "sent"}).value == 3);
	assert_true(attempts.at({"postmark", "transient"}).value == 1);
	assert_true(snap.at("posthorn_queue_messages").at({}).value == 5);
}

static void test_misuse_is_ignored(void **)
{
	Stats s;
	s.add("posthorn_no_such_family", {"x"});
	s.add("posthorn_delivery_attempts_total", {"only-one-label"});
	s.set("posthorn_delivery_attempts_total", {"a", "b"}, 3); /* a counter, not a gauge */
	s.observe("posthorn_queue_messages", {}, 1);              /* a gauge, not a histogram */
	assert_true(s.snapshot().empty());
}

static void test_histogram(void **)
{
	Stats s;
	s.observe("posthorn_send_latency_seconds", {"/api/contact", "postmark"}, 0.004);
	s.observe("posthorn_send_latency_seconds", {"/api/contact", "postmark"}, 0.3);
	s.observe("posthorn_send_latency_seconds", {"/api/contact", "postmark"}, 100);
	const StatsSeries &h =
	    s.snapshot().at("posthorn_send_latency_seconds").at({"/api/contact", "postmark"});
	assert_int_equal(h.count, 3);
	assert_true(h.sum > 100.3 && h.sum < 100.31);
	assert_int_equal(h.buckets.size(), latency_buckets().size());
	assert_int_equal(h.buckets[0], 1); /* <= 0.005 */
	assert_int_equal(h.buckets[6], 1); /* <= 0.5 */
	uint64_t total = 0;
	for (uint64_t b : h.buckets)
		total += b;
	assert_int_equal(total, 2); /* 100 s only in +Inf */

	std::string text = stats_prometheus(s.snapshot());
	const std::string lbl = "endpoint=\"/api/contact\",transport=\"postmark\"";
	assert_true(contains(text, "# TYPE posthorn_send_latency_seconds histogram\n"));
	assert_true(contains(text, "posthorn_send_latency_seconds_bucket{" + lbl + ",le=\"0.005\"} 1\n"));
	assert_true(contains(text, "posthorn_send_latency_seconds_bucket{" + lbl + ",le=\"0.25\"} 1\n"));
	assert_true(contains(text, "posthorn_send_latency_seconds_bucket{" + lbl + ",le=\"0.5\"} 2\n"));
	assert_true(contains(text, "posthorn_send_latency_seconds_bucket{" + lbl + ",le=\"30\"} 2\n"));
	assert_true(contains(text, "posthorn_send_latency_seconds_bucket{" + lbl + ",le=\"+Inf\"} 3\n"));
	assert_true(contains(text, "posthorn_send_latency_seconds_count{" + lbl + "} 3\n"));
	assert_true(contains(text, "posthorn_send_latency_seconds_sum{" + lbl + "} 100.304\n"));
}

static void test_exposition(void **)
{
	Stats s;
	s.add("posthorn_submissions_received_total", {"smtp:sub\"mission\\\n"}, 4);
	s.add("posthorn_submissions_received_total", {"/api/contact"});
	std::string text = stats_prometheus(s.snapshot());
	/* Every family of DESIGN §9 has its HELP and TYPE, once. */
	for (const MetricFamily &f : metric_families()) {
		std::string help = "# HELP " + std::string(f.name) + " ";
		assert_true(contains(text, help));
		assert_true(text.find(help) == text.rfind(help));
		assert_true(contains(text, "# TYPE " + std::string(f.name) + " "));
	}
	assert_true(contains(text, "# TYPE posthorn_submissions_received_total counter\n"));
	assert_true(contains(text, "# TYPE posthorn_queue_messages gauge\n"));
	/* Label values escaped: backslash, double quote, newline. */
	assert_true(contains(text,
	    "posthorn_submissions_received_total{endpoint=\"smtp:sub\\\"mission\\\\\\n\"} 4\n"));
	/* Series sorted by label values; "/" sorts before "s". */
	assert_true(text.find("{endpoint=\"/api/contact\"} 1\n") <
	    text.find("{endpoint=\"smtp:sub"));
	/* An unlabelled family shows its zero. */
	assert_true(contains(text, "\nposthorn_queue_messages 0\n"));
	assert_true(contains(text, "\nposthorn_smtp_sessions_active 0\n"));
	/* Only HELP, TYPE and sample lines; every line ends in a newline. */
	assert_true(text.back() == '\n');
	assert_false(contains(text, "\n\n"));
}

static void test_merge(void **)
{
	Stats a, b;
	a.add("posthorn_submissions_sent_total", {"/api/contact", "postmark"}, 2);
	b.add("posthorn_submissions_sent_total", {"/api/contact", "postmark"}, 3);
	b.add("posthorn_submissions_sent_total", {"smtp:submission", "postmark"});
	a.set("posthorn_queue_messages", {}, 4);
	b.set("posthorn_smtp_sessions_active", {}, 2);
	a.observe("posthorn_send_latency_seconds", {"/x", "t"}, 0.2);
	b.observe("posthorn_send_latency_seconds", {"/x", "t"}, 0.2);
	StatsSnapshot all;
	stats_merge(all, a.snapshot());
	stats_merge(all, b.snapshot());
	auto &sent = all.at("posthorn_submissions_sent_total");
	assert_true(sent.at({"/api/contact", "postmark"}).value == 5);
	assert_true(sent.at({"smtp:submission", "postmark"}).value == 1);
	assert_true(all.at("posthorn_queue_messages").at({}).value == 4);
	assert_true(all.at("posthorn_smtp_sessions_active").at({}).value == 2);
	const StatsSeries &h = all.at("posthorn_send_latency_seconds").at({"/x", "t"});
	assert_int_equal(h.count, 2);
	assert_int_equal(h.buckets[5], 2);
	/* Unknown families and wrong label counts from elsewhere are dropped. */
	StatsSnapshot odd;
	odd["posthorn_bogus"][{"a"}].value = 1;
	odd["posthorn_queue_messages"][{"x"}].value = 1;
	stats_merge(all, odd);
	assert_int_equal(all.count("posthorn_bogus"), 0);
	assert_int_equal(all.at("posthorn_queue_messages").size(), 1);
}

static void test_json_round_trip(void **)
{
	Stats s;
	s.add("posthorn_submissions_failed_total", {"/api/contact", "postmark", "permanent"}, 2);
	s.set("posthorn_queue_messages", {}, 12);
	s.observe("posthorn_send_latency_seconds", {"smtp:submission", "relay"}, 1.5);
	std::string json = stats_to_json(s.snapshot());
	StatsSnapshot back;
	assert_true(stats_from_json(json, back));
	assert_true(back.at("posthorn_submissions_failed_total")
			.at({"/api/contact", "postmark", "permanent"})
			.value == 2);
	assert_true(back.at("posthorn_queue_messages").at({}).value == 12);
	const StatsSeries &h = back.at("posthorn_send_latency_seconds").at({"smtp:submission", "relay"});
	assert_int_equal(h.count, 1);
	assert_true(h.sum == 1.5);
	assert_string_equal(stats_prometheus(back).c_str(), stats_prometheus(s.snapshot()).c_str());
	assert_true(stats_from_json(stats_to_json({}), back));
	assert_true(back.empty());
}

static void test_json_rejects(void **)
{
	const char *bad[] = {
		"",
		"[]",
		"{\"version\":2,\"metrics\":{}}",
		"{\"version\":1}",
		"{\"version\":1,\"metrics\":{\"posthorn_bogus\":[]}}",
		"{\"version\":1,\"metrics\":{\"posthorn_queue_messages\":{}}}",
		"{\"version\":1,\"metrics\":{\"posthorn_queue_messages\":[{\"labels\":[\"x\"],\"value\":1}]}}",
		"{\"version\":1,\"metrics\":{\"posthorn_queue_messages\":[{\"labels\":[],\"value\":\"1\"}]}}",
		"{\"version\":1,\"metrics\":{\"posthorn_queue_messages\":[{\"labels\":[]}]}}",
		"{\"version\":1,\"metrics\":{\"posthorn_rate_limited_total\":[{\"labels\":[3],\"value\":1}]}}",
		"{\"version\":1,\"metrics\":{\"posthorn_rate_limited_total\":"
		"[{\"labels\":[\"a\"],\"value\":1},{\"labels\":[\"a\"],\"value\":2}]}}",
		"{\"version\":1,\"metrics\":{\"posthorn_send_latency_seconds\":"
		"[{\"labels\":[\"a\",\"b\"],\"buckets\":[1],\"sum\":1,\"count\":1}]}}",
		"{\"version\":1,\"metrics\":{\"posthorn_send_latency_seconds\":"
		"[{\"labels\":[\"a\",\"b\"],\"buckets\":[-1,0,0,0,0,0,0,0,0,0,0,0],\"sum\":1,\"count\":1}]}}",
		"{\"version\":1,\"metrics\":{\"posthorn_send_latency_seconds\":"
		"[{\"labels\":[\"a\",\"b\"],\"buckets\":[0.5,0,0,0,0,0,0,0,0,0,0,0],\"sum\":1,\"count\":1}]}}",
		"{\"version\":1,\"metrics\":{\"posthorn_send_latency_seconds\":"
		"[{\"labels\":[\"a\",\"b\"],\"buckets\":[0,0,0,0,0,0,0,0,0,0,0,0],\"sum\":1}]}}",
	};
	for (const char *doc : bad) {
		StatsSnapshot out;
		out["posthorn_queue_messages"][{}].value = 99;
		assert_false(stats_from_json(doc, out));
		/* Untouched on failure. */
		assert_true(out.at("posthorn_queue_messages").at({}).value == 99);
	}
	std::string long_label(2000, 'x');
	std::string doc = "{\"version\":1,\"metrics\":{\"posthorn_rate_limited_total\":[{\"labels\":[\"" +
	    long_label + "\"],\"value\":1}]}}";
	StatsSnapshot out;
	assert_false(stats_from_json(doc, out));
}

/* The imsg reply: small snapshots inline, large ones through a sealed memfd. */
static void reply_round_trip(const Stats &s, bool expect_fd)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	event_base *base = event_base_new();
	{
		ImsgChannel chan(base, Fd(sv[0]), [](ImsgChannel &, Imsg &) {}, nullptr);
		Imsg req;
		req.hdr.type = IMSG_STATS_REQUEST;
		req.data = ImsgWriter().u64(42).data();
		assert_true(stats_handle_request(chan, req, s));
		chan.flush_blocking(1000);
	}
	ImsgBuffer in(sv[1]);
	Imsg msg;
	while (in.get(msg) == ImsgGet::more)
		assert_true(in.read() > 0);
	assert_int_equal(msg.type(), IMSG_STATS_REPLY);
	assert_int_equal(msg.fd.valid(), expect_fd);
	uint64_t reqid = 0;
	StatsSnapshot back;
	assert_true(stats_reply_decode(msg, reqid, back));
	assert_int_equal(reqid, 42);
	assert_string_equal(stats_prometheus(back).c_str(), stats_prometheus(s.snapshot()).c_str());
	close(sv[1]);
	event_base_free(base);
}

static void test_imsg_reply(void **)
{
	Stats small;
	small.add("posthorn_auth_failed_total", {"/api/transactional"});
	reply_round_trip(small, false);
	Stats big;
	for (int i = 0; i < 2000; i++)
		big.add("posthorn_rate_limited_total", {"/endpoint/" + std::to_string(i)});
	assert_true(stats_to_json(big.snapshot()).size() > IMSG_MAX_PAYLOAD);
	reply_round_trip(big, true);
	/* Other types are not ours. */
	Imsg other;
	other.hdr.type = IMSG_SUBMIT;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	event_base *base = event_base_new();
	{
		ImsgChannel chan(base, Fd(sv[0]), [](ImsgChannel &, Imsg &) {}, nullptr);
		assert_false(stats_handle_request(chan, other, small));
	}
	close(sv[1]);
	event_base_free(base);
}

static void test_reply_decode_rejects(void **)
{
	uint64_t reqid;
	StatsSnapshot out;
	Imsg m;
	m.hdr.type = IMSG_STATS_REPLY;
	m.data = ImsgWriter().u64(1).str("{not json").data();
	assert_false(stats_reply_decode(m, reqid, out));
	m.data = ImsgWriter().u64(1).data(); /* short */
	assert_false(stats_reply_decode(m, reqid, out));
	m.data = ImsgWriter().u64(1).str("").data(); /* says memfd, has none */
	assert_false(stats_reply_decode(m, reqid, out));
	/* An unsealed descriptor is refused. */
	m.fd = Fd(memfd_create("x", MFD_CLOEXEC));
	assert_true(m.fd.valid());
	assert_int_equal(write(m.fd.get(), "{}", 2), 2);
	assert_false(stats_reply_decode(m, reqid, out));
}

int main()
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counters_and_gauges),
		cmocka_unit_test(test_misuse_is_ignored),
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_exposition),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_json_round_trip),
		cmocka_unit_test(test_json_rejects),
		cmocka_unit_test(test_imsg_reply),
		cmocka_unit_test(test_reply_decode_rejects),
	};
	return cmocka_run_group_tests(tests, nullptr, nullptr);
}
