/* One client connection of the gateway: a state machine as a table.
 *
 *   HANDSHAKE -> READ_HEAD -> CONNECT -> SEND_REQ -> READ_RESP_HEAD
 *             -> STREAM_RESP -> READ_HEAD (keep-alive) ... -> CLOSE
 *   any refusal: SEND_LOCAL (status page) -> READ_HEAD or LINGER -> CLOSE
 *   while a tls-alpn-01 validation is expected: PEEK -> TUNNEL (a
 *   ClientHello offering ALPN "acme-tls/1" goes, untouched, to the ACME
 *   client's responder) or PEEK -> HANDSHAKE
 *
 * The request is read whole by the HTTP/1.1 parser of src/http (bounded,
 * smuggling shapes refused) and forwarded re-framed with Content-Length, so
 * what the upstream sees is never ambiguous.  The response is streamed: its
 * head is rewritten (hop-by-hop fields, HSTS, Connection) and its body
 * passed through as it arrives, with the end found from Content-Length or
 * the chunked framing (response.c) so that both connections can be kept
 * alive.  Each
 * handler does what it can without blocking and returns the next state or
 * ST_WAIT after setting the watchers it waits on. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>
#include <openssl/err.h>

#include "aclm/buf.h"
#include "aclm/err.h"
#include "aclm/log.h"
#include "gateway-int.h"

enum {
	ST_PEEK,
	ST_TUNNEL,
	ST_HANDSHAKE,
	ST_READ_HEAD,
	ST_CONNECT,
	ST_SEND_REQ,
	ST_READ_RESP_HEAD,
	ST_STREAM_RESP,
	ST_SEND_LOCAL,
	ST_LINGER,
	ST_CLOSE,
	ST_N,
	ST_WAIT = -1,
};


#define IO_CHUNK 16384
/* Client input is read in pieces of this size: most requests fit, and an
 * idle connection should cost little (bench/gateway measures it). */
#define IN_CHUNK 4096
#define MAX_OUT ((size_t)1 << 20)

/* What a connection needs only while a request is under way (or a
 * tls-alpn-01 tunnel): allocated on its first byte, freed when the
 * connection is idle again, so that an idle connection costs its TLS state
 * and struct conn alone (bench/gateway measures it). */
struct xreq {
	struct aclm_http_parser *parser;
	unsigned char *in;                /* IN_CHUNK bytes while reading */
	size_t in_off, in_len;
	bool body_timer, sent_continue;
	/* request */
	struct aclm_buf req;
	size_t req_off;
	char method[16];
	char path[256];
	bool is_head, is_idempotent, client_ka;
	int client_minor;
	double t_up;
	/* upstream */
	ev_io uio;
	bool u_connecting, u_reused, no_pool;
	struct gw_upstream *up;
	uint32_t tried;
	/* response */
	struct aclm_buf resp;             /* upstream head being read */
	struct aclm_buf out;              /* bytes for the client */
	size_t out_off;
	struct gw_resp r;                 /* framing of the upstream's response */
	bool local_close, lingering;
	int status;
	unsigned long long bytes;
	char peer_ip[INET6_ADDRSTRLEN];   /* for the log and the forwarded fields */
	struct xreq *next_free;           /* in the worker's cache */
};

/* Request states a worker keeps for reuse, with their input buffer and
 * upstream-head buffer: a keep-alive request then costs no allocation
 * for them, and an idle connection still holds none. */
#define X_CACHE 16
#define X_KEEP_RESP (2 * IO_CHUNK)

/* One client connection, idle or not. */
struct conn {
	struct gw_worker *w;
	struct aclm_gw_config *cfg;
	struct gw_site *site;
	SSL *ssl;
	struct xreq *x;                   /* NULL while idle */
	ev_io cio;
	ev_timer timer;
	double t_start;
	const char *tls_version, *group, *suite;
	const char *sni;
	int state;
	int fd;
	int ufd;                          /* upstream (or responder), -1 none */
	int cev, uev;                     /* uev: x->uio, 0 while x is NULL */
	bool head_seen;
	bool is_counted;                  /* in gw_clients (connections per IP) */
	union {                           /* the client's address */
		struct sockaddr sa;
		struct sockaddr_in in4;
		struct sockaddr_in6 in6;
	} peer;
};

static void run(struct conn *c);
static void io_cb(struct ev_loop *loop, ev_io *w, int revents);

static struct ev_loop *L(const struct conn *c)
{
	return c->w->loop;
}

static void watch(struct conn *c, int cev, int uev)
{
	if (cev != c->cev) {
		ev_io_stop(L(c), &c->cio);
		if (cev) {
			ev_io_set(&c->cio, c->fd, cev);
			ev_io_start(L(c), &c->cio);
		}
		c->cev = cev;
	}
	/* uev is 0 whenever x is NULL */
	if (uev != c->uev && c->x) {
		ev_io_stop(L(c), &c->x->uio);
		if (uev && c->ufd >= 0) {
			ev_io_set(&c->x->uio, c->ufd, uev);
			ev_io_start(L(c), &c->x->uio);
		}
		c->uev = uev;
	}
}

