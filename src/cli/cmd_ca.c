/* aclm ca: the built-in CA (init, issue, revoke, list, export-roots, crl,
 * renew-early, serve). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aclm/buf.h"
#include "aclm/ca.h"
#include "aclm/err.h"
#include "aclm/keywrap.h"
#include "aclm/server.h"
#include "aclm/store_ca.h"
#include "aclm/str.h"
#include "aclm/timeutil.h"
#include "cli-int.h"

struct ca_args {
	const char *name;
	const char *csr;
	const char *profile;
	const char *out;
	const char *reason;
	const char *algo;
	const char *issued_before;
	const char *at;
	const char *listen;
	bool json;
	bool revoked;
	int first;           /* argv index of the first operand */
};

static int parse(struct cli *cli, int argc, char **argv, struct ca_args *a)
{
	enum { O_NAME = 256, O_CSR, O_PROFILE, O_OUT, O_REASON, O_ALGO, O_BEFORE, O_JSON,
	       O_REVOKED, O_LISTEN, O_AT };
	static const struct option opts[] = {
		{ "name", required_argument, NULL, O_NAME },
		{ "csr", required_argument, NULL, O_CSR },
		{ "profile", required_argument, NULL, O_PROFILE },
		{ "out", required_argument, NULL, O_OUT },
		{ "reason", required_argument, NULL, O_REASON },
		{ "algo", required_argument, NULL, O_ALGO },
		{ "issued-before", required_argument, NULL, O_BEFORE },
		{ "at", required_argument, NULL, O_AT },
		{ "listen", required_argument, NULL, O_LISTEN },
		{ "json", no_argument, NULL, O_JSON },
		{ "revoked", no_argument, NULL, O_REVOKED },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cli_command *self = cli_find_command("ca");
	int opt, r;

	memset(a, 0, sizeof(*a));
	a->name = aclm_config_str(cli->cfg, "ca.name");
	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (opt) {
		case O_NAME: a->name = optarg; break;
		case O_CSR: a->csr = optarg; break;
		case O_PROFILE: a->profile = optarg; break;
		case O_OUT: a->out = optarg; break;
		case O_REASON: a->reason = optarg; break;
		case O_ALGO: a->algo = optarg; break;
		case O_BEFORE: a->issued_before = optarg; break;
		case O_AT: a->at = optarg; break;
		case O_LISTEN: a->listen = optarg; break;
		case O_JSON: a->json = true; break;
		case O_REVOKED: a->revoked = true; break;
		default:
			if ((r = cli_getopt_default(self, opt, argv)) >= 0)
				return r;
		}
	}
	a->first = optind;
	return -1;
}

static int load_kek(struct cli *cli, struct aclm_kek *kek)
{
	if (aclm_kek_load(getenv("ACLM_KEK"), aclm_config_str(cli->cfg, "security.kek_file"), true,
	                  kek) != ACLM_OK)
		return cli_fail("%s", aclm_errmsg());
	return EXIT_OK;
}

static int write_out(const char *path, const void *data, size_t len)
{
	int fd;

	if (path == NULL || strcmp(path, "-") == 0)
		return fwrite(data, 1, len, stdout) == len ? ACLM_OK
		                                           : aclm_error(ACLM_ERR_IO, "stdout: write failed");
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return aclm_error(ACLM_ERR_IO, "%s: %s", path, strerror(errno));
	if (write(fd, data, len) != (ssize_t)len) {
		int rc = aclm_error(ACLM_ERR_IO, "%s: %s", path, strerror(errno));
		close(fd);
		return rc;
	}
	return close(fd) == 0 ? ACLM_OK : aclm_error(ACLM_ERR_IO, "%s: %s", path, strerror(errno));
}

static int fp_fn(void *ctx, const struct aclm_cert_row *row)
{
	json_t *o = ctx;
	json_object_set_new(o, "subject", json_string(row->subject));
	json_object_set_new(o, "fingerprint", json_string(row->fingerprint));
	json_object_set_new(o, "sig_alg", json_string(row->sig_alg));
	return 0;
}

struct hier_ctx {
	struct aclm_store *st;
	json_t *rows;
};

