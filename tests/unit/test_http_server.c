/* Unit tests of the HTTP server engine (src/http): the server runs on its own
 * libev loop in a thread, on 127.0.0.1 port 0; the tests drive it with plain
 * blocking sockets and an OpenSSL client.  Keep-alive, pipelining, routing
 * (404/405/params/decoding), refused requests and the close after them, a
 * slowloris client dropped while a normal client is served, 1,000 idle
 * keep-alive connections, TLS with a P-256 certificate made here, deferred
 * responses and their abort, Expect: 100-continue, the access log, the
 * connection limit and graceful shutdown. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "aclm/err.h"
#include "aclm/http.h"

/* ---- a server on a loop in a thread ------------------------------------ */

struct tsrv {
	struct ev_loop *loop;
	struct aclm_http_server *srv;
	pthread_t th;
	ev_async async;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	void (*fn)(struct tsrv *t, void *arg);
	void *arg;
	bool fn_done;
	int port;
	int port6;
	int tls_port;
	SSL_CTX *ssl_ctx;
	char log_path[64];
	int log_fd;
	atomic_int aborts;
	atomic_int after_calls;
	atomic_int after_404;
	atomic_int after_400_refused;
	atomic_int after_route_ok;
	atomic_int shutdown_done;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void async_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct tsrv *t = (struct tsrv *)((char *)w - offsetof(struct tsrv, async));

	(void)loop;
	(void)revents;
	pthread_mutex_lock(&t->mu);
	if (t->fn != NULL && !t->fn_done) {
		t->fn(t, t->arg);
		t->fn_done = true;
		pthread_cond_broadcast(&t->cv);
	}
	pthread_mutex_unlock(&t->mu);
}

/* Run fn(t, arg) on the loop's thread and wait for it. */
static void in_loop(struct tsrv *t, void (*fn)(struct tsrv *, void *), void *arg)
{
	pthread_mutex_lock(&t->mu);
	t->fn = fn;
	t->arg = arg;
	t->fn_done = false;
	ev_async_send(t->loop, &t->async);
	while (!t->fn_done)
		pthread_cond_wait(&t->cv, &t->mu);
	t->fn = NULL;
	pthread_mutex_unlock(&t->mu);
}

static void *loop_main(void *arg)
{
	struct tsrv *t = arg;

	ev_run(t->loop, 0);
	return NULL;
}

/* ---- handlers -------------------------------------------------------- */

static int h_hello(struct aclm_http_req *req, struct aclm_http_res *res, void *arg)
{
	(void)arg;
	(void)req;
	return aclm_http_reply(res, 200, "text/plain", "hello\n", 6);
}

static int h_echo(struct aclm_http_req *req, struct aclm_http_res *res, void *arg)
{
	size_t len;
	const unsigned char *b = aclm_http_req_body(req, &len);

	(void)arg;
	return aclm_http_reply(res, 200, "application/octet-stream", b, len);
}

static int h_item(struct aclm_http_req *req, struct aclm_http_res *res, void *arg)
{
	const char *limit = aclm_http_query_get(req, "limit");

	(void)arg;
	return aclm_http_reply_json(res, 200, json_pack("{s:s, s:s?, s:s, s:b}", "id",
	                            aclm_http_req_param(req, "id"), "limit", limit,
	                            "route", aclm_http_req_route(req),
	                            "tls", aclm_http_req_is_tls(req)));
}

static int h_item_delete(struct aclm_http_req *req, struct aclm_http_res *res, void *arg)
{
	(void)arg;
	(void)req;
	aclm_http_res_status(res, 204);
	return ACLM_HTTP_DONE;
}

static int h_item_special(struct aclm_http_req *req, struct aclm_http_res *res, void *arg)
{
	(void)arg;
	(void)req;
	return aclm_http_reply(res, 200, "text/plain", "special", 7);
}

static int h_static(struct aclm_http_req *req, struct aclm_http_res *res, void *arg)
{
	const char *rest = aclm_http_req_param(req, "*");

	(void)arg;
	return aclm_http_reply(res, 200, "text/plain", rest, strlen(rest));
}

static int h_any(struct aclm_http_req *req, struct aclm_http_res *res, void *arg)
{
	const char *m = aclm_http_req_method(req);

	(void)arg;
	return aclm_http_reply(res, 200, "text/plain", m, strlen(m));
}

static int h_fail(struct aclm_http_req *req, struct aclm_http_res *res, void *arg)
{
	(void)arg;
	(void)req;
	aclm_http_reply(res, 200, "text/plain", "discarded", 9);
	return aclm_error(ACLM_ERR_NOTFOUND, "certificate 1234 not found");
}

static int h_crash(struct aclm_http_req *req, struct aclm_http_res *res, void *arg)
{
	(void)arg;
	(void)req;
	(void)res;
	return aclm_error(ACLM_ERR_DB, "database says: secret internals");
}

/* ?kb= kibibytes of a pattern the client checks (default 2048). */
static int h_big(struct aclm_http_req *req, struct aclm_http_res *res, void *arg)
{
	const char *kb = aclm_http_query_get(req, "kb");
	size_t n = (kb != NULL ? strtoul(kb, NULL, 10) : 2048) * 1024;
	unsigned char *b = malloc(n);
	int rc;

	(void)arg;
	if (b == NULL)
		return ACLM_ERR_NOMEM;
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)(i % 251);
	rc = aclm_http_reply(res, 200, "application/octet-stream", b, n);
	free(b);
	return rc;
}

struct deferred {
	ev_timer timer;
	struct aclm_http_res *res;
	struct tsrv *t;
	bool aborted;
};

static void deferred_fire(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct deferred *d = (struct deferred *)w;

	(void)loop;
	(void)revents;
	if (!d->aborted)
		aclm_http_reply(d->res, 200, "text/plain", "later", 5);
	aclm_http_res_finish(d->res);
	free(d);
}

static void deferred_abort(struct aclm_http_res *res, void *arg)
{
	struct deferred *d = arg;

	(void)res;
	d->aborted = true;
	atomic_fetch_add(&d->t->aborts, 1);
}

