/* aclm findings: what discovery found, most severe first. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "aclm/err.h"
#include "aclm/scan.h"
#include "aclm/store_scan.h"
#include "aclm/str.h"
#include "aclm/timeutil.h"
#include "cli-int.h"

struct findings_ctx {
	bool json;
	int64_t n;
	json_t *rows;
};

static void endpoint_text(const struct aclm_finding_row *r, char *out, size_t n)
{
	if (r->endpoint_id == 0) {
		aclm_strlcpy(out, r->subject, n);
		return;
	}
	if (r->host[0] != '\0')
		snprintf(out, n, "%s:%u", r->host, r->port);
	else
		snprintf(out, n, strchr(r->ip, ':') ? "[%s]:%u" : "%s:%u", r->ip, r->port);
	if (r->sni[0] != '\0' && strcmp(r->sni, r->host) != 0)
		snprintf(out + strlen(out), n - strlen(out), " sni=%s", r->sni);
}

static int print_finding(void *ctx, const struct aclm_finding_row *r)
{
	struct findings_ctx *c = ctx;
	char ep[600], seen[32];

	endpoint_text(r, ep, sizeof(ep));
	if (c->json) {
		json_t *o = json_object();
		json_object_set_new(o, "id", json_integer(r->id));
		json_object_set_new(o, "type", json_string(r->type));
		json_object_set_new(o, "severity", json_string(r->severity));
		json_object_set_new(o, "endpoint", r->endpoint_id ? json_string(ep) : json_null());
		json_object_set_new(o, "host", json_string(r->host));
		json_object_set_new(o, "ip", json_string(r->ip));
		json_object_set_new(o, "port", r->endpoint_id ? json_integer(r->port) : json_null());
		json_object_set_new(o, "sni", json_string(r->sni));
		json_object_set_new(o, "certificate_id", r->cert_id ? json_integer(r->cert_id) : json_null());
		json_object_set_new(o, "fingerprint", cli_json_str(r->fingerprint));
		json_object_set_new(o, "subject", cli_json_str(r->subject));
		json_object_set_new(o, "detail", cli_json_str(r->detail));
		json_object_set_new(o, "first_seen", cli_json_time(r->first_seen));
		json_object_set_new(o, "last_seen", cli_json_time(r->last_seen));
		json_object_set_new(o, "resolved_at", r->resolved_at ? cli_json_time(r->resolved_at)
		                                                     : json_null());
		json_object_set_new(o, "scan_id", r->scan_id ? json_integer(r->scan_id) : json_null());
		json_array_append_new(c->rows, o);
		c->n++;
		return 0;
	}
	if (c->n == 0)
		printf("%-6s %-8s %-19s %-36s %-10s %s\n", "ID", "SEVERITY", "TYPE", "ENDPOINT",
		       "LAST SEEN", "DETAIL");
	aclm_time_date(r->last_seen, seen, sizeof(seen));
	printf("%-6lld %-8s %-19s %-36s %-10s %s%s\n", (long long)r->id, r->severity, r->type, ep,
	       seen, r->detail, r->resolved_at ? " (resolved)" : "");
	c->n++;
	return 0;
}

static bool known_type(const char *t)
{
	for (size_t i = 0; aclm_scan_finding_types[i] != NULL; i++)
		if (strcmp(aclm_scan_finding_types[i], t) == 0)
			return true;
	return false;
}

int cmd_findings(struct cli *cli, int argc, char **argv)
{
	enum { O_TYPE = 256, O_SEVERITY, O_ALL, O_SCAN, O_JSON };
	static const struct option opts[] = {
		{ "type", required_argument, NULL, O_TYPE },
		{ "severity", required_argument, NULL, O_SEVERITY },
		{ "all", no_argument, NULL, O_ALL },
		{ "scan", required_argument, NULL, O_SCAN },
		{ "json", no_argument, NULL, O_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cli_command *self = cli_find_command("findings");
	struct aclm_finding_filter f = { 0 };
	struct findings_ctx ctx = { 0 };
	enum aclm_severity sev;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (opt) {
		case O_TYPE:
			if (!known_type(optarg)) {
				char list[600] = "";
				for (size_t i = 0; aclm_scan_finding_types[i] != NULL; i++)
					snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
					         i ? ", " : "", aclm_scan_finding_types[i]);
				return cli_usage_error("findings", "--type: '%s' is not one of %s", optarg,
				                       list);
			}
			f.type = optarg;
			break;
		case O_SEVERITY:
			if (aclm_severity_parse(optarg, &sev) != ACLM_OK)
				return cli_usage_error("findings", "--severity: '%s' is not one of info, "
				                       "low, medium, high, critical", optarg);
			f.min_severity = (int)sev;
			break;
		case O_ALL: f.include_resolved = true; break;
		case O_SCAN:
			if (aclm_parse_int64(optarg, &f.scan_id) != ACLM_OK || f.scan_id < 1)
				return cli_usage_error("findings", "--scan: '%s' is not a scan number", optarg);
			break;
		case O_JSON: ctx.json = true; break;
		default:
			return cli_getopt_default(self, opt, argv);
		}
	}
	if (optind < argc)
		return cli_usage_error("findings", "unexpected argument '%s'", argv[optind]);
	if (cli_open_store(cli) != ACLM_OK)
		return EXIT_FAILED;
	if (ctx.json)
		ctx.rows = json_array();
	rc = aclm_store_list_findings(cli->store, &f, print_finding, &ctx);
	if (rc != ACLM_OK) {
		json_decref(ctx.rows);
		return cli_fail("%s", aclm_errmsg());
	}
	if (ctx.json)
		cli_json_print(ctx.rows);
	else if (ctx.n == 0 && !cli->quiet)
		fputs("no findings\n", stderr);
	return EXIT_OK;
}
