/* posthornctl(8): shared between the command parser and the output. */
#pragma once

#include <cjson/cJSON.h>

#include <cstdint>
#include <string>

namespace posthorn::ctl {

struct Options {
	bool json = false;    /* -j */
	bool verbose = false; /* -v */
	std::string socket = "/run/posthorn.sock";
};

/* How a command's answer is shown to a person (-j prints the document itself). */
enum class Render { status, stats, queue, message, transports, paused, scheduled, removed,
	reload, log, monitor };

/* Print the answer's document; false when it cannot be read. */
bool render(Render how, const cJSON *doc, const Options &opts);
/* One monitor event (a JSON log line). */
void render_event(const std::string &line, const Options &opts);
/* "3d04h", "1h02m", "5m03s", "42s" */
std::string duration(int64_t seconds);

} // namespace posthorn::ctl
