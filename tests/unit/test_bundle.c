/* Unit tests of src/crypto/bundle.c: PEM (several blocks, foreign blocks,
 * truncation, bad base64, trust settings, encrypted keys), DER, PKCS#7,
 * PKCS#12 (passwords right, wrong, empty, legacy RC2), key/cert SPKI
 * matching for every key type, the limits and the output helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/pkcs7.h>
#include <openssl/provider.h>
#include <openssl/x509.h>

#include "aclm/bundle.h"
#include "aclm/err.h"
#include "aclm/str.h"
#include "testcert.h"

static EVP_PKEY *ca_key, *leaf_key;
static X509 *ca, *leaf;
static char *ca_pem, *leaf_pem;

static int setup(void **state)
{
	struct tc_opts co = {
		.subject = "/O=aclm test/CN=Bundle Test CA",
		.bc = "critical,CA:TRUE",
		.ku = "critical,keyCertSign,cRLSign",
		.ski = true,
	};
	struct tc_opts lo = {
		.subject = "/CN=www.example.test",
		.san = "DNS:www.example.test",
		.ski = true,
		.aki = true,
		.serial = 2,
	};

	ca_key = tc_key("EC:P-256");
	leaf_key = tc_key("RSA");
	if (ca_key == NULL || leaf_key == NULL)
		return -1;
	ca = tc_cert(&co, ca_key);
	lo.issuer = ca;
	lo.issuer_key = ca_key;
	leaf = tc_cert(&lo, leaf_key);
	if (ca == NULL || leaf == NULL)
		return -1;
	ca_pem = tc_pem_cert(NULL, ca);
	leaf_pem = tc_pem_cert(NULL, leaf);
	return 0;
}

static int teardown(void **state)
{
	free(ca_pem);
	free(leaf_pem);
	X509_free(ca);
	X509_free(leaf);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(leaf_key);
	return 0;
}

static int parse_str(const char *s, const char *password, struct aclm_bundle *b)
{
	return aclm_bundle_parse((const unsigned char *)s, strlen(s), password, b);
}

static size_t count_lines(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

static void assert_has_fingerprint(const struct aclm_bundle *b, size_t i, X509 *x)
{
	unsigned char md[32];
	unsigned int n = 0;

	assert_true(i < b->n_certs);
	X509_digest(x, EVP_sha256(), md, &n);
	assert_memory_equal(b->certs[i]->fingerprint, md, 32);
}

static void assert_key_matches(const struct aclm_privkey *k, EVP_PKEY *key)
{
	unsigned char spki[32];
	char hex[65];
	const unsigned char *p = k->pkcs8;
	PKCS8_PRIV_KEY_INFO *p8;
	EVP_PKEY *back;

	tc_spki_sha256(key, spki);
	assert_memory_equal(k->spki_sha256, spki, 32);
	aclm_hex_encode(spki, 32, hex);
	assert_string_equal(k->spki_hex, hex);
	/* the PKCS#8 is unencrypted and holds the same key */
	p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)k->pkcs8_len);
	assert_non_null(p8);
	assert_ptr_equal(p, k->pkcs8 + k->pkcs8_len);
	back = EVP_PKCS82PKEY(p8);
	assert_non_null(back);
	tc_spki_sha256(back, spki);
	assert_memory_equal(k->spki_sha256, spki, 32);
	EVP_PKEY_free(back);
	PKCS8_PRIV_KEY_INFO_free(p8);
}

static char *crl_pem(void)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t = ASN1_TIME_new();
	BIO *b = BIO_new(BIO_s_mem());
	char *s;

	X509_CRL_set_version(crl, X509_CRL_VERSION_2);
	X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca));
	X509_gmtime_adj(t, 0);
	X509_CRL_set1_lastUpdate(crl, t);
	X509_CRL_sign(crl, ca_key, EVP_sha256());
	PEM_write_bio_X509_CRL(b, crl);
	s = tc_bio_append(NULL, b);
	BIO_free(b);
	ASN1_TIME_free(t);
	X509_CRL_free(crl);
	return s;
}

static void test_pem_chain_key_and_crl(void **state)
{
	char *crl = crl_pem();
	char *pem = tc_append(NULL, "Some text before the blocks\n");
	struct aclm_bundle b;
	char want[128];
	size_t crl_line;

	pem = tc_append(pem, leaf_pem);
	pem = tc_append(pem, ca_pem);
	crl_line = count_lines(pem) + 1;
	pem = tc_append(pem, crl);
	pem = tc_pem_key(pem, leaf_key, false, NULL);

	assert_int_equal(parse_str(pem, NULL, &b), ACLM_OK);
	assert_int_equal(b.format, ACLM_FMT_PEM);
	assert_int_equal(b.n_certs, 2);
	assert_has_fingerprint(&b, 0, leaf);
	assert_has_fingerprint(&b, 1, ca);
	assert_string_equal(b.certs[0]->subject_cn, "www.example.test");
	assert_string_equal(b.certs[1]->subject_cn, "Bundle Test CA");
	assert_int_equal(b.n_keys, 1);
	assert_int_equal(b.keys[0].key_type, ACLM_KEY_RSA);
	assert_key_matches(&b.keys[0], leaf_key);
	assert_memory_equal(b.keys[0].spki_sha256, b.certs[0]->spki_sha256, 32);
	assert_int_equal(b.n_problems, 1);
	snprintf(want, sizeof(want), "PEM block 3 (line %zu): X509 CRL is not a certificate", crl_line);
	assert_string_equal(b.problems[0], want);
	aclm_bundle_free(&b);
	assert_null(b.certs);
	assert_int_equal(b.n_certs, 0);

	/* CRL alone: nothing usable, the problem is the message */
	assert_int_equal(parse_str(crl, NULL, &b), ACLM_ERR_PARSE);
	assert_string_equal(aclm_errmsg(), "PEM block 1 (line 1): X509 CRL is not a certificate");
	assert_int_equal(b.n_problems, 1);
	aclm_bundle_free(&b);
	free(pem);
	free(crl);
}

