/* The built-in CA: profiles, identifier policy, reasons, and one CA (made
 * once for the whole program) issuing for each key type, CRL and OCSP. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/crypto.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "aclm/ca.h"
#include "aclm/csr.h"
#include "aclm/err.h"
#include "aclm/keywrap.h"
#include "aclm/store.h"
#include "aclm/store_ca.h"
#include "../../src/ca/ca-int.h"

static struct aclm_store *st;
static struct aclm_kek kek;
static char dir[64];

static int group_setup(void **state)
{
	char url[128];
	int n = 0;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/aclm-ca-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(url, sizeof(url), "sqlite:%s/a.db", dir);
	if (aclm_store_open(url, NULL, &st) != ACLM_OK)
		return -1;
	if (aclm_kek_load("4242424242424242424242424242424242424242424242424242424242424242", NULL,
	                  false, &kek) != ACLM_OK)
		return -1;
	if (aclm_ca_init(st, &kek, "unit", &n) != ACLM_OK || n != 3) {
		fprintf(stderr, "init: %s\n", aclm_errmsg());
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	char path[160];

	(void)state;
	aclm_store_close(st);
	snprintf(path, sizeof(path), "%s/a.db", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/a.db-wal", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/a.db-shm", dir);
	unlink(path);
	rmdir(dir);
	return 0;
}

static void test_profiles(void **state)
{
	const struct aclm_ca_profile *p;

	(void)state;
	p = aclm_ca_profile_find(NULL);
	assert_non_null(p);
	assert_string_equal(p->name, "default");
	assert_int_equal(p->validity, 90 * 86400);
	assert_int_equal(aclm_ca_profile_find("shortlived")->validity, 7 * 86400);
	assert_int_equal(aclm_ca_profile_find("intranet")->validity, 47 * 86400);
	assert_null(aclm_ca_profile_find("forever"));
}

static void test_policy(void **state)
{
	const char *suffixes[] = { "corp.internal", ".lab" };
	const char *ranges[] = { "10.1.0.0/16", "2001:db8::/32" };
	struct aclm_ca_policy any = { 0 };
	struct aclm_ca_policy pol = { suffixes, 2, ranges, 2 };

	(void)state;
	assert_int_equal(aclm_ca_policy_check(&any, "dns", "www.example.com"), ACLM_OK);
	assert_int_equal(aclm_ca_policy_check(&any, "ip", "10.9.9.9"), ACLM_OK);
	assert_int_equal(aclm_ca_policy_check(&any, "ip", "172.31.255.255"), ACLM_OK);
	assert_int_equal(aclm_ca_policy_check(&any, "ip", "172.32.0.1"), ACLM_ERR_USAGE);
	assert_int_equal(aclm_ca_policy_check(&any, "ip", "8.8.8.8"), ACLM_ERR_USAGE);
	assert_int_equal(aclm_ca_policy_check(&any, "ip", "::1"), ACLM_OK);
	assert_int_equal(aclm_ca_policy_check(&any, "ip", "2001:db8::1"), ACLM_ERR_USAGE);
	assert_int_equal(aclm_ca_policy_check(&pol, "dns", "corp.internal"), ACLM_OK);
	assert_int_equal(aclm_ca_policy_check(&pol, "dns", "a.b.CORP.internal"), ACLM_OK);
	assert_int_equal(aclm_ca_policy_check(&pol, "dns", "*.corp.internal"), ACLM_OK);
	assert_int_equal(aclm_ca_policy_check(&pol, "dns", "evilcorp.internal"), ACLM_ERR_USAGE);
	assert_int_equal(aclm_ca_policy_check(&pol, "dns", "x.lab"), ACLM_OK);
	assert_int_equal(aclm_ca_policy_check(&pol, "ip", "10.1.200.3"), ACLM_OK);
	assert_int_equal(aclm_ca_policy_check(&pol, "ip", "10.2.0.1"), ACLM_ERR_USAGE);
	assert_int_equal(aclm_ca_policy_check(&pol, "ip", "2001:db8:ffff::1"), ACLM_OK);
	assert_int_equal(aclm_ca_policy_check(&pol, "ip", "2001:db9::1"), ACLM_ERR_USAGE);
}

static void test_reasons(void **state)
{
	int r = -1;

	(void)state;
	assert_int_equal(aclm_ca_reason_parse("keyCompromise", &r), ACLM_OK);
	assert_int_equal(r, 1);
	assert_int_equal(aclm_ca_reason_parse("9", &r), ACLM_OK);
	assert_string_equal(aclm_ca_reason_name(r), "privilegeWithdrawn");
	assert_int_equal(aclm_ca_reason_parse("7", &r), ACLM_ERR_USAGE);
	assert_int_equal(aclm_ca_reason_parse("removeFromCRL", &r), ACLM_ERR_USAGE);
	assert_int_equal(aclm_ca_reason_parse("", &r), ACLM_ERR_USAGE);
}

static void issue_one(enum aclm_keygen kind, enum aclm_ca_algo want, const char *sig)
{
	const char *names[] = { "host.corp.internal", "10.0.0.7" };
	struct aclm_csr_names cn = { names, 2 };
	struct aclm_ca_issue_req req;
	struct aclm_ca_issue_res res;
	unsigned char *pkcs8 = NULL, *csr = NULL;
	size_t pkcs8_len = 0, csr_len = 0;
	const char *expect[] = { "dns:host.corp.internal", "ip:10.0.0.7" };
	const char *wrong[] = { "dns:host.corp.internal" };
	BIO *b;
	X509 *x;
	char buf[64];

	assert_int_equal(aclm_key_generate(kind, &pkcs8, &pkcs8_len), ACLM_OK);
	assert_int_equal(aclm_csr_build(pkcs8, pkcs8_len, &cn, &csr, &csr_len), ACLM_OK);
	memset(&req, 0, sizeof(req));
	req.ca = "unit";
	req.csr = csr;
	req.csr_len = csr_len;
	req.base_url = "https://ca.test:8443";
	req.expect = wrong;
	req.n_expect = 1;
	assert_int_equal(aclm_ca_issue(st, &kek, &req, &res), ACLM_ERR_PARSE);
	assert_string_equal(res.problem, "badCSR");
	req.expect = expect;
	req.n_expect = 2;
	assert_int_equal(aclm_ca_issue(st, &kek, &req, &res), ACLM_OK);
	assert_null(res.problem);
	assert_int_equal(res.algo, want);
	b = BIO_new_mem_buf(res.chain_pem, (int)res.chain_pem_len);
	x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	assert_non_null(x);
	OBJ_obj2txt(buf, sizeof(buf), X509_get0_tbs_sigalg(x)->algorithm, 0);
	assert_string_equal(buf, sig);
	X509_free(x);
	BIO_free(b);
	aclm_ca_issue_res_free(&res);
	/* Tampered: one bit of the signature. */
	csr[csr_len - 3] ^= 1;
	assert_int_not_equal(aclm_ca_issue(st, &kek, &req, &res), ACLM_OK);
	assert_string_equal(res.problem, "badCSR");
	OPENSSL_clear_free(pkcs8, pkcs8_len);
	free(csr);
}

