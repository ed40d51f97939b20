/* Endpoints with their latest scan result, and the scans themselves, as the
 * API and the dashboard list them (read-only; the scanner writes through
 * store_scan.h). */
#ifndef ACLM_STORE_ENDPOINTS_H
#define ACLM_STORE_ENDPOINTS_H

#include <stdbool.h>
#include <stdint.h>

#include "aclm/store.h"

struct aclm_endpoint_filter {
	const char *host;            /* substring of host, ip or sni; NULL: all */
	int pq;                      /* 1: accepts a PQ group, 0: none, -1: any */
	bool reachable_only;
	int64_t limit, offset;       /* limit 0: all */
};

struct aclm_endpoint_row {
	int64_t id;
	const char *host, *ip, *sni;
	unsigned port;
	int64_t first_seen, last_seen;
	/* The latest scan result; scanned_at 0 when never scanned. */
	int64_t scanned_at;
	int64_t scan_id;
	bool reachable;
	const char *reason;
	const char *protocol, *versions, *negotiated_version, *cipher_suite, *negotiated_group;
	const char *classic_groups, *pq_groups, *trust;
	int64_t leaf_cert_id;
	int64_t open_findings;
};
typedef int (*aclm_endpoint_row_fn)(void *ctx, const struct aclm_endpoint_row *row);
int aclm_store_list_endpoints(struct aclm_store *st, const struct aclm_endpoint_filter *f,
                              aclm_endpoint_row_fn fn, void *ctx);
int aclm_store_count_endpoints(struct aclm_store *st, const struct aclm_endpoint_filter *f,
                               int64_t *n);

struct aclm_scan_row {
	int64_t id;
	int64_t started_at, finished_at;   /* finished_at 0 while running */
	const char *targets, *status;
	int64_t n_endpoints, n_reachable, n_findings;
};
typedef int (*aclm_scan_row_fn)(void *ctx, const struct aclm_scan_row *row);
/* Newest first; id > 0: only that one (ACLM_ERR_NOTFOUND when absent). */
int aclm_store_list_scans(struct aclm_store *st, int64_t id, int64_t limit,
                          aclm_scan_row_fn fn, void *ctx);

#endif
