/* ML-KEM internals shared by the portable code (mlkem.c) and the AVX2
 * polynomial arithmetic (mlkem_avx2.c).  Not part of the API.
 *
 * Every function in struct mlkem_ops takes and returns coefficients in
 * [0, q) (the "canonical" form), so the two back ends are interchangeable
 * function by function and produce bit-identical encodings; whatever lazy
 * reduction a back end does stays inside one call.  See
 * docs/internals/mlkem.md. */
#ifndef ACLM_MLKEM_INT_H
#define ACLM_MLKEM_INT_H

#include <stddef.h>
#include <stdint.h>

#define MLKEM_N 256             /* coefficients per polynomial */
#define MLKEM_Q 3329            /* the prime */
#define MLKEM_POLY_BYTES 384    /* ByteEncode12 of one polynomial */
#define MLKEM_PRF_BYTES 128     /* PRF_eta output for eta = 2 */

/* Montgomery arithmetic with R = 2^16. */
#define MLKEM_QINV_NEG 3327     /* -q^-1 mod 2^16 */
#define MLKEM_INV_NTT_F 1441    /* 128^-1 * R^2 mod q */

/* Compress_d = floor(((x << d) + (q-1)/2) * ceil(2^35/q) / 2^35), exact for
 * x < q, d <= 11 (see compress() in mlkem.c). */
#define MLKEM_COMPRESS_MUL 10321340u
#define MLKEM_COMPRESS_SHIFT 35

struct mlkem_poly {
	_Alignas(32) uint16_t c[MLKEM_N];
};

/* zeta^BitRev7(i) * R mod q and zeta^(2 BitRev7(i) + 1) * R mod q (FIPS 203
 * Appendix A, in Montgomery form), defined in mlkem.c. */
extern const uint16_t mlkem_zetas[128];
extern const uint16_t mlkem_gammas[128];

/* The polynomial arithmetic a back end provides.  Contracts (all
 * coefficients in and out in [0, q) unless said otherwise):
 *   ntt        Algorithm 9, in place.
 *   inv_ntt    Algorithm 10 times R (it undoes dot()'s factor R^-1).
 *   dot        r = R^-1 sum_{j<k} a[j] x b[j] in T_q (Algorithms 11, 12).
 *   cbd2       SamplePolyCBD_2 (Algorithm 8) of 128 bytes.
 *   rej        Algorithm 7's inner loop: appends to out[n..N) the
 *              candidates < q read from buf[*pos..len) in steps of 3 bytes,
 *              advances *pos, returns the new n.  buf is public (XOF(rho)),
 *              the loop may branch on it.
 *   decode12   ByteDecode_12 then mod q.
 *   encode12   ByteEncode_12.
 *   compress   Compress_d for d in {1, 4, 5, 10, 11}; the output values
 *              are < 2^d. */
struct mlkem_ops {
	const char *name;
	void (*ntt)(struct mlkem_poly *f);
	void (*inv_ntt)(struct mlkem_poly *f);
	void (*dot)(struct mlkem_poly *r, const struct mlkem_poly *a,
	    const struct mlkem_poly *b, unsigned k);
	void (*cbd2)(struct mlkem_poly *f, const uint8_t in[MLKEM_PRF_BYTES]);
	unsigned (*rej)(uint16_t *out, unsigned n, const uint8_t *buf, size_t len,
	    size_t *pos);
	void (*decode12)(struct mlkem_poly *f, const uint8_t in[MLKEM_POLY_BYTES]);
	void (*encode12)(uint8_t out[MLKEM_POLY_BYTES], const struct mlkem_poly *f);
	void (*compress)(struct mlkem_poly *r, const struct mlkem_poly *f, unsigned d);
};

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MLKEM_HAVE_AVX2 1
/* The AVX2 back end (mlkem_avx2.c, built with -mavx2); call only when the
 * CPU has AVX2.  mlkem_avx2_init() builds its tables and must have
 * returned before the ops are used. */
extern const struct mlkem_ops mlkem_avx2_ops;
void mlkem_avx2_init(void);
#endif

#endif
