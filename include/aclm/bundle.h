/* Certificate containers: PEM (any number of blocks), DER, PKCS#7 (PEM or
 * DER, "certs-only" bundles) and PKCS#12 (with or without password).
 *
 * A bundle is parsed from memory; it collects every certificate and private
 * key found, and a list of problems with the parts it could not use (a PEM
 * block that is not a certificate, a truncated block, ...), each naming
 * where in the input.  Private keys are handed out only as PKCS#8 DER in
 * memory that aclm_bundle_free() wipes. */
#ifndef ACLM_BUNDLE_H
#define ACLM_BUNDLE_H

#include <stdbool.h>
#include <stddef.h>

#include "aclm/x509.h"

enum aclm_bundle_format {
	ACLM_FMT_UNKNOWN = 0,
	ACLM_FMT_PEM,
	ACLM_FMT_DER,
	ACLM_FMT_PKCS7,
	ACLM_FMT_PKCS12,
};

struct aclm_privkey {
	unsigned char spki_sha256[32]; /* of the matching public key */
	char spki_hex[65];
	enum aclm_key_type key_type;
	unsigned char *pkcs8;          /* unencrypted PKCS#8 DER: secret */
	size_t pkcs8_len;
};

struct aclm_bundle {
	enum aclm_bundle_format format;
	struct aclm_cert **certs;
	size_t n_certs;
	struct aclm_privkey *keys;
	size_t n_keys;
	char **problems;     /* "PEM block 3 (line 41): X509 CRL is not a certificate" */
	size_t n_problems;
};

/* Limits that protect the parser from hostile input. */
#define ACLM_BUNDLE_MAX_CERTS 100000
#define ACLM_BUNDLE_MAX_KEYS  1024

/* Parse data.  password may be NULL (PKCS#12 then tries "" and no password;
 * encrypted PEM keys are reported as problems).  Returns:
 *   0                  at least one certificate or key was found;
 *   ACLM_ERR_PASSWORD  PKCS#12 / encrypted key and the password is wrong or missing;
 *   ACLM_ERR_PARSE     nothing usable; the message says why (e.g.
 *                      "not a certificate file (no PEM block; not DER, PKCS#7 or PKCS#12)",
 *                      "PEM block 1 (line 1): truncated (no END line)").
 * On every return *out is valid and must be freed with aclm_bundle_free(). */
int aclm_bundle_parse(const unsigned char *data, size_t len, const char *password,
                      struct aclm_bundle *out);
void aclm_bundle_free(struct aclm_bundle *b);

const char *aclm_bundle_format_name(enum aclm_bundle_format f); /* "pem","der","pkcs7","pkcs12" */

/* Output helpers for `aclm export`. */
/* PEM of one or more DER certificates, concatenated. */
int aclm_pem_encode_cert(const unsigned char *der, size_t len, char **pem, size_t *pem_len);
/* PEM "PRIVATE KEY" of a PKCS#8 DER (caller wipes and frees *pem). */
int aclm_pem_encode_key(const unsigned char *pkcs8, size_t len, char **pem, size_t *pem_len);
/* PKCS#12 of leaf + chain (+ key when pkcs8 != NULL), AES-256-CBC/PBKDF2
 * with the given password (must be non-empty when a key is included). */
int aclm_pkcs12_build(const unsigned char *leaf_der, size_t leaf_len,
                      const unsigned char *const *chain_der, const size_t *chain_len, size_t n_chain,
                      const unsigned char *pkcs8, size_t pkcs8_len,
                      const char *password, const char *friendly_name,
                      unsigned char **out, size_t *out_len);

#endif
