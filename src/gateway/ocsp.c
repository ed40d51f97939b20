/* OCSP stapling: a thread fetches, for every site certificate whose chain
 * file holds its issuer and which names an OCSP responder (AIA), a response
 * from that responder (the issuer's; for sites with cert_source ca the
 * built-in CA's responder answers in process), keeps it while
 * it is good and current, and the status callback staples it to handshakes
 * of clients that ask.  Fetched at start, after every reload, and hourly. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "aclm/buf.h"
#include "aclm/err.h"
#include "aclm/log.h"
#include "gateway-int.h"

#define REFRESH_SECONDS 3600
#define RETRY_SECONDS 10
#define MAX_RESPONSE (64 * 1024)

struct ocsp {
	struct aclm_gateway *gw;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
};

/* Guards the responses of every snapshot (read per handshake, written by
 * the fetcher). */
static pthread_mutex_t resp_mu = PTHREAD_MUTEX_INITIALIZER;

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct aclm_buf *b = arg;

	return aclm_buf_append(b, p, size * n) ? 0 : size * n;
}

/* Signed by the issuer itself, or by a responder the issuer delegated to
 * (its certificate in the response, issued by the issuer, id-kp-OCSPSigning):
 * a response clients would refuse is not stapled. */
static bool signed_by_issuer(OCSP_BASICRESP *basic, X509 *issuer)
{
	STACK_OF(X509) *certs = sk_X509_new_null();
	X509_STORE *st = X509_STORE_new();
	bool ok = false;

	if (certs && st && sk_X509_push(certs, issuer) && X509_STORE_add_cert(st, issuer) &&
	    X509_STORE_set_flags(st, X509_V_FLAG_PARTIAL_CHAIN))
		ok = OCSP_basic_verify(basic, certs, st, OCSP_TRUSTOTHER) == 1;
	sk_X509_free(certs);
	X509_STORE_free(st);
	return ok;
}

/* POST the DER request to url; the answer in b. */
static int post(const char *url, const unsigned char *qder, int qlen, struct aclm_buf *b)
{
	struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/ocsp-request");
	CURL *h = curl_easy_init();
	long code = 0;
	int rc = 0;

	if (!h || !hdr) {
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
		goto out;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, qder);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)qlen);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	if (curl_easy_perform(h) != CURLE_OK ||
	    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK || code != 200)
		rc = aclm_error(ACLM_ERR_IO, "OCSP %s: no answer (HTTP %ld)", url, code);
out:
	curl_slist_free_all(hdr);
	if (h)
		curl_easy_cleanup(h);
	return rc;
}

/* The DER response for leaf (issued by issuer), checked: status
 * successful, this certificate good, within its validity.  From url, or
 * for a site with cert_source ca from the built-in CA's responder in
 * process (url is then only named in messages). */
