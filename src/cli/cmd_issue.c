/* aclm issue: obtain certificates from ACME CAs and keep them managed. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "aclm/acme.h"
#include "aclm/buf.h"
#include "aclm/bundle.h"
#include "aclm/err.h"
#include "aclm/keywrap.h"
#include "aclm/store_acme.h"
#include "aclm/str.h"
#include "aclm/timeutil.h"
#include "cli-int.h"

#define MAX_CAS 16

/* Load KEK and CAs: shared by issue, renew, revoke and accounts. */
int cli_acme_setup(struct cli *cli, struct aclm_kek *kek, struct aclm_acme_ca **cas,
                   size_t *n_cas)
{
	const char *env = getenv("ACLM_KEK");

	if (aclm_acme_cas_load(cli->cfg, cas, n_cas) != ACLM_OK)
		return cli_fail("%s", aclm_errmsg());
	if (cli_open_store(cli) != ACLM_OK) {
		aclm_acme_cas_free(*cas, *n_cas);
		return EXIT_FAILED;
	}
	if (aclm_kek_load(env, aclm_config_str(cli->cfg, "security.kek_file"), true, kek) != ACLM_OK) {
		aclm_acme_cas_free(*cas, *n_cas);
		return cli_fail("%s", aclm_errmsg());
	}
	return EXIT_OK;
}

static int write_file(const char *path, const char *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);

	if (fd < 0)
		return aclm_error(ACLM_ERR_IO, "%s: %s", path, strerror(errno));
	if (fchmod(fd, mode) < 0 || write(fd, data, len) != (ssize_t)len) {
		int rc = aclm_error(ACLM_ERR_IO, "%s: %s", path, strerror(errno));
		close(fd);
		return rc;
	}
	return close(fd) == 0 ? ACLM_OK : aclm_error(ACLM_ERR_IO, "%s: %s", path, strerror(errno));
}

struct chain_ctx {
	int64_t issuer_id;
	char spki[65];
};

static int chain_fn(void *ctx, const struct aclm_cert_row *row)
{
	struct chain_ctx *c = ctx;
	c->issuer_id = row->issuer_id;
	aclm_strlcpy(c->spki, row->spki, sizeof(c->spki));
	return 0;
}

/* DIR/NAME.crt (leaf + chain) and DIR/NAME.key (0600). */
static int write_out(struct cli *cli, const struct aclm_kek *kek, const char *dir,
                     const char *label, int64_t cert_id)
{
	struct aclm_buf pem;
	char path[4096], *p = NULL, *kpem = NULL;
	unsigned char *der = NULL, *sealed = NULL, *pkcs8 = NULL, spki[32];
	size_t der_len = 0, p_len = 0, sealed_len = 0, pkcs8_len = 0, kpem_len = 0;
	struct chain_ctx cc = { 0 };
	int64_t id = cert_id;
	int rc = ACLM_OK;

	aclm_buf_init(&pem, 1 << 20);
	for (int depth = 0; id != 0 && depth < 8 && rc == ACLM_OK; depth++) {
		struct chain_ctx one = { 0 };
		if ((rc = aclm_store_get_cert(cli->store, id, chain_fn, &one)) != ACLM_OK ||
		    (rc = aclm_store_get_cert_der(cli->store, id, &der, &der_len)) != ACLM_OK ||
		    (rc = aclm_pem_encode_cert(der, der_len, &p, &p_len)) != ACLM_OK)
			break;
		if (depth == 0)
			cc = one;
		rc = aclm_buf_append(&pem, p, p_len);
		free(der);
		free(p);
		der = NULL;
		p = NULL;
		if (one.issuer_id == id)
			break;
		id = one.issuer_id;
	}
	if (rc != ACLM_OK)
		goto out;
	snprintf(path, sizeof(path), "%s/%s.crt", dir, label);
	if ((rc = write_file(path, (const char *)pem.data, pem.len, 0644)) != ACLM_OK)
		goto out;
	if ((rc = aclm_store_get_private_key(cli->store, cc.spki, &sealed, &sealed_len)) != ACLM_OK)
		goto out;
	aclm_hex_decode(cc.spki, spki, sizeof(spki));
	if ((rc = aclm_keywrap_open(kek, spki, sizeof(spki), sealed, sealed_len, &pkcs8,
	                            &pkcs8_len)) != ACLM_OK ||
	    (rc = aclm_pem_encode_key(pkcs8, pkcs8_len, &kpem, &kpem_len)) != ACLM_OK)
		goto out;
	snprintf(path, sizeof(path), "%s/%s.key", dir, label);
	rc = write_file(path, kpem, kpem_len, 0600);
out:
	if (pkcs8 != NULL)
		OPENSSL_clear_free(pkcs8, pkcs8_len);
	if (kpem != NULL)
		OPENSSL_clear_free(kpem, kpem_len);
	free(sealed);
	free(der);
	free(p);
	aclm_buf_free(&pem);
	return rc;
}

