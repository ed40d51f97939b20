/* TLS of the gateway: one SSL_CTX per site, built from a configuration
 * snapshot.  A connection starts on the first site's context; the
 * client-hello callback picks the site by SNI (SSL_set_SSL_CTX, which also
 * brings the site's ECDSA and RSA certificates: OpenSSL then picks the one
 * the client's signature algorithms allow, ECDSA first) and sets the group
 * list from the site's post-quantum policy.  A reload builds new contexts
 * and swaps the whole snapshot; handshakes in progress keep the old one. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "aclm/err.h"
#include "aclm/log.h"
#include "gateway-int.h"

/* Key-share groups that are classical (RFC 8446 / 7919 code points). */
static bool is_classic_share(unsigned id)
{
	return id == 23 || id == 24 || id == 25 || id == 29 || id == 30 ||
	       (id >= 256 && id <= 260);
}

/* True when the client sent a key share for a classical group. */
static bool client_shares_classic(SSL *ssl)
{
	const unsigned char *p;
	size_t len, n;

	if (!SSL_client_hello_get0_ext(ssl, 51, &p, &len) || len < 2)
		return false;
	n = ((size_t)p[0] << 8) | p[1];
	if (n > len - 2)
		return false;
	p += 2;
	while (n >= 4) {
		unsigned id = ((unsigned)p[0] << 8) | p[1];
		size_t klen = ((size_t)p[2] << 8) | p[3];

		if (klen > n - 4)
			return false;
		if (is_classic_share(id))
			return true;
		p += 4 + klen;
		n -= 4 + klen;
	}
	return false;
}

/* The server name of the ClientHello, bounded; "" when none. */
static void client_sni(SSL *ssl, char *out, size_t cap)
{
	const unsigned char *p;
	size_t len, list, nlen;

	out[0] = '\0';
	if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &len) || len < 5)
		return;
	list = ((size_t)p[0] << 8) | p[1];
	if (list + 2 > len || p[2] != TLSEXT_NAMETYPE_host_name)
		return;
	nlen = ((size_t)p[3] << 8) | p[4];
	if (nlen + 5 > len || nlen == 0 || nlen >= cap)
		return;
	for (size_t i = 0; i < nlen; i++)
		if (p[5 + i] == 0)
			return;
	memcpy(out, p + 5, nlen);
	out[nlen] = '\0';
}

static int client_hello_cb(SSL *ssl, int *alert, void *arg)
{
	struct aclm_gw_config *cfg = arg;
	struct gw_site *site;
	char sni[256];
	const char *groups;

	client_sni(ssl, sni, sizeof(sni));
	site = gw_config_site(cfg, sni);
	if (!site)
		site = &cfg->sites[0];
	if (SSL_get_SSL_CTX(ssl) != site->ctx && !SSL_set_SSL_CTX(ssl, site->ctx)) {
		*alert = SSL_AD_INTERNAL_ERROR;
		return SSL_CLIENT_HELLO_ERROR;
	}
	if (site->pq == GW_PQ_OFF || !site->has_pq_group) {
		groups = site->groups_classic;
	} else {
		bool prefer = site->pq == GW_PQ_PREFER;
		unsigned char r = 0;

		if (prefer && site->pq_canary_percent < 100) {
			if (RAND_bytes(&r, 1) != 1)
				r = 0;
			prefer = (unsigned)r % 100 < site->pq_canary_percent;
		}
		/* offer: hybrid only for a client that sent no classical share
		 * (it would otherwise need a HelloRetryRequest). */
		groups = prefer || !client_shares_classic(ssl) ? site->groups : site->groups_classic;
	}
	/* The connection started with the first site's list: parse a list
	 * only when it differs (the common case costs nothing). */
	if (strcmp(groups, cfg->sites[0].groups) && !SSL_set1_groups_list(ssl, groups)) {
		*alert = SSL_AD_INTERNAL_ERROR;
		return SSL_CLIENT_HELLO_ERROR;
	}
	return SSL_CLIENT_HELLO_SUCCESS;
}

