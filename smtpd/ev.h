/* RAII for libevent events and small helpers shared by the smtpd modules. */
#pragma once

#include <event2/event.h>

#include <memory>

namespace posthorn {

struct EventFree {
	void operator()(event *ev) const noexcept { event_free(ev); }
};
using EventPtr = std::unique_ptr<event, EventFree>;

inline void evtimer_arm(event *ev, double seconds)
{
	struct timeval tv;
	tv.tv_sec = static_cast<time_t>(seconds);
	tv.tv_usec = static_cast<suseconds_t>((seconds - static_cast<double>(tv.tv_sec)) * 1e6);
	evtimer_add(ev, &tv);
}

} // namespace posthorn
