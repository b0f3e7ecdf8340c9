/*
 * A listening socket of one [smtp NAME] listener: accepts without blocking
 * and hands each connection to the process, which applies the session
 * limits. Running out of descriptors pauses accepting for a second rather
 * than spinning.
 */
#pragma once

#include <sys/socket.h>

#include <functional>
#include <memory>
#include <string>

#include "common/fd.h"
#include "smtpd/ev.h"
#include "smtpd/server.h"

namespace posthorn {

class SmtpListener {
public:
	using AcceptFn = std::function<void(const std::shared_ptr<const ListenerCtx> &, Fd, std::string)>;

	SmtpListener(event_base *base, Fd fd, std::shared_ptr<const ListenerCtx> ctx, AcceptFn fn);
	SmtpListener(const SmtpListener &) = delete;
	SmtpListener &operator=(const SmtpListener &) = delete;

private:
	static void on_accept(int, short, void *) noexcept;
	static void on_resume(int, short, void *) noexcept;
	void accept_some();

	Fd fd_;
	std::shared_ptr<const ListenerCtx> ctx_;
	AcceptFn fn_;
	EventPtr ev_, pause_ev_;
};

/* The numeric address of a peer ("192.0.2.1", "2001:db8::1"). */
std::string peer_address(const sockaddr_storage &ss);

} // namespace posthorn
