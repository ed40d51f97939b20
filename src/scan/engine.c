/* The scan engine: one libev loop, non-blocking sockets, OpenSSL in
 * non-blocking mode; a connection is a small state machine (a table of
 * handlers), an endpoint is a set of probe connections (probe.c).
 *
 * Bounds: at most `concurrency` connections and as many endpoints in
 * flight; at most `per_host` connections to one address; a new connection
 * only when the rate allows it; every connection has one timer (connect
 * timeout, then the handshake timeout that also covers STARTTLS), so a
 * silent, dripping or endless server costs one timeout.  Memory per
 * connection is OpenSSL's plus a 1 KiB line buffer; a chain is bounded by
 * the probe contexts' max_cert_list. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <ev.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "aclm/err.h"
#include "aclm/pqprov.h"
#include "aclm/str.h"
#include "aclm/timeutil.h"
#include "scan-int.h"

struct scan_host {
	char ip[64];
	int active;
	struct scan_host *next;    /* hash chain */
};

#define HOST_BUCKETS 4096

struct scan_ep {
	struct aclm_scan_result res;
	struct scan_host *host;
	uint64_t todo;             /* probe indices not yet started */
	int running;
	struct scan_ep *prev, *next;  /* the active list */
};

enum conn_state {
	C_CONNECT = 0,
	C_STARTTLS,
	C_HANDSHAKE,
	C_HELLO,           /* crafted ClientHello sent, reading the answer */
	C_N_STATES,
};

struct scan_conn {
	ev_io io;
	ev_timer timer;
	struct aclm_scan *s;
	struct scan_ep *ep;
	const struct probe_def *def;
	int fd;
	enum conn_state state;
	SSL *ssl;
	struct starttls st;
	struct hello_reader *hello;   /* C_HELLO only */
	int raw_accepted;             /* -1: not a crafted-hello probe */
};

struct aclm_scan {
	struct aclm_scan_opts o;
	OSSL_LIB_CTX *libctx;
	struct probe_def *defs;
	size_t n_defs;
	struct chain_ctx *chain;

	struct ev_loop *loop;
	ev_timer pump_timer, progress_timer;
	const struct aclm_scan_source *src;
	aclm_scan_result_fn on_result;
	aclm_scan_progress_fn on_progress;
	void *ctx;
	bool src_done;
	bool pumping;              /* pump() is on the stack: no recursion */
	int stop_rc;

	struct scan_host *hosts[HOST_BUCKETS];
	struct scan_ep *active;    /* endpoints with probes to start or running */
	size_t n_active;
	int in_flight;
	double tokens, last_refill, started_at;
	struct aclm_scan_progress prog;
};

/* --- names ------------------------------------------------------------- */

const char *aclm_scan_reason_name(enum aclm_scan_reason r)
{
	switch (r) {
	case ACLM_SCAN_OK: return "ok";
	case ACLM_SCAN_UNRESOLVED: return "unresolved";
	case ACLM_SCAN_REFUSED: return "refused";
	case ACLM_SCAN_CONNECT_TIMEOUT: return "connect-timeout";
	case ACLM_SCAN_UNREACHABLE: return "unreachable";
	case ACLM_SCAN_TIMEOUT: return "timeout";
	case ACLM_SCAN_RESET: return "reset";
	case ACLM_SCAN_NOT_TLS: return "not-tls";
	case ACLM_SCAN_STARTTLS: return "starttls";
	case ACLM_SCAN_HANDSHAKE: return "handshake";
	}
	return "unknown";
}

void aclm_scan_result_free(struct aclm_scan_result *r)
{
	for (size_t i = 0; i < r->n_chain; i++)
		aclm_cert_free(r->chain[i]);
	free(r->chain);
	r->chain = NULL;
	r->n_chain = 0;
}

/* --- set-up -------------------------------------------------------------- */

