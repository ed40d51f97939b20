/* The built-in CA on aclm server: the ACME server (/acme/<ca>/...), CRLs
 * (/ca/<ca>/crl/<algo>), issuer certificates (/ca/<ca>/issuer/<algo>) and
 * the OCSP responder (/ca/<ca>/ocsp, GET and POST).  All public: JWS is
 * the ACME authentication.  Challenge validation is network work: it runs
 * on its own threads (at most MAX_VALIDATORS at once) and comes back to the
 * loop through an ev_async, where the store is updated. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "aclm/bundle.h"
#include "aclm/ca.h"
#include "aclm/csr.h"
#include "aclm/err.h"
#include "aclm/keywrap.h"
#include "aclm/log.h"
#include "aclm/store_ca.h"
#include "aclm/str.h"
#include "server-int.h"

#define MAX_VALIDATORS 16
#define MAX_OCSP_GET 4096

struct done_item {
	struct aclm_ca_acme_validation v;
	struct done_item *next;
};

static struct {
	bool ready;
	struct server *s;
	struct aclm_ca_acme *acme;
	struct aclm_kek kek;
	ev_async wake;
	pthread_mutex_t mu;
	struct done_item *done;        /* under mu */
	int running;                   /* loop thread only */
} g = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void spawn_validators(void);

static void *validator(void *arg)
{
	struct done_item *d = arg;

	aclm_ca_acme_validate(g.acme, &d->v);
	pthread_mutex_lock(&g.mu);
	d->next = g.done;
	g.done = d;
	pthread_mutex_unlock(&g.mu);
	ev_async_send(aclm_http_server_loop(g.s->http), &g.wake);
	return NULL;
}

static void on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
	struct done_item *d;

	(void)loop;
	(void)w;
	(void)revents;
	pthread_mutex_lock(&g.mu);
	d = g.done;
	g.done = NULL;
	pthread_mutex_unlock(&g.mu);
	while (d != NULL) {
		struct done_item *next = d->next;
		if (aclm_ca_acme_validation_done(g.acme, g.s->store, &d->v) != ACLM_OK)
			aclm_err("ACME validation of challenge %s: %s", d->v.challenge, aclm_errmsg());
		else
			aclm_info("ACME %s %s:%s: %s%s%s", d->v.type, d->v.ident_type, d->v.value,
			          d->v.ok ? "valid" : "invalid", d->v.ok ? "" : " - ", d->v.error);
		free(d);
		g.running--;
		d = next;
	}
	spawn_validators();
}

static void spawn_validators(void)
{
	while (g.running < MAX_VALIDATORS) {
		struct done_item *d = calloc(1, sizeof(*d));
		pthread_attr_t attr;
		pthread_t t;
		if (d == NULL)
			return;
		if (aclm_ca_acme_take(g.acme, &d->v, 1) != 1) {
			free(d);
			return;
		}
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &attr, validator, d) != 0) {
			/* Report it as a failed validation rather than lose it. */
			d->v.ok = false;
			aclm_strlcpy(d->v.problem, "serverInternal", sizeof(d->v.problem));
			aclm_strlcpy(d->v.error, "no thread for the validation", sizeof(d->v.error));
			aclm_ca_acme_validation_done(g.acme, g.s->store, &d->v);
			free(d);
		} else {
			g.running++;
		}
		pthread_attr_destroy(&attr);
	}
}

