/* Unit tests of src/crypto/x509.c: every field of struct aclm_cert on
 * certificates made here with the OpenSSL API (RSA, NIST EC, Ed25519/448,
 * SM2 both ways OpenSSL 3.0 makes it), malformed input, and the helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "aclm/err.h"
#include "aclm/str.h"
#include "aclm/x509.h"
#include "testcert.h"
#include "../../src/crypto/crypto-int.h"

/* Keys shared by the tests: generating RSA under ASan is slow. */
static EVP_PKEY *ca_key, *rsa_key;

static int setup(void **state)
{
	ca_key = tc_key("EC:P-384");
	rsa_key = tc_key("RSA");
	return ca_key != NULL && rsa_key != NULL ? 0 : -1;
}

static int teardown(void **state)
{
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(rsa_key);
	return 0;
}

static struct aclm_cert *parse_x509(X509 *x)
{
	struct aclm_cert *c = NULL;
	unsigned char *der;
	size_t len = 0;
	int rc;

	assert_non_null(x);
	der = tc_der(x, &len);
	assert_non_null(der);
	rc = aclm_cert_parse_der(der, len, &c);
	if (rc != ACLM_OK)
		fail_msg("aclm_cert_parse_der: %s", aclm_errmsg());
	free(der);
	return c;
}

static X509 *make_ca(void)
{
	struct tc_opts o = {
		.subject = "/C=US/O=aclm test/CN=aclm Test Root CA",
		.serial = 4096,
		.bc = "critical,CA:TRUE,pathlen:1",
		.ku = "critical,keyCertSign,cRLSign",
		.ski = true,
		.aki = true,
		.md = "SHA384",
	};

	return tc_cert(&o, ca_key);
}

static void sha256_hex(const unsigned char *p, size_t n, char out[65])
{
	unsigned char md[32];

	EVP_Digest(p, n, md, NULL, EVP_sha256(), NULL);
	aclm_hex_encode(md, 32, out);
}

static void name_hash_hex(const X509_NAME *n, char out[65])
{
	unsigned char *der = NULL;
	int len = i2d_X509_NAME(n, &der);

	sha256_hex(der, (size_t)len, out);
	OPENSSL_free(der);
}

static void assert_san(const struct aclm_cert *c, size_t i, enum aclm_san_type t, const char *v)
{
	assert_true(i < c->n_sans);
	assert_int_equal(c->sans[i].type, t);
	assert_string_equal(c->sans[i].value, v);
}

static void test_ca_fields(void **state)
{
	X509 *ca = make_ca();
	struct aclm_cert *c = parse_x509(ca);
	char hex[65], label[32];

	assert_string_equal(c->subject, "CN=aclm Test Root CA,O=aclm test,C=US");
	assert_string_equal(c->issuer, c->subject);
	assert_string_equal(c->subject_cn, "aclm Test Root CA");
	assert_string_equal(c->issuer_cn, "aclm Test Root CA");
	assert_string_equal(c->serial_hex, "1000");
	assert_int_equal(c->version, 3);
	assert_int_equal(c->key_type, ACLM_KEY_EC);
	assert_int_equal(c->key_bits, 384);
	assert_string_equal(c->curve, "P-384");
	aclm_cert_key_label(c, label, sizeof(label));
	assert_string_equal(label, "ec384");
	assert_string_equal(c->sig_alg, "ecdsa-with-SHA384");
	assert_string_equal(c->sig_alg_oid, "1.2.840.10045.4.3.3");
	assert_true(c->has_basic_constraints);
	assert_true(c->is_ca);
	assert_int_equal(c->path_len, 1);
	assert_true(c->has_key_usage);
	assert_int_equal(c->key_usage, ACLM_KU_KEY_CERT_SIGN | ACLM_KU_CRL_SIGN);
	assert_int_equal(c->n_eku, 0);
	assert_int_equal(c->n_policies, 0);
	assert_int_equal(c->level, ACLM_LEVEL_NONE);
	assert_int_equal(c->n_sans, 0);
	assert_true(c->is_self_issued);
	assert_non_null(c->ski_hex);
	assert_int_equal(strlen(c->ski_hex), 40);
	assert_non_null(c->aki_hex);
	assert_string_equal(c->ski_hex, c->aki_hex);
	assert_string_equal(c->subject_hash, c->issuer_hash);
	name_hash_hex(X509_get_subject_name(ca), hex);
	assert_string_equal(c->subject_hash, hex);
	aclm_cert_free(c);
	X509_free(ca);
}

