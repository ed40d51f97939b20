/* In-process TLS 1.3 full handshakes per second, client and server over a
 * BIO pair on one core, ECDSA P-256 certificate, for each group named on
 * the command line.  Prints one line per group: "GROUP median_hs_per_s". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "aclm/pqprov.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "handshake bench: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static void make_cert(EVP_PKEY **key, X509 **cert)
{
	*key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	*cert = X509_new();
	if (*key == NULL || *cert == NULL)
		die("key generation failed");
	ASN1_INTEGER_set(X509_get_serialNumber(*cert), 1);
	X509_gmtime_adj(X509_getm_notBefore(*cert), 0);
	X509_gmtime_adj(X509_getm_notAfter(*cert), 86400);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(*cert), "CN", MBSTRING_ASC,
	                           (const unsigned char *)"bench", -1, -1, 0);
	X509_set_issuer_name(*cert, X509_get_subject_name(*cert));
	X509_set_pubkey(*cert, *key);
	if (!X509_sign(*cert, *key, EVP_sha256()))
		die("self-signing failed");
}

/* One full handshake; returns 0 on success. */
static int handshake(SSL_CTX *cctx, SSL_CTX *sctx)
{
	SSL *c = SSL_new(cctx), *s = SSL_new(sctx);
	BIO *cb = NULL, *sb = NULL;
	int rc = -1, cdone = 0, sdone = 0;

	if (c == NULL || s == NULL || !BIO_new_bio_pair(&cb, 0, &sb, 0))
		goto out;
	SSL_set_bio(c, cb, cb);
	SSL_set_bio(s, sb, sb);
	SSL_set_connect_state(c);
	SSL_set_accept_state(s);
	for (int i = 0; i < 100 && !(cdone && sdone); i++) {
		if (!cdone) {
			int r = SSL_do_handshake(c);
			if (r == 1)
				cdone = 1;
			else if (SSL_get_error(c, r) != SSL_ERROR_WANT_READ)
				goto out;
		}
		if (!sdone) {
			int r = SSL_do_handshake(s);
			if (r == 1)
				sdone = 1;
			else if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ)
				goto out;
		}
	}
	rc = cdone && sdone ? 0 : -1;
out:
	SSL_free(c);
	SSL_free(s);
	return rc;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? strtod(argv[1], NULL) : 1.0;
	int runs = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 5;
	EVP_PKEY *key;
	X509 *cert;

	if (argc < 4) {
		fprintf(stderr, "usage: handshake SECONDS RUNS GROUP...\n");
		return 2;
	}
	if (aclm_pqprov_load(NULL) != 0)
		die("cannot load the aclm-pq provider");
	make_cert(&key, &cert);
	for (int g = 3; g < argc; g++) {
		SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
		SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
		double rates[64];

		if (runs > 64)
			runs = 64;
		if (sctx == NULL || cctx == NULL ||
		    !SSL_CTX_use_certificate(sctx, cert) || !SSL_CTX_use_PrivateKey(sctx, key) ||
		    !SSL_CTX_set_min_proto_version(sctx, TLS1_3_VERSION) ||
		    !SSL_CTX_set_min_proto_version(cctx, TLS1_3_VERSION) ||
		    !SSL_CTX_set1_groups_list(sctx, argv[g]) || !SSL_CTX_set1_groups_list(cctx, argv[g]))
			die(argv[g]);
		SSL_CTX_set_options(sctx, SSL_OP_NO_TICKET);
		SSL_CTX_set_session_cache_mode(cctx, SSL_SESS_CACHE_OFF);
		if (handshake(cctx, sctx) != 0)
			die("handshake failed");
		for (int r = 0; r < runs; r++) {
			double t0 = now(), t;
			long n = 0;
			do {
				if (handshake(cctx, sctx) != 0)
					die("handshake failed");
				n++;
				t = now();
			} while (t - t0 < seconds);
			rates[r] = (double)n / (t - t0);
		}
		qsort(rates, (size_t)runs, sizeof(rates[0]), cmp);
		printf("%s %.0f\n", argv[g], rates[runs / 2]);
		fflush(stdout);
		SSL_CTX_free(sctx);
		SSL_CTX_free(cctx);
	}
	X509_free(cert);
	EVP_PKEY_free(key);
	return 0;
}
