/* The ACME client's rows (include/aclm/store_acme.h, migration 3). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "aclm/err.h"
#include "aclm/store_acme.h"
#include "aclm/str.h"
#include "aclm/timeutil.h"
#include "store-int.h"

static char *col_dup(struct aclm_store *st, struct store_stmt *s, int col)
{
	const char *t = st->drv->column_text(s, col);
	return t != NULL ? aclm_strdup(t) : NULL;
}

static unsigned char *blob_dup(struct aclm_store *st, struct store_stmt *s, int col, size_t *len)
{
	size_t n = 0;
	const unsigned char *b = st->drv->column_blob(s, col, &n);
	unsigned char *out;

	*len = 0;
	if (b == NULL || n == 0)
		return NULL;
	out = malloc(n);
	if (out != NULL) {
		memcpy(out, b, n);
		*len = n;
	}
	return out;
}

/* Run one write inside its own level so a failure is reported by it. */
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

static int insert_id(struct aclm_store *st, const char *sql, const char *what,
                     const struct store_param *p, size_t n, int64_t *id)
{
	int rc;

	if ((rc = aclm_store_begin(st)) != ACLM_OK)
		return rc;
	rc = store_int64(st, sql, what, p, n, id);
	if (rc < 0) {
		aclm_store_rollback(st);
		return rc;
	}
	return aclm_store_commit(st);
}

/* --- accounts ------------------------------------------------------------ */

#define ACCOUNT_COLS "id, ca, directory, url, key_type, key_spki, key_sealed, contact, status, " \
                     "created_at"

static const char SQL_ACCOUNT_GET[] =
	"SELECT " ACCOUNT_COLS " FROM acme_accounts WHERE ca = ? AND directory = ? "
	"AND status = 'valid'";
static const char SQL_ACCOUNT_LIST[] =
	"SELECT " ACCOUNT_COLS " FROM acme_accounts ORDER BY id";
static const char SQL_ACCOUNT_ADD[] =
	"INSERT INTO acme_accounts (ca, directory, url, key_type, key_spki, key_sealed, contact, "
	"status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'valid', ?, ?) RETURNING id";
static const char SQL_ACCOUNT_STATUS[] =
	"UPDATE acme_accounts SET status = ?, updated_at = ? WHERE id = ?";
static const char SQL_ACCOUNT_KEY[] =
	"UPDATE acme_accounts SET key_type = ?, key_spki = ?, key_sealed = ?, updated_at = ? "
	"WHERE id = ?";

void aclm_acme_account_row_free(struct aclm_acme_account_row *r)
{
	free(r->ca);
	free(r->directory);
	free(r->url);
	free(r->key_type);
	free(r->key_spki);
	if (r->key_sealed != NULL)
		OPENSSL_cleanse(r->key_sealed, r->key_sealed_len);
	free(r->key_sealed);
	free(r->contact);
	free(r->status);
	memset(r, 0, sizeof(*r));
}

static void read_account(struct aclm_store *st, struct store_stmt *s,
                         struct aclm_acme_account_row *r)
{
	memset(r, 0, sizeof(*r));
	r->id = st->drv->column_int64(s, 0);
	r->ca = col_dup(st, s, 1);
	r->directory = col_dup(st, s, 2);
	r->url = col_dup(st, s, 3);
	r->key_type = col_dup(st, s, 4);
	r->key_spki = col_dup(st, s, 5);
	r->key_sealed = blob_dup(st, s, 6, &r->key_sealed_len);
	r->contact = col_dup(st, s, 7);
	r->status = col_dup(st, s, 8);
	r->created_at = st->drv->column_int64(s, 9);
}

int aclm_store_acme_account_get(struct aclm_store *st, const char *ca, const char *directory,
                                struct aclm_acme_account_row *out)
{
	const struct store_param p[] = { SP_T(ca), SP_T(directory) };
	struct store_query q;
	int rc;

	if ((rc = store_query_open(st, &q, SQL_ACCOUNT_GET, "read ACME account", 0, p,
	                           SP_COUNT(p))) != ACLM_OK)
		return rc;
	rc = store_query_step(st, &q);
	if (rc == 1) {
		read_account(st, q.stmt, out);
		rc = out->url != NULL && out->key_sealed != NULL ? ACLM_OK :
		     aclm_error(ACLM_ERR_DB, "ACME account %lld of CA %s is incomplete",
		                (long long)out->id, ca);
	} else if (rc == 0) {
		rc = ACLM_ERR_NOTFOUND;
	}
	store_query_close(st, &q);
	return rc;
}

