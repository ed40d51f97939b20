/* Certificates for sites with cert_source acme: a thread of the gateway
 * obtains them from the CAs of aclm.yaml (acme.cas) through aclm's ACME
 * client, http-01 answered by the gateway's own plain listener from
 * state_dir/webroot, and writes them to state_dir/<first name>.crt/.key.
 * The daemon's file watcher then reloads, so the new certificate is served
 * within a second while the other sites serve on.  Renewal follows the
 * client's rule (aclm_acme_renew_at: 2/3 of the lifetime, with jitter);
 * orders, accounts and certificates are in the store. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "aclm/acme.h"
#include "aclm/buf.h"
#include "aclm/bundle.h"
#include "aclm/csr.h"
#include "aclm/err.h"
#include "aclm/keywrap.h"
#include "aclm/log.h"
#include "aclm/store.h"
#include "aclm/store_acme.h"
#include "aclm/str.h"
#include "gateway-int.h"

#define RETRY_SECONDS 10

atomic_int gw_alpn_port;
#define CHECK_SECONDS 60

struct acme {
	struct aclm_gateway *gw;
	struct aclm_store *st;
	const struct aclm_kek *kek;
	const struct aclm_acme_ca *cas;
	size_t n_cas;
	pthread_t thread;
	bool started, stop;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

int aclm_gateway_set_acme(struct aclm_gateway *gw, struct aclm_store *store,
                          const struct aclm_kek *kek, const struct aclm_acme_ca *cas,
                          size_t n_cas)
{
	struct acme *a = calloc(1, sizeof(*a));

	if (!a)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	a->gw = gw;
	a->st = store;
	a->kek = kek;
	a->cas = cas;
	a->n_cas = n_cas;
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	gw->acme = a;
	return 0;
}

/* Write path atomically (a temporary file renamed over it). */
static int write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char tmp[4200];
	int fd, rc = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return aclm_error(ACLM_ERR_IO, "%s: %s", tmp, strerror(errno));
	if (fchmod(fd, mode) || write(fd, data, len) != (ssize_t)len || fsync(fd))
		rc = aclm_error(ACLM_ERR_IO, "%s: %s", tmp, strerror(errno));
	if (close(fd) && !rc)
		rc = aclm_error(ACLM_ERR_IO, "%s: %s", tmp, strerror(errno));
	if (!rc && rename(tmp, path))
		rc = aclm_error(ACLM_ERR_IO, "%s: %s", path, strerror(errno));
	if (rc)
		unlink(tmp);
	return rc;
}

struct row_ctx {
	int64_t issuer_id;
	char spki[65];
};

static int row_fn(void *ctx, const struct aclm_cert_row *row)
{
	struct row_ctx *r = ctx;

	r->issuer_id = row->issuer_id;
	aclm_strlcpy(r->spki, row->spki, sizeof(r->spki));
	return 0;
}

/* The chain of cert_id (leaf first) and its key, from the store to the
 * site's files: the key first, so that a reload never pairs the new
 * certificate with the old key for long. */
static int save(struct acme *a, const struct gw_certfile *cf, int64_t cert_id)
{
	struct aclm_buf pem;
	struct row_ctx leaf = { 0 };
	unsigned char *der = NULL, *sealed = NULL, *pkcs8 = NULL, spki[32];
	char *p = NULL, *kpem = NULL;
	size_t der_len = 0, p_len = 0, sealed_len = 0, pkcs8_len = 0, kpem_len = 0;
	int64_t id = cert_id;
	int rc = 0;

	aclm_buf_init(&pem, 1 << 20);
	for (int depth = 0; id != 0 && depth < 8 && !rc; depth++) {
		struct row_ctx one = { 0 };

		if ((rc = aclm_store_get_cert(a->st, id, row_fn, &one)) ||
		    (rc = aclm_store_get_cert_der(a->st, id, &der, &der_len)) ||
		    (rc = aclm_pem_encode_cert(der, der_len, &p, &p_len)))
			break;
		if (depth == 0)
			leaf = one;
		rc = aclm_buf_append(&pem, p, p_len);
		free(der);
		free(p);
		der = NULL;
		p = NULL;
		if (one.issuer_id == id)
			break;
		id = one.issuer_id;
	}
	if (rc)
		goto out;
	if ((rc = aclm_store_get_private_key(a->st, leaf.spki, &sealed, &sealed_len)))
		goto out;
	aclm_hex_decode(leaf.spki, spki, sizeof(spki));
	if ((rc = aclm_keywrap_open(a->kek, spki, sizeof(spki), sealed, sealed_len, &pkcs8,
	                            &pkcs8_len)) ||
	    (rc = aclm_pem_encode_key(pkcs8, pkcs8_len, &kpem, &kpem_len)))
		goto out;
	if ((rc = write_atomic(cf->key, kpem, kpem_len, 0600)))
		goto out;
	rc = write_atomic(cf->cert, pem.data, pem.len, 0644);
out:
	if (pkcs8)
		OPENSSL_clear_free(pkcs8, pkcs8_len);
	if (kpem)
		OPENSSL_clear_free(kpem, kpem_len);
	free(sealed);
	free(der);
	free(p);
	aclm_buf_free(&pem);
	return rc;
}

