/* aclm policy: named rule sets and the compliance check. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aclm/buf.h"
#include "aclm/err.h"
#include "aclm/notify.h"
#include "aclm/policy.h"
#include "aclm/store_policy.h"
#include "aclm/str.h"
#include "aclm/timeutil.h"
#include "cli-int.h"

/* Queue the violations as one alert (aclm_policy_alert) and deliver it now. */
static int alert_violations(struct cli *cli, const struct aclm_policy_result *res,
                            const char *channel, int64_t every)
{
	struct aclm_notify_opts o;
	struct aclm_notify_stats stats = { 0 };
	int64_t now = aclm_now(), id = 0;

	if (aclm_policy_alert(cli->store, res, channel, every, now, &id) != ACLM_OK)
		return cli_fail("%s", aclm_errmsg());
	if (id == 0) {
		if (res->n_violations > 0 && !cli->quiet)
			fprintf(stderr, "no alert: the same violations were alerted already\n");
		return ACLM_OK;
	}
	aclm_notify_opts_from_config(cli->cfg, &o);
	if (aclm_notify_deliver_due(cli->store, &o, now, &stats) != ACLM_OK)
		return cli_fail("%s", aclm_errmsg());
	if (stats.sent == 0)
		return cli_fail("alert %lld about the violations was not delivered yet: see aclm alert "
		                "list", (long long)id);
	if (!cli->quiet)
		fprintf(stderr, "alert %lld about the violations sent through '%s'\n", (long long)id,
		        channel);
	return ACLM_OK;
}

static int check(struct cli *cli, int argc, char **argv)
{
	enum { O_JSON = 256, O_POLICY, O_ALL, O_ALERT, O_EVERY, O_RULE };
	static const struct option opts[] = {
		{ "json", no_argument, NULL, O_JSON },
		{ "policy", required_argument, NULL, O_POLICY },
		{ "all", no_argument, NULL, O_ALL },
		{ "alert", required_argument, NULL, O_ALERT },
		{ "every", required_argument, NULL, O_EVERY },
		{ "rule", required_argument, NULL, O_RULE },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cli_command *self = cli_find_command("policy");
	struct aclm_policy_filter f = { .kind = -1 };
	struct aclm_policy *pol = NULL;
	struct aclm_policy_result res;
	const char *name = NULL, *channel = NULL;
	bool json = false, all = false;
	int64_t every = 0;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (opt) {
		case O_JSON: json = true; break;
		case O_POLICY: name = optarg; break;
		case O_ALL: all = true; break;
		case O_ALERT: channel = optarg; break;
		case O_RULE:
			if ((f.rule = aclm_policy_rule_name(optarg)) == NULL)
				return cli_usage_error("policy", "--rule: '%s' is not a rule (key-type, "
				                       "key-size, key-curve, signature-algorithm, "
				                       "max-validity, issuer, san-pattern, wildcard, "
				                       "one-site-one-key, dual-certificate, pq-key-exchange)",
				                       optarg);
			break;
		case O_EVERY:
			if (aclm_parse_duration(optarg, &every) != ACLM_OK || every < 60)
				return cli_usage_error("policy", "--every: '%s' is not a duration of a "
				                       "minute or more (1d)", optarg);
			break;
		default: return cli_getopt_default(self, opt, argv);
		}
	}
	if (optind < argc)
		return cli_usage_error("policy", "check: unexpected argument '%s'", argv[optind]);
	if (every > 0 && channel == NULL)
		return cli_usage_error("policy", "--every goes with --alert CHANNEL");
	if (cli_open_store(cli) != ACLM_OK)
		return EXIT_FAILED;
	if (aclm_policy_load(cli->store, name, &pol) != ACLM_OK)
		return cli_fail("%s", aclm_errmsg());
	rc = aclm_policy_evaluate(cli->store, pol, aclm_now(), &res);
	aclm_policy_free(pol);
	if (rc != ACLM_OK)
		return cli_fail("%s", aclm_errmsg());
	f.violating_only = !all;
	if (json) {
		cli_json_print(aclm_policy_result_items_json(&res, &f, 0, 0));
	} else {
		for (size_t i = 0; i < res.n; i++) {
			const struct aclm_policy_subject *s = &res.subjects[i];
			if (!aclm_policy_subject_matches(s, &f))
				continue;
			if (s->kind == ACLM_SUBJECT_SITE)
				printf("site %s: ", s->label);
			else
				printf("%s %lld %s: ", aclm_subject_kind_name(s->kind), (long long)s->id,
				       s->label);
			if (s->n_v == 0)
				printf("compliant\n");
			else
				printf("%zu violation%s\n", s->n_v, s->n_v > 1 ? "s" : "");
			for (size_t k = 0; k < s->n_v; k++)
				printf("  %-20s %s\n", s->v[k].rule, s->v[k].detail);
		}
		if (!cli->quiet)
			fprintf(stderr, "policy %s: %lld of %lld certificates, %lld of %lld endpoints, "
			        "%lld of %lld sites with violations (%lld violations)\n", res.policy,
			        (long long)res.n_violating[0], (long long)res.n_total[0],
			        (long long)res.n_violating[1], (long long)res.n_total[1],
			        (long long)res.n_violating[2], (long long)res.n_total[2],
			        (long long)res.n_violations);
	}
	rc = res.n_violations > 0 ? EXIT_FAILED : EXIT_OK;
	if (channel != NULL && alert_violations(cli, &res, channel, every) != ACLM_OK)
		rc = EXIT_FAILED;
	aclm_policy_result_free(&res);
	return rc;
}

