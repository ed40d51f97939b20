/* The ACME client's rows in the store (migration 3): accounts, orders,
 * authorizations, per-CA backoff, and the managed certificates it keeps
 * alive.  Row strings are malloc'd copies, freed by the row's _free. */
#ifndef ACLM_STORE_ACME_H
#define ACLM_STORE_ACME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct aclm_store;

struct aclm_acme_account_row {
	int64_t id;
	char *ca;
	char *directory;
	char *url;
	char *key_type;
	char *key_spki;
	unsigned char *key_sealed;
	size_t key_sealed_len;
	char *contact;
	char *status;
	int64_t created_at;
};
void aclm_acme_account_row_free(struct aclm_acme_account_row *r);

/* The valid account of (ca, directory); ACLM_ERR_NOTFOUND if none. */
int aclm_store_acme_account_get(struct aclm_store *st, const char *ca, const char *directory,
                                struct aclm_acme_account_row *out);
int aclm_store_acme_account_add(struct aclm_store *st, const struct aclm_acme_account_row *r,
                                int64_t *id);
/* New status ("deactivated") or a new key (rollover); NULL keeps the old. */
int aclm_store_acme_account_update(struct aclm_store *st, int64_t id, const char *status,
                                   const char *key_type, const char *key_spki,
                                   const unsigned char *key_sealed, size_t key_sealed_len);
typedef int (*aclm_acme_account_fn)(void *ctx, const struct aclm_acme_account_row *r);
int aclm_store_acme_account_list(struct aclm_store *st, aclm_acme_account_fn fn, void *ctx);

struct aclm_managed_row {
	int64_t id;
	char *name;
	char *identifiers;   /* JSON array */
	char *key_type;      /* "ec256", ... */
	char *ca;            /* CA of the current certificate */
	char *cas;           /* JSON array of CA names, priority order */
	char *solver;        /* JSON object */
	char *profile;
	char *status;        /* "pending", "valid", "failed", "revoked" */
	char *last_error;
	int64_t pair_id;
	int64_t current_cert_id;
	int64_t renew_at;
	int64_t next_attempt_at;
	int64_t failures;
	bool reuse_key;
	int64_t ari_check_at;  /* when to ask the CA's ARI again (0: not asked yet) */
};
void aclm_managed_row_free(struct aclm_managed_row *r);
/* The next ARI check, from the renewalInfo answer's Retry-After. */
int aclm_store_managed_set_ari_check(struct aclm_store *st, int64_t id, int64_t at);

/* Insert by name or update the desired state of an existing one. */
int aclm_store_managed_upsert(struct aclm_store *st, const struct aclm_managed_row *r, int64_t *id);
int aclm_store_managed_get(struct aclm_store *st, int64_t id, struct aclm_managed_row *out);
/* Every managed certificate, by id. */
typedef int (*aclm_managed_fn)(void *ctx, const struct aclm_managed_row *r);
int aclm_store_managed_list(struct aclm_store *st, aclm_managed_fn fn, void *ctx);
int aclm_store_managed_set_pair(struct aclm_store *st, int64_t id, int64_t pair_id);
/* A new certificate is current: status valid, failures reset. */
int aclm_store_managed_set_current(struct aclm_store *st, int64_t id, int64_t cert_id,
                                   const char *ca, int64_t renew_at);
/* A failed attempt: status (unchanged when NULL), error, when to retry. */
int aclm_store_managed_set_failure(struct aclm_store *st, int64_t id, const char *status,
                                   const char *error, int64_t next_attempt_at);
/* The managed certificate whose current certificate is cert_id; 0 if none. */
int aclm_store_managed_by_cert(struct aclm_store *st, int64_t cert_id, int64_t *id);
/* Stop managing: the row, its orders and authorizations, its open jobs and
 * the other half's link to it go in one transaction with an audit event
 * ("managed.deleted", by actor).  Certificates stay in the inventory.
 * ACLM_ERR_EXISTS while an order is in flight. */
int aclm_store_managed_delete(struct aclm_store *st, const char *actor, int64_t id);

struct aclm_acme_order_row {
	int64_t id;
	int64_t managed_id;
	int64_t account_id;
	int64_t cert_id;
	char *ca;
	char *state;
	char *status;
	char *url;
	char *finalize_url;
	char *cert_url;
	char *identifiers;
	char *key_type;
	char *key_spki;
	unsigned char *key_sealed;
	size_t key_sealed_len;
	char *replaces;
	char *profile;
	char *error;
	int64_t created_at;
	int64_t updated_at;
};
void aclm_acme_order_row_free(struct aclm_acme_order_row *r);

/* The unfinished order of a managed certificate; ACLM_ERR_NOTFOUND if none. */
int aclm_store_acme_order_open(struct aclm_store *st, int64_t managed_id,
                               struct aclm_acme_order_row *out);
/* ACLM_ERR_EXISTS when the managed certificate has an unfinished order. */
int aclm_store_acme_order_add(struct aclm_store *st, const struct aclm_acme_order_row *r,
                              int64_t *id);
/* Write every mutable field (state, status, urls, key, cert, error). */
int aclm_store_acme_order_update(struct aclm_store *st, const struct aclm_acme_order_row *r);
typedef int (*aclm_acme_order_fn)(void *ctx, const struct aclm_acme_order_row *r);
/* Orders of one managed certificate (0: all), oldest first. */
int aclm_store_acme_order_list(struct aclm_store *st, int64_t managed_id,
                               aclm_acme_order_fn fn, void *ctx);
/* The order that produced a certificate; ACLM_ERR_NOTFOUND if none. */
int aclm_store_acme_order_by_cert(struct aclm_store *st, int64_t cert_id,
                                  struct aclm_acme_order_row *out);

int aclm_store_acme_authz_put(struct aclm_store *st, int64_t order_id, const char *url,
                              const char *identifier, const char *status,
                              const char *challenge_type, const char *challenge_url,
                              const char *token);

/* How many orders were created at this CA since `since`. */
int aclm_store_acme_orders_since(struct aclm_store *st, const char *ca, int64_t since,
                                 int64_t *count);

/* Per-CA backoff after 429 / rateLimited / 5xx. */
int aclm_store_acme_ca_backoff(struct aclm_store *st, const char *ca, int64_t *until,
                               int64_t *failures);
int aclm_store_acme_ca_set_backoff(struct aclm_store *st, const char *ca, int64_t until,
                                   int64_t failures, const char *error);

#endif
