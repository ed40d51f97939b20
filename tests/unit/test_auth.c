/* Unit tests of src/auth: passwords, tokens, roles. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aclm/auth.h"
#include "aclm/err.h"

static void test_roles(void **state)
{
	(void)state;
	assert_int_equal(aclm_role_parse("admin"), ACLM_ROLE_ADMIN);
	assert_int_equal(aclm_role_parse("viewer"), ACLM_ROLE_VIEWER);
	assert_int_equal(aclm_role_parse("none"), ACLM_ROLE_NONE);
	assert_int_equal(aclm_role_parse("Admin"), ACLM_ROLE_NONE);
	assert_int_equal(aclm_role_parse(NULL), ACLM_ROLE_NONE);
	assert_string_equal(aclm_role_name(ACLM_ROLE_AUDITOR), "auditor");
	assert_string_equal(aclm_role_name((enum aclm_role)99), "none");
	/* the table of the issue: viewer reads the inventory only, auditor reads
	 * everything, operator changes all but users, admin everything */
	assert_true(aclm_role_allows(ACLM_ROLE_VIEWER, ACLM_PERM_READ_INVENTORY));
	assert_false(aclm_role_allows(ACLM_ROLE_VIEWER, ACLM_PERM_READ_ALL));
	assert_true(aclm_role_allows(ACLM_ROLE_AUDITOR, ACLM_PERM_READ_ALL));
	assert_false(aclm_role_allows(ACLM_ROLE_AUDITOR, ACLM_PERM_WRITE));
	assert_true(aclm_role_allows(ACLM_ROLE_OPERATOR, ACLM_PERM_WRITE));
	assert_false(aclm_role_allows(ACLM_ROLE_OPERATOR, ACLM_PERM_ADMIN));
	assert_true(aclm_role_allows(ACLM_ROLE_ADMIN, ACLM_PERM_ADMIN));
	assert_false(aclm_role_allows(ACLM_ROLE_NONE, ACLM_PERM_READ_INVENTORY));
	assert_false(aclm_role_allows((enum aclm_role)99, ACLM_PERM_READ_INVENTORY));
}

static void test_passwords(void **state)
{
	char *h1 = NULL, *h2 = NULL;

	(void)state;
	assert_int_equal(aclm_auth_hash_password("short", &h1), ACLM_ERR_USAGE);
	assert_null(h1);
	assert_int_equal(aclm_auth_hash_password("a long enough password", &h1), ACLM_OK);
	assert_int_equal(aclm_auth_hash_password("a long enough password", &h2), ACLM_OK);
	assert_true(strncmp(h1, "$argon2id$", 10) == 0);
	assert_string_not_equal(h1, h2);  /* salted */
	assert_true(aclm_auth_verify_password("a long enough password", h1));
	assert_true(aclm_auth_verify_password("a long enough password", h2));
	assert_false(aclm_auth_verify_password("a long enough passworD", h1));
	assert_false(aclm_auth_verify_password("", h1));
	assert_false(aclm_auth_verify_password("a long enough password", "$argon2id$garbage"));
	assert_false(aclm_auth_verify_password("a long enough password", "plain"));
	assert_false(aclm_auth_verify_password(NULL, h1));
	free(h1);
	free(h2);
}

static void test_tokens(void **state)
{
	char token[ACLM_TOKEN_MAX], lookup[ACLM_TOKEN_LOOKUP_LEN + 1], hash[65];
	char lookup2[ACLM_TOKEN_LOOKUP_LEN + 1], hash2[65], bad[ACLM_TOKEN_MAX];

	(void)state;
	assert_int_equal(aclm_auth_token_new(token, lookup, hash), ACLM_OK);
	assert_int_equal(strlen(token), 5 + 12 + 1 + 43);
	assert_int_equal(aclm_auth_token_split(token, lookup2, hash2), ACLM_OK);
	assert_string_equal(lookup, lookup2);
	assert_true(aclm_auth_hash_equal(hash, hash2));
	/* one character of the secret changed: same lookup, other hash */
	memcpy(bad, token, sizeof(bad));
	bad[30] = bad[30] == 'A' ? 'B' : 'A';
	assert_int_equal(aclm_auth_token_split(bad, lookup2, hash2), ACLM_OK);
	assert_false(aclm_auth_hash_equal(hash, hash2));
	assert_int_equal(aclm_auth_token_split("Bearer xyz", lookup2, hash2), ACLM_ERR_PARSE);
	assert_int_equal(aclm_auth_token_split("aclm_short_x", lookup2, hash2), ACLM_ERR_PARSE);
	memcpy(bad, token, sizeof(bad));
	bad[strlen(bad) - 1] = '\0';  /* truncated */
	assert_int_equal(aclm_auth_token_split(bad, lookup2, hash2), ACLM_ERR_PARSE);
	memcpy(bad, token, sizeof(bad));
	bad[20] = '!';
	assert_int_equal(aclm_auth_token_split(bad, lookup2, hash2), ACLM_ERR_PARSE);
	assert_false(aclm_auth_hash_equal(hash, "abc"));
	assert_false(aclm_auth_hash_equal(NULL, hash));
}

static void test_random_password(void **state)
{
	char a[33], b[33];

	(void)state;
	assert_int_equal(aclm_auth_random_password(a), ACLM_OK);
	assert_int_equal(aclm_auth_random_password(b), ACLM_OK);
	assert_int_equal(strlen(a), 24);
	assert_string_not_equal(a, b);
	assert_int_equal(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
	                 24);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roles),
		cmocka_unit_test(test_passwords),
		cmocka_unit_test(test_tokens),
		cmocka_unit_test(test_random_password),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
