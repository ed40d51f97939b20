/* Unit tests of src/gateway/config.c: gw.yaml fields and defaults, errors
 * with file:line, site lookup by exact and wildcard name, the classical
 * group list derived from the PQ one, cert_source ca, hostile YAML. */
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
#include "aclm/gateway.h"
#include "../../src/gateway/gateway-int.h"

static char dir[64];
static char path[128];
static char cert[128], key[128];

static int setup(void **state)
{
	FILE *f;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/aclm-test-gw-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/gw.yaml", dir);
	snprintf(cert, sizeof(cert), "%s/c.pem", dir);
	snprintf(key, sizeof(key), "%s/k.pem", dir);
	/* only their existence is checked by the loader (TLS checks them) */
	f = fopen(cert, "w");
	if (!f)
		return -1;
	fputs("x", f);
	fclose(f);
	f = fopen(key, "w");
	if (!f)
		return -1;
	fputs("x", f);
	fclose(f);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	unlink(cert);
	unlink(key);
	rmdir(dir);
	return 0;
}

static int load(const char *text, struct aclm_gw_config **out)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return aclm_gw_config_load(path, out);
}

static char *site(const char *names, const char *extra)
{
	static char buf[2048];

	snprintf(buf, sizeof(buf),
	         "listen: [\"127.0.0.1:8443\"]\n"
	         "sites:\n"
	         "  - names: %s\n"
	         "    upstreams: [\"http://127.0.0.1:8080\", \"http://[::1]:81\"]\n"
	         "    certificates:\n"
	         "      - {cert: %s, key: %s}\n"
	         "%s",
	         names, cert, key, extra);
	return buf;
}

static void test_defaults_and_fields(void **state)
{
	struct aclm_gw_config *cfg = NULL;

	(void)state;
	assert_int_equal(load(site("[a.test, \"*.b.test\"]", "    hsts: \"max-age=1\"\n"), &cfg), 0);
	assert_int_equal(cfg->n_listen, 1);
	assert_int_equal(cfg->n_sites, 1);
	assert_int_equal(cfg->sites[0].n_ups, 2);
	assert_string_equal(cfg->sites[0].ups[0].host, "127.0.0.1");
	assert_string_equal(cfg->sites[0].ups[0].port, "8080");
	assert_string_equal(cfg->sites[0].ups[1].host, "::1");
	assert_string_equal(cfg->sites[0].groups, GW_DEFAULT_GROUPS);
	assert_string_equal(cfg->sites[0].groups_classic, "X25519:P-256");
	assert_true(cfg->sites[0].has_pq_group);
	assert_int_equal(cfg->sites[0].pq, GW_PQ_PREFER);
	assert_int_equal(cfg->sites[0].pq_canary_percent, 100);
	assert_true(cfg->sites[0].forwarded);
	assert_string_equal(cfg->sites[0].hsts, "max-age=1");
	assert_true(cfg->to.header == 10 && cfg->to.idle == 60);
	assert_int_equal(cfg->limits.max_header_bytes, 32768);
	aclm_gw_config_unref(cfg);
}

static void test_site_lookup(void **state)
{
	struct aclm_gw_config *cfg = NULL;

	(void)state;
	assert_int_equal(load(site("[A.Test, \"*.b.test\", \"x.b.test\"]", ""), &cfg), 0);
	assert_ptr_equal(gw_config_site(cfg, "a.test"), &cfg->sites[0]);
	assert_ptr_equal(gw_config_site(cfg, "A.TEST."), &cfg->sites[0]);
	assert_ptr_equal(gw_config_site(cfg, "y.b.test"), &cfg->sites[0]);
	assert_ptr_equal(gw_config_site(cfg, "x.b.test"), &cfg->sites[0]);
	/* a wildcard covers exactly one label */
	assert_null(gw_config_site(cfg, "b.test"));
	assert_null(gw_config_site(cfg, "z.y.b.test"));
	assert_null(gw_config_site(cfg, "other.test"));
	assert_null(gw_config_site(cfg, ""));
	assert_null(gw_config_site(cfg, NULL));
	aclm_gw_config_unref(cfg);
}

