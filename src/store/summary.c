/* The inventory summed up by the database: see include/aclm/store_summary.h.
 * Four aggregate queries instead of every row through the caller: the
 * database counts 100,000 certificates faster than it can hand them over. */
#include <stdint.h>
#include <string.h>

#include "aclm/err.h"
#include "aclm/store_summary.h"
#include "store-int.h"

static const char SQL_TOTALS[] =
	"SELECT COUNT(*), "
	"COALESCE(SUM(CASE WHEN c.not_after < ? THEN 1 ELSE 0 END), 0), "
	"COALESCE(SUM(CASE WHEN c.not_after >= ? AND c.not_after < ? THEN 1 ELSE 0 END), 0), "
	"COALESCE(SUM(CASE WHEN c.not_after >= ? AND c.not_after < ? THEN 1 ELSE 0 END), 0), "
	"COALESCE(SUM(c.is_ca), 0), "
	"COALESCE(SUM(CASE WHEN k.private_key IS NULL THEN 0 ELSE 1 END), 0) "
	"FROM certificates c LEFT JOIN keys k ON k.id = c.key_id";
static const char SQL_DAYS[] =
	"SELECT (not_after - ?) / 86400, COUNT(*) FROM certificates "
	"WHERE not_after >= ? AND not_after < ? GROUP BY 1";
static const char SQL_KEYS[] =
	"SELECT key_type, key_bits, COUNT(*) FROM certificates GROUP BY key_type, key_bits";
static const char SQL_ISSUERS[] =
	"SELECT issuer, MAX(COALESCE(issuer_cn, '')), COUNT(*) FROM certificates "
	"GROUP BY issuer ORDER BY COUNT(*) DESC, issuer LIMIT ?";
static const char SQL_N_ISSUERS[] = "SELECT COUNT(DISTINCT issuer) FROM certificates";

int aclm_store_cert_summary(struct aclm_store *st, int64_t now, const struct aclm_summary_fns *f,
                            struct aclm_cert_summary *out, int64_t *n_issuers)
{
	const struct store_driver *d = st->drv;
	struct store_query q;
	int rc;

	memset(out, 0, sizeof(*out));
	{
		const struct store_param p[] = {
			SP_I(now), SP_I(now), SP_I(now + 7 * 86400), SP_I(now), SP_I(now + 30 * 86400),
		};
		if ((rc = store_query_open(st, &q, SQL_TOTALS, "sum up certificates", 0, p,
		                           SP_COUNT(p))) != ACLM_OK)
			return rc;
		rc = store_query_step(st, &q);
		if (rc == 1) {
			out->total = d->column_int64(q.stmt, 0);
			out->expired = d->column_int64(q.stmt, 1);
			out->expiring_7d = d->column_int64(q.stmt, 2);
			out->expiring_30d = d->column_int64(q.stmt, 3);
			out->ca = d->column_int64(q.stmt, 4);
			out->with_private_key = d->column_int64(q.stmt, 5);
		}
		store_query_close(st, &q);
		if (rc < 0)
			return rc;
	}
	{
		const struct store_param p[] = {
			SP_I(f->day0), SP_I(now), SP_I(f->day0 + (int64_t)f->n_days * 86400),
		};
		if ((rc = store_query_open(st, &q, SQL_DAYS, "count expiries per day", 0, p,
		                           SP_COUNT(p))) != ACLM_OK)
			return rc;
		while ((rc = store_query_step(st, &q)) == 1)
			if ((rc = f->day(f->ctx, d->column_int64(q.stmt, 0), d->column_int64(q.stmt, 1))) !=
			    ACLM_OK)
				break;
		store_query_close(st, &q);
		if (rc < 0)
			return rc;
	}
	if ((rc = store_query_open(st, &q, SQL_KEYS, "count key types", 0, NULL, 0)) != ACLM_OK)
		return rc;
	while ((rc = store_query_step(st, &q)) == 1) {
		const char *t = d->column_text(q.stmt, 0);
		if ((rc = f->key(f->ctx, t != NULL ? t : "", (int)d->column_int64(q.stmt, 1),
		                 d->column_int64(q.stmt, 2))) != ACLM_OK)
			break;
	}
	store_query_close(st, &q);
	if (rc < 0)
		return rc;
	{
		const struct store_param p[] = { SP_I(f->max_issuers) };
		if ((rc = store_query_open(st, &q, SQL_ISSUERS, "count issuers", 0, p, 1)) != ACLM_OK)
			return rc;
		while ((rc = store_query_step(st, &q)) == 1) {
			const char *dn = d->column_text(q.stmt, 0), *cn = d->column_text(q.stmt, 1);
			if ((rc = f->issuer(f->ctx, dn != NULL ? dn : "", cn != NULL ? cn : "",
			                    d->column_int64(q.stmt, 2))) != ACLM_OK)
				break;
		}
		store_query_close(st, &q);
		if (rc < 0)
			return rc;
	}
	rc = store_int64(st, SQL_N_ISSUERS, "count issuers", NULL, 0, n_issuers);
	return rc < 0 ? rc : ACLM_OK;
}
