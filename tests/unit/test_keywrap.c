/* Unit tests of src/crypto/keywrap.c: seal/open round trips, every way a
 * sealed key can be wrong (other KEK, flipped bytes, other AAD, truncation),
 * and the KEK from the environment or a file (permissions, creation). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "aclm/err.h"
#include "aclm/keywrap.h"
#include "aclm/str.h"

#define HEX_A "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define HEX_B "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
/* base64 of the bytes 00..1f, the same key as HEX_A */
#define B64_A "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

static const unsigned char aad[32] = "spki-sha256-of-the-key-012345678";
static const unsigned char secret[] = "-----PKCS#8 would be here-----";

static char tmpdir[64];

static int setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/aclm-keywrap-XXXXXX");
	return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void load_env(const char *value, struct aclm_kek *k)
{
	if (aclm_kek_load(value, NULL, false, k) != ACLM_OK)
		fail_msg("aclm_kek_load: %s", aclm_errmsg());
}

static void test_round_trip(void **state)
{
	struct aclm_kek k;
	unsigned char *sealed = NULL, *pt = NULL, *sealed2 = NULL;
	size_t sealed_len = 0, pt_len = 0, sealed2_len = 0;

	load_env(HEX_A, &k);
	assert_int_equal(aclm_keywrap_seal(&k, aad, sizeof(aad), secret, sizeof(secret), &sealed, &sealed_len),
	                 ACLM_OK);
	assert_int_equal(sealed_len, 3 + 8 + 12 + sizeof(secret) + 16);
	assert_memory_equal(sealed, "AK1", 3);
	assert_memory_equal(sealed + 3, k.id, 8);
	assert_null(memmem(sealed, sealed_len, secret, 8));
	assert_int_equal(aclm_keywrap_open(&k, aad, sizeof(aad), sealed, sealed_len, &pt, &pt_len), ACLM_OK);
	assert_int_equal(pt_len, sizeof(secret));
	assert_memory_equal(pt, secret, sizeof(secret));
	OPENSSL_cleanse(pt, pt_len);
	free(pt);

	/* a fresh nonce every time */
	assert_int_equal(aclm_keywrap_seal(&k, aad, sizeof(aad), secret, sizeof(secret), &sealed2, &sealed2_len),
	                 ACLM_OK);
	assert_int_equal(sealed2_len, sealed_len);
	assert_memory_not_equal(sealed + 11, sealed2 + 11, 12);
	free(sealed2);
	free(sealed);

	/* empty plaintext and no AAD still work */
	assert_int_equal(aclm_keywrap_seal(&k, NULL, 0, (const unsigned char *)"", 0, &sealed, &sealed_len),
	                 ACLM_OK);
	assert_int_equal(sealed_len, 3 + 8 + 12 + 16);
	assert_int_equal(aclm_keywrap_open(&k, NULL, 0, sealed, sealed_len, &pt, &pt_len), ACLM_OK);
	assert_int_equal(pt_len, 0);
	assert_non_null(pt);
	free(pt);
	free(sealed);
	aclm_kek_wipe(&k);
	assert_memory_equal(k.key, (unsigned char[32]){ 0 }, 32);
}

static void test_kek_id(void **state)
{
	struct aclm_kek k;
	unsigned char buf[11 + 32], md[32];

	load_env(HEX_A, &k);
	memcpy(buf, "aclm-kek-id", 11);
	for (int i = 0; i < 32; i++)
		buf[11 + i] = (unsigned char)i;
	assert_memory_equal(k.key, buf + 11, 32);
	EVP_Digest(buf, sizeof(buf), md, NULL, EVP_sha256(), NULL);
	assert_memory_equal(k.id, md, 8);
	aclm_kek_wipe(&k);
}

static void test_failures(void **state)
{
	struct aclm_kek k, other;
	unsigned char *sealed = NULL, *pt = (unsigned char *)"untouched";
	size_t sealed_len = 0, pt_len = 0;
	unsigned char wrong_aad[32];

	load_env(HEX_A, &k);
	load_env(HEX_B, &other);
	assert_int_equal(aclm_keywrap_seal(&k, aad, sizeof(aad), secret, sizeof(secret), &sealed, &sealed_len),
	                 ACLM_OK);

	assert_int_equal(aclm_keywrap_open(&other, aad, sizeof(aad), sealed, sealed_len, &pt, &pt_len),
	                 ACLM_ERR_CRYPTO);
	assert_string_equal(aclm_errmsg(), "sealed with a different key-encryption key");
	assert_null(pt);

	/* every single byte after the header is protected: nonce, ciphertext, tag */
	for (size_t i = 11; i < sealed_len; i++) {
		sealed[i] ^= 0x01;
		assert_int_equal(aclm_keywrap_open(&k, aad, sizeof(aad), sealed, sealed_len, &pt, &pt_len),
		                 ACLM_ERR_CRYPTO);
		assert_string_equal(aclm_errmsg(), "authentication failed (corrupt or tampered)");
		assert_null(pt);
		sealed[i] ^= 0x01;
	}

	memcpy(wrong_aad, aad, sizeof(aad));
	wrong_aad[31] ^= 0x80;
	assert_int_equal(aclm_keywrap_open(&k, wrong_aad, sizeof(wrong_aad), sealed, sealed_len, &pt, &pt_len),
	                 ACLM_ERR_CRYPTO);
	assert_string_equal(aclm_errmsg(), "authentication failed (corrupt or tampered)");
	assert_int_equal(aclm_keywrap_open(&k, NULL, 0, sealed, sealed_len, &pt, &pt_len), ACLM_ERR_CRYPTO);

	/* truncated or not sealed at all */
	assert_int_equal(aclm_keywrap_open(&k, aad, sizeof(aad), sealed, sealed_len - 1, &pt, &pt_len),
	                 ACLM_ERR_CRYPTO);
	assert_int_equal(aclm_keywrap_open(&k, aad, sizeof(aad), sealed, 20, &pt, &pt_len), ACLM_ERR_PARSE);
	sealed[0] = 'X';
	assert_int_equal(aclm_keywrap_open(&k, aad, sizeof(aad), sealed, sealed_len, &pt, &pt_len),
	                 ACLM_ERR_PARSE);
	assert_non_null(strstr(aclm_errmsg(), "not in the AK1 format"));
	sealed[0] = 'A';

	/* and it still opens afterwards */
	assert_int_equal(aclm_keywrap_open(&k, aad, sizeof(aad), sealed, sealed_len, &pt, &pt_len), ACLM_OK);
	free(pt);
	free(sealed);
	aclm_kek_wipe(&k);
	aclm_kek_wipe(&other);
}

