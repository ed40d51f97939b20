/* Policies and the endpoint view of the policy engine (store_policy.h).
 * Same rules as store.c: every statement once, '?' placeholders, portable
 * SQL. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "aclm/err.h"
#include "aclm/store_policy.h"
#include "aclm/str.h"
#include "aclm/timeutil.h"
#include "store-int.h"

static const char SQL_POLICY_EXISTS[] = "SELECT id FROM policies WHERE name = ?";
static const char SQL_POLICY_INSERT[] =
	"INSERT INTO policies (name, body, created_at, updated_at) VALUES (?, ?, ?, ?)";
static const char SQL_POLICY_UPDATE[] =
	"UPDATE policies SET body = ?, updated_at = ? WHERE name = ?";
static const char SQL_POLICY_GET[] = "SELECT body, is_default FROM policies WHERE name = ?";
static const char SQL_POLICY_DEFAULT[] = "SELECT name FROM policies WHERE is_default = 1";
static const char SQL_POLICY_CLEAR_DEFAULT[] =
	"UPDATE policies SET is_default = 0 WHERE is_default = 1";
static const char SQL_POLICY_SET_DEFAULT[] =
	"UPDATE policies SET is_default = 1 WHERE name = ?";
static const char SQL_POLICY_LIST[] =
	"SELECT name, body, is_default, created_at, updated_at FROM policies ORDER BY name";
static const char SQL_POLICY_DELETE[] = "DELETE FROM policies WHERE name = ?";
/* The latest result of each endpoint by the (endpoint_id, id) index. */
static const char SQL_POLICY_ENDPOINTS[] =
	"SELECT e.id, e.host, e.ip, e.port, e.sni, r.id, r.scanned_at, r.reachable, r.pq_groups, "
	"r.negotiated_group, r.leaf_cert_id, k.spki_sha256, c.sans "
	"FROM endpoints e "
	"LEFT JOIN scan_results r ON r.id = "
	"(SELECT MAX(x.id) FROM scan_results x WHERE x.endpoint_id = e.id) "
	"LEFT JOIN certificates c ON c.id = r.leaf_cert_id "
	"LEFT JOIN keys k ON k.id = c.key_id "
	"ORDER BY e.id";

static const char SQL_POLICY_GENERATION[] =
	"SELECT (SELECT COUNT(*) FROM certificates), (SELECT COALESCE(MAX(id), 0) FROM certificates), "
	"(SELECT COUNT(*) FROM endpoints), (SELECT COALESCE(MAX(id), 0) FROM endpoints), "
	"(SELECT COUNT(*) FROM scan_results), (SELECT COALESCE(MAX(id), 0) FROM scan_results), "
	"(SELECT COUNT(*) FROM policies)";



int aclm_store_policy_put(struct aclm_store *st, const char *actor, const char *name,
                          const char *body, bool replace)
{
	const struct store_param pn[] = { SP_T(name) };
	int64_t id = 0, now = aclm_now();
	int rc;

	if ((rc = aclm_store_begin(st)) != ACLM_OK)
		return rc;
	if ((rc = store_int64(st, SQL_POLICY_EXISTS, "look up a policy", pn, 1, &id)) < 0)
		return store_end(st, rc);
	if (rc == 1 && !replace)
		return store_end(st, aclm_error(ACLM_ERR_EXISTS, "policy '%s' exists already "
		                                               "(--replace to change it)", name));
	if (rc == 1) {
		const struct store_param p[] = { SP_T(body), SP_I(now), SP_T(name) };
		rc = store_run(st, SQL_POLICY_UPDATE, "replace a policy", p, SP_COUNT(p));
		if (rc == ACLM_OK)
			rc = store_audit(st, "policy.replaced", name, actor, NULL);
	} else {
		const struct store_param p[] = { SP_T(name), SP_T(body), SP_I(now), SP_I(now) };
		rc = store_run(st, SQL_POLICY_INSERT, "add a policy", p, SP_COUNT(p));
		if (rc == ACLM_OK)
			rc = store_audit(st, "policy.added", name, actor, NULL);
	}
	return store_end(st, rc);
}

int aclm_store_policy_get(struct aclm_store *st, const char *name, char **body,
                          bool *is_default)
{
	const struct store_param p[] = { SP_T(name) };
	struct store_query q;
	int rc;

	*body = NULL;
	if ((rc = store_query_open(st, &q, SQL_POLICY_GET, "read a policy", 0, p, 1)) != ACLM_OK)
		return rc;
	rc = store_query_step(st, &q);
	if (rc == 1) {
		const char *b = st->drv->column_text(q.stmt, 0);
		if (is_default != NULL)
			*is_default = st->drv->column_int64(q.stmt, 1) != 0;
		*body = aclm_strdup(b != NULL ? b : "{}");
		rc = *body != NULL ? ACLM_OK : aclm_error(ACLM_ERR_NOMEM, "out of memory");
	} else if (rc == 0) {
		rc = aclm_error(ACLM_ERR_NOTFOUND, "no policy '%s' (aclm policy list)", name);
	}
	store_query_close(st, &q);
	return rc;
}

int aclm_store_policy_default(struct aclm_store *st, char **name)
{
	struct store_query q;
	int rc;

	*name = NULL;
	if ((rc = store_query_open(st, &q, SQL_POLICY_DEFAULT, "read the default policy", 0,
	                           NULL, 0)) != ACLM_OK)
		return rc;
	rc = store_query_step(st, &q);
	if (rc == 1) {
		*name = aclm_strdup(st->drv->column_text(q.stmt, 0));
		rc = *name != NULL ? ACLM_OK : aclm_error(ACLM_ERR_NOMEM, "out of memory");
	}
	store_query_close(st, &q);
	return rc;
}

