/* ML-KEM-768 and ML-KEM-1024, written from FIPS 203 (August 2024).
 *
 * Layout follows the standard: field and NTT arithmetic (§4.3), sampling
 * (§4.2.2), encodings (§4.2.1), K-PKE (§5), ML-KEM (§6, §7).  Which
 * function is which algorithm, and why this is constant time:
 * docs/internals/mlkem.md.
 *
 * The polynomial arithmetic is called through `ops` (struct mlkem_ops,
 * mlkem-int.h): the portable functions below, or the AVX2 ones of
 * mlkem_avx2.c when CPUID has AVX2 (select_ops()).
 *
 * Representation: a coefficient is a uint16_t in [0, q) at every point,
 * except the output of dot(), which carries an extra factor R^-1
 * (R = 2^16, Montgomery) that inv_ntt() or the caller removes. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "aclm/err.h"
#include "aclm/mlkem.h"
#include "mlkem-int.h"

#ifdef ACLM_CT_TESTING
#include <valgrind/memcheck.h>
/* The constant-time test (tests/unit/ct_mlkem.c) runs under valgrind with
 * the secrets marked undefined.  A few values are computed from secrets but
 * public by design (rho, which goes into ek); it tells valgrind so here. */
#define declassify(p, len) VALGRIND_MAKE_MEM_DEFINED((p), (len))
#else
#define declassify(p, len) ((void)(p), (void)(len))
#endif

#define N MLKEM_N
#define Q MLKEM_Q
#define MAX_K 4
#define POLY_BYTES MLKEM_POLY_BYTES
#define SYM 32              /* d, z, m, rho, sigma, r, H(ek), K */
#define PRF_BYTES MLKEM_PRF_BYTES

/* Montgomery arithmetic with R = 2^16. */
#define QINV_NEG MLKEM_QINV_NEG
#define MONT_R2 1353        /* R^2 mod q: mont_mul(x, MONT_R2) = x * R */
#define INV_NTT_F MLKEM_INV_NTT_F   /* see inv_ntt() */

/* Compress_d: floor(((x << d) + (q-1)/2) / q) as a multiply and a shift.
 * COMPRESS_MUL = ceil(2^35 / q); the quotient is exact for every x < q and
 * d <= 11 (checked exhaustively; shifts from 32 up are exact). */
#define COMPRESS_MUL MLKEM_COMPRESS_MUL
#define COMPRESS_SHIFT MLKEM_COMPRESS_SHIFT

/* SampleNTT squeezes SHAKE-128 in one go: OpenSSL 3.0 cannot squeeze a
 * finalised XOF again.  Three blocks (504 bytes, 336 candidates for 256
 * coefficients) suffice with probability about 99%; otherwise the XOF is
 * recomputed with eight blocks, whose first 504 bytes are the same, and
 * sampling continues where it stopped.  Eight blocks are 448 iterations of
 * the loop of Algorithm 7, more than the 280 FIPS 203 asks an iteration
 * limit to allow; running out beyond that is an error (never observed:
 * probability far below 2^-200). */
#define XOF_BLOCK 168
#define XOF_FIRST (3 * XOF_BLOCK)
#define XOF_MAX (8 * XOF_BLOCK)

struct params {
	enum aclm_mlkem_param id;
	const char *name;
	unsigned k;
	unsigned du, dv;            /* eta1 = eta2 = 2 in both sets */
	size_t ek_len, dk_len, ct_len;
};

static const struct params param_sets[] = {
	{ ACLM_MLKEM_768, "ML-KEM-768", 3, 10, 4,
	  ACLM_MLKEM768_EK_LEN, ACLM_MLKEM768_DK_LEN, ACLM_MLKEM768_CT_LEN },
	{ ACLM_MLKEM_1024, "ML-KEM-1024", 4, 11, 5,
	  ACLM_MLKEM1024_EK_LEN, ACLM_MLKEM1024_DK_LEN, ACLM_MLKEM1024_CT_LEN },
};

/* zeta^BitRev7(i) * R mod q, zeta = 17 (the table of Appendix A, in
 * Montgomery form). */
const uint16_t mlkem_zetas[128] = {
	2285, 2571, 2970, 1812, 1493, 1422,  287,  202,
	3158,  622, 1577,  182,  962, 2127, 1855, 1468,
	 573, 2004,  264,  383, 2500, 1458, 1727, 3199,
	2648, 1017,  732,  608, 1787,  411, 3124, 1758,
	1223,  652, 2777, 1015, 2036, 1491, 3047, 1785,
	 516, 3321, 3009, 2663, 1711, 2167,  126, 1469,
	2476, 3239, 3058,  830,  107, 1908, 3082, 2378,
	2931,  961, 1821, 2604,  448, 2264,  677, 2054,
	2226,  430,  555,  843, 2078,  871, 1550,  105,
	 422,  587,  177, 3094, 3038, 2869, 1574, 1653,
	3083,  778, 1159, 3182, 2552, 1483, 2727, 1119,
	1739,  644, 2457,  349,  418,  329, 3173, 3254,
	 817, 1097,  603,  610, 1322, 2044, 1864,  384,
	2114, 3193, 1218, 1994, 2455,  220, 2142, 1670,
	2144, 1799, 2051,  794, 1819, 2475, 2459,  478,
	3221, 3021,  996,  991,  958, 1869, 1522, 1628,
};

