/* The scheduler's persistent jobs (migration 4, table jobs).
 *
 * A job is (kind, subject): at most one open (pending or running) job per
 * pair.  A worker claims a due job by setting owner and a lease; a job
 * whose lease ran out (its worker died) is due again, so nothing is lost
 * across crashes and restarts.  On PostgreSQL several servers claim with
 * FOR UPDATE SKIP LOCKED and never take the same job. */
#ifndef ACLM_STORE_JOBS_H
#define ACLM_STORE_JOBS_H

#include <stdbool.h>
#include <stdint.h>

#include "aclm/store.h"

struct aclm_job {
	int64_t id;
	char kind[32];
	char subject[128];
	char state[16];              /* pending, running, done, failed */
	int64_t run_at;
	int attempts;
	char last_error[512];
	char params[2048];           /* JSON */
	char progress[512];          /* JSON */
	char result[512];            /* JSON */
	int64_t created_at;
	int64_t updated_at;
};

/* Make sure an open job (kind, subject) exists: create it to run at run_at,
 * or, when reschedule, move a pending one to run_at (a renewal whose time
 * changed).  A running one is left alone. */
int aclm_store_job_ensure(struct aclm_store *st, const char *kind, const char *subject,
                          int64_t run_at, const char *params_json, bool reschedule);
/* A new job (not unique by subject: a scan asked for by a user) with its
 * parameters; *id gets its id. */
int aclm_store_job_add(struct aclm_store *st, const char *kind, const char *subject,
                       int64_t run_at, const char *params_json, int64_t *id);
/* One job by id; ACLM_ERR_NOTFOUND. */
int aclm_store_job_get(struct aclm_store *st, int64_t id, struct aclm_job *job);
/* A running job reports how far it got (only its owner) and extends its
 * lease: a long job stays its worker's while the worker lives. */
int aclm_store_job_progress(struct aclm_store *st, int64_t id, const char *owner,
                            const char *progress_json, int64_t lease_until);
/* Take the most overdue job (pending with run_at <= now, or running with an
 * expired lease) for owner until now + lease.  Returns 1 and fills *job,
 * 0 when none is due. */
int aclm_store_job_claim(struct aclm_store *st, const char *owner, int64_t now, int64_t lease,
                         struct aclm_job *job);
/* The worker's verdict.  ok: done.  Not ok and retry_at > 0: pending again
 * at retry_at with the error kept.  Otherwise failed for good.  Only the
 * owner may finish it (ACLM_ERR_NOTFOUND if the lease was lost). */
int aclm_store_job_finish(struct aclm_store *st, int64_t id, const char *owner, bool ok,
                          const char *error, int64_t retry_at, const char *result_json);
typedef int (*aclm_job_fn)(void *ctx, const struct aclm_job *job);
/* Jobs, newest first; state NULL = all; limit 0 = all. */
int aclm_store_job_list(struct aclm_store *st, const char *state, int64_t limit,
                        aclm_job_fn fn, void *ctx);
/* Finished jobs older than before are deleted (history kept bounded). */
int aclm_store_job_prune(struct aclm_store *st, int64_t before);

/* The nodes of a deployment (servers, later gateways): each says it is
 * alive; the API lists them. */
int aclm_store_node_heartbeat(struct aclm_store *st, const char *name, const char *kind,
                              const char *address, const char *version, int64_t now);
struct aclm_node_row {
	int64_t id;
	const char *name, *kind, *address, *version;
	int64_t last_seen;
};
typedef int (*aclm_node_fn)(void *ctx, const struct aclm_node_row *row);
int aclm_store_node_list(struct aclm_store *st, aclm_node_fn fn, void *ctx);

/* PostgreSQL: try to become the scheduling leader (a session advisory
 * lock held until the connection closes).  SQLite: always true (one
 * node). */
int aclm_store_try_leader(struct aclm_store *st, bool *is_leader);

#endif
