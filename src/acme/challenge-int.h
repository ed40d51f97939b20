/* The standalone responder's insides, shared by challenge_http.c (the
 * server and http-01) and challenge_alpn.c (tls-alpn-01). */
#ifndef ACLM_ACME_CHALLENGE_INT_H
#define ACLM_ACME_CHALLENGE_INT_H

#include <pthread.h>
#include <stdbool.h>

#include <ev.h>
#include <openssl/ssl.h>

#include "acme-int.h"

struct responder_token {
	char *key;        /* http-01: token; tls-alpn-01: the identifier (SNI) */
	char *keyauth;
	EVP_PKEY *pkey;   /* tls-alpn-01 validation certificate */
	X509 *x509;
};

struct aclm_acme_responder {
	enum aclm_acme_chall type;
	int fd;
	struct ev_loop *loop;
	ev_io accept_w;
	ev_async stop_w;
	pthread_t thread;
	bool running;
	int n_conns;
	struct responder_conn *conns;  /* open connections (closed on stop) */
	pthread_mutex_t mu;          /* guards tokens */
	struct responder_token *tokens;
	size_t n_tokens;
	SSL_CTX *ssl_ctx;
};

/* Caller holds r->mu. */
const struct responder_token *responder_find(struct aclm_acme_responder *r, const char *key);
int responder_tls_init(struct aclm_acme_responder *r);
/* Drive a handshake: 0 wants to read, 2 to write, 1 finished, -1 failed. */
int responder_tls_step(struct aclm_acme_responder *r, SSL *ssl);

#endif