static void test_kek_from_env(void **state)
{
	static const char *const bad[] = {
		"00", HEX_A "00", "zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==",   /* 31 bytes */
		"not a key at all",
	};
	struct aclm_kek a, b;

	load_env(HEX_A, &a);
	load_env(B64_A, &b);
	assert_memory_equal(a.key, b.key, 32);
	assert_memory_equal(a.id, b.id, 8);
	load_env(HEX_A "\n", &b);
	assert_memory_equal(a.key, b.key, 32);
	load_env("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F", &b);
	assert_memory_equal(a.key, b.key, 32);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(aclm_kek_load(bad[i], NULL, false, &b), ACLM_ERR_CONFIG);
		assert_non_null(strstr(aclm_errmsg(), "expected 64 hex digits or base64 of 32 bytes"));
	}
	/* no env and no path */
	assert_int_equal(aclm_kek_load("", NULL, true, &b), ACLM_ERR_CONFIG);
	assert_int_equal(aclm_kek_load(NULL, NULL, true, &b), ACLM_ERR_CONFIG);
	aclm_kek_wipe(&a);
	aclm_kek_wipe(&b);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static void test_kek_file(void **state)
{
	char path[128], want[256];
	struct aclm_kek k, env, again;
	struct stat st;
	char text[80];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/kek", tmpdir);
	unlink(path);

	/* absent, not to be created */
	assert_int_equal(aclm_kek_load(NULL, path, false, &k), ACLM_ERR_IO);
	assert_non_null(strstr(aclm_errmsg(), "does not exist"));

	/* created 0600 with 64 hex digits and a newline */
	umask(022);
	assert_int_equal(aclm_kek_load(NULL, path, true, &k), ACLM_OK);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	f = fopen(path, "r");
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	assert_int_equal(n, 65);
	assert_int_equal(text[64], '\n');
	text[64] = '\0';
	load_env(text, &env);
	assert_memory_equal(env.key, k.key, 32);
	assert_memory_equal(env.id, k.id, 8);

	/* read back: same key, also with create=true */
	assert_int_equal(aclm_kek_load(NULL, path, true, &again), ACLM_OK);
	assert_memory_equal(again.key, k.key, 32);
	assert_int_equal(aclm_kek_load(NULL, path, false, &again), ACLM_OK);
	assert_memory_equal(again.key, k.key, 32);

	/* the environment wins over the file */
	assert_int_equal(aclm_kek_load(HEX_B, path, false, &again), ACLM_OK);
	assert_memory_not_equal(again.key, k.key, 32);

	/* too open */
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(aclm_kek_load(NULL, path, false, &again), ACLM_ERR_CONFIG);
	snprintf(want, sizeof(want), "%s: permissions 0644 are too open; the key-encryption key must be 0600", path);
	assert_string_equal(aclm_errmsg(), want);
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(aclm_kek_load(NULL, path, true, &again), ACLM_ERR_CONFIG);
	assert_non_null(strstr(aclm_errmsg(), "permissions 0640 are too open"));
	assert_int_equal(chmod(path, 0400), 0);
	assert_int_equal(aclm_kek_load(NULL, path, false, &again), ACLM_OK);
	assert_memory_equal(again.key, k.key, 32);

	/* a file written by hand: 0600 accepted, junk refused */
	snprintf(path, sizeof(path), "%s/hand", tmpdir);
	write_file(path, HEX_A "\r\n", 0600);
	assert_int_equal(aclm_kek_load(NULL, path, false, &again), ACLM_OK);
	load_env(HEX_A, &env);
	assert_memory_equal(again.key, env.key, 32);
	write_file(path, "this is not a key\n", 0600);
	assert_int_equal(aclm_kek_load(NULL, path, false, &again), ACLM_ERR_CONFIG);
	assert_non_null(strstr(aclm_errmsg(), "not a key-encryption key (expected 64 hex digits)"));
	write_file(path, B64_A "\n", 0600);
	assert_int_equal(aclm_kek_load(NULL, path, false, &again), ACLM_ERR_CONFIG);

	/* the directory must exist; no file is left behind on failure */
	snprintf(path, sizeof(path), "%s/missing/kek", tmpdir);
	assert_int_equal(aclm_kek_load(NULL, path, true, &again), ACLM_ERR_IO);
	assert_non_null(strstr(aclm_errmsg(), "directory does not exist"));

	/* a directory is not a key */
	assert_int_equal(aclm_kek_load(NULL, tmpdir, false, &again), ACLM_ERR_CONFIG);
	aclm_kek_wipe(&k);
	aclm_kek_wipe(&env);
	aclm_kek_wipe(&again);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_kek_id),
		cmocka_unit_test(test_failures),
		cmocka_unit_test(test_kek_from_env),
		cmocka_unit_test(test_kek_file),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