static void test_pem_foreign_blocks(void **state)
{
	static const char *const labels[] = {
		"CERTIFICATE REQUEST", "PUBLIC KEY", "NEW CERTIFICATE REQUEST", "DH PARAMETERS",
	};
	struct aclm_bundle b;
	char pem[256], want[128];

	for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++) {
		snprintf(pem, sizeof(pem), "-----BEGIN %s-----\nAAAA\n-----END %s-----\n", labels[i], labels[i]);
		assert_int_equal(parse_str(pem, NULL, &b), ACLM_ERR_PARSE);
		snprintf(want, sizeof(want), "PEM block 1 (line 1): %s is not a certificate", labels[i]);
		assert_string_equal(aclm_errmsg(), want);
		assert_int_equal(b.n_problems, 1);
		assert_string_equal(b.problems[0], want);
		aclm_bundle_free(&b);
	}
	/* two problems: both in the message */
	assert_int_equal(parse_str("-----BEGIN A-----\nAA==\n-----END A-----\n"
	                           "-----BEGIN B-----\nAA==\n-----END B-----\n", NULL, &b), ACLM_ERR_PARSE);
	assert_string_equal(aclm_errmsg(), "PEM block 1 (line 1): A is not a certificate; "
	                                   "PEM block 2 (line 4): B is not a certificate");
	aclm_bundle_free(&b);
}

static void test_pem_truncated(void **state)
{
	struct aclm_bundle b;
	char *cut = aclm_strndup(leaf_pem, strlen(leaf_pem) / 2);
	char *end_cut = aclm_strndup(leaf_pem, (size_t)(strstr(leaf_pem, "-----END") - leaf_pem));
	char *pem;

	assert_int_equal(parse_str(cut, NULL, &b), ACLM_ERR_PARSE);
	assert_string_equal(aclm_errmsg(), "PEM block 1 (line 1): truncated (no END line)");
	aclm_bundle_free(&b);
	assert_int_equal(parse_str(end_cut, NULL, &b), ACLM_ERR_PARSE);
	assert_string_equal(aclm_errmsg(), "PEM block 1 (line 1): truncated (no END line)");
	aclm_bundle_free(&b);

	/* a truncated block followed by a good one: the good one counts */
	pem = tc_append(aclm_strdup(cut), "\n");
	pem = tc_append(pem, ca_pem);
	assert_int_equal(parse_str(pem, NULL, &b), ACLM_OK);
	assert_int_equal(b.n_certs, 1);
	assert_has_fingerprint(&b, 0, ca);
	assert_int_equal(b.n_problems, 1);
	assert_string_equal(b.problems[0], "PEM block 1 (line 1): truncated (no END line)");
	aclm_bundle_free(&b);
	free(pem);

	/* END that does not match BEGIN */
	pem = aclm_strdup(ca_pem);
	memcpy(strstr(pem, "-----END CERTIFICATE"), "-----END CERTIFICATX", 20);
	assert_int_equal(parse_str(pem, NULL, &b), ACLM_ERR_PARSE);
	assert_non_null(strstr(aclm_errmsg(), "PEM block 1 (line 1): END line"));
	assert_non_null(strstr(aclm_errmsg(), "does not match BEGIN CERTIFICATE"));
	aclm_bundle_free(&b);
	free(pem);
	free(cut);
	free(end_cut);
}

static void test_pem_bad_base64_and_bad_der(void **state)
{
	struct aclm_bundle b;
	char *pem = aclm_strdup(ca_pem);
	char *p = strchr(pem, '\n') + 1;     /* first body line: line 2 */

	p = strchr(p, '\n') + 1;             /* line 3 */
	memcpy(p + 10, "!!**", 4);
	assert_int_equal(parse_str(pem, NULL, &b), ACLM_ERR_PARSE);
	assert_string_equal(aclm_errmsg(), "PEM block 1 (line 1): invalid base64 on line 3");
	aclm_bundle_free(&b);
	free(pem);

	/* valid base64, not a certificate */
	assert_int_equal(parse_str("\n\n-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n",
	                           NULL, &b), ACLM_ERR_PARSE);
	assert_true(aclm_str_has_prefix(aclm_errmsg(), "PEM block 1 (line 3): certificate: not a valid DER"));
	aclm_bundle_free(&b);

	/* empty block */
	assert_int_equal(parse_str("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n", NULL, &b),
	                 ACLM_ERR_PARSE);
	assert_string_equal(aclm_errmsg(), "PEM block 1 (line 1): CERTIFICATE block is empty");
	aclm_bundle_free(&b);

	/* CRLF line ends and indentation are fine */
	{
		char *crlf = NULL;
		for (const char *s = ca_pem; *s != '\0'; s++) {
			char two[5] = { *s, 0, 0, 0, 0 };
			if (*s == '\n')
				memcpy(two, "\r\n  ", 4);
			crlf = tc_append(crlf, two);
		}
		assert_int_equal(parse_str(crlf, NULL, &b), ACLM_OK);
		assert_int_equal(b.n_certs, 1);
		assert_int_equal(b.n_problems, 0);
		aclm_bundle_free(&b);
		free(crlf);
	}
}