/* zeta^(2 BitRev7(i) + 1) * R mod q: the gamma of Algorithm 11. */
const uint16_t mlkem_gammas[128] = {
	2226, 1103,  430, 2899,  555, 2774,  843, 2486,
	2078, 1251,  871, 2458, 1550, 1779,  105, 3224,
	 422, 2907,  587, 2742,  177, 3152, 3094,  235,
	3038,  291, 2869,  460, 1574, 1755, 1653, 1676,
	3083,  246,  778, 2551, 1159, 2170, 3182,  147,
	2552,  777, 1483, 1846, 2727,  602, 1119, 2210,
	1739, 1590,  644, 2685, 2457,  872,  349, 2980,
	 418, 2911,  329, 3000, 3173,  156, 3254,   75,
	 817, 2512, 1097, 2232,  603, 2726,  610, 2719,
	1322, 2007, 2044, 1285, 1864, 1465,  384, 2945,
	2114, 1215, 3193,  136, 1218, 2111, 1994, 1335,
	2455,  874,  220, 3109, 2142, 1187, 1670, 1659,
	2144, 1185, 1799, 1530, 2051, 1278,  794, 2535,
	1819, 1510, 2475,  854, 2459,  870,  478, 2851,
	3221,  108, 3021,  308,  996, 2333,  991, 2338,
	 958, 2371, 1869, 1460, 1522, 1807, 1628, 1701,
};

/* The polynomial arithmetic in use, chosen once by select_ops(). */
static const struct mlkem_ops *ops;

static const struct params *lookup(enum aclm_mlkem_param p)
{
	size_t i;

	for (i = 0; i < sizeof(param_sets) / sizeof(param_sets[0]); i++)
		if (param_sets[i].id == p)
			return &param_sets[i];
	return NULL;
}

/* ---- SHA-3 through OpenSSL (§4.1) ------------------------------------ */

enum md_id { MD_SHA3_256, MD_SHA3_512, MD_SHAKE128, MD_SHAKE256, MD_COUNT };

static const char *const md_names[MD_COUNT] = {
	"SHA3-256", "SHA3-512", "SHAKE128", "SHAKE256",
};

/* Fetched once per process (from the library context set with
 * aclm_mlkem_set_libctx, else the default) and then shared read-only by all
 * threads.  A failed fetch is retried on the next call: inside a provider
 * the "default" provider may be loaded after us. */
static EVP_MD *mds[MD_COUNT];
static _Atomic bool have_mds;
static OSSL_LIB_CTX *mds_libctx;
static pthread_mutex_t mds_lock = PTHREAD_MUTEX_INITIALIZER;

void aclm_mlkem_set_libctx(OSSL_LIB_CTX *libctx)
{
	pthread_mutex_lock(&mds_lock);
	mds_libctx = libctx;
	pthread_mutex_unlock(&mds_lock);
}

static bool fetch_mds(void)
{
	int i;

	if (atomic_load(&have_mds))
		return true;
	pthread_mutex_lock(&mds_lock);
	for (i = 0; i < MD_COUNT && !have_mds; i++) {
		if (mds[i] == NULL)
			mds[i] = EVP_MD_fetch(mds_libctx, md_names[i], NULL);
		if (mds[i] == NULL)
			break;
	}
	if (i == MD_COUNT)
		atomic_store(&have_mds, true);
	pthread_mutex_unlock(&mds_lock);
	ERR_clear_error();
	return atomic_load(&have_mds);
}

/* out = md(a || b); an XOF squeezes out_len bytes, a hash writes its size. */
static int hash(EVP_MD_CTX *ctx, enum md_id md, const uint8_t *a, size_t a_len,
	const uint8_t *b, size_t b_len, uint8_t *out, size_t out_len)
{
	int ok;

	ok = EVP_DigestInit_ex2(ctx, mds[md], NULL)
	    && EVP_DigestUpdate(ctx, a, a_len)
	    && (b_len == 0 || EVP_DigestUpdate(ctx, b, b_len));
	if (ok && (md == MD_SHAKE128 || md == MD_SHAKE256))
		ok = EVP_DigestFinalXOF(ctx, out, out_len);
	else if (ok)
		ok = EVP_DigestFinal_ex(ctx, out, NULL);
	if (!ok)
		return aclm_error_openssl(ACLM_ERR_CRYPTO, "ML-KEM: %s failed", md_names[md]);
	return ACLM_OK;
}

/* PRF_eta(s, b) = SHAKE256(s || b, 64 eta), eta = 2. */
static int prf(EVP_MD_CTX *ctx, const uint8_t s[SYM], uint8_t b, uint8_t out[PRF_BYTES])
{
	return hash(ctx, MD_SHAKE256, s, SYM, &b, 1, out, PRF_BYTES);
}

/* ---- constant-time helpers ------------------------------------------- */

/* Hides a value from the optimiser so that mask arithmetic on it is not
 * turned back into a branch. */
static uint32_t value_barrier(uint32_t x)
{
#if defined(__GNUC__) || defined(__clang__)
	__asm__("" : "+r"(x));
#else
	volatile uint32_t v = x;

	x = v;
#endif
	return x;
}

