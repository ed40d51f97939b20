/* ML-KEM polynomial arithmetic with AVX2 (built with -mavx2; used only
 * when CPUID reports AVX2, see select_ops() in mlkem.c).
 *
 * Same contracts as the portable functions (mlkem-int.h): coefficients in
 * and out are in [0, q), so every function here is interchangeable with
 * its portable twin and the encodings are bit-identical.  Inside a call
 * coefficients are signed 16-bit lanes with lazy reduction; the bounds are
 * given where they matter.
 *
 * Arithmetic on 16 lanes of int16:
 *   fqmul(a, z)  a z R^-1 mod q (signed Montgomery, R = 2^16): the high
 *                half of a z minus the high half of m q, m = a z q^-1 mod R;
 *                |result| < |a z| / 2^16 + q/2, < q for any int16 a and
 *                0 <= z < q (checked exhaustively).
 *   barrett(a)   a - round(a / q) q with round(a / q) from a multiply by
 *                round(2^26 / q); |result| <= (q-1)/2 for every int16 a
 *                (checked exhaustively).
 *   canon(a)     a + q if a < 0: (-q, q) -> [0, q).
 * No branch and no table index depends on a coefficient; the only
 * data-dependent index is in rej(), on XOF(rho), which is public.
 *
 * NTT layout: the layers with distance 128..16 pair whole vectors.  For
 * the distances 8, 4, 2 two neighbouring vectors are regrouped with
 * swap8/swap4/swap2 (each its own inverse) so that the two halves of every
 * butterfly are in the same lane of two registers; the zetas for those
 * layers are laid out to match (build_tables()).  The regrouping is undone
 * before the store, so the NTT domain is in the standard order of
 * FIPS 203. */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "mlkem-int.h"

#define N MLKEM_N
#define Q MLKEM_Q
#define QINV (-3327)          /* q^-1 mod 2^16, as int16 */
#define BARRETT_V 20159       /* round(2^26 / q) */

/* Zetas (and zeta q^-1 mod 2^16) per 16-lane vector for the layers that
 * work inside a vector pair, m = 0..7 the pair. */
struct zvec {
	_Alignas(32) int16_t z[16];
	_Alignas(32) int16_t zq[16];
};

static struct zvec fwd8[8], fwd4[8], fwd2[8];
static struct zvec inv8[8], inv4[8], inv2[8];
static struct zvec gam[16];                /* gamma of pair 8v + l/2 in lane l */
static int16_t fwd_z[16], fwd_zq[16];      /* layers 128..16, zetas[1..15] */
static int16_t inv_z[16], inv_zq[16];      /* layers 16..64: zetas[1..15] too */
static int16_t last_z, last_zq;            /* zetas[1] * F R^-1, layer 128 of NTT^-1 */
static int16_t f_z, f_zq;                  /* F = 128^-1 R^2 */
_Alignas(16) static uint8_t rej_shuf[256][16];
static uint8_t rej_count[256];

static int16_t zq_of(int16_t z)
{
	return (int16_t)(uint16_t)((uint32_t)(uint16_t)z * (uint16_t)QINV);
}

static void set_zvec(struct zvec *v, unsigned lane, uint16_t z)
{
	v->z[lane] = (int16_t)z;
	v->zq[lane] = zq_of((int16_t)z);
}

/* a b R^-1 mod q in [0, q), for the constants. */
static uint16_t mont_mul_scalar(uint16_t a, uint16_t b)
{
	uint32_t x = (uint32_t)a * b;
	uint32_t m = (x * MLKEM_QINV_NEG) & 0xffff;
	uint32_t r = (x + m * Q) >> 16;

	return (uint16_t)(r >= Q ? r - Q : r);
}

