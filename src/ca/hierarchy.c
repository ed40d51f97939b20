/* CA hierarchies: a root and an issuing intermediate per algorithm, their
 * keys sealed in the store, and the signing context every other file of
 * src/ca uses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "aclm/buf.h"
#include "aclm/bundle.h"
#include "aclm/ca.h"
#include "aclm/csr.h"
#include "aclm/err.h"
#include "aclm/keywrap.h"
#include "aclm/store.h"
#include "aclm/store_ca.h"
#include "aclm/str.h"
#include "aclm/timeutil.h"
#include "aclm/x509.h"
#include "ca-int.h"

#define ROOT_VALIDITY (20 * 365 * 86400LL)
#define ISSUING_VALIDITY (8 * 365 * 86400LL)

static const char *const algo_names[ACLM_CA_N_ALGOS] = { "ecdsa", "rsa", "sm2" };
static const char *const algo_labels[ACLM_CA_N_ALGOS] = { "ECDSA", "RSA", "SM2" };

const char *aclm_ca_algo_name(enum aclm_ca_algo a)
{
	return (unsigned)a < ACLM_CA_N_ALGOS ? algo_names[a] : "unknown";
}

int aclm_ca_algo_parse(const char *s, enum aclm_ca_algo *out)
{
	for (int i = 0; i < ACLM_CA_N_ALGOS; i++) {
		if (strcmp(s, algo_names[i]) == 0 || (i == ACLM_CA_ECDSA && strcmp(s, "ec") == 0)) {
			*out = (enum aclm_ca_algo)i;
			return ACLM_OK;
		}
	}
	return aclm_error(ACLM_ERR_USAGE, "unknown CA algorithm '%s' (ecdsa, rsa or sm2)", s);
}

bool ca_key_is_sm2(EVP_PKEY *pk)
{
	char group[32];
	size_t len = 0;

	if (EVP_PKEY_is_a(pk, "SM2"))
		return true;
	return EVP_PKEY_is_a(pk, "EC") &&
	       EVP_PKEY_get_utf8_string_param(pk, "group", group, sizeof(group), &len) == 1 &&
	       strcmp(group, "SM2") == 0;
}

int ca_algo_of_key(EVP_PKEY *pk, enum aclm_ca_algo *algo)
{
	char group[32];
	size_t len = 0;

	if (ca_key_is_sm2(pk)) {
		*algo = ACLM_CA_SM2;
		return ACLM_OK;
	}
	if (EVP_PKEY_is_a(pk, "RSA")) {
		int bits = EVP_PKEY_get_bits(pk);
		if (bits < 2048 || bits > 8192)
			return aclm_error(ACLM_ERR_UNSUPPORTED, "RSA key of %d bits (2048 to 8192 "
			                  "accepted)", bits);
		*algo = ACLM_CA_RSA;
		return ACLM_OK;
	}
	if (EVP_PKEY_is_a(pk, "EC")) {
		if (EVP_PKEY_get_utf8_string_param(pk, "group", group, sizeof(group), &len) != 1)
			return aclm_error(ACLM_ERR_UNSUPPORTED, "EC key without a named curve");
		if (strcmp(group, "prime256v1") != 0 && strcmp(group, "secp384r1") != 0 &&
		    strcmp(group, "P-256") != 0 && strcmp(group, "P-384") != 0)
			return aclm_error(ACLM_ERR_UNSUPPORTED, "EC key on curve %s (P-256, P-384 or "
			                  "SM2 accepted)", group);
		*algo = ACLM_CA_ECDSA;
		return ACLM_OK;
	}
	return aclm_error(ACLM_ERR_UNSUPPORTED, "key type %s (RSA, ECDSA or SM2 accepted)",
	                  EVP_PKEY_get0_type_name(pk) != NULL ? EVP_PKEY_get0_type_name(pk) : "?");
}

int ca_sign_ctx(EVP_PKEY *key, EVP_MD_CTX **mctx, EVP_PKEY_CTX **pctx_out)
{
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	const EVP_MD *md = EVP_sha256();

	if (m == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	if (ca_key_is_sm2(key)) {
		/* GB/T 32918: Z = SM3(ENTL | ID | curve | key) with the default ID. */
		md = EVP_sm3();
		pctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
		if (pctx == NULL || EVP_PKEY_CTX_set1_id(pctx, ACLM_SM2_DEFAULT_ID,
		                                         strlen(ACLM_SM2_DEFAULT_ID)) <= 0) {
			EVP_PKEY_CTX_free(pctx);
			EVP_MD_CTX_free(m);
			return aclm_error_openssl(ACLM_ERR_CRYPTO, "SM2 distinguishing ID");
		}
		EVP_MD_CTX_set_pkey_ctx(m, pctx);
	} else if (EVP_PKEY_is_a(key, "EC") && EVP_PKEY_get_bits(key) > 256) {
		md = EVP_sha384();
	}
	if (EVP_DigestSignInit(m, NULL, md, NULL, key) != 1) {
		EVP_MD_CTX_free(m);
		EVP_PKEY_CTX_free(pctx);
		return aclm_error_openssl(ACLM_ERR_CRYPTO, "signing context");
	}
	*mctx = m;
	*pctx_out = pctx;
	return ACLM_OK;
}