static void test_rsa_leaf_all_fields(void **state)
{
	X509 *ca = make_ca();
	struct tc_opts o = {
		.subject = "/C=US/O=Example Org/CN=leaf.example.com",
		.issuer = ca,
		.issuer_key = ca_key,
		.serial_hex = "00C0FFEE0123456789",
		.not_before = "20250101000000Z",
		.not_after = "20550630120000Z",     /* GeneralizedTime after 2049 */
		.bc = "critical,CA:FALSE",
		.ku = "critical,digitalSignature,keyEncipherment",
		.eku = "serverAuth,clientAuth,1.3.6.1.4.1.99999.7",
		.san = "DNS:leaf.example.com,DNS:*.leaf.example.com,IP:192.0.2.10,"
		       "IP:2001:db8::1,email:admin@example.com,URI:https://example.com/path",
		.policies = "2.23.140.1.2.2,1.3.6.1.4.1.99999.1.2",
		.ski = true,
		.aki = true,
	};
	X509 *leaf = tc_cert(&o, rsa_key);
	struct aclm_cert *c, *cac;
	unsigned char *der, spki[32];
	size_t len = 0;
	char hex[65], label[32];

	assert_non_null(leaf);
	der = tc_der(leaf, &len);
	assert_int_equal(aclm_cert_parse_der(der, len, &c), ACLM_OK);
	cac = parse_x509(ca);

	assert_int_equal(c->der_len, len);
	assert_memory_equal(c->der, der, len);
	sha256_hex(der, len, hex);
	assert_string_equal(c->fingerprint_hex, hex);
	tc_spki_sha256(rsa_key, spki);
	assert_memory_equal(c->spki_sha256, spki, 32);
	aclm_hex_encode(spki, 32, hex);
	assert_string_equal(c->spki_hex, hex);
	name_hash_hex(X509_get_subject_name(leaf), hex);
	assert_string_equal(c->subject_hash, hex);
	assert_string_equal(c->issuer_hash, cac->subject_hash);

	assert_string_equal(c->subject, "CN=leaf.example.com,O=Example Org,C=US");
	assert_string_equal(c->issuer, "CN=aclm Test Root CA,O=aclm test,C=US");
	assert_string_equal(c->subject_cn, "leaf.example.com");
	assert_string_equal(c->issuer_cn, "aclm Test Root CA");
	assert_string_equal(c->serial_hex, "C0FFEE0123456789");
	assert_int_equal(c->not_before, 1735689600);        /* 2025-01-01T00:00:00Z */
	assert_int_equal(c->not_after, 2697969600LL);       /* 2055-06-30T12:00:00Z */
	assert_int_equal(c->version, 3);

	assert_int_equal(c->key_type, ACLM_KEY_RSA);
	assert_int_equal(c->key_bits, 2048);
	assert_null(c->curve);
	aclm_cert_key_label(c, label, sizeof(label));
	assert_string_equal(label, "rsa2048");
	assert_string_equal(c->sig_alg, "ecdsa-with-SHA256");
	assert_string_equal(c->sig_alg_oid, "1.2.840.10045.4.3.2");

	assert_non_null(c->ski_hex);
	assert_non_null(c->aki_hex);
	assert_string_equal(c->aki_hex, cac->ski_hex);
	assert_string_not_equal(c->ski_hex, c->aki_hex);

	assert_true(c->has_basic_constraints);
	assert_false(c->is_ca);
	assert_int_equal(c->path_len, -1);
	assert_true(c->has_key_usage);
	assert_int_equal(c->key_usage, ACLM_KU_DIGITAL_SIGNATURE | ACLM_KU_KEY_ENCIPHERMENT);
	assert_int_equal(c->n_eku, 3);
	assert_string_equal(c->eku[0], "serverAuth");
	assert_string_equal(c->eku[1], "clientAuth");
	assert_string_equal(c->eku[2], "1.3.6.1.4.1.99999.7");
	assert_int_equal(c->n_policies, 2);
	assert_string_equal(c->policies[0], "2.23.140.1.2.2");
	assert_string_equal(c->policies[1], "1.3.6.1.4.1.99999.1.2");
	assert_int_equal(c->level, ACLM_LEVEL_OV);

	assert_int_equal(c->n_sans, 6);
	assert_san(c, 0, ACLM_SAN_DNS, "leaf.example.com");
	assert_san(c, 1, ACLM_SAN_DNS, "*.leaf.example.com");
	assert_san(c, 2, ACLM_SAN_IP, "192.0.2.10");
	assert_san(c, 3, ACLM_SAN_IP, "2001:db8::1");
	assert_san(c, 4, ACLM_SAN_EMAIL, "admin@example.com");
	assert_san(c, 5, ACLM_SAN_URI, "https://example.com/path");
	assert_false(c->is_self_issued);

	aclm_cert_free(c);
	aclm_cert_free(cac);
	free(der);
	X509_free(leaf);
	X509_free(ca);
}

