/* Unit tests of src/crypto/mlkem.c: the Wycheproof ML-KEM vectors (read from
 * $ACLM_SHARED/vectors/wycheproof, every case counted), round trips, implicit
 * rejection and the argument checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "aclm/err.h"
#include "aclm/mlkem.h"

struct hex {
	uint8_t *data;
	size_t len;
	int is_present;
};

static json_t *load_vectors(const char *name)
{
	const char *shared = getenv("ACLM_SHARED");
	char path[1024];
	json_error_t err;
	json_t *root;

	if (shared == NULL)
		fail_msg("ACLM_SHARED is not set (meson test sets it)");
	snprintf(path, sizeof(path), "%s/vectors/wycheproof/%s", shared, name);
	root = json_load_file(path, 0, &err);
	if (root == NULL)
		fail_msg("%s:%d: %s", path, err.line, err.text);
	return root;
}

static int nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The hex string member `key` of a test case; is_present = 0 when absent. */
static struct hex get_hex(json_t *tc, const char *key)
{
	struct hex h = { NULL, 0, 0 };
	const char *s;
	size_t i, n;
	int hi, lo;

	s = json_string_value(json_object_get(tc, key));
	if (s == NULL)
		return h;
	n = strlen(s);
	assert_int_equal(n % 2, 0);
	h.is_present = 1;
	h.len = n / 2;
	h.data = malloc(h.len + 1);
	assert_non_null(h.data);
	for (i = 0; i < h.len; i++) {
		hi = nibble(s[2 * i]);
		lo = nibble(s[2 * i + 1]);
		assert_true(hi >= 0 && lo >= 0);
		h.data[i] = (uint8_t)(hi << 4 | lo);
	}
	return h;
}

static enum aclm_mlkem_param group_param(json_t *group)
{
	const char *ps = json_string_value(json_object_get(group, "parameterSet"));

	assert_non_null(ps);
	if (strcmp(ps, "ML-KEM-768") == 0)
		return ACLM_MLKEM_768;
	if (strcmp(ps, "ML-KEM-1024") == 0)
		return ACLM_MLKEM_1024;
	fail_msg("unknown parameterSet %s", ps);
	return 0;
}

enum expect { VALID, INVALID, ACCEPTABLE };

static enum expect test_result(json_t *tc)
{
	const char *r = json_string_value(json_object_get(tc, "result"));

	assert_non_null(r);
	if (strcmp(r, "valid") == 0)
		return VALID;
	if (strcmp(r, "invalid") == 0)
		return INVALID;
	if (strcmp(r, "acceptable") == 0)
		return ACCEPTABLE;
	fail_msg("unknown result %s", r);
	return INVALID;
}

struct tally {
	const char *file;
	size_t n, n_valid, n_invalid, n_acceptable;
};

/* Checks an outcome against the expected result and counts it.  A valid
 * case must succeed (and the caller compares the outputs); an invalid one
 * must fail; an acceptable one may go either way. */
static void expect_outcome(struct tally *t, json_t *tc, enum expect e, int rc)
{
	long id = (long)json_integer_value(json_object_get(tc, "tcId"));

	if (e == VALID && rc != ACLM_OK)
		fail_msg("%s tcId %ld: valid case failed: %s", t->file, id, aclm_errmsg());
	if (e == INVALID && rc == ACLM_OK)
		fail_msg("%s tcId %ld: invalid case accepted", t->file, id);
	t->n++;
	if (e == VALID)
		t->n_valid++;
	else if (e == INVALID)
		t->n_invalid++;
	else
		t->n_acceptable++;
}

static void assert_bytes(const struct tally *t, json_t *tc, const char *what,
	const uint8_t *got, const struct hex *want)
{
	long id = (long)json_integer_value(json_object_get(tc, "tcId"));

	if (memcmp(got, want->data, want->len) != 0)
		fail_msg("%s tcId %ld: %s differs from the vector", t->file, id, what);
}