/* --each: one certificate per name, --concurrency at a time, each worker
 * with its own store connection, all sharing one challenge responder. */
struct each {
	struct cli *cli;
	const struct aclm_kek *kek;
	const struct aclm_acme_ca *cas;
	size_t n_cas;
	const struct aclm_acme_request *tmpl;
	const enum aclm_keygen *keys;
	size_t n_keys;
	char **names;
	size_t n_names;
	const char *url;
	struct aclm_store_opts opts;
	pthread_mutex_t mu;
	size_t next;
	json_t *results;
	int n_failed;
};

static void *each_worker(void *arg)
{
	struct each *e = arg;
	struct aclm_store *st = NULL;

	if (aclm_store_open(e->url, &e->opts, &st) != ACLM_OK) {
		pthread_mutex_lock(&e->mu);
		json_array_append_new(e->results, json_pack("{s:s}", "error", aclm_errmsg()));
		e->n_failed++;
		pthread_mutex_unlock(&e->mu);
		return NULL;
	}
	for (;;) {
		struct aclm_acme_request req = *e->tmpl;
		size_t i;

		pthread_mutex_lock(&e->mu);
		i = e->next++;
		pthread_mutex_unlock(&e->mu);
		if (i >= e->n_names)
			break;
		req.names = (const char *const *)&e->names[i];
		req.n_names = 1;
		for (size_t k = 0; k < e->n_keys; k++) {
			struct aclm_acme_result res;
			json_t *o;
			req.key = e->keys[k];
			if (aclm_acme_issue(st, e->kek, e->cas, e->n_cas, &req, &res) != ACLM_OK) {
				o = json_pack("{s:s, s:s, s:s}", "name", e->names[i], "key",
				              aclm_keygen_name(e->keys[k]), "error", aclm_errmsg());
			} else {
				o = json_pack("{s:s, s:I, s:I, s:s, s:s, s:s, s:b}", "name", e->names[i],
				              "cert_id", (json_int_t)res.cert_id,
				              "managed_id", (json_int_t)res.managed_id, "ca", res.ca,
				              "fingerprint", res.fingerprint, "key", aclm_keygen_name(e->keys[k]),
				              "resumed", res.resumed);
			}
			pthread_mutex_lock(&e->mu);
			if (json_object_get(o, "error") != NULL) {
				e->n_failed++;
				if (!e->cli->quiet)
					fprintf(stderr, "aclm: error: %s\n",
					        json_string_value(json_object_get(o, "error")));
			}
			json_array_append_new(e->results, o);
			pthread_mutex_unlock(&e->mu);
		}
	}
	aclm_store_close(st);
	return NULL;
}