static void test_issue_each_key_type(void **state)
{
	(void)state;
	issue_one(ACLM_KEYGEN_EC256, ACLM_CA_ECDSA, "ecdsa-with-SHA256");
	issue_one(ACLM_KEYGEN_EC384, ACLM_CA_ECDSA, "ecdsa-with-SHA256");
	issue_one(ACLM_KEYGEN_RSA2048, ACLM_CA_RSA, "sha256WithRSAEncryption");
	issue_one(ACLM_KEYGEN_SM2, ACLM_CA_SM2, "SM2-with-SM3");
}

static void test_ocsp_malformed_and_unknown(void **state)
{
	const unsigned char junk[] = { 0x30, 0x03, 0x02, 0x01, 0x00 };
	unsigned char *resp = NULL;
	const unsigned char *p;
	size_t len = 0;
	OCSP_RESPONSE *r;

	(void)state;
	assert_int_equal(aclm_ca_ocsp_respond(st, &kek, "unit", junk, sizeof(junk), &resp, &len),
	                 ACLM_OK);
	p = resp;
	r = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
	assert_non_null(r);
	assert_int_equal(OCSP_response_status(r), OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
	OCSP_RESPONSE_free(r);
	free(resp);
	assert_int_equal(aclm_ca_ocsp_respond(st, &kek, "unit", junk, 0, &resp, &len), ACLM_OK);
	free(resp);
}

static void test_crl_numbers_grow(void **state)
{
	unsigned char *der = NULL;
	size_t len = 0;
	const unsigned char *p;
	X509_CRL *c;
	ASN1_INTEGER *n1, *n2;

	(void)state;
	assert_int_equal(aclm_ca_crl(st, &kek, "unit", ACLM_CA_SM2, &der, &len), ACLM_OK);
	p = der;
	c = d2i_X509_CRL(NULL, &p, (long)len);
	assert_non_null(c);
	n1 = X509_CRL_get_ext_d2i(c, NID_crl_number, NULL, NULL);
	X509_CRL_free(c);
	free(der);
	assert_int_equal(aclm_ca_crl(st, &kek, "unit", ACLM_CA_SM2, &der, &len), ACLM_OK);
	p = der;
	c = d2i_X509_CRL(NULL, &p, (long)len);
	n2 = X509_CRL_get_ext_d2i(c, NID_crl_number, NULL, NULL);
	assert_int_equal(ASN1_INTEGER_get(n2), ASN1_INTEGER_get(n1) + 1);
	ASN1_INTEGER_free(n1);
	ASN1_INTEGER_free(n2);
	X509_CRL_free(c);
	free(der);
	assert_int_equal(aclm_ca_crl(st, &kek, "nope", ACLM_CA_SM2, &der, &len), ACLM_ERR_NOTFOUND);
}

/* The seeds of the JWS fuzz driver are real JWS made by python3-cryptography:
 * each allowed algorithm verifies, and one flipped signature bit does not. */
static void test_jws_algorithms(void **state)
{
	const char *files[] = { "es256-new-account.json", "es384.json", "rs256.json", "eddsa.json",
	                        "key-change.json" };
	const char *root = getenv("ACLM_SOURCE_ROOT");

	(void)state;
	if (root == NULL)
		skip();
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char path[512];
		unsigned char buf[16384];
		struct ca_jws j;
		EVP_PKEY *pk = NULL;
		char thumb[64];
		FILE *f;
		size_t n;
		snprintf(path, sizeof(path), "%s/tests/fuzz/corpus/acme_jws/%s", root, files[i]);
		f = fopen(path, "rb");
		assert_non_null(f);
		n = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		assert_int_equal(ca_jws_parse(buf, n, &j), ACLM_OK);
		assert_true(ca_jws_alg_allowed(j.alg));
		assert_int_equal(ca_jwk_to_pkey(j.jwk != NULL ? j.jwk : NULL, &pk), j.jwk ? ACLM_OK
		                                                                         : ACLM_ERR_PARSE);
		if (pk == NULL) {
			ca_jws_free(&j);
			continue;
		}
		assert_int_equal(ca_jwk_thumbprint(j.jwk, thumb), ACLM_OK);
		assert_int_equal(strlen(thumb), 43);
		assert_int_equal(ca_jws_verify_sig(j.alg, pk, (unsigned char *)j.signing_input,
		                                   j.signing_input_len, j.sig, j.sig_len), ACLM_OK);
		j.sig[j.sig_len / 2] ^= 0x10;
		assert_int_not_equal(ca_jws_verify_sig(j.alg, pk, (unsigned char *)j.signing_input,
		                                       j.signing_input_len, j.sig, j.sig_len), ACLM_OK);
		/* ES256 with a P-384 key and the like: refused. */
		assert_int_not_equal(ca_jws_verify_sig(strcmp(j.alg, "ES256") == 0 ? "ES384" : "ES256",
		                                       pk, (unsigned char *)j.signing_input,
		                                       j.signing_input_len, j.sig, j.sig_len), ACLM_OK);
		EVP_PKEY_free(pk);
		ca_jws_free(&j);
	}
}

