/* ML-KEM-768 and ML-KEM-1024 (FIPS 203, August 2024).
 *
 * Byte strings are in the FIPS 203 encodings: ek = ByteEncode12(t) || rho,
 * dk = ByteEncode12(s) || ek || H(ek) || z ("expanded" form), ct = c1 || c2,
 * and the 64-byte seed d || z from which KeyGen_internal expands a key pair.
 *
 * Every function returns 0 or a negative enum aclm_err with a message:
 * ACLM_ERR_USAGE for an unknown parameter set or an output buffer that is
 * too small, ACLM_ERR_PARSE for an input that fails the checks of FIPS 203
 * §7.2/§7.3 (wrong length, unreduced coefficient, hash mismatch),
 * ACLM_ERR_CRYPTO when OpenSSL (SHA-3, the DRBG) fails.  Output buffers are
 * "at least" the size of the parameter set; exactly that many bytes are
 * written.  On failure no shared secret is returned (ss is zeroed).
 *
 * Decaps never fails on a well-formed ciphertext that is not genuine: it
 * returns the implicit-rejection key J(z || c) instead, in constant time.
 * All operations are constant time in the secrets (docs/internals/mlkem.md)
 * and thread-safe. */
#ifndef ACLM_MLKEM_H
#define ACLM_MLKEM_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

enum aclm_mlkem_param {
	ACLM_MLKEM_768 = 768,
	ACLM_MLKEM_1024 = 1024,
};

#define ACLM_MLKEM768_EK_LEN 1184
#define ACLM_MLKEM768_DK_LEN 2400
#define ACLM_MLKEM768_CT_LEN 1088
#define ACLM_MLKEM1024_EK_LEN 1568
#define ACLM_MLKEM1024_DK_LEN 3168
#define ACLM_MLKEM1024_CT_LEN 1568
#define ACLM_MLKEM_SS_LEN 32     /* shared secret K */
#define ACLM_MLKEM_RAND_LEN 32   /* each of d, z (KeyGen) and m (Encaps) */
#define ACLM_MLKEM_SEED_LEN 64   /* d || z */
#define ACLM_MLKEM_MAX_EK_LEN ACLM_MLKEM1024_EK_LEN
#define ACLM_MLKEM_MAX_DK_LEN ACLM_MLKEM1024_DK_LEN
#define ACLM_MLKEM_MAX_CT_LEN ACLM_MLKEM1024_CT_LEN

/* The OpenSSL library context SHA-3/SHAKE are fetched from (NULL, the
 * default, unless set); the aclm-pq provider sets its own child context. */
void aclm_mlkem_set_libctx(OSSL_LIB_CTX *libctx);

/* The polynomial arithmetic in use: "avx2" or "portable" (chosen once per
 * process from CPUID; ACLM_MLKEM_NO_AVX2=1 in the environment forces
 * "portable").  Outputs are the same either way. */
const char *aclm_mlkem_backend(void);

/* Sizes of a parameter set; 0 for an unknown one. */
size_t aclm_mlkem_ek_len(enum aclm_mlkem_param p);
size_t aclm_mlkem_dk_len(enum aclm_mlkem_param p);
size_t aclm_mlkem_ct_len(enum aclm_mlkem_param p);

/* ML-KEM.KeyGen (Algorithm 19): d and z from RAND_priv_bytes. */
int aclm_mlkem_keygen(enum aclm_mlkem_param p, uint8_t *ek, size_t ek_len,
	uint8_t *dk, size_t dk_len);

/* ML-KEM.KeyGen_internal (Algorithm 16): deterministic, for known-answer
 * tests and for keys stored as a seed. */
int aclm_mlkem_keygen_internal(enum aclm_mlkem_param p,
	const uint8_t d[ACLM_MLKEM_RAND_LEN], const uint8_t z[ACLM_MLKEM_RAND_LEN],
	uint8_t *ek, size_t ek_len, uint8_t *dk, size_t dk_len);

/* KeyGen_internal from the 64-byte seed d || z (the seed form of a private
 * key); a seed of any other length is ACLM_ERR_PARSE. */
int aclm_mlkem_keygen_seed(enum aclm_mlkem_param p, const uint8_t *seed,
	size_t seed_len, uint8_t *ek, size_t ek_len, uint8_t *dk, size_t dk_len);

/* Encapsulation key check of §7.2: length and modulus check
 * (ByteEncode12(ByteDecode12(ek)) == ek). */
int aclm_mlkem_check_ek(enum aclm_mlkem_param p, const uint8_t *ek, size_t ek_len);

/* Decapsulation key check of §7.3: length and hash check
 * (H(ek embedded in dk) == h embedded in dk). */
int aclm_mlkem_check_dk(enum aclm_mlkem_param p, const uint8_t *dk, size_t dk_len);

/* ML-KEM.Encaps (Algorithm 20): checks ek (§7.2), m from RAND_priv_bytes. */
int aclm_mlkem_encaps(enum aclm_mlkem_param p, const uint8_t *ek, size_t ek_len,
	uint8_t *ct, size_t ct_len, uint8_t *ss, size_t ss_len);

/* ML-KEM.Encaps_internal (Algorithm 17) with the caller's m, for
 * known-answer tests.  ek is checked as in aclm_mlkem_encaps. */
int aclm_mlkem_encaps_internal(enum aclm_mlkem_param p, const uint8_t *ek,
	size_t ek_len, const uint8_t m[ACLM_MLKEM_RAND_LEN],
	uint8_t *ct, size_t ct_len, uint8_t *ss, size_t ss_len);

/* ML-KEM.Decaps (Algorithm 21) with the input checks of §7.3: ciphertext
 * and key length, hash check of dk.  A ciphertext of the right length
 * always yields a key (implicit rejection). */
int aclm_mlkem_decaps(enum aclm_mlkem_param p, const uint8_t *dk, size_t dk_len,
	const uint8_t *ct, size_t ct_len, uint8_t *ss, size_t ss_len);

#endif