/* First use: the KEK, the ACME state, the wake-up, pending validations. */
static int ca_ready(struct server *s)
{
	struct aclm_ca_acme_opts o;
	const char *url;
	int rc;

	if (g.ready)
		return ACLM_OK;
	if ((rc = aclm_kek_load(getenv("ACLM_KEK"), aclm_config_str(s->cfg, "security.kek_file"),
	                        true, &g.kek)) != ACLM_OK)
		return rc;
	memset(&o, 0, sizeof(o));
	o.kek = &g.kek;
	aclm_ca_policy_from_config(s->cfg, &o.policy);
	url = aclm_config_str(s->cfg, "ca.url");
	o.cert_base_url = url != NULL && *url != '\0' ? url : NULL;
	o.http01_port = (int)aclm_config_int(s->cfg, "ca.http01_port");
	o.tlsalpn01_port = (int)aclm_config_int(s->cfg, "ca.tlsalpn01_port");
	o.connect_to = aclm_config_str(s->cfg, "ca.validation_connect_to");
	o.dns_resolver = aclm_config_str(s->cfg, "ca.dns_resolver");
	o.orders_per_hour = aclm_config_int(s->cfg, "ca.orders_per_hour");
	o.ari_retry_after = aclm_config_duration(s->cfg, "ca.ari_retry_after");
	o.orders_per_name_per_hour = aclm_config_int(s->cfg, "ca.orders_per_name_per_hour");
	o.authz_reuse = aclm_config_duration(s->cfg, "ca.authz_reuse");
	o.n_eab_keys = aclm_config_list(s->cfg, "ca.eab_keys", &o.eab_keys);
	o.eab_required = aclm_config_bool(s->cfg, "ca.eab_required");
	if ((rc = aclm_ca_acme_new(&o, &g.acme)) != ACLM_OK)
		return rc;
	g.s = s;
	ev_async_init(&g.wake, on_wake);
	ev_async_start(aclm_http_server_loop(s->http), &g.wake);
	g.ready = true;
	if (aclm_ca_acme_resume(g.acme, s->store) != ACLM_OK)
		aclm_warn("ACME: pending validations not resumed: %s", aclm_errmsg());
	spawn_validators();
	return ACLM_OK;
}

static int acme_route(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                      const struct principal *who)
{
	const char *ca = aclm_http_req_param(req, "ca");
	const char *target = aclm_http_req_target(req);
	const char *host = aclm_http_req_header(req, "Host");
	struct aclm_ca_acme_req ar;
	struct aclm_ca_acme_res out;
	char base[400], path[1024], ra[32];
	const char *q;
	size_t prefix;
	int rc;

	(void)who;
	if ((rc = ca_ready(s)) != ACLM_OK)
		return rc;
	if (host == NULL || strlen(host) > 255 || strpbrk(host, "/ \t") != NULL)
		return aclm_error(ACLM_ERR_PARSE, "ACME: a request needs a valid Host header");
	snprintf(base, sizeof(base), "%s://%s/acme/%s", aclm_http_req_is_tls(req) ? "https" : "http",
	         host, ca);
	/* The path as sent (the JWS url must equal it exactly). */
	prefix = strlen("/acme/") + strlen(ca);
	q = strchr(target, '?');
	if (strncmp(target, "/acme/", 6) != 0 || strlen(target) < prefix ||
	    strncmp(target + 6, ca, strlen(ca)) != 0)
		return aclm_error(ACLM_ERR_NOTFOUND, "no such ACME resource");
	snprintf(path, sizeof(path), "%.*s",
	         (int)((q != NULL ? (size_t)(q - target) : strlen(target)) - prefix), target + prefix);
	memset(&ar, 0, sizeof(ar));
	ar.method = aclm_http_req_method(req);
	ar.ca = ca;
	ar.path = path;
	ar.base = base;
	ar.content_type = aclm_http_req_header(req, "Content-Type");
	ar.body = aclm_http_req_body(req, &ar.body_len);
	rc = aclm_ca_acme_handle(g.acme, s->store, &ar, &out);
	spawn_validators();
	if (rc != ACLM_OK)
		return rc;
	if (out.body != NULL)
		aclm_http_reply(res, out.status, out.content_type, out.body, out.body_len);
	else
		aclm_http_res_status(res, out.status);
	if (out.nonce[0] != '\0') {
		aclm_http_header_add(res, "Replay-Nonce", out.nonce);
		aclm_http_header_add(res, "Cache-Control", "no-store");
	}
	if (out.location[0] != '\0')
		aclm_http_header_add(res, "Location", out.location);
	for (int i = 0; i < out.n_links; i++)
		aclm_http_header_add(res, "Link", out.links[i]);
	if (out.retry_after > 0) {
		snprintf(ra, sizeof(ra), "%lld", (long long)out.retry_after);
		aclm_http_header_add(res, "Retry-After", ra);
	}
	rc = out.status;
	aclm_ca_acme_res_free(&out);
	return rc;
}

