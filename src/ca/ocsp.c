/* The OCSP responder (RFC 6960): one response signed by the issuing
 * intermediate the request names; nonce copied when the request has one. */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>

#include "aclm/ca.h"
#include "aclm/err.h"
#include "aclm/store.h"
#include "aclm/store_ca.h"
#include "aclm/str.h"
#include "aclm/timeutil.h"
#include "ca-int.h"

#define OCSP_MAX_REQUEST 8192
#define OCSP_MAX_ITEMS 16
#define OCSP_VALIDITY (86400L)

static int encode(OCSP_RESPONSE *r, unsigned char **der, size_t *der_len)
{
	unsigned char *tmp = NULL;
	int n = i2d_OCSP_RESPONSE(r, &tmp);

	if (n <= 0 || (*der = malloc((size_t)n)) == NULL) {
		OPENSSL_free(tmp);
		return aclm_error_openssl(ACLM_ERR_CRYPTO, "encode the OCSP response");
	}
	memcpy(*der, tmp, (size_t)n);
	*der_len = (size_t)n;
	OPENSSL_free(tmp);
	return ACLM_OK;
}

static int status_only(int status, unsigned char **der, size_t *der_len)
{
	OCSP_RESPONSE *r = OCSP_response_create(status, NULL);
	int rc;

	if (r == NULL)
		return aclm_error_openssl(ACLM_ERR_CRYPTO, "OCSP response");
	rc = encode(r, der, der_len);
	OCSP_RESPONSE_free(r);
	return rc;
}

/* Which hierarchy of ca issued the certificate cid names? */
static int find_issuer(struct aclm_store *st, const char *ca, OCSP_CERTID *cid,
                       enum aclm_ca_algo *algo)
{
	ASN1_OBJECT *md_oid = NULL;
	const EVP_MD *md;

	if (!OCSP_id_get0_info(NULL, &md_oid, NULL, NULL, cid) ||
	    (md = EVP_get_digestbyobj(md_oid)) == NULL)
		return ACLM_ERR_NOTFOUND;
	for (int a = 0; a < ACLM_CA_N_ALGOS; a++) {
		X509 *issuer = NULL;
		EVP_PKEY *none = NULL;
		OCSP_CERTID *mine;
		bool same;
		if (ca_load_issuer(st, NULL, ca, (enum aclm_ca_algo)a, &issuer, &none) != ACLM_OK)
			continue;
		mine = OCSP_cert_to_id(md, NULL, issuer);
		same = mine != NULL && OCSP_id_issuer_cmp(mine, cid) == 0;
		OCSP_CERTID_free(mine);
		X509_free(issuer);
		if (same) {
			*algo = (enum aclm_ca_algo)a;
			return ACLM_OK;
		}
	}
	aclm_error_clear();
	return ACLM_ERR_NOTFOUND;
}

static void serial_hex(const ASN1_INTEGER *s, char *out, size_t out_size)
{
	const unsigned char *p = ASN1_STRING_get0_data(s);
	int n = ASN1_STRING_length(s);

	if (n <= 0 || (size_t)n * 2 + 1 > out_size) {
		aclm_strlcpy(out, "-", out_size);
		return;
	}
	aclm_hex_encode(p, (size_t)n, out);
	for (char *c = out; *c != '\0'; c++)
		if (*c >= 'a' && *c <= 'f')
			*c = (char)(*c - 'a' + 'A');
}