static void test_garbage_and_empty(void **state)
{
	static const unsigned char binary[] = { 0x30, 0x82, 0x01, 0x00, 0x01, 0x02, 0x03 };
	struct aclm_bundle b;
	unsigned char junk[3000];

	assert_int_equal(aclm_bundle_parse((const unsigned char *)"", 0, NULL, &b), ACLM_ERR_PARSE);
	assert_string_equal(aclm_errmsg(), "empty file");
	aclm_bundle_free(&b);
	assert_int_equal(parse_str("hello, world\nthis is text\n", NULL, &b), ACLM_ERR_PARSE);
	assert_string_equal(aclm_errmsg(),
	                    "not a certificate file (no PEM block; not DER, PKCS#7 or PKCS#12)");
	assert_int_equal(b.n_certs + b.n_keys, 0);
	aclm_bundle_free(&b);
	assert_int_equal(aclm_bundle_parse(binary, sizeof(binary), NULL, &b), ACLM_ERR_PARSE);
	assert_string_equal(aclm_errmsg(),
	                    "not a certificate file (no PEM block; not DER, PKCS#7 or PKCS#12)");
	aclm_bundle_free(&b);
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)(i * 7919u >> 3);
	assert_int_equal(aclm_bundle_parse(junk, sizeof(junk), "x", &b), ACLM_ERR_PARSE);
	aclm_bundle_free(&b);
	aclm_bundle_free(NULL);
}

static void test_der_single_and_concatenated(void **state)
{
	struct aclm_bundle b;
	unsigned char *d1, *d2, *both;
	size_t l1 = 0, l2 = 0;

	d1 = tc_der(leaf, &l1);
	d2 = tc_der(ca, &l2);
	assert_int_equal(aclm_bundle_parse(d1, l1, NULL, &b), ACLM_OK);
	assert_int_equal(b.format, ACLM_FMT_DER);
	assert_int_equal(b.n_certs, 1);
	assert_has_fingerprint(&b, 0, leaf);
	aclm_bundle_free(&b);

	both = malloc(l1 + l2);
	memcpy(both, d1, l1);
	memcpy(both + l1, d2, l2);
	assert_int_equal(aclm_bundle_parse(both, l1 + l2, NULL, &b), ACLM_OK);
	assert_int_equal(b.format, ACLM_FMT_DER);
	assert_int_equal(b.n_certs, 2);
	assert_has_fingerprint(&b, 1, ca);
	aclm_bundle_free(&b);

	/* truncated DER is not recognised as anything */
	assert_int_equal(aclm_bundle_parse(d1, l1 / 2, NULL, &b), ACLM_ERR_PARSE);
	assert_non_null(strstr(aclm_errmsg(), "not a certificate file"));
	aclm_bundle_free(&b);
	free(both);
	free(d1);
	free(d2);
}

static PKCS7 *make_p7(void)
{
	PKCS7 *p7 = PKCS7_new();

	assert_int_equal(PKCS7_set_type(p7, NID_pkcs7_signed), 1);
	assert_int_equal(PKCS7_content_new(p7, NID_pkcs7_data), 1);
	assert_int_equal(PKCS7_add_certificate(p7, leaf), 1);
	assert_int_equal(PKCS7_add_certificate(p7, ca), 1);
	return p7;
}

static void test_pkcs7_der_and_pem(void **state)
{
	PKCS7 *p7 = make_p7();
	unsigned char *der = NULL;
	int len = i2d_PKCS7(p7, &der);
	BIO *bio = BIO_new(BIO_s_mem());
	struct aclm_bundle b;
	char *pem;

	assert_true(len > 0);
	assert_int_equal(aclm_bundle_parse(der, (size_t)len, NULL, &b), ACLM_OK);
	assert_int_equal(b.format, ACLM_FMT_PKCS7);
	assert_int_equal(b.n_certs, 2);
	assert_has_fingerprint(&b, 0, leaf);
	assert_has_fingerprint(&b, 1, ca);
	assert_int_equal(b.n_problems, 0);
	aclm_bundle_free(&b);

	PEM_write_bio_PKCS7(bio, p7);
	pem = tc_bio_append(NULL, bio);
	assert_int_equal(parse_str(pem, NULL, &b), ACLM_OK);
	assert_int_equal(b.format, ACLM_FMT_PEM);
	assert_int_equal(b.n_certs, 2);
	aclm_bundle_free(&b);
	free(pem);
	BIO_free(bio);
	OPENSSL_free(der);
	PKCS7_free(p7);

	/* a PKCS#7 with no certificates */
	p7 = PKCS7_new();
	PKCS7_set_type(p7, NID_pkcs7_signed);
	PKCS7_content_new(p7, NID_pkcs7_data);
	der = NULL;
	len = i2d_PKCS7(p7, &der);
	assert_int_equal(aclm_bundle_parse(der, (size_t)len, NULL, &b), ACLM_ERR_PARSE);
	assert_string_equal(aclm_errmsg(), "PKCS#7: PKCS#7 contains no certificates");
	aclm_bundle_free(&b);
	OPENSSL_free(der);
	PKCS7_free(p7);
}

static unsigned char *make_p12(const char *password, EVP_PKEY *key, int nid_key, int nid_cert,
                               OSSL_LIB_CTX *libctx, size_t *len)
{
	STACK_OF(X509) *chain = sk_X509_new_null();
	PKCS12 *p12;
	unsigned char *der = NULL;
	int n;

	sk_X509_push(chain, ca);
	X509_up_ref(ca);
	p12 = PKCS12_create_ex(password, "test", key, leaf, chain, nid_key, nid_cert, 0, 0, 0, libctx, NULL);
	assert_non_null(p12);
	n = i2d_PKCS12(p12, &der);
	assert_true(n > 0);
	*len = (size_t)n;
	PKCS12_free(p12);
	sk_X509_pop_free(chain, X509_free);
	return der;
}