static void test_b64url(void **state)
{
	unsigned char *out = NULL;
	size_t n = 0;
	char enc[16];

	(void)state;
	assert_int_equal(ca_b64url_decode("AQID", 4, &out, &n), ACLM_OK);
	assert_int_equal(n, 3);
	ca_b64url_encode(out, n, enc, sizeof(enc));
	assert_string_equal(enc, "AQID");
	free(out);
	assert_int_equal(ca_b64url_decode("AQ==", 4, &out, &n), ACLM_ERR_PARSE);
	assert_int_equal(ca_b64url_decode("A+/B", 4, &out, &n), ACLM_ERR_PARSE);
	assert_int_equal(ca_b64url_decode("AR", 2, &out, &n), ACLM_ERR_PARSE);  /* trailing bits */
	assert_int_equal(ca_b64url_decode("A", 1, &out, &n), ACLM_ERR_PARSE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_profiles),
		cmocka_unit_test(test_policy),
		cmocka_unit_test(test_reasons),
		cmocka_unit_test(test_issue_each_key_type),
		cmocka_unit_test(test_ocsp_malformed_and_unknown),
		cmocka_unit_test(test_crl_numbers_grow),
		cmocka_unit_test(test_jws_algorithms),
		cmocka_unit_test(test_b64url),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
