/* aclm renew: renew the managed certificates that are due. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "aclm/acme.h"
#include "aclm/err.h"
#include "aclm/keywrap.h"
#include "aclm/str.h"
#include "cli-int.h"

struct renew_out {
	json_t *rows;
	bool quiet;
};

static void on_report(void *ctx, int64_t id, const char *name, const char *what)
{
	struct renew_out *o = ctx;

	if (o->rows != NULL)
		json_array_append_new(o->rows, json_pack("{s:I, s:s, s:s}", "managed_id", (json_int_t)id,
		                                         "name", name ? name : "", "result", what));
	else if (!o->quiet || strncmp(what, "failed", 6) == 0)
		printf("%lld %s: %s\n", (long long)id, name ? name : "", what);
}

int cmd_renew(struct cli *cli, int argc, char **argv)
{
	enum { O_ALL = 256, O_FORCE, O_DRY, O_JSON };
	static const struct option opts[] = {
		{ "all", no_argument, NULL, O_ALL },
		{ "force", no_argument, NULL, O_FORCE },
		{ "dry-run", no_argument, NULL, O_DRY },
		{ "json", no_argument, NULL, O_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cli_command *self = cli_find_command("renew");
	struct aclm_acme_renew_opts ro;
	struct renew_out out = { NULL, cli->quiet };
	struct aclm_acme_ca *cas = NULL;
	size_t n_cas = 0;
	int64_t *ids = NULL;
	struct aclm_kek kek;
	bool all = false, json = false;
	int opt, rc, r, n_renewed = 0, n_failed = 0;

	memset(&ro, 0, sizeof(ro));
	memset(&kek, 0, sizeof(kek));
	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (opt) {
		case O_ALL: all = true; break;
		case O_FORCE: ro.force = true; break;
		case O_DRY: ro.dry_run = true; break;
		case O_JSON: json = true; break;
		default:
			if ((r = cli_getopt_default(self, opt, argv)) >= 0)
				return r;
		}
	}
	if (all == (optind < argc))
		return cli_usage_error("renew", "give managed certificate ids or --all (not both)");
	ids = calloc((size_t)(argc - optind) + 1, sizeof(*ids));
	if (ids == NULL)
		return cli_fail("out of memory");
	for (int i = optind; i < argc; i++) {
		if (aclm_parse_int64(argv[i], &ids[ro.n_ids]) != ACLM_OK || ids[ro.n_ids] <= 0) {
			free(ids);
			return cli_usage_error("renew", "'%s' is not a managed certificate id", argv[i]);
		}
		ro.n_ids++;
	}
	ro.ids = ids;
	if ((rc = cli_acme_setup(cli, &kek, &cas, &n_cas)) != EXIT_OK) {
		free(ids);
		return rc;
	}
	if (json)
		out.rows = json_array();
	ro.report = on_report;
	ro.ctx = &out;
	if (aclm_acme_renew(cli->store, &kek, cas, n_cas, &ro, &n_renewed, &n_failed) != ACLM_OK) {
		rc = cli_fail("%s", aclm_errmsg());
		json_decref(out.rows);
	} else {
		if (json)
			cli_json_print(out.rows);
		else if (!cli->quiet)
			printf("%d renewed, %d failed\n", n_renewed, n_failed);
		rc = n_failed > 0 ? EXIT_FAILED : EXIT_OK;
	}
	aclm_kek_wipe(&kek);
	aclm_acme_cas_free(cas, n_cas);
	free(ids);
	return rc;
}