int aclm_scan_new(const struct aclm_scan_opts *opts, struct aclm_scan **out)
{
	struct aclm_scan *s = calloc(1, sizeof(*s));
	int rc;

	*out = NULL;
	if (s == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	s->o = *opts;
	if (s->o.concurrency <= 0)
		s->o.concurrency = 256;
	if (s->o.per_host <= 0)
		s->o.per_host = 32;
	if (s->o.connect_timeout <= 0)
		s->o.connect_timeout = 3;
	if (s->o.handshake_timeout <= 0)
		s->o.handshake_timeout = 5;
	s->libctx = OSSL_LIB_CTX_new();
	if (s->libctx == NULL) {
		free(s);
		return aclm_error_openssl(ACLM_ERR_CRYPTO, "scanner: no OpenSSL library context");
	}
	if (aclm_pqprov_load(s->libctx) != 0) {
		rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "scanner: the %s provider did not load "
		                        "(its self-test failed?)", ACLM_PQ_PROVIDER_NAME);
		aclm_scan_free(s);
		return rc;
	}
	if ((rc = probes_build(s->libctx, &s->defs, &s->n_defs)) != ACLM_OK ||
	    (rc = chain_ctx_new(s->libctx, &s->chain)) != ACLM_OK) {
		aclm_scan_free(s);
		return rc;
	}
	*out = s;
	return ACLM_OK;
}

void aclm_scan_free(struct aclm_scan *s)
{
	if (s == NULL)
		return;
	probes_free(s->defs, s->n_defs);
	chain_ctx_free(s->chain);
	for (size_t i = 0; i < HOST_BUCKETS; i++) {
		struct scan_host *h = s->hosts[i], *n;
		for (; h != NULL; h = n) {
			n = h->next;
			free(h);
		}
	}
	OSSL_LIB_CTX_free(s->libctx);
	free(s);
}

int aclm_scan_add_anchor(struct aclm_scan *s, const unsigned char *der, size_t len)
{
	return chain_ctx_add(s->chain, der, len, true);
}

int aclm_scan_add_intermediate(struct aclm_scan *s, const unsigned char *der, size_t len)
{
	return chain_ctx_add(s->chain, der, len, false);
}

/* --- hosts and endpoints ----------------------------------------------- */

static struct scan_host *host_get(struct aclm_scan *s, const char *ip)
{
	unsigned h = 5381;
	struct scan_host *x;

	for (const char *p = ip; *p; p++)
		h = h * 33 + (unsigned char)*p;
	h %= HOST_BUCKETS;
	for (x = s->hosts[h]; x != NULL; x = x->next)
		if (strcmp(x->ip, ip) == 0)
			return x;
	x = calloc(1, sizeof(*x));
	if (x == NULL)
		return NULL;
	aclm_strlcpy(x->ip, ip, sizeof(x->ip));
	x->next = s->hosts[h];
	s->hosts[h] = x;
	return x;
}

static void active_remove(struct aclm_scan *s, struct scan_ep *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		s->active = e->next;
	if (e->next)
		e->next->prev = e->prev;
	s->n_active--;
}

static void active_add(struct aclm_scan *s, struct scan_ep *e)
{
	e->prev = NULL;
	e->next = s->active;
	if (s->active)
		s->active->prev = e;
	s->active = e;
	s->n_active++;
}

static void pump(struct aclm_scan *s);

static void ep_finish(struct aclm_scan *s, struct scan_ep *e)
{
	int rc;

	active_remove(s, e);
	chain_analyse(s->chain, &e->res, e->res.scanned_at);
	s->prog.done++;
	rc = s->on_result ? s->on_result(s->ctx, &e->res) : 0;
	if (rc != 0 && s->stop_rc == 0) {
		s->stop_rc = rc;
		s->src_done = true;
	}
	aclm_scan_result_free(&e->res);
	free(e);
}

/* The probes to run after the basic one answered (or failed in a way that
 * still lets others try). */
static uint64_t follow_ups(struct aclm_scan *s, const struct aclm_scan_result *r)
{
	uint64_t todo = 0;
	bool tls13 = strcmp(r->negotiated_version, "TLSv1.3") == 0 || !r->reachable;

	for (size_t i = 1; i < s->n_defs; i++) {
		const struct probe_def *d = &s->defs[i];
		switch (d->kind) {
		case PROBE_BASIC: break;
		case PROBE_VERSION:
			if (!s->o.no_versions && !(r->versions_probed & (1u << d->index)))
				todo |= (uint64_t)1 << i;
			break;
		case PROBE_GROUP:
			if (!s->o.no_groups)
				todo |= (uint64_t)1 << i;
			break;
		case PROBE_PQ_GROUP:
			/* PQ groups are TLS 1.3 only: a server that chose an older
			 * version when offered 1.3 has none. */
			if (!s->o.no_groups && tls13)
				todo |= (uint64_t)1 << i;
			break;
		}
	}
	return todo;
}

/* --- connections: the state machine --------------------------------------- */

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents);
static void conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);

