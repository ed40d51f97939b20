/* The built-in CA's rows (include/aclm/store_ca.h, migration 6). */
#include <stdlib.h>
#include <string.h>

#include "aclm/err.h"
#include "aclm/store_ca.h"
#include "aclm/str.h"
#include "aclm/timeutil.h"
#include "store-int.h"

static char *col_dup(struct aclm_store *st, struct store_stmt *s, int col)
{
	const char *t = st->drv->column_text(s, col);
	return t != NULL ? aclm_strdup(t) : NULL;
}

static int write_one(struct aclm_store *st, const char *sql, const char *what,
                     const struct store_param *p, size_t n)
{
	int rc;

	if ((rc = aclm_store_begin(st)) != ACLM_OK)
		return rc;
	if ((rc = store_run(st, sql, what, p, n)) != ACLM_OK) {
		aclm_store_rollback(st);
		return rc;
	}
	return aclm_store_commit(st);
}

/* --- hierarchies -------------------------------------------------------- */

#define HIER_COLS "id, ca, algo, root_cert_id, issuing_cert_id, crl_number, created_at"

static const char SQL_HIER_ADD[] =
	"INSERT INTO ca_hierarchies (ca, algo, root_cert_id, issuing_cert_id, crl_number, "
	"created_at) VALUES (?, ?, ?, ?, 0, ?)";
static const char SQL_HIER_GET[] =
	"SELECT " HIER_COLS " FROM ca_hierarchies WHERE ca = ? AND algo = ?";
static const char SQL_HIER_LIST[] =
	"SELECT " HIER_COLS " FROM ca_hierarchies WHERE COALESCE(?, ca) = ca ORDER BY ca, algo";
static const char SQL_HIER_CRL_INC[] =
	"UPDATE ca_hierarchies SET crl_number = crl_number + 1 WHERE ca = ? AND algo = ?";
static const char SQL_HIER_CRL_GET[] =
	"SELECT crl_number FROM ca_hierarchies WHERE ca = ? AND algo = ?";

void aclm_ca_hier_row_free(struct aclm_ca_hier_row *r)
{
	free(r->ca);
	free(r->algo);
	memset(r, 0, sizeof(*r));
}

static void read_hier(struct aclm_store *st, struct store_stmt *s, struct aclm_ca_hier_row *r)
{
	memset(r, 0, sizeof(*r));
	r->id = st->drv->column_int64(s, 0);
	r->ca = col_dup(st, s, 1);
	r->algo = col_dup(st, s, 2);
	r->root_cert_id = st->drv->column_int64(s, 3);
	r->issuing_cert_id = st->drv->column_int64(s, 4);
	r->crl_number = st->drv->column_int64(s, 5);
	r->created_at = st->drv->column_int64(s, 6);
}

int aclm_store_ca_hier_get(struct aclm_store *st, const char *ca, const char *algo,
                           struct aclm_ca_hier_row *out)
{
	const struct store_param p[] = { SP_T(ca), SP_T(algo) };
	struct store_query q;
	int rc;

	if ((rc = store_query_open(st, &q, SQL_HIER_GET, "read CA hierarchy", 0, p,
	                           SP_COUNT(p))) != ACLM_OK)
		return rc;
	rc = store_query_step(st, &q);
	if (rc == 1) {
		read_hier(st, q.stmt, out);
		rc = out->ca != NULL && out->algo != NULL ? ACLM_OK
		                                          : aclm_error(ACLM_ERR_NOMEM, "out of memory");
	} else if (rc == 0) {
		rc = ACLM_ERR_NOTFOUND;
	}
	store_query_close(st, &q);
	return rc;
}

int aclm_store_ca_hier_add(struct aclm_store *st, const char *ca, const char *algo,
                           int64_t root_cert_id, int64_t issuing_cert_id)
{
	const struct store_param p[] = {
		SP_T(ca), SP_T(algo), SP_I(root_cert_id), SP_I(issuing_cert_id), SP_I(aclm_now()),
	};
	struct aclm_ca_hier_row old;
	int rc;

	if ((rc = aclm_store_begin(st)) != ACLM_OK)
		return rc;
	rc = aclm_store_ca_hier_get(st, ca, algo, &old);
	if (rc == ACLM_OK) {
		aclm_ca_hier_row_free(&old);
		aclm_store_rollback(st);
		return aclm_error(ACLM_ERR_EXISTS, "CA %s has an %s hierarchy already", ca, algo);
	}
	if (rc != ACLM_ERR_NOTFOUND ||
	    (rc = store_run(st, SQL_HIER_ADD, "insert CA hierarchy", p, SP_COUNT(p))) != ACLM_OK) {
		aclm_store_rollback(st);
		return rc;
	}
	return aclm_store_commit(st);
}