static int hier_fn(void *ctx, const struct aclm_ca_hier_row *r)
{
	struct hier_ctx *h = ctx;
	json_t *root = json_object(), *inter = json_object();

	aclm_store_get_cert(h->st, r->root_cert_id, fp_fn, root);
	aclm_store_get_cert(h->st, r->issuing_cert_id, fp_fn, inter);
	json_object_set_new(root, "id", json_integer(r->root_cert_id));
	json_object_set_new(inter, "id", json_integer(r->issuing_cert_id));
	json_array_append_new(h->rows, json_pack("{s:s, s:s, s:o, s:o}", "ca", r->ca, "algo",
	                                         r->algo, "root", root, "issuing", inter));
	return 0;
}

static int print_hierarchies(struct cli *cli, const char *name, bool as_json)
{
	struct hier_ctx h = { cli->store, json_array() };
	size_t i;
	json_t *row;

	if (aclm_store_ca_hier_list(cli->store, name, hier_fn, &h) != ACLM_OK) {
		json_decref(h.rows);
		return cli_fail("%s", aclm_errmsg());
	}
	if (as_json) {
		cli_json_print(h.rows);
		return EXIT_OK;
	}
	json_array_foreach(h.rows, i, row) {
		printf("%s %-5s root    %s\n          %s\n", json_string_value(json_object_get(row, "ca")),
		       json_string_value(json_object_get(row, "algo")),
		       json_string_value(json_object_get(json_object_get(row, "root"), "subject")),
		       json_string_value(json_object_get(json_object_get(row, "root"), "fingerprint")));
		printf("%*s issuing %s (%s)\n", (int)strlen(json_string_value(json_object_get(row, "ca"))) + 6, "",
		       json_string_value(json_object_get(json_object_get(row, "issuing"), "subject")),
		       json_string_value(json_object_get(json_object_get(row, "issuing"), "sig_alg")));
	}
	json_decref(h.rows);
	return EXIT_OK;
}

static int ca_init(struct cli *cli, const struct ca_args *a)
{
	struct aclm_kek kek;
	int n = 0, rc;

	if ((rc = load_kek(cli, &kek)) != EXIT_OK)
		return rc;
	rc = aclm_ca_init(cli->store, &kek, a->name, &n);
	aclm_kek_wipe(&kek);
	if (rc != ACLM_OK)
		return cli_fail("%s", aclm_errmsg());
	if (!cli->quiet && !a->json)
		printf("CA %s: %d hierarch%s created\n", a->name, n, n == 1 ? "y" : "ies");
	if (cli->quiet && !a->json)
		return EXIT_OK;
	return print_hierarchies(cli, a->name, a->json);
}

static int ca_issue(struct cli *cli, const struct ca_args *a)
{
	struct aclm_buf in;
	struct aclm_kek kek;
	struct aclm_ca_policy pol;
	struct aclm_ca_issue_req req;
	struct aclm_ca_issue_res res;
	unsigned char *der = NULL;
	size_t der_len = 0;
	char base[256];
	int rc = EXIT_FAILED;

	if (a->csr == NULL)
		return cli_usage_error("ca", "issue needs --csr FILE");
	memset(&res, 0, sizeof(res));
	aclm_buf_init(&in, 1u << 20);
	if (aclm_buf_read_file(&in, a->csr) != ACLM_OK ||
	    aclm_ca_csr_der(in.data, in.len, &der, &der_len) != ACLM_OK) {
		aclm_buf_free(&in);
		return cli_fail("%s: %s", a->csr, aclm_errmsg());
	}
	aclm_buf_free(&in);
	if ((rc = load_kek(cli, &kek)) != EXIT_OK) {
		free(der);
		return rc;
	}
	aclm_ca_policy_from_config(cli->cfg, &pol);
	aclm_ca_base_url(cli->cfg, base, sizeof(base));
	memset(&req, 0, sizeof(req));
	req.ca = a->name;
	req.csr = der;
	req.csr_len = der_len;
	req.profile = a->profile;
	req.policy = &pol;
	req.base_url = base;
	if (aclm_ca_issue(cli->store, &kek, &req, &res) != ACLM_OK) {
		rc = cli_fail("%s: %s", res.problem != NULL ? res.problem : "error", aclm_errmsg());
	} else if (write_out(a->out, res.chain_pem, res.chain_pem_len) != ACLM_OK) {
		rc = cli_fail("%s", aclm_errmsg());
	} else {
		if (!cli->quiet && a->out != NULL)
			fprintf(stderr, "issued serial %s (%s, certificate %lld) -> %s\n", res.serial,
			        aclm_ca_algo_name(res.algo), (long long)res.cert_id, a->out);
		rc = EXIT_OK;
	}
	aclm_ca_issue_res_free(&res);
	aclm_kek_wipe(&kek);
	free(der);
	return rc;
}