static int issue_each(struct each *e, int64_t concurrency, bool json)
{
	pthread_t th[64];
	int64_t n_th = 0;

	e->url = e->cli->db_url && *e->cli->db_url ? e->cli->db_url
	                                            : aclm_config_str(e->cli->cfg, "store.url");
	e->opts.busy_timeout_ms = (int)(aclm_config_duration(e->cli->cfg, "store.busy_timeout") * 1000);
	if (e->opts.busy_timeout_ms < 30000)
		e->opts.busy_timeout_ms = 30000;  /* many writers at once */
	pthread_mutex_init(&e->mu, NULL);
	e->results = json_array();
	/* one account per CA, made before the workers race for it */
	if (aclm_acme_account_ensure(e->cli->store, e->kek,
	                             aclm_acme_ca_find(e->cas, e->n_cas, e->tmpl->cas[0])) != ACLM_OK)
		fprintf(stderr, "aclm: warning: %s\n", aclm_errmsg());
	for (; n_th < concurrency && n_th < (int64_t)e->n_names; n_th++)
		if (pthread_create(&th[n_th], NULL, each_worker, e) != 0)
			break;
	if (n_th == 0)
		each_worker(e);
	for (int64_t i = 0; i < n_th; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&e->mu);
	if (json) {
		cli_json_print(e->results);
	} else {
		if (!e->cli->quiet)
			printf("%zu issued, %d failed\n", json_array_size(e->results) - (size_t)e->n_failed,
			       e->n_failed);
		json_decref(e->results);
	}
	return e->n_failed > 0 ? EXIT_FAILED : EXIT_OK;
}

