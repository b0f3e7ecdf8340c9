#pragma once

#include <string>

#include "common/config.h"

namespace posthorn {

struct ParentOptions {
	std::string config_path = "/etc/posthorn/posthorn.conf";
	bool foreground = false;
	int verbose = 0;
};

int parent_main(const ParentOptions &opts);
/* Checks start-up makes beyond the config file itself (users exist). */
bool parent_check_runtime(const Config &cfg, std::string &why);

} // namespace posthorn
