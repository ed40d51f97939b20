/* The PostgreSQL driver: the store over libpq, in pipeline mode.
 *
 * The connection stays in libpq pipeline mode.  run() and send() only queue
 * a statement; step() and sync() send a Sync and read every queued result
 * in order, so a batch of statements costs one round trip.  The first
 * failure among them is reported by that step() or sync(), named after the
 * statement that failed; the server skips the rest of the pipeline up to
 * the Sync, as PostgreSQL does for an aborted pipeline.
 *
 * Statements from the store's cache are prepared on the server once per
 * connection (one round trip each); one-off statements go as
 * PQsendQueryParams.  Parameters are text, except blobs which are sent in
 * binary (bytea).  Results are read in text format.
 *
 * A statement flagged STORE_STMT_STREAM is read row by row (single-row
 * mode).  If another statement needs the connection while such a stream
 * is unfinished, the rest of the stream is first read into memory, so
 * nested queries from a listing's callback work as they do on SQLite. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "aclm/buf.h"
#include "aclm/err.h"
#include "aclm/log.h"
#include "aclm/str.h"
#include "store-int.h"

/* Queued statements before run/send forces a round trip: keeps both
 * socket buffers far from full (a blocking send cannot then deadlock). */
#define MAX_PENDING 64

enum pend_kind {
	PEND_DISCARD = 0,  /* a run(): read and drop the result, keep the error */
	PEND_OWNED,        /* a send()/step(): the result goes to its statement */
	PEND_SYNC,         /* a Sync message: PGRES_PIPELINE_SYNC */
};

struct pending {
	enum pend_kind kind;
	const char *what;
	struct store_stmt *owner;  /* PEND_OWNED */
};

struct store_conn {
	PGconn *pg;
	struct pending q[MAX_PENDING + 2];
	int q_len;
	struct store_stmt *stream;  /* rows of this statement are still arriving */
	unsigned next_name;
	bool has_err;               /* err holds the first failure not yet reported */
	char err[1024];
};

struct pg_param {
	char num[24];
	char *heap;
};

struct store_stmt {
	struct store_conn *conn;
	const char *what;
	char *sql;                 /* with $n placeholders */
	char name[16];             /* server-side name; "" for a one-off */
	bool is_stream;
	int n_params;
	struct pg_param *params;
	const char **values;
	int *lengths;
	int *formats;

	bool started;              /* sent to the server */
	bool awaiting;             /* its result is still queued */
	bool streamed;             /* read row by row (single-row mode) */
	bool live;                 /* streamed rows still on the wire */
	PGresult *res;             /* whole result, or the current row's result */
	int row;
	PGresult **ahead;          /* streamed rows read ahead by detach() */
	size_t n_ahead, ahead_pos, ahead_cap;
	bool failed;               /* the statement failed; err says why */
	char err[1024];
	unsigned char *blob;       /* last column_blob() value */
	size_t blob_len;
};

/* A message on one line: "ERROR:  x\nDETAIL:  y\n" -> "x (y)". */
static void result_message(const PGresult *r, PGconn *pg, char *out, size_t size)
{
	const char *primary = r != NULL ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *detail = r != NULL ? PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL) : NULL;
	char *p;

	if (primary == NULL)
		snprintf(out, size, "%s", PQerrorMessage(pg));
	else if (detail != NULL)
		snprintf(out, size, "%s (%s)", primary, detail);
	else
		snprintf(out, size, "%s", primary);
	for (p = out; *p != '\0'; p++)
		if (*p == '\n' || *p == '\t')
			*p = ' ';
	while (p > out && p[-1] == ' ')
		*--p = '\0';
	if (*out == '\0')
		snprintf(out, size, "unknown error");
}

static void note_error(struct store_conn *c, const char *what, const PGresult *r)
{
	char msg[900];

	if (c->has_err)
		return;
	result_message(r, c->pg, msg, sizeof(msg));
	snprintf(c->err, sizeof(c->err), "%s: %s", what, msg);
	c->has_err = true;
}

/* An immediate failure (libpq refused to send): reported at once. */
static int conn_error(struct store_conn *c, const char *what)
{
	char msg[900];

	result_message(NULL, c->pg, msg, sizeof(msg));
	snprintf(c->err, sizeof(c->err), "%s: %s", what, msg);
	c->has_err = false;
	return ACLM_ERR_DB;
}

/* The failure collected since the last report, as a return code. */
static int take_error(struct store_conn *c)
{
	if (!c->has_err)
		return ACLM_OK;
	c->has_err = false;
	return ACLM_ERR_DB;
}

