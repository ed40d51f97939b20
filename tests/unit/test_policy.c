/* Unit tests of src/policy: every rule, the CA/Browser Forum validity
 * schedule at its boundaries, policy documents (YAML and JSON) and their
 * errors.  Rows are fed to the evaluator directly: no store needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aclm/err.h"
#include "aclm/policy.h"
#include "aclm/timeutil.h"

#define DAY 86400
#define NOW 1790000000  /* 2026-09-21 */

static int64_t t(const char *iso)
{
	int64_t v = 0;

	assert_int_equal(aclm_time_parse_iso(iso, &v), ACLM_OK);
	return v;
}

/* A compliant ECDSA P-256 leaf, for tests to spoil one field at a time. */
static struct aclm_cert_row leaf(int64_t id, const char *sans, const char *spki)
{
	struct aclm_cert_row r;

	memset(&r, 0, sizeof(r));
	r.id = id;
	snprintf(r.fingerprint, sizeof(r.fingerprint), "%064lld", (long long)id);
	snprintf(r.spki, sizeof(r.spki), "%s", spki);
	r.subject = "CN=www.example.com";
	r.issuer = "CN=Example Issuing CA,O=Example";
	r.subject_cn = "www.example.com";
	r.issuer_cn = "Example Issuing CA";
	r.serial = "01";
	r.not_before = NOW - 10 * DAY;
	r.not_after = NOW - 10 * DAY + 90 * DAY - 1;
	r.key_type = "ec";
	r.key_bits = 256;
	r.curve = "P-256";
	r.sig_alg = "ecdsa-with-SHA256";
	r.level = "";
	r.sans = sans;
	return r;
}

static struct aclm_policy *parse(const char *text)
{
	struct aclm_policy *p = NULL;
	int rc = aclm_policy_parse(text, strlen(text), "test", &p);

	if (rc != ACLM_OK)
		fail_msg("policy did not parse: %s", aclm_errmsg());
	return p;
}

static struct aclm_policy *builtin(void)
{
	struct aclm_policy *p = NULL;

	assert_int_equal(aclm_policy_builtin(&p), ACLM_OK);
	return p;
}

/* Evaluate rows; res filled. */
static void eval(const struct aclm_policy *p, const struct aclm_cert_row *rows, size_t n,
                 const struct aclm_policy_endpoint_row *eps, size_t n_eps,
                 struct aclm_policy_result *res)
{
	struct aclm_policy_eval *ev = NULL;

	assert_int_equal(aclm_policy_eval_new(p, NOW, &ev), ACLM_OK);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(aclm_policy_eval_cert(ev, &rows[i]), ACLM_OK);
	for (size_t i = 0; i < n_eps; i++)
		assert_int_equal(aclm_policy_eval_endpoint(ev, &eps[i]), ACLM_OK);
	assert_int_equal(aclm_policy_eval_finish(ev, res), ACLM_OK);
}

static const struct aclm_policy_subject *find(const struct aclm_policy_result *res,
                                              enum aclm_subject_kind kind, const char *label)
{
	for (size_t i = 0; i < res->n; i++)
		if (res->subjects[i].kind == kind && strcmp(res->subjects[i].label, label) == 0)
			return &res->subjects[i];
	fail_msg("no subject %s", label);
	return NULL;
}

/* The rules violated by subject i, space-separated. */
static const char *rules_of(const struct aclm_policy_subject *s)
{
	static char out[512];

	out[0] = '\0';
	for (size_t k = 0; k < s->n_v; k++)
		snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%s", k ? " " : "",
		         s->v[k].rule);
	return out;
}

/* One certificate against a policy: its violated rules. */
static const char *one(const struct aclm_policy *p, const struct aclm_cert_row *row)
{
	static char out[512];
	struct aclm_policy_result res;

	eval(p, row, 1, NULL, 0, &res);
	assert_int_equal(res.n, 1);
	snprintf(out, sizeof(out), "%s", rules_of(&res.subjects[0]));
	aclm_policy_result_free(&res);
	return out;
}