/* Answers after ?ms= milliseconds (default 100) from a timer on the loop. */
static int h_defer(struct aclm_http_req *req, struct aclm_http_res *res, void *arg)
{
	struct deferred *d = calloc(1, sizeof(*d));
	const char *ms = aclm_http_query_get(req, "ms");

	if (d == NULL)
		return ACLM_ERR_NOMEM;
	d->res = res;
	d->t = arg;
	aclm_http_res_on_abort(res, deferred_abort, d);
	ev_timer_init(&d->timer, deferred_fire, (ms != NULL ? strtod(ms, NULL) : 100) / 1000., 0.);
	ev_timer_start(aclm_http_server_loop(aclm_http_req_server(req)), &d->timer);
	return ACLM_HTTP_PENDING;
}

/* Finishes from inside the handler, then says PENDING: must still work. */
static int h_defer_now(struct aclm_http_req *req, struct aclm_http_res *res, void *arg)
{
	(void)arg;
	(void)req;
	aclm_http_reply(res, 200, "text/plain", "now", 3);
	aclm_http_res_finish(res);
	return ACLM_HTTP_PENDING;
}

static void after(const struct aclm_http_done_info *info, void *arg)
{
	struct tsrv *t = arg;

	atomic_fetch_add(&t->after_calls, 1);
	if (info->status == 404)
		atomic_fetch_add(&t->after_404, 1);
	if (info->status == 400 && strcmp(info->route, "") == 0)
		atomic_fetch_add(&t->after_400_refused, 1);
	if (info->status == 200 && strcmp(info->route, "/items/:id") == 0 &&
	    strcmp(info->method, "GET") == 0 && info->duration >= 0 && info->duration < 5 &&
	    info->body_bytes > 0)
		atomic_fetch_add(&t->after_route_ok, 1);
}

static int before(struct aclm_http_req *req, struct aclm_http_res *res, void *arg)
{
	(void)arg;
	if (aclm_http_req_header(req, "x-deny") != NULL)
		return aclm_http_reply_error(res, 401, "unauthorized", "denied on %s",
		                             aclm_http_req_route(req)) == 0 ? ACLM_HTTP_DONE : -1;
	return ACLM_HTTP_NEXT;
}

/* ---- a certificate for TLS ----------------------------------------------- */

static SSL_CTX *make_server_ctx(X509 **cert_out)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name;
	X509_EXTENSION *ext;
	X509V3_CTX v3;
	SSL_CTX *ctx;

	assert_non_null(key);
	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 4711);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, key);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost",
	                           -1, -1, 0);
	X509_set_issuer_name(x, name);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:localhost");
	assert_non_null(ext);
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	ctx = SSL_CTX_new(TLS_server_method());
	assert_non_null(ctx);
	assert_int_equal(SSL_CTX_use_certificate(ctx, x), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(ctx, key), 1);
	EVP_PKEY_free(key);
	*cert_out = x;
	return ctx;
}

static X509 *g_cert;

/* ---- the fixture ------------------------------------------------------------ */

static struct tsrv *tsrv_start(const struct aclm_http_server_opts *opts_in, bool with_tls)
{
	struct tsrv *t = calloc(1, sizeof(*t));
	struct aclm_http_server_opts opts;

	assert_non_null(t);
	if (opts_in != NULL) {
		opts = *opts_in;
	} else {
		aclm_http_server_opts_init(&opts);
		opts.header_timeout = 2;
		opts.limits.max_body = 4096;
		opts.limits.max_headers = 20;
	}
	snprintf(t->log_path, sizeof(t->log_path), "/tmp/aclm-http-test-XXXXXX");
	t->log_fd = mkstemp(t->log_path);
	assert_true(t->log_fd >= 0);
	opts.access_log_fd = t->log_fd;
	t->loop = ev_loop_new(EVFLAG_AUTO);
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cv, NULL);
	ev_async_init(&t->async, async_cb);
	ev_async_start(t->loop, &t->async);
	assert_int_equal(aclm_http_server_new(t->loop, &opts, &t->srv), ACLM_OK);
	assert_int_equal(aclm_http_listen(t->srv, "127.0.0.1:0", NULL, &t->port), ACLM_OK);
	assert_true(t->port > 0);
	if (aclm_http_listen(t->srv, "[::1]:0", NULL, &t->port6) != ACLM_OK)
		t->port6 = -1;     /* no IPv6 loopback here */
	if (with_tls) {
		t->ssl_ctx = make_server_ctx(&g_cert);
		assert_int_equal(aclm_http_listen(t->srv, "127.0.0.1:0", t->ssl_ctx, &t->tls_port),
		                 ACLM_OK);
	}
	assert_int_equal(aclm_http_route(t->srv, "GET", "/hello", h_hello, NULL), ACLM_OK);
	assert_int_equal(aclm_http_route(t->srv, "POST", "/echo", h_echo, NULL), ACLM_OK);
	assert_int_equal(aclm_http_route(t->srv, "GET", "/items/:id", h_item, NULL), ACLM_OK);
	assert_int_equal(aclm_http_route(t->srv, "GET", "/items/special", h_item_special, NULL),
	                 ACLM_OK);
	assert_int_equal(aclm_http_route(t->srv, "DELETE", "/items/:id", h_item_delete, NULL),
	                 ACLM_OK);
	assert_int_equal(aclm_http_route(t->srv, "GET", "/static/*", h_static, NULL), ACLM_OK);
	assert_int_equal(aclm_http_route(t->srv, "GET", "/fail", h_fail, NULL), ACLM_OK);
	assert_int_equal(aclm_http_route(t->srv, "GET", "/crash", h_crash, NULL), ACLM_OK);
	assert_int_equal(aclm_http_route(t->srv, "GET", "/defer", h_defer, t), ACLM_OK);
	assert_int_equal(aclm_http_route(t->srv, "GET", "/defer-now", h_defer_now, NULL), ACLM_OK);
	assert_int_equal(aclm_http_route(t->srv, "GET", "/big", h_big, NULL), ACLM_OK);
	assert_int_equal(aclm_http_route(t->srv, "*", "/any/*", h_any, NULL), ACLM_OK);
	assert_int_equal(aclm_http_route(t->srv, "GET", "/bad:pattern/*/x", h_hello, NULL),
	                 ACLM_ERR_USAGE);
	aclm_http_server_set_before(t->srv, before, NULL);
	aclm_http_server_set_after(t->srv, after, t);
	assert_int_equal(pthread_create(&t->th, NULL, loop_main, t), 0);
	return t;
}

