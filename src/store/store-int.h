/* Inside the store: the driver interface under store.c and migrations.c.
 *
 * store.c writes every statement once, with '?' placeholders, and runs it
 * through a driver: sqlite.c (libsqlite3) or postgres.c (libpq), which
 * rewrites '?' to $1..$n.  A driver knows nothing about the schema.
 *
 * Contract of the vtable:
 *   - Every function returns 0 (or 1 for step's "a row") or ACLM_ERR_DB and
 *     leaves the backend's message in errmsg(conn); store.c adds where and
 *     which operation.  errmsg stays valid until the next call on the
 *     connection.
 *   - Bound values are copied: the caller may free them after bind_*.
 *   - Statements execute in the order they are started: by run(), send()
 *     or the first step().  run() is for a statement whose rows are not
 *     wanted; send() starts one whose rows step() reads later, after other
 *     statements were started.  A driver may defer both (postgres pipelines
 *     them) and report a failure at the next step(), sync() or exec() on
 *     the connection; sync() waits for every deferred statement.  store.c
 *     syncs (or steps) before it ends a transaction level, so a failure is
 *     reported by the operation that caused it.
 *   - Column values (text, blob) stay valid until the next step, reset or
 *     finalize of that statement; a NULL column reads as NULL / 0.
 *   - Several statements may be active at once (a callback of a listing may
 *     run other queries). */
#ifndef ACLM_STORE_INT_H
#define ACLM_STORE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aclm/store.h"

/* The SQL spoken by a backend where it differs (DDL types, BEGIN IMMEDIATE,
 * catalogue queries, collations, advisory locks). */
enum store_dialect {
	STORE_SQLITE = 0,
	STORE_POSTGRES,
};

/* Statement preparation flags. */
enum {
	/* Kept for the life of the connection (the statement cache):
	 * postgres prepares it on the server. */
	STORE_STMT_PERSISTENT = 1u << 0,
	/* May return many rows: postgres streams it row by row instead of
	 * holding the whole result in memory. */
	STORE_STMT_STREAM = 1u << 1,
};

struct store_conn;  /* defined by each driver */
struct store_stmt;

struct store_driver {
	const char *name;  /* "sqlite", "postgres" */
	enum store_dialect dialect;

	/* *display gets the URL as shown in messages (no password); the
	 * caller frees it.  On failure the message is already recorded with
	 * aclm_error() (no connection to ask). */
	int (*open)(const char *url, const struct aclm_store_opts *opts,
	            struct store_conn **conn, char **display);
	void (*close)(struct store_conn *conn);
	/* Run a script of ';'-separated statements without parameters. */
	int (*exec)(struct store_conn *conn, const char *script);
	int (*sync)(struct store_conn *conn);

	/* what names the statement in messages ("insert certificate"); it
	 * must outlive the statement (a string literal). */
	int (*prepare)(struct store_conn *conn, const char *sql, const char *what,
	               unsigned flags, struct store_stmt **stmt);
	int (*bind_int64)(struct store_stmt *s, int idx, int64_t v);  /* idx from 1 */
	int (*bind_text)(struct store_stmt *s, int idx, const char *v);  /* NULL: SQL NULL */
	int (*bind_blob)(struct store_stmt *s, int idx, const void *v, size_t len);
	int (*bind_null)(struct store_stmt *s, int idx);
	int (*step)(struct store_stmt *s);  /* 1: a row, 0: done, <0: error */
	int (*run)(struct store_stmt *s);
	int (*send)(struct store_stmt *s);
	bool (*column_is_null)(struct store_stmt *s, int col);  /* col from 0 */
	int64_t (*column_int64)(struct store_stmt *s, int col);
	const char *(*column_text)(struct store_stmt *s, int col);
	const unsigned char *(*column_blob)(struct store_stmt *s, int col, size_t *len);
	/* Back to "bound but not run"; abandons any rows not read. */
	void (*reset)(struct store_stmt *s);
	void (*finalize)(struct store_stmt *s);
	const char *(*errmsg)(struct store_conn *conn);
	/* False when the backend ended the transaction on its own after an
	 * error (SQLite does on some I/O errors). */
	bool (*in_transaction)(struct store_conn *conn);
};

extern const struct store_driver store_sqlite_driver;
extern const struct store_driver store_postgres_driver;

/* Bound parameters as a typed array (type-checked, unlike varargs). */
enum store_param_type {
	SP_INT = 0,
	SP_TEXT,  /* NULL pointer binds SQL NULL */
	SP_BLOB,
	SP_NULL,
};

struct store_param {
	enum store_param_type type;
	int64_t i;
	const char *s;
	const void *p;
	size_t len;
};

#define SP_I(v)    { .type = SP_INT, .i = (v) }
#define SP_T(v)    { .type = SP_TEXT, .s = (v) }
#define SP_B(v, n) { .type = SP_BLOB, .p = (v), .len = (n) }
#define SP_N()     { .type = SP_NULL }
#define SP_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* A statement taken from the connection's cache (keyed by the address of
 * the static SQL text) or prepared for one use. */