static void queue_push(struct store_conn *c, enum pend_kind kind, const char *what,
                       struct store_stmt *owner)
{
	c->q[c->q_len].kind = kind;
	c->q[c->q_len].what = what;
	c->q[c->q_len].owner = owner;
	c->q_len++;
}

static void queue_pop(struct store_conn *c)
{
	memmove(&c->q[0], &c->q[1], (size_t)(c->q_len - 1) * sizeof(c->q[0]));
	c->q_len--;
}

static int push_sync(struct store_conn *c)
{
	if (PQpipelineSync(c->pg) != 1)
		return conn_error(c, "pipeline sync");
	queue_push(c, PEND_SYNC, NULL, NULL);
	return ACLM_OK;
}

/* The whole result of a sent statement, kept for its step(). */
static void read_owned(struct store_conn *c, struct store_stmt *s)
{
	PGresult *r;

	while ((r = PQgetResult(c->pg)) != NULL) {
		ExecStatusType st = PQresultStatus(r);
		if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
			PQclear(s->res);
			s->res = r;
			continue;
		}
		if (st == PGRES_FATAL_ERROR && !s->failed) {
			char msg[900];
			result_message(r, c->pg, msg, sizeof(msg));
			snprintf(s->err, sizeof(s->err), "%s: %s", s->what, msg);
			s->failed = true;
			note_error(c, s->what, r);
		}
		PQclear(r);
	}
	s->awaiting = false;
	s->row = -1;
}

/* Read the results at the head of the queue, and drop the entry. */
static void read_head(struct store_conn *c)
{
	struct pending *p = &c->q[0];
	PGresult *r;

	switch (p->kind) {
	case PEND_DISCARD:
		while ((r = PQgetResult(c->pg)) != NULL) {
			if (PQresultStatus(r) == PGRES_FATAL_ERROR)
				note_error(c, p->what, r);
			PQclear(r);
		}
		break;
	case PEND_OWNED:
		read_owned(c, p->owner);
		break;
	case PEND_SYNC:
		r = PQgetResult(c->pg);
		if (r == NULL || PQresultStatus(r) != PGRES_PIPELINE_SYNC)
			note_error(c, "pipeline sync", r);
		PQclear(r);
		break;
	}
	queue_pop(c);
}

static int ahead_push(struct store_stmt *s, PGresult *r)
{
	if (s->n_ahead == s->ahead_cap) {
		size_t ncap = s->ahead_cap != 0 ? s->ahead_cap * 2 : 256;
		PGresult **n = realloc(s->ahead, ncap * sizeof(*n));
		if (n == NULL)
			return ACLM_ERR_NOMEM;
		s->ahead = n;
		s->ahead_cap = ncap;
	}
	s->ahead[s->n_ahead++] = r;
	return ACLM_OK;
}

/* Read one streamed result of s (at the head of the queue): 1 a row (in
 * *row), 0 the end, <0 an error (s->failed).  At the end the Sync that
 * follows is read too. */
static int stream_next(struct store_stmt *s, PGresult **row)
{
	struct store_conn *c = s->conn;
	PGresult *r = PQgetResult(c->pg);
	ExecStatusType st = r != NULL ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	bool more = r != NULL;

	if (st == PGRES_SINGLE_TUPLE) {
		*row = r;
		return 1;
	}
	if (st != PGRES_TUPLES_OK && !s->failed) {
		char msg[900];
		result_message(r, c->pg, msg, sizeof(msg));
		snprintf(s->err, sizeof(s->err), "%s: %s", s->what, msg);
		s->failed = true;
	}
	PQclear(r);
	while (more && (r = PQgetResult(c->pg)) != NULL)
		PQclear(r);            /* up to the NULL that ends the query */
	queue_pop(c);                  /* PEND_OWNED */
	if (c->q_len > 0 && c->q[0].kind == PEND_SYNC)
		read_head(c);
	s->live = false;
	c->stream = NULL;
	return s->failed ? ACLM_ERR_DB : 0;
}

/* Another statement needs the connection: read the rest of the stream. */
static void detach(struct store_conn *c)
{
	struct store_stmt *s = c->stream;
	PGresult *row;

	if (s == NULL)
		return;
	while (stream_next(s, &row) == 1) {
		if (ahead_push(s, row) != ACLM_OK) {
			PQclear(row);
			if (!s->failed) {
				snprintf(s->err, sizeof(s->err), "%s: out of memory", s->what);
				s->failed = true;
			}
		}
	}
}