void mlkem_avx2_init(void)
{
	const uint16_t *zetas = mlkem_zetas;
	unsigned m, l, i, b, n;

	for (i = 1; i < 16; i++) {
		fwd_z[i] = inv_z[i] = (int16_t)zetas[i];
		fwd_zq[i] = inv_zq[i] = zq_of((int16_t)zetas[i]);
	}
	for (m = 0; m < 8; m++) {
		for (l = 0; l < 16; l++) {
			set_zvec(&fwd8[m], l, zetas[16 + 2 * m + l / 8]);
			set_zvec(&fwd4[m], l, zetas[32 + 4 * m + l / 4]);
			set_zvec(&fwd2[m], l, zetas[64 + 8 * m + l / 2]);
			set_zvec(&inv8[m], l, zetas[31 - 2 * m - l / 8]);
			set_zvec(&inv4[m], l, zetas[63 - 4 * m - l / 4]);
			set_zvec(&inv2[m], l, zetas[127 - 8 * m - l / 2]);
		}
	}
	for (i = 0; i < 16; i++)
		for (l = 0; l < 16; l++)
			set_zvec(&gam[i], l, mlkem_gammas[8 * i + l / 2]);
	last_z = (int16_t)mont_mul_scalar(zetas[1], MLKEM_INV_NTT_F);
	last_zq = zq_of(last_z);
	f_z = MLKEM_INV_NTT_F;
	f_zq = zq_of(f_z);
	/* rej(): compact the 16-bit lanes whose bit is set in the mask. */
	for (i = 0; i < 256; i++) {
		n = 0;
		for (b = 0; b < 8; b++) {
			if (i & (1u << b)) {
				rej_shuf[i][2 * n] = (uint8_t)(2 * b);
				rej_shuf[i][2 * n + 1] = (uint8_t)(2 * b + 1);
				n++;
			}
		}
		for (b = 2 * n; b < 16; b++)
			rej_shuf[i][b] = 0x80;
		rej_count[i] = (uint8_t)n;
	}
}

/* ---- lane arithmetic --------------------------------------------------- */

static inline __m256i vq(void)
{
	return _mm256_set1_epi16(Q);
}

static inline __m256i fqmul(__m256i a, __m256i z, __m256i zq)
{
	__m256i hi = _mm256_mulhi_epi16(a, z);
	__m256i m = _mm256_mullo_epi16(a, zq);

	return _mm256_sub_epi16(hi, _mm256_mulhi_epi16(m, vq()));
}

static inline __m256i barrett(__m256i a)
{
	__m256i t = _mm256_mulhi_epi16(a, _mm256_set1_epi16(BARRETT_V));

	t = _mm256_srai_epi16(_mm256_add_epi16(t, _mm256_set1_epi16(512)), 10);
	return _mm256_sub_epi16(a, _mm256_mullo_epi16(t, vq()));
}

static inline __m256i canon(__m256i a)
{
	return _mm256_add_epi16(a, _mm256_and_si256(_mm256_srai_epi16(a, 15), vq()));
}

static inline __m256i load(const uint16_t *p)
{
	return _mm256_loadu_si256((const __m256i *)(const void *)p);
}

static inline void store(uint16_t *p, __m256i v)
{
	_mm256_storeu_si256((__m256i *)(void *)p, v);
}

static inline __m256i zload(const int16_t *p)
{
	return _mm256_load_si256((const __m256i *)(const void *)p);
}

/* Regroup two vectors so that lanes at distance 8, 4 or 2 (in the
 * original order) face each other.  Each is an involution. */
static inline void swap8(__m256i *x, __m256i *y)
{
	__m256i a = _mm256_permute2x128_si256(*x, *y, 0x20);

	*y = _mm256_permute2x128_si256(*x, *y, 0x31);
	*x = a;
}

static inline void swap4(__m256i *x, __m256i *y)
{
	__m256i a = _mm256_unpacklo_epi64(*x, *y);

	*y = _mm256_unpackhi_epi64(*x, *y);
	*x = a;
}

static inline void swap2(__m256i *x, __m256i *y)
{
	__m256i a = _mm256_blend_epi32(*x, _mm256_slli_epi64(*y, 32), 0xaa);

	*y = _mm256_blend_epi32(_mm256_srli_epi64(*x, 32), *y, 0xaa);
	*x = a;
}

/* Algorithm 9's butterfly: (a, b) -> (a + z b, a - z b). */
static inline void ct_bfly(__m256i *a, __m256i *b, __m256i z, __m256i zq)
{
	__m256i t = fqmul(*b, z, zq);

	*b = _mm256_sub_epi16(*a, t);
	*a = _mm256_add_epi16(*a, t);
}

/* Algorithm 10's butterfly: (a, b) -> (a + b, z (b - a)). */
static inline void gs_bfly(__m256i *a, __m256i *b, __m256i z, __m256i zq)
{
	__m256i t = *a;

	*a = _mm256_add_epi16(t, *b);
	*b = fqmul(_mm256_sub_epi16(*b, t), z, zq);
}

static inline void zv(const struct zvec *v, __m256i *z, __m256i *zq)
{
	*z = zload(v->z);
	*zq = zload(v->zq);
}

/* ---- NTT, NTT^-1, MultiplyNTTs -------------------------------------- */

