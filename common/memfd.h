/* Sealed memfds: how documents larger than an imsg cross between processes. */
#pragma once

#include <string>
#include <string_view>

#include "fd.h"

namespace posthorn {

/* A memfd holding `data`, sealed against any further change. Invalid Fd on error (errno set). */
Fd memfd_sealed(const char *name, std::string_view data);
/* Read a whole memfd (or any regular file descriptor) from offset 0, at most max bytes. */
bool memfd_read(int fd, std::string &out, size_t max);
/* true when fd is a memfd with the write, grow, shrink and seal seals set. */
bool memfd_is_sealed(int fd);

} // namespace posthorn