int aclm_store_acme_account_add(struct aclm_store *st, const struct aclm_acme_account_row *r,
                                int64_t *id)
{
	int64_t now = aclm_now();
	const struct store_param p[] = {
		SP_T(r->ca), SP_T(r->directory), SP_T(r->url), SP_T(r->key_type), SP_T(r->key_spki),
		SP_B(r->key_sealed, r->key_sealed_len), SP_T(r->contact), SP_I(now), SP_I(now),
	};
	int rc = insert_id(st, SQL_ACCOUNT_ADD, "insert ACME account", p, SP_COUNT(p), id);

	return rc < 0 ? rc : ACLM_OK;
}

int aclm_store_acme_account_update(struct aclm_store *st, int64_t id, const char *status,
                                   const char *key_type, const char *key_spki,
                                   const unsigned char *key_sealed, size_t key_sealed_len)
{
	int64_t now = aclm_now();
	int rc;

	if ((rc = aclm_store_begin(st)) != ACLM_OK)
		return rc;
	if (status != NULL) {
		const struct store_param p[] = { SP_T(status), SP_I(now), SP_I(id) };
		if ((rc = store_run(st, SQL_ACCOUNT_STATUS, "update ACME account", p,
		                    SP_COUNT(p))) != ACLM_OK)
			goto fail;
	}
	if (key_sealed != NULL) {
		const struct store_param p[] = {
			SP_T(key_type), SP_T(key_spki), SP_B(key_sealed, key_sealed_len), SP_I(now), SP_I(id),
		};
		if ((rc = store_run(st, SQL_ACCOUNT_KEY, "update ACME account key", p,
		                    SP_COUNT(p))) != ACLM_OK)
			goto fail;
	}
	return aclm_store_commit(st);
fail:
	aclm_store_rollback(st);
	return rc;
}

int aclm_store_acme_account_list(struct aclm_store *st, aclm_acme_account_fn fn, void *ctx)
{
	struct store_query q;
	int rc;

	if ((rc = store_query_open(st, &q, SQL_ACCOUNT_LIST, "list ACME accounts", 0, NULL,
	                           0)) != ACLM_OK)
		return rc;
	while ((rc = store_query_step(st, &q)) == 1) {
		struct aclm_acme_account_row r;
		read_account(st, q.stmt, &r);
		rc = fn(ctx, &r);
		aclm_acme_account_row_free(&r);
		if (rc != 0)
			break;
	}
	store_query_close(st, &q);
	return rc < 0 ? rc : ACLM_OK;
}

/* --- managed certificates ------------------------------------------------ */

#define MANAGED_COLS "id, name, identifiers, key_type, ca, cas, solver, profile, status, " \
                     "last_error, pair_id, current_cert_id, renew_at, next_attempt_at, failures, " \
                     "reuse_key, ari_check_at"

static const char SQL_MANAGED_GET[] =
	"SELECT " MANAGED_COLS " FROM managed_certificates WHERE id = ?";
static const char SQL_MANAGED_LIST[] =
	"SELECT " MANAGED_COLS " FROM managed_certificates ORDER BY id";
static const char SQL_MANAGED_FIND[] =
	"SELECT id FROM managed_certificates WHERE name = ?";
static const char SQL_MANAGED_INSERT[] =
	"INSERT INTO managed_certificates (name, identifiers, key_type, cas, solver, profile, "
	"reuse_key, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?) "
	"RETURNING id";
static const char SQL_MANAGED_UPDATE[] =
	"UPDATE managed_certificates SET identifiers = ?, key_type = ?, cas = ?, solver = ?, "
	"profile = ?, reuse_key = ?, updated_at = ? WHERE id = ?";
static const char SQL_MANAGED_PAIR[] =
	"UPDATE managed_certificates SET pair_id = ?, updated_at = ? WHERE id = ?";
