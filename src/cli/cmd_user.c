/* aclm user add|passwd|role|del|list: the people who may log in. */
#include <getopt.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "aclm/auth.h"
#include "aclm/err.h"
#include "aclm/store_auth.h"
#include "aclm/timeutil.h"
#include "cli-int.h"

void cli_actor(char *out, size_t n)
{
	struct passwd *pw = getpwuid(getuid());

	snprintf(out, n, "cli:%s", pw != NULL && pw->pw_name != NULL ? pw->pw_name : "?");
}

/* The password: --password-file, else $ACLM_PASSWORD, else a random one that
 * is printed once.  *generated tells which. */
static int get_password(const char *file, char **out, bool *generated)
{
	const char *env = getenv("ACLM_PASSWORD");
	char buf[33];

	*generated = false;
	if (file != NULL)
		return cli_read_password_file(file, out);
	if (env != NULL && *env != '\0') {
		*out = strdup(env);
		return *out != NULL ? ACLM_OK : aclm_error(ACLM_ERR_NOMEM, "out of memory");
	}
	if (aclm_auth_random_password(buf) != ACLM_OK)
		return ACLM_ERR_CRYPTO;
	*out = strdup(buf);
	OPENSSL_cleanse(buf, sizeof(buf));
	*generated = true;
	return *out != NULL ? ACLM_OK : aclm_error(ACLM_ERR_NOMEM, "out of memory");
}

