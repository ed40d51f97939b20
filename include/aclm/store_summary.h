/* The inventory summed up by the database (GROUP BY), for the dashboard's
 * overview: the same definitions as the certificate filters of store.h
 * (expired = not_after < now; expiring within d = now <= not_after < now + d). */
#ifndef ACLM_STORE_SUMMARY_H
#define ACLM_STORE_SUMMARY_H

#include <stdint.h>

#include "aclm/store.h"

struct aclm_cert_summary {
	int64_t total, expired, expiring_7d, expiring_30d, ca, with_private_key;
};

struct aclm_summary_fns {
	/* Certificates not yet expired whose not_after falls on UTC day `day`
	 * (0 = the day of day0), for days 0..n_days-1. */
	int (*day)(void *ctx, int64_t day, int64_t count);
	/* Per key type and size ("rsa", 2048). */
	int (*key)(void *ctx, const char *key_type, int key_bits, int64_t count);
	/* Per issuer DN, most certificates first, at most max_issuers. */
	int (*issuer)(void *ctx, const char *dn, const char *cn, int64_t count);
	void *ctx;
	int64_t day0;
	int n_days;
	int max_issuers;
};

/* *n_issuers gets the number of distinct issuer DNs. */
int aclm_store_cert_summary(struct aclm_store *st, int64_t now, const struct aclm_summary_fns *f,
                            struct aclm_cert_summary *out, int64_t *n_issuers);

#endif
