/* The control process's pure parts. See control.h. */
#include "posthornd/control.h"

#include <algorithm>

#include "common/json.h"

namespace posthorn {

namespace {

constexpr uint32_t MAX_MEMBERS = 4096;

void add_listener(cJSON *a, const char *kind, const std::string &name, const std::string &addr)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "kind", kind);
	cJSON_AddStringToObject(o, "name", name.c_str());
	cJSON_AddStringToObject(o, "address", addr.c_str());
	cJSON_AddItemToArray(a, o);
}

void add_listeners(cJSON *root, const Config &cfg)
{
	cJSON *a = cJSON_AddArrayToObject(root, "listeners");
	for (const SmtpListenerConfig &l : cfg.smtp)
		for (const std::string &addr : l.listen)
			add_listener(a, "smtp", l.name, addr);
	if (cfg.http)
		for (const std::string &addr : cfg.http->listen)
			add_listener(a, "http", "http", addr);
	add_listener(a, "control", "control", cfg.global.control_socket);
}

void add_processes(cJSON *root, const ControlInfo &info)
{
	cJSON *a = cJSON_AddArrayToObject(root, "processes");
	for (const auto &[id, pid] : info.pids) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", proc_name(id));
		cJSON_AddNumberToObject(o, "pid", pid);
		cJSON_AddItemToArray(a, o);
	}
}

void add_names(cJSON *root, const Config &cfg)
{
	cJSON *t = cJSON_AddArrayToObject(root, "transports");
	for (const TransportConfig &tc : cfg.transports) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", tc.name.c_str());
		cJSON_AddStringToObject(o, "type", to_string(tc.type));
		cJSON_AddItemToArray(t, o);
	}
	cJSON *e = cJSON_AddArrayToObject(root, "endpoints");
	for (const EndpointConfig &ec : cfg.endpoints)
		cJSON_AddItemToArray(e, cJSON_CreateString(ec.path.c_str()));
}

} // namespace

ControlInfo control_info_decode(const Imsg &msg)
{
	ImsgReader r(msg);
	ControlInfo info;
	info.started = static_cast<time_t>(r.u64());
	info.privileged = r.u8() != 0;
	info.version = r.str(64);
	info.gid = r.u32();
	uint32_t n = r.u32();
	if (n > MAX_MEMBERS)
		fatalx("IMSG_CTL_INFO: %u group members", n);
	for (uint32_t i = 0; i < n; i++)
		info.members.push_back(r.u32());
	n = r.u32();
	for (uint32_t i = 0; i < n; i++) {
		uint32_t id = r.u32(), pid = r.u32();
		if (id > static_cast<uint32_t>(ProcId::control))
			fatalx("IMSG_CTL_INFO: bad process id %u", id);
		info.pids.emplace_back(static_cast<ProcId>(id), static_cast<pid_t>(pid));
	}
	r.end();
	return info;
}

bool control_allowed(const ControlInfo &info, uid_t self, const PeerCred &peer)
{
	if (peer.uid == 0 || (!info.privileged && peer.uid == self))
		return true;
	if (peer.gid == info.gid ||
	    std::find(peer.groups.begin(), peer.groups.end(), info.gid) != peer.groups.end())
		return true;
	return std::find(info.members.begin(), info.members.end(), peer.uid) != info.members.end();
}

std::string control_status_json(const ControlInfo &info, const Config &cfg, uint64_t generation,
    time_t now)
{
	Json root(cJSON_CreateObject());
	cJSON *o = root.get();
	cJSON_AddStringToObject(o, "version", info.version.c_str());
	cJSON_AddStringToObject(o, "hostname", cfg.global.hostname.c_str());
	cJSON_AddNumberToObject(o, "started", static_cast<double>(info.started));
	cJSON_AddNumberToObject(o, "uptime", static_cast<double>(std::max<time_t>(0, now - info.started)));
	cJSON_AddNumberToObject(o, "generation", static_cast<double>(generation));
	cJSON_AddBoolToObject(o, "privileged", info.privileged);
	cJSON_AddStringToObject(o, "config", cfg.path.c_str());
	add_listeners(o, cfg);
	add_processes(o, info);
	add_names(o, cfg);
	return json_print(o);
}

} // namespace posthorn
