/* dns-01 through a hook: the user's script is run as
 *   SCRIPT add|remove FQDN VALUE
 * (FQDN "_acme-challenge.example.com.", VALUE the TXT content) and must
 * exit 0 once the record is (or is no longer) published.  It runs without
 * a shell, with stdin closed; its output goes to our stderr. */
#include <errno.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "acme-int.h"
#include "aclm/err.h"
#include "aclm/log.h"

extern char **environ;

int acme_dns_hook(const char *script, const char *action, const char *fqdn, const char *value)
{
	char *argv[] = { (char *)script, (char *)action, (char *)fqdn, (char *)value, NULL };
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int status = 0, e;

	if (script == NULL)
		return aclm_error(ACLM_ERR_USAGE, "dns-01: no DNS hook configured");
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", 0, 0);
	posix_spawn_file_actions_adddup2(&fa, 2, 1);
	e = posix_spawn(&pid, script, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (e != 0)
		return aclm_error(ACLM_ERR_IO, "dns-01: cannot run hook %s: %s", script, strerror(e));
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return aclm_error(ACLM_ERR_IO, "dns-01: hook %s: %s", script, strerror(errno));
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return aclm_error(ACLM_ERR_IO, "dns-01: hook %s %s %s failed (%s %d)", script, action,
		                  fqdn, WIFEXITED(status) ? "exit" : "signal",
		                  WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	aclm_debug("dns-01: hook %s %s %s done", script, action, fqdn);
	return ACLM_OK;
}