static void arm(struct conn *c, double secs)
{
	ev_timer_stop(L(c), &c->timer);
	ev_timer_set(&c->timer, secs, 0.);
	ev_timer_start(L(c), &c->timer);
}

static void close_upstream(struct conn *c)
{
	watch(c, c->cev, 0);
	if (c->ufd >= 0)
		close(c->ufd);
	c->ufd = -1;
	if (c->x)
		c->x->u_connecting = false;
}

/* The request state, created with the first byte of a request. */
static struct xreq *xq(struct conn *c)
{
	struct xreq *x = c->x;
	const void *addr = c->peer.sa.sa_family == AF_INET6 ? (const void *)&c->peer.in6.sin6_addr
	                                                    : (const void *)&c->peer.in4.sin_addr;

	if (x)
		return x;
	if (c->w->free_x) {
		unsigned char *in;
		struct aclm_buf resp;

		x = c->w->free_x;
		c->w->free_x = x->next_free;
		c->w->n_free_x--;
		in = x->in;
		resp = x->resp;
		memset(x, 0, sizeof(*x));
		x->in = in;
		x->resp = resp;
		aclm_buf_reset(&x->resp);
	} else {
		x = calloc(1, sizeof(*x));
		if (!x)
			return NULL;
		aclm_buf_init(&x->resp, MAX_RESP_HEAD + IO_CHUNK);
	}
	aclm_buf_init(&x->req, c->cfg->limits.max_body + c->cfg->limits.max_header_bytes +
	                       c->cfg->limits.max_request_line + 65536);
	aclm_buf_init(&x->out, MAX_OUT);
	ev_io_init(&x->uio, io_cb, c->fd, EV_READ);
	x->uio.data = c;
	x->client_ka = true;
	if (c->peer.sa.sa_family == AF_INET || c->peer.sa.sa_family == AF_INET6)
		inet_ntop(c->peer.sa.sa_family, addr, x->peer_ip, sizeof(x->peer_ip));
	c->x = x;
	return x;
}

static void x_free(struct conn *c)
{
	struct xreq *x = c->x;

	if (!x)
		return;
	watch(c, c->cev, 0);
	aclm_http_parser_free(x->parser);
	aclm_buf_free(&x->req);
	aclm_buf_free(&x->out);
	c->x = NULL;
	if (c->w->n_free_x < X_CACHE && x->resp.cap <= X_KEEP_RESP) {
		x->next_free = c->w->free_x;
		c->w->free_x = x;
		c->w->n_free_x++;
		return;
	}
	aclm_buf_free(&x->resp);
	free(x->in);
	free(x);
}

void gw_proxy_worker_free(struct gw_worker *w)
{
	while (w->free_x) {
		struct xreq *x = w->free_x;

		w->free_x = x->next_free;
		aclm_buf_free(&x->resp);
		free(x->in);
		free(x);
	}
	w->n_free_x = 0;
}

/* The input buffer, allocated when there is something to read. */
static unsigned char *in_buf(struct conn *c)
{
	struct xreq *x = xq(c);

	if (x && !x->in)
		x->in = malloc(IN_CHUNK);
	return x ? x->in : NULL;
}

/* Nothing left to read: the input buffer goes, and with it the whole
 * request state when no request is under way (an idle connection). */
static void in_release(struct conn *c)
{
	struct xreq *x = c->x;

	if (!x)
		return;
	x->in_off = x->in_len = 0;
	if (!x->parser && c->ufd < 0 && x->out_off >= x->out.len && !x->status) {
		x_free(c);              /* to the cache, with its buffer */
		return;
	}
	free(x->in);
	x->in = NULL;
}

static void peer_storage(const struct conn *c, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, &c->peer, sizeof(c->peer));
}

static void conn_free(struct conn *c)
{
	watch(c, 0, 0);
	ev_timer_stop(L(c), &c->timer);
	close_upstream(c);
	SSL_free(c->ssl);
	if (c->fd >= 0)
		close(c->fd);
	x_free(c);
	c->w->n_conns--;
	if (c->is_counted) {
		struct sockaddr_storage ss;

		peer_storage(c, &ss);
		gw_clients_leave(&ss);
	}
	aclm_gw_config_unref(c->cfg);
	free(c);
}

/* Close with a reset: for peers dropped on a timeout. */
static int reset_close(struct conn *c)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	return ST_CLOSE;
}

/* Wait for what OpenSSL wants after a non-blocking call on the client. */
static int ssl_wait(struct conn *c, int ret, int uev)
{
	switch (SSL_get_error(c->ssl, ret)) {
	case SSL_ERROR_WANT_READ:
		watch(c, EV_READ, uev);
		return ST_WAIT;
	case SSL_ERROR_WANT_WRITE:
		watch(c, EV_WRITE, uev);
		return ST_WAIT;
	default:
		ERR_clear_error();
		return ST_CLOSE;
	}
}

static void log_request(struct conn *c)
{
	struct xreq *x = c->x;
	double now = ev_now(L(c));
	struct gw_access a = {
		.client = x->peer_ip, .sni = c->sni ? c->sni : "",
		.tls_version = c->tls_version ? c->tls_version : "",
		.group = c->group ? c->group : "", .suite = c->suite ? c->suite : "",
		.method = x->method[0] ? x->method : "-", .path = x->path, .status = x->status,
		.bytes = x->bytes, .upstream = x->up ? x->up->url : "",
		.duration = now - c->t_start, .upstream_duration = x->t_up > 0 ? now - x->t_up : 0,
	};

	gw_log_access(&a);
}