/* --- the CA/B schedule ------------------------------------------------------ */

static void test_cabf_schedule(void **state)
{
	(void)state;
	assert_int_equal(aclm_policy_cabf_max_days(t("2020-01-01")), 398);
	assert_int_equal(aclm_policy_cabf_max_days(t("2026-03-14T23:59:59Z")), 398);
	assert_int_equal(aclm_policy_cabf_max_days(t("2026-03-15T00:00:00Z")), 200);
	assert_int_equal(aclm_policy_cabf_max_days(t("2027-03-14T23:59:59Z")), 200);
	assert_int_equal(aclm_policy_cabf_max_days(t("2027-03-15T00:00:00Z")), 100);
	assert_int_equal(aclm_policy_cabf_max_days(t("2029-03-14T23:59:59Z")), 100);
	assert_int_equal(aclm_policy_cabf_max_days(t("2029-03-15T00:00:00Z")), 47);
	assert_int_equal(aclm_policy_cabf_max_days(t("2040-01-01")), 47);
}

static void test_validity_days(void **state)
{
	int64_t nb = t("2026-03-14");

	(void)state;
	/* RFC 5280: notBefore through notAfter inclusive; a day is 86,400 s and
	 * any part of one counts as one (BR 1.6.4 "Validity Period"). */
	assert_int_equal(aclm_policy_validity_days(nb, nb + 398 * DAY - 1), 398);
	assert_int_equal(aclm_policy_validity_days(nb, nb + 398 * DAY), 399);
	assert_int_equal(aclm_policy_validity_days(nb, nb + 397 * DAY), 398);
	assert_int_equal(aclm_policy_validity_days(nb, nb), 1);
	assert_int_equal(aclm_policy_validity_days(nb, nb - 10), 0);
}