int cmd_issue(struct cli *cli, int argc, char **argv)
{
	enum { O_KEY = 256, O_DUAL, O_CA, O_CHALLENGE, O_WEBROOT, O_STANDALONE, O_DNS_HOOK,
	       O_DNS_WAIT, O_PROFILE, O_OUT, O_REUSE, O_JSON, O_EACH, O_CONCURRENCY,
	       O_DNS_SERVER, O_DNS_ZONE, O_TSIG, O_DNS_TIMEOUT };
	static const struct option opts[] = {
		{ "key", required_argument, NULL, O_KEY },
		{ "dual", required_argument, NULL, O_DUAL },
		{ "ca", required_argument, NULL, O_CA },
		{ "challenge", required_argument, NULL, O_CHALLENGE },
		{ "webroot", required_argument, NULL, O_WEBROOT },
		{ "standalone", required_argument, NULL, O_STANDALONE },
		{ "dns-hook", required_argument, NULL, O_DNS_HOOK },
		{ "dns", required_argument, NULL, O_DNS_HOOK },
		{ "dns-wait", required_argument, NULL, O_DNS_WAIT },
		{ "dns-server", required_argument, NULL, O_DNS_SERVER },
		{ "dns-zone", required_argument, NULL, O_DNS_ZONE },
		{ "tsig-key", required_argument, NULL, O_TSIG },
		{ "dns-timeout", required_argument, NULL, O_DNS_TIMEOUT },
		{ "profile", required_argument, NULL, O_PROFILE },
		{ "out", required_argument, NULL, O_OUT },
		{ "reuse-key", no_argument, NULL, O_REUSE },
		{ "json", no_argument, NULL, O_JSON },
		{ "each", no_argument, NULL, O_EACH },
		{ "concurrency", required_argument, NULL, O_CONCURRENCY },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cli_command *self = cli_find_command("issue");
	struct aclm_acme_request req;
	struct aclm_acme_ca *cas = NULL;
	size_t n_cas = 0, n_names = 0, n_ca_names = 0, n_keys = 1;
	const char *ca_names[MAX_CAS];
	enum aclm_keygen keys[2] = { ACLM_KEYGEN_EC256, ACLM_KEYGEN_EC256 };
	const char *out_dir = NULL;
	bool json = false, have_challenge = false, each = false;
	int64_t concurrency = 1;
	struct aclm_acme_responder *responder = NULL;
	char **names = NULL;
	struct aclm_kek kek;
	json_t *jout = NULL;
	int opt, rc = EXIT_FAILED, r;

	memset(&req, 0, sizeof(req));
	memset(&kek, 0, sizeof(kek));
	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (opt) {
		case O_KEY:
			if (aclm_keygen_parse(optarg, &keys[0]) != ACLM_OK)
				return cli_usage_error("issue", "--key: %s", aclm_errmsg());
			break;
		case O_DUAL: {
			char buf[64], *comma;
			aclm_strlcpy(buf, optarg, sizeof(buf));
			comma = strchr(buf, ',');
			if (comma == NULL)
				return cli_usage_error("issue", "--dual needs two key types, e.g. ec256,rsa2048");
			*comma = '\0';
			if (aclm_keygen_parse(buf, &keys[0]) != ACLM_OK ||
			    aclm_keygen_parse(comma + 1, &keys[1]) != ACLM_OK)
				return cli_usage_error("issue", "--dual: %s", aclm_errmsg());
			if (keys[0] == keys[1])
				return cli_usage_error("issue", "--dual needs two different key types");
			n_keys = 2;
			break;
		}
		case O_CA:
			if (n_ca_names >= MAX_CAS)
				return cli_usage_error("issue", "at most %d --ca", MAX_CAS);
			ca_names[n_ca_names++] = optarg;
			break;
		case O_CHALLENGE:
			if (aclm_acme_chall_parse(optarg, &req.solver.type) != ACLM_OK)
				return cli_usage_error("issue", "--challenge: %s", aclm_errmsg());
			have_challenge = true;
			break;
		case O_WEBROOT: req.solver.webroot = optarg; break;
		case O_STANDALONE: req.solver.standalone = optarg; break;
		case O_DNS_HOOK: req.solver.dns_hook = optarg; break;
		case O_DNS_WAIT:
			if (aclm_parse_duration(optarg, &req.solver.dns_wait) != ACLM_OK)
				return cli_usage_error("issue", "--dns-wait: '%s' is not a duration", optarg);
			break;
		case O_DNS_SERVER: req.solver.dns_server = optarg; break;
		case O_DNS_ZONE: req.solver.dns_zone = optarg; break;
		case O_TSIG: req.solver.tsig_key = optarg; break;
		case O_DNS_TIMEOUT:
			if (aclm_parse_duration(optarg, &req.solver.dns_timeout) != ACLM_OK)
				return cli_usage_error("issue", "--dns-timeout: '%s' is not a duration", optarg);
			break;
		case O_PROFILE: req.profile = optarg; break;
		case O_OUT: out_dir = optarg; break;
		case O_REUSE: req.reuse_key = true; break;
		case O_JSON: json = true; break;
		case O_EACH: each = true; break;
		case O_CONCURRENCY:
			if (aclm_parse_int64(optarg, &concurrency) != ACLM_OK || concurrency < 1 ||
			    concurrency > 64)
				return cli_usage_error("issue", "--concurrency: 1 to 64");
			break;
		default:
			if ((r = cli_getopt_default(self, opt, argv)) >= 0)
				return r;
		}
	}
	if (optind >= argc)
		return cli_usage_error("issue", "no names given");
	if (!have_challenge)
		req.solver.type = req.solver.dns_hook || req.solver.dns_server ? ACLM_CHALL_DNS01
		                                                                : ACLM_CHALL_HTTP01;
	if (req.solver.webroot != NULL && req.solver.standalone != NULL)
		return cli_usage_error("issue", "--webroot and --standalone exclude each other");
	if (req.solver.webroot != NULL && req.solver.type != ACLM_CHALL_HTTP01)
		return cli_usage_error("issue", "--webroot only answers http-01");
	if (aclm_acme_names_normalize((const char *const *)argv + optind, (size_t)(argc - optind),
	                              &names, &n_names) != ACLM_OK)
		return cli_usage_error("issue", "%s", aclm_errmsg());
	if ((rc = cli_acme_setup(cli, &kek, &cas, &n_cas)) != EXIT_OK)
		goto out;
	rc = EXIT_FAILED;
	if (n_cas == 0) {
		cli_fail("no ACME CA is configured: declare one in acme.cas of aclm.yaml "
		         "(see 'aclm help issue')");
		goto out;
	}
	if (n_ca_names == 0)
		for (size_t i = 0; i < n_cas && i < MAX_CAS; i++)
			ca_names[n_ca_names++] = cas[i].name;
	for (size_t i = 0; i < n_ca_names; i++) {
		if (aclm_acme_ca_find(cas, n_cas, ca_names[i]) == NULL) {
			rc = cli_usage_error("issue", "--ca %s: no such CA in acme.cas", ca_names[i]);
			goto out;
		}
	}
	req.names = (const char *const *)names;
	req.n_names = n_names;
	req.cas = ca_names;
	req.n_cas = n_ca_names;
	if (each) {
		struct each e;
		memset(&e, 0, sizeof(e));
		if (out_dir != NULL) {
			rc = cli_usage_error("issue", "--out cannot be used with --each");
			goto out;
		}
		if (req.solver.type != ACLM_CHALL_DNS01 && req.solver.webroot == NULL &&
		    req.solver.standalone != NULL) {
			if (aclm_acme_responder_start(req.solver.standalone, req.solver.type,
			                              &responder) != ACLM_OK) {
				rc = cli_fail("%s", aclm_errmsg());
				goto out;
			}
			req.solver.responder = responder;
		}
		e.cli = cli;
		e.kek = &kek;
		e.cas = cas;
		e.n_cas = n_cas;
		e.tmpl = &req;
		e.keys = keys;
		e.n_keys = n_keys;
		e.names = names;
		e.n_names = n_names;
		rc = issue_each(&e, concurrency, json);
		goto out;
	}
	jout = json_array();
	rc = EXIT_OK;
	for (size_t k = 0; k < n_keys; k++) {
		struct aclm_acme_result res;
		char iso[32];

		req.key = keys[k];
		if (aclm_acme_issue(cli->store, &kek, cas, n_cas, &req, &res) != ACLM_OK) {
			cli_fail("%s", aclm_errmsg());
			rc = EXIT_FAILED;
			break;
		}
		if (k == 1) {
			aclm_store_managed_set_pair(cli->store, req.pair_id, res.managed_id);
			aclm_store_managed_set_pair(cli->store, res.managed_id, req.pair_id);
		}
		req.pair_id = res.managed_id;
		aclm_time_iso(res.not_after, iso, sizeof(iso));
		if (json) {
			json_array_append_new(jout, json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:b}",
			                      "cert_id", (json_int_t)res.cert_id,
			                      "managed_id", (json_int_t)res.managed_id,
			                      "ca", res.ca, "fingerprint", res.fingerprint,
			                      "key", aclm_keygen_name(keys[k]), "not_after", iso,
			                      "resumed", res.resumed));
		} else if (!cli->quiet) {
			printf("issued certificate %lld (%s, %s) for %s from CA %s, valid until %s%s; "
			       "managed certificate %lld\n", (long long)res.cert_id,
			       aclm_keygen_name(keys[k]), res.fingerprint, names[0], res.ca, iso,
			       res.resumed ? " (resumed order)" : "", (long long)res.managed_id);
		}
		if (out_dir != NULL) {
			char label[300];
			snprintf(label, sizeof(label), "%s%s%s", names[0][0] == '*' ? "_wildcard" : "",
			         names[0][0] == '*' ? names[0] + 1 : names[0],
			         n_keys > 1 ? (k == 0 ? ".0" : ".1") : "");
			if (n_keys > 1)
				snprintf(label, sizeof(label), "%s%s.%s", names[0][0] == '*' ? "_wildcard" : "",
				         names[0][0] == '*' ? names[0] + 1 : names[0], aclm_keygen_name(keys[k]));
			if (write_out(cli, &kek, out_dir, label, res.cert_id) != ACLM_OK) {
				cli_fail("--out: %s", aclm_errmsg());
				rc = EXIT_FAILED;
				break;
			}
		}
	}
	if (json)
		cli_json_print(jout);
	else
		json_decref(jout);
out:
	aclm_acme_responder_stop(responder);
	aclm_kek_wipe(&kek);
	aclm_acme_cas_free(cas, n_cas);
	aclm_acme_names_free(names, n_names);
	return rc;
}
