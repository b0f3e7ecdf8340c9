/* The outcome vocabulary, the HTTP status classification and the transport factory. */
#include "relayer/transport.h"

#include "relayer/http_client.h"
#include "relayer/transport_http.h"

namespace posthorn {

const char *to_string(DeliveryOutcome o)
{
	switch (o) {
	case DeliveryOutcome::sent:
		return "sent";
	case DeliveryOutcome::transient:
		return "transient";
	case DeliveryOutcome::permanent:
		return "permanent";
	}
	return "unknown";
}

/* DESIGN §3. Anything that is neither success nor a definite client error may succeed later. */
DeliveryOutcome classify_http_status(long status)
{
	if (status >= 200 && status <= 299)
		return DeliveryOutcome::sent;
	if (status == 408 || status == 425 || status == 429)
		return DeliveryOutcome::transient;
	if (status >= 400 && status <= 499)
		return DeliveryOutcome::permanent;
	return DeliveryOutcome::transient;
}

std::unique_ptr<Transport> make_transport(const TransportConfig &cfg, HttpClient &http)
{
	switch (cfg.type) {
	case TransportType::postmark:
		return make_postmark_transport(cfg, http);
	case TransportType::resend:
		return make_resend_transport(cfg, http);
	case TransportType::mailgun:
		return make_mailgun_transport(cfg, http);
	case TransportType::ses:
		return make_ses_transport(cfg, http);
	case TransportType::smtp:
		return make_smtp_transport(cfg, http);
	case TransportType::file:
		return make_file_transport(cfg);
	}
	return nullptr;
}

} // namespace posthorn