int ca_random_serial(ASN1_INTEGER **out)
{
	unsigned char b[16];
	BIGNUM *bn = NULL;

	if (RAND_bytes(b, sizeof(b)) != 1)
		return aclm_error_openssl(ACLM_ERR_CRYPTO, "random serial");
	b[0] &= 0x7f;
	b[0] |= 0x01;  /* never zero, always 16 bytes */
	bn = BN_bin2bn(b, sizeof(b), NULL);
	*out = bn != NULL ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
	BN_free(bn);
	return *out != NULL ? ACLM_OK : aclm_error(ACLM_ERR_NOMEM, "out of memory");
}

int ca_add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&ctx, issuer != NULL ? issuer : cert, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (ext == NULL)
		return aclm_error_openssl(ACLM_ERR_CRYPTO, "certificate extension %s = %s",
		                          OBJ_nid2sn(nid), value);
	ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? ACLM_OK : aclm_error_openssl(ACLM_ERR_CRYPTO, "add extension %s",
	                                         OBJ_nid2sn(nid));
}

int ca_store_cert(struct aclm_store *st, const char *ca, X509 *x, int64_t *id,
                  char serial_hex[65])
{
	unsigned char *der = NULL;
	struct aclm_cert *c = NULL;
	char loc[160];
	bool is_new = false;
	int n = i2d_X509(x, &der), rc;

	if (n <= 0)
		return aclm_error_openssl(ACLM_ERR_CRYPTO, "encode certificate");
	if ((rc = aclm_cert_parse_der(der, (size_t)n, &c)) != ACLM_OK)
		goto out;
	snprintf(loc, sizeof(loc), "ca:%s", ca);
	if ((rc = aclm_store_put_cert(st, c, id, &is_new)) != ACLM_OK ||
	    (rc = aclm_store_add_observation(st, *id, ACLM_SRC_CA, loc, aclm_now())) != ACLM_OK)
		goto out;
	if (serial_hex != NULL)
		aclm_strlcpy(serial_hex, c->serial_hex, 65);
out:
	aclm_cert_free(c);
	OPENSSL_free(der);
	return rc;
}

int ca_load_cert(struct aclm_store *st, int64_t cert_id, X509 **out)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	size_t len = 0;
	int rc;

	if ((rc = aclm_store_get_cert_der(st, cert_id, &der, &len)) != ACLM_OK)
		return rc;
	p = der;
	*out = d2i_X509(NULL, &p, (long)len);
	free(der);
	return *out != NULL ? ACLM_OK
	                    : aclm_error_openssl(ACLM_ERR_PARSE, "stored certificate %lld",
	                                         (long long)cert_id);
}

int ca_key_from_pkcs8(const unsigned char *pkcs8, size_t len, EVP_PKEY **out)
{
	const unsigned char *p = pkcs8;
	PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)len);

	if (p8 == NULL)
		return aclm_error_openssl(ACLM_ERR_CRYPTO, "CA key is not PKCS#8 DER");
	*out = EVP_PKCS82PKEY(p8);
	PKCS8_PRIV_KEY_INFO_free(p8);
	return *out != NULL ? ACLM_OK : aclm_error_openssl(ACLM_ERR_CRYPTO, "decode the CA key");
}