/* Read every queued result, sending a Sync first if none ends the queue.
 * Failures are collected in c->err. */
static void flush(struct store_conn *c)
{
	detach(c);
	if (c->q_len == 0)
		return;
	if (c->q[c->q_len - 1].kind != PEND_SYNC && push_sync(c) != ACLM_OK) {
		/* The connection is gone: forget what was queued. */
		note_error(c, "pipeline sync", NULL);
		for (int i = 0; i < c->q_len; i++)
			if (c->q[i].owner != NULL)
				c->q[i].owner->awaiting = false;
		c->q_len = 0;
		return;
	}
	while (c->q_len > 0)
		read_head(c);
}

static int pg_sync(struct store_conn *c)
{
	flush(c);
	return take_error(c);
}

static void notice(void *arg, const char *message)
{
	aclm_debug("postgres: %s", message);
}

/* The URL without password or query string, for messages. */
static char *display_url(const char *url)
{
	const char *rest = strstr(url, "://");
	const char *auth, *auth_end, *at, *colon, *path_end;
	struct aclm_buf b;

	aclm_buf_init(&b, 4096);
	if (rest == NULL) {
		aclm_buf_puts(&b, "postgres");
		return aclm_buf_steal(&b, NULL);
	}
	auth = rest + 3;
	auth_end = auth + strcspn(auth, "/?");
	path_end = auth_end + strcspn(auth_end, "?");
	at = NULL;
	for (const char *p = auth; p < auth_end; p++)
		if (*p == '@')
			at = p;
	aclm_buf_append(&b, url, (size_t)(auth - url));
	if (at != NULL) {
		colon = memchr(auth, ':', (size_t)(at - auth));
		aclm_buf_append(&b, auth, (size_t)((colon != NULL ? colon : at) - auth));
		aclm_buf_append(&b, at, (size_t)(path_end - at));
	} else {
		aclm_buf_append(&b, auth, (size_t)(path_end - auth));
	}
	return aclm_buf_steal(&b, NULL);
}

static int pg_open(const char *url, const struct aclm_store_opts *opts,
                   struct store_conn **out, char **display)
{
	/* Defaults first: the URL (expanded from "dbname") overrides them.
	 * JIT off: it costs more to compile than it saves on our queries
	 * (65 ms of a 1M-row listing that takes 150 ms without it). */
	static const char *const keys[] = {
		"application_name", "connect_timeout", "options", "dbname", NULL,
	};
	const char *values[] = { "aclm", "10", "-c jit=off", url, NULL };
	struct store_conn *c = NULL;
	char *disp = display_url(url);
	char msg[900];
	int rc;

	if (disp == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
		goto out;
	}
	c->pg = PQconnectdbParams(keys, values, 1);
	if (c->pg == NULL || PQstatus(c->pg) != CONNECTION_OK) {
		if (c->pg != NULL)
			result_message(NULL, c->pg, msg, sizeof(msg));
		rc = aclm_error(ACLM_ERR_DB, "%s: %s", disp, c->pg != NULL ? msg : "out of memory");
		goto out;
	}
	PQsetNoticeProcessor(c->pg, notice, NULL);
	if (PQsetClientEncoding(c->pg, "UTF8") != 0 || PQenterPipelineMode(c->pg) != 1) {
		result_message(NULL, c->pg, msg, sizeof(msg));
		rc = aclm_error(ACLM_ERR_DB, "%s: cannot set up the connection: %s", disp, msg);
		goto out;
	}
	*out = c;
	*display = disp;
	c = NULL;
	disp = NULL;
	rc = ACLM_OK;
out:
	if (c != NULL) {
		PQfinish(c->pg);
		free(c);
	}
	free(disp);
	return rc;
}

static void pg_close(struct store_conn *c)
{
	if (c == NULL)
		return;
	PQfinish(c->pg);
	free(c);
}

static int pg_exec(struct store_conn *c, const char *script)
{
	PGresult *r;
	ExecStatusType st;
	int rc = pg_sync(c);

	if (rc != ACLM_OK)
		return rc;
	/* Multi-statement strings need the simple protocol: outside pipelines. */
	if (PQexitPipelineMode(c->pg) != 1)
		return conn_error(c, "leave pipeline mode");
	r = PQexec(c->pg, script);
	st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		note_error(c, "script", r);
		rc = ACLM_ERR_DB;
	}
	PQclear(r);
	if (PQenterPipelineMode(c->pg) != 1 && rc == ACLM_OK)
		rc = conn_error(c, "enter pipeline mode");
	take_error(c);
	return rc;
}

