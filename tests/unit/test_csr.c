/* Key generation and CSRs: every key type, the SANs, SM2-with-SM3 with the
 * distinguishing ID (verified by OpenSSL with that ID, refused without it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "aclm/csr.h"
#include "aclm/err.h"

static X509_REQ *parse(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	X509_REQ *r = d2i_X509_REQ(NULL, &p, (long)len);
	assert_non_null(r);
	return r;
}

static void test_parse_names(void **state)
{
	enum aclm_keygen k;
	(void)state;
	assert_int_equal(aclm_keygen_parse("ec256", &k), 0);
	assert_int_equal(k, ACLM_KEYGEN_EC256);
	assert_int_equal(aclm_keygen_parse("p384", &k), 0);
	assert_int_equal(k, ACLM_KEYGEN_EC384);
	assert_int_equal(aclm_keygen_parse("rsa4096", &k), 0);
	assert_string_equal(aclm_keygen_name(ACLM_KEYGEN_SM2), "sm2");
	assert_int_equal(aclm_keygen_parse("dsa", &k), ACLM_ERR_USAGE);
	assert_non_null(strstr(aclm_errmsg(), "dsa"));
}

static void check_kind(enum aclm_keygen kind, const char *want_sig_sn, int want_bits)
{
	static const char *const names[] = { "a.example.test", "*.b.example.test", "192.0.2.7",
	                                     "2001:db8::7" };
	struct aclm_csr_names cn = { names, 4 };
	unsigned char *p8 = NULL, *der = NULL, spki[32];
	size_t p8_len = 0, der_len = 0, n = 0;
	char hex[65];
	X509_REQ *req;
	EVP_PKEY *pk;

	assert_int_equal(aclm_key_generate(kind, &p8, &p8_len), 0);
	assert_int_equal(aclm_key_spki_sha256(p8, p8_len, spki, hex), 0);
	assert_int_equal(strlen(hex), 64);
	assert_int_equal(aclm_csr_build(p8, p8_len, &cn, &der, &der_len), 0);
	assert_int_equal(aclm_csr_verify(der, der_len, &n), 0);
	assert_int_equal(n, 4);
	req = parse(der, der_len);
	pk = X509_REQ_get0_pubkey(req);
	assert_int_equal(EVP_PKEY_get_bits(pk), want_bits);
	assert_string_equal(OBJ_nid2sn(X509_REQ_get_signature_nid(req)), want_sig_sn);
	{
		/* the SPKI hash names the CSR's key */
		unsigned char *pub = NULL, md[32];
		unsigned int md_len = 0;
		int len = i2d_PUBKEY(pk, &pub);
		EVP_Digest(pub, (size_t)len, md, &md_len, EVP_sha256(), NULL);
		assert_memory_equal(md, spki, 32);
		OPENSSL_free(pub);
	}
	{
		/* subject CN is the first DNS name; SANs in order with types */
		X509_NAME *subj = X509_REQ_get_subject_name(req);
		char cnbuf[128];
		STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
		GENERAL_NAMES *g = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
		X509_NAME_get_text_by_NID(subj, NID_commonName, cnbuf, sizeof(cnbuf));
		assert_string_equal(cnbuf, "a.example.test");
		assert_int_equal(sk_GENERAL_NAME_value(g, 0)->type, GEN_DNS);
		assert_int_equal(sk_GENERAL_NAME_value(g, 2)->type, GEN_IPADD);
		assert_int_equal(ASN1_STRING_length(sk_GENERAL_NAME_value(g, 3)->d.iPAddress), 16);
		GENERAL_NAMES_free(g);
		sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	}
	if (kind == ACLM_KEYGEN_SM2) {
		/* without the distinguishing ID the signature must not verify */
		X509_REQ *plain = parse(der, der_len);
		ASN1_OCTET_STRING *id = ASN1_OCTET_STRING_new();
		ASN1_OCTET_STRING_set(id, (const unsigned char *)"0000000000000000", 16);
		X509_REQ_set0_distinguishing_id(plain, id);
		assert_int_not_equal(X509_REQ_verify(plain, X509_REQ_get0_pubkey(plain)), 1);
		X509_REQ_free(plain);
	}
	/* a corrupted signature is refused */
	der[der_len - 3] ^= 0x40;
	assert_int_not_equal(aclm_csr_verify(der, der_len, &n), 0);
	X509_REQ_free(req);
	OPENSSL_clear_free(p8, p8_len);
	free(der);
}

static void test_ec256(void **s) { (void)s; check_kind(ACLM_KEYGEN_EC256, "ecdsa-with-SHA256", 256); }
static void test_ec384(void **s) { (void)s; check_kind(ACLM_KEYGEN_EC384, "ecdsa-with-SHA384", 384); }
static void test_rsa2048(void **s) { (void)s; check_kind(ACLM_KEYGEN_RSA2048, "RSA-SHA256", 2048); }
static void test_rsa3072(void **s) { (void)s; check_kind(ACLM_KEYGEN_RSA3072, "RSA-SHA256", 3072); }
static void test_sm2(void **s) { (void)s; check_kind(ACLM_KEYGEN_SM2, "SM2-SM3", 256); }

static void test_bad_input(void **state)
{
	static const char *const one[] = { "a.example.test" };
	struct aclm_csr_names cn = { one, 1 }, none = { one, 0 };
	unsigned char *der = NULL, *p8 = NULL;
	size_t der_len = 0, p8_len = 0;
	(void)state;
	assert_int_equal(aclm_csr_build((const unsigned char *)"junk", 4, &cn, &der, &der_len),
	                 ACLM_ERR_PARSE);
	assert_int_equal(aclm_key_generate(ACLM_KEYGEN_EC256, &p8, &p8_len), 0);
	assert_int_equal(aclm_csr_build(p8, p8_len, &none, &der, &der_len), ACLM_ERR_USAGE);
	assert_int_equal(aclm_csr_verify((const unsigned char *)"\x30\x03\x02\x01\x00", 5, NULL),
	                 ACLM_ERR_PARSE);
	OPENSSL_clear_free(p8, p8_len);
	assert_true(aclm_is_ip_literal("::1"));
	assert_false(aclm_is_ip_literal("1.2.3"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_names),
		cmocka_unit_test(test_ec256),
		cmocka_unit_test(test_ec384),
		cmocka_unit_test(test_rsa2048),
		cmocka_unit_test(test_rsa3072),
		cmocka_unit_test(test_sm2),
		cmocka_unit_test(test_bad_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
