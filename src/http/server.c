/* The server: listeners, connections and their state machine, responses,
 * graceful shutdown and the access log.
 *
 * Every connection is in one state of enum conn_state; the table below says
 * what readiness it waits for, what runs when that arrives and which
 * timeout bounds it.  Entering a state (set_state) re-arms the timer, so a
 * timeout is "time spent in this state", except for CS_WRITE whose timer
 * restarts on every bit of progress.  See docs/internals/http.md. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <openssl/ssl.h>

#include "aclm/err.h"
#include "aclm/log.h"
#include "aclm/str.h"
#include "http-int.h"

#define READ_CHUNK 16384
#define READS_PER_EVENT 8           /* fairness: bytes per callback are bounded */
#define ACCEPTS_PER_EVENT 64
#define LINGER_TIMEOUT 2.0
#define LINGER_MAX_BYTES (1u << 20)
#define IN_MAX (4 * READ_CHUNK)     /* pipelined bytes kept beyond one request */

struct listener {
	struct aclm_http_server *srv;
	ev_io io;
	ev_timer backoff;           /* pause after EMFILE and friends */
	int fd;
	SSL_CTX *ctx;
};

struct aclm_http_server {
	struct ev_loop *loop;
	struct aclm_http_server_opts o;
	double timeout[CS_COUNT];
	struct aclm_http_router router;
	aclm_http_handler_fn before;
	void *before_arg;
	aclm_http_after_fn after;
	void *after_arg;
	struct listener **ls;
	size_t n_ls;
	struct conn *conns;
	unsigned n_conns;
	bool shutting_down;
	aclm_http_shutdown_fn done;
	void *done_arg;
	ev_timer shutdown_deadline;
	ev_timer done_timer;
	time_t date_t;
	char date[40];
};

static void do_handshake(struct conn *c);
static void do_read(struct conn *c);
static void do_write(struct conn *c);
static void do_linger(struct conn *c);
static void do_peek(struct conn *c);

/* KEEP: entering the state leaves the watcher as it is.  A response is
 * written at once and the watcher switched to EV_WRITE only if the socket is
 * full; so a keep-alive request costs no epoll_ctl.  A spurious event in
 * such a state is harmless: its handler copes with "nothing to do". */
#define KEEP (-1)

static const struct {
	const char *name;
	int events;
	void (*on_io)(struct conn *c);
} states[CS_COUNT] = {
	[CS_HANDSHAKE] = { "handshake", EV_READ, do_handshake },
	[CS_IDLE] = { "idle", EV_READ, do_read },
	[CS_READ_HEAD] = { "read-head", EV_READ, do_read },
	[CS_READ_BODY] = { "read-body", EV_READ, do_read },
	[CS_HANDLER] = { "handler", KEEP, do_peek },
	[CS_WRITE] = { "write", KEEP, do_write },
	[CS_LINGER] = { "linger", EV_READ, do_linger },
};

/* ---- options ------------------------------------------------------------- */

void aclm_http_server_opts_init(struct aclm_http_server_opts *o)
{
	memset(o, 0, sizeof(*o));
	aclm_http_limits_normalize(NULL, &o->limits);
	o->header_timeout = 10;
	o->body_timeout = 30;
	o->idle_timeout = 60;
	o->write_timeout = 30;
	o->handshake_timeout = 10;
	o->shutdown_timeout = 30;
	o->max_connections = 16384;
	o->max_response_body = (size_t)64 << 20;
	o->access_log = NULL;
	o->access_log_fd = -1;
}

static double or_default(double v, double d)
{
	return v > 0 ? v : d;
}

/* ---- connection plumbing ------------------------------------------------- */

static void watch(struct conn *c, int events)
{
	struct ev_loop *loop = c->srv->loop;

	if (events == 0) {
		ev_io_stop(loop, &c->io);
		return;
	}
	if (ev_is_active(&c->io) && (c->io.events & (EV_READ | EV_WRITE)) == events)
		return;
	/* ev_io_modify keeps the fd registered: libev then calls epoll_ctl only
	 * if the interest set at the end of the loop iteration differs. */
	ev_io_stop(loop, &c->io);
	ev_io_modify(&c->io, events);
	ev_io_start(loop, &c->io);
}

static void set_state(struct conn *c, enum conn_state st)
{
	struct ev_loop *loop = c->srv->loop;
	double t = c->srv->timeout[st];

	c->st = st;
	ev_timer_stop(loop, &c->timer);
	if (t > 0) {
		ev_timer_set(&c->timer, t, 0.);
		ev_timer_start(loop, &c->timer);
	}
	if (states[st].events != KEEP)
		watch(c, states[st].events);
}

