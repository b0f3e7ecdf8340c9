/*
 * posthornd [-dnv] [-f file]: the parent. With -x NAME the binary becomes one
 * of the children (the parent re-executes itself for each).
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>

#include "common/config.h"
#include "common/log.h"
#include "common/proc.h"
#include "posthornd/parent.h"

using namespace posthorn;

namespace {

[[noreturn]] void usage()
{
	fprintf(stderr, "usage: posthornd [-dnv] [-f file]\n");
	exit(1);
}

int run_child(const std::string &name, int verbose)
{
	ProcId id;
	if (!proc_from_name(name, id) || id == ProcId::parent)
		usage();
	switch (id) {
	case ProcId::smtpd: return smtpd_main(verbose);
	case ProcId::httpd: return httpd_main(verbose);
	case ProcId::relayer: return relayer_main(verbose);
	case ProcId::control: return control_main(verbose);
	case ProcId::parent: break;
	}
	usage();
}

int check_config(const std::string &path)
{
	ConfigResult res = config_parse_file(path);
	if (!res.ok()) {
		for (const ConfigError &e : res.errors)
			fprintf(stderr, "%s\n", e.to_string().c_str());
		fprintf(stderr, "posthornd: %zu configuration error%s\n", res.errors.size(),
		    res.errors.size() == 1 ? "" : "s");
		return 1;
	}
	std::string why;
	if (!parent_check_runtime(*res.config, why)) {
		fprintf(stderr, "%s\n", why.c_str());
		return 1;
	}
	printf("configuration OK\n");
	return 0;
}

} // namespace

int main(int argc, char *argv[])
{
	ParentOptions opts;
	bool check_only = false;
	std::string child;
	int ch;

	while ((ch = getopt(argc, argv, "df:nvx:")) != -1) {
		switch (ch) {
		case 'd': opts.foreground = true; break;
		case 'f': opts.config_path = optarg; break;
		case 'n': check_only = true; break;
		case 'v': opts.verbose++; break;
		case 'x': child = optarg; break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	if (!child.empty())
		return run_child(child, opts.verbose);
	if (check_only)
		return check_config(opts.config_path);
	return parent_main(opts);
}
