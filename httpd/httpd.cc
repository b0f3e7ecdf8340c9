/*
 * httpd: the HTTP front (evhttp). Chrooted, unprivileged; receives its listening
 * sockets and endpoint settings from the parent, submits to the relayer.
 * Endpoints, /healthz and /metrics arrive with the HTTP issue; this file is its home.
 */
#include "common/log.h"
#include "common/proc.h"

namespace posthorn {

namespace {

class Httpd final : public Child {
public:
	explicit Httpd(int verbose) : Child(ProcId::httpd, verbose) {}

protected:
	void configure(uint64_t generation, Config &&cfg, std::vector<Listener> &&listeners) override
	{
		cfg_ = std::move(cfg);
		listeners_ = std::move(listeners);
		log_event(LogLevel::debug, "httpd_configured",
		    {{"generation", generation}, {"listeners", listeners_.size()}});
	}

private:
	Config cfg_;
	std::vector<Listener> listeners_;
};

} // namespace

int httpd_main(int verbose)
{
	Httpd proc(verbose);
	return proc.run();
}

} // namespace posthorn