/* The sealed key of a certificate we made, opened. */
static int load_key(struct aclm_store *st, const struct aclm_kek *kek, X509 *cert,
                    EVP_PKEY **out)
{
	unsigned char spki[32], *sealed = NULL, *pkcs8 = NULL;
	unsigned char *pub = NULL;
	size_t sealed_len = 0, pkcs8_len = 0;
	char hex[65];
	unsigned int md_len = 0;
	int n, rc;

	n = i2d_PUBKEY(X509_get0_pubkey(cert), &pub);
	if (n <= 0 || EVP_Digest(pub, (size_t)n, spki, &md_len, EVP_sha256(), NULL) != 1) {
		OPENSSL_free(pub);
		return aclm_error_openssl(ACLM_ERR_CRYPTO, "CA key: public key hash");
	}
	OPENSSL_free(pub);
	aclm_hex_encode(spki, sizeof(spki), hex);
	if ((rc = aclm_store_get_private_key(st, hex, &sealed, &sealed_len)) != ACLM_OK) {
		if (rc == ACLM_ERR_NOTFOUND)
			aclm_error(rc, "the CA key %.16s... is not in the store", hex);
		return rc;
	}
	rc = aclm_keywrap_open(kek, spki, sizeof(spki), sealed, sealed_len, &pkcs8, &pkcs8_len);
	free(sealed);
	if (rc != ACLM_OK)
		return aclm_error_wrap(rc, "open the CA key");
	rc = ca_key_from_pkcs8(pkcs8, pkcs8_len, out);
	OPENSSL_clear_free(pkcs8, pkcs8_len);
	return rc;
}

int ca_load_issuer(struct aclm_store *st, const struct aclm_kek *kek, const char *ca,
                   enum aclm_ca_algo algo, X509 **cert, EVP_PKEY **key)
{
	struct aclm_ca_hier_row h;
	int rc;

	*cert = NULL;
	*key = NULL;
	rc = aclm_store_ca_hier_get(st, ca, aclm_ca_algo_name(algo), &h);
	if (rc == ACLM_ERR_NOTFOUND)
		return aclm_error(rc, "CA '%s' has no %s hierarchy (run `aclm ca init`)", ca,
		                  aclm_ca_algo_name(algo));
	if (rc != ACLM_OK)
		return rc;
	rc = ca_load_cert(st, h.issuing_cert_id, cert);
	aclm_ca_hier_row_free(&h);
	if (rc == ACLM_OK && kek != NULL)
		rc = load_key(st, kek, *cert, key);
	if (rc != ACLM_OK) {
		X509_free(*cert);
		*cert = NULL;
	}
	return rc;
}

/* One CA certificate: self-signed when issuer is NULL. */
static int make_ca_cert(const char *cn, EVP_PKEY *pub, X509 *issuer, EVP_PKEY *issuer_key,
                        int64_t validity, bool is_root, X509 **out)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	ASN1_INTEGER *serial = NULL;
	EVP_MD_CTX *mctx = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	int rc = ACLM_ERR_CRYPTO;

	if (x == NULL || name == NULL) {
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"aclm",
	                                -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
	                                -1, 0)) {
		rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "CA name %s", cn);
		goto out;
	}
	if ((rc = ca_random_serial(&serial)) != ACLM_OK)
		goto out;
	rc = ACLM_ERR_CRYPTO;
	if (!X509_set_version(x, 2) || !X509_set_serialNumber(x, serial) ||
	    !X509_set_subject_name(x, name) ||
	    !X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name) ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), (long)validity) == NULL ||
	    !X509_set_pubkey(x, pub)) {
		rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "CA certificate %s", cn);
		goto out;
	}
	if ((rc = ca_add_ext(x, issuer, NID_basic_constraints,
	                     is_root ? "critical,CA:TRUE" : "critical,CA:TRUE,pathlen:0")) != ACLM_OK ||
	    (rc = ca_add_ext(x, issuer, NID_key_usage,
	                     is_root ? "critical,keyCertSign,cRLSign"
	                             : "critical,digitalSignature,keyCertSign,cRLSign")) != ACLM_OK ||
	    (rc = ca_add_ext(x, issuer, NID_subject_key_identifier, "hash")) != ACLM_OK)
		goto out;
	if (!is_root && (rc = ca_add_ext(x, issuer, NID_authority_key_identifier,
	                                 "keyid:always")) != ACLM_OK)
		goto out;
	if ((rc = ca_sign_ctx(issuer_key, &mctx, &pctx)) != ACLM_OK)
		goto out;
	if (X509_sign_ctx(x, mctx) <= 0) {
		rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "sign CA certificate %s", cn);
		goto out;
	}
	*out = x;
	x = NULL;
	rc = ACLM_OK;
out:
	EVP_MD_CTX_free(mctx);
	EVP_PKEY_CTX_free(pctx);
	ASN1_INTEGER_free(serial);
	X509_NAME_free(name);
	X509_free(x);
	return rc;
}

