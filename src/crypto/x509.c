/* One DER X.509 certificate -> struct aclm_cert.
 *
 * The certificate is decoded with OpenSSL once and every field the rest of
 * aclm needs is copied out as plain C data; nothing of OpenSSL survives the
 * call.  A certificate the parser cannot represent faithfully (an extension
 * that does not decode, a name that cannot be printed, a bad time) is
 * rejected with ACLM_ERR_PARSE and a message naming the part. */
#include <arpa/inet.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/provider.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "aclm/err.h"
#include "aclm/str.h"
#include "aclm/x509.h"
#include "crypto-int.h"

/* OID text of the longest OID we print; OBJ_obj2txt truncates beyond. */
#define OID_TEXT_MAX 128

/* ---- small helpers ---------------------------------------------------- */

static void hex_upper(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789ABCDEF";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

/* SHA-256 fetched once: EVP_sha256() makes OpenSSL 3.0 look the algorithm
 * up in the provider store at every digest (two per certificate), which was
 * most of the cost of hashing a certificate. */
static EVP_MD *sha256_md;

static void fetch_sha256(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA2-256", NULL);
}

static int sha256(const unsigned char *p, size_t n, unsigned char out[32])
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	unsigned int md_len = 0;

	(void)pthread_once(&once, fetch_sha256);
	if (EVP_Digest(p, n, out, &md_len, sha256_md != NULL ? sha256_md : EVP_sha256(),
	               NULL) != 1 || md_len != 32)
		return aclm_error_openssl(ACLM_ERR_CRYPTO, "SHA-256 failed");
	return ACLM_OK;
}

static char *hex_dup(const unsigned char *p, size_t n)
{
	char *s;

	if (n > (SIZE_MAX - 1) / 2)
		return NULL;
	s = malloc(2 * n + 1);
	if (s != NULL)
		aclm_hex_encode(p, n, s);
	return s;
}

/* Copy n bytes of certificate text into a C string.  Control bytes (and
 * with keep_utf8 false, bytes >= 0x80) become "\xHH", so an embedded NUL
 * cannot cut a name short and the result is always valid for display. */
static char *text_dup(const unsigned char *p, size_t n, bool keep_utf8)
{
	static const char digits[] = "0123456789abcdef";
	char *s, *o;

	if (n > (SIZE_MAX - 1) / 4)
		return NULL;
	s = malloc(4 * n + 1);
	if (s == NULL)
		return NULL;
	o = s;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = p[i];
		if (ch < 0x20 || ch == 0x7f || (ch >= 0x80 && !keep_utf8)) {
			*o++ = '\\';
			*o++ = 'x';
			*o++ = digits[ch >> 4];
			*o++ = digits[ch & 15];
		} else {
			*o++ = (char)ch;
		}
	}
	*o = '\0';
	return s;
}

static char *oid_dup(const ASN1_OBJECT *obj)
{
	char buf[OID_TEXT_MAX];
	int n = OBJ_obj2txt(buf, sizeof(buf), obj, 1);

	if (n <= 0 || (size_t)n >= sizeof(buf))
		return NULL;
	return aclm_strdup(buf);
}

size_t aclm_der_tlv_len(const unsigned char *p, size_t len)
{
	size_t n_len, body = 0, hdr;

	if (len < 2 || (p[0] & 0x1f) == 0x1f)
		return 0; /* multi-byte tags never start a certificate */
	if ((p[1] & 0x80) == 0) {
		hdr = 2;
		body = p[1];
	} else {
		n_len = p[1] & 0x7f;
		if (n_len == 0 || n_len > sizeof(size_t) || n_len > 4 || len < 2 + n_len)
			return 0; /* indefinite length, or longer than 4 GiB */
		for (size_t i = 0; i < n_len; i++)
			body = body << 8 | p[2 + i];
		hdr = 2 + n_len;
	}
	if (body > len - hdr)
		return 0;
	return hdr + body;
}

/* ---- keys ------------------------------------------------------------- */

static const struct {
	const char *name;          /* OpenSSL key type name */
	enum aclm_key_type type;
} key_type_names[] = {
	{ "RSA", ACLM_KEY_RSA },
	{ "RSA-PSS", ACLM_KEY_RSA },
	{ "SM2", ACLM_KEY_SM2 },
	{ "EC", ACLM_KEY_EC },
	{ "ED25519", ACLM_KEY_ED25519 },
	{ "ED448", ACLM_KEY_ED448 },
	{ "DSA", ACLM_KEY_DSA },
};

/* "P-256" for the NIST curves, else the OpenSSL short name. */
static char *curve_display_name(const char *group)
{
	int nid = OBJ_sn2nid(group);
	const char *nist;

	if (nid == NID_undef)
		nid = OBJ_ln2nid(group);
	nist = nid != NID_undef ? EC_curve_nid2nist(nid) : NULL;
	return aclm_strdup(nist != NULL ? nist : group);
}

