/* Inside the ACME client: JWS signing, the HTTP client, challenge solvers.
 * Keys used to sign live only here (struct acme_key); the parts that parse
 * CA responses ask for signatures through acme_jws_sign. */
#ifndef ACLM_ACME_INT_H
#define ACLM_ACME_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "aclm/acme.h"

/* Bounds on what a CA may send us. */
#define ACME_MAX_RESPONSE   (1u << 20)  /* JSON documents */
#define ACME_MAX_CERT       (1u << 20)  /* a PEM chain */
#define ACME_MAX_NONCE      256
#define ACME_MAX_URL        2048
#define ACME_BADNONCE_TRIES 20
#define ACME_MAX_NAMES      100         /* identifiers in one order */

/* --- base64url and JWS (jws.c) ---------------------------------------- */

/* Unpadded base64url; *out is NUL-terminated, freed by the caller. */
int acme_b64url_encode(const unsigned char *in, size_t len, char **out);
/* Decode (no padding, no whitespace accepted); *out freed by the caller. */
int acme_b64url_decode(const char *in, size_t len, unsigned char **out, size_t *out_len);

enum acme_alg { ACME_RS256 = 0, ACME_ES256, ACME_ES384 };

struct acme_key {
	EVP_PKEY *pk;
	enum acme_alg alg;
	char *jwk;              /* canonical JWK (RFC 7638 member order, no spaces) */
	char thumbprint[64];    /* base64url SHA-256 of jwk */
};

/* From PKCS#8 DER: RSA (RS256), P-256 (ES256), P-384 (ES384). */
int acme_key_load(const unsigned char *pkcs8, size_t len, struct acme_key *k);
void acme_key_free(struct acme_key *k);
const char *acme_alg_name(enum acme_alg a);

/* A flattened JWS: protected {alg, nonce, url, kid | jwk}; payload NULL
 * means POST-as-GET (empty payload).  *out is the JSON text. */
int acme_jws_sign(const struct acme_key *k, const char *kid, const char *nonce,
                  const char *url, const char *payload, char **out);
/* The same signature without a nonce (key-change inner JWS: jwk, url). */
int acme_jws_sign_inner(const struct acme_key *k, const char *url, const char *payload,
                        json_t **out);
/* External Account Binding: HS256 over the account JWK (RFC 8555 7.3.4). */
int acme_jws_eab(const char *kid, const unsigned char *mac_key, size_t mac_len,
                 const char *url, const char *jwk, json_t **out);
/* "token.thumbprint" */
int acme_key_authorization(const struct acme_key *k, const char *token, char **out);
/* base64url(SHA-256(key authorization)): the dns-01 TXT value. */
int acme_dns01_value(const char *keyauth, char out[64]);

/* --- HTTP client (client.c) ------------------------------------------- */

struct acme_problem {
	char type[256];
	char detail[512];
	int status;
	char subproblems[1024];  /* "identifier: type: detail; ..." */
};

struct acme_response {
	long status;
	char *body;              /* NUL-terminated, bounded */
	size_t body_len;
	char content_type[128];
	char location[ACME_MAX_URL];
	char nonce[ACME_MAX_NONCE];
	int64_t retry_after;     /* seconds, 0 when absent */
	char **alternates;       /* Link: rel="alternate" */
	size_t n_alternates;
	char up[ACME_MAX_URL];   /* Link: rel="up" */
	char next[ACME_MAX_URL]; /* Link: rel="next" (paginated lists) */
};
void acme_response_free(struct acme_response *r);

