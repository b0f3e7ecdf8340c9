/*
 * libtls server contexts for the listeners: built from the PEM contents the
 * parent sent (smtpd never opens a file), one per listener and generation,
 * shared by that generation's sessions.
 */
#pragma once

#include <tls.h>

#include <memory>
#include <string>

namespace posthorn {

struct TlsFree {
	void operator()(struct tls *t) const noexcept { tls_free(t); }
};
struct TlsConfigFree {
	void operator()(struct tls_config *c) const noexcept { tls_config_free(c); }
};
using TlsPtr = std::unique_ptr<struct tls, TlsFree>;
using TlsConfigPtr = std::unique_ptr<struct tls_config, TlsConfigFree>;

class TlsServer {
public:
	/*
	 * Cert and key PEM; a non-empty CA PEM asks clients for a certificate
	 * (optional: one that is presented must verify). nullptr with `why` on error.
	 */
	static std::unique_ptr<TlsServer> create(const std::string &cert, const std::string &key,
	    const std::string &ca, std::string &why);
	struct tls *ctx() const { return ctx_.get(); }
	bool asks_client_cert() const { return client_ca_; }

private:
	TlsConfigPtr config_;
	TlsPtr ctx_;
	bool client_ca_ = false;
};

} // namespace posthorn