static void test_pq_settings(void **state)
{
	struct aclm_gw_config *cfg = NULL;

	(void)state;
	assert_int_equal(load(site("[a.test]", "    pq: off\n    groups: \"SecP256r1MLKEM768:P-384\"\n"),
	                      &cfg), 0);
	assert_int_equal(cfg->sites[0].pq, GW_PQ_OFF);
	assert_string_equal(cfg->sites[0].groups_classic, "P-384");
	aclm_gw_config_unref(cfg);
	cfg = NULL;
	assert_int_equal(load(site("[a.test]", "    pq_canary_percent: 25\n"), &cfg), 0);
	assert_int_equal(cfg->sites[0].pq_canary_percent, 25);
	aclm_gw_config_unref(cfg);
	cfg = NULL;
	/* a list with nothing for classical clients */
	assert_int_equal(load(site("[a.test]", "    groups: \"X25519MLKEM768\"\n"), &cfg),
	                 ACLM_ERR_CONFIG);
	assert_non_null(strstr(aclm_errmsg(), "no classical group"));
}

static void expect_error(const char *text, int line, const char *words)
{
	struct aclm_gw_config *cfg = NULL;
	char where[160];

	assert_int_equal(load(text, &cfg), ACLM_ERR_CONFIG);
	assert_null(cfg);
	snprintf(where, sizeof(where), "%s:%d", path, line);
	if (!strstr(aclm_errmsg(), where) || !strstr(aclm_errmsg(), words))
		fail_msg("expected '%s' and '%s' in: %s", where, words, aclm_errmsg());
}

static void test_errors_name_file_and_line(void **state)
{
	char buf[2048];

	(void)state;
	expect_error("listen: [\"127.0.0.1:1\"]\nworkers: many\n", 2, "not a number");
	expect_error("listen: [\"127.0.0.1:1\"]\ntimeouts: {header: -1}\n", 2, "outside");
	expect_error("listen: [\"127.0.0.1:1\"]\ntimeouts: {heder: 1}\n", 2, "unknown field 'heder'");
	expect_error("listen: [\"127.0.0.1:1\"]\ntls: {min_version: \"1.0\"}\n", 2, "1.2 or 1.3");
	expect_error("listen: 5\n", 1, "expected a list");
	expect_error("listen: [\"nohost\"]\n", 1, "not host:port");
	expect_error("- a\n- b\n", 1, "expected a mapping");
	expect_error("listen: [\"127.0.0.1:1\"]\n", 1, "sites");
	expect_error(site("[\"bad name!\"]", ""), 3, "not a host name");
	expect_error(site("[a.test]", "    hsts: 5\n    pq: sometimes\n"), 8, "pq: expected");
	snprintf(buf, sizeof(buf), "%s%s", site("[a.test]", ""),
	         "  - names: [a.test]\n    upstreams: [\"http://127.0.0.1:1\"]\n"
	         "    certificates:\n      - {cert: /etc/hostname, key: /etc/hostname}\n");
	expect_error(buf, 7, "already used by the site at line 3");
	expect_error(site("[a.test]", "    cert_source: acme\n"), 3, "exclude each other");
	expect_error("listen: [\"127.0.0.1:1\"]\nstate_dir: /tmp\nsites:\n  - names: [a.test]\n"
	             "    upstreams: [\"http://127.0.0.1:1\"]\n    cert_source: acme\n"
	             "    acme_key: [ec256, ec384]\n", 7, "one ECDSA and one RSA");
	expect_error("listen: [\"127.0.0.1:1\"]\nsites:\n  - names: [a.test]\n"
	             "    upstreams: [\"http://127.0.0.1:1\"]\n    cert_source: acme\n", 3,
	             "needs state_dir");
	expect_error("listen: [\"127.0.0.1:1\"]\nstate_dir: /tmp\nsites:\n  - names: [\"*.a.test\"]\n"
	             "    upstreams: [\"http://127.0.0.1:1\"]\n    cert_source: acme\n", 4,
	             "wildcard");
	expect_error(site("[a.test]", "    upstreams: [\"http://127.0.0.1:9\"]\n"), 7, "given twice");
	expect_error(site("[a.test]", "    names: [b.test]\n"), 7, "given twice");
	expect_error("listen: [\"127.0.0.1:1\"]\nsites:\n  - names: [a.test]\n"
	             "    upstreams: [\"http://127.0.0.1:99999\"]\n", 4, "bad port");
}