static void test_validity_rule_boundaries(void **state)
{
	struct aclm_policy *p = builtin();
	struct aclm_cert_row r = leaf(1, "DNS:www.example.com", "aa");
	static const struct {
		const char *issued;
		int64_t days;
		int extra_seconds;
		bool compliant;
	} cases[] = {
		{ "2026-03-14", 398, 0, true },       /* the issue's example */
		{ "2026-03-14T23:59:59Z", 398, 0, true },
		{ "2026-03-14", 398, 1, false },      /* 398 days and a second */
		{ "2026-03-15", 398, 0, false },
		{ "2026-03-15", 200, 0, true },
		{ "2026-03-15", 200, 1, false },
		{ "2026-03-15", 201, 0, false },
		{ "2027-03-14T23:59:59Z", 200, 0, true },
		{ "2027-03-15", 200, 0, false },
		{ "2027-03-15", 100, 0, true },
		{ "2029-03-14", 100, 0, true },
		{ "2029-03-15", 100, 0, false },
		{ "2029-03-15", 47, 0, true },
		{ "2029-03-15", 48, 0, false },
		{ "2019-01-01", 398, 0, true },
		{ "2019-01-01", 825, 0, false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		r.not_before = t(cases[i].issued);
		/* "N days": notAfter = notBefore + N days - 1 second. */
		r.not_after = r.not_before + cases[i].days * DAY - 1 + cases[i].extra_seconds;
		if (cases[i].compliant)
			assert_string_equal(one(p, &r), "");
		else
			assert_string_equal(one(p, &r), ACLM_RULE_VALIDITY);
	}
	/* A CA certificate is not a TLS server certificate: no validity limit. */
	r.is_ca = true;
	r.not_before = t("2026-03-15");
	r.not_after = r.not_before + 3650 * DAY;
	assert_string_equal(one(p, &r), "");
	aclm_policy_free(p);

	p = parse("name: fixed\nrules:\n  max_validity: 90\n");
	r = leaf(1, "DNS:www.example.com", "aa");
	r.not_after = r.not_before + 90 * DAY - 1;
	assert_string_equal(one(p, &r), "");
	r.not_after++;
	assert_string_equal(one(p, &r), ACLM_RULE_VALIDITY);
	aclm_policy_free(p);
}

/* --- keys and signatures ---------------------------------------------------- */

static void test_key_rules(void **state)
{
	struct aclm_policy *p = builtin();
	struct aclm_cert_row r = leaf(1, "DNS:www.example.com", "aa");

	(void)state;
	assert_string_equal(one(p, &r), "");
	r.curve = "P-384";
	r.key_bits = 384;
	assert_string_equal(one(p, &r), "");
	r.curve = "secp256k1";
	assert_string_equal(one(p, &r), ACLM_RULE_KEY_CURVE);
	r.key_type = "rsa";
	r.curve = NULL;
	r.sig_alg = "sha256WithRSAEncryption";
	r.key_bits = 2048;
	assert_string_equal(one(p, &r), "");
	r.key_bits = 1024;
	assert_string_equal(one(p, &r), ACLM_RULE_KEY_SIZE);
	r.key_type = "sm2";
	r.key_bits = 256;
	r.curve = "SM2";
	r.sig_alg = "SM2-with-SM3";
	assert_string_equal(one(p, &r), "");
	r.key_type = "ed25519";
	r.sig_alg = "ED25519";
	/* not in the baseline: both the key and its signature algorithm */
	assert_string_equal(one(p, &r), ACLM_RULE_KEY_TYPE " " ACLM_RULE_SIGNATURE);
	r.key_type = "dsa";
	r.sig_alg = "dsa_with_SHA256";
	assert_string_equal(one(p, &r), ACLM_RULE_KEY_TYPE " " ACLM_RULE_SIGNATURE);
	aclm_policy_free(p);

	p = parse("{\"name\": \"k\", \"rules\": {\"key_types\": {\"rsa\": {\"min_bits\": 3072}, "
	          "\"ed25519\": true}}}");
	r = leaf(1, "DNS:www.example.com", "aa");
	assert_string_equal(one(p, &r), ACLM_RULE_KEY_TYPE);  /* ec not listed */
	r.key_type = "ed25519";
	assert_string_equal(one(p, &r), "");
	r.key_type = "rsa";
	r.key_bits = 2048;
	assert_string_equal(one(p, &r), ACLM_RULE_KEY_SIZE);
	r.key_bits = 4096;
	assert_string_equal(one(p, &r), "");
	aclm_policy_free(p);
}

static void test_signature_rule(void **state)
{
	struct aclm_policy *p = builtin();
	struct aclm_cert_row r = leaf(1, "DNS:www.example.com", "aa");

	(void)state;
	r.key_type = "rsa";
	r.key_bits = 2048;
	r.curve = NULL;
	r.sig_alg = "sha1WithRSAEncryption";
	assert_string_equal(one(p, &r), ACLM_RULE_SIGNATURE);
	r.sig_alg = "md5WithRSAEncryption";
	assert_string_equal(one(p, &r), ACLM_RULE_SIGNATURE);
	r.sig_alg = "sha384WithRSAEncryption";
	assert_string_equal(one(p, &r), "");
	/* an intermediate signed with SHA-1 is flagged, a root's self-signature not */
	r.is_ca = true;
	r.sig_alg = "sha1WithRSAEncryption";
	r.subject = "CN=Old Root";
	r.issuer = "CN=Inter";
	assert_string_equal(one(p, &r), ACLM_RULE_SIGNATURE);
	r.issuer = "CN=Old Root";
	assert_string_equal(one(p, &r), "");
	aclm_policy_free(p);
}

/* --- issuers, names, wildcards ------------------------------------------------- */

static void test_issuer_rule(void **state)
{
	struct aclm_policy *p = parse("name: i\nrules:\n  issuers: ['Example Issuing CA', "
	                              "'*O=Partner*']\n");
	struct aclm_cert_row r = leaf(1, "DNS:www.example.com", "aa");

	(void)state;
	assert_string_equal(one(p, &r), "");
	r.issuer_cn = "EXAMPLE ISSUING CA";   /* case-insensitive */
	assert_string_equal(one(p, &r), "");
	r.issuer_cn = "Rogue CA";
	r.issuer = "CN=Rogue CA,O=Rogue";
	assert_string_equal(one(p, &r), ACLM_RULE_ISSUER);
	r.issuer = "CN=Other,O=Partner Ltd";  /* by the DN */
	assert_string_equal(one(p, &r), "");
	aclm_policy_free(p);
}

static void test_san_rule(void **state)
{
	struct aclm_policy *p = parse("name: s\nrules:\n  san_patterns:\n    - '*.example.com'\n"
	                              "    - example.com\n    - 10.0.0.0/8\n    - 2001:db8::/32\n");
	struct aclm_cert_row r = leaf(1, "DNS:www.example.com,DNS:example.com,IP:10.1.2.3", "aa");

	(void)state;
	assert_string_equal(one(p, &r), "");
	r.sans = "DNS:a.b.example.com,IP:2001:db8::1";
	assert_string_equal(one(p, &r), "");
	r.sans = "DNS:www.example.com,DNS:www.example.org";
	assert_string_equal(one(p, &r), ACLM_RULE_SAN);
	r.sans = "IP:192.168.1.1";
	assert_string_equal(one(p, &r), ACLM_RULE_SAN);
	r.sans = "DNS:example.com.evil.net";
	assert_string_equal(one(p, &r), ACLM_RULE_SAN);
	/* no SAN: the CN is the name */
	r.sans = "";
	r.subject_cn = "intranet.local";
	assert_string_equal(one(p, &r), ACLM_RULE_SAN);
	r.subject_cn = "app.example.com";
	assert_string_equal(one(p, &r), "");
	aclm_policy_free(p);
}

static void test_wildcard_rule(void **state)
{
	struct aclm_policy *p = builtin();
	struct aclm_cert_row r = leaf(1, "DNS:*.example.com", "aa");

	(void)state;
	assert_string_equal(one(p, &r), "");
	r.sans = "DNS:*.*.example.com";
	assert_string_equal(one(p, &r), ACLM_RULE_WILDCARD);
	r.sans = "DNS:w*.example.com";
	assert_string_equal(one(p, &r), ACLM_RULE_WILDCARD);
	r.sans = "DNS:*.com";
	assert_string_equal(one(p, &r), ACLM_RULE_WILDCARD);
	aclm_policy_free(p);

	p = parse("name: w\nrules:\n  wildcards: deny\n");
	r.sans = "DNS:*.example.com";
	assert_string_equal(one(p, &r), ACLM_RULE_WILDCARD);
	r.sans = "DNS:www.example.com";
	assert_string_equal(one(p, &r), "");
	aclm_policy_free(p);

	p = parse("name: w\nrules:\n  wildcards: ['*.dev.example.com']\n");
	r.sans = "DNS:*.dev.example.com";
	assert_string_equal(one(p, &r), "");
	r.sans = "DNS:*.prod.example.com";
	assert_string_equal(one(p, &r), ACLM_RULE_WILDCARD);
	aclm_policy_free(p);
}

/* --- rules across rows ------------------------------------------------------------ */

static void test_one_site_one_key(void **state)
{
	struct aclm_policy *p = builtin();
	struct aclm_cert_row rows[4];
	struct aclm_policy_endpoint_row eps[2] = {
		{ .id = 7, .host = "shop.example.com", .ip = "192.0.2.7", .sni = "shop.example.com",
		  .port = 443, .scanned = true, .reachable = true, .pq_groups = "none",
		  .negotiated_group = "X25519", .leaf_cert_id = 3, .leaf_spki = "bb",
		  .leaf_sans = "DNS:shop.example.com" },
		{ .id = 8, .host = "www.example.com", .ip = "192.0.2.8", .sni = "", .port = 443,
		  .scanned = true, .reachable = true, .pq_groups = "", .negotiated_group = "",
		  .leaf_cert_id = 1, .leaf_spki = "aa", .leaf_sans = "DNS:www.example.com" },
	};
	struct aclm_policy_result res;

	(void)state;
	/* 1 and 2: a renewal with the same key and names (fine, names in another
	 * order); 3: the key of 4 for other names (both flagged). */
	rows[0] = leaf(1, "DNS:www.example.com,DNS:example.com", "aa");
	rows[1] = leaf(2, "DNS:example.com,DNS:WWW.example.com", "aa");
	rows[2] = leaf(3, "DNS:shop.example.com", "bb");
	rows[2].subject_cn = "shop.example.com";
	rows[3] = leaf(4, "DNS:mail.example.com", "bb");
	rows[3].subject_cn = "mail.example.com";
	eval(p, rows, 4, eps, 2, &res);
	assert_string_equal(rules_of(&res.subjects[0]), "");
	assert_string_equal(rules_of(&res.subjects[1]), "");
	assert_string_equal(rules_of(&res.subjects[2]), ACLM_RULE_KEY_REUSE);
	assert_string_equal(rules_of(&res.subjects[3]), ACLM_RULE_KEY_REUSE);
	assert_non_null(strstr(res.subjects[2].v[0].detail, "mail.example.com"));
	assert_string_equal(rules_of(find(&res, ACLM_SUBJECT_ENDPOINT, "shop.example.com:443")),
	                    ACLM_RULE_KEY_REUSE);
	assert_string_equal(rules_of(find(&res, ACLM_SUBJECT_ENDPOINT, "www.example.com:443")), "");
	assert_int_equal(res.n_total[ACLM_SUBJECT_CERT], 4);
	assert_int_equal(res.n_violating[ACLM_SUBJECT_CERT], 2);
	assert_int_equal(res.n_violating[ACLM_SUBJECT_ENDPOINT], 1);
	assert_int_equal(res.by_rule[8], 3);
	assert_string_equal(res.rule_names[8], ACLM_RULE_KEY_REUSE);
	aclm_policy_result_free(&res);
	aclm_policy_free(p);
}

static void test_dual_certificates(void **state)
{
	struct aclm_policy *p = parse(
		"name: d\nrules:\n  dual_certificates:\n"
		"    - www.example.com\n"
		"    - site: gov.example.cn\n      pairs: [[sm2, ec]]\n"
		"    - site: api.example.com\n");
	struct aclm_cert_row rows[6];
	struct aclm_policy_result res;

	(void)state;
	rows[0] = leaf(1, "DNS:www.example.com", "a1");                  /* ec */
	rows[1] = leaf(2, "DNS:*.example.com", "a2");                    /* rsa, by wildcard */
	rows[1].key_type = "rsa";
	rows[1].key_bits = 2048;
	rows[2] = leaf(3, "DNS:gov.example.cn", "a3");                   /* ec */
	rows[3] = leaf(4, "DNS:gov.example.cn", "a4");                   /* rsa: not the pair */
	rows[3].key_type = "rsa";
	rows[4] = leaf(5, "DNS:api.example.com", "a5");                  /* sm2, expired */
	rows[4].key_type = "sm2";
	rows[4].not_after = NOW - 1;
	rows[5] = leaf(6, "DNS:other.example.org", "a6");
	rows[5].key_type = "sm2";
	eval(p, rows, 6, NULL, 0, &res);
	assert_string_equal(rules_of(find(&res, ACLM_SUBJECT_SITE, "www.example.com")), "");
	assert_string_equal(rules_of(find(&res, ACLM_SUBJECT_SITE, "gov.example.cn")),
	                    ACLM_RULE_DUAL);
	assert_non_null(strstr(find(&res, ACLM_SUBJECT_SITE, "gov.example.cn")->v[0].detail,
	                       "needs sm2 + ec"));
	/* api: the wildcard RSA covers it, the only SM2 one is expired, the EC one
	 * of www does not cover it */
	assert_string_equal(rules_of(find(&res, ACLM_SUBJECT_SITE, "api.example.com")),
	                    ACLM_RULE_DUAL);
	assert_int_equal(res.n_total[ACLM_SUBJECT_SITE], 3);
	assert_int_equal(res.n_violating[ACLM_SUBJECT_SITE], 2);
	aclm_policy_result_free(&res);
	aclm_policy_free(p);
}

static void test_pq_key_exchange(void **state)
{
	struct aclm_policy *p = parse(
		"name: pq\nrules:\n  pq_key_exchange:\n"
		"    - endpoint: '*.example.com:443'\n"
		"    - endpoint: 10.0.0.5\n      groups: [curveSM2MLKEM768]\n"
		"    - endpoint: vpn.example.net\n");
	struct aclm_policy_endpoint_row eps[] = {
		{ .id = 1, .host = "a.example.com", .ip = "192.0.2.1", .sni = "a.example.com",
		  .port = 443, .scanned = true, .reachable = true,
		  .pq_groups = "X25519MLKEM768,SecP256r1MLKEM768", .negotiated_group = "X25519MLKEM768",
		  .leaf_spki = "", .leaf_sans = "" },
		{ .id = 2, .host = "b.example.com", .ip = "192.0.2.2", .sni = "", .port = 443,
		  .scanned = true, .reachable = true, .pq_groups = "none", .negotiated_group = "X25519",
		  .leaf_spki = "", .leaf_sans = "" },
		{ .id = 3, .host = "c.example.com", .ip = "192.0.2.3", .sni = "", .port = 443,
		  .scanned = false, .pq_groups = "", .negotiated_group = "", .leaf_spki = "",
		  .leaf_sans = "" },
		{ .id = 4, .host = "", .ip = "10.0.0.5", .sni = "", .port = 8443, .scanned = true,
		  .reachable = true, .pq_groups = "X25519MLKEM768", .negotiated_group = "",
		  .leaf_spki = "", .leaf_sans = "" },
		{ .id = 5, .host = "d.example.com", .ip = "192.0.2.4", .sni = "", .port = 8443,
		  .scanned = true, .reachable = true, .pq_groups = "none", .negotiated_group = "",
		  .leaf_spki = "", .leaf_sans = "" },
		{ .id = 6, .host = "e.example.com", .ip = "192.0.2.5", .sni = "", .port = 443,
		  .scanned = true, .reachable = false, .pq_groups = "", .negotiated_group = "",
		  .leaf_spki = "", .leaf_sans = "" },
	};
	struct aclm_policy_result res;

	(void)state;
	eval(p, NULL, 0, eps, sizeof(eps) / sizeof(eps[0]), &res);
	assert_string_equal(rules_of(find(&res, ACLM_SUBJECT_ENDPOINT, "a.example.com:443")), "");
	assert_string_equal(rules_of(find(&res, ACLM_SUBJECT_ENDPOINT, "b.example.com:443")),
	                    ACLM_RULE_PQ);
	assert_non_null(strstr(find(&res, ACLM_SUBJECT_ENDPOINT, "b.example.com:443")->v[0].detail,
	                       "accepts none of X25519MLKEM768, curveSM2MLKEM768"));
	assert_non_null(strstr(find(&res, ACLM_SUBJECT_ENDPOINT, "c.example.com:443")->v[0].detail,
	                       "never scanned"));
	assert_non_null(strstr(find(&res, ACLM_SUBJECT_ENDPOINT, "e.example.com:443")->v[0].detail,
	                       "not reachable"));
	/* 10.0.0.5 wants curveSM2MLKEM768 only */
	assert_string_equal(rules_of(find(&res, ACLM_SUBJECT_ENDPOINT, "10.0.0.5:8443")),
	                    ACLM_RULE_PQ);
	/* port 8443 is not named by *.example.com:443 */
	assert_string_equal(rules_of(find(&res, ACLM_SUBJECT_ENDPOINT, "d.example.com:8443")), "");
	/* a named endpoint missing from the inventory */
	assert_string_equal(rules_of(find(&res, ACLM_SUBJECT_SITE, "vpn.example.net")),
	                    ACLM_RULE_PQ);
	assert_int_equal(res.n_violating[ACLM_SUBJECT_ENDPOINT], 4);
	aclm_policy_result_free(&res);
	aclm_policy_free(p);
}

static void test_result_json(void **state)
{
	struct aclm_policy *p = builtin();
	struct aclm_cert_row rows[2];
	struct aclm_policy_result res;
	json_t *j, *items;

	(void)state;
	rows[0] = leaf(1, "DNS:www.example.com", "aa");
	rows[1] = leaf(2, "DNS:old.example.com", "bb");
	rows[1].sig_alg = "ecdsa-with-SHA1";
	eval(p, rows, 2, NULL, 0, &res);
	j = aclm_policy_result_json(&res, true, 0, 0);
	assert_string_equal(json_string_value(json_object_get(j, "policy")), "cabf-baseline");
	items = json_object_get(j, "items");
	assert_int_equal(json_array_size(items), 1);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(items, 0), "id")), 2);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(json_object_get(j,
	                 "summary"), "certificates"), "compliant")), 1);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(json_object_get(j,
	                 "summary"), "by_rule"), ACLM_RULE_SIGNATURE)), 1);
	json_decref(j);
	j = aclm_policy_result_json(&res, false, 1, 1);
	assert_int_equal(json_array_size(json_object_get(j, "items")), 1);
	assert_int_equal(json_integer_value(json_object_get(j, "total_items")), 2);
	json_decref(j);
	aclm_policy_result_free(&res);
	aclm_policy_free(p);
}