static const char SQL_MANAGED_CURRENT[] =
	"UPDATE managed_certificates SET current_cert_id = ?, ca = ?, renew_at = ?, "
	"status = 'valid', failures = 0, last_error = NULL, next_attempt_at = 0, updated_at = ? "
	"WHERE id = ?";
static const char SQL_MANAGED_FAILURE[] =
	"UPDATE managed_certificates SET status = COALESCE(?, status), last_error = ?, "
	"failures = failures + 1, next_attempt_at = ?, updated_at = ? WHERE id = ?";
static const char SQL_MANAGED_BY_CERT[] =
	"SELECT id FROM managed_certificates WHERE current_cert_id = ? ORDER BY id";

void aclm_managed_row_free(struct aclm_managed_row *r)
{
	free(r->name);
	free(r->identifiers);
	free(r->key_type);
	free(r->ca);
	free(r->cas);
	free(r->solver);
	free(r->profile);
	free(r->status);
	free(r->last_error);
	memset(r, 0, sizeof(*r));
}

static void read_managed(struct aclm_store *st, struct store_stmt *s, struct aclm_managed_row *r)
{
	const struct store_driver *d = st->drv;

	memset(r, 0, sizeof(*r));
	r->id = d->column_int64(s, 0);
	r->name = col_dup(st, s, 1);
	r->identifiers = col_dup(st, s, 2);
	r->key_type = col_dup(st, s, 3);
	r->ca = col_dup(st, s, 4);
	r->cas = col_dup(st, s, 5);
	r->solver = col_dup(st, s, 6);
	r->profile = col_dup(st, s, 7);
	r->status = col_dup(st, s, 8);
	r->last_error = col_dup(st, s, 9);
	r->pair_id = d->column_int64(s, 10);
	r->current_cert_id = d->column_int64(s, 11);
	r->renew_at = d->column_int64(s, 12);
	r->next_attempt_at = d->column_int64(s, 13);
	r->failures = d->column_int64(s, 14);
	r->reuse_key = d->column_int64(s, 15) != 0;
	r->ari_check_at = d->column_int64(s, 16);
}

int aclm_store_managed_upsert(struct aclm_store *st, const struct aclm_managed_row *r, int64_t *id)
{
	int64_t now = aclm_now(), found = 0;
	int rc;

	if ((rc = aclm_store_begin(st)) != ACLM_OK)
		return rc;
	{
		const struct store_param p[] = { SP_T(r->name) };
		rc = store_int64(st, SQL_MANAGED_FIND, "find managed certificate", p, SP_COUNT(p), &found);
		if (rc < 0)
			goto fail;
	}
	if (rc == 1) {
		const struct store_param p[] = {
			SP_T(r->identifiers), SP_T(r->key_type), SP_T(r->cas), SP_T(r->solver),
			SP_T(r->profile), SP_I(r->reuse_key), SP_I(now), SP_I(found),
		};
		if ((rc = store_run(st, SQL_MANAGED_UPDATE, "update managed certificate", p,
		                    SP_COUNT(p))) != ACLM_OK)
			goto fail;
		*id = found;
	} else {
		const struct store_param p[] = {
			SP_T(r->name), SP_T(r->identifiers), SP_T(r->key_type), SP_T(r->cas),
			SP_T(r->solver), SP_T(r->profile), SP_I(r->reuse_key), SP_I(now), SP_I(now),
		};
		rc = store_int64(st, SQL_MANAGED_INSERT, "insert managed certificate", p, SP_COUNT(p),
		                 id);
		if (rc < 0)
			goto fail;
	}
	return aclm_store_commit(st);
fail:
	aclm_store_rollback(st);
	return rc;
}

int aclm_store_managed_get(struct aclm_store *st, int64_t id, struct aclm_managed_row *out)
{
	const struct store_param p[] = { SP_I(id) };
	struct store_query q;
	int rc;

	if ((rc = store_query_open(st, &q, SQL_MANAGED_GET, "read managed certificate", 0, p,
	                           SP_COUNT(p))) != ACLM_OK)
		return rc;
	rc = store_query_step(st, &q);
	if (rc == 1) {
		read_managed(st, q.stmt, out);
		rc = ACLM_OK;
	} else if (rc == 0) {
		rc = aclm_error(ACLM_ERR_NOTFOUND, "no managed certificate %lld", (long long)id);
	}
	store_query_close(st, &q);
	return rc;
}

