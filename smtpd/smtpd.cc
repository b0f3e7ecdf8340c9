/*
 * smtpd: the SMTP front. Chrooted, unprivileged; receives its listening
 * sockets and listener settings from the parent, submits to the relayer.
 * The session engine arrives with the SMTP issue; this file is its home.
 */
#include "common/log.h"
#include "common/proc.h"

namespace posthorn {

namespace {

class Smtpd final : public Child {
public:
	explicit Smtpd(int verbose) : Child(ProcId::smtpd, verbose) {}

protected:
	void configure(uint64_t generation, Config &&cfg, std::vector<Listener> &&listeners) override
	{
		cfg_ = std::move(cfg);
		listeners_ = std::move(listeners);
		log_event(LogLevel::debug, "smtpd_configured",
		    {{"generation", generation}, {"listeners", listeners_.size()}});
	}

private:
	Config cfg_;
	std::vector<Listener> listeners_;
};

} // namespace

int smtpd_main(int verbose)
{
	Smtpd proc(verbose);
	return proc.run();
}

} // namespace posthorn
