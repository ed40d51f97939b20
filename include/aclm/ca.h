/* The built-in CA: hierarchies, issuance, revocation, CRL and OCSP.
 *
 * A CA (by name, "main" by default) has up to three hierarchies, each a
 * root and one issuing intermediate: ECDSA (P-384 root, P-256
 * intermediate), RSA (4096 / 2048) and SM2 (SM2-with-SM3 signatures with
 * the GB/T 32918 distinguishing ID "1234567812345678").  Their certificates
 * are ordinary inventory rows; their private keys are sealed under the KEK
 * on the key rows (keywrap.h) and opened only inside src/ca for one
 * signature.  A CSR's key type picks the hierarchy.  See docs/internals/ca.md. */
#ifndef ACLM_CA_H
#define ACLM_CA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct aclm_store;
struct aclm_kek;

enum aclm_ca_algo {
	ACLM_CA_ECDSA = 0,
	ACLM_CA_RSA,
	ACLM_CA_SM2,
};
#define ACLM_CA_N_ALGOS 3
const char *aclm_ca_algo_name(enum aclm_ca_algo a);      /* "ecdsa", "rsa", "sm2" */
int aclm_ca_algo_parse(const char *s, enum aclm_ca_algo *out);

/* A certificate profile: validity and what it may contain. */
struct aclm_ca_profile {
	const char *name;
	int64_t validity;          /* seconds */
	bool allow_ip;             /* IP identifiers (RFC 8738) */
	bool allow_wildcard;
	bool client_auth;          /* EKU clientAuth besides serverAuth */
	const char *description;
};
/* NULL when unknown; name NULL or "" gives "default". */
const struct aclm_ca_profile *aclm_ca_profile_find(const char *name);
size_t aclm_ca_profiles(const struct aclm_ca_profile **out);

/* Which identifiers a CA issues for. */
struct aclm_ca_policy {
	const char *const *dns_suffixes;   /* empty: any DNS name */
	size_t n_dns_suffixes;
	const char *const *ip_ranges;      /* CIDR; empty: the private ranges */
	size_t n_ip_ranges;
};
/* 0, or ACLM_ERR_USAGE with a message naming the identifier and the rule. */
int aclm_ca_policy_check(const struct aclm_ca_policy *pol, const char *type, const char *value);

struct aclm_config;
/* ca.dns_suffixes and ca.ip_ranges (pointers into cfg). */
void aclm_ca_policy_from_config(const struct aclm_config *cfg, struct aclm_ca_policy *pol);
/* ca.url, else "https://" + server.listen (0.0.0.0 / [::] as 127.0.0.1). */
void aclm_ca_base_url(const struct aclm_config *cfg, char *out, size_t out_size);
/* A CSR in PEM or DER as DER (malloc'd). */
int aclm_ca_csr_der(const unsigned char *in, size_t len, unsigned char **der, size_t *der_len);

/* Create the missing hierarchies of CA `ca` (all three); *n_created counts
 * the new ones (0: everything existed). */
int aclm_ca_init(struct aclm_store *st, const struct aclm_kek *kek, const char *ca,
                 int *n_created);
/* Does CA `ca` have at least one hierarchy? */
int aclm_ca_exists(struct aclm_store *st, const char *ca, bool *exists);

/* Why an issuance was refused, as an ACME problem type ("badCSR",
 * "rejectedIdentifier", "serverInternal"). */
struct aclm_ca_issue_req {
	const char *ca;
	const unsigned char *csr;  /* DER PKCS#10 */
	size_t csr_len;
	const char *profile;       /* NULL: "default" */
	const struct aclm_ca_policy *policy;  /* NULL: no identifier policy */
	const char *base_url;      /* "https://host:port" for CRL DP / OCSP; NULL: none */
	const char *account_ref;   /* ACME account, or NULL */
	/* When set, the CSR must ask for exactly these identifiers ("dns:x",
	 * "ip:y"), in any order (ACME finalize). */
	const char *const *expect;
	size_t n_expect;
};

struct aclm_ca_issue_res {
	int64_t cert_id;
	char serial[65];
	enum aclm_ca_algo algo;
	char *chain_pem;           /* leaf then intermediate, PEM */
	size_t chain_pem_len;
	const char *problem;       /* on failure: ACME problem type */
};
void aclm_ca_issue_res_free(struct aclm_ca_issue_res *r);

int aclm_ca_issue(struct aclm_store *st, const struct aclm_kek *kek,
                  const struct aclm_ca_issue_req *req, struct aclm_ca_issue_res *res);

/* RFC 5280 reasons by name: "unspecified", "keyCompromise", "cACompromise",
 * "affiliationChanged", "superseded", "cessationOfOperation",
 * "certificateHold", "privilegeWithdrawn", "aACompromise" (or the number). */
int aclm_ca_reason_parse(const char *s, int *reason);
const char *aclm_ca_reason_name(int reason);
/* Revoke by serial (hex); records an event. */
int aclm_ca_revoke(struct aclm_store *st, const char *ca, const char *serial, int reason);

/* The root certificates of CA `ca` (every hierarchy) as a PEM bundle. */
int aclm_ca_roots_pem(struct aclm_store *st, const char *ca, char **pem, size_t *pem_len);
/* The intermediate (and root when with_root) of one hierarchy, PEM. */
int aclm_ca_chain_pem(struct aclm_store *st, const char *ca, enum aclm_ca_algo algo,
                      bool with_root, char **pem, size_t *pem_len);

