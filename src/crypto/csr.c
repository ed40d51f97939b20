/* Key generation and PKCS#10 requests (include/aclm/csr.h). */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "aclm/csr.h"
#include "aclm/err.h"
#include "aclm/str.h"

#define CSR_MAX_NAMES 1000

static const struct {
	enum aclm_keygen kind;
	const char *name;
	const char *alias;
} kinds[] = {
	{ ACLM_KEYGEN_EC256, "ec256", "p256" },
	{ ACLM_KEYGEN_EC384, "ec384", "p384" },
	{ ACLM_KEYGEN_RSA2048, "rsa2048", "rsa" },
	{ ACLM_KEYGEN_RSA3072, "rsa3072", NULL },
	{ ACLM_KEYGEN_RSA4096, "rsa4096", NULL },
	{ ACLM_KEYGEN_SM2, "sm2", NULL },
};

int aclm_keygen_parse(const char *s, enum aclm_keygen *out)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if (strcmp(s, kinds[i].name) == 0 ||
		    (kinds[i].alias != NULL && strcmp(s, kinds[i].alias) == 0)) {
			*out = kinds[i].kind;
			return ACLM_OK;
		}
	}
	return aclm_error(ACLM_ERR_USAGE, "unknown key type '%s' (ec256, ec384, rsa2048, rsa3072, "
	                  "rsa4096 or sm2)", s);
}

const char *aclm_keygen_name(enum aclm_keygen k)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (kinds[i].kind == k)
			return kinds[i].name;
	return "?";
}

bool aclm_is_ip_literal(const char *s)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static int to_pkcs8(EVP_PKEY *pk, unsigned char **out, size_t *out_len)
{
	PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(pk);
	unsigned char *der = NULL;
	int n;

	if (p8 == NULL)
		return aclm_error_openssl(ACLM_ERR_CRYPTO, "encode private key");
	n = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
	PKCS8_PRIV_KEY_INFO_free(p8);
	if (n <= 0)
		return aclm_error_openssl(ACLM_ERR_CRYPTO, "encode private key");
	/* copy into malloc memory the caller can free() */
	*out = malloc((size_t)n);
	if (*out == NULL) {
		OPENSSL_clear_free(der, (size_t)n);
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	}
	memcpy(*out, der, (size_t)n);
	OPENSSL_clear_free(der, (size_t)n);
	*out_len = (size_t)n;
	return ACLM_OK;
}

int aclm_key_generate(enum aclm_keygen kind, unsigned char **pkcs8, size_t *pkcs8_len)
{
	EVP_PKEY *pk = NULL;
	int rc;

	switch (kind) {
	case ACLM_KEYGEN_EC256: pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"); break;
	case ACLM_KEYGEN_EC384: pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384"); break;
	case ACLM_KEYGEN_RSA2048: pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048); break;
	case ACLM_KEYGEN_RSA3072: pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072); break;
	case ACLM_KEYGEN_RSA4096: pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096); break;
	case ACLM_KEYGEN_SM2: pk = EVP_PKEY_Q_keygen(NULL, NULL, "SM2"); break;
	}
	if (pk == NULL)
		return aclm_error_openssl(ACLM_ERR_CRYPTO, "generate a %s key", aclm_keygen_name(kind));
	rc = to_pkcs8(pk, pkcs8, pkcs8_len);
	EVP_PKEY_free(pk);
	return rc;
}

static int load_pkcs8(const unsigned char *pkcs8, size_t len, EVP_PKEY **out)
{
	const unsigned char *p = pkcs8;
	PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)len);

	if (p8 == NULL)
		return aclm_error_openssl(ACLM_ERR_PARSE, "private key is not PKCS#8 DER");
	*out = EVP_PKCS82PKEY(p8);
	PKCS8_PRIV_KEY_INFO_free(p8);
	if (*out == NULL)
		return aclm_error_openssl(ACLM_ERR_PARSE, "private key: unsupported PKCS#8 content");
	return ACLM_OK;
}