struct store_query {
	struct store_stmt *stmt;
	int slot;          /* cache slot, -1 for a one-off statement */
	const char *what;
};

#define STORE_CACHE_SLOTS 96

struct store_cached {
	const char *sql;
	struct store_stmt *stmt;
	bool in_use;
};

struct aclm_store {
	const struct store_driver *drv;
	struct store_conn *conn;
	char *display;                /* URL for messages, without password */
	struct store_cached cache[STORE_CACHE_SLOTS];
	int n_cached;

	int depth;                    /* nested aclm_store_begin() levels */
	bool aborted;                 /* the backend ended the outer transaction */

	/* The tail of the event chain, valid while this connection holds the
	 * appenders' lock (until the outer transaction ends or any level
	 * rolls back). */
	bool events_locked;
	int64_t tail_id;
	char tail_hash[65];
};

/* In store.c, shared with migrations.c. */
int store_db_error(struct aclm_store *st, const char *what);
int store_query_open(struct aclm_store *st, struct store_query *q, const char *sql,
                     const char *what, unsigned flags,
                     const struct store_param *p, size_t n);
/* The same for SQL built at run time (never cached: the cache is keyed by
 * the address of static text). */
int store_query_open_once(struct aclm_store *st, struct store_query *q, const char *sql,
                          const char *what, unsigned flags,
                          const struct store_param *p, size_t n);
int store_query_step(struct aclm_store *st, struct store_query *q);
void store_query_close(struct aclm_store *st, struct store_query *q);
int store_run(struct aclm_store *st, const char *sql, const char *what,
              const struct store_param *p, size_t n);
/* Single int64 of the first row: 1 when there was a row, 0 when none. */
int store_int64(struct aclm_store *st, const char *sql, const char *what,
                const struct store_param *p, size_t n, int64_t *out);
int store_exec(struct aclm_store *st, const char *script, const char *what);
/* End the caller's transaction level: commit when rc is ACLM_OK, else roll
 * back keeping the message of the first error; returns rc (or the commit's
 * error). */
int store_end(struct aclm_store *st, int rc);
/* Append the audit event of a change, inside the caller's transaction:
 * detail (a JSON object, taken; NULL for none) gets "actor" (NULL:
 * "system"). */
struct json_t;
int store_audit(struct aclm_store *st, const char *type, const char *subject,
                const char *actor, struct json_t *detail);

/* --- shared by store.c and bulk.c ------------------------------------- */
struct aclm_buf;
struct aclm_cert;
bool store_hex64(const char *in, char out[65]);   /* lower-case, exactly 64 hex digits */
const char *store_text_or_empty(const char *s);
const char *store_level_text(enum aclm_level l);  /* "dv".. or "" */
const char *store_san_type_text(enum aclm_san_type t);
bool store_self_signed(const struct aclm_cert *c);  /* as SELF_SIGNED in SQL */
/* "DNS:a.example,IP:10.0.0.1": the certificates.sans column. */
int store_sans_text(const struct aclm_cert *c, char **out);
/* The listing's display columns, certificates.list_name and list_issuer
 * (store.c explains them): from the stored subject, CN and SAN text, and
 * from the issuer DN and CN.  Each fits in STORE_LIST_MAX bytes. */
#define STORE_LIST_CUT 200
#define STORE_LIST_MAX (STORE_LIST_CUT + sizeof("... (+18446744073709551615)"))
void store_list_name(char out[STORE_LIST_MAX], const char *subject, const char *subject_cn,
                     const char *sans);
void store_list_issuer(char out[STORE_LIST_MAX], const char *issuer, const char *issuer_cn);
/* The list columns of every stored certificate that has none (NULL): at
 * migration 10, and at an open after an older aclm wrote rows (bulk.c).
 * Inside the caller's transaction. */
int store_fill_list_columns(struct aclm_store *st);
/* One int: 1 when some certificate has no list columns yet, else 0. */
extern const char SQL_UNFILLED_LIST_COLUMNS[];
/* The cert_names rows of a certificate, one call each (name lower-case,
 * parent NULL when wildcard queries must not reach it). */
typedef int (*store_name_fn)(void *ctx, const char *name, const char *type,
                             const char *parent);
int store_cert_names(const struct aclm_cert *c, store_name_fn fn, void *ctx);
/* The detail of a "cert.added" event, appended to b. */
int store_cert_added_detail(const struct aclm_cert *c, struct aclm_buf *b);
/* The observation source's column text, or ACLM_ERR_USAGE naming it. */
int store_source_text(enum aclm_source source, const char **out);
/* Take the appenders' lock and read the chain's tail into st->tail_*,
 * inside the caller's transaction (a no-op while it is held). */
int store_events_lock(struct aclm_store *st);
int store_event_hash(const char *prev_hash, int64_t id, int64_t at, const char *type,
                     const char *subject, const char *detail, char out[65]);

/* Advisory lock keys (postgres); arbitrary constants, "aclm" + a number. */
#define STORE_LOCK_MIGRATE "6372935010000001"
#define STORE_LOCK_EVENTS  "6372935010000002"
#define STORE_LOCK_SCHEDULER "6372935010000003"

#endif
