/* The server's TLS: the certificate and key named in the configuration, or
 * a self-signed P-256 pair of its own (until the built-in CA issues one),
 * and hybrid post-quantum key exchange preferred when aclm-pq loads. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "aclm/err.h"
#include "aclm/log.h"
#include "aclm/pqprov.h"
#include "aclm/timeutil.h"
#include "server-int.h"

#define SELF_SIGNED_DAYS 90
#define RENEW_BEFORE_DAYS 14

/* A usable pair on disk: the certificate parses and lives RENEW_BEFORE_DAYS
 * more days. */
static bool pair_is_fresh(const char *crt_path)
{
	FILE *f = fopen(crt_path, "r");
	X509 *x;
	bool fresh = false;

	if (f == NULL)
		return false;
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (x != NULL) {
		time_t limit = (time_t)(aclm_now() + RENEW_BEFORE_DAYS * 86400);
		fresh = X509_cmp_time(X509_get0_notAfter(x), &limit) > 0;
		X509_free(x);
	}
	return fresh;
}

static int add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (ext == NULL || X509_add_ext(x, ext, -1) != 1) {
		X509_EXTENSION_free(ext);
		return aclm_error_openssl(ACLM_ERR_CRYPTO, "certificate extension %s", value);
	}
	X509_EXTENSION_free(ext);
	return ACLM_OK;
}

/* Write a new self-signed pair: the key first to a 0600 file. */
static int make_self_signed(const char *dir, const char *crt_path, const char *key_path)
{
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	FILE *f = NULL;
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	int fd = -1, rc = ACLM_ERR_CRYPTO;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return aclm_error(ACLM_ERR_IO, "%s: %s", dir, strerror(errno));
	key = EVP_EC_gen("P-256");
	x = X509_new();
	if (key == NULL || x == NULL || RAND_bytes(serial, sizeof(serial)) != 1) {
		aclm_error_openssl(rc, "self-signed server certificate");
		goto out;
	}
	serial[0] &= 0x7f;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	if (bn == NULL || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL ||
	    X509_set_version(x, 2) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -300) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), (long)SELF_SIGNED_DAYS * 86400) == NULL ||
	    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	                               (const unsigned char *)"aclm server (self-signed)", -1, -1,
	                               0) != 1 ||
	    X509_set_issuer_name(x, X509_get_subject_name(x)) != 1 || X509_set_pubkey(x, key) != 1) {
		aclm_error_openssl(rc, "self-signed server certificate");
		goto out;
	}
	if ((rc = add_ext(x, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1")) != ACLM_OK ||
	    (rc = add_ext(x, NID_basic_constraints, "critical,CA:FALSE")) != ACLM_OK ||
	    (rc = add_ext(x, NID_ext_key_usage, "serverAuth")) != ACLM_OK ||
	    (rc = add_ext(x, NID_subject_key_identifier, "hash")) != ACLM_OK)
		goto out;
	rc = ACLM_ERR_CRYPTO;
	if (X509_sign(x, key, EVP_sha256()) == 0) {
		aclm_error_openssl(rc, "sign the server certificate");
		goto out;
	}
	unlink(key_path);
	fd = open(key_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
		rc = aclm_error(ACLM_ERR_IO, "%s: %s", key_path, strerror(errno));
		goto out;
	}
	fd = -1;
	if (PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) != 1 || fclose(f) != 0) {
		f = NULL;
		rc = aclm_error(ACLM_ERR_IO, "%s: cannot write the key", key_path);
		goto out;
	}
	f = fopen(crt_path, "w");
	if (f == NULL || PEM_write_X509(f, x) != 1 || fclose(f) != 0) {
		f = NULL;
		rc = aclm_error(ACLM_ERR_IO, "%s: cannot write the certificate", crt_path);
		goto out;
	}
	f = NULL;
	rc = ACLM_OK;
out:
	if (f != NULL)
		fclose(f);
	if (fd >= 0)
		close(fd);
	BN_free(bn);
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}

int server_tls_ctx(struct server *s, struct ssl_ctx_st **out)
{
	const char *crt = aclm_config_str(s->cfg, "server.tls_cert");
	const char *key = aclm_config_str(s->cfg, "server.tls_key");
	const char *dir = aclm_config_str(s->cfg, "server.tls_dir");
	char crt_path[4096], key_path[4096];
	const char *const *groups;
	size_t n_groups;
	bool pq_loaded;
	SSL_CTX *ctx;
	int rc;

	*out = NULL;
	if ((crt[0] == '\0') != (key[0] == '\0'))
		return aclm_error(ACLM_ERR_CONFIG, "server.tls_cert and server.tls_key go together: "
		                  "set both or neither");
	if (crt[0] == '\0') {
		snprintf(crt_path, sizeof(crt_path), "%s/server.crt", dir);
		snprintf(key_path, sizeof(key_path), "%s/server.key", dir);
		if (!pair_is_fresh(crt_path)) {
			/* From the built-in CA when ca.auto_init made one; else self-signed. */
			rc = server_ca_tls_pair(s, dir, crt_path, key_path);
			if (rc == ACLM_OK) {
				aclm_info("server: new certificate %s from the built-in CA (key %s, 0600)",
				          crt_path, key_path);
			} else {
				if (rc != ACLM_ERR_NOTFOUND)
					aclm_warn("server: no certificate from the built-in CA: %s",
					          aclm_errmsg());
				if ((rc = make_self_signed(dir, crt_path, key_path)) != ACLM_OK)
					return rc;
				aclm_info("server: new self-signed certificate %s (key %s, 0600)", crt_path,
				          key_path);
			}
		}
		crt = crt_path;
		key = key_path;
	}
	/* Before SSL_CTX_new: a context knows the TLS groups of the providers
	 * loaded when it is made. */
	pq_loaded = aclm_pqprov_load(NULL) == 0;
	if (!pq_loaded) {
		aclm_warn("server: the aclm-pq provider did not load (%s); classic key exchange only",
		          ERR_reason_error_string(ERR_peek_last_error()) ?
		          ERR_reason_error_string(ERR_peek_last_error()) : "no reason given");
		ERR_clear_error();
	}
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL)
		return aclm_error_openssl(ACLM_ERR_CRYPTO, "SSL_CTX_new");
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (SSL_CTX_use_certificate_chain_file(ctx, crt) != 1) {
		SSL_CTX_free(ctx);
		return aclm_error_openssl(ACLM_ERR_CONFIG, "%s: not a usable certificate chain", crt);
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		SSL_CTX_free(ctx);
		return aclm_error_openssl(ACLM_ERR_CONFIG, "%s: not the private key of %s", key, crt);
	}
	/* Hybrid post-quantum first when the provider is there; classic
	 * groups always. */
	n_groups = aclm_pqprov_groups(&groups);
	if (pq_loaded && n_groups > 0 &&
	    SSL_CTX_set1_groups_list(ctx, "X25519MLKEM768:X25519:P-256:P-384") == 1) {
		aclm_debug("server: TLS groups X25519MLKEM768:X25519:P-256:P-384");
	} else {
		ERR_clear_error();
		SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384");
	}
	*out = ctx;
	return ACLM_OK;
}
