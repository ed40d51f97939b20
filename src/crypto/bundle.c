/* Certificate containers -> certificates, PKCS#8 private keys and problems.
 *
 * Binary input is tried as DER certificate(s), PKCS#12 and PKCS#7, in that
 * order; anything else is scanned for PEM blocks.  The PEM scanner is ours:
 * it walks the input line by line through a bounded cursor, so every problem
 * can name the block and the line, and one bad block never hides the good
 * ones after it.  Decoded key material lives in buffers that are wiped
 * before they are freed. */
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/pkcs7.h>
#include <openssl/provider.h>
#include <openssl/x509.h>

#include "aclm/buf.h"
#include "aclm/bundle.h"
#include "aclm/err.h"
#include "aclm/str.h"
#include "crypto-int.h"

/* Problems beyond this are summarised in one line. */
#define MAX_PROBLEMS 1000
/* A PEM label longer than this is shown cut short. */
#define LABEL_MAX 64
/* Encapsulated headers (RFC 1421 Proc-Type / DEK-Info) of one block. */
#define HEADERS_MAX 1024
/* PBKDF2 iterations and MAC iterations of the PKCS#12 we write. */
#define PKCS12_WRITE_ITER 10000
/* Password-based key derivation is the one thing in a file whose cost the
 * file chooses (an iteration count of 2^31 is a five-byte INTEGER).  Each
 * derivation is limited, and so is all of them together for one input;
 * 1000000 is above what any tool writes (OWASP asks for 600000). */
#define KDF_ITER_MAX 1000000
#define KDF_BUDGET 10000000

struct parser {
	struct aclm_bundle *b;
	const char *password;        /* NULL when none was given */
	size_t cap_certs, cap_keys, cap_problems;
	bool certs_full, keys_full;
	size_t password_problem;     /* index of the first password problem, or SIZE_MAX */
	uint64_t kdf_spent;          /* key derivation iterations so far */
};

/* ---- collecting results ------------------------------------------------ */

static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return ACLM_OK;
	ncap = *cap != 0 ? *cap * 2 : 8;
	if (ncap > SIZE_MAX / elem)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	p = realloc(*arr, ncap * elem);
	if (p == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	*arr = p;
	*cap = ncap;
	return ACLM_OK;
}

static int vadd_problem(struct parser *ps, bool is_password, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
static int vadd_problem(struct parser *ps, bool is_password, const char *fmt, va_list ap)
{
	struct aclm_bundle *b = ps->b;
	struct aclm_buf msg;
	char *s;
	int rc;

	if (b->n_problems >= MAX_PROBLEMS)
		return ACLM_OK;
	if ((rc = grow((void **)&b->problems, &ps->cap_problems, b->n_problems, sizeof(char *))) != ACLM_OK)
		return rc;
	aclm_buf_init(&msg, 4096);
	if (b->n_problems == MAX_PROBLEMS - 1)
		rc = aclm_buf_printf(&msg, "more than %d problems; the rest are not listed", MAX_PROBLEMS - 1);
	else
		rc = aclm_buf_vprintf(&msg, fmt, ap);
	if (rc == ACLM_ERR_TOOBIG)
		rc = ACLM_OK; /* keep the first 4 KiB */
	s = rc == ACLM_OK ? aclm_buf_steal(&msg, NULL) : NULL;
	aclm_buf_free(&msg);
	if (s == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	if (is_password && ps->password_problem == SIZE_MAX)
		ps->password_problem = b->n_problems;
	b->problems[b->n_problems++] = s;
	return ACLM_OK;
}

static int add_problem(struct parser *ps, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int add_problem(struct parser *ps, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vadd_problem(ps, false, fmt, ap);
	va_end(ap);
	return rc;
}

/* A part that could not be used for want of the right password. */
static int add_password_problem(struct parser *ps, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int add_password_problem(struct parser *ps, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vadd_problem(ps, true, fmt, ap);
	va_end(ap);
	return rc;
}

/* The reason at the end of OpenSSL's error queue, which is then cleared. */
static const char *openssl_reason(char *buf, size_t size)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;

	aclm_strlcpy(buf, r != NULL ? r : "unknown reason", size);
	ERR_clear_error();
	return buf;
}

/* ---- key derivation budget --------------------------------------------- */

static uint64_t asn1_uint(const ASN1_INTEGER *i, uint64_t absent)
{
	uint64_t v;

	if (i == NULL)
		return absent;
	if (ASN1_INTEGER_get_uint64(&v, i) != 1) {
		ERR_clear_error();
		return UINT64_MAX;
	}
	return v;
}

/* Work of the KDF of PBES2 (PBKDF2 iterations; scrypt N*r*p). */
static uint64_t kdf_cost(const X509_ALGOR *kdf)
{
	uint64_t n = 1;

	if (OBJ_obj2nid(kdf->algorithm) == NID_id_pbkdf2) {
		PBKDF2PARAM *p = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM), kdf->parameter);
		if (p != NULL)
			n = asn1_uint(p->iter, 1);
		PBKDF2PARAM_free(p);
	} else if (OBJ_obj2nid(kdf->algorithm) == NID_id_scrypt) {
		SCRYPT_PARAMS *p = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(SCRYPT_PARAMS), kdf->parameter);
		if (p != NULL) {
			uint64_t N = asn1_uint(p->costParameter, 1), r = asn1_uint(p->blockSize, 1);
			uint64_t par = asn1_uint(p->parallelizationParameter, 1);
			n = N > UINT32_MAX || r > UINT32_MAX || par > UINT32_MAX ||
			    (r * par != 0 && N > UINT64_MAX / (r * par)) ? UINT64_MAX : N * r * par;
		}
		SCRYPT_PARAMS_free(p);
	}
	ERR_clear_error();
	return n;
}

/* Work of a password-based encryption algorithm: PBES2, or the PKCS#5 v1
 * and PKCS#12 schemes (PBEPARAM).  Parameters that do not decode cost 1:
 * OpenSSL will refuse them before deriving anything. */
