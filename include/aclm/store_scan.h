/* The inventory side of discovery: scan runs, per-endpoint results,
 * findings (schema migration 2, "scan"; docs/internals/scan.md).
 *
 * Endpoints are the store's `endpoints` rows (host, ip, port, sni);
 * certificates go in with aclm_store_put_cert() and are linked to the
 * endpoint by an observation of source "scan". */
#ifndef ACLM_STORE_SCAN_H
#define ACLM_STORE_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aclm/store.h"

int aclm_store_scan_start(struct aclm_store *st, const char *targets, int64_t at,
                          int64_t *scan_id);
int aclm_store_scan_finish(struct aclm_store *st, int64_t scan_id, int64_t at,
                           const char *status, int64_t n_endpoints, int64_t n_reachable,
                           int64_t n_findings);

/* Insert or touch the endpoint (host, ip, port, sni); *id its row id. */
int aclm_store_scan_endpoint(struct aclm_store *st, const char *host, const char *ip,
                             unsigned port, const char *sni, int64_t when, int64_t *id);
/* The leaf fingerprint of the endpoint's latest stored result with a chain;
 * *found false when there is none. */
int aclm_store_scan_previous_leaf(struct aclm_store *st, int64_t endpoint_id,
                                  char fingerprint[65], bool *found);

struct aclm_scan_result_row {
	int64_t scanned_at;
	const char *protocol;          /* "tls", "smtp", ... */
	bool reachable;
	const char *reason, *detail;
	const char *versions;          /* "TLSv1.2,TLSv1.3" */
	const char *negotiated_version, *cipher_suite, *negotiated_group;
	const char *classic_groups;    /* "X25519,P-256" */
	const char *pq_groups;         /* "X25519MLKEM768", "none", "" (not probed) */
	bool ocsp_stapled;
	int64_t leaf_cert_id;          /* 0: none */
	const char *chain;             /* fingerprints, comma-separated, served order */
	int leaf_valid;                /* -1: unknown */
	int hostname_match;            /* -1: unknown */
	const char *trust;
};
int aclm_store_scan_put_result(struct aclm_store *st, int64_t scan_id, int64_t endpoint_id,
                               const struct aclm_scan_result_row *r);

/* An observation (source "scan") of cert_id at the endpoint. */
int aclm_store_scan_observe(struct aclm_store *st, int64_t cert_id, int64_t endpoint_id,
                            const char *location, int64_t when);

/* Managed = known other than by scanning: an observation from import, ACME
 * or the CA, or the current certificate of a managed entry. */
int aclm_store_scan_is_managed(struct aclm_store *st, int64_t cert_id, bool *managed);

/* CA certificates aclm knows other than by scanning (imported, issued):
 * fn(ctx, der, len, self_signed). */
typedef int (*aclm_store_der_fn)(void *ctx, const unsigned char *der, size_t len,
                                 bool self_signed);
int aclm_store_scan_ca_certs(struct aclm_store *st, aclm_store_der_fn fn, void *ctx);

/* Names (SNI) the inventory knows for an address and port. */
typedef int (*aclm_store_name_fn)(void *ctx, const char *name);
int aclm_store_scan_names_for_ip(struct aclm_store *st, const char *ip, unsigned port,
                                 aclm_store_name_fn fn, void *ctx);

/* Every endpoint of the inventory with an address (for --known). */
typedef int (*aclm_store_endpoint_fn)(void *ctx, const char *host, const char *ip,
                                      unsigned port, const char *sni);
int aclm_store_scan_known_endpoints(struct aclm_store *st, aclm_store_endpoint_fn fn,
                                    void *ctx);

/* The leaf of each endpoint's latest result (for key reuse and wildcard
 * counts across the inventory). */
struct aclm_scan_leaf_row {
	int64_t endpoint_id;
	int64_t cert_id;
	const char *host, *ip, *sni;
	unsigned port;
	const char *spki;
	const char *fingerprint;
	const char *sans;              /* "DNS:a,DNS:b" */
};
typedef int (*aclm_scan_leaf_fn)(void *ctx, const struct aclm_scan_leaf_row *row);
int aclm_store_scan_latest_leaves(struct aclm_store *st, aclm_scan_leaf_fn fn, void *ctx);

struct aclm_finding_in {
	const char *ident;             /* unique: type + what it is about */
	const char *type;
	const char *severity;
	int64_t endpoint_id;           /* 0: none */
	int64_t cert_id;               /* 0: none */
	const char *subject;
	const char *detail;
	int64_t when;
};
/* Insert, or refresh (last_seen, detail, reopened) a finding. */
int aclm_store_scan_put_finding(struct aclm_store *st, int64_t scan_id,
                                const struct aclm_finding_in *f, bool *is_new);
/* Resolve open findings not raised again by scan_id: those of endpoints
 * this scan probed, and those of the given global types (NULL-terminated). */
int aclm_store_scan_resolve(struct aclm_store *st, int64_t scan_id, int64_t when,
                            const char *const *global_types, int64_t *n_resolved);

struct aclm_finding_filter {
	const char *type;              /* NULL: all */
	int min_severity;              /* 0 info .. 4 critical */
	bool include_resolved;
	int64_t scan_id;               /* 0: any */
};
struct aclm_finding_row {
	int64_t id;
	const char *type, *severity;
	int64_t endpoint_id;
	const char *host, *ip, *sni;   /* "" when no endpoint */
	unsigned port;
	int64_t cert_id;
	const char *fingerprint;       /* NULL when no certificate */
	const char *subject, *detail;
	int64_t first_seen, last_seen;
	int64_t resolved_at;           /* 0: open */
	int64_t scan_id;
};
typedef int (*aclm_finding_row_fn)(void *ctx, const struct aclm_finding_row *row);
/* Most severe first, then by id. */
int aclm_store_list_findings(struct aclm_store *st, const struct aclm_finding_filter *f,
                             aclm_finding_row_fn fn, void *ctx);

#endif