static int load_pair(struct aclm_gw_config *cfg, struct gw_site *s, SSL_CTX *ctx,
                     struct gw_certfile *cf)
{
	X509 *x;
	EVP_PKEY *pk;
	const ASN1_TIME *na;
	struct tm tm;

	if (SSL_CTX_use_certificate_chain_file(ctx, cf->cert) != 1)
		return aclm_error_openssl(ACLM_ERR_CONFIG, "%s:%zu: certificate %s", cfg->path,
		                          s->line, cf->cert);
	if (SSL_CTX_use_PrivateKey_file(ctx, cf->key, SSL_FILETYPE_PEM) != 1)
		return aclm_error_openssl(ACLM_ERR_CONFIG, "%s:%zu: key %s", cfg->path, s->line,
		                          cf->key);
	if (SSL_CTX_check_private_key(ctx) != 1)
		return aclm_error_openssl(ACLM_ERR_CONFIG, "%s:%zu: key %s does not match "
		                          "certificate %s", cfg->path, s->line, cf->key, cf->cert);
	x = SSL_CTX_get0_certificate(ctx);
	pk = x ? X509_get0_pubkey(x) : NULL;
	snprintf(cf->key_type, sizeof(cf->key_type), "%s",
	         !pk ? "?" : EVP_PKEY_is_a(pk, "EC") ? "ECDSA" :
	         EVP_PKEY_is_a(pk, "RSA") ? "RSA" : EVP_PKEY_get0_type_name(pk));
	na = x ? X509_get0_notAfter(x) : NULL;
	if (na && ASN1_TIME_to_tm(na, &tm) == 1)
		cf->not_after = timegm(&tm);
	return 0;
}

/* A site waiting for its first ACME certificate serves a throw-away
 * self-signed one (clients see an untrusted certificate, not a wrong site's
 * or none); it is replaced as soon as the real one is on disk. */
static int use_stand_in(struct aclm_gw_config *cfg, struct gw_site *s, SSL_CTX *ctx)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *nm = NULL;
	int rc = 0;

	if (!pk || !x || !(nm = X509_NAME_new()) ||
	    !X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_UTF8, (const unsigned char *)s->names[0],
	                                -1, -1, 0) ||
	    !X509_set_version(x, 2) || !ASN1_INTEGER_set(X509_get_serialNumber(x), 1) ||
	    !X509_set_subject_name(x, nm) || !X509_set_issuer_name(x, nm) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), 86400) || !X509_set_pubkey(x, pk) ||
	    !X509_sign(x, pk, EVP_sha256()) || SSL_CTX_use_certificate(ctx, x) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, pk) != 1)
		rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "%s:%zu: stand-in certificate for %s",
		                        cfg->path, s->line, s->names[0]);
	snprintf(s->certs[0].key_type, sizeof(s->certs[0].key_type), "none");
	X509_NAME_free(nm);
	X509_free(x);
	EVP_PKEY_free(pk);
	return rc;
}