/* CRLs are cached per (CA, algorithm): a new one when a revocation was
 * recorded since (count and latest time of the revoked rows) or when the
 * cached one is an hour old; a GET never signs more often than that. */
#define CRL_CACHE_SLOTS 8
#define CRL_MAX_AGE 3600

struct crl_slot {
	char ca[40];
	enum aclm_ca_algo algo;
	int64_t made_at, n_revoked, last_revoked;
	unsigned char *der;
	size_t len;
};
static struct crl_slot crl_cache[CRL_CACHE_SLOTS];

struct revoked_sum {
	int64_t n, last;
};

static int revoked_fn(void *ctx, const struct aclm_ca_issued_row *r)
{
	struct revoked_sum *sum = ctx;
	sum->n++;
	if (r->revoked_at > sum->last)
		sum->last = r->revoked_at;
	return 0;
}

static int crl_route(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                     const struct principal *who)
{
	const char *ca = aclm_http_req_param(req, "ca");
	struct aclm_ca_issued_filter f;
	struct revoked_sum sum = { 0, 0 };
	struct crl_slot *slot = NULL, *oldest = &crl_cache[0];
	enum aclm_ca_algo algo;
	unsigned char *der = NULL;
	size_t len = 0;
	int64_t now = (int64_t)time(NULL);
	int rc;

	(void)who;
	if ((rc = ca_ready(s)) != ACLM_OK)
		return rc;
	if (strlen(ca) >= sizeof(crl_cache[0].ca) ||
	    aclm_ca_algo_parse(aclm_http_req_param(req, "algo"), &algo) != ACLM_OK)
		return ACLM_ERR_NOTFOUND;
	memset(&f, 0, sizeof(f));
	f.ca = ca;
	f.algo = aclm_ca_algo_name(algo);
	f.revoked_only = true;
	if ((rc = aclm_store_ca_issued_list(s->store, &f, revoked_fn, &sum)) != ACLM_OK)
		return rc;
	for (size_t i = 0; i < CRL_CACHE_SLOTS; i++) {
		struct crl_slot *c = &crl_cache[i];
		if (c->der != NULL && c->algo == algo && strcmp(c->ca, ca) == 0)
			slot = c;
		if (c->made_at < oldest->made_at)
			oldest = c;
	}
	if (slot != NULL && slot->n_revoked == sum.n && slot->last_revoked == sum.last &&
	    now - slot->made_at < CRL_MAX_AGE) {
		aclm_http_reply(res, 200, "application/pkix-crl", slot->der, slot->len);
		return 200;
	}
	if ((rc = aclm_ca_crl(s->store, &g.kek, ca, algo, &der, &len)) != ACLM_OK)
		return rc;
	if (slot == NULL)
		slot = oldest;
	free(slot->der);
	aclm_strlcpy(slot->ca, ca, sizeof(slot->ca));
	slot->algo = algo;
	slot->made_at = now;
	slot->n_revoked = sum.n;
	slot->last_revoked = sum.last;
	slot->der = der;
	slot->len = len;
	aclm_http_reply(res, 200, "application/pkix-crl", der, len);
	return 200;
}

static int issuer_route(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                        const struct principal *who)
{
	enum aclm_ca_algo algo;
	char *pem = NULL;
	size_t len = 0;
	int rc;

	(void)who;
	if (aclm_ca_algo_parse(aclm_http_req_param(req, "algo"), &algo) != ACLM_OK)
		return ACLM_ERR_NOTFOUND;
	if ((rc = aclm_ca_chain_pem(s->store, aclm_http_req_param(req, "ca"), algo, false, &pem,
	                            &len)) != ACLM_OK)
		return rc;
	aclm_http_reply(res, 200, "application/pem-certificate-chain", pem, len);
	free(pem);
	return 200;
}