/* 0xff when a and b are equal, 0 otherwise, without a branch on the data. */
static uint8_t eq_mask(const uint8_t *a, const uint8_t *b, size_t len)
{
	uint32_t acc = 0;
	size_t i;

	for (i = 0; i < len; i++)
		acc |= (uint32_t)(a[i] ^ b[i]);
	acc = value_barrier(acc);
	return (uint8_t)((acc - 1) >> 8);
}

/* ---- the field Z_q and the NTT (§4.3) -------------------------------- */

/* x < 2q -> x mod q: subtract q, add it back if that wrapped. */
static uint16_t reduce_once(uint32_t x)
{
	uint32_t r = x - Q;

	r += Q & (0u - (r >> 31));
	return (uint16_t)r;
}

/* a < q * 2^16 -> a * R^-1 mod q, in [0, q). */
static uint16_t mont_reduce(uint32_t a)
{
	uint32_t m = (a * QINV_NEG) & 0xffff;   /* a + m q = 0 mod 2^16 */

	return reduce_once((a + m * Q) >> 16);  /* < 2q, sum < 2^32 */
}

static uint16_t mont_mul(uint16_t a, uint16_t b)
{
	return mont_reduce((uint32_t)a * b);
}

static uint16_t fadd(uint16_t a, uint16_t b)
{
	return reduce_once((uint32_t)a + b);
}

static uint16_t fsub(uint16_t a, uint16_t b)
{
	return reduce_once((uint32_t)a + Q - b);
}

/* Algorithm 9. */
static void ntt(struct mlkem_poly *f)
{
	unsigned len, start, j, i = 1;
	uint16_t zeta, t;

	for (len = 128; len >= 2; len >>= 1) {
		for (start = 0; start < N; start += 2 * len) {
			zeta = mlkem_zetas[i++];
			for (j = start; j < start + len; j++) {
				t = mont_mul(zeta, f->c[j + len]);
				f->c[j + len] = fsub(f->c[j], t);
				f->c[j] = fadd(f->c[j], t);
			}
		}
	}
}

/* Algorithm 10 applied to the output of dot(): the final multiplication by
 * 128^-1 also removes dot()'s factor R^-1, so the result is plain. */
static void inv_ntt(struct mlkem_poly *f)
{
	unsigned len, start, j, i = 127;
	uint16_t zeta, t;

	for (len = 2; len <= 128; len <<= 1) {
		for (start = 0; start < N; start += 2 * len) {
			zeta = mlkem_zetas[i--];
			for (j = start; j < start + len; j++) {
				t = f->c[j];
				f->c[j] = fadd(t, f->c[j + len]);
				f->c[j + len] = mont_mul(zeta, fsub(f->c[j + len], t));
			}
		}
	}
	for (j = 0; j < N; j++)
		f->c[j] = mont_mul(f->c[j], INV_NTT_F);
}

/* r = R^-1 * sum_j a[j] x b[j] in T_q: MultiplyNTTs (Algorithms 11, 12)
 * summed over a vector.  Each term is < 2 q^2, k of them stay below
 * q 2^16, so one Montgomery reduction per coefficient suffices. */
static void dot(struct mlkem_poly *r, const struct mlkem_poly *a, const struct mlkem_poly *b, unsigned k)
{
	unsigned i, j;
	uint32_t c0, c1, a0, a1, b0, b1;

	for (i = 0; i < N / 2; i++) {
		c0 = 0;
		c1 = 0;
		for (j = 0; j < k; j++) {
			a0 = a[j].c[2 * i];
			a1 = a[j].c[2 * i + 1];
			b0 = b[j].c[2 * i];
			b1 = b[j].c[2 * i + 1];
			c0 += a0 * b0 + a1 * mont_mul((uint16_t)b1, mlkem_gammas[i]);
			c1 += a0 * b1 + a1 * b0;
		}
		r->c[2 * i] = mont_reduce(c0);
		r->c[2 * i + 1] = mont_reduce(c1);
	}
}

/* ---- encodings (§4.2.1) ---------------------------------------------- */

/* ByteEncode_d (Algorithm 5), d <= 12: 256 values of d bits, little-endian
 * bit order, into 32 d bytes, written 32 bits at a time (32 d bytes are a
 * whole number of words).  Loops depend on d only. */
static void encode_bits(uint8_t *out, const uint16_t *a, unsigned d)
{
	uint64_t acc = 0;
	unsigned bits = 0, i;

	for (i = 0; i < N; i++) {
		acc |= (uint64_t)a[i] << bits;
		bits += d;
		if (bits >= 32) {
			out[0] = (uint8_t)acc;
			out[1] = (uint8_t)(acc >> 8);
			out[2] = (uint8_t)(acc >> 16);
			out[3] = (uint8_t)(acc >> 24);
			out += 4;
			acc >>= 32;
			bits -= 32;
		}
	}
}

/* ByteDecode_d (Algorithm 6) without the reduction mod q; reads exactly
 * 32 d bytes, 32 bits at a time. */
static void decode_bits(uint16_t *a, const uint8_t *in, unsigned d)
{
	uint64_t acc = 0;
	unsigned bits = 0, i;

	for (i = 0; i < N; i++) {
		if (bits < d) {
			acc |= ((uint64_t)in[0] | (uint64_t)in[1] << 8 | (uint64_t)in[2] << 16
			    | (uint64_t)in[3] << 24) << bits;
			in += 4;
			bits += 32;
		}
		a[i] = (uint16_t)(acc & ((1u << d) - 1));
		acc >>= d;
		bits -= d;
	}
}