int aclm_store_managed_list(struct aclm_store *st, aclm_managed_fn fn, void *ctx)
{
	struct store_query q;
	int rc;

	if ((rc = store_query_open(st, &q, SQL_MANAGED_LIST, "list managed certificates", 0, NULL,
	                           0)) != ACLM_OK)
		return rc;
	while ((rc = store_query_step(st, &q)) == 1) {
		struct aclm_managed_row r;
		read_managed(st, q.stmt, &r);
		rc = fn(ctx, &r);
		aclm_managed_row_free(&r);
		if (rc != 0)
			break;
	}
	store_query_close(st, &q);
	return rc < 0 ? rc : ACLM_OK;
}

int aclm_store_managed_set_pair(struct aclm_store *st, int64_t id, int64_t pair_id)
{
	const struct store_param p[] = { SP_I(pair_id), SP_I(aclm_now()), SP_I(id) };
	return write_one(st, SQL_MANAGED_PAIR, "pair managed certificates", p, SP_COUNT(p));
}

int aclm_store_managed_set_current(struct aclm_store *st, int64_t id, int64_t cert_id,
                                   const char *ca, int64_t renew_at)
{
	const struct store_param p[] = {
		SP_I(cert_id), SP_T(ca), SP_I(renew_at), SP_I(aclm_now()), SP_I(id),
	};
	return write_one(st, SQL_MANAGED_CURRENT, "set current certificate", p, SP_COUNT(p));
}

int aclm_store_managed_set_failure(struct aclm_store *st, int64_t id, const char *status,
                                   const char *error, int64_t next_attempt_at)
{
	const struct store_param p[] = {
		SP_T(status), SP_T(error), SP_I(next_attempt_at), SP_I(aclm_now()), SP_I(id),
	};
	return write_one(st, SQL_MANAGED_FAILURE, "record failure", p, SP_COUNT(p));
}

int aclm_store_managed_by_cert(struct aclm_store *st, int64_t cert_id, int64_t *id)
{
	const struct store_param p[] = { SP_I(cert_id) };
	int rc;

	*id = 0;
	rc = store_int64(st, SQL_MANAGED_BY_CERT, "find managed certificate", p, SP_COUNT(p), id);
	return rc < 0 ? rc : ACLM_OK;
}

/* --- orders ---------------------------------------------------------------- */

#define ORDER_COLS "id, managed_id, account_id, cert_id, ca, state, status, url, finalize_url, " \
                   "cert_url, identifiers, key_type, key_spki, key_sealed, replaces, profile, " \
                   "error, created_at, updated_at"

static const char SQL_ORDER_OPEN[] =
	"SELECT " ORDER_COLS " FROM acme_orders WHERE managed_id = ? "
	"AND state NOT IN ('done', 'failed') ORDER BY id";
static const char SQL_ORDER_LIST[] =
	"SELECT " ORDER_COLS " FROM acme_orders WHERE managed_id = ? OR ? = 0 ORDER BY id";
static const char SQL_ORDER_BY_CERT[] =
	"SELECT " ORDER_COLS " FROM acme_orders WHERE cert_id = ? ORDER BY id DESC";
static const char SQL_ORDER_ADD[] =
	"INSERT INTO acme_orders (managed_id, account_id, ca, state, status, url, finalize_url, "
	"cert_url, identifiers, key_type, key_spki, key_sealed, replaces, profile, created_at, "
	"updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id";
static const char SQL_ORDER_UPDATE[] =
	"UPDATE acme_orders SET account_id = ?, state = ?, status = ?, url = ?, finalize_url = ?, "
	"cert_url = ?, key_spki = ?, key_sealed = ?, replaces = ?, cert_id = ?, error = ?, "
	"updated_at = ? WHERE id = ?";

void aclm_acme_order_row_free(struct aclm_acme_order_row *r)
{
	free(r->ca);
	free(r->state);
	free(r->status);
	free(r->url);
	free(r->finalize_url);
	free(r->cert_url);
	free(r->identifiers);
	free(r->key_type);
	free(r->key_spki);
	free(r->key_sealed);
	free(r->replaces);
	free(r->profile);
	free(r->error);
	memset(r, 0, sizeof(*r));
}

