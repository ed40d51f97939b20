/* aclm alert: channels, rules, the alerts raised and their delivery, and
 * one evaluate-and-deliver run (for cron and tests). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "aclm/err.h"
#include "aclm/keywrap.h"
#include "aclm/notify.h"
#include "aclm/store_notify.h"
#include "aclm/str.h"
#include "aclm/timeutil.h"
#include "cli-int.h"

#define MAX_TO 32

struct alert_args {
	const char *kind, *url, *from, *user, *password_file, *secret_file, *ca_file;
	const char *to[MAX_TO];
	size_t n_to;
	const char *channel, *days, *name, *issuer, *renotify, *state;
	bool include_ca, all, disabled, json;
	int64_t limit;
};

static int read_secret(const char *path, const char *what, char **out)
{
	if (cli_read_password_file(path, out) != ACLM_OK)
		return cli_fail("%s: %s", what, aclm_errmsg());
	if (**out == '\0') {
		free(*out);
		*out = NULL;
		return cli_fail("%s: %s: the first line is empty", what, path);
	}
	return EXIT_OK;
}

static int channel_add(struct cli *cli, const char *name, const struct alert_args *a)
{
	struct aclm_notify_channel_input in = {
		.kind = a->kind, .name = name, .url = a->url, .from = a->from, .to = a->to,
		.n_to = a->n_to, .username = a->user, .ca_file = a->ca_file,
	};
	struct aclm_kek kek;
	bool have_kek = false;
	char *config = NULL, actor[80];
	int64_t id = 0;
	int rc = EXIT_OK;

	memset(&kek, 0, sizeof(kek));
	if (a->kind == NULL)
		return cli_usage_error("alert", "channel add: --kind is required (email, webhook, "
		                       "slack, dingtalk, wecom, feishu)");
	if (a->password_file != NULL && (rc = read_secret(a->password_file, "--password-file",
	                                                  &in.password)) != EXIT_OK)
		goto out;
	if (a->secret_file != NULL && (rc = read_secret(a->secret_file, "--secret-file",
	                                                &in.secret)) != EXIT_OK)
		goto out;
	if (in.password != NULL || in.secret != NULL) {
		if (aclm_kek_load(getenv("ACLM_KEK"), aclm_config_str(cli->cfg, "security.kek_file"),
		                  true, &kek) != ACLM_OK) {
			rc = cli_fail("cannot seal the channel's secret: %s", aclm_errmsg());
			goto out;
		}
		have_kek = true;
	}
	if ((rc = aclm_notify_channel_config(&in, have_kek ? &kek : NULL, &config)) != ACLM_OK) {
		rc = rc == ACLM_ERR_USAGE ? cli_usage_error("alert", "%s", aclm_errmsg())
		                          : cli_fail("%s", aclm_errmsg());
		goto out;
	}
	if (cli_open_store(cli) != EXIT_OK) {
		rc = EXIT_FAILED;
		goto out;
	}
	cli_actor(actor, sizeof(actor));
	if (aclm_store_alert_channel_add(cli->store, actor, name, a->kind, config, &id) != ACLM_OK) {
		rc = cli_fail("%s", aclm_errmsg());
		goto out;
	}
	if (!cli->quiet)
		printf("alert channel %lld '%s' (%s) added%s\n", (long long)id, name, a->kind,
		       have_kek ? "; its secret is sealed with the key-encryption key" : "");
out:
	aclm_notify_channel_input_wipe(&in);
	if (have_kek)
		aclm_kek_wipe(&kek);
	free(config);
	return rc;
}

static int print_channel(void *ctx, const struct aclm_alert_channel *c)
{
	json_t *arr = ctx, *o = aclm_notify_channel_json(c);
	char *cfg;

	if (o == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	if (arr != NULL) {
		json_array_append_new(arr, o);
		return ACLM_OK;
	}
	cfg = json_dumps(json_object_get(o, "config"), JSON_COMPACT | JSON_SORT_KEYS);
	printf("%-5lld %-20s %-9s %s\n", (long long)c->id, c->name, c->kind, cfg ? cfg : "");
	free(cfg);
	json_decref(o);
	return ACLM_OK;
}

static int print_rule(void *ctx, const struct aclm_alert_rule *r)
{
	json_t *arr = ctx;
	char renotify[32];

	if (arr != NULL) {
		json_t *o = aclm_notify_rule_json(r);
		if (o == NULL)
			return aclm_error(ACLM_ERR_NOMEM, "out of memory");
		json_array_append_new(arr, o);
		return ACLM_OK;
	}
	if (r->renotify_seconds <= 0)
		aclm_strlcpy(renotify, "never", sizeof(renotify));
	else if (r->renotify_seconds % 86400 == 0)
		snprintf(renotify, sizeof(renotify), "%lldd", (long long)(r->renotify_seconds / 86400));
	else
		snprintf(renotify, sizeof(renotify), "%llds", (long long)r->renotify_seconds);
	printf("%-5lld %-20s %-15s %-16s %-8s %-8s %s\n", (long long)r->id, r->name, r->kind,
	       r->channel ? r->channel : "(deleted)", renotify, r->enabled ? "yes" : "no",
	       r->params ? r->params : "{}");
	return ACLM_OK;
}

static int rule_add(struct cli *cli, const char *name, const struct alert_args *a)
{
	struct aclm_alert_rule r;
	struct aclm_alert_channel ch;
	json_t *params = json_object();
	char *params_text = NULL, actor[80];
	int64_t renotify = 86400, id = 0;
	int rc = EXIT_OK;

	memset(&r, 0, sizeof(r));
	memset(&ch, 0, sizeof(ch));
	if (a->kind == NULL || !aclm_notify_rule_kind_valid(a->kind)) {
		json_decref(params);
		return cli_usage_error("alert", "rule add: --kind must be expiry, renewal-failed, "
		                       "cert-changed, ghost or unreachable");
	}
	if (a->channel == NULL) {
		json_decref(params);
		return cli_usage_error("alert", "rule add: --channel NAME is required");
	}
	if (name == NULL || *name == '\0' || strlen(name) > 64 || strpbrk(name, "\r\n\t") != NULL) {
		json_decref(params);
		return cli_usage_error("alert", "rule add: the name must be 1-64 characters");
	}
	if (a->renotify != NULL && strcmp(a->renotify, "never") != 0 &&
	    (aclm_parse_duration(a->renotify, &renotify) != ACLM_OK || renotify <= 0)) {
		json_decref(params);
		return cli_usage_error("alert", "--renotify: '%s' is not a duration (1d, 12h, never)",
		                       a->renotify);
	}
	if (a->renotify != NULL && strcmp(a->renotify, "never") == 0)
		renotify = 0;
	if (a->days != NULL) {
		json_t *days = json_array();
		char buf[256], *save = NULL, *tok;
		if (strcmp(a->kind, "expiry") != 0) {
			json_decref(days);
			json_decref(params);
			return cli_usage_error("alert", "--days is for expiry rules");
		}
		aclm_strlcpy(buf, a->days, sizeof(buf));
		for (tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
			int64_t d;
			if (aclm_parse_int64(tok, &d) != ACLM_OK) {
				json_decref(days);
				json_decref(params);
				return cli_usage_error("alert", "--days: '%s' is not a whole number", tok);
			}
			json_array_append_new(days, json_integer(d));
		}
		json_object_set_new(params, "days", days);
	}
	if (a->name != NULL)
		json_object_set_new(params, "name", json_string(a->name));
	if (a->issuer != NULL)
		json_object_set_new(params, "issuer", json_string(a->issuer));
	if (a->include_ca)
		json_object_set_new(params, "include_ca", json_true());
	if (a->all)
		json_object_set_new(params, "all", json_true());
	params_text = json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(params);
	if (params_text == NULL)
		return cli_fail("out of memory (or a parameter not UTF-8)");
	if (aclm_notify_rule_check(a->kind, params_text) != ACLM_OK) {
		rc = cli_usage_error("alert", "%s", aclm_errmsg());
		goto out;
	}
	if (cli_open_store(cli) != EXIT_OK) {
		rc = EXIT_FAILED;
		goto out;
	}
	if (aclm_store_alert_channel_get(cli->store, a->channel, &ch) != ACLM_OK) {
		rc = cli_fail("%s", aclm_errmsg());
		goto out;
	}
	r.name = (char *)name;
	r.kind = (char *)a->kind;
	r.params = params_text;
	r.channel_id = ch.id;
	r.renotify_seconds = renotify;
	r.enabled = !a->disabled;
	cli_actor(actor, sizeof(actor));
	if (aclm_store_alert_rule_add(cli->store, actor, &r, &id) != ACLM_OK) {
		rc = cli_fail("%s", aclm_errmsg());
		goto out;
	}
	if (!cli->quiet)
		printf("alert rule %lld '%s' (%s %s) added, sending to '%s'\n", (long long)id, name,
		       a->kind, params_text, ch.name);
out:
	aclm_alert_channel_clear(&ch);
	free(params_text);
	return rc;
}

static int print_alert(void *ctx, const struct aclm_alert_row *a)
{
	json_t *arr = ctx;
	char created[32], when[32] = "-";

	if (arr != NULL) {
		json_t *o = aclm_notify_alert_json(a);
		if (o == NULL)
			return aclm_error(ACLM_ERR_NOMEM, "out of memory");
		json_array_append_new(arr, o);
		return ACLM_OK;
	}
	aclm_time_iso(a->created_at, created, sizeof(created));
	if (strcmp(a->state, "sent") == 0)
		aclm_time_iso(a->sent_at, when, sizeof(when));
	else if (strcmp(a->state, "pending") == 0 && a->next_attempt_at > 0)
		aclm_time_iso(a->next_attempt_at, when, sizeof(when));
	printf("%-5lld %-20s %-7s %-8d %-20s %-20s %-14s %s\n", (long long)a->id, created, a->state,
	       a->attempts, when, a->rule ? a->rule : "-",
	       a->channel ? a->channel : "-", a->subject);
	if (a->last_error != NULL && strcmp(a->state, "sent") != 0)
		printf("      last error: %s\n", a->last_error);
	return ACLM_OK;
}

static int alert_list(struct cli *cli, const struct alert_args *a)
{
	struct aclm_alert_filter f = { .state = a->state, .limit = a->limit };
	json_t *arr = a->json ? json_array() : NULL;

	if (a->state != NULL && strcmp(a->state, "pending") != 0 && strcmp(a->state, "sent") != 0 &&
	    strcmp(a->state, "failed") != 0) {
		json_decref(arr);
		return cli_usage_error("alert", "--state must be pending, sent or failed");
	}
	if (cli_open_store(cli) != EXIT_OK) {
		json_decref(arr);
		return EXIT_FAILED;
	}
	if (!a->json)
		printf("%-5s %-20s %-7s %-8s %-20s %-20s %-14s %s\n", "ID", "RAISED", "STATE",
		       "ATTEMPTS", "SENT/NEXT TRY", "RULE", "CHANNEL", "SUBJECT");
	if (aclm_store_alert_list(cli->store, &f, print_alert, arr) != ACLM_OK) {
		json_decref(arr);
		return cli_fail("%s", aclm_errmsg());
	}
	if (arr != NULL)
		cli_json_print(arr);
	return EXIT_OK;
}

static int alert_run(struct cli *cli, const struct alert_args *a)
{
	struct aclm_notify_opts o;
	struct aclm_notify_stats stats;
	int rc;

	memset(&stats, 0, sizeof(stats));
	if (cli_open_store(cli) != EXIT_OK)
		return EXIT_FAILED;
	aclm_notify_opts_from_config(cli->cfg, &o);
	rc = aclm_notify_run(cli->store, &o, &stats);
	if (a->json) {
		cli_json_print(json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "raised", (json_int_t)stats.raised,
		                         "suppressed", (json_int_t)stats.suppressed, "sent",
		                         (json_int_t)stats.sent, "failed", (json_int_t)stats.failed,
		                         "given_up", (json_int_t)stats.given_up, "deferred",
		                         (json_int_t)stats.deferred));
	} else if (!cli->quiet) {
		printf("alerts: %lld raised (%lld already notified), %lld sent, %lld delivery attempts "
		       "failed (%lld given up)\n", (long long)stats.raised, (long long)stats.suppressed,
		       (long long)stats.sent, (long long)stats.failed, (long long)stats.given_up);
		if (stats.deferred > 0)
			printf("%lld more wait for the next run (their channel failed in this one)\n",
			       (long long)stats.deferred);
		if (stats.failed > 0)
			printf("see 'aclm alert list' for the errors\n");
	}
	if (rc != ACLM_OK)
		return cli_fail("%s", aclm_errmsg());
	return EXIT_OK;
}

static int channel_cmd(struct cli *cli, int n, char **args, const struct alert_args *a)
{
	char actor[80];

	if (n == 0)
		return cli_usage_error("alert", "channel: missing subcommand (add, list, del, test)");
	if (strcmp(args[0], "add") == 0) {
		if (n != 2)
			return cli_usage_error("alert", "usage: aclm alert channel add NAME --kind K "
			                       "--url URL ...");
		return channel_add(cli, args[1], a);
	}
	if (strcmp(args[0], "list") == 0) {
		json_t *arr = a->json ? json_array() : NULL;
		if (n != 1)
			return cli_usage_error("alert", "channel list: unexpected argument '%s'", args[1]);
		if (cli_open_store(cli) != EXIT_OK) {
			json_decref(arr);
			return EXIT_FAILED;
		}
		if (!a->json)
			printf("%-5s %-20s %-9s %s\n", "ID", "NAME", "KIND", "SETTINGS");
		if (aclm_store_alert_channel_list(cli->store, print_channel, arr) != ACLM_OK) {
			json_decref(arr);
			return cli_fail("%s", aclm_errmsg());
		}
		if (arr != NULL)
			cli_json_print(arr);
		return EXIT_OK;
	}
	if (strcmp(args[0], "del") == 0) {
		if (n != 2)
			return cli_usage_error("alert", "usage: aclm alert channel del NAME");
		if (cli_open_store(cli) != EXIT_OK)
			return EXIT_FAILED;
		cli_actor(actor, sizeof(actor));
		if (aclm_store_alert_channel_delete(cli->store, actor, args[1]) != ACLM_OK)
			return cli_fail("%s", aclm_errmsg());
		if (!cli->quiet)
			printf("alert channel '%s' deleted\n", args[1]);
		return EXIT_OK;
	}
	if (strcmp(args[0], "test") == 0) {
		struct aclm_notify_opts o;
		if (n != 2)
			return cli_usage_error("alert", "usage: aclm alert channel test NAME");
		if (cli_open_store(cli) != EXIT_OK)
			return EXIT_FAILED;
		aclm_notify_opts_from_config(cli->cfg, &o);
		if (aclm_notify_test_channel(cli->store, args[1], &o) != ACLM_OK)
			return cli_fail("%s", aclm_errmsg());
		if (!cli->quiet)
			printf("test message sent through channel '%s'\n", args[1]);
		return EXIT_OK;
	}
	return cli_usage_error("alert", "channel: unknown subcommand '%s' (add, list, del, test)",
	                       args[0]);
}

static int rule_cmd(struct cli *cli, int n, char **args, const struct alert_args *a)
{
	char actor[80];

	if (n == 0)
		return cli_usage_error("alert", "rule: missing subcommand (add, list, del)");
	if (strcmp(args[0], "add") == 0) {
		if (n != 2)
			return cli_usage_error("alert", "usage: aclm alert rule add NAME --kind K "
			                       "--channel C ...");
		return rule_add(cli, args[1], a);
	}
	if (strcmp(args[0], "list") == 0) {
		json_t *arr = a->json ? json_array() : NULL;
		if (n != 1)
			return cli_usage_error("alert", "rule list: unexpected argument '%s'", args[1]);
		if (cli_open_store(cli) != EXIT_OK) {
			json_decref(arr);
			return EXIT_FAILED;
		}
		if (!a->json)
			printf("%-5s %-20s %-15s %-16s %-8s %-8s %s\n", "ID", "NAME", "KIND", "CHANNEL",
			       "RENOTIFY", "ENABLED", "PARAMETERS");
		if (aclm_store_alert_rule_list(cli->store, print_rule, arr) != ACLM_OK) {
			json_decref(arr);
			return cli_fail("%s", aclm_errmsg());
		}
		if (arr != NULL)
			cli_json_print(arr);
		return EXIT_OK;
	}
	if (strcmp(args[0], "del") == 0) {
		if (n != 2)
			return cli_usage_error("alert", "usage: aclm alert rule del NAME");
		if (cli_open_store(cli) != EXIT_OK)
			return EXIT_FAILED;
		cli_actor(actor, sizeof(actor));
		if (aclm_store_alert_rule_delete(cli->store, actor, args[1]) != ACLM_OK)
			return cli_fail("%s", aclm_errmsg());
		if (!cli->quiet)
			printf("alert rule '%s' deleted\n", args[1]);
		return EXIT_OK;
	}
	return cli_usage_error("alert", "rule: unknown subcommand '%s' (add, list, del)", args[0]);
}

int cmd_alert(struct cli *cli, int argc, char **argv)
{
	enum {
		O_KIND = 256, O_URL, O_FROM, O_TO, O_USER, O_PASSWORD_FILE, O_SECRET_FILE, O_CA_FILE,
		O_CHANNEL, O_DAYS, O_NAME, O_ISSUER, O_INCLUDE_CA, O_ALL, O_RENOTIFY, O_DISABLED,
		O_STATE, O_LIMIT, O_JSON,
	};
	static const struct option opts[] = {
		{ "kind", required_argument, NULL, O_KIND },
		{ "url", required_argument, NULL, O_URL },
		{ "from", required_argument, NULL, O_FROM },
		{ "to", required_argument, NULL, O_TO },
		{ "user", required_argument, NULL, O_USER },
		{ "password-file", required_argument, NULL, O_PASSWORD_FILE },
		{ "secret-file", required_argument, NULL, O_SECRET_FILE },
		{ "ca-file", required_argument, NULL, O_CA_FILE },
		{ "channel", required_argument, NULL, O_CHANNEL },
		{ "days", required_argument, NULL, O_DAYS },
		{ "name", required_argument, NULL, O_NAME },
		{ "issuer", required_argument, NULL, O_ISSUER },
		{ "include-ca", no_argument, NULL, O_INCLUDE_CA },
		{ "all", no_argument, NULL, O_ALL },
		{ "renotify", required_argument, NULL, O_RENOTIFY },
		{ "disabled", no_argument, NULL, O_DISABLED },
		{ "state", required_argument, NULL, O_STATE },
		{ "limit", required_argument, NULL, O_LIMIT },
		{ "json", no_argument, NULL, O_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cli_command *self = cli_find_command("alert");
	struct alert_args a;
	const char *sub;
	int opt, n_args;

	memset(&a, 0, sizeof(a));
	a.limit = 100;
	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (opt) {
		case O_KIND: a.kind = optarg; break;
		case O_URL: a.url = optarg; break;
		case O_FROM: a.from = optarg; break;
		case O_TO:
			if (a.n_to == MAX_TO)
				return cli_usage_error("alert", "at most %d recipients (--to)", MAX_TO);
			a.to[a.n_to++] = optarg;
			break;
		case O_USER: a.user = optarg; break;
		case O_PASSWORD_FILE: a.password_file = optarg; break;
		case O_SECRET_FILE: a.secret_file = optarg; break;
		case O_CA_FILE: a.ca_file = optarg; break;
		case O_CHANNEL: a.channel = optarg; break;
		case O_DAYS: a.days = optarg; break;
		case O_NAME: a.name = optarg; break;
		case O_ISSUER: a.issuer = optarg; break;
		case O_INCLUDE_CA: a.include_ca = true; break;
		case O_ALL: a.all = true; break;
		case O_RENOTIFY: a.renotify = optarg; break;
		case O_DISABLED: a.disabled = true; break;
		case O_STATE: a.state = optarg; break;
		case O_LIMIT:
			if (aclm_parse_int64(optarg, &a.limit) != ACLM_OK || a.limit < 0)
				return cli_usage_error("alert", "--limit: '%s' is not a count (0: all)", optarg);
			break;
		case O_JSON: a.json = true; break;
		default: return cli_getopt_default(self, opt, argv);
		}
	}
	if (optind >= argc)
		return cli_usage_error("alert", "missing subcommand (channel, rule, list, run)");
	sub = argv[optind];
	n_args = argc - optind - 1;
	if (strcmp(sub, "channel") == 0)
		return channel_cmd(cli, n_args, argv + optind + 1, &a);
	if (strcmp(sub, "rule") == 0)
		return rule_cmd(cli, n_args, argv + optind + 1, &a);
	if (strcmp(sub, "list") == 0) {
		if (n_args != 0)
			return cli_usage_error("alert", "list: unexpected argument '%s'", argv[optind + 1]);
		return alert_list(cli, &a);
	}
	if (strcmp(sub, "run") == 0) {
		if (n_args != 0)
			return cli_usage_error("alert", "run: unexpected argument '%s'", argv[optind + 1]);
		return alert_run(cli, &a);
	}
	return cli_usage_error("alert", "unknown subcommand '%s' (channel, rule, list, run)", sub);
}