static void test_pkcs12_passwords(void **state)
{
	struct aclm_bundle b;
	unsigned char *p12;
	size_t len = 0;

	p12 = make_p12("s3cret", leaf_key, 0, 0, NULL, &len);
	assert_int_equal(aclm_bundle_parse(p12, len, "s3cret", &b), ACLM_OK);
	assert_int_equal(b.format, ACLM_FMT_PKCS12);
	assert_int_equal(b.n_certs, 2);
	assert_has_fingerprint(&b, 0, leaf);
	assert_has_fingerprint(&b, 1, ca);
	assert_int_equal(b.n_keys, 1);
	assert_key_matches(&b.keys[0], leaf_key);
	assert_memory_equal(b.keys[0].spki_sha256, b.certs[0]->spki_sha256, 32);
	aclm_bundle_free(&b);

	assert_int_equal(aclm_bundle_parse(p12, len, "wrong", &b), ACLM_ERR_PASSWORD);
	assert_string_equal(aclm_errmsg(), "PKCS#12: wrong or missing password (MAC verification failed)");
	assert_int_equal(b.format, ACLM_FMT_PKCS12);
	assert_int_equal(b.n_certs + b.n_keys, 0);
	aclm_bundle_free(&b);
	assert_int_equal(aclm_bundle_parse(p12, len, NULL, &b), ACLM_ERR_PASSWORD);
	assert_string_equal(aclm_errmsg(), "PKCS#12: wrong or missing password (MAC verification failed)");
	aclm_bundle_free(&b);
	OPENSSL_free(p12);

	/* empty password: found without one, and despite a wrong one */
	p12 = make_p12("", leaf_key, 0, 0, NULL, &len);
	assert_int_equal(aclm_bundle_parse(p12, len, NULL, &b), ACLM_OK);
	assert_int_equal(b.n_certs, 2);
	assert_int_equal(b.n_keys, 1);
	aclm_bundle_free(&b);
	assert_int_equal(aclm_bundle_parse(p12, len, "other", &b), ACLM_OK);
	assert_int_equal(b.n_keys, 1);
	aclm_bundle_free(&b);
	OPENSSL_free(p12);

	/* NULL password (no password at all), certificates only */
	p12 = make_p12(NULL, NULL, 0, -1, NULL, &len);
	assert_int_equal(aclm_bundle_parse(p12, len, NULL, &b), ACLM_OK);
	assert_int_equal(b.n_certs, 2);
	assert_int_equal(b.n_keys, 0);
	aclm_bundle_free(&b);
	OPENSSL_free(p12);
}

static void test_pkcs12_legacy_rc2(void **state)
{
	OSSL_LIB_CTX *lctx = OSSL_LIB_CTX_new();
	OSSL_PROVIDER *def = OSSL_PROVIDER_load(lctx, "default");
	OSSL_PROVIDER *legacy = OSSL_PROVIDER_load(lctx, "legacy");
	struct aclm_bundle b;
	unsigned char *p12;
	size_t len = 0;

	if (legacy == NULL) {
		OSSL_PROVIDER_unload(def);
		OSSL_LIB_CTX_free(lctx);
		skip();
	}
	/* what Windows and Java used to write: RC2-40 certs, 3DES key */
	p12 = make_p12("old", leaf_key, NID_pbe_WithSHA1And3_Key_TripleDES_CBC,
	               NID_pbe_WithSHA1And40BitRC2_CBC, lctx, &len);
	assert_int_equal(aclm_bundle_parse(p12, len, "old", &b), ACLM_OK);
	assert_int_equal(b.n_certs, 2);
	assert_int_equal(b.n_keys, 1);
	assert_key_matches(&b.keys[0], leaf_key);
	assert_int_equal(b.n_problems, 0);
	aclm_bundle_free(&b);
	OPENSSL_free(p12);
	OSSL_PROVIDER_unload(legacy);
	OSSL_PROVIDER_unload(def);
	OSSL_LIB_CTX_free(lctx);
}

static void test_encrypted_keys(void **state)
{
	struct aclm_bundle b;
	char *enc = tc_pem_key(NULL, leaf_key, false, "pw");
	char *trad = tc_pem_key(NULL, leaf_key, true, "pw");
	char *with_cert;

	assert_non_null(strstr(enc, "BEGIN ENCRYPTED PRIVATE KEY"));
	assert_non_null(strstr(trad, "Proc-Type: 4,ENCRYPTED"));

	assert_int_equal(parse_str(enc, "pw", &b), ACLM_OK);
	assert_int_equal(b.n_keys, 1);
	assert_key_matches(&b.keys[0], leaf_key);
	aclm_bundle_free(&b);
	assert_int_equal(parse_str(enc, NULL, &b), ACLM_ERR_PASSWORD);
	assert_string_equal(aclm_errmsg(),
	                    "PEM block 1 (line 1): ENCRYPTED PRIVATE KEY and no password was given");
	aclm_bundle_free(&b);
	assert_int_equal(parse_str(enc, "bad", &b), ACLM_ERR_PASSWORD);
	assert_true(aclm_str_has_prefix(aclm_errmsg(),
	                                "PEM block 1 (line 1): ENCRYPTED PRIVATE KEY cannot be decrypted"));
	aclm_bundle_free(&b);

	assert_int_equal(parse_str(trad, "pw", &b), ACLM_OK);
	assert_int_equal(b.n_keys, 1);
	assert_key_matches(&b.keys[0], leaf_key);
	aclm_bundle_free(&b);
	assert_int_equal(parse_str(trad, NULL, &b), ACLM_ERR_PASSWORD);
	assert_string_equal(aclm_errmsg(),
	                    "PEM block 1 (line 1): RSA PRIVATE KEY is encrypted and no password was given");
	aclm_bundle_free(&b);
	assert_int_equal(parse_str(trad, "bad", &b), ACLM_ERR_PASSWORD);
	assert_string_equal(aclm_errmsg(),
	                    "PEM block 1 (line 1): RSA PRIVATE KEY cannot be decrypted (wrong password)");
	aclm_bundle_free(&b);

	/* with a certificate in the file, the certificate is usable: 0 */
	with_cert = tc_append(aclm_strdup(leaf_pem), enc);
	assert_int_equal(parse_str(with_cert, NULL, &b), ACLM_OK);
	assert_int_equal(b.n_certs, 1);
	assert_int_equal(b.n_keys, 0);
	assert_int_equal(b.n_problems, 1);
	assert_non_null(strstr(b.problems[0], "PEM block 2 (line"));
	assert_non_null(strstr(b.problems[0], "no password was given"));
	aclm_bundle_free(&b);
	free(with_cert);
	free(enc);
	free(trad);
}

