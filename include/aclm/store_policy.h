/* Policies in the inventory (schema migration 5, "policy";
 * docs/internals/policy.md), and the endpoint view the policy engine reads.
 *
 * A policy is stored as its normalised JSON text (policy.h parses and
 * checks it before it gets here); at most one stored policy is the default
 * of `aclm policy check` and the API. */
#ifndef ACLM_STORE_POLICY_H
#define ACLM_STORE_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "aclm/store.h"

struct aclm_policy_rec {
	const char *name;
	const char *body;          /* normalised JSON */
	bool is_default;
	int64_t created_at, updated_at;
};
typedef int (*aclm_policy_rec_fn)(void *ctx, const struct aclm_policy_rec *rec);

/* Add a policy, or with replace an existing one of that name; with an
 * audit event "policy.added" / "policy.replaced" naming actor.
 * ACLM_ERR_EXISTS when it exists and replace is false. */
int aclm_store_policy_put(struct aclm_store *st, const char *actor, const char *name,
                          const char *body, bool replace);
/* The stored body (caller frees); ACLM_ERR_NOTFOUND when there is none. */
int aclm_store_policy_get(struct aclm_store *st, const char *name, char **body,
                          bool *is_default);
/* Name of the default policy (caller frees), or *name NULL when none is set. */
int aclm_store_policy_default(struct aclm_store *st, char **name);
/* Make name the default (NULL: no stored default); event "policy.default". */
int aclm_store_policy_set_default(struct aclm_store *st, const char *actor, const char *name);
/* By name. */
int aclm_store_policy_list(struct aclm_store *st, aclm_policy_rec_fn fn, void *ctx);
/* Event "policy.deleted"; ACLM_ERR_NOTFOUND when there is none. */
int aclm_store_policy_delete(struct aclm_store *st, const char *actor, const char *name);

/* A short text that changes whenever the inputs of an evaluation may have
 * changed (certificates, endpoints or scan results added or removed): for
 * caching results together with the policy's own text.  Certificate and
 * scan result rows are immutable once stored, so counts and highest ids are
 * enough. */
int aclm_store_policy_generation(struct aclm_store *st, char *out, size_t n);

/* Every endpoint with its latest scan result (if any) and the leaf served
 * then; strings are "" rather than NULL and valid during the call. */
struct aclm_policy_endpoint_row {
	int64_t id;
	const char *host, *ip, *sni;
	unsigned port;
	bool scanned;              /* has a result at all */
	int64_t scanned_at;
	bool reachable;
	const char *pq_groups;     /* "X25519MLKEM768,...", "none", "" (not probed) */
	const char *negotiated_group;
	int64_t leaf_cert_id;      /* 0: none */
	const char *leaf_spki;     /* "" when no leaf */
	const char *leaf_sans;
};
typedef int (*aclm_policy_endpoint_fn)(void *ctx, const struct aclm_policy_endpoint_row *row);
int aclm_store_policy_endpoints(struct aclm_store *st, aclm_policy_endpoint_fn fn, void *ctx);

#endif
