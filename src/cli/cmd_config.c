/* aclm config check|show */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "aclm/config.h"
#include "aclm/err.h"
#include "cli-int.h"

static void report_line(void *ctx, const char *message)
{
	(void)ctx;
	fprintf(stderr, "%s\n", message);
}

static int config_check(struct cli *cli)
{
	const char *path = aclm_config_path(cli->cfg);
	int n = aclm_config_check(cli->cfg, report_line, NULL);

	if (n > 0) {
		fprintf(stderr, "aclm: error: %d problem%s in the configuration\n", n, n == 1 ? "" : "s");
		return EXIT_FAILED;
	}
	if (!cli->quiet)
		printf("%s: ok\n", path ? path : "no configuration file; defaults");
	return EXIT_OK;
}

static int config_show(struct cli *cli, bool json)
{
	const struct aclm_config_key_info *keys;
	size_t n = aclm_config_keys(&keys);
	json_t *arr = json ? json_array() : NULL;
	char origin[64];

	if (!json)
		printf("# configuration file: %s\n", aclm_config_path(cli->cfg) ? aclm_config_path(cli->cfg) : "(none)");
	for (size_t i = 0; i < n; i++) {
		const char *v;
		const char *const *items;
		size_t n_items = 0;
		json_t *val;

		aclm_config_origin(cli->cfg, keys[i].key, origin, sizeof(origin));
		if (strcmp(keys[i].type, "list") == 0) {
			n_items = aclm_config_list(cli->cfg, keys[i].key, &items);
			val = json_array();
			for (size_t j = 0; j < n_items; j++)
				json_array_append_new(val, json_string(items[j]));
		} else {
			v = aclm_config_str_any(cli->cfg, keys[i].key);
			val = json_string(v);
		}
		if (json) {
			json_t *o = json_object();
			json_object_set_new(o, "key", json_string(keys[i].key));
			json_object_set_new(o, "value", val);
			json_object_set_new(o, "type", json_string(keys[i].type));
			json_object_set_new(o, "origin", json_string(origin));
			json_object_set_new(o, "help", json_string(keys[i].help));
			json_array_append_new(arr, o);
		} else {
			char *text = json_dumps(val, JSON_ENCODE_ANY);
			printf("%-24s %-30s # %s (%s)\n", keys[i].key, text ? text : "", keys[i].help, origin);
			free(text);
			json_decref(val);
		}
	}
	if (json)
		cli_json_print(arr);
	return EXIT_OK;
}

int cmd_config(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cli_command *self = cli_find_command("config");
	bool json = false;
	int opt;

	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (opt == 'j')
			json = true;
		else
			return cli_getopt_default(self, opt, argv);
	}
	if (optind >= argc)
		return cli_usage_error("config", "missing subcommand (check or show)");
	if (optind + 1 < argc)
		return cli_usage_error("config", "unexpected argument '%s'", argv[optind + 1]);
	if (strcmp(argv[optind], "check") == 0)
		return config_check(cli);
	if (strcmp(argv[optind], "show") == 0)
		return config_show(cli, json);
	return cli_usage_error("config", "unknown subcommand '%s' (check or show)", argv[optind]);
}
