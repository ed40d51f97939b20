/* The ACME rows of the store (migration 3) on SQLite: accounts, managed
 * certificates, the one-open-order invariant, resumable order fields, the
 * sealed pending key, per-CA backoff. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "aclm/err.h"
#include "aclm/store.h"
#include "aclm/store_acme.h"

struct fx {
	char dir[64];
	char url[128];
	struct aclm_store *st;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/aclm-acme-store-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->url, sizeof(f->url), "sqlite:%s/a.db", f->dir);
	if (aclm_store_open(f->url, NULL, &f->st) != ACLM_OK)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char path[160];
	aclm_store_close(f->st);
	snprintf(path, sizeof(path), "%s/a.db", f->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/a.db-wal", f->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/a.db-shm", f->dir);
	unlink(path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static int64_t managed(struct aclm_store *st, const char *name)
{
	struct aclm_managed_row m = { 0 };
	int64_t id = 0;
	m.name = (char *)name;
	m.identifiers = (char *)"[\"a.example.test\"]";
	m.key_type = (char *)"ec256";
	m.cas = (char *)"[\"one\",\"two\"]";
	m.solver = (char *)"{\"type\":\"http-01\"}";
	assert_int_equal(aclm_store_managed_upsert(st, &m, &id), ACLM_OK);
	return id;
}

static void test_accounts(void **state)
{
	struct fx *f = *state;
	unsigned char sealed[40];
	struct aclm_acme_account_row r = { 0 }, got;
	int64_t id = 0;

	memset(sealed, 0xab, sizeof(sealed));
	assert_int_equal(aclm_store_acme_account_get(f->st, "one", "https://ca/dir", &got),
	                 ACLM_ERR_NOTFOUND);
	r.ca = (char *)"one";
	r.directory = (char *)"https://ca/dir";
	r.url = (char *)"https://ca/acct/1";
	r.key_type = (char *)"ec256";
	r.key_spki = (char *)"00ff";
	r.key_sealed = sealed;
	r.key_sealed_len = sizeof(sealed);
	assert_int_equal(aclm_store_acme_account_add(f->st, &r, &id), ACLM_OK);
	/* one valid account per CA and directory */
	assert_int_not_equal(aclm_store_acme_account_add(f->st, &r, &id), ACLM_OK);
	assert_int_equal(aclm_store_acme_account_get(f->st, "one", "https://ca/dir", &got), ACLM_OK);
	assert_string_equal(got.url, "https://ca/acct/1");
	assert_int_equal(got.key_sealed_len, sizeof(sealed));
	assert_memory_equal(got.key_sealed, sealed, sizeof(sealed));
	aclm_acme_account_row_free(&got);
	/* deactivated: no longer found, a new one may be made */
	assert_int_equal(aclm_store_acme_account_update(f->st, id, "deactivated", NULL, NULL, NULL, 0),
	                 ACLM_OK);
	assert_int_equal(aclm_store_acme_account_get(f->st, "one", "https://ca/dir", &got),
	                 ACLM_ERR_NOTFOUND);
	assert_int_equal(aclm_store_acme_account_add(f->st, &r, &id), ACLM_OK);
}

static void test_one_open_order(void **state)
{
	struct fx *f = *state;
	int64_t m = managed(f->st, "a.example.test/ec256"), id = 0, id2 = 0;
	unsigned char key[48];
	struct aclm_acme_order_row o = { 0 }, got;

	assert_int_equal(managed(f->st, "a.example.test/ec256"), m);  /* upsert by name */
	memset(key, 0x5a, sizeof(key));
	o.managed_id = m;
	o.ca = (char *)"one";
	o.state = (char *)"new";
	o.identifiers = (char *)"[\"a.example.test\"]";
	o.key_type = (char *)"ec256";
	o.key_spki = (char *)"abcd";
	o.key_sealed = key;
	o.key_sealed_len = sizeof(key);
	assert_int_equal(aclm_store_acme_order_add(f->st, &o, &id), ACLM_OK);
	assert_int_equal(aclm_store_acme_order_add(f->st, &o, &id2), ACLM_ERR_EXISTS);
	assert_non_null(strstr(aclm_errmsg(), "unfinished order"));
	assert_int_equal(aclm_store_acme_order_open(f->st, m, &got), ACLM_OK);
	assert_int_equal(got.id, id);
	assert_string_equal(got.state, "new");
	assert_memory_equal(got.key_sealed, key, sizeof(key));
	/* the state machine's fields survive a reopen */
	free(got.state);
	got.state = strdup("ordered");
	got.url = strdup("https://ca/order/1");
	got.finalize_url = strdup("https://ca/order/1/finalize");
	assert_int_equal(aclm_store_acme_order_update(f->st, &got), ACLM_OK);
	aclm_acme_order_row_free(&got);
	assert_int_equal(aclm_store_acme_order_open(f->st, m, &got), ACLM_OK);
	assert_string_equal(got.state, "ordered");
	assert_string_equal(got.finalize_url, "https://ca/order/1/finalize");
	/* failed: the slot is free for the next CA */
	free(got.state);
	got.state = strdup("failed");
	assert_int_equal(aclm_store_acme_order_update(f->st, &got), ACLM_OK);
	aclm_acme_order_row_free(&got);
	assert_int_equal(aclm_store_acme_order_open(f->st, m, &got), ACLM_ERR_NOTFOUND);
	o.ca = (char *)"two";
	assert_int_equal(aclm_store_acme_order_add(f->st, &o, &id2), ACLM_OK);
	assert_true(id2 > id);
	assert_int_equal(aclm_store_acme_authz_put(f->st, id2, "https://ca/authz/1", "a.example.test",
	                                           "pending", "http-01", "https://ca/chall/1", "tok"),
	                 ACLM_OK);
	assert_int_equal(aclm_store_acme_authz_put(f->st, id2, "https://ca/authz/1", "a.example.test",
	                                           "valid", NULL, NULL, NULL), ACLM_OK);
}

static void test_managed_failure_and_backoff(void **state)
{
	struct fx *f = *state;
	int64_t m = managed(f->st, "b.example.test/rsa2048"), until = 0, failures = 0;
	struct aclm_managed_row r;

	assert_int_equal(aclm_store_managed_set_failure(f->st, m, NULL, "CA one: boom", 1234), ACLM_OK);
	assert_int_equal(aclm_store_managed_set_failure(f->st, m, "failed", "CA two: boom", 5678),
	                 ACLM_OK);
	assert_int_equal(aclm_store_managed_get(f->st, m, &r), ACLM_OK);
	assert_int_equal(r.failures, 2);
	assert_int_equal(r.next_attempt_at, 5678);
	assert_string_equal(r.status, "failed");
	assert_string_equal(r.last_error, "CA two: boom");
	assert_string_equal(r.cas, "[\"one\",\"two\"]");
	aclm_managed_row_free(&r);
	assert_int_equal(aclm_store_managed_get(f->st, 999, &r), ACLM_ERR_NOTFOUND);
	assert_int_equal(aclm_store_acme_ca_backoff(f->st, "one", &until, &failures), ACLM_OK);
	assert_int_equal(until, 0);
	assert_int_equal(aclm_store_acme_ca_set_backoff(f->st, "one", 99, 3, "429"), ACLM_OK);
	assert_int_equal(aclm_store_acme_ca_set_backoff(f->st, "one", 100, 4, "429"), ACLM_OK);
	assert_int_equal(aclm_store_acme_ca_backoff(f->st, "one", &until, &failures), ACLM_OK);
	assert_int_equal(until, 100);
	assert_int_equal(failures, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_accounts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_open_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_managed_failure_and_backoff, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
