/* aclm report: inventory, expiry, compliance, algorithms, pq-readiness as
 * CSV, JSON or HTML. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "aclm/buf.h"
#include "aclm/err.h"
#include "aclm/notify.h"
#include "aclm/policy.h"
#include "aclm/str.h"
#include "aclm/timeutil.h"
#include "cli-int.h"

/* Reports are whole documents in memory; 100,000 certificates as HTML are
 * about 100 MB. */
#define REPORT_MAX ((size_t)1 << 30)

static int write_all(int fd, const unsigned char *p, size_t n, const char *what)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return aclm_error(ACLM_ERR_IO, "%s: %s", what, strerror(errno));
		p += w;
		n -= (size_t)w;
	}
	return ACLM_OK;
}

/* Queue the report on an alert channel and deliver it now (aclm_report_send;
 * a daily cron line with --every 7d makes it weekly). */
static int send_report(struct cli *cli, enum aclm_report_kind kind,
                       const struct aclm_policy *pol, const char *channel, int64_t every)
{
	struct aclm_notify_opts o;
	struct aclm_notify_stats stats = { 0 };
	int64_t now = aclm_now(), id = 0;

	if (aclm_report_send(cli->store, kind, pol, channel, every, now, &id) != ACLM_OK)
		return cli_fail("%s", aclm_errmsg());
	if (id == 0) {
		if (!cli->quiet)
			fprintf(stderr, "the %s report went to '%s' already in this period\n",
			        aclm_report_kind_name(kind), channel);
		return EXIT_OK;
	}
	aclm_notify_opts_from_config(cli->cfg, &o);
	if (aclm_notify_deliver_due(cli->store, &o, now, &stats) != ACLM_OK)
		return cli_fail("%s", aclm_errmsg());
	if (stats.sent == 0)
		return cli_fail("the %s report (alert %lld) was not delivered yet: see aclm alert list",
		                aclm_report_kind_name(kind), (long long)id);
	if (!cli->quiet)
		fprintf(stderr, "the %s report was sent (alert %lld)\n", aclm_report_kind_name(kind),
		        (long long)id);
	return EXIT_OK;
}

int cmd_report(struct cli *cli, int argc, char **argv)
{
	enum { O_FORMAT = 256, O_OUT, O_POLICY, O_SEND, O_EVERY, O_LANG };
	static const struct option opts[] = {
		{ "format", required_argument, NULL, O_FORMAT },
		{ "out", required_argument, NULL, O_OUT },
		{ "policy", required_argument, NULL, O_POLICY },
		{ "send", required_argument, NULL, O_SEND },
		{ "every", required_argument, NULL, O_EVERY },
		{ "lang", required_argument, NULL, O_LANG },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cli_command *self = cli_find_command("report");
	enum aclm_report_format fmt = ACLM_REPORT_CSV;
	enum aclm_report_kind kind;
	enum aclm_report_lang lang = ACLM_REPORT_EN;
	struct aclm_policy *pol = NULL;
	const char *out_path = NULL, *policy = NULL, *channel = NULL;
	int64_t every = 0;
	struct aclm_buf b;
	int opt, rc, fd = -1;

	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (opt) {
		case O_FORMAT:
			if (aclm_report_format_parse(optarg, &fmt) != ACLM_OK)
				return cli_usage_error("report", "--format: '%s' is not csv, json or html",
				                       optarg);
			break;
		case O_OUT: out_path = optarg; break;
		case O_POLICY: policy = optarg; break;
		case O_SEND: channel = optarg; break;
		case O_LANG:
			if (aclm_report_lang_parse(optarg, &lang) != ACLM_OK)
				return cli_usage_error("report", "--lang: '%s' is not en or zh", optarg);
			break;
		case O_EVERY:
			if (aclm_parse_duration(optarg, &every) != ACLM_OK || every < 3600)
				return cli_usage_error("report", "--every: '%s' is not a duration of an "
				                       "hour or more (7d)", optarg);
			break;
		default: return cli_getopt_default(self, opt, argv);
		}
	}
	if (optind + 1 != argc)
		return cli_usage_error("report", "want one report: inventory, expiry, compliance, "
		                       "algorithms or pq-readiness");
	if (aclm_report_kind_parse(argv[optind], &kind) != ACLM_OK)
		return cli_usage_error("report", "%s", aclm_errmsg());
	if (policy != NULL && kind != ACLM_REPORT_COMPLIANCE)
		return cli_usage_error("report", "--policy applies to the compliance report only");
	if (every > 0 && channel == NULL)
		return cli_usage_error("report", "--every goes with --send CHANNEL");
	if (channel != NULL && out_path != NULL)
		return cli_usage_error("report", "--send and --out exclude each other");
	if (cli_open_store(cli) != ACLM_OK)
		return EXIT_FAILED;
	if (kind == ACLM_REPORT_COMPLIANCE && aclm_policy_load(cli->store, policy, &pol) != ACLM_OK)
		return cli_fail("%s", aclm_errmsg());
	if (channel != NULL) {
		rc = send_report(cli, kind, pol, channel, every);
		aclm_policy_free(pol);
		return rc;
	}
	aclm_buf_init(&b, REPORT_MAX);
	rc = aclm_report_render_lang(cli->store, kind, fmt, lang, pol, aclm_now(), &b);
	aclm_policy_free(pol);
	if (rc != ACLM_OK) {
		aclm_buf_free(&b);
		return cli_fail("%s", aclm_errmsg());
	}
	if (out_path != NULL) {
		fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			rc = aclm_error(ACLM_ERR_IO, "%s: %s", out_path, strerror(errno));
		else
			rc = write_all(fd, b.data, b.len, out_path);
		if (fd >= 0 && close(fd) != 0 && rc == ACLM_OK)
			rc = aclm_error(ACLM_ERR_IO, "%s: %s", out_path, strerror(errno));
	} else {
		rc = write_all(STDOUT_FILENO, b.data, b.len, "standard output");
	}
	aclm_buf_free(&b);
	if (rc != ACLM_OK)
		return cli_fail("%s", aclm_errmsg());
	return EXIT_OK;
}