static void maybe_shutdown_done(struct aclm_http_server *srv)
{
	if (srv->shutting_down && srv->n_conns == 0 && !ev_is_active(&srv->done_timer))
		ev_timer_start(srv->loop, &srv->done_timer);
}

static void conn_close(struct conn *c)
{
	struct aclm_http_server *srv = c->srv;
	struct aclm_http_req *req = c->req;

	ev_io_stop(srv->loop, &c->io);
	ev_timer_stop(srv->loop, &c->timer);
	c->req = NULL;
	if (req != NULL) {
		if (req->res.pending) {
			/* The handler still owns it: it learns, then finishes. */
			req->conn = NULL;
			if (req->res.on_abort != NULL)
				req->res.on_abort(&req->res, req->res.abort_arg);
		} else {
			aclm_http_req_free(req);
		}
	}
	if (c->ssl != NULL) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	close(c->fd);
	aclm_http_parser_free(c->parser);
	aclm_buf_free(&c->in);
	aclm_buf_free(&c->out);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	srv->n_conns--;
	free(c);
	maybe_shutdown_done(srv);
}

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = (struct conn *)((char *)w - offsetof(struct conn, io));

	(void)loop;
	(void)revents;
	if (states[c->st].on_io != NULL)
		states[c->st].on_io(c);
}

static void conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn *c = (struct conn *)((char *)w - offsetof(struct conn, timer));

	(void)loop;
	(void)revents;
	aclm_debug("http: %s: %s timeout, closing", c->peer, states[c->st].name);
	if (c->st != CS_IDLE) {
		/* A stalled peer gets a reset: what the kernel still holds for it
		 * (up to megabytes of an unread response) is dropped at once. */
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	conn_close(c);
}

/* ---- the access log -------------------------------------------------------- */

static int escape_n(struct aclm_buf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n && s[i] != '\0'; i++) {
		unsigned char ch = (unsigned char)s[i];
		int rc;

		if (ch == '"' || ch == '\\')
			rc = aclm_buf_printf(b, "\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			rc = aclm_buf_printf(b, "\\u%04x", ch);
		else
			rc = aclm_buf_putc(b, (char)ch);
		if (rc != ACLM_OK)
			return rc;
	}
	return ACLM_OK;
}

static void access_log(struct conn *c, const char *method, const char *route,
                       const char *target, int status, size_t bytes)
{
	struct aclm_http_server *srv = c->srv;
	struct aclm_buf b;
	double now = ev_time();
	time_t t = (time_t)now;
	struct tm tm;
	char ts[40];
	size_t path_len;

	if (srv->after != NULL) {
		struct aclm_http_done_info info = {
			.method = method, .route = route, .status = status, .body_bytes = bytes,
			.duration = now - c->t_start, .is_tls = c->is_tls,
		};

		srv->after(&info, srv->after_arg);
	}
	if (srv->o.access_log == NULL && srv->o.access_log_fd < 0)
		return;
	gmtime_r(&t, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	         (int)((now - (double)t) * 1000) % 1000);
	/* The query can carry secrets (tokens in links): only the path is logged. */
	path_len = strcspn(target, "?");
	aclm_buf_init(&b, 16384);
	if (aclm_buf_printf(&b, "{\"time\":\"%s\",\"peer\":\"%s\",\"method\":\"", ts, c->peer) ||
	    escape_n(&b, method, 32) || aclm_buf_puts(&b, "\",\"path\":\"") ||
	    escape_n(&b, target, path_len > 4096 ? 4096 : path_len) ||
	    aclm_buf_printf(&b, "\",\"status\":%d,\"bytes\":%zu,\"duration_us\":%lld,\"tls\":%s}\n",
	                    status, bytes, (long long)((now - c->t_start) * 1e6),
	                    c->is_tls ? "true" : "false") != 0)
		goto out;
	if (srv->o.access_log != NULL) {
		fwrite(b.data, 1, b.len, srv->o.access_log);
		fflush(srv->o.access_log);
	} else {
		size_t off = 0;

		while (off < b.len) {
			ssize_t w = write(srv->o.access_log_fd, b.data + off, b.len - off);

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				break;
			off += (size_t)w;
		}
	}
out:
	aclm_buf_free(&b);
}

/* ---- responses ------------------------------------------------------------- */

