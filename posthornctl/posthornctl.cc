/*
 * posthornctl [-jv] [-s socket] command [argument]: control posthornd(8)
 * through its control socket. One command per connection; the answer is one
 * IMSG_CTL_REPLY with a JSON document (ctl.h), `monitor` then streams
 * IMSG_CTL_EVENT lines until interrupted. Exit status 0 on success, 1 on any
 * failure.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "common/ctl.h"
#include "common/json.h"
#include "common/proc.h"
#include "posthornctl/posthornctl.h"

using namespace posthorn;
using namespace posthorn::ctl;

namespace {

/* An answer takes at most the daemon's own request timeout (60 s), plus slack. */
constexpr int REPLY_TIMEOUT_MS = 75 * 1000;

enum class Arg { none, optional, required };

struct Command {
	std::vector<std::string_view> words;
	uint32_t type;
	Arg arg;
	const char *arg_name;
	bool flag;
	Render render;
};

const std::vector<Command> &commands()
{
	static const std::vector<Command> table = {
		{{"show", "status"}, IMSG_CTL_SHOW_STATUS, Arg::none, "", false, Render::status},
		{{"show", "stats"}, IMSG_CTL_SHOW_STATS, Arg::none, "", false, Render::stats},
		{{"show", "queue"}, IMSG_CTL_SHOW_QUEUE, Arg::none, "", false, Render::queue},
		{{"show", "message"}, IMSG_CTL_SHOW_MESSAGE, Arg::required, "ID", false,
		    Render::message},
		{{"show", "transports"}, IMSG_CTL_SHOW_TRANSPORTS, Arg::none, "", false,
		    Render::transports},
		{{"monitor"}, IMSG_CTL_MONITOR, Arg::none, "", false, Render::monitor},
		{{"pause", "delivery"}, IMSG_CTL_PAUSE, Arg::optional, "TRANSPORT", false,
		    Render::paused},
		{{"resume", "delivery"}, IMSG_CTL_RESUME, Arg::optional, "TRANSPORT", false,
		    Render::paused},
		{{"schedule"}, IMSG_CTL_SCHEDULE, Arg::required, "ID|all", false, Render::scheduled},
		{{"remove"}, IMSG_CTL_REMOVE, Arg::required, "ID|all", false, Render::removed},
		{{"reload"}, IMSG_CTL_RELOAD, Arg::none, "", false, Render::reload},
		{{"log", "verbose"}, IMSG_CTL_LOG_VERBOSE, Arg::none, "", true, Render::log},
		{{"log", "brief"}, IMSG_CTL_LOG_VERBOSE, Arg::none, "", false, Render::log},
	};
	return table;
}

[[noreturn]] void usage()
{
	fprintf(stderr, "usage: posthornctl [-jv] [-s socket] command [argument]\n");
	fprintf(stderr, "commands:\n");
	for (const Command &c : commands()) {
		std::string line;
		for (std::string_view w : c.words)
			line += std::string(w) + " ";
		if (c.arg == Arg::required)
			line += c.arg_name;
		else if (c.arg == Arg::optional)
			line += "[" + std::string(c.arg_name) + "]";
		fprintf(stderr, "\t%s\n", line.c_str());
	}
	exit(1);
}

[[noreturn]] void die(const std::string &msg)
{
	fprintf(stderr, "posthornctl: %s\n", msg.c_str());
	exit(1);
}

/*
 * Keyword by keyword: an exact keyword wins, else a unique prefix among the
 * keywords possible at that position (so "sh q" is "show queue", "re" is
 * ambiguous). What follows the keywords is the argument.
 */
const Command &parse(const std::vector<std::string> &words, std::string &arg)
{
	std::vector<const Command *> cand;
	for (const Command &c : commands())
		cand.push_back(&c);
	size_t depth = 0;
	for (; depth < words.size() && depth < cand.front()->words.size(); depth++) {
		const std::string &w = words[depth];
		std::vector<std::string_view> hits;
		for (const Command *c : cand) {
			std::string_view kw = c->words[depth];
			if (kw.starts_with(w) && std::find(hits.begin(), hits.end(), kw) == hits.end())
				hits.push_back(kw);
		}
		if (auto exact = std::find(hits.begin(), hits.end(), w); exact != hits.end())
			hits = {*exact};
		if (hits.empty())
			die("unknown command: " + w);
		if (hits.size() > 1) {
			std::string list;
			for (std::string_view h : hits)
				list += (list.empty() ? "" : ", ") + std::string(h);
			die("ambiguous command: " + w + " (" + list + ")");
		}
		std::erase_if(cand, [&](const Command *c) { return c->words[depth] != hits.front(); });
	}
	if (depth < cand.front()->words.size())
		die("incomplete command");
	const Command &c = *cand.front();
	size_t nargs = words.size() - depth;
	if (nargs > 1 || (nargs == 1 && c.arg == Arg::none) || (nargs == 0 && c.arg == Arg::required))
		usage();
	if (nargs == 1)
		arg = words[depth];
	return c;
}