int aclm_x509_key_describe(EVP_PKEY *pk, enum aclm_key_type *type, int *bits, char **curve)
{
	char group[80];
	size_t group_len = 0;

	*type = ACLM_KEY_UNKNOWN;
	*bits = 0;
	*curve = NULL;
	/* EVP_PKEY_get_id() is -1 for provider-decoded SM2 keys in 3.0, so ask
	 * by name. */
	for (size_t i = 0; i < sizeof(key_type_names) / sizeof(key_type_names[0]); i++) {
		if (EVP_PKEY_is_a(pk, key_type_names[i].name)) {
			*type = key_type_names[i].type;
			break;
		}
	}
	*bits = EVP_PKEY_get_bits(pk);
	if (*bits < 0)
		*bits = 0;
	switch (*type) {
	case ACLM_KEY_ED25519:
		*bits = 255;
		break;
	case ACLM_KEY_ED448:
		*bits = 448;
		break;
	case ACLM_KEY_EC:
	case ACLM_KEY_SM2:
		if (EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group,
		                                   sizeof(group), &group_len) != 1) {
			/* explicit curve parameters: no name to give */
			ERR_clear_error();
			if (*type == ACLM_KEY_SM2)
				*bits = 256;
			break;
		}
		if (strcmp(group, "SM2") == 0 || *type == ACLM_KEY_SM2) {
			*type = ACLM_KEY_SM2;
			*bits = 256;
			*curve = aclm_strdup("SM2");
		} else {
			*curve = curve_display_name(group);
		}
		if (*curve == NULL)
			return aclm_error(ACLM_ERR_NOMEM, "out of memory");
		break;
	default:
		break;
	}
	return ACLM_OK;
}

int aclm_x509_key_spki_sha256(EVP_PKEY *pk, unsigned char out[32])
{
	unsigned char *der = NULL;
	int len, rc;

	len = i2d_PUBKEY(pk, &der);
	if (len <= 0)
		return aclm_error_openssl(ACLM_ERR_CRYPTO, "cannot encode the public key");
	rc = sha256(der, (size_t)len, out);
	OPENSSL_free(der);
	return rc;
}

/* When OpenSSL cannot decode the public key (an algorithm it lacks), the
 * certificate is still inventoried: type and curve come from the OIDs. */
static int describe_key_by_oid(X509_PUBKEY *xpk, struct aclm_cert *c)
{
	const ASN1_OBJECT *alg = NULL;
	const void *pval = NULL;
	int ptype = V_ASN1_UNDEF, param_nid = NID_undef;
	X509_ALGOR *algor = NULL;

	if (X509_PUBKEY_get0_param(NULL, NULL, NULL, &algor, xpk) != 1 || algor == NULL)
		return ACLM_OK;
	X509_ALGOR_get0(&alg, &ptype, &pval, algor);
	if (ptype == V_ASN1_OBJECT)
		param_nid = OBJ_obj2nid(pval);
	switch (OBJ_obj2nid(alg)) {
	case NID_rsaEncryption:
	case NID_rsassaPss:
		c->key_type = ACLM_KEY_RSA;
		break;
	case NID_ED25519:
		c->key_type = ACLM_KEY_ED25519;
		c->key_bits = 255;
		break;
	case NID_ED448:
		c->key_type = ACLM_KEY_ED448;
		c->key_bits = 448;
		break;
	case NID_dsa:
		c->key_type = ACLM_KEY_DSA;
		break;
	case NID_sm2:
		c->key_type = ACLM_KEY_SM2;
		break;
	case NID_X9_62_id_ecPublicKey:
		c->key_type = param_nid == NID_sm2 ? ACLM_KEY_SM2 : ACLM_KEY_EC;
		if (c->key_type == ACLM_KEY_EC && param_nid != NID_undef) {
			c->curve = curve_display_name(OBJ_nid2sn(param_nid));
			if (c->curve == NULL)
				return aclm_error(ACLM_ERR_NOMEM, "out of memory");
		}
		break;
	default:
		break;
	}
	if (c->key_type == ACLM_KEY_SM2) {
		c->key_bits = 256;
		c->curve = aclm_strdup("SM2");
		if (c->curve == NULL)
			return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	}
	return ACLM_OK;
}

/* Bits of the named curves certificates use, so the common keys are
 * described from their OIDs without decoding them (see parse_ctx()). */
static const struct {
	int nid;
	int bits;
} curve_bits[] = {
	{ NID_X9_62_prime256v1, 256 }, { NID_secp384r1, 384 }, { NID_secp521r1, 521 },
	{ NID_secp224r1, 224 },        { NID_X9_62_prime192v1, 192 }, { NID_secp256k1, 256 },
	{ NID_brainpoolP256r1, 256 },  { NID_brainpoolP384r1, 384 }, { NID_brainpoolP512r1, 512 },
};

