/* The inventory store: the API of store.h and all of its SQL.
 *
 * Every statement is written once with '?' placeholders in portable SQL
 * (ON CONFLICT, RETURNING, BIGINT unix seconds, hex text fingerprints) and
 * run through a driver (store-int.h).  Where the dialects differ (BEGIN
 * IMMEDIATE, collations, advisory locks) the choice is made here, next to
 * the statement.  See docs/internals/store.md for the transaction,
 * issuer-linking and event-chain rules. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "aclm/buf.h"
#include "aclm/err.h"
#include "aclm/str.h"
#include "aclm/timeutil.h"
#include "store-int.h"

#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"
#define EVENT_FIELD_MAX ((size_t)16 << 20)

/* --- statements ------------------------------------------------------ */

static const char SQL_BEGIN[] = "BEGIN";
/* SQLite: take the write lock at once, so two writers never deadlock on
 * the upgrade from a read lock, and event appenders are serialised. */
static const char SQL_BEGIN_IMMEDIATE[] = "BEGIN IMMEDIATE";
static const char SQL_COMMIT[] = "COMMIT";
static const char SQL_ROLLBACK[] = "ROLLBACK";
/* One name for every level: both backends resolve a savepoint name to the
 * most recent savepoint of that name. */
static const char SQL_SAVEPOINT[] = "SAVEPOINT aclm";
static const char SQL_RELEASE[] = "RELEASE SAVEPOINT aclm";
static const char SQL_ROLLBACK_TO[] = "ROLLBACK TO SAVEPOINT aclm";

static const char SQL_INSERT_KEY[] =
	"INSERT INTO keys (spki_sha256, key_type, key_bits, curve) "
	"SELECT ?, ?, CAST(? AS INTEGER), ? "
	"WHERE NOT EXISTS (SELECT 1 FROM keys WHERE spki_sha256 = ?) "
	"ON CONFLICT (spki_sha256) DO NOTHING";  /* as SQL_INSERT_CERT, below */
/* A self-signed certificate, as a condition on a certificates row; the same
 * rule as is_self_signed() below. */
#define SELF_SIGNED "(subject_hash = issuer_hash AND (aki IS NULL OR ski IS NULL OR aki = ski))"
/* The id of the certificate being stored, by its fingerprint: statements
 * queued behind its INSERT cannot be given the id itself. */
#define NEW_CERT_ID "(SELECT id FROM certificates WHERE fingerprint = ?)"

/* The issuer is chosen as the certificate is inserted: a stored certificate
 * whose subject is this one's issuer name and, when both carry key
 * identifiers, whose SKI is this one's AKI; a CA before a non-CA, then the
 * lowest id.  A NULL issuer name (self-signed) finds none. */
/* INSERT ... SELECT ... WHERE NOT EXISTS rather than VALUES: PostgreSQL
 * draws a sequence value for every VALUES row, even one that ON CONFLICT
 * then drops, so re-importing would leave holes and the ids users type
 * would differ between backends.  The integer columns are cast because a
 * bare parameter in a SELECT list is typed text on PostgreSQL.  ON CONFLICT
 * stays for a concurrent writer. */
static const char SQL_INSERT_CERT[] =
	"INSERT INTO certificates (fingerprint, key_id, subject, issuer, subject_cn, issuer_cn, "
	"subject_hash, issuer_hash, serial, not_before, not_after, key_type, key_bits, curve, "
	"sig_alg, level, is_ca, ski, aki, sans, created_at, list_name, list_issuer, issuer_id) "
	"SELECT ?, (SELECT id FROM keys WHERE spki_sha256 = ?), "
	"?, ?, ?, ?, ?, ?, ?, CAST(? AS BIGINT), CAST(? AS BIGINT), ?, CAST(? AS INTEGER), ?, ?, ?, "
	"CAST(? AS INTEGER), ?, ?, ?, CAST(? AS BIGINT), ?, ?, "
	"(SELECT p.id FROM certificates p WHERE p.subject_hash = ? "
	"AND (p.ski IS NULL OR p.ski = COALESCE(?, p.ski)) "
	"ORDER BY p.is_ca DESC, p.id LIMIT 1) "
	"WHERE NOT EXISTS (SELECT 1 FROM certificates WHERE fingerprint = ?) "
	"ON CONFLICT (fingerprint) DO NOTHING RETURNING id";
/* SQLite: the same with VALUES.  An INSERT ... SELECT that reads the table
 * it writes makes SQLite copy its rows into a temporary table first (a
 * pager, zeroed pages) on every execution; a VALUES row with scalar
 * subqueries does not.  SQLite draws no sequence value for a row that ON
 * CONFLICT drops. */
static const char SQL_INSERT_KEY_VALUES[] =
	"INSERT INTO keys (spki_sha256, key_type, key_bits, curve) VALUES (?, ?, ?, ?) "
	"ON CONFLICT (spki_sha256) DO NOTHING";
static const char SQL_INSERT_CERT_LITE[] =
	"INSERT INTO certificates (fingerprint, key_id, subject, issuer, subject_cn, issuer_cn, "
	"subject_hash, issuer_hash, serial, not_before, not_after, key_type, key_bits, curve, "
	"sig_alg, level, is_ca, ski, aki, sans, created_at, list_name, list_issuer, issuer_id) "
	"VALUES (?, (SELECT id FROM keys WHERE spki_sha256 = ?), "
	"?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
	/* The issuer rule of SQL_INSERT_CERT as two minimums: an ORDER BY ...
	 * LIMIT 1 subquery made SQLite build a sorter per execution. */
	"COALESCE((SELECT min(p.id) FROM certificates p WHERE p.subject_hash = ? AND p.is_ca = 1 "
	"AND (p.ski IS NULL OR p.ski = COALESCE(?, p.ski))), "
	"(SELECT min(p.id) FROM certificates p WHERE p.subject_hash = ? "
	"AND (p.ski IS NULL OR p.ski = COALESCE(?, p.ski))))) "
	"ON CONFLICT (fingerprint) DO NOTHING";
/* SQLite gathers RETURNING rows in a temporary table: changes() and the
 * rowid tell the same. */
static const char SQL_INSERTED_ID[] = "SELECT changes(), last_insert_rowid()";
/* The rows that follow a new certificate, given its id (SQLite, which
 * knows it at once). */
static const char SQL_INSERT_DER_ID[] = "INSERT INTO certificate_der (cert_id, der) VALUES (?, ?)";
static const char SQL_INSERT_NAME_ID[] =
	"INSERT INTO cert_names (cert_id, name, type, parent) VALUES (?, ?, ?, ?) "
	"ON CONFLICT DO NOTHING";
static const char SQL_LINK_CHILDREN_ID[] =
	"UPDATE certificates SET issuer_id = ? "
	"WHERE issuer_hash = ? AND issuer_id IS NULL AND id <> ? AND NOT " SELF_SIGNED;
static const char SQL_LINK_CHILDREN_ID_BY_SKI[] =
	"UPDATE certificates SET issuer_id = ? "
	"WHERE issuer_hash = ? AND issuer_id IS NULL AND id <> ? "
	"AND (aki IS NULL OR aki = ?) AND NOT " SELF_SIGNED;
static const char SQL_CERT_ID_BY_FINGERPRINT[] =
	"SELECT id FROM certificates WHERE fingerprint = ?";
static const char SQL_INSERT_DER[] =
	"INSERT INTO certificate_der (cert_id, der) VALUES (" NEW_CERT_ID ", ?) "
	"ON CONFLICT (cert_id) DO NOTHING";
static const char SQL_INSERT_NAME[] =
	"INSERT INTO cert_names (cert_id, name, type, parent) VALUES (" NEW_CERT_ID ", ?, ?, ?) "
	"ON CONFLICT DO NOTHING";
/* Stored certificates the new one issued, that have no issuer yet. */
static const char SQL_LINK_CHILDREN[] =
	"UPDATE certificates SET issuer_id = " NEW_CERT_ID " "
	"WHERE issuer_hash = ? AND issuer_id IS NULL AND fingerprint <> ? AND NOT " SELF_SIGNED;
static const char SQL_LINK_CHILDREN_BY_SKI[] =
	"UPDATE certificates SET issuer_id = " NEW_CERT_ID " "
	"WHERE issuer_hash = ? AND issuer_id IS NULL AND fingerprint <> ? "
	"AND (aki IS NULL OR aki = ?) AND NOT " SELF_SIGNED;

static const char SQL_PUT_PRIVATE_KEY[] =
	"UPDATE keys SET private_key = ?, private_key_added_at = ? "
	"WHERE spki_sha256 = ? AND private_key IS NULL RETURNING id";
static const char SQL_KEY_ID[] = "SELECT id FROM keys WHERE spki_sha256 = ?";
static const char SQL_GET_PRIVATE_KEY[] =
	"SELECT private_key FROM keys WHERE spki_sha256 = ? AND private_key IS NOT NULL";

static const char SQL_UPSERT_ENDPOINT[] =
	"INSERT INTO endpoints (host, ip, port, sni, first_seen, last_seen) "
	"VALUES (?, ?, ?, '', ?, ?) "
	"ON CONFLICT (host, ip, port, sni) DO UPDATE SET "
	"first_seen = CASE WHEN excluded.first_seen < endpoints.first_seen "
	"THEN excluded.first_seen ELSE endpoints.first_seen END, "
	"last_seen = CASE WHEN excluded.last_seen > endpoints.last_seen "
	"THEN excluded.last_seen ELSE endpoints.last_seen END "
	"RETURNING id";
static const char SQL_INSERT_OBSERVATION[] =
	"INSERT INTO observations (cert_id, endpoint_id, source, location, seen_at) "
	"VALUES (?, ?, ?, ?, ?)";
/* first_seen/last_seen live on the certificate row so that listings never
 * aggregate observations. */
static const char SQL_CERT_SEEN[] =
	"UPDATE certificates SET "
	"first_seen = CASE WHEN first_seen IS NULL OR first_seen > ? THEN ? ELSE first_seen END, "
	"last_seen = CASE WHEN last_seen IS NULL OR last_seen < ? THEN ? ELSE last_seen END "
	"WHERE id = ?";

/* The row of struct aclm_cert_row, in its order (see read_cert_row).  The
 * key columns come from one join, which the planner makes a hash of a
 * small keys table or an index probe of a large one.  (Two scalar
 * subqueries, as this was, cost PostgreSQL two subplan runs a row: 1.3 s
 * instead of 0.3 s for 70,000 rows out of 1M.) */
#define CERT_SELECT \
	"SELECT c.id, c.fingerprint, k.spki_sha256, " \
	"c.subject, c.issuer, c.subject_cn, c.issuer_cn, c.serial, c.not_before, c.not_after, " \
	"c.key_type, c.key_bits, c.curve, c.sig_alg, c.level, c.sans, c.is_ca, c.issuer_id, " \
	"CASE WHEN k.private_key IS NULL THEN 0 ELSE 1 END, c.first_seen, c.last_seen, " \
	"c.list_name, c.list_issuer " \
	"FROM certificates c LEFT JOIN keys k ON k.id = c.key_id"

/* The same row shape, for summaries: only the columns of the listing index
 * (certificates_listing), so that a listing by expiry reads that index and
 * no table row. */