static int ocsp_answer(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                       const unsigned char *der, size_t len)
{
	unsigned char *resp = NULL;
	size_t resp_len = 0;
	int rc;

	if ((rc = ca_ready(s)) != ACLM_OK)
		return rc;
	if ((rc = aclm_ca_ocsp_respond(s->store, &g.kek, aclm_http_req_param(req, "ca"), der, len,
	                               &resp, &resp_len)) != ACLM_OK)
		return rc;
	aclm_http_reply(res, 200, "application/ocsp-response", resp, resp_len);
	aclm_http_header_add(res, "Cache-Control", "max-age=3600, public");
	free(resp);
	return 200;
}

static int ocsp_post(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                     const struct principal *who)
{
	size_t len = 0;
	const unsigned char *body = aclm_http_req_body(req, &len);
	const char *ct = aclm_http_req_header(req, "Content-Type");

	(void)who;
	if (ct == NULL || strcmp(ct, "application/ocsp-request") != 0)
		return aclm_error(ACLM_ERR_PARSE, "OCSP: Content-Type must be application/ocsp-request");
	return ocsp_answer(s, req, res, body, len);
}

static int ocsp_get(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                    const struct principal *who)
{
	const char *b64 = aclm_http_req_param(req, "*");
	unsigned char buf[MAX_OCSP_GET];
	size_t n = b64 != NULL ? strlen(b64) : 0;
	int len, pad = 0;

	(void)who;
	if (n == 0 || n % 4 != 0 || n > sizeof(buf) / 3 * 4)
		return aclm_error(ACLM_ERR_PARSE, "OCSP GET: the path must be a base64 OCSP request");
	len = EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)n);
	if (len < 0)
		return aclm_error(ACLM_ERR_PARSE, "OCSP GET: bad base64");
	if (b64[n - 1] == '=')
		pad++;
	if (b64[n - 2] == '=')
		pad++;
	return ocsp_answer(s, req, res, buf, (size_t)(len - pad));
}

/* --- first start ---------------------------------------------------------------- */

int server_ca_first_start(struct server *s)
{
	const char *name = aclm_config_str(s->cfg, "ca.name");
	struct aclm_kek kek;
	bool exists = false;
	int n = 0, rc;

	if (!aclm_config_bool(s->cfg, "ca.auto_init"))
		return ACLM_OK;
	if ((rc = aclm_ca_exists(s->store, name, &exists)) != ACLM_OK || exists)
		return rc;
	if ((rc = aclm_kek_load(getenv("ACLM_KEK"), aclm_config_str(s->cfg, "security.kek_file"),
	                        true, &kek)) != ACLM_OK)
		return aclm_error_wrap(rc, "first start: the built-in CA");
	rc = aclm_ca_init(s->store, &kek, name, &n);
	aclm_kek_wipe(&kek);
	if (rc != ACLM_OK)
		return aclm_error_wrap(rc, "first start: the built-in CA");
	printf("first start: built-in CA '%s' created (ECDSA, RSA and SM2 hierarchies; ACME at "
	       "/acme/%s/directory; roots: aclm ca export-roots)\n", name, name);
	fflush(stdout);
	return ACLM_OK;
}

static int write_secret(const char *path, const char *data, size_t len, mode_t mode)
{
	FILE *f;
	int fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
		if (fd >= 0)
			close(fd);
		return aclm_error(ACLM_ERR_IO, "%s: %s", path, strerror(errno));
	}
	if (fwrite(data, 1, len, f) != len) {
		fclose(f);
		return aclm_error(ACLM_ERR_IO, "%s: cannot write", path);
	}
	return fclose(f) == 0 ? ACLM_OK : aclm_error(ACLM_ERR_IO, "%s: %s", path, strerror(errno));
}