/* The modulus size of an RSAPublicKey (SEQUENCE { n INTEGER, e INTEGER }),
 * or 0 when it is not one. */
static int rsa_modulus_bits(const unsigned char *p, int len)
{
	STACK_OF(ASN1_TYPE) *seq = d2i_ASN1_SEQUENCE_ANY(NULL, &p, len);
	const ASN1_TYPE *n = seq != NULL && sk_ASN1_TYPE_num(seq) == 2 ? sk_ASN1_TYPE_value(seq, 0)
	                                                                : NULL;
	BIGNUM *bn = NULL;
	int bits = 0;

	if (n != NULL && n->type == V_ASN1_INTEGER &&
	    (bn = ASN1_INTEGER_to_BN(n->value.integer, NULL)) != NULL)
		bits = BN_num_bits(bn);
	BN_free(bn);
	sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
	return bits;
}

/* Type, size and curve from the SPKI's OIDs for the algorithms certificates
 * carry (RSA, ECDSA on a listed curve, SM2, Ed25519, Ed448): true when done,
 * false to decode the key instead.  Gives what aclm_x509_key_describe()
 * gives for the decoded key (a unit test holds them equal). */
static bool describe_key_fast(X509_PUBKEY *xpk, struct aclm_cert *c)
{
	const ASN1_OBJECT *alg = NULL;
	const unsigned char *pk = NULL;
	const void *pval = NULL;
	int pk_len = 0, ptype = V_ASN1_UNDEF, param_nid = NID_undef;
	X509_ALGOR *algor = NULL;

	if (X509_PUBKEY_get0_param(NULL, &pk, &pk_len, &algor, xpk) != 1 || algor == NULL)
		return false;
	X509_ALGOR_get0(&alg, &ptype, &pval, algor);
	if (ptype == V_ASN1_OBJECT)
		param_nid = OBJ_obj2nid(pval);
	switch (OBJ_obj2nid(alg)) {
	case NID_rsaEncryption:
		c->key_bits = rsa_modulus_bits(pk, pk_len);
		if (c->key_bits == 0)
			return false;
		c->key_type = ACLM_KEY_RSA;
		return true;
	case NID_ED25519:
		c->key_type = ACLM_KEY_ED25519;
		c->key_bits = 255;
		return true;
	case NID_ED448:
		c->key_type = ACLM_KEY_ED448;
		c->key_bits = 448;
		return true;
	case NID_X9_62_id_ecPublicKey:
		if (param_nid == NID_sm2) {
			c->key_type = ACLM_KEY_SM2;
			c->key_bits = 256;
			c->curve = aclm_strdup("SM2");
			return true;
		}
		for (size_t i = 0; i < sizeof(curve_bits) / sizeof(curve_bits[0]); i++) {
			int field = (curve_bits[i].bits + 7) / 8;

			/* A point of the wrong length is decoded, so it is
			 * described as a key OpenSSL cannot use. */
			if (curve_bits[i].nid == param_nid && pk_len > 0 &&
			    ((pk[0] == 4 && pk_len == 1 + 2 * field) ||
			     ((pk[0] == 2 || pk[0] == 3) && pk_len == 1 + field))) {
				c->key_type = ACLM_KEY_EC;
				c->key_bits = curve_bits[i].bits;
				c->curve = curve_display_name(OBJ_nid2sn(param_nid));
				return true;
			}
		}
		return false;
	default:
		return false;
	}
}

static int fill_key(struct aclm_cert *c, X509 *x)
{
	X509_PUBKEY *xpk = X509_get_X509_PUBKEY(x);
	const unsigned char *p;
	unsigned char *spki = NULL;
	EVP_PKEY *pk;
	int len, rc;

	if (xpk == NULL)
		return aclm_error(ACLM_ERR_PARSE, "certificate: no subject public key");
	len = i2d_X509_PUBKEY(xpk, &spki);
	if (len <= 0)
		return aclm_error_openssl(ACLM_ERR_PARSE, "certificate: cannot encode the subject public key");
	if ((rc = sha256(spki, (size_t)len, c->spki_sha256)) != ACLM_OK)
		goto out;
	aclm_hex_encode(c->spki_sha256, sizeof(c->spki_sha256), c->spki_hex);

	if (describe_key_fast(xpk, c)) {
		if (c->key_type == ACLM_KEY_EC || c->key_type == ACLM_KEY_SM2)
			rc = c->curve != NULL ? ACLM_OK : aclm_error(ACLM_ERR_NOMEM, "out of memory");
		goto out;
	}
	/* Any other key: decode it with the default providers. */
	ERR_set_mark();
	p = spki;
	pk = d2i_PUBKEY(NULL, &p, len);
	ERR_pop_to_mark();
	if (pk == NULL) {
		rc = describe_key_by_oid(xpk, c);
	} else {
		rc = aclm_x509_key_describe(pk, &c->key_type, &c->key_bits, &c->curve);
		EVP_PKEY_free(pk);
	}
out:
	OPENSSL_free(spki);
	return rc;
}