/* ByteDecode_12: values < 2^12 < 2q, reduced mod q. */
static void decode12(struct mlkem_poly *f, const uint8_t in[POLY_BYTES])
{
	unsigned i;

	decode_bits(f->c, in, 12);
	for (i = 0; i < N; i++)
		f->c[i] = reduce_once(f->c[i]);
}

static void encode12(uint8_t out[POLY_BYTES], const struct mlkem_poly *f)
{
	encode_bits(out, f->c, 12);
}

/* Compress_d (4.7) for x < q, d <= 11: round(2^d x / q) mod 2^d, where
 * round(2^d x / q) = floor((2^(d+1) x + q) / 2q) = floor((2^d x + 1664) / q):
 * 2^(d+1) x + q is odd, so lowering it by one never crosses a multiple of
 * 2q (adding 1665 instead would, when 2^d x = -1665 mod q). */
static uint16_t compress(uint16_t x, unsigned d)
{
	uint64_t t = ((uint64_t)x << d) + (Q - 1) / 2;

	return (uint16_t)((t * COMPRESS_MUL) >> COMPRESS_SHIFT) & ((1u << d) - 1);
}

/* Decompress_d (4.8): round(q y / 2^d). */
static uint16_t decompress(uint16_t y, unsigned d)
{
	return (uint16_t)(((uint32_t)y * Q + (1u << (d - 1))) >> d);
}

static void compress_poly(struct mlkem_poly *r, const struct mlkem_poly *f, unsigned d)
{
	unsigned i;

	for (i = 0; i < N; i++)
		r->c[i] = compress(f->c[i], d);
}

/* Decompress_d(ByteDecode_d(in)). */
static void decode_decompress(struct mlkem_poly *f, const uint8_t *in, unsigned d)
{
	unsigned i;

	decode_bits(f->c, in, d);
	for (i = 0; i < N; i++)
		f->c[i] = decompress(f->c[i], d);
}

/* ---- sampling (§4.2.2) ----------------------------------------------- */

/* SampleNTT (Algorithm 7) from XOF(rho || b0 || b1).  rho is public, so the
 * rejection loop may branch on the XOF output. */
static int sample_ntt(EVP_MD_CTX *ctx, struct mlkem_poly *a, const uint8_t rho[SYM],
	uint8_t b0, uint8_t b1)
{
	uint8_t seed[SYM + 2], buf[XOF_MAX];
	size_t len = XOF_FIRST, pos = 0;
	unsigned n = 0;
	int rc;

	memcpy(seed, rho, SYM);
	seed[SYM] = b0;
	seed[SYM + 1] = b1;
	rc = hash(ctx, MD_SHAKE128, seed, sizeof(seed), NULL, 0, buf, len);
	for (;;) {
		if (rc != ACLM_OK)
			return rc;
		n = ops->rej(a->c, n, buf, len, &pos);
		if (n == N)
			return ACLM_OK;
		if (len == XOF_MAX)
			return aclm_error(ACLM_ERR_CRYPTO,
			    "ML-KEM: SampleNTT needs more than %d bytes of SHAKE-128", XOF_MAX);
		len = XOF_MAX;   /* same prefix: continue at pos */
		rc = hash(ctx, MD_SHAKE128, seed, sizeof(seed), NULL, 0, buf, len);
	}
}

/* The inner loop of Algorithm 7 (struct mlkem_ops.rej).  While two slots
 * are free both candidates are stored and the count advances by the
 * comparison, without a branch: the branches of the plain loop would be
 * mispredicted for about one candidate in five. */
static unsigned rej(uint16_t *out, unsigned n, const uint8_t *buf, size_t len, size_t *pos)
{
	size_t p = *pos;
	uint16_t d1, d2;

	for (; n + 2 <= N && p + 3 <= len; p += 3) {
		d1 = (uint16_t)(buf[p] | (buf[p + 1] & 0x0f) << 8);
		d2 = (uint16_t)(buf[p + 1] >> 4 | buf[p + 2] << 4);
		out[n] = d1;
		n += d1 < Q;
		out[n] = d2;
		n += d2 < Q;
	}
	for (; n < N && p + 3 <= len; p += 3) {
		d1 = (uint16_t)(buf[p] | (buf[p + 1] & 0x0f) << 8);
		d2 = (uint16_t)(buf[p + 1] >> 4 | buf[p + 2] << 4);
		if (d1 < Q)
			out[n++] = d1;
		if (d2 < Q && n < N)
			out[n++] = d2;
	}
	*pos = p;
	return n;
}

/* The matrix A of K-PKE, A[i][j] = SampleNTT(rho || j || i), or its
 * transpose. */
static int sample_matrix(EVP_MD_CTX *ctx, struct mlkem_poly a[MAX_K][MAX_K],
	const uint8_t rho[SYM], unsigned k, bool is_transposed)
{
	unsigned i, j;
	int rc;

	for (i = 0; i < k; i++) {
		for (j = 0; j < k; j++) {
			if (is_transposed)
				rc = sample_ntt(ctx, &a[i][j], rho, (uint8_t)i, (uint8_t)j);
			else
				rc = sample_ntt(ctx, &a[i][j], rho, (uint8_t)j, (uint8_t)i);
			if (rc != ACLM_OK)
				return rc;
		}
	}
	return ACLM_OK;
}

