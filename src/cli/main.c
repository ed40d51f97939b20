/* aclm: one executable, git-style subcommands. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "aclm/err.h"
#include "aclm/log.h"
#include "aclm/pqprov.h"
#include "aclm/str.h"
#include "cli-int.h"

static int cmd_help(struct cli *cli, int argc, char **argv);
static int cmd_version(struct cli *cli, int argc, char **argv);

static const struct cli_command commands[] = {
	{ "import", cmd_import, "import certificates and keys from files and directories",
	  "usage: aclm import [OPTIONS] PATH...\n"
	  "\n"
	  "Import certificates from files and directories (recursively): PEM, DER,\n"
	  "PKCS#7 (.p7b) and PKCS#12 (.p12/.pfx). Importing the same certificate again\n"
	  "adds an observation, never a second record. Private keys found in the run\n"
	  "are matched to their certificate by public key and stored encrypted.\n"
	  "\n"
	  "Options:\n"
	  "  --password-file FILE  password for PKCS#12 files and encrypted keys (first line)\n"
	  "  --exclude GLOB        skip paths matching GLOB (full path or base name); repeatable\n"
	  "  --no-keys             do not store private keys\n"
	  "  --json                print the summary as JSON\n"
	  "\n"
	  "Each file that cannot be used is reported on one line (path: reason); the\n"
	  "rest is still imported and the exit code is 1.\n" },
	{ "list", cmd_list, "list certificates, soonest expiry first",
	  "usage: aclm list [OPTIONS]\n"
	  "\n"
	  "Options:\n"
	  "  --expiring DUR     expiring within DUR (30d, 12h, 2w) and not yet expired\n"
	  "  --expired          already expired\n"
	  "  --valid            currently valid\n"
	  "  --key-type T       rsa, ec, ed25519, ed448, sm2, dsa, or rsa2048, ec256/p256, p384, p521\n"
	  "  --issuer TEXT      issuer contains TEXT (case-insensitive)\n"
	  "  --name NAME        a SAN or CN matches NAME (wildcards honoured both ways)\n"
	  "  --level L          dv, ov, iv or ev\n"
	  "  --ca, --leaf       only CA / only end-entity certificates\n"
	  "  --sort FIELD       expiry (default), not-before, subject, issuer, key, id;\n"
	  "                     prefix '-' for descending\n"
	  "  --reverse          descending order\n"
	  "  --limit N          at most N rows\n"
	  "  --offset N         skip the first N rows\n"
	  "  --json             JSON array\n" },
	{ "show", cmd_show, "show everything known about one certificate",
	  "usage: aclm show [--json] ID|FINGERPRINT\n"
	  "\n"
	  "ID is the row id from `aclm list`; FINGERPRINT the SHA-256 fingerprint or a\n"
	  "unique prefix of at least 8 hex digits (':' separators allowed).\n" },
	{ "export", cmd_export, "write a certificate (and chain, key) as PEM, DER or PKCS#12",
	  "usage: aclm export [OPTIONS] ID|FINGERPRINT\n"
	  "\n"
	  "Options:\n"
	  "  --format pem|der|p12   output format (default pem)\n"
	  "  --chain                include the issuer chain known to the inventory\n"
	  "  --key                  include the private key (needs --out)\n"
	  "  --out FILE             write to FILE (0600 when it holds a key); default stdout\n"
	  "  --password-file FILE   PKCS#12 password (required when a key is included)\n" },
	{ "config", cmd_config, "check or show the configuration",
	  "usage: aclm config check\n"
	  "       aclm config show [--json]\n"
	  "\n"
	  "check  report unknown keys and bad values as FILE:LINE:COL: message (exit 1 if any)\n"
	  "show   every known key, its effective value and where it comes from\n"
	  "\n"
	  "The file is --config PATH, else $ACLM_CONFIG, ./aclm.yaml, /etc/aclm/aclm.yaml.\n"
	  "Every key a.b can be overridden by the environment variable ACLM_A_B.\n" },
	{ "db", cmd_db, "database schema and integrity",
	  "usage: aclm db migrate\n"
	  "       aclm db status [--json]\n"
	  "       aclm db verify\n"
	  "\n"
	  "migrate  apply pending schema migrations (also done on every start)\n"
	  "status   backend, schema version and row counts\n"
	  "verify   recompute the hash chain of the event log (exit 1 if altered)\n" },
	{ "server", cmd_server, "run the management daemon (REST API, scheduler, metrics)",
	  "usage: aclm server [--listen ADDR:PORT]\n"
	  "\n"
	  "Serves the REST API (/api/v1, described at /api/v1/openapi.json) and /metrics\n"
	  "over HTTPS on server.listen (default 127.0.0.1:8443). On first start it\n"
	  "creates the user 'admin' with $ACLM_ADMIN_PASSWORD or a random password it\n"
	  "prints once. Without server.tls_cert/tls_key it uses a self-signed\n"
	  "certificate of its own in server.tls_dir.\n"
	  "\n"
	  "Signals: SIGTERM/SIGINT finish requests in flight and exit; SIGHUP reloads\n"
	  "the configuration. Under systemd (Type=notify) it reports readiness.\n" },
	{ "user", cmd_user, "manage the people who log in to aclm server",
	  "usage: aclm user add NAME [--role R] [--password-file FILE]\n"
	  "       aclm user passwd NAME [--password-file FILE]\n"
	  "       aclm user role NAME ROLE\n"
	  "       aclm user del NAME\n"
	  "       aclm user list [--json]\n"
	  "\n"
	  "Roles: admin (everything), operator (everything but users and settings),\n"
	  "auditor (reads everything, including the audit log), viewer (reads\n"
	  "certificates and endpoints). The password comes from --password-file (first\n"
	  "line), else $ACLM_PASSWORD, else a random one is printed once. At least 12\n"
	  "characters; stored as an argon2id hash. passwd also ends the user's sessions\n"
	  "and lifts a lockout. The last admin cannot be deleted or demoted.\n" },
	{ "token", cmd_token, "manage API tokens (Authorization: Bearer)",
	  "usage: aclm token create --user NAME --name TEXT [--role R] [--expires 90d|never] [--json]\n"
	  "       aclm token revoke ID|LOOKUP\n"
	  "       aclm token list [--user NAME] [--json]\n"
	  "\n"
	  "A token is printed once (aclm_<lookup>_<secret>); only a SHA-256 of its\n"
	  "secret is stored. Its role defaults to, and never exceeds, its user's role.\n"
	  "Default expiry: 90 days.\n" },
	{ "audit", cmd_audit, "verify or export the tamper-evident audit log",
	  "usage: aclm audit verify [--json] [--expect-head ID:HASH]\n"
	  "       aclm audit export [--since TIME|DURATION]\n"
	  "\n"
	  "verify  recompute the hash chain; name every edited, deleted or reordered\n"
	  "        event (exit 1 if any) and print the head (ID:HASH). Keep the head\n"
	  "        somewhere else: --expect-head then also detects events cut from the end.\n"
	  "export  the events as JSON lines, oldest first; --since 2026-11-01T00:00:00Z or 7d\n" },
	{ "scan", cmd_scan, "discover TLS endpoints and their certificates",
	  "usage: aclm scan [OPTIONS] TARGET...\n"
	  "       aclm scan --known [OPTIONS]\n"
	  "\n"
	  "TARGET: host name (all A/AAAA records, probed with SNI), IPv4 or IPv6 address,\n"
	  "CIDR range (10.0.0.0/24, 2001:db8::/120), a.b.c.d-e range, any of them with\n"
	  ":PORT ([v6]:PORT), or @FILE (one target per line, '#' comments). A bad token is\n"
	  "named with its position and nothing is scanned. Each endpoint is probed for\n"
	  "its chain, TLS 1.0-1.3, the classic groups and each post-quantum group; results,\n"
	  "certificates and findings go into the inventory (see aclm findings).\n"
	  "\n"
	  "Options:\n"
	  "  --ports LIST            ports for targets without :PORT (default 443; 25/587 SMTP,\n"
	  "                          143 IMAP, 110 POP3 use STARTTLS)\n"
	  "  --starttls PORT:PROTO   STARTTLS (smtp, imap, pop3) or tls on PORT; repeatable\n"
	  "  --known                 rescan every endpoint already in the inventory\n"
	  "  --exclude TARGET        never scan TARGET; repeatable; adds to scan.exclude\n"
	  "  --yes                   allow more than 65,536 addresses\n"
	  "  --concurrency N         connections in flight (default 256)\n"
	  "  --rate N                new connections per second (default unlimited)\n"
	  "  --per-host N            connections in flight per address (default 32)\n"
	  "  --connect-timeout T     seconds (default 3; 500ms allowed)\n"
	  "  --handshake-timeout T   seconds, STARTTLS included (default 5)\n"
	  "  --no-versions           skip the per-version probes\n"
	  "  --no-groups             skip the per-group probes (classic and post-quantum)\n"
	  "  --wildcard-max N        flag a wildcard certificate on more than N endpoints (10)\n"
	  "  --json | --ndjson       one JSON document | one JSON object per line as found\n"
	  "  --no-progress           no progress line on a terminal\n" },
	{ "findings", cmd_findings, "list what discovery found, most severe first",
	  "usage: aclm findings [--type T] [--severity S] [--all] [--scan ID] [--json]\n"
	  "\n"
	  "Options:\n"
	  "  --type T       only findings of type T (e.g. expired, untrusted, no-pq-group)\n"
	  "  --severity S   at least S: info, low, medium, high, critical\n"
	  "  --all          resolved findings too\n"
	  "  --scan ID      only findings raised or seen again by scan ID\n"
	  "  --json         JSON array\n" },
	{ "alert", cmd_alert, "alerting: channels, rules, raised alerts and their delivery",
	  "usage: aclm alert channel add NAME --kind K --url URL [OPTIONS]\n"
	  "       aclm alert channel list [--json] | del NAME | test NAME\n"
	  "       aclm alert rule add NAME --kind K --channel C [OPTIONS]\n"
	  "       aclm alert rule list [--json] | del NAME\n"
	  "       aclm alert list [--state pending|sent|failed] [--limit N] [--json]\n"
	  "       aclm alert run [--json]\n"
	  "\n"
	  "Channel kinds: email (smtp://host:port with STARTTLS required, or smtps://),\n"
	  "webhook (JSON POST; X-Aclm-Signature: sha256=HMAC of the body with --secret-file,\n"
	  "X-Aclm-Timestamp), slack, dingtalk, wecom, feishu (robot webhooks; dingtalk and\n"
	  "feishu sign with --secret-file).\n"
	  "  --from ADDR --to ADDR...  e-mail sender and recipients\n"
	  "  --user U --password-file F  SMTP AUTH (password: first line of F)\n"
	  "  --secret-file F           HMAC secret (first line of F)\n"
	  "  --ca-file F               PEM CA certificates to trust for this channel\n"
	  "Secrets are sealed with the key-encryption key (security.kek_file, $ACLM_KEK).\n"
	  "\n"
	  "Rule kinds: expiry (--days 30,14,7,1: one alert per certificate per threshold\n"
	  "crossed; --include-ca), renewal-failed, cert-changed (to a certificate aclm did\n"
	  "not issue or import; --all for every change), ghost (unmanaged certificate\n"
	  "served), unreachable (scan target unreachable or not resolving).\n"
	  "  --name GLOB     only certificates / endpoints / managed names matching GLOB\n"
	  "  --issuer TEXT   only certificates whose issuer contains TEXT\n"
	  "  --renotify D    alert again for the same thing after D (1d; never)\n"
	  "  --disabled      add the rule switched off\n"
	  "\n"
	  "run  evaluates every rule and delivers due alerts once (aclm server does it\n"
	  "     every alerts.interval). A failed delivery is retried with exponential\n"
	  "     backoff (alerts.retry_base, alerts.max_attempts); list shows the errors.\n" },
	{ "ca", cmd_ca, "the built-in CA: hierarchies, issuance, revocation, ACME server",
	  "usage: aclm ca init [--name N] [--json]\n"
	  "       aclm ca issue --csr FILE [--profile P] [--out FILE] [--name N]\n"
	  "       aclm ca revoke SERIAL [--reason R] [--name N]\n"
	  "       aclm ca list [--revoked] [--algo A] [--json] [--name N]\n"
	  "       aclm ca export-roots [--out FILE] [--name N]\n"
	  "       aclm ca crl [--algo ecdsa|rsa|sm2] [--out FILE] [--name N]\n"
	  "       aclm ca renew-early SERIAL | --issued-before TIME [--at TIME] [--name N]\n"
	  "       aclm ca serve [--listen ADDR]\n"
	  "\n"
	  "init creates the CA's three hierarchies: ECDSA (P-384 root, P-256 issuing),\n"
	  "RSA (4096 / 2048) and SM2 (SM2-with-SM3, distinguishing ID 1234567812345678);\n"
	  "keys are sealed in the database under the KEK. N defaults to ca.name (main).\n"
	  "issue signs a CSR (PEM or DER) with the hierarchy of its key type and prints\n"
	  "the chain; a bad signature or weak key is refused (badCSR), names outside\n"
	  "ca.dns_suffixes / ca.ip_ranges too (rejectedIdentifier).\n"
	  "Profiles: default (90 days), shortlived (7 days), intranet (47 days, clientAuth).\n"
	  "R: unspecified, keyCompromise, cACompromise, affiliationChanged, superseded,\n"
	  "cessationOfOperation, certificateHold, privilegeWithdrawn, aACompromise.\n"
	  "renew-early moves the ARI window of certificates to a one-hour window from\n"
	  "now, or from --at (an incident time an hour or more ago: renew at once).\n"
	  "serve runs aclm server (the ACME server is at /acme/N/directory).\n" },
	{ "issue", cmd_issue, "obtain certificates from an ACME CA and keep them renewed",
	  "usage: aclm issue [OPTIONS] NAME...\n"
	  "\n"
	  "Order a certificate for NAME... (DNS names, *.wildcards with dns-01, IP\n"
	  "addresses) from the ACME CAs of acme.cas in aclm.yaml, in order (failover),\n"
	  "store it with its encrypted key, and create a managed certificate that\n"
	  "'aclm renew --all' keeps alive. An interrupted run resumes the same order.\n"
	  "\n"
	  "Options:\n"
	  "  --key TYPE            ec256 (default), ec384, rsa2048, rsa3072, rsa4096, sm2\n"
	  "  --dual K1,K2          two certificates (e.g. ec256,rsa2048), renewed as a pair\n"
	  "  --ca NAME             use this CA (repeatable, in priority order); default: all\n"
	  "  --challenge TYPE      http-01 (default), tls-alpn-01 or dns-01\n"
	  "  --standalone ADDR     answer http-01 / tls-alpn-01 with aclm's own responder\n"
	  "                        listening on ADDR:PORT\n"
	  "  --webroot DIR         answer http-01 by writing DIR/.well-known/acme-challenge/\n"
	  "  --dns-hook SCRIPT     answer dns-01 with 'SCRIPT add|remove FQDN VALUE'\n"
	  "  --dns-wait DUR        wait DUR after adding TXT records (propagation)\n"
	  "  --dns-server ADDR     answer dns-01 by RFC 2136 update to the zone's primary,\n"
	  "                        with --dns-zone ZONE and --tsig-key FILE (hmac-sha256);\n"
	  "                        waits until every NS answers (--dns-timeout DUR)\n"
	  "  --profile NAME        a certificate profile the CA advertises\n"
	  "  --out DIR             also write DIR/NAME.crt (chain) and DIR/NAME.key (0600)\n"
	  "  --reuse-key           keep the key of the current certificate on renewal\n"
	  "  --each                one certificate per NAME instead of one for all\n"
	  "  --concurrency N       with --each: N orders at once (default 1, at most 64)\n"
	  "  --json                print the result as JSON\n" },
	{ "renew", cmd_renew, "renew managed certificates that are due",
	  "usage: aclm renew [--force] [--dry-run] [--json] (--all | ID...)\n"
	  "\n"
	  "Renew the managed certificates that are due: when the CA suggests it (ARI,\n"
	  "RFC 9773), else at 2/3 of the lifetime (1/2 for lifetimes up to 10 days),\n"
	  "with jitter. A --dual pair renews together. Failed attempts back off.\n"
	  "\n"
	  "  --all       every managed certificate\n"
	  "  --force     renew even when not due\n"
	  "  --dry-run   only say which are due\n" },
	{ "revoke", cmd_revoke, "revoke a certificate at its ACME CA",
	  "usage: aclm revoke [--reason R] ID|FINGERPRINT\n"
	  "\n"
	  "R: unspecified (default), keyCompromise, affiliationChanged, superseded,\n"
	  "cessationOfOperation, certificateHold, privilegeWithdrawn, or the code.\n"
	  "Signed by the account that ordered it, else by the certificate's own key.\n" },
	{ "accounts", cmd_accounts, "ACME accounts: list, show, deactivate, key rollover",
	  "usage: aclm accounts [list] [--json]\n"
	  "       aclm accounts show CA [--json]\n"
	  "       aclm accounts orders [CA]   (ours; with CA: as the CA lists them)\n"
	  "       aclm accounts deactivate CA\n"
	  "       aclm accounts rollover CA\n" },
	{ "policy", cmd_policy, "policies and the compliance check of the inventory",
	  "usage: aclm policy check [--policy NAME] [--all] [--rule R] [--json] [--alert CHANNEL [--every D]]\n"
	  "       aclm policy list [--json]\n"
	  "       aclm policy show NAME\n"
	  "       aclm policy add FILE [--replace] [--default]\n"
	  "       aclm policy del NAME\n"
	  "       aclm policy default NAME\n"
	  "\n"
	  "check    evaluate every certificate, endpoint and named site against the policy\n"
	  "         (default: the one set with 'default', else the built-in cabf-baseline);\n"
	  "         print the violations (--all: the compliant too); exit 1 if there are any\n"
	  "         --alert: one alert through an alert channel when the set of violations\n"
	  "         changed (or once per --every D while it stays)\n"
	  "add      store a policy from a YAML or JSON file (docs/internals/policy.md)\n"
	  "default  the policy of check, reports and the API (cabf-baseline: the built-in)\n" },
	{ "report", cmd_report, "inventory, expiry, compliance, algorithm and PQ reports",
	  "usage: aclm report KIND [--format csv|json|html] [--out FILE] [--policy NAME]\n"
	  "\n"
	  "KIND: inventory, expiry (expired, within 7/30/90 days, later), compliance,\n"
	  "algorithms (RSA by size, ECDSA by curve, Ed25519, SM2), pq-readiness (endpoints\n"
	  "accepting X25519MLKEM768 / curveSM2MLKEM768 / none).\n"
	  "  --format F    csv (RFC 4180, default), json, or html (self-contained, prints)\n"
	  "  --out FILE    write there instead of standard output\n"
	  "  --policy NAME the policy of the compliance report\n"
	  "  --send CHANNEL send it as text through an alert channel (aclm alert) now\n"
	  "  --every DUR   with --send: at most once per DUR (daily cron + --every 7d: weekly)\n"
	  "  --lang L      en (default) or zh: headings and labels of the HTML report\n" },
	{ "gateway", cmd_gateway, "TLS-terminating reverse proxy in front of existing servers",
	  "usage: aclm gateway [run|check|reload] [--config gw.yaml]\n"
	  "\n"
	  "  run     serve (default); SIGHUP reloads, SIGTERM stops\n"
	  "  check   read and check the configuration, certificates and keys\n"
	  "  reload  send SIGHUP to the running gateway (its pid_file)\n"
	  "  -c, --config FILE  the gateway's configuration (default gw.yaml);\n"
	  "                     format: docs/gateway.md\n" },
	{ "help", cmd_help, "show help for a command",
	  "usage: aclm help [COMMAND]\n" },
	{ "version", cmd_version, "print the version (and --features)",
	  "usage: aclm version [--features]\n"
	  "\n"
	  "--features  also load the post-quantum provider (running its self-test) and\n"
	  "            list the TLS groups, key types and stores this build supports\n" },
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const char main_usage[] =
	"usage: aclm [--config PATH] [--db URL] [-q|-v] COMMAND [ARGS]\n"
	"\n"
	"Automatic certificate lifecycle management.\n"
	"\n"
	"Global options:\n"
	"  --config PATH   configuration file (default: $ACLM_CONFIG, ./aclm.yaml, /etc/aclm/aclm.yaml)\n"
	"  --db URL        inventory: sqlite:PATH (default sqlite:aclm.db) or postgres://...\n"
	"  -q, --quiet     only errors\n"
	"  -v, --verbose   debug output\n"
	"  -h, --help      this help;  --version  the version\n"
	"\n"
	"Exit codes: 0 ok, 1 some operation failed, 2 usage error.\n"
	"\n"
	"Commands:\n";

const struct cli_command *cli_find_command(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static void print_main_help(FILE *f)
{
	fputs(main_usage, f);
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
	fputs("\nRun 'aclm help COMMAND' for the options of a command.\n", f);
}

void cli_print_help(const struct cli_command *cmd)
{
	fputs(cmd->usage, stdout);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "aclm: error: %s%s", cmd ? cmd : "", cmd ? ": " : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'aclm help%s%s'.\n", cmd ? " " : "", cmd ? cmd : "");
	return EXIT_USAGE;
}

int cli_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("aclm: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_FAILED;
}

int cli_getopt_default(const struct cli_command *cmd, int opt, char **argv)
{
	if (opt == 'h') {
		cli_print_help(cmd);
		return EXIT_OK;
	}
	if (opt == '?') {
		/* The optstrings start with ':' so getopt stays silent: say it here. */
		if (optopt != 0)
			return cli_usage_error(cmd->name, "unknown option '-%c'", optopt);
		return cli_usage_error(cmd->name, "unknown option '%s'", argv[optind - 1]);
	}
	if (opt == ':')
		return cli_usage_error(cmd->name, "%s needs a value", argv[optind - 1]);
	return -1;
}