/* A response of the gateway itself, then close or keep going. */
static int reply(struct conn *c, int status, const char *extra_headers, const void *body,
                 size_t blen, bool close_after)
{
	struct xreq *x = xq(c);

	if (!x)
		return ST_CLOSE;
	aclm_buf_reset(&x->out);
	x->out_off = 0;
	x->status = status;
	x->local_close = close_after || !x->client_ka;
	if (aclm_buf_printf(&x->out, "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
	                    "Content-Length: %zu\r\n%s%s\r\n", status,
	                    aclm_http_status_text(status), blen, extra_headers,
	                    x->local_close ? "Connection: close\r\n" : "") ||
	    (!x->is_head && aclm_buf_append(&x->out, body, blen)))
		return ST_CLOSE;
	close_upstream(c);
	return ST_SEND_LOCAL;
}

static int local_reply(struct conn *c, int status, const char *reason, bool close_after)
{
	char body[256];
	int blen;

	blen = snprintf(body, sizeof(body), "%d %s\n", status, reason);
	if (blen < 0 || (size_t)blen >= sizeof(body))
		blen = 0;
	return reply(c, status, "", body, (size_t)blen, close_after);
}

/* Client I/O, TLS or plain: > 0 bytes moved, else 0 and *next is ST_WAIT
 * (watchers set) or ST_CLOSE. */
static int io_read(struct conn *c, void *buf, size_t cap, int *next)
{
	ssize_t n;

	if (c->ssl) {
		int r;

		ERR_clear_error();
		r = SSL_read(c->ssl, buf, (int)cap);
		if (r > 0)
			return r;
		*next = ssl_wait(c, r, 0);
		return 0;
	}
	n = recv(c->fd, buf, cap, 0);
	if (n > 0)
		return (int)n;
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		watch(c, EV_READ, 0);
		*next = ST_WAIT;
	} else {
		*next = ST_CLOSE;
	}
	return 0;
}

static int io_write(struct conn *c, const void *buf, size_t len, int *next)
{
	ssize_t n;

	if (c->ssl) {
		int r;

		ERR_clear_error();
		r = SSL_write(c->ssl, buf, (int)len);
		if (r > 0)
			return r;
		*next = ssl_wait(c, r, 0);
		return 0;
	}
	n = send(c->fd, buf, len, MSG_NOSIGNAL);
	if (n > 0)
		return (int)n;
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		watch(c, EV_WRITE, 0);
		*next = ST_WAIT;
	} else {
		*next = ST_CLOSE;
	}
	return 0;
}

/* ---- handlers ---- */

/* Does the ClientHello at the start of p[0..n) offer ALPN "acme-tls/1"?
 * A bounded walk; anything short or odd is "no". */
static bool offers_acme_alpn(const unsigned char *p, size_t n)
{
	static const char proto[] = "acme-tls/1";
	size_t off = 5 + 4 + 2 + 32, len, end;

	if (n < off + 1 || p[0] != 22 || p[5] != 1)
		return false;
	off += 1 + p[off];                                   /* session id */
	if (off + 2 > n)
		return false;
	off += 2 + (((size_t)p[off] << 8) | p[off + 1]);     /* cipher suites */
	if (off + 1 > n)
		return false;
	off += 1 + p[off];                                   /* compression */
	if (off + 2 > n)
		return false;
	end = off + 2 + (((size_t)p[off] << 8) | p[off + 1]);
	off += 2;
	if (end > n)
		end = n;
	while (off + 4 <= end) {
		unsigned type = ((unsigned)p[off] << 8) | p[off + 1];

		len = ((size_t)p[off + 2] << 8) | p[off + 3];
		off += 4;
		if (off + len > end)
			return false;
		if (type == 16 && len >= 2) {
			size_t i = off + 2, lend = off + len;

			while (i < lend) {
				size_t l = p[i];

				if (i + 1 + l > lend)
					return false;
				if (l == sizeof(proto) - 1 && !memcmp(p + i + 1, proto, l))
					return true;
				i += 1 + l;
			}
			return false;
		}
		off += len;
	}
	return false;
}

static int st_peek(struct conn *c)
{
	int port = atomic_load(&gw_alpn_port);
	struct sockaddr_in a = { .sin_family = AF_INET };
	ssize_t n;

	if (!in_buf(c))
		return ST_CLOSE;
	n = recv(c->fd, c->x->in, IN_CHUNK, MSG_PEEK);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		in_release(c);
		watch(c, EV_READ, 0);
		return ST_WAIT;
	}
	if (n <= 0)
		return ST_CLOSE;
	if (!port || !offers_acme_alpn(c->x->in, (size_t)n)) {
		in_release(c);
		return ST_HANDSHAKE;
	}
	/* a validation connection: to the responder, bytes untouched */
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	c->ufd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->ufd < 0)
		return ST_CLOSE;
	if (connect(c->ufd, (struct sockaddr *)&a, sizeof(a)) && errno != EINPROGRESS)
		return ST_CLOSE;
	c->x->u_connecting = true;
	c->x->in_off = c->x->in_len = 0;
	return ST_TUNNEL;
}