#define CERT_SUMMARY_SELECT \
	"SELECT c.id, '', '', '', '', NULL, NULL, '', " \
	"0, c.not_after, c.key_type, c.key_bits, NULL, '', c.level, '', " \
	"0, 0, 0, 0, 0, c.list_name, c.list_issuer FROM certificates c"

/* 1 when a row has no list columns yet (certificates_list_unfilled). */
const char SQL_UNFILLED_LIST_COLUMNS[] =
	"SELECT COUNT(*) FROM (SELECT 1 FROM certificates WHERE list_name IS NULL LIMIT 1) AS x";

static const char SQL_GET_CERT[] = CERT_SELECT " WHERE c.id = ?";
static const char SQL_SAME_KEY[] =
	CERT_SELECT " WHERE c.key_id = (SELECT key_id FROM certificates WHERE id = ?) "
	"AND c.id <> ? ORDER BY c.id";
static const char SQL_CERT_EXISTS[] = "SELECT id FROM certificates WHERE id = ?";
/* Prefix lookup as a range on the unique index: the first two fingerprints
 * at or after the prefix tell "none", "one" and "several" apart. */
static const char SQL_FIND_PREFIX[] =
	"SELECT id, fingerprint FROM certificates WHERE fingerprint >= ? "
	"ORDER BY fingerprint LIMIT 2";
static const char SQL_GET_DER[] = "SELECT der FROM certificate_der WHERE cert_id = ?";
static const char SQL_OBSERVATIONS[] =
	"SELECT id, cert_id, source, location, seen_at FROM observations WHERE cert_id = ? "
	"ORDER BY seen_at DESC, id DESC";

static const char SQL_EVENTS_LOCK[] = "SELECT pg_advisory_xact_lock(" STORE_LOCK_EVENTS ")";
static const char SQL_EVENT_TAIL[] = "SELECT id, hash FROM events ORDER BY id DESC LIMIT 1";
static const char SQL_INSERT_EVENT[] =
	"INSERT INTO events (id, at, type, subject, detail, prev_hash, hash) "
	"VALUES (?, ?, ?, ?, ?, ?, ?)";
static const char SQL_EVENTS_ALL[] =
	"SELECT id, at, type, subject, detail, prev_hash, hash FROM events ORDER BY id";

static const char SQL_STATS[] =
	"SELECT (SELECT COUNT(*) FROM certificates), (SELECT COUNT(*) FROM keys), "
	"(SELECT COUNT(*) FROM keys WHERE private_key IS NOT NULL), "
	"(SELECT COUNT(*) FROM observations), (SELECT COUNT(*) FROM endpoints), "
	"(SELECT COUNT(*) FROM managed_certificates), (SELECT COUNT(*) FROM events)";

/* --- names stored in the database (part of the schema) ---------------- */

const char *aclm_source_name(enum aclm_source s)
{
	switch (s) {
	case ACLM_SRC_IMPORT: return "import";
	case ACLM_SRC_SCAN: return "scan";
	case ACLM_SRC_ACME: return "acme";
	case ACLM_SRC_CA: return "ca";
	}
	return NULL;
}

const char *store_level_text(enum aclm_level l)
{
	switch (l) {
	case ACLM_LEVEL_DV: return "dv";
	case ACLM_LEVEL_OV: return "ov";
	case ACLM_LEVEL_IV: return "iv";
	case ACLM_LEVEL_EV: return "ev";
	case ACLM_LEVEL_NONE: break;
	}
	return "";
}

const char *store_san_type_text(enum aclm_san_type t)
{
	switch (t) {
	case ACLM_SAN_DNS: return "DNS";
	case ACLM_SAN_IP: return "IP";
	case ACLM_SAN_EMAIL: return "email";
	case ACLM_SAN_URI: return "URI";
	}
	return "other";
}

/* --- queries through the driver -------------------------------------- */

int store_db_error(struct aclm_store *st, const char *what)
{
	/* Writes after this would not be in the caller's transaction. */
	if (st->depth > 0 && !st->drv->in_transaction(st->conn))
		st->aborted = true;
	if (what != NULL)
		return aclm_error(ACLM_ERR_DB, "%s: %s: %s", st->display, what,
		                  st->drv->errmsg(st->conn));
	return aclm_error(ACLM_ERR_DB, "%s: %s", st->display, st->drv->errmsg(st->conn));
}

static int bind_params(struct aclm_store *st, struct store_stmt *s,
                       const struct store_param *p, size_t n)
{
	const struct store_driver *d = st->drv;
	int rc = ACLM_OK;

	for (size_t i = 0; i < n && rc == ACLM_OK; i++) {
		int idx = (int)i + 1;
		switch (p[i].type) {
		case SP_INT: rc = d->bind_int64(s, idx, p[i].i); break;
		case SP_TEXT: rc = d->bind_text(s, idx, p[i].s); break;
		case SP_BLOB: rc = d->bind_blob(s, idx, p[i].p, p[i].len); break;
		case SP_NULL: rc = d->bind_null(s, idx); break;
		}
	}
	return rc != ACLM_OK ? store_db_error(st, NULL) : ACLM_OK;
}

/* Take sql's statement from the cache (cache: sql is static text), or
 * prepare it for this one use. */
static int query_open(struct aclm_store *st, struct store_query *q, const char *sql,
                      const char *what, unsigned flags, const struct store_param *p,
                      size_t n, bool cache)
{
	int slot = -1, rc;

	q->stmt = NULL;
	q->slot = -1;
	q->what = what;
	if (st->aborted)
		return aclm_error(ACLM_ERR_DB, "%s: %s: the transaction was rolled back after an "
		                  "earlier error; roll back to the outermost level", st->display, what);
	if (cache) {
		for (int i = 0; i < st->n_cached; i++) {
			if (st->cache[i].sql == sql) {
				slot = st->cache[i].in_use ? -1 : i;
				goto found;
			}
		}
		if (st->n_cached < STORE_CACHE_SLOTS) {
			if (st->drv->prepare(st->conn, sql, what, flags | STORE_STMT_PERSISTENT,
			                     &st->cache[st->n_cached].stmt) != ACLM_OK)
				return store_db_error(st, NULL);
			st->cache[st->n_cached].sql = sql;
			slot = st->n_cached++;
		}
	}
found:
	/* slot < 0 also when the cached statement is in use already (a
	 * callback re-entered the store): this use gets its own statement. */
	if (slot >= 0) {
		st->cache[slot].in_use = true;
		q->stmt = st->cache[slot].stmt;
		q->slot = slot;
	} else if (st->drv->prepare(st->conn, sql, what, flags, &q->stmt) != ACLM_OK) {
		return store_db_error(st, NULL);
	}
	if ((rc = bind_params(st, q->stmt, p, n)) != ACLM_OK)
		store_query_close(st, q);
	return rc;
}

int store_query_open(struct aclm_store *st, struct store_query *q, const char *sql,
                     const char *what, unsigned flags, const struct store_param *p, size_t n)
{
	return query_open(st, q, sql, what, flags, p, n, true);
}

int store_query_open_once(struct aclm_store *st, struct store_query *q, const char *sql,
                          const char *what, unsigned flags, const struct store_param *p,
                          size_t n)
{
	return query_open(st, q, sql, what, flags, p, n, false);
}

int store_query_step(struct aclm_store *st, struct store_query *q)
{
	int rc = st->drv->step(q->stmt);

	return rc < 0 ? store_db_error(st, NULL) : rc;
}

void store_query_close(struct aclm_store *st, struct store_query *q)
{
	if (q->stmt == NULL)
		return;
	if (q->slot >= 0) {
		st->drv->reset(q->stmt);
		st->cache[q->slot].in_use = false;
	} else {
		st->drv->finalize(q->stmt);
	}
	q->stmt = NULL;
	q->slot = -1;
}

int store_run(struct aclm_store *st, const char *sql, const char *what,
              const struct store_param *p, size_t n)
{
	struct store_query q;
	int rc;

	if ((rc = store_query_open(st, &q, sql, what, 0, p, n)) != ACLM_OK)
		return rc;
	if (st->drv->run(q.stmt) != ACLM_OK)
		rc = store_db_error(st, NULL);
	store_query_close(st, &q);
	/* Outside a transaction the statement is its own: it must have run
	 * (PostgreSQL pipelines it otherwise) before the caller goes on or
	 * the process exits. */
	if (rc == ACLM_OK && st->depth == 0 && st->drv->sync(st->conn) != ACLM_OK)
		rc = store_db_error(st, NULL);
	return rc;
}

int store_int64(struct aclm_store *st, const char *sql, const char *what,
                const struct store_param *p, size_t n, int64_t *out)
{
	struct store_query q;
	int rc;

	if ((rc = store_query_open(st, &q, sql, what, 0, p, n)) != ACLM_OK)
		return rc;
	rc = store_query_step(st, &q);
	if (rc == 1)
		*out = st->drv->column_int64(q.stmt, 0);
	store_query_close(st, &q);
	return rc;
}

int store_end(struct aclm_store *st, int rc)
{
	char saved[1024];

	if (rc == ACLM_OK)
		return aclm_store_commit(st);
	snprintf(saved, sizeof(saved), "%s", aclm_errmsg());
	aclm_store_rollback(st);
	aclm_error(rc, "%s", saved);
	return rc;
}