static const char *http_date(struct aclm_http_server *srv)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t t = (time_t)ev_now(srv->loop);
	struct tm tm;

	if (t != srv->date_t) {
		gmtime_r(&t, &tm);
		snprintf(srv->date, sizeof(srv->date), "%s, %02d %s %04d %02d:%02d:%02d GMT",
		         days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900,
		         tm.tm_hour, tm.tm_min, tm.tm_sec);
		srv->date_t = t;
	}
	return srv->date;
}

static const char *error_name(int status)
{
	switch (status) {
	case 400: return "bad_request";
	case 404: return "not_found";
	case 405: return "method_not_allowed";
	case 408: return "request_timeout";
	case 409: return "conflict";
	case 413: return "too_large";
	case 414: return "uri_too_long";
	case 417: return "expectation_failed";
	case 431: return "headers_too_large";
	case 501: return "not_implemented";
	case 503: return "unavailable";
	case 505: return "version_not_supported";
	default: return status >= 500 ? "internal" : "error";
	}
}

/* Append status line and engine headers; body_len < 0: no Content-Length. */
static int put_head(struct conn *c, int status, const struct aclm_buf *headers, long long body_len,
                    bool close, bool http10_keep)
{
	struct aclm_buf *o = &c->out;
	int rc;

	rc = aclm_buf_printf(o, "HTTP/1.1 %d %s\r\nDate: %s\r\nServer: aclm\r\n", status,
	                     aclm_http_status_text(status), http_date(c->srv));
	if (rc == ACLM_OK && headers != NULL && headers->len > 0)
		rc = aclm_buf_append(o, headers->data, headers->len);
	if (rc == ACLM_OK && body_len >= 0)
		rc = aclm_buf_printf(o, "Content-Length: %lld\r\n", body_len);
	if (rc == ACLM_OK && close)
		rc = aclm_buf_puts(o, "Connection: close\r\n");
	else if (rc == ACLM_OK && http10_keep)
		rc = aclm_buf_puts(o, "Connection: keep-alive\r\n");
	if (rc == ACLM_OK)
		rc = aclm_buf_puts(o, "\r\n");
	return rc;
}

static void start_write(struct conn *c)
{
	set_state(c, CS_WRITE);
	do_write(c);
}

/* The answer to a request the parser refused (or that timed out): a JSON
 * error, and the connection closes after it. */
static void send_error(struct conn *c, int status, const char *reason)
{
	struct aclm_buf hdr;
	json_t *j = json_pack("{s:s, s:s}", "error", error_name(status), "detail", reason);
	char *body = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
	size_t blen = body != NULL ? strlen(body) : 0;

	json_decref(j);
	aclm_buf_init(&hdr, 256);
	c->close_after = true;
	c->log_status = status;
	c->log_body_bytes = blen;
	if (aclm_buf_puts(&hdr, "Content-Type: application/json\r\n") != ACLM_OK ||
	    put_head(c, status, &hdr, (long long)blen, true, false) != ACLM_OK ||
	    aclm_buf_append(&c->out, body != NULL ? body : "", blen) != ACLM_OK) {
		free(body);
		aclm_buf_free(&hdr);
		conn_close(c);
		return;
	}
	free(body);
	aclm_buf_free(&hdr);
	start_write(c);
}

/* Send c->req's response. */
static void respond(struct conn *c)
{
	struct aclm_http_server *srv = c->srv;
	struct aclm_http_req *req = c->req;
	struct aclm_http_res *res = &req->res;
	const struct aclm_http_msg *msg = req->msg;
	int status = res->status >= 100 && res->status <= 999 ? res->status : 500;
	bool no_body = status < 200 || status == 204 || status == 304;
	bool close = c->close_after || !msg->keep_alive || res->close || srv->shutting_down ||
	             (srv->o.max_requests_per_connection != 0 &&
	              c->n_requests >= srv->o.max_requests_per_connection);
	int rc;

	res->pending = false;
	c->close_after = close;
	c->log_status = status;
	c->log_body_bytes = no_body || req->is_head ? 0 : res->body.len;
	rc = put_head(c, status, &res->headers, no_body ? -1 : (long long)res->body.len, close,
	              msg->version_minor == 0);
	if (rc == ACLM_OK && !no_body && !req->is_head)
		rc = aclm_buf_append(&c->out, res->body.data, res->body.len);
	if (rc != ACLM_OK) {
		aclm_err("http: %s %s: response not built: %s", msg->method, req->path,
		         aclm_errmsg());
		conn_close(c);
		return;
	}
	start_write(c);
}