/* Generate a key, return it opened and its PKCS#8 sealed. */
static int new_key(const struct aclm_kek *kek, enum aclm_keygen kind, EVP_PKEY **pk,
                   unsigned char **sealed, size_t *sealed_len, char spki_hex[65])
{
	unsigned char *pkcs8 = NULL, spki[32];
	size_t pkcs8_len = 0;
	int rc;

	if ((rc = aclm_key_generate(kind, &pkcs8, &pkcs8_len)) != ACLM_OK)
		return rc;
	if ((rc = aclm_key_spki_sha256(pkcs8, pkcs8_len, spki, spki_hex)) != ACLM_OK ||
	    (rc = aclm_keywrap_seal(kek, spki, sizeof(spki), pkcs8, pkcs8_len, sealed,
	                            sealed_len)) != ACLM_OK)
		goto out;
	if ((rc = ca_key_from_pkcs8(pkcs8, pkcs8_len, pk)) != ACLM_OK) {
		free(*sealed);
		*sealed = NULL;
	}
out:
	OPENSSL_clear_free(pkcs8, pkcs8_len);
	return rc;
}

static int create_hierarchy(struct aclm_store *st, const struct aclm_kek *kek, const char *ca,
                            enum aclm_ca_algo algo)
{
	static const enum aclm_keygen root_kind[] = { ACLM_KEYGEN_EC384, ACLM_KEYGEN_RSA4096,
	                                               ACLM_KEYGEN_SM2 };
	static const enum aclm_keygen issuing_kind[] = { ACLM_KEYGEN_EC256, ACLM_KEYGEN_RSA2048,
	                                                  ACLM_KEYGEN_SM2 };
	EVP_PKEY *root_key = NULL, *int_key = NULL;
	unsigned char *root_sealed = NULL, *int_sealed = NULL;
	size_t root_sealed_len = 0, int_sealed_len = 0;
	char root_spki[65], int_spki[65], cn[128];
	X509 *root = NULL, *inter = NULL;
	int64_t root_id = 0, int_id = 0;
	bool stored = false;
	int rc;

	if ((rc = new_key(kek, root_kind[algo], &root_key, &root_sealed, &root_sealed_len,
	                  root_spki)) != ACLM_OK ||
	    (rc = new_key(kek, issuing_kind[algo], &int_key, &int_sealed, &int_sealed_len,
	                  int_spki)) != ACLM_OK)
		goto out;
	snprintf(cn, sizeof(cn), "aclm %s %s Root CA", ca, algo_labels[algo]);
	if ((rc = make_ca_cert(cn, root_key, NULL, root_key, ROOT_VALIDITY, true, &root)) != ACLM_OK)
		goto out;
	snprintf(cn, sizeof(cn), "aclm %s %s Issuing CA", ca, algo_labels[algo]);
	if ((rc = make_ca_cert(cn, int_key, root, root_key, ISSUING_VALIDITY, false,
	                       &inter)) != ACLM_OK)
		goto out;
	if ((rc = aclm_store_begin(st)) != ACLM_OK)
		goto out;
	if ((rc = ca_store_cert(st, ca, root, &root_id, NULL)) != ACLM_OK ||
	    (rc = ca_store_cert(st, ca, inter, &int_id, NULL)) != ACLM_OK ||
	    (rc = aclm_store_put_private_key(st, root_spki, root_sealed, root_sealed_len,
	                                     &stored)) != ACLM_OK ||
	    (rc = aclm_store_put_private_key(st, int_spki, int_sealed, int_sealed_len,
	                                     &stored)) != ACLM_OK ||
	    (rc = aclm_store_ca_hier_add(st, ca, algo_names[algo], root_id, int_id)) != ACLM_OK) {
		aclm_store_rollback(st);
		goto out;
	}
	{
		char detail[256];
		snprintf(detail, sizeof(detail), "{\"ca\":\"%s\",\"algo\":\"%s\",\"root\":%lld,"
		         "\"issuing\":%lld}", ca, algo_names[algo], (long long)root_id,
		         (long long)int_id);
		if ((rc = aclm_store_append_event(st, "ca.created", ca, detail)) != ACLM_OK) {
			aclm_store_rollback(st);
			goto out;
		}
	}
	rc = aclm_store_commit(st);
out:
	X509_free(root);
	X509_free(inter);
	EVP_PKEY_free(root_key);
	EVP_PKEY_free(int_key);
	free(root_sealed);
	free(int_sealed);
	return rc;
}