static uint64_t name_seed(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* Due when the file is missing, unreadable, or past its renewal time. */
static bool is_due(const struct gw_site *s, size_t i)
{
	const struct gw_certfile *cf = &s->certs[i];
	FILE *f = fopen(cf->cert, "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	struct tm nb, na;
	bool due = true;

	if (f)
		fclose(f);
	if (x && ASN1_TIME_to_tm(X509_get0_notBefore(x), &nb) == 1 &&
	    ASN1_TIME_to_tm(X509_get0_notAfter(x), &na) == 1)
		due = time(NULL) >= aclm_acme_renew_at(timegm(&nb), timegm(&na),
		                                       name_seed(s->names[0]));
	X509_free(x);
	return due;
}

static int free_loopback_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	if (!bind(fd, (struct sockaddr *)&a, sizeof(a)) &&
	    !getsockname(fd, (struct sockaddr *)&a, &len))
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static int issue(struct acme *a, struct aclm_gw_config *cfg, struct gw_site *s, size_t ki,
                 int64_t pair_id, int64_t *managed_id)
{
	const char *ca_names[8];
	struct aclm_acme_request req = { 0 };
	struct aclm_acme_result res = { 0 };
	char alpn_addr[32];
	int rc;

	req.names = (const char *const *)s->names;
	req.n_names = s->n_names;
	req.key = (enum aclm_keygen)s->acme_keys[ki];
	req.pair_id = pair_id;
	if (s->acme_tls_alpn) {
		/* The ACME client's own tls-alpn-01 responder on a loopback port;
		 * the workers pass validation connections through to it. */
		int port = free_loopback_port();

		if (port <= 0)
			return aclm_error(ACLM_ERR_IO, "no free loopback port for tls-alpn-01");
		snprintf(alpn_addr, sizeof(alpn_addr), "127.0.0.1:%d", port);
		req.solver.type = ACLM_CHALL_TLSALPN01;
		req.solver.standalone = alpn_addr;
		atomic_store(&gw_alpn_port, port);
	} else {
		req.solver.type = ACLM_CHALL_HTTP01;
		req.solver.webroot = cfg->webroot;
	}
	if (s->n_acme_cas) {
		for (size_t i = 0; i < s->n_acme_cas; i++)
			ca_names[i] = s->acme_cas[i];
		req.n_cas = s->n_acme_cas;
	} else {
		for (size_t i = 0; i < a->n_cas && i < 8; i++)
			ca_names[i] = a->cas[i].name;
		req.n_cas = a->n_cas < 8 ? a->n_cas : 8;
	}
	req.cas = ca_names;
	aclm_info("gateway: obtaining a certificate for %s", s->names[0]);
	rc = aclm_acme_issue(a->st, a->kek, a->cas, a->n_cas, &req, &res);
	atomic_store(&gw_alpn_port, 0);
	if (rc)
		return rc;
	*managed_id = res.managed_id;
	if (pair_id)
		aclm_store_managed_set_pair(a->st, pair_id, res.managed_id);
	if ((rc = save(a, &s->certs[ki], res.cert_id)))
		return rc;
	aclm_info("gateway: certificate for %s from %s (%s), in %s", s->names[0], res.ca,
	          res.fingerprint, s->certs[ki].cert);
	return 0;
}

static void *acme_main(void *arg)
{
	struct acme *a = arg;

	pthread_mutex_lock(&a->mu);
	while (!a->stop) {
		struct aclm_gw_config *cfg;
		struct timespec until;
		bool failed = false;

		pthread_mutex_unlock(&a->mu);
		cfg = gw_current(a->gw);
		for (size_t i = 0; i < cfg->n_sites && !a->stop; i++) {
			struct gw_site *s = &cfg->sites[i];

			int64_t ids[GW_MAX_CERTS] = { 0 };

			if (s->cert_source != GW_CERT_ACME)
				continue;
			for (size_t k = 0; k < s->n_certs && !a->stop; k++) {
				if (!is_due(s, k))
					continue;
				if (issue(a, cfg, s, k, k ? ids[0] : 0, &ids[k])) {
					aclm_err("gateway: certificate for %s: %s", s->names[0],
					         aclm_errmsg());
					failed = true;
				}
			}
		}
		aclm_gw_config_unref(cfg);
		pthread_mutex_lock(&a->mu);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += failed ? RETRY_SECONDS : CHECK_SECONDS;
		if (!a->stop)
			pthread_cond_timedwait(&a->cv, &a->mu, &until);
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

static int make_dir(const char *path, mode_t mode)
{
	if (mkdir(path, mode) && errno != EEXIST)
		return aclm_error(ACLM_ERR_IO, "%s: %s", path, strerror(errno));
	return 0;
}

int gw_acme_start(struct aclm_gateway *gw)
{
	struct acme *a = gw->acme;
	int rc;

	if (!a)
		return aclm_error(ACLM_ERR_CONFIG, "%s: sites with cert_source acme need aclm's "
		                  "store and acme.cas (aclm.yaml)", gw->cfg->path);
	if (a->n_cas == 0)
		return aclm_error(ACLM_ERR_CONFIG, "%s: cert_source acme, but acme.cas of "
		                  "aclm.yaml declares no CA", gw->cfg->path);
	if ((rc = make_dir(gw->cfg->state_dir, 0700)) || (rc = make_dir(gw->cfg->webroot, 0755)))
		return rc;
	if (pthread_create(&a->thread, NULL, acme_main, a))
		return aclm_error(ACLM_ERR_IO, "cannot start the ACME thread");
	a->started = true;
	return 0;
}

void gw_acme_stop(struct aclm_gateway *gw)
{
	struct acme *a = gw->acme;

	if (!a)
		return;
	if (a->started) {
		pthread_mutex_lock(&a->mu);
		a->stop = true;
		pthread_cond_signal(&a->cv);
		pthread_mutex_unlock(&a->mu);
		pthread_join(a->thread, NULL);
	}
	pthread_cond_destroy(&a->cv);
	pthread_mutex_destroy(&a->mu);
	free(a);
	gw->acme = NULL;
}