int store_audit(struct aclm_store *st, const char *type, const char *subject,
                const char *actor, json_t *detail)
{
	json_t *d = detail != NULL ? detail : json_object();
	char *text;
	int rc;

	if (d == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	json_object_set_new(d, "actor", json_string(actor != NULL ? actor : "system"));
	text = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(d);
	if (text == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	rc = aclm_store_append_event(st, type, subject, text);
	free(text);
	return rc;
}

int store_exec(struct aclm_store *st, const char *script, const char *what)
{
	if (st->aborted)
		return aclm_error(ACLM_ERR_DB, "%s: %s: the transaction was rolled back after an "
		                  "earlier error", st->display, what);
	if (st->drv->exec(st->conn, script) != ACLM_OK)
		return store_db_error(st, what);
	return ACLM_OK;
}

/* Wait for deferred statements; their failure is reported as `what`'s. */
static int sync_conn(struct aclm_store *st, const char *what)
{
	if (st->drv->sync(st->conn) != ACLM_OK)
		return store_db_error(st, what);
	return ACLM_OK;
}

/* --- opening ---------------------------------------------------------- */

static const struct store_driver *driver_for(const char *url)
{
	if (aclm_str_has_prefix(url, "postgres://") || aclm_str_has_prefix(url, "postgresql://"))
		return &store_postgres_driver;
	return &store_sqlite_driver;
}

int aclm_store_open(const char *url, const struct aclm_store_opts *opts, struct aclm_store **out)
{
	struct aclm_store *st = NULL;
	int rc;

	*out = NULL;
	if (url == NULL || *url == '\0')
		return aclm_error(ACLM_ERR_USAGE, "no database URL (store.url or --db)");
	st = calloc(1, sizeof(*st));
	if (st == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory opening %s", url);
	st->drv = driver_for(url);
	if ((rc = st->drv->open(url, opts, &st->conn, &st->display)) != ACLM_OK) {
		free(st);
		return rc;
	}
	if (opts == NULL || !opts->no_migrate) {
		if ((rc = aclm_store_migrate(st, NULL, NULL)) != ACLM_OK) {
			aclm_store_close(st);
			return rc;
		}
	}
	*out = st;
	return ACLM_OK;
}

void aclm_store_close(struct aclm_store *st)
{
	if (st == NULL)
		return;
	/* An open transaction is rolled back by closing the connection. */
	for (int i = 0; i < st->n_cached; i++)
		st->drv->finalize(st->cache[i].stmt);
	st->drv->close(st->conn);
	free(st->display);
	free(st);
}

const char *aclm_store_backend(const struct aclm_store *st)
{
	return st->drv->name;
}

/* --- transactions ----------------------------------------------------- */

/* The appenders' lock and the cached chain tail end with the level that
 * took them; simplest correct rule: forget both on any rollback and at the
 * end of the outer transaction. */
static void forget_event_tail(struct aclm_store *st)
{
	st->events_locked = false;
	st->tail_id = 0;
	st->tail_hash[0] = '\0';
}

int aclm_store_begin(struct aclm_store *st)
{
	const char *sql;
	int rc;

	if (st->depth == 0) {
		st->aborted = false;
		sql = st->drv->dialect == STORE_SQLITE ? SQL_BEGIN_IMMEDIATE : SQL_BEGIN;
		rc = store_run(st, sql, "begin transaction", NULL, 0);
	} else {
		rc = store_run(st, SQL_SAVEPOINT, "begin savepoint", NULL, 0);
	}
	if (rc == ACLM_OK)
		st->depth++;
	return rc;
}

/* Undo the innermost level.  Deferred statements are waited for first: a
 * failed one would make the server skip the rollback. */
static int rollback_level(struct aclm_store *st)
{
	int rc = ACLM_OK;

	forget_event_tail(st);
	st->drv->sync(st->conn);
	if (st->depth == 1) {
		st->depth = 0;
		if (st->aborted) {
			st->aborted = false;
			/* SQLite may have ended it already; nothing to undo then. */
			st->drv->exec(st->conn, SQL_ROLLBACK);
			return ACLM_OK;
		}
		if ((rc = store_run(st, SQL_ROLLBACK, "roll back transaction", NULL, 0)) == ACLM_OK)
			rc = sync_conn(st, "roll back transaction");
		return rc;
	}
	st->depth--;
	if (st->aborted)
		return ACLM_OK;
	if ((rc = store_run(st, SQL_ROLLBACK_TO, "roll back savepoint", NULL, 0)) == ACLM_OK &&
	    (rc = store_run(st, SQL_RELEASE, "roll back savepoint", NULL, 0)) == ACLM_OK)
		rc = sync_conn(st, "roll back savepoint");
	if (rc != ACLM_OK)
		st->aborted = true;  /* the savepoint is gone: so is the transaction */
	return rc;
}

int aclm_store_rollback(struct aclm_store *st)
{
	if (st->depth == 0)
		return aclm_error(ACLM_ERR_USAGE, "%s: rollback without a transaction", st->display);
	return rollback_level(st);
}

int aclm_store_commit(struct aclm_store *st)
{
	char saved[1024];
	int rc;

	if (st->depth == 0)
		return aclm_error(ACLM_ERR_USAGE, "%s: commit without a transaction", st->display);
	if (st->aborted) {
		rc = aclm_error(ACLM_ERR_DB, "%s: commit: the transaction was rolled back after an "
		                "earlier error", st->display);
		aclm_strlcpy(saved, aclm_errmsg(), sizeof(saved));
		rollback_level(st);
		return aclm_error(rc, "%s", saved);
	}
	/* A deferred statement that failed fails the commit of its level. */
	if ((rc = sync_conn(st, "commit")) == ACLM_OK) {
		if (st->depth == 1) {
			if ((rc = store_run(st, SQL_COMMIT, "commit", NULL, 0)) == ACLM_OK)
				rc = sync_conn(st, "commit");
			if (rc == ACLM_OK) {
				st->depth = 0;
				forget_event_tail(st);
				return ACLM_OK;
			}
		} else {
			/* Nothing of this level is pending now.  The RELEASE may wait
			 * for the next statement (postgres): it cannot fail on a
			 * healthy transaction, and the outer COMMIT waits for it. */
			if ((rc = store_run(st, SQL_RELEASE, "release savepoint", NULL, 0)) == ACLM_OK) {
				st->depth--;
				return ACLM_OK;
			}
		}
	}
	/* A failed commit undoes its level, as COMMIT does in SQL. */
	aclm_strlcpy(saved, aclm_errmsg(), sizeof(saved));
	rollback_level(st);
	return aclm_error(rc, "%s", saved);
}

/* --- events ------------------------------------------------------------ */

static int put_field(struct aclm_buf *b, const char *v)
{
	unsigned char len[4];
	size_t n;

	if (v == NULL) {
		memset(len, 0xff, sizeof(len));
		return aclm_buf_append(b, len, sizeof(len));
	}
	n = strlen(v);
	if (n > EVENT_FIELD_MAX)
		return aclm_error(ACLM_ERR_TOOBIG, "event field of %zu bytes (limit %zu)",
		                  n, EVENT_FIELD_MAX);
	len[0] = (unsigned char)(n >> 24);
	len[1] = (unsigned char)(n >> 16);
	len[2] = (unsigned char)(n >> 8);
	len[3] = (unsigned char)n;
	if (aclm_buf_append(b, len, sizeof(len)) != ACLM_OK)
		return ACLM_ERR_NOMEM;
	return aclm_buf_append(b, v, n);
}

/* hash = SHA-256 over the six fields, each as a 4-byte big-endian length
 * and its bytes (FF FF FF FF alone for NULL); numbers as decimal text.
 * The encoding is documented in docs/internals/store.md: keep both in step. */
int store_event_hash(const char *prev_hash, int64_t id, int64_t at, const char *type,
                      const char *subject, const char *detail, char out[65])
{
	struct aclm_buf b;
	unsigned char md[32];
	char id_text[24], at_text[24];
	int rc;

	snprintf(id_text, sizeof(id_text), "%lld", (long long)id);
	snprintf(at_text, sizeof(at_text), "%lld", (long long)at);
	aclm_buf_init(&b, EVENT_FIELD_MAX * 4);
	if ((rc = put_field(&b, prev_hash)) != ACLM_OK || (rc = put_field(&b, id_text)) != ACLM_OK ||
	    (rc = put_field(&b, at_text)) != ACLM_OK || (rc = put_field(&b, type)) != ACLM_OK ||
	    (rc = put_field(&b, subject)) != ACLM_OK || (rc = put_field(&b, detail)) != ACLM_OK)
		goto out;
	if (EVP_Digest(b.data, b.len, md, NULL, EVP_sha256(), NULL) != 1) {
		rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "SHA-256 of an event");
		goto out;
	}
	aclm_hex_encode(md, sizeof(md), out);
out:
	aclm_buf_free(&b);
	return rc;
}

/* Append inside the caller's transaction.  Appenders are serialised by the
 * write lock (SQLite, BEGIN IMMEDIATE) or an advisory lock held to the end
 * of the transaction (PostgreSQL); the tail is then cached until the
 * transaction ends or a level rolls back. */
int store_events_lock(struct aclm_store *st)
{
	struct store_query q;
	int rc;

	if (!st->events_locked) {
		if (st->drv->dialect == STORE_POSTGRES &&
		    (rc = store_run(st, SQL_EVENTS_LOCK, "lock the event log", NULL, 0)) != ACLM_OK)
			return rc;
		if ((rc = store_query_open(st, &q, SQL_EVENT_TAIL, "read the event log tail", 0,
		                           NULL, 0)) != ACLM_OK)
			return rc;
		rc = store_query_step(st, &q);
		if (rc == 1) {
			const char *h = st->drv->column_text(q.stmt, 1);
			st->tail_id = st->drv->column_int64(q.stmt, 0);
			aclm_strlcpy(st->tail_hash, h != NULL ? h : "", sizeof(st->tail_hash));
		} else if (rc == 0) {
			st->tail_id = 0;
			aclm_strlcpy(st->tail_hash, ZERO_HASH, sizeof(st->tail_hash));
		}
		store_query_close(st, &q);
		if (rc < 0)
			return rc;
		st->events_locked = true;
	}
	return ACLM_OK;
}

static int append_event(struct aclm_store *st, const char *type, const char *subject,
                        const char *detail)
{
	char hash[65];
	int64_t id, at = aclm_now();
	int rc;

	if ((rc = store_events_lock(st)) != ACLM_OK)
		return rc;
	id = st->tail_id + 1;
	if ((rc = store_event_hash(st->tail_hash, id, at, type, subject, detail, hash)) != ACLM_OK)
		return rc;
	{
		const struct store_param p[] = {
			SP_I(id), SP_I(at), SP_T(type), SP_T(subject), SP_T(detail),
			SP_T(st->tail_hash), SP_T(hash),
		};
		if ((rc = store_run(st, SQL_INSERT_EVENT, "insert event", p, SP_COUNT(p))) != ACLM_OK)
			return rc;
	}
	st->tail_id = id;
	aclm_strlcpy(st->tail_hash, hash, sizeof(st->tail_hash));
	return ACLM_OK;
}

int aclm_store_append_event(struct aclm_store *st, const char *type, const char *subject,
                            const char *detail_json)
{
	int rc;

	if (type == NULL || *type == '\0')
		return aclm_error(ACLM_ERR_USAGE, "an event needs a type");
	if ((rc = aclm_store_begin(st)) != ACLM_OK)
		return rc;
	if ((rc = append_event(st, type, subject, detail_json)) != ACLM_OK) {
		aclm_store_rollback(st);
		return rc;
	}
	return aclm_store_commit(st);
}

int aclm_store_verify_events(struct aclm_store *st, int64_t *n_events, int64_t *first_bad_id)
{
	const struct store_driver *d = st->drv;
	struct store_query q;
	char prev[65] = ZERO_HASH, hash[65];
	int64_t n = 0, bad = 0;
	int rc;

	if ((rc = store_query_open(st, &q, SQL_EVENTS_ALL, "read the event log",
	                           STORE_STMT_STREAM, NULL, 0)) != ACLM_OK)
		return rc;
	while ((rc = store_query_step(st, &q)) == 1) {
		int64_t id = d->column_int64(q.stmt, 0);
		const char *row_prev = d->column_text(q.stmt, 5);
		const char *row_hash = d->column_text(q.stmt, 6);

		n++;
		if (bad == 0) {
			rc = store_event_hash(row_prev != NULL ? row_prev : "", id, d->column_int64(q.stmt, 1),
			                d->column_text(q.stmt, 2), d->column_text(q.stmt, 3),
			                d->column_text(q.stmt, 4), hash);
			if (rc != ACLM_OK)
				break;
			if (row_prev == NULL || row_hash == NULL || strcmp(row_prev, prev) != 0 ||
			    strcmp(row_hash, hash) != 0)
				bad = id;
		}
		aclm_strlcpy(prev, row_hash != NULL ? row_hash : "", sizeof(prev));
	}
	store_query_close(st, &q);
	if (rc < 0)
		return rc;
	*n_events = n;
	*first_bad_id = bad;
	return ACLM_OK;
}

/* Stored hash prefix -> id, to find where a moved record came from. */
struct hash_id {
	uint64_t prefix;
	int64_t id;
};

static uint64_t hash_prefix(const char *hex)
{
	char first[17];

	if (hex == NULL)
		return 0;
	aclm_strlcpy(first, hex, sizeof(first));
	return strtoull(first, NULL, 16);
}

static int cmp_hash_id(const void *a, const void *b)
{
	const struct hash_id *x = a, *y = b;

	return x->prefix < y->prefix ? -1 : x->prefix > y->prefix;
}

static int64_t id_of_hash(const struct hash_id *map, size_t n, const char *hex)
{
	struct hash_id key = { .prefix = hash_prefix(hex), .id = 0 };
	const struct hash_id *hit;

	if (hex == NULL || n == 0)
		return 0;
	hit = bsearch(&key, map, n, sizeof(*map), cmp_hash_id);
	return hit != NULL ? hit->id : 0;
}

static const char SQL_EVENT_IDS_HASHES[] = "SELECT id, hash FROM events ORDER BY id";

/* Pass 1 maps every stored hash to its row; pass 2 recomputes each row and,
 * when a row's contents fail under its own id, tries the id that follows the
 * row its prev_hash names: a match there means the record was moved. */
int aclm_store_audit_verify(struct aclm_store *st, aclm_audit_issue_fn fn, void *ctx,
                            int64_t *n_events, int64_t *head_id, char head_hash[65])
{
	const struct store_driver *d = st->drv;
	struct store_query q = { .stmt = NULL, .slot = -1 };
	struct hash_id *map = NULL;
	size_t n_map = 0, cap = 0;
	char prev[65] = ZERO_HASH, hash[65];
	int64_t n = 0, last_id = 0;
	bool prev_reported = false;
	int rc;

	*n_events = 0;
	*head_id = 0;
	head_hash[0] = '\0';
	if ((rc = store_query_open(st, &q, SQL_EVENT_IDS_HASHES, "read the event log",
	                           STORE_STMT_STREAM, NULL, 0)) != ACLM_OK)
		return rc;
	while ((rc = store_query_step(st, &q)) == 1) {
		if (n_map == cap) {
			size_t ncap = cap ? cap * 2 : 1024;
			struct hash_id *m = realloc(map, ncap * sizeof(*m));
			if (m == NULL) {
				rc = aclm_error(ACLM_ERR_NOMEM, "out of memory reading the event log");
				break;
			}
			map = m;
			cap = ncap;
		}
		map[n_map].id = d->column_int64(q.stmt, 0);
		map[n_map].prefix = hash_prefix(d->column_text(q.stmt, 1));
		n_map++;
	}
	store_query_close(st, &q);
	if (rc < 0)
		goto out;
	if (n_map > 1)
		qsort(map, n_map, sizeof(*map), cmp_hash_id);

	if ((rc = store_query_open(st, &q, SQL_EVENTS_ALL, "read the event log",
	                           STORE_STMT_STREAM, NULL, 0)) != ACLM_OK)
		goto out;
	while ((rc = store_query_step(st, &q)) == 1) {
		int64_t id = d->column_int64(q.stmt, 0), at = d->column_int64(q.stmt, 1);
		const char *type = d->column_text(q.stmt, 2), *subject = d->column_text(q.stmt, 3);
		const char *detail = d->column_text(q.stmt, 4);
		const char *row_prev = d->column_text(q.stmt, 5), *row_hash = d->column_text(q.stmt, 6);
		struct aclm_audit_issue issue = { .problem = ACLM_AUDIT_EDITED, .id = id };
		bool reported = false;

		n++;
		if (id != last_id + 1) {
			issue.problem = ACLM_AUDIT_DELETED;
			issue.id = last_id + 1;
			issue.last = id - 1;
			if ((rc = fn(ctx, &issue)) != ACLM_OK)
				break;
			issue.id = id;
			reported = true;
		}
		rc = store_event_hash(row_prev != NULL ? row_prev : "", id, at, type, subject, detail, hash);
		if (rc != ACLM_OK)
			break;
		if (row_hash == NULL || strcmp(row_hash, hash) != 0) {
			int64_t before = id_of_hash(map, n_map, row_prev);
			char moved[65];
			issue.problem = ACLM_AUDIT_EDITED;
			if (row_hash != NULL && before != 0 && before + 1 != id &&
			    store_event_hash(row_prev, before + 1, at, type, subject, detail, moved) == ACLM_OK &&
			    strcmp(row_hash, moved) == 0) {
				issue.problem = ACLM_AUDIT_REORDERED;
				issue.was = before + 1;
			}
			if ((rc = fn(ctx, &issue)) != ACLM_OK)
				break;
			reported = true;
		} else if (!reported && !prev_reported &&
		           (row_prev == NULL || strcmp(row_prev, prev) != 0)) {
			issue.problem = ACLM_AUDIT_RELINKED;
			if ((rc = fn(ctx, &issue)) != ACLM_OK)
				break;
			reported = true;
		}
		prev_reported = reported;
		aclm_strlcpy(prev, row_hash != NULL ? row_hash : "", sizeof(prev));
		last_id = id;
	}
	store_query_close(st, &q);
	if (rc < 0)
		goto out;
	rc = ACLM_OK;
	*n_events = n;
	*head_id = last_id;
	aclm_strlcpy(head_hash, n > 0 ? prev : "", 65);
out:
	free(map);
	return rc;
}

static const char SQL_EVENT_HASH[] = "SELECT hash FROM events WHERE id = ?";

int aclm_store_event_hash(struct aclm_store *st, int64_t id, char hash[65])
{
	const struct store_param p[] = { SP_I(id) };
	struct store_query q;
	int rc;

	if ((rc = store_query_open(st, &q, SQL_EVENT_HASH, "read an event", 0, p, 1)) != ACLM_OK)
		return rc;
	rc = store_query_step(st, &q);
	if (rc == 1) {
		const char *h = st->drv->column_text(q.stmt, 0);
		aclm_strlcpy(hash, h != NULL ? h : "", 65);
		rc = ACLM_OK;
	} else if (rc == 0) {
		rc = aclm_error(ACLM_ERR_NOTFOUND, "no event %lld", (long long)id);
	}
	store_query_close(st, &q);
	return rc;
}

static const char SQL_EVENTS_SINCE[] =
	"SELECT id, at, type, subject, detail, prev_hash, hash FROM events "
	"WHERE at >= ? AND id > ? ORDER BY id";
static const char SQL_EVENTS_SINCE_LIMIT[] =
	"SELECT id, at, type, subject, detail, prev_hash, hash FROM events "
	"WHERE at >= ? AND id > ? ORDER BY id LIMIT ?";

static const char SQL_EVENTS_ABOUT[] =
	"SELECT id, at, type, subject, detail, prev_hash, hash FROM events "
	"WHERE subject = ? ORDER BY id DESC LIMIT ?";

/* Calls fn for each event row of an open query (the columns of
 * SQL_EVENTS_*), then closes it. */
static int walk_events(struct aclm_store *st, struct store_query *q, aclm_event_fn fn,
                       void *ctx)
{
	const struct store_driver *d = st->drv;
	int rc;

	while ((rc = store_query_step(st, q)) == 1) {
		struct aclm_event_row r = {
			.id = d->column_int64(q->stmt, 0), .at = d->column_int64(q->stmt, 1),
			.type = d->column_text(q->stmt, 2), .subject = d->column_text(q->stmt, 3),
			.detail = d->column_text(q->stmt, 4), .prev_hash = d->column_text(q->stmt, 5),
			.hash = d->column_text(q->stmt, 6),
		};
		if ((rc = fn(ctx, &r)) != ACLM_OK)
			break;
	}
	store_query_close(st, q);
	return rc < 0 ? rc : ACLM_OK;
}

int aclm_store_list_events_about(struct aclm_store *st, const char *subject, int64_t limit,
                                 aclm_event_fn fn, void *ctx)
{
	const struct store_param p[] = { SP_T(subject), SP_I(limit > 0 ? limit : INT64_MAX / 2) };
	struct store_query q;
	int rc;

	if ((rc = store_query_open(st, &q, SQL_EVENTS_ABOUT, "list events", 0, p, 2)) != ACLM_OK)
		return rc;
	return walk_events(st, &q, fn, ctx);
}

int aclm_store_list_events(struct aclm_store *st, int64_t since, int64_t after_id,
                           int64_t limit, aclm_event_fn fn, void *ctx)
{
	const struct store_param p[] = { SP_I(since), SP_I(after_id), SP_I(limit) };
	struct store_query q;
	int rc;

	rc = store_query_open(st, &q, limit > 0 ? SQL_EVENTS_SINCE_LIMIT : SQL_EVENTS_SINCE,
	                      "list events", STORE_STMT_STREAM, p, limit > 0 ? 3 : 2);
	if (rc != ACLM_OK)
		return rc;
	return walk_events(st, &q, fn, ctx);
}

/* --- certificates ------------------------------------------------------ */

/* Lower-case hex of exactly 64 digits, or false. */
bool store_hex64(const char *in, char out[65])
{
	size_t i;

	for (i = 0; i < 64; i++) {
		char ch = in[i];
		if (ch >= 'A' && ch <= 'F')
			ch = (char)(ch - 'A' + 'a');
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
			return false;
		out[i] = ch;
	}
	out[64] = '\0';
	return in[64] == '\0';
}

static bool is_ip(const char *s)
{
	unsigned char addr[16];

	return inet_pton(AF_INET, s, addr) == 1 || inet_pton(AF_INET6, s, addr) == 1;
}

/* A CN worth searching by: a host name (or wildcard) with a dot, or an IP
 * address; not "Example Root CA". */
static bool cn_is_name(const char *cn)
{
	size_t n = strlen(cn);
	bool dot = false;

	if (n == 0 || n > 253)
		return false;
	if (is_ip(cn))
		return true;
	for (const char *p = cn; *p != '\0'; p++) {
		unsigned char ch = (unsigned char)*p;
		if (ch == '.')
			dot = true;
		else if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		           (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '*'))
			return false;
	}
	return dot && cn[0] != '.' && cn[n - 1] != '.';
}

/* The name minus its first label ("a.b.example" -> "b.example"), or NULL. */
static const char *parent_of(const char *name)
{
	const char *dot = strchr(name, '.');

	return dot != NULL && dot[1] != '\0' ? dot + 1 : NULL;
}

/* The same rule as SELF_SIGNED in SQL. */
bool store_self_signed(const struct aclm_cert *c)
{
	return strcmp(c->subject_hash, c->issuer_hash) == 0 &&
	       (c->aki_hex == NULL || c->ski_hex == NULL || strcmp(c->aki_hex, c->ski_hex) == 0);
}

int store_sans_text(const struct aclm_cert *c, char **out)
{
	struct aclm_buf b;
	int rc = ACLM_OK;

	aclm_buf_init(&b, 0);
	for (size_t i = 0; i < c->n_sans && rc == ACLM_OK; i++) {
		if (c->sans[i].value == NULL)
			continue;
		rc = aclm_buf_printf(&b, "%s%s:%s", b.len > 0 ? "," : "",
		                     store_san_type_text(c->sans[i].type), c->sans[i].value);
	}
	if (rc == ACLM_OK && (*out = aclm_buf_steal(&b, NULL)) == NULL)
		rc = ACLM_ERR_NOMEM;
	aclm_buf_free(&b);
	return rc;
}

/* A one-line summary's name and issuer are kept in the certificate row
 * (list_name, list_issuer) and in the index that lists by expiry, so that
 * "aclm list --expiring 30d" reads that index alone: 70,000 rows of a
 * million-row table were one random table page each.  Both are cut to
 * STORE_LIST_CUT bytes at a character boundary and marked "...": a
 * PostgreSQL index entry may not pass 2,704 bytes, and a DN may. */
static size_t list_cut(char *out, const char *s, size_t n)
{
	if (n <= STORE_LIST_CUT) {
		memcpy(out, s, n);
		return n;
	}
	n = STORE_LIST_CUT;
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	memcpy(out, s, n);
	memcpy(out + n, "...", 3);
	return n + 3;
}

/* The CN, else the first SAN's value, else the subject DN; " (+N)" when
 * there are N more SANs. */
void store_list_name(char out[STORE_LIST_MAX], const char *subject, const char *subject_cn,
                     const char *sans)
{
	const char *first = NULL, *v, *p;
	size_t n_sans = 0, len;

	for (p = sans; p != NULL && *p != '\0'; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
		if (n_sans++ == 0)
			first = p;
	}
	if (subject_cn != NULL && *subject_cn != '\0') {
		len = list_cut(out, subject_cn, strlen(subject_cn));
	} else if (first != NULL) {
		const char *colon = strchr(first, ':'), *comma = strchr(first, ',');
		v = colon && (!comma || colon < comma) ? colon + 1 : first;
		len = list_cut(out, v, comma ? (size_t)(comma - v) : strlen(v));
	} else {
		v = store_text_or_empty(subject);
		len = list_cut(out, v, strlen(v));
		n_sans = 0;
	}
	if (n_sans > 1)
		len += (size_t)snprintf(out + len, STORE_LIST_MAX - len, " (+%zu)", n_sans - 1);
	out[len] = '\0';
}

/* The issuer's CN, else its DN. */
void store_list_issuer(char out[STORE_LIST_MAX], const char *issuer, const char *issuer_cn)
{
	const char *v = issuer_cn != NULL ? issuer_cn : store_text_or_empty(issuer);

	out[list_cut(out, v, strlen(v))] = '\0';
}

/* Each searchable name of c to fn, lower-case: DNS, IP and email SANs, and
 * the CN when no SAN repeats it.  A CN that is not a host name ("Example
 * Root CA") is still found by its exact text, but has no parent, so no
 * wildcard query reaches it. */
int store_cert_names(const struct aclm_cert *c, store_name_fn fn, void *ctx)
{
	bool cn_seen = false;
	int rc = ACLM_OK;

	for (size_t i = 0; i <= c->n_sans && rc == ACLM_OK; i++) {
		const char *value, *type;
		bool has_parent;
		char *name;

		if (i < c->n_sans) {
			const struct aclm_san *s = &c->sans[i];
			if (s->value == NULL || *s->value == '\0' || s->type == ACLM_SAN_URI)
				continue;
			if (c->subject_cn != NULL && strcasecmp(c->subject_cn, s->value) == 0)
				cn_seen = true;
			value = s->value;
			type = store_san_type_text(s->type);
			has_parent = s->type == ACLM_SAN_DNS;
		} else {
			if (c->subject_cn == NULL || *c->subject_cn == '\0' || cn_seen)
				break;
			value = c->subject_cn;
			type = "CN";
			has_parent = cn_is_name(c->subject_cn) && !is_ip(c->subject_cn);
		}
		if ((name = aclm_strdup(value)) == NULL)
			return aclm_error(ACLM_ERR_NOMEM, "out of memory");
		aclm_str_lower(name);
		rc = fn(ctx, name, type, has_parent ? parent_of(name) : NULL);
		free(name);
	}
	return rc;
}

struct name_insert {
	struct aclm_store *st;
	const char *fp;
};

static int insert_name(void *ctx, const char *name, const char *type, const char *parent)
{
	struct name_insert *ni = ctx;
	const struct store_param p[] = { SP_T(ni->fp), SP_T(name), SP_T(type), SP_T(parent) };

	return store_run(ni->st, SQL_INSERT_NAME, "insert certificate name", p, SP_COUNT(p));
}

struct name_insert_id {
	struct aclm_store *st;
	int64_t id;
};

static int insert_name_id(void *ctx, const char *name, const char *type, const char *parent)
{
	struct name_insert_id *ni = ctx;
	const struct store_param p[] = { SP_I(ni->id), SP_T(name), SP_T(type), SP_T(parent) };

	return store_run(ni->st, SQL_INSERT_NAME_ID, "insert certificate name", p, SP_COUNT(p));
}

static int insert_names(struct aclm_store *st, const char *fp, const struct aclm_cert *c)
{
	struct name_insert ni = { .st = st, .fp = fp };

	return store_cert_names(c, insert_name, &ni);
}

/* Link the stored certificates this one issued (its own issuer was chosen
 * by the INSERT). */
static int link_children(struct aclm_store *st, const char *fp, const struct aclm_cert *c)
{
	if (c->subject_hash[0] == '\0')
		return ACLM_OK;
	if (c->ski_hex != NULL) {
		const struct store_param p[] = {
			SP_T(fp), SP_T(c->subject_hash), SP_T(fp), SP_T(c->ski_hex),
		};
		return store_run(st, SQL_LINK_CHILDREN_BY_SKI, "link issued certificates", p,
		                 SP_COUNT(p));
	} else {
		const struct store_param p[] = { SP_T(fp), SP_T(c->subject_hash), SP_T(fp) };
		return store_run(st, SQL_LINK_CHILDREN, "link issued certificates", p, SP_COUNT(p));
	}
}

static int json_put_string(struct aclm_buf *b, const char *s)
{
	int rc = aclm_buf_putc(b, '"');

	for (const unsigned char *p = (const unsigned char *)s; *p != '\0' && rc == ACLM_OK; p++) {
		if (*p == '"' || *p == '\\')
			rc = aclm_buf_printf(b, "\\%c", *p);
		else if (*p < 0x20)
			rc = aclm_buf_printf(b, "\\u%04x", *p);
		else
			rc = aclm_buf_putc(b, (char)*p);
	}
	return rc == ACLM_OK ? aclm_buf_putc(b, '"') : rc;
}

int store_cert_added_detail(const struct aclm_cert *c, struct aclm_buf *b)
{
	int rc;

	if ((rc = aclm_buf_puts(b, "{\"subject\":")) == ACLM_OK &&
	    (rc = json_put_string(b, c->subject != NULL ? c->subject : "")) == ACLM_OK)
		rc = aclm_buf_printf(b, ",\"not_after\":%lld}", (long long)c->not_after);
	return rc;
}

static int cert_added_event(struct aclm_store *st, const char *fingerprint,
                            const struct aclm_cert *c)
{
	struct aclm_buf b;
	int rc;

	aclm_buf_init(&b, EVENT_FIELD_MAX);
	if ((rc = store_cert_added_detail(c, &b)) == ACLM_OK)
		rc = append_event(st, "cert.added", fingerprint, aclm_buf_cstr(&b));
	aclm_buf_free(&b);
	return rc;
}

const char *store_text_or_empty(const char *s)
{
	return s != NULL ? s : "";
}

/* The parameters of the certificate columns SQL_INSERT_CERT and
 * SQL_INSERT_CERT_LITE share, in their order (fingerprint .. list_issuer);
 * the issuer probe follows, as each statement has it.  The list columns
 * are written into *lt, which must outlive the parameters. */
#define CERT_COLUMNS 23

struct list_text {
	char name[STORE_LIST_MAX];
	char issuer[STORE_LIST_MAX];
};

static size_t cert_columns(struct store_param p[CERT_COLUMNS], const struct aclm_cert *c,
                           const char *fp, const char *spki, const char *sans,
                           struct list_text *lt)
{
	store_list_name(lt->name, c->subject, c->subject_cn, sans);
	store_list_issuer(lt->issuer, c->issuer, c->issuer_cn);
	const struct store_param cols[CERT_COLUMNS] = {
		SP_T(fp), SP_T(spki), SP_T(store_text_or_empty(c->subject)),
		SP_T(store_text_or_empty(c->issuer)), SP_T(c->subject_cn), SP_T(c->issuer_cn),
		SP_T(c->subject_hash), SP_T(c->issuer_hash), SP_T(store_text_or_empty(c->serial_hex)),
		SP_I(c->not_before), SP_I(c->not_after), SP_T(aclm_key_type_name(c->key_type)),
		SP_I(c->key_bits), SP_T(c->curve), SP_T(store_text_or_empty(c->sig_alg)),
		SP_T(store_level_text(c->level)), SP_I(c->is_ca ? 1 : 0), SP_T(c->ski_hex),
		SP_T(c->aki_hex), SP_T(sans), SP_I(aclm_now()), SP_T(lt->name), SP_T(lt->issuer),
	};

	memcpy(p, cols, sizeof(cols));
	return CERT_COLUMNS;
}

/* The issuer name to look the issuer up by: none for a self-signed
 * certificate. */
static const char *issuer_hash_of(const struct aclm_cert *c)
{
	return c->issuer_hash[0] != '\0' && !store_self_signed(c) ? c->issuer_hash : NULL;
}

/* SQLite, a certificate found absent: its rows, each statement given the
 * new id, none reading the table it writes (SQLite would copy rows into a
 * temporary table for that).  1 when another writer stored it meanwhile
 * (nothing inserted). */
static int put_new_lite(struct aclm_store *st, const struct aclm_cert *c, const char *fp,
                        const char *spki, const char *sans, int64_t *id)
{
	struct name_insert_id ni = { .st = st };
	struct store_query q;
	int64_t changed = 0;
	int rc;

	{
		const struct store_param p[] = {
			SP_T(spki), SP_T(aclm_key_type_name(c->key_type)), SP_I(c->key_bits), SP_T(c->curve),
		};
		if ((rc = store_run(st, SQL_INSERT_KEY_VALUES, "insert key", p, SP_COUNT(p))) != ACLM_OK)
			return rc;
	}
	{
		const char *issuer = issuer_hash_of(c);
		struct store_param p[CERT_COLUMNS + 4];
		struct list_text lt;
		size_t n = cert_columns(p, c, fp, spki, sans, &lt);

		p[n++] = (struct store_param)SP_T(issuer);
		p[n++] = (struct store_param)SP_T(c->aki_hex);
		p[n++] = (struct store_param)SP_T(issuer);
		p[n++] = (struct store_param)SP_T(c->aki_hex);
		if ((rc = store_run(st, SQL_INSERT_CERT_LITE, "insert certificate", p, n)) != ACLM_OK)
			return rc;
	}
	if ((rc = store_query_open(st, &q, SQL_INSERTED_ID, "insert certificate", 0, NULL, 0)) != ACLM_OK)
		return rc;
	if ((rc = store_query_step(st, &q)) == 1) {
		changed = st->drv->column_int64(q.stmt, 0);
		*id = st->drv->column_int64(q.stmt, 1);
	}
	store_query_close(st, &q);
	if (rc < 0)
		return rc;
	if (rc == 0 || changed == 0)
		return 1;
	{
		const struct store_param p[] = { SP_I(*id), SP_B(c->der, c->der_len) };
		if ((rc = store_run(st, SQL_INSERT_DER_ID, "insert certificate DER", p,
		                    SP_COUNT(p))) != ACLM_OK)
			return rc;
	}
	ni.id = *id;
	if ((rc = store_cert_names(c, insert_name_id, &ni)) != ACLM_OK)
		return rc;
	if (c->subject_hash[0] != '\0') {
		if (c->ski_hex != NULL) {
			const struct store_param p[] = {
				SP_I(*id), SP_T(c->subject_hash), SP_I(*id), SP_T(c->ski_hex),
			};
			rc = store_run(st, SQL_LINK_CHILDREN_ID_BY_SKI, "link issued certificates", p,
			               SP_COUNT(p));
		} else {
			const struct store_param p[] = { SP_I(*id), SP_T(c->subject_hash), SP_I(*id) };
			rc = store_run(st, SQL_LINK_CHILDREN_ID, "link issued certificates", p,
			               SP_COUNT(p));
		}
		if (rc != ACLM_OK)
			return rc;
	}
	return cert_added_event(st, fp, c);
}

/* The certificate's INSERT is sent, then everything that follows a new
 * certificate (names, links, the event) is queued behind it, and one step
 * reads the INSERT's answer: one round trip on PostgreSQL.  When the
 * certificate was stored already, that work is rolled back unseen. */
int aclm_store_put_cert(struct aclm_store *st, const struct aclm_cert *c,
                        int64_t *id, bool *is_new)
{
	struct store_query q = { .stmt = NULL, .slot = -1 };
	char fp[65], spki[65];
	char *sans = NULL;
	int64_t cert_id = 0;
	bool inserted = false;
	int rc;

	if (!store_hex64(c->fingerprint_hex, fp) || !store_hex64(c->spki_hex, spki))
		return aclm_error(ACLM_ERR_USAGE, "certificate without a SHA-256 fingerprint "
		                  "or SPKI hash: not stored");
	/* SQLite answers in-process: asking first spares a known certificate
	 * the savepoint and the work rolled back unseen. */
	if (st->drv->dialect == STORE_SQLITE) {
		const struct store_param p[] = { SP_T(fp) };

		rc = store_int64(st, SQL_CERT_ID_BY_FINGERPRINT, "find certificate", p, 1, &cert_id);
		if (rc < 0)
			return rc;
		if (rc == 1) {
			*id = cert_id;
			*is_new = false;
			return ACLM_OK;
		}
	}
	if ((rc = store_sans_text(c, &sans)) != ACLM_OK)
		return rc;
	if ((rc = aclm_store_begin(st)) != ACLM_OK)
		goto out;
	if (st->drv->dialect == STORE_SQLITE) {
		rc = put_new_lite(st, c, fp, spki, sans, &cert_id);
		if (rc < 0)
			goto fail;
		inserted = rc == ACLM_OK;
		goto ended;
	}
	{
		const struct store_param p[] = {
			SP_T(spki), SP_T(aclm_key_type_name(c->key_type)), SP_I(c->key_bits), SP_T(c->curve),
			SP_T(spki),
		};
		if ((rc = store_run(st, SQL_INSERT_KEY, "insert key", p, SP_COUNT(p))) != ACLM_OK)
			goto fail;
	}
	{
		struct store_param p[CERT_COLUMNS + 3];
		struct list_text lt;
		size_t n = cert_columns(p, c, fp, spki, sans, &lt);

		p[n++] = (struct store_param)SP_T(issuer_hash_of(c));
		p[n++] = (struct store_param)SP_T(c->aki_hex);
		p[n++] = (struct store_param)SP_T(fp);
		if ((rc = store_query_open(st, &q, SQL_INSERT_CERT, "insert certificate", 0,
		                           p, n)) != ACLM_OK)
			goto fail;
	}
	if (st->drv->send(q.stmt) != ACLM_OK) {
		rc = store_db_error(st, NULL);
		goto fail;
	}
	{
		const struct store_param p[] = { SP_T(fp), SP_B(c->der, c->der_len) };
		if ((rc = store_run(st, SQL_INSERT_DER, "insert certificate DER", p,
		                    SP_COUNT(p))) != ACLM_OK)
			goto fail;
	}
	if ((rc = insert_names(st, fp, c)) != ACLM_OK || (rc = link_children(st, fp, c)) != ACLM_OK ||
	    (rc = cert_added_event(st, fp, c)) != ACLM_OK)
		goto fail;
	rc = store_query_step(st, &q);
	if (rc == 1) {
		cert_id = st->drv->column_int64(q.stmt, 0);
		inserted = true;
	}
	store_query_close(st, &q);
	if (rc < 0)
		goto fail;
ended:
	if (inserted) {
		if ((rc = aclm_store_commit(st)) != ACLM_OK)
			goto out;
	} else {
		const struct store_param p[] = { SP_T(fp) };
		if ((rc = aclm_store_rollback(st)) != ACLM_OK)
			goto out;
		rc = store_int64(st, SQL_CERT_ID_BY_FINGERPRINT, "find certificate", p, 1, &cert_id);
		if (rc == 0)
			rc = aclm_error(ACLM_ERR_DB, "%s: certificate %s: not inserted, yet not found",
			                st->display, fp);
		if (rc < 0)
			goto out;
	}
	*id = cert_id;
	*is_new = inserted;
	rc = ACLM_OK;
	goto out;
fail:
	store_query_close(st, &q);
	aclm_store_rollback(st);
out:
	free(sans);
	return rc;
}

int aclm_store_put_private_key(struct aclm_store *st, const char spki_hex[65],
                               const unsigned char *sealed, size_t sealed_len, bool *stored)
{
	char spki[65];
	int64_t key_id;
	int rc;

	if (!store_hex64(spki_hex, spki))
		return aclm_error(ACLM_ERR_USAGE, "'%.80s' is not a SPKI SHA-256 (64 hex digits)",
		                  spki_hex);
	{
		const struct store_param p[] = { SP_B(sealed, sealed_len), SP_I(aclm_now()), SP_T(spki) };
		rc = store_int64(st, SQL_PUT_PRIVATE_KEY, "store private key", p, SP_COUNT(p), &key_id);
	}
	if (rc < 0)
		return rc;
	if (rc == 1) {
		*stored = true;
		return ACLM_OK;
	}
	{
		const struct store_param p[] = { SP_T(spki) };
		rc = store_int64(st, SQL_KEY_ID, "find key", p, 1, &key_id);
	}
	if (rc < 0)
		return rc;
	if (rc == 0)
		return aclm_error(ACLM_ERR_NOTFOUND, "no certificate with public key %s is in the "
		                  "inventory: import the certificate first", spki);
	*stored = false;
	return ACLM_OK;
}

int aclm_store_get_private_key(struct aclm_store *st, const char spki_hex[65],
                               unsigned char **sealed, size_t *sealed_len)
{
	struct store_query q;
	const unsigned char *p;
	char spki[65];
	size_t len;
	int rc;

	if (!store_hex64(spki_hex, spki))
		return aclm_error(ACLM_ERR_USAGE, "'%.80s' is not a SPKI SHA-256 (64 hex digits)",
		                  spki_hex);
	{
		const struct store_param prm[] = { SP_T(spki) };
		if ((rc = store_query_open(st, &q, SQL_GET_PRIVATE_KEY, "read private key", 0,
		                           prm, 1)) != ACLM_OK)
			return rc;
	}
	rc = store_query_step(st, &q);
	if (rc == 0) {
		rc = aclm_error(ACLM_ERR_NOTFOUND, "no private key for public key %s in the inventory",
		                spki);
	} else if (rc == 1) {
		p = st->drv->column_blob(q.stmt, 0, &len);
		*sealed = malloc(len > 0 ? len : 1);
		if (*sealed == NULL) {
			rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
		} else {
			if (len > 0)
				memcpy(*sealed, p, len);
			*sealed_len = len;
			rc = ACLM_OK;
		}
	}
	store_query_close(st, &q);
	return rc;
}

/* "host:port" or "[v6]:port" into host or ip, and port; false when the
 * location is not of that form. */
static bool parse_endpoint(const char *loc, char *host, size_t host_size, bool *host_is_ip,
                           int64_t *port)
{
	const char *colon, *start = loc, *end;

	if (*loc == '[') {
		start = loc + 1;
		end = strchr(start, ']');
		if (end == NULL || end[1] != ':')
			return false;
		colon = end + 1;
	} else {
		colon = strrchr(loc, ':');
		if (colon == NULL || memchr(loc, ':', (size_t)(colon - loc)) != NULL)
			return false;
		end = colon;
	}
	if (end == start || (size_t)(end - start) >= host_size)
		return false;
	if (aclm_parse_int64(colon + 1, port) != ACLM_OK || *port < 1 || *port > 65535) {
		aclm_error_clear();
		return false;
	}
	memcpy(host, start, (size_t)(end - start));
	host[end - start] = '\0';
	aclm_str_lower(host);
	*host_is_ip = is_ip(host);
	return true;
}

int store_source_text(enum aclm_source source, const char **out)
{
	if ((*out = aclm_source_name(source)) == NULL)
		return aclm_error(ACLM_ERR_USAGE, "observation source %d is not one of import, scan, "
		                  "acme, ca", (int)source);
	return ACLM_OK;
}

int aclm_store_add_observation(struct aclm_store *st, int64_t cert_id,
                               enum aclm_source source, const char *location, int64_t when)
{
	const char *src;
	char host[256];
	bool host_is_ip = false;
	int64_t port = 0, endpoint_id = 0;
	int rc;

	if ((rc = store_source_text(source, &src)) != ACLM_OK)
		return rc;
	if (location == NULL)
		location = "";
	if ((rc = aclm_store_begin(st)) != ACLM_OK)
		return rc;
	if (source == ACLM_SRC_SCAN &&
	    parse_endpoint(location, host, sizeof(host), &host_is_ip, &port)) {
		const struct store_param p[] = {
			SP_T(host_is_ip ? "" : host), SP_T(host_is_ip ? host : ""), SP_I(port),
			SP_I(when), SP_I(when),
		};
		rc = store_int64(st, SQL_UPSERT_ENDPOINT, "record endpoint", p, SP_COUNT(p),
		                 &endpoint_id);
		if (rc < 0)
			goto fail;
	}
	{
		const struct store_param p[] = {
			SP_I(cert_id), endpoint_id != 0 ? (struct store_param)SP_I(endpoint_id)
			                                : (struct store_param)SP_N(),
			SP_T(src), SP_T(location), SP_I(when),
		};
		if ((rc = store_run(st, SQL_INSERT_OBSERVATION, "insert observation", p,
		                    SP_COUNT(p))) != ACLM_OK)
			goto fail;
	}
	{
		const struct store_param p[] = {
			SP_I(when), SP_I(when), SP_I(when), SP_I(when), SP_I(cert_id),
		};
		if ((rc = store_run(st, SQL_CERT_SEEN, "update first/last seen", p,
		                    SP_COUNT(p))) != ACLM_OK)
			goto fail;
	}
	if ((rc = aclm_store_commit(st)) != ACLM_OK)
		return aclm_error_wrap(rc, "observation of certificate %lld", (long long)cert_id);
	return ACLM_OK;
fail:
	aclm_store_rollback(st);
	return aclm_error_wrap(rc, "observation of certificate %lld", (long long)cert_id);
}

/* --- listing ------------------------------------------------------------ */

/* lt: room for the list columns of a row whose columns are NULL (an older
 * aclm stored it after the upgrade; see store_fill_list_columns), computed
 * here from the row: only full rows (CERT_SELECT) carry what that needs. */
static void read_cert_row(struct aclm_store *st, struct store_stmt *s, struct aclm_cert_row *r,
                          struct list_text *lt)
{
	const struct store_driver *d = st->drv;
	const char *level;

	memset(r, 0, sizeof(*r));
	r->id = d->column_int64(s, 0);
	aclm_strlcpy(r->fingerprint, store_text_or_empty(d->column_text(s, 1)), sizeof(r->fingerprint));
	aclm_strlcpy(r->spki, store_text_or_empty(d->column_text(s, 2)), sizeof(r->spki));
	r->subject = store_text_or_empty(d->column_text(s, 3));
	r->issuer = store_text_or_empty(d->column_text(s, 4));
	r->subject_cn = d->column_text(s, 5);
	r->issuer_cn = d->column_text(s, 6);
	r->serial = store_text_or_empty(d->column_text(s, 7));
	r->not_before = d->column_int64(s, 8);
	r->not_after = d->column_int64(s, 9);
	r->key_type = store_text_or_empty(d->column_text(s, 10));
	r->key_bits = (int)d->column_int64(s, 11);
	r->curve = d->column_text(s, 12);
	r->sig_alg = store_text_or_empty(d->column_text(s, 13));
	level = d->column_text(s, 14);
	r->level = store_text_or_empty(level);
	r->sans = store_text_or_empty(d->column_text(s, 15));
	r->is_ca = d->column_int64(s, 16) != 0;
	r->issuer_id = d->column_int64(s, 17);
	r->has_private_key = d->column_int64(s, 18) != 0;
	r->first_seen = d->column_int64(s, 19);
	r->last_seen = d->column_int64(s, 20);
	r->list_name = d->column_text(s, 21);
	r->list_issuer = d->column_text(s, 22);
	if (r->list_name == NULL || r->list_issuer == NULL) {
		store_list_name(lt->name, r->subject, r->subject_cn, r->sans);
		store_list_issuer(lt->issuer, r->issuer, r->issuer_cn);
		r->list_name = lt->name;
		r->list_issuer = lt->issuer;
	}
}

/* Rows of an open query to fn, until the end, an error or fn says stop. */
static int each_cert_row(struct aclm_store *st, struct store_query *q, aclm_cert_row_fn fn,
                         void *ctx, int64_t *n_rows)
{
	struct aclm_cert_row row;
	struct list_text lt;
	int rc;

	while ((rc = store_query_step(st, q)) == 1) {
		read_cert_row(st, q->stmt, &row, &lt);
		if (n_rows != NULL)
			(*n_rows)++;
		if ((rc = fn(ctx, &row)) != 0)
			return rc;
	}
	return rc;
}

#define FILTER_MAX_PARAMS 16

/* The WHERE clause of a listing, with its parameters. */
struct filter_sql {
	struct aclm_buf sql;
	struct store_param p[FILTER_MAX_PARAMS];
	size_t n;
	char *owned[4];  /* strings the parameters point into */
	size_t n_owned;
};

static void filter_free(struct filter_sql *w)
{
	aclm_buf_free(&w->sql);
	for (size_t i = 0; i < w->n_owned; i++)
		free(w->owned[i]);
}

static int cond(struct filter_sql *w, const char *text)
{
	return aclm_buf_printf(&w->sql, "%s%s", w->sql.len == 0 ? " WHERE " : " AND ", text);
}

static void param_int(struct filter_sql *w, int64_t v)
{
	w->p[w->n].type = SP_INT;
	w->p[w->n].i = v;
	w->n++;
}

static void param_text(struct filter_sql *w, const char *s)
{
	w->p[w->n].type = SP_TEXT;
	w->p[w->n].s = s;
	w->n++;
}

static char *own(struct filter_sql *w, char *s)
{
	if (s != NULL)
		w->owned[w->n_owned++] = s;
	return s;
}

/* "rsa", "rsa2048", "ec", "ecdsa", "ec256", "p256", "ed25519", ... */
static int parse_key_filter(const char *s, const char **type, int64_t *bits)
{
	static const struct {
		const char *prefix;
		const char *type;
		int64_t bits;
	} names[] = {
		{ "ecdsa", "ec", 0 }, { "ec", "ec", 0 }, { "rsa", "rsa", 0 }, { "dsa", "dsa", 0 },
		{ "p256", "ec", 256 }, { "p384", "ec", 384 }, { "p521", "ec", 521 },
		{ "ed25519", "ed25519", 0 }, { "ed448", "ed448", 0 }, { "sm2", "sm2", 0 },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		size_t n = strlen(names[i].prefix);
		if (strncasecmp(s, names[i].prefix, n) != 0)
			continue;
		*type = names[i].type;
		*bits = names[i].bits;
		if (s[n] == '\0')
			return ACLM_OK;
		/* A size only after the families that have several. */
		if (names[i].bits == 0 && (strcmp(names[i].type, "ec") == 0 ||
		                           strcmp(names[i].type, "rsa") == 0 ||
		                           strcmp(names[i].type, "dsa") == 0) &&
		    s[n] >= '1' && s[n] <= '9' && aclm_parse_int64(s + n, bits) == ACLM_OK)
			return ACLM_OK;
	}
	return aclm_error(ACLM_ERR_USAGE, "'%s' is not a key type (rsa, ec, ed25519, ed448, sm2, "
	                  "dsa, or sized: rsa2048, ec256, p256, p384, p521)", s);
}

/* LOWER(issuer) LIKE '%needle%', with the needle's own % _ \ escaped. */
static char *like_pattern(const char *needle)
{
	struct aclm_buf b;

	aclm_buf_init(&b, 0);
	aclm_buf_putc(&b, '%');
	for (const char *p = needle; *p != '\0'; p++) {
		char ch = *p;
		if (ch == '%' || ch == '_' || ch == '\\')
			aclm_buf_putc(&b, '\\');
		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch - 'A' + 'a');
		aclm_buf_putc(&b, ch);
	}
	aclm_buf_putc(&b, '%');
	return aclm_buf_steal(&b, NULL);
}

