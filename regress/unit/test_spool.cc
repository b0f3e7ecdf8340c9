/* Spool commit/recovery and the retry schedule. */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "common/message.h"
#include "relayer/queue.h"
#include "relayer/spool.h"
#include "regress/unit/unit.h"

using namespace posthorn;

static std::string make_dir()
{
	char tmpl[] = "/tmp/posthorn-spool-XXXXXX";
	char *d = mkdtemp(tmpl);
	assert_non_null(d);
	return d;
}

static SpoolEntry sample(const std::string &id)
{
	SpoolEntry e;
	e.msg.id = id;
	e.msg.envelope_from = "app@example.com";
	e.msg.recipients = {"a@example.org"};
	e.msg.from = "App <app@example.com>";
	e.msg.subject = "hi";
	e.msg.text_body = "body\n";
	e.msg.source = "smtp:in";
	e.msg.transport = "out";
	e.msg.created = 1700000000;
	e.attempts = 2;
	e.queued_at = 1700000000;
	e.next_attempt = 1700000060;
	e.last_error = "HTTP 503";
	return e;
}

static size_t count(const std::string &dir)
{
	size_t n = 0;
	DIR *d = opendir(dir.c_str());
	if (!d)
		return 0;
	while (struct dirent *de = readdir(d))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void write_raw(const std::string &path, const std::string &data)
{
	int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data.data(), data.size()), (ssize_t)data.size());
	close(fd);
}

static void test_entry_round_trip(void **)
{
	SpoolEntry e = sample("0123456789abcdef0123456789abcdef"), back;
	std::string why;
	assert_true(spool_entry_from_json(spool_entry_to_json(e), back, why));
	assert_string_equal(back.msg.id.c_str(), e.msg.id.c_str());
	assert_int_equal(back.attempts, 2);
	assert_int_equal(back.next_attempt, 1700000060);
	assert_string_equal(back.last_error.c_str(), "HTTP 503");
	assert_false(spool_entry_from_json("{\"spool_version\":2}", back, why));
	assert_false(spool_entry_from_json("[]", back, why));
}

static void test_commit_and_recover(void **)
{
	std::string dir = make_dir(), why;
	Spool spool(dir);
	assert_true(spool.open(why));
	SpoolEntry a = sample("0123456789abcdef0123456789abcdef");
	SpoolEntry b = sample("fedcba9876543210fedcba9876543210");
	assert_true(spool.write(a, why));
	assert_true(spool.write(b, why));
	assert_true(spool.sync(why));
	assert_true(spool.contains(a.msg.id));
	assert_int_equal(count(dir + "/tmp"), 0);
	assert_int_equal(count(dir + "/queue"), 2);

	/* Leftovers a crash could leave: a partial temp file, garbage, a renamed file. */
	write_raw(dir + "/tmp/123.4", "{\"spool_ver");
	write_raw(dir + "/queue/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.json", "garbage");
	write_raw(dir + "/queue/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.json", spool_entry_to_json(a));
	/* Not a regular file: quarantined, never read (a FIFO would block). */
	assert_int_equal(mkfifo((dir + "/queue/cccccccccccccccccccccccccccccccc.json").c_str(), 0600), 0);
	Spool again(dir);
	assert_true(again.open(why));
	SpoolRecovery r = again.recover();
	assert_int_equal(r.entries.size(), 2);
	assert_int_equal(r.removed_tmp, 1);
	assert_int_equal(r.quarantined, 3);
	assert_int_equal(count(dir + "/corrupt"), 3);
	assert_int_equal(count(dir + "/queue"), 2);

	assert_true(again.bury(a, why));
	assert_false(again.contains(a.msg.id));
	assert_int_equal(count(dir + "/dead"), 1);
	assert_true(again.remove(b.msg.id));
	assert_true(again.remove(b.msg.id)); /* already gone is fine */
	assert_int_equal(count(dir + "/queue"), 0);
	std::string cmd = "rm -rf " + dir;
	assert_int_equal(system(cmd.c_str()), 0);
}

static void test_write_error_is_reported(void **)
{
	std::string dir = make_dir(), why;
	Spool spool(dir);
	assert_true(spool.open(why));
	/* No tmp/ directory: the write fails with a reason instead of crashing. */
	std::string cmd = "rm -rf " + dir + "/tmp";
	assert_int_equal(system(cmd.c_str()), 0);
	assert_false(spool.write(sample("0123456789abcdef0123456789abcdef"), why));
	assert_non_null(strstr(why.c_str(), "spool write"));
	cmd = "rm -rf " + dir;
	assert_int_equal(system(cmd.c_str()), 0);
}

static void test_retry_delay(void **)
{
	QueueSettings s; /* 30 s doubling to 1 h */
	assert_int_equal(retry_delay(s, 1, -1, 0.5), 30);
	assert_int_equal(retry_delay(s, 2, -1, 0.5), 60);
	assert_int_equal(retry_delay(s, 3, -1, 0.5), 120);
	assert_int_equal(retry_delay(s, 8, -1, 0.5), 3600);
	assert_int_equal(retry_delay(s, 1000, -1, 0.5), 3600);
	/* Jitter stays within ±20 %. */
	assert_int_equal(retry_delay(s, 1, -1, 0.0), 24);
	assert_int_equal(retry_delay(s, 1, -1, 1.0), 36);
	/* Retry-After wins, clamped to [1 s, retry_max]. */
	assert_int_equal(retry_delay(s, 1, 7, 0.5), 7);
	assert_int_equal(retry_delay(s, 1, 0, 0.5), 1);
	assert_int_equal(retry_delay(s, 1, 99999, 0.5), 3600);
}

int main()
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_entry_round_trip),
		cmocka_unit_test(test_commit_and_recover),
		cmocka_unit_test(test_write_error_is_reported),
		cmocka_unit_test(test_retry_delay),
	};
	return cmocka_run_group_tests(tests, nullptr, nullptr);
}
