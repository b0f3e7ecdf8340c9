#include "memfd.h"
#include "text.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

namespace posthorn {

namespace {
constexpr int ALL_SEALS = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
}

Fd memfd_sealed(const char *name, std::string_view data)
{
	Fd fd(memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING));
	if (!fd)
		return Fd();
	if (!write_all(fd.get(), data))
		return Fd();
	if (fcntl(fd.get(), F_ADD_SEALS, ALL_SEALS) == -1)
		return Fd();
	return fd;
}

bool memfd_read(int fd, std::string &out, size_t max)
{
	struct stat st;
	if (fstat(fd, &st) == -1 || st.st_size < 0 || static_cast<size_t>(st.st_size) > max) {
		if (errno == 0)
			errno = EFBIG;
		return false;
	}
	out.resize(static_cast<size_t>(st.st_size));
	size_t off = 0;
	while (off < out.size()) {
		ssize_t n = pread(fd, out.data() + off, out.size() - off, static_cast<off_t>(off));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		off += static_cast<size_t>(n);
	}
	return true;
}

bool memfd_is_sealed(int fd)
{
	int seals = fcntl(fd, F_GET_SEALS);
	return seals != -1 && (seals & ALL_SEALS) == ALL_SEALS;
}

} // namespace posthorn