/* --- documents ---------------------------------------------------------------------- */

static void test_documents(void **state)
{
	static const char yaml[] =
		"# a full policy\n"
		"name: corp-tls\n"
		"description: \"Corp: public sites\"\n"
		"rules:\n"
		"  key_types:\n"
		"    rsa: {min_bits: 3072}\n"
		"    ec:\n"
		"      curves: [P-256]\n"
		"    sm2: {}\n"
		"  signature_algorithms: [sha256WithRSAEncryption, ecdsa-with-SHA256]\n"
		"  max_validity: cabf\n"
		"  issuers: ['*Corp*']\n"
		"  san_patterns: ['*.corp.example']\n"
		"  wildcards: deny\n"
		"  one_site_one_key: true\n"
		"  dual_certificates: [{site: www.corp.example, pairs: [[ecdsa, rsa]]}]\n"
		"  pq_key_exchange: [{endpoint: 'www.corp.example:443', groups: [X25519MLKEM768]}]\n";
	struct aclm_policy *p = parse(yaml), *q = NULL;
	json_t *doc = aclm_policy_json(p), *again;
	char *text;

	(void)state;
	assert_string_equal(aclm_policy_name(p), "corp-tls");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(json_object_get(
	                 json_object_get(doc, "rules"), "key_types"), "rsa"), "min_bits")), 3072);
	assert_string_equal(json_string_value(json_array_get(json_array_get(json_object_get(
	                    json_array_get(json_object_get(json_object_get(doc, "rules"),
	                    "dual_certificates"), 0), "pairs"), 0), 0)), "ec");
	/* the normalised form parses to the same normalised form */
	text = json_dumps(doc, JSON_COMPACT);
	assert_int_equal(aclm_policy_parse(text, strlen(text), "again", &q), ACLM_OK);
	again = aclm_policy_json(q);
	assert_true(json_equal(doc, again));
	free(text);
	json_decref(doc);
	json_decref(again);
	aclm_policy_free(p);
	aclm_policy_free(q);
}