int aclm_store_policy_set_default(struct aclm_store *st, const char *actor, const char *name)
{
	int64_t id = 0;
	int rc;

	if ((rc = aclm_store_begin(st)) != ACLM_OK)
		return rc;
	if (name != NULL) {
		const struct store_param p[] = { SP_T(name) };
		if ((rc = store_int64(st, SQL_POLICY_EXISTS, "look up a policy", p, 1, &id)) < 0)
			return store_end(st, rc);
		if (rc == 0)
			return store_end(st, aclm_error(ACLM_ERR_NOTFOUND, "no policy '%s' (aclm policy "
			                                                 "list)", name));
	}
	rc = store_run(st, SQL_POLICY_CLEAR_DEFAULT, "clear the default policy", NULL, 0);
	if (rc == ACLM_OK && name != NULL) {
		const struct store_param p[] = { SP_T(name) };
		rc = store_run(st, SQL_POLICY_SET_DEFAULT, "set the default policy", p, 1);
	}
	if (rc == ACLM_OK)
		rc = store_audit(st, "policy.default", name != NULL ? name : "", actor, NULL);
	return store_end(st, rc);
}

int aclm_store_policy_list(struct aclm_store *st, aclm_policy_rec_fn fn, void *ctx)
{
	struct store_query q;
	int rc;

	if ((rc = store_query_open(st, &q, SQL_POLICY_LIST, "list policies", 0, NULL, 0)) !=
	    ACLM_OK)
		return rc;
	while ((rc = store_query_step(st, &q)) == 1) {
		const struct store_driver *d = st->drv;
		struct aclm_policy_rec r = {
			.name = d->column_text(q.stmt, 0),
			.body = d->column_text(q.stmt, 1),
			.is_default = d->column_int64(q.stmt, 2) != 0,
			.created_at = d->column_int64(q.stmt, 3),
			.updated_at = d->column_int64(q.stmt, 4),
		};
		if (r.name == NULL || r.body == NULL)
			continue;
		if ((rc = fn(ctx, &r)) != 0)
			break;
	}
	store_query_close(st, &q);
	return rc;
}

int aclm_store_policy_delete(struct aclm_store *st, const char *actor, const char *name)
{
	const struct store_param p[] = { SP_T(name) };
	int64_t id = 0;
	int rc;

	if ((rc = aclm_store_begin(st)) != ACLM_OK)
		return rc;
	if ((rc = store_int64(st, SQL_POLICY_EXISTS, "look up a policy", p, 1, &id)) < 0)
		return store_end(st, rc);
	if (rc == 0)
		return store_end(st, aclm_error(ACLM_ERR_NOTFOUND, "no policy '%s' (aclm policy list)",
		                             name));
	rc = store_run(st, SQL_POLICY_DELETE, "delete a policy", p, 1);
	if (rc == ACLM_OK)
		rc = store_audit(st, "policy.deleted", name, actor, NULL);
	return store_end(st, rc);
}

static const char *text_or_empty(struct aclm_store *st, struct store_stmt *s, int col)
{
	const char *t = st->drv->column_text(s, col);

	return t != NULL ? t : "";
}

int aclm_store_policy_endpoints(struct aclm_store *st, aclm_policy_endpoint_fn fn, void *ctx)
{
	struct store_query q;
	int rc;

	if ((rc = store_query_open(st, &q, SQL_POLICY_ENDPOINTS, "list endpoints with results",
	                           STORE_STMT_STREAM, NULL, 0)) != ACLM_OK)
		return rc;
	while ((rc = store_query_step(st, &q)) == 1) {
		struct store_stmt *s = q.stmt;
		const struct store_driver *d = st->drv;
		struct aclm_policy_endpoint_row row = {
			.id = d->column_int64(s, 0),
			.host = text_or_empty(st, s, 1),
			.ip = text_or_empty(st, s, 2),
			.port = (unsigned)d->column_int64(s, 3),
			.sni = text_or_empty(st, s, 4),
			.scanned = !d->column_is_null(s, 5),
			.scanned_at = d->column_int64(s, 6),
			.reachable = d->column_int64(s, 7) != 0,
			.pq_groups = text_or_empty(st, s, 8),
			.negotiated_group = text_or_empty(st, s, 9),
			.leaf_cert_id = d->column_int64(s, 10),
			.leaf_spki = text_or_empty(st, s, 11),
			.leaf_sans = text_or_empty(st, s, 12),
		};
		if ((rc = fn(ctx, &row)) != 0)
			break;
	}
	store_query_close(st, &q);
	return rc;
}

int aclm_store_policy_generation(struct aclm_store *st, char *out, size_t n)
{
	struct store_query q;
	int rc;

	if ((rc = store_query_open(st, &q, SQL_POLICY_GENERATION, "read the inventory generation",
	                           0, NULL, 0)) != ACLM_OK)
		return rc;
	rc = store_query_step(st, &q);
	if (rc == 1) {
		const struct store_driver *d = st->drv;
		snprintf(out, n, "%lld.%lld.%lld.%lld.%lld.%lld.%lld",
		         (long long)d->column_int64(q.stmt, 0), (long long)d->column_int64(q.stmt, 1),
		         (long long)d->column_int64(q.stmt, 2), (long long)d->column_int64(q.stmt, 3),
		         (long long)d->column_int64(q.stmt, 4), (long long)d->column_int64(q.stmt, 5),
		         (long long)d->column_int64(q.stmt, 6));
		rc = ACLM_OK;
	} else if (rc == 0) {
		rc = aclm_error(ACLM_ERR_DB, "read the inventory generation: no row");
	}
	store_query_close(st, &q);
	return rc;
}