static void set_fail(struct scan_conn *c, enum aclm_scan_reason why, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Only the basic probe's failure says why an endpoint is unreachable. */
static void set_fail(struct scan_conn *c, enum aclm_scan_reason why, const char *fmt, ...)
{
	struct aclm_scan_result *r = &c->ep->res;
	va_list ap;

	if (c->def->kind != PROBE_BASIC || r->reachable)
		return;
	r->reason = why;
	va_start(ap, fmt);
	vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
	va_end(ap);
}

static void conn_done(struct scan_conn *c, bool ok)
{
	struct aclm_scan *s = c->s;
	struct scan_ep *e = c->ep;

	ev_io_stop(s->loop, &c->io);
	ev_timer_stop(s->loop, &c->timer);
	if (c->raw_accepted >= 0)
		probe_record_raw(c->def, &e->res, c->raw_accepted == 1);
	else
		probe_record(c->def, &e->res, c->ssl, ok);
	free(c->hello);
	if (c->ssl != NULL) {
		if (ok)
			SSL_shutdown(c->ssl);  /* one close_notify, never waited for */
		SSL_free(c->ssl);
	}
	if (c->fd >= 0)
		close(c->fd);
	ERR_clear_error();
	if (c->def->kind == PROBE_BASIC) {
		enum aclm_scan_reason why = e->res.reason;
		/* A server that is there and speaks TLS but refused our default
		 * hello may still accept one version or one group. */
		if (ok || why == ACLM_SCAN_HANDSHAKE)
			e->todo |= follow_ups(s, &e->res);
		/* Offered TLS 1.3 and chose less: no PQ group, known without asking. */
		if (ok && !s->o.no_groups && strcmp(e->res.negotiated_version, "TLSv1.3") != 0)
			e->res.pq_probed = (1u << scan_n_pq_groups) - 1;
	}
	e->running--;
	e->host->active--;
	s->in_flight--;
	free(c);
	if (e->running == 0 && e->todo == 0)
		ep_finish(s, e);
	pump(s);
}

static void watch(struct scan_conn *c, int events)
{
	ev_io_stop(c->s->loop, &c->io);
	ev_io_set(&c->io, c->fd, events);
	ev_io_start(c->s->loop, &c->io);
}

static void start_handshake(struct scan_conn *c);

static void handshake_step(struct scan_conn *c)
{
	int ret = SSL_do_handshake(c->ssl), err;
	unsigned long e;

	if (ret == 1) {
		conn_done(c, true);
		return;
	}
	err = SSL_get_error(c->ssl, ret);
	switch (err) {
	case SSL_ERROR_WANT_READ:
		watch(c, EV_READ);
		return;
	case SSL_ERROR_WANT_WRITE:
		watch(c, EV_WRITE);
		return;
	case SSL_ERROR_SYSCALL:
	case SSL_ERROR_ZERO_RETURN:
		if (errno == ECONNRESET || errno == EPIPE)
			set_fail(c, ACLM_SCAN_RESET, "connection reset by the server during the handshake");
		else
			set_fail(c, ACLM_SCAN_RESET, "the server closed the connection during the handshake");
		break;
	default:
		e = ERR_peek_error();
		if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
		    (ERR_GET_REASON(e) == SSL_R_WRONG_VERSION_NUMBER ||
		     ERR_GET_REASON(e) == SSL_R_PACKET_LENGTH_TOO_LONG ||
		     ERR_GET_REASON(e) == SSL_R_UNKNOWN_PROTOCOL ||
		     ERR_GET_REASON(e) == SSL_R_UNEXPECTED_RECORD))
			set_fail(c, ACLM_SCAN_NOT_TLS, "not TLS: %s", ERR_reason_error_string(e));
		else if (e == 0 && (errno == ECONNRESET || errno == EPIPE))
			set_fail(c, ACLM_SCAN_RESET, "connection reset by the server during the handshake");
		else
			set_fail(c, ACLM_SCAN_HANDSHAKE, "handshake failed: %s",
			         e ? ERR_reason_error_string(e) : "no reason given");
		break;
	}
	conn_done(c, false);
}

/* The answer to a crafted hello: the probe table says what "accepted" is
 * (the version taken; for a group, TLS 1.3 and the group named). */
static void on_hello(struct scan_conn *c, int revents)
{
	unsigned char buf[2048];
	ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
	enum hello_verdict v;

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		c->raw_accepted = 0;
		conn_done(c, false);
		return;
	}
	v = hello_feed(c->hello, buf, (size_t)n);
	if (v == HELLO_NEED_MORE)
		return;
	c->raw_accepted = v == HELLO_SERVER_HELLO && probe_raw_accepts(c->def, c->hello);
	conn_done(c, c->raw_accepted == 1);
}

