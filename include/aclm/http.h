/* HTTP/1.1 server engine on libev, with optional TLS (OpenSSL).
 *
 * Used by `aclm server` (REST API, dashboard), the built-in CA's ACME server
 * and the gateway.  Three parts, usable on their own:
 *
 *   - the request parser: pure (no I/O), incremental, bounded; it turns bytes
 *     into a struct aclm_http_msg or into the HTTP status to answer;
 *   - the router: method + pattern ("/api/v1/certificates/:id", "/static/" + "*")
 *     to a handler, with 404 / 405 (+ Allow) and path parameters;
 *   - the server: listeners (IPv4/IPv6, plain or TLS) and connections on a
 *     caller-supplied struct ev_loop, timeouts, limits, graceful shutdown and
 *     a JSON-lines access log.
 *
 * Threading: a server and everything it hands out belong to the thread that
 * runs its loop.  All callbacks run on that loop.
 *
 * Internals, state machine and the request-smuggling rules:
 * docs/internals/http.md. */
#ifndef ACLM_HTTP_H
#define ACLM_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

struct ev_loop;
struct ssl_ctx_st;          /* SSL_CTX */

/* ---- limits ---------------------------------------------------------- */

/* Hard limits on one request; 0 in a field means the default. */
struct aclm_http_limits {
	size_t max_request_line;  /* bytes of "METHOD target HTTP/1.1"; 8192; over: 414 */
	size_t max_headers;       /* header fields (and trailer fields); 100; over: 431 */
	size_t max_header_bytes;  /* bytes of the header section after the request
	                           * line, CRLFs included; 32768; over: 431 */
	size_t max_body;          /* decoded body bytes; 1 MiB; over: 413 */
};

#define ACLM_HTTP_DEFAULT_MAX_REQUEST_LINE 8192
#define ACLM_HTTP_DEFAULT_MAX_HEADERS 100
#define ACLM_HTTP_DEFAULT_MAX_HEADER_BYTES 32768
#define ACLM_HTTP_DEFAULT_MAX_BODY ((size_t)1 << 20)

/* ---- request parser (pure, no I/O) ------------------------------------ */

struct aclm_http_header {
	const char *name;         /* as sent (case kept), NUL-terminated */
	const char *value;        /* leading/trailing blanks removed */
};

/* A parsed request.  Strings are NUL-terminated and owned by the parser;
 * they stay valid until aclm_http_parser_reset() or _free(). */
struct aclm_http_msg {
	const char *method;       /* e.g. "GET"; case-sensitive token */
	const char *target;       /* request-target as sent ("/a/b?x=1", "*", "http://h/p") */
	int version_minor;        /* 0 or 1 (HTTP/1.x with x > 1 is treated as 1) */
	const struct aclm_http_header *headers;
	size_t n_headers;
	const unsigned char *body;/* decoded body (chunked framing removed); NUL-terminated */
	size_t body_len;
	bool is_chunked;          /* the body came with Transfer-Encoding: chunked */
	bool keep_alive;          /* HTTP/1.1 unless "Connection: close"; 1.0 only
	                           * with "Connection: keep-alive" */
	bool expect_continue;     /* "Expect: 100-continue" was sent */
};

struct aclm_http_parser;

/* limits may be NULL (all defaults). */
int aclm_http_parser_new(const struct aclm_http_limits *limits,
                         struct aclm_http_parser **out);
void aclm_http_parser_free(struct aclm_http_parser *p);
/* Forget the current request (and its strings); ready for the next one. */
void aclm_http_parser_reset(struct aclm_http_parser *p);

/* Feed the next len bytes of the stream.  Returns
 *   1            a whole request was parsed; *consumed says how many bytes of
 *                data it used: the next request (pipelining) starts exactly at
 *                data + *consumed and needs a reset parser;
 *   ACLM_AGAIN   all len bytes were taken (*consumed == len), more needed;
 *   < 0          the request is bad: aclm_http_parser_status() is the status
 *                to answer (400, 413, 414, 417, 431, 501, 505; 503 when out
 *                of memory) and the connection must be closed after the
 *                answer.  The parser stays in that error until reset.
 * Feeding the stream byte by byte or all at once gives the same result. */
int aclm_http_parser_feed(struct aclm_http_parser *p, const void *data, size_t len,
                          size_t *consumed);
