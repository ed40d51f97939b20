/* The standalone challenge responder: a small server on its own libev loop
 * in a thread, answering http-01 (GET /.well-known/acme-challenge/TOKEN)
 * or tls-alpn-01 (a TLS handshake with acme-tls/1, challenge_alpn.c) while
 * the order is polled; and the webroot variant of http-01.
 *
 * Requests are bounded (4 kB, 10 s); anything but a known token is a 404.
 * Tokens are base64url (checked by acme_key_authorization), so they can
 * never form a path outside .well-known/acme-challenge. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ev.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "acme-int.h"
#include "challenge-int.h"
#include "aclm/err.h"
#include "aclm/log.h"
#include "aclm/str.h"

#define REQ_MAX 4096
#define CONN_TIMEOUT 10.0
#define MAX_CONNS 256
static const char PREFIX[] = "/.well-known/acme-challenge/";

struct responder_conn {
	struct responder_conn *next, *prev;
	struct aclm_acme_responder *r;
	int fd;
	ev_io io;
	ev_timer timer;
	SSL *ssl;
	char buf[REQ_MAX];
	size_t len;
};

static void conn_close(struct responder_conn *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		c->r->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	ev_io_stop(c->r->loop, &c->io);
	ev_timer_stop(c->r->loop, &c->timer);
	if (c->ssl != NULL) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	close(c->fd);
	c->r->n_conns--;
	free(c);
}

const struct responder_token *responder_find(struct aclm_acme_responder *r, const char *key)
{
	for (size_t i = 0; i < r->n_tokens; i++)
		if (strcmp(r->tokens[i].key, key) == 0)
			return &r->tokens[i];
	return NULL;
}

static void http_reply(struct responder_conn *c)
{
	char path[512], out[1024];
	const char *keyauth = NULL;
	int n;

	/* "GET /.well-known/acme-challenge/TOKEN HTTP/1.1" */
	if (sscanf(c->buf, "GET %511s HTTP/1.", path) == 1 &&
	    strncmp(path, PREFIX, sizeof(PREFIX) - 1) == 0) {
		pthread_mutex_lock(&c->r->mu);
		const struct responder_token *t = responder_find(c->r, path + sizeof(PREFIX) - 1);
		if (t != NULL)
			keyauth = t->keyauth;
		if (keyauth != NULL)
			n = snprintf(out, sizeof(out), "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
			             "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
			             strlen(keyauth), keyauth);
		pthread_mutex_unlock(&c->r->mu);
	}
	if (keyauth == NULL)
		n = snprintf(out, sizeof(out), "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
		             "Connection: close\r\n\r\n");
	/* small enough for the socket buffer of a fresh connection */
	if (n > 0 && send(c->fd, out, (size_t)n, MSG_NOSIGNAL) < 0)
		aclm_debug("http-01 responder: send: %s", strerror(errno));
}

static void on_conn(struct ev_loop *loop, ev_io *w, int revents)
{
	struct responder_conn *c = w->data;
	ssize_t n;

	if (c->ssl != NULL) {
		int rc = responder_tls_step(c->r, c->ssl);
		if (rc == 0 || rc == 2) {  /* wants to read (0) or write (2) */
			ev_io_stop(loop, &c->io);
			ev_io_set(&c->io, c->fd, rc == 0 ? EV_READ : EV_WRITE);
			ev_io_start(loop, &c->io);
			return;
		}
		conn_close(c);
		return;
	}
	n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(c);
		return;
	}
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	if (strstr(c->buf, "\r\n\r\n") != NULL || c->len >= sizeof(c->buf) - 1) {
		http_reply(c);
		conn_close(c);
	}
	(void)loop;
	(void)revents;
}