static void stop_fn(struct tsrv *t, void *arg)
{
	(void)arg;
	aclm_http_server_free(t->srv);
	t->srv = NULL;
	ev_async_stop(t->loop, &t->async);
	ev_break(t->loop, EVBREAK_ALL);
}

static void tsrv_stop(struct tsrv *t)
{
	if (t->srv != NULL)
		in_loop(t, stop_fn, NULL);
	else
		in_loop(t, stop_fn, NULL);
	pthread_join(t->th, NULL);
	ev_loop_destroy(t->loop);
	SSL_CTX_free(t->ssl_ctx);
	close(t->log_fd);
	unlink(t->log_path);
	pthread_mutex_destroy(&t->mu);
	pthread_cond_destroy(&t->cv);
	free(t);
}

/* ---- a small HTTP client --------------------------------------------------- */

struct client {
	int fd;
	SSL *ssl;
	SSL_CTX *ctx;
	char buf[65536];
	size_t len;
};

struct resp {
	int status;
	char head[8192];
	char body[16384];
	size_t body_len;
};

static int tcp_connect(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct timeval tv = { .tv_sec = 5 };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;

	if (fd < 0)
		return -1;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static struct client *cl_open(int port)
{
	struct client *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	c->fd = tcp_connect(port);
	assert_true(c->fd >= 0);
	return c;
}

static struct client *cl_open_tls(int port)
{
	struct client *c = cl_open(port);
	X509_STORE *store;

	c->ctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(c->ctx);
	store = SSL_CTX_get_cert_store(c->ctx);
	assert_int_equal(X509_STORE_add_cert(store, g_cert), 1);
	SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
	c->ssl = SSL_new(c->ctx);
	SSL_set_fd(c->ssl, c->fd);
	SSL_set_tlsext_host_name(c->ssl, "localhost");
	SSL_set1_host(c->ssl, "localhost");
	if (SSL_connect(c->ssl) != 1)
		fail_msg("TLS handshake failed: verify result %ld",
		         SSL_get_verify_result(c->ssl));
	return c;
}

static void cl_close(struct client *c)
{
	if (c == NULL)
		return;
	SSL_free(c->ssl);
	SSL_CTX_free(c->ctx);
	close(c->fd);
	free(c);
}

static void cl_send(struct client *c, const char *data, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = c->ssl != NULL ? SSL_write(c->ssl, data + off, (int)(len - off))
		                           : send(c->fd, data + off, len - off, MSG_NOSIGNAL);

		if (n <= 0)
			fail_msg("send failed: %s", strerror(errno));
		off += (size_t)n;
	}
}

static void cl_sends(struct client *c, const char *s)
{
	cl_send(c, s, strlen(s));
}

/* Read more into the buffer; 0 at EOF/error/timeout. */
static ssize_t cl_fill(struct client *c)
{
	ssize_t n;

	if (c->len == sizeof(c->buf))
		return 0;
	n = c->ssl != NULL ? SSL_read(c->ssl, c->buf + c->len, (int)(sizeof(c->buf) - c->len))
	                   : recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
	if (n <= 0)
		return 0;
	c->len += (size_t)n;
	return n;
}

/* The value of header name in a response head, or NULL (static buffer). */
static const char *resp_header(const struct resp *r, const char *name)
{
	static char v[512];
	const char *p = strstr(r->head, "\r\n");
	size_t nl = strlen(name);

	while (p != NULL && p[2] != '\0') {
		const char *line = p + 2, *e = strstr(line, "\r\n");

		if (e == NULL)
			break;
		if ((size_t)(e - line) > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
			const char *s = line + nl + 1;

			while (*s == ' ')
				s++;
			snprintf(v, sizeof(v), "%.*s", (int)(e - s), s);
			return v;
		}
		p = e;
	}
	return NULL;
}

/* Read one response; head_only: a response to HEAD (no body). */
static int cl_response(struct client *c, struct resp *r, bool head_only)
{
	char *end;
	size_t hlen, blen = 0;
	const char *cl;

	memset(r, 0, sizeof(*r));
	while ((end = memmem(c->buf, c->len, "\r\n\r\n", 4)) == NULL)
		if (cl_fill(c) == 0)
			return -1;
	hlen = (size_t)(end - c->buf) + 4;
	if (hlen >= sizeof(r->head))
		return -1;
	memcpy(r->head, c->buf, hlen);
	r->status = (int)strtol(r->head + 9, NULL, 10);
	cl = resp_header(r, "Content-Length");
	if (cl != NULL && !head_only)
		blen = strtoul(cl, NULL, 10);
	while (c->len < hlen + blen)
		if (cl_fill(c) == 0)
			return -1;
	if (blen >= sizeof(r->body))
		return -1;
	memcpy(r->body, c->buf + hlen, blen);
	r->body_len = blen;
	memmove(c->buf, c->buf + hlen + blen, c->len - hlen - blen);
	c->len -= hlen + blen;
	return r->status;
}

/* The server closed: EOF (or reset) without any more bytes. */
static bool cl_closed(struct client *c)
{
	char b;
	ssize_t n;

	if (c->len > 0)
		return false;
	n = c->ssl != NULL ? SSL_read(c->ssl, &b, 1) : recv(c->fd, &b, 1, 0);
	if (n > 0)
		return false;
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && c->ssl == NULL)
		return false;   /* timeout: still open */
	return true;
}

static int request(struct client *c, const char *req, struct resp *r)
{
	cl_sends(c, req);
	return cl_response(c, r, strncmp(req, "HEAD ", 5) == 0);
}

/* ---- tests --------------------------------------------------------------- */

static struct tsrv *g;   /* the shared server of most tests */

static int setup(void **state)
{
	(void)state;
	g = tsrv_start(NULL, true);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tsrv_stop(g);
	X509_free(g_cert);
	g_cert = NULL;
	return 0;
}

