/* Test certificates made on the fly with the OpenSSL API (header-only; for
 * tests/unit).  Keys are generated per run; nothing here is secret. */
#ifndef ACLM_TESTCERT_H
#define ACLM_TESTCERT_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* "RSA" (2048), "RSA:3072", "EC:P-256", "EC:P-384", "EC:P-521", "EC:SM2"
 * (EC-typed key on the SM2 curve), "SM2" (SM2-typed key), "ED25519", "ED448". */
static inline EVP_PKEY *tc_key(const char *spec)
{
	if (strcmp(spec, "RSA") == 0)
		return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	if (strncmp(spec, "RSA:", 4) == 0)
		return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)strtoul(spec + 4, NULL, 10));
	if (strncmp(spec, "EC:", 3) == 0)
		return EVP_PKEY_Q_keygen(NULL, NULL, "EC", spec + 3);
	return EVP_PKEY_Q_keygen(NULL, NULL, spec);
}

static inline bool tc_is_sm2(EVP_PKEY *k)
{
	char group[32];
	size_t n;

	if (EVP_PKEY_is_a(k, "SM2"))
		return true;
	return EVP_PKEY_is_a(k, "EC") &&
	       EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof(group), &n) == 1 &&
	       strcmp(group, "SM2") == 0;
}

struct tc_opts {
	const char *subject;      /* "/CN=a/O=b/C=US" (UTF-8) */
	const char *issuer_name;  /* subject of a self-signed cert when no issuer; default subject */
	X509 *issuer;             /* NULL: self-signed with key */
	EVP_PKEY *issuer_key;
	long serial;              /* 0: 1 */
	const char *serial_hex;   /* overrides serial */
	const char *not_before;   /* "YYYYMMDDHHMMSSZ"; default now */
	const char *not_after;    /* default now + 30 days */
	bool v1;                  /* no extensions, version 1 */
	const char *bc;           /* "critical,CA:TRUE,pathlen:1" */
	const char *ku;
	const char *eku;
	const char *san;          /* "DNS:a.example,IP:192.0.2.1,email:x@y,URI:https://x/" */
	const char *policies;     /* "2.23.140.1.2.2,1.2.3.4" */
	bool ski;
	bool aki;
	const char *md;           /* digest for RSA/EC; default SHA256 */
};

static inline int tc_add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (ext == NULL)
		return 0;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok;
}

/* certificatePolicies from "oid,oid" (the config syntax needs a database). */
static inline int tc_add_policies(X509 *x, const char *list)
{
	CERTIFICATEPOLICIES *pols = sk_POLICYINFO_new_null();
	char buf[512], *save = NULL, *tok;
	int ok = pols != NULL;

	strncpy(buf, list, sizeof(buf) - 1);
	buf[sizeof(buf) - 1] = '\0';
	for (tok = strtok_r(buf, ",", &save); ok && tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		POLICYINFO *pi = POLICYINFO_new();
		ok = pi != NULL && (pi->policyid = OBJ_txt2obj(tok, 1)) != NULL &&
		     sk_POLICYINFO_push(pols, pi) > 0;
		if (!ok)
			POLICYINFO_free(pi);
	}
	ok = ok && X509_add1_ext_i2d(x, NID_certificate_policies, pols, 0, X509V3_ADD_DEFAULT) == 1;
	CERTIFICATEPOLICIES_free(pols);
	return ok;
}

static inline int tc_set_name(X509_NAME *n, const char *s)
{
	/* "/K=V/K=V" */
	char buf[512], *save = NULL, *tok;

	strncpy(buf, s, sizeof(buf) - 1);
	buf[sizeof(buf) - 1] = '\0';
	for (tok = strtok_r(buf, "/", &save); tok != NULL; tok = strtok_r(NULL, "/", &save)) {
		char *eq = strchr(tok, '=');
		if (eq == NULL)
			return 0;
		*eq = '\0';
		if (X509_NAME_add_entry_by_txt(n, tok, MBSTRING_UTF8, (unsigned char *)eq + 1, -1, -1, 0) != 1)
			return 0;
	}
	return 1;
}

/* Sign x with key the way its type wants: SM3 + the default SM2 id for
 * SM2, no digest for EdDSA, else md (default SHA-256). */
