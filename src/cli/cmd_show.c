/* aclm show: everything known about one certificate. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "aclm/err.h"
#include "aclm/str.h"
#include "aclm/timeutil.h"
#include "aclm/x509.h"
#include "cli-int.h"

#define MAX_CHAIN 16

struct chain_link {
	int64_t id;
	int64_t issuer_id;
	char fingerprint[65];
	char *subject;
};

static int grab_link(void *ctx, const struct aclm_cert_row *r)
{
	struct chain_link *l = ctx;

	l->id = r->id;
	l->issuer_id = r->issuer_id;
	aclm_strlcpy(l->fingerprint, r->fingerprint, sizeof(l->fingerprint));
	l->subject = aclm_strdup(r->subject);
	return 0;
}

static int grab_row_json(void *ctx, const struct aclm_cert_row *r)
{
	json_t **o = ctx;

	*o = cli_cert_row_json(r, aclm_now());
	return 0;
}

static int collect_same_key(void *ctx, const struct aclm_cert_row *r)
{
	json_array_append_new((json_t *)ctx, json_integer(r->id));
	return 0;
}

static int collect_observation(void *ctx, const struct aclm_observation_row *r)
{
	json_t *o = json_object();

	json_object_set_new(o, "source", cli_json_str(r->source));
	json_object_set_new(o, "location", cli_json_str(r->location));
	json_object_set_new(o, "seen_at", cli_json_time(r->seen_at));
	json_array_append_new((json_t *)ctx, o);
	return 0;
}

static json_t *str_array(char **items, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, cli_json_str(items[i]));
	return a;
}

static json_t *key_usage_json(const struct aclm_cert *c)
{
	char buf[256], *save = NULL;
	json_t *a = json_array();

	if (!c->has_key_usage)
		return a;
	aclm_key_usage_str(c->key_usage, buf, sizeof(buf));
	for (char *t = strtok_r(buf, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save))
		json_array_append_new(a, json_string(t));
	return a;
}

/* The issuer chain as far as the inventory knows it, from the issuer up. */
static json_t *chain_json(struct aclm_store *st, int64_t issuer_id)
{
	json_t *a = json_array();
	int64_t seen[MAX_CHAIN];
	size_t n = 0;

	while (issuer_id != 0 && n < MAX_CHAIN) {
		struct chain_link l = { 0 };
		bool loop = false;
		for (size_t i = 0; i < n; i++)
			loop |= seen[i] == issuer_id;
		if (loop || aclm_store_get_cert(st, issuer_id, grab_link, &l) != ACLM_OK)
			break;
		seen[n++] = l.id;
		json_t *o = json_object();
		json_object_set_new(o, "id", json_integer(l.id));
		json_object_set_new(o, "subject", cli_json_str(l.subject));
		json_object_set_new(o, "fingerprint", json_string(l.fingerprint));
		json_array_append_new(a, o);
		free(l.subject);
		issuer_id = l.issuer_id == l.id ? 0 : l.issuer_id;
	}
	return a;
}