static uint64_t pbe_cost(const X509_ALGOR *alg)
{
	uint64_t n = 1;

	if (alg == NULL || alg->parameter == NULL || alg->parameter->type != V_ASN1_SEQUENCE)
		return 1;
	if (OBJ_obj2nid(alg->algorithm) == NID_pbes2) {
		PBE2PARAM *p2 = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM), alg->parameter);
		if (p2 != NULL && p2->keyfunc != NULL)
			n = kdf_cost(p2->keyfunc);
		PBE2PARAM_free(p2);
	} else {
		PBEPARAM *p = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBEPARAM), alg->parameter);
		if (p != NULL)
			n = asn1_uint(p->iter, 1);
		PBEPARAM_free(p);
	}
	ERR_clear_error();
	return n;
}

/* Charge one derivation of n iterations; false (nothing charged) when it
 * is over the limit for one derivation or for the input. */
static bool kdf_affordable(struct parser *ps, uint64_t n)
{
	if (n > KDF_ITER_MAX || n > KDF_BUDGET - ps->kdf_spent)
		return false;
	ps->kdf_spent += n;
	return true;
}

static int kdf_problem(struct parser *ps, const char *where, uint64_t n)
{
	if (n > KDF_ITER_MAX)
		return add_problem(ps, "%s: refused: password-based key derivation with %" PRIu64
		                   " iterations (the limit is %d)", where, n, KDF_ITER_MAX);
	return add_problem(ps, "%s: refused: password-based key derivation adds up to more than "
	                   "%d iterations for this file", where, KDF_BUDGET);
}

static int add_cert(struct parser *ps, const unsigned char *der, size_t len, const char *where)
{
	struct aclm_bundle *b = ps->b;
	struct aclm_cert *c = NULL;
	int rc;

	if (b->n_certs >= ACLM_BUNDLE_MAX_CERTS) {
		if (ps->certs_full)
			return ACLM_OK;
		ps->certs_full = true;
		return add_problem(ps, "%s: more than %d certificates; the rest are ignored",
		                   where, ACLM_BUNDLE_MAX_CERTS);
	}
	rc = aclm_cert_parse_der(der, len, &c);
	if (rc == ACLM_ERR_NOMEM)
		return rc;
	if (rc != ACLM_OK)
		return add_problem(ps, "%s: %s", where, aclm_errmsg());
	if ((rc = grow((void **)&b->certs, &ps->cap_certs, b->n_certs, sizeof(*b->certs))) != ACLM_OK) {
		aclm_cert_free(c);
		return rc;
	}
	b->certs[b->n_certs++] = c;
	return ACLM_OK;
}

static int add_x509(struct parser *ps, X509 *x, const char *where)
{
	unsigned char *der = NULL;
	char why[128];
	int len, rc;

	len = i2d_X509(x, &der);
	if (len <= 0)
		return add_problem(ps, "%s: certificate cannot be encoded (%s)", where,
		                   openssl_reason(why, sizeof(why)));
	rc = add_cert(ps, der, (size_t)len, where);
	OPENSSL_free(der);
	return rc;
}

static void privkey_wipe(struct aclm_privkey *k)
{
	if (k->pkcs8 != NULL) {
		OPENSSL_cleanse(k->pkcs8, k->pkcs8_len);
		free(k->pkcs8);
	}
	k->pkcs8 = NULL;
	k->pkcs8_len = 0;
}

static int add_key(struct parser *ps, EVP_PKEY *pk, const char *where)
{
	struct aclm_bundle *b = ps->b;
	struct aclm_privkey k;
	PKCS8_PRIV_KEY_INFO *p8 = NULL;
	unsigned char *q;
	char *curve = NULL, why[128];
	int len, bits, rc = ACLM_OK;

	memset(&k, 0, sizeof(k));
	if (b->n_keys >= ACLM_BUNDLE_MAX_KEYS) {
		if (ps->keys_full)
			return ACLM_OK;
		ps->keys_full = true;
		return add_problem(ps, "%s: more than %d private keys; the rest are ignored",
		                   where, ACLM_BUNDLE_MAX_KEYS);
	}
	p8 = EVP_PKEY2PKCS8(pk);
	len = p8 != NULL ? i2d_PKCS8_PRIV_KEY_INFO(p8, NULL) : -1;
	if (len <= 0) {
		rc = add_problem(ps, "%s: private key cannot be converted to PKCS#8 (%s)", where,
		                 openssl_reason(why, sizeof(why)));
		goto out;
	}
	k.pkcs8 = malloc((size_t)len);
	if (k.pkcs8 == NULL) {
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
		goto out;
	}
	q = k.pkcs8;
	k.pkcs8_len = (size_t)i2d_PKCS8_PRIV_KEY_INFO(p8, &q);
	if (aclm_x509_key_spki_sha256(pk, k.spki_sha256) != ACLM_OK) {
		rc = add_problem(ps, "%s: %s", where, aclm_errmsg());
		goto out;
	}
	aclm_hex_encode(k.spki_sha256, sizeof(k.spki_sha256), k.spki_hex);
	if ((rc = aclm_x509_key_describe(pk, &k.key_type, &bits, &curve)) != ACLM_OK)
		goto out;
	if ((rc = grow((void **)&b->keys, &ps->cap_keys, b->n_keys, sizeof(*b->keys))) != ACLM_OK)
		goto out;
	b->keys[b->n_keys++] = k;
	memset(&k, 0, sizeof(k));
out:
	privkey_wipe(&k);
	free(curve);
	PKCS8_PRIV_KEY_INFO_free(p8);
	return rc;
}

/* ---- PKCS#7 and PKCS#12 ------------------------------------------------ */

static int add_pkcs7(struct parser *ps, PKCS7 *p7, const char *where)
{
	STACK_OF(X509) *certs = NULL;
	char w[160];
	int n, rc;

	if (PKCS7_type_is_signed(p7) && p7->d.sign != NULL)
		certs = p7->d.sign->cert;
	else if (PKCS7_type_is_signedAndEnveloped(p7) && p7->d.signed_and_enveloped != NULL)
		certs = p7->d.signed_and_enveloped->cert;
	else
		return add_problem(ps, "%s: PKCS#7 of type %s carries no certificates", where,
		                   OBJ_nid2sn(OBJ_obj2nid(p7->type)));
	n = sk_X509_num(certs);
	if (n <= 0)
		return add_problem(ps, "%s: PKCS#7 contains no certificates", where);
	for (int i = 0; i < n; i++) {
		snprintf(w, sizeof(w), "%s, certificate %d", where, i + 1);
		if ((rc = add_x509(ps, sk_X509_value(certs, i), w)) != ACLM_OK)
			return rc;
	}
	return ACLM_OK;
}

