/* The delivery scheduler with a scripted transport: retries, expiry, caps. */
#include <dirent.h>
#include <stdlib.h>
#include <time.h>

#include <event2/event.h>

#include <deque>
#include <string>

#include "relayer/queue.h"
#include "relayer/spool.h"
#include "regress/unit/unit.h"

using namespace posthorn;

namespace {

/* Answers from a script; remembers how many ran at once. */
class ScriptedTransport final : public Transport {
public:
	ScriptedTransport(const TransportConfig &cfg, event_base *base) : Transport(cfg), base_(base) {}

	void deliver(const Message &, Done done) override
	{
		calls++;
		running++;
		peak = std::max(peak, running);
		DeliveryResult r;
		r.outcome = script.empty() ? DeliveryOutcome::sent : script.front();
		if (!script.empty())
			script.pop_front();
		r.detail = r.outcome == DeliveryOutcome::sent ? "" : "scripted failure";
		if (immediate) {
			/* As the file transport does: the answer before deliver() returns. */
			running--;
			done(r);
			return;
		}
		/* Answer from the loop, as a real transport does. */
		auto *pending = new Pending{this, std::move(done), r};
		struct timeval tv = {0, 1000};
		event_base_once(base_, -1, EV_TIMEOUT, [](int, short, void *arg) noexcept {
			auto *p = static_cast<Pending *>(arg);
			p->self->running--;
			p->done(p->result);
			delete p;
		}, pending, &tv);
	}

	std::deque<DeliveryOutcome> script;
	int calls = 0, running = 0, peak = 0;
	bool immediate = false;

private:
	struct Pending {
		ScriptedTransport *self;
		Done done;
		DeliveryResult result;
	};
	event_base *base_;
};

std::string make_dir()
{
	char tmpl[] = "/tmp/posthorn-queue-XXXXXX";
	char *d = mkdtemp(tmpl);
	assert_non_null(d);
	return d;
}

size_t count(const std::string &dir)
{
	size_t n = 0;
	if (DIR *d = opendir(dir.c_str())) {
		while (struct dirent *de = readdir(d))
			n += de->d_name[0] != '.';
		closedir(d);
	}
	return n;
}

SpoolEntry entry(int i, int64_t queued_at)
{
	SpoolEntry e;
	char id[33];
	snprintf(id, sizeof(id), "%032x", i + 1);
	e.msg.id = id;
	e.msg.recipients = {"a@example.org"};
	e.msg.from = "app@example.com";
	e.msg.text_body = "x";
	e.msg.source = "smtp:in";
	e.msg.transport = "out";
	e.msg.created = queued_at;
	e.queued_at = queued_at;
	e.next_attempt = 0;
	return e;
}

struct Fixture {
	std::string dir;
	event_base *base = event_base_new();
	Spool spool{""};
	std::shared_ptr<ScriptedTransport> t;
	DeliveryQueue *q = nullptr;

	explicit Fixture(unsigned inflight, QueueSettings s)
	{
		dir = make_dir();
		spool = Spool(dir);
		std::string why;
		assert_true(spool.open(why));
		TransportConfig tc;
		tc.name = "out";
		tc.max_inflight = inflight;
		t = std::make_shared<ScriptedTransport>(tc, base);
		q = new DeliveryQueue(base, spool);
		q->configure({{"out", t}}, s);
	}
	void add(SpoolEntry e)
	{
		std::string why;
		assert_true(spool.write(e, why));
		q->add(std::move(e));
	}
	void run_until_empty(int max_seconds)
	{
		time_t end = time(nullptr) + max_seconds;
		while (q->size() > 0 && time(nullptr) < end)
			event_base_loop(base, EVLOOP_ONCE);
	}
	~Fixture()
	{
		delete q;
		event_base_free(base);
		std::string cmd = "rm -rf " + dir;
		if (system(cmd.c_str()) != 0)
			abort();
	}
};

} // namespace

static void test_transient_then_sent(void **)
{
	QueueSettings s;
	s.retry_initial = 1;
	s.retry_max = 1;
	Fixture f(8, s);
	f.t->script = {DeliveryOutcome::transient};
	f.add(entry(0, time(nullptr)));
	f.run_until_empty(10);
	assert_int_equal(f.q->size(), 0);
	assert_int_equal(f.t->calls, 2);
	assert_int_equal(count(f.dir + "/queue"), 0);
	assert_int_equal(count(f.dir + "/dead"), 0);
}

static void test_expired_goes_to_dead(void **)
{
	QueueSettings s;
	s.lifetime = 60;
	s.retry_initial = 1;
	s.retry_max = 1;
	Fixture f(8, s);
	f.t->script = {DeliveryOutcome::transient};
	/* Queued long ago: the first transient failure ends its lifetime. */
	f.add(entry(0, time(nullptr) - 3600));
	f.run_until_empty(10);
	assert_int_equal(f.t->calls, 1);
	assert_int_equal(count(f.dir + "/queue"), 0);
	assert_int_equal(count(f.dir + "/dead"), 1);
}

static void test_permanent_goes_to_dead_at_once(void **)
{
	Fixture f(8, QueueSettings{});
	f.t->script = {DeliveryOutcome::permanent};
	f.add(entry(0, time(nullptr)));
	f.run_until_empty(10);
	assert_int_equal(f.t->calls, 1);
	assert_int_equal(count(f.dir + "/dead"), 1);
}

static void test_inflight_cap(void **)
{
	Fixture f(3, QueueSettings{});
	for (int i = 0; i < 20; i++)
		f.add(entry(i, time(nullptr)));
	f.run_until_empty(10);
	assert_int_equal(f.t->calls, 20);
	assert_int_equal(f.t->peak, 3);
	assert_int_equal(count(f.dir + "/queue"), 0);
}

/*
 * A transport that answers inside deliver() (file) must not make the queue
 * recurse once per waiting message: a large spool recovered at start would
 * overflow the relayer's stack.
 */
static void test_immediate_transport_large_queue(void **)
{
	LogSettings saved = log_settings(), quiet = saved;
	quiet.level = LogLevel::error;
	log_apply(quiet);
	Fixture f(1, QueueSettings{});
	f.t->immediate = true;
	int64_t now = time(nullptr);
	for (int i = 0; i < 300000; i++)
		f.q->add(entry(i, now)); /* no files: removing a missing one is fine */
	f.run_until_empty(60);
	log_apply(saved);
	assert_int_equal(f.q->size(), 0);
	assert_int_equal(f.t->calls, 300000);
}

int main()
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transient_then_sent),
		cmocka_unit_test(test_expired_goes_to_dead),
		cmocka_unit_test(test_permanent_goes_to_dead_at_once),
		cmocka_unit_test(test_inflight_cap),
		cmocka_unit_test(test_immediate_transport_large_queue),
	};
	return cmocka_run_group_tests(tests, nullptr, nullptr);
}