/* ---- names, serial, times, signature --------------------------------- */

static int name_text(const X509_NAME *n, const char *what, char **out)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p = NULL;
	long len;
	int rc = ACLM_OK;

	if (b == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	if (X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0) {
		rc = aclm_error_openssl(ACLM_ERR_PARSE, "certificate: %s name cannot be printed "
		                        "(a string in it is not validly encoded)", what);
		goto out;
	}
	len = BIO_get_mem_data(b, &p);
	*out = text_dup((const unsigned char *)(p != NULL ? p : ""), len > 0 ? (size_t)len : 0, true);
	if (*out == NULL)
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
out:
	BIO_free(b);
	return rc;
}

/* The value of the last attribute nid in n as UTF-8, or NULL when absent. */
static int name_last_entry(const X509_NAME *n, int nid, const char *what, char **out)
{
	const ASN1_STRING *s;
	unsigned char *u = NULL;
	int i = -1, last = -1, len;

	*out = NULL;
	while ((i = X509_NAME_get_index_by_NID(n, nid, i)) >= 0)
		last = i;
	if (last < 0)
		return ACLM_OK;
	s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, last));
	len = ASN1_STRING_to_UTF8(&u, s);
	if (len < 0)
		return aclm_error_openssl(ACLM_ERR_PARSE, "certificate: %s %s is not a valid string",
		                          what, OBJ_nid2sn(nid));
	*out = text_dup(u, (size_t)len, true);
	OPENSSL_free(u);
	if (*out == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	return ACLM_OK;
}

static int name_hash(const X509_NAME *n, const char *what, char out[65])
{
	const unsigned char *der = NULL;
	unsigned char md[32];
	size_t len = 0;
	int rc;

	if (X509_NAME_get0_der(n, &der, &len) != 1)
		return aclm_error_openssl(ACLM_ERR_PARSE, "certificate: cannot encode the %s name", what);
	if ((rc = sha256(der, len, md)) != ACLM_OK)
		return rc;
	aclm_hex_encode(md, sizeof(md), out);
	return ACLM_OK;
}

static int fill_names(struct aclm_cert *c, X509 *x)
{
	const X509_NAME *subject = X509_get_subject_name(x);
	const X509_NAME *issuer = X509_get_issuer_name(x);
	int rc;

	if (subject == NULL || issuer == NULL)
		return aclm_error(ACLM_ERR_PARSE, "certificate: missing subject or issuer name");
	if ((rc = name_text(subject, "subject", &c->subject)) != ACLM_OK ||
	    (rc = name_text(issuer, "issuer", &c->issuer)) != ACLM_OK ||
	    (rc = name_last_entry(subject, NID_commonName, "subject", &c->subject_cn)) != ACLM_OK ||
	    (rc = name_last_entry(issuer, NID_commonName, "issuer", &c->issuer_cn)) != ACLM_OK ||
	    (rc = name_hash(subject, "subject", c->subject_hash)) != ACLM_OK ||
	    (rc = name_hash(issuer, "issuer", c->issuer_hash)) != ACLM_OK)
		return rc;
	if (c->issuer_cn == NULL &&
	    (rc = name_last_entry(issuer, NID_organizationName, "issuer", &c->issuer_cn)) != ACLM_OK)
		return rc;
	c->is_self_issued = X509_NAME_cmp(subject, issuer) == 0;
	return ACLM_OK;
}

static int fill_serial(struct aclm_cert *c, X509 *x)
{
	const ASN1_INTEGER *serial = X509_get0_serialNumber(x);
	const unsigned char *p;
	bool negative;
	size_t n;

	if (serial == NULL)
		return aclm_error(ACLM_ERR_PARSE, "certificate: no serial number");
	/* OpenSSL keeps the magnitude without sign padding, the sign in the type. */
	p = ASN1_STRING_get0_data(serial);
	n = (size_t)ASN1_STRING_length(serial);
	negative = ASN1_STRING_type(serial) == V_ASN1_NEG_INTEGER;
	if (n > 1024)
		return aclm_error(ACLM_ERR_PARSE, "certificate: serial number of %zu bytes is too long", n);
	c->serial_hex = malloc(2 * n + 4);
	if (c->serial_hex == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	if (n == 0) {
		aclm_strlcpy(c->serial_hex, "00", 3);
	} else {
		c->serial_hex[0] = '-';
		hex_upper(p, n, c->serial_hex + (negative ? 1 : 0));
	}
	return ACLM_OK;
}

static int asn1_time_to_epoch(const ASN1_TIME *t, const char *what, int64_t *out)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return aclm_error_openssl(ACLM_ERR_PARSE, "certificate: %s is not a valid time", what);
	*out = (int64_t)timegm(&tm);
	return ACLM_OK;
}