/* A handler (or the before-hook) returned r. */
static void handler_returned(struct conn *c, int r)
{
	struct aclm_http_req *req = c->req;
	struct aclm_http_res *res = &req->res;

	if (r == ACLM_HTTP_PENDING) {
		res->pending = true;
		watch(c, EV_READ);      /* to notice a peer that goes away: do_peek */
		return;
	}
	if (r < 0) {
		int status = aclm_http_status_for_err(r);

		aclm_http_res_clear(res);
		if (status == 500) {
			aclm_err("http: %s %s: %s", req->msg->method, req->path, aclm_errmsg());
			aclm_http_reply_error(res, 500, "internal", "internal error");
		} else {
			aclm_http_reply_error(res, status, error_name(status), "%s", aclm_errmsg());
		}
	} else if (r != ACLM_HTTP_DONE) {
		aclm_err("http: %s %s: handler returned %d", req->msg->method, req->path, r);
		aclm_http_res_clear(res);
		aclm_http_reply_error(res, 500, "internal", "internal error");
	}
	respond(c);
}

static void run_handler(struct conn *c)
{
	struct aclm_http_server *srv = c->srv;
	struct aclm_http_req *req = c->req;
	struct aclm_http_res *res = &req->res;
	struct aclm_http_match m;
	const char *reason = "";
	int r;

	if ((r = aclm_http_req_decode_target(req, &reason)) != ACLM_OK) {
		if (r == ACLM_ERR_NOMEM)
			aclm_http_reply_error(res, 503, "unavailable", "%s", reason);
		else
			aclm_http_reply_error(res, 400, "bad_request", "%s", reason);
		res->close = true;
		respond(c);
		return;
	}
	if (aclm_http_router_match(&srv->router, req, &m) != ACLM_OK) {
		handler_returned(c, ACLM_ERR_NOMEM);
		return;
	}
	if (m.status == 404) {
		aclm_http_reply_error(res, 404, "not_found", "no resource at %s", req->path);
		respond(c);
		return;
	}
	if (m.status != 0) {
		aclm_buf_printf(&res->headers, "Allow: %s\r\n", m.allow);
		if (m.status == 405)
			aclm_http_reply_error(res, 405, "method_not_allowed", "%s is not allowed on %s",
			                      req->msg->method, req->path);
		else
			res->status = m.status;
		respond(c);
		return;
	}
	r = ACLM_HTTP_NEXT;
	req->in_handler = true;
	if (srv->before != NULL)
		r = srv->before(req, res, srv->before_arg);
	if (r == ACLM_HTTP_NEXT)
		r = m.handler(req, res, m.arg);
	req->in_handler = false;
	if (r == ACLM_HTTP_PENDING && req->finished_early)
		r = ACLM_HTTP_DONE;
	handler_returned(c, r);
}

void aclm_http_res_finish(struct aclm_http_res *res)
{
	struct aclm_http_req *req = res->req;

	if (req->in_handler) {          /* finished before returning PENDING */
		req->finished_early = true;
		return;
	}
	if (req->conn == NULL) {        /* the connection went away meanwhile */
		aclm_http_req_free(req);
		return;
	}
	if (!res->pending)
		return;
	respond(req->conn);
}

/* ---- reading requests ------------------------------------------------------- */

static void dispatch(struct conn *c)
{
	struct aclm_http_req *req;

	req = aclm_http_req_new(c->srv, c->parser, c->srv->o.max_response_body);
	if (req == NULL) {
		aclm_err("http: %s: out of memory for a request", c->peer);
		conn_close(c);
		return;
	}
	c->parser = NULL;
	req->conn = c;
	req->is_tls = c->is_tls;
	req->t_start = c->t_start;
	aclm_strlcpy(req->peer, c->peer, sizeof(req->peer));
	c->req = req;
	c->n_requests++;
	set_state(c, CS_HANDLER);
	run_handler(c);
}

static void send_continue(struct conn *c)
{
	static const char line[] = "HTTP/1.1 100 Continue\r\n\r\n";
	int n;

	c->continue_sent = true;
	if (aclm_buf_append(&c->out, line, sizeof(line) - 1) != ACLM_OK)
		return;
	/* Sent now if the socket takes it (it nearly always does); a rest stays
	 * in c->out ahead of the response. */
	n = aclm_http_io_write(c, c->out.data + c->out_off, c->out.len - c->out_off);
	if (n > 0)
		c->out_off += (size_t)n;
	if (c->out_off == c->out.len) {
		aclm_buf_reset(&c->out);
		c->out_off = 0;
	}
}

