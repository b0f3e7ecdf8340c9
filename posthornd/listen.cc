#include "listen.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace posthorn {

namespace {

bool split_host_port(const std::string &address, std::string &host, std::string &port)
{
	size_t colon;
	if (!address.empty() && address[0] == '[') {
		size_t close = address.find(']');
		if (close == std::string::npos || close + 1 >= address.size() ||
		    address[close + 1] != ':')
			return false;
		host = address.substr(1, close - 1);
		port = address.substr(close + 2);
		return !port.empty();
	}
	colon = address.rfind(':');
	if (colon == std::string::npos)
		return false;
	host = address.substr(0, colon);
	port = address.substr(colon + 1);
	return !port.empty();
}

} // namespace

Fd listen_tcp(const std::string &address, std::string &err)
{
	std::string host, port;
	if (!split_host_port(address, host, port)) {
		err = "bad listen address " + address;
		return Fd();
	}
	struct addrinfo hints = {}, *res = nullptr;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res);
	if (rc != 0) {
		err = "listen " + address + ": " + gai_strerror(rc);
		return Fd();
	}
	Fd fd(socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
	if (!fd) {
		err = "socket: " + std::string(strerror(errno));
		freeaddrinfo(res);
		return Fd();
	}
	int one = 1;
	setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (res->ai_family == AF_INET6)
		setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd.get(), res->ai_addr, res->ai_addrlen) == -1 || listen(fd.get(), 511) == -1) {
		err = "listen " + address + ": " + strerror(errno);
		freeaddrinfo(res);
		return Fd();
	}
	freeaddrinfo(res);
	return fd;
}

Fd listen_unix(const std::string &path, gid_t gid, bool chown_group, std::string &err)
{
	struct sockaddr_un sun = {};
	sun.sun_family = AF_UNIX;
	if (path.size() >= sizeof(sun.sun_path)) {
		err = "control socket path too long: " + path;
		return Fd();
	}
	memcpy(sun.sun_path, path.c_str(), path.size() + 1);

	/* A socket that still answers belongs to a running daemon: refuse to steal it. */
	Fd probe(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
	if (probe && connect(probe.get(), reinterpret_cast<sockaddr *>(&sun), sizeof(sun)) == 0) {
		err = "control socket " + path + " is in use: is posthornd already running?";
		return Fd();
	}
	struct stat st;
	if (lstat(path.c_str(), &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			err = "control socket " + path + " exists and is not a socket";
			return Fd();
		}
		unlink(path.c_str());
	}
	Fd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
	if (!fd) {
		err = "socket: " + std::string(strerror(errno));
		return Fd();
	}
	mode_t old = umask(0117);
	int rc = bind(fd.get(), reinterpret_cast<sockaddr *>(&sun), sizeof(sun));
	umask(old);
	if (rc == -1 || listen(fd.get(), 64) == -1) {
		err = "control socket " + path + ": " + strerror(errno);
		return Fd();
	}
	if (chmod(path.c_str(), 0660) == -1 ||
	    (chown_group && chown(path.c_str(), 0, gid) == -1)) {
		err = "control socket " + path + ": " + strerror(errno);
		unlink(path.c_str());
		return Fd();
	}
	return fd;
}

} // namespace posthorn
