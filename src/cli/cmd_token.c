/* aclm token create|revoke|list: API tokens for `Authorization: Bearer`. */
#include <getopt.h>
#include <string.h>

#include <openssl/crypto.h>

#include "aclm/auth.h"
#include "aclm/err.h"
#include "aclm/str.h"
#include "aclm/store_auth.h"
#include "aclm/timeutil.h"
#include "cli-int.h"

static int token_create(struct cli *cli, const char *user, const char *name,
                        const char *role_name, const char *expires, bool json)
{
	enum aclm_role role = ACLM_ROLE_NONE;
	struct aclm_user u;
	char token[ACLM_TOKEN_MAX], lookup[ACLM_TOKEN_LOOKUP_LEN + 1], hash[65], actor[80];
	int64_t ttl = 0, expires_at = 0, id = 0;
	int rc;

	if (user == NULL)
		return cli_usage_error("token", "create: --user NAME is required");
	if (name == NULL)
		return cli_usage_error("token", "create: --name TEXT is required");
	if (role_name != NULL && (role = aclm_role_parse(role_name)) == ACLM_ROLE_NONE)
		return cli_usage_error("token", "unknown role '%s' (admin, operator, auditor, viewer)",
		                       role_name);
	if (expires != NULL && strcmp(expires, "never") != 0) {
		if (aclm_parse_duration(expires, &ttl) != ACLM_OK || ttl <= 0)
			return cli_usage_error("token", "--expires: '%s' is not a duration (90d, 12h, "
			                       "never)", expires);
		expires_at = aclm_now() + ttl;
	}
	if (cli_open_store(cli) != EXIT_OK)
		return EXIT_FAILED;
	if (aclm_store_user_get(cli->store, user, &u) != ACLM_OK)
		return cli_fail("%s", aclm_errmsg());
	if (aclm_auth_token_new(token, lookup, hash) != ACLM_OK) {
		aclm_user_clear(&u);
		return cli_fail("%s", aclm_errmsg());
	}
	cli_actor(actor, sizeof(actor));
	rc = aclm_store_token_add(cli->store, actor, u.id, name, lookup, hash, role, expires_at, &id);
	aclm_user_clear(&u);
	if (rc != ACLM_OK) {
		OPENSSL_cleanse(token, sizeof(token));
		return cli_fail("%s", aclm_errmsg());
	}
	if (json) {
		json_t *o = json_object();
		json_object_set_new(o, "id", json_integer(id));
		json_object_set_new(o, "lookup", json_string(lookup));
		json_object_set_new(o, "token", json_string(token));
		json_object_set_new(o, "expires_at", expires_at ? cli_json_time(expires_at) : json_null());
		cli_json_print(o);
	} else {
		printf("token %lld for %s (shown once; store it now):\n%s\n", (long long)id, user, token);
	}
	OPENSSL_cleanse(token, sizeof(token));
	return EXIT_OK;
}

static int print_token(void *ctx, const struct aclm_token *t)
{
	json_t *arr = ctx;
	int64_t now = aclm_now();
	const char *state = t->revoked_at ? "revoked"
	                    : (t->expires_at && t->expires_at <= now) ? "expired" : "valid";
	char exp[32] = "never", used[32] = "-";

	if (arr != NULL) {
		json_t *o = json_object();
		json_object_set_new(o, "id", json_integer(t->id));
		json_object_set_new(o, "user", json_string(t->user));
		json_object_set_new(o, "name", json_string(t->name));
		json_object_set_new(o, "lookup", json_string(t->lookup));
		json_object_set_new(o, "role", json_string(aclm_role_name(t->role)));
		json_object_set_new(o, "state", json_string(state));
		json_object_set_new(o, "expires_at", t->expires_at ? cli_json_time(t->expires_at)
		                                                   : json_null());
		json_object_set_new(o, "last_used_at", t->last_used_at ? cli_json_time(t->last_used_at)
		                                                       : json_null());
		json_array_append_new(arr, o);
		return ACLM_OK;
	}
	if (t->expires_at)
		aclm_time_iso(t->expires_at, exp, sizeof(exp));
	if (t->last_used_at)
		aclm_time_iso(t->last_used_at, used, sizeof(used));
	printf("%-5lld %-16s %-14s %-20s %-9s %-8s %-20s %s\n", (long long)t->id, t->user,
	       t->lookup, t->name, aclm_role_name(t->role), state, exp, used);
	return ACLM_OK;
}