/* The SPKI hash of a key read from each PEM key form equals the one of its
 * certificate: the link between imported keys and certificates. */
static void check_key_spki(const char *spec, enum aclm_key_type type)
{
	EVP_PKEY *key = tc_key(spec);
	struct tc_opts o = { .subject = "/CN=spki" };
	X509 *x;
	char *forms[3];
	size_t n_forms = 0;

	assert_non_null(key);
	x = tc_cert(&o, key);
	assert_non_null(x);
	forms[n_forms++] = tc_pem_key(tc_pem_cert(NULL, x), key, false, NULL);
	forms[n_forms++] = tc_pem_key(tc_pem_cert(NULL, x), key, false, "pw");
	if (EVP_PKEY_is_a(key, "RSA") || EVP_PKEY_is_a(key, "EC") || EVP_PKEY_is_a(key, "SM2"))
		forms[n_forms++] = tc_pem_key(tc_pem_cert(NULL, x), key, true, NULL);
	for (size_t i = 0; i < n_forms; i++) {
		struct aclm_bundle b;

		if (parse_str(forms[i], "pw", &b) != ACLM_OK)
			fail_msg("%s form %zu: %s", spec, i, aclm_errmsg());
		assert_int_equal(b.n_certs, 1);
		assert_int_equal(b.n_keys, 1);
		assert_int_equal(b.n_problems, 0);
		assert_int_equal(b.keys[0].key_type, type);
		assert_int_equal(b.certs[0]->key_type, type);
		if (memcmp(b.keys[0].spki_sha256, b.certs[0]->spki_sha256, 32) != 0)
			fail_msg("%s form %zu: key SPKI %s != certificate SPKI %s", spec, i,
			         b.keys[0].spki_hex, b.certs[0]->spki_hex);
		assert_string_equal(b.keys[0].spki_hex, b.certs[0]->spki_hex);
		assert_key_matches(&b.keys[0], key);
		aclm_bundle_free(&b);
		free(forms[i]);
	}
	X509_free(x);
	EVP_PKEY_free(key);
}

static void test_key_spki_matches_cert(void **state)
{
	check_key_spki("RSA", ACLM_KEY_RSA);
	check_key_spki("EC:P-256", ACLM_KEY_EC);
	check_key_spki("EC:P-384", ACLM_KEY_EC);
	check_key_spki("ED25519", ACLM_KEY_ED25519);
	check_key_spki("ED448", ACLM_KEY_ED448);
	check_key_spki("SM2", ACLM_KEY_SM2);
	check_key_spki("EC:SM2", ACLM_KEY_SM2);
}

static void test_sm2_key_in_ec_private_key_form(void **state)
{
	EVP_PKEY *key = tc_key("EC:SM2");
	struct tc_opts o = { .subject = "/CN=sm2" };
	X509 *x = tc_cert(&o, key);
	char *pem = tc_pem_key(tc_pem_cert(NULL, x), key, true, NULL);
	struct aclm_bundle b;

	assert_non_null(strstr(pem, "BEGIN EC PRIVATE KEY"));
	assert_int_equal(parse_str(pem, NULL, &b), ACLM_OK);
	assert_int_equal(b.keys[0].key_type, ACLM_KEY_SM2);
	assert_string_equal(b.certs[0]->curve, "SM2");
	assert_string_equal(b.certs[0]->sig_alg, "SM2-with-SM3");
	assert_memory_equal(b.keys[0].spki_sha256, b.certs[0]->spki_sha256, 32);
	aclm_bundle_free(&b);
	free(pem);
	X509_free(x);
	EVP_PKEY_free(key);
}

static void test_trusted_certificate(void **state)
{
	X509 *x = X509_dup(ca);
	BIO *bio = BIO_new(BIO_s_mem());
	struct aclm_bundle b;
	char *pem;

	X509_add1_trust_object(x, OBJ_nid2obj(NID_server_auth));
	X509_alias_set1(x, (const unsigned char *)"my ca", -1);
	PEM_write_bio_X509_AUX(bio, x);
	pem = tc_bio_append(NULL, bio);
	assert_non_null(strstr(pem, "BEGIN TRUSTED CERTIFICATE"));
	assert_int_equal(parse_str(pem, NULL, &b), ACLM_OK);
	assert_int_equal(b.n_certs, 1);
	assert_has_fingerprint(&b, 0, ca);       /* the trust settings are gone */
	aclm_bundle_free(&b);
	free(pem);
	BIO_free(bio);
	X509_free(x);

	assert_int_equal(parse_str("-----BEGIN X509 CERTIFICATE-----\n", NULL, &b), ACLM_ERR_PARSE);
	aclm_bundle_free(&b);
}