class Connection {
public:
	explicit Connection(const std::string &path);
	bool send(uint32_t type, const std::vector<uint8_t> &payload);
	/* The next message; false at end of stream. */
	bool next(Imsg &out, int timeout_ms);

private:
	std::string path_;
	Fd fd_;
	ImsgBuffer buf_;
};

Connection::Connection(const std::string &path) : path_(path)
{
	struct sockaddr_un sun = {};
	sun.sun_family = AF_UNIX;
	if (path.size() >= sizeof(sun.sun_path))
		die("socket path too long: " + path);
	memcpy(sun.sun_path, path.c_str(), path.size() + 1);
	fd_ = Fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
	if (!fd_)
		die(std::string("socket: ") + strerror(errno));
	if (connect(fd_.get(), reinterpret_cast<sockaddr *>(&sun), sizeof(sun)) == -1)
		die("connect " + path + ": " + strerror(errno));
	buf_.set_fd(fd_.get());
}

/* false when the daemon hung up first: it may have said why (a refusal). */
bool Connection::send(uint32_t type, const std::vector<uint8_t> &payload)
{
	if (!buf_.compose(type, payload))
		die("command too long");
	if (buf_.flush() == -1 || buf_.pending()) {
		if (errno != EPIPE && errno != ECONNRESET)
			die("write " + path_ + ": " + strerror(errno));
		return false;
	}
	return true;
}

bool Connection::next(Imsg &out, int timeout_ms)
{
	for (;;) {
		switch (buf_.get(out)) {
		case ImsgGet::ok: return true;
		case ImsgGet::error: die("malformed answer from posthornd");
		case ImsgGet::more: break;
		}
		struct pollfd pfd = {fd_.get(), POLLIN, 0};
		int n = poll(&pfd, 1, timeout_ms);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == 0)
			die("no answer from posthornd");
		ssize_t got = buf_.read();
		if (got == 0)
			return false;
		if (got == -1 && errno != EAGAIN && errno != EINTR)
			die("read " + path_ + ": " + strerror(errno));
	}
}

void print_errors(const cJSON *doc)
{
	const cJSON *errors = cJSON_GetObjectItemCaseSensitive(doc, "errors");
	const cJSON *e;
	cJSON_ArrayForEach(e, errors)
		if (cJSON_IsString(e))
			fprintf(stderr, "%s\n", e->valuestring);
}

int show_reply(const Command &c, const CtlReply &r, const Options &opts)
{
	Json doc = json_parse(r.document.empty() ? "{}" : r.document);
	if (!doc)
		die("unreadable answer from posthornd");
	if (!r.ok) {
		if (opts.json && !r.document.empty())
			printf("%s\n", r.document.c_str());
		else
			print_errors(doc.get());
		fprintf(stderr, "posthornctl: %s\n", r.error.c_str());
		return 1;
	}
	if (opts.json) {
		if (c.render != Render::monitor)
			printf("%s\n", r.document.empty() ? "{}" : r.document.c_str());
		return 0;
	}
	return render(c.render, doc.get(), opts) ? 0 : 1;
}

int monitor(Connection &conn, const Options &opts)
{
	setvbuf(stdout, nullptr, _IOLBF, 0);
	Imsg msg;
	while (conn.next(msg, -1)) {
		ImsgReader r(msg, false);
		std::string line = r.str();
		if (msg.type() != IMSG_CTL_EVENT || !r.end())
			die("malformed event from posthornd");
		render_event(line, opts);
	}
	die("posthornd closed the connection");
}

void on_interrupt(int) { _exit(0); }

} // namespace

int main(int argc, char *argv[])
{
	Options opts;
	int ch;
	while ((ch = getopt(argc, argv, "+hjs:v")) != -1) {
		switch (ch) {
		case 'j': opts.json = true; break;
		case 's': opts.socket = optarg; break;
		case 'v': opts.verbose = true; break;
		default: usage();
		}
	}
	std::vector<std::string> words(argv + optind, argv + argc);
	if (words.empty())
		usage();
	std::string arg;
	const Command &c = parse(words, arg);
	CtlCommand cmd{0, arg, c.flag || (c.type == IMSG_CTL_SHOW_MESSAGE && opts.verbose)};

	signal(SIGPIPE, SIG_IGN);
	Connection conn(opts.socket);
	bool sent = conn.send(c.type, ctl_command_encode(cmd, false));
	Imsg msg;
	if (!conn.next(msg, REPLY_TIMEOUT_MS))
		die("posthornd closed the connection");
	CtlReply reply;
	if (msg.type() != IMSG_CTL_REPLY || !ctl_reply_decode(msg, reply, false))
		die("malformed answer from posthornd");
	if (!sent && reply.ok)
		die("posthornd closed the connection");
	int status = show_reply(c, reply, opts);
	if (status != 0 || c.render != Render::monitor)
		return status;
	signal(SIGINT, on_interrupt);
	signal(SIGTERM, on_interrupt);
	return monitor(conn, opts);
}
