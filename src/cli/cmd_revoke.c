/* aclm revoke: revoke a certificate at the CA that issued it. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "aclm/acme.h"
#include "aclm/err.h"
#include "aclm/keywrap.h"
#include "aclm/str.h"
#include "cli-int.h"

static const struct {
	const char *name;
	int code;
} reasons[] = {
	{ "unspecified", 0 }, { "keyCompromise", 1 }, { "affiliationChanged", 3 },
	{ "superseded", 4 }, { "cessationOfOperation", 5 }, { "certificateHold", 6 },
	{ "privilegeWithdrawn", 9 },
};

int cmd_revoke(struct cli *cli, int argc, char **argv)
{
	enum { O_REASON = 256 };
	static const struct option opts[] = {
		{ "reason", required_argument, NULL, O_REASON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cli_command *self = cli_find_command("revoke");
	struct aclm_acme_ca *cas = NULL;
	size_t n_cas = 0;
	struct aclm_kek kek;
	int64_t id = 0, code = 0;
	int opt, rc, r;

	memset(&kek, 0, sizeof(kek));
	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (opt) {
		case O_REASON: {
			bool found = false;
			for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
				if (strcmp(reasons[i].name, optarg) == 0) {
					code = reasons[i].code;
					found = true;
				}
			if (!found && (aclm_parse_int64(optarg, &code) != ACLM_OK || code < 0 || code > 10 ||
			               code == 7 || code == 2 || code == 8 || code == 10))
				return cli_usage_error("revoke", "--reason '%s': use unspecified, keyCompromise, "
				                       "affiliationChanged, superseded, cessationOfOperation, "
				                       "certificateHold, privilegeWithdrawn or a code", optarg);
			break;
		}
		default:
			if ((r = cli_getopt_default(self, opt, argv)) >= 0)
				return r;
		}
	}
	if (optind + 1 != argc)
		return cli_usage_error("revoke", "give exactly one certificate (ID or fingerprint)");
	if ((rc = cli_acme_setup(cli, &kek, &cas, &n_cas)) != EXIT_OK)
		return rc;
	if (aclm_store_find_cert(cli->store, argv[optind], &id) != ACLM_OK) {
		rc = cli_fail("%s", aclm_errmsg());
	} else if (aclm_acme_revoke(cli->store, &kek, cas, n_cas, id, (int)code) != ACLM_OK) {
		rc = cli_fail("%s", aclm_errmsg());
	} else {
		if (!cli->quiet)
			printf("revoked certificate %lld (reason %lld)\n", (long long)id, (long long)code);
		rc = EXIT_OK;
	}
	aclm_kek_wipe(&kek);
	aclm_acme_cas_free(cas, n_cas);
	return rc;
}