/* Names match through cert_names, by index: "a.example.com" finds itself
 * and "*.example.com"; "*.example.com" finds itself and every name one
 * label under example.com (stored parent = "example.com"). */
static int name_condition(struct filter_sql *w, const char *query)
{
	char *name = own(w, aclm_strdup(query)), *wild;
	const char *parent;

	if (name == NULL)
		return ACLM_ERR_NOMEM;
	aclm_str_lower(name);
	if (aclm_str_has_prefix(name, "*.") && name[2] != '\0') {
		param_text(w, name);
		param_text(w, name + 2);
		return cond(w, "c.id IN (SELECT cert_id FROM cert_names WHERE name = ? OR parent = ?)");
	}
	parent = parent_of(name);
	if (parent == NULL || strchr(name, '@') != NULL || is_ip(name)) {
		param_text(w, name);
		return cond(w, "c.id IN (SELECT cert_id FROM cert_names WHERE name = ?)");
	}
	wild = own(w, malloc(strlen(parent) + 3));
	if (wild == NULL)
		return ACLM_ERR_NOMEM;
	memcpy(wild, "*.", 2);
	memcpy(wild + 2, parent, strlen(parent) + 1);
	param_text(w, name);
	param_text(w, wild);
	return cond(w, "c.id IN (SELECT cert_id FROM cert_names WHERE name = ? OR name = ?)");
}

