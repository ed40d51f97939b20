/* Key generation and certificate signing requests (PKCS#10).
 *
 * Keys cross this interface as unencrypted PKCS#8 DER (a secret: callers
 * wipe it with OPENSSL_cleanse and seal it with keywrap.h before storing);
 * no OpenSSL type is exposed.  SM2 keys sign their CSR with SM2-with-SM3
 * and the distinguishing ID of GB/T 32918 ("1234567812345678" unless told
 * otherwise), which the verifier must use too. */
#ifndef ACLM_CSR_H
#define ACLM_CSR_H

#include <stdbool.h>
#include <stddef.h>

enum aclm_keygen {
	ACLM_KEYGEN_EC256 = 0,
	ACLM_KEYGEN_EC384,
	ACLM_KEYGEN_RSA2048,
	ACLM_KEYGEN_RSA3072,
	ACLM_KEYGEN_RSA4096,
	ACLM_KEYGEN_SM2,
};

/* The default SM2 distinguishing ID (GB/T 32918.2, 16 bytes). */
#define ACLM_SM2_DEFAULT_ID "1234567812345678"

/* "ec256","ec384","rsa2048","rsa3072","rsa4096","sm2" (also "p256","p384"). */
int aclm_keygen_parse(const char *s, enum aclm_keygen *out);
const char *aclm_keygen_name(enum aclm_keygen k);

/* A fresh private key as PKCS#8 DER; *pkcs8 is a secret the caller wipes. */
int aclm_key_generate(enum aclm_keygen kind, unsigned char **pkcs8, size_t *pkcs8_len);

/* The SHA-256 of the DER SubjectPublicKeyInfo of a PKCS#8 key (hex too). */
int aclm_key_spki_sha256(const unsigned char *pkcs8, size_t pkcs8_len,
                         unsigned char out[32], char hex[65]);

/* Names for a CSR: DNS names (A-labels, wildcards allowed) and IP
 * addresses in text form; the first DNS name also becomes the subject CN
 * when it fits (64 characters). */
struct aclm_csr_names {
	const char *const *names;
	size_t n_names;
};

/* A DER PKCS#10 request for names, signed by the key (SHA-256 for RSA and
 * ECDSA P-256, SHA-384 for P-384, SM3 with the distinguishing ID for SM2). */
int aclm_csr_build(const unsigned char *pkcs8, size_t pkcs8_len,
                   const struct aclm_csr_names *names,
                   unsigned char **der, size_t *der_len);

/* Parse and verify a DER CSR's self-signature (SM2 with the default ID);
 * *n_names gets how many SAN entries it carries. */
int aclm_csr_verify(const unsigned char *der, size_t der_len, size_t *n_names);

/* Is s an IP address literal (v4 or v6)? */
bool aclm_is_ip_literal(const char *s);

#endif