/* After a feed returned 1: the request.  NULL before that. */
const struct aclm_http_msg *aclm_http_parser_msg(const struct aclm_http_parser *p);
/* The request head (line and header section) is complete: the body, if any,
 * is being read.  Flags of aclm_http_parser_msg() are meaningful from here,
 * method/target/headers too; body only once the request is done. */
bool aclm_http_parser_head_done(const struct aclm_http_parser *p);
/* Method and Expect of the head, valid once head_done (NULL before). */
const char *aclm_http_parser_method(const struct aclm_http_parser *p);
bool aclm_http_parser_expects_continue(const struct aclm_http_parser *p);
/* After an error: the HTTP status to answer and a short reason for a person
 * ("both Content-Length and Transfer-Encoding").  0 / "" when no error. */
int aclm_http_parser_status(const struct aclm_http_parser *p);
const char *aclm_http_parser_reason(const struct aclm_http_parser *p);
/* Bytes taken by the request so far (head and body, framing included). */
size_t aclm_http_parser_bytes(const struct aclm_http_parser *p);

/* Find a header by name, case-insensitively; the first one, or NULL. */
const char *aclm_http_msg_header(const struct aclm_http_msg *m, const char *name);

/* ---- server ----------------------------------------------------------- */

struct aclm_http_server;
struct aclm_http_req;     /* one request, read-only for handlers */
struct aclm_http_res;     /* its response, filled by the handler */

/* What a handler (or the before-hook) returns. */
enum aclm_http_result {
	ACLM_HTTP_DONE = 0,     /* the response is filled in: send it */
	ACLM_HTTP_PENDING = 1,  /* answered later with aclm_http_res_finish() */
	ACLM_HTTP_NEXT = 2,     /* before-hook only: go on to the route's handler */
};

/* A route handler.  Returns ACLM_HTTP_DONE, ACLM_HTTP_PENDING, or a negative
 * enum aclm_err: the engine then discards what the handler put in res and
 * answers an error from the code (NOTFOUND 404, PARSE/USAGE 400, TOOBIG 413,
 * EXISTS 409, UNSUPPORTED 501, anything else 500).  The detail of a 4xx is
 * aclm_errmsg(); a 500 says only "internal error" to the client and logs
 * the message.
 *
 * Ownership: req and res belong to the engine.  They stay valid until the
 * handler returns DONE / an error, or, after PENDING, until the handler calls
 * aclm_http_res_finish(res) (exactly once, from the loop's thread).  Strings
 * from req are valid as long as req. */
typedef int (*aclm_http_handler_fn)(struct aclm_http_req *req,
                                    struct aclm_http_res *res, void *arg);

/* Called when the connection of a pending (deferred) response goes away
 * before aclm_http_res_finish(): server freed, shutdown deadline, peer gone.
 * The handler must still call aclm_http_res_finish(res) (now or later) to
 * release req and res; nothing is sent then. */
typedef void (*aclm_http_abort_fn)(struct aclm_http_res *res, void *arg);

typedef void (*aclm_http_shutdown_fn)(struct aclm_http_server *srv, void *arg);

struct aclm_http_server_opts {
	struct aclm_http_limits limits;
	/* Timeouts in seconds; 0 means the default.
	 * header:    until the head of a request is complete, counted from the
	 *            connection (first request) or from the request's first byte
	 *            (later ones); total, not per byte, so a slowloris client is
	 *            dropped; 10;
	 * body:      from the end of the head until the body is complete, 30;
	 * idle:      keep-alive wait for the next request, 60;
	 * write:     without progress while sending a response, 30;
	 * handshake: TLS handshake, 10;
	 * shutdown:  graceful shutdown waits this long for in-flight requests
	 *            before closing them, 30.
	 * Every timeout but idle ends in a reset (SO_LINGER 0). */
	double header_timeout;
	double body_timeout;
	double idle_timeout;
	double write_timeout;
	double handshake_timeout;
	double shutdown_timeout;
	/* Open connections, all listeners together; beyond it a new connection
	 * gets "503" (best effort) and is closed at once.  0: 16384.  Each takes
	 * a file descriptor: the daemon raises RLIMIT_NOFILE to match (an accept
	 * that hits EMFILE pauses the listener for 100 ms). */
	unsigned max_connections;
	/* Requests on one connection before "Connection: close"; 0: unlimited. */
	unsigned max_requests_per_connection;
	/* Response body limit (handler bugs, not peers); 0: 64 MiB. */
	size_t max_response_body;
	/* Access log, one JSON line per answered request: to access_log when not
	 * NULL (flushed per line), else to access_log_fd when >= 0, else none.
	 * Fields: time, peer, method, path (without the query), status, bytes
	 * (body bytes sent), duration_us, tls.  Headers are never logged. */
	FILE *access_log;
	int access_log_fd;
};