static void start_hello(struct scan_conn *c)
{
	unsigned char rec[1024];
	struct aclm_scan_result *r = &c->ep->res;
	size_t len = probe_raw_hello(c->def, rec, sizeof(rec), r->ep.sni[0] ? r->ep.sni : NULL);

	c->state = C_HELLO;
	c->raw_accepted = 0;
	c->hello = malloc(sizeof(*c->hello));
	if (c->hello == NULL || len == 0 ||
	    send(c->fd, rec, len, MSG_NOSIGNAL) != (ssize_t)len) {
		conn_done(c, false);
		return;
	}
	hello_reader_init(c->hello);
	watch(c, EV_READ);
}

static void start_handshake(struct scan_conn *c)
{
	struct aclm_scan_result *r = &c->ep->res;

	if (probe_is_raw(c->def, r)) {
		start_hello(c);
		return;
	}

	c->state = C_HANDSHAKE;
	c->ssl = SSL_new(c->def->kind == PROBE_GROUP && r->reachable &&
	                 strcmp(r->negotiated_version, "TLSv1.3") != 0 ? c->def->ctx_tls12
	                                                                : c->def->ctx);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
		set_fail(c, ACLM_SCAN_HANDSHAKE, "out of memory for a TLS connection");
		conn_done(c, false);
		return;
	}
	SSL_set_connect_state(c->ssl);
	if (r->ep.sni[0] != '\0')
		SSL_set_tlsext_host_name(c->ssl, r->ep.sni);
	if (c->def->kind == PROBE_BASIC)
		SSL_set_tlsext_status_type(c->ssl, TLSEXT_STATUSTYPE_ocsp);
	handshake_step(c);
}

static void on_connect(struct scan_conn *c, int revents)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		err = errno;
	if (err != 0) {
		set_fail(c, err == ECONNREFUSED ? ACLM_SCAN_REFUSED : ACLM_SCAN_UNREACHABLE,
		         "connect: %s", strerror(err));
		conn_done(c, false);
		return;
	}
	ev_timer_stop(c->s->loop, &c->timer);
	ev_timer_set(&c->timer, c->s->o.handshake_timeout, 0);
	ev_timer_start(c->s->loop, &c->timer);
	if (c->ep->res.ep.proto != ACLM_SCAN_TLS) {
		c->state = C_STARTTLS;
		starttls_init(&c->st, c->ep->res.ep.proto);
		watch(c, EV_READ);
		return;
	}
	start_handshake(c);
}

static void on_starttls(struct scan_conn *c, int revents)
{
	unsigned char buf[512];
	ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
	size_t off = 0;

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		set_fail(c, n == 0 ? ACLM_SCAN_STARTTLS : ACLM_SCAN_RESET, "%s STARTTLS: %s",
		         aclm_scan_proto_name(c->st.proto),
		         n == 0 ? "the server closed the connection" : strerror(errno));
		conn_done(c, false);
		return;
	}
	while (off < (size_t)n) {
		size_t used = 0;
		enum starttls_step step = starttls_feed(&c->st, buf + off, (size_t)n - off, &used);

		off += used;
		switch (step) {
		case STARTTLS_NEED_MORE:
			break;
		case STARTTLS_SEND:
			if (send(c->fd, c->st.out, c->st.out_len, MSG_NOSIGNAL) != (ssize_t)c->st.out_len) {
				set_fail(c, ACLM_SCAN_RESET, "%s STARTTLS: could not send a command",
				         aclm_scan_proto_name(c->st.proto));
				conn_done(c, false);
				return;
			}
			break;
		case STARTTLS_READY:
			start_handshake(c);
			return;
		case STARTTLS_FAILED:
			set_fail(c, ACLM_SCAN_STARTTLS, "%s", c->st.error);
			conn_done(c, false);
			return;
		}
		if (used == 0)
			break;
	}
}

static void on_handshake(struct scan_conn *c, int revents)
{
	handshake_step(c);
}

/* The state machine: what a readiness event means in each state. */
static void (*const state_handlers[C_N_STATES])(struct scan_conn *, int) = {
	[C_CONNECT] = on_connect,
	[C_STARTTLS] = on_starttls,
	[C_HANDSHAKE] = on_handshake,
	[C_HELLO] = on_hello,
};

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct scan_conn *c = w->data;

	state_handlers[c->state](c, revents);
}

