/*
 * The control protocol: posthornctl(8) <-> control <-> relayer and parent.
 *
 * A client sends one command (IMSG_CTL_SHOW_STATUS ... IMSG_CTL_LOG_VERBOSE)
 * with the payload `str arg, u8 flag`; control forwards what it cannot answer
 * itself to the relayer (queue, transports) or the parent (reload, log) with
 * a request id in front: `u64 reqid, str arg, u8 flag`. Every command is
 * answered with one IMSG_CTL_REPLY: `u64 reqid, u8 ok, str error`, the result
 * as a JSON document in a sealed memfd (so a queue listing or a message body
 * is never bounded by the 16 KiB of an imsg). `monitor` is answered once,
 * then followed by IMSG_CTL_EVENT lines until the client disconnects.
 *
 * A client is untrusted: its commands are decoded leniently with bounds, and
 * anything malformed closes that client only.
 */
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "imsg.h"

namespace posthorn {

inline constexpr size_t CTL_MAX_ARG = 1024;
/* A result document: a queue listing or a message with its body. */
inline constexpr size_t CTL_MAX_DOCUMENT = 256u << 20;

struct CtlCommand {
	uint64_t reqid = 0; /* 0 between posthornctl and control */
	std::string arg;
	bool flag = false;
};

/* With a request id (between daemon processes) or without (client side). */
std::vector<uint8_t> ctl_command_encode(const CtlCommand &c, bool with_reqid);
/* strict: the sender is a daemon process (malformed is fatal); else false when malformed. */
bool ctl_command_decode(const Imsg &msg, CtlCommand &c, bool with_reqid, bool strict);
/* true for the command types a client may send. */
bool ctl_is_client_command(uint32_t type);

struct CtlReply {
	uint64_t reqid = 0;
	bool ok = true;
	std::string error;    /* one line, for the operator */
	std::string document; /* JSON result, may be empty */
};

/* Compose an IMSG_CTL_REPLY, the document in a sealed memfd. */
bool ctl_reply_send(ImsgChannel &chan, const CtlReply &r);
/* Frame an IMSG_CTL_REPLY without the document; false when a memfd cannot be made. */
bool ctl_reply_frame(const CtlReply &r, std::vector<uint8_t> &payload, Fd &doc);
/* Decode; the document is read from the memfd when one came (must be sealed). */
bool ctl_reply_decode(const Imsg &msg, CtlReply &r, bool strict);
/* Only the request id, leaving the memfd in the message (to forward it). */
uint64_t ctl_reply_reqid(const Imsg &msg);

/* A submission id as the relayer uses them, or "all" when allowed. */
bool ctl_valid_target(const std::string &arg, bool all_allowed);

} // namespace posthorn