struct key_case {
	const char *spec;
	enum aclm_key_type type;
	int bits;
	const char *curve;
	const char *label;
	const char *sig_alg;
	const char *sig_oid;
};

static void check_key_case(const struct key_case *k)
{
	EVP_PKEY *key = tc_key(k->spec);
	struct tc_opts o = { .subject = "/CN=key test", .ski = true };
	X509 *x;
	struct aclm_cert *c;
	unsigned char spki[32];
	char label[32];

	assert_non_null(key);
	x = tc_cert(&o, key);
	if (x == NULL)
		fail_msg("%s: cannot make the test certificate", k->spec);
	c = parse_x509(x);
	assert_int_equal(c->key_type, k->type);
	assert_int_equal(c->key_bits, k->bits);
	if (k->curve == NULL)
		assert_null(c->curve);
	else
		assert_string_equal(c->curve, k->curve);
	aclm_cert_key_label(c, label, sizeof(label));
	assert_string_equal(label, k->label);
	assert_string_equal(c->sig_alg, k->sig_alg);
	assert_string_equal(c->sig_alg_oid, k->sig_oid);
	tc_spki_sha256(key, spki);
	assert_memory_equal(c->spki_sha256, spki, 32);
	/* The parser describes common keys from their OIDs without decoding
	 * them: it must say exactly what the decoded key says. */
	{
		enum aclm_key_type type;
		int bits;
		char *curve = NULL;

		assert_int_equal(aclm_x509_key_describe(key, &type, &bits, &curve), ACLM_OK);
		assert_int_equal(c->key_type, type);
		assert_int_equal(c->key_bits, bits);
		if (curve == NULL)
			assert_null(c->curve);
		else
			assert_string_equal(c->curve, curve);
		free(curve);
	}
	aclm_cert_free(c);
	X509_free(x);
	EVP_PKEY_free(key);
}