/* '?' -> $1..$n outside quotes and comments; NULL when out of memory. */
static char *rewrite_placeholders(const char *sql, int *n_params)
{
	struct aclm_buf b;
	const char *p = sql;
	int n = 0, rc = ACLM_OK;

	aclm_buf_init(&b, 0);
	while (*p != '\0' && rc == ACLM_OK) {
		size_t len = 1;

		if (*p == '\'' || *p == '"') {
			const char *end = strchr(p + 1, *p);
			len = end != NULL ? (size_t)(end - p) + 1 : strlen(p);
		} else if (p[0] == '-' && p[1] == '-') {
			len = strcspn(p, "\n");
		} else if (*p == '?') {
			rc = aclm_buf_printf(&b, "$%d", ++n);
			p++;
			continue;
		}
		rc = aclm_buf_append(&b, p, len);
		p += len;
	}
	*n_params = n;
	if (rc != ACLM_OK) {
		aclm_buf_free(&b);
		return NULL;
	}
	return aclm_buf_steal(&b, NULL);
}

static void stmt_free(struct store_stmt *s)
{
	if (s == NULL)
		return;
	for (int i = 0; i < s->n_params; i++)
		free(s->params[i].heap);
	free(s->params);
	free(s->values);
	free(s->lengths);
	free(s->formats);
	free(s->sql);
	free(s);
}

static int pg_prepare(struct store_conn *c, const char *sql, const char *what,
                      unsigned flags, struct store_stmt **out)
{
	struct store_stmt *s = calloc(1, sizeof(*s));
	int n = 0;

	if (s == NULL || (s->sql = rewrite_placeholders(sql, &n)) == NULL)
		goto nomem;
	s->conn = c;
	s->what = what;
	s->is_stream = (flags & STORE_STMT_STREAM) != 0;
	s->n_params = n;
	if (n > 0) {
		s->params = calloc((size_t)n, sizeof(*s->params));
		s->values = calloc((size_t)n, sizeof(*s->values));
		s->lengths = calloc((size_t)n, sizeof(*s->lengths));
		s->formats = calloc((size_t)n, sizeof(*s->formats));
		if (s->params == NULL || s->values == NULL || s->lengths == NULL ||
		    s->formats == NULL)
			goto nomem;
	}
	if (flags & STORE_STMT_PERSISTENT) {
		/* Synchronously, once per statement and connection: a Parse queued
		 * behind a failing statement would be skipped by the server, and
		 * the cache would keep a statement that does not exist. */
		if (pg_sync(c) != ACLM_OK) {
			stmt_free(s);
			return ACLM_ERR_DB;
		}
		snprintf(s->name, sizeof(s->name), "aclm_%u", ++c->next_name);
		if (PQsendPrepare(c->pg, s->name, s->sql, 0, NULL) != 1) {
			stmt_free(s);
			return conn_error(c, what);
		}
		queue_push(c, PEND_DISCARD, what, NULL);
		if (pg_sync(c) != ACLM_OK) {
			stmt_free(s);
			return ACLM_ERR_DB;
		}
	}
	*out = s;
	return ACLM_OK;
nomem:
	stmt_free(s);
	snprintf(c->err, sizeof(c->err), "%s: out of memory", what);
	return ACLM_ERR_DB;
}

static struct pg_param *param(struct store_stmt *s, int idx)
{
	struct pg_param *p;

	if (idx < 1 || idx > s->n_params) {
		snprintf(s->conn->err, sizeof(s->conn->err), "%s: no parameter %d", s->what, idx);
		return NULL;
	}
	p = &s->params[idx - 1];
	free(p->heap);
	p->heap = NULL;
	s->formats[idx - 1] = 0;
	s->lengths[idx - 1] = 0;
	return p;
}

static int pg_bind_int64(struct store_stmt *s, int idx, int64_t v)
{
	struct pg_param *p = param(s, idx);

	if (p == NULL)
		return ACLM_ERR_DB;
	snprintf(p->num, sizeof(p->num), "%lld", (long long)v);
	s->values[idx - 1] = p->num;
	return ACLM_OK;
}

static int pg_bind_null(struct store_stmt *s, int idx)
{
	if (param(s, idx) == NULL)
		return ACLM_ERR_DB;
	s->values[idx - 1] = NULL;
	return ACLM_OK;
}