static void finish(const struct tally *t, json_t *root)
{
	size_t want = (size_t)json_integer_value(json_object_get(root, "numberOfTests"));

	print_message("%s: %zu cases (%zu valid, %zu invalid, %zu acceptable)\n",
	    t->file, t->n, t->n_valid, t->n_invalid, t->n_acceptable);
	assert_true(want > 0);
	assert_int_equal(t->n, want);
}

/* mlkem_test_schema: KeyGen from the seed, then Decaps of c. */
static void run_decaps_file(const char *file)
{
	uint8_t ek[ACLM_MLKEM_MAX_EK_LEN], dk[ACLM_MLKEM_MAX_DK_LEN], ss[ACLM_MLKEM_SS_LEN];
	struct tally t = { file, 0, 0, 0, 0 };
	json_t *root, *groups, *group, *tests, *tc;
	struct hex seed, ek_want, c, k;
	enum aclm_mlkem_param p;
	size_t gi, ti;
	enum expect e;
	int rc;

	root = load_vectors(file);
	groups = json_object_get(root, "testGroups");
	json_array_foreach(groups, gi, group) {
		p = group_param(group);
		tests = json_object_get(group, "tests");
		json_array_foreach(tests, ti, tc) {
			e = test_result(tc);
			seed = get_hex(tc, "seed");
			ek_want = get_hex(tc, "ek");
			c = get_hex(tc, "c");
			k = get_hex(tc, "K");
			assert_true(seed.is_present && c.is_present);
			rc = aclm_mlkem_keygen_seed(p, seed.data, seed.len, ek, sizeof(ek),
			    dk, sizeof(dk));
			if (rc == ACLM_OK && ek_want.is_present) {
				assert_int_equal(ek_want.len, aclm_mlkem_ek_len(p));
				assert_bytes(&t, tc, "ek", ek, &ek_want);
			}
			if (rc == ACLM_OK)
				rc = aclm_mlkem_decaps(p, dk, aclm_mlkem_dk_len(p), c.data, c.len,
				    ss, sizeof(ss));
			expect_outcome(&t, tc, e, rc);
			if (rc == ACLM_OK && e != INVALID) {
				assert_int_equal(k.len, ACLM_MLKEM_SS_LEN);
				assert_bytes(&t, tc, "K", ss, &k);
			}
			free(seed.data);
			free(ek_want.data);
			free(c.data);
			free(k.data);
		}
	}
	finish(&t, root);
	json_decref(root);
}

static void test_vectors_768(void **state)
{
	(void)state;
	run_decaps_file("mlkem_768_test.json");
}

static void test_vectors_1024(void **state)
{
	(void)state;
	run_decaps_file("mlkem_1024_test.json");
}

/* mlkem_encaps_test_schema: Encaps_internal(ek, m) with the §7.2 check. */
static void test_vectors_encaps_768(void **state)
{
	uint8_t ct[ACLM_MLKEM_MAX_CT_LEN], ss[ACLM_MLKEM_SS_LEN];
	struct tally t = { "mlkem_768_encaps_test.json", 0, 0, 0, 0 };
	json_t *root, *groups, *group, *tests, *tc;
	struct hex ek, m, c, k;
	enum aclm_mlkem_param p;
	size_t gi, ti;
	enum expect e;
	int rc, rc_check;

	(void)state;
	root = load_vectors(t.file);
	groups = json_object_get(root, "testGroups");
	json_array_foreach(groups, gi, group) {
		p = group_param(group);
		tests = json_object_get(group, "tests");
		json_array_foreach(tests, ti, tc) {
			e = test_result(tc);
			ek = get_hex(tc, "ek");
			m = get_hex(tc, "m");
			c = get_hex(tc, "c");
			k = get_hex(tc, "K");
			assert_true(ek.is_present && m.is_present);
			assert_int_equal(m.len, ACLM_MLKEM_RAND_LEN);
			rc_check = aclm_mlkem_check_ek(p, ek.data, ek.len);
			rc = aclm_mlkem_encaps_internal(p, ek.data, ek.len, m.data, ct, sizeof(ct),
			    ss, sizeof(ss));
			assert_int_equal(rc_check == ACLM_OK, rc == ACLM_OK);
			expect_outcome(&t, tc, e, rc);
			if (rc == ACLM_OK && e != INVALID) {
				assert_int_equal(c.len, aclm_mlkem_ct_len(p));
				assert_int_equal(k.len, ACLM_MLKEM_SS_LEN);
				assert_bytes(&t, tc, "c", ct, &c);
				assert_bytes(&t, tc, "K", ss, &k);
			}
			free(ek.data);
			free(m.data);
			free(c.data);
			free(k.data);
		}
	}
	finish(&t, root);
	json_decref(root);
}