static void test_key_types(void **state)
{
	static const struct key_case cases[] = {
		{ "EC:P-256", ACLM_KEY_EC, 256, "P-256", "ec256", "ecdsa-with-SHA256", "1.2.840.10045.4.3.2" },
		{ "EC:P-384", ACLM_KEY_EC, 384, "P-384", "ec384", "ecdsa-with-SHA256", "1.2.840.10045.4.3.2" },
		{ "EC:P-521", ACLM_KEY_EC, 521, "P-521", "ec521", "ecdsa-with-SHA256", "1.2.840.10045.4.3.2" },
		{ "EC:secp256k1", ACLM_KEY_EC, 256, "secp256k1", "ec256", "ecdsa-with-SHA256", "1.2.840.10045.4.3.2" },
		{ "EC:P-224", ACLM_KEY_EC, 224, "P-224", "ec224", "ecdsa-with-SHA256", "1.2.840.10045.4.3.2" },
		{ "EC:brainpoolP384r1", ACLM_KEY_EC, 384, "brainpoolP384r1", "ec384", "ecdsa-with-SHA256", "1.2.840.10045.4.3.2" },
		/* not in the parser's curve table: the key is decoded */
		{ "EC:secp160r1", ACLM_KEY_EC, 161, "secp160r1", "ec161", "ecdsa-with-SHA256", "1.2.840.10045.4.3.2" },
		{ "RSA:3072", ACLM_KEY_RSA, 3072, NULL, "rsa3072", "sha256WithRSAEncryption", "1.2.840.113549.1.1.11" },
		{ "RSA:1023", ACLM_KEY_RSA, 1023, NULL, "rsa1023", "sha256WithRSAEncryption", "1.2.840.113549.1.1.11" },
		{ "ED25519", ACLM_KEY_ED25519, 255, NULL, "ed25519", "ED25519", "1.3.101.112" },
		{ "ED448", ACLM_KEY_ED448, 448, NULL, "ed448", "ED448", "1.3.101.113" },
		/* OpenSSL 3.0 makes SM2 keys two ways: type "SM2", or type "EC"
		 * on the SM2 curve; both must come out as SM2. */
		{ "SM2", ACLM_KEY_SM2, 256, "SM2", "sm2", "SM2-with-SM3", "1.2.156.10197.1.501" },
		{ "EC:SM2", ACLM_KEY_SM2, 256, "SM2", "sm2", "SM2-with-SM3", "1.2.156.10197.1.501" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_key_case(&cases[i]);
}

static void test_rsa_sha384_self_signed(void **state)
{
	struct tc_opts o = { .subject = "/CN=rsa", .md = "SHA384" };
	X509 *x = tc_cert(&o, rsa_key);
	struct aclm_cert *c = parse_x509(x);

	assert_string_equal(c->sig_alg, "sha384WithRSAEncryption");
	assert_string_equal(c->sig_alg_oid, "1.2.840.113549.1.1.12");
	assert_true(c->is_self_issued);
	aclm_cert_free(c);
	X509_free(x);
}

static enum aclm_level level_of(const char *policies)
{
	EVP_PKEY *k = tc_key("EC:P-256");
	struct tc_opts o = { .subject = "/CN=policy", .policies = policies };
	X509 *x = tc_cert(&o, k);
	struct aclm_cert *c = parse_x509(x);
	enum aclm_level l = c->level;

	aclm_cert_free(c);
	X509_free(x);
	EVP_PKEY_free(k);
	return l;
}

static void test_policy_levels(void **state)
{
	assert_int_equal(level_of("2.23.140.1.2.1"), ACLM_LEVEL_DV);
	assert_int_equal(level_of("2.23.140.1.2.2"), ACLM_LEVEL_OV);
	assert_int_equal(level_of("2.23.140.1.2.3"), ACLM_LEVEL_IV);
	assert_int_equal(level_of("2.23.140.1.1"), ACLM_LEVEL_EV);
	assert_int_equal(level_of("1.3.6.1.4.1.99999.5"), ACLM_LEVEL_NONE);
	/* highest wins, whatever the order */
	assert_int_equal(level_of("2.23.140.1.1,2.23.140.1.2.1"), ACLM_LEVEL_EV);
	assert_int_equal(level_of("2.23.140.1.2.1,2.23.140.1.2.2,1.2.3.4"), ACLM_LEVEL_OV);
	assert_int_equal(level_of("2.23.140.1.2.2,2.23.140.1.1"), ACLM_LEVEL_EV);
	assert_int_equal(level_of("2.23.140.1.2.3,2.23.140.1.2.1"), ACLM_LEVEL_IV);
}

static void test_v1_no_extensions(void **state)
{
	EVP_PKEY *k = tc_key("EC:P-256");
	struct tc_opts o = { .subject = "/CN=old", .v1 = true };
	X509 *x = tc_cert(&o, k);
	struct aclm_cert *c = parse_x509(x);

	assert_int_equal(c->version, 1);
	assert_false(c->has_basic_constraints);
	assert_false(c->is_ca);
	assert_int_equal(c->path_len, -1);
	assert_false(c->has_key_usage);
	assert_int_equal(c->key_usage, 0);
	assert_null(c->ski_hex);
	assert_null(c->aki_hex);
	assert_int_equal(c->n_eku + c->n_policies + c->n_sans, 0);
	assert_null(c->eku);
	assert_null(c->sans);
	aclm_cert_free(c);
	X509_free(x);
	EVP_PKEY_free(k);
}

static void test_names_utf8_and_fallbacks(void **state)
{
	EVP_PKEY *k = tc_key("EC:P-256");
	/* issuer without CN: issuer_cn falls back to O */
	struct tc_opts o = {
		.subject = "/C=CN/O=\xe6\xb5\x8b\xe8\xaf\x95/CN=M\xc3\xbcller, \"Quote\"+Co",
		.issuer_name = "/C=CN/O=Example Issuing Org/OU=Unit",
	};
	X509 *x = tc_cert(&o, k);
	struct aclm_cert *c = parse_x509(x);

	/* RFC 2253: reversed order, ',', '"', '+' escaped, UTF-8 kept */
	assert_string_equal(c->subject,
	                    "CN=M\xc3\xbcller\\, \\\"Quote\\\"\\+Co,O=\xe6\xb5\x8b\xe8\xaf\x95,C=CN");
	assert_string_equal(c->subject_cn, "M\xc3\xbcller, \"Quote\"+Co");
	assert_string_equal(c->issuer, "OU=Unit,O=Example Issuing Org,C=CN");
	assert_string_equal(c->issuer_cn, "Example Issuing Org");
	assert_false(c->is_self_issued);
	aclm_cert_free(c);
	X509_free(x);

	/* no CN and no O anywhere */
	o.subject = "/C=US/OU=only unit";
	o.issuer_name = "/C=US/OU=only unit";
	x = tc_cert(&o, k);
	c = parse_x509(x);
	assert_null(c->subject_cn);
	assert_null(c->issuer_cn);
	assert_true(c->is_self_issued);
	aclm_cert_free(c);
	X509_free(x);

	/* the last CN wins */
	o.subject = "/CN=first/CN=second";
	o.issuer_name = NULL;
	x = tc_cert(&o, k);
	c = parse_x509(x);
	assert_string_equal(c->subject_cn, "second");
	aclm_cert_free(c);
	X509_free(x);
	EVP_PKEY_free(k);
}

static void test_serials(void **state)
{
	static const struct { const char *in, *out; } cases[] = {
		{ "80", "80" },             /* DER adds a 00 sign byte; not shown */
		{ "0A1B", "0A1B" },
		{ "1", "01" },
		{ "0", "00" },
		{ "7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", "7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF" },
	};
	EVP_PKEY *k = tc_key("EC:P-256");

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tc_opts o = { .subject = "/CN=serial", .serial_hex = cases[i].in };
		X509 *x = tc_cert(&o, k);
		struct aclm_cert *c = parse_x509(x);
		assert_string_equal(c->serial_hex, cases[i].out);
		aclm_cert_free(c);
		X509_free(x);
	}
	EVP_PKEY_free(k);
}

static void test_san_hostile_bytes_escaped(void **state)
{
	EVP_PKEY *k = tc_key("EC:P-256");
	struct tc_opts o = { .subject = "/CN=nul" };
	X509 *x = tc_cert(&o, k);
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	GENERAL_NAME *g = GENERAL_NAME_new();
	ASN1_IA5STRING *s = ASN1_IA5STRING_new();
	struct aclm_cert *c;

	/* a NUL inside a dNSName must not cut the name short */
	assert_int_equal(ASN1_STRING_set(s, "good.example\0.evil\x80", 19), 1);
	GENERAL_NAME_set0_value(g, GEN_DNS, s);
	sk_GENERAL_NAME_push(gens, g);
	assert_int_equal(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT), 1);
	GENERAL_NAMES_free(gens);
	assert_true(tc_sign(x, k, NULL));
	c = parse_x509(x);
	assert_int_equal(c->n_sans, 1);
	assert_string_equal(c->sans[0].value, "good.example\\x00.evil\\x80");
	aclm_cert_free(c);
	X509_free(x);
	EVP_PKEY_free(k);
}

