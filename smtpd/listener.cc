#include "listener.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>

#include "common/log.h"

namespace posthorn {

namespace {
constexpr int ACCEPTS_PER_WAKEUP = 64;
}

std::string peer_address(const sockaddr_storage &ss)
{
	char host[NI_MAXHOST];
	socklen_t len = ss.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
	if (getnameinfo(reinterpret_cast<const sockaddr *>(&ss), len, host, sizeof(host), nullptr, 0,
	    NI_NUMERICHOST) != 0)
		return "unknown";
	std::string h(host);
	if (h.rfind("::ffff:", 0) == 0 && h.find('.') != std::string::npos)
		h.erase(0, 7); /* a v4-mapped address counts as the v4 address */
	return h;
}

SmtpListener::SmtpListener(event_base *base, Fd fd, std::shared_ptr<const ListenerCtx> ctx, AcceptFn fn)
    : fd_(std::move(fd)), ctx_(std::move(ctx)), fn_(std::move(fn))
{
	ev_.reset(event_new(base, fd_.get(), EV_READ | EV_PERSIST, on_accept, this));
	pause_ev_.reset(evtimer_new(base, on_resume, this));
	event_add(ev_.get(), nullptr);
}

void SmtpListener::on_accept(int, short, void *arg) noexcept
{
	static_cast<SmtpListener *>(arg)->accept_some();
}

void SmtpListener::on_resume(int, short, void *arg) noexcept
{
	auto *self = static_cast<SmtpListener *>(arg);
	event_add(self->ev_.get(), nullptr);
}

void SmtpListener::accept_some()
{
	for (int i = 0; i < ACCEPTS_PER_WAKEUP; i++) {
		sockaddr_storage ss = {};
		socklen_t len = sizeof(ss);
		Fd c(accept4(fd_.get(), reinterpret_cast<sockaddr *>(&ss), &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC));
		if (!c) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				log_warn("smtp listener %s: accept", ctx_->cfg.name.c_str());
				event_del(ev_.get());
				evtimer_arm(pause_ev_.get(), 1);
			}
			return; /* EAGAIN, ECONNABORTED, EINTR: nothing (more) to take */
		}
		int one = 1;
		setsockopt(c.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		fn_(ctx_, std::move(c), peer_address(ss));
	}
}

} // namespace posthorn