static int list_one(void *ctx, const struct aclm_policy_rec *r)
{
	json_t *arr = ctx, *doc = json_loads(r->body, 0, NULL);

	json_array_append_new(arr, json_pack("{s:s,s:b,s:b,s:o,s:o,s:o}", "name", r->name,
	                                     "builtin", 0, "default", r->is_default,
	                                     "description",
	                                     cli_json_str(json_string_value(json_object_get(doc,
	                                                                    "description"))),
	                                     "created_at", cli_json_time(r->created_at),
	                                     "updated_at", cli_json_time(r->updated_at)));
	json_decref(doc);
	return 0;
}

static int list(struct cli *cli, bool json)
{
	json_t *arr = json_array();
	struct aclm_policy *builtin = NULL;
	json_t *bdoc;
	char *def = NULL;
	size_t i;
	json_t *it;

	if (cli_open_store(cli) != ACLM_OK || aclm_store_policy_default(cli->store, &def) != ACLM_OK ||
	    aclm_policy_builtin(&builtin) != ACLM_OK) {
		json_decref(arr);
		free(def);
		return cli->store != NULL ? cli_fail("%s", aclm_errmsg()) : EXIT_FAILED;
	}
	bdoc = aclm_policy_json(builtin);
	json_array_append_new(arr, json_pack("{s:s,s:b,s:b,s:O,s:n,s:n}", "name",
	                                     ACLM_POLICY_BUILTIN, "builtin", 1, "default",
	                                     def == NULL, "description",
	                                     json_object_get(bdoc, "description"), "created_at",
	                                     "updated_at"));
	json_decref(bdoc);
	aclm_policy_free(builtin);
	free(def);
	if (aclm_store_policy_list(cli->store, list_one, arr) != ACLM_OK) {
		json_decref(arr);
		return cli_fail("%s", aclm_errmsg());
	}
	if (json) {
		cli_json_print(arr);
		return EXIT_OK;
	}
	printf("%-24s %-8s %s\n", "NAME", "DEFAULT", "DESCRIPTION");
	json_array_foreach(arr, i, it)
		printf("%-24s %-8s %s%s\n", json_string_value(json_object_get(it, "name")),
		       json_is_true(json_object_get(it, "default")) ? "yes" : "",
		       json_string_value(json_object_get(it, "description")) ?
		       json_string_value(json_object_get(it, "description")) : "",
		       json_is_true(json_object_get(it, "builtin")) ? " (built in)" : "");
	json_decref(arr);
	return EXIT_OK;
}

static int show(struct cli *cli, const char *name)
{
	struct aclm_policy *p = NULL;

	if (cli_open_store(cli) != ACLM_OK)
		return EXIT_FAILED;
	if (aclm_policy_load(cli->store, name, &p) != ACLM_OK)
		return cli_fail("%s", aclm_errmsg());
	cli_json_print(aclm_policy_json(p));
	aclm_policy_free(p);
	return EXIT_OK;
}

