/* Certificates for sites with cert_source acme or ca: a thread of the
 * gateway obtains them and writes them to state_dir/<first name>.crt/.key
 * (keys 0600); the daemon's file watcher then reloads, so a new certificate
 * is served within a second while the other sites serve on.
 *
 * acme: from the CAs of aclm.yaml (acme.cas) through aclm's ACME client,
 * http-01 answered by the gateway's own plain listener from
 * state_dir/webroot, or tls-alpn-01 passed through to the client's
 * responder.  ca: from aclm's built-in CA in process (builtin_ca.c).
 *
 * Renewal follows the client's rule: ARI (RFC 9773) when the CA offers it
 * (asked again at its Retry-After; the renewal names the certificate it
 * `replaces`), else 2/3 of the lifetime with jitter (aclm_acme_renew_at);
 * for the built-in CA, its own renewal window.  A certificate file that is
 * missing while the store holds a current, valid certificate of the site's
 * managed certificate is written from the store instead of issued again.
 * Orders, accounts, certificates and sealed keys are in the store. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "aclm/acme.h"
#include "aclm/buf.h"
#include "aclm/bundle.h"
#include "aclm/ca.h"
#include "aclm/config.h"
#include "aclm/csr.h"
#include "aclm/err.h"
#include "aclm/keywrap.h"
#include "aclm/log.h"
#include "aclm/store.h"
#include "aclm/store_acme.h"
#include "aclm/str.h"
#include "aclm/timeutil.h"
#include "gateway-int.h"

#define RETRY_SECONDS 10
#define CHECK_SECONDS 60
#define ARI_RETRY_SECONDS 600         /* after a failed renewalInfo question */
#define ARI_NONE_SECONDS (6 * 3600)   /* a CA without ARI: look again then */
#define CA_WINDOW_SECONDS 10          /* the built-in CA's window: a store read */
#define STORE_SECONDS 10              /* renewed elsewhere on the store? a read */

atomic_int gw_alpn_port;

/* What is known of the certificate in one file: when it is to be renewed
 * and, for ARI, when to ask again and what it replaces. */
struct tracked {
	char *path;
	char fp[65];                      /* the certificate this is about */
	int64_t when;                     /* renewal time (0: not computed) */
	int64_t ask_at;                   /* compute again from then on */
	int64_t store_at;                 /* look for one renewed elsewhere then */
	char ari_id[256];                 /* for `replaces`, "" none */
	bool by_ari;                      /* when came from the CA's window */
};