/* Feed bytes; from_in: they are c->in's.  Returns ACLM_AGAIN when the
 * parser wants more (everything was taken), else 0 (the connection moved on:
 * dispatched, answering an error, or closed). */
static int feed(struct conn *c, const unsigned char *data, size_t n, bool from_in)
{
	size_t used = 0;
	bool started;
	int r;

	if (c->parser == NULL &&
	    aclm_http_parser_new(&c->srv->o.limits, &c->parser) != ACLM_OK) {
		conn_close(c);
		return 0;
	}
	started = aclm_http_parser_started(c->parser);
	r = aclm_http_parser_feed(c->parser, data, n, &used);
	if (!started && aclm_http_parser_started(c->parser))
		c->t_start = ev_time();
	if (r == 1) {
		if (from_in) {
			memmove(c->in.data, c->in.data + used, n - used);
			c->in.len = n - used;
		} else if (used < n && aclm_buf_append(&c->in, data + used, n - used) != ACLM_OK) {
			conn_close(c);
			return 0;
		}
		dispatch(c);
		return 0;
	}
	if (from_in)
		aclm_buf_reset(&c->in);
	if (r == ACLM_AGAIN) {
		if (c->st == CS_IDLE)
			set_state(c, CS_READ_HEAD);
		if (c->st == CS_READ_HEAD && aclm_http_parser_head_done(c->parser)) {
			set_state(c, CS_READ_BODY);
			if (aclm_http_parser_expects_continue(c->parser) && !c->continue_sent)
				send_continue(c);
		}
		return ACLM_AGAIN;
	}
	send_error(c, aclm_http_parser_status(c->parser), aclm_http_parser_reason(c->parser));
	return 0;
}

static void do_read(struct conn *c)
{
	unsigned char buf[READ_CHUNK];

	if (c->in.len > 0 && feed(c, c->in.data, c->in.len, true) != ACLM_AGAIN)
		return;
	for (int i = 0; i < READS_PER_EVENT; i++) {
		int n = aclm_http_io_read(c, buf, sizeof(buf));

		if (n == ACLM_AGAIN) {
			watch(c, c->want);
			return;
		}
		if (n <= 0) {           /* end of stream or error, mid-request or idle */
			conn_close(c);
			return;
		}
		if (feed(c, buf, (size_t)n, false) != ACLM_AGAIN)
			return;
	}
	/* More may be waiting (possibly inside the TLS buffer): come back. */
	ev_feed_event(c->srv->loop, &c->io, EV_READ);
}

static void do_handshake(struct conn *c)
{
	int r = aclm_http_tls_handshake(c);

	if (r == ACLM_AGAIN) {
		watch(c, c->want);
		return;
	}
	if (r < 0) {
		conn_close(c);
		return;
	}
	set_state(c, CS_READ_HEAD);
	do_read(c);   /* the request often came with the handshake's last flight */
}

/* While a response is pending: a peer that closed or reset aborts it.  Bytes
 * that arrive (a pipelined request) wait in the socket; we stop looking. */
static void do_peek(struct conn *c)
{
	char b;
	ssize_t n = recv(c->fd, &b, 1, MSG_PEEK);

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n > 0) {
		watch(c, 0);
		return;
	}
	aclm_debug("http: %s: peer gone while the response was pending", c->peer);
	conn_close(c);
}

/* ---- writing and closing -------------------------------------------------- */

static void start_linger(struct conn *c)
{
	/* Half-close and read what the peer still sends, so that the kernel does
	 * not answer unread data with a reset that destroys our response. */
	aclm_http_tls_close(c);
	shutdown(c->fd, SHUT_WR);
	c->linger_bytes = 0;
	set_state(c, CS_LINGER);
}

static void do_linger(struct conn *c)
{
	unsigned char buf[READ_CHUNK];

	for (;;) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0 || (c->linger_bytes += (size_t)n) > LINGER_MAX_BYTES) {
			conn_close(c);
			return;
		}
	}
}