static void read_order(struct aclm_store *st, struct store_stmt *s, struct aclm_acme_order_row *r)
{
	const struct store_driver *d = st->drv;

	memset(r, 0, sizeof(*r));
	r->id = d->column_int64(s, 0);
	r->managed_id = d->column_int64(s, 1);
	r->account_id = d->column_int64(s, 2);
	r->cert_id = d->column_int64(s, 3);
	r->ca = col_dup(st, s, 4);
	r->state = col_dup(st, s, 5);
	r->status = col_dup(st, s, 6);
	r->url = col_dup(st, s, 7);
	r->finalize_url = col_dup(st, s, 8);
	r->cert_url = col_dup(st, s, 9);
	r->identifiers = col_dup(st, s, 10);
	r->key_type = col_dup(st, s, 11);
	r->key_spki = col_dup(st, s, 12);
	r->key_sealed = blob_dup(st, s, 13, &r->key_sealed_len);
	r->replaces = col_dup(st, s, 14);
	r->profile = col_dup(st, s, 15);
	r->error = col_dup(st, s, 16);
	r->created_at = d->column_int64(s, 17);
	r->updated_at = d->column_int64(s, 18);
}

static int order_one(struct aclm_store *st, const char *sql, int64_t key,
                     struct aclm_acme_order_row *out)
{
	const struct store_param p[] = { SP_I(key) };
	struct store_query q;
	int rc;

	if ((rc = store_query_open(st, &q, sql, "read ACME order", 0, p, SP_COUNT(p))) != ACLM_OK)
		return rc;
	rc = store_query_step(st, &q);
	if (rc == 1) {
		read_order(st, q.stmt, out);
		rc = ACLM_OK;
	} else if (rc == 0) {
		rc = ACLM_ERR_NOTFOUND;
	}
	store_query_close(st, &q);
	return rc;
}

int aclm_store_acme_order_open(struct aclm_store *st, int64_t managed_id,
                               struct aclm_acme_order_row *out)
{
	return order_one(st, SQL_ORDER_OPEN, managed_id, out);
}

int aclm_store_acme_order_by_cert(struct aclm_store *st, int64_t cert_id,
                                  struct aclm_acme_order_row *out)
{
	return order_one(st, SQL_ORDER_BY_CERT, cert_id, out);
}

int aclm_store_acme_order_add(struct aclm_store *st, const struct aclm_acme_order_row *r,
                              int64_t *id)
{
	struct aclm_acme_order_row open;
	int64_t now = aclm_now();
	int rc;

	if ((rc = aclm_store_begin(st)) != ACLM_OK)
		return rc;
	rc = aclm_store_acme_order_open(st, r->managed_id, &open);
	if (rc == ACLM_OK) {
		rc = aclm_error(ACLM_ERR_EXISTS, "managed certificate %lld has an unfinished order "
		                "(%lld)", (long long)r->managed_id, (long long)open.id);
		aclm_acme_order_row_free(&open);
		goto fail;
	}
	if (rc != ACLM_ERR_NOTFOUND)
		goto fail;
	{
		const struct store_param p[] = {
			SP_I(r->managed_id),
			r->account_id ? (struct store_param)SP_I(r->account_id) : (struct store_param)SP_N(),
			SP_T(r->ca), SP_T(r->state), SP_T(r->status), SP_T(r->url), SP_T(r->finalize_url),
			SP_T(r->cert_url), SP_T(r->identifiers), SP_T(r->key_type), SP_T(r->key_spki),
			r->key_sealed ? (struct store_param)SP_B(r->key_sealed, r->key_sealed_len)
			              : (struct store_param)SP_N(),
			SP_T(r->replaces), SP_T(r->profile), SP_I(now), SP_I(now),
		};
		rc = store_int64(st, SQL_ORDER_ADD, "insert ACME order", p, SP_COUNT(p), id);
		if (rc < 0)
			goto fail;
	}
	return aclm_store_commit(st);
fail:
	aclm_store_rollback(st);
	return rc;
}