/* Copy both ways until the responder closes. */
static int st_tunnel(struct conn *c)
{
	struct xreq *x = c->x;
	int cev = 0, uev = 0;
	bool progress = true;

	if (x->u_connecting) {
		int err = 0;
		socklen_t len = sizeof(err);
		struct pollfd pf = { .fd = c->ufd, .events = POLLOUT };

		if (poll(&pf, 1, 0) != 1) {
			watch(c, 0, EV_WRITE);
			return ST_WAIT;
		}
		if (getsockopt(c->ufd, SOL_SOCKET, SO_ERROR, &err, &len) || err)
			return ST_CLOSE;
		x->u_connecting = false;
	}
	while (progress) {
		ssize_t n;

		progress = false;
		cev = uev = 0;
		if (x->in_off < x->in_len) {
			n = send(c->ufd, x->in + x->in_off, x->in_len - x->in_off, MSG_NOSIGNAL);
			if (n > 0) {
				x->in_off += (size_t)n;
				progress = true;
			} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				uev |= EV_WRITE;
			} else {
				return ST_CLOSE;
			}
		} else if (!x->lingering) {
			if (!in_buf(c))
				return ST_CLOSE;
			n = recv(c->fd, x->in, IN_CHUNK, 0);
			if (n > 0) {
				x->in_off = 0;
				x->in_len = (size_t)n;
				progress = true;
			} else if (n == 0) {
				x->lingering = true;   /* client done sending */
				shutdown(c->ufd, SHUT_WR);
			} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
				cev |= EV_READ;
			} else {
				return ST_CLOSE;
			}
		}
		if (x->out_off < x->out.len) {
			n = send(c->fd, x->out.data + x->out_off, x->out.len - x->out_off,
			         MSG_NOSIGNAL);
			if (n > 0) {
				x->out_off += (size_t)n;
				progress = true;
			} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				cev |= EV_WRITE;
			} else {
				return ST_CLOSE;
			}
		} else {
			unsigned char tmp[4096];

			aclm_buf_reset(&x->out);
			x->out_off = 0;
			n = recv(c->ufd, tmp, sizeof(tmp), 0);
			if (n > 0) {
				if (aclm_buf_append(&x->out, tmp, (size_t)n))
					return ST_CLOSE;
				progress = true;
			} else if (n == 0) {
				return ST_CLOSE;       /* the responder is done */
			} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
				uev |= EV_READ;
			} else {
				return ST_CLOSE;
			}
		}
	}
	watch(c, cev, uev);
	return ST_WAIT;
}

static int st_handshake(struct conn *c)
{
	int r;

	ERR_clear_error();
	r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		struct gw_site *site = gw_tls_site(c->ssl);

		c->site = site ? site : &c->cfg->sites[0];
		c->sni = SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name);
		c->tls_version = SSL_get_version(c->ssl);
		c->suite = SSL_get_cipher_name(c->ssl);
		c->group = gw_tls_group(c->ssl);
		atomic_fetch_add(&gw_metrics.handshakes, 1);
		gw_metrics_handshake(c->group, c->tls_version);
		c->head_seen = true;
		c->t_start = ev_now(L(c));
		arm(c, c->cfg->to.header);
		return ST_READ_HEAD;
	}
	if (SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ &&
	    SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_WRITE)
		atomic_fetch_add(&gw_metrics.handshake_failures, 1);
	return ssl_wait(c, r, 0);
}

static bool hop_by_hop(const char *name, const char *connection)
{
	static const char *const hop[] = { "connection", "keep-alive", "proxy-connection", "te",
	                                   "transfer-encoding", "upgrade", "content-length",
	                                   "expect", "trailer", "http2-settings" };

	for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
		if (!strcasecmp(name, hop[i]))
			return true;
	return connection && gw_token_in_list(connection, name);
}

/* Append the strings s[0..n): the request head is made of them (a printf
 * per header was a quarter of a keep-alive request's instructions). */
static int put_strs(struct aclm_buf *b, size_t n, const char *const *s)
{
	int rc = 0;

	for (size_t i = 0; i < n; i++)
		rc |= aclm_buf_puts(b, s[i]);
	return rc;
}

#define PUTS(b, ...) \
	put_strs((b), sizeof((const char *[]){ __VA_ARGS__ }) / sizeof(const char *), \
	         (const char *[]){ __VA_ARGS__ })

/* The request for the upstream: same method, target and end-to-end fields,
 * forwarded-for fields, and the body with a Content-Length. */