static void bad_doc(const char *text, const char *want)
{
	struct aclm_policy *p = NULL;
	int rc = aclm_policy_parse(text, strlen(text), "f.yaml", &p);

	assert_int_not_equal(rc, ACLM_OK);
	assert_null(p);
	if (strstr(aclm_errmsg(), want) == NULL)
		fail_msg("error '%s' does not say '%s'", aclm_errmsg(), want);
}

static void test_bad_documents(void **state)
{
	char big[4096];

	(void)state;
	bad_doc("", "empty");
	bad_doc("name: x\nrules:\n  key_size: 1\n", "rules.key_size: unknown rule");
	bad_doc("name: x\nrules:\n  key_types: {rsa: {min_bits: 100}}\n",
	        "rules.key_types.rsa.min_bits");
	bad_doc("name: x\nrules:\n  key_types: {rsa: {curves: [P-256]}}\n", "min_bits");
	bad_doc("name: x\nrules:\n  key_types: {quantum: {}}\n", "rules.key_types.quantum");
	bad_doc("name: x\nrules:\n  signature_algorithms: [sha1WithRSAEncryption]\n", "SHA-1");
	bad_doc("name: x\nrules:\n  max_validity: forever\n", "rules.max_validity");
	bad_doc("name: x\nrules:\n  wildcards: maybe\n", "rules.wildcards");
	bad_doc("name: x\nrules:\n  dual_certificates: [{site: a.example, pairs: [[rsa, rsa]]}]\n",
	        "dual_certificates[0].pairs");
	bad_doc("name: x\nrules:\n  dual_certificates: ['*.example.com']\n", "no wildcard");
	bad_doc("name: x\nrules:\n  pq_key_exchange: [{endpoint: a, groups: []}]\n",
	        "pq_key_exchange[0].groups");
	bad_doc("name: 'bad name'\n", "name: want");
	bad_doc("name: cabf-baseline\n", "built-in");
	bad_doc("rules: {}\n", "name");
	bad_doc("name: x\nname: y\n", "duplicate key 'name'");
	bad_doc("name: &a x\nrules: *a\n", "aliases");
	bad_doc("name: x\nrules: [\n", "line");
	bad_doc("name: x\n---\nname: y\n", "one policy per file");
	bad_doc("{\"name\": \"x\", \"name\": \"y\"}", "line 1");
	bad_doc("name: x\nextra: 1\n", "unknown key");
	/* deep nesting stops at the limit, not the stack */
	memset(big, '[', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	bad_doc(big, "nested too deep");
	{
		static const char bin[] = "name: x\0garbage";
		struct aclm_policy *p = NULL;
		assert_int_equal(aclm_policy_parse(bin, sizeof(bin) - 1, "b", &p), ACLM_ERR_PARSE);
	}
}

static void test_report_names(void **state)
{
	enum aclm_report_kind k;
	enum aclm_report_format f;

	(void)state;
	assert_int_equal(aclm_report_kind_parse("pq-readiness", &k), ACLM_OK);
	assert_int_equal(k, ACLM_REPORT_PQ_READINESS);
	assert_string_equal(aclm_report_kind_name(ACLM_REPORT_EXPIRY), "expiry");
	assert_int_not_equal(aclm_report_kind_parse("nope", &k), ACLM_OK);
	assert_int_equal(aclm_report_format_parse("html", &f), ACLM_OK);
	assert_int_equal(f, ACLM_REPORT_HTML);
	assert_int_not_equal(aclm_report_format_parse("pdf", &f), ACLM_OK);
	assert_non_null(strstr(aclm_report_content_type(ACLM_REPORT_CSV), "text/csv"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cabf_schedule),
		cmocka_unit_test(test_validity_days),
		cmocka_unit_test(test_validity_rule_boundaries),
		cmocka_unit_test(test_key_rules),
		cmocka_unit_test(test_signature_rule),
		cmocka_unit_test(test_issuer_rule),
		cmocka_unit_test(test_san_rule),
		cmocka_unit_test(test_wildcard_rule),
		cmocka_unit_test(test_one_site_one_key),
		cmocka_unit_test(test_dual_certificates),
		cmocka_unit_test(test_pq_key_exchange),
		cmocka_unit_test(test_result_json),
		cmocka_unit_test(test_documents),
		cmocka_unit_test(test_bad_documents),
		cmocka_unit_test(test_report_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