int aclm_store_acme_order_update(struct aclm_store *st, const struct aclm_acme_order_row *r)
{
	const struct store_param p[] = {
		r->account_id ? (struct store_param)SP_I(r->account_id) : (struct store_param)SP_N(),
		SP_T(r->state), SP_T(r->status), SP_T(r->url), SP_T(r->finalize_url), SP_T(r->cert_url),
		SP_T(r->key_spki),
		r->key_sealed ? (struct store_param)SP_B(r->key_sealed, r->key_sealed_len)
		              : (struct store_param)SP_N(),
		SP_T(r->replaces),
		r->cert_id ? (struct store_param)SP_I(r->cert_id) : (struct store_param)SP_N(),
		SP_T(r->error), SP_I(aclm_now()), SP_I(r->id),
	};
	return write_one(st, SQL_ORDER_UPDATE, "update ACME order", p, SP_COUNT(p));
}

int aclm_store_acme_order_list(struct aclm_store *st, int64_t managed_id,
                               aclm_acme_order_fn fn, void *ctx)
{
	const struct store_param p[] = { SP_I(managed_id), SP_I(managed_id) };
	struct store_query q;
	int rc;

	if ((rc = store_query_open(st, &q, SQL_ORDER_LIST, "list ACME orders", 0, p,
	                           SP_COUNT(p))) != ACLM_OK)
		return rc;
	while ((rc = store_query_step(st, &q)) == 1) {
		struct aclm_acme_order_row r;
		read_order(st, q.stmt, &r);
		rc = fn(ctx, &r);
		aclm_acme_order_row_free(&r);
		if (rc != 0)
			break;
	}
	store_query_close(st, &q);
	return rc < 0 ? rc : ACLM_OK;
}

/* --- authorizations, CA backoff ------------------------------------------ */

static const char SQL_AUTHZ_PUT[] =
	"INSERT INTO acme_authorizations (order_id, url, identifier, status, challenge_type, "
	"challenge_url, token, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
	"ON CONFLICT (order_id, url) DO UPDATE SET status = excluded.status, "
	"challenge_type = excluded.challenge_type, challenge_url = excluded.challenge_url, "
	"token = excluded.token, updated_at = excluded.updated_at";
static const char SQL_CA_GET[] =
	"SELECT backoff_until, failures FROM acme_ca_state WHERE ca = ?";
static const char SQL_CA_SET[] =
	"INSERT INTO acme_ca_state (ca, failures, backoff_until, last_error) VALUES (?, ?, ?, ?) "
	"ON CONFLICT (ca) DO UPDATE SET failures = excluded.failures, "
	"backoff_until = excluded.backoff_until, last_error = excluded.last_error";

int aclm_store_acme_authz_put(struct aclm_store *st, int64_t order_id, const char *url,
                              const char *identifier, const char *status,
                              const char *challenge_type, const char *challenge_url,
                              const char *token)
{
	const struct store_param p[] = {
		SP_I(order_id), SP_T(url), SP_T(identifier), SP_T(status), SP_T(challenge_type),
		SP_T(challenge_url), SP_T(token), SP_I(aclm_now()),
	};
	return write_one(st, SQL_AUTHZ_PUT, "record ACME authorization", p, SP_COUNT(p));
}

int aclm_store_acme_ca_backoff(struct aclm_store *st, const char *ca, int64_t *until,
                               int64_t *failures)
{
	const struct store_param p[] = { SP_T(ca) };
	struct store_query q;
	int rc;

	*until = 0;
	*failures = 0;
	if ((rc = store_query_open(st, &q, SQL_CA_GET, "read CA backoff", 0, p,
	                           SP_COUNT(p))) != ACLM_OK)
		return rc;
	rc = store_query_step(st, &q);
	if (rc == 1) {
		*until = st->drv->column_int64(q.stmt, 0);
		*failures = st->drv->column_int64(q.stmt, 1);
	}
	store_query_close(st, &q);
	return rc < 0 ? rc : ACLM_OK;
}

int aclm_store_acme_ca_set_backoff(struct aclm_store *st, const char *ca, int64_t until,
                                   int64_t failures, const char *error)
{
	const struct store_param p[] = { SP_T(ca), SP_I(failures), SP_I(until), SP_T(error) };
	return write_one(st, SQL_CA_SET, "record CA backoff", p, SP_COUNT(p));
}

static const char SQL_ORDERS_SINCE[] =
	"SELECT COUNT(*) FROM acme_orders WHERE ca = ? AND created_at >= ?";