int aclm_store_ca_hier_list(struct aclm_store *st, const char *ca, aclm_ca_hier_fn fn,
                            void *ctx)
{
	const struct store_param p[] = { SP_T(ca) };
	struct store_query q;
	int rc;

	if ((rc = store_query_open(st, &q, SQL_HIER_LIST, "list CA hierarchies", 0, p,
	                           SP_COUNT(p))) != ACLM_OK)
		return rc;
	while ((rc = store_query_step(st, &q)) == 1) {
		struct aclm_ca_hier_row r;
		read_hier(st, q.stmt, &r);
		rc = fn(ctx, &r);
		aclm_ca_hier_row_free(&r);
		if (rc != 0)
			break;
	}
	store_query_close(st, &q);
	return rc;
}

int aclm_store_ca_crl_number_next(struct aclm_store *st, const char *ca, const char *algo,
                                  int64_t *number)
{
	const struct store_param p[] = { SP_T(ca), SP_T(algo) };
	int rc;

	if ((rc = aclm_store_begin(st)) != ACLM_OK)
		return rc;
	if ((rc = store_run(st, SQL_HIER_CRL_INC, "next CRL number", p, SP_COUNT(p))) != ACLM_OK ||
	    (rc = store_int64(st, SQL_HIER_CRL_GET, "next CRL number", p, SP_COUNT(p),
	                      number)) < 0) {
		aclm_store_rollback(st);
		return rc;
	}
	if (rc == 0) {
		aclm_store_rollback(st);
		return aclm_error(ACLM_ERR_NOTFOUND, "CA %s has no %s hierarchy", ca, algo);
	}
	return aclm_store_commit(st);
}

/* --- issued certificates ------------------------------------------------ */

#define ISSUED_COLS "id, ca, algo, serial, cert_id, profile, account_ref, not_before, " \
                    "not_after, issued_at, revoked_at, revocation_reason, renew_after"

static const char SQL_ISSUED_ADD[] =
	"INSERT INTO ca_issued (ca, algo, serial, cert_id, profile, account_ref, not_before, "
	"not_after, issued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
static const char SQL_ISSUED_GET[] =
	"SELECT " ISSUED_COLS " FROM ca_issued WHERE ca = ? AND serial = ?";
static const char SQL_ISSUED_LIST[] =
	"SELECT " ISSUED_COLS " FROM ca_issued WHERE COALESCE(?, ca) = ca AND "
	"COALESCE(?, algo) = algo AND (? = 0 OR revoked_at IS NOT NULL) ORDER BY id";
static const char SQL_ISSUED_REVOKE[] =
	"UPDATE ca_issued SET revoked_at = ?, revocation_reason = ? WHERE ca = ? AND serial = ?";
static const char SQL_ISSUED_EARLY_ONE[] =
	"UPDATE ca_issued SET renew_after = ? WHERE ca = ? AND serial = ? AND revoked_at IS NULL";
static const char SQL_ISSUED_EARLY_BEFORE[] =
	"UPDATE ca_issued SET renew_after = ? WHERE ca = ? AND issued_at < ? AND "
	"revoked_at IS NULL";
static const char SQL_ISSUED_EARLY_COUNT_ONE[] =
	"SELECT COUNT(*) FROM ca_issued WHERE ca = ? AND serial = ? AND revoked_at IS NULL";
static const char SQL_ISSUED_EARLY_COUNT_BEFORE[] =
	"SELECT COUNT(*) FROM ca_issued WHERE ca = ? AND issued_at < ? AND revoked_at IS NULL";

