/* Shared state and helpers of the command-line front end. */
#ifndef ACLM_CLI_INT_H
#define ACLM_CLI_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "aclm/config.h"
#include "aclm/store.h"

/* Exit codes (docs/cli.md). */
enum {
	EXIT_OK = 0,
	EXIT_FAILED = 1,
	EXIT_USAGE = 2,
};

struct cli {
	const char *config_path;      /* --config */
	const char *db_url;           /* --db */
	bool quiet;
	bool verbose;
	struct aclm_config *cfg;
	struct aclm_store *store;
};

struct cli_command {
	const char *name;
	int (*run)(struct cli *cli, int argc, char **argv);
	const char *summary;
	const char *usage;            /* full help text */
};

/* Print "aclm: error: CMD: message" and "Try 'aclm help CMD'." and return EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print "aclm: error: message" (the recorded error) and return EXIT_FAILED. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print the help text of a command to stdout. */
void cli_print_help(const struct cli_command *cmd);
/* Open the store named by --db or store.url; prints the error itself. */
int cli_open_store(struct cli *cli);
/* Standard handling of -h/--help and unknown options inside a getopt loop:
 * returns -1 to continue, else the exit code. */
int cli_getopt_default(const struct cli_command *cmd, int opt, char **argv);
const struct cli_command *cli_find_command(const char *name);

/* output.c */
bool cli_color(FILE *f);
void cli_json_print(json_t *j);                  /* to stdout, then decref */
json_t *cli_json_time(int64_t t);                /* ISO 8601 string */
json_t *cli_json_str(const char *s);             /* string or null */
json_t *cli_cert_row_json(const struct aclm_cert_row *row, int64_t now);
/* Split "DNS:a,IP:b" into a JSON array. */
json_t *cli_sans_json(const char *sans);
/* The first line of a file holding a password (at most 64 KiB); the
 * caller wipes and frees *out. */
int cli_read_password_file(const char *path, char **out);
/* Who runs this command, for audit events: "cli:<unix user>". */
void cli_actor(char *out, size_t n);

int cmd_import(struct cli *cli, int argc, char **argv);
int cmd_list(struct cli *cli, int argc, char **argv);
int cmd_show(struct cli *cli, int argc, char **argv);
int cmd_export(struct cli *cli, int argc, char **argv);
int cmd_config(struct cli *cli, int argc, char **argv);
int cmd_db(struct cli *cli, int argc, char **argv);
int cmd_issue(struct cli *cli, int argc, char **argv);
int cmd_renew(struct cli *cli, int argc, char **argv);
int cmd_revoke(struct cli *cli, int argc, char **argv);
int cmd_accounts(struct cli *cli, int argc, char **argv);
/* cmd_issue.c: the KEK, the CAs of acme.cas and the store, for the ACME commands. */
struct aclm_kek;
struct aclm_acme_ca;
int cli_acme_setup(struct cli *cli, struct aclm_kek *kek, struct aclm_acme_ca **cas,
                   size_t *n_cas);
int cmd_server(struct cli *cli, int argc, char **argv);
int cmd_ca(struct cli *cli, int argc, char **argv);
int cmd_user(struct cli *cli, int argc, char **argv);
int cmd_token(struct cli *cli, int argc, char **argv);
int cmd_audit(struct cli *cli, int argc, char **argv);
int cmd_scan(struct cli *cli, int argc, char **argv);
int cmd_findings(struct cli *cli, int argc, char **argv);
int cmd_policy(struct cli *cli, int argc, char **argv);
int cmd_report(struct cli *cli, int argc, char **argv);
int cmd_alert(struct cli *cli, int argc, char **argv);
int cmd_gateway(struct cli *cli, int argc, char **argv);

#endif