static int build_request(struct conn *c, const struct aclm_http_msg *m)
{
	struct xreq *x = c->x;
	const char *connection = aclm_http_msg_header(m, "Connection");
	const char *xff = NULL, *fwd = NULL;
	struct aclm_buf *b = &x->req;
	bool has_host = false, v6 = strchr(x->peer_ip, ':') != NULL;
	int rc = 0;

	aclm_buf_reset(b);
	x->req_off = 0;
	rc |= PUTS(b, m->method, " ", m->target, " HTTP/1.1\r\n");
	for (size_t i = 0; i < m->n_headers; i++) {
		const struct aclm_http_header *h = &m->headers[i];

		if (hop_by_hop(h->name, connection))
			continue;
		if (!strcasecmp(h->name, "host"))
			has_host = true;
		if (c->site->forwarded) {
			if (!strcasecmp(h->name, "x-forwarded-for")) {
				xff = h->value;
				continue;
			}
			if (!strcasecmp(h->name, "forwarded")) {
				fwd = h->value;
				continue;
			}
			if (!strcasecmp(h->name, "x-forwarded-proto"))
				continue;
		}
		rc |= PUTS(b, h->name, ": ", h->value, "\r\n");
	}
	if (!has_host)
		rc |= PUTS(b, "Host: ", c->sni ? c->sni : c->site->names[0], "\r\n");
	if (c->site->forwarded) {
		const char *host = aclm_http_msg_header(m, "Host");

		rc |= PUTS(b, "X-Forwarded-For: ", xff ? xff : "", xff ? ", " : "", x->peer_ip,
		           "\r\nX-Forwarded-Proto: https\r\n");
		rc |= PUTS(b, "Forwarded: ", fwd ? fwd : "", fwd ? ", " : "", "for=",
		           v6 ? "\"[" : "", x->peer_ip, v6 ? "]\"" : "", ";proto=https");
		if (host && !strpbrk(host, "\"\\"))
			rc |= PUTS(b, ";host=\"", host, "\"");
		rc |= aclm_buf_puts(b, "\r\n");
	}
	if (m->body_len || m->is_chunked || aclm_http_msg_header(m, "Content-Length"))
		rc |= aclm_buf_printf(b, "Content-Length: %zu\r\n", m->body_len);
	rc |= aclm_buf_puts(b, "\r\n");
	if (m->body_len)
		rc |= aclm_buf_append(b, m->body, m->body_len);
	return rc ? ACLM_ERR_TOOBIG : 0;
}

/* The plain-HTTP listener: http-01 tokens from the webroot, everything
 * else redirected to HTTPS. */
static int plain_request(struct conn *c, const struct aclm_http_msg *m)
{
	static const char prefix[] = "/.well-known/acme-challenge/";
	const char *host = aclm_http_msg_header(m, "Host");
	char hdr[1024];
	size_t hlen;

	if (!strncmp(m->target, prefix, sizeof(prefix) - 1)) {
		const char *tok = m->target + sizeof(prefix) - 1;
		size_t len = strlen(tok);
		char path[4400];
		struct aclm_buf b;
		int next;

		if (len == 0 || len > 256 || strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
		                                          "qrstuvwxyz0123456789-_") != len ||
		    !c->cfg->webroot[0])
			return local_reply(c, 404, "no such challenge", false);
		snprintf(path, sizeof(path), "%s%s", c->cfg->webroot, m->target);
		aclm_buf_init(&b, 4096);
		if (aclm_buf_read_file(&b, path)) {
			aclm_buf_free(&b);
			return local_reply(c, 404, "no such challenge", false);
		}
		next = reply(c, 200, "", b.data, b.len, false);
		aclm_buf_free(&b);
		return next;
	}
	if (!host || !*host || strlen(host) > 255 ||
	    strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-[]:") !=
	    strlen(host))
		return local_reply(c, 400, "a Host header is needed for the redirect", false);
	hlen = strcspn(host, host[0] == '[' ? "]" : ":");
	if (host[0] == '[' && host[hlen] == ']')
		hlen++;
	if (m->target[0] != '/' || strlen(m->target) > 700)
		return local_reply(c, 400, "cannot redirect this target", false);
	snprintf(hdr, sizeof(hdr), "Location: https://%.*s%s\r\n", (int)hlen, host, m->target);
	return reply(c, 301, hdr, "moved to https\n", 15, false);
}

static int start_request(struct conn *c)
{
	struct xreq *x = c->x;
	const struct aclm_http_msg *m = aclm_http_parser_msg(x->parser);
	size_t plen = strcspn(m->target, "?");

	snprintf(x->method, sizeof(x->method), "%s", m->method);
	if (plen >= sizeof(x->path))
		plen = sizeof(x->path) - 1;
	memcpy(x->path, m->target, plen);
	x->path[plen] = '\0';
	x->is_head = !strcmp(m->method, "HEAD");
	x->is_idempotent = x->is_head || !strcmp(m->method, "GET") ||
	                   !strcmp(m->method, "PUT") || !strcmp(m->method, "DELETE") ||
	                   !strcmp(m->method, "OPTIONS") || !strcmp(m->method, "TRACE");
	x->client_ka = m->keep_alive;
	x->client_minor = m->version_minor;
	x->tried = 0;
	x->up = NULL;
	x->no_pool = false;
	x->t_up = 0;
	x->bytes = 0;
	atomic_fetch_add(&gw_metrics.requests, 1);
	if (!c->ssl)
		return plain_request(c, m);
	if (!strcmp(m->method, "CONNECT"))
		return local_reply(c, 405, "CONNECT is not proxied", false);
	if (build_request(c, m))
		return local_reply(c, 413, "request too large", true);
	return ST_CONNECT;
}

