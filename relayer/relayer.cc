/*
 * relayer: the only process holding provider credentials. Owns the spool,
 * schedules deliveries and talks to providers. Not chrooted (it needs CA
 * certificates and the resolver), runs as relay_user, not dumpable.
 * Spool, scheduler and transports arrive with the relayer issue.
 */
#include <sys/stat.h>

#include "common/log.h"
#include "common/proc.h"

namespace posthorn {

namespace {

class Relayer final : public Child {
public:
	explicit Relayer(int verbose) : Child(ProcId::relayer, verbose) {}

protected:
	void configure(uint64_t generation, Config &&cfg, std::vector<Listener> &&) override
	{
		cfg_ = std::move(cfg);
		struct stat st;
		if (stat(".", &st) == -1 || !S_ISDIR(st.st_mode))
			fatal("spool %s", cfg_.global.spool.c_str());
		log_event(LogLevel::debug, "relayer_configured",
		    {{"generation", generation}, {"transports", cfg_.transports.size()}});
	}

private:
	Config cfg_;
};

} // namespace

int relayer_main(int verbose)
{
	Relayer proc(verbose);
	return proc.run();
}

} // namespace posthorn