static int fill_validity(struct aclm_cert *c, X509 *x)
{
	long v = X509_get_version(x);
	int rc;

	if (v < 0 || v > 2)
		return aclm_error(ACLM_ERR_PARSE, "certificate: version %ld is not 1, 2 or 3", v + 1);
	c->version = (int)v + 1;
	if ((rc = asn1_time_to_epoch(X509_get0_notBefore(x), "notBefore", &c->not_before)) != ACLM_OK ||
	    (rc = asn1_time_to_epoch(X509_get0_notAfter(x), "notAfter", &c->not_after)) != ACLM_OK)
		return rc;
	return ACLM_OK;
}

static int fill_sig_alg(struct aclm_cert *c, X509 *x)
{
	const X509_ALGOR *alg = NULL;
	const ASN1_OBJECT *obj = NULL;
	const char *ln = NULL;
	int nid;

	X509_get0_signature(NULL, &alg, x);
	if (alg == NULL)
		return aclm_error(ACLM_ERR_PARSE, "certificate: no signature algorithm");
	X509_ALGOR_get0(&obj, NULL, NULL, alg);
	c->sig_alg_oid = oid_dup(obj);
	if (c->sig_alg_oid == NULL)
		return aclm_error(ACLM_ERR_PARSE, "certificate: signature algorithm OID is too long");
	nid = OBJ_obj2nid(obj);
	/* Fixed spelling: the SM2 name has changed between OpenSSL releases. */
	if (nid == NID_SM2_with_SM3)
		ln = "SM2-with-SM3";
	else if (nid != NID_undef)
		ln = OBJ_nid2ln(nid);
	c->sig_alg = aclm_strdup(ln != NULL ? ln : c->sig_alg_oid);
	if (c->sig_alg == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	return ACLM_OK;
}

/* ---- extensions ------------------------------------------------------- */

/* Decode extension nid.  Absent: *ext = NULL and 0.  Present but not
 * decodable, or present twice (RFC 5280 4.2): ACLM_ERR_PARSE. */
static int get_ext(X509 *x, int nid, void **ext)
{
	int crit = -1;

	*ext = X509_get_ext_d2i(x, nid, &crit, NULL);
	if (*ext != NULL || crit == -1)
		return ACLM_OK;
	if (crit == -2)
		return aclm_error(ACLM_ERR_PARSE, "certificate: the %s extension appears more than once",
		                  OBJ_nid2ln(nid));
	return aclm_error_openssl(ACLM_ERR_PARSE, "certificate: the %s extension is malformed",
	                          OBJ_nid2ln(nid));
}

static int fill_basic_constraints(struct aclm_cert *c, X509 *x)
{
	BASIC_CONSTRAINTS *bc = NULL;
	int64_t pl;
	int rc;

	c->path_len = -1;
	if ((rc = get_ext(x, NID_basic_constraints, (void **)&bc)) != ACLM_OK || bc == NULL)
		return rc;
	c->has_basic_constraints = true;
	c->is_ca = bc->ca != 0;
	if (bc->pathlen != NULL) {
		if (ASN1_INTEGER_get_int64(&pl, bc->pathlen) != 1 || pl < 0) {
			rc = aclm_error(ACLM_ERR_PARSE, "certificate: basicConstraints pathLenConstraint is negative or invalid");
			ERR_clear_error();
		} else {
			c->path_len = pl > INT_MAX ? INT_MAX : (int)pl;
		}
	}
	BASIC_CONSTRAINTS_free(bc);
	return rc;
}

static int fill_key_usage(struct aclm_cert *c, X509 *x)
{
	ASN1_BIT_STRING *ku = NULL;
	int rc;

	if ((rc = get_ext(x, NID_key_usage, (void **)&ku)) != ACLM_OK || ku == NULL)
		return rc;
	c->has_key_usage = true;
	/* Bit n of the BIT STRING is enum aclm_key_usage bit n. */
	for (int bit = 0; bit <= 8; bit++)
		if (ASN1_BIT_STRING_get_bit(ku, bit))
			c->key_usage |= 1u << bit;
	ASN1_BIT_STRING_free(ku);
	return ACLM_OK;
}

static int fill_eku(struct aclm_cert *c, X509 *x)
{
	EXTENDED_KEY_USAGE *eku = NULL;
	int rc, n;

	if ((rc = get_ext(x, NID_ext_key_usage, (void **)&eku)) != ACLM_OK || eku == NULL)
		return rc;
	n = sk_ASN1_OBJECT_num(eku);
	if (n > 0) {
		c->eku = calloc((size_t)n, sizeof(*c->eku));
		if (c->eku == NULL) {
			rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
			goto out;
		}
	}
	for (int i = 0; i < n; i++) {
		const ASN1_OBJECT *obj = sk_ASN1_OBJECT_value(eku, i);
		int nid = OBJ_obj2nid(obj);
		char *s = nid != NID_undef ? aclm_strdup(OBJ_nid2sn(nid)) : oid_dup(obj);
		if (s == NULL) {
			rc = aclm_error(ACLM_ERR_PARSE, "certificate: extendedKeyUsage OID %d cannot be represented", i + 1);
			goto out;
		}
		c->eku[c->n_eku++] = s;
	}
out:
	EXTENDED_KEY_USAGE_free(eku);
	return rc;
}

static const struct {
	const char *oid;
	enum aclm_level level;
	int rank;
} level_oids[] = {
	{ "2.23.140.1.2.1", ACLM_LEVEL_DV, 1 },
	{ "2.23.140.1.2.2", ACLM_LEVEL_OV, 2 },
	{ "2.23.140.1.2.3", ACLM_LEVEL_IV, 2 },
	{ "2.23.140.1.1", ACLM_LEVEL_EV, 3 },
};

static int fill_policies(struct aclm_cert *c, X509 *x)
{
	CERTIFICATEPOLICIES *pol = NULL;
	int rc, n, best_rank = 0;

	if ((rc = get_ext(x, NID_certificate_policies, (void **)&pol)) != ACLM_OK || pol == NULL)
		return rc;
	n = sk_POLICYINFO_num(pol);
	if (n > 0) {
		c->policies = calloc((size_t)n, sizeof(*c->policies));
		if (c->policies == NULL) {
			rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
			goto out;
		}
	}
	for (int i = 0; i < n; i++) {
		const POLICYINFO *pi = sk_POLICYINFO_value(pol, i);
		char *s = oid_dup(pi->policyid);
		if (s == NULL) {
			rc = aclm_error(ACLM_ERR_PARSE, "certificate: certificatePolicies OID %d cannot be represented", i + 1);
			goto out;
		}
		c->policies[c->n_policies++] = s;
		for (size_t k = 0; k < sizeof(level_oids) / sizeof(level_oids[0]); k++) {
			if (strcmp(s, level_oids[k].oid) == 0 && level_oids[k].rank > best_rank) {
				best_rank = level_oids[k].rank;
				c->level = level_oids[k].level;
			}
		}
	}
out:
	CERTIFICATEPOLICIES_free(pol);
	return rc;
}

static int san_ip_text(const ASN1_OCTET_STRING *ip, char **out)
{
	char buf[INET6_ADDRSTRLEN];
	const unsigned char *p = ASN1_STRING_get0_data(ip);
	int n = ASN1_STRING_length(ip);
	const char *s = NULL;

	if (n == 4)
		s = inet_ntop(AF_INET, p, buf, sizeof(buf));
	else if (n == 16)
		s = inet_ntop(AF_INET6, p, buf, sizeof(buf));
	else
		return aclm_error(ACLM_ERR_PARSE, "certificate: subjectAltName IP address has %d bytes "
		                  "(expected 4 or 16)", n);
	if (s == NULL)
		return aclm_error(ACLM_ERR_PARSE, "certificate: subjectAltName IP address cannot be printed");
	*out = aclm_strdup(s);
	return *out != NULL ? ACLM_OK : aclm_error(ACLM_ERR_NOMEM, "out of memory");
}

static int fill_sans(struct aclm_cert *c, X509 *x)
{
	GENERAL_NAMES *gens = NULL;
	int rc, n;

	if ((rc = get_ext(x, NID_subject_alt_name, (void **)&gens)) != ACLM_OK || gens == NULL)
		return rc;
	n = sk_GENERAL_NAME_num(gens);
	if (n > 0) {
		c->sans = calloc((size_t)n, sizeof(*c->sans));
		if (c->sans == NULL) {
			rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
			goto out;
		}
	}
	for (int i = 0; i < n; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		struct aclm_san *san = &c->sans[c->n_sans];
		const ASN1_STRING *s = NULL;

		switch (g->type) {
		case GEN_DNS: san->type = ACLM_SAN_DNS; s = g->d.dNSName; break;
		case GEN_EMAIL: san->type = ACLM_SAN_EMAIL; s = g->d.rfc822Name; break;
		case GEN_URI: san->type = ACLM_SAN_URI; s = g->d.uniformResourceIdentifier; break;
		case GEN_IPADD: san->type = ACLM_SAN_IP; break;
		default: continue; /* directoryName, otherName, ...: not inventoried */
		}
		if (g->type == GEN_IPADD) {
			if ((rc = san_ip_text(g->d.iPAddress, &san->value)) != ACLM_OK)
				goto out;
		} else {
			/* IA5String: 7-bit; anything else is escaped, never trusted */
			san->value = text_dup(ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s), false);
			if (san->value == NULL) {
				rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
				goto out;
			}
		}
		c->n_sans++;
	}
out:
	GENERAL_NAMES_free(gens);
	return rc;
}