/* Charge the derivations of shrouded keys, in nested safes too. */
static bool pkcs12_bags_affordable(struct parser *ps, const STACK_OF(PKCS12_SAFEBAG) *bags,
                                   uint64_t *refused)
{
	for (int i = 0; i < sk_PKCS12_SAFEBAG_num(bags); i++) {
		const PKCS12_SAFEBAG *bag = sk_PKCS12_SAFEBAG_value(bags, i);
		const X509_ALGOR *alg = NULL;

		switch (PKCS12_SAFEBAG_get_nid(bag)) {
		case NID_pkcs8ShroudedKeyBag:
			X509_SIG_get0(PKCS12_SAFEBAG_get0_pkcs8(bag), &alg, NULL);
			*refused = pbe_cost(alg);
			if (!kdf_affordable(ps, *refused))
				return false;
			break;
		case NID_safeContentsBag:
			if (!pkcs12_bags_affordable(ps, PKCS12_SAFEBAG_get0_safes(bag), refused))
				return false;
			break;
		default:
			break;
		}
	}
	return true;
}

/* Walk the file as PKCS12_parse() will and charge every key derivation it
 * is going to do before it does any.  *readable is false when a safe does
 * not decrypt (PKCS12_parse would fail the same way). */
static bool pkcs12_affordable(struct parser *ps, PKCS12 *p12, const char *pass,
                              uint64_t *refused, bool *readable)
{
	STACK_OF(PKCS7) *safes = PKCS12_unpack_authsafes(p12);
	bool ok = true;

	*readable = safes != NULL;
	for (int i = 0; ok && *readable && i < sk_PKCS7_num(safes); i++) {
		PKCS7 *p7 = sk_PKCS7_value(safes, i);
		STACK_OF(PKCS12_SAFEBAG) *bags = NULL;

		switch (OBJ_obj2nid(p7->type)) {
		case NID_pkcs7_data:
			bags = PKCS12_unpack_p7data(p7);
			break;
		case NID_pkcs7_encrypted:
			if (p7->d.encrypted == NULL || p7->d.encrypted->enc_data == NULL)
				break;
			/* decrypted here, and again by PKCS12_parse() */
			*refused = pbe_cost(p7->d.encrypted->enc_data->algorithm);
			if (!kdf_affordable(ps, *refused) || !kdf_affordable(ps, *refused)) {
				ok = false;
				continue;
			}
			bags = PKCS12_unpack_p7encdata(p7, pass, -1);
			break;
		default:
			continue; /* PKCS12_parse() skips other content types */
		}
		if (bags == NULL) {
			*readable = false;
			break;
		}
		ok = pkcs12_bags_affordable(ps, bags, refused);
		sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
	}
	sk_PKCS7_pop_free(safes, PKCS7_free);
	return ok;
}

/* PKCS12_parse() and collect.  *failed is set when OpenSSL refused the
 * file (then nothing was added). */
static int unpack_pkcs12(struct parser *ps, PKCS12 *p12, const char *pass, bool *failed)
{
	EVP_PKEY *pkey = NULL;
	X509 *cert = NULL;
	STACK_OF(X509) *ca = NULL;
	uint64_t refused = 0;
	bool readable;
	char w[64];
	int rc = ACLM_OK;

	*failed = false;
	if (!pkcs12_affordable(ps, p12, pass, &refused, &readable))
		return kdf_problem(ps, "PKCS#12", refused);
	if (!readable) {
		*failed = true;
		return ACLM_OK;
	}
	if (PKCS12_parse(p12, pass, &pkey, &cert, &ca) != 1) {
		*failed = true;
		return ACLM_OK;
	}
	if (cert != NULL)
		rc = add_x509(ps, cert, "PKCS#12 certificate 1");
	for (int i = 0; rc == ACLM_OK && i < sk_X509_num(ca); i++) {
		snprintf(w, sizeof(w), "PKCS#12 certificate %d", i + (cert != NULL ? 2 : 1));
		rc = add_x509(ps, sk_X509_value(ca, i), w);
	}
	if (rc == ACLM_OK && pkey != NULL)
		rc = add_key(ps, pkey, "PKCS#12 private key");
	EVP_PKEY_free(pkey);
	X509_free(cert);
	sk_X509_pop_free(ca, X509_free);
	return rc;
}

/* Older PKCS#12 files (Windows before 2019, Java before 12, `openssl
 * pkcs12 -legacy`) encrypt with RC2-40 or DES, which OpenSSL 3 keeps in its
 * legacy provider.  Retry in a private library context that has it, made
 * this thread's default only for the call; every object created in it is
 * freed before the context is. */
static int unpack_pkcs12_legacy(struct parser *ps, PKCS12 *p12, const char *pass, bool *failed)
{
	OSSL_LIB_CTX *lctx = NULL, *prev;
	OSSL_PROVIDER *deflt = NULL, *legacy = NULL;
	int rc = ACLM_OK;

	*failed = true;
	lctx = OSSL_LIB_CTX_new();
	if (lctx != NULL) {
		deflt = OSSL_PROVIDER_load(lctx, "default");
		legacy = OSSL_PROVIDER_load(lctx, "legacy");
	}
	if (deflt != NULL && legacy != NULL) {
		prev = OSSL_LIB_CTX_set0_default(lctx);
		if (prev != NULL) {
			rc = unpack_pkcs12(ps, p12, pass, failed);
			OSSL_LIB_CTX_set0_default(prev);
		}
	}
	ERR_clear_error();
	OSSL_PROVIDER_unload(legacy);
	OSSL_PROVIDER_unload(deflt);
	OSSL_LIB_CTX_free(lctx);
	return rc;
}

