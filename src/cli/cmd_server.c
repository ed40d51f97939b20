/* aclm server: run the management daemon in the foreground. */
#include <getopt.h>

#include "aclm/err.h"
#include "aclm/server.h"
#include "cli-int.h"

int cmd_server(struct cli *cli, int argc, char **argv)
{
	enum { O_LISTEN = 256 };
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, O_LISTEN },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cli_command *self = cli_find_command("server");
	struct aclm_server_opts o = { 0 };
	int opt, rc;

	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (opt == O_LISTEN)
			o.listen = optarg;
		else
			return cli_getopt_default(self, opt, argv);
	}
	if (optind < argc)
		return cli_usage_error("server", "unexpected argument '%s'", argv[optind]);
	o.config_path = cli->config_path;
	o.cfg = cli->cfg;
	o.db_url = cli->db_url;
	o.quiet = cli->quiet;
	rc = aclm_server_run(&o);
	cli->cfg = o.cfg;
	if (rc != ACLM_OK)
		return cli_fail("server: %s", aclm_errmsg());
	return EXIT_OK;
}