static int build_filter(const struct aclm_cert_filter *f, struct filter_sql *w)
{
	int rc = ACLM_OK;

	memset(w, 0, sizeof(*w));
	aclm_buf_init(&w->sql, 0);
	if (f->expiring_within > 0) {
		param_int(w, f->now);
		param_int(w, f->now > INT64_MAX - f->expiring_within ? INT64_MAX
		                                                     : f->now + f->expiring_within);
		rc = cond(w, "c.not_after >= ? AND c.not_after < ?");
	}
	if (rc == ACLM_OK && f->expired) {
		param_int(w, f->now);
		rc = cond(w, "c.not_after < ?");
	}
	if (rc == ACLM_OK && f->valid) {
		param_int(w, f->now);
		param_int(w, f->now);
		rc = cond(w, "c.not_before <= ? AND c.not_after >= ?");
	}
	if (rc == ACLM_OK && f->key_type != NULL && *f->key_type != '\0') {
		const char *type = NULL;
		int64_t bits = 0;
		if ((rc = parse_key_filter(f->key_type, &type, &bits)) != ACLM_OK)
			return rc;
		param_text(w, type);
		rc = cond(w, "c.key_type = ?");
		if (rc == ACLM_OK && bits > 0) {
			param_int(w, bits);
			rc = cond(w, "c.key_bits = ?");
		}
	}
	if (rc == ACLM_OK && f->issuer != NULL && *f->issuer != '\0') {
		char *pat = own(w, like_pattern(f->issuer));
		if (pat == NULL)
			return aclm_error(ACLM_ERR_NOMEM, "out of memory");
		param_text(w, pat);
		rc = cond(w, "LOWER(c.issuer) LIKE ? ESCAPE '\\'");
	}
	if (rc == ACLM_OK && f->name != NULL && *f->name != '\0')
		rc = name_condition(w, f->name);
	if (rc == ACLM_OK && f->level != NULL && *f->level != '\0') {
		param_text(w, f->level);
		rc = cond(w, "c.level = ?");
	}
	if (rc == ACLM_OK && f->ca_only)
		rc = cond(w, "c.is_ca = 1");
	if (rc == ACLM_OK && f->leaf_only)
		rc = cond(w, "c.is_ca = 0");
	if (rc != ACLM_OK)
		return aclm_error(rc, "out of memory building a query");
	return ACLM_OK;
}

