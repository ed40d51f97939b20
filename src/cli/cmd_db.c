/* aclm db migrate|status|verify */
#include <getopt.h>
#include <string.h>

#include "aclm/err.h"
#include "aclm/store.h"
#include "cli-int.h"

static int db_open(struct cli *cli, bool migrate)
{
	struct aclm_store_opts opts = { 0 };
	const char *url = cli->db_url ? cli->db_url : aclm_config_str(cli->cfg, "store.url");

	opts.no_migrate = !migrate;
	opts.busy_timeout_ms = (int)(aclm_config_duration(cli->cfg, "store.busy_timeout") * 1000);
	if (aclm_store_open(url, &opts, &cli->store) != ACLM_OK) {
		cli_fail("%s", aclm_errmsg());
		return EXIT_FAILED;
	}
	return EXIT_OK;
}

static int db_migrate(struct cli *cli)
{
	int from = 0, to = 0, applied = 0;

	if (db_open(cli, false) != EXIT_OK)
		return EXIT_FAILED;
	if (aclm_store_migrate_count(cli->store, &from, &to, &applied) != ACLM_OK)
		return cli_fail("%s", aclm_errmsg());
	if (!cli->quiet) {
		if (applied == 0)
			printf("schema is up to date (version %d)\n", to);
		else if (from == to)
			printf("applied %d missing migration%s; schema version %d\n", applied,
			       applied == 1 ? "" : "s", to);
		else
			printf("migrated schema from version %d to %d (%d migration%s)\n", from, to,
			       applied, applied == 1 ? "" : "s");
	}
	return EXIT_OK;
}

static int db_status(struct cli *cli, bool json)
{
	struct aclm_store_stats s;
	int version = 0;

	if (db_open(cli, false) != EXIT_OK)
		return EXIT_FAILED;
	if (aclm_store_schema_version(cli->store, &version) != ACLM_OK)
		return cli_fail("%s", aclm_errmsg());
	memset(&s, 0, sizeof(s));
	if (version > 0 && aclm_store_stats(cli->store, &s) != ACLM_OK)
		return cli_fail("%s", aclm_errmsg());
	if (json) {
		json_t *o = json_object();
		json_object_set_new(o, "backend", json_string(aclm_store_backend(cli->store)));
		json_object_set_new(o, "schema_version", json_integer(version));
		json_object_set_new(o, "code_version", json_integer(aclm_store_code_version()));
		json_object_set_new(o, "certificates", json_integer(s.certificates));
		json_object_set_new(o, "keys", json_integer(s.keys));
		json_object_set_new(o, "private_keys", json_integer(s.private_keys));
		json_object_set_new(o, "observations", json_integer(s.observations));
		json_object_set_new(o, "endpoints", json_integer(s.endpoints));
		json_object_set_new(o, "managed", json_integer(s.managed));
		json_object_set_new(o, "events", json_integer(s.events));
		cli_json_print(o);
		return EXIT_OK;
	}
	printf("backend:        %s\n", aclm_store_backend(cli->store));
	printf("schema version: %d (this aclm: %d)%s\n", version, aclm_store_code_version(),
	       version < aclm_store_code_version() ? " - run 'aclm db migrate'" : "");
	printf("certificates:   %lld\n", (long long)s.certificates);
	printf("keys:           %lld (%lld with private key)\n", (long long)s.keys, (long long)s.private_keys);
	printf("observations:   %lld\n", (long long)s.observations);
	printf("endpoints:      %lld\n", (long long)s.endpoints);
	printf("managed:        %lld\n", (long long)s.managed);
	printf("events:         %lld\n", (long long)s.events);
	return EXIT_OK;
}

static int db_verify(struct cli *cli)
{
	int64_t n = 0, bad = 0;

	if (db_open(cli, true) != EXIT_OK)
		return EXIT_FAILED;
	if (aclm_store_verify_events(cli->store, &n, &bad) != ACLM_OK)
		return cli_fail("%s", aclm_errmsg());
	if (bad != 0)
		return cli_fail("event log altered: the hash chain breaks at event %lld (of %lld events)",
		                (long long)bad, (long long)n);
	if (!cli->quiet)
		printf("event log intact: %lld events\n", (long long)n);
	return EXIT_OK;
}

int cmd_db(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cli_command *self = cli_find_command("db");
	bool json = false;
	int opt;

	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (opt == 'j')
			json = true;
		else
			return cli_getopt_default(self, opt, argv);
	}
	if (optind >= argc)
		return cli_usage_error("db", "missing subcommand (migrate, status or verify)");
	if (optind + 1 < argc)
		return cli_usage_error("db", "unexpected argument '%s'", argv[optind + 1]);
	if (strcmp(argv[optind], "migrate") == 0)
		return db_migrate(cli);
	if (strcmp(argv[optind], "status") == 0)
		return db_status(cli, json);
	if (strcmp(argv[optind], "verify") == 0)
		return db_verify(cli);
	return cli_usage_error("db", "unknown subcommand '%s' (migrate, status or verify)", argv[optind]);
}
