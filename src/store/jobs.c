/* Persistent scheduler jobs: see include/aclm/store_jobs.h. */
#include <stdio.h>
#include <string.h>

#include "aclm/err.h"
#include "aclm/str.h"
#include "aclm/store_jobs.h"
#include "aclm/timeutil.h"
#include "store-int.h"

static const char SQL_OPEN_JOB[] =
	"SELECT id, state FROM jobs WHERE kind = ? AND subject = ? "
	"AND state IN ('pending', 'running')";
static const char SQL_INSERT_JOB[] =
	"INSERT INTO jobs (kind, subject, state, run_at, params, created_at, updated_at) "
	"VALUES (?, ?, 'pending', ?, ?, ?, ?)";
static const char SQL_MOVE_JOB[] =
	"UPDATE jobs SET run_at = ?, updated_at = ? WHERE id = ? AND state = 'pending' "
	"AND run_at <> ?";

#define DUE "(state = 'pending' AND run_at <= ?) OR (state = 'running' AND lease_until < ?)"
/* SQLite: the write lock of BEGIN IMMEDIATE makes select-then-update safe. */
static const char SQL_DUE_SQLITE[] =
	"SELECT id FROM jobs WHERE " DUE " ORDER BY run_at, id LIMIT 1";
/* PostgreSQL: several servers claim at once; SKIP LOCKED keeps them apart. */
static const char SQL_DUE_POSTGRES[] =
	"SELECT id FROM jobs WHERE " DUE " ORDER BY run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED";
static const char SQL_TAKE[] =
	"UPDATE jobs SET state = 'running', owner = ?, lease_until = ?, updated_at = ? "
	"WHERE id = ?";
#define JOB_COLS "SELECT id, kind, subject, state, run_at, attempts, last_error, updated_at, " \
	"params, progress, result, created_at FROM jobs"
static const char SQL_JOB_GET[] = JOB_COLS " WHERE id = ?";
static const char SQL_FINISH[] =
	"UPDATE jobs SET state = ?, run_at = ?, attempts = attempts + 1, last_error = ?, "
	"result = COALESCE(?, result), owner = NULL, lease_until = 0, updated_at = ? "
	"WHERE id = ? AND owner = ? AND state = 'running' RETURNING id";
static const char SQL_ADD_JOB[] =
	"INSERT INTO jobs (kind, subject, state, run_at, params, created_at, updated_at) "
	"VALUES (?, ?, 'pending', ?, ?, ?, ?) RETURNING id";
static const char SQL_PROGRESS[] =
	"UPDATE jobs SET progress = ?, updated_at = ?, lease_until = ? "
	"WHERE id = ? AND owner = ? AND state = 'running'";
static const char SQL_LIST_ALL[] = JOB_COLS " ORDER BY updated_at DESC, id DESC";
static const char SQL_LIST_STATE[] = JOB_COLS " WHERE state = ? ORDER BY updated_at DESC, id DESC";
static const char SQL_LIST_ALL_LIMIT[] = JOB_COLS " ORDER BY updated_at DESC, id DESC LIMIT ?";
static const char SQL_LIST_STATE_LIMIT[] =
	JOB_COLS " WHERE state = ? ORDER BY updated_at DESC, id DESC LIMIT ?";
static const char SQL_PRUNE[] =
	"DELETE FROM jobs WHERE state IN ('done', 'failed') AND updated_at < ?";
static const char SQL_NODE_UPSERT[] =
	"INSERT INTO nodes (name, kind, address, version, last_seen) VALUES (?, ?, ?, ?, ?) "
	"ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, address = excluded.address, "
	"version = excluded.version, last_seen = excluded.last_seen";
static const char SQL_NODES[] =
	"SELECT id, name, kind, address, version, last_seen FROM nodes ORDER BY name";
static const char SQL_LEADER[] = "SELECT pg_try_advisory_lock(" STORE_LOCK_SCHEDULER ")";


int aclm_store_job_ensure(struct aclm_store *st, const char *kind, const char *subject,
                          int64_t run_at, const char *params_json, bool reschedule)
{
	struct store_query q;
	int64_t id = 0, now = aclm_now();
	bool pending = false;
	int rc;

	if ((rc = aclm_store_begin(st)) != ACLM_OK)
		return rc;
	{
		const struct store_param p[] = { SP_T(kind), SP_T(subject) };
		if ((rc = store_query_open(st, &q, SQL_OPEN_JOB, "look up job", 0, p, 2)) != ACLM_OK)
			return store_end(st, rc);
	}
	rc = store_query_step(st, &q);
	if (rc == 1) {
		const char *state = st->drv->column_text(q.stmt, 1);
		id = st->drv->column_int64(q.stmt, 0);
		pending = state != NULL && strcmp(state, "pending") == 0;
	}
	store_query_close(st, &q);
	if (rc < 0)
		return store_end(st, rc);
	if (id == 0) {
		const struct store_param p[] = { SP_T(kind), SP_T(subject), SP_I(run_at),
		                                 SP_T(params_json ? params_json : "{}"), SP_I(now),
		                                 SP_I(now) };
		rc = store_run(st, SQL_INSERT_JOB, "add job", p, SP_COUNT(p));
	} else if (pending && reschedule) {
		const struct store_param p[] = { SP_I(run_at), SP_I(now), SP_I(id), SP_I(run_at) };
		rc = store_run(st, SQL_MOVE_JOB, "reschedule job", p, SP_COUNT(p));
	} else {
		rc = ACLM_OK;
	}
	return store_end(st, rc);
}