static int fetch_one(struct aclm_gateway *gw, const struct gw_site *site, const char *url,
                     X509 *leaf, X509 *issuer, unsigned char **der, size_t *der_len)
{
	OCSP_REQUEST *req = OCSP_REQUEST_new();
	OCSP_CERTID *id = OCSP_cert_to_id(NULL, leaf, issuer), *id2 = NULL;
	OCSP_RESPONSE *resp = NULL;
	OCSP_BASICRESP *basic = NULL;
	unsigned char *qder = NULL;
	const unsigned char *p;
	struct aclm_buf b;
	int qlen, status = -1, reason = 0, rc = ACLM_ERR_IO;
	ASN1_GENERALIZEDTIME *thisupd = NULL, *nextupd = NULL;

	aclm_buf_init(&b, MAX_RESPONSE);
	if (!req || !id || !(id2 = OCSP_CERTID_dup(id)) || !OCSP_request_add0_id(req, id2) ||
	    (qlen = i2d_OCSP_REQUEST(req, &qder)) <= 0) {
		OCSP_CERTID_free(id2);
		rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "OCSP request");
		goto out;
	}
	if (site->cert_source == GW_CERT_CA) {
		unsigned char *local = NULL;
		size_t local_len = 0;

		if ((rc = gw_certs_ocsp(gw, site, qder, (size_t)qlen, &local, &local_len)))
			goto out;
		rc = aclm_buf_append(&b, local, local_len);
		free(local);
		if (rc)
			goto out;
	} else if ((rc = post(url, qder, qlen, &b))) {
		goto out;
	}
	p = b.data;
	resp = d2i_OCSP_RESPONSE(NULL, &p, (long)b.len);
	if (!resp || OCSP_response_status(resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL ||
	    !(basic = OCSP_response_get1_basic(resp)) ||
	    !OCSP_resp_find_status(basic, id, &status, &reason, NULL, &thisupd, &nextupd) ||
	    status != V_OCSP_CERTSTATUS_GOOD || !OCSP_check_validity(thisupd, nextupd, 300, -1)) {
		ERR_clear_error();
		rc = aclm_error(ACLM_ERR_PARSE, "OCSP %s: no good, current response for the "
		                "certificate (status %d)", url, status);
		goto out;
	}
	if (!signed_by_issuer(basic, issuer)) {
		ERR_clear_error();
		rc = aclm_error(ACLM_ERR_CRYPTO, "OCSP %s: the response is not signed by the "
		                "certificate's issuer or a responder it delegated to", url);
		goto out;
	}
	*der = malloc(b.len);
	if (!*der) {
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
		goto out;
	}
	memcpy(*der, b.data, b.len);
	*der_len = b.len;
	rc = 0;
out:
	OPENSSL_free(qder);
	OCSP_REQUEST_free(req);
	OCSP_CERTID_free(id);
	OCSP_RESPONSE_free(resp);
	OCSP_BASICRESP_free(basic);
	aclm_buf_free(&b);
	return rc;
}

/* false when a responder is named but gave no usable answer */
static bool fetch_cert(struct aclm_gateway *gw, const struct gw_site *site,
                       struct gw_certfile *cf)
{
	bool ok = true;

	FILE *f = fopen(cf->cert, "r");
	X509 *leaf = NULL, *issuer = NULL;
	STACK_OF(OPENSSL_STRING) *urls = NULL;
	unsigned char *der = NULL;
	size_t len = 0;

	if (!f)
		return true;
	leaf = PEM_read_X509(f, NULL, NULL, NULL);
	issuer = leaf ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	fclose(f);
	ERR_clear_error();
	urls = leaf ? X509_get1_ocsp(leaf) : NULL;
	if (leaf && issuer && ((urls && sk_OPENSSL_STRING_num(urls) > 0) ||
	                       site->cert_source == GW_CERT_CA)) {
		const char *url = urls && sk_OPENSSL_STRING_num(urls) > 0 ?
		                  sk_OPENSSL_STRING_value(urls, 0) : "(built-in CA)";
		int rc = fetch_one(gw, site, url, leaf, issuer, &der, &len);

		if (rc == 0) {
			pthread_mutex_lock(&resp_mu);
			free(cf->ocsp_der);
			cf->ocsp_der = der;
			cf->ocsp_len = len;
			if (!cf->ocsp_leaf) {
				cf->ocsp_leaf = leaf;
				leaf = NULL;
			}
			pthread_mutex_unlock(&resp_mu);
			aclm_debug("gateway: OCSP response for %s stapled (%zu bytes)", cf->cert, len);
		} else {
			if (rc != ACLM_AGAIN)
				aclm_warn("gateway: %s: %s", cf->cert, aclm_errmsg());
			ok = false;
		}
	}
	X509_email_free(urls);
	X509_free(leaf);
	X509_free(issuer);
	return ok;
}