static int parse_pkcs12(struct parser *ps, PKCS12 *p12)
{
	const char *candidates[3], *pass = NULL;
	const ASN1_INTEGER *mac_iter = NULL;
	uint64_t iter = 1;
	size_t n = 0;
	bool mac_ok = false, failed;
	char why[128];
	int rc;

	if (ps->password != NULL && ps->password[0] != '\0')
		candidates[n++] = ps->password;
	candidates[n++] = "";
	candidates[n++] = NULL;
	if (!PKCS12_mac_present(p12)) {
		mac_ok = true;
	} else {
		PKCS12_get0_mac(NULL, NULL, NULL, &mac_iter, p12);
		iter = asn1_uint(mac_iter, 1);
		for (size_t i = 0; i < n && !mac_ok; i++) {
			if (!kdf_affordable(ps, iter))
				return kdf_problem(ps, "PKCS#12", iter);
			if (PKCS12_verify_mac(p12, candidates[i], candidates[i] != NULL ? -1 : 0) == 1) {
				pass = candidates[i];
				mac_ok = true;
			}
		}
	}
	ERR_clear_error();
	if (!mac_ok)
		return add_password_problem(ps, "PKCS#12: wrong or missing password (MAC verification failed)");
	/* PKCS12_parse() checks the MAC again, up to twice */
	if (PKCS12_mac_present(p12) && (!kdf_affordable(ps, iter) || !kdf_affordable(ps, iter)))
		return kdf_problem(ps, "PKCS#12", iter);
	if ((rc = unpack_pkcs12(ps, p12, pass, &failed)) != ACLM_OK || !failed)
		return rc;
	openssl_reason(why, sizeof(why));
	if ((rc = unpack_pkcs12_legacy(ps, p12, pass, &failed)) != ACLM_OK || !failed)
		return rc;
	return add_problem(ps, "PKCS#12: cannot be unpacked (%s)", why);
}

/* ---- binary input ------------------------------------------------------ */

/* One or more concatenated DER certificates: true when all of data is. */
static bool is_der_certs(const unsigned char *data, size_t len)
{
	const unsigned char *p = data, *end = data + len;
	bool ok = true;

	while (ok && p < end) {
		const unsigned char *start = p;
		X509 *x = d2i_X509(NULL, &p, end - p);
		ok = x != NULL && p > start;
		X509_free(x);
	}
	return ok;
}

static int parse_binary(struct parser *ps, const unsigned char *data, size_t len, bool *found)
{
	const unsigned char *p;
	PKCS12 *p12 = NULL;
	PKCS7 *p7 = NULL;
	char w[64];
	int rc = ACLM_OK;

	*found = false;
	if (data[0] != 0x30 || len > LONG_MAX)
		return ACLM_OK;
	ERR_set_mark();
	if (is_der_certs(data, len)) {
		ERR_pop_to_mark();
		ps->b->format = ACLM_FMT_DER;
		*found = true;
		p = data;
		for (size_t i = 1; p < data + len && rc == ACLM_OK; i++) {
			const unsigned char *start = p;
			X509 *x = d2i_X509(NULL, &p, data + len - p);
			X509_free(x);
			snprintf(w, sizeof(w), "DER certificate %zu", i);
			rc = add_cert(ps, start, (size_t)(p - start), w);
		}
		ERR_clear_error();
		return rc;
	}
	p = data;
	p12 = d2i_PKCS12(NULL, &p, (long)len);
	if (p12 != NULL && p == data + len) {
		ERR_pop_to_mark();
		ps->b->format = ACLM_FMT_PKCS12;
		*found = true;
		rc = parse_pkcs12(ps, p12);
		goto out;
	}
	p = data;
	p7 = d2i_PKCS7(NULL, &p, (long)len);
	if (p7 != NULL && p == data + len) {
		ERR_pop_to_mark();
		ps->b->format = ACLM_FMT_PKCS7;
		*found = true;
		rc = add_pkcs7(ps, p7, "PKCS#7");
		goto out;
	}
	ERR_pop_to_mark();
out:
	PKCS12_free(p12);
	PKCS7_free(p7);
	return rc;
}

/* ---- PEM ---------------------------------------------------------------- */

struct cursor {
	const unsigned char *p, *end;
	size_t line;                 /* number of the line at p, from 1 */
};

struct pem_block {
	size_t index;                /* 1-based */
	size_t line;                 /* line of the BEGIN */
	char label[LABEL_MAX + 1];
	bool label_cut;
	const unsigned char *body, *body_end; /* the lines between BEGIN and END */
	size_t body_line;
	char headers[HEADERS_MAX];
	bool is_encrypted;           /* Proc-Type: 4,ENCRYPTED */
	char where[96];              /* "PEM block 3 (line 41)" */
};

/* Next line without its line end; false at the end of the input. */
static bool next_line(struct cursor *cur, const unsigned char **line, size_t *len)
{
	const unsigned char *nl;

	if (cur->p >= cur->end)
		return false;
	*line = cur->p;
	nl = memchr(cur->p, '\n', (size_t)(cur->end - cur->p));
	if (nl == NULL) {
		*len = (size_t)(cur->end - cur->p);
		cur->p = cur->end;
	} else {
		*len = (size_t)(nl - cur->p);
		cur->p = nl + 1;
	}
	if (*len > 0 && (*line)[*len - 1] == '\r')
		(*len)--;
	cur->line++;
	return true;
}

