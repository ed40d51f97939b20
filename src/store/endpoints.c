/* Endpoints with their latest scan result, and scans: see
 * include/aclm/store_endpoints.h. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "aclm/buf.h"
#include "aclm/err.h"
#include "aclm/store_endpoints.h"
#include "store-int.h"

/* The latest result of each endpoint: the scan_results row with the highest
 * id (index scan_results_endpoint). */
#define LATEST "(SELECT MAX(r2.id) FROM scan_results r2 WHERE r2.endpoint_id = e.id)"
#define ENDPOINT_FROM \
	" FROM endpoints e LEFT JOIN scan_results r ON r.id = " LATEST

#define ENDPOINT_COLS \
	"SELECT e.id, e.host, e.ip, e.sni, e.port, e.first_seen, e.last_seen, " \
	"COALESCE(r.scanned_at, 0), COALESCE(r.scan_id, 0), COALESCE(r.reachable, 0), " \
	"COALESCE(r.reason, ''), COALESCE(r.protocol, ''), COALESCE(r.versions, ''), " \
	"COALESCE(r.negotiated_version, ''), COALESCE(r.cipher_suite, ''), " \
	"COALESCE(r.negotiated_group, ''), COALESCE(r.classic_groups, ''), " \
	"COALESCE(r.pq_groups, ''), COALESCE(r.trust, ''), COALESCE(r.leaf_cert_id, 0), " \
	"(SELECT COUNT(*) FROM findings f WHERE f.endpoint_id = e.id AND f.resolved_at IS NULL)"

/* The WHERE part and its parameters, shared by list and count. */
struct where {
	struct aclm_buf sql;
	struct store_param p[8];
	size_t n;
	char like[300];
};

static void build_where(const struct aclm_endpoint_filter *f, struct where *w)
{
	const char *and = " WHERE ";

	aclm_buf_init(&w->sql, 4096);
	w->n = 0;
	if (f->host != NULL && *f->host != '\0') {
		snprintf(w->like, sizeof(w->like), "%%%s%%", f->host);
		aclm_buf_printf(&w->sql, "%s(e.host LIKE ? OR e.ip LIKE ? OR e.sni LIKE ?)", and);
		for (int i = 0; i < 3; i++)
			w->p[w->n++] = (struct store_param)SP_T(w->like);
		and = " AND ";
	}
	if (f->reachable_only) {
		aclm_buf_printf(&w->sql, "%sr.reachable = 1", and);
		and = " AND ";
	}
	if (f->pq == 1) {
		aclm_buf_printf(&w->sql, "%sr.pq_groups NOT IN ('', 'none')", and);
		and = " AND ";
	} else if (f->pq == 0) {
		aclm_buf_printf(&w->sql, "%sr.pq_groups = 'none'", and);
	}
}