static int pg_bind_text(struct store_stmt *s, int idx, const char *v)
{
	struct pg_param *p;

	if (v == NULL)
		return pg_bind_null(s, idx);
	if ((p = param(s, idx)) == NULL)
		return ACLM_ERR_DB;
	if ((p->heap = strdup(v)) == NULL) {
		snprintf(s->conn->err, sizeof(s->conn->err), "%s: out of memory", s->what);
		return ACLM_ERR_DB;
	}
	s->values[idx - 1] = p->heap;
	return ACLM_OK;
}

static int pg_bind_blob(struct store_stmt *s, int idx, const void *v, size_t len)
{
	struct pg_param *p;

	if ((p = param(s, idx)) == NULL)
		return ACLM_ERR_DB;
	if (len > INT32_MAX || (p->heap = malloc(len > 0 ? len : 1)) == NULL) {
		snprintf(s->conn->err, sizeof(s->conn->err), "%s: blob of %zu bytes: out of memory",
		         s->what, len);
		return ACLM_ERR_DB;
	}
	if (len > 0)
		memcpy(p->heap, v, len);
	s->values[idx - 1] = p->heap;
	s->lengths[idx - 1] = (int)len;
	s->formats[idx - 1] = 1;
	return ACLM_OK;
}

static int send_query(struct store_stmt *s)
{
	struct store_conn *c = s->conn;
	int ok;

	if (s->name[0] != '\0')
		ok = PQsendQueryPrepared(c->pg, s->name, s->n_params, s->values, s->lengths,
		                         s->formats, 0);
	else
		ok = PQsendQueryParams(c->pg, s->sql, s->n_params, NULL, s->values, s->lengths,
		                       s->formats, 0);
	return ok == 1 ? ACLM_OK : conn_error(c, s->what);
}

static void clear_results(struct store_stmt *s)
{
	PQclear(s->res);
	s->res = NULL;
	for (size_t i = s->ahead_pos; i < s->n_ahead; i++)
		PQclear(s->ahead[i]);
	free(s->ahead);
	s->ahead = NULL;
	s->n_ahead = s->ahead_pos = s->ahead_cap = 0;
	if (s->blob != NULL) {
		explicit_bzero(s->blob, s->blob_len);
		PQfreemem(s->blob);
		s->blob = NULL;
	}
}

/* Make room in the queue (and leave a streaming statement behind). */
static void before_queueing(struct store_conn *c)
{
	detach(c);
	if (c->q_len >= MAX_PENDING)
		flush(c);
}

static int pg_run(struct store_stmt *s)
{
	struct store_conn *c = s->conn;
	int rc;

	before_queueing(c);
	if ((rc = send_query(s)) != ACLM_OK)
		return rc;
	queue_push(c, PEND_DISCARD, s->what, NULL);
	return ACLM_OK;
}

static int pg_send(struct store_stmt *s)
{
	struct store_conn *c = s->conn;
	int rc;

	before_queueing(c);
	clear_results(s);
	s->failed = false;
	if ((rc = send_query(s)) != ACLM_OK)
		return rc;
	queue_push(c, PEND_OWNED, s->what, s);
	s->started = true;
	s->awaiting = true;
	s->streamed = false;
	return ACLM_OK;
}

/* Send a streaming statement on an idle connection, in single-row mode. */
static int start_stream(struct store_stmt *s)
{
	struct store_conn *c = s->conn;
	int rc;

	if ((rc = pg_sync(c)) != ACLM_OK)
		return rc;
	clear_results(s);
	s->failed = false;
	if ((rc = send_query(s)) != ACLM_OK)
		return rc;
	s->started = true;
	/* Refused (it should not be): the whole result is read instead. */
	s->streamed = PQsetSingleRowMode(c->pg) == 1;
	queue_push(c, PEND_OWNED, s->what, s);
	if ((rc = push_sync(c)) != ACLM_OK)
		return rc;
	if (s->streamed) {
		s->live = true;
		c->stream = s;
	} else {
		s->awaiting = true;
	}
	return ACLM_OK;
}