static int fill_key_ids(struct aclm_cert *c, X509 *x)
{
	ASN1_OCTET_STRING *ski = NULL;
	AUTHORITY_KEYID *aki = NULL;
	int rc;

	if ((rc = get_ext(x, NID_subject_key_identifier, (void **)&ski)) != ACLM_OK)
		return rc;
	if (ski != NULL) {
		c->ski_hex = hex_dup(ASN1_STRING_get0_data(ski), (size_t)ASN1_STRING_length(ski));
		ASN1_OCTET_STRING_free(ski);
		if (c->ski_hex == NULL)
			return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	}
	if ((rc = get_ext(x, NID_authority_key_identifier, (void **)&aki)) != ACLM_OK)
		return rc;
	if (aki != NULL) {
		if (aki->keyid != NULL) {
			c->aki_hex = hex_dup(ASN1_STRING_get0_data(aki->keyid),
			                     (size_t)ASN1_STRING_length(aki->keyid));
			if (c->aki_hex == NULL)
				rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
		}
		AUTHORITY_KEYID_free(aki);
	}
	return rc;
}

/* ---- public ----------------------------------------------------------- */

/* OpenSSL 3.0 decodes a certificate's public key while it parses the
 * certificate, through a provider decoder chain it builds for every key:
 * half the cost of the whole parse.  Certificates are therefore parsed in a
 * library context whose only provider is "null" (no decoders), so the key
 * stays undecoded and fill_key() describes it from its OIDs, decoding it
 * with the default providers only for rare algorithms. */