/* A public key OpenSSL cannot decode still gives type and curve by OID. */
static void check_undecodable_key(int alg_nid, int param_nid, enum aclm_key_type type,
                                  const char *curve, const char *label)
{
	EVP_PKEY *k = tc_key("EC:P-256");
	struct tc_opts o = { .subject = "/CN=odd key" };
	X509 *x = tc_cert(&o, k);
	unsigned char *bad = OPENSSL_malloc(5);
	struct aclm_cert *c;
	char buf[32];

	memcpy(bad, "\x04\x01\x02\x03\x04", 5);     /* not a point on any curve */
	assert_int_equal(X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), OBJ_nid2obj(alg_nid),
	                 param_nid != NID_undef ? V_ASN1_OBJECT : V_ASN1_NULL,
	                 param_nid != NID_undef ? (void *)OBJ_nid2obj(param_nid) : NULL, bad, 5), 1);
	assert_true(tc_sign(x, k, NULL));
	c = parse_x509(x);
	assert_int_equal(c->key_type, type);
	if (curve != NULL)
		assert_string_equal(c->curve, curve);
	else
		assert_null(c->curve);
	aclm_cert_key_label(c, buf, sizeof(buf));
	assert_string_equal(buf, label);
	aclm_cert_free(c);
	X509_free(x);
	EVP_PKEY_free(k);
}