static void test_keepalive(void **state)
{
	struct client *c = cl_open(g->port);
	struct resp r;

	(void)state;
	for (int i = 0; i < 5; i++) {
		assert_int_equal(request(c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", &r), 200);
		assert_int_equal(r.body_len, 6);
		assert_memory_equal(r.body, "hello\n", 6);
		assert_string_equal(resp_header(&r, "Server"), "aclm");
		assert_string_equal(resp_header(&r, "Content-Type"), "text/plain");
		assert_non_null(resp_header(&r, "Date"));
		assert_true(strstr(resp_header(&r, "Date"), " GMT") != NULL);
		assert_null(resp_header(&r, "Connection"));
	}
	/* HTTP/1.0 with keep-alive is kept, and says so */
	assert_int_equal(request(c, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &r),
	                 200);
	assert_string_equal(resp_header(&r, "Connection"), "keep-alive");
	/* Connection: close is honoured */
	assert_int_equal(request(c, "GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
	                         &r), 200);
	assert_string_equal(resp_header(&r, "Connection"), "close");
	assert_true(cl_closed(c));
	cl_close(c);
	/* HTTP/1.0 without keep-alive closes */
	c = cl_open(g->port);
	assert_int_equal(request(c, "GET /hello HTTP/1.0\r\n\r\n", &r), 200);
	assert_string_equal(resp_header(&r, "Connection"), "close");
	assert_true(cl_closed(c));
	cl_close(c);
}

static void test_pipelining(void **state)
{
	struct client *c = cl_open(g->port);
	struct resp r;

	(void)state;
	cl_sends(c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"
	            "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nabcde"
	            "GET /defer?ms=30 HTTP/1.1\r\nHost: t\r\n\r\n"
	            "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
	            "3\r\nxyz\r\n0\r\n\r\n"
	            "GET /items/42?limit=7 HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_int_equal(cl_response(c, &r, false), 200);
	assert_memory_equal(r.body, "hello\n", 6);
	assert_int_equal(cl_response(c, &r, false), 200);
	assert_int_equal(r.body_len, 5);
	assert_memory_equal(r.body, "abcde", 5);
	assert_int_equal(cl_response(c, &r, false), 200);   /* deferred, still in order */
	assert_memory_equal(r.body, "later", 5);
	assert_int_equal(cl_response(c, &r, false), 200);
	assert_memory_equal(r.body, "xyz", 3);
	assert_int_equal(cl_response(c, &r, false), 200);
	assert_non_null(strstr(r.body, "\"id\":\"42\""));
	assert_non_null(strstr(r.body, "\"limit\":\"7\""));
	cl_close(c);
}

static void test_routing(void **state)
{
	struct client *c = cl_open(g->port);
	struct resp r;

	(void)state;
	assert_int_equal(request(c, "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n", &r), 404);
	assert_string_equal(resp_header(&r, "Content-Type"), "application/json");
	assert_non_null(strstr(r.body, "\"error\":\"not_found\""));
	assert_int_equal(request(c, "PUT /items/1 HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
	                         &r), 405);
	assert_string_equal(resp_header(&r, "Allow"), "GET, HEAD, DELETE, OPTIONS");
	assert_int_equal(request(c, "OPTIONS /items/1 HTTP/1.1\r\nHost: t\r\n\r\n", &r), 204);
	assert_string_equal(resp_header(&r, "Allow"), "GET, HEAD, DELETE, OPTIONS");
	assert_null(resp_header(&r, "Content-Length"));
	assert_int_equal(request(c, "DELETE /items/1 HTTP/1.1\r\nHost: t\r\n\r\n", &r), 204);
	/* the literal beats the parameter, whatever the order of registration */
	assert_int_equal(request(c, "GET /items/special HTTP/1.1\r\nHost: t\r\n\r\n", &r), 200);
	assert_memory_equal(r.body, "special", 7);
	/* parameters are decoded; the query too */
	assert_int_equal(request(c, "GET /items/a%20b?limit=1%2B1&x HTTP/1.1\r\nHost: t\r\n\r\n",
	                         &r), 200);
	assert_non_null(strstr(r.body, "\"id\":\"a b\""));
	assert_non_null(strstr(r.body, "\"limit\":\"1+1\""));
	assert_non_null(strstr(r.body, "\"route\":\"/items/:id\""));
	assert_non_null(strstr(r.body, "\"tls\":false"));
	/* HEAD: the headers of GET, no body */
	assert_int_equal(request(c, "HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n", &r), 200);
	assert_string_equal(resp_header(&r, "Content-Length"), "6");
	assert_int_equal(request(c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", &r), 200);
	assert_memory_equal(r.body, "hello\n", 6);   /* the stream is still in step */
	/* prefix routes */
	assert_int_equal(request(c, "GET /static/css/site.css HTTP/1.1\r\nHost: t\r\n\r\n", &r),
	                 200);
	assert_memory_equal(r.body, "css/site.css", 12);
	assert_int_equal(request(c, "GET /static HTTP/1.1\r\nHost: t\r\n\r\n", &r), 200);
	assert_int_equal(r.body_len, 0);
	/* method "*" takes every method (HEAD included, without body) */
	assert_int_equal(request(c, "PATCH /any/x HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
	                         &r), 200);
	assert_memory_equal(r.body, "PATCH", 5);
	assert_int_equal(request(c, "HEAD /any HTTP/1.1\r\nHost: t\r\n\r\n", &r), 200);
	assert_string_equal(resp_header(&r, "Content-Length"), "4");
	/* a trailing slash is another path */
	assert_int_equal(request(c, "GET /hello/ HTTP/1.1\r\nHost: t\r\n\r\n", &r), 404);
	/* absolute-form targets route by their path */
	assert_int_equal(request(c, "GET http://t/hello HTTP/1.1\r\nHost: t\r\n\r\n", &r), 200);
	/* handler errors become JSON errors; a 500 hides the message */
	assert_int_equal(request(c, "GET /fail HTTP/1.1\r\nHost: t\r\n\r\n", &r), 404);
	assert_non_null(strstr(r.body, "certificate 1234 not found"));
	assert_int_equal(request(c, "GET /crash HTTP/1.1\r\nHost: t\r\n\r\n", &r), 500);
	assert_null(strstr(r.body, "secret"));
	assert_non_null(strstr(r.body, "\"error\":\"internal\""));
	/* the before-hook answers first */
	assert_int_equal(request(c, "GET /items/3 HTTP/1.1\r\nHost: t\r\nX-Deny: 1\r\n\r\n", &r),
	                 401);
	assert_non_null(strstr(r.body, "denied on /items/:id"));
	/* a finish() from inside the handler is not lost */
	assert_int_equal(request(c, "GET /defer-now HTTP/1.1\r\nHost: t\r\n\r\n", &r), 200);
	assert_memory_equal(r.body, "now", 3);
	cl_close(c);
}

/* Each of these is refused, and the connection is closed after the answer. */
static void test_refused(void **state)
{
	static const struct {
		const char *req;
		int status;
	} cases[] = {
		{ "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n", 413 },
		{ "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
		  "1001\r\n", 413 },
		{ "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
		  "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400 },
		{ "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
		  400 },
		{ "GET /hello HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\n\r\n", 400 },
		{ "GET /hello HTTP/1.1\r\nHost: t\r\nX : a\r\n\r\n", 400 },
		{ "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400 },
		{ "GET /hello HTTP/2.0\r\nHost: t\r\n\r\n", 505 },
		{ "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: br\r\n\r\n", 501 },
		{ "GET /a/%2F/b HTTP/1.1\r\nHost: t\r\n\r\n", 400 },
		{ "GET /static/../secret HTTP/1.1\r\nHost: t\r\n\r\n", 400 },
		{ "GET /static/%2e%2e/secret HTTP/1.1\r\nHost: t\r\n\r\n", 400 },
		{ "GET /static/%zz HTTP/1.1\r\nHost: t\r\n\r\n", 400 },
		{ "GET /static/%00 HTTP/1.1\r\nHost: t\r\n\r\n", 400 },
	};
	char big[8192];
	struct resp r;
	int n;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct client *c = cl_open(g->port);

		if (request(c, cases[i].req, &r) != cases[i].status)
			fail_msg("case %zu: status %d, want %d", i, r.status, cases[i].status);
		assert_string_equal(resp_header(&r, "Connection"), "close");
		assert_true(cl_closed(c));
		cl_close(c);
	}
	/* 431: 21 header fields with a limit of 20, and a huge header */
	{
		struct client *c = cl_open(g->port);
		size_t off = (size_t)snprintf(big, sizeof(big), "GET /hello HTTP/1.1\r\nHost: t\r\n");

		for (int i = 0; i < 20; i++)
			off += (size_t)snprintf(big + off, sizeof(big) - off, "X-%d: v\r\n", i);
		snprintf(big + off, sizeof(big) - off, "\r\n");
		assert_int_equal(request(c, big, &r), 431);
		assert_true(cl_closed(c));
		cl_close(c);
	}
	{
		struct client *c = cl_open(g->port);

		n = snprintf(big, sizeof(big), "GET /hello HTTP/1.1\r\nHost: t\r\nX: ");
		memset(big + n, 'a', sizeof(big) - (size_t)n - 1);
		big[sizeof(big) - 1] = '\0';
		cl_sends(c, big);
		cl_sends(c, big + 100);     /* over 32 KiB of header section */
		cl_sends(c, big + 100);
		cl_sends(c, big + 100);
		cl_sends(c, big + 100);
		assert_int_equal(cl_response(c, &r, false), 431);
		assert_true(cl_closed(c));
		cl_close(c);
	}
	/* 414 */
	{
		struct client *c = cl_open(g->port);

		memset(big, 'a', sizeof(big));
		memcpy(big, "GET /", 5);
		cl_send(c, big, sizeof(big));
		cl_send(c, big + 5, 200);
		assert_int_equal(cl_response(c, &r, false), 414);
		assert_true(cl_closed(c));
		cl_close(c);
	}
}

/* One byte per second: dropped at the header timeout (2 s), while a normal
 * client on another connection gets fast answers all along. */
static void test_slowloris(void **state)
{
	static const char req[] = "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n";
	struct client *slow = cl_open(g->port);
	struct client *fast = cl_open(g->port);
	double t0 = now_s(), worst = 0, dropped_at = 0;
	size_t sent = 0;
	struct resp r;

	(void)state;
	while (now_s() - t0 < 4.0) {
		double el = now_s() - t0;

		if (dropped_at == 0 && el >= (double)sent) {
			if (send(slow->fd, req + sent, 1, MSG_NOSIGNAL) != 1)
				dropped_at = el;
			else
				sent++;
		}
		if (dropped_at == 0) {
			struct pollfd pfd = { .fd = slow->fd, .events = POLLIN };

			if (poll(&pfd, 1, 0) == 1 && cl_closed(slow))
				dropped_at = now_s() - t0;
		}
		{
			double a = now_s();

			assert_int_equal(request(fast, req, &r), 200);
			if (now_s() - a > worst)
				worst = now_s() - a;
		}
		usleep(20000);
	}
	if (dropped_at == 0)
		fail_msg("the slow client was not dropped");
	if (dropped_at < 1.8 || dropped_at > 3.9)
		fail_msg("slow client dropped after %.2f s (header timeout 2 s)", dropped_at);
	if (worst > 0.5)
		fail_msg("a normal request took %.3f s while the slow client was connected", worst);
	assert_true(sent < sizeof(req) - 1);
	cl_close(slow);
	cl_close(fast);
}

/* 1,000 idle keep-alive connections, and new requests still succeed. */
static void test_many_idle(void **state)
{
	struct rlimit rl;
	int n = 1000;
	int *fds;
	struct resp r;
	struct client *c;
	double t0;

	(void)state;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < 2 * (rlim_t)n + 200) {
		rl.rlim_cur = rl.rlim_max < 2 * (rlim_t)n + 200 ? rl.rlim_max : 2 * (rlim_t)n + 200;
		assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	}
	if (rl.rlim_cur < 2 * (rlim_t)n + 200)
		n = (int)(rl.rlim_cur - 200) / 2;
	assert_true(n >= 500);
	fds = calloc((size_t)n, sizeof(int));
	assert_non_null(fds);
	for (int i = 0; i < n; i++) {
		static const char req[] = "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n";
		char buf[512];
		ssize_t got = 0;

		fds[i] = tcp_connect(g->port);
		assert_true(fds[i] >= 0);
		assert_int_equal(send(fds[i], req, sizeof(req) - 1, MSG_NOSIGNAL), sizeof(req) - 1);
		while (got == 0 || memmem(buf, (size_t)got, "hello\n", 6) == NULL) {
			ssize_t k = recv(fds[i], buf + got, sizeof(buf) - (size_t)got, 0);

			assert_true(k > 0);
			got += k;
		}
	}
	assert_true(aclm_http_server_connections(g->srv) >= (unsigned)n);
	t0 = now_s();
	c = cl_open(g->port);
	assert_int_equal(request(c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", &r), 200);
	assert_true(now_s() - t0 < 1.0);
	cl_close(c);
	/* and the idle ones still answer */
	{
		struct client one = { .fd = fds[0] };

		assert_int_equal(request(&one, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", &r), 200);
	}
	for (int i = 0; i < n; i++)
		close(fds[i]);
	free(fds);
}

static void test_tls(void **state)
{
	struct client *c = cl_open_tls(g->tls_port);
	struct resp r;

	(void)state;
	assert_int_equal(request(c, "GET /items/9 HTTP/1.1\r\nHost: t\r\n\r\n", &r), 200);
	assert_non_null(strstr(r.body, "\"tls\":true"));
	assert_int_equal(request(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc",
	                         &r), 200);
	assert_memory_equal(r.body, "abc", 3);
	/* pipelined over TLS */
	cl_sends(c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\nGET /defer?ms=20 HTTP/1.1\r\nHost: t\r\n\r\n"
	            "GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
	assert_int_equal(cl_response(c, &r, false), 200);
	assert_int_equal(cl_response(c, &r, false), 200);
	assert_memory_equal(r.body, "later", 5);
	assert_int_equal(cl_response(c, &r, false), 200);
	assert_string_equal(resp_header(&r, "Connection"), "close");
	assert_true(cl_closed(c));
	cl_close(c);
	/* plain HTTP to the TLS port is dropped, the port keeps working */
	c = cl_open(g->tls_port);
	cl_sends(c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_true(cl_closed(c));
	cl_close(c);
	c = cl_open_tls(g->tls_port);
	assert_int_equal(request(c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", &r), 200);
	cl_close(c);
}

static void test_deferred_abort(void **state)
{
	struct client *c = cl_open(g->port);
	int before_aborts = atomic_load(&g->aborts);
	double t0;
	struct resp r;

	(void)state;
	cl_sends(c, "GET /defer?ms=300 HTTP/1.1\r\nHost: t\r\n\r\n");
	usleep(50000);
	/* a reset while pending: the handler hears of it (abort callback), its
	 * timer still fires and finish() only frees */
	{
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	cl_close(c);
	for (int i = 0; i < 50 && atomic_load(&g->aborts) == before_aborts; i++)
		usleep(10000);
	assert_int_equal(atomic_load(&g->aborts), before_aborts + 1);
	usleep(350000);   /* past the handler's timer: finish() on a dead connection */
	/* the server is fine */
	c = cl_open(g->port);
	t0 = now_s();
	assert_int_equal(request(c, "GET /defer?ms=10 HTTP/1.1\r\nHost: t\r\n\r\n", &r), 200);
	assert_true(now_s() - t0 < 1.0);
	cl_close(c);
	assert_int_equal(atomic_load(&g->aborts), before_aborts + 1);
}

static void test_expect_continue(void **state)
{
	struct client *c = cl_open(g->port);
	struct resp r;

	(void)state;
	cl_sends(c, "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
	            "Content-Length: 4\r\n\r\n");
	assert_int_equal(cl_response(c, &r, true), 100);
	cl_sends(c, "data");
	assert_int_equal(cl_response(c, &r, false), 200);
	assert_memory_equal(r.body, "data", 4);
	/* too large: 413 at once, no 100 */
	cl_sends(c, "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
	            "Content-Length: 99999\r\n\r\n");
	assert_int_equal(cl_response(c, &r, false), 413);
	assert_true(cl_closed(c));
	cl_close(c);
}

static void test_after_hook(void **state)
{
	struct client *c = cl_open(g->port);
	int calls = atomic_load(&g->after_calls), nf = atomic_load(&g->after_404);
	int ok = atomic_load(&g->after_route_ok), bad = atomic_load(&g->after_400_refused);
	struct resp r;

	(void)state;
	assert_int_equal(request(c, "GET /items/5 HTTP/1.1\r\nHost: t\r\n\r\n", &r), 200);
	assert_int_equal(request(c, "GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n", &r), 404);
	assert_int_equal(request(c, "GET / HTTP/1.1\r\n\r\n", &r), 400);   /* no Host */
	assert_true(cl_closed(c));
	cl_close(c);
	for (int i = 0; i < 100 && atomic_load(&g->after_calls) < calls + 3; i++)
		usleep(10000);
	assert_int_equal(atomic_load(&g->after_calls), calls + 3);
	assert_int_equal(atomic_load(&g->after_404), nf + 1);
	assert_int_equal(atomic_load(&g->after_route_ok), ok + 1);
	assert_int_equal(atomic_load(&g->after_400_refused), bad + 1);
}

static void test_access_log(void **state)
{
	struct client *c = cl_open(g->port);
	struct resp r;
	char buf[1 << 16];
	bool found = false;

	(void)state;
	assert_int_equal(request(c, "GET /items/77?token=s3cr3t HTTP/1.1\r\nHost: t\r\n"
	                         "Authorization: Bearer tok-XYZ\r\nCookie: sid=C00KIE\r\n\r\n",
	                         &r), 200);
	cl_close(c);
	for (int tries = 0; tries < 100 && !found; tries++) {
		ssize_t n = pread(g->log_fd, buf, sizeof(buf) - 1, 0);
		off_t size = lseek(g->log_fd, 0, SEEK_END);
		char *line;

		if (size > (off_t)sizeof(buf) - 1)
			n = pread(g->log_fd, buf, sizeof(buf) - 1, size - (off_t)sizeof(buf) + 1);
		assert_true(n >= 0);
		buf[n] = '\0';
		line = strstr(buf, "\"path\":\"/items/77\"");
		if (line == NULL) {
			usleep(10000);
			continue;
		}
		found = true;
		while (line > buf && line[-1] != '\n')
			line--;
		*strchrnul(line, '\n') = '\0';
		{
			json_error_t je;
			json_t *j = json_loads(line, 0, &je);

			if (j == NULL)
				fail_msg("access log line is not JSON: %s", line);
			assert_string_equal(json_string_value(json_object_get(j, "method")), "GET");
			assert_int_equal(json_integer_value(json_object_get(j, "status")), 200);
			assert_true(json_is_integer(json_object_get(j, "duration_us")));
			assert_true(json_is_integer(json_object_get(j, "bytes")));
			assert_true(json_is_false(json_object_get(j, "tls")));
			assert_non_null(strstr(json_string_value(json_object_get(j, "peer")),
			                       "127.0.0.1:"));
			assert_non_null(json_string_value(json_object_get(j, "time")));
			json_decref(j);
		}
		assert_null(strstr(line, "s3cr3t"));
		assert_null(strstr(line, "tok-XYZ"));
		assert_null(strstr(line, "C00KIE"));
	}
	assert_true(found);
	assert_null(strstr(buf, "s3cr3t"));
	assert_null(strstr(buf, "tok-XYZ"));
}

/* Read a whole response of /big and check every byte. */
static void read_big(struct client *c, size_t total)
{
	size_t got = 0;
	struct resp r;
	char *end;
	size_t hlen;

	while ((end = memmem(c->buf, c->len, "\r\n\r\n", 4)) == NULL)
		assert_true(cl_fill(c) > 0);
	hlen = (size_t)(end - c->buf) + 4;
	memcpy(r.head, c->buf, hlen);
	r.head[hlen] = '\0';
	assert_int_equal(strtoul(resp_header(&r, "Content-Length"), NULL, 10), total);
	memmove(c->buf, c->buf + hlen, c->len - hlen);
	c->len -= hlen;
	for (;;) {
		for (size_t i = 0; i < c->len && got < total; i++, got++)
			if ((unsigned char)c->buf[i] != (unsigned char)(got % 251))
				fail_msg("byte %zu of the body is wrong", got);
		c->len = 0;
		if (got == total)
			break;
		assert_true(cl_fill(c) > 0);
	}
}

static void test_big_response(void **state)
{
	struct client *c = cl_open(g->port);
	struct resp r;

	(void)state;
	/* 16 MiB is more than loopback socket buffers hold: the server meets a
	 * full socket and resumes on EV_WRITE. */
	cl_sends(c, "GET /big?kb=16384 HTTP/1.1\r\nHost: t\r\n\r\n");
	usleep(100000);
	read_big(c, 16384 * 1024);
	assert_int_equal(request(c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", &r), 200);
	cl_close(c);
	c = cl_open_tls(g->tls_port);
	cl_sends(c, "GET /big?kb=8192 HTTP/1.1\r\nHost: t\r\n\r\n");
	usleep(100000);
	read_big(c, 8192 * 1024);
	assert_int_equal(request(c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", &r), 200);
	cl_close(c);
}

static void test_ipv6(void **state)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6 };
	struct client c = { .fd = -1 };
	struct resp r;

	(void)state;
	if (g->port6 < 0)
		skip();
	sa.sin6_port = htons((uint16_t)g->port6);
	sa.sin6_addr = in6addr_loopback;
	c.fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(c.fd >= 0);
	assert_int_equal(connect(c.fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(request(&c, "GET /items/6 HTTP/1.1\r\nHost: [::1]\r\n\r\n", &r), 200);
	close(c.fd);
}

/* ---- servers of their own -------------------------------------------------- */

/* A client that does not read its response is dropped after the write
 * timeout (0.5 s without progress); the server goes on serving. */
static void test_write_timeout(void **state)
{
	struct aclm_http_server_opts o;
	struct tsrv *t;
	struct client *c, *d;
	struct resp r;
	size_t got = 0;
	int small = 4096;
	char buf[65536];

	(void)state;
	aclm_http_server_opts_init(&o);
	o.write_timeout = 0.5;
	t = tsrv_start(&o, false);
	c = cl_open(t->port);
	setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	cl_sends(c, "GET /big?kb=16384 HTTP/1.1\r\nHost: t\r\n\r\n");
	d = cl_open(t->port);
	assert_int_equal(request(d, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", &r), 200);
	usleep(1500000);
	assert_int_equal(request(d, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", &r), 200);
	for (;;) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), 0);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got >= (size_t)16384 * 1024)
		fail_msg("the stalled client got the whole response (%zu bytes)", got);
	cl_close(c);
	cl_close(d);
	tsrv_stop(t);
}


static void limit_test(void **state)
{
	struct aclm_http_server_opts o;
	struct tsrv *t;
	struct client *a, *b, *c;
	struct resp r;

	(void)state;
	aclm_http_server_opts_init(&o);
	o.max_connections = 2;
	o.max_requests_per_connection = 3;
	t = tsrv_start(&o, false);
	a = cl_open(t->port);
	b = cl_open(t->port);
	assert_int_equal(request(a, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", &r), 200);
	assert_int_equal(request(b, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", &r), 200);
	assert_null(resp_header(&r, "Connection"));
	assert_int_equal(request(b, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", &r), 200);
	assert_null(resp_header(&r, "Connection"));
	assert_int_equal(request(b, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", &r), 200);
	assert_string_equal(resp_header(&r, "Connection"), "close");   /* the third */
	assert_true(cl_closed(b));
	cl_close(b);
	usleep(100000);
	b = cl_open(t->port);
	assert_int_equal(request(b, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", &r), 200);
	c = cl_open(t->port);
	assert_int_equal(cl_response(c, &r, false), 503);
	assert_true(cl_closed(c));
	cl_close(c);
	cl_close(a);
	usleep(100000);   /* the server sees a's close */
	c = cl_open(t->port);
	assert_int_equal(request(c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", &r), 200);
	cl_close(c);
	cl_close(b);
	tsrv_stop(t);
}

static void on_shutdown_done(struct aclm_http_server *srv, void *arg)
{
	struct tsrv *t = arg;

	(void)srv;
	atomic_store(&t->shutdown_done, 1);
}

static void shutdown_fn(struct tsrv *t, void *arg)
{
	(void)arg;
	aclm_http_server_shutdown(t->srv, on_shutdown_done, t);
}

/* In flight: answered (Connection: close); idle: closed; new: refused. */
static void test_shutdown(void **state)
{
	struct tsrv *t = tsrv_start(NULL, false);
	struct client *busy = cl_open(t->port), *idle = cl_open(t->port), *half = cl_open(t->port);
	struct resp r;
	double t0;

	(void)state;
	assert_int_equal(request(idle, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", &r), 200);
	cl_sends(half, "GET /hello HTTP/1.1\r\nHo");
	cl_sends(busy, "GET /defer?ms=300 HTTP/1.1\r\nHost: t\r\n\r\n");
	usleep(50000);
	t0 = now_s();
	in_loop(t, shutdown_fn, NULL);
	assert_true(cl_closed(idle));
	assert_true(now_s() - t0 < 1.0);
	assert_int_equal(atomic_load(&t->shutdown_done), 0);
	assert_true(tcp_connect(t->port) < 0);
	cl_sends(half, "st: t\r\n\r\n");          /* a request begun before still completes */
	assert_int_equal(cl_response(half, &r, false), 200);
	assert_string_equal(resp_header(&r, "Connection"), "close");
	assert_int_equal(cl_response(busy, &r, false), 200);
	assert_memory_equal(r.body, "later", 5);
	assert_string_equal(resp_header(&r, "Connection"), "close");
	assert_true(cl_closed(busy));
	assert_true(cl_closed(half));
	for (int i = 0; i < 100 && atomic_load(&t->shutdown_done) == 0; i++)
		usleep(20000);
	assert_int_equal(atomic_load(&t->shutdown_done), 1);
	cl_close(busy);
	cl_close(idle);
	cl_close(half);
	tsrv_stop(t);
}

/* Seconds until the server closes c (EOF or reset), at most 3. */
static double time_to_close(struct client *c)
{
	double t0 = now_s();
	struct timeval tv = { .tv_sec = 3 };
	char b;

	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (recv(c->fd, &b, 1, 0) > 0)
		return -1;          /* the server sent something */
	return now_s() - t0;
}

/* Handshake, idle keep-alive and body timeouts, each 0.3 s here. */
static void test_timeouts(void **state)
{
	struct aclm_http_server_opts o;
	struct tsrv *t;
	struct client *c;
	struct resp r;
	double d;

	(void)state;
	aclm_http_server_opts_init(&o);
	o.handshake_timeout = 0.3;
	o.idle_timeout = 0.3;
	o.body_timeout = 0.3;
	t = tsrv_start(&o, true);
	c = cl_open(t->tls_port);              /* silent TLS client */
	d = time_to_close(c);
	cl_close(c);
	if (d < 0.25 || d > 1.5)
		fail_msg("handshake timeout after %.2f s", d);
	c = cl_open(t->port);                  /* idle after one request */
	assert_int_equal(request(c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", &r), 200);
	d = time_to_close(c);
	cl_close(c);
	if (d < 0.25 || d > 1.5)
		fail_msg("idle timeout after %.2f s", d);
	c = cl_open(t->port);                  /* body never completes */
	cl_sends(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nab");
	d = time_to_close(c);
	cl_close(c);
	if (d < 0.25 || d > 1.5)
		fail_msg("body timeout after %.2f s", d);
	c = cl_open_tls(t->tls_port);          /* and the server still serves */
	assert_int_equal(request(c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", &r), 200);
	cl_close(c);
	tsrv_stop(t);
	X509_free(g_cert);
	g_cert = NULL;
}

static void test_listen_errors(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct aclm_http_server *srv = NULL;
	int port = 0;

	(void)state;
	assert_int_equal(aclm_http_server_new(loop, NULL, &srv), ACLM_OK);
	assert_int_equal(aclm_http_listen(srv, "127.0.0.1", NULL, &port), ACLM_ERR_USAGE);
	assert_int_equal(aclm_http_listen(srv, "127.0.0.1:70000", NULL, &port), ACLM_ERR_USAGE);
	assert_int_equal(aclm_http_listen(srv, "example.com:80", NULL, &port), ACLM_ERR_USAGE);
	assert_int_equal(aclm_http_listen(srv, "[::1:80", NULL, &port), ACLM_ERR_USAGE);
	assert_int_equal(aclm_http_listen(srv, "[::1]:0", NULL, &port), ACLM_OK);
	assert_true(port > 0);
	assert_int_equal(aclm_http_listen(srv, "127.0.0.1:0", NULL, &port), ACLM_OK);
	{
		char addr[32];

		snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
		assert_int_equal(aclm_http_listen(srv, addr, NULL, NULL), ACLM_ERR_IO);
		assert_non_null(strstr(aclm_errmsg(), "bind"));
	}
	aclm_http_server_free(srv);
	ev_loop_destroy(loop);
}

int main(void)
{
	const struct CMUnitTest shared[] = {
		cmocka_unit_test(test_keepalive),
		cmocka_unit_test(test_pipelining),
		cmocka_unit_test(test_routing),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_expect_continue),
		cmocka_unit_test(test_tls),
		cmocka_unit_test(test_deferred_abort),
		cmocka_unit_test(test_access_log),
		cmocka_unit_test(test_after_hook),
		cmocka_unit_test(test_big_response),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_many_idle),
		cmocka_unit_test(test_slowloris),
	};
	const struct CMUnitTest own[] = {
		cmocka_unit_test(limit_test),
		cmocka_unit_test(test_shutdown),
		cmocka_unit_test(test_write_timeout),
		cmocka_unit_test(test_timeouts),
		cmocka_unit_test(test_listen_errors),
	};
	int rc;

	/* HTTP_TEST_FILTER=test_tls runs one test (cmocka's wildcard syntax). */
	if (getenv("HTTP_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("HTTP_TEST_FILTER"));
	rc = cmocka_run_group_tests_name("http server (shared)", shared, setup, teardown);
	rc |= cmocka_run_group_tests_name("http server (own servers)", own, NULL, NULL);
	return rc;
}
