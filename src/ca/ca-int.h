/* Inside the built-in CA: the one place that opens a CA key and signs. */
#ifndef ACLM_CA_INT_H
#define ACLM_CA_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "aclm/ca.h"

struct aclm_store;
struct aclm_kek;

/* The issuing intermediate of (ca, algo): certificate and opened key (the
 * caller frees both with X509_free / EVP_PKEY_free, which wipes the key). */
int ca_load_issuer(struct aclm_store *st, const struct aclm_kek *kek, const char *ca,
                   enum aclm_ca_algo algo, X509 **cert, EVP_PKEY **key);
/* PKCS#8 DER to a key (SM2 keys come out as type SM2). */
int ca_key_from_pkcs8(const unsigned char *pkcs8, size_t len, EVP_PKEY **out);
/* A certificate of the inventory by row id, as X509. */
int ca_load_cert(struct aclm_store *st, int64_t cert_id, X509 **out);

/* A digest-sign context for key: SHA-256 (RSA, P-256), SHA-384 (P-384),
 * SM3 with the SM2 distinguishing ID (SM2).  The caller frees *mctx and
 * then *pctx (NULL except for SM2: the MD context does not own it). */
int ca_sign_ctx(EVP_PKEY *key, EVP_MD_CTX **mctx, EVP_PKEY_CTX **pctx);

/* Which hierarchy a public key belongs to; ACLM_ERR_UNSUPPORTED with a
 * message for keys the CA refuses (RSA < 2048, curves other than P-256 /
 * P-384 / SM2, other types). */
int ca_algo_of_key(EVP_PKEY *pk, enum aclm_ca_algo *algo);
bool ca_key_is_sm2(EVP_PKEY *pk);

/* 16 random bytes, first bit clear, as an ASN1_INTEGER. */
int ca_random_serial(ASN1_INTEGER **out);

/* Store a signed certificate in the inventory (with an observation of
 * source "ca" at location "ca:<name>"); *id gets its row. */
int ca_store_cert(struct aclm_store *st, const char *ca, X509 *x, int64_t *id,
                  char serial_hex[65]);

/* Add an extension by NID from its config text ("critical,CA:TRUE"). */
int ca_add_ext(X509 *cert, X509 *issuer, int nid, const char *value);
/* A DNS name as a certificate may carry it: LDH labels, at most 253
 * characters, a wildcard only as the whole left-most label, no bare label
 * but "localhost", no numeric last label. */
bool ca_dns_name_ok(const char *s, bool allow_wildcard);


struct aclm_ca_acme;
struct aclm_ca_acme_opts;
/* acme_server.c: the options the validator needs. */
const struct aclm_ca_acme_opts *ca_acme_opts(const struct aclm_ca_acme *a);

/* --- acme_jws.c ---------------------------------------------------------- */
#include <jansson.h>

int ca_b64url_decode(const char *in, size_t in_len, unsigned char **out, size_t *out_len);
void ca_b64url_encode(const unsigned char *in, size_t len, char *out, size_t out_size);
/* A public JWK (EC P-256/P-384, RSA >= 2048, OKP Ed25519) as a key. */
int ca_jwk_to_pkey(json_t *jwk, EVP_PKEY **out);
/* RFC 7638 thumbprint, base64url (43 characters). */
int ca_jwk_thumbprint(json_t *jwk, char out[64]);
bool ca_jws_alg_allowed(const char *alg);
int ca_jws_verify_sig(const char *alg, EVP_PKEY *pk, const unsigned char *data, size_t len,
                      const unsigned char *sig, size_t sig_len);

/* A flattened JWS, decoded (not yet verified). */
struct ca_jws {
	json_t *protected_hdr;
	json_t *payload;           /* NULL for POST-as-GET (empty payload) */
	bool is_post_as_get;
	const char *alg, *nonce, *url, *kid;  /* in protected_hdr */
	json_t *jwk;               /* in protected_hdr, or NULL */
	char *signing_input;       /* protected "." payload, as sent */
	size_t signing_input_len;
	unsigned char *sig;
	size_t sig_len;
};
int ca_jws_parse(const unsigned char *body, size_t len, struct ca_jws *j);
void ca_jws_free(struct ca_jws *j);

#endif