/* Defaults for every field (access_log_fd = -1). */
void aclm_http_server_opts_init(struct aclm_http_server_opts *opts);

/* A server on loop.  opts may be NULL (defaults); it is copied.  If SIGPIPE
 * still has its default action it is set to SIG_IGN (a peer that resets
 * while OpenSSL writes would otherwise end the process). */
int aclm_http_server_new(struct ev_loop *loop, const struct aclm_http_server_opts *opts,
                         struct aclm_http_server **out);

/* Listen on "127.0.0.1:8443", "[::1]:0", "0.0.0.0:80", "[::]:443" (port 0:
 * the kernel picks one; *bound_port, if not NULL, is the real port).
 * ssl_ctx NULL: plain HTTP; else every connection does a TLS handshake with
 * a new SSL from it (the server takes a reference; the caller keeps its
 * own).  May be called before or while the loop runs. */
int aclm_http_listen(struct aclm_http_server *srv, const char *addr,
                     struct ssl_ctx_st *ssl_ctx, int *bound_port);

/* Add a route.  method: "GET", "POST", ... or "*" for any (a GET route also
 * answers HEAD, without body).  pattern: "/" + segments; a segment ":name"
 * matches one non-empty segment (aclm_http_req_param(req, "name")); a last
 * segment "*" matches the rest of the path, possibly empty
 * (aclm_http_req_param(req, "*")).  The most specific pattern wins: at the
 * first differing segment, literal beats ":param" beats "*".  A path that
 * matches routes but none for the method gets 405 with Allow; OPTIONS without
 * its own route gets 204 with Allow.  Strings are copied. */
int aclm_http_route(struct aclm_http_server *srv, const char *method, const char *pattern,
                    aclm_http_handler_fn handler, void *arg);

/* Middleware: called for every routed request (route found, method allowed)
 * before the route's handler.  It may answer (DONE / PENDING / an error, as a
 * handler) or return ACLM_HTTP_NEXT to let the handler run.  One hook per
 * server; NULL removes it. */
void aclm_http_server_set_before(struct aclm_http_server *srv, aclm_http_handler_fn before,
                                 void *arg);

/* What the after-hook learns of each answered request. */
struct aclm_http_done_info {
	const char *method;       /* "-" when refused before the head was read */
	const char *route;        /* the pattern that matched, "" for none */
	int status;
	size_t body_bytes;        /* body bytes sent (0 for HEAD) */
	double duration;          /* seconds, first byte of the request to last sent */
	bool is_tls;
};

typedef void (*aclm_http_after_fn)(const struct aclm_http_done_info *info, void *arg);

/* Called once per answered request, when its response has been written
 * (also for 404, 405 and requests the parser refused): for metrics.  NULL
 * removes it.  Pointers in info are valid during the call only. */
void aclm_http_server_set_after(struct aclm_http_server *srv, aclm_http_after_fn after,
                                void *arg);

/* Graceful shutdown: stop accepting, close idle keep-alive connections, let
 * requests in flight finish (answered with Connection: close), then call
 * done (may be NULL) from the loop.  After opts.shutdown_timeout the rest is
 * closed (pending responses get their abort callback).  Call once. */
void aclm_http_server_shutdown(struct aclm_http_server *srv, aclm_http_shutdown_fn done,
                               void *arg);

/* Close everything now and free.  Pending responses get their abort callback
 * and must still be finished by their owners (which then frees them).  Not
 * from inside a handler. */
void aclm_http_server_free(struct aclm_http_server *srv);

struct ev_loop *aclm_http_server_loop(const struct aclm_http_server *srv);
/* Connections open right now (for tests and metrics). */
unsigned aclm_http_server_connections(const struct aclm_http_server *srv);

