/* The ACME client (RFC 8555): accounts, orders, challenges, renewal.
 *
 * One CA is a struct aclm_acme_ca (from aclm.yaml `acme.cas`).  Issuing
 * walks an order through a table of states persisted in the store after
 * every step (docs/internals/acme.md), so a run killed at any point resumes
 * the same order.  A managed certificate lists its CAs in priority order;
 * when one fails after bounded retries the next one is tried and the event
 * records why. */
#ifndef ACLM_ACME_H
#define ACLM_ACME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aclm/csr.h"

struct aclm_store;
struct aclm_kek;
struct aclm_config;

struct aclm_acme_ca {
	char *name;
	char *directory;        /* directory URL (https) */
	char *trust;            /* PEM file of trust anchors for the CA's own TLS; NULL: system */
	char *contact;          /* "mailto:ops@example.com" or NULL */
	char *eab_kid;          /* External Account Binding key id, or NULL */
	char *eab_hmac;         /* its MAC key, base64url */
	char *preferred_chain;  /* issuer CN of the preferred chain's top, or NULL */
	char *profile;          /* default profile for this CA, or NULL */
	char *account_key;      /* "ec256" (default), "ec384", "rsa2048" ... */
	int64_t timeout;        /* seconds one order may take; 0 = 300 */
	int64_t rate_orders;    /* rate_limit "N/DURATION": at most N new orders ... */
	int64_t rate_window;    /* ... per this many seconds (0: no limit) */
};

/* The CAs declared in the configuration (acme.cas); *cas is freed with
 * aclm_acme_cas_free.  Each entry is validated (name, directory). */
int aclm_acme_cas_load(const struct aclm_config *cfg, struct aclm_acme_ca **cas, size_t *n_cas);
void aclm_acme_cas_free(struct aclm_acme_ca *cas, size_t n_cas);
const struct aclm_acme_ca *aclm_acme_ca_find(const struct aclm_acme_ca *cas, size_t n_cas,
                                             const char *name);

enum aclm_acme_chall {
	ACLM_CHALL_HTTP01 = 0,
	ACLM_CHALL_TLSALPN01,
	ACLM_CHALL_DNS01,
};
const char *aclm_acme_chall_name(enum aclm_acme_chall c);
int aclm_acme_chall_parse(const char *s, enum aclm_acme_chall *out);

/* The standalone responder (http-01 or tls-alpn-01), shareable by
 * several issues running at once in threads. */
struct aclm_acme_responder;
int aclm_acme_responder_start(const char *addr, enum aclm_acme_chall type,
                              struct aclm_acme_responder **out);
void aclm_acme_responder_stop(struct aclm_acme_responder *r);

/* How challenges are answered. */
struct aclm_acme_solver {
	enum aclm_acme_chall type;
	const char *standalone;   /* http-01 / tls-alpn-01: "ADDR:PORT" to listen on */
	const char *webroot;      /* http-01: document root */
	const char *dns_hook;     /* dns-01: script called "add|remove FQDN VALUE" */
	int64_t dns_wait;         /* dns-01: seconds to wait after add (propagation) */
	const char *dns_server;   /* dns-01 by RFC 2136: the zone's primary "ADDR:PORT" */
	const char *dns_zone;     /*   the zone to update */
	const char *tsig_key;     /*   BIND-style TSIG key file (hmac-sha256) */
	int64_t dns_timeout;      /*   how long to wait for every NS to answer (0: 120 s) */
	struct aclm_acme_responder *responder;  /* shared standalone responder, or NULL:
	                                           aclm_acme_issue starts its own */
};

/* One certificate to obtain. */
struct aclm_acme_request {
	const char *const *names;  /* DNS names (A-labels after normalisation) and IPs */
	size_t n_names;
	enum aclm_keygen key;
	bool reuse_key;
	struct aclm_acme_solver solver;
	const char *profile;       /* NULL: the CA's default */
	const char *const *cas;    /* CA names in priority order */
	size_t n_cas;
	const char *replaces;      /* ARI certificate id of the certificate renewed, or NULL */
	int64_t managed_id;        /* 0: create or find by name */
	int64_t pair_id;           /* managed id of the other half of a --dual pair, or 0 */
};

struct aclm_acme_result {
	int64_t managed_id;
	int64_t cert_id;
	int64_t order_id;
	char ca[64];
	char fingerprint[65];
	int64_t not_after;
	bool resumed;              /* an unfinished order was picked up */
};