static int st_read_head(struct conn *c)
{
	for (;;) {
		if (c->x && c->x->in_off < c->x->in_len) {
			size_t used = 0;
			int rc;

			if (!c->head_seen) {
				c->head_seen = true;
				c->t_start = ev_now(L(c));
				arm(c, c->cfg->to.header);
			}
			/* The parser exists while a request is being read: an
			 * idle connection holds none. */
			if (!c->x->parser && aclm_http_parser_new(&c->cfg->limits, &c->x->parser))
				return local_reply(c, 503, "Service Unavailable", true);
			rc = aclm_http_parser_feed(c->x->parser, c->x->in + c->x->in_off,
			                           c->x->in_len - c->x->in_off, &used);
			c->x->in_off += used;
			if (rc == 1)
				return start_request(c);
			if (rc < 0 && rc != ACLM_AGAIN) {
				const char *meth = aclm_http_parser_method(c->x->parser);

				snprintf(c->x->method, sizeof(c->x->method), "%s",
				         meth ? meth : "-");
				c->x->client_ka = false;
				return local_reply(c, aclm_http_parser_status(c->x->parser),
				                   aclm_http_parser_reason(c->x->parser), true);
			}
			if (aclm_http_parser_head_done(c->x->parser) && !c->x->body_timer) {
				c->x->body_timer = true;
				arm(c, c->cfg->to.body);
				if (aclm_http_parser_expects_continue(c->x->parser) &&
				    !c->x->sent_continue) {
					static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

					int next = ST_CLOSE;

					c->x->sent_continue = true;
					if (io_write(c, cont, sizeof(cont) - 1, &next) != sizeof(cont) - 1)
						return ST_CLOSE;
				}
			}
		}
		int next = ST_CLOSE;
		int n = -1;

		if (in_buf(c)) {
			c->x->in_off = c->x->in_len = 0;
			n = io_read(c, c->x->in, IN_CHUNK, &next);
		}
		if (n > 0) {
			c->x->in_len = (size_t)n;
			continue;
		}
		/* nothing to read: an idle connection keeps no buffer */
		in_release(c);
		return next;
	}
}

static int upstream_fail(struct conn *c, bool mark)
{
	struct xreq *x = c->x;

	if (mark && x->up)
		gw_upstream_failed(x->up, &c->cfg->to);
	if (!mark && x->u_reused && x->up) {
		/* A pooled connection the upstream had closed: the same upstream,
		 * on a new connection. */
		x->tried &= ~(1u << (size_t)(x->up - c->site->ups));
		x->no_pool = true;
	}
	close_upstream(c);
	return ST_CONNECT;
}

static int st_connect(struct conn *c)
{
	struct xreq *x = c->x;

	if (x->u_connecting) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(c->ufd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
			aclm_debug("gateway: connect %s: %s", x->up->url, strerror(err));
			return upstream_fail(c, true);
		}
		x->u_connecting = false;
		return ST_SEND_REQ;
	}
	x->up = gw_upstream_pick(c->site, &x->tried);
	if (!x->up) {
		aclm_warn("gateway: no upstream left for %s", c->site->names[0]);
		return local_reply(c, 502, "no upstream available", false);
	}
	x->req_off = 0;
	x->u_reused = false;
	if (!x->no_pool) {
		c->ufd = gw_pool_take(c->w->pool, &x->up->addr, x->up->addr_len);
		if (c->ufd >= 0) {
			x->u_reused = true;
			return ST_SEND_REQ;
		}
	}
	c->ufd = socket(x->up->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->ufd < 0) {
		aclm_warn("gateway: socket: %s", strerror(errno));
		return local_reply(c, 502, "no upstream available", false);
	}
	{
		int one = 1;

		setsockopt(c->ufd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	if (connect(c->ufd, (struct sockaddr *)&x->up->addr, x->up->addr_len) == 0)
		return ST_SEND_REQ;
	if (errno != EINPROGRESS) {
		aclm_debug("gateway: connect %s: %s", x->up->url, strerror(errno));
		return upstream_fail(c, true);
	}
	x->u_connecting = true;
	arm(c, c->cfg->to.upstream_connect);
	watch(c, 0, EV_WRITE);
	return ST_WAIT;
}

static int st_send_req(struct conn *c)
{
	struct xreq *x = c->x;

	while (x->req_off < x->req.len) {
		ssize_t n = send(c->ufd, x->req.data + x->req_off, x->req.len - x->req_off,
		                 MSG_NOSIGNAL);

		if (n > 0) {
			x->req_off += (size_t)n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			arm(c, c->cfg->to.upstream_response);
			watch(c, 0, EV_WRITE);
			return ST_WAIT;
		}
		return upstream_fail(c, !x->u_reused);
	}
	if (x->t_up == 0)
		x->t_up = ev_now(L(c));
	aclm_buf_reset(&x->resp);
	arm(c, c->cfg->to.upstream_response);
	return ST_READ_RESP_HEAD;
}

static int st_read_resp_head(struct conn *c)
{
	struct xreq *x = c->x;
	unsigned char tmp[IO_CHUNK];

	for (;;) {
		ssize_t n = recv(c->ufd, tmp, sizeof(tmp), 0);
		size_t head_len;
		int rc;

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			watch(c, 0, EV_READ);
			return ST_WAIT;
		}
		if (n <= 0) {
			if (x->resp.len == 0 && x->u_reused)
				return upstream_fail(c, false);
			if (x->resp.len == 0 && x->is_idempotent)
				return upstream_fail(c, true);
			if (x->up)
				gw_upstream_failed(x->up, &c->cfg->to);
			return local_reply(c, 502, "the upstream closed the connection", false);
		}
		if (aclm_buf_append(&x->resp, tmp, (size_t)n))
			return local_reply(c, 502, "upstream response head too large", false);
	again:
		head_len = gw_resp_head_end(x->resp.data, x->resp.len);
		if (!head_len) {
			if (x->resp.len > MAX_RESP_HEAD)
				return local_reply(c, 502, "upstream response head too large", false);
			continue;
		}
		if (head_len > MAX_RESP_HEAD)
			return local_reply(c, 502, "upstream response head too large", false);
		{
			struct gw_resp_req q = { .is_head = x->is_head, .client_ka = x->client_ka,
			                         .client_minor = x->client_minor,
			                         .hsts = c->site->hsts };

			aclm_buf_reset(&x->out);
			x->out_off = 0;
			rc = gw_resp_parse_head(&x->r, (const char *)x->resp.data, head_len, &q,
			                        &x->out);
		}
		if (rc < 0)
			return local_reply(c, 502, "malformed upstream response", false);
		if (rc == 1) {
			/* interim response: drop it, read the final one */
			memmove(x->resp.data, x->resp.data + head_len, x->resp.len - head_len);
			x->resp.len -= head_len;
			goto again;
		}
		gw_upstream_ok(x->up);
		atomic_fetch_add(&x->up->n_requests, 1);
		/* nothing was sent to the client yet: a broken start of the body
		 * can still be answered with 502 */
		x->status = x->r.status;
		if (gw_resp_body(&x->r, x->resp.data + head_len, x->resp.len - head_len, &x->out))
			return local_reply(c, 502, "malformed upstream response body", false);
		aclm_buf_reset(&x->resp);
		arm(c, c->cfg->to.write);
		return ST_STREAM_RESP;
	}
}