int server_ca_tls_pair(struct server *s, const char *dir, const char *crt_path,
                       const char *key_path)
{
	static const char *const names[] = { "localhost", "127.0.0.1", "::1" };
	const struct aclm_csr_names cn = { names, 3 };
	const char *name = aclm_config_str(s->cfg, "ca.name");
	struct aclm_ca_issue_req req;
	struct aclm_ca_issue_res res;
	struct aclm_kek kek;
	unsigned char *pkcs8 = NULL, *csr = NULL;
	size_t pkcs8_len = 0, csr_len = 0, kpem_len = 0, root_len = 0;
	char *kpem = NULL, *root = NULL;
	bool exists = false;
	int rc;

	memset(&res, 0, sizeof(res));
	if (!aclm_config_bool(s->cfg, "ca.auto_init") ||
	    aclm_ca_exists(s->store, name, &exists) != ACLM_OK || !exists)
		return ACLM_ERR_NOTFOUND;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return aclm_error(ACLM_ERR_IO, "%s: %s", dir, strerror(errno));
	if ((rc = aclm_kek_load(getenv("ACLM_KEK"), aclm_config_str(s->cfg, "security.kek_file"),
	                        true, &kek)) != ACLM_OK)
		return rc;
	if ((rc = aclm_key_generate(ACLM_KEYGEN_EC256, &pkcs8, &pkcs8_len)) != ACLM_OK ||
	    (rc = aclm_csr_build(pkcs8, pkcs8_len, &cn, &csr, &csr_len)) != ACLM_OK)
		goto out;
	memset(&req, 0, sizeof(req));
	req.ca = name;
	req.csr = csr;
	req.csr_len = csr_len;
	if ((rc = aclm_ca_issue(s->store, &kek, &req, &res)) != ACLM_OK ||
	    (rc = aclm_ca_chain_pem(s->store, name, ACLM_CA_ECDSA, true, &root, &root_len)) != ACLM_OK ||
	    (rc = aclm_pem_encode_key(pkcs8, pkcs8_len, &kpem, &kpem_len)) != ACLM_OK)
		goto out;
	/* leaf + intermediate + root: the file is also the trust anchor clients use. */
	{
		const char *p = strstr(root, "-----END CERTIFICATE-----");
		const char *root_only = p != NULL ? p + strlen("-----END CERTIFICATE-----\n") : root;
		size_t n = res.chain_pem_len + strlen(root_only);
		char *all = malloc(n + 1);
		if (all == NULL) {
			rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
			goto out;
		}
		memcpy(all, res.chain_pem, res.chain_pem_len);
		memcpy(all + res.chain_pem_len, root_only, strlen(root_only) + 1);
		rc = write_secret(key_path, kpem, kpem_len, 0600);
		if (rc == ACLM_OK)
			rc = write_secret(crt_path, all, n, 0644);
		free(all);
	}
out:
	aclm_ca_issue_res_free(&res);
	if (pkcs8 != NULL)
		OPENSSL_clear_free(pkcs8, pkcs8_len);
	if (kpem != NULL)
		OPENSSL_clear_free(kpem, kpem_len);
	free(csr);
	free(root);
	aclm_kek_wipe(&kek);
	return rc;
}

const struct api_route server_ca_routes[] = {
	{ "GET", "/acme/:ca/*", ACCESS_PUBLIC, 0, acme_route,
	  "ACME server of the built-in CA (RFC 8555): directory, new-nonce, renewal-info" },
	{ "POST", "/acme/:ca/*", ACCESS_PUBLIC, 0, acme_route,
	  "ACME server of the built-in CA (RFC 8555): JWS-signed requests" },
	{ "GET", "/ca/:ca/crl/:algo", ACCESS_PUBLIC, 0, crl_route,
	  "CRL (DER) of one hierarchy's issuing CA: ecdsa, rsa or sm2" },
	{ "GET", "/ca/:ca/issuer/:algo", ACCESS_PUBLIC, 0, issuer_route,
	  "issuing CA certificate of one hierarchy (PEM)" },
	{ "POST", "/ca/:ca/ocsp", ACCESS_PUBLIC, 0, ocsp_post, "OCSP responder (RFC 6960), POST" },
	{ "GET", "/ca/:ca/ocsp/*", ACCESS_PUBLIC, 0, ocsp_get, "OCSP responder (RFC 6960), GET" },
};
const size_t server_n_ca_routes = sizeof(server_ca_routes) / sizeof(server_ca_routes[0]);