/* A fresh DER CRL of one hierarchy's intermediate (next update in 7 days). */
int aclm_ca_crl(struct aclm_store *st, const struct aclm_kek *kek, const char *ca,
                enum aclm_ca_algo algo, unsigned char **der, size_t *der_len);

/* Answer a DER OCSPRequest (RFC 6960) for CA `ca`; the response is DER
 * (signed by the issuing intermediate; nonce copied when asked).  A
 * request that cannot be parsed gets a malformedRequest response, not an
 * error. */
int aclm_ca_ocsp_respond(struct aclm_store *st, const struct aclm_kek *kek, const char *ca,
                         const unsigned char *req, size_t req_len,
                         unsigned char **resp, size_t *resp_len);

/* ARI (RFC 9773): the suggested renewal window of a certificate issued by
 * CA `ca`, from its serial; spread over the middle third of the validity
 * by the serial, moved to now when an operator asked for early renewal. */
int aclm_ca_renewal_window(struct aclm_store *st, const char *ca, const char *serial,
                           int64_t *start, int64_t *end);

/* --- the ACME server (RFC 8555, RFC 9773 ARI, RFC 8737, RFC 8738) -------
 *
 * Transport-neutral: the front end (src/server/ca_api.c) hands each request
 * to aclm_ca_acme_handle() on one thread (the one that owns the store) and
 * sends what it returns.  Validations are network work: the handler only
 * queues them; the front end takes them, runs aclm_ca_acme_validate() on
 * another thread, and reports the result back with
 * aclm_ca_acme_validation_done() on the store's thread. */

struct aclm_ca_acme;

struct aclm_ca_acme_opts {
	const struct aclm_kek *kek;          /* signs certificates (kept by the caller) */
	struct aclm_ca_policy policy;        /* which identifiers are allowed */
	const char *cert_base_url;           /* CRL/OCSP URLs in certificates; NULL: the
	                                      * request's own base */
	int http01_port;                     /* 80 */
	int tlsalpn01_port;                  /* 443 */
	const char *connect_to;              /* validation connects here for DNS names
	                                      * (NULL: resolve the name) */
	const char *dns_resolver;            /* "ADDR[:PORT]" for dns-01; NULL: system */
	int64_t orders_per_hour;             /* per account; 0: no limit */
	int64_t orders_per_name_per_hour;    /* per registered name; 0: no limit */
	int64_t authz_reuse;                 /* seconds a valid authorization is reused */
	int64_t ari_retry_after;             /* renewalInfo's Retry-After, seconds; 0: 6 h */
	double validation_timeout;           /* seconds; 10 */
	/* External account binding (RFC 8555 7.3.4): "KID:BASE64URL-HMAC-KEY"
	 * entries; with eab_required, newAccount without a valid binding is
	 * refused with externalAccountRequired. */
	const char *const *eab_keys;
	size_t n_eab_keys;
	bool eab_required;
};

int aclm_ca_acme_new(const struct aclm_ca_acme_opts *opts, struct aclm_ca_acme **out);
void aclm_ca_acme_free(struct aclm_ca_acme *a);

struct aclm_ca_acme_req {
	const char *method;        /* "GET", "HEAD", "POST" */
	const char *ca;            /* from /acme/<ca>/... */
	const char *path;          /* after /acme/<ca>: "/directory", "/order/ABC/finalize" */
	const char *base;          /* "https://host:port/acme/<ca>" as the client sees it */
	const char *content_type;
	const unsigned char *body;
	size_t body_len;
};

#define ACLM_CA_ACME_MAX_LINKS 4
struct aclm_ca_acme_res {
	int status;
	const char *content_type;
	char *body;
	size_t body_len;
	char nonce[64];            /* Replay-Nonce, "" for none */
	char location[512];
	char links[ACLM_CA_ACME_MAX_LINKS][600];
	int n_links;
	int64_t retry_after;       /* seconds, 0 none */
};
void aclm_ca_acme_res_free(struct aclm_ca_acme_res *r);

/* Always fills res (a problem document when the request is refused);
 * returns 0, or a negative error for failures of the server itself (the
 * problem is then serverInternal). */
int aclm_ca_acme_handle(struct aclm_ca_acme *a, struct aclm_store *st,
                        const struct aclm_ca_acme_req *req, struct aclm_ca_acme_res *res);

struct aclm_ca_acme_validation {
	char challenge[48];        /* challenge ref */
	char type[16];             /* "http-01", "tls-alpn-01", "dns-01" */
	char ident_type[4];        /* "dns", "ip" */
	char value[256];
	char token[64];
	char keyauth[160];
	/* results */
	bool ok;
	char problem[32];          /* "connection", "unauthorized", "dns", "tls", "incorrectResponse" */
	char error[512];
};
/* Validations queued by handled requests (at most max); the caller runs them. */
size_t aclm_ca_acme_take(struct aclm_ca_acme *a, struct aclm_ca_acme_validation *out, size_t max);
/* Run one validation (network, blocking, bounded by the timeout); any thread. */
void aclm_ca_acme_validate(const struct aclm_ca_acme *a, struct aclm_ca_acme_validation *v);
int aclm_ca_acme_validation_done(struct aclm_ca_acme *a, struct aclm_store *st,
                                 const struct aclm_ca_acme_validation *v);
/* After a restart: queue every challenge that was being validated. */
int aclm_ca_acme_resume(struct aclm_ca_acme *a, struct aclm_store *st);

#endif
