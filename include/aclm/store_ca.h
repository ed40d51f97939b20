/* The built-in CA's rows in the store (migration 6): hierarchies, issued
 * certificates with their revocation state, and the ACME server's objects.
 * Row strings are malloc'd copies, freed by the row's _free. */
#ifndef ACLM_STORE_CA_H
#define ACLM_STORE_CA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct aclm_store;

/* --- hierarchies: one per (ca, algo) --------------------------------- */

struct aclm_ca_hier_row {
	int64_t id;
	char *ca;
	char *algo;               /* "ecdsa", "rsa", "sm2" */
	int64_t root_cert_id;
	int64_t issuing_cert_id;
	int64_t crl_number;
	int64_t created_at;
};
void aclm_ca_hier_row_free(struct aclm_ca_hier_row *r);

/* ACLM_ERR_EXISTS when (ca, algo) is there already. */
int aclm_store_ca_hier_add(struct aclm_store *st, const char *ca, const char *algo,
                           int64_t root_cert_id, int64_t issuing_cert_id);
/* ACLM_ERR_NOTFOUND when there is none. */
int aclm_store_ca_hier_get(struct aclm_store *st, const char *ca, const char *algo,
                           struct aclm_ca_hier_row *out);
typedef int (*aclm_ca_hier_fn)(void *ctx, const struct aclm_ca_hier_row *r);
/* ca NULL: every CA; ordered by ca, algo. */
int aclm_store_ca_hier_list(struct aclm_store *st, const char *ca, aclm_ca_hier_fn fn,
                            void *ctx);
/* Increment and return the CRL number of (ca, algo). */
int aclm_store_ca_crl_number_next(struct aclm_store *st, const char *ca, const char *algo,
                                  int64_t *number);

/* --- issued certificates ---------------------------------------------- */

struct aclm_ca_issued_row {
	int64_t id;
	char *ca;
	char *algo;
	char *serial;             /* upper-case hex */
	int64_t cert_id;
	char *profile;
	char *account_ref;        /* NULL: issued by hand */
	int64_t not_before;
	int64_t not_after;
	int64_t issued_at;
	int64_t revoked_at;       /* 0: not revoked */
	int reason;               /* RFC 5280 CRLReason when revoked */
	int64_t renew_after;      /* 0: none set */
};
void aclm_ca_issued_row_free(struct aclm_ca_issued_row *r);

int aclm_store_ca_issued_add(struct aclm_store *st, const struct aclm_ca_issued_row *r);
/* By serial (upper-case hex, case-insensitive input); ACLM_ERR_NOTFOUND. */
int aclm_store_ca_issued_get(struct aclm_store *st, const char *ca, const char *serial,
                             struct aclm_ca_issued_row *out);
struct aclm_ca_issued_filter {
	const char *ca;           /* NULL: all */
	const char *algo;         /* NULL: all */
	bool revoked_only;
};
typedef int (*aclm_ca_issued_fn)(void *ctx, const struct aclm_ca_issued_row *r);
int aclm_store_ca_issued_list(struct aclm_store *st, const struct aclm_ca_issued_filter *f,
                              aclm_ca_issued_fn fn, void *ctx);
/* ACLM_ERR_NOTFOUND when no such serial; ACLM_ERR_EXISTS when revoked already. */
int aclm_store_ca_issued_revoke(struct aclm_store *st, const char *ca, const char *serial,
                                int reason, int64_t when);
/* Set renew_after = when on one serial (serial non-NULL) or on every
 * unrevoked certificate issued before issued_before; *n counts rows. */
int aclm_store_ca_issued_renew_early(struct aclm_store *st, const char *ca, const char *serial,
                                     int64_t issued_before, int64_t when, int64_t *n);

/* --- ACME server objects ---------------------------------------------- */

struct aclm_ca_acme_obj {
	int64_t id;
	char *ca;
	char *kind;               /* "account", "order", "authz", "challenge" */
	char *ref;                /* random, unique over all CAs */
	char *account_ref;
	char *status;
	char *lookup;             /* account: JWK thumbprint; authz: "type:value" */
	char *body;               /* JSON text */
	int64_t expires_at;
	int64_t created_at;
	int64_t updated_at;
};
void aclm_ca_acme_obj_free(struct aclm_ca_acme_obj *o);

int aclm_store_ca_acme_add(struct aclm_store *st, const struct aclm_ca_acme_obj *o);
/* New status and body (and expiry when expires_at > 0, lookup when not
 * NULL). */
int aclm_store_ca_acme_update(struct aclm_store *st, const char *ref, const char *status,
                              const char *body, int64_t expires_at, const char *lookup);
/* ACLM_ERR_NOTFOUND when (ca, kind, ref) does not exist. */
int aclm_store_ca_acme_get(struct aclm_store *st, const char *ca, const char *kind,
                           const char *ref, struct aclm_ca_acme_obj *out);
/* By kind and ref alone (refs are unique over all CAs). */
int aclm_store_ca_acme_find_ref(struct aclm_store *st, const char *kind, const char *ref,
                                struct aclm_ca_acme_obj *out);
/* The newest object of (ca, kind) with this lookup (and account, if not
 * NULL) whose status is one of statuses ("valid", "pending,valid"). */
int aclm_store_ca_acme_find(struct aclm_store *st, const char *ca, const char *kind,
                            const char *lookup, const char *account_ref,
                            const char *statuses, struct aclm_ca_acme_obj *out);
typedef int (*aclm_ca_acme_fn)(void *ctx, const struct aclm_ca_acme_obj *o);
/* Every object of kind with status, oldest first (restart: resume). */
int aclm_store_ca_acme_list(struct aclm_store *st, const char *kind, const char *status,
                            aclm_ca_acme_fn fn, void *ctx);
/* Objects of kind made by account_ref since `since` (rate limits). */
int aclm_store_ca_acme_count(struct aclm_store *st, const char *kind, const char *account_ref,
                             int64_t since, int64_t *n);
/* Objects of (ca, kind) of one account, newest first. */
int aclm_store_ca_acme_list_account(struct aclm_store *st, const char *ca, const char *kind,
                                    const char *account_ref, aclm_ca_acme_fn fn, void *ctx);
/* Objects of (ca, kind) with this lookup made since `since` (rate limit
 * per registered name: orders carry "name:<registered domain>"). */
int aclm_store_ca_acme_count_lookup(struct aclm_store *st, const char *ca, const char *kind,
                                    const char *lookup, int64_t since, int64_t *n);

#endif