void aclm_ca_issued_row_free(struct aclm_ca_issued_row *r)
{
	free(r->ca);
	free(r->algo);
	free(r->serial);
	free(r->profile);
	free(r->account_ref);
	memset(r, 0, sizeof(*r));
}

static void read_issued(struct aclm_store *st, struct store_stmt *s, struct aclm_ca_issued_row *r)
{
	memset(r, 0, sizeof(*r));
	r->id = st->drv->column_int64(s, 0);
	r->ca = col_dup(st, s, 1);
	r->algo = col_dup(st, s, 2);
	r->serial = col_dup(st, s, 3);
	r->cert_id = st->drv->column_int64(s, 4);
	r->profile = col_dup(st, s, 5);
	r->account_ref = col_dup(st, s, 6);
	r->not_before = st->drv->column_int64(s, 7);
	r->not_after = st->drv->column_int64(s, 8);
	r->issued_at = st->drv->column_int64(s, 9);
	r->revoked_at = st->drv->column_int64(s, 10);
	r->reason = (int)st->drv->column_int64(s, 11);
	r->renew_after = st->drv->column_int64(s, 12);
}

int aclm_store_ca_issued_add(struct aclm_store *st, const struct aclm_ca_issued_row *r)
{
	const struct store_param p[] = {
		SP_T(r->ca), SP_T(r->algo), SP_T(r->serial), SP_I(r->cert_id), SP_T(r->profile),
		SP_T(r->account_ref), SP_I(r->not_before), SP_I(r->not_after), SP_I(aclm_now()),
	};
	return write_one(st, SQL_ISSUED_ADD, "insert CA certificate", p, SP_COUNT(p));
}

/* A serial as stored (BN_bn2hex: upper case, whole bytes, no extra leading
 * zero byte), whatever the user typed: "1d8a..." and "01D8A..." and
 * "0001D8A..." are one serial. */
static void upper_serial(const char *in, char *out, size_t n)
{
	size_t len;

	while (in[0] == '0' && in[1] != '\0')
		in++;
	len = strlen(in);
	if (len % 2 == 1 && n > 1) {
		out[0] = '0';
		aclm_strlcpy(out + 1, in, n - 1);
	} else {
		aclm_strlcpy(out, in, n);
	}
	for (char *c = out; *c != '\0'; c++)
		if (*c >= 'a' && *c <= 'f')
			*c = (char)(*c - 'a' + 'A');
}

int aclm_store_ca_issued_get(struct aclm_store *st, const char *ca, const char *serial,
                             struct aclm_ca_issued_row *out)
{
	char up[128];
	struct store_query q;
	int rc;

	upper_serial(serial, up, sizeof(up));
	{
		const struct store_param p[] = { SP_T(ca), SP_T(up) };
		if ((rc = store_query_open(st, &q, SQL_ISSUED_GET, "read CA certificate", 0, p,
		                           SP_COUNT(p))) != ACLM_OK)
			return rc;
	}
	rc = store_query_step(st, &q);
	if (rc == 1) {
		read_issued(st, q.stmt, out);
		rc = ACLM_OK;
	} else if (rc == 0) {
		rc = aclm_error(ACLM_ERR_NOTFOUND, "CA %s issued no certificate with serial %s", ca,
		                up);
	}
	store_query_close(st, &q);
	return rc;
}

int aclm_store_ca_issued_list(struct aclm_store *st, const struct aclm_ca_issued_filter *f,
                              aclm_ca_issued_fn fn, void *ctx)
{
	const struct store_param p[] = {
		SP_T(f->ca), SP_T(f->algo), SP_I(f->revoked_only ? 1 : 0),
	};
	struct store_query q;
	int rc;

	if ((rc = store_query_open(st, &q, SQL_ISSUED_LIST, "list CA certificates",
	                           STORE_STMT_STREAM, p, SP_COUNT(p))) != ACLM_OK)
		return rc;
	while ((rc = store_query_step(st, &q)) == 1) {
		struct aclm_ca_issued_row r;
		read_issued(st, q.stmt, &r);
		rc = fn(ctx, &r);
		aclm_ca_issued_row_free(&r);
		if (rc != 0)
			break;
	}
	store_query_close(st, &q);
	return rc;
}