static void test_undecodable_public_key(void **state)
{
	check_undecodable_key(NID_X9_62_id_ecPublicKey, NID_sm2, ACLM_KEY_SM2, "SM2", "sm2");
	check_undecodable_key(NID_X9_62_id_ecPublicKey, NID_secp384r1, ACLM_KEY_EC, "P-384", "ec");
	check_undecodable_key(NID_rsaEncryption, NID_undef, ACLM_KEY_RSA, NULL, "rsa");
	check_undecodable_key(NID_id_GostR3410_2001, NID_undef, ACLM_KEY_UNKNOWN, NULL, "unknown");
}

static void expect_parse_error(const unsigned char *der, size_t len, const char *needle)
{
	struct aclm_cert *c = (struct aclm_cert *)&c; /* must stay untouched */
	struct aclm_cert *const before = c;

	assert_int_equal(aclm_cert_parse_der(der, len, &c), ACLM_ERR_PARSE);
	assert_ptr_equal(c, before);
	if (strstr(aclm_errmsg(), needle) == NULL)
		fail_msg("message '%s' does not contain '%s'", aclm_errmsg(), needle);
}

static void test_malformed(void **state)
{
	EVP_PKEY *k = tc_key("EC:P-256");
	struct tc_opts o = { .subject = "/CN=malformed", .san = "DNS:a.example" };
	X509 *x = tc_cert(&o, k);
	unsigned char *der, *longer;
	size_t len = 0;
	static const unsigned char garbage[] = "this is not DER at all";

	der = tc_der(x, &len);
	expect_parse_error(NULL, 0, "empty");
	expect_parse_error(garbage, sizeof(garbage), "not a valid DER X.509 certificate");
	expect_parse_error(der, len / 2, "not a valid DER X.509 certificate");
	expect_parse_error(der, len - 1, "not a valid DER X.509 certificate");
	longer = malloc(len + 3);
	memcpy(longer, der, len);
	memcpy(longer + len, "\x00\x00\x01", 3);
	expect_parse_error(longer, len + 3, "3 unexpected bytes after the certificate");
	free(longer);
	free(der);
	X509_free(x);

	/* an extension whose contents do not decode */
	{
		ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
		X509_EXTENSION *ext;

		o.san = NULL;
		x = tc_cert(&o, k);
		ASN1_OCTET_STRING_set(os, (const unsigned char *)"\x04\x01\x00", 3);
		ext = X509_EXTENSION_create_by_NID(NULL, NID_subject_alt_name, 0, os);
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
		ASN1_OCTET_STRING_free(os);
		assert_true(tc_sign(x, k, NULL));
		der = tc_der(x, &len);
		expect_parse_error(der, len, "Subject Alternative Name extension is malformed");
		free(der);
		X509_free(x);
	}
	/* the same extension twice */
	o.san = "DNS:a.example";
	x = tc_cert(&o, k);
	assert_int_equal(tc_add_ext(x, x, NID_subject_alt_name, "DNS:b.example"), 1);
	assert_true(tc_sign(x, k, NULL));
	der = tc_der(x, &len);
	expect_parse_error(der, len, "appears more than once");
	free(der);
	X509_free(x);

	/* an IP address of the wrong length */
	{
		GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
		GENERAL_NAME *g = GENERAL_NAME_new();
		ASN1_OCTET_STRING *ip = ASN1_OCTET_STRING_new();

		o.san = NULL;
		x = tc_cert(&o, k);
		ASN1_OCTET_STRING_set(ip, (const unsigned char *)"\x0a\x00\x00\x01\x00", 5);
		GENERAL_NAME_set0_value(g, GEN_IPADD, ip);
		sk_GENERAL_NAME_push(gens, g);
		X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT);
		GENERAL_NAMES_free(gens);
		assert_true(tc_sign(x, k, NULL));
		der = tc_der(x, &len);
		expect_parse_error(der, len, "IP address has 5 bytes");
		free(der);
		X509_free(x);
	}
	EVP_PKEY_free(k);
}