static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	conn_close(w->data);
	(void)loop;
	(void)revents;
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct aclm_acme_responder *r = w->data;
	struct responder_conn *c;
	int fd = accept4(r->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	if (r->n_conns >= MAX_CONNS || (c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		return;
	}
	c->r = r;
	c->fd = fd;
	c->next = r->conns;
	if (r->conns != NULL)
		r->conns->prev = c;
	r->conns = c;
	r->n_conns++;
	if (r->type == ACLM_CHALL_TLSALPN01) {
		c->ssl = SSL_new(r->ssl_ctx);
		if (c->ssl == NULL || !SSL_set_fd(c->ssl, fd)) {
			conn_close(c);
			return;
		}
		SSL_set_accept_state(c->ssl);
	}
	ev_io_init(&c->io, on_conn, fd, EV_READ);
	c->io.data = c;
	ev_timer_init(&c->timer, on_timeout, CONN_TIMEOUT, 0.);
	c->timer.data = c;
	ev_io_start(loop, &c->io);
	ev_timer_start(loop, &c->timer);
	(void)revents;
}

static void on_stop(struct ev_loop *loop, ev_async *w, int revents)
{
	ev_break(loop, EVBREAK_ALL);
	(void)w;
	(void)revents;
}

static void *responder_main(void *arg)
{
	struct aclm_acme_responder *r = arg;
	sigset_t set;

	/* a peer that hangs up mid-handshake must not kill the process */
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	ev_run(r->loop, 0);
	return NULL;
}

static int listen_on(const char *addr, int *out)
{
	char host[256];
	const char *colon = strrchr(addr, ':');
	struct addrinfo hints, *ai = NULL;
	int fd = -1, one = 1, e;

	if (colon == NULL || colon[1] == '\0' || (size_t)(colon - addr) >= sizeof(host))
		return aclm_error(ACLM_ERR_USAGE, "listen address '%s' is not ADDR:PORT (or :PORT)", addr);
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	if (host[0] == '\0')
		aclm_strlcpy(host, "0.0.0.0", sizeof(host));  /* ":80": every IPv4 address */
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((e = getaddrinfo(host, colon + 1, &hints, &ai)) != 0)
		return aclm_error(ACLM_ERR_USAGE, "listen address '%s': %s", addr, gai_strerror(e));
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 128) < 0) {
		int rc = aclm_error(ACLM_ERR_IO, "cannot listen on %s: %s", addr, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return rc;
	}
	freeaddrinfo(ai);
	*out = fd;
	return ACLM_OK;
}

int aclm_acme_responder_start(const char *addr, enum aclm_acme_chall type,
                         struct aclm_acme_responder **out)
{
	struct aclm_acme_responder *r = calloc(1, sizeof(*r));
	int rc;