int aclm_ca_ocsp_respond(struct aclm_store *st, const struct aclm_kek *kek, const char *ca,
                         const unsigned char *req, size_t req_len,
                         unsigned char **resp, size_t *resp_len)
{
	const unsigned char *p = req;
	OCSP_REQUEST *oreq = NULL;
	OCSP_BASICRESP *bs = NULL;
	OCSP_RESPONSE *r = NULL;
	X509 *issuer = NULL;
	EVP_PKEY *key = NULL;
	EVP_MD_CTX *mctx = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	ASN1_TIME *now_t = NULL, *next_t = NULL;
	enum aclm_ca_algo algo = ACLM_CA_ECDSA;
	int64_t now = aclm_now();
	int n, rc;

	if (req_len == 0 || req_len > OCSP_MAX_REQUEST ||
	    (oreq = d2i_OCSP_REQUEST(NULL, &p, (long)req_len)) == NULL || p != req + req_len ||
	    (n = OCSP_request_onereq_count(oreq)) <= 0 || n > OCSP_MAX_ITEMS) {
		OCSP_REQUEST_free(oreq);
		ERR_clear_error();
		return status_only(OCSP_RESPONSE_STATUS_MALFORMEDREQUEST, resp, resp_len);
	}
	if (find_issuer(st, ca, OCSP_onereq_get0_id(OCSP_request_onereq_get0(oreq, 0)),
	                &algo) != ACLM_OK) {
		OCSP_REQUEST_free(oreq);
		return status_only(OCSP_RESPONSE_STATUS_UNAUTHORIZED, resp, resp_len);
	}
	if ((rc = ca_load_issuer(st, kek, ca, algo, &issuer, &key)) != ACLM_OK)
		goto out;
	rc = ACLM_ERR_CRYPTO;
	if ((bs = OCSP_BASICRESP_new()) == NULL ||
	    (now_t = ASN1_TIME_set(NULL, (time_t)now)) == NULL ||
	    (next_t = ASN1_TIME_set(NULL, (time_t)(now + OCSP_VALIDITY))) == NULL) {
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (int i = 0; i < n; i++) {
		OCSP_CERTID *cid = OCSP_onereq_get0_id(OCSP_request_onereq_get0(oreq, i));
		ASN1_INTEGER *serial = NULL;
		struct aclm_ca_issued_row row;
		enum aclm_ca_algo a2;
		char hex[80];
		int status = V_OCSP_CERTSTATUS_UNKNOWN, reason = 0;
		ASN1_TIME *rev_t = NULL;
		bool ok;

		OCSP_id_get0_info(NULL, NULL, NULL, &serial, cid);
		if (find_issuer(st, ca, cid, &a2) == ACLM_OK && a2 == algo && serial != NULL) {
			serial_hex(serial, hex, sizeof(hex));
			if (aclm_store_ca_issued_get(st, ca, hex, &row) == ACLM_OK) {
				if (strcmp(row.algo, aclm_ca_algo_name(algo)) == 0) {
					status = row.revoked_at != 0 ? V_OCSP_CERTSTATUS_REVOKED
					                             : V_OCSP_CERTSTATUS_GOOD;
					if (row.revoked_at != 0) {
						rev_t = ASN1_TIME_set(NULL, (time_t)row.revoked_at);
						reason = row.reason;
					}
				}
				aclm_ca_issued_row_free(&row);
			}
			aclm_error_clear();
		}
		ok = OCSP_basic_add1_status(bs, cid, status, reason, rev_t, now_t, next_t) != NULL;
		ASN1_TIME_free(rev_t);
		if (!ok) {
			rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "OCSP status");
			goto out;
		}
	}
	if (OCSP_copy_nonce(bs, oreq) <= 0) {
		rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "OCSP nonce");
		goto out;
	}
	if ((rc = ca_sign_ctx(key, &mctx, &pctx)) != ACLM_OK)
		goto out;
	if (!OCSP_basic_sign_ctx(bs, issuer, mctx, NULL, OCSP_RESPID_KEY)) {
		rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "sign the OCSP response");
		goto out;
	}
	if ((r = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs)) == NULL) {
		rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "OCSP response");
		goto out;
	}
	rc = encode(r, resp, resp_len);
out:
	OCSP_RESPONSE_free(r);
	ASN1_TIME_free(now_t);
	ASN1_TIME_free(next_t);
	EVP_MD_CTX_free(mctx);
	EVP_PKEY_CTX_free(pctx);
	OCSP_BASICRESP_free(bs);
	EVP_PKEY_free(key);
	X509_free(issuer);
	OCSP_REQUEST_free(oreq);
	return rc;
}