/* Input in [0, q); every layer adds less than q to the magnitude
 * (|fqmul| < q for |a| < 8q), so after seven layers |x| < 8q < 2^15. */
static void ntt(struct mlkem_poly *f)
{
	__m256i v[16], z, zq;
	unsigned len, start, j, m, k = 1;

	for (j = 0; j < 16; j++)
		v[j] = load(f->c + 16 * j);
	for (len = 8; len >= 1; len >>= 1) {          /* distance 16 len */
		for (start = 0; start < 16; start += 2 * len) {
			z = _mm256_set1_epi16(fwd_z[k]);
			zq = _mm256_set1_epi16(fwd_zq[k]);
			k++;
			for (j = start; j < start + len; j++)
				ct_bfly(&v[j], &v[j + len], z, zq);
		}
	}
	for (m = 0; m < 8; m++) {
		__m256i x = v[2 * m], y = v[2 * m + 1];

		swap8(&x, &y);
		zv(&fwd8[m], &z, &zq);
		ct_bfly(&x, &y, z, zq);
		swap4(&x, &y);
		zv(&fwd4[m], &z, &zq);
		ct_bfly(&x, &y, z, zq);
		swap2(&x, &y);
		zv(&fwd2[m], &z, &zq);
		ct_bfly(&x, &y, z, zq);
		swap2(&x, &y);
		swap4(&x, &y);
		swap8(&x, &y);
		store(f->c + 32 * m, canon(barrett(x)));
		store(f->c + 32 * m + 16, canon(barrett(y)));
	}
}

/* Input in [0, q) (dot()'s output, times R^-1).  Bounds: the sums double
 * per layer, the differences go through fqmul and are < q; a Barrett
 * reduction after the layers of distance 8 and 64 keeps |x| < 8q. */
static void inv_ntt(struct mlkem_poly *f)
{
	__m256i v[16], z, zq, fz, fzq;
	unsigned len, start, j, m, k;

	for (m = 0; m < 8; m++) {
		__m256i x = load(f->c + 32 * m), y = load(f->c + 32 * m + 16);

		swap8(&x, &y);
		swap4(&x, &y);
		swap2(&x, &y);
		zv(&inv2[m], &z, &zq);
		gs_bfly(&x, &y, z, zq);
		swap2(&x, &y);
		zv(&inv4[m], &z, &zq);
		gs_bfly(&x, &y, z, zq);
		swap4(&x, &y);
		zv(&inv8[m], &z, &zq);
		gs_bfly(&x, &y, z, zq);
		x = barrett(x);               /* the sums, |x| < 8q */
		swap8(&x, &y);
		v[2 * m] = x;
		v[2 * m + 1] = y;
	}
	for (len = 1; len <= 4; len <<= 1) {          /* distance 16 len */
		k = 16 / len - 1;                     /* zetas[256/dist - 1 - block] */
		for (start = 0; start < 16; start += 2 * len) {
			z = _mm256_set1_epi16(inv_z[k]);
			zq = _mm256_set1_epi16(inv_zq[k]);
			k--;
			for (j = start; j < start + len; j++)
				gs_bfly(&v[j], &v[j + len], z, zq);
		}
		if (len == 4)
			for (j = 0; j < 16; j++)
				v[j] = barrett(v[j]);
	}
	/* Distance 128 with the final multiplication by F = 128^-1 R^2 folded
	 * in: a' = F (a + b), b' = (zeta F R^-1) (b - a). */
	z = _mm256_set1_epi16(last_z);
	zq = _mm256_set1_epi16(last_zq);
	fz = _mm256_set1_epi16(f_z);
	fzq = _mm256_set1_epi16(f_zq);
	for (j = 0; j < 8; j++) {
		__m256i a = v[j], b = v[j + 8];

		store(f->c + 16 * j, canon(fqmul(_mm256_add_epi16(a, b), fz, fzq)));
		store(f->c + 16 * (j + 8), canon(fqmul(_mm256_sub_epi16(b, a), z, zq)));
	}
}

/* r = R^-1 sum_j a[j] x b[j].  Per pair (a0, a1), (b0, b1) with gamma:
 * c0 = a0 b0 + a1 (b1 gamma), c1 = a0 b1 + a1 b0, as two vpmaddwd on
 * [a0 a1] x [b0 b1gamma] and [a0 a1] x [b1 b0] in 32-bit lanes.  Each term
 * is < 2 q^2 in magnitude, k <= 4 terms < 2^27; the Montgomery reduction
 * of the 32-bit sums is done on their 16-bit halves and is < q. */
