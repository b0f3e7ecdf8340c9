#include "metrics.h"

#include "common/stats.h"

namespace posthorn {

void metric_sessions_active(uint64_t n)
{
	process_stats().set("posthorn_smtp_sessions_active", {}, static_cast<double>(n));
}

void metric_received(const std::string &endpoint)
{
	process_stats().add("posthorn_submissions_received_total", {endpoint});
}

void metric_validation_failed(const std::string &endpoint)
{
	process_stats().add("posthorn_validation_failed_total", {endpoint});
}

void metric_auth_failed(const std::string &endpoint)
{
	process_stats().add("posthorn_auth_failed_total", {endpoint});
}

void metric_result(const std::string &endpoint, const std::string &transport,
    const SubmitResult &r, double latency)
{
	Stats &s = process_stats();
	switch (r.status) {
	case SubmitStatus::queued:
		break; /* the relayer counts the delivery */
	case SubmitStatus::sent:
		s.add("posthorn_submissions_sent_total", {endpoint, transport});
		s.observe("posthorn_send_latency_seconds", {endpoint, transport}, latency);
		break;
	case SubmitStatus::temp_fail:
		/* sync: the attempts failed; queue: the message never reached the spool */
		s.add("posthorn_submissions_failed_total", {endpoint, transport, "transient"});
		break;
	case SubmitStatus::perm_fail:
		s.add("posthorn_submissions_failed_total", {endpoint, transport, "permanent"});
		break;
	case SubmitStatus::rejected:
		s.add("posthorn_validation_failed_total", {endpoint});
		break;
	}
}

} // namespace posthorn