/* ORDER BY with the id as the last key, so both backends list ties in the
 * same order; text in byte order (PostgreSQL: COLLATE "C", as SQLite's
 * BINARY). */
static int order_by(struct aclm_store *st, const struct aclm_cert_filter *f, struct aclm_buf *b)
{
	const char *dir = f->descending ? " DESC" : "";
	const char *coll = st->drv->dialect == STORE_POSTGRES ? " COLLATE \"C\"" : "";

	switch (f->sort) {
	case ACLM_SORT_NOT_AFTER:
		return aclm_buf_printf(b, " ORDER BY c.not_after%s, c.id%s", dir, dir);
	case ACLM_SORT_NOT_BEFORE:
		return aclm_buf_printf(b, " ORDER BY c.not_before%s, c.id%s", dir, dir);
	case ACLM_SORT_SUBJECT:
		return aclm_buf_printf(b, " ORDER BY c.subject%s%s, c.id%s", coll, dir, dir);
	case ACLM_SORT_ISSUER:
		return aclm_buf_printf(b, " ORDER BY c.issuer%s%s, c.id%s", coll, dir, dir);
	case ACLM_SORT_KEY:
		return aclm_buf_printf(b, " ORDER BY c.key_type%s%s, c.key_bits%s, c.id%s",
		                       coll, dir, dir, dir);
	case ACLM_SORT_ID:
		return aclm_buf_printf(b, " ORDER BY c.id%s", dir);
	}
	return aclm_error(ACLM_ERR_USAGE, "unknown sort order %d", (int)f->sort);
}