static void write_done(struct conn *c)
{
	struct aclm_http_req *req = c->req;

	if (req != NULL)
		access_log(c, req->msg->method, aclm_http_req_route(req), req->msg->target,
		           c->log_status, c->log_body_bytes);
	else
		access_log(c, c->parser != NULL && aclm_http_parser_method(c->parser) != NULL
		                  ? aclm_http_parser_method(c->parser) : "-",
		           "", "-", c->log_status, c->log_body_bytes);
	c->req = NULL;
	aclm_http_req_free(req);
	/* An idle keep-alive connection keeps no buffers (thousands of them). */
	aclm_buf_free(&c->out);
	if (c->in.len == 0)
		aclm_buf_free(&c->in);
	c->out_off = 0;
	c->continue_sent = false;
	if (c->close_after) {
		start_linger(c);
		return;
	}
	set_state(c, CS_IDLE);
	if (c->in.len > 0 || (c->ssl != NULL && SSL_has_pending(c->ssl)))
		ev_feed_event(c->srv->loop, &c->io, EV_READ);
}

static void do_write(struct conn *c)
{
	bool progress = false;

	while (c->out_off < c->out.len) {
		int n = aclm_http_io_write(c, c->out.data + c->out_off, c->out.len - c->out_off);

		if (n == ACLM_AGAIN) {
			watch(c, c->want);
			if (progress) {       /* the write timeout counts stalls only */
				ev_timer_stop(c->srv->loop, &c->timer);
				ev_timer_set(&c->timer, c->srv->timeout[CS_WRITE], 0.);
				ev_timer_start(c->srv->loop, &c->timer);
			}
			return;
		}
		if (n < 0) {
			conn_close(c);
			return;
		}
		c->out_off += (size_t)n;
		progress = true;
	}
	write_done(c);
}

/* ---- listeners ---------------------------------------------------------------- */

static void format_peer(const struct sockaddr_storage *ss, char *out, size_t size)
{
	char host[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(out, size, "[%s]:%u", host, ntohs(s6->sin6_port));
	} else if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(out, size, "%s:%u", host, ntohs(s4->sin_port));
	} else {
		aclm_strlcpy(out, "unknown", size);
	}
}

static void conn_new(struct listener *l, int fd, const struct sockaddr_storage *ss)
{
	struct aclm_http_server *srv = l->srv;
	struct conn *c = calloc(1, sizeof(*c));
	int one = 1;

	if (c == NULL) {
		close(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->srv = srv;
	c->fd = fd;
	format_peer(ss, c->peer, sizeof(c->peer));
	aclm_buf_init(&c->in, IN_MAX);
	aclm_buf_init(&c->out, srv->o.max_response_body + 65536 + 1024);
	ev_io_init(&c->io, conn_io_cb, fd, EV_READ);
	ev_init(&c->timer, conn_timer_cb);
	c->t_start = ev_time();
	c->next = srv->conns;
	if (srv->conns != NULL)
		srv->conns->prev = c;
	srv->conns = c;
	srv->n_conns++;
	if (l->ctx != NULL) {
		c->is_tls = true;
		if (aclm_http_tls_new(c, l->ctx) != ACLM_OK) {
			aclm_warn("http: %s", aclm_errmsg());
			conn_close(c);
			return;
		}
		set_state(c, CS_HANDSHAKE);
		return;
	}
	/* The first request has the header timeout from the connection on. */
	set_state(c, CS_READ_HEAD);
}

static void backoff_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct listener *l = (struct listener *)((char *)w - offsetof(struct listener, backoff));

	(void)revents;
	if (!l->srv->shutting_down)
		ev_io_start(loop, &l->io);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
	                           "Connection: close\r\n\r\n";
	struct listener *l = (struct listener *)((char *)w - offsetof(struct listener, io));
	struct aclm_http_server *srv = l->srv;

	(void)revents;
	for (int i = 0; i < ACCEPTS_PER_EVENT; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				aclm_warn("http: accept: %s; pausing the listener for 100 ms",
				          strerror(errno));
				ev_io_stop(loop, &l->io);
				ev_timer_set(&l->backoff, 0.1, 0.);
				ev_timer_start(loop, &l->backoff);
			}
			return;
		}
		if (srv->n_conns >= srv->o.max_connections) {
			if (l->ctx == NULL)
				(void)send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			close(fd);
			continue;
		}
		conn_new(l, fd, &ss);
	}
}