/* mlkem_keygen_seed_test_schema: KeyGen_internal(d, z) -> ek, dk. */
static void test_vectors_keygen_768(void **state)
{
	uint8_t ek[ACLM_MLKEM_MAX_EK_LEN], dk[ACLM_MLKEM_MAX_DK_LEN];
	struct tally t = { "mlkem_768_keygen_seed_test.json", 0, 0, 0, 0 };
	json_t *root, *groups, *group, *tests, *tc;
	struct hex seed, ek_want, dk_want;
	enum aclm_mlkem_param p;
	size_t gi, ti;
	enum expect e;
	int rc;

	(void)state;
	root = load_vectors(t.file);
	groups = json_object_get(root, "testGroups");
	json_array_foreach(groups, gi, group) {
		p = group_param(group);
		tests = json_object_get(group, "tests");
		json_array_foreach(tests, ti, tc) {
			e = test_result(tc);
			seed = get_hex(tc, "seed");
			ek_want = get_hex(tc, "ek");
			dk_want = get_hex(tc, "dk");
			rc = aclm_mlkem_keygen_seed(p, seed.data, seed.len, ek, sizeof(ek),
			    dk, sizeof(dk));
			expect_outcome(&t, tc, e, rc);
			if (rc == ACLM_OK && e != INVALID) {
				assert_int_equal(ek_want.len, aclm_mlkem_ek_len(p));
				assert_int_equal(dk_want.len, aclm_mlkem_dk_len(p));
				assert_bytes(&t, tc, "ek", ek, &ek_want);
				assert_bytes(&t, tc, "dk", dk, &dk_want);
				assert_int_equal(aclm_mlkem_check_dk(p, dk, dk_want.len), ACLM_OK);
				assert_int_equal(aclm_mlkem_check_ek(p, ek, ek_want.len), ACLM_OK);
			}
			free(seed.data);
			free(ek_want.data);
			free(dk_want.data);
		}
	}
	finish(&t, root);
	json_decref(root);
}

/* mlkem_semi_expanded_decaps_test_schema: Decaps with an expanded dk and
 * the §7.3 checks (lengths, hash check). */
static void test_vectors_semi_expanded_768(void **state)
{
	uint8_t ss[ACLM_MLKEM_SS_LEN];
	struct tally t = { "mlkem_768_semi_expanded_decaps_test.json", 0, 0, 0, 0 };
	json_t *root, *groups, *group, *tests, *tc;
	struct hex dk, c, k;
	enum aclm_mlkem_param p;
	size_t gi, ti;
	enum expect e;
	int rc;

	(void)state;
	root = load_vectors(t.file);
	groups = json_object_get(root, "testGroups");
	json_array_foreach(groups, gi, group) {
		p = group_param(group);
		tests = json_object_get(group, "tests");
		json_array_foreach(tests, ti, tc) {
			e = test_result(tc);
			dk = get_hex(tc, "dk");
			c = get_hex(tc, "c");
			k = get_hex(tc, "K");
			assert_true(dk.is_present && c.is_present);
			rc = aclm_mlkem_decaps(p, dk.data, dk.len, c.data, c.len, ss, sizeof(ss));
			expect_outcome(&t, tc, e, rc);
			if (rc == ACLM_OK && e != INVALID) {
				assert_int_equal(k.len, ACLM_MLKEM_SS_LEN);
				assert_bytes(&t, tc, "K", ss, &k);
			}
			free(dk.data);
			free(c.data);
			free(k.data);
		}
	}
	finish(&t, root);
	json_decref(root);
}

