/* Transport of a connection: plain TCP, or TLS through OpenSSL on the same
 * non-blocking socket.  Both report "would block" as ACLM_AGAIN and say in
 * c->want which readiness to wait for: a TLS read can need the socket to be
 * writable (and a write readable) during a handshake or key update. */
#include <errno.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "aclm/err.h"
#include "aclm/log.h"
#include "http-int.h"

int aclm_http_tls_new(struct conn *c, SSL_CTX *ctx)
{
	c->ssl = SSL_new(ctx);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
		SSL_free(c->ssl);
		c->ssl = NULL;
		return aclm_error_openssl(ACLM_ERR_CRYPTO, "TLS connection from %s", c->peer);
	}
	SSL_set_accept_state(c->ssl);
	/* Read whole records in one recv instead of header, then body. */
	SSL_set_read_ahead(c->ssl, 1);
	/* Buffers of idle connections are released (thousands of keep-alives);
	 * the output buffer may move between retries of a write. */
	SSL_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
	                     SSL_MODE_RELEASE_BUFFERS);
	return ACLM_OK;
}

/* Map an SSL_* result: 0 is a clean close_notify (end of stream). */
static int ssl_result(struct conn *c, int r)
{
	int e = SSL_get_error(c->ssl, r);

	switch (e) {
	case SSL_ERROR_WANT_READ:
		c->want = EV_READ;
		return ACLM_AGAIN;
	case SSL_ERROR_WANT_WRITE:
		c->want = EV_WRITE;
		return ACLM_AGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	default:
		/* Peers that vanish, speak plain HTTP to a TLS port, or fail the
		 * handshake: worth a debug line, not more. */
		if (ERR_peek_error() != 0) {
			char msg[256];

			ERR_error_string_n(ERR_get_error(), msg, sizeof(msg));
			aclm_debug("http: TLS with %s: %s", c->peer, msg);
		}
		ERR_clear_error();
		return ACLM_ERR_IO;
	}
}

int aclm_http_tls_handshake(struct conn *c)
{
	int r;

	ERR_clear_error();
	r = SSL_do_handshake(c->ssl);
	if (r == 1)
		return 1;
	r = ssl_result(c, r);
	return r == 0 ? ACLM_ERR_IO : r;
}

void aclm_http_tls_close(struct conn *c)
{
	if (c->ssl == NULL)
		return;
	if (SSL_is_init_finished(c->ssl)) {
		ERR_clear_error();
		(void)SSL_shutdown(c->ssl);  /* sends close_notify if the socket takes it */
		ERR_clear_error();
	}
	SSL_free(c->ssl);
	c->ssl = NULL;
}

int aclm_http_io_read(struct conn *c, void *buf, size_t n)
{
	if (n > INT32_MAX)
		n = INT32_MAX;
	if (c->ssl != NULL) {
		int r;

		ERR_clear_error();
		r = SSL_read(c->ssl, buf, (int)n);
		return r > 0 ? r : ssl_result(c, r);
	}
	for (;;) {
		ssize_t r = recv(c->fd, buf, n, 0);

		if (r >= 0)
			return (int)r;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			c->want = EV_READ;
			return ACLM_AGAIN;
		}
		return ACLM_ERR_IO;
	}
}

int aclm_http_io_write(struct conn *c, const void *buf, size_t n)
{
	if (n > INT32_MAX)
		n = INT32_MAX;
	if (c->ssl != NULL) {
		int r;

		ERR_clear_error();
		r = SSL_write(c->ssl, buf, (int)n);
		if (r > 0)
			return r;
		r = ssl_result(c, r);
		return r == 0 ? ACLM_ERR_IO : r;
	}
	for (;;) {
		ssize_t r = send(c->fd, buf, n, MSG_NOSIGNAL);

		if (r >= 0)
			return (int)r;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			c->want = EV_WRITE;
			return ACLM_AGAIN;
		}
		return ACLM_ERR_IO;
	}
}