int aclm_store_ca_issued_revoke(struct aclm_store *st, const char *ca, const char *serial,
                                int reason, int64_t when)
{
	struct aclm_ca_issued_row r;
	char up[128];
	int rc;

	upper_serial(serial, up, sizeof(up));
	if ((rc = aclm_store_begin(st)) != ACLM_OK)
		return rc;
	if ((rc = aclm_store_ca_issued_get(st, ca, up, &r)) != ACLM_OK) {
		aclm_store_rollback(st);
		return rc;
	}
	if (r.revoked_at != 0) {
		aclm_ca_issued_row_free(&r);
		aclm_store_rollback(st);
		return aclm_error(ACLM_ERR_EXISTS, "certificate %s of CA %s is revoked already", up,
		                  ca);
	}
	aclm_ca_issued_row_free(&r);
	{
		const struct store_param p[] = { SP_I(when), SP_I(reason), SP_T(ca), SP_T(up) };
		rc = store_run(st, SQL_ISSUED_REVOKE, "revoke CA certificate", p, SP_COUNT(p));
	}
	if (rc != ACLM_OK) {
		aclm_store_rollback(st);
		return rc;
	}
	return aclm_store_commit(st);
}

int aclm_store_ca_issued_renew_early(struct aclm_store *st, const char *ca, const char *serial,
                                     int64_t issued_before, int64_t when, int64_t *n)
{
	char up[128] = "";
	int rc;

	if (serial != NULL)
		upper_serial(serial, up, sizeof(up));
	if ((rc = aclm_store_begin(st)) != ACLM_OK)
		return rc;
	if (serial != NULL) {
		const struct store_param c[] = { SP_T(ca), SP_T(up) };
		const struct store_param p[] = { SP_I(when), SP_T(ca), SP_T(up) };
		rc = store_int64(st, SQL_ISSUED_EARLY_COUNT_ONE, "renew early", c, SP_COUNT(c), n);
		if (rc >= 0)
			rc = store_run(st, SQL_ISSUED_EARLY_ONE, "renew early", p, SP_COUNT(p));
	} else {
		const struct store_param c[] = { SP_T(ca), SP_I(issued_before) };
		const struct store_param p[] = { SP_I(when), SP_T(ca), SP_I(issued_before) };
		rc = store_int64(st, SQL_ISSUED_EARLY_COUNT_BEFORE, "renew early", c, SP_COUNT(c), n);
		if (rc >= 0)
			rc = store_run(st, SQL_ISSUED_EARLY_BEFORE, "renew early", p, SP_COUNT(p));
	}
	if (rc < 0) {
		aclm_store_rollback(st);
		return rc;
	}
	return aclm_store_commit(st);
}

/* --- ACME server objects -------------------------------------------------- */

#define OBJ_COLS "id, ca, kind, ref, account_ref, status, lookup, body, expires_at, " \
                 "created_at, updated_at"

static const char SQL_OBJ_ADD[] =
	"INSERT INTO ca_acme_objects (ca, kind, ref, account_ref, status, lookup, body, "
	"expires_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
static const char SQL_OBJ_UPDATE[] =
	"UPDATE ca_acme_objects SET status = ?, body = ?, updated_at = ?, "
	"expires_at = CASE WHEN ? > 0 THEN ? ELSE expires_at END, lookup = COALESCE(?, lookup) "
	"WHERE ref = ?";
static const char SQL_OBJ_GET[] =
	"SELECT " OBJ_COLS " FROM ca_acme_objects WHERE ca = ? AND kind = ? AND ref = ?";
static const char SQL_OBJ_GET_REF[] =
	"SELECT " OBJ_COLS " FROM ca_acme_objects WHERE kind = ? AND ref = ?";
static const char SQL_OBJ_FIND[] =
	"SELECT " OBJ_COLS " FROM ca_acme_objects WHERE ca = ? AND kind = ? AND lookup = ? "
	"AND COALESCE(?, account_ref) = account_ref ORDER BY id DESC";
static const char SQL_OBJ_LIST[] =
	"SELECT " OBJ_COLS " FROM ca_acme_objects WHERE kind = ? AND status = ? ORDER BY id";