/* J(z || c) computed here independently of the library. */
static void implicit_key(const uint8_t *z, const uint8_t *c, size_t c_len, uint8_t out[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	assert_non_null(ctx);
	assert_int_equal(EVP_DigestInit_ex(ctx, EVP_shake256(), NULL), 1);
	assert_int_equal(EVP_DigestUpdate(ctx, z, 32), 1);
	assert_int_equal(EVP_DigestUpdate(ctx, c, c_len), 1);
	assert_int_equal(EVP_DigestFinalXOF(ctx, out, 32), 1);
	EVP_MD_CTX_free(ctx);
}

static void round_trip(enum aclm_mlkem_param p)
{
	uint8_t ek[ACLM_MLKEM_MAX_EK_LEN], dk[ACLM_MLKEM_MAX_DK_LEN], ct[ACLM_MLKEM_MAX_CT_LEN];
	uint8_t ss1[32], ss2[32], rej[32];
	size_t ek_len = aclm_mlkem_ek_len(p), dk_len = aclm_mlkem_dk_len(p);
	size_t ct_len = aclm_mlkem_ct_len(p), i;
	int n;

	for (n = 0; n < 20; n++) {
		assert_int_equal(aclm_mlkem_keygen(p, ek, ek_len, dk, dk_len), ACLM_OK);
		assert_int_equal(aclm_mlkem_check_ek(p, ek, ek_len), ACLM_OK);
		assert_int_equal(aclm_mlkem_check_dk(p, dk, dk_len), ACLM_OK);
		assert_int_equal(aclm_mlkem_encaps(p, ek, ek_len, ct, ct_len, ss1, 32), ACLM_OK);
		assert_int_equal(aclm_mlkem_decaps(p, dk, dk_len, ct, ct_len, ss2, 32), ACLM_OK);
		assert_memory_equal(ss1, ss2, 32);
		/* Every bit position class: flip one bit, expect J(z || c'). */
		i = (size_t)n * 977 % ct_len;
		ct[i] ^= (uint8_t)(1u << (n % 8));
		assert_int_equal(aclm_mlkem_decaps(p, dk, dk_len, ct, ct_len, ss2, 32), ACLM_OK);
		implicit_key(dk + dk_len - 32, ct, ct_len, rej);
		assert_memory_equal(ss2, rej, 32);
		assert_memory_not_equal(ss1, ss2, 32);
	}
}

static void test_round_trip_768(void **state)
{
	(void)state;
	round_trip(ACLM_MLKEM_768);
}

static void test_round_trip_1024(void **state)
{
	(void)state;
	round_trip(ACLM_MLKEM_1024);
}

static void test_sizes_and_usage(void **state)
{
	uint8_t ek[ACLM_MLKEM_MAX_EK_LEN], dk[ACLM_MLKEM_MAX_DK_LEN], ct[ACLM_MLKEM_MAX_CT_LEN];
	uint8_t ss[32], seed[64] = { 0 };

	(void)state;
	/* meson runs this program twice: as is and with ACLM_MLKEM_NO_AVX2=1. */
	print_message("ML-KEM back end: %s\n", aclm_mlkem_backend());
	if (getenv("ACLM_MLKEM_NO_AVX2") != NULL && strcmp(getenv("ACLM_MLKEM_NO_AVX2"), "1") == 0)
		assert_string_equal(aclm_mlkem_backend(), "portable");
	assert_int_equal(aclm_mlkem_ek_len(ACLM_MLKEM_768), 1184);
	assert_int_equal(aclm_mlkem_dk_len(ACLM_MLKEM_768), 2400);
	assert_int_equal(aclm_mlkem_ct_len(ACLM_MLKEM_768), 1088);
	assert_int_equal(aclm_mlkem_ek_len(ACLM_MLKEM_1024), 1568);
	assert_int_equal(aclm_mlkem_dk_len(ACLM_MLKEM_1024), 3168);
	assert_int_equal(aclm_mlkem_ct_len(ACLM_MLKEM_1024), 1568);
	assert_int_equal(aclm_mlkem_ek_len((enum aclm_mlkem_param)512), 0);

	assert_int_equal(aclm_mlkem_keygen((enum aclm_mlkem_param)512, ek, sizeof(ek),
	    dk, sizeof(dk)), ACLM_ERR_USAGE);
	assert_int_equal(aclm_mlkem_keygen(ACLM_MLKEM_1024, ek, 1184, dk, sizeof(dk)),
	    ACLM_ERR_USAGE);
	assert_int_equal(aclm_mlkem_keygen_seed(ACLM_MLKEM_768, seed, 63, ek, sizeof(ek), dk,
	    sizeof(dk)), ACLM_ERR_PARSE);
	assert_int_equal(aclm_mlkem_keygen_seed(ACLM_MLKEM_768, seed, 64, ek, sizeof(ek), dk,
	    sizeof(dk)), ACLM_OK);

	/* A 768 key is not a 1024 key, and a 1024 ciphertext is not a 768 one. */
	assert_int_equal(aclm_mlkem_encaps(ACLM_MLKEM_1024, ek, 1184, ct, sizeof(ct), ss, 32),
	    ACLM_ERR_PARSE);
	assert_int_equal(aclm_mlkem_encaps(ACLM_MLKEM_768, ek, 1184, ct, 1087, ss, 32),
	    ACLM_ERR_USAGE);
	assert_int_equal(aclm_mlkem_encaps(ACLM_MLKEM_768, ek, 1184, ct, sizeof(ct), ss, 32),
	    ACLM_OK);
	memset(ss, 0xaa, sizeof(ss));
	assert_int_equal(aclm_mlkem_decaps(ACLM_MLKEM_768, dk, 2400, ct, 1568, ss, 32),
	    ACLM_ERR_PARSE);
	assert_true(strstr(aclm_errmsg(), "1568 bytes, expected 1088") != NULL);
	assert_int_equal(ss[0] | ss[31], 0);   /* no key on failure */

	/* Modulus check: a coefficient of 3329 (0xd01) in the first position. */
	ek[0] = 0x01;
	ek[1] = (uint8_t)((ek[1] & 0xf0) | 0x0d);
	assert_int_equal(aclm_mlkem_check_ek(ACLM_MLKEM_768, ek, 1184), ACLM_ERR_PARSE);
	assert_true(strstr(aclm_errmsg(), "modulus check") != NULL);

	/* Hash check: any change to the embedded ek. */
	dk[1152 + 1183] ^= 1;
	assert_int_equal(aclm_mlkem_check_dk(ACLM_MLKEM_768, dk, 2400), ACLM_ERR_PARSE);
	assert_int_equal(aclm_mlkem_decaps(ACLM_MLKEM_768, dk, 2400, ct, 1088, ss, 32),
	    ACLM_ERR_PARSE);
	assert_true(strstr(aclm_errmsg(), "hash check") != NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors_768),
		cmocka_unit_test(test_vectors_1024),
		cmocka_unit_test(test_vectors_encaps_768),
		cmocka_unit_test(test_vectors_keygen_768),
		cmocka_unit_test(test_vectors_semi_expanded_768),
		cmocka_unit_test(test_round_trip_768),
		cmocka_unit_test(test_round_trip_1024),
		cmocka_unit_test(test_sizes_and_usage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