/* The status callback: staple the response of the certificate chosen. */
static int status_cb(SSL *ssl, void *arg)
{
	struct gw_site *site = gw_tls_site(ssl);
	X509 *chosen = SSL_get_certificate(ssl);
	int ret = SSL_TLSEXT_ERR_NOACK;

	if (!site || !chosen)
		return SSL_TLSEXT_ERR_NOACK;
	pthread_mutex_lock(&resp_mu);
	for (size_t i = 0; i < site->n_certs; i++) {
		struct gw_certfile *cf = &site->certs[i];
		unsigned char *copy;

		if (!cf->ocsp_der || !cf->ocsp_leaf || X509_cmp(cf->ocsp_leaf, chosen))
			continue;
		copy = OPENSSL_malloc(cf->ocsp_len);
		if (copy) {
			memcpy(copy, cf->ocsp_der, cf->ocsp_len);
			if (SSL_set_tlsext_status_ocsp_resp(ssl, copy, (long)cf->ocsp_len))
				ret = SSL_TLSEXT_ERR_OK;
			else
				OPENSSL_free(copy);
		}
		break;
	}
	pthread_mutex_unlock(&resp_mu);
	return ret;
}

void gw_ocsp_install(SSL_CTX *ctx)
{
	SSL_CTX_set_tlsext_status_cb(ctx, status_cb);
}

void gw_ocsp_certfile_free(struct gw_certfile *cf)
{
	free(cf->ocsp_der);
	X509_free(cf->ocsp_leaf);
	cf->ocsp_der = NULL;
	cf->ocsp_leaf = NULL;
}

static void *ocsp_main(void *arg)
{
	struct ocsp *o = arg;
	struct aclm_gw_config *done = NULL;
	time_t last = 0;

	pthread_mutex_lock(&o->mu);
	while (!o->stop) {
		struct aclm_gw_config *cfg;
		struct timespec until;

		pthread_mutex_unlock(&o->mu);
		cfg = gw_current(o->gw);
		/* a new snapshot (start, reload) or an hour since the last round */
		if (cfg != done || time(NULL) - last >= REFRESH_SECONDS) {
			bool ok = true;

			for (size_t i = 0; i < cfg->n_sites; i++)
				for (size_t j = 0; j < cfg->sites[i].n_certs; j++)
					if (!cfg->sites[i].certs[j].is_missing)
						ok &= fetch_cert(o->gw, &cfg->sites[i],
						                 &cfg->sites[i].certs[j]);
			if (done)
				aclm_gw_config_unref(done);
			done = cfg;             /* keeps its reference: compared by pointer */
			/* a responder that failed is asked again soon */
			last = time(NULL) - (ok ? 0 : REFRESH_SECONDS - RETRY_SECONDS);
		} else {
			aclm_gw_config_unref(cfg);
		}
		pthread_mutex_lock(&o->mu);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		if (!o->stop)
			pthread_cond_timedwait(&o->cv, &o->mu, &until);
	}
	pthread_mutex_unlock(&o->mu);
	if (done)
		aclm_gw_config_unref(done);
	return NULL;
}

int gw_ocsp_start(struct aclm_gateway *gw)
{
	struct ocsp *o = calloc(1, sizeof(*o));

	if (!o)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	o->gw = gw;
	pthread_mutex_init(&o->mu, NULL);
	pthread_cond_init(&o->cv, NULL);
	if (pthread_create(&o->thread, NULL, ocsp_main, o)) {
		free(o);
		return aclm_error(ACLM_ERR_IO, "cannot start the OCSP thread");
	}
	gw->ocsp = o;
	return 0;
}

void gw_ocsp_stop(struct aclm_gateway *gw)
{
	struct ocsp *o = gw->ocsp;

	if (!o)
		return;
	pthread_mutex_lock(&o->mu);
	o->stop = true;
	pthread_cond_signal(&o->cv);
	pthread_mutex_unlock(&o->mu);
	pthread_join(o->thread, NULL);
	pthread_cond_destroy(&o->cv);
	pthread_mutex_destroy(&o->mu);
	free(o);
	gw->ocsp = NULL;
}