struct acme_directory {
	char new_nonce[ACME_MAX_URL];
	char new_account[ACME_MAX_URL];
	char new_order[ACME_MAX_URL];
	char revoke_cert[ACME_MAX_URL];
	char key_change[ACME_MAX_URL];
	char renewal_info[ACME_MAX_URL];  /* ARI, may be empty */
	bool eab_required;
	char **profiles;                  /* meta.profiles keys */
	size_t n_profiles;
};
void acme_directory_free(struct acme_directory *d);
/* Parse a directory document; errors name the missing or wrong member. */
int acme_directory_parse(const char *json, size_t len, struct acme_directory *d);
/* Parse a problem document (RFC 7807 + RFC 8555 subproblems). */
int acme_problem_parse(const char *json, size_t len, struct acme_problem *p);

struct acme_client {
	const struct aclm_acme_ca *ca;
	void *curl;                 /* CURL * */
	struct acme_directory dir;
	char nonce[ACME_MAX_NONCE];
	struct acme_key account;    /* loaded once the account exists */
	char kid[ACME_MAX_URL];     /* account URL */
	struct acme_problem last_problem;
	long last_status;
	int64_t last_retry_after;
	char *kill_at;              /* test hook: state after which to SIGKILL */
};

int acme_client_open(struct acme_client *c, const struct aclm_acme_ca *ca);
void acme_client_close(struct acme_client *c);
/* GET (directory, certificate alternates by plain GET when allowed). */
int acme_get(struct acme_client *c, const char *url, struct acme_response *r);
/* Signed POST with the account key (kid) or, when use_jwk, the embedded JWK
 * of k; retried on badNonce.  payload NULL = POST-as-GET.  A problem
 * document becomes ACLM_ERR_* with the message "CA NAME: STEP: type: detail". */
int acme_post(struct acme_client *c, const struct acme_key *k, bool use_jwk,
              const char *url, const char *payload, const char *step,
              struct acme_response *r);
/* Parse a JSON body; errors name the CA and step. */
int acme_json(struct acme_client *c, const struct acme_response *r, const char *step,
              json_t **out);

/* --- accounts (account.c) ---------------------------------------------- */

/* Find the stored account of this CA or create one at the CA (with EAB when
 * configured or required); c->account and c->kid are set. */
int acme_account_ensure(struct acme_client *c, struct aclm_store *st,
                        const struct aclm_kek *kek);

/* --- challenge solvers ----------------------------------------------- */

/* The standalone responder (aclm_acme_responder_start in acme.h).
 * Publish a token (http-01: path token -> keyauth; tls-alpn-01: name ->
 * keyauth, the responder builds the validation certificate). */
int acme_responder_add(struct aclm_acme_responder *r, const char *key, const char *keyauth);

int acme_webroot_add(const char *webroot, const char *token, const char *keyauth);
void acme_webroot_remove(const char *webroot, const char *token);

/* tls-alpn-01: a self-signed certificate for name carrying the
 * id-pe-acmeIdentifier extension (critical) with SHA-256(keyauth). */
int acme_alpn_cert(const char *name, const char *keyauth, EVP_PKEY **key, void **x509);
/* "4.3.2.1.in-addr.arpa" / nibbles ".ip6.arpa" for an IP literal. */
int acme_reverse_name(const char *ip, char *out, size_t out_size);

int acme_dns_hook(const char *script, const char *action, const char *fqdn, const char *value);

/* RFC 2136 + TSIG (dns_update.c). */
struct acme_rfc2136 {
	char server[140];        /* primary "ADDR:PORT" */
	char zone[256];
	char key_name[256];
	unsigned char secret[128];
	size_t secret_len;
};
/* tsig_file: BIND key syntax, key "NAME" { algorithm hmac-sha256; secret "B64"; }; */
int acme_rfc2136_load(const char *server, const char *zone, const char *tsig_file,
                      struct acme_rfc2136 *out);
int acme_rfc2136_update(const struct acme_rfc2136 *d, bool add, const char *fqdn,
                        const char *value);
/* Wait until the primary and every NS of the zone answer fqdn TXT value. */
int acme_dns_wait_txt(const struct acme_rfc2136 *d, const char *fqdn, const char *value,
                      int64_t timeout);

#endif