	if (r == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	r->fd = -1;
	r->type = type;
	pthread_mutex_init(&r->mu, NULL);
	if ((rc = listen_on(addr, &r->fd)) != ACLM_OK)
		goto fail;
	if (type == ACLM_CHALL_TLSALPN01 && (rc = responder_tls_init(r)) != ACLM_OK)
		goto fail;
	r->loop = ev_loop_new(EVFLAG_AUTO);
	if (r->loop == NULL) {
		rc = aclm_error(ACLM_ERR_NOMEM, "cannot create an event loop");
		goto fail;
	}
	ev_io_init(&r->accept_w, on_accept, r->fd, EV_READ);
	r->accept_w.data = r;
	ev_io_start(r->loop, &r->accept_w);
	ev_async_init(&r->stop_w, on_stop);
	ev_async_start(r->loop, &r->stop_w);
	if (pthread_create(&r->thread, NULL, responder_main, r) != 0) {
		rc = aclm_error(ACLM_ERR_IO, "cannot start the challenge responder thread");
		goto fail;
	}
	r->running = true;
	aclm_debug("%s responder listening on %s", aclm_acme_chall_name(type), addr);
	*out = r;
	return ACLM_OK;
fail:
	aclm_acme_responder_stop(r);
	return rc;
}

int acme_responder_add(struct aclm_acme_responder *r, const char *key, const char *keyauth)
{
	struct responder_token *n, t;
	int rc = ACLM_OK;

	memset(&t, 0, sizeof(t));
	t.key = aclm_strdup(key);
	t.keyauth = aclm_strdup(keyauth);
	if (t.key == NULL || t.keyauth == NULL) {
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
		goto fail;
	}
	if (r->type == ACLM_CHALL_TLSALPN01) {
		if ((rc = acme_alpn_cert(key, keyauth, &t.pkey, (void **)&t.x509)) != ACLM_OK)
			goto fail;
		if (aclm_is_ip_literal(key)) {  /* the SNI is the reverse name (RFC 8738 6) */
			char rev[128];
			if ((rc = acme_reverse_name(key, rev, sizeof(rev))) != ACLM_OK)
				goto fail;
			free(t.key);
			t.key = aclm_strdup(rev);
		}
	}
	pthread_mutex_lock(&r->mu);
	n = realloc(r->tokens, (r->n_tokens + 1) * sizeof(*n));
	if (n == NULL) {
		pthread_mutex_unlock(&r->mu);
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
		goto fail;
	}
	r->tokens = n;
	n[r->n_tokens++] = t;
	pthread_mutex_unlock(&r->mu);
	return ACLM_OK;
fail:
	free(t.key);
	free(t.keyauth);
	EVP_PKEY_free(t.pkey);
	X509_free(t.x509);
	return rc;
}

void aclm_acme_responder_stop(struct aclm_acme_responder *r)
{
	if (r == NULL)
		return;
	if (r->running) {
		ev_async_send(r->loop, &r->stop_w);
		pthread_join(r->thread, NULL);
	}
	while (r->conns != NULL)
		conn_close(r->conns);  /* the loop has stopped: no watcher runs any more */
	if (r->loop != NULL)
		ev_loop_destroy(r->loop);
	if (r->fd >= 0)
		close(r->fd);
	for (size_t i = 0; i < r->n_tokens; i++) {
		free(r->tokens[i].key);
		free(r->tokens[i].keyauth);
		EVP_PKEY_free(r->tokens[i].pkey);
		X509_free(r->tokens[i].x509);
	}
	free(r->tokens);
	if (r->ssl_ctx != NULL)
		SSL_CTX_free(r->ssl_ctx);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

/* --- webroot --------------------------------------------------------------- */

static int mkdir_p(const char *path)
{
	char buf[4096];
	size_t len = aclm_strlcpy(buf, path, sizeof(buf));

	if (len >= sizeof(buf))
		return aclm_error(ACLM_ERR_USAGE, "webroot path too long");
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return aclm_error(ACLM_ERR_IO, "%s: %s", buf, strerror(errno));
		*p = '/';
	}
	if (mkdir(buf, 0755) < 0 && errno != EEXIST)
		return aclm_error(ACLM_ERR_IO, "%s: %s", buf, strerror(errno));
	return ACLM_OK;
}

int acme_webroot_add(const char *webroot, const char *token, const char *keyauth)
{
	char dir[4096], path[4400];
	int fd, rc;
	size_t len = strlen(keyauth);

	snprintf(dir, sizeof(dir), "%s/.well-known/acme-challenge", webroot);
	if ((rc = mkdir_p(dir)) != ACLM_OK)
		return aclm_error_wrap(rc, "webroot");
	snprintf(path, sizeof(path), "%s/%s", dir, token);
	/* world-readable: the web server must serve it */
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return aclm_error(ACLM_ERR_IO, "webroot: %s: %s", path, strerror(errno));
	if (write(fd, keyauth, len) != (ssize_t)len) {
		rc = aclm_error(ACLM_ERR_IO, "webroot: %s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return rc;
	}
	fchmod(fd, 0644);
	close(fd);
	return ACLM_OK;
}

void acme_webroot_remove(const char *webroot, const char *token)
{
	char path[4400];

	snprintf(path, sizeof(path), "%s/.well-known/acme-challenge/%s", webroot, token);
	unlink(path);
}