static void read_job(struct aclm_store *st, struct store_query *q, struct aclm_job *j)
{
	const struct store_driver *d = st->drv;
	const char *s;

	memset(j, 0, sizeof(*j));
	j->id = d->column_int64(q->stmt, 0);
	aclm_strlcpy(j->kind, (s = d->column_text(q->stmt, 1)) ? s : "", sizeof(j->kind));
	aclm_strlcpy(j->subject, (s = d->column_text(q->stmt, 2)) ? s : "", sizeof(j->subject));
	aclm_strlcpy(j->state, (s = d->column_text(q->stmt, 3)) ? s : "", sizeof(j->state));
	j->run_at = d->column_int64(q->stmt, 4);
	j->attempts = (int)d->column_int64(q->stmt, 5);
	aclm_strlcpy(j->last_error, (s = d->column_text(q->stmt, 6)) ? s : "",
	             sizeof(j->last_error));
	j->updated_at = d->column_int64(q->stmt, 7);
	aclm_strlcpy(j->params, (s = d->column_text(q->stmt, 8)) ? s : "{}", sizeof(j->params));
	aclm_strlcpy(j->progress, (s = d->column_text(q->stmt, 9)) ? s : "{}", sizeof(j->progress));
	aclm_strlcpy(j->result, (s = d->column_text(q->stmt, 10)) ? s : "{}", sizeof(j->result));
	j->created_at = d->column_int64(q->stmt, 11);
}

int aclm_store_job_claim(struct aclm_store *st, const char *owner, int64_t now, int64_t lease,
                         struct aclm_job *job)
{
	const char *due = st->drv->dialect == STORE_POSTGRES ? SQL_DUE_POSTGRES : SQL_DUE_SQLITE;
	struct store_query q;
	int64_t id = 0;
	int rc;

	if ((rc = aclm_store_begin(st)) != ACLM_OK)
		return rc;
	{
		const struct store_param p[] = { SP_I(now), SP_I(now) };
		rc = store_int64(st, due, "find a due job", p, SP_COUNT(p), &id);
	}
	if (rc <= 0)
		return rc == 0 ? store_end(st, ACLM_OK) : store_end(st, rc);
	{
		const struct store_param p[] = { SP_T(owner), SP_I(now + lease), SP_I(now), SP_I(id) };
		if ((rc = store_run(st, SQL_TAKE, "claim job", p, SP_COUNT(p))) != ACLM_OK)
			return store_end(st, rc);
	}
	{
		const struct store_param p[] = { SP_I(id) };
		if ((rc = store_query_open(st, &q, SQL_JOB_GET, "read job", 0, p, 1)) != ACLM_OK)
			return store_end(st, rc);
	}
	rc = store_query_step(st, &q);
	if (rc == 1)
		read_job(st, &q, job);
	store_query_close(st, &q);
	if (rc < 0)
		return store_end(st, rc);
	if ((rc = store_end(st, ACLM_OK)) != ACLM_OK)
		return rc;
	return 1;
}

int aclm_store_job_finish(struct aclm_store *st, int64_t id, const char *owner, bool ok,
                          const char *error, int64_t retry_at, const char *result_json)
{
	const char *state = ok ? "done" : retry_at > 0 ? "pending" : "failed";
	int64_t now = aclm_now(), got = 0;
	int rc;
	const struct store_param p[] = {
		SP_T(state), SP_I(retry_at > 0 ? retry_at : now), SP_T(ok ? NULL : error),
		SP_T(result_json), SP_I(now), SP_I(id), SP_T(owner),
	};

	rc = store_int64(st, SQL_FINISH, "finish job", p, SP_COUNT(p), &got);
	if (rc == 0)
		return aclm_error(ACLM_ERR_NOTFOUND, "job %lld is no longer held by %s (lease lost)",
		                  (long long)id, owner);
	return rc < 0 ? rc : ACLM_OK;
}

int aclm_store_job_add(struct aclm_store *st, const char *kind, const char *subject,
                       int64_t run_at, const char *params_json, int64_t *id)
{
	int64_t now = aclm_now(), new_id = 0;
	const struct store_param p[] = {
		SP_T(kind), SP_T(subject), SP_I(run_at), SP_T(params_json ? params_json : "{}"),
		SP_I(now), SP_I(now),
	};
	int rc = store_int64(st, SQL_ADD_JOB, "add job", p, SP_COUNT(p), &new_id);

	if (rc == 0)
		return aclm_error(ACLM_ERR_DB, "add job: no id returned");
	if (rc < 0)
		return rc;
	if (id != NULL)
		*id = new_id;
	return ACLM_OK;
}