static int token_list(struct cli *cli, const char *user, bool json)
{
	json_t *arr = json ? json_array() : NULL;
	int64_t user_id = 0;

	if (cli_open_store(cli) != EXIT_OK)
		return EXIT_FAILED;
	if (user != NULL) {
		struct aclm_user u;
		if (aclm_store_user_get(cli->store, user, &u) != ACLM_OK) {
			json_decref(arr);
			return cli_fail("%s", aclm_errmsg());
		}
		user_id = u.id;
		aclm_user_clear(&u);
	}
	if (!json)
		printf("%-5s %-16s %-14s %-20s %-9s %-8s %-20s %s\n", "ID", "USER", "LOOKUP", "NAME",
		       "ROLE", "STATE", "EXPIRES", "LAST USED");
	if (aclm_store_token_list(cli->store, user_id, print_token, arr) != ACLM_OK) {
		json_decref(arr);
		return cli_fail("%s", aclm_errmsg());
	}
	if (json)
		cli_json_print(arr);
	return EXIT_OK;
}

int cmd_token(struct cli *cli, int argc, char **argv)
{
	enum { O_USER = 256, O_NAME, O_ROLE, O_EXPIRES, O_JSON };
	static const struct option opts[] = {
		{ "user", required_argument, NULL, O_USER },
		{ "name", required_argument, NULL, O_NAME },
		{ "role", required_argument, NULL, O_ROLE },
		{ "expires", required_argument, NULL, O_EXPIRES },
		{ "json", no_argument, NULL, O_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cli_command *self = cli_find_command("token");
	const char *user = NULL, *name = NULL, *role = NULL, *expires = "90d", *sub;
	char actor[80];
	bool json = false;
	int opt, n_args;

	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (opt) {
		case O_USER: user = optarg; break;
		case O_NAME: name = optarg; break;
		case O_ROLE: role = optarg; break;
		case O_EXPIRES: expires = optarg; break;
		case O_JSON: json = true; break;
		default: return cli_getopt_default(self, opt, argv);
		}
	}
	if (optind >= argc)
		return cli_usage_error("token", "missing subcommand (create, revoke, list)");
	sub = argv[optind];
	n_args = argc - optind - 1;
	if (strcmp(sub, "create") == 0) {
		if (n_args != 0)
			return cli_usage_error("token", "create: unexpected argument '%s'",
			                       argv[optind + 1]);
		return token_create(cli, user, name, role, expires, json);
	}
	if (strcmp(sub, "list") == 0) {
		if (n_args != 0)
			return cli_usage_error("token", "list: unexpected argument '%s'", argv[optind + 1]);
		return token_list(cli, user, json);
	}
	if (strcmp(sub, "revoke") == 0) {
		if (n_args != 1)
			return cli_usage_error("token", "usage: aclm token revoke ID|LOOKUP");
		if (cli_open_store(cli) != EXIT_OK)
			return EXIT_FAILED;
		cli_actor(actor, sizeof(actor));
		if (aclm_store_token_revoke(cli->store, actor, argv[optind + 1]) != ACLM_OK)
			return cli_fail("%s", aclm_errmsg());
		if (!cli->quiet)
			printf("token %s revoked\n", argv[optind + 1]);
		return EXIT_OK;
	}
	return cli_usage_error("token", "unknown subcommand '%s' (create, revoke, list)", sub);
}