static void dot(struct mlkem_poly *r, const struct mlkem_poly *a,
	const struct mlkem_poly *b, unsigned k)
{
	const __m256i swap_halves = _mm256_setr_epi8(
	    2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13,
	    2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
	__m256i g, gq, acc0, acc1, va, vb, bg, lo, hi, m;
	unsigned i, j;

	for (i = 0; i < 16; i++) {
		zv(&gam[i], &g, &gq);
		acc0 = _mm256_setzero_si256();
		acc1 = _mm256_setzero_si256();
		for (j = 0; j < k; j++) {
			va = load(a[j].c + 16 * i);
			vb = load(b[j].c + 16 * i);
			bg = fqmul(vb, g, gq);
			acc0 = _mm256_add_epi32(acc0,
			    _mm256_madd_epi16(va, _mm256_blend_epi16(vb, bg, 0xaa)));
			acc1 = _mm256_add_epi32(acc1,
			    _mm256_madd_epi16(va, _mm256_shuffle_epi8(vb, swap_halves)));
		}
		lo = _mm256_blend_epi16(acc0, _mm256_slli_epi32(acc1, 16), 0xaa);
		hi = _mm256_blend_epi16(_mm256_srli_epi32(acc0, 16), acc1, 0xaa);
		m = _mm256_mullo_epi16(lo, _mm256_set1_epi16(QINV));
		store(r->c + 16 * i, canon(_mm256_sub_epi16(hi, _mm256_mulhi_epi16(m, vq()))));
	}
}

/* ---- sampling -------------------------------------------------------- */

/* SamplePolyCBD_2: byte i gives coefficients 2i (low nibble) and 2i + 1
 * (high nibble), each (bit0 + bit1) - (bit2 + bit3) of its nibble. */
static void cbd2(struct mlkem_poly *f, const uint8_t in[MLKEM_PRF_BYTES])
{
	const __m256i m55 = _mm256_set1_epi16(0x55), m3 = _mm256_set1_epi16(3);
	__m256i w, s, lo, hi, c0, c1;
	unsigned i;

	for (i = 0; i < 8; i++) {
		w = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(in + 16 * i)));
		s = _mm256_add_epi16(_mm256_and_si256(w, m55),
		    _mm256_and_si256(_mm256_srli_epi16(w, 1), m55));
		lo = _mm256_sub_epi16(_mm256_and_si256(s, m3),
		    _mm256_and_si256(_mm256_srli_epi16(s, 2), m3));
		hi = _mm256_sub_epi16(_mm256_and_si256(_mm256_srli_epi16(s, 4), m3),
		    _mm256_and_si256(_mm256_srli_epi16(s, 6), m3));
		c0 = _mm256_unpacklo_epi16(lo, hi);
		c1 = _mm256_unpackhi_epi16(lo, hi);
		store(f->c + 32 * i, canon(_mm256_permute2x128_si256(c0, c1, 0x20)));
		store(f->c + 32 * i + 16, canon(_mm256_permute2x128_si256(c0, c1, 0x31)));
	}
}

/* 24 bytes -> 16 values of 12 bits (two per 3 bytes, little-endian).
 * Reads exactly in[0..24). */
static inline __m256i unpack12(const uint8_t *in)
{
	const __m256i shuf = _mm256_setr_epi8(
	    0, 1, 1, 2, 3, 4, 4, 5, 6, 7, 7, 8, 9, 10, 10, 11,
	    4, 5, 5, 6, 7, 8, 8, 9, 10, 11, 11, 12, 13, 14, 14, 15);
	__m256i v = _mm256_setr_m128i(_mm_loadu_si128((const __m128i *)(const void *)in),
	    _mm_loadu_si128((const __m128i *)(const void *)(in + 8)));

	v = _mm256_shuffle_epi8(v, shuf);
	return _mm256_blend_epi16(_mm256_and_si256(v, _mm256_set1_epi16(0x0fff)),
	    _mm256_srli_epi16(v, 4), 0xaa);
}

/* Algorithm 7's loop, 16 candidates at a time while 16 slots are free:
 * the accepted lanes of each 128-bit half are packed with a shuffle chosen
 * by their mask.  buf is XOF(rho), public, so the table index is too. */
