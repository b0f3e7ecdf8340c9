#include "tls.h"

namespace posthorn {

namespace {
const uint8_t *bytes(const std::string &s) { return reinterpret_cast<const uint8_t *>(s.data()); }
std::string err(const char *e) { return e ? e : "unknown TLS error"; }
} // namespace

std::unique_ptr<TlsServer> TlsServer::create(const std::string &cert, const std::string &key,
    const std::string &ca, std::string &why)
{
	if (tls_init() == -1) {
		why = "tls_init failed";
		return nullptr;
	}
	auto s = std::make_unique<TlsServer>();
	s->config_.reset(tls_config_new());
	s->ctx_.reset(tls_server());
	if (!s->config_ || !s->ctx_) {
		why = "out of memory";
		return nullptr;
	}
	tls_config *c = s->config_.get();
	if (tls_config_set_keypair_mem(c, bytes(cert), cert.size(), bytes(key), key.size()) == -1) {
		why = err(tls_config_error(c));
		return nullptr;
	}
	if (!ca.empty()) {
		if (tls_config_set_ca_mem(c, bytes(ca), ca.size()) == -1) {
			why = err(tls_config_error(c));
			return nullptr;
		}
		/* Optional at the TLS layer so a client without one gets an SMTP answer. */
		tls_config_verify_client_optional(c);
		s->client_ca_ = true;
	}
	uint32_t protocols = 0;
	if (tls_config_parse_protocols(&protocols, "secure") == 0)
		tls_config_set_protocols(c, protocols);
	if (tls_configure(s->ctx_.get(), c) == -1) {
		why = err(tls_error(s->ctx_.get()));
		return nullptr;
	}
	/* The private key now lives in the TLS context only. */
	tls_config_clear_keys(c);
	return s;
}

} // namespace posthorn