/* "host:port", "[v6]:port". */
static int parse_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *sl)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon, *hs = addr;
	size_t hlen;
	int64_t port;

	memset(ss, 0, sizeof(*ss));
	if (addr[0] == '[') {
		const char *rb = strchr(addr, ']');

		if (rb == NULL || rb[1] != ':')
			goto bad;
		hs = addr + 1;
		hlen = (size_t)(rb - hs);
		colon = rb + 1;
	} else {
		colon = strrchr(addr, ':');
		if (colon == NULL)
			goto bad;
		hlen = (size_t)(colon - addr);
	}
	if (hlen == 0 || hlen >= sizeof(host))
		goto bad;
	memcpy(host, hs, hlen);
	host[hlen] = '\0';
	if (aclm_parse_int64(colon + 1, &port) != ACLM_OK || port < 0 || port > 65535)
		goto bad;
	if (addr[0] == '[') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			goto bad;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*sl = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		if (strcmp(host, "localhost") == 0)
			aclm_strlcpy(host, "127.0.0.1", sizeof(host));
		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			goto bad;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*sl = sizeof(*s4);
	}
	return ACLM_OK;
bad:
	return aclm_error(ACLM_ERR_USAGE, "listen address \"%s\": expected IPv4:port or "
	                  "[IPv6]:port (port 0-65535)", addr);
}

int aclm_http_listen(struct aclm_http_server *srv, const char *addr, struct ssl_ctx_st *ssl_ctx,
                     int *bound_port)
{
	struct sockaddr_storage ss;
	socklen_t sl = 0;
	struct listener *l = NULL, **nls;
	int fd = -1, one = 1, rc;

	if ((rc = parse_addr(addr, &ss, &sl)) != ACLM_OK)
		return rc;
	if (srv->shutting_down)
		return aclm_error(ACLM_ERR_USAGE, "listen %s: the server is shutting down", addr);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = aclm_error(ACLM_ERR_IO, "listen %s: socket: %s", addr, strerror(errno));
		goto out;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) != 0) {
		rc = aclm_error(ACLM_ERR_IO, "listen %s: bind: %s", addr, strerror(errno));
		goto out;
	}
	if (listen(fd, SOMAXCONN) != 0) {
		rc = aclm_error(ACLM_ERR_IO, "listen %s: %s", addr, strerror(errno));
		goto out;
	}
	sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
		rc = aclm_error(ACLM_ERR_IO, "listen %s: getsockname: %s", addr, strerror(errno));
		goto out;
	}
	l = calloc(1, sizeof(*l));
	nls = realloc(srv->ls, (srv->n_ls + 1) * sizeof(*nls));
	if (l == NULL || nls == NULL) {
		if (nls != NULL)
			srv->ls = nls;
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory (listener)");
		goto out;
	}
	srv->ls = nls;
	if (ssl_ctx != NULL && SSL_CTX_up_ref(ssl_ctx) != 1) {
		rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "listen %s: SSL_CTX reference", addr);
		goto out;
	}
	l->srv = srv;
	l->fd = fd;
	l->ctx = ssl_ctx;
	ev_io_init(&l->io, accept_cb, fd, EV_READ);
	ev_init(&l->backoff, backoff_cb);
	ev_io_start(srv->loop, &l->io);
	srv->ls[srv->n_ls++] = l;
	if (bound_port != NULL)
		*bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
		                                             : ((struct sockaddr_in *)&ss)->sin_port);
	return ACLM_OK;
out:
	free(l);
	if (fd >= 0)
		close(fd);
	return rc;
}

static void listener_close(struct aclm_http_server *srv, struct listener *l)
{
	ev_io_stop(srv->loop, &l->io);
	ev_timer_stop(srv->loop, &l->backoff);
	close(l->fd);
	SSL_CTX_free(l->ctx);
	free(l);
}

/* ---- the server ------------------------------------------------------------------- */

static void done_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct aclm_http_server *srv =
		(struct aclm_http_server *)((char *)w - offsetof(struct aclm_http_server, done_timer));

	(void)revents;
	ev_timer_stop(loop, &srv->shutdown_deadline);
	if (srv->done != NULL) {
		aclm_http_shutdown_fn fn = srv->done;

		srv->done = NULL;
		fn(srv, srv->done_arg);   /* may free srv */
	}
}

static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct aclm_http_server *srv = (struct aclm_http_server *)((char *)w -
		offsetof(struct aclm_http_server, shutdown_deadline));

	(void)loop;
	(void)revents;
	if (srv->n_conns > 0)
		aclm_warn("http: shutdown: closing %u connection(s) still busy after %.0f s",
		          srv->n_conns, srv->o.shutdown_timeout);
	while (srv->conns != NULL)
		conn_close(srv->conns);
}

int aclm_http_server_new(struct ev_loop *loop, const struct aclm_http_server_opts *opts,
                         struct aclm_http_server **out)
{
	struct aclm_http_server *srv;
	struct aclm_http_server_opts def;
	struct sigaction sa;