static int build_site(struct aclm_gw_config *cfg, struct gw_site *s)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	int rc;

	if (!ctx)
		return aclm_error_openssl(ACLM_ERR_CRYPTO, "SSL_CTX_new");
	SSL_CTX_set_min_proto_version(ctx, !strcmp(cfg->min_version, "1.3") ? TLS1_3_VERSION
	                                                                    : TLS1_2_VERSION);
	/* IGNORE_UNEXPECTED_EOF: a client that closes without close_notify
	 * (most do, and every handshake-only client) is not sent an
	 * encrypted alert on a closed socket: one record and one write()
	 * fewer per connection.  EOF never ends a request here (requests are
	 * forwarded only once their framing is complete), so a truncation
	 * cannot pass for a whole message. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
	                    SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	                 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	/* A record header and its body in one read(), and the records that
	 * came together (a client's ChangeCipherSpec and Finished, a request
	 * after the handshake) too: half the read()s of a handshake.  The
	 * proxy always reads until SSL_read wants more, so nothing waits in
	 * the buffer unseen. */
	SSL_CTX_set_read_ahead(ctx, 1);
	if (cfg->ciphersuites[0] && SSL_CTX_set_ciphersuites(ctx, cfg->ciphersuites) != 1) {
		rc = aclm_error_openssl(ACLM_ERR_CONFIG, "%s: tls.ciphersuites '%s'", cfg->path,
		                        cfg->ciphersuites);
		goto fail;
	}
	if (cfg->ciphers[0] && SSL_CTX_set_cipher_list(ctx, cfg->ciphers) != 1) {
		rc = aclm_error_openssl(ACLM_ERR_CONFIG, "%s: tls.ciphers '%s'", cfg->path,
		                        cfg->ciphers);
		goto fail;
	}
	if (SSL_CTX_set1_groups_list(ctx, s->groups) != 1) {
		rc = aclm_error_openssl(ACLM_ERR_CONFIG, "%s:%zu: groups '%s' (is the aclm-pq "
		                        "provider loaded?)", cfg->path, s->line, s->groups);
		goto fail;
	}
	{
		size_t n_loaded = 0;

		for (size_t i = 0; i < s->n_certs; i++) {
			if (s->certs[i].is_missing)
				continue;
			/* a broken file of an acme / ca site (a crash while writing,
			 * a hand edit) is obtained again: a stand-in meanwhile */
			if (s->cert_source != GW_CERT_FILES) {
				SSL_CTX *probe = SSL_CTX_new(TLS_server_method());

				rc = probe ? load_pair(cfg, s, probe, &s->certs[i])
				           : aclm_error_openssl(ACLM_ERR_CRYPTO, "SSL_CTX_new");
				SSL_CTX_free(probe);
				if (rc) {
					aclm_warn("gateway: %s; it will be obtained again", aclm_errmsg());
					s->certs[i].is_missing = true;
					continue;
				}
			}
			if ((rc = load_pair(cfg, s, ctx, &s->certs[i])))
				goto fail;
			n_loaded++;
		}
		/* nothing issued yet: one stand-in */
		if (!n_loaded && (rc = use_stand_in(cfg, s, ctx)))
			goto fail;
	}
	if (s->n_certs == 2 && !s->certs[0].is_missing && !s->certs[1].is_missing &&
	    !strcmp(s->certs[0].key_type, s->certs[1].key_type)) {
		rc = aclm_error(ACLM_ERR_CONFIG, "%s:%zu: two %s certificates: a site holds at "
		                "most one ECDSA and one RSA certificate", cfg->path, s->line,
		                s->certs[0].key_type);
		goto fail;
	}
	if ((rc = gw_tickets_install(ctx)))
		goto fail;
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* One ticket after a full handshake (OpenSSL sends two): a client
	 * resumes with one, and the second cost a ticket encryption and a
	 * record per handshake. */
	SSL_CTX_set_num_tickets(ctx, cfg->session_tickets ? 1 : 0);
	SSL_CTX_set_client_hello_cb(ctx, client_hello_cb, cfg);
	/* the connection's context names its site: nothing per connection */
	if (!SSL_CTX_set_ex_data(ctx, 0, s)) {
		rc = aclm_error_openssl(ACLM_ERR_NOMEM, "SSL_CTX_set_ex_data");
		goto fail;
	}
	gw_ocsp_install(ctx);
	s->ctx = ctx;
	return 0;
fail:
	SSL_CTX_free(ctx);
	return rc;
}

int gw_tls_build(struct aclm_gw_config *cfg)
{
	int rc;

	for (size_t i = 0; i < cfg->n_sites; i++)
		if ((rc = build_site(cfg, &cfg->sites[i])))
			return rc;
	return 0;
}

struct gw_site *gw_tls_site(SSL *ssl)
{
	return SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), 0);
}

const char *gw_tls_group(SSL *ssl)
{
	int id = SSL_get_negotiated_group(ssl);
	const char *name;

	if (id <= 0)
		return "";
	name = SSL_group_to_name(ssl, id);
	return name ? name : "";
}