static const char SQL_OBJ_LIST_ACCOUNT[] =
	"SELECT " OBJ_COLS " FROM ca_acme_objects WHERE ca = ? AND kind = ? AND account_ref = ? "
	"ORDER BY id DESC";
static const char SQL_OBJ_COUNT_LOOKUP[] =
	"SELECT COUNT(*) FROM ca_acme_objects WHERE ca = ? AND kind = ? AND lookup = ? AND "
	"created_at >= ?";
static const char SQL_OBJ_COUNT[] =
	"SELECT COUNT(*) FROM ca_acme_objects WHERE kind = ? AND account_ref = ? AND "
	"created_at >= ?";

void aclm_ca_acme_obj_free(struct aclm_ca_acme_obj *o)
{
	free(o->ca);
	free(o->kind);
	free(o->ref);
	free(o->account_ref);
	free(o->status);
	free(o->lookup);
	free(o->body);
	memset(o, 0, sizeof(*o));
}

static int read_obj(struct aclm_store *st, struct store_stmt *s, struct aclm_ca_acme_obj *o)
{
	memset(o, 0, sizeof(*o));
	o->id = st->drv->column_int64(s, 0);
	o->ca = col_dup(st, s, 1);
	o->kind = col_dup(st, s, 2);
	o->ref = col_dup(st, s, 3);
	o->account_ref = col_dup(st, s, 4);
	o->status = col_dup(st, s, 5);
	o->lookup = col_dup(st, s, 6);
	o->body = col_dup(st, s, 7);
	o->expires_at = st->drv->column_int64(s, 8);
	o->created_at = st->drv->column_int64(s, 9);
	o->updated_at = st->drv->column_int64(s, 10);
	if (o->ca == NULL || o->kind == NULL || o->ref == NULL || o->status == NULL ||
	    o->body == NULL) {
		aclm_ca_acme_obj_free(o);
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	}
	return ACLM_OK;
}

int aclm_store_ca_acme_add(struct aclm_store *st, const struct aclm_ca_acme_obj *o)
{
	int64_t now = aclm_now();
	const struct store_param p[] = {
		SP_T(o->ca), SP_T(o->kind), SP_T(o->ref), SP_T(o->account_ref), SP_T(o->status),
		SP_T(o->lookup), SP_T(o->body), SP_I(o->expires_at), SP_I(now), SP_I(now),
	};
	return write_one(st, SQL_OBJ_ADD, "insert ACME object", p, SP_COUNT(p));
}

int aclm_store_ca_acme_update(struct aclm_store *st, const char *ref, const char *status,
                              const char *body, int64_t expires_at, const char *lookup)
{
	const struct store_param p[] = {
		SP_T(status), SP_T(body), SP_I(aclm_now()), SP_I(expires_at), SP_I(expires_at),
		SP_T(lookup), SP_T(ref),
	};
	return write_one(st, SQL_OBJ_UPDATE, "update ACME object", p, SP_COUNT(p));
}

/* One ACME object by sql; ACLM_ERR_NOTFOUND when there is none. */
static int get_obj(struct aclm_store *st, const char *sql, const struct store_param *p, size_t n,
                   struct aclm_ca_acme_obj *out)
{
	struct store_query q;
	int rc;

	if ((rc = store_query_open(st, &q, sql, "read ACME object", 0, p, n)) != ACLM_OK)
		return rc;
	rc = store_query_step(st, &q);
	if (rc == 1)
		rc = read_obj(st, q.stmt, out);
	else if (rc == 0)
		rc = ACLM_ERR_NOTFOUND;
	store_query_close(st, &q);
	return rc;
}

int aclm_store_ca_acme_get(struct aclm_store *st, const char *ca, const char *kind,
                           const char *ref, struct aclm_ca_acme_obj *out)
{
	const struct store_param p[] = { SP_T(ca), SP_T(kind), SP_T(ref) };

	return get_obj(st, SQL_OBJ_GET, p, SP_COUNT(p), out);
}

int aclm_store_ca_acme_find_ref(struct aclm_store *st, const char *kind, const char *ref,
                                struct aclm_ca_acme_obj *out)
{
	const struct store_param p[] = { SP_T(kind), SP_T(ref) };

	return get_obj(st, SQL_OBJ_GET_REF, p, SP_COUNT(p), out);
}

