/*
 * The relayer's side of posthornctl(8): the commands the control process
 * forwards (show queue, show message, show transports, pause, resume,
 * schedule, remove), statistics, and the monitor stream of relay events.
 */
#pragma once

#include "common/imsg.h"
#include "relayer/queue.h"

namespace posthorn {

/* A message from the control process; false when it is not one of ours. */
bool relayer_ctl_imsg(ImsgChannel &control, Imsg &msg, DeliveryQueue &queue);

/* The JSON documents of the answers (exposed for tests). */
std::string relayer_queue_json(const DeliveryQueue &queue, int64_t now);
std::string relayer_message_json(const SpoolEntry &e, bool running, bool with_body);
std::string relayer_transports_json(const DeliveryQueue &queue);

} // namespace posthorn