/* A CA name goes into URLs and certificate names: keep it simple. */
static int check_name(const char *ca)
{
	size_t n = strlen(ca);

	if (n == 0 || n > 32)
		return aclm_error(ACLM_ERR_USAGE, "CA name '%s': 1 to 32 characters", ca);
	for (size_t i = 0; i < n; i++) {
		char c = ca[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return aclm_error(ACLM_ERR_USAGE, "CA name '%s': only a-z, 0-9, '-' and '_'",
			                  ca);
	}
	return ACLM_OK;
}

int aclm_ca_init(struct aclm_store *st, const struct aclm_kek *kek, const char *ca,
                 int *n_created)
{
	int rc;

	*n_created = 0;
	if ((rc = check_name(ca)) != ACLM_OK)
		return rc;
	for (int a = 0; a < ACLM_CA_N_ALGOS; a++) {
		struct aclm_ca_hier_row h;
		rc = aclm_store_ca_hier_get(st, ca, algo_names[a], &h);
		if (rc == ACLM_OK) {
			aclm_ca_hier_row_free(&h);
			continue;
		}
		if (rc != ACLM_ERR_NOTFOUND)
			return rc;
		if ((rc = create_hierarchy(st, kek, ca, (enum aclm_ca_algo)a)) != ACLM_OK)
			return aclm_error_wrap(rc, "CA %s: %s hierarchy", ca, algo_names[a]);
		(*n_created)++;
	}
	return ACLM_OK;
}

static int exists_fn(void *ctx, const struct aclm_ca_hier_row *r)
{
	(void)r;
	*(bool *)ctx = true;
	return 1;
}

int aclm_ca_exists(struct aclm_store *st, const char *ca, bool *exists)
{
	int rc;

	*exists = false;
	rc = aclm_store_ca_hier_list(st, ca, exists_fn, exists);
	return rc < 0 ? rc : ACLM_OK;
}

static int append_pem(struct aclm_store *st, int64_t cert_id, struct aclm_buf *b)
{
	unsigned char *der = NULL;
	char *pem = NULL;
	size_t der_len = 0, pem_len = 0;
	int rc;

	if ((rc = aclm_store_get_cert_der(st, cert_id, &der, &der_len)) == ACLM_OK &&
	    (rc = aclm_pem_encode_cert(der, der_len, &pem, &pem_len)) == ACLM_OK)
		rc = aclm_buf_append(b, pem, pem_len);
	free(der);
	free(pem);
	return rc;
}

struct roots_ctx {
	struct aclm_store *st;
	struct aclm_buf *b;
	int n;
};

static int roots_fn(void *ctx, const struct aclm_ca_hier_row *r)
{
	struct roots_ctx *c = ctx;
	c->n++;
	return append_pem(c->st, r->root_cert_id, c->b);
}

int aclm_ca_roots_pem(struct aclm_store *st, const char *ca, char **pem, size_t *pem_len)
{
	struct aclm_buf b;
	struct roots_ctx c = { st, &b, 0 };
	int rc;

	aclm_buf_init(&b, 1u << 20);
	rc = aclm_store_ca_hier_list(st, ca, roots_fn, &c);
	if (rc == ACLM_OK && c.n == 0)
		rc = aclm_error(ACLM_ERR_NOTFOUND, "no CA named '%s' (run `aclm ca init`)", ca);
	if (rc != ACLM_OK) {
		aclm_buf_free(&b);
		return rc;
	}
	*pem = aclm_buf_steal(&b, pem_len);
	return *pem != NULL ? ACLM_OK : aclm_error(ACLM_ERR_NOMEM, "out of memory");
}

int aclm_ca_chain_pem(struct aclm_store *st, const char *ca, enum aclm_ca_algo algo,
                      bool with_root, char **pem, size_t *pem_len)
{
	struct aclm_ca_hier_row h;
	struct aclm_buf b;
	int rc;

	if ((rc = aclm_store_ca_hier_get(st, ca, algo_names[algo], &h)) != ACLM_OK) {
		if (rc == ACLM_ERR_NOTFOUND)
			aclm_error(rc, "CA '%s' has no %s hierarchy", ca, algo_names[algo]);
		return rc;
	}
	aclm_buf_init(&b, 1u << 20);
	rc = append_pem(st, h.issuing_cert_id, &b);
	if (rc == ACLM_OK && with_root)
		rc = append_pem(st, h.root_cert_id, &b);
	aclm_ca_hier_row_free(&h);
	if (rc != ACLM_OK) {
		aclm_buf_free(&b);
		return rc;
	}
	*pem = aclm_buf_steal(&b, pem_len);
	return *pem != NULL ? ACLM_OK : aclm_error(ACLM_ERR_NOMEM, "out of memory");
}