/* SamplePolyCBD_2 (Algorithm 8, eta = 2): coefficient i is
 * (b[4i] + b[4i+1]) - (b[4i+2] + b[4i+3]) over the bits b of the input,
 * computed for eight coefficients at a time with a 32-bit word. */
static void cbd2(struct mlkem_poly *f, const uint8_t in[PRF_BYTES])
{
	uint32_t w, s, x, y;
	unsigned i, j;

	for (i = 0; i < N / 8; i++) {
		w = (uint32_t)in[4 * i] | (uint32_t)in[4 * i + 1] << 8
		    | (uint32_t)in[4 * i + 2] << 16 | (uint32_t)in[4 * i + 3] << 24;
		s = (w & 0x55555555u) + ((w >> 1) & 0x55555555u);
		for (j = 0; j < 8; j++) {
			x = (s >> (4 * j)) & 3;
			y = (s >> (4 * j + 2)) & 3;
			f->c[8 * i + j] = reduce_once(x + Q - y);
		}
	}
}

/* k polynomials SamplePolyCBD_2(PRF(s, nonce++)), in the NTT domain when
 * is_ntt. */
static int sample_cbd_vec(EVP_MD_CTX *ctx, struct mlkem_poly *v, unsigned k,
	const uint8_t s[SYM], uint8_t *nonce, bool is_ntt)
{
	uint8_t buf[PRF_BYTES];
	unsigned i;
	int rc = ACLM_OK;

	for (i = 0; i < k; i++) {
		rc = prf(ctx, s, (*nonce)++, buf);
		if (rc != ACLM_OK)
			break;
		ops->cbd2(&v[i], buf);
		if (is_ntt)
			ops->ntt(&v[i]);
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}

/* ---- back-end selection ----------------------------------------------- */

static const struct mlkem_ops portable_ops = {
	"portable", ntt, inv_ntt, dot, cbd2, rej, decode12, encode12, compress_poly,
};

static pthread_once_t ops_once = PTHREAD_ONCE_INIT;

/* AVX2 when the CPU has it, unless ACLM_MLKEM_NO_AVX2=1 (tests run both
 * back ends; outputs are identical). */
static void pick_ops(void)
{
	const char *no_avx2 = getenv("ACLM_MLKEM_NO_AVX2");

	ops = &portable_ops;
#ifdef MLKEM_HAVE_AVX2
	if ((no_avx2 == NULL || strcmp(no_avx2, "1") != 0) && __builtin_cpu_supports("avx2")) {
		mlkem_avx2_init();
		ops = &mlkem_avx2_ops;
	}
#else
	(void)no_avx2;
#endif
}

static void select_ops(void)
{
	pthread_once(&ops_once, pick_ops);
}

const char *aclm_mlkem_backend(void)
{
	select_ops();
	return ops->name;
}

/* ---- K-PKE (§5) ------------------------------------------------------ */

/* Algorithm 13: ek (384k + 32 bytes) and dk_pke (384k bytes) from d. */
static int pke_keygen(EVP_MD_CTX *ctx, const struct params *ps, const uint8_t d[SYM],
	uint8_t *ek, uint8_t *dk_pke)
{
	struct mlkem_poly a[MAX_K][MAX_K], s[MAX_K], e[MAX_K], t;
	uint8_t dk_in[SYM + 1], g[2 * SYM];
	const uint8_t *rho = g, *sigma = g + SYM;
	uint8_t nonce = 0;
	unsigned i, j, k = ps->k;
	int rc;

	memcpy(dk_in, d, SYM);
	dk_in[SYM] = (uint8_t)k;
	rc = hash(ctx, MD_SHA3_512, dk_in, sizeof(dk_in), NULL, 0, g, sizeof(g));
	if (rc != ACLM_OK)
		goto out;
	declassify(rho, SYM);
	rc = sample_matrix(ctx, a, rho, k, false);
	if (rc == ACLM_OK)
		rc = sample_cbd_vec(ctx, s, k, sigma, &nonce, true);
	if (rc == ACLM_OK)
		rc = sample_cbd_vec(ctx, e, k, sigma, &nonce, true);
	if (rc != ACLM_OK)
		goto out;
	for (i = 0; i < k; i++) {
		ops->dot(&t, a[i], s, k);
		for (j = 0; j < N; j++)
			t.c[j] = fadd(mont_mul(t.c[j], MONT_R2), e[i].c[j]);
		ops->encode12(ek + POLY_BYTES * i, &t);
		ops->encode12(dk_pke + POLY_BYTES * i, &s[i]);
	}
	memcpy(ek + POLY_BYTES * k, rho, SYM);
out:
	OPENSSL_cleanse(dk_in, sizeof(dk_in));
	OPENSSL_cleanse(g, sizeof(g));
	OPENSSL_cleanse(s, sizeof(s));
	OPENSSL_cleanse(e, sizeof(e));
	OPENSSL_cleanse(&t, sizeof(t));
	return rc;
}

/* Algorithm 14: ct from ek (not checked here), m and the randomness r. */
static int pke_encrypt(EVP_MD_CTX *ctx, const struct params *ps, const uint8_t *ek,
	const uint8_t m[SYM], const uint8_t r[SYM], uint8_t *ct)
{
	struct mlkem_poly at[MAX_K][MAX_K], t[MAX_K], y[MAX_K], e[MAX_K], u;
	uint8_t nonce = 0;
	unsigned i, j, k = ps->k;
	uint16_t bit;
	int rc;

	for (i = 0; i < k; i++)
		ops->decode12(&t[i], ek + POLY_BYTES * i);
	rc = sample_matrix(ctx, at, ek + POLY_BYTES * k, k, true);
	if (rc == ACLM_OK)
		rc = sample_cbd_vec(ctx, y, k, r, &nonce, true);
	if (rc == ACLM_OK)
		rc = sample_cbd_vec(ctx, e, k, r, &nonce, false);   /* e1 */
	if (rc != ACLM_OK)
		goto out;
	for (i = 0; i < k; i++) {   /* u = NTT^-1(A^T y) + e1 */
		ops->dot(&u, at[i], y, k);
		ops->inv_ntt(&u);
		for (j = 0; j < N; j++)
			u.c[j] = fadd(u.c[j], e[i].c[j]);
		ops->compress(&u, &u, ps->du);
		encode_bits(ct + 32 * ps->du * i, u.c, ps->du);
	}
	rc = sample_cbd_vec(ctx, e, 1, r, &nonce, false);         /* e2 */
	if (rc != ACLM_OK)
		goto out;
	ops->dot(&u, t, y, k);      /* v = NTT^-1(t y) + e2 + mu */
	ops->inv_ntt(&u);
	for (j = 0; j < N; j++) {
		bit = (uint16_t)((m[j / 8] >> (j % 8)) & 1);
		u.c[j] = fadd(u.c[j], e[0].c[j]);
		u.c[j] = fadd(u.c[j], (uint16_t)((0u - bit) & ((Q + 1) / 2)));
	}
	ops->compress(&u, &u, ps->dv);
	encode_bits(ct + 32 * ps->du * k, u.c, ps->dv);
out:
	OPENSSL_cleanse(y, sizeof(y));
	OPENSSL_cleanse(e, sizeof(e));
	OPENSSL_cleanse(&u, sizeof(u));
	return rc;
}

/* Algorithm 15: m from dk_pke and ct. */
static void pke_decrypt(const struct params *ps, const uint8_t *dk_pke,
	const uint8_t *ct, uint8_t m[SYM])
{
	struct mlkem_poly s[MAX_K], u[MAX_K], w, v;
	unsigned i, k = ps->k;

	for (i = 0; i < k; i++) {
		decode_decompress(&u[i], ct + 32 * ps->du * i, ps->du);
		ops->ntt(&u[i]);
		ops->decode12(&s[i], dk_pke + POLY_BYTES * i);
	}
	ops->dot(&w, s, u, k);
	ops->inv_ntt(&w);
	decode_decompress(&v, ct + 32 * ps->du * k, ps->dv);
	for (i = 0; i < N; i++)
		w.c[i] = fsub(v.c[i], w.c[i]);
	ops->compress(&w, &w, 1);
	encode_bits(m, w.c, 1);
	OPENSSL_cleanse(s, sizeof(s));
	OPENSSL_cleanse(&w, sizeof(w));
}

/* ---- ML-KEM (§6) ----------------------------------------------------- */

/* Algorithm 16: dk = dk_pke || ek || H(ek) || z. */
static int keygen_internal(EVP_MD_CTX *ctx, const struct params *ps,
	const uint8_t d[SYM], const uint8_t z[SYM], uint8_t *ek, uint8_t *dk)
{
	size_t off = POLY_BYTES * ps->k;
	int rc;

	rc = pke_keygen(ctx, ps, d, ek, dk);
	if (rc != ACLM_OK)
		return rc;
	memcpy(dk + off, ek, ps->ek_len);
	off += ps->ek_len;
	rc = hash(ctx, MD_SHA3_256, ek, ps->ek_len, NULL, 0, dk + off, SYM);
	memcpy(dk + off + SYM, z, SYM);
	return rc;
}

/* Algorithm 17: (K, r) = G(m || H(ek)), ct = K-PKE.Encrypt(ek, m, r). */
static int encaps_internal(EVP_MD_CTX *ctx, const struct params *ps,
	const uint8_t *ek, const uint8_t m[SYM], uint8_t *ct, uint8_t ss[SYM])
{
	uint8_t h[SYM], g[2 * SYM];
	int rc;

	rc = hash(ctx, MD_SHA3_256, ek, ps->ek_len, NULL, 0, h, sizeof(h));
	if (rc == ACLM_OK)
		rc = hash(ctx, MD_SHA3_512, m, SYM, h, sizeof(h), g, sizeof(g));
	if (rc == ACLM_OK)
		rc = pke_encrypt(ctx, ps, ek, m, g + SYM, ct);
	if (rc == ACLM_OK)
		memcpy(ss, g, SYM);
	OPENSSL_cleanse(g, sizeof(g));
	return rc;
}

/* Algorithm 18.  The re-encryption is compared with ct and K' or J(z || c)
 * selected with masks: which one was taken must not show. */
static int decaps_internal(EVP_MD_CTX *ctx, const struct params *ps,
	const uint8_t *dk, const uint8_t *ct, uint8_t ss[SYM])
{
	const uint8_t *ek = dk + POLY_BYTES * ps->k;
	const uint8_t *h = ek + ps->ek_len;
	const uint8_t *z = h + SYM;
	uint8_t m[SYM], g[2 * SYM], reject[SYM], ct2[ACLM_MLKEM_MAX_CT_LEN];
	uint8_t mask;
	size_t i;
	int rc;

	pke_decrypt(ps, dk, ct, m);
	rc = hash(ctx, MD_SHA3_512, m, SYM, h, SYM, g, sizeof(g));
	if (rc == ACLM_OK)
		rc = hash(ctx, MD_SHAKE256, z, SYM, ct, ps->ct_len, reject, sizeof(reject));
	if (rc == ACLM_OK)
		rc = pke_encrypt(ctx, ps, ek, m, g + SYM, ct2);
	if (rc == ACLM_OK) {
		mask = eq_mask(ct, ct2, ps->ct_len);
		for (i = 0; i < SYM; i++)
			ss[i] = (uint8_t)((g[i] & mask) | (reject[i] & ~mask));
	}
	OPENSSL_cleanse(m, sizeof(m));
	OPENSSL_cleanse(g, sizeof(g));
	OPENSSL_cleanse(reject, sizeof(reject));
	OPENSSL_cleanse(ct2, sizeof(ct2));
	return rc;
}

/* ---- input checks (§7.2, §7.3) --------------------------------------- */

static int check_ek(const struct params *ps, const uint8_t *ek, size_t ek_len)
{
	uint8_t enc[POLY_BYTES];
	struct mlkem_poly t;
	unsigned i;

	if (ek_len != ps->ek_len)
		return aclm_error(ACLM_ERR_PARSE,
		    "%s encapsulation key: %zu bytes, expected %zu", ps->name, ek_len, ps->ek_len);
	for (i = 0; i < ps->k; i++) {
		ops->decode12(&t, ek + POLY_BYTES * i);
		ops->encode12(enc, &t);
		if (memcmp(enc, ek + POLY_BYTES * i, POLY_BYTES) != 0)
			return aclm_error(ACLM_ERR_PARSE,
			    "%s encapsulation key: polynomial %u has a coefficient >= q "
			    "(modulus check of FIPS 203 7.2)", ps->name, i);
	}
	return ACLM_OK;
}

static int check_dk(EVP_MD_CTX *ctx, const struct params *ps, const uint8_t *dk,
	size_t dk_len)
{
	const uint8_t *ek = dk + POLY_BYTES * ps->k;
	uint8_t h[SYM];
	int rc;

	if (dk_len != ps->dk_len)
		return aclm_error(ACLM_ERR_PARSE,
		    "%s decapsulation key: %zu bytes, expected %zu", ps->name, dk_len, ps->dk_len);
	rc = hash(ctx, MD_SHA3_256, ek, ps->ek_len, NULL, 0, h, sizeof(h));
	if (rc != ACLM_OK)
		return rc;
	if (CRYPTO_memcmp(h, ek + ps->ek_len, SYM) != 0)
		return aclm_error(ACLM_ERR_PARSE,
		    "%s decapsulation key: H(ek) does not match the stored hash "
		    "(hash check of FIPS 203 7.3)", ps->name);
	return ACLM_OK;
}

/* ---- public API ------------------------------------------------------ */

/* Common start of every operation: the parameter set, the output sizes
 * (0 for an output the operation does not have), SHA-3 and a digest
 * context.  *ctx is NULL on failure. */
static int begin(enum aclm_mlkem_param p, const struct params **ps,
	size_t ek_len, size_t dk_len, size_t ct_len, size_t ss_len, EVP_MD_CTX **ctx)
{
	*ctx = NULL;
	select_ops();
	*ps = lookup(p);
	if (*ps == NULL)
		return aclm_error(ACLM_ERR_USAGE, "ML-KEM: unknown parameter set %d", (int)p);
	if ((ek_len != 0 && ek_len < (*ps)->ek_len) || (dk_len != 0 && dk_len < (*ps)->dk_len)
	    || (ct_len != 0 && ct_len < (*ps)->ct_len) || (ss_len != 0 && ss_len < SYM))
		return aclm_error(ACLM_ERR_USAGE, "%s: output buffer too small", (*ps)->name);
	if (!fetch_mds())
		return aclm_error_openssl(ACLM_ERR_CRYPTO,
		    "ML-KEM: cannot fetch SHA3-256/SHA3-512/SHAKE128/SHAKE256 (is the default provider loaded?)");
	*ctx = EVP_MD_CTX_new();
	if (*ctx == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "ML-KEM: out of memory");
	return ACLM_OK;
}

size_t aclm_mlkem_ek_len(enum aclm_mlkem_param p)
{
	const struct params *ps = lookup(p);

	return ps != NULL ? ps->ek_len : 0;
}

size_t aclm_mlkem_dk_len(enum aclm_mlkem_param p)
{
	const struct params *ps = lookup(p);

	return ps != NULL ? ps->dk_len : 0;
}

size_t aclm_mlkem_ct_len(enum aclm_mlkem_param p)
{
	const struct params *ps = lookup(p);

	return ps != NULL ? ps->ct_len : 0;
}

int aclm_mlkem_keygen_internal(enum aclm_mlkem_param p, const uint8_t d[ACLM_MLKEM_RAND_LEN],
	const uint8_t z[ACLM_MLKEM_RAND_LEN], uint8_t *ek, size_t ek_len,
	uint8_t *dk, size_t dk_len)
{
	const struct params *ps;
	EVP_MD_CTX *ctx;
	int rc;

	rc = begin(p, &ps, ek_len, dk_len, 0, 0, &ctx);
	if (rc == ACLM_OK)
		rc = keygen_internal(ctx, ps, d, z, ek, dk);
	if (rc != ACLM_OK && ps != NULL && dk_len >= ps->dk_len)
		OPENSSL_cleanse(dk, ps->dk_len);
	EVP_MD_CTX_free(ctx);
	return rc;
}

int aclm_mlkem_keygen_seed(enum aclm_mlkem_param p, const uint8_t *seed, size_t seed_len,
	uint8_t *ek, size_t ek_len, uint8_t *dk, size_t dk_len)
{
	if (seed_len != ACLM_MLKEM_SEED_LEN)
		return aclm_error(ACLM_ERR_PARSE, "ML-KEM seed: %zu bytes, expected %d",
		    seed_len, ACLM_MLKEM_SEED_LEN);
	return aclm_mlkem_keygen_internal(p, seed, seed + ACLM_MLKEM_RAND_LEN,
	    ek, ek_len, dk, dk_len);
}

int aclm_mlkem_keygen(enum aclm_mlkem_param p, uint8_t *ek, size_t ek_len,
	uint8_t *dk, size_t dk_len)
{
	uint8_t seed[ACLM_MLKEM_SEED_LEN];
	int rc;

	if (RAND_priv_bytes_ex(mds_libctx, seed, sizeof(seed), 0) != 1)
		return aclm_error_openssl(ACLM_ERR_CRYPTO, "ML-KEM key generation: no randomness");
	rc = aclm_mlkem_keygen_seed(p, seed, sizeof(seed), ek, ek_len, dk, dk_len);
	OPENSSL_cleanse(seed, sizeof(seed));
	return rc;
}

int aclm_mlkem_check_ek(enum aclm_mlkem_param p, const uint8_t *ek, size_t ek_len)
{
	const struct params *ps = lookup(p);

	if (ps == NULL)
		return aclm_error(ACLM_ERR_USAGE, "ML-KEM: unknown parameter set %d", (int)p);
	select_ops();
	return check_ek(ps, ek, ek_len);
}

int aclm_mlkem_check_dk(enum aclm_mlkem_param p, const uint8_t *dk, size_t dk_len)
{
	const struct params *ps;
	EVP_MD_CTX *ctx;
	int rc;

	rc = begin(p, &ps, 0, 0, 0, 0, &ctx);
	if (rc == ACLM_OK)
		rc = check_dk(ctx, ps, dk, dk_len);
	EVP_MD_CTX_free(ctx);
	return rc;
}

int aclm_mlkem_encaps_internal(enum aclm_mlkem_param p, const uint8_t *ek, size_t ek_len,
	const uint8_t m[ACLM_MLKEM_RAND_LEN], uint8_t *ct, size_t ct_len,
	uint8_t *ss, size_t ss_len)
{
	const struct params *ps;
	EVP_MD_CTX *ctx;
	int rc;

	rc = begin(p, &ps, 0, 0, ct_len, ss_len, &ctx);
	if (rc == ACLM_OK)
		rc = check_ek(ps, ek, ek_len);
	if (rc == ACLM_OK)
		rc = encaps_internal(ctx, ps, ek, m, ct, ss);
	if (rc != ACLM_OK && ss_len >= SYM)
		OPENSSL_cleanse(ss, SYM);
	EVP_MD_CTX_free(ctx);
	return rc;
}

int aclm_mlkem_encaps(enum aclm_mlkem_param p, const uint8_t *ek, size_t ek_len,
	uint8_t *ct, size_t ct_len, uint8_t *ss, size_t ss_len)
{
	uint8_t m[ACLM_MLKEM_RAND_LEN];
	int rc;

	if (RAND_priv_bytes_ex(mds_libctx, m, sizeof(m), 0) != 1)
		rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "ML-KEM encapsulation: no randomness");
	else
		rc = aclm_mlkem_encaps_internal(p, ek, ek_len, m, ct, ct_len, ss, ss_len);
	OPENSSL_cleanse(m, sizeof(m));
	return rc;
}

int aclm_mlkem_decaps(enum aclm_mlkem_param p, const uint8_t *dk, size_t dk_len,
	const uint8_t *ct, size_t ct_len, uint8_t *ss, size_t ss_len)
{
	const struct params *ps;
	EVP_MD_CTX *ctx;
	int rc;

	rc = begin(p, &ps, 0, 0, 0, ss_len, &ctx);
	if (rc == ACLM_OK && ct_len != ps->ct_len)
		rc = aclm_error(ACLM_ERR_PARSE, "%s ciphertext: %zu bytes, expected %zu",
		    ps->name, ct_len, ps->ct_len);
	if (rc == ACLM_OK)
		rc = check_dk(ctx, ps, dk, dk_len);
	if (rc == ACLM_OK)
		rc = decaps_internal(ctx, ps, dk, ct, ss);
	if (rc != ACLM_OK && ss_len >= SYM)
		OPENSSL_cleanse(ss, SYM);
	EVP_MD_CTX_free(ctx);
	return rc;
}