int aclm_key_spki_sha256(const unsigned char *pkcs8, size_t pkcs8_len,
                         unsigned char out[32], char hex[65])
{
	EVP_PKEY *pk = NULL;
	unsigned char *der = NULL;
	unsigned int md_len = 0;
	int n, rc;

	if ((rc = load_pkcs8(pkcs8, pkcs8_len, &pk)) != ACLM_OK)
		return rc;
	n = i2d_PUBKEY(pk, &der);
	EVP_PKEY_free(pk);
	if (n <= 0)
		return aclm_error_openssl(ACLM_ERR_CRYPTO, "encode public key");
	if (!EVP_Digest(der, (size_t)n, out, &md_len, EVP_sha256(), NULL))
		rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "SHA-256");
	OPENSSL_free(der);
	if (rc == ACLM_OK && hex != NULL)
		aclm_hex_encode(out, 32, hex);
	return rc;
}

static bool is_sm2(EVP_PKEY *pk)
{
	char group[64];
	size_t glen = 0;

	if (EVP_PKEY_is_a(pk, "SM2"))
		return true;
	return EVP_PKEY_is_a(pk, "EC") &&
	       EVP_PKEY_get_utf8_string_param(pk, "group", group, sizeof(group), &glen) &&
	       strcmp(group, "SM2") == 0;
}

static int add_sans(X509_REQ *req, const struct aclm_csr_names *names)
{
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	STACK_OF(X509_EXTENSION) *exts = NULL;
	int rc = ACLM_ERR_CRYPTO;

	if (gens == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < names->n_names; i++) {
		const char *n = names->names[i];
		GENERAL_NAME *g = NULL;

		if (aclm_is_ip_literal(n)) {
			ASN1_OCTET_STRING *ip = a2i_IPADDRESS(n);
			g = GENERAL_NAME_new();
			if (ip == NULL || g == NULL) {
				ASN1_OCTET_STRING_free(ip);
				GENERAL_NAME_free(g);
				rc = aclm_error(ACLM_ERR_USAGE, "'%s' is not an IP address", n);
				goto out;
			}
			GENERAL_NAME_set0_value(g, GEN_IPADD, ip);
		} else {
			ASN1_IA5STRING *s = ASN1_IA5STRING_new();
			g = GENERAL_NAME_new();
			if (s == NULL || g == NULL || !ASN1_STRING_set(s, n, (int)strlen(n))) {
				ASN1_IA5STRING_free(s);
				GENERAL_NAME_free(g);
				rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
				goto out;
			}
			GENERAL_NAME_set0_value(g, GEN_DNS, s);
		}
		if (!sk_GENERAL_NAME_push(gens, g)) {
			GENERAL_NAME_free(g);
			rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
			goto out;
		}
	}
	if (X509V3_add1_i2d(&exts, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1 ||
	    !X509_REQ_add_extensions(req, exts)) {
		rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "CSR: add subjectAltName");
		goto out;
	}
	rc = ACLM_OK;
out:
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	GENERAL_NAMES_free(gens);
	return rc;
}

