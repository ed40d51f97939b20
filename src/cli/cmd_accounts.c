/* aclm accounts: ACME accounts (list, show, deactivate, key rollover). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "aclm/acme.h"
#include "aclm/err.h"
#include "aclm/keywrap.h"
#include "aclm/store_acme.h"
#include "aclm/str.h"
#include "aclm/timeutil.h"
#include "cli-int.h"

struct acc_ctx {
	json_t *rows;
	const char *only_ca;
	int n;
};

static int acc_fn(void *ctx, const struct aclm_acme_account_row *r)
{
	struct acc_ctx *a = ctx;
	char iso[32];

	if (a->only_ca != NULL && strcmp(a->only_ca, r->ca) != 0)
		return 0;
	a->n++;
	aclm_time_iso(r->created_at, iso, sizeof(iso));
	if (a->rows != NULL) {
		json_array_append_new(a->rows, json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s?, s:s, s:s}",
		                      "id", (json_int_t)r->id, "ca", r->ca, "directory", r->directory,
		                      "url", r->url, "key_type", r->key_type, "key_spki", r->key_spki,
		                      "contact", r->contact, "status", r->status, "created", iso));
		return 0;
	}
	printf("%-4lld %-12s %-12s %-8s %s\n      key %s %s, created %s\n", (long long)r->id, r->ca,
	       r->status, r->key_type, r->url, r->key_type, r->key_spki, iso);
	return 0;
}

struct order_ctx {
	json_t *rows;
};

static int order_fn(void *ctx, const struct aclm_acme_order_row *o)
{
	struct order_ctx *oc = ctx;
	json_array_append_new(oc->rows, json_pack("{s:I, s:I, s:s, s:s, s:s?, s:s?, s:s, s:I, s:s?}",
	                      "id", (json_int_t)o->id, "managed_id", (json_int_t)o->managed_id,
	                      "ca", o->ca, "state", o->state, "status", o->status, "url", o->url,
	                      "identifiers", o->identifiers, "cert_id", (json_int_t)o->cert_id,
	                      "error", o->error));
	return 0;
}

static void remote_fn(void *ctx, const char *url)
{
	json_array_append_new(ctx, json_string(url));
}

int cmd_accounts(struct cli *cli, int argc, char **argv)
{
	enum { O_JSON = 256 };
	static const struct option opts[] = {
		{ "json", no_argument, NULL, O_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cli_command *self = cli_find_command("accounts");
	struct aclm_acme_ca *cas = NULL;
	const struct aclm_acme_ca *ca;
	size_t n_cas = 0;
	struct aclm_kek kek;
	struct acc_ctx ac = { NULL, NULL, 0 };
	const char *sub = "list";
	bool json = false;
	int opt, rc, r;

	memset(&kek, 0, sizeof(kek));
	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (opt == O_JSON) {
			json = true;
			continue;
		}
		if ((r = cli_getopt_default(self, opt, argv)) >= 0)
			return r;
	}
	if (optind < argc)
		sub = argv[optind++];
	if (strcmp(sub, "list") != 0 && strcmp(sub, "show") != 0 && strcmp(sub, "orders") != 0 &&
	    strcmp(sub, "deactivate") != 0 && strcmp(sub, "rollover") != 0)
		return cli_usage_error("accounts", "unknown subcommand '%s'", sub);
	if (strcmp(sub, "list") != 0 && strcmp(sub, "orders") != 0 && optind + 1 != argc)
		return cli_usage_error("accounts", "%s needs a CA name", sub);
	if (strcmp(sub, "orders") == 0 && optind + 1 < argc)
		return cli_usage_error("accounts", "orders takes at most one CA name");
	if ((rc = cli_acme_setup(cli, &kek, &cas, &n_cas)) != EXIT_OK)
		return rc;
	rc = EXIT_FAILED;
	if (strcmp(sub, "list") == 0 || strcmp(sub, "show") == 0) {
		ac.only_ca = strcmp(sub, "show") == 0 ? argv[optind] : NULL;
		if (json)
			ac.rows = json_array();
		if (aclm_store_acme_account_list(cli->store, acc_fn, &ac) != ACLM_OK) {
			cli_fail("%s", aclm_errmsg());
			json_decref(ac.rows);
			goto out;
		}
		if (json)
			cli_json_print(ac.rows);
		if (ac.only_ca != NULL && ac.n == 0) {
			cli_fail("no account at CA %s", ac.only_ca);
			goto out;
		}
		rc = EXIT_OK;
		goto out;
	}
	if (strcmp(sub, "orders") == 0 && optind < argc) {
		json_t *urls = json_array();
		ca = aclm_acme_ca_find(cas, n_cas, argv[optind]);
		if (ca == NULL) {
			json_decref(urls);
			rc = cli_usage_error("accounts", "no CA '%s' in acme.cas", argv[optind]);
			goto out;
		}
		if (aclm_acme_account_orders(cli->store, &kek, ca, remote_fn, urls) != ACLM_OK) {
			json_decref(urls);
			cli_fail("%s", aclm_errmsg());
			goto out;
		}
		cli_json_print(urls);
		rc = EXIT_OK;
		goto out;
	}
	if (strcmp(sub, "orders") == 0) {
		struct order_ctx oc = { json_array() };
		if (aclm_store_acme_order_list(cli->store, 0, order_fn, &oc) != ACLM_OK) {
			json_decref(oc.rows);
			cli_fail("%s", aclm_errmsg());
			goto out;
		}
		cli_json_print(oc.rows);
		rc = EXIT_OK;
		goto out;
	}
	ca = aclm_acme_ca_find(cas, n_cas, argv[optind]);
	if (ca == NULL) {
		rc = cli_usage_error("accounts", "no CA '%s' in acme.cas", argv[optind]);
		goto out;
	}
	if (strcmp(sub, "deactivate") == 0 ? aclm_acme_account_deactivate(cli->store, &kek, ca)
	                                   : aclm_acme_account_rollover(cli->store, &kek, ca)) {
		cli_fail("%s", aclm_errmsg());
		goto out;
	}
	if (!cli->quiet)
		printf("account at CA %s: %s\n", ca->name,
		       strcmp(sub, "deactivate") == 0 ? "deactivated" : "new key in use");
	rc = EXIT_OK;
out:
	aclm_kek_wipe(&kek);
	aclm_acme_cas_free(cas, n_cas);
	return rc;
}