static void test_dns_name_matches(void **state)
{
	static const struct { const char *pattern, *name; bool match; } cases[] = {
		{ "example.com", "example.com", true },
		{ "Example.COM", "example.com", true },
		{ "example.com.", "example.com", true },
		{ "example.com", "www.example.com", false },
		{ "*.example.com", "www.example.com", true },
		{ "*.example.com", "WWW.Example.Com", true },
		{ "*.example.com", "example.com", false },
		{ "*.example.com", "a.b.example.com", false },
		{ "*.example.com", ".example.com", false },
		{ "*.example.com", "wwwexample.com", false },
		{ "*.com", "example.com", false },
		{ "*", "example", false },
		{ "w*.example.com", "www.example.com", false },
		{ "*.*.example.com", "a.b.example.com", false },
		{ "www.*.com", "www.example.com", false },
		{ "*.example.com", "*.example.com", true },
		{ "", "", false },
		{ "example.com", "", false },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (aclm_dns_name_matches(cases[i].pattern, cases[i].name) != cases[i].match)
			fail_msg("'%s' vs '%s': expected %s", cases[i].pattern, cases[i].name,
			         cases[i].match ? "match" : "no match");
	}
	assert_false(aclm_dns_name_matches(NULL, "a"));
	assert_false(aclm_dns_name_matches("a", NULL));
}