int aclm_csr_build(const unsigned char *pkcs8, size_t pkcs8_len,
                   const struct aclm_csr_names *names,
                   unsigned char **der, size_t *der_len)
{
	EVP_PKEY *pk = NULL;
	X509_REQ *req = NULL;
	X509_NAME *subj = NULL;
	EVP_MD_CTX *mctx = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	const EVP_MD *md = EVP_sha256();
	unsigned char *tmp = NULL;
	int n, rc;

	if (names->n_names == 0 || names->n_names > CSR_MAX_NAMES)
		return aclm_error(ACLM_ERR_USAGE, "a CSR needs 1 to %d names (got %zu)",
		                  CSR_MAX_NAMES, names->n_names);
	if ((rc = load_pkcs8(pkcs8, pkcs8_len, &pk)) != ACLM_OK)
		return rc;
	rc = ACLM_ERR_CRYPTO;
	req = X509_REQ_new();
	subj = X509_NAME_new();
	mctx = EVP_MD_CTX_new();
	if (req == NULL || subj == NULL || mctx == NULL) {
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
		goto out;
	}
	X509_REQ_set_version(req, 0);
	for (size_t i = 0; i < names->n_names; i++) {
		const char *nm = names->names[i];
		if (!aclm_is_ip_literal(nm) && strlen(nm) <= 64) {
			if (!X509_NAME_add_entry_by_NID(subj, NID_commonName, MBSTRING_UTF8,
			                                (const unsigned char *)nm, -1, -1, 0)) {
				rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "CSR: subject");
				goto out;
			}
			break;
		}
	}
	if (!X509_REQ_set_subject_name(req, subj) || !X509_REQ_set_pubkey(req, pk)) {
		rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "CSR: subject or public key");
		goto out;
	}
	if ((rc = add_sans(req, names)) != ACLM_OK)
		goto out;
	rc = ACLM_ERR_CRYPTO;
	if (is_sm2(pk)) {
		md = EVP_sm3();
		pctx = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
		if (pctx == NULL || EVP_PKEY_CTX_set1_id(pctx, ACLM_SM2_DEFAULT_ID,
		                                         strlen(ACLM_SM2_DEFAULT_ID)) <= 0) {
			rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "CSR: SM2 distinguishing ID");
			goto out;
		}
		EVP_MD_CTX_set_pkey_ctx(mctx, pctx);
	} else if (EVP_PKEY_is_a(pk, "EC") && EVP_PKEY_get_bits(pk) > 256) {
		md = EVP_sha384();
	}
	if (EVP_DigestSignInit(mctx, NULL, md, NULL, pk) != 1 || X509_REQ_sign_ctx(req, mctx) <= 0) {
		rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "CSR: sign");
		goto out;
	}
	n = i2d_X509_REQ(req, &tmp);
	if (n <= 0 || (*der = malloc((size_t)n)) == NULL) {
		rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "CSR: encode");
		goto out;
	}
	memcpy(*der, tmp, (size_t)n);
	*der_len = (size_t)n;
	rc = ACLM_OK;
out:
	OPENSSL_free(tmp);
	EVP_MD_CTX_free(mctx);
	EVP_PKEY_CTX_free(pctx);
	X509_NAME_free(subj);
	X509_REQ_free(req);
	EVP_PKEY_free(pk);
	return rc;
}

int aclm_csr_verify(const unsigned char *der, size_t der_len, size_t *n_names)
{
	const unsigned char *p = der;
	X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)der_len);
	STACK_OF(X509_EXTENSION) *exts = NULL;
	GENERAL_NAMES *gens = NULL;
	EVP_PKEY *pk = NULL;
	int rc = ACLM_ERR_PARSE;

	if (req == NULL || p != der + der_len)
		return aclm_error_openssl(ACLM_ERR_PARSE, "CSR is not one DER PKCS#10 request");
	pk = X509_REQ_get_pubkey(req);
	if (pk == NULL) {
		rc = aclm_error_openssl(ACLM_ERR_PARSE, "CSR: public key");
		goto out;
	}
	if (is_sm2(pk)) {
		ASN1_OCTET_STRING *id = ASN1_OCTET_STRING_new();
		if (id == NULL || !ASN1_OCTET_STRING_set(id, (const unsigned char *)ACLM_SM2_DEFAULT_ID,
		                                         (int)strlen(ACLM_SM2_DEFAULT_ID))) {
			ASN1_OCTET_STRING_free(id);
			rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
			goto out;
		}
		X509_REQ_set0_distinguishing_id(req, id);
	}
	if (X509_REQ_verify(req, pk) != 1) {
		rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "CSR: signature does not verify");
		goto out;
	}
	exts = X509_REQ_get_extensions(req);
	gens = exts ? X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL) : NULL;
	if (n_names != NULL)
		*n_names = gens ? (size_t)sk_GENERAL_NAME_num(gens) : 0;
	rc = ACLM_OK;
out:
	GENERAL_NAMES_free(gens);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	EVP_PKEY_free(pk);
	X509_REQ_free(req);
	return rc;
}