int cli_open_store(struct cli *cli)
{
	struct aclm_store_opts opts = { 0 };
	const char *url = cli->db_url;
	int rc;

	if (cli->store != NULL)
		return ACLM_OK;
	if (url == NULL || *url == '\0')
		url = aclm_config_str(cli->cfg, "store.url");
	opts.busy_timeout_ms = (int)(aclm_config_duration(cli->cfg, "store.busy_timeout") * 1000);
	rc = aclm_store_open(url, &opts, &cli->store);
	if (rc != ACLM_OK)
		cli_fail("%s", aclm_errmsg());
	return rc;
}

static int cmd_help(struct cli *cli, int argc, char **argv)
{
	const struct cli_command *c;

	if (argc < 2) {
		print_main_help(stdout);
		return EXIT_OK;
	}
	c = cli_find_command(argv[1]);
	if (c == NULL)
		return cli_usage_error("help", "unknown command '%s'", argv[1]);
	cli_print_help(c);
	return EXIT_OK;
}

static int cmd_version(struct cli *cli, int argc, char **argv)
{
	const char *const *groups;
	const char *result;
	size_t n;
	int status = 0;

	printf("aclm %s (%s, schema %d)\n", ACLM_VERSION, OpenSSL_version(OPENSSL_VERSION),
	       aclm_store_code_version());
	if (argc < 2)
		return EXIT_OK;
	if (strcmp(argv[1], "--features") != 0 || argc > 2)
		return cli_usage_error("version", "unknown argument '%s' (only --features)", argv[1]);
	/* Loading the provider runs its known-answer self-test. */
	if (aclm_pqprov_load(NULL) != 0)
		ERR_print_errors_fp(stderr);
	result = aclm_pqprov_selftest(&status);
	printf("post-quantum provider: %s, self-test %s\n", ACLM_PQ_PROVIDER_NAME,
	       status == 1 ? "passed" : result);
	n = aclm_pqprov_groups(&groups);
	printf("TLS 1.3 groups:");
	for (size_t i = 0; i < n; i++)
		printf(" %s", groups[i]);
	printf("\nkey types: rsa ec(P-256,P-384,P-521) ed25519 ed448 sm2\n");
	printf("stores: sqlite postgres\n");
	return status == 1 ? EXIT_OK : EXIT_FAILED;
}