static int finish_request(struct conn *c)
{
	struct xreq *x = c->x;

	if (x->status >= 100 && x->status < 600)
		atomic_fetch_add(&gw_metrics.status[x->status / 100], 1);
	else
		atomic_fetch_add(&gw_metrics.status[0], 1);
	atomic_fetch_add(&gw_metrics.bytes_out, x->bytes);
	log_request(c);
	if (c->ufd >= 0 && x->r.u_reusable && x->r.body_done && x->up) {
		watch(c, c->cev, 0);
		gw_pool_put(c->w->pool, &x->up->addr, x->up->addr_len, c->ufd);
		c->ufd = -1;
	} else {
		close_upstream(c);
	}
	/* Idle until the next request: hold no parser and no buffers (the
	 * rest of x goes once the input is used up: in_release). */
	aclm_http_parser_free(x->parser);
	x->parser = NULL;
	aclm_buf_free(&x->req);
	aclm_buf_free(&x->resp);
	aclm_buf_free(&x->out);
	x->out_off = 0;
	x->method[0] = '\0';
	x->path[0] = '\0';
	x->up = NULL;
	c->head_seen = x->body_timer = x->sent_continue = false;
	x->status = 0;
	arm(c, c->cfg->to.idle);
	return ST_READ_HEAD;
}

static int flush_out(struct conn *c)
{
	struct xreq *x = c->x;

	while (x->out_off < x->out.len) {
		int next = ST_CLOSE;
		int n = io_write(c, x->out.data + x->out_off, x->out.len - x->out_off, &next);

		if (n <= 0)
			return next;
		x->out_off += (size_t)n;
		x->bytes += (size_t)n;
		arm(c, c->cfg->to.write);
	}
	aclm_buf_reset(&x->out);
	x->out_off = 0;
	return 0;
}

static int st_stream_resp(struct conn *c)
{
	struct xreq *x = c->x;
	unsigned char tmp[IO_CHUNK];

	for (;;) {
		int rc = flush_out(c);
		ssize_t n;

		if (rc)
			return rc;
		if (x->r.body_done) {
			if (x->r.close_after) {
				x->local_close = true;
				log_request(c);
				x->status = 0;
				return ST_LINGER;
			}
			return finish_request(c);
		}
		n = recv(c->ufd, tmp, sizeof(tmp), 0);
		if (n > 0) {
			if (gw_resp_body(&x->r, tmp, (size_t)n, &x->out))
				return ST_CLOSE;
			continue;
		}
		if (n == 0 && x->r.framing == FR_CLOSE) {
			x->r.body_done = true;
			x->r.u_reusable = false;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			arm(c, c->cfg->to.upstream_response);
			watch(c, 0, EV_READ);
			return ST_WAIT;
		}
		/* the upstream broke off the body: the client cannot get a whole
		 * response any more */
		return ST_CLOSE;
	}
}

static int st_send_local(struct conn *c)
{
	struct xreq *x = c->x;
	int rc = flush_out(c);

	if (rc)
		return rc;
	x->r.body_done = true;
	if (x->local_close) {
		log_request(c);
		x->status = 0;
		return ST_LINGER;
	}
	return finish_request(c);
}

