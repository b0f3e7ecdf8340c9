#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/log.h"
#include "common/memfd.h"
#include "common/text.h"

namespace posthorn {

namespace {

constexpr size_t MAX_SPOOL_FILE = MESSAGE_MAX_DOCUMENT + 64 * 1024;

struct JsonDoc {
	cJSON *p;
	explicit JsonDoc(cJSON *x) : p(x) {}
	~JsonDoc() { cJSON_Delete(p); }
	JsonDoc(const JsonDoc &) = delete;
	JsonDoc &operator=(const JsonDoc &) = delete;
};

std::string errtext(const std::string &what)
{
	return what + ": " + strerror(errno);
}

bool is_spool_name(const char *name, std::string &id)
{
	size_t n = strlen(name);
	if (n < 6 || strcmp(name + n - 5, ".json") != 0)
		return false;
	id.assign(name, n - 5);
	return true;
}

} // namespace

std::string spool_entry_to_json(const SpoolEntry &e)
{
	/* The message is embedded as its own canonical document. */
	JsonDoc doc(cJSON_CreateObject());
	cJSON_AddNumberToObject(doc.p, "spool_version", SPOOL_VERSION);
	cJSON_AddNumberToObject(doc.p, "attempts", e.attempts);
	cJSON_AddNumberToObject(doc.p, "queued_at", static_cast<double>(e.queued_at));
	cJSON_AddNumberToObject(doc.p, "next_attempt", static_cast<double>(e.next_attempt));
	cJSON_AddStringToObject(doc.p, "last_error", e.last_error.c_str());
	cJSON_AddRawToObject(doc.p, "message", message_to_json(e.msg).c_str());
	char *s = cJSON_PrintUnformatted(doc.p);
	if (!s)
		fatalx("spool: out of memory");
	std::string out(s);
	cJSON_free(s);
	return out;
}

static bool get_int(cJSON *obj, const char *key, int64_t lo, int64_t hi, int64_t &out)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!cJSON_IsNumber(v) || v->valuedouble < static_cast<double>(lo) ||
	    v->valuedouble > static_cast<double>(hi))
		return false;
	out = static_cast<int64_t>(v->valuedouble);
	return static_cast<double>(out) == v->valuedouble;
}

bool spool_entry_from_json(std::string_view json, SpoolEntry &out, std::string &why)
{
	if (json.size() > MAX_SPOOL_FILE) {
		why = "spool file too large";
		return false;
	}
	JsonDoc doc(cJSON_ParseWithLength(json.data(), json.size()));
	if (!cJSON_IsObject(doc.p)) {
		why = "not a JSON object";
		return false;
	}
	int64_t version, attempts, queued_at, next_attempt;
	if (!get_int(doc.p, "spool_version", 0, 1000, version) || version != SPOOL_VERSION) {
		why = "unknown spool_version";
		return false;
	}
	if (!get_int(doc.p, "attempts", 0, 1000000, attempts) ||
	    !get_int(doc.p, "queued_at", 0, INT64_C(1) << 40, queued_at) ||
	    !get_int(doc.p, "next_attempt", 0, INT64_C(1) << 40, next_attempt)) {
		why = "bad attempts/queued_at/next_attempt";
		return false;
	}
	cJSON *err = cJSON_GetObjectItemCaseSensitive(doc.p, "last_error");
	cJSON *msg = cJSON_GetObjectItemCaseSensitive(doc.p, "message");
	if (!cJSON_IsString(err) || !cJSON_IsObject(msg)) {
		why = "bad last_error/message";
		return false;
	}
	char *msg_json = cJSON_PrintUnformatted(msg);
	if (!msg_json) {
		why = "out of memory";
		return false;
	}
	bool ok = message_from_json(msg_json, out.msg, why);
	cJSON_free(msg_json);
	if (!ok)
		return false;
	out.attempts = static_cast<uint32_t>(attempts);
	out.queued_at = queued_at;
	out.next_attempt = next_attempt;
	out.last_error = std::string(err->valuestring).substr(0, 1024);
	return true;
}

std::string Spool::path(const char *sub, const std::string &id) const
{
	return dir_ + "/" + sub + "/" + id + ".json";
}

