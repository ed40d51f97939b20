/* Unit tests of the scheduler's persistent jobs (src/store/jobs.c) on a
 * temporary SQLite database: uniqueness of open jobs, claim order, leases,
 * ownership, retries, progress, nodes. */
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
#include "aclm/store_jobs.h"

static char dir[64], url[128];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/aclm-test-jobs-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(url, sizeof(url), "sqlite:%s/jobs.db", dir);
	return 0;
}

static int teardown(void **state)
{
	char path[128];

	(void)state;
	for (const char *const *s = (const char *const[]){ "", "-wal", "-shm", NULL }; *s; s++) {
		snprintf(path, sizeof(path), "%s/jobs.db%s", dir, *s);
		unlink(path);
	}
	rmdir(dir);
	return 0;
}

static struct aclm_store *fresh(void)
{
	struct aclm_store *st = NULL;
	char path[128];

	for (const char *const *s = (const char *const[]){ "", "-wal", "-shm", NULL }; *s; s++) {
		snprintf(path, sizeof(path), "%s/jobs.db%s", dir, *s);
		unlink(path);
	}
	if (aclm_store_open(url, NULL, &st) != ACLM_OK)
		fail_msg("open %s: %s", url, aclm_errmsg());
	return st;
}

static int count(void *ctx, const struct aclm_job *j)
{
	(void)j;
	(*(int *)ctx)++;
	return ACLM_OK;
}

static void test_ensure_is_unique_and_reschedules(void **state)
{
	struct aclm_store *st = fresh();
	struct aclm_job j;
	int n = 0;

	(void)state;
	assert_int_equal(aclm_store_job_ensure(st, "renew", "7", 1000, NULL, true), ACLM_OK);
	assert_int_equal(aclm_store_job_ensure(st, "renew", "7", 900, NULL, true), ACLM_OK);
	assert_int_equal(aclm_store_job_ensure(st, "renew", "8", 5000, NULL, true), ACLM_OK);
	assert_int_equal(aclm_store_job_list(st, NULL, 0, count, &n), ACLM_OK);
	assert_int_equal(n, 2);
	/* moved to 900; not due at 899 */
	assert_int_equal(aclm_store_job_claim(st, "w1", 899, 60, &j), 0);
	assert_int_equal(aclm_store_job_claim(st, "w1", 900, 60, &j), 1);
	assert_string_equal(j.kind, "renew");
	assert_string_equal(j.subject, "7");
	assert_string_equal(j.state, "running");
	assert_int_equal(aclm_store_job_finish(st, j.id, "w1", true, NULL, 0, NULL), ACLM_OK);
	/* without reschedule a pending job keeps its time */
	assert_int_equal(aclm_store_job_ensure(st, "scan", "known", 3000, "{\"known\":true}", false),
	                 ACLM_OK);
	assert_int_equal(aclm_store_job_ensure(st, "scan", "known", 9000, NULL, false), ACLM_OK);
	assert_int_equal(aclm_store_job_claim(st, "w1", 3000, 60, &j), 1);
	assert_string_equal(j.subject, "known");
	assert_string_equal(j.params, "{\"known\":true}");
	aclm_store_close(st);
}