static bool is_blank(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static void trim(const unsigned char **s, size_t *n)
{
	while (*n > 0 && is_blank(**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && is_blank((*s)[*n - 1]))
		(*n)--;
}

/* For "-----BEGIN X-----" / "-----END X-----": the label X. */
static bool boundary(const unsigned char *s, size_t n, const char *kind,
                     const unsigned char **label, size_t *label_len)
{
	size_t k = strlen(kind);
	const unsigned char *dash;

	trim(&s, &n);
	if (n < 5 + k || memcmp(s, "-----", 5) != 0 || memcmp(s + 5, kind, k) != 0)
		return false;
	s += 5 + k;
	n -= 5 + k;
	*label = s;
	/* the closing dashes may be missing on a cut-off line */
	dash = memchr(s, '-', n);
	*label_len = dash != NULL ? (size_t)(dash - s) : n;
	while (*label_len > 0 && is_blank(s[*label_len - 1]))
		(*label_len)--;
	return true;
}

static void set_label(struct pem_block *blk, const unsigned char *s, size_t n)
{
	size_t i;

	blk->label_cut = n > LABEL_MAX;
	for (i = 0; i < n && i < LABEL_MAX; i++)
		blk->label[i] = s[i] >= 0x20 && s[i] < 0x7f ? (char)s[i] : '?';
	blk->label[i] = '\0';
}

static bool label_equals(const struct pem_block *blk, const unsigned char *s, size_t n)
{
	return !blk->label_cut && n == strlen(blk->label) && memcmp(s, blk->label, n) == 0;
}

/* Base64 decoder state (RFC 4648; whitespace ignored, padding optional). */
struct b64 {
	uint32_t acc;
	int n;                       /* sextets in acc */
	bool padded;                 /* '=' seen: only '=' may follow */
};

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decode one line into out (which has room: 3 bytes per 4 characters). */
static bool b64_line(struct b64 *st, const unsigned char *s, size_t n, unsigned char *out, size_t *out_len)
{
	size_t i = 0;

	/* Whole quanta of four plain characters, the bulk of every line. */
	if (st->n == 0 && !st->padded) {
		for (; i + 4 <= n; i += 4) {
			int a = b64_value(s[i]), b = b64_value(s[i + 1]);
			int c = b64_value(s[i + 2]), d = b64_value(s[i + 3]);

			if ((a | b | c | d) < 0)
				break;           /* '=', a blank or garbage: the careful loop */
			out[(*out_len)++] = (unsigned char)(a << 2 | b >> 4);
			out[(*out_len)++] = (unsigned char)(b << 4 | c >> 2);
			out[(*out_len)++] = (unsigned char)(c << 6 | d);
		}
	}
	for (; i < n; i++) {
		int v;
		if (is_blank(s[i]))
			continue;
		if (s[i] == '=') {
			if (!st->padded) {
				if (st->n == 2) {
					out[(*out_len)++] = (unsigned char)(st->acc >> 4);
				} else if (st->n == 3) {
					out[(*out_len)++] = (unsigned char)(st->acc >> 10);
					out[(*out_len)++] = (unsigned char)(st->acc >> 2);
				} else {
					return false;
				}
				st->padded = true;
				st->n = 0;
			}
			continue;
		}
		v = b64_value(s[i]);
		if (v < 0 || st->padded)
			return false;
		st->acc = (st->acc << 6 | (uint32_t)v) & 0xffffff;
		if (++st->n == 4) {
			out[(*out_len)++] = (unsigned char)(st->acc >> 16);
			out[(*out_len)++] = (unsigned char)(st->acc >> 8);
			out[(*out_len)++] = (unsigned char)st->acc;
			st->n = 0;
		}
	}
	return true;
}

static bool b64_final(struct b64 *st, unsigned char *out, size_t *out_len)
{
	if (st->n == 1)
		return false;
	if (st->n == 2) {
		out[(*out_len)++] = (unsigned char)(st->acc >> 4);
	} else if (st->n == 3) {
		out[(*out_len)++] = (unsigned char)(st->acc >> 10);
		out[(*out_len)++] = (unsigned char)(st->acc >> 2);
	}
	st->n = 0;
	return true;
}

/* Decode the body of blk: encapsulated headers into blk->headers, base64
 * into a malloc'd *der (to be wiped: it may be a key).  Problems go to the
 * bundle; *der stays NULL then. */
static int decode_block(struct parser *ps, struct pem_block *blk, unsigned char **der, size_t *der_len)
{
	struct cursor cur = { blk->body, blk->body_end, blk->body_line };
	size_t body_len = (size_t)(blk->body_end - blk->body), hlen = 0, n;
	const unsigned char *line;
	struct b64 st = { 0, 0, false };
	bool in_headers = true;
	unsigned char *out;

	*der = NULL;
	*der_len = 0;
	out = malloc(body_len / 4 * 3 + 3);
	if (out == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	blk->headers[0] = '\0';
	for (;;) {
		size_t lineno = cur.line;
		if (!next_line(&cur, &line, &n))
			break;
		trim(&line, &n);
		if (n == 0) {
			in_headers = false;
			continue;
		}
		if (in_headers && memchr(line, ':', n) != NULL) {
			/* RFC 1421 headers, e.g. "Proc-Type: 4,ENCRYPTED" */
			if (hlen + n + 2 > sizeof(blk->headers)) {
				free(out);
				return add_problem(ps, "%s: encapsulated headers longer than %d bytes",
				                   blk->where, HEADERS_MAX);
			}
			memcpy(blk->headers + hlen, line, n);
			hlen += n;
			blk->headers[hlen++] = '\n';
			blk->headers[hlen] = '\0';
			continue;
		}
		in_headers = false;
		if (!b64_line(&st, line, n, out, der_len)) {
			OPENSSL_cleanse(out, *der_len);
			free(out);
			*der_len = 0;
			return add_problem(ps, "%s: invalid base64 on line %zu", blk->where, lineno);
		}
	}
	if (!b64_final(&st, out, der_len)) {
		OPENSSL_cleanse(out, *der_len);
		free(out);
		*der_len = 0;
		return add_problem(ps, "%s: base64 data ends in the middle of a byte", blk->where);
	}
	if (*der_len == 0) {
		free(out);
		return add_problem(ps, "%s: %s block is empty", blk->where, blk->label);
	}
	blk->is_encrypted = strstr(blk->headers, "ENCRYPTED") != NULL &&
	                    strstr(blk->headers, "Proc-Type:") != NULL;
	*der = out;
	return ACLM_OK;
}

static int pem_cert(struct parser *ps, struct pem_block *blk, unsigned char *der, size_t len)
{
	return add_cert(ps, der, len, blk->where);
}

/* "TRUSTED CERTIFICATE": the certificate followed by OpenSSL trust
 * settings, which are dropped. */
static int pem_trusted_cert(struct parser *ps, struct pem_block *blk, unsigned char *der, size_t len)
{
	size_t n = aclm_der_tlv_len(der, len);

	if (n == 0 || der[0] != 0x30)
		return add_problem(ps, "%s: TRUSTED CERTIFICATE does not start with a DER certificate",
		                   blk->where);
	return add_cert(ps, der, n, blk->where);
}

static int pem_pkcs7(struct parser *ps, struct pem_block *blk, unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	PKCS7 *p7;
	char why[128];
	int rc;

	if (len > LONG_MAX || (p7 = d2i_PKCS7(NULL, &p, (long)len)) == NULL)
		return add_problem(ps, "%s: not a valid PKCS#7 structure (%s)", blk->where,
		                   openssl_reason(why, sizeof(why)));
	rc = add_pkcs7(ps, p7, blk->where);
	PKCS7_free(p7);
	return rc;
}

static int password_cb(char *buf, int size, int rwflag, void *u)
{
	const char *pw = u;
	size_t n = strlen(pw);

	if (size <= 0 || n > (size_t)size)
		return -1;
	memcpy(buf, pw, n);
	return (int)n;
}

static EVP_PKEY *decode_pkcs8(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)len);
	EVP_PKEY *pk = p8 != NULL ? EVP_PKCS82PKEY(p8) : NULL;

	PKCS8_PRIV_KEY_INFO_free(p8);
	return pk;
}

static int pem_key(struct parser *ps, struct pem_block *blk, unsigned char *der, size_t len, int type)
{
	const unsigned char *p = der;
	EVP_PKEY *pk = NULL;
	EVP_CIPHER_INFO cipher;
	char why[128];
	long dlen = (long)len;
	int rc;

	if (len > LONG_MAX)
		return add_problem(ps, "%s: too large", blk->where);
	if (blk->is_encrypted) {
		/* RFC 1421 encryption of a traditional key (openssl genrsa -aes256) */
		if (PEM_get_EVP_CIPHER_INFO(blk->headers, &cipher) != 1)
			return add_problem(ps, "%s: unsupported encryption header (%s)", blk->where,
			                   openssl_reason(why, sizeof(why)));
		if (ps->password == NULL)
			return add_password_problem(ps, "%s: %s is encrypted and no password was given",
			                            blk->where, blk->label);
		if (PEM_do_header(&cipher, der, &dlen, password_cb, (void *)ps->password) != 1) {
			ERR_clear_error();
			return add_password_problem(ps, "%s: %s cannot be decrypted (wrong password)",
			                            blk->where, blk->label);
		}
	}
	pk = type == EVP_PKEY_NONE ? decode_pkcs8(der, (size_t)dlen) : d2i_PrivateKey(type, NULL, &p, dlen);
	if (pk == NULL) {
		if (blk->is_encrypted) {
			ERR_clear_error();
			return add_password_problem(ps, "%s: %s cannot be decrypted (wrong password)",
			                            blk->where, blk->label);
		}
		return add_problem(ps, "%s: %s is not a valid private key (%s)", blk->where, blk->label,
		                   openssl_reason(why, sizeof(why)));
	}
	rc = add_key(ps, pk, blk->where);
	EVP_PKEY_free(pk);
	return rc;
}

static int pem_pkcs8(struct parser *ps, struct pem_block *blk, unsigned char *der, size_t len)
{
	return pem_key(ps, blk, der, len, EVP_PKEY_NONE);
}

static int pem_rsa_key(struct parser *ps, struct pem_block *blk, unsigned char *der, size_t len)
{
	return pem_key(ps, blk, der, len, EVP_PKEY_RSA);
}

static int pem_ec_key(struct parser *ps, struct pem_block *blk, unsigned char *der, size_t len)
{
	/* An SM2 key comes back as type "SM2" from OpenSSL 3.0's decoder. */
	return pem_key(ps, blk, der, len, EVP_PKEY_EC);
}

static int pem_dsa_key(struct parser *ps, struct pem_block *blk, unsigned char *der, size_t len)
{
	return pem_key(ps, blk, der, len, EVP_PKEY_DSA);
}

static int pem_encrypted_pkcs8(struct parser *ps, struct pem_block *blk, unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	const X509_ALGOR *alg = NULL;
	uint64_t cost;
	X509_SIG *sig = NULL;
	PKCS8_PRIV_KEY_INFO *p8 = NULL;
	EVP_PKEY *pk = NULL;
	char why[128];
	int rc;

	if (len > LONG_MAX || (sig = d2i_X509_SIG(NULL, &p, (long)len)) == NULL)
		return add_problem(ps, "%s: not a valid encrypted private key (%s)", blk->where,
		                   openssl_reason(why, sizeof(why)));
	if (ps->password == NULL) {
		rc = add_password_problem(ps, "%s: ENCRYPTED PRIVATE KEY and no password was given",
		                          blk->where);
		goto out;
	}
	X509_SIG_get0(sig, &alg, NULL);
	cost = pbe_cost(alg);
	if (!kdf_affordable(ps, cost)) {
		rc = kdf_problem(ps, blk->where, cost);
		goto out;
	}
	p8 = PKCS8_decrypt(sig, ps->password, (int)strlen(ps->password));
	if (p8 == NULL) {
		rc = add_password_problem(ps, "%s: ENCRYPTED PRIVATE KEY cannot be decrypted "
		                          "(wrong password? %s)", blk->where, openssl_reason(why, sizeof(why)));
		goto out;
	}
	pk = EVP_PKCS82PKEY(p8);
	if (pk == NULL) {
		rc = add_problem(ps, "%s: decrypted private key is not valid (%s)", blk->where,
		                 openssl_reason(why, sizeof(why)));
		goto out;
	}
	rc = add_key(ps, pk, blk->where);
out:
	EVP_PKEY_free(pk);
	PKCS8_PRIV_KEY_INFO_free(p8);
	X509_SIG_free(sig);
	return rc;
}

/* What each PEM label is and who handles it; other labels are problems. */
static const struct {
	const char *label;
	bool may_be_encrypted;       /* RFC 1421 Proc-Type headers allowed */
	int (*handle)(struct parser *, struct pem_block *, unsigned char *, size_t);
} pem_types[] = {
	{ "CERTIFICATE", false, pem_cert },
	{ "X509 CERTIFICATE", false, pem_cert },
	{ "TRUSTED CERTIFICATE", false, pem_trusted_cert },
	{ "PKCS7", false, pem_pkcs7 },
	{ "PKCS #7 SIGNED DATA", false, pem_pkcs7 },
	{ "CMS", false, pem_pkcs7 },
	{ "PRIVATE KEY", false, pem_pkcs8 },
	{ "ENCRYPTED PRIVATE KEY", false, pem_encrypted_pkcs8 },
	{ "RSA PRIVATE KEY", true, pem_rsa_key },
	{ "EC PRIVATE KEY", true, pem_ec_key },
	{ "DSA PRIVATE KEY", true, pem_dsa_key },
};

static int handle_block(struct parser *ps, struct pem_block *blk)
{
	unsigned char *der = NULL;
	size_t der_len = 0;
	int rc;

	for (size_t i = 0; i < sizeof(pem_types) / sizeof(pem_types[0]); i++) {
		if (blk->label_cut || strcmp(blk->label, pem_types[i].label) != 0)
			continue;
		if ((rc = decode_block(ps, blk, &der, &der_len)) != ACLM_OK || der == NULL)
			return rc;
		if (blk->is_encrypted && !pem_types[i].may_be_encrypted)
			rc = add_problem(ps, "%s: %s with encryption headers is not supported",
			                 blk->where, blk->label);
		else
			rc = pem_types[i].handle(ps, blk, der, der_len);
		OPENSSL_cleanse(der, der_len);
		free(der);
		return rc;
	}
	return add_problem(ps, "%s: %s%s is not a certificate", blk->where, blk->label,
	                   blk->label_cut ? "..." : "");
}

static int parse_pem(struct parser *ps, const unsigned char *data, size_t len, bool *found)
{
	struct cursor cur = { data, data + len, 1 };
	const unsigned char *line, *label;
	size_t n, label_len, n_blocks = 0;
	int rc = ACLM_OK;

	*found = false;
	while (rc == ACLM_OK && !ps->certs_full) {
		struct pem_block blk;
		struct cursor before;
		bool ended = false, end_matches = false;
		size_t end_line = 0;

		if (!next_line(&cur, &line, &n))
			break;
		if (!boundary(line, n, "BEGIN ", &label, &label_len))
			continue;
		memset(&blk, 0, sizeof(blk));
		blk.index = ++n_blocks;
		blk.line = cur.line - 1;
		set_label(&blk, label, label_len);
		snprintf(blk.where, sizeof(blk.where), "PEM block %zu (line %zu)", blk.index, blk.line);
		blk.body = cur.p;
		blk.body_line = cur.line;
		if (!*found) {
			*found = true;
			ps->b->format = ACLM_FMT_PEM;
		}
		for (;;) {
			const unsigned char *end_label;
			size_t end_len;

			before = cur;
			if (!next_line(&cur, &line, &n))
				break;
			if (boundary(line, n, "BEGIN ", &end_label, &end_len)) {
				cur = before; /* the next block starts here */
				break;
			}
			if (boundary(line, n, "END ", &end_label, &end_len)) {
				blk.body_end = before.p;
				ended = true;
				end_matches = label_equals(&blk, end_label, end_len);
				end_line = before.line;
				break;
			}
		}
		if (!ended)
			rc = add_problem(ps, "%s: truncated (no END line)", blk.where);
		else if (!end_matches)
			rc = add_problem(ps, "%s: END line %zu does not match BEGIN %s",
			                 blk.where, end_line, blk.label);
		else
			rc = handle_block(ps, &blk);
	}
	return rc;
}

/* ---- public --------------------------------------------------------------- */

/* Nothing usable: one message from the problems for aclm_errmsg(). */
static int summarise(struct parser *ps)
{
	struct aclm_bundle *b = ps->b;
	struct aclm_buf msg;
	int rc;

	if (b->n_certs > 0 || b->n_keys > 0)
		return ACLM_OK;
	if (ps->password_problem != SIZE_MAX)
		return aclm_error(ACLM_ERR_PASSWORD, "%s", b->problems[ps->password_problem]);
	if (b->n_problems == 0)
		return aclm_error(ACLM_ERR_PARSE, "no certificate or private key found");
	aclm_buf_init(&msg, 900);
	for (size_t i = 0; i < b->n_problems; i++) {
		if (aclm_buf_printf(&msg, "%s%s", i > 0 ? "; " : "", b->problems[i]) != ACLM_OK) {
			aclm_buf_printf(&msg, "; ...");
			break;
		}
	}
	rc = aclm_error(ACLM_ERR_PARSE, "%s", aclm_buf_cstr(&msg));
	aclm_buf_free(&msg);
	return rc;
}

int aclm_bundle_parse(const unsigned char *data, size_t len, const char *password,
                      struct aclm_bundle *out)
{
	struct parser ps;
	bool found = false;
	int rc;

	memset(out, 0, sizeof(*out));
	memset(&ps, 0, sizeof(ps));
	ps.b = out;
	ps.password = password;
	ps.password_problem = SIZE_MAX;
	if (data == NULL || len == 0)
		return aclm_error(ACLM_ERR_PARSE, "empty file");
	rc = parse_binary(&ps, data, len, &found);
	if (rc == ACLM_OK && !found)
		rc = parse_pem(&ps, data, len, &found);
	ERR_clear_error();
	if (rc != ACLM_OK)
		return rc;
	if (!found)
		return aclm_error(ACLM_ERR_PARSE,
		                  "not a certificate file (no PEM block; not DER, PKCS#7 or PKCS#12)");
	return summarise(&ps);
}

void aclm_bundle_free(struct aclm_bundle *b)
{
	if (b == NULL)
		return;
	for (size_t i = 0; i < b->n_certs; i++)
		aclm_cert_free(b->certs[i]);
	free(b->certs);
	for (size_t i = 0; i < b->n_keys; i++)
		privkey_wipe(&b->keys[i]);
	free(b->keys);
	for (size_t i = 0; i < b->n_problems; i++)
		free(b->problems[i]);
	free(b->problems);
	memset(b, 0, sizeof(*b));
}

const char *aclm_bundle_format_name(enum aclm_bundle_format f)
{
	switch (f) {
	case ACLM_FMT_PEM: return "pem";
	case ACLM_FMT_DER: return "der";
	case ACLM_FMT_PKCS7: return "pkcs7";
	case ACLM_FMT_PKCS12: return "pkcs12";
	case ACLM_FMT_UNKNOWN: break;
	}
	return "unknown";
}

/* ---- output ------------------------------------------------------------- */

static size_t pem_size(const char *label, size_t len)
{
	size_t b64 = (len + 2) / 3 * 4;

	/* "-----BEGIN " label "-----\n" lines "-----END " label "-----\n" */
	return 11 + strlen(label) + 6 + b64 + (b64 + 63) / 64 + 9 + strlen(label) + 6;
}

static size_t put(char *out, const char *s)
{
	size_t n = strlen(s);

	memcpy(out, s, n);
	return n;
}

/* Writes exactly pem_size(label, len) bytes. */
static size_t pem_write(char *out, const char *label, const unsigned char *der, size_t len)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0, col = 0;

	o += put(out + o, "-----BEGIN ");
	o += put(out + o, label);
	o += put(out + o, "-----\n");
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)der[i] << 16;
		size_t left = len - i;

		if (left > 1)
			v |= (uint32_t)der[i + 1] << 8;
		if (left > 2)
			v |= der[i + 2];
		out[o++] = alphabet[v >> 18 & 63];
		out[o++] = alphabet[v >> 12 & 63];
		out[o++] = left > 1 ? alphabet[v >> 6 & 63] : '=';
		out[o++] = left > 2 ? alphabet[v & 63] : '=';
		col += 4;
		if (col == 64 || i + 3 >= len) {
			out[o++] = '\n';
			col = 0;
		}
	}
	o += put(out + o, "-----END ");
	o += put(out + o, label);
	o += put(out + o, "-----\n");
	return o;
}