struct acme {
	struct aclm_gateway *gw;
	struct aclm_store *st;
	const struct aclm_kek *kek;
	const struct aclm_acme_ca *cas;
	size_t n_cas;
	bool has_builtin;                 /* aclm_gateway_set_builtin_ca called */
	char default_ca[64];
	char base_url[512];
	struct aclm_ca_policy policy;
	pthread_mutex_t st_mu;            /* the store: this thread, and OCSP of ca sites */
	struct tracked *tr;
	size_t n_tr;
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
	pthread_mutex_init(&a->st_mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	gw->acme = a;
	return 0;
}

int aclm_gateway_set_builtin_ca(struct aclm_gateway *gw, const struct aclm_config *cfg)
{
	struct acme *a = gw->acme;
	const char *name = aclm_config_str(cfg, "ca.name");

	if (!a)
		return aclm_error(ACLM_ERR_USAGE, "aclm_gateway_set_builtin_ca: the store is not "
		                  "set (aclm_gateway_set_acme first)");
	aclm_strlcpy(a->default_ca, name && *name ? name : "main", sizeof(a->default_ca));
	aclm_ca_base_url(cfg, a->base_url, sizeof(a->base_url));
	aclm_ca_policy_from_config(cfg, &a->policy);
	a->has_builtin = true;
	return 0;
}

static const char *site_ca(const struct acme *a, const struct gw_site *s)
{
	return s->ca_name[0] ? s->ca_name : a->default_ca;
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
	char fingerprint[65];
	char sans[2048];
	int64_t not_before, not_after;
	bool is_root;                     /* self-issued CA certificate */
};

static int row_fn(void *ctx, const struct aclm_cert_row *row)
{
	struct row_ctx *r = ctx;

	r->issuer_id = row->issuer_id;
	aclm_strlcpy(r->spki, row->spki, sizeof(r->spki));
	aclm_strlcpy(r->fingerprint, row->fingerprint, sizeof(r->fingerprint));
	aclm_strlcpy(r->sans, row->sans ? row->sans : "", sizeof(r->sans));
	r->not_before = row->not_before;
	r->not_after = row->not_after;
	r->is_root = row->is_ca && row->subject && row->issuer && !strcmp(row->subject, row->issuer);
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

		if ((rc = aclm_store_get_cert(a->st, id, row_fn, &one)))
			break;
		/* a root is not sent: clients have it or do not trust it */
		if (depth > 0 && one.is_root)
			break;
		if ((rc = aclm_store_get_cert_der(a->st, id, &der, &der_len)) ||
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

static struct tracked *tracked_for(struct acme *a, const char *path)
{
	struct tracked *n;

	for (size_t i = 0; i < a->n_tr; i++)
		if (!strcmp(a->tr[i].path, path))
			return &a->tr[i];
	n = realloc(a->tr, (a->n_tr + 1) * sizeof(*n));
	if (!n)
		return NULL;
	a->tr = n;
	memset(&n[a->n_tr], 0, sizeof(n[a->n_tr]));
	if (!(n[a->n_tr].path = strdup(path)))
		return NULL;
	return &n[a->n_tr++];
}

/* The leaf of a certificate file: validity, SHA-256 fingerprint and serial
 * (hex).  False when it is missing or unreadable. */
struct leaf {
	int64_t not_before, not_after;
	char fp[65];
	char serial[80];
};

static bool read_leaf(const char *path, struct leaf *out)
{
	FILE *f = fopen(path, "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	BIGNUM *bn = NULL;
	char *hex = NULL;
	struct tm nb, na;
	bool ok = false;

	if (f)
		fclose(f);
	if (x && ASN1_TIME_to_tm(X509_get0_notBefore(x), &nb) == 1 &&
	    ASN1_TIME_to_tm(X509_get0_notAfter(x), &na) == 1 &&
	    X509_digest(x, EVP_sha256(), md, &md_len) == 1 && md_len == 32 &&
	    (bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL)) && (hex = BN_bn2hex(bn)) &&
	    strlen(hex) < sizeof(out->serial)) {
		out->not_before = timegm(&nb);
		out->not_after = timegm(&na);
		for (unsigned i = 0; i < md_len; i++)
			snprintf(out->fp + 2 * i, 3, "%02x", md[i]);
		aclm_strlcpy(out->serial, hex, sizeof(out->serial));
		ok = true;
	}
	OPENSSL_free(hex);
	BN_free(bn);
	X509_free(x);
	return ok;
}

/* ARI for an ACME certificate: the managed certificate whose current one
 * is in the file, asked at its CA.  t->when keeps the lifetime rule when
 * the CA has no ARI or the certificate is not a managed one. */
static void ari_acme(struct acme *a, struct tracked *t, uint64_t seed, int64_t now)
{
	struct aclm_managed_row m;
	const struct aclm_acme_ca *ca;
	int64_t cert_id = 0, mid = 0, when = t->when;
	char id[256] = "";

	t->ask_at = now + ARI_NONE_SECONDS;
	if (aclm_store_find_cert(a->st, t->fp, &cert_id) ||
	    aclm_store_managed_by_cert(a->st, cert_id, &mid) || mid == 0)
		return;
	memset(&m, 0, sizeof(m));
	if (aclm_store_managed_get(a->st, mid, &m))
		return;
	ca = m.ca ? aclm_acme_ca_find(a->cas, a->n_cas, m.ca) : NULL;
	aclm_managed_row_free(&m);
	if (!ca)
		return;
	if (aclm_acme_ari_check(a->st, ca, mid, cert_id, seed, &when, id, sizeof(id))) {
		aclm_warn("gateway: %s: ARI: %s; renewing at 2/3 of the lifetime", t->path,
		          aclm_errmsg());
		t->ask_at = now + ARI_RETRY_SECONDS;
		return;
	}
	if (!id[0])                       /* the CA has no renewalInfo */
		return;
	t->when = when;
	t->by_ari = true;
	aclm_strlcpy(t->ari_id, id, sizeof(t->ari_id));
	/* again at the CA's Retry-After, which the client stored */
	memset(&m, 0, sizeof(m));
	if (!aclm_store_managed_get(a->st, mid, &m)) {
		if (m.ari_check_at > now)
			t->ask_at = m.ari_check_at;
		aclm_managed_row_free(&m);
	}
}

static bool restore(struct acme *a, const struct gw_site *s, size_t k, int64_t newer_than,
                    int64_t *managed_id);

/* Due when the file is missing, unreadable, or past its renewal time (the
 * CA's window, else 2/3 of its lifetime).  *next is lowered to when this
 * should be looked at again. */
static bool is_due(struct acme *a, const struct gw_site *s, size_t k, struct tracked **tp,
                   int64_t *next, int64_t *file_not_before)
{
	const struct gw_certfile *cf = &s->certs[k];
	uint64_t seed = name_seed(s->names[0]) + k;
	int64_t now = aclm_now();
	struct tracked *t;
	struct leaf l;

	*tp = NULL;
	*file_not_before = 0;
	if (!read_leaf(cf->cert, &l))
		return true;
	*file_not_before = l.not_before;
	if (!(t = tracked_for(a, cf->cert)))
		return false;                 /* out of memory: look again later */
	*tp = t;
	if (strcmp(t->fp, l.fp)) {
		aclm_strlcpy(t->fp, l.fp, sizeof(t->fp));
		t->when = t->ask_at = 0;
		t->ari_id[0] = '\0';
		t->by_ari = false;
	}
	/* Renewed elsewhere (aclm renew, the server's scheduler)?  A store
	 * read, so every STORE_SECONDS rather than at the CA's Retry-After. */
	if (t->when == 0 || now >= t->store_at) {
		int64_t cert_id = 0, mid = 0;

		t->store_at = now + STORE_SECONDS;
		if ((aclm_store_find_cert(a->st, l.fp, &cert_id) ||
		     aclm_store_managed_by_cert(a->st, cert_id, &mid) || !mid) &&
		    restore(a, s, k, l.not_before, &mid)) {
			t->when = 0;
			*next = now + 1;
			return false;
		}
	}
	if (t->store_at < *next)
		*next = t->store_at;
	if (t->when == 0 || now >= t->ask_at) {
		t->when = aclm_acme_renew_at(l.not_before, l.not_after, seed);
		t->by_ari = false;
		t->ari_id[0] = '\0';
		if (s->cert_source == GW_CERT_CA) {
			int64_t when = 0;
			int rc = gw_ca_renew_at(a->st, site_ca(a, s), l.serial, seed, &when);

			/* the window is in the store: cheap to read often */
			t->ask_at = now + CA_WINDOW_SECONDS;
			if (rc == ACLM_ERR_NOTFOUND) {
				aclm_info("gateway: %s is not from the built-in CA '%s': replacing it",
				          cf->cert, site_ca(a, s));
				t->when = now;
			} else if (rc) {
				aclm_warn("gateway: %s: renewal window: %s", cf->cert, aclm_errmsg());
			} else {
				t->when = when;
				t->by_ari = true;
			}
		} else {
			ari_acme(a, t, seed, now);
		}
	}
	if (t->ask_at < *next)
		*next = t->ask_at;
	if (t->when > now && t->when < *next)
		*next = t->when;
	return now >= t->when;
}

/* sans ("DNS:a,DNS:b,IP:c") holds exactly the site's names. */
static bool same_names(const char *sans, const struct gw_site *s)
{
	size_t n = 0;

	for (const char *p = sans; *p;) {
		size_t len = strcspn(p, ",");
		const char *v = memchr(p, ':', len);
		bool found = false;

		if (!v)
			return false;
		v++;
		for (size_t i = 0; i < s->n_names && !found; i++)
			found = strlen(s->names[i]) == (size_t)(p + len - v) &&
			        !strncasecmp(s->names[i], v, (size_t)(p + len - v));
		if (!found)
			return false;
		n++;
		p += len;
		while (*p == ',' || *p == ' ')
			p++;
	}
	return n == s->n_names;
}

struct find_ctx {
	const char *name;
	int64_t id, cert_id;
	char ca[80];
	bool is_revoked;
};

static int find_fn(void *ctx, const struct aclm_managed_row *r)
{
	struct find_ctx *f = ctx;

	if (r->name && !strcmp(r->name, f->name)) {
		f->id = r->id;
		f->cert_id = r->current_cert_id;
		aclm_strlcpy(f->ca, r->ca ? r->ca : "", sizeof(f->ca));
		f->is_revoked = r->status && !strcmp(r->status, "revoked");
	}
	return 0;
}

/* The file is missing, or holds a certificate that is no managed
 * certificate's current one: when the site's managed certificate has a
 * current certificate for the same names, from the right CA, with its key,
 * not yet due and issued after newer_than, write that one (a restart with a
 * fresh state_dir, a second gateway on the same store, a renewal by `aclm
 * renew` or the server) instead of issuing another. */
static bool restore(struct acme *a, const struct gw_site *s, size_t k, int64_t newer_than,
                    int64_t *managed_id)
{
	char name[512], ref[80];
	struct find_ctx f = { .name = name };
	struct row_ctx row = { 0 };
	unsigned char *sealed = NULL;
	size_t sealed_len = 0;
	int64_t now = aclm_now();

	snprintf(name, sizeof(name), "%s/%s", s->names[0],
	         aclm_keygen_name((enum aclm_keygen)s->acme_keys[k]));
	if (aclm_store_managed_list(a->st, find_fn, &f) || !f.id || !f.cert_id || f.is_revoked)
		return false;
	if (s->cert_source == GW_CERT_CA) {
		snprintf(ref, sizeof(ref), "ca:%s", site_ca(a, s));
		if (strcmp(f.ca, ref))
			return false;
	} else {
		bool listed = s->n_acme_cas == 0;

		for (size_t i = 0; i < s->n_acme_cas; i++)
			listed |= !strcmp(f.ca, s->acme_cas[i]);
		if (!listed || !aclm_acme_ca_find(a->cas, a->n_cas, f.ca))
			return false;
	}
	if (aclm_store_get_cert(a->st, f.cert_id, row_fn, &row) || !same_names(row.sans, s) ||
	    row.not_before < newer_than ||
	    now >= aclm_acme_renew_at(row.not_before, row.not_after, name_seed(s->names[0]) + k))
		return false;
	/* Issued in the same second as the file's (a renewal right after the
	 * gateway's own): newer unless it is the file's certificate itself. */
	if (row.not_before == newer_than) {
		struct leaf cur;

		if (read_leaf(s->certs[k].cert, &cur) && strcmp(cur.fp, row.fingerprint) == 0)
			return false;
	}
	if (aclm_store_get_private_key(a->st, row.spki, &sealed, &sealed_len))
		return false;
	free(sealed);
	if (save(a, &s->certs[k], f.cert_id)) {
		aclm_warn("gateway: %s: %s", s->certs[k].cert, aclm_errmsg());
		return false;
	}
	*managed_id = f.id;
	aclm_info("gateway: certificate for %s written from the store (managed certificate "
	          "%lld) to %s", s->names[0], (long long)f.id, s->certs[k].cert);
	return true;
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

static int issue_acme(struct acme *a, struct aclm_gw_config *cfg, struct gw_site *s, size_t ki,
                      int64_t pair_id, const char *replaces, int64_t *managed_id)
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
	req.replaces = replaces;
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
	aclm_info("gateway: obtaining a certificate for %s%s%s", s->names[0],
	          replaces ? ", replacing " : "", replaces ? replaces : "");
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

static int issue_ca(struct acme *a, const struct aclm_gw_config *cfg, struct gw_site *s,
                    size_t ki, int64_t pair_id, int64_t *managed_id)
{
	struct gw_ca_opts o = { site_ca(a, s), a->base_url, &a->policy };
	int64_t cert_id = 0;
	int rc;

	if (!a->has_builtin)
		return aclm_error(ACLM_ERR_CONFIG, "cert_source ca: the gateway was started without "
		                  "the built-in CA's settings");
	aclm_info("gateway: issuing a certificate for %s from the built-in CA '%s'", s->names[0],
	          o.ca);
	if ((rc = gw_ca_issue(a->st, a->kek, &o, s, ki, pair_id, managed_id, &cert_id)))
		return aclm_error_wrap(rc, "%s:%zu", cfg->path, s->ca_line);
	if ((rc = save(a, &s->certs[ki], cert_id)))
		return rc;
	aclm_info("gateway: certificate for %s from the built-in CA '%s' (certificate %lld), in %s",
	          s->names[0], o.ca, (long long)cert_id, s->certs[ki].cert);
	return 0;
}

/* One round over the sites; *next gets when the next one is due. */
static bool round_sites(struct acme *a, struct aclm_gw_config *cfg, int64_t *next)
{
	bool failed = false;

	for (size_t i = 0; i < cfg->n_sites && !a->stop; i++) {
		struct gw_site *s = &cfg->sites[i];
		int64_t ids[GW_MAX_CERTS] = { 0 };

		if (s->cert_source == GW_CERT_FILES)
			continue;
		for (size_t k = 0; k < s->n_certs && !a->stop; k++) {
			struct tracked *t = NULL;
			char replaces[256] = "";
			int64_t file_nb = 0;
			bool due;
			int rc;

			pthread_mutex_lock(&a->st_mu);
			due = is_due(a, s, k, &t, next, &file_nb);
			/* a newer one in the store first (or the lost file's) */
			if (due && restore(a, s, k, file_nb, &ids[k]))
				due = false;
			if (!due) {
				pthread_mutex_unlock(&a->st_mu);
				continue;
			}
			if (t && t->by_ari && t->ari_id[0])
				aclm_strlcpy(replaces, t->ari_id, sizeof(replaces));
			if (s->cert_source == GW_CERT_CA)
				rc = issue_ca(a, cfg, s, k, k ? ids[0] : 0, &ids[k]);
			else
				rc = issue_acme(a, cfg, s, k, k ? ids[0] : 0, replaces[0] ? replaces : NULL,
				                &ids[k]);
			pthread_mutex_unlock(&a->st_mu);
			if (rc) {
				aclm_err("gateway: certificate for %s: %s", s->names[0], aclm_errmsg());
				failed = true;
			} else {
				/* soon again: the new certificate's renewal time */
				*next = aclm_now() + 1;
			}
		}
	}
	return failed;
}

static void *acme_main(void *arg)
{
	struct acme *a = arg;

	pthread_mutex_lock(&a->mu);
	while (!a->stop) {
		struct aclm_gw_config *cfg;
		struct timespec until;
		int64_t now, next;
		bool failed;

		pthread_mutex_unlock(&a->mu);
		now = aclm_now();
		next = now + CHECK_SECONDS;
		cfg = gw_current(a->gw);
		failed = round_sites(a, cfg, &next);
		aclm_gw_config_unref(cfg);
		pthread_mutex_lock(&a->mu);
		now = aclm_now();
		if (failed && next > now + RETRY_SECONDS)
			next = now + RETRY_SECONDS;
		if (next < now + 1)
			next = now + 1;
		if (next > now + CHECK_SECONDS)
			next = now + CHECK_SECONDS;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += (time_t)(next - now);
		if (!a->stop)
			pthread_cond_timedwait(&a->cv, &a->mu, &until);
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

int gw_acme_reload_check(struct aclm_gateway *gw, const struct aclm_gw_config *next)
{
	struct acme *a = gw->acme;
	int rc = 0;

	if (!aclm_gw_config_needs_acme(next) && !aclm_gw_config_needs_ca(next))
		return 0;
	if (!a || !a->started)
		return aclm_error(ACLM_ERR_CONFIG, "%s: sites with cert_source acme or ca were "
		                  "added to a gateway started without any: restart it", next->path);
	if (aclm_gw_config_needs_acme(next) && a->n_cas == 0)
		return aclm_error(ACLM_ERR_CONFIG, "%s: cert_source acme, but acme.cas of "
		                  "aclm.yaml declares no CA", next->path);
	if (aclm_gw_config_needs_ca(next)) {
		if (!a->has_builtin)
			return aclm_error(ACLM_ERR_CONFIG, "%s: cert_source ca was added to a gateway "
			                  "started without the built-in CA: restart it", next->path);
		/* the CAs exist: unless the thread is busy with the store (an ACME
		 * order), when it will say so itself */
		if (!pthread_mutex_trylock(&a->st_mu)) {
			rc = aclm_gw_config_check_cas(next, a->st, a->default_ca, &a->policy);
			pthread_mutex_unlock(&a->st_mu);
		}
	}
	return rc;
}

int gw_certs_ocsp(struct aclm_gateway *gw, const struct gw_site *s, const unsigned char *req,
                  size_t req_len, unsigned char **resp, size_t *resp_len)
{
	struct acme *a = gw->acme;
	int rc;

	if (!a || !a->has_builtin)
		return aclm_error(ACLM_ERR_UNSUPPORTED, "no built-in CA in this gateway");
	/* not while the thread issues (an ACME order can take minutes) */
	if (pthread_mutex_trylock(&a->st_mu))
		return aclm_error(ACLM_AGAIN, "the store is busy");
	rc = aclm_ca_ocsp_respond(a->st, a->kek, site_ca(a, s), req, req_len, resp, resp_len);
	pthread_mutex_unlock(&a->st_mu);
	return rc;
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
		return aclm_error(ACLM_ERR_CONFIG, "%s: sites with cert_source acme or ca need "
		                  "aclm's store (and acme.cas of aclm.yaml for acme)", gw->cfg->path);
	if (a->n_cas == 0 && aclm_gw_config_needs_acme(gw->cfg))
		return aclm_error(ACLM_ERR_CONFIG, "%s: cert_source acme, but acme.cas of "
		                  "aclm.yaml declares no CA", gw->cfg->path);
	if (aclm_gw_config_needs_ca(gw->cfg)) {
		if (!a->has_builtin)
			return aclm_error(ACLM_ERR_CONFIG, "%s: cert_source ca needs aclm's store and "
			                  "the built-in CA", gw->cfg->path);
		if ((rc = aclm_gw_config_check_cas(gw->cfg, a->st, a->default_ca, &a->policy)))
			return rc;
	}
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
	pthread_mutex_destroy(&a->st_mu);
	for (size_t i = 0; i < a->n_tr; i++)
		free(a->tr[i].path);
	free(a->tr);
	free(a);
	gw->acme = NULL;
}