static void test_helpers(void **state)
{
	struct aclm_cert c;
	enum aclm_level l = ACLM_LEVEL_NONE;
	char buf[256], small[12];

	assert_string_equal(aclm_key_type_name(ACLM_KEY_RSA), "rsa");
	assert_string_equal(aclm_key_type_name(ACLM_KEY_EC), "ec");
	assert_string_equal(aclm_key_type_name(ACLM_KEY_ED25519), "ed25519");
	assert_string_equal(aclm_key_type_name(ACLM_KEY_ED448), "ed448");
	assert_string_equal(aclm_key_type_name(ACLM_KEY_SM2), "sm2");
	assert_string_equal(aclm_key_type_name(ACLM_KEY_DSA), "dsa");
	assert_string_equal(aclm_key_type_name(ACLM_KEY_UNKNOWN), "unknown");

	memset(&c, 0, sizeof(c));
	c.key_type = ACLM_KEY_DSA;
	c.key_bits = 2048;
	aclm_cert_key_label(&c, buf, sizeof(buf));
	assert_string_equal(buf, "dsa2048");
	c.key_type = ACLM_KEY_UNKNOWN;
	aclm_cert_key_label(&c, buf, sizeof(buf));
	assert_string_equal(buf, "unknown");
	c.key_type = ACLM_KEY_RSA;
	c.key_bits = 4096;
	aclm_cert_key_label(&c, small, 4);
	assert_string_equal(small, "rsa");           /* truncated, terminated */

	assert_string_equal(aclm_level_name(ACLM_LEVEL_NONE), "");
	assert_string_equal(aclm_level_name(ACLM_LEVEL_DV), "dv");
	assert_string_equal(aclm_level_name(ACLM_LEVEL_OV), "ov");
	assert_string_equal(aclm_level_name(ACLM_LEVEL_IV), "iv");
	assert_string_equal(aclm_level_name(ACLM_LEVEL_EV), "ev");
	assert_int_equal(aclm_level_parse("EV", &l), ACLM_OK);
	assert_int_equal(l, ACLM_LEVEL_EV);
	assert_int_equal(aclm_level_parse("dv", &l), ACLM_OK);
	assert_int_equal(l, ACLM_LEVEL_DV);
	assert_int_equal(aclm_level_parse("none", &l), ACLM_OK);
	assert_int_equal(l, ACLM_LEVEL_NONE);
	assert_int_equal(aclm_level_parse("gold", &l), ACLM_ERR_PARSE);
	assert_non_null(strstr(aclm_errmsg(), "'gold' is not a validation level"));

	assert_string_equal(aclm_san_type_name(ACLM_SAN_DNS), "DNS");
	assert_string_equal(aclm_san_type_name(ACLM_SAN_IP), "IP");
	assert_string_equal(aclm_san_type_name(ACLM_SAN_EMAIL), "email");
	assert_string_equal(aclm_san_type_name(ACLM_SAN_URI), "URI");

	aclm_key_usage_str(ACLM_KU_DIGITAL_SIGNATURE | ACLM_KU_KEY_ENCIPHERMENT, buf, sizeof(buf));
	assert_string_equal(buf, "digitalSignature,keyEncipherment");
	aclm_key_usage_str(0x1ff, buf, sizeof(buf));
	assert_string_equal(buf, "digitalSignature,nonRepudiation,keyEncipherment,dataEncipherment,"
	                         "keyAgreement,keyCertSign,cRLSign,encipherOnly,decipherOnly");
	aclm_key_usage_str(0, buf, sizeof(buf));
	assert_string_equal(buf, "");
	aclm_key_usage_str(ACLM_KU_DIGITAL_SIGNATURE | ACLM_KU_CRL_SIGN, small, sizeof(small));
	assert_true(strlen(small) < sizeof(small));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ca_fields),
		cmocka_unit_test(test_rsa_leaf_all_fields),
		cmocka_unit_test(test_key_types),
		cmocka_unit_test(test_rsa_sha384_self_signed),
		cmocka_unit_test(test_policy_levels),
		cmocka_unit_test(test_v1_no_extensions),
		cmocka_unit_test(test_names_utf8_and_fallbacks),
		cmocka_unit_test(test_serials),
		cmocka_unit_test(test_san_hostile_bytes_escaped),
		cmocka_unit_test(test_undecodable_public_key),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_dns_name_matches),
		cmocka_unit_test(test_helpers),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