static void test_key_limit(void **state)
{
	EVP_PKEY *k = tc_key("ED25519");
	char *one = tc_pem_key(NULL, k, false, NULL);
	size_t n1 = strlen(one), total = n1 * (ACLM_BUNDLE_MAX_KEYS + 5);
	char *many = malloc(total + 1);
	struct aclm_bundle b;

	for (size_t i = 0; i < ACLM_BUNDLE_MAX_KEYS + 5; i++)
		memcpy(many + i * n1, one, n1);
	many[total] = '\0';
	assert_int_equal(parse_str(many, NULL, &b), ACLM_OK);
	assert_int_equal(b.n_keys, ACLM_BUNDLE_MAX_KEYS);
	assert_int_equal(b.n_problems, 1);
	assert_non_null(strstr(b.problems[0], "more than 1024 private keys; the rest are ignored"));
	aclm_bundle_free(&b);
	free(many);
	free(one);
	EVP_PKEY_free(k);
}

static void test_problem_limit(void **state)
{
	static const char block[] = "-----BEGIN X-----\nAA==\n-----END X-----\n";
	size_t n = 1500, bl = sizeof(block) - 1;
	char *many = malloc(n * bl + 1);
	struct aclm_bundle b;

	for (size_t i = 0; i < n; i++)
		memcpy(many + i * bl, block, bl);
	many[n * bl] = '\0';
	assert_int_equal(parse_str(many, NULL, &b), ACLM_ERR_PARSE);
	assert_int_equal(b.n_problems, 1000);
	assert_string_equal(b.problems[999], "more than 999 problems; the rest are not listed");
	assert_true(strlen(aclm_errmsg()) < 1024);
	aclm_bundle_free(&b);
	free(many);
}

static void test_pem_encode_round_trip(void **state)
{
	unsigned char *d1, *d2, *both;
	size_t l1 = 0, l2 = 0, pem_len = 0;
	struct aclm_bundle b;
	char *pem = NULL;

	d1 = tc_der(leaf, &l1);
	d2 = tc_der(ca, &l2);
	assert_int_equal(aclm_pem_encode_cert(d1, l1, &pem, &pem_len), ACLM_OK);
	assert_int_equal(pem_len, strlen(pem));
	assert_string_equal(pem, leaf_pem);       /* byte for byte what OpenSSL writes */
	free(pem);

	both = malloc(l1 + l2);
	memcpy(both, d1, l1);
	memcpy(both + l1, d2, l2);
	assert_int_equal(aclm_pem_encode_cert(both, l1 + l2, &pem, &pem_len), ACLM_OK);
	assert_true(aclm_str_has_prefix(pem, leaf_pem));
	assert_string_equal(pem + strlen(leaf_pem), ca_pem);
	assert_int_equal(parse_str(pem, NULL, &b), ACLM_OK);
	assert_int_equal(b.n_certs, 2);
	aclm_bundle_free(&b);
	free(pem);

	assert_int_equal(aclm_pem_encode_cert(both, l1 + 5, &pem, &pem_len), ACLM_ERR_PARSE);
	assert_null(pem);
	free(both);
	free(d1);
	free(d2);
}

static void test_pem_encode_key(void **state)
{
	char *src = tc_pem_key(NULL, leaf_key, false, NULL), *pem = NULL;
	struct aclm_bundle b, b2;
	size_t pem_len = 0;

	assert_int_equal(parse_str(src, NULL, &b), ACLM_OK);
	assert_int_equal(aclm_pem_encode_key(b.keys[0].pkcs8, b.keys[0].pkcs8_len, &pem, &pem_len), ACLM_OK);
	assert_true(aclm_str_has_prefix(pem, "-----BEGIN PRIVATE KEY-----\n"));
	assert_true(aclm_str_has_suffix(pem, "-----END PRIVATE KEY-----\n"));
	assert_int_equal(pem_len, strlen(pem));
	assert_int_equal(parse_str(pem, NULL, &b2), ACLM_OK);
	assert_int_equal(b2.n_keys, 1);
	assert_memory_equal(b2.keys[0].spki_sha256, b.keys[0].spki_sha256, 32);
	assert_int_equal(b2.keys[0].pkcs8_len, b.keys[0].pkcs8_len);
	assert_memory_equal(b2.keys[0].pkcs8, b.keys[0].pkcs8, b.keys[0].pkcs8_len);
	aclm_bundle_free(&b2);
	OPENSSL_cleanse(pem, pem_len);
	free(pem);
	assert_int_equal(aclm_pem_encode_key((const unsigned char *)"junk", 4, &pem, &pem_len), ACLM_ERR_PARSE);
	aclm_bundle_free(&b);
	free(src);
}

static void check_p12_algorithms(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)len);
	const X509_ALGOR *mac_alg = NULL;
	const ASN1_OBJECT *obj = NULL;
	const ASN1_INTEGER *iter = NULL;
	STACK_OF(PKCS7) *safes;

	assert_non_null(p12);
	PKCS12_get0_mac(NULL, &mac_alg, NULL, &iter, p12);
	assert_non_null(mac_alg);
	X509_ALGOR_get0(&obj, NULL, NULL, mac_alg);
	assert_int_equal(OBJ_obj2nid(obj), NID_sha256);
	assert_true(ASN1_INTEGER_get(iter) >= 2048);
	/* the certificates are in PBES2 (PBKDF2 + AES-256-CBC) encrypted data */
	safes = PKCS12_unpack_authsafes(p12);
	assert_non_null(safes);
	for (int i = 0; i < sk_PKCS7_num(safes); i++) {
		PKCS7 *p7 = sk_PKCS7_value(safes, i);
		if (OBJ_obj2nid(p7->type) == NID_pkcs7_encrypted) {
			X509_ALGOR_get0(&obj, NULL, NULL, p7->d.encrypted->enc_data->algorithm);
			assert_int_equal(OBJ_obj2nid(obj), NID_pbes2);
		}
	}
	sk_PKCS7_pop_free(safes, PKCS7_free);
	PKCS12_free(p12);
}