static int ca_revoke(struct cli *cli, const struct ca_args *a, int argc, char **argv)
{
	int reason = 0;

	if (a->first + 1 != argc)
		return cli_usage_error("ca", "revoke needs exactly one SERIAL");
	if (a->reason != NULL && aclm_ca_reason_parse(a->reason, &reason) != ACLM_OK)
		return cli_usage_error("ca", "%s", aclm_errmsg());
	if (aclm_ca_revoke(cli->store, a->name, argv[a->first], reason) != ACLM_OK)
		return cli_fail("%s", aclm_errmsg());
	if (!cli->quiet)
		printf("revoked %s of CA %s (%s)\n", argv[a->first], a->name,
		       aclm_ca_reason_name(reason));
	return EXIT_OK;
}

struct list_ctx {
	json_t *rows;
	bool as_json;
};

static int list_fn(void *ctx, const struct aclm_ca_issued_row *r)
{
	struct list_ctx *l = ctx;
	char nb[32], na[32], rv[32] = "";

	aclm_time_iso(r->not_before, nb, sizeof(nb));
	aclm_time_iso(r->not_after, na, sizeof(na));
	if (r->revoked_at != 0)
		aclm_time_iso(r->revoked_at, rv, sizeof(rv));
	if (l->as_json) {
		json_array_append_new(l->rows, json_pack("{s:s, s:s, s:s, s:I, s:s, s:s?, s:s, s:s, "
		                                         "s:s?, s:s?}", "ca", r->ca, "algo", r->algo,
		                                         "serial", r->serial, "cert_id",
		                                         (json_int_t)r->cert_id, "profile", r->profile,
		                                         "account", r->account_ref, "not_before", nb,
		                                         "not_after", na,
		                                         "revoked_at", r->revoked_at ? rv : NULL,
		                                         "reason", r->revoked_at ?
		                                         aclm_ca_reason_name(r->reason) : NULL));
		return 0;
	}
	printf("%-32s %-5s %-10s cert %-5lld until %s%s%s\n", r->serial, r->algo, r->profile,
	       (long long)r->cert_id, na, r->revoked_at ? "  REVOKED " : "",
	       r->revoked_at ? aclm_ca_reason_name(r->reason) : "");
	return 0;
}

static int ca_list(struct cli *cli, const struct ca_args *a)
{
	struct aclm_ca_issued_filter f;
	struct list_ctx l = { a->json ? json_array() : NULL, a->json };

	memset(&f, 0, sizeof(f));
	f.ca = a->name;
	f.algo = a->algo;
	f.revoked_only = a->revoked;
	if (!a->json && print_hierarchies(cli, a->name, false) != EXIT_OK)
		return EXIT_FAILED;
	if (aclm_store_ca_issued_list(cli->store, &f, list_fn, &l) != ACLM_OK) {
		json_decref(l.rows);
		return cli_fail("%s", aclm_errmsg());
	}
	if (a->json)
		cli_json_print(l.rows);
	return EXIT_OK;
}

static int ca_export_roots(struct cli *cli, const struct ca_args *a)
{
	char *pem = NULL;
	size_t len = 0;
	int rc;

	if (aclm_ca_roots_pem(cli->store, a->name, &pem, &len) != ACLM_OK)
		return cli_fail("%s", aclm_errmsg());
	rc = write_out(a->out, pem, len) == ACLM_OK ? EXIT_OK : cli_fail("%s", aclm_errmsg());
	free(pem);
	return rc;
}

static int ca_crl(struct cli *cli, const struct ca_args *a)
{
	enum aclm_ca_algo algo = ACLM_CA_ECDSA;
	struct aclm_kek kek;
	unsigned char *der = NULL;
	size_t len = 0;
	int rc;

	if (a->algo != NULL && aclm_ca_algo_parse(a->algo, &algo) != ACLM_OK)
		return cli_usage_error("ca", "%s", aclm_errmsg());
	if ((rc = load_kek(cli, &kek)) != EXIT_OK)
		return rc;
	if (aclm_ca_crl(cli->store, &kek, a->name, algo, &der, &len) != ACLM_OK)
		rc = cli_fail("%s", aclm_errmsg());
	else
		rc = write_out(a->out, der, len) == ACLM_OK ? EXIT_OK : cli_fail("%s", aclm_errmsg());
	free(der);
	aclm_kek_wipe(&kek);
	return rc;
}