static void conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct scan_conn *c = w->data;

	if (c->state == C_CONNECT)
		set_fail(c, ACLM_SCAN_CONNECT_TIMEOUT, "no answer to connect within %gs",
		         c->s->o.connect_timeout);
	else if (c->state == C_HELLO)
		c->raw_accepted = 0;
	else if (c->state == C_STARTTLS)
		set_fail(c, ACLM_SCAN_TIMEOUT, "%s STARTTLS dialogue not finished within %gs",
		         aclm_scan_proto_name(c->st.proto), c->s->o.handshake_timeout);
	else
		set_fail(c, ACLM_SCAN_TIMEOUT, "no complete TLS handshake within %gs",
		         c->s->o.handshake_timeout);
	conn_done(c, false);
}

static int conn_start(struct aclm_scan *s, struct scan_ep *e, size_t probe)
{
	struct scan_conn *c = calloc(1, sizeof(*c));
	struct sockaddr_storage ss = { 0 };
	socklen_t sl;
	bool v6 = scan_ip_is_v6(e->res.ep.ip);
	int one = 1;

	if (c == NULL)
		return ACLM_ERR_NOMEM;
	c->s = s;
	c->ep = e;
	c->def = &s->defs[probe];
	c->fd = -1;
	c->raw_accepted = -1;
	c->state = C_CONNECT;
	ev_init(&c->io, conn_io_cb);
	c->io.data = c;
	ev_timer_init(&c->timer, conn_timer_cb, s->o.connect_timeout, 0);
	c->timer.data = c;
	e->running++;
	e->host->active++;
	s->in_flight++;
	s->prog.connections++;
	if (v6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)e->res.ep.port);
		inet_pton(AF_INET6, e->res.ep.ip, &a->sin6_addr);
		sl = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)e->res.ep.port);
		inet_pton(AF_INET, e->res.ep.ip, &a->sin_addr);
		sl = sizeof(*a);
	}
	c->fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		set_fail(c, ACLM_SCAN_UNREACHABLE, "socket: %s", strerror(errno));
		conn_done(c, false);
		return ACLM_OK;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	ev_timer_start(s->loop, &c->timer);
	if (connect(c->fd, (struct sockaddr *)&ss, sl) == 0 || errno == EINPROGRESS) {
		watch(c, EV_WRITE);
		return ACLM_OK;
	}
	set_fail(c, errno == ECONNREFUSED ? ACLM_SCAN_REFUSED : ACLM_SCAN_UNREACHABLE,
	         "connect: %s", strerror(errno));
	conn_done(c, false);
	return ACLM_OK;
}

/* --- scheduling -------------------------------------------------------------- */

static bool take_token(struct aclm_scan *s)
{
	double now;

	if (s->o.rate <= 0)
		return true;
	now = ev_now(s->loop);
	s->tokens += (now - s->last_refill) * s->o.rate;
	s->last_refill = now;
	if (s->tokens > (s->o.rate < 1 ? 1 : s->o.rate))
		s->tokens = s->o.rate < 1 ? 1 : s->o.rate;
	if (s->tokens < 1) {
		if (!ev_is_active(&s->pump_timer)) {
			ev_timer_set(&s->pump_timer, (1 - s->tokens) / s->o.rate, 0);
			ev_timer_start(s->loop, &s->pump_timer);
		}
		return false;
	}
	s->tokens -= 1;
	return true;
}

/* Start the next probe of an endpoint whose host has room; 1 started,
 * 0 nothing to start. */
static int start_pending(struct aclm_scan *s)
{
	for (struct scan_ep *e = s->active; e != NULL; e = e->next) {
		size_t i;

		if (e->todo == 0 || e->host->active >= s->o.per_host)
			continue;
		if (!take_token(s))
			return -1;
		for (i = 0; i < s->n_defs; i++)
			if (e->todo & ((uint64_t)1 << i))
				break;
		e->todo &= ~((uint64_t)1 << i);
		conn_start(s, e, i);
		return 1;
	}
	return 0;
}