static void test_pkcs12_build(void **state)
{
	char *src = tc_pem_key(NULL, leaf_key, false, NULL);
	unsigned char *d1, *d2, *p12 = NULL;
	const unsigned char *chain[1];
	size_t l1 = 0, l2 = 0, chain_len[1], p12_len = 0;
	struct aclm_bundle kb, b;
	EVP_PKEY *other;
	char *other_pem;
	struct aclm_bundle ob;

	d1 = tc_der(leaf, &l1);
	d2 = tc_der(ca, &l2);
	chain[0] = d2;
	chain_len[0] = l2;
	assert_int_equal(parse_str(src, NULL, &kb), ACLM_OK);

	assert_int_equal(aclm_pkcs12_build(d1, l1, chain, chain_len, 1, kb.keys[0].pkcs8, kb.keys[0].pkcs8_len,
	                                   "export-pw", "www.example.test", &p12, &p12_len), ACLM_OK);
	check_p12_algorithms(p12, p12_len);
	assert_int_equal(aclm_bundle_parse(p12, p12_len, "export-pw", &b), ACLM_OK);
	assert_int_equal(b.n_certs, 2);
	assert_has_fingerprint(&b, 0, leaf);
	assert_has_fingerprint(&b, 1, ca);
	assert_int_equal(b.n_keys, 1);
	assert_memory_equal(b.keys[0].spki_sha256, kb.keys[0].spki_sha256, 32);
	aclm_bundle_free(&b);
	assert_int_equal(aclm_bundle_parse(p12, p12_len, "nope", &b), ACLM_ERR_PASSWORD);
	aclm_bundle_free(&b);
	free(p12);

	/* certificates only, empty password */
	assert_int_equal(aclm_pkcs12_build(d1, l1, chain, chain_len, 1, NULL, 0, "", NULL, &p12, &p12_len),
	                 ACLM_OK);
	assert_int_equal(aclm_bundle_parse(p12, p12_len, NULL, &b), ACLM_OK);
	assert_int_equal(b.n_certs, 2);
	assert_int_equal(b.n_keys, 0);
	aclm_bundle_free(&b);
	free(p12);
	p12 = NULL;

	/* a key needs a password */
	assert_int_equal(aclm_pkcs12_build(d1, l1, NULL, NULL, 0, kb.keys[0].pkcs8, kb.keys[0].pkcs8_len,
	                                   "", NULL, &p12, &p12_len), ACLM_ERR_USAGE);
	assert_null(p12);
	assert_int_equal(aclm_pkcs12_build(d1, l1, NULL, NULL, 0, kb.keys[0].pkcs8, kb.keys[0].pkcs8_len,
	                                   NULL, NULL, &p12, &p12_len), ACLM_ERR_USAGE);
	/* a key that is not the certificate's */
	other = tc_key("EC:P-256");
	other_pem = tc_pem_key(NULL, other, false, NULL);
	assert_int_equal(parse_str(other_pem, NULL, &ob), ACLM_OK);
	assert_int_equal(aclm_pkcs12_build(d1, l1, NULL, NULL, 0, ob.keys[0].pkcs8, ob.keys[0].pkcs8_len,
	                                   "pw", NULL, &p12, &p12_len), ACLM_ERR_USAGE);
	assert_non_null(strstr(aclm_errmsg(), "does not match the certificate"));
	/* junk certificate */
	assert_int_equal(aclm_pkcs12_build(d1, l1 - 1, NULL, NULL, 0, NULL, 0, "pw", NULL, &p12, &p12_len),
	                 ACLM_ERR_PARSE);
	aclm_bundle_free(&ob);
	free(other_pem);
	EVP_PKEY_free(other);
	aclm_bundle_free(&kb);
	free(src);
	free(d1);
	free(d2);
}

static void test_pkcs12_build_sm2(void **state)
{
	EVP_PKEY *key = tc_key("SM2");
	struct tc_opts o = { .subject = "/CN=sm2 p12" };
	X509 *x = tc_cert(&o, key);
	char *pem = tc_pem_key(tc_pem_cert(NULL, x), key, false, NULL);
	struct aclm_bundle b, b2;
	unsigned char *p12 = NULL;
	size_t p12_len = 0;

	assert_int_equal(parse_str(pem, NULL, &b), ACLM_OK);
	assert_int_equal(aclm_pkcs12_build(b.certs[0]->der, b.certs[0]->der_len, NULL, NULL, 0,
	                                   b.keys[0].pkcs8, b.keys[0].pkcs8_len, "pw", "sm2",
	                                   &p12, &p12_len), ACLM_OK);
	assert_int_equal(aclm_bundle_parse(p12, p12_len, "pw", &b2), ACLM_OK);
	assert_int_equal(b2.n_keys, 1);
	assert_int_equal(b2.keys[0].key_type, ACLM_KEY_SM2);
	assert_memory_equal(b2.keys[0].spki_sha256, b.certs[0]->spki_sha256, 32);
	assert_string_equal(b2.certs[0]->fingerprint_hex, b.certs[0]->fingerprint_hex);
	aclm_bundle_free(&b2);
	aclm_bundle_free(&b);
	free(p12);
	free(pem);
	X509_free(x);
	EVP_PKEY_free(key);
}

/* Replace every INTEGER 65536 (02 03 01 00 00) with 8388607 (02 03 7F FF FF). */
static size_t patch_iterations(unsigned char *der, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i + 5 <= len; i++) {
		if (memcmp(der + i, "\x02\x03\x01\x00\x00", 5) == 0) {
			memcpy(der + i + 2, "\x7f\xff\xff", 3);
			n++;
		}
	}
	return n;
}

