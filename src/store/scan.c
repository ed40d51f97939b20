/* Discovery in the inventory: scan runs, results, findings (store_scan.h).
 * Same rules as store.c: every statement once, '?' placeholders, portable
 * SQL; parameters in SELECT lists and comparisons with a parameter on both
 * sides are CAST so PostgreSQL can type them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aclm/err.h"
#include "aclm/store_scan.h"
#include "aclm/str.h"
#include "store-int.h"

static const char SQL_SCAN_START[] =
	"INSERT INTO scans (started_at, targets) VALUES (?, ?) RETURNING id";
static const char SQL_SCAN_FINISH[] =
	"UPDATE scans SET finished_at = ?, status = ?, n_endpoints = ?, n_reachable = ?, "
	"n_findings = ? WHERE id = ?";
static const char SQL_ENDPOINT[] =
	"INSERT INTO endpoints (host, ip, port, sni, first_seen, last_seen) "
	"VALUES (?, ?, ?, ?, ?, ?) "
	"ON CONFLICT (host, ip, port, sni) DO UPDATE SET "
	"last_seen = CASE WHEN excluded.last_seen > endpoints.last_seen "
	"THEN excluded.last_seen ELSE endpoints.last_seen END "
	"RETURNING id";
static const char SQL_PREVIOUS_LEAF[] =
	"SELECT c.fingerprint FROM scan_results r JOIN certificates c ON c.id = r.leaf_cert_id "
	"WHERE r.endpoint_id = ? ORDER BY r.id DESC LIMIT 1";
static const char SQL_PUT_RESULT[] =
	"INSERT INTO scan_results (scan_id, endpoint_id, scanned_at, protocol, reachable, reason, "
	"detail, versions, negotiated_version, cipher_suite, negotiated_group, classic_groups, "
	"pq_groups, ocsp_stapled, leaf_cert_id, chain, leaf_valid, hostname_match, trust) "
	"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
static const char SQL_OBSERVE[] =
	"INSERT INTO observations (cert_id, endpoint_id, source, location, seen_at) "
	"VALUES (?, ?, 'scan', ?, ?)";
static const char SQL_CERT_SEEN[] =
	"UPDATE certificates SET "
	"first_seen = CASE WHEN first_seen IS NULL OR first_seen > ? THEN ? ELSE first_seen END, "
	"last_seen = CASE WHEN last_seen IS NULL OR last_seen < ? THEN ? ELSE last_seen END "
	"WHERE id = ?";
static const char SQL_IS_MANAGED[] =
	"SELECT (SELECT COUNT(*) FROM observations WHERE cert_id = ? AND source <> 'scan') + "
	"(SELECT COUNT(*) FROM managed_certificates WHERE current_cert_id = ?)";
static const char SQL_CA_CERTS[] =
	"SELECT d.der, CASE WHEN c.subject_hash = c.issuer_hash THEN 1 ELSE 0 END "
	"FROM certificates c JOIN certificate_der d ON d.cert_id = c.id "
	"WHERE c.is_ca = 1 AND EXISTS (SELECT 1 FROM observations o WHERE o.cert_id = c.id "
	"AND o.source <> 'scan') ORDER BY c.id";
static const char SQL_NAMES_FOR_IP[] =
	"SELECT DISTINCT sni FROM endpoints WHERE ip = ? AND port = ? AND sni <> '' ORDER BY sni";
static const char SQL_KNOWN[] =
	"SELECT host, ip, port, sni FROM endpoints WHERE ip <> '' ORDER BY id";
static const char SQL_LATEST_LEAVES[] =
	"SELECT r.endpoint_id, r.leaf_cert_id, e.host, e.ip, e.port, e.sni, k.spki_sha256, "
	"c.fingerprint, c.sans "
	"FROM scan_results r JOIN endpoints e ON e.id = r.endpoint_id "
	"JOIN certificates c ON c.id = r.leaf_cert_id JOIN keys k ON k.id = c.key_id "
	"WHERE r.id IN (SELECT MAX(id) FROM scan_results GROUP BY endpoint_id) "
	"ORDER BY r.endpoint_id";
static const char SQL_PUT_FINDING[] =
	"INSERT INTO findings (ident, type, severity, endpoint_id, cert_id, subject, detail, "
	"first_seen, last_seen, scan_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
	"ON CONFLICT (ident) DO UPDATE SET severity = excluded.severity, "
	"detail = excluded.detail, last_seen = excluded.last_seen, scan_id = excluded.scan_id, "
	"endpoint_id = excluded.endpoint_id, cert_id = excluded.cert_id, resolved_at = NULL "
	"RETURNING first_seen, last_seen";
static const char SQL_RESOLVE_ENDPOINTS[] =
	"UPDATE findings SET resolved_at = ? WHERE resolved_at IS NULL "
	"AND (scan_id IS NULL OR scan_id <> ?) "
	"AND endpoint_id IN (SELECT endpoint_id FROM scan_results WHERE scan_id = ?)";
static const char SQL_RESOLVE_TYPE[] =
	"UPDATE findings SET resolved_at = ? WHERE resolved_at IS NULL "
	"AND (scan_id IS NULL OR scan_id <> ?) AND type = ?";
static const char SQL_COUNT_RESOLVED[] =
	"SELECT COUNT(*) FROM findings WHERE resolved_at = ?";

#define SEV_RANK "(CASE f.severity WHEN 'critical' THEN 4 WHEN 'high' THEN 3 " \
	"WHEN 'medium' THEN 2 WHEN 'low' THEN 1 ELSE 0 END)"
static const char SQL_LIST_FINDINGS[] =
	"SELECT f.id, f.type, f.severity, f.endpoint_id, e.host, e.ip, e.port, e.sni, f.cert_id, "
	"c.fingerprint, f.subject, f.detail, f.first_seen, f.last_seen, f.resolved_at, f.scan_id "
	"FROM findings f LEFT JOIN endpoints e ON e.id = f.endpoint_id "
	"LEFT JOIN certificates c ON c.id = f.cert_id "
	"WHERE (CAST(? AS INTEGER) = 1 OR f.resolved_at IS NULL) "
	"AND (CAST(? AS TEXT) = '' OR f.type = CAST(? AS TEXT)) "
	"AND " SEV_RANK " >= CAST(? AS INTEGER) "
	"AND (CAST(? AS BIGINT) = 0 OR f.scan_id = CAST(? AS BIGINT)) "
	"ORDER BY " SEV_RANK " DESC, f.id";

static struct store_param int_or_null(int64_t v)
{
	return v != 0 ? (struct store_param)SP_I(v) : (struct store_param)SP_N();
}

static struct store_param tri(int v)
{
	return v >= 0 ? (struct store_param)SP_I(v) : (struct store_param)SP_N();
}

int aclm_store_scan_start(struct aclm_store *st, const char *targets, int64_t at,
                          int64_t *scan_id)
{
	const struct store_param p[] = { SP_I(at), SP_T(targets ? targets : "") };
	int rc = store_int64(st, SQL_SCAN_START, "start a scan", p, SP_COUNT(p), scan_id);

	return rc < 0 ? rc : ACLM_OK;
}

int aclm_store_scan_finish(struct aclm_store *st, int64_t scan_id, int64_t at,
                           const char *status, int64_t n_endpoints, int64_t n_reachable,
                           int64_t n_findings)
{
	const struct store_param p[] = {
		SP_I(at), SP_T(status), SP_I(n_endpoints), SP_I(n_reachable), SP_I(n_findings),
		SP_I(scan_id),
	};
	return store_run(st, SQL_SCAN_FINISH, "finish the scan", p, SP_COUNT(p));
}

int aclm_store_scan_endpoint(struct aclm_store *st, const char *host, const char *ip,
                             unsigned port, const char *sni, int64_t when, int64_t *id)
{
	const struct store_param p[] = {
		SP_T(host ? host : ""), SP_T(ip ? ip : ""), SP_I(port), SP_T(sni ? sni : ""),
		SP_I(when), SP_I(when),
	};
	int rc = store_int64(st, SQL_ENDPOINT, "record endpoint", p, SP_COUNT(p), id);

	return rc < 0 ? rc : ACLM_OK;
}

int aclm_store_scan_previous_leaf(struct aclm_store *st, int64_t endpoint_id,
                                  char fingerprint[65], bool *found)
{
	const struct store_param p[] = { SP_I(endpoint_id) };
	struct store_query q;
	int rc;

	*found = false;
	fingerprint[0] = '\0';
	if ((rc = store_query_open(st, &q, SQL_PREVIOUS_LEAF, "read the previous scan result", 0,
	                           p, SP_COUNT(p))) != ACLM_OK)
		return rc;
	rc = store_query_step(st, &q);
	if (rc == 1) {
		const char *fp = st->drv->column_text(q.stmt, 0);
		aclm_strlcpy(fingerprint, fp ? fp : "", 65);
		*found = fp != NULL;
		rc = ACLM_OK;
	}
	store_query_close(st, &q);
	return rc;
}

int aclm_store_scan_put_result(struct aclm_store *st, int64_t scan_id, int64_t endpoint_id,
                               const struct aclm_scan_result_row *r)
{
	const struct store_param p[] = {
		SP_I(scan_id), SP_I(endpoint_id), SP_I(r->scanned_at), SP_T(r->protocol),
		SP_I(r->reachable ? 1 : 0), SP_T(r->reason ? r->reason : ""),
		SP_T(r->detail ? r->detail : ""), SP_T(r->versions ? r->versions : ""),
		SP_T(r->negotiated_version ? r->negotiated_version : ""),
		SP_T(r->cipher_suite ? r->cipher_suite : ""),
		SP_T(r->negotiated_group ? r->negotiated_group : ""),
		SP_T(r->classic_groups ? r->classic_groups : ""),
		SP_T(r->pq_groups ? r->pq_groups : ""), SP_I(r->ocsp_stapled ? 1 : 0),
		int_or_null(r->leaf_cert_id), SP_T(r->chain ? r->chain : ""), tri(r->leaf_valid),
		tri(r->hostname_match), SP_T(r->trust ? r->trust : ""),
	};
	return store_run(st, SQL_PUT_RESULT, "store a scan result", p, SP_COUNT(p));
}

int aclm_store_scan_observe(struct aclm_store *st, int64_t cert_id, int64_t endpoint_id,
                            const char *location, int64_t when)
{
	int rc;

	if ((rc = aclm_store_begin(st)) != ACLM_OK)
		return rc;
	{
		const struct store_param p[] = {
			SP_I(cert_id), SP_I(endpoint_id), SP_T(location), SP_I(when),
		};
		if ((rc = store_run(st, SQL_OBSERVE, "insert observation", p, SP_COUNT(p))) != ACLM_OK)
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
	return aclm_store_commit(st);
fail:
	aclm_store_rollback(st);
	return rc;
}

int aclm_store_scan_is_managed(struct aclm_store *st, int64_t cert_id, bool *managed)
{
	const struct store_param p[] = { SP_I(cert_id), SP_I(cert_id) };
	int64_t n = 0;
	int rc = store_int64(st, SQL_IS_MANAGED, "is the certificate managed", p, SP_COUNT(p), &n);

	*managed = n > 0;
	return rc < 0 ? rc : ACLM_OK;
}

int aclm_store_scan_ca_certs(struct aclm_store *st, aclm_store_der_fn fn, void *ctx)
{
	struct store_query q;
	int rc;

	if ((rc = store_query_open(st, &q, SQL_CA_CERTS, "list CA certificates",
	                           STORE_STMT_STREAM, NULL, 0)) != ACLM_OK)
		return rc;
	while ((rc = store_query_step(st, &q)) == 1) {
		size_t len = 0;
		const unsigned char *der = st->drv->column_blob(q.stmt, 0, &len);
		if ((rc = fn(ctx, der, len, st->drv->column_int64(q.stmt, 1) != 0)) != 0)
			break;
	}
	store_query_close(st, &q);
	return rc;
}

int aclm_store_scan_names_for_ip(struct aclm_store *st, const char *ip, unsigned port,
                                 aclm_store_name_fn fn, void *ctx)
{
	const struct store_param p[] = { SP_T(ip), SP_I(port) };
	struct store_query q;
	int rc;

	if ((rc = store_query_open(st, &q, SQL_NAMES_FOR_IP, "names known for an address", 0,
	                           p, SP_COUNT(p))) != ACLM_OK)
		return rc;
	while ((rc = store_query_step(st, &q)) == 1) {
		const char *name = st->drv->column_text(q.stmt, 0);
		if (name != NULL && (rc = fn(ctx, name)) != 0)
			break;
	}
	store_query_close(st, &q);
	return rc;
}

int aclm_store_scan_known_endpoints(struct aclm_store *st, aclm_store_endpoint_fn fn,
                                    void *ctx)
{
	struct store_query q;
	int rc;

	if ((rc = store_query_open(st, &q, SQL_KNOWN, "list known endpoints", STORE_STMT_STREAM,
	                           NULL, 0)) != ACLM_OK)
		return rc;
	while ((rc = store_query_step(st, &q)) == 1) {
		struct store_stmt *s = q.stmt;
		const char *host = st->drv->column_text(s, 0), *ip = st->drv->column_text(s, 1);
		const char *sni = st->drv->column_text(s, 3);
		if ((rc = fn(ctx, host ? host : "", ip ? ip : "", (unsigned)st->drv->column_int64(s, 2),
		             sni ? sni : "")) != 0)
			break;
	}
	store_query_close(st, &q);
	return rc;
}

int aclm_store_scan_latest_leaves(struct aclm_store *st, aclm_scan_leaf_fn fn, void *ctx)
{
	struct store_query q;
	int rc;

	if ((rc = store_query_open(st, &q, SQL_LATEST_LEAVES, "latest leaves per endpoint",
	                           STORE_STMT_STREAM, NULL, 0)) != ACLM_OK)
		return rc;
	while ((rc = store_query_step(st, &q)) == 1) {
		struct store_stmt *s = q.stmt;
		const struct store_driver *d = st->drv;
		struct aclm_scan_leaf_row row = {
			.endpoint_id = d->column_int64(s, 0),
			.cert_id = d->column_int64(s, 1),
			.host = d->column_text(s, 2),
			.ip = d->column_text(s, 3),
			.port = (unsigned)d->column_int64(s, 4),
			.sni = d->column_text(s, 5),
			.spki = d->column_text(s, 6),
			.fingerprint = d->column_text(s, 7),
			.sans = d->column_text(s, 8),
		};
		if (row.host == NULL)
			row.host = "";
		if (row.ip == NULL)
			row.ip = "";
		if (row.sni == NULL)
			row.sni = "";
		if (row.sans == NULL)
			row.sans = "";
		if (row.spki == NULL || row.fingerprint == NULL)
			continue;
		if ((rc = fn(ctx, &row)) != 0)
			break;
	}
	store_query_close(st, &q);
	return rc;
}

int aclm_store_scan_put_finding(struct aclm_store *st, int64_t scan_id,
                                const struct aclm_finding_in *f, bool *is_new)
{
	const struct store_param p[] = {
		SP_T(f->ident), SP_T(f->type), SP_T(f->severity), int_or_null(f->endpoint_id),
		int_or_null(f->cert_id), SP_T(f->subject ? f->subject : ""),
		SP_T(f->detail ? f->detail : ""), SP_I(f->when), SP_I(f->when), int_or_null(scan_id),
	};
	struct store_query q;
	int rc;

	if (is_new != NULL)
		*is_new = false;
	if ((rc = store_query_open(st, &q, SQL_PUT_FINDING, "store a finding", 0, p,
	                           SP_COUNT(p))) != ACLM_OK)
		return rc;
	rc = store_query_step(st, &q);
	if (rc == 1) {
		if (is_new != NULL)
			*is_new = st->drv->column_int64(q.stmt, 0) == f->when;
		rc = ACLM_OK;
	}
	store_query_close(st, &q);
	return rc;
}

int aclm_store_scan_resolve(struct aclm_store *st, int64_t scan_id, int64_t when,
                            const char *const *global_types, int64_t *n_resolved)
{
	int64_t n = 0;
	int rc;

	{
		const struct store_param p[] = { SP_I(when), SP_I(scan_id), SP_I(scan_id) };
		if ((rc = store_run(st, SQL_RESOLVE_ENDPOINTS, "resolve findings", p,
		                    SP_COUNT(p))) != ACLM_OK)
			return rc;
	}
	for (size_t i = 0; global_types != NULL && global_types[i] != NULL; i++) {
		const struct store_param p[] = { SP_I(when), SP_I(scan_id), SP_T(global_types[i]) };
		if ((rc = store_run(st, SQL_RESOLVE_TYPE, "resolve findings", p,
		                    SP_COUNT(p))) != ACLM_OK)
			return rc;
	}
	if (n_resolved != NULL) {
		const struct store_param p[] = { SP_I(when) };
		if ((rc = store_int64(st, SQL_COUNT_RESOLVED, "count resolved findings", p,
		                      SP_COUNT(p), &n)) < 0)
			return rc;
		*n_resolved = n;
	}
	return ACLM_OK;
}

int aclm_store_list_findings(struct aclm_store *st, const struct aclm_finding_filter *f,
                             aclm_finding_row_fn fn, void *ctx)
{
	const char *type = f->type ? f->type : "";
	const struct store_param p[] = {
		SP_I(f->include_resolved ? 1 : 0), SP_T(type), SP_T(type), SP_I(f->min_severity),
		SP_I(f->scan_id), SP_I(f->scan_id),
	};
	struct store_query q;
	int rc;

	if ((rc = store_query_open(st, &q, SQL_LIST_FINDINGS, "list findings", STORE_STMT_STREAM,
	                           p, SP_COUNT(p))) != ACLM_OK)
		return rc;
	while ((rc = store_query_step(st, &q)) == 1) {
		struct store_stmt *s = q.stmt;
		const struct store_driver *d = st->drv;
		struct aclm_finding_row row = {
			.id = d->column_int64(s, 0),
			.type = d->column_text(s, 1),
			.severity = d->column_text(s, 2),
			.endpoint_id = d->column_int64(s, 3),
			.host = d->column_text(s, 4),
			.ip = d->column_text(s, 5),
			.port = (unsigned)d->column_int64(s, 6),
			.sni = d->column_text(s, 7),
			.cert_id = d->column_int64(s, 8),
			.fingerprint = d->column_text(s, 9),
			.subject = d->column_text(s, 10),
			.detail = d->column_text(s, 11),
			.first_seen = d->column_int64(s, 12),
			.last_seen = d->column_int64(s, 13),
			.resolved_at = d->column_int64(s, 14),
			.scan_id = d->column_int64(s, 15),
		};
		if (row.host == NULL)
			row.host = "";
		if (row.ip == NULL)
			row.ip = "";
		if (row.sni == NULL)
			row.sni = "";
		if (row.subject == NULL)
			row.subject = "";
		if (row.detail == NULL)
			row.detail = "";
		if ((rc = fn(ctx, &row)) != 0)
			break;
	}
	store_query_close(st, &q);
	return rc;
}
