/*
 * smtpd's share of the DESIGN §9 metrics, in this process's registry
 * (common/stats.h), read by the control process with IMSG_STATS_REQUEST.
 * Fronts count what they see: received, validation and AUTH failures,
 * active sessions, and the outcome of sync-mode submissions (the relayer
 * counts queue-mode deliveries). endpoint = "smtp:<listener>".
 */
#pragma once

#include <cstdint>
#include <string>

#include "common/config.h"
#include "common/submit.h"

namespace posthorn {

void metric_sessions_active(uint64_t n);
void metric_received(const std::string &endpoint);
void metric_validation_failed(const std::string &endpoint);
void metric_auth_failed(const std::string &endpoint);
/* A relayer answer; latency in seconds from the end of DATA. */
void metric_result(const std::string &endpoint, const std::string &transport,
    const SubmitResult &r, double latency);

} // namespace posthorn
