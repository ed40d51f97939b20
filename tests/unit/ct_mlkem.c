/* Constant-time check of src/crypto/mlkem.c (run by meson under valgrind:
 * see the end of tests/unit/meson.build).
 *
 * The secrets (d, z, m and the secret parts of dk) are marked undefined for
 * memcheck; any branch or memory index that depends on them is reported as
 * "Conditional jump or move depends on uninitialised value(s)" or as a use
 * of an uninitialised value in an address, and valgrind exits 1.  Outputs
 * are marked defined again before they are compared with a run on plain
 * data, so the checks here never branch on a secret themselves.
 *
 * mlkem.c is compiled into this program with -DACLM_CT_TESTING, which makes
 * its declassify() (rho, public by design) a valgrind client request.
 *
 * A plain program, not cmocka: it exits 0 (pass), 1 (fail), or 77 (skip:
 * ASan build, or not under valgrind). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>

#include "aclm/err.h"
#include "aclm/mlkem.h"

#if defined(__SANITIZE_ADDRESS__)
#define HAS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAS_ASAN 1
#endif
#endif

#define secret(p, len) VALGRIND_MAKE_MEM_UNDEFINED((p), (len))
#define public(p, len) VALGRIND_MAKE_MEM_DEFINED((p), (len))

static int failures;

static void check(int ok, const char *name, const char *what)
{
	if (!ok) {
		fprintf(stderr, "ct_mlkem: %s: %s\n", name, what);
		failures++;
	}
}

static void fill(uint8_t *p, size_t len, uint8_t start)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (uint8_t)(start + 7 * i);
}

/* J(z || c), computed outside the library. */
static int implicit_key(const uint8_t *z, const uint8_t *c, size_t c_len, uint8_t out[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok;

	ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_shake256(), NULL)
	    && EVP_DigestUpdate(ctx, z, 32) && EVP_DigestUpdate(ctx, c, c_len)
	    && EVP_DigestFinalXOF(ctx, out, 32);
	EVP_MD_CTX_free(ctx);
	return ok;
}

static void run(enum aclm_mlkem_param p, const char *name)
{
	uint8_t d[32], z[32], m[32];
	uint8_t ek[ACLM_MLKEM_MAX_EK_LEN], dk[ACLM_MLKEM_MAX_DK_LEN], ct[ACLM_MLKEM_MAX_CT_LEN];
	uint8_t ek_ref[ACLM_MLKEM_MAX_EK_LEN], dk_ref[ACLM_MLKEM_MAX_DK_LEN];
	uint8_t ct_ref[ACLM_MLKEM_MAX_CT_LEN], ss_ref[32], ss[32], rej[32];
	size_t ek_len = aclm_mlkem_ek_len(p), dk_len = aclm_mlkem_dk_len(p);
	size_t ct_len = aclm_mlkem_ct_len(p);
	size_t s_len = dk_len - ek_len - 64;   /* ByteEncode12(s) */
	int rc;

	fill(d, sizeof(d), 1);
	fill(z, sizeof(z), 2);
	fill(m, sizeof(m), 3);

	/* Reference run on plain (defined) data. */
	rc = aclm_mlkem_keygen_internal(p, d, z, ek_ref, ek_len, dk_ref, dk_len);
	if (rc == ACLM_OK)
		rc = aclm_mlkem_encaps_internal(p, ek_ref, ek_len, m, ct_ref, ct_len, ss_ref, 32);
	if (rc != ACLM_OK) {
		fprintf(stderr, "ct_mlkem: %s: %s\n", name, aclm_errmsg());
		failures++;
		return;
	}

	/* KeyGen_internal with secret d, z.  Outputs: ek public; dk public
	 * only for the comparison, then its secret parts are secret again. */
	secret(d, sizeof(d));
	secret(z, sizeof(z));
	rc = aclm_mlkem_keygen_internal(p, d, z, ek, ek_len, dk, dk_len);
	public(&rc, sizeof(rc));
	public(ek, ek_len);
	public(dk, dk_len);
	check(rc == ACLM_OK, name, "keygen failed");
	check(memcmp(ek, ek_ref, ek_len) == 0, name, "keygen: ek differs");
	check(memcmp(dk, dk_ref, dk_len) == 0, name, "keygen: dk differs");

	/* Encaps_internal with secret m. */
	secret(m, sizeof(m));
	rc = aclm_mlkem_encaps_internal(p, ek, ek_len, m, ct, ct_len, ss, 32);
	public(&rc, sizeof(rc));
	public(ct, ct_len);
	public(ss, sizeof(ss));
	check(rc == ACLM_OK, name, "encaps failed");
	check(memcmp(ct, ct_ref, ct_len) == 0, name, "encaps: ciphertext differs");
	check(memcmp(ss, ss_ref, 32) == 0, name, "encaps: shared secret differs");

	/* Decaps of the genuine ciphertext: s and z secret; ek and H(ek)
	 * inside dk are public. */
	secret(dk, s_len);
	secret(dk + dk_len - 32, 32);
	rc = aclm_mlkem_decaps(p, dk, dk_len, ct, ct_len, ss, 32);
	public(&rc, sizeof(rc));
	public(ss, sizeof(ss));
	check(rc == ACLM_OK, name, "decaps failed");
	check(memcmp(ss, ss_ref, 32) == 0, name, "decaps: shared secret differs");

	/* Decaps of a tampered ciphertext: the implicit-rejection path, which
	 * must look the same to an observer. */
	ct[ct_len / 2] ^= 0x10;
	rc = aclm_mlkem_decaps(p, dk, dk_len, ct, ct_len, ss, 32);
	public(&rc, sizeof(rc));
	public(ss, sizeof(ss));
	public(dk, dk_len);
	check(rc == ACLM_OK, name, "decaps (tampered) failed");
	check(implicit_key(dk + dk_len - 32, ct, ct_len, rej), name, "SHAKE256 failed");
	check(memcmp(ss, rej, 32) == 0, name, "decaps (tampered): not J(z || c)");
	check(memcmp(ss, ss_ref, 32) != 0, name, "decaps (tampered): accepted");
	if (failures == 0)
		printf("ct_mlkem: %s: keygen, encaps, decaps (valid, tampered) ok\n", name);
}

int main(void)
{
#ifdef HAS_ASAN
	puts("ct_mlkem: skipped: ASan build (valgrind and ASan do not mix)");
	return 77;
#endif
	if (!RUNNING_ON_VALGRIND) {
		puts("ct_mlkem: skipped: not running under valgrind");
		return 77;
	}
	printf("ct_mlkem: back end %s\n", aclm_mlkem_backend());
	run(ACLM_MLKEM_768, "ML-KEM-768");
	run(ACLM_MLKEM_1024, "ML-KEM-1024");
	return failures == 0 ? 0 : 1;
}
