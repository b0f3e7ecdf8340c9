/*
 * The parent: parse the config, bind listeners, create directories, start
 * the children (fork + re-exec with an empty environment), push each its
 * config slice, then supervise: SIGHUP reloads, SIGTERM/SIGINT drains, a
 * child that dies takes the daemon down.
 */
#include "parent.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <map>
#include <memory>

#include <event2/event.h>

#include "common/ctl.h"
#include "common/json.h"
#include "common/log.h"
#include "common/memfd.h"
#include "common/proc.h"
#include "posthornd/listen.h"

namespace posthorn {

namespace {

constexpr int SHUTDOWN_GRACE_SECONDS = 20; /* children drain up to 15 s */
constexpr int VERBOSE_DEBUG = 3;            /* posthornctl log verbose: every level */
constexpr size_t MAX_GROUP_MEMBERS = 2000;  /* what one IMSG_CTL_INFO carries */
constexpr const char *VERSION = "0.1.0";

struct Credentials {
	uid_t uid;
	gid_t gid;
};

bool lookup_user(const std::string &name, Credentials &out, std::string &why)
{
	errno = 0;
	struct passwd *pw = getpwnam(name.c_str());
	if (!pw) {
		why = "user " + name + " does not exist (create it as INSTALL describes)";
		return false;
	}
	out = {pw->pw_uid, pw->pw_gid};
	return true;
}

/* Users whose primary group is gid, and the group's listed members. */
std::vector<uid_t> group_members(gid_t gid)
{
	std::vector<uid_t> uids;
	setpwent();
	while (struct passwd *pw = getpwent())
		if (pw->pw_gid == gid && uids.size() < MAX_GROUP_MEMBERS)
			uids.push_back(pw->pw_uid);
	endpwent();
	std::vector<std::string> names;
	if (struct group *gr = getgrgid(gid))
		for (char **m = gr->gr_mem; *m; m++)
			names.emplace_back(*m);
	for (const std::string &name : names)
		if (struct passwd *pw = getpwnam(name.c_str()); pw && uids.size() < MAX_GROUP_MEMBERS)
			uids.push_back(pw->pw_uid);
	return uids;
}

std::string self_exe()
{
	char buf[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
	if (n <= 0)
		fatal("readlink /proc/self/exe");
	return std::string(buf, static_cast<size_t>(n));
}

/* mkdir -p with the final component's owner and mode enforced. */
bool make_dir(const std::string &path, uid_t uid, gid_t gid, mode_t mode, bool set_owner,
    std::string &why)
{
	for (size_t i = 1; i <= path.size(); i++) {
		if (i != path.size() && path[i] != '/')
			continue;
		std::string part = path.substr(0, i);
		if (mkdir(part.c_str(), 0755) == -1 && errno != EEXIST) {
			why = "mkdir " + part + ": " + strerror(errno);
			return false;
		}
	}
	struct stat st;
	if (stat(path.c_str(), &st) == -1 || !S_ISDIR(st.st_mode)) {
		why = path + " is not a directory";
		return false;
	}
	if ((set_owner && chown(path.c_str(), uid, gid) == -1) || chmod(path.c_str(), mode) == -1) {
		why = path + ": " + strerror(errno);
		return false;
	}
	return true;
}

std::string describe_status(int status)
{
	if (WIFSIGNALED(status))
		return std::string("killed by signal ") + std::to_string(WTERMSIG(status)) + " (" +
		    strsignal(WTERMSIG(status)) + ")";
	if (WIFEXITED(status))
		return "exited with status " + std::to_string(WEXITSTATUS(status));
	return "stopped";
}

class Parent {
public:
	explicit Parent(const ParentOptions &opts) : opts_(opts) {}
	~Parent();
	int run();

private:
	struct ChildState {
		ProcId id;
		pid_t pid = -1;
		std::unique_ptr<ImsgChannel> chan;
		uint64_t loaded = 0;
	};

	bool load_config(ConfigResult &res);
	bool resolve_credentials(const Config &cfg, std::string &why);
	bool prepare_dirs(std::string &why);
	bool bind_sockets(const Config &cfg, std::map<std::string, Fd> &out, std::string &why);
	void start_child(ChildState &c, Fd ours, Fd theirs);
	void send_setup(ChildState &c);
	void send_peers();
	void send_config(ChildState &c);
	std::vector<Listener> listeners_for(ProcId id) const;
	void child_imsg(ChildState &c, Imsg &msg);
	void check_all_loaded();
	bool reload(std::vector<std::string> &errors);
	void send_control_info();
	void control_imsg(Imsg &msg);
	void control_log_verbose(const CtlCommand &cmd);
	void control_reload(const CtlCommand &cmd);
	void reap();
	void begin_shutdown(int status);
	void finish_if_done();
	ChildState &child(ProcId id) { return children_[static_cast<size_t>(id) - 1]; }

	static void on_signal(int sig, short, void *arg) noexcept;
	static void on_kill_timer(int, short, void *arg) noexcept;

	ParentOptions opts_;
	Config cfg_;
	uint64_t generation_ = 0;
	uint64_t announced_ = 0;
	bool privileged_ = false;
	Credentials front_{}, relay_{};
	std::string exe_;
	std::map<std::string, Fd> sockets_; /* by address: "smtp 0.0.0.0:25", "http ..." */
	Fd control_;
	std::array<ChildState, 4> children_{{{ProcId::smtpd}, {ProcId::httpd}, {ProcId::relayer},
	    {ProcId::control}}};
	event_base *base_ = nullptr;
	std::vector<event *> events_;
	event *kill_timer_ = nullptr;
	bool quitting_ = false;
	int exit_status_ = 0;
	time_t started_ = 0;
	/* posthornctl reload requests, answered once their generation is loaded. */
	std::vector<std::pair<uint64_t, uint64_t>> reload_waiters_; /* reqid, generation */
};

Parent::~Parent()
{
	for (ChildState &c : children_)
		c.chan.reset();
	for (event *ev : events_)
		event_free(ev);
	if (kill_timer_)
		event_free(kill_timer_);
	if (base_)
		event_base_free(base_);
}

bool Parent::load_config(ConfigResult &res)
{
	res = config_parse_file(opts_.config_path);
	for (const ConfigError &e : res.errors)
		log_event(LogLevel::error, "config_error", {{"error", e.to_string()}});
	return res.ok();
}

bool Parent::resolve_credentials(const Config &cfg, std::string &why)
{
	if (!privileged_) {
		front_ = relay_ = {getuid(), getgid()};
		return true;
	}
	return lookup_user(cfg.global.user, front_, why) &&
	    lookup_user(cfg.global.relay_user, relay_, why);
}

bool Parent::prepare_dirs(std::string &why)
{
	if (privileged_) {
		if (!make_dir(cfg_.global.chroot, 0, 0, 0755, true, why))
			return false;
		return make_dir(cfg_.global.spool, relay_.uid, relay_.gid, 0700, true, why);
	}
	return make_dir(cfg_.global.spool, 0, 0, 0700, false, why);
}

bool Parent::bind_sockets(const Config &cfg, std::map<std::string, Fd> &out, std::string &why)
{
	auto bind_one = [&](const std::string &key, const std::string &addr) {
		if (out.count(key))
			return true;
		auto it = sockets_.find(key);
		if (it != sockets_.end()) {
			out[key] = Fd(fcntl(it->second.get(), F_DUPFD_CLOEXEC, 0));
			return true;
		}
		Fd fd = listen_tcp(addr, why);
		if (!fd)
			return false;
		out[key] = std::move(fd);
		return true;
	};
	for (const SmtpListenerConfig &l : cfg.smtp)
		for (const std::string &addr : l.listen)
			if (!bind_one(addr, addr))
				return false;
	if (cfg.http)
		for (const std::string &addr : cfg.http->listen)
			if (!bind_one(addr, addr))
				return false;
	return true;
}

std::vector<Listener> Parent::listeners_for(ProcId id) const
{
	std::vector<Listener> out;
	auto add = [&](const char *kind, const std::string &name, const std::string &addr, int fd) {
		Listener l;
		l.kind = kind;
		l.name = name;
		l.address = addr;
		l.fd = Fd(fcntl(fd, F_DUPFD_CLOEXEC, 0));
		if (!l.fd)
			fatal("dup listener");
		out.push_back(std::move(l));
	};
	if (id == ProcId::smtpd)
		for (const SmtpListenerConfig &l : cfg_.smtp)
			for (const std::string &addr : l.listen)
				add("smtp", l.name, addr, sockets_.at(addr).get());
	if (id == ProcId::httpd && cfg_.http)
		for (const std::string &addr : cfg_.http->listen)
			add("http", "http", addr, sockets_.at(addr).get());
	if (id == ProcId::control)
		add("control", "control", cfg_.global.control_socket, control_.get());
	return out;
}

void Parent::start_child(ChildState &c, Fd ours, Fd end)
{
	pid_t pid = fork();
	if (pid == -1)
		fatal("fork");
	if (pid == 0) {
		/* fd 3 is the channel; nothing else but stdio crosses the exec. */
		if (end.get() == 3)
			fcntl(3, F_SETFD, 0);
		else if (dup2(end.get(), 3) == -1)
			_exit(127);
		close_range(4, ~0U, 0);
		std::vector<std::string> args = {"posthornd", "-x", proc_name(c.id)};
		if (opts_.foreground)
			args.push_back("-d");
		for (int i = 0; i < opts_.verbose; i++)
			args.push_back("-v");
		std::vector<char *> argv;
		for (std::string &a : args)
			argv.push_back(a.data());
		argv.push_back(nullptr);
		char *envp[] = {nullptr};
		execve(exe_.c_str(), argv.data(), envp);
		_exit(127);
	}
	c.pid = pid;
	end.reset();
	c.chan = std::make_unique<ImsgChannel>(
	    base_, std::move(ours), [this, &c](ImsgChannel &, Imsg &m) { child_imsg(c, m); },
	    [&c](ImsgChannel &) { log_debug("channel to %s closed", proc_name(c.id)); });
	c.chan->name = proc_name(c.id);
}

void Parent::send_setup(ChildState &c)
{
	ProcSetup s;
	bool relayer = c.id == ProcId::relayer;
	const Credentials &cred = relayer ? relay_ : front_;
	s.uid = cred.uid;
	s.gid = cred.gid;
	if (privileged_ && !relayer)
		s.chroot = cfg_.global.chroot;
	s.workdir = relayer ? cfg_.global.spool : "/";
	s.dumpable = !relayer;
	s.log = cfg_.global.log;
	c.chan->compose(IMSG_PROC_SETUP, proc_setup_encode(s));
}

void Parent::send_peers()
{
	for (const PeerLink &link : PEER_LINKS) {
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
			fatal("socketpair");
		ImsgWriter wa, wb;
		wa.u32(static_cast<uint32_t>(link.b));
		wb.u32(static_cast<uint32_t>(link.a));
		child(link.a).chan->compose(IMSG_PROC_PEER, wa, Fd(sv[0]));
		child(link.b).chan->compose(IMSG_PROC_PEER, wb, Fd(sv[1]));
	}
}

ConfigSlice slice_for(ProcId id)
{
	switch (id) {
	case ProcId::smtpd: return ConfigSlice::smtpd;
	case ProcId::httpd: return ConfigSlice::httpd;
	case ProcId::relayer: return ConfigSlice::relayer;
	case ProcId::control: return ConfigSlice::control;
	case ProcId::parent: break;
	}
	return ConfigSlice::control;
}

void Parent::send_config(ChildState &c)
{
	Fd doc = memfd_sealed("posthorn-config", config_to_json(cfg_, slice_for(c.id)));
	if (!doc)
		fatal("memfd for config");
	ImsgWriter w;
	w.u64(generation_);
	c.chan->compose(IMSG_CONF_START, w, std::move(doc));
	for (Listener &l : listeners_for(c.id)) {
		ImsgWriter lw;
		lw.u64(generation_).str(l.kind).str(l.name).str(l.address);
		c.chan->compose(IMSG_CONF_LISTENER, lw, std::move(l.fd));
	}
	c.chan->compose(IMSG_CONF_END, w);
}

void Parent::child_imsg(ChildState &c, Imsg &msg)
{
	switch (msg.type()) {
	case IMSG_CONF_LOADED: {
		ImsgReader r(msg);
		c.loaded = r.u64();
		r.end();
		check_all_loaded();
		break;
	}
	case IMSG_CTL_RELOAD:
	case IMSG_CTL_LOG_VERBOSE:
		if (c.id != ProcId::control)
			fatalx("%s from %s", imsg_type_name(msg.type()), proc_name(c.id));
		control_imsg(msg);
		break;
	default:
		fatalx("unexpected %s from %s", imsg_type_name(msg.type()), proc_name(c.id));
	}
}

void Parent::check_all_loaded()
{
	for (const ChildState &c : children_)
		if (c.loaded != generation_)
			return;
	if (announced_ == generation_)
		return;
	announced_ = generation_;
	if (generation_ == 1)
		log_event(LogLevel::info, "posthornd_started",
		    {{"version", VERSION}, {"generation", generation_}, {"pid", getpid()},
			{"smtp_listeners", cfg_.smtp.size()}, {"endpoints", cfg_.endpoints.size()},
			{"transports", cfg_.transports.size()}});
	else
		log_event(LogLevel::info, "config_reloaded", {{"generation", generation_}});
	for (const auto &[reqid, gen] : reload_waiters_) {
		Json doc(cJSON_CreateObject());
		cJSON_AddNumberToObject(doc.get(), "generation", static_cast<double>(gen));
		if (ImsgChannel *control = child(ProcId::control).chan.get())
			ctl_reply_send(*control, {reqid, true, "", json_print(doc.get())});
	}
	reload_waiters_.clear();
}

/* What the control process cannot learn in its chroot: pids, start time, who may connect. */
void Parent::send_control_info()
{
	ImsgWriter w;
	w.u64(static_cast<uint64_t>(started_)).u8(privileged_).str(VERSION).u32(front_.gid);
	std::vector<uid_t> members;
	if (privileged_)
		members = group_members(front_.gid);
	w.u32(static_cast<uint32_t>(members.size()));
	for (uid_t uid : members)
		w.u32(uid);
	w.u32(static_cast<uint32_t>(children_.size() + 1));
	w.u32(static_cast<uint32_t>(ProcId::parent)).u32(static_cast<uint32_t>(getpid()));
	for (const ChildState &c : children_)
		w.u32(static_cast<uint32_t>(c.id)).u32(static_cast<uint32_t>(c.pid));
	child(ProcId::control).chan->compose(IMSG_CTL_INFO, w);
}

void Parent::control_imsg(Imsg &msg)
{
	CtlCommand cmd;
	ctl_command_decode(msg, cmd, true, true);
	if (msg.type() == IMSG_CTL_LOG_VERBOSE)
		control_log_verbose(cmd);
	else
		control_reload(cmd);
}

/* posthornctl log verbose|brief: debug everywhere, or back to the configured level and -v. */
void Parent::control_log_verbose(const CtlCommand &cmd)
{
	int verbose = cmd.flag ? VERBOSE_DEBUG : opts_.verbose;
	log_set_verbose(verbose);
	ImsgWriter w;
	w.u32(static_cast<uint32_t>(verbose));
	for (ChildState &c : children_)
		if (c.chan)
			c.chan->compose(IMSG_LOG_VERBOSE, w);
	log_event(LogLevel::info, "log_verbosity", {{"verbose", cmd.flag}});
	ctl_reply_send(*child(ProcId::control).chan, {cmd.reqid, true, "", ""});
}

void Parent::control_reload(const CtlCommand &cmd)
{
	std::vector<std::string> errors;
	if (quitting_)
		errors.push_back("posthornd is shutting down");
	else if (reload(errors)) {
		reload_waiters_.emplace_back(cmd.reqid, generation_);
		return;
	}
	Json doc(cJSON_CreateObject());
	cJSON *a = cJSON_AddArrayToObject(doc.get(), "errors");
	for (const std::string &e : errors)
		cJSON_AddItemToArray(a, cJSON_CreateString(e.c_str()));
	std::string summary = std::to_string(errors.size()) + (errors.size() == 1 ? " error" : " errors");
	ctl_reply_send(*child(ProcId::control).chan,
	    {cmd.reqid, false, "reload failed: " + summary, json_print(doc.get())});
}

bool Parent::reload(std::vector<std::string> &errors)
{
	log_event(LogLevel::info, "config_reload_requested", {{"path", opts_.config_path}});
	ConfigResult res;
	if (!load_config(res)) {
		log_event(LogLevel::error, "config_reload_failed",
		    {{"errors", res.errors.size()}, {"generation", generation_}});
		for (const ConfigError &e : res.errors)
			errors.push_back(e.to_string());
		return false;
	}
	Config next = std::move(*res.config);
	/* These shape the processes themselves; they change with a restart only. */
	auto keep = [&](std::string &now, const std::string &old, const char *key) {
		if (now != old) {
			log_event(LogLevel::warn, "config_restart_required", {{"key", key}});
			now = old;
		}
	};
	keep(next.global.user, cfg_.global.user, "user");
	keep(next.global.relay_user, cfg_.global.relay_user, "relay_user");
	keep(next.global.chroot, cfg_.global.chroot, "chroot");
	keep(next.global.spool, cfg_.global.spool, "spool");
	keep(next.global.control_socket, cfg_.global.control_socket, "control_socket");
	if (next.global.log.dest != cfg_.global.log.dest) {
		log_event(LogLevel::warn, "config_restart_required", {{"key", "log"}});
		next.global.log.dest = cfg_.global.log.dest;
	}
	std::map<std::string, Fd> sockets;
	std::string why;
	if (!bind_sockets(next, sockets, why)) {
		log_event(LogLevel::error, "config_reload_failed",
		    {{"error", why}, {"generation", generation_}});
		errors.push_back(why);
		return false;
	}
	sockets_ = std::move(sockets);
	cfg_ = std::move(next);
	log_apply(cfg_.global.log);
	generation_++;
	send_control_info();
	for (ChildState &c : children_)
		send_config(c);
	return true;
}

void Parent::reap()
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (ChildState &c : children_) {
			if (c.pid != pid)
				continue;
			c.pid = -1;
			c.chan.reset();
			if (!quitting_ || WIFSIGNALED(status) || WEXITSTATUS(status) != 0) {
				log_event(LogLevel::error, "child_exited",
				    {{"child", proc_name(c.id)}, {"pid", pid},
					{"status", describe_status(status)}});
				if (!quitting_)
					log_warnx("%s (pid %d) %s; stopping posthornd",
					    proc_name(c.id), pid, describe_status(status).c_str());
			}
			if (!quitting_)
				begin_shutdown(1);
		}
	}
	finish_if_done();
}

void Parent::begin_shutdown(int status)
{
	if (!quitting_)
		exit_status_ = status;
	quitting_ = true;
	for (ChildState &c : children_)
		if (c.pid > 0)
			kill(c.pid, SIGTERM);
	if (!kill_timer_) {
		kill_timer_ = evtimer_new(base_, on_kill_timer, this);
		struct timeval tv = {SHUTDOWN_GRACE_SECONDS, 0};
		evtimer_add(kill_timer_, &tv);
	}
	finish_if_done();
}

void Parent::finish_if_done()
{
	if (!quitting_)
		return;
	for (const ChildState &c : children_)
		if (c.pid > 0)
			return;
	event_base_loopbreak(base_);
}

void Parent::on_kill_timer(int, short, void *arg) noexcept
{
	auto *self = static_cast<Parent *>(arg);
	for (ChildState &c : self->children_)
		if (c.pid > 0) {
			log_warnx("%s did not stop in time, killing it", proc_name(c.id));
			kill(c.pid, SIGKILL);
		}
}

void Parent::on_signal(int sig, short, void *arg) noexcept
{
	auto *self = static_cast<Parent *>(arg);
	switch (sig) {
	case SIGHUP:
		if (!self->quitting_) {
			std::vector<std::string> errors; /* logged already */
			self->reload(errors);
		}
		break;
	case SIGCHLD:
		self->reap();
		break;
	case SIGTERM:
	case SIGINT:
		if (!self->quitting_)
			log_event(LogLevel::info, "shutdown", {{"signal", strsignal(sig)}});
		self->begin_shutdown(0);
		break;
	}
}

void detach()
{
	pid_t pid = fork();
	if (pid == -1)
		fatal("fork");
	if (pid > 0)
		_exit(0);
	if (setsid() == -1)
		fatal("setsid");
	int null = open("/dev/null", O_RDWR);
	if (null == -1)
		fatal("/dev/null");
	dup2(null, STDIN_FILENO);
	dup2(null, STDOUT_FILENO);
	if (log_settings().dest == LogDest::syslog)
		dup2(null, STDERR_FILENO);
	if (null > STDERR_FILENO)
		close(null);
}

int Parent::run()
{
	log_init("parent", {});
	log_set_verbose(opts_.verbose);
	privileged_ = geteuid() == 0;
	exe_ = self_exe();
	started_ = time(nullptr);

	ConfigResult res;
	if (!load_config(res))
		fatalx("%zu configuration error%s in %s", res.errors.size(),
		    res.errors.size() == 1 ? "" : "s", opts_.config_path.c_str());
	cfg_ = std::move(*res.config);
	if (opts_.foreground)
		cfg_.global.log.dest = LogDest::stderr_;
	log_apply(cfg_.global.log);
	if (!privileged_)
		log_event(LogLevel::warn, "unprivileged_mode",
		    {{"uid", getuid()},
			{"detail", "not started as root: all processes share this uid, no chroot"}});

	std::string why;
	if (!resolve_credentials(cfg_, why) || !prepare_dirs(why) ||
	    !bind_sockets(cfg_, sockets_, why))
		fatalx("%s", why.c_str());
	control_ = listen_unix(cfg_.global.control_socket, front_.gid, privileged_, why);
	if (!control_)
		fatalx("%s", why.c_str());

	if (!opts_.foreground)
		detach();
	signal(SIGPIPE, SIG_IGN);
	base_ = event_base_new();
	if (!base_)
		fatalx("event_base_new");
	for (int sig : {SIGHUP, SIGCHLD, SIGTERM, SIGINT}) {
		event *ev = evsignal_new(base_, sig, on_signal, this);
		evsignal_add(ev, nullptr);
		events_.push_back(ev);
	}

	generation_ = 1;
	for (ChildState &c : children_) {
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
			fatal("socketpair");
		start_child(c, Fd(sv[0]), Fd(sv[1]));
		send_setup(c);
	}
	send_peers();
	send_control_info();
	for (ChildState &c : children_)
		send_config(c);

	event_base_dispatch(base_);
	unlink(cfg_.global.control_socket.c_str());
	log_event(LogLevel::info, "posthornd_stopped", {{"status", exit_status_}});
	return exit_status_;
}

} // namespace

bool parent_check_runtime(const Config &cfg, std::string &why)
{
	if (geteuid() != 0)
		return true;
	Credentials c;
	return lookup_user(cfg.global.user, c, why) && lookup_user(cfg.global.relay_user, c, why);
}

int parent_main(const ParentOptions &opts)
{
	Parent parent(opts);
	return parent.run();
}

} // namespace posthorn