/* ---- request (for handlers) -------------------------------------------- */

const char *aclm_http_req_method(const struct aclm_http_req *req);
/* The path, percent-decoded ("/api/v1/certificates/ab%20c" -> ".../ab c").
 * Requests whose path has an encoded "/" (%2F), a "." or ".." segment, a
 * NUL, or a bad %-escape never reach a handler (400). */
const char *aclm_http_req_path(const struct aclm_http_req *req);
/* The request-target exactly as sent (path and query still encoded). */
const char *aclm_http_req_target(const struct aclm_http_req *req);
/* The raw query string after '?', "" when none. */
const char *aclm_http_req_query(const struct aclm_http_req *req);
/* The value of the first query parameter name ("+" and %-escapes decoded),
 * "" for "?name" or "?name=", NULL when absent. */
const char *aclm_http_query_get(const struct aclm_http_req *req, const char *name);
/* A header by name, case-insensitively (the first one), or NULL. */
const char *aclm_http_req_header(const struct aclm_http_req *req, const char *name);
/* All headers in order, for forwarding. */
size_t aclm_http_req_header_count(const struct aclm_http_req *req);
const struct aclm_http_header *aclm_http_req_header_at(const struct aclm_http_req *req,
                                                       size_t i);
/* A path parameter of the route (":id" -> "id", "*" for the tail), decoded;
 * NULL when the route has none by that name. */
const char *aclm_http_req_param(const struct aclm_http_req *req, const char *name);
/* The body (NUL-terminated, so JSON text can be parsed directly). */
const unsigned char *aclm_http_req_body(const struct aclm_http_req *req, size_t *len);
/* "192.0.2.1:5000" or "[2001:db8::1]:5000". */
const char *aclm_http_req_peer(const struct aclm_http_req *req);
bool aclm_http_req_is_tls(const struct aclm_http_req *req);
/* The pattern of the route that matched ("/api/v1/certificates/:id"). */
const char *aclm_http_req_route(const struct aclm_http_req *req);
struct aclm_http_server *aclm_http_req_server(const struct aclm_http_req *req);
/* Memory that lives as long as the request (freed with it). */
void *aclm_http_req_alloc(struct aclm_http_req *req, size_t n);

/* ---- response (for handlers) ------------------------------------------- */

/* Status, one Content-Type and a copy of the body in one call.  content_type
 * may be NULL (no Content-Type).  Replaces a body set before. */
int aclm_http_reply(struct aclm_http_res *res, int status, const char *content_type,
                    const void *body, size_t len);
/* JSON body (application/json).  Takes ownership of json (decref'd here, also
 * on failure); json NULL (e.g. a failed json_pack) answers 500. */
int aclm_http_reply_json(struct aclm_http_res *res, int status, json_t *json);
/* {"error": error, "detail": <printf of fmt>} with status. */
int aclm_http_reply_error(struct aclm_http_res *res, int status, const char *error,
                          const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Add a header line.  Names must be tokens, values without CR, LF or NUL
 * (ACLM_ERR_USAGE otherwise).  Content-Length, Transfer-Encoding,
 * Connection and Date are the engine's and refused. */
int aclm_http_header_add(struct aclm_http_res *res, const char *name, const char *value);
void aclm_http_res_status(struct aclm_http_res *res, int status);
/* Append to the body (builds a body in pieces). */
int aclm_http_res_append(struct aclm_http_res *res, const void *data, size_t len);
/* Close the connection after this response. */
void aclm_http_res_close(struct aclm_http_res *res);
/* The request this response answers. */
struct aclm_http_req *aclm_http_res_req(struct aclm_http_res *res);

/* Deferred responses: after a handler returned ACLM_HTTP_PENDING, fill res
 * and call finish, from the loop's thread.  It sends the response (or, if
 * the connection is gone, only frees) and invalidates req and res. */
void aclm_http_res_finish(struct aclm_http_res *res);
/* Register the abort callback of a pending response (see aclm_http_abort_fn). */
void aclm_http_res_on_abort(struct aclm_http_res *res, aclm_http_abort_fn fn, void *arg);

/* The reason phrase of a status ("Not Found"), "Unknown" for others. */
const char *aclm_http_status_text(int status);

#endif