int main(int argc, char **argv)
{
	static const struct option global_opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "db", required_argument, NULL, 'd' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli cli = { 0 };
	const struct cli_command *cmd;
	enum aclm_log_level level;
	int opt, rc, idx;

	/* '+': stop at the first non-option, the command name. */
	while ((opt = getopt_long(argc, argv, "+qvh", global_opts, NULL)) != -1) {
		switch (opt) {
		case 'c': cli.config_path = optarg; break;
		case 'd': cli.db_url = optarg; break;
		case 'q': cli.quiet = true; break;
		case 'v': cli.verbose = true; break;
		case 'h': print_main_help(stdout); return EXIT_OK;
		case 'V': return cmd_version(&cli, 0, NULL);
		default:
			fputs("Try 'aclm help'.\n", stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		print_main_help(stderr);
		return EXIT_USAGE;
	}
	cmd = cli_find_command(argv[optind]);
	if (cmd == NULL)
		return cli_usage_error(NULL, "unknown command '%s'", argv[optind]);
	if (cmd->run == cmd_help || cmd->run == cmd_version)
		return cmd->run(&cli, argc - optind, argv + optind);

	if (aclm_config_load(cli.config_path, &cli.cfg) != ACLM_OK)
		return cli_fail("%s", aclm_errmsg());
	if (aclm_log_parse_level(aclm_config_str(cli.cfg, "log.level"), &level) == ACLM_OK)
		aclm_log_set_level(level);
	aclm_log_set_json(strcmp(aclm_config_str(cli.cfg, "log.format"), "json") == 0);
	if (cli.quiet)
		aclm_log_set_level(ACLM_LOG_ERROR);
	if (cli.verbose)
		aclm_log_set_level(ACLM_LOG_DEBUG);

	/* Subcommands parse their own options with argv[0] = the command name;
	 * optind = 0 makes glibc's getopt start over. */
	idx = optind;
	optind = 0;
	rc = cmd->run(&cli, argc - idx, argv + idx);
	aclm_store_close(cli.store);
	aclm_config_free(cli.cfg);
	return rc;
}
