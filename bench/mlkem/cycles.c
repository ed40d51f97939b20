/* ML-KEM-768/1024 KeyGen, Encaps, Decaps in CPU cycles (rdtsc), median of
 * N runs, with X25519 key generation and derivation through OpenSSL as the
 * peer measured in the same process. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <x86intrin.h>

#include <openssl/evp.h>

#include "aclm/mlkem.h"

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, int n)
{
	qsort(v, (size_t)n, sizeof(v[0]), cmp);
	return v[n / 2];
}

#define TIME(dst, expr) do { \
	uint64_t t0_ = __rdtsc(); \
	if ((expr) != 0) { fprintf(stderr, "failed: %s\n", #expr); exit(1); } \
	dst = __rdtsc() - t0_; \
} while (0)

static void bench_mlkem(enum aclm_mlkem_param p, int n, uint64_t *out3)
{
	uint8_t ek[ACLM_MLKEM_MAX_EK_LEN], dk[ACLM_MLKEM_MAX_DK_LEN], ct[ACLM_MLKEM_MAX_CT_LEN];
	uint8_t ss[32], ss2[32];
	size_t ekl = aclm_mlkem_ek_len(p), dkl = aclm_mlkem_dk_len(p), ctl = aclm_mlkem_ct_len(p);
	uint64_t *kg = calloc((size_t)n, 8), *en = calloc((size_t)n, 8), *de = calloc((size_t)n, 8);

	for (int i = 0; i < n; i++) {
		TIME(kg[i], aclm_mlkem_keygen(p, ek, ekl, dk, dkl));
		TIME(en[i], aclm_mlkem_encaps(p, ek, ekl, ct, ctl, ss, 32));
		TIME(de[i], aclm_mlkem_decaps(p, dk, dkl, ct, ctl, ss2, 32));
		if (memcmp(ss, ss2, 32) != 0) {
			fprintf(stderr, "shared secrets differ\n");
			exit(1);
		}
	}
	out3[0] = median(kg, n);
	out3[1] = median(en, n);
	out3[2] = median(de, n);
	free(kg);
	free(en);
	free(de);
}

static int x25519_keygen(EVP_PKEY **k)
{
	*k = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
	return *k == NULL;
}

static int x25519_derive(EVP_PKEY *a, EVP_PKEY *b)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(a, NULL);
	unsigned char s[32];
	size_t len = sizeof(s);
	int rc = c == NULL || EVP_PKEY_derive_init(c) <= 0 || EVP_PKEY_derive_set_peer(c, b) <= 0 ||
	         EVP_PKEY_derive(c, s, &len) <= 0;

	EVP_PKEY_CTX_free(c);
	return rc;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 2000;
	uint64_t m768[3], m1024[3], *kg, *dv, xk, xd;
	EVP_PKEY *a, *b;

	kg = calloc((size_t)n, 8);
	dv = calloc((size_t)n, 8);
	if (x25519_keygen(&b) != 0)
		return 1;
	for (int i = 0; i < n; i++) {
		TIME(kg[i], x25519_keygen(&a));
		TIME(dv[i], x25519_derive(a, b));
		EVP_PKEY_free(a);
	}
	xk = median(kg, n);
	xd = median(dv, n);
	bench_mlkem(ACLM_MLKEM_768, n, m768);
	bench_mlkem(ACLM_MLKEM_1024, n, m1024);
	printf("x25519 %llu %llu\n", (unsigned long long)xk, (unsigned long long)xd);
	printf("mlkem768 %llu %llu %llu\n", (unsigned long long)m768[0], (unsigned long long)m768[1],
	       (unsigned long long)m768[2]);
	printf("mlkem1024 %llu %llu %llu\n", (unsigned long long)m1024[0],
	       (unsigned long long)m1024[1], (unsigned long long)m1024[2]);
	EVP_PKEY_free(b);
	free(kg);
	free(dv);
	return 0;
}
