/*
 * The spool: one JSON file per message (versioned, cJSON), committed with
 * write to tmp/ → rename into queue/ → syncfs (file data, rename and
 * directory in one flush, shared by every submission of a batch) before the
 * relayer says yes. dead/ holds expired and permanently failed messages,
 * corrupt/ what could not be read back at start.
 */
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/fd.h"
#include "common/message.h"

namespace posthorn {

inline constexpr int SPOOL_VERSION = 1;

struct SpoolEntry {
	Message msg;
	uint32_t attempts = 0;
	int64_t queued_at = 0;    /* unix seconds */
	int64_t next_attempt = 0; /* unix seconds */
	std::string last_error;   /* safe text: never a secret */
};

std::string spool_entry_to_json(const SpoolEntry &e);
bool spool_entry_from_json(std::string_view json, SpoolEntry &out, std::string &why);

struct SpoolRecovery {
	std::vector<SpoolEntry> entries;
	size_t removed_tmp = 0;
	size_t quarantined = 0;
};

class Spool {
public:
	explicit Spool(std::string dir) : dir_(std::move(dir)) {}

	/* Create tmp/, queue/, dead/, corrupt/ (0700) and open queue/ for fsync. */
	bool open(std::string &why);
	/*
	 * Stage a new entry (written and renamed into queue/, not yet flushed):
	 * call sync() before answering; several writes share one sync.
	 */
	bool write(const SpoolEntry &e, std::string &why);
	bool sync(std::string &why);
	/* Rewrite a committed entry (attempts, next attempt) durably on its own. */
	bool update(const SpoolEntry &e, std::string &why);
	/* Remove a delivered or failed message (directory synced lazily by the next sync). */
	bool remove(const std::string &id);
	/* Move to dead/ with the final state recorded. */
	bool bury(const SpoolEntry &e, std::string &why);
	bool contains(const std::string &id) const;
	/* At start: remove tmp/ leftovers, load queue/, quarantine the unreadable. */
	SpoolRecovery recover();

	std::string path(const char *sub, const std::string &id) const;

private:
	bool write_file(const std::string &final_path, const std::string &data, bool sync_file,
	    std::string &why);

	std::string dir_;
	Fd queue_dir_;
	Fd dead_dir_;
	uint64_t tmp_seq_ = 0;
};

} // namespace posthorn
