/* aclm server: the management daemon (REST API, scheduler, alerts, metrics).
 *
 * One process, one libev loop: the HTTP engine (http.h), the scheduler's
 * timers and the signal watchers share it.  The store is used from the
 * loop's thread only. */
#ifndef ACLM_SERVER_H
#define ACLM_SERVER_H

#include <stdbool.h>

#include "aclm/config.h"

struct aclm_server_opts {
	const char *config_path;     /* for SIGHUP reloads; NULL: the search path */
	struct aclm_config *cfg;     /* loaded configuration (the server keeps it) */
	const char *db_url;          /* --db, overrides store.url */
	const char *listen;          /* --listen, overrides server.listen */
	bool quiet;
};

/* Run until SIGTERM/SIGINT (graceful: in-flight requests finish).  Returns
 * 0, or a negative enum aclm_err with the message recorded when it could not
 * start. */
int aclm_server_run(struct aclm_server_opts *opts);

#endif