static void free_secret(char *s)
{
	if (s != NULL) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

static int user_set(struct cli *cli, const char *name, const char *role_name,
                    const char *password_file, bool add)
{
	enum aclm_role role = aclm_role_parse(role_name);
	char actor[80], *password = NULL, *hash = NULL;
	bool generated = false;
	int rc;

	if (add && role == ACLM_ROLE_NONE)
		return cli_usage_error("user", "unknown role '%s' (admin, operator, auditor, viewer)",
		                       role_name);
	if (add && !aclm_user_name_valid(name))
		return cli_usage_error("user", "invalid user name '%s': 1-64 of A-Z a-z 0-9 . _ @ -",
		                       name);
	if (get_password(password_file, &password, &generated) != ACLM_OK)
		return cli_fail("%s%s", password_file ? "--password-file: " : "", aclm_errmsg());
	rc = aclm_auth_hash_password(password, &hash);
	if (rc != ACLM_OK) {
		free_secret(password);
		return cli_fail("%s", aclm_errmsg());
	}
	if (cli_open_store(cli) != EXIT_OK) {
		rc = ACLM_ERR_DB;
		goto out;
	}
	cli_actor(actor, sizeof(actor));
	rc = add ? aclm_store_user_add(cli->store, actor, name, hash, role, NULL)
	         : aclm_store_user_set_password(cli->store, actor, name, hash);
	if (rc != ACLM_OK) {
		cli_fail("%s", aclm_errmsg());
		goto out;
	}
	if (generated)
		printf("password for %s (shown once): %s\n", name, password);
	else if (!cli->quiet)
		printf(add ? "user %s added (%s)\n" : "password of %s changed%s\n", name,
		       add ? aclm_role_name(role) : "");
out:
	free_secret(password);
	free(hash);
	return rc == ACLM_OK ? EXIT_OK : EXIT_FAILED;
}

static int print_user(void *ctx, const struct aclm_user *u)
{
	json_t *arr = ctx;
	int64_t now = aclm_now();
	char created[32];

	if (arr != NULL) {
		json_t *o = json_object();
		json_object_set_new(o, "id", json_integer(u->id));
		json_object_set_new(o, "name", json_string(u->name));
		json_object_set_new(o, "role", json_string(aclm_role_name(u->role)));
		json_object_set_new(o, "locked", json_boolean(u->locked_until > now));
		json_object_set_new(o, "failed_logins", json_integer(u->failed_logins));
		json_object_set_new(o, "created_at", cli_json_time(u->created_at));
		json_array_append_new(arr, o);
		return ACLM_OK;
	}
	aclm_time_iso(u->created_at, created, sizeof(created));
	printf("%-6lld %-24s %-9s %-20s%s\n", (long long)u->id, u->name, aclm_role_name(u->role),
	       created, u->locked_until > now ? " locked" : "");
	return ACLM_OK;
}

static int user_list(struct cli *cli, bool json)
{
	json_t *arr = json ? json_array() : NULL;

	if (cli_open_store(cli) != EXIT_OK)
		return EXIT_FAILED;
	if (!json)
		printf("%-6s %-24s %-9s %-20s\n", "ID", "NAME", "ROLE", "CREATED");
	if (aclm_store_user_list(cli->store, print_user, arr) != ACLM_OK) {
		json_decref(arr);
		return cli_fail("%s", aclm_errmsg());
	}
	if (json)
		cli_json_print(arr);
	return EXIT_OK;
}

int cmd_user(struct cli *cli, int argc, char **argv)
{
	enum { O_ROLE = 256, O_PASSWORD_FILE, O_JSON };
	static const struct option opts[] = {
		{ "role", required_argument, NULL, O_ROLE },
		{ "password-file", required_argument, NULL, O_PASSWORD_FILE },
		{ "json", no_argument, NULL, O_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cli_command *self = cli_find_command("user");
	const char *role = "viewer", *password_file = NULL, *sub, *name;
	char actor[80];
	bool json = false;
	int opt, n_args;

	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (opt) {
		case O_ROLE: role = optarg; break;
		case O_PASSWORD_FILE: password_file = optarg; break;
		case O_JSON: json = true; break;
		default: return cli_getopt_default(self, opt, argv);
		}
	}
	if (optind >= argc)
		return cli_usage_error("user", "missing subcommand (add, passwd, role, del, list)");
	sub = argv[optind];
	n_args = argc - optind - 1;
	name = n_args > 0 ? argv[optind + 1] : NULL;
	if (strcmp(sub, "list") == 0) {
		if (n_args != 0)
			return cli_usage_error("user", "list takes no argument");
		return user_list(cli, json);
	}
	if (strcmp(sub, "add") != 0 && strcmp(sub, "passwd") != 0 && strcmp(sub, "role") != 0 &&
	    strcmp(sub, "del") != 0)
		return cli_usage_error("user", "unknown subcommand '%s' (add, passwd, role, del, list)",
		                       sub);
	if (name == NULL)
		return cli_usage_error("user", "%s: missing user name", sub);
	if (strcmp(sub, "role") == 0) {
		enum aclm_role r;
		if (n_args != 2)
			return cli_usage_error("user", "usage: aclm user role NAME ROLE");
		r = aclm_role_parse(argv[optind + 2]);
		if (r == ACLM_ROLE_NONE)
			return cli_usage_error("user", "unknown role '%s' (admin, operator, auditor, "
			                       "viewer)", argv[optind + 2]);
		if (cli_open_store(cli) != EXIT_OK)
			return EXIT_FAILED;
		cli_actor(actor, sizeof(actor));
		if (aclm_store_user_set_role(cli->store, actor, name, r) != ACLM_OK)
			return cli_fail("%s", aclm_errmsg());
		if (!cli->quiet)
			printf("%s is now %s\n", name, aclm_role_name(r));
		return EXIT_OK;
	}
	if (n_args != 1)
		return cli_usage_error("user", "%s: unexpected argument '%s'", sub, argv[optind + 2]);
	if (strcmp(sub, "del") == 0) {
		if (cli_open_store(cli) != EXIT_OK)
			return EXIT_FAILED;
		cli_actor(actor, sizeof(actor));
		if (aclm_store_user_delete(cli->store, actor, name) != ACLM_OK)
			return cli_fail("%s", aclm_errmsg());
		if (!cli->quiet)
			printf("user %s deleted\n", name);
		return EXIT_OK;
	}
	return user_set(cli, name, role, password_file, strcmp(sub, "add") == 0);
}
