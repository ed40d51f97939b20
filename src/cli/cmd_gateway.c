/* aclm gateway: run the TLS-terminating reverse proxy, check its
 * configuration, or tell a running one to reload. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "aclm/acme.h"
#include "aclm/buf.h"
#include "aclm/ca.h"
#include "aclm/err.h"
#include "aclm/gateway.h"
#include "aclm/keywrap.h"
#include "aclm/log.h"
#include "cli-int.h"

static int write_pid_file(const char *path)
{
	char line[32];
	int fd, len;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return aclm_error(ACLM_ERR_IO, "pid file %s: %s", path, strerror(errno));
	len = snprintf(line, sizeof(line), "%ld\n", (long)getpid());
	if (write(fd, line, (size_t)len) != len) {
		close(fd);
		return aclm_error(ACLM_ERR_IO, "pid file %s: %s", path, strerror(errno));
	}
	close(fd);
	return 0;
}

static int run_gateway(struct cli *cli, const char *path)
{
	struct aclm_gw_config *cfg = NULL;
	struct aclm_gateway *gw = NULL;
	struct aclm_acme_ca *cas = NULL;
	struct aclm_kek kek;
	size_t n_cas = 0;
	bool has_acme, has_ca;
	sigset_t set;
	const char *pid_file;
	int rc;

	if ((rc = aclm_gw_config_load(path, &cfg)))
		return cli_fail("gateway: %s", aclm_errmsg());
	has_acme = aclm_gw_config_needs_acme(cfg);
	has_ca = aclm_gw_config_needs_ca(cfg);
	/* Sites with cert_source acme or ca: the CAs, store and KEK of aclm.yaml. */
	if ((has_acme || has_ca) && cli_acme_setup(cli, &kek, &cas, &n_cas) != EXIT_OK) {
		aclm_gw_config_unref(cfg);
		return EXIT_FAILED;
	}
	pid_file = aclm_gw_config_pid_file(cfg);
	if (pid_file[0] && (rc = write_pid_file(pid_file))) {
		aclm_gw_config_unref(cfg);
		return cli_fail("gateway: %s", aclm_errmsg());
	}
	/* Signals go to this thread only (sigtimedwait below): the workers
	 * inherit the mask. */
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if ((rc = aclm_gateway_new(cfg, &gw)) ||
	    ((has_acme || has_ca) &&
	     (rc = aclm_gateway_set_acme(gw, cli->store, &kek, cas, n_cas))) ||
	    (has_ca && (rc = aclm_gateway_set_builtin_ca(gw, cli->cfg))) ||
	    (rc = aclm_gateway_start(gw))) {
		cli_fail("gateway: %s", aclm_errmsg());
		aclm_gateway_free(gw);
		aclm_acme_cas_free(cas, n_cas);
		OPENSSL_cleanse(&kek, sizeof(kek));
		return EXIT_FAILED;
	}
	for (;;) {
		struct timespec tick = { .tv_sec = 0, .tv_nsec = 250 * 1000 * 1000 };
		int sig = sigtimedwait(&set, NULL, &tick);

		if (sig == SIGTERM || sig == SIGINT)
			break;
		aclm_gateway_tick(gw);
		/* A certificate renewed or redeployed on disk is picked up without
		 * a signal, within a second. */
		if (sig == SIGHUP || (sig < 0 && aclm_gateway_certs_changed(gw))) {
			if (aclm_gateway_reload(gw))
				aclm_err("gateway: reload failed, the running configuration stays: %s",
				         aclm_errmsg());
		}
	}
	aclm_info("gateway: stopping");
	aclm_gateway_free(gw);
	aclm_acme_cas_free(cas, n_cas);
	OPENSSL_cleanse(&kek, sizeof(kek));
	return EXIT_OK;
}

static int reload_gateway(const char *path)
{
	struct aclm_gw_config *cfg = NULL;
	struct aclm_buf b;
	char *end;
	long pid;
	int rc;

	if ((rc = aclm_gw_config_load(path, &cfg)))
		return cli_fail("gateway reload: %s (nothing sent)", aclm_errmsg());
	if (!aclm_gw_config_pid_file(cfg)[0]) {
		aclm_gw_config_unref(cfg);
		return cli_fail("gateway reload: %s has no pid_file: send SIGHUP to the gateway",
		                path);
	}
	aclm_buf_init(&b, 64);
	rc = aclm_buf_read_file(&b, aclm_gw_config_pid_file(cfg));
	if (rc) {
		aclm_buf_free(&b);
		aclm_gw_config_unref(cfg);
		return cli_fail("gateway reload: %s", aclm_errmsg());
	}
	errno = 0;
	pid = strtol(aclm_buf_cstr(&b), &end, 10);
	if (errno || pid <= 1 || (*end && *end != '\n')) {
		cli_fail("gateway reload: %s does not hold a process id",
		         aclm_gw_config_pid_file(cfg));
		rc = EXIT_FAILED;
	} else if (kill((pid_t)pid, SIGHUP)) {
		cli_fail("gateway reload: process %ld: %s", pid, strerror(errno));
		rc = EXIT_FAILED;
	}
	aclm_buf_free(&b);
	aclm_gw_config_unref(cfg);
	return rc ? EXIT_FAILED : EXIT_OK;
}

static int check_gateway(struct cli *cli, const char *path)
{
	struct aclm_gw_config *cfg = NULL;
	struct aclm_gateway *gw = NULL;
	size_t n;

	if (aclm_gw_config_load(path, &cfg))
		return cli_fail("gateway check: %s", aclm_errmsg());
	n = aclm_gw_config_n_sites(cfg);
	/* Sites with cert_source ca: their CAs exist in the store. */
	if (aclm_gw_config_needs_ca(cfg)) {
		const char *ca = aclm_config_str(cli->cfg, "ca.name");
		struct aclm_ca_policy pol;

		if (cli_open_store(cli) != ACLM_OK) {
			aclm_gw_config_unref(cfg);
			return EXIT_FAILED;
		}
		aclm_ca_policy_from_config(cli->cfg, &pol);
		if (aclm_gw_config_check_cas(cfg, cli->store, ca && *ca ? ca : "main", &pol)) {
			aclm_gw_config_unref(cfg);
			return cli_fail("gateway check: %s", aclm_errmsg());
		}
	}
	/* Building the gateway builds every site's TLS context: certificates,
	 * keys, groups and cipher lists are checked too. */
	if (aclm_gateway_new(cfg, &gw))
		return cli_fail("gateway check: %s", aclm_errmsg());
	aclm_gateway_free(gw);
	printf("%s: ok (%zu site%s)\n", path, n, n == 1 ? "" : "s");
	return EXIT_OK;
}

int cmd_gateway(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cli_command *self = cli_find_command("gateway");
	const char *path = "gw.yaml", *action = "run";
	int opt;

	while ((opt = getopt_long(argc, argv, ":hc:", opts, NULL)) != -1) {
		if (opt == 'c')
			path = optarg;
		else
			return cli_getopt_default(self, opt, argv);
	}
	/* glibc's getopt moves the action behind the options: "check --config F"
	 * and "--config F check" are the same. */
	if (optind < argc)
		action = argv[optind++];
	if (optind < argc)
		return cli_usage_error("gateway", "unexpected argument '%s'", argv[optind]);
	if (!strcmp(action, "run"))
		return run_gateway(cli, path);
	if (!strcmp(action, "check"))
		return check_gateway(cli, path);
	if (!strcmp(action, "reload"))
		return reload_gateway(path);
	return cli_usage_error("gateway", "unknown action '%s' (run, check, reload)", action);
}
