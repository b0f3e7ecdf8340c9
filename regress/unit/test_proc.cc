/* Process vocabulary: setup message codec, names, sealed memfds. */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <string>

#include <event2/event.h>

#include "common/memfd.h"
#include "common/proc.h"
#include "common/submit.h"
#include "regress/unit/unit.h"

using namespace posthorn;

static void test_setup_round_trip(void **)
{
	ProcSetup s;
	s.uid = 101;
	s.gid = 202;
	s.chroot = "/var/lib/posthorn/empty";
	s.workdir = "/";
	s.dumpable = false;
	s.log = {LogDest::syslog, LogFormat::text, LogLevel::debug};
	Imsg msg;
	msg.hdr.type = IMSG_PROC_SETUP;
	msg.data = proc_setup_encode(s);
	ProcSetup t = proc_setup_decode(msg);
	assert_int_equal(t.uid, 101);
	assert_int_equal(t.gid, 202);
	assert_string_equal(t.chroot.c_str(), s.chroot.c_str());
	assert_string_equal(t.workdir.c_str(), "/");
	assert_false(t.dumpable);
	assert_int_equal(static_cast<int>(t.log.dest), static_cast<int>(LogDest::syslog));
	assert_int_equal(static_cast<int>(t.log.format), static_cast<int>(LogFormat::text));
	assert_int_equal(static_cast<int>(t.log.level), static_cast<int>(LogLevel::debug));
}

static void test_names(void **)
{
	ProcId id;
	assert_true(proc_from_name("relayer", id));
	assert_int_equal(static_cast<int>(id), static_cast<int>(ProcId::relayer));
	assert_false(proc_from_name("mailbox", id));
	assert_string_equal(proc_name(ProcId::control), "control");
	assert_string_equal(imsg_type_name(IMSG_CONF_END), "IMSG_CONF_END");
	assert_string_equal(imsg_type_name(9999), "IMSG_UNKNOWN");
	/* Every link joins two distinct children. */
	for (const PeerLink &l : PEER_LINKS) {
		assert_true(l.a != l.b);
		assert_true(l.a != ProcId::parent && l.b != ProcId::parent);
	}
}

static void test_memfd_sealed(void **)
{
	std::string doc(100000, 'x');
	doc += "end";
	Fd fd = memfd_sealed("test", doc);
	assert_true(fd.valid());
	assert_true(memfd_is_sealed(fd.get()));
	/* Sealed: neither writes nor truncation go through. */
	assert_int_equal(write(fd.get(), "y", 1), -1);
	assert_int_equal(ftruncate(fd.get(), 0), -1);
	std::string back;
	assert_true(memfd_read(fd.get(), back, 1 << 20));
	assert_true(back == doc);
	/* The size bound holds. */
	assert_false(memfd_read(fd.get(), back, 1000));
	/* A plain pipe is not a sealed memfd. */
	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_false(memfd_is_sealed(p[0]));
	close(p[0]);
	close(p[1]);
}

/*
 * The relayer echoes the id of a document it rejects as the front sent it:
 * an over-long one must still decode (strictly) in the front, not kill it.
 */
static void test_submit_result_long_id(void **)
{
	SubmitResult r;
	r.status = SubmitStatus::rejected;
	r.submission_id = std::string(20000, 'a');
	r.detail = std::string(5000, 'd');
	Imsg msg;
	msg.hdr.type = IMSG_SUBMIT_RESULT;
	msg.data = submit_result_encode(7, r);
	assert_true(msg.data.size() <= IMSG_MAX_PAYLOAD);
	event_base *base = event_base_new();
	{
		Submitter sub(base);
		assert_true(sub.handle(msg)); /* no one waits for 7: dropped, not fatal */
	}
	event_base_free(base);
}

int main()
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_setup_round_trip),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_memfd_sealed),
		cmocka_unit_test(test_submit_result_long_id),
	};
	return cmocka_run_group_tests(tests, nullptr, nullptr);
}
