/* CRLs: one per issuing intermediate, DER, fresh on every request (a new
 * CRL number each time), valid 7 days. */
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/x509v3.h>

#include "aclm/ca.h"
#include "aclm/err.h"
#include "aclm/store.h"
#include "aclm/store_ca.h"
#include "aclm/str.h"
#include "aclm/timeutil.h"
#include "ca-int.h"

#define CRL_VALIDITY (7 * 86400L)

struct revoked_ctx {
	X509_CRL *crl;
	int rc;
};

static int add_revoked(void *ctx, const struct aclm_ca_issued_row *r)
{
	struct revoked_ctx *c = ctx;
	X509_REVOKED *rev = X509_REVOKED_new();
	BIGNUM *bn = NULL;
	ASN1_INTEGER *serial = NULL;
	ASN1_TIME *when = NULL;
	ASN1_ENUMERATED *reason = NULL;

	if (rev == NULL || BN_hex2bn(&bn, r->serial) == 0 ||
	    (serial = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
	    (when = ASN1_TIME_set(NULL, (time_t)r->revoked_at)) == NULL ||
	    !X509_REVOKED_set_serialNumber(rev, serial) ||
	    !X509_REVOKED_set_revocationDate(rev, when)) {
		c->rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "CRL entry %s", r->serial);
		goto out;
	}
	if (r->reason != 0) {
		reason = ASN1_ENUMERATED_new();
		if (reason == NULL || !ASN1_ENUMERATED_set(reason, r->reason) ||
		    !X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, reason, 0, 0)) {
			c->rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "CRL entry reason");
			goto out;
		}
	}
	if (!X509_CRL_add0_revoked(c->crl, rev)) {
		c->rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "CRL entry");
		goto out;
	}
	rev = NULL;
out:
	ASN1_ENUMERATED_free(reason);
	ASN1_TIME_free(when);
	ASN1_INTEGER_free(serial);
	BN_free(bn);
	X509_REVOKED_free(rev);
	return c->rc;
}

int aclm_ca_crl(struct aclm_store *st, const struct aclm_kek *kek, const char *ca,
                enum aclm_ca_algo algo, unsigned char **der, size_t *der_len)
{
	X509 *issuer = NULL;
	EVP_PKEY *key = NULL;
	X509_CRL *crl = NULL;
	EVP_MD_CTX *mctx = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	ASN1_TIME *t = NULL;
	ASN1_INTEGER *num = NULL;
	struct aclm_ca_issued_filter f;
	struct revoked_ctx rc_ctx;
	unsigned char *tmp = NULL;
	int64_t number = 0, now = aclm_now();
	int n, rc;

	if ((rc = ca_load_issuer(st, kek, ca, algo, &issuer, &key)) != ACLM_OK)
		return rc;
	if ((rc = aclm_store_ca_crl_number_next(st, ca, aclm_ca_algo_name(algo), &number)) != ACLM_OK)
		goto out;
	rc = ACLM_ERR_CRYPTO;
	crl = X509_CRL_new();
	if (crl == NULL || !X509_CRL_set_version(crl, 1) ||
	    !X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)) ||
	    (t = ASN1_TIME_set(NULL, (time_t)now)) == NULL || !X509_CRL_set1_lastUpdate(crl, t) ||
	    ASN1_TIME_set(t, (time_t)(now + CRL_VALIDITY)) == NULL ||
	    !X509_CRL_set1_nextUpdate(crl, t) ||
	    (num = ASN1_INTEGER_new()) == NULL || !ASN1_INTEGER_set_int64(num, number) ||
	    !X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0)) {
		rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "CRL of %s/%s", ca, aclm_ca_algo_name(algo));
		goto out;
	}
	{
		X509V3_CTX v3;
		X509_EXTENSION *ext;
		X509V3_set_ctx(&v3, issuer, NULL, NULL, crl, 0);
		ext = X509V3_EXT_conf_nid(NULL, &v3, NID_authority_key_identifier, "keyid:always");
		if (ext == NULL || !X509_CRL_add_ext(crl, ext, -1)) {
			X509_EXTENSION_free(ext);
			rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "CRL authority key identifier");
			goto out;
		}
		X509_EXTENSION_free(ext);
	}
	memset(&f, 0, sizeof(f));
	f.ca = ca;
	f.algo = aclm_ca_algo_name(algo);
	f.revoked_only = true;
	rc_ctx.crl = crl;
	rc_ctx.rc = ACLM_OK;
	if ((rc = aclm_store_ca_issued_list(st, &f, add_revoked, &rc_ctx)) != ACLM_OK)
		goto out;
	X509_CRL_sort(crl);
	if ((rc = ca_sign_ctx(key, &mctx, &pctx)) != ACLM_OK)
		goto out;
	if (X509_CRL_sign_ctx(crl, mctx) <= 0) {
		rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "sign the CRL");
		goto out;
	}
	n = i2d_X509_CRL(crl, &tmp);
	if (n <= 0 || (*der = malloc((size_t)n)) == NULL) {
		rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "encode the CRL");
		goto out;
	}
	memcpy(*der, tmp, (size_t)n);
	*der_len = (size_t)n;
	rc = ACLM_OK;
out:
	OPENSSL_free(tmp);
	ASN1_INTEGER_free(num);
	ASN1_TIME_free(t);
	EVP_MD_CTX_free(mctx);
	EVP_PKEY_CTX_free(pctx);
	X509_CRL_free(crl);
	EVP_PKEY_free(key);
	X509_free(issuer);
	return rc;
}
