/*
 * control: serves posthornctl on the control socket the parent created.
 * Chrooted, unprivileged, holds no secrets. The command set arrives with the
 * operations issue; this file is its home.
 */
#include "common/log.h"
#include "common/proc.h"

namespace posthorn {

namespace {

class Control final : public Child {
public:
	explicit Control(int verbose) : Child(ProcId::control, verbose) {}

protected:
	void configure(uint64_t generation, Config &&cfg, std::vector<Listener> &&listeners) override
	{
		cfg_ = std::move(cfg);
		/* The control socket is the same for every generation; keep the first. */
		if (!socket_ && !listeners.empty())
			socket_ = std::move(listeners.front().fd);
		log_event(LogLevel::debug, "control_configured", {{"generation", generation}});
	}

private:
	Config cfg_;
	Fd socket_;
};

} // namespace

int control_main(int verbose)
{
	Control proc(verbose);
	return proc.run();
}

} // namespace posthorn