int aclm_store_job_get(struct aclm_store *st, int64_t id, struct aclm_job *job)
{
	const struct store_param p[] = { SP_I(id) };
	struct store_query q;
	int rc;

	if ((rc = store_query_open(st, &q, SQL_JOB_GET, "read job", 0, p, 1)) != ACLM_OK)
		return rc;
	rc = store_query_step(st, &q);
	if (rc == 1) {
		read_job(st, &q, job);
		rc = ACLM_OK;
	} else if (rc == 0) {
		rc = aclm_error(ACLM_ERR_NOTFOUND, "no job %lld", (long long)id);
	}
	store_query_close(st, &q);
	return rc;
}

int aclm_store_job_progress(struct aclm_store *st, int64_t id, const char *owner,
                            const char *progress_json, int64_t lease_until)
{
	const struct store_param p[] = { SP_T(progress_json), SP_I(aclm_now()), SP_I(lease_until),
	                                 SP_I(id), SP_T(owner) };

	return store_run(st, SQL_PROGRESS, "record job progress", p, SP_COUNT(p));
}

int aclm_store_job_list(struct aclm_store *st, const char *state, int64_t limit,
                        aclm_job_fn fn, void *ctx)
{
	struct store_query q;
	int rc;

	if (state != NULL && limit > 0) {
		const struct store_param p[] = { SP_T(state), SP_I(limit) };
		rc = store_query_open(st, &q, SQL_LIST_STATE_LIMIT, "list jobs", 0, p, 2);
	} else if (state != NULL) {
		const struct store_param p[] = { SP_T(state) };
		rc = store_query_open(st, &q, SQL_LIST_STATE, "list jobs", 0, p, 1);
	} else if (limit > 0) {
		const struct store_param p[] = { SP_I(limit) };
		rc = store_query_open(st, &q, SQL_LIST_ALL_LIMIT, "list jobs", 0, p, 1);
	} else {
		rc = store_query_open(st, &q, SQL_LIST_ALL, "list jobs", 0, NULL, 0);
	}
	if (rc != ACLM_OK)
		return rc;
	while ((rc = store_query_step(st, &q)) == 1) {
		struct aclm_job j;
		read_job(st, &q, &j);
		if ((rc = fn(ctx, &j)) != ACLM_OK)
			break;
	}
	store_query_close(st, &q);
	return rc < 0 ? rc : ACLM_OK;
}

int aclm_store_job_prune(struct aclm_store *st, int64_t before)
{
	const struct store_param p[] = { SP_I(before) };

	return store_run(st, SQL_PRUNE, "prune jobs", p, 1);
}

int aclm_store_node_heartbeat(struct aclm_store *st, const char *name, const char *kind,
                              const char *address, const char *version, int64_t now)
{
	const struct store_param p[] = { SP_T(name), SP_T(kind), SP_T(address), SP_T(version),
	                                 SP_I(now) };

	return store_run(st, SQL_NODE_UPSERT, "record node", p, SP_COUNT(p));
}

int aclm_store_node_list(struct aclm_store *st, aclm_node_fn fn, void *ctx)
{
	const struct store_driver *d = st->drv;
	struct store_query q;
	int rc;

	if ((rc = store_query_open(st, &q, SQL_NODES, "list nodes", 0, NULL, 0)) != ACLM_OK)
		return rc;
	while ((rc = store_query_step(st, &q)) == 1) {
		struct aclm_node_row r = {
			.id = d->column_int64(q.stmt, 0), .name = d->column_text(q.stmt, 1),
			.kind = d->column_text(q.stmt, 2), .address = d->column_text(q.stmt, 3),
			.version = d->column_text(q.stmt, 4), .last_seen = d->column_int64(q.stmt, 5),
		};
		if ((rc = fn(ctx, &r)) != ACLM_OK)
			break;
	}
	store_query_close(st, &q);
	return rc < 0 ? rc : ACLM_OK;
}

int aclm_store_try_leader(struct aclm_store *st, bool *is_leader)
{
	struct store_query q;
	int rc;

	*is_leader = true;
	if (st->drv->dialect != STORE_POSTGRES)
		return ACLM_OK;
	if ((rc = store_query_open(st, &q, SQL_LEADER, "take the scheduler lock", 0, NULL, 0)) !=
	    ACLM_OK)
		return rc;
	rc = store_query_step(st, &q);
	if (rc == 1) {
		const char *v = st->drv->column_text(q.stmt, 0);
		*is_leader = v != NULL && (v[0] == 't' || v[0] == '1');
	}
	store_query_close(st, &q);
	return rc < 0 ? rc : ACLM_OK;
}