static unsigned rej(uint16_t *out, unsigned n, const uint8_t *buf, size_t len, size_t *pos)
{
	size_t p = *pos;
	__m256i v, ok;
	__m128i h;
	unsigned mask, m0, m1;
	uint16_t d1, d2;

	for (; n + 16 <= N && p + 24 <= len; p += 24) {
		v = unpack12(buf + p);
		ok = _mm256_cmpgt_epi16(vq(), v);
		mask = (unsigned)_mm256_movemask_epi8(_mm256_packs_epi16(ok, ok));
		m0 = mask & 0xff;
		m1 = (mask >> 16) & 0xff;
		h = _mm_shuffle_epi8(_mm256_castsi256_si128(v),
		    _mm_load_si128((const __m128i *)(const void *)rej_shuf[m0]));
		_mm_storeu_si128((__m128i *)(void *)(out + n), h);
		n += rej_count[m0];
		h = _mm_shuffle_epi8(_mm256_extracti128_si256(v, 1),
		    _mm_load_si128((const __m128i *)(const void *)rej_shuf[m1]));
		_mm_storeu_si128((__m128i *)(void *)(out + n), h);
		n += rej_count[m1];
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

/* ---- encodings ------------------------------------------------------- */

/* ByteDecode_12, values < 2^12 < 2q reduced once. */
static void decode12(struct mlkem_poly *f, const uint8_t in[MLKEM_POLY_BYTES])
{
	unsigned i;

	for (i = 0; i < 16; i++)
		store(f->c + 16 * i, canon(_mm256_sub_epi16(unpack12(in + 24 * i), vq())));
}

/* ByteEncode_12: pairs become 24-bit words (c0 + 4096 c1 with vpmaddwd),
 * whose three low bytes are packed, 12 per 128-bit half. */
static void encode12(uint8_t out[MLKEM_POLY_BYTES], const struct mlkem_poly *f)
{
	const __m256i mul = _mm256_set1_epi32(1 | 4096 << 16);
	const __m256i pack = _mm256_setr_epi8(
	    0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1,
	    0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1);
	__m256i w;
	__m128i h;
	unsigned i, half;
	uint32_t tail;

	for (i = 0; i < 16; i++) {
		w = _mm256_shuffle_epi8(_mm256_madd_epi16(load(f->c + 16 * i), mul), pack);
		for (half = 0; half < 2; half++) {
			h = half == 0 ? _mm256_castsi256_si128(w) : _mm256_extracti128_si256(w, 1);
			_mm_storel_epi64((__m128i *)(void *)(out + 24 * i + 12 * half), h);
			tail = (uint32_t)_mm_cvtsi128_si32(_mm_srli_si128(h, 8));
			memcpy(out + 24 * i + 12 * half + 8, &tail, 4);
		}
	}
}

/* 8 values x < q in 32-bit lanes -> floor(((x << d) + (q-1)/2) C / 2^35),
 * C = ceil(2^35 / q): the formula of the portable compress(), in 64-bit
 * products (vpmuludq on the even and the odd lanes). */
static inline __m256i compress8(__m256i x, __m128i d)
{
	const __m256i c = _mm256_set1_epi32((int)MLKEM_COMPRESS_MUL);
	__m256i y, even, odd;

	y = _mm256_add_epi32(_mm256_sll_epi32(x, d), _mm256_set1_epi32((Q - 1) / 2));
	even = _mm256_srli_epi64(_mm256_mul_epu32(y, c), MLKEM_COMPRESS_SHIFT);
	odd = _mm256_srli_epi64(_mm256_mul_epu32(_mm256_srli_epi64(y, 32), c),
	    MLKEM_COMPRESS_SHIFT);
	return _mm256_or_si256(even, _mm256_slli_epi64(odd, 32));
}

static void compress(struct mlkem_poly *r, const struct mlkem_poly *f, unsigned d)
{
	const __m128i dd = _mm_cvtsi32_si128((int)d);
	const __m256i mask = _mm256_set1_epi16((short)((1u << d) - 1));
	__m256i x, lo, hi;
	unsigned i;

	for (i = 0; i < 16; i++) {
		x = load(f->c + 16 * i);
		lo = compress8(_mm256_cvtepu16_epi32(_mm256_castsi256_si128(x)), dd);
		hi = compress8(_mm256_cvtepu16_epi32(_mm256_extracti128_si256(x, 1)), dd);
		x = _mm256_permute4x64_epi64(_mm256_packus_epi32(lo, hi), 0xd8);
		store(r->c + 16 * i, _mm256_and_si256(x, mask));
	}
}

const struct mlkem_ops mlkem_avx2_ops = {
	"avx2", ntt, inv_ntt, dot, cbd2, rej, decode12, encode12, compress,
};