static pthread_once_t parse_once = PTHREAD_ONCE_INIT;
static OSSL_LIB_CTX *parse_libctx;

static void parse_ctx_init(void)
{
	OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();

	if (ctx != NULL && OSSL_PROVIDER_load(ctx, "null") == NULL) {
		OSSL_LIB_CTX_free(ctx);
		ctx = NULL;
	}
	ERR_clear_error();
	parse_libctx = ctx;  /* NULL: the default context, slower but the same */
}

int aclm_cert_parse_der(const unsigned char *der, size_t len, struct aclm_cert **out)
{
	struct aclm_cert *c = NULL;
	const unsigned char *p = der;
	X509 *x = NULL;
	int rc;

	if (der == NULL || len == 0)
		return aclm_error(ACLM_ERR_PARSE, "certificate: empty input");
	if (len > LONG_MAX)
		return aclm_error(ACLM_ERR_PARSE, "certificate: %zu bytes is too large", len);
	pthread_once(&parse_once, parse_ctx_init);
	x = (X509 *)ASN1_item_d2i_ex(NULL, &p, (long)len, ASN1_ITEM_rptr(X509), parse_libctx, NULL);
	if (x == NULL) {
		rc = aclm_error_openssl(ACLM_ERR_PARSE, "certificate: not a valid DER X.509 certificate");
		goto out;
	}
	if (p != der + len) {
		rc = aclm_error(ACLM_ERR_PARSE, "certificate: %zu unexpected bytes after the certificate",
		                (size_t)(der + len - p));
		goto out;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL || (c->der = malloc(len)) == NULL) {
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
		goto out;
	}
	memcpy(c->der, der, len);
	c->der_len = len;
	if ((rc = sha256(der, len, c->fingerprint)) != ACLM_OK)
		goto out;
	aclm_hex_encode(c->fingerprint, sizeof(c->fingerprint), c->fingerprint_hex);

	if ((rc = fill_validity(c, x)) != ACLM_OK ||
	    (rc = fill_serial(c, x)) != ACLM_OK ||
	    (rc = fill_names(c, x)) != ACLM_OK ||
	    (rc = fill_key(c, x)) != ACLM_OK ||
	    (rc = fill_sig_alg(c, x)) != ACLM_OK ||
	    (rc = fill_basic_constraints(c, x)) != ACLM_OK ||
	    (rc = fill_key_usage(c, x)) != ACLM_OK ||
	    (rc = fill_eku(c, x)) != ACLM_OK ||
	    (rc = fill_policies(c, x)) != ACLM_OK ||
	    (rc = fill_sans(c, x)) != ACLM_OK ||
	    (rc = fill_key_ids(c, x)) != ACLM_OK)
		goto out;
	*out = c;
	c = NULL;
out:
	aclm_cert_free(c);
	X509_free(x);
	ERR_clear_error();
	return rc;
}

void aclm_cert_free(struct aclm_cert *c)
{
	if (c == NULL)
		return;
	free(c->der);
	free(c->subject);
	free(c->issuer);
	free(c->subject_cn);
	free(c->issuer_cn);
	free(c->serial_hex);
	free(c->curve);
	free(c->sig_alg);
	free(c->sig_alg_oid);
	free(c->ski_hex);
	free(c->aki_hex);
	for (size_t i = 0; i < c->n_eku; i++)
		free(c->eku[i]);
	free(c->eku);
	for (size_t i = 0; i < c->n_policies; i++)
		free(c->policies[i]);
	free(c->policies);
	for (size_t i = 0; i < c->n_sans; i++)
		free(c->sans[i].value);
	free(c->sans);
	free(c);
}