/* cert_source ca: its fields, the files it writes, the mistakes. */
static void test_ca_source(void **state)
{
	struct aclm_gw_config *cfg = NULL;
	const char *head = "listen: [\"127.0.0.1:1\"]\nstate_dir: /tmp/gwst\nsites:\n"
	                   "  - names: [\"*.apps.test\", a.test]\n"
	                   "    upstreams: [\"http://127.0.0.1:1\"]\n    cert_source: ca\n";
	char buf[1024];

	(void)state;
	assert_int_equal(load(head, &cfg), 0);
	assert_int_equal(cfg->sites[0].cert_source, GW_CERT_CA);
	assert_string_equal(cfg->sites[0].ca_name, "");          /* ca.name of aclm.yaml */
	assert_int_equal(cfg->sites[0].ca_line, 4);
	assert_int_equal(cfg->sites[0].n_certs, 1);
	/* a wildcard first name: "_." in the file name */
	assert_string_equal(cfg->sites[0].certs[0].cert, "/tmp/gwst/_.apps.test.crt");
	assert_true(aclm_gw_config_needs_ca(cfg));
	assert_false(aclm_gw_config_needs_acme(cfg));
	aclm_gw_config_unref(cfg);
	cfg = NULL;
	snprintf(buf, sizeof(buf), "%s    ca: corp-2\n    ca_profile: shortlived\n"
	         "    key_type: [rsa2048, ec256]\n", head);
	assert_int_equal(load(buf, &cfg), 0);
	assert_string_equal(cfg->sites[0].ca_name, "corp-2");
	assert_int_equal(cfg->sites[0].ca_line, 7);
	assert_string_equal(cfg->sites[0].ca_profile, "shortlived");
	assert_int_equal(cfg->sites[0].n_certs, 2);
	assert_string_equal(cfg->sites[0].certs[1].key, "/tmp/gwst/_.apps.test.ecdsa.key");
	aclm_gw_config_unref(cfg);
	snprintf(buf, sizeof(buf), "%s    ca: \"bad name!\"\n", head);
	expect_error(buf, 7, "not a CA name");
	snprintf(buf, sizeof(buf), "%s    ca_profile: forever\n", head);
	expect_error(buf, 7, "unknown profile 'forever'");
	snprintf(buf, sizeof(buf), "%s    acme_cas: [le]\n", head);
	expect_error(buf, 4, "go with cert_source acme");
	expect_error(site("[a.test]", "    ca: main\n"), 3, "go with cert_source ca");
	expect_error(site("[a.test]", "    key_type: ec256\n"), 3, "key types go with");
	expect_error(site("[a.test]", "    cert_source: ca\n"), 3, "exclude each other");
	expect_error("listen: [\"127.0.0.1:1\"]\nsites:\n  - names: [a.test]\n"
	             "    upstreams: [\"http://127.0.0.1:1\"]\n    cert_source: ca\n", 3,
	             "needs state_dir");
	expect_error(site("[a.test]", "    cert_source: vault\n"), 7, "files, acme or ca");
}

static void test_hostile_yaml(void **state)
{
	struct aclm_gw_config *cfg = NULL;
	char *big;
	size_t n = 200000;

	(void)state;
	assert_int_equal(load("", &cfg), ACLM_ERR_CONFIG);
	assert_int_equal(load("listen: [\n", &cfg), ACLM_ERR_CONFIG);
	assert_non_null(strstr(aclm_errmsg(), path));
	assert_int_equal(load("a: &x [*x]\n", &cfg), ACLM_ERR_CONFIG);
	assert_int_equal(load("\x01\x02\xff\xfe", &cfg), ACLM_ERR_CONFIG);
	big = malloc(n + 64);
	assert_non_null(big);
	memcpy(big, "listen: [\"", 10);
	memset(big + 10, 'a', n);
	memcpy(big + 10 + n, ":1\"]\n", 6);
	assert_int_equal(load(big, &cfg), ACLM_ERR_CONFIG);
	assert_non_null(strstr(aclm_errmsg(), "longer than"));
	free(big);
	assert_int_equal(aclm_gw_config_load("/nonexistent/gw.yaml", &cfg), ACLM_ERR_IO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_and_fields),
		cmocka_unit_test(test_site_lookup),
		cmocka_unit_test(test_pq_settings),
		cmocka_unit_test(test_errors_name_file_and_line),
		cmocka_unit_test(test_ca_source),
		cmocka_unit_test(test_hostile_yaml),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