/* Take a new endpoint from the source; 1 taken, 0 none, <0 error. */
static int take_endpoint(struct aclm_scan *s)
{
	struct scan_ep *e;
	int rc;

	if (s->src_done || s->n_active >= (size_t)s->o.concurrency)
		return 0;
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	rc = s->src->next(s->src->ctx, &e->res.ep);
	if (rc <= 0) {
		free(e);
		s->src_done = true;
		if (rc < 0 && s->stop_rc == 0)
			s->stop_rc = rc;
		return rc;
	}
	s->prog.started++;
	e->res.scanned_at = aclm_now();
	active_add(s, e);
	if (e->res.ep.ip[0] == '\0') {
		e->res.reason = ACLM_SCAN_UNRESOLVED;
		snprintf(e->res.detail, sizeof(e->res.detail), "%s: no address (A/AAAA) found",
		         e->res.ep.host);
		e->host = NULL;
		ep_finish(s, e);
		return 1;
	}
	e->host = host_get(s, e->res.ep.ip);
	if (e->host == NULL) {
		active_remove(s, e);
		free(e);
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	}
	e->res.reason = ACLM_SCAN_HANDSHAKE;
	e->todo = 1;  /* the basic probe, defs[0] */
	return 1;
}

/* Start what the limits allow.  A connection that fails at once (connect
 * to an unroutable address) finishes inside conn_start() and calls pump()
 * again: that nested call returns at once and this loop carries on, so a
 * sweep of unroutable space never deepens the stack. */
static void pump(struct aclm_scan *s)
{
	if (s->pumping)
		return;
	s->pumping = true;
	while (s->in_flight < s->o.concurrency && s->stop_rc == 0) {
		int rc = start_pending(s);
		if (rc < 0)
			break;          /* rate limit: the pump timer calls again */
		if (rc > 0)
			continue;
		rc = take_endpoint(s);
		if (rc <= 0)
			break;
	}
	s->pumping = false;
	if (s->stop_rc != 0 && s->in_flight == 0) {
		/* Stopped: endpoints with probes not started are dropped. */
		while (s->active != NULL) {
			struct scan_ep *e = s->active;
			active_remove(s, e);
			aclm_scan_result_free(&e->res);
			free(e);
		}
	}
	if (s->n_active == 0 && s->src_done)
		ev_break(s->loop, EVBREAK_ALL);
}

static void pump_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	pump(w->data);
}

static void progress_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct aclm_scan *s = w->data;

	s->prog.elapsed = ev_now(loop) - s->started_at;
	if (s->on_progress)
		s->on_progress(s->ctx, &s->prog);
}

static void raise_fd_limit(int want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < (rlim_t)want + 64) {
		rl.rlim_cur = rl.rlim_max < (rlim_t)want + 64 ? rl.rlim_max : (rlim_t)want + 64;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int aclm_scan_run(struct aclm_scan *s, const struct aclm_scan_source *src,
                  aclm_scan_result_fn on_result, aclm_scan_progress_fn on_progress, void *ctx)
{
	struct sigaction ign = { .sa_handler = SIG_IGN }, old;
	int rc;

	s->loop = ev_loop_new(EVFLAG_AUTO);
	if (s->loop == NULL)
		return aclm_error(ACLM_ERR_IO, "scanner: cannot create the event loop");
	s->src = src;
	s->on_result = on_result;
	s->on_progress = on_progress;
	s->ctx = ctx;
	s->src_done = false;
	s->stop_rc = 0;
	memset(&s->prog, 0, sizeof(s->prog));
	s->prog.total = src->total_hint;
	raise_fd_limit(s->o.concurrency);
	/* A peer that resets while OpenSSL writes must not kill the process. */
	sigemptyset(&ign.sa_mask);
	sigaction(SIGPIPE, &ign, &old);
	ev_timer_init(&s->pump_timer, pump_cb, 0, 0);
	s->pump_timer.data = s;
	ev_timer_init(&s->progress_timer, progress_cb, 0.25, 0.25);
	s->progress_timer.data = s;
	ev_now_update(s->loop);
	s->started_at = s->last_refill = ev_now(s->loop);
	s->tokens = 1;
	if (on_progress)
		ev_timer_start(s->loop, &s->progress_timer);
	pump(s);
	if (!(s->n_active == 0 && s->src_done))
		ev_run(s->loop, 0);
	ev_timer_stop(s->loop, &s->progress_timer);
	ev_timer_stop(s->loop, &s->pump_timer);
	s->prog.elapsed = ev_now(s->loop) - s->started_at;
	if (on_progress)
		on_progress(ctx, &s->prog);
	ev_loop_destroy(s->loop);
	s->loop = NULL;
	sigaction(SIGPIPE, &old, NULL);
	rc = s->stop_rc;
	return rc;
}
