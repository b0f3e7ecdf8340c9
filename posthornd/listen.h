/* The parent binds every listening socket; children receive them over imsg. */
#pragma once

#include <sys/types.h>

#include <string>

#include "common/fd.h"

namespace posthorn {

/* "host:port" or "[v6addr]:port"; non-blocking, close-on-exec, listening. */
Fd listen_tcp(const std::string &address, std::string &err);
/* A unix socket at path, mode 0660, group gid (when chown_group), refusing a live one. */
Fd listen_unix(const std::string &path, gid_t gid, bool chown_group, std::string &err);

} // namespace posthorn