int aclm_pem_encode_cert(const unsigned char *der, size_t len, char **pem, size_t *pem_len)
{
	size_t total = 1, off, n, o = 0;
	char *out;

	*pem = NULL;
	*pem_len = 0;
	if (der == NULL || len == 0)
		return aclm_error(ACLM_ERR_USAGE, "no certificate to encode");
	if (len > SIZE_MAX / 4)
		return aclm_error(ACLM_ERR_TOOBIG, "certificate data too large");
	for (off = 0; off < len; off += n) {
		n = aclm_der_tlv_len(der + off, len - off);
		if (n == 0 || der[off] != 0x30)
			return aclm_error(ACLM_ERR_PARSE, "not DER certificate data at byte %zu", off);
		total += pem_size("CERTIFICATE", n);
	}
	out = malloc(total);
	if (out == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	for (off = 0; off < len; off += n) {
		n = aclm_der_tlv_len(der + off, len - off);
		o += pem_write(out + o, "CERTIFICATE", der + off, n);
	}
	out[o] = '\0';
	*pem = out;
	*pem_len = o;
	return ACLM_OK;
}

int aclm_pem_encode_key(const unsigned char *pkcs8, size_t len, char **pem, size_t *pem_len)
{
	size_t total, o;
	char *out;

	*pem = NULL;
	*pem_len = 0;
	if (pkcs8 == NULL || len == 0 || len > SIZE_MAX / 4 ||
	    pkcs8[0] != 0x30 || aclm_der_tlv_len(pkcs8, len) != len)
		return aclm_error(ACLM_ERR_PARSE, "private key is not PKCS#8 DER");
	total = pem_size("PRIVATE KEY", len) + 1;
	/* allocated once at its final size: no copy of the key is left behind */
	out = malloc(total);
	if (out == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	o = pem_write(out, "PRIVATE KEY", pkcs8, len);
	out[o] = '\0';
	*pem = out;
	*pem_len = o;
	return ACLM_OK;
}

static X509 *x509_from_der(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	X509 *x;

	if (der == NULL || len == 0 || len > LONG_MAX)
		return NULL;
	x = d2i_X509(NULL, &p, (long)len);
	if (x != NULL && p != der + len) {
		X509_free(x);
		x = NULL;
	}
	return x;
}

int aclm_pkcs12_build(const unsigned char *leaf_der, size_t leaf_len,
                      const unsigned char *const *chain_der, const size_t *chain_len, size_t n_chain,
                      const unsigned char *pkcs8, size_t pkcs8_len,
                      const char *password, const char *friendly_name,
                      unsigned char **out, size_t *out_len)
{
	X509 *leaf = NULL;
	STACK_OF(X509) *ca = NULL;
	EVP_PKEY *pk = NULL;
	PKCS12 *p12 = NULL;
	unsigned char *buf = NULL, *q;
	int len, rc = ACLM_OK;

	*out = NULL;
	*out_len = 0;
	if (password == NULL)
		password = "";
	if (pkcs8 != NULL && password[0] == '\0')
		return aclm_error(ACLM_ERR_USAGE, "PKCS#12 with a private key needs a non-empty password");
	if ((leaf = x509_from_der(leaf_der, leaf_len)) == NULL) {
		rc = aclm_error_openssl(ACLM_ERR_PARSE, "PKCS#12: the certificate is not valid DER");
		goto out;
	}
	if ((ca = sk_X509_new_null()) == NULL) {
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n_chain; i++) {
		X509 *x = x509_from_der(chain_der[i], chain_len[i]);
		if (x == NULL) {
			rc = aclm_error_openssl(ACLM_ERR_PARSE, "PKCS#12: chain certificate %zu is not valid DER", i + 1);
			goto out;
		}
		if (sk_X509_push(ca, x) <= 0) {
			X509_free(x);
			rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
			goto out;
		}
	}
	if (pkcs8 != NULL) {
		if (pkcs8_len > LONG_MAX || (pk = decode_pkcs8(pkcs8, pkcs8_len)) == NULL) {
			rc = aclm_error_openssl(ACLM_ERR_PARSE, "PKCS#12: the private key is not valid PKCS#8");
			goto out;
		}
		if (X509_check_private_key(leaf, pk) != 1) {
			rc = aclm_error_openssl(ACLM_ERR_USAGE, "PKCS#12: the private key does not match the certificate");
			goto out;
		}
	}
	/* AES-256-CBC with PBKDF2 (PBES2) for key and certificates; no MAC here
	 * (-1), set below with SHA-256: PKCS12_create's MAC is SHA-1. */
	p12 = PKCS12_create_ex(password, friendly_name, pk, leaf, ca, NID_aes_256_cbc, NID_aes_256_cbc,
	                       PKCS12_WRITE_ITER, -1, 0, NULL, NULL);
	if (p12 == NULL) {
		rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "PKCS#12: cannot build");
		goto out;
	}
	if (PKCS12_set_mac(p12, password, -1, NULL, 0, PKCS12_WRITE_ITER, EVP_sha256()) != 1) {
		rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "PKCS#12: cannot compute the MAC");
		goto out;
	}
	len = i2d_PKCS12(p12, NULL);
	if (len <= 0) {
		rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "PKCS#12: cannot encode");
		goto out;
	}
	if ((buf = malloc((size_t)len)) == NULL) {
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
		goto out;
	}
	q = buf;
	*out_len = (size_t)i2d_PKCS12(p12, &q);
	*out = buf;
out:
	PKCS12_free(p12);
	EVP_PKEY_free(pk);
	sk_X509_pop_free(ca, X509_free);
	X509_free(leaf);
	ERR_clear_error();
	return rc;
}
