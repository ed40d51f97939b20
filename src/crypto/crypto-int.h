/* Helpers shared by the files of src/crypto; not part of the public API. */
#ifndef ACLM_CRYPTO_INT_H
#define ACLM_CRYPTO_INT_H

#include <stddef.h>

#include <openssl/evp.h>

#include "aclm/x509.h"

/* Key type, size in bits and curve name of a public or private key.
 * *curve is a malloc'd string ("P-256", "SM2", other curve short name) or
 * NULL.  OpenSSL 3.0 decodes a key on the SM2 curve either as type "SM2" or
 * as "EC" with group "SM2" depending on where it came from; both give
 * ACLM_KEY_SM2.  Returns 0 or ACLM_ERR_NOMEM. */
int aclm_x509_key_describe(EVP_PKEY *pk, enum aclm_key_type *type, int *bits, char **curve);

/* SHA-256 of the DER SubjectPublicKeyInfo of pk (i2d_PUBKEY); for the same
 * key this equals struct aclm_cert.spki_sha256.  Returns 0 or ACLM_ERR_CRYPTO. */
int aclm_x509_key_spki_sha256(EVP_PKEY *pk, unsigned char out[32]);

/* Length of the DER TLV at the start of p (tag, length and contents), or 0
 * when it is not a complete definite-length TLV within len bytes. */
size_t aclm_der_tlv_len(const unsigned char *p, size_t len);

#endif