static inline int tc_sign(X509 *x, EVP_PKEY *key, const char *md)
{
	EVP_MD_CTX *mctx;
	EVP_PKEY_CTX *pctx = NULL;
	EVP_PKEY *sm2 = NULL;
	int ok;

	if (EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448"))
		return X509_sign(x, key, NULL) > 0;
	mctx = EVP_MD_CTX_new();
	if (mctx == NULL)
		return 0;
	if (tc_is_sm2(key)) {
		/* An "EC" key on the SM2 curve cannot make SM2 signatures in 3.0;
		 * a DER round trip gives the same key typed "SM2". */
		unsigned char *der = NULL;
		const unsigned char *p;
		int n = i2d_PrivateKey(key, &der);

		p = der;
		sm2 = n > 0 ? d2i_AutoPrivateKey(NULL, &p, n) : NULL;
		OPENSSL_clear_free(der, n > 0 ? (size_t)n : 0);
		ok = sm2 != NULL &&
		     EVP_DigestSignInit_ex(mctx, &pctx, "SM3", NULL, NULL, sm2, NULL) == 1 &&
		     EVP_PKEY_CTX_set1_id(pctx, "1234567812345678", 16) == 1;
	} else {
		ok = EVP_DigestSignInit_ex(mctx, &pctx, md != NULL ? md : "SHA256", NULL, NULL, key, NULL) == 1;
	}
	ok = ok && X509_sign_ctx(x, mctx) > 0;
	EVP_MD_CTX_free(mctx);
	EVP_PKEY_free(sm2);
	return ok;
}

static inline X509 *tc_cert(const struct tc_opts *o, EVP_PKEY *key)
{
	X509 *x = X509_new();
	X509 *issuer = o->issuer;
	EVP_PKEY *signer = o->issuer_key != NULL ? o->issuer_key : key;
	BIGNUM *bn = NULL;
	bool ok;

	if (x == NULL)
		return NULL;
	ok = X509_set_version(x, o->v1 ? X509_VERSION_1 : X509_VERSION_3) == 1 &&
	     tc_set_name(X509_get_subject_name(x), o->subject) &&
	     X509_set_pubkey(x, key) == 1;
	if (ok && o->serial_hex != NULL) {
		ok = BN_hex2bn(&bn, o->serial_hex) > 0 &&
		     BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
		BN_free(bn);
	} else if (ok) {
		ok = ASN1_INTEGER_set(X509_get_serialNumber(x), o->serial != 0 ? o->serial : 1) == 1;
	}
	if (ok && issuer != NULL)
		ok = X509_set_issuer_name(x, X509_get_subject_name(issuer)) == 1;
	else if (ok && o->issuer_name != NULL)
		ok = tc_set_name(X509_get_issuer_name(x), o->issuer_name);
	else if (ok)
		ok = X509_set_issuer_name(x, X509_get_subject_name(x)) == 1;
	if (ok && o->not_before != NULL)
		ok = ASN1_TIME_set_string_X509(X509_getm_notBefore(x), o->not_before) == 1;
	else if (ok)
		ok = X509_gmtime_adj(X509_getm_notBefore(x), 0) != NULL;
	if (ok && o->not_after != NULL)
		ok = ASN1_TIME_set_string_X509(X509_getm_notAfter(x), o->not_after) == 1;
	else if (ok)
		ok = X509_gmtime_adj(X509_getm_notAfter(x), 30L * 86400) != NULL;
	if (ok && !o->v1) {
		X509 *iss = issuer != NULL ? issuer : x;
		if (o->bc != NULL)
			ok = ok && tc_add_ext(x, iss, NID_basic_constraints, o->bc);
		if (o->ku != NULL)
			ok = ok && tc_add_ext(x, iss, NID_key_usage, o->ku);
		if (o->eku != NULL)
			ok = ok && tc_add_ext(x, iss, NID_ext_key_usage, o->eku);
		if (o->san != NULL)
			ok = ok && tc_add_ext(x, iss, NID_subject_alt_name, o->san);
		if (o->policies != NULL)
			ok = ok && tc_add_policies(x, o->policies);
		if (o->ski)
			ok = ok && tc_add_ext(x, iss, NID_subject_key_identifier, "hash");
		if (o->aki)
			ok = ok && tc_add_ext(x, iss, NID_authority_key_identifier, "keyid:always");
	}
	ok = ok && tc_sign(x, signer, o->md);
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* DER of x, malloc'd. */
static inline unsigned char *tc_der(X509 *x, size_t *len)
{
	int n = i2d_X509(x, NULL);
	unsigned char *buf, *p;

	if (n <= 0 || (buf = malloc((size_t)n)) == NULL)
		return NULL;
	p = buf;
	*len = (size_t)i2d_X509(x, &p);
	return buf;
}

/* Contents of a memory BIO appended to a malloc'd, NUL-terminated string. */
static inline char *tc_bio_append(char *s, BIO *b)
{
	char *data;
	long n = BIO_get_mem_data(b, &data);
	size_t old = s != NULL ? strlen(s) : 0;
	char *r = realloc(s, old + (size_t)n + 1);

	if (r == NULL) {
		free(s);
		return NULL;
	}
	memcpy(r + old, data, (size_t)n);
	r[old + (size_t)n] = '\0';
	return r;
}

static inline char *tc_pem_cert(char *s, X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());

	PEM_write_bio_X509(b, x);
	s = tc_bio_append(s, b);
	BIO_free(b);
	return s;
}

/* "PRIVATE KEY" (traditional=false) or "RSA/EC PRIVATE KEY"; with a
 * password: "ENCRYPTED PRIVATE KEY" or an RFC 1421 encrypted traditional key. */
static inline char *tc_pem_key(char *s, EVP_PKEY *k, bool traditional, const char *password)
{
	BIO *b = BIO_new(BIO_s_mem());
	const EVP_CIPHER *enc = password != NULL ? EVP_aes_256_cbc() : NULL;

	if (traditional)
		PEM_write_bio_PrivateKey_traditional(b, k, enc, NULL, 0, NULL, (void *)password);
	else if (password != NULL)
		PEM_write_bio_PKCS8PrivateKey(b, k, enc, NULL, 0, NULL, (void *)password);
	else
		PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
	s = tc_bio_append(s, b);
	BIO_free(b);
	return s;
}

static inline char *tc_append(char *s, const char *t)
{
	size_t old = s != NULL ? strlen(s) : 0, n = strlen(t);
	char *r = realloc(s, old + n + 1);

	if (r == NULL) {
		free(s);
		return NULL;
	}
	memcpy(r + old, t, n + 1);
	return r;
}

/* SHA-256 of i2d_PUBKEY(k). */
static inline void tc_spki_sha256(EVP_PKEY *k, unsigned char out[32])
{
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(k, &der);

	EVP_Digest(der, (size_t)n, out, NULL, EVP_sha256(), NULL);
	OPENSSL_free(der);
}

#endif