/* After the last response: close the write side, then read and discard what
 * the client still sends for a moment, so that our response is not lost to
 * a reset caused by unread input. */
static int st_linger(struct conn *c)
{
	struct xreq *x = c->x;
	unsigned char tmp[4096];

	if (!x->lingering) {
		x->lingering = true;
		close_upstream(c);
		ERR_clear_error();
		if (c->ssl)
			SSL_shutdown(c->ssl);
		shutdown(c->fd, SHUT_WR);
		arm(c, 2.0);
	}
	for (;;) {
		ssize_t n = recv(c->fd, tmp, sizeof(tmp), 0);

		if (n > 0)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			watch(c, EV_READ, 0);
			return ST_WAIT;
		}
		return ST_CLOSE;
	}
}

static int st_close(struct conn *c)
{
	return ST_CLOSE;
}

struct state_def {
	const char *name;
	int (*run)(struct conn *c);
};

static const struct state_def states[ST_N] = {
	[ST_PEEK] = { "peek", st_peek },
	[ST_TUNNEL] = { "tunnel", st_tunnel },
	[ST_HANDSHAKE] = { "handshake", st_handshake },
	[ST_READ_HEAD] = { "read_head", st_read_head },
	[ST_CONNECT] = { "connect", st_connect },
	[ST_SEND_REQ] = { "send_request", st_send_req },
	[ST_READ_RESP_HEAD] = { "read_response_head", st_read_resp_head },
	[ST_STREAM_RESP] = { "stream_response", st_stream_resp },
	[ST_SEND_LOCAL] = { "send_local", st_send_local },
	[ST_LINGER] = { "linger", st_linger },
	[ST_CLOSE] = { "close", st_close },
};

static void run(struct conn *c)
{
	for (;;) {
		int next = states[c->state].run(c);

		if (next == ST_WAIT)
			return;
		if (next == ST_CLOSE) {
			if (c->x && c->x->status && c->state != ST_LINGER)
				log_request(c);
			conn_free(c);
			return;
		}
		if (next != c->state)
			watch(c, 0, 0);
		c->state = next;
	}
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	run(w->data);
}

static void timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct conn *c = t->data;

	switch (c->state) {
	case ST_CONNECT:
		aclm_debug("gateway: connect %s: timed out", c->x->up ? c->x->up->url : "?");
		c->state = upstream_fail(c, true);
		run(c);
		return;
	case ST_SEND_REQ:
	case ST_READ_RESP_HEAD:
		if (c->x->up)
			gw_upstream_failed(c->x->up, &c->cfg->to);
		c->state = local_reply(c, 504, "the upstream did not answer in time", true);
		if (c->state == ST_CLOSE) {
			conn_free(c);
			return;
		}
		run(c);
		return;
	case ST_READ_HEAD:
		if (c->head_seen) {
			/* slow or stalled request head/body: dropped */
			reset_close(c);
		}
		conn_free(c);
		return;
	default:
		if (c->state == ST_HANDSHAKE)
			atomic_fetch_add(&gw_metrics.handshake_failures, 1);
		if (c->x && c->x->status && c->state != ST_LINGER)
			log_request(c);
		reset_close(c);
		conn_free(c);
		return;
	}
}

void gw_proxy_accept(struct gw_worker *w, int fd, const struct sockaddr_storage *peer,
                     socklen_t peer_len, bool is_tls)
{
	struct conn *c = calloc(1, sizeof(*c));
	struct aclm_gw_config *cfg;

	if (!c) {
		close(fd);
		return;
	}
	cfg = gw_current(w->gw);
	if (!gw_clients_enter(peer, cfg->max_conns_per_ip)) {
		/* over limits.connections_per_ip: refused before any TLS work */
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(fd);
		aclm_gw_config_unref(cfg);
		free(c);
		atomic_fetch_add(&gw_metrics.refused, 1);
		return;
	}
	c->is_counted = cfg->max_conns_per_ip > 0;
	memcpy(&c->peer, peer, peer_len < sizeof(c->peer) ? peer_len : sizeof(c->peer));
	c->head_seen = false;
	c->w = w;
	c->cfg = cfg;
	c->fd = fd;
	c->ufd = -1;
	c->site = &cfg->sites[0];
	w->n_conns++;
	atomic_fetch_add(&gw_metrics.connections, 1);
	ev_io_init(&c->cio, io_cb, fd, EV_READ);
	c->cio.data = c;
	ev_timer_init(&c->timer, timer_cb, 1., 0.);
	c->timer.data = c;
	c->t_start = ev_now(w->loop);
	if (!is_tls) {
		c->state = ST_READ_HEAD;
		c->head_seen = true;
		arm(c, cfg->to.header);
		run(c);
		return;
	}
	c->ssl = SSL_new(cfg->sites[0].ctx);
	if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1)
		goto fail;
	SSL_set_accept_state(c->ssl);
	c->state = atomic_load(&gw_alpn_port) ? ST_PEEK : ST_HANDSHAKE;
	arm(c, cfg->to.handshake);
	run(c);
	return;
fail:
	ERR_clear_error();
	conn_free(c);
}