static void print_text(json_t *o)
{
	static const char *const scalars[][2] = {
		{ "id", "ID" }, { "subject", "Subject" }, { "issuer", "Issuer" },
		{ "serial", "Serial" }, { "not_before", "Not before" }, { "not_after", "Not after" },
		{ "days_left", "Days left" }, { "key", "Key" }, { "curve", "Curve" },
		{ "sig_alg", "Signature" }, { "level", "Validation level" }, { "is_ca", "CA" },
		{ "path_len", "Path length" }, { "ski", "Subject key ID" },
		{ "aki", "Authority key ID" }, { "fingerprint", "SHA-256" },
		{ "spki_sha256", "Public key SHA-256" }, { "has_private_key", "Private key stored" },
	};
	static const char *const arrays[][2] = {
		{ "sans", "Names (SAN)" }, { "key_usage", "Key usage" },
		{ "eku", "Extended key usage" }, { "policies", "Policies" },
	};
	json_t *v;
	size_t i;

	for (i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++) {
		v = json_object_get(o, scalars[i][0]);
		if (v == NULL || json_is_null(v) || (json_is_string(v) && *json_string_value(v) == '\0'))
			continue;
		if (json_is_string(v))
			printf("%-20s %s\n", scalars[i][1], json_string_value(v));
		else if (json_is_boolean(v))
			printf("%-20s %s\n", scalars[i][1], json_is_true(v) ? "yes" : "no");
		else if (json_is_integer(v))
			printf("%-20s %lld\n", scalars[i][1], (long long)json_integer_value(v));
	}
	for (i = 0; i < sizeof(arrays) / sizeof(arrays[0]); i++) {
		size_t j;
		json_t *e;
		v = json_object_get(o, arrays[i][0]);
		if (json_array_size(v) == 0)
			continue;
		printf("%-20s", arrays[i][1]);
		json_array_foreach(v, j, e)
			printf("%s%s", j ? ", " : " ", json_string_value(e));
		putchar('\n');
	}
	v = json_object_get(o, "chain");
	if (json_array_size(v) > 0) {
		size_t j;
		json_t *e;
		printf("Issuer chain\n");
		json_array_foreach(v, j, e)
			printf("  %*s#%lld %s\n", (int)j * 2, "",
			       (long long)json_integer_value(json_object_get(e, "id")),
			       json_string_value(json_object_get(e, "subject")));
	}
	v = json_object_get(o, "same_key");
	if (json_array_size(v) > 0) {
		size_t j;
		json_t *e;
		printf("%-20s", "Same key as");
		json_array_foreach(v, j, e)
			printf("%s#%lld", j ? ", " : " ", (long long)json_integer_value(e));
		putchar('\n');
	}
	v = json_object_get(o, "observations");
	printf("Seen %zu time%s\n", json_array_size(v), json_array_size(v) == 1 ? "" : "s");
	{
		size_t j;
		json_t *e;
		json_array_foreach(v, j, e)
			printf("  %s  %-6s %s\n", json_string_value(json_object_get(e, "seen_at")),
			       json_string_value(json_object_get(e, "source")),
			       json_string_value(json_object_get(e, "location")));
	}
}

int cmd_show(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cli_command *self = cli_find_command("show");
	struct aclm_cert *c = NULL;
	unsigned char *der = NULL;
	size_t der_len = 0;
	json_t *o = NULL, *list;
	bool json = false;
	int64_t id;
	int opt, rc = EXIT_FAILED;

	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (opt == 'j')
			json = true;
		else
			return cli_getopt_default(self, opt, argv);
	}
	if (optind >= argc)
		return cli_usage_error("show", "missing ID or FINGERPRINT");
	if (optind + 1 < argc)
		return cli_usage_error("show", "unexpected argument '%s'", argv[optind + 1]);
	if (cli_open_store(cli) != ACLM_OK)
		return EXIT_FAILED;
	if (aclm_store_find_cert(cli->store, argv[optind], &id) != ACLM_OK)
		return cli_fail("%s", aclm_errmsg());
	if (aclm_store_get_cert(cli->store, id, grab_row_json, &o) != ACLM_OK || o == NULL) {
		cli_fail("%s", aclm_errmsg());
		goto out;
	}
	if (aclm_store_get_cert_der(cli->store, id, &der, &der_len) != ACLM_OK ||
	    aclm_cert_parse_der(der, der_len, &c) != ACLM_OK) {
		cli_fail("certificate %lld: %s", (long long)id, aclm_errmsg());
		goto out;
	}
	json_object_set_new(o, "version", json_integer(c->version));
	json_object_set_new(o, "sig_alg_oid", cli_json_str(c->sig_alg_oid));
	json_object_set_new(o, "ski", cli_json_str(c->ski_hex));
	json_object_set_new(o, "aki", cli_json_str(c->aki_hex));
	json_object_set_new(o, "path_len", c->path_len >= 0 ? json_integer(c->path_len) : json_null());
	json_object_set_new(o, "key_usage", key_usage_json(c));
	json_object_set_new(o, "eku", str_array(c->eku, c->n_eku));
	json_object_set_new(o, "policies", str_array(c->policies, c->n_policies));
	json_object_set_new(o, "chain", chain_json(cli->store,
	                    json_integer_value(json_object_get(o, "issuer_id"))));
	list = json_array();
	if (aclm_store_list_same_key(cli->store, id, collect_same_key, list) != ACLM_OK) {
		json_decref(list);
		cli_fail("%s", aclm_errmsg());
		goto out;
	}
	json_object_set_new(o, "same_key", list);
	list = json_array();
	if (aclm_store_list_observations(cli->store, id, collect_observation, list) != ACLM_OK) {
		json_decref(list);
		cli_fail("%s", aclm_errmsg());
		goto out;
	}
	json_object_set_new(o, "observations", list);
	if (json) {
		cli_json_print(o);
		o = NULL;
	} else {
		print_text(o);
	}
	rc = EXIT_OK;
out:
	json_decref(o);
	aclm_cert_free(c);
	free(der);
	return rc;
}