bool Spool::open(std::string &why)
{
	for (const char *sub : {"tmp", "queue", "dead", "corrupt"}) {
		std::string p = dir_ + "/" + sub;
		if (mkdir(p.c_str(), 0700) == -1 && errno != EEXIST) {
			why = errtext("mkdir " + p);
			return false;
		}
	}
	queue_dir_ = Fd(::open((dir_ + "/queue").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	dead_dir_ = Fd(::open((dir_ + "/dead").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	if (!queue_dir_ || !dead_dir_) {
		why = errtext("open " + dir_ + "/queue");
		return false;
	}
	return true;
}

bool Spool::write_file(const std::string &final_path, const std::string &data, bool sync_file,
    std::string &why)
{
	std::string tmp = dir_ + "/tmp/" + std::to_string(getpid()) + "." +
	    std::to_string(++tmp_seq_);
	Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
	if (!fd) {
		why = errtext("spool write");
		return false;
	}
	if (!write_all(fd.get(), data) || (sync_file && fsync(fd.get()) == -1)) {
		why = errtext("spool write");
		unlink(tmp.c_str());
		return false;
	}
	fd.reset();
	if (rename(tmp.c_str(), final_path.c_str()) == -1) {
		why = errtext("spool rename");
		unlink(tmp.c_str());
		return false;
	}
	return true;
}

bool Spool::update(const SpoolEntry &e, std::string &why)
{
	/* Replaces a committed file: its data must be on disk before the rename. */
	return write_file(path("queue", e.msg.id), spool_entry_to_json(e), true, why);
}

bool Spool::write(const SpoolEntry &e, std::string &why)
{
	return write_file(path("queue", e.msg.id), spool_entry_to_json(e), false, why);
}

bool Spool::sync(std::string &why)
{
	/*
	 * One syncfs() makes every file staged since the last sync durable,
	 * data and renames alike, in one journal commit: the group commit that
	 * lets N concurrent submissions cost one flush instead of N+1.
	 */
	if (syncfs(queue_dir_.get()) == -1) {
		why = errtext("spool sync");
		return false;
	}
	return true;
}

bool Spool::remove(const std::string &id)
{
	return unlink(path("queue", id).c_str()) == 0 || errno == ENOENT;
}

bool Spool::bury(const SpoolEntry &e, std::string &why)
{
	if (!write_file(path("dead", e.msg.id), spool_entry_to_json(e), true, why))
		return false;
	fsync(dead_dir_.get());
	remove(e.msg.id);
	return true;
}

bool Spool::contains(const std::string &id) const
{
	struct stat st;
	return stat(path("queue", id).c_str(), &st) == 0;
}

SpoolRecovery Spool::recover()
{
	SpoolRecovery r;
	if (DIR *d = opendir((dir_ + "/tmp").c_str())) {
		while (struct dirent *de = readdir(d)) {
			if (de->d_name[0] == '.')
				continue;
			if (unlinkat(dirfd(d), de->d_name, 0) == 0)
				r.removed_tmp++;
		}
		closedir(d);
	}
	DIR *d = opendir((dir_ + "/queue").c_str());
	if (!d)
		return r;
	while (struct dirent *de = readdir(d)) {
		if (de->d_name[0] == '.')
			continue;
		std::string id, data, why;
		SpoolEntry e;
		/* O_NONBLOCK: a FIFO planted in queue/ must not stall the start. */
		Fd fd(openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
		struct stat st;
		bool ok = is_spool_name(de->d_name, id) && fd && fstat(fd.get(), &st) == 0 &&
		    S_ISREG(st.st_mode) && memfd_read(fd.get(), data, MAX_SPOOL_FILE);
		if (ok)
			ok = spool_entry_from_json(data, e, why) && e.msg.id == id;
		else
			why = "unreadable";
		if (ok) {
			r.entries.push_back(std::move(e));
			continue;
		}
		if (why.empty())
			why = "file name does not match the message id";
		std::string from = dir_ + "/queue/" + de->d_name;
		std::string to = dir_ + "/corrupt/" + de->d_name;
		rename(from.c_str(), to.c_str());
		log_event(LogLevel::warn, "spool_quarantined", {{"file", de->d_name}, {"error", why}});
		r.quarantined++;
	}
	closedir(d);
	return r;
}

} // namespace posthorn