int aclm_store_list_certs(struct aclm_store *st, const struct aclm_cert_filter *f,
                          aclm_cert_row_fn fn, void *ctx)
{
	struct store_query q = { .stmt = NULL, .slot = -1 };
	struct filter_sql w;
	struct aclm_buf sql;
	bool summary = f->summary;
	int rc;

	if (f->limit < 0 || f->offset < 0)
		return aclm_error(ACLM_ERR_USAGE, "limit and offset must not be negative");
	aclm_buf_init(&sql, 0);
	if ((rc = build_filter(f, &w)) != ACLM_OK)
		goto out;
	/* Rows with no list columns yet (an older aclm wrote them after the
	 * upgrade, and no open has filled them since): full rows, from which
	 * read_cert_row computes them. */
	if (summary) {
		int64_t n = 0;
		if ((rc = store_int64(st, SQL_UNFILLED_LIST_COLUMNS, "look for unfilled list columns",
		                      NULL, 0, &n)) < 0)
			goto out;
		summary = n == 0;
	}
	if ((rc = aclm_buf_puts(&sql, summary ? CERT_SUMMARY_SELECT : CERT_SELECT)) != ACLM_OK ||
	    (rc = aclm_buf_puts(&sql, aclm_buf_cstr(&w.sql))) != ACLM_OK ||
	    (rc = order_by(st, f, &sql)) != ACLM_OK)
		goto out;
	if (f->limit > 0 || f->offset > 0) {
		/* Neither "LIMIT -1" nor "LIMIT ALL" is portable; INT64_MAX is. */
		param_int(&w, f->limit > 0 ? f->limit : INT64_MAX);
		param_int(&w, f->offset);
		if ((rc = aclm_buf_puts(&sql, " LIMIT ? OFFSET ?")) != ACLM_OK)
			goto out;
	}
	if ((rc = query_open(st, &q, aclm_buf_cstr(&sql), "list certificates", STORE_STMT_STREAM,
	                     w.p, w.n, false)) != ACLM_OK)
		goto out;
	rc = each_cert_row(st, &q, fn, ctx, NULL);
out:
	store_query_close(st, &q);
	filter_free(&w);
	aclm_buf_free(&sql);
	return rc;
}