const char *aclm_key_type_name(enum aclm_key_type t)
{
	switch (t) {
	case ACLM_KEY_RSA: return "rsa";
	case ACLM_KEY_EC: return "ec";
	case ACLM_KEY_ED25519: return "ed25519";
	case ACLM_KEY_ED448: return "ed448";
	case ACLM_KEY_SM2: return "sm2";
	case ACLM_KEY_DSA: return "dsa";
	case ACLM_KEY_UNKNOWN: break;
	}
	return "unknown";
}

void aclm_cert_key_label(const struct aclm_cert *c, char *out, size_t out_size)
{
	if (out_size == 0)
		return;
	switch (c->key_type) {
	case ACLM_KEY_RSA:
	case ACLM_KEY_EC:
	case ACLM_KEY_DSA:
		if (c->key_bits > 0) {
			snprintf(out, out_size, "%s%d", aclm_key_type_name(c->key_type), c->key_bits);
			return;
		}
		break;
	default:
		break;
	}
	aclm_strlcpy(out, aclm_key_type_name(c->key_type), out_size);
}

static const char *const level_names[] = {
	[ACLM_LEVEL_NONE] = "",
	[ACLM_LEVEL_DV] = "dv",
	[ACLM_LEVEL_OV] = "ov",
	[ACLM_LEVEL_IV] = "iv",
	[ACLM_LEVEL_EV] = "ev",
};

const char *aclm_level_name(enum aclm_level l)
{
	if ((unsigned)l < sizeof(level_names) / sizeof(level_names[0]))
		return level_names[l];
	return "";
}

int aclm_level_parse(const char *s, enum aclm_level *out)
{
	if (s != NULL && (strcasecmp(s, "none") == 0 || *s == '\0')) {
		*out = ACLM_LEVEL_NONE;
		return ACLM_OK;
	}
	for (size_t i = ACLM_LEVEL_DV; s != NULL && i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			*out = (enum aclm_level)i;
			return ACLM_OK;
		}
	}
	return aclm_error(ACLM_ERR_PARSE, "'%s' is not a validation level (dv, ov, iv, ev or none)",
	                  s != NULL ? s : "");
}

const char *aclm_san_type_name(enum aclm_san_type t)
{
	switch (t) {
	case ACLM_SAN_DNS: return "DNS";
	case ACLM_SAN_IP: return "IP";
	case ACLM_SAN_EMAIL: return "email";
	case ACLM_SAN_URI: return "URI";
	}
	return "unknown";
}

void aclm_key_usage_str(unsigned ku, char *out, size_t out_size)
{
	static const char *const names[] = {
		"digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment",
		"keyAgreement", "keyCertSign", "cRLSign", "encipherOnly", "decipherOnly",
	};
	size_t used = 0;

	if (out_size == 0)
		return;
	out[0] = '\0';
	for (unsigned bit = 0; bit < sizeof(names) / sizeof(names[0]); bit++) {
		int n;
		if ((ku & (1u << bit)) == 0)
			continue;
		n = snprintf(out + used, out_size - used, "%s%s", used > 0 ? "," : "", names[bit]);
		if (n < 0 || (size_t)n >= out_size - used)
			return; /* truncated, still NUL-terminated */
		used += (size_t)n;
	}
}

/* Length of s without one trailing dot ("example.com." is absolute). */
static size_t dns_len(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && s[n - 1] == '.' ? n - 1 : n;
}

bool aclm_dns_name_matches(const char *pattern, const char *name)
{
	size_t pl, nl, rest_len;
	const char *dot;

	if (pattern == NULL || name == NULL)
		return false;
	pl = dns_len(pattern);
	nl = dns_len(name);
	if (pl == 0 || nl == 0)
		return false;
	if (pl == nl && strncasecmp(pattern, name, pl) == 0)
		return true;
	/* RFC 6125 6.4.3: "*" only as the whole left-most label, matching one
	 * non-empty label; the rest must hold at least two labels. */
	if (pl < 4 || pattern[0] != '*' || pattern[1] != '.')
		return false;
	rest_len = pl - 2;
	if (memchr(pattern + 2, '.', rest_len) == NULL || memchr(pattern + 2, '*', rest_len) != NULL)
		return false;
	dot = memchr(name, '.', nl);
	if (dot == NULL || dot == name)
		return false;
	if ((size_t)(name + nl - (dot + 1)) != rest_len)
		return false;
	return strncasecmp(dot + 1, pattern + 2, rest_len) == 0;
}