int aclm_store_acme_orders_since(struct aclm_store *st, const char *ca, int64_t since,
                                 int64_t *count)
{
	const struct store_param p[] = { SP_T(ca), SP_I(since) };
	int rc;

	*count = 0;
	rc = store_int64(st, SQL_ORDERS_SINCE, "count ACME orders", p, SP_COUNT(p), count);
	return rc < 0 ? rc : ACLM_OK;
}

static const char SQL_MANAGED_OPEN_ORDER[] =
	"SELECT COUNT(*) FROM acme_orders WHERE managed_id = ? AND state NOT IN ('done', 'failed')";
static const char SQL_MANAGED_DEL_AUTHZ[] =
	"DELETE FROM acme_authorizations WHERE order_id IN "
	"(SELECT id FROM acme_orders WHERE managed_id = ?)";
static const char SQL_MANAGED_DEL_ORDERS[] = "DELETE FROM acme_orders WHERE managed_id = ?";
static const char SQL_MANAGED_DEL_JOBS[] =
	"DELETE FROM jobs WHERE kind IN ('renew', 'renew-now') AND subject = ? "
	"AND state IN ('pending', 'running')";
static const char SQL_MANAGED_UNPAIR[] =
	"UPDATE managed_certificates SET pair_id = NULL WHERE pair_id = ?";
static const char SQL_MANAGED_DEL[] = "DELETE FROM managed_certificates WHERE id = ?";

int aclm_store_managed_delete(struct aclm_store *st, const char *actor, int64_t id)
{
	struct aclm_managed_row m;
	char subject[32], *detail = NULL;
	int64_t open = 0;
	int rc;

	if ((rc = aclm_store_begin(st)) != ACLM_OK)
		return rc;
	if ((rc = aclm_store_managed_get(st, id, &m)) != ACLM_OK)
		goto fail;
	{
		const struct store_param p[] = { SP_I(id) };
		if ((rc = store_int64(st, SQL_MANAGED_OPEN_ORDER, "look for orders in flight", p, 1,
		                      &open)) < 0)
			goto fail_row;
	}
	if (open > 0) {
		rc = aclm_error(ACLM_ERR_EXISTS, "managed certificate %lld (%s) has an order in "
		                "flight: try again when it is done", (long long)id, m.name);
		goto fail_row;
	}
	snprintf(subject, sizeof(subject), "%lld", (long long)id);
	{
		const struct store_param pi[] = { SP_I(id) };
		const struct store_param ps[] = { SP_T(subject) };
		if ((rc = store_run(st, SQL_MANAGED_DEL_AUTHZ, "delete authorizations", pi, 1)) != ACLM_OK ||
		    (rc = store_run(st, SQL_MANAGED_DEL_ORDERS, "delete orders", pi, 1)) != ACLM_OK ||
		    (rc = store_run(st, SQL_MANAGED_DEL_JOBS, "delete jobs", ps, 1)) != ACLM_OK ||
		    (rc = store_run(st, SQL_MANAGED_UNPAIR, "unpair", pi, 1)) != ACLM_OK ||
		    (rc = store_run(st, SQL_MANAGED_DEL, "delete managed certificate", pi, 1)) != ACLM_OK)
			goto fail_row;
	}
	{
		json_t *d = json_pack("{s:s,s:s?,s:s?,s:I}", "actor", actor ? actor : "system",
		                      "identifiers", m.identifiers, "cas", m.cas, "current_cert_id",
		                      (json_int_t)m.current_cert_id);
		detail = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		json_decref(d);
	}
	rc = aclm_store_append_event(st, "managed.deleted", m.name, detail);
	free(detail);
	if (rc != ACLM_OK)
		goto fail_row;
	aclm_managed_row_free(&m);
	return aclm_store_commit(st);
fail_row:
	aclm_managed_row_free(&m);
fail:
	return store_end(st, rc);
}

static const char SQL_MANAGED_ARI_CHECK[] =
	"UPDATE managed_certificates SET ari_check_at = ? WHERE id = ?";

int aclm_store_managed_set_ari_check(struct aclm_store *st, int64_t id, int64_t at)
{
	const struct store_param p[] = { SP_I(at), SP_I(id) };

	return store_run(st, SQL_MANAGED_ARI_CHECK, "record the next ARI check", p, SP_COUNT(p));
}