/* Normalise names in place into a new array: lower-case, IDNs to A-labels,
 * refusing empty labels, underscores, bad characters; wildcards only as the
 * whole first label; duplicates dropped (*n_out may be smaller than n).  *out is freed with aclm_acme_names_free. */
int aclm_acme_names_normalize(const char *const *in, size_t n, char ***out, size_t *n_out);
void aclm_acme_names_free(char **names, size_t n);

/* Issue (or resume) one certificate; tries the request's CAs in order. */
int aclm_acme_issue(struct aclm_store *st, const struct aclm_kek *kek,
                    const struct aclm_acme_ca *cas, size_t n_cas,
                    const struct aclm_acme_request *req, struct aclm_acme_result *res);

/* Revoke a stored certificate (by the account that ordered it, or by its
 * own key when the account is unknown).  reason: RFC 5280 code 0..10. */
int aclm_acme_revoke(struct aclm_store *st, const struct aclm_kek *kek,
                     const struct aclm_acme_ca *cas, size_t n_cas,
                     int64_t cert_id, int reason);

/* Accounts: deactivate, or roll the account key over to a fresh one. */
/* Find or create the account at this CA (before issuing from many threads). */
int aclm_acme_account_ensure(struct aclm_store *st, const struct aclm_kek *kek,
                             const struct aclm_acme_ca *ca);
/* The order URLs the CA lists for our account (RFC 8555 7.1.2.1, every
 * page); fn is called per URL. */
int aclm_acme_account_orders(struct aclm_store *st, const struct aclm_kek *kek,
                             const struct aclm_acme_ca *ca,
                             void (*fn)(void *ctx, const char *url), void *ctx);
int aclm_acme_account_deactivate(struct aclm_store *st, const struct aclm_kek *kek,
                                 const struct aclm_acme_ca *ca);
int aclm_acme_account_rollover(struct aclm_store *st, const struct aclm_kek *kek,
                               const struct aclm_acme_ca *ca);

/* --- renewal (renew.c) ------------------------------------------------ */

/* When to renew without ARI: at 2/3 of the lifetime (1/2 for lifetimes of
 * at most 10 days), minus a jitter of up to 1/20 of the lifetime derived
 * from seed so that many certificates spread out. */
int64_t aclm_acme_renew_at(int64_t not_before, int64_t not_after, uint64_t seed);

/* ARI (RFC 9773) certificate identifier: base64url(AKI keyIdentifier) "."
 * base64url(serial DER content octets). */
int aclm_acme_ari_cert_id(const unsigned char *der, size_t der_len, char *out, size_t out_size);

/* Parse a renewalInfo response: suggestedWindow start/end (RFC 3339) and an
 * optional explanationURL.  Bad documents are ACLM_ERR_PARSE naming what. */
struct aclm_acme_ari {
	int64_t start, end;
	char explanation[256];
};
int aclm_acme_ari_parse(const char *json, size_t len, struct aclm_acme_ari *out);
/* A time inside the window, chosen uniformly from seed; a window in the
 * past (end <= now) means "now". */
int64_t aclm_acme_ari_pick(const struct aclm_acme_ari *w, int64_t now, uint64_t seed);

/* ARI for managed certificate managed_id: ask CA ca, which issued cert_id,
 * for its renewal window.  *when gets the time chosen in it (seed);
 * ari_id the certificate's ARI id for `replaces`; the managed row's
 * ari_check_at the CA's Retry-After (a minute .. a day; 6 h without).
 * 0 with *when untouched when the CA offers no renewalInfo. */
int aclm_acme_ari_check(struct aclm_store *st, const struct aclm_acme_ca *ca,
                        int64_t managed_id, int64_t cert_id, uint64_t seed, int64_t *when,
                        char *ari_id, size_t ari_id_size);

/* Renew the managed certificates that are due (or all listed ids when
 * force).  dry_run only reports. fn is called per managed certificate with
 * a line for a person. */
struct aclm_acme_renew_opts {
	const int64_t *ids;
	size_t n_ids;
	bool force;
	bool dry_run;
	void (*report)(void *ctx, int64_t managed_id, const char *name, const char *what);
	void *ctx;
};
int aclm_acme_renew(struct aclm_store *st, const struct aclm_kek *kek,
                    const struct aclm_acme_ca *cas, size_t n_cas,
                    const struct aclm_acme_renew_opts *o, int *n_renewed, int *n_failed);

#endif