/* Is status one of the comma-separated statuses? */
static bool status_in(const char *status, const char *statuses)
{
	size_t n = strlen(status);
	const char *p = statuses;

	while (p != NULL && *p != '\0') {
		const char *e = strchr(p, ',');
		size_t len = e != NULL ? (size_t)(e - p) : strlen(p);
		if (len == n && strncmp(p, status, n) == 0)
			return true;
		p = e != NULL ? e + 1 : NULL;
	}
	return false;
}

int aclm_store_ca_acme_find(struct aclm_store *st, const char *ca, const char *kind,
                            const char *lookup, const char *account_ref,
                            const char *statuses, struct aclm_ca_acme_obj *out)
{
	const struct store_param p[] = {
		SP_T(ca), SP_T(kind), SP_T(lookup), SP_T(account_ref),
	};
	struct store_query q;
	int rc;

	if ((rc = store_query_open(st, &q, SQL_OBJ_FIND, "find ACME object", 0, p,
	                           SP_COUNT(p))) != ACLM_OK)
		return rc;
	while ((rc = store_query_step(st, &q)) == 1) {
		const char *s = st->drv->column_text(q.stmt, 5);
		if (s != NULL && status_in(s, statuses)) {
			rc = read_obj(st, q.stmt, out);
			goto out;
		}
	}
	if (rc == 0)
		rc = ACLM_ERR_NOTFOUND;
out:
	store_query_close(st, &q);
	return rc;
}

int aclm_store_ca_acme_list(struct aclm_store *st, const char *kind, const char *status,
                            aclm_ca_acme_fn fn, void *ctx)
{
	const struct store_param p[] = { SP_T(kind), SP_T(status) };
	struct store_query q;
	int rc;

	if ((rc = store_query_open(st, &q, SQL_OBJ_LIST, "list ACME objects", STORE_STMT_STREAM,
	                           p, SP_COUNT(p))) != ACLM_OK)
		return rc;
	while ((rc = store_query_step(st, &q)) == 1) {
		struct aclm_ca_acme_obj o;
		if ((rc = read_obj(st, q.stmt, &o)) != ACLM_OK)
			break;
		rc = fn(ctx, &o);
		aclm_ca_acme_obj_free(&o);
		if (rc != 0)
			break;
	}
	store_query_close(st, &q);
	return rc;
}

int aclm_store_ca_acme_count(struct aclm_store *st, const char *kind, const char *account_ref,
                             int64_t since, int64_t *n)
{
	const struct store_param p[] = { SP_T(kind), SP_T(account_ref), SP_I(since) };
	int rc = store_int64(st, SQL_OBJ_COUNT, "count ACME objects", p, SP_COUNT(p), n);

	return rc < 0 ? rc : ACLM_OK;
}

int aclm_store_ca_acme_count_lookup(struct aclm_store *st, const char *ca, const char *kind,
                                    const char *lookup, int64_t since, int64_t *n)
{
	const struct store_param p[] = { SP_T(ca), SP_T(kind), SP_T(lookup), SP_I(since) };
	int rc = store_int64(st, SQL_OBJ_COUNT_LOOKUP, "count ACME objects", p, SP_COUNT(p), n);

	return rc < 0 ? rc : ACLM_OK;
}

int aclm_store_ca_acme_list_account(struct aclm_store *st, const char *ca, const char *kind,
                                    const char *account_ref, aclm_ca_acme_fn fn, void *ctx)
{
	const struct store_param p[] = { SP_T(ca), SP_T(kind), SP_T(account_ref) };
	struct store_query q;
	int rc;

	if ((rc = store_query_open(st, &q, SQL_OBJ_LIST_ACCOUNT, "list ACME objects",
	                           STORE_STMT_STREAM, p, SP_COUNT(p))) != ACLM_OK)
		return rc;
	while ((rc = store_query_step(st, &q)) == 1) {
		struct aclm_ca_acme_obj o;
		if ((rc = read_obj(st, q.stmt, &o)) != ACLM_OK)
			break;
		rc = fn(ctx, &o);
		aclm_ca_acme_obj_free(&o);
		if (rc != 0)
			break;
	}
	store_query_close(st, &q);
	return rc;
}