static int add(struct cli *cli, const char *path, bool replace, bool make_default)
{
	struct aclm_buf b;
	struct aclm_policy *p = NULL;
	char actor[128];
	char *body = NULL;
	json_t *doc = NULL;
	int rc;

	aclm_buf_init(&b, 1u << 20);
	if ((rc = aclm_buf_read_file(&b, path)) != ACLM_OK ||
	    (rc = aclm_policy_parse((const char *)b.data, b.len, path, &p)) != ACLM_OK) {
		aclm_buf_free(&b);
		return cli_fail("%s", aclm_errmsg());
	}
	aclm_buf_free(&b);
	doc = aclm_policy_json(p);
	body = doc != NULL ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(doc);
	cli_actor(actor, sizeof(actor));
	if (body == NULL)
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
	else if ((rc = cli_open_store(cli)) != ACLM_OK)
		goto out;
	else
		rc = aclm_store_policy_put(cli->store, actor, aclm_policy_name(p), body, replace);
	if (rc == ACLM_OK && make_default)
		rc = aclm_store_policy_set_default(cli->store, actor, aclm_policy_name(p));
	if (rc != ACLM_OK) {
		cli_fail("%s", aclm_errmsg());
		goto out;
	}
	if (!cli->quiet)
		fprintf(stderr, "policy %s %s%s\n", aclm_policy_name(p), replace ? "stored" : "added",
		        make_default ? " (default)" : "");
out:
	free(body);
	aclm_policy_free(p);
	return rc == ACLM_OK ? EXIT_OK : EXIT_FAILED;
}

int cmd_policy(struct cli *cli, int argc, char **argv)
{
	enum { O_JSON = 256, O_REPLACE, O_DEFAULT };
	static const struct option opts[] = {
		{ "json", no_argument, NULL, O_JSON },
		{ "replace", no_argument, NULL, O_REPLACE },
		{ "default", no_argument, NULL, O_DEFAULT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cli_command *self = cli_find_command("policy");
	bool json = false, replace = false, make_default = false;
	const char *sub;
	char actor[128];
	int opt;

	if (argc < 2)
		return cli_usage_error("policy", "which: check, list, show, add, del or default?");
	sub = argv[1];
	if (strcmp(sub, "check") == 0)
		return check(cli, argc - 1, argv + 1);
	if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0) {
		cli_print_help(self);
		return EXIT_OK;
	}
	optind = 0;
	argc--;
	argv++;
	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (opt) {
		case O_JSON: json = true; break;
		case O_REPLACE: replace = true; break;
		case O_DEFAULT: make_default = true; break;
		default: return cli_getopt_default(self, opt, argv);
		}
	}
	if (strcmp(sub, "list") == 0) {
		if (optind < argc)
			return cli_usage_error("policy", "list: unexpected argument '%s'", argv[optind]);
		return list(cli, json);
	}
	if (strcmp(sub, "show") != 0 && strcmp(sub, "add") != 0 && strcmp(sub, "del") != 0 &&
	    strcmp(sub, "default") != 0)
		return cli_usage_error("policy", "unknown subcommand '%s' (check, list, show, add, "
		                       "del, default)", sub);
	if (optind + 1 != argc)
		return cli_usage_error("policy", "%s needs one %s", sub,
		                       strcmp(sub, "add") == 0 ? "FILE" : "NAME");
	if (strcmp(sub, "show") == 0)
		return show(cli, argv[optind]);
	if (strcmp(sub, "add") == 0)
		return add(cli, argv[optind], replace, make_default);
	if (cli_open_store(cli) != ACLM_OK)
		return EXIT_FAILED;
	cli_actor(actor, sizeof(actor));
	if (strcmp(sub, "default") == 0) {
		const char *name = argv[optind];
		if (strcmp(name, ACLM_POLICY_BUILTIN) == 0)
			name = NULL;
		if (aclm_store_policy_set_default(cli->store, actor, name) != ACLM_OK)
			return cli_fail("%s", aclm_errmsg());
		return EXIT_OK;
	}
	if (strcmp(argv[optind], ACLM_POLICY_BUILTIN) == 0)
		return cli_fail("'%s' is built in and cannot be deleted", ACLM_POLICY_BUILTIN);
	if (aclm_store_policy_delete(cli->store, actor, argv[optind]) != ACLM_OK)
		return cli_fail("%s", aclm_errmsg());
	return EXIT_OK;
}