static int pg_step(struct store_stmt *s)
{
	struct store_conn *c = s->conn;
	int rc;

	if (!s->started) {
		rc = s->is_stream ? start_stream(s) : pg_send(s);
		if (rc != ACLM_OK)
			return rc;
	}
	if (s->awaiting) {
		/* Everything queued so far is this operation's: read it all. */
		flush(c);
		if ((rc = take_error(c)) != ACLM_OK)
			return rc;
	}
	if (!s->streamed) {
		if (s->failed) {
			snprintf(c->err, sizeof(c->err), "%s", s->err);
			return ACLM_ERR_DB;
		}
		if (s->res == NULL)
			return 0;
		s->row++;
		return s->row < PQntuples(s->res) ? 1 : 0;
	}
	PQclear(s->res);
	s->res = NULL;
	s->row = 0;
	if (s->ahead_pos < s->n_ahead) {
		s->res = s->ahead[s->ahead_pos++];
		return 1;
	}
	if (s->live) {
		rc = stream_next(s, &s->res);
		if (rc != 1)
			s->res = NULL;
		if (rc >= 0)
			return rc;
	}
	if (s->failed) {
		snprintf(c->err, sizeof(c->err), "%s", s->err);
		return ACLM_ERR_DB;
	}
	return 0;
}

static bool pg_column_is_null(struct store_stmt *s, int col)
{
	return s->res == NULL || PQgetisnull(s->res, s->row, col);
}

static int64_t pg_column_int64(struct store_stmt *s, int col)
{
	const char *p;
	int64_t v = 0;
	bool neg;

	if (pg_column_is_null(s, col))
		return 0;
	p = PQgetvalue(s->res, s->row, col);
	neg = *p == '-';
	if (neg)
		p++;
	/* Accumulate negatively: INT64_MIN has no positive counterpart. */
	for (; *p >= '0' && *p <= '9'; p++)
		v = v * 10 - (*p - '0');
	return neg ? v : -v;
}

static const char *pg_column_text(struct store_stmt *s, int col)
{
	if (pg_column_is_null(s, col))
		return NULL;
	return PQgetvalue(s->res, s->row, col);
}

static const unsigned char *pg_column_blob(struct store_stmt *s, int col, size_t *len)
{
	*len = 0;
	if (s->blob != NULL) {
		explicit_bzero(s->blob, s->blob_len);
		PQfreemem(s->blob);
		s->blob = NULL;
	}
	if (pg_column_is_null(s, col))
		return NULL;
	s->blob = PQunescapeBytea((const unsigned char *)PQgetvalue(s->res, s->row, col),
	                          &s->blob_len);
	*len = s->blob != NULL ? s->blob_len : 0;
	return s->blob;
}

static void pg_reset(struct store_stmt *s)
{
	PGresult *r;

	/* Rows nobody will read: drop them as they arrive. */
	while (s->live && stream_next(s, &r) == 1)
		PQclear(r);
	if (s->awaiting) {
		/* Sent but never stepped (its operation failed on the way): the
		 * queue must not keep a pointer to it.  The failure, if any, is
		 * the failing operation's, already reported. */
		flush(s->conn);
		take_error(s->conn);
	}
	clear_results(s);
	s->started = false;
	s->awaiting = false;
	s->failed = false;
	s->streamed = false;
	s->live = false;
	for (int i = 0; i < s->n_params; i++) {
		free(s->params[i].heap);
		s->params[i].heap = NULL;
		s->values[i] = NULL;
	}
}

static void pg_finalize(struct store_stmt *s)
{
	if (s == NULL)
		return;
	pg_reset(s);
	stmt_free(s);
}

static const char *pg_errmsg(struct store_conn *c)
{
	return c->err;
}

/* PostgreSQL keeps a failed transaction open (aborted) until it is rolled
 * back; only a lost connection ends it, and then nothing works anyway. */
static bool pg_in_transaction(struct store_conn *c)
{
	return PQstatus(c->pg) == CONNECTION_OK;
}

const struct store_driver store_postgres_driver = {
	.name = "postgres",
	.dialect = STORE_POSTGRES,
	.open = pg_open,
	.close = pg_close,
	.exec = pg_exec,
	.sync = pg_sync,
	.prepare = pg_prepare,
	.bind_int64 = pg_bind_int64,
	.bind_text = pg_bind_text,
	.bind_blob = pg_bind_blob,
	.bind_null = pg_bind_null,
	.step = pg_step,
	.run = pg_run,
	.send = pg_send,
	.column_is_null = pg_column_is_null,
	.column_int64 = pg_column_int64,
	.column_text = pg_column_text,
	.column_blob = pg_column_blob,
	.reset = pg_reset,
	.finalize = pg_finalize,
	.errmsg = pg_errmsg,
	.in_transaction = pg_in_transaction,
};
