/* Private state of the HTTP engine, shared by its files only. */
#ifndef ACLM_HTTP_INT_H
#define ACLM_HTTP_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <ev.h>
#include <openssl/ssl.h>

#include "aclm/buf.h"
#include "aclm/http.h"

/* ---- parser.c ---------------------------------------------------------- */

/* 0 fields of in (or in == NULL) become the defaults. */
void aclm_http_limits_normalize(const struct aclm_http_limits *in, struct aclm_http_limits *out);
bool aclm_http_parser_keep_alive(const struct aclm_http_parser *p);
/* Some byte of a request was taken (an idle connection became busy). */
bool aclm_http_parser_started(const struct aclm_http_parser *p);

/* ---- request.c: per-request arena, request and response ----------------- */

struct arena_block;
struct aclm_http_arena {
	struct arena_block *blocks;
};

void *aclm_http_arena_alloc(struct aclm_http_arena *a, size_t n);
char *aclm_http_arena_strndup(struct aclm_http_arena *a, const char *s, size_t n);
void aclm_http_arena_free(struct aclm_http_arena *a);

struct aclm_http_param {
	const char *name;
	const char *value;
};

struct query_pair {
	const char *name;
	const char *value;
};

struct conn;

struct aclm_http_res {
	struct aclm_http_req *req;
	int status;
	struct aclm_buf headers;     /* "Name: value\r\n" lines */
	struct aclm_buf body;
	bool has_content_type;
	bool close;                  /* Connection: close after this response */
	bool pending;                /* handler returned ACLM_HTTP_PENDING */
	aclm_http_abort_fn on_abort;
	void *abort_arg;
};

/* One request and its response.  Owned by its connection, or (when the
 * connection went away while the response was pending) by the handler until
 * aclm_http_res_finish(). */
struct aclm_http_req {
	struct aclm_http_server *srv;
	struct conn *conn;               /* NULL once the connection is gone */
	struct aclm_http_parser *parser; /* owns the message strings */
	const struct aclm_http_msg *msg;
	struct aclm_http_arena arena;
	const char *path;                /* decoded */
	const char *query;               /* raw, "" when none */
	char **segs;                     /* decoded path segments */
	size_t n_segs;
	struct aclm_http_param *params;
	size_t n_params;
	struct query_pair *qs;
	size_t n_qs;
	const char *route;
	char peer[64];
	bool is_tls;
	bool is_head;
	bool in_handler;                 /* inside the before-hook or the handler */
	bool finished_early;             /* aclm_http_res_finish() came from inside it */
	double t_start;
	struct aclm_http_res res;
};

/* A request for msg, taking ownership of parser; NULL when out of memory. */
struct aclm_http_req *aclm_http_req_new(struct aclm_http_server *srv,
                                        struct aclm_http_parser *parser, size_t max_body);
void aclm_http_req_free(struct aclm_http_req *req);
/* Split and decode the target into path, segments and query.  Returns 0, or
 * ACLM_ERR_PARSE with *reason set (answer 400), or ACLM_ERR_NOMEM (503). */
int aclm_http_req_decode_target(struct aclm_http_req *req, const char **reason);
/* Reset a response to empty (after a failed handler). */
void aclm_http_res_clear(struct aclm_http_res *res);
/* Status for a negative enum aclm_err from a handler. */
int aclm_http_status_for_err(int err);
/* Escape s as the inside of a JSON string into b. */
int aclm_http_json_escape(struct aclm_buf *b, const char *s);

/* ---- router.c ---------------------------------------------------------- */

struct route;
struct aclm_http_router {
	struct route *routes;
	size_t n_routes;
};

struct aclm_http_match {
	aclm_http_handler_fn handler;
	void *arg;
	const char *pattern;
	int status;          /* 0: matched; 404; 405 (allow filled) */
	char allow[128];     /* "GET, HEAD, POST" */
};

int aclm_http_router_add(struct aclm_http_router *r, const char *method, const char *pattern,
                         aclm_http_handler_fn handler, void *arg);
/* Match req's method and segments; fills req->params (in req's arena). */
int aclm_http_router_match(const struct aclm_http_router *r, struct aclm_http_req *req,
                           struct aclm_http_match *m);
void aclm_http_router_free(struct aclm_http_router *r);

/* ---- server.c / tls.c: connections ------------------------------------- */

enum conn_state {
	CS_HANDSHAKE,   /* TLS handshake */
	CS_IDLE,        /* keep-alive: waiting for the first byte of a request */
	CS_READ_HEAD,   /* request line and headers */
	CS_READ_BODY,   /* body */
	CS_HANDLER,     /* the handler has it (or it is pending) */
	CS_WRITE,       /* sending the response */
	CS_LINGER,      /* closing: write side shut, reading what the peer still sends */
	CS_COUNT,
};

struct listener;

struct conn {
	struct aclm_http_server *srv;
	int fd;
	SSL *ssl;                /* NULL on plain listeners */
	ev_io io;
	ev_timer timer;
	enum conn_state st;
	int want;                /* EV_READ / EV_WRITE the transport waits for */
	struct aclm_http_parser *parser;
	struct aclm_buf in;      /* bytes read beyond a complete request (pipelining) */
	struct aclm_buf out;     /* bytes of the response being sent */
	size_t out_off;
	struct aclm_http_req *req;
	unsigned n_requests;
	bool is_tls;
	bool close_after;        /* close once out is sent */
	bool continue_sent;      /* 100 Continue written for this request */
	size_t linger_bytes;
	double t_start;          /* first byte of the current request */
	/* what the access log says of a response without a req (parser errors) */
	int log_status;
	size_t log_body_bytes;
	char peer[64];
	struct conn *prev, *next;
};

/* Transport: returns bytes (> 0), 0 at end of stream (read only),
 * ACLM_AGAIN (c->want says on what to wait) or ACLM_ERR_IO. */
int aclm_http_io_read(struct conn *c, void *buf, size_t n);
int aclm_http_io_write(struct conn *c, const void *buf, size_t n);
/* 1 when the handshake is done, ACLM_AGAIN, ACLM_ERR_IO. */
int aclm_http_tls_handshake(struct conn *c);
/* Best-effort close_notify, then free the SSL. */
void aclm_http_tls_close(struct conn *c);
int aclm_http_tls_new(struct conn *c, SSL_CTX *ctx);

#endif