static void test_kdf_limits(void **state)
{
	EVP_PKEY *k = tc_key("EC:P-256");
	PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(k);
	X509_SIG *sig = PKCS8_encrypt(-1, EVP_aes_256_cbc(), "pw", 2, NULL, 0, 2048, p8);
	const X509_ALGOR *alg = NULL;
	PBE2PARAM *p2;
	PBKDF2PARAM *kdf;
	BIO *bio = BIO_new(BIO_s_mem());
	STACK_OF(X509) *chain = sk_X509_new_null();
	struct aclm_bundle b;
	PKCS12 *p12;
	unsigned char *der = NULL;
	char *pem;
	int len;

	/* ENCRYPTED PRIVATE KEY asking for 2^31-1 PBKDF2 iterations */
	X509_SIG_get0(sig, &alg, NULL);
	p2 = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM), alg->parameter);
	kdf = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM), p2->keyfunc->parameter);
	ASN1_INTEGER_set_int64(kdf->iter, 2147483647);
	assert_non_null(ASN1_TYPE_pack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM), kdf, &p2->keyfunc->parameter));
	assert_non_null(ASN1_TYPE_pack_sequence(ASN1_ITEM_rptr(PBE2PARAM), p2,
	                                        &((X509_ALGOR *)alg)->parameter));
	PEM_write_bio_PKCS8(bio, sig);
	pem = tc_bio_append(NULL, bio);
	assert_int_equal(parse_str(pem, "pw", &b), ACLM_ERR_PARSE);
	assert_string_equal(aclm_errmsg(), "PEM block 1 (line 1): refused: password-based key derivation "
	                                   "with 2147483647 iterations (the limit is 1000000)");
	aclm_bundle_free(&b);
	free(pem);

	/* PKCS#12 whose MAC asks for 8388607 iterations */
	p12 = PKCS12_create_ex("pw", NULL, NULL, leaf, NULL, 0, 0, 0, -1, 0, NULL, NULL);
	assert_int_equal(PKCS12_set_mac(p12, "pw", -1, NULL, 0, 65536, EVP_sha256()), 1);
	len = i2d_PKCS12(p12, &der);
	assert_int_equal(patch_iterations(der, (size_t)len), 1);
	assert_int_equal(aclm_bundle_parse(der, (size_t)len, "pw", &b), ACLM_ERR_PARSE);
	assert_string_equal(aclm_errmsg(), "PKCS#12: refused: password-based key derivation "
	                                   "with 8388607 iterations (the limit is 1000000)");
	aclm_bundle_free(&b);
	OPENSSL_free(der);
	PKCS12_free(p12);

	/* PKCS#12 whose encrypted safes do (no MAC, which would cover them) */
	sk_X509_push(chain, ca);
	X509_up_ref(ca);
	p12 = PKCS12_create_ex("pw", NULL, leaf_key, leaf, chain, 0, 0, 65536, -1, 0, NULL, NULL);
	der = NULL;
	len = i2d_PKCS12(p12, &der);
	assert_true(patch_iterations(der, (size_t)len) >= 2);
	assert_int_equal(aclm_bundle_parse(der, (size_t)len, "pw", &b), ACLM_ERR_PARSE);
	assert_string_equal(aclm_errmsg(), "PKCS#12: refused: password-based key derivation "
	                                   "with 8388607 iterations (the limit is 1000000)");
	aclm_bundle_free(&b);
	OPENSSL_free(der);
	PKCS12_free(p12);
	sk_X509_pop_free(chain, X509_free);

	PBKDF2PARAM_free(kdf);
	PBE2PARAM_free(p2);
	BIO_free(bio);
	X509_SIG_free(sig);
	PKCS8_PRIV_KEY_INFO_free(p8);
	EVP_PKEY_free(k);
}

static void test_format_names(void **state)
{
	assert_string_equal(aclm_bundle_format_name(ACLM_FMT_PEM), "pem");
	assert_string_equal(aclm_bundle_format_name(ACLM_FMT_DER), "der");
	assert_string_equal(aclm_bundle_format_name(ACLM_FMT_PKCS7), "pkcs7");
	assert_string_equal(aclm_bundle_format_name(ACLM_FMT_PKCS12), "pkcs12");
	assert_string_equal(aclm_bundle_format_name(ACLM_FMT_UNKNOWN), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pem_chain_key_and_crl),
		cmocka_unit_test(test_pem_foreign_blocks),
		cmocka_unit_test(test_pem_truncated),
		cmocka_unit_test(test_pem_bad_base64_and_bad_der),
		cmocka_unit_test(test_garbage_and_empty),
		cmocka_unit_test(test_der_single_and_concatenated),
		cmocka_unit_test(test_pkcs7_der_and_pem),
		cmocka_unit_test(test_pkcs12_passwords),
		cmocka_unit_test(test_pkcs12_legacy_rc2),
		cmocka_unit_test(test_encrypted_keys),
		cmocka_unit_test(test_key_spki_matches_cert),
		cmocka_unit_test(test_sm2_key_in_ec_private_key_form),
		cmocka_unit_test(test_trusted_certificate),
		cmocka_unit_test(test_key_limit),
		cmocka_unit_test(test_problem_limit),
		cmocka_unit_test(test_pem_encode_round_trip),
		cmocka_unit_test(test_pem_encode_key),
		cmocka_unit_test(test_pkcs12_build),
		cmocka_unit_test(test_pkcs12_build_sm2),
		cmocka_unit_test(test_kdf_limits),
		cmocka_unit_test(test_format_names),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