int aclm_store_count_certs(struct aclm_store *st, const struct aclm_cert_filter *f,
                           int64_t *count)
{
	struct store_query q = { .stmt = NULL, .slot = -1 };
	struct filter_sql w;
	struct aclm_buf sql;
	int rc;

	aclm_buf_init(&sql, 0);
	if ((rc = build_filter(f, &w)) != ACLM_OK)
		goto out;
	if ((rc = aclm_buf_puts(&sql, "SELECT COUNT(*) FROM certificates c")) != ACLM_OK ||
	    (rc = aclm_buf_puts(&sql, aclm_buf_cstr(&w.sql))) != ACLM_OK)
		goto out;
	if ((rc = query_open(st, &q, aclm_buf_cstr(&sql), "count certificates", 0, w.p, w.n,
	                     false)) != ACLM_OK)
		goto out;
	if ((rc = store_query_step(st, &q)) == 1) {
		*count = st->drv->column_int64(q.stmt, 0);
		rc = ACLM_OK;
	} else if (rc == 0) {
		rc = aclm_error(ACLM_ERR_DB, "%s: count certificates: no result", st->display);
	}
out:
	store_query_close(st, &q);
	filter_free(&w);
	aclm_buf_free(&sql);
	return rc;
}

/* --- single certificates ----------------------------------------------- */

static int find_by_id(struct aclm_store *st, const char *ref, int64_t *id)
{
	int64_t v;
	int rc;

	if (aclm_parse_int64(ref, &v) != ACLM_OK)
		return aclm_error(ACLM_ERR_USAGE, "'%s' is not a certificate id", ref);
	{
		const struct store_param p[] = { SP_I(v) };
		rc = store_int64(st, SQL_CERT_EXISTS, "find certificate", p, 1, id);
	}
	if (rc == 0)
		return aclm_error(ACLM_ERR_NOTFOUND, "no certificate with id %s", ref);
	return rc < 0 ? rc : ACLM_OK;
}

int aclm_store_find_cert(struct aclm_store *st, const char *ref, int64_t *id)
{
	struct store_query q = { .stmt = NULL, .slot = -1 };
	char prefix[65];
	size_t n = 0;
	int64_t first = 0;
	int rc, found = 0;

	if (ref == NULL || *ref == '\0')
		return aclm_error(ACLM_ERR_USAGE, "no certificate given (an id or a fingerprint)");
	if (strspn(ref, "0123456789") == strlen(ref)) {
		/* An id; from 8 digits on it may also be a fingerprint prefix that
		 * happens to be all digits (1 in 43 of them), tried when no id
		 * matches. */
		rc = find_by_id(st, ref, id);
		if (strlen(ref) < 8 || (rc != ACLM_ERR_NOTFOUND && rc != ACLM_ERR_USAGE))
			return rc;
	}
	for (const char *p = ref; *p != '\0'; p++) {
		char ch = *p;
		if (ch == ':')
			continue;
		if (ch >= 'A' && ch <= 'F')
			ch = (char)(ch - 'A' + 'a');
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')) || n == 64)
			return aclm_error(ACLM_ERR_USAGE, "'%s' is neither a certificate id nor a "
			                  "SHA-256 fingerprint (prefix)", ref);
		prefix[n++] = ch;
	}
	prefix[n] = '\0';
	if (n < 8)
		return aclm_error(ACLM_ERR_USAGE, "'%s': a fingerprint prefix needs at least 8 hex "
		                  "digits", ref);
	{
		const struct store_param p[] = { SP_T(prefix) };
		if ((rc = store_query_open(st, &q, SQL_FIND_PREFIX, "find certificate", 0,
		                           p, 1)) != ACLM_OK)
			return rc;
	}
	while ((rc = store_query_step(st, &q)) == 1) {
		const char *fp = st->drv->column_text(q.stmt, 1);
		if (fp == NULL || strncmp(fp, prefix, n) != 0)
			break;
		if (found++ == 0)
			first = st->drv->column_int64(q.stmt, 0);
	}
	store_query_close(st, &q);
	if (rc < 0)
		return rc;
	if (found == 0)
		return aclm_error(ACLM_ERR_NOTFOUND, "no certificate with %sfingerprint %s%s",
		                  strspn(ref, "0123456789") == strlen(ref) ? "id or " : "", prefix,
		                  n < 64 ? "..." : "");
	if (found > 1)
		return aclm_error(ACLM_ERR_AMBIGUOUS, "fingerprint prefix %s matches several "
		                  "certificates: give more digits", prefix);
	*id = first;
	return ACLM_OK;
}

int aclm_store_get_cert(struct aclm_store *st, int64_t id, aclm_cert_row_fn fn, void *ctx)
{
	const struct store_param p[] = { SP_I(id) };
	struct store_query q;
	int64_t n = 0;
	int rc;

	if ((rc = store_query_open(st, &q, SQL_GET_CERT, "read certificate", 0, p, 1)) != ACLM_OK)
		return rc;
	rc = each_cert_row(st, &q, fn, ctx, &n);
	store_query_close(st, &q);
	if (rc == ACLM_OK && n == 0)
		return aclm_error(ACLM_ERR_NOTFOUND, "no certificate with id %lld", (long long)id);
	return rc;
}

int aclm_store_get_cert_der(struct aclm_store *st, int64_t id, unsigned char **der,
                            size_t *der_len)
{
	const struct store_param p[] = { SP_I(id) };
	struct store_query q;
	const unsigned char *v;
	size_t len;
	int rc;

	if ((rc = store_query_open(st, &q, SQL_GET_DER, "read certificate", 0, p, 1)) != ACLM_OK)
		return rc;
	rc = store_query_step(st, &q);
	if (rc == 0) {
		rc = aclm_error(ACLM_ERR_NOTFOUND, "no certificate with id %lld", (long long)id);
	} else if (rc == 1) {
		v = st->drv->column_blob(q.stmt, 0, &len);
		*der = malloc(len > 0 ? len : 1);
		if (*der == NULL) {
			rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
		} else {
			if (len > 0)
				memcpy(*der, v, len);
			*der_len = len;
			rc = ACLM_OK;
		}
	}
	store_query_close(st, &q);
	return rc;
}

int aclm_store_list_observations(struct aclm_store *st, int64_t cert_id,
                                 aclm_observation_fn fn, void *ctx)
{
	const struct store_driver *d = st->drv;
	const struct store_param p[] = { SP_I(cert_id) };
	struct aclm_observation_row row;
	struct store_query q;
	int rc;

	if ((rc = store_query_open(st, &q, SQL_OBSERVATIONS, "list observations", 0,
	                           p, 1)) != ACLM_OK)
		return rc;
	while ((rc = store_query_step(st, &q)) == 1) {
		row.id = d->column_int64(q.stmt, 0);
		row.cert_id = d->column_int64(q.stmt, 1);
		row.source = store_text_or_empty(d->column_text(q.stmt, 2));
		row.location = store_text_or_empty(d->column_text(q.stmt, 3));
		row.seen_at = d->column_int64(q.stmt, 4);
		if ((rc = fn(ctx, &row)) != 0)
			break;
	}
	store_query_close(st, &q);
	return rc;
}

int aclm_store_list_same_key(struct aclm_store *st, int64_t cert_id, aclm_cert_row_fn fn,
                             void *ctx)
{
	const struct store_param p[] = { SP_I(cert_id), SP_I(cert_id) };
	struct store_query q;
	int rc;

	if ((rc = store_query_open(st, &q, SQL_SAME_KEY, "list certificates with the same key", 0,
	                           p, SP_COUNT(p))) != ACLM_OK)
		return rc;
	rc = each_cert_row(st, &q, fn, ctx, NULL);
	store_query_close(st, &q);
	return rc;
}

int aclm_store_stats(struct aclm_store *st, struct aclm_store_stats *out)
{
	const struct store_driver *d = st->drv;
	struct store_query q;
	int rc;

	if ((rc = store_query_open(st, &q, SQL_STATS, "count rows", 0, NULL, 0)) != ACLM_OK)
		return rc;
	if ((rc = store_query_step(st, &q)) == 1) {
		out->certificates = d->column_int64(q.stmt, 0);
		out->keys = d->column_int64(q.stmt, 1);
		out->private_keys = d->column_int64(q.stmt, 2);
		out->observations = d->column_int64(q.stmt, 3);
		out->endpoints = d->column_int64(q.stmt, 4);
		out->managed = d->column_int64(q.stmt, 5);
		out->events = d->column_int64(q.stmt, 6);
		rc = ACLM_OK;
	} else if (rc == 0) {
		rc = aclm_error(ACLM_ERR_DB, "%s: count rows: no result", st->display);
	}
	store_query_close(st, &q);
	return rc;
}