static void test_lease_owner_and_retry(void **state)
{
	struct aclm_store *st = fresh();
	struct aclm_job j, k;

	(void)state;
	assert_int_equal(aclm_store_job_ensure(st, "renew", "1", 100, NULL, true), ACLM_OK);
	assert_int_equal(aclm_store_job_claim(st, "w1", 100, 60, &j), 1);
	/* held: nobody else gets it while the lease runs */
	assert_int_equal(aclm_store_job_claim(st, "w2", 150, 60, &k), 0);
	/* the lease ran out (w1 died): w2 takes it over */
	assert_int_equal(aclm_store_job_claim(st, "w2", 161, 60, &k), 1);
	assert_int_equal(k.id, j.id);
	/* w1 comes back: it no longer owns the job */
	assert_int_equal(aclm_store_job_finish(st, j.id, "w1", true, NULL, 0, NULL),
	                 ACLM_ERR_NOTFOUND);
	assert_non_null(strstr(aclm_errmsg(), "lease lost"));
	/* a failure with a retry time: pending again, error and attempt kept */
	assert_int_equal(aclm_store_job_finish(st, k.id, "w2", false, "CA down", 500, NULL),
	                 ACLM_OK);
	assert_int_equal(aclm_store_job_get(st, k.id, &j), ACLM_OK);
	assert_string_equal(j.state, "pending");
	assert_int_equal(j.run_at, 500);
	assert_int_equal(j.attempts, 1);
	assert_string_equal(j.last_error, "CA down");
	/* progress only by the owner, and the result on success */
	assert_int_equal(aclm_store_job_claim(st, "w3", 500, 60, &j), 1);
	assert_int_equal(aclm_store_job_progress(st, j.id, "w3", "{\"done\":3}", 1000), ACLM_OK);
	assert_int_equal(aclm_store_job_progress(st, j.id, "w4", "{\"done\":99}", 1000), ACLM_OK);
	assert_int_equal(aclm_store_job_get(st, j.id, &k), ACLM_OK);
	assert_string_equal(k.progress, "{\"done\":3}");
	assert_int_equal(aclm_store_job_finish(st, j.id, "w3", true, NULL, 0, "{\"ok\":1}"), ACLM_OK);
	assert_int_equal(aclm_store_job_get(st, j.id, &k), ACLM_OK);
	assert_string_equal(k.state, "done");
	assert_string_equal(k.result, "{\"ok\":1}");
	/* a done job is not open: ensure makes a new one */
	assert_int_equal(aclm_store_job_ensure(st, "renew", "1", 2000, NULL, true), ACLM_OK);
	assert_int_equal(aclm_store_job_claim(st, "w1", 2000, 60, &j), 1);
	assert_int_not_equal(j.id, k.id);
	/* failed for good */
	assert_int_equal(aclm_store_job_finish(st, j.id, "w1", false, "refused", 0, NULL), ACLM_OK);
	assert_int_equal(aclm_store_job_get(st, j.id, &j), ACLM_OK);
	assert_string_equal(j.state, "failed");
	assert_int_equal(aclm_store_job_get(st, 424242, &j), ACLM_ERR_NOTFOUND);
	aclm_store_close(st);
}

static void test_claim_order_and_prune(void **state)
{
	struct aclm_store *st = fresh();
	struct aclm_job j;
	int64_t id = 0;
	int n = 0;

	(void)state;
	assert_int_equal(aclm_store_job_add(st, "scan", "api-1", 300, "{}", &id), ACLM_OK);
	/* one open job per (kind, subject), also for added ones */
	assert_int_equal(aclm_store_job_add(st, "scan", "api-1", 200, "{}", NULL), ACLM_ERR_DB);
	assert_int_equal(aclm_store_job_add(st, "scan", "api-2", 200, "{}", NULL), ACLM_OK);
	assert_int_equal(aclm_store_job_ensure(st, "renew", "2", 100, NULL, true), ACLM_OK);
	/* the most overdue first */
	assert_int_equal(aclm_store_job_claim(st, "w", 1000, 60, &j), 1);
	assert_string_equal(j.kind, "renew");
	assert_int_equal(aclm_store_job_finish(st, j.id, "w", true, NULL, 0, NULL), ACLM_OK);
	assert_int_equal(aclm_store_job_claim(st, "w", 1000, 60, &j), 1);
	assert_int_equal(j.run_at, 200);
	assert_int_equal(aclm_store_job_claim(st, "w", 1000, 60, &j), 1);
	assert_int_equal(j.id, id);
	/* finished jobs older than the cut are pruned, open ones stay */
	assert_int_equal(aclm_store_job_prune(st, INT64_MAX / 2), ACLM_OK);
	assert_int_equal(aclm_store_job_list(st, NULL, 0, count, &n), ACLM_OK);
	assert_int_equal(n, 2);
	aclm_store_close(st);
}

static int node_count(void *ctx, const struct aclm_node_row *r)
{
	(*(int *)ctx)++;
	assert_string_equal(r->kind, "server");
	return ACLM_OK;
}

static void test_nodes_and_leader(void **state)
{
	struct aclm_store *st = fresh();
	bool leader = false;
	int n = 0;

	(void)state;
	assert_int_equal(aclm_store_node_heartbeat(st, "a", "server", "https://a/", "1", 10), ACLM_OK);
	assert_int_equal(aclm_store_node_heartbeat(st, "a", "server", "https://a/", "1", 20), ACLM_OK);
	assert_int_equal(aclm_store_node_heartbeat(st, "b", "server", "https://b/", "1", 20), ACLM_OK);
	assert_int_equal(aclm_store_node_list(st, node_count, &n), ACLM_OK);
	assert_int_equal(n, 2);
	/* SQLite is one node: always the leader */
	assert_int_equal(aclm_store_try_leader(st, &leader), ACLM_OK);
	assert_true(leader);
	aclm_store_close(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ensure_is_unique_and_reschedules),
		cmocka_unit_test(test_lease_owner_and_retry),
		cmocka_unit_test(test_claim_order_and_prune),
		cmocka_unit_test(test_nodes_and_leader),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