int aclm_store_list_endpoints(struct aclm_store *st, const struct aclm_endpoint_filter *f,
                              aclm_endpoint_row_fn fn, void *ctx)
{
	const struct store_driver *d = st->drv;
	struct aclm_buf sql;
	struct where w;
	struct store_query q;
	int rc;

	build_where(f, &w);
	aclm_buf_init(&sql, 8192);
	aclm_buf_printf(&sql, ENDPOINT_COLS ENDPOINT_FROM "%s ORDER BY e.host, e.ip, e.port, e.id",
	                aclm_buf_cstr(&w.sql));
	if (f->limit > 0) {
		aclm_buf_puts(&sql, " LIMIT ? OFFSET ?");
		w.p[w.n++] = (struct store_param)SP_I(f->limit);
		w.p[w.n++] = (struct store_param)SP_I(f->offset);
	}
	rc = store_query_open_once(st, &q, aclm_buf_cstr(&sql), "list endpoints", STORE_STMT_STREAM,
	                     w.p, w.n);
	if (rc != ACLM_OK)
		goto out;
	while ((rc = store_query_step(st, &q)) == 1) {
		struct aclm_endpoint_row r = {
			.id = d->column_int64(q.stmt, 0),
			.host = d->column_text(q.stmt, 1), .ip = d->column_text(q.stmt, 2),
			.sni = d->column_text(q.stmt, 3), .port = (unsigned)d->column_int64(q.stmt, 4),
			.first_seen = d->column_int64(q.stmt, 5), .last_seen = d->column_int64(q.stmt, 6),
			.scanned_at = d->column_int64(q.stmt, 7), .scan_id = d->column_int64(q.stmt, 8),
			.reachable = d->column_int64(q.stmt, 9) != 0,
			.reason = d->column_text(q.stmt, 10), .protocol = d->column_text(q.stmt, 11),
			.versions = d->column_text(q.stmt, 12),
			.negotiated_version = d->column_text(q.stmt, 13),
			.cipher_suite = d->column_text(q.stmt, 14),
			.negotiated_group = d->column_text(q.stmt, 15),
			.classic_groups = d->column_text(q.stmt, 16),
			.pq_groups = d->column_text(q.stmt, 17), .trust = d->column_text(q.stmt, 18),
			.leaf_cert_id = d->column_int64(q.stmt, 19),
			.open_findings = d->column_int64(q.stmt, 20),
		};
		if ((rc = fn(ctx, &r)) != ACLM_OK)
			break;
	}
	store_query_close(st, &q);
out:
	aclm_buf_free(&sql);
	aclm_buf_free(&w.sql);
	return rc < 0 ? rc : ACLM_OK;
}

int aclm_store_count_endpoints(struct aclm_store *st, const struct aclm_endpoint_filter *f,
                               int64_t *n)
{
	struct aclm_buf sql;
	struct where w;
	struct store_query q;
	int rc;

	build_where(f, &w);
	aclm_buf_init(&sql, 8192);
	aclm_buf_printf(&sql, "SELECT COUNT(*)" ENDPOINT_FROM "%s", aclm_buf_cstr(&w.sql));
	rc = store_query_open_once(st, &q, aclm_buf_cstr(&sql), "count endpoints", 0, w.p, w.n);
	if (rc == ACLM_OK) {
		rc = store_query_step(st, &q);
		*n = rc == 1 ? st->drv->column_int64(q.stmt, 0) : 0;
		store_query_close(st, &q);
	}
	aclm_buf_free(&sql);
	aclm_buf_free(&w.sql);
	return rc < 0 ? rc : ACLM_OK;
}

#define SCAN_COLS "SELECT id, started_at, COALESCE(finished_at, 0), targets, status, " \
	"n_endpoints, n_reachable, n_findings FROM scans"
static const char SQL_SCANS[] = SCAN_COLS " ORDER BY id DESC LIMIT ?";
static const char SQL_SCAN[] = SCAN_COLS " WHERE id = ?";

int aclm_store_list_scans(struct aclm_store *st, int64_t id, int64_t limit,
                          aclm_scan_row_fn fn, void *ctx)
{
	const struct store_driver *d = st->drv;
	const struct store_param p[] = { SP_I(id > 0 ? id : (limit > 0 ? limit : INT64_MAX / 2)) };
	struct store_query q;
	int n = 0, rc;

	rc = store_query_open(st, &q, id > 0 ? SQL_SCAN : SQL_SCANS, "list scans", 0, p, 1);
	if (rc != ACLM_OK)
		return rc;
	while ((rc = store_query_step(st, &q)) == 1) {
		struct aclm_scan_row r = {
			.id = d->column_int64(q.stmt, 0), .started_at = d->column_int64(q.stmt, 1),
			.finished_at = d->column_int64(q.stmt, 2), .targets = d->column_text(q.stmt, 3),
			.status = d->column_text(q.stmt, 4), .n_endpoints = d->column_int64(q.stmt, 5),
			.n_reachable = d->column_int64(q.stmt, 6), .n_findings = d->column_int64(q.stmt, 7),
		};
		n++;
		if ((rc = fn(ctx, &r)) != ACLM_OK)
			break;
	}
	store_query_close(st, &q);
	if (rc < 0)
		return rc;
	if (id > 0 && n == 0)
		return aclm_error(ACLM_ERR_NOTFOUND, "no scan %lld", (long long)id);
	return rc;
}
