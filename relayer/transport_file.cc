/*
 * file: one <id>.eml per message in `directory`, written atomically (temp
 * file, fsync, rename), for development and staging. Synchronous: a local
 * write is faster than a round trip through the event loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "common/fd.h"
#include "relayer/mime_build.h"
#include "relayer/transport.h"
#include "common/text.h"

namespace posthorn {

namespace {

std::string domain_of(const std::string &mailbox)
{
	std::string name, addr;
	if (!parse_mailbox(mailbox, name, addr))
		return "localhost";
	size_t at = addr.rfind('@');
	return at == std::string::npos ? "localhost" : addr.substr(at + 1);
}

class FileTransport final : public Transport {
public:
	using Transport::Transport;

	void deliver(const Message &msg, Done done) override
	{
		MimeOptions opts;
		opts.hostname = domain_of(msg.from);
		std::string data = build_rfc5322(msg, opts);
		std::string name = msg.id + ".eml";
		std::string final_path = cfg_.directory + "/" + name;
		std::string tmp = cfg_.directory + "/." + name + ".tmp";
		DeliveryResult r;
		if (write_file(tmp, data) && rename(tmp.c_str(), final_path.c_str()) == 0 &&
		    sync_dir(cfg_.directory)) {
			r.outcome = DeliveryOutcome::sent;
			r.provider_id = name;
		} else {
			/* A full disk or a missing directory may be fixed by the operator. */
			r.outcome = DeliveryOutcome::transient;
			r.detail = "write " + final_path + ": " + strerror(errno);
			unlink(tmp.c_str());
		}
		done(std::move(r));
	}

private:
	/* The rename is durable only once the directory is: "sent" means on disk. */
	static bool sync_dir(const std::string &dir)
	{
		Fd fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
		return fd && fsync(fd.get()) == 0;
	}

	static bool write_file(const std::string &path, const std::string &data)
	{
		Fd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640));
		if (!fd)
			return false;
		return write_all(fd.get(), data) && fsync(fd.get()) == 0;
	}
};

} // namespace

std::unique_ptr<Transport> make_file_transport(const TransportConfig &cfg)
{
	return std::make_unique<FileTransport>(cfg);
}

} // namespace posthorn