static int ca_renew_early(struct cli *cli, const struct ca_args *a, int argc, char **argv)
{
	int64_t before = 0, n = 0, at = aclm_now();
	const char *serial = NULL;

	if (a->issued_before != NULL) {
		if (a->first != argc)
			return cli_usage_error("ca", "renew-early: SERIAL or --issued-before, not both");
		if (aclm_time_parse_iso(a->issued_before, &before) != ACLM_OK &&
		    aclm_parse_int64(a->issued_before, &before) != ACLM_OK)
			return cli_usage_error("ca", "--issued-before '%s': an ISO 8601 time or epoch "
			                       "seconds", a->issued_before);
	} else if (a->first + 1 == argc) {
		serial = argv[a->first];
	} else {
		return cli_usage_error("ca", "renew-early needs SERIAL or --issued-before TIME");
	}
	/* --at: when the early window opens (default now).  The window lasts an
	 * hour from there, so a time an hour or more ago (the incident) is a
	 * window in the past: clients renew at once. */
	if (a->at != NULL && aclm_time_parse_iso(a->at, &at) != ACLM_OK &&
	    aclm_parse_int64(a->at, &at) != ACLM_OK)
		return cli_usage_error("ca", "--at '%s': an ISO 8601 time or epoch seconds", a->at);
	if (aclm_store_ca_issued_renew_early(cli->store, a->name, serial, before, at, &n) != ACLM_OK)
		return cli_fail("%s", aclm_errmsg());
	if (serial != NULL && n == 0)
		return cli_fail("CA %s has no unrevoked certificate with serial %s", a->name, serial);
	{
		char detail[160];
		snprintf(detail, sizeof(detail), "{\"ca\":\"%s\",\"certificates\":%lld}", a->name,
		         (long long)n);
		aclm_store_append_event(cli->store, "ca.renew_early", serial != NULL ? serial : a->name,
		                        detail);
	}
	if (!cli->quiet)
		printf("%lld certificate%s of CA %s asked to renew now (ARI)\n", (long long)n,
		       n == 1 ? "" : "s", a->name);
	return EXIT_OK;
}

static int ca_serve(struct cli *cli, const struct ca_args *a)
{
	struct aclm_server_opts o;
	int rc;

	memset(&o, 0, sizeof(o));
	o.cfg = cli->cfg;
	o.config_path = cli->config_path;
	o.db_url = cli->db_url;
	o.listen = a->listen;
	o.quiet = cli->quiet;
	rc = aclm_server_run(&o);
	cli->cfg = o.cfg;  /* the server may have reloaded it */
	return rc == ACLM_OK ? EXIT_OK : cli_fail("%s", aclm_errmsg());
}

int cmd_ca(struct cli *cli, int argc, char **argv)
{
	struct ca_args a;
	const char *sub;
	int r;

	if (argc < 2)
		return cli_usage_error("ca", "give a subcommand: init, issue, revoke, list, "
		                       "export-roots, crl, renew-early or serve");
	sub = argv[1];
	if ((r = parse(cli, argc - 1, argv + 1, &a)) >= 0)
		return r;
	a.first += 1;
	if (strcmp(sub, "serve") == 0)
		return ca_serve(cli, &a);
	if (cli_open_store(cli) != ACLM_OK)
		return EXIT_FAILED;
	if (strcmp(sub, "init") == 0)
		return ca_init(cli, &a);
	if (strcmp(sub, "issue") == 0)
		return ca_issue(cli, &a);
	if (strcmp(sub, "revoke") == 0)
		return ca_revoke(cli, &a, argc, argv);
	if (strcmp(sub, "list") == 0)
		return ca_list(cli, &a);
	if (strcmp(sub, "export-roots") == 0)
		return ca_export_roots(cli, &a);
	if (strcmp(sub, "crl") == 0)
		return ca_crl(cli, &a);
	if (strcmp(sub, "renew-early") == 0)
		return ca_renew_early(cli, &a, argc, argv);
	return cli_usage_error("ca", "unknown subcommand '%s'", sub);
}