	*out = NULL;
	if (opts == NULL) {
		aclm_http_server_opts_init(&def);
		opts = &def;
	}
	srv = calloc(1, sizeof(*srv));
	if (srv == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory (HTTP server)");
	srv->loop = loop;
	srv->o = *opts;
	aclm_http_limits_normalize(&opts->limits, &srv->o.limits);
	srv->o.header_timeout = or_default(opts->header_timeout, 10);
	srv->o.body_timeout = or_default(opts->body_timeout, 30);
	srv->o.idle_timeout = or_default(opts->idle_timeout, 60);
	srv->o.write_timeout = or_default(opts->write_timeout, 30);
	srv->o.handshake_timeout = or_default(opts->handshake_timeout, 10);
	srv->o.shutdown_timeout = or_default(opts->shutdown_timeout, 30);
	if (srv->o.max_connections == 0)
		srv->o.max_connections = 16384;
	if (srv->o.max_response_body == 0)
		srv->o.max_response_body = (size_t)64 << 20;
	srv->timeout[CS_HANDSHAKE] = srv->o.handshake_timeout;
	srv->timeout[CS_IDLE] = srv->o.idle_timeout;
	srv->timeout[CS_READ_HEAD] = srv->o.header_timeout;
	srv->timeout[CS_READ_BODY] = srv->o.body_timeout;
	srv->timeout[CS_HANDLER] = 0;    /* the handler's business */
	srv->timeout[CS_WRITE] = srv->o.write_timeout;
	srv->timeout[CS_LINGER] = srv->o.write_timeout < LINGER_TIMEOUT ? srv->o.write_timeout
	                                                                 : LINGER_TIMEOUT;
	srv->date_t = -1;
	ev_init(&srv->shutdown_deadline, deadline_cb);
	ev_timer_init(&srv->done_timer, done_cb, 0., 0.);
	/* A peer that resets while TLS writes would kill the process otherwise. */
	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
		signal(SIGPIPE, SIG_IGN);
	*out = srv;
	return ACLM_OK;
}

int aclm_http_route(struct aclm_http_server *srv, const char *method, const char *pattern,
                    aclm_http_handler_fn handler, void *arg)
{
	return aclm_http_router_add(&srv->router, method, pattern, handler, arg);
}

void aclm_http_server_set_before(struct aclm_http_server *srv, aclm_http_handler_fn before,
                                 void *arg)
{
	srv->before = before;
	srv->before_arg = arg;
}

void aclm_http_server_set_after(struct aclm_http_server *srv, aclm_http_after_fn after,
                                void *arg)
{
	srv->after = after;
	srv->after_arg = arg;
}

struct ev_loop *aclm_http_server_loop(const struct aclm_http_server *srv)
{
	return srv->loop;
}

unsigned aclm_http_server_connections(const struct aclm_http_server *srv)
{
	return srv->n_conns;
}

static void close_listeners(struct aclm_http_server *srv)
{
	for (size_t i = 0; i < srv->n_ls; i++)
		listener_close(srv, srv->ls[i]);
	free(srv->ls);
	srv->ls = NULL;
	srv->n_ls = 0;
}

void aclm_http_server_shutdown(struct aclm_http_server *srv, aclm_http_shutdown_fn done,
                               void *arg)
{
	struct conn *c, *next;

	if (srv->shutting_down)
		return;
	srv->shutting_down = true;
	srv->done = done;
	srv->done_arg = arg;
	close_listeners(srv);
	for (c = srv->conns; c != NULL; c = next) {
		next = c->next;
		if (c->st == CS_IDLE || c->st == CS_HANDSHAKE ||
		    (c->st == CS_READ_HEAD && (c->parser == NULL ||
		                               !aclm_http_parser_started(c->parser))))
			conn_close(c);
	}
	ev_timer_set(&srv->shutdown_deadline, srv->o.shutdown_timeout, 0.);
	ev_timer_start(srv->loop, &srv->shutdown_deadline);
	maybe_shutdown_done(srv);
}

void aclm_http_server_free(struct aclm_http_server *srv)
{
	if (srv == NULL)
		return;
	srv->shutting_down = true;
	srv->done = NULL;
	close_listeners(srv);
	while (srv->conns != NULL)
		conn_close(srv->conns);
	ev_timer_stop(srv->loop, &srv->shutdown_deadline);
	ev_timer_stop(srv->loop, &srv->done_timer);
	aclm_http_router_free(&srv->router);
	free(srv);
}
