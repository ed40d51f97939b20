/* Requests and responses as handlers see them: accessors, target decoding,
 * query parameters, response helpers, and the per-request arena. */
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aclm/err.h"
#include "aclm/str.h"
#include "aclm/http.h"
#include "http-int.h"

/* ---- arena ------------------------------------------------------------- */

struct arena_block {
	struct arena_block *next;
	size_t used, size;
	_Alignas(16) unsigned char data[];
};

#define ARENA_BLOCK 2048

void *aclm_http_arena_alloc(struct aclm_http_arena *a, size_t n)
{
	struct arena_block *b = a->blocks;
	size_t need = (n + 15) & ~(size_t)15;

	if (n > SIZE_MAX / 2)
		return NULL;
	if (b == NULL || b->size - b->used < need) {
		size_t size = need > ARENA_BLOCK ? need : ARENA_BLOCK;

		b = malloc(sizeof(*b) + size);
		if (b == NULL)
			return NULL;
		b->size = size;
		b->used = 0;
		b->next = a->blocks;
		a->blocks = b;
	}
	b->used += need;
	return memset(b->data + b->used - need, 0, need);
}

char *aclm_http_arena_strndup(struct aclm_http_arena *a, const char *s, size_t n)
{
	char *p = aclm_http_arena_alloc(a, n + 1);

	if (p == NULL)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void aclm_http_arena_free(struct aclm_http_arena *a)
{
	while (a->blocks != NULL) {
		struct arena_block *b = a->blocks;

		a->blocks = b->next;
		free(b);
	}
}

/* ---- request life ------------------------------------------------------ */

struct aclm_http_req *aclm_http_req_new(struct aclm_http_server *srv,
                                        struct aclm_http_parser *parser, size_t max_body)
{
	struct aclm_http_req *req = calloc(1, sizeof(*req));

	if (req == NULL)
		return NULL;
	req->srv = srv;
	req->parser = parser;
	req->msg = aclm_http_parser_msg(parser);
	req->query = "";
	req->path = "/";
	req->res.req = req;
	req->res.status = 200;
	req->is_head = req->msg != NULL && strcmp(req->msg->method, "HEAD") == 0;
	aclm_buf_init(&req->res.headers, 64 * 1024);
	aclm_buf_init(&req->res.body, max_body);
	return req;
}

void aclm_http_req_free(struct aclm_http_req *req)
{
	if (req == NULL)
		return;
	aclm_http_parser_free(req->parser);
	aclm_http_arena_free(&req->arena);
	aclm_buf_free(&req->res.headers);
	aclm_buf_free(&req->res.body);
	free(req);
}

/* Percent-decode s[0..n) into out (n + 1 bytes); plus_space for queries.
 * Returns the decoded length or -1 on a bad escape or a NUL. */
static long pct_decode(const char *s, size_t n, char *out, bool plus_space)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '%') {
			int h, l;

			if (i + 2 >= n)
				return -1;
			h = aclm_hex_digit(s[i + 1]);
			l = aclm_hex_digit(s[i + 2]);
			if (h < 0 || l < 0)
				return -1;
			c = (char)(h * 16 + l);
			i += 2;
			if (c == '\0')
				return -1;
		} else if (c == '+' && plus_space) {
			c = ' ';
		}
		out[o++] = c;
	}
	out[o] = '\0';
	return (long)o;
}

int aclm_http_req_decode_target(struct aclm_http_req *req, const char **reason)
{
	const char *t = req->msg->target;
	const char *q, *end;
	size_t n_segs = 0, plen;
	char *path;

	if (strcmp(t, "*") == 0) {
		req->path = "*";
		return ACLM_OK;
	}
	if (*t != '/') {
		/* absolute-form: drop "scheme://authority" */
		const char *s = strstr(t, "://");

		t = s != NULL ? strchr(s + 3, '/') : NULL;
		if (t == NULL)
			t = "/";
	}
	q = strchr(t, '?');
	end = q != NULL ? q : t + strlen(t);
	if (q != NULL)
		req->query = q + 1;
	if (strchr(req->query, '#') != NULL || memchr(t, '#', (size_t)(end - t)) != NULL) {
		*reason = "fragment in the request target";
		return ACLM_ERR_PARSE;
	}
	for (const char *c = t; c < end; c++)
		if (*c == '/')
			n_segs++;
	req->segs = aclm_http_arena_alloc(&req->arena, (n_segs + 1) * sizeof(char *));
	path = aclm_http_arena_alloc(&req->arena, (size_t)(end - t) + 1);
	if (req->segs == NULL || path == NULL) {
		*reason = "out of memory";
		return ACLM_ERR_NOMEM;
	}
	plen = 0;
	req->n_segs = 0;
	for (const char *s = t + 1; s <= end;) {
		const char *e = memchr(s, '/', (size_t)(end - s));
		size_t n;
		char *seg;
		long dl;

		if (e == NULL)
			e = end;
		n = (size_t)(e - s);
		seg = aclm_http_arena_alloc(&req->arena, n + 1);
		if (seg == NULL) {
			*reason = "out of memory";
			return ACLM_ERR_NOMEM;
		}
		dl = pct_decode(s, n, seg, false);
		if (dl < 0) {
			*reason = "bad percent-escape in the path";
			return ACLM_ERR_PARSE;
		}
		if (memchr(seg, '/', (size_t)dl) != NULL) {
			*reason = "encoded '/' in the path";
			return ACLM_ERR_PARSE;
		}
		if (strcmp(seg, ".") == 0 || strcmp(seg, "..") == 0) {
			*reason = "dot segment in the path";
			return ACLM_ERR_PARSE;
		}
		req->segs[req->n_segs++] = seg;
		path[plen++] = '/';
		memcpy(path + plen, seg, (size_t)dl);
		plen += (size_t)dl;
		s = e + 1;
		if (e == end)
			break;
	}
	path[plen] = '\0';
	req->path = path;
	/* A trailing '/' yields an empty last segment: "/a/" is {"a", ""}. */
	return ACLM_OK;
}

/* Query pairs are decoded once, on first use. */
static int parse_query(struct aclm_http_req *req)
{
	const char *s = req->query;
	size_t n = 1;

	if (req->qs != NULL || *s == '\0')
		return ACLM_OK;
	for (const char *c = s; *c != '\0'; c++)
		if (*c == '&')
			n++;
	req->qs = aclm_http_arena_alloc(&req->arena, n * sizeof(*req->qs));
	if (req->qs == NULL)
		return ACLM_ERR_NOMEM;
	while (*s != '\0') {
		const char *e = strchr(s, '&');
		const char *eq;
		size_t len = e != NULL ? (size_t)(e - s) : strlen(s);
		char *name, *value;
		size_t nlen;

		eq = memchr(s, '=', len);
		nlen = eq != NULL ? (size_t)(eq - s) : len;
		name = aclm_http_arena_alloc(&req->arena, nlen + 1);
		value = aclm_http_arena_alloc(&req->arena, len - nlen + 1);
		if (name == NULL || value == NULL)
			return ACLM_ERR_NOMEM;
		if (len > 0 && pct_decode(s, nlen, name, true) >= 0 &&
		    (eq == NULL || pct_decode(eq + 1, len - nlen - 1, value, true) >= 0)) {
			req->qs[req->n_qs].name = name;
			req->qs[req->n_qs].value = value;
			req->n_qs++;
		}
		s += len;
		if (*s == '&')
			s++;
	}
	return ACLM_OK;
}

/* ---- request accessors --------------------------------------------------- */

const char *aclm_http_req_method(const struct aclm_http_req *req)
{
	return req->msg->method;
}

const char *aclm_http_req_path(const struct aclm_http_req *req)
{
	return req->path;
}

const char *aclm_http_req_target(const struct aclm_http_req *req)
{
	return req->msg->target;
}

const char *aclm_http_req_query(const struct aclm_http_req *req)
{
	return req->query;
}

const char *aclm_http_query_get(const struct aclm_http_req *req, const char *name)
{
	struct aclm_http_req *r = (struct aclm_http_req *)req;  /* lazy cache */

	if (parse_query(r) != ACLM_OK)
		return NULL;
	for (size_t i = 0; i < r->n_qs; i++)
		if (strcmp(r->qs[i].name, name) == 0)
			return r->qs[i].value;
	return NULL;
}

const char *aclm_http_req_header(const struct aclm_http_req *req, const char *name)
{
	return aclm_http_msg_header(req->msg, name);
}

size_t aclm_http_req_header_count(const struct aclm_http_req *req)
{
	return req->msg->n_headers;
}

const struct aclm_http_header *aclm_http_req_header_at(const struct aclm_http_req *req,
                                                       size_t i)
{
	return i < req->msg->n_headers ? &req->msg->headers[i] : NULL;
}

const char *aclm_http_req_param(const struct aclm_http_req *req, const char *name)
{
	for (size_t i = 0; i < req->n_params; i++)
		if (strcmp(req->params[i].name, name) == 0)
			return req->params[i].value;
	return NULL;
}

const unsigned char *aclm_http_req_body(const struct aclm_http_req *req, size_t *len)
{
	if (len != NULL)
		*len = req->msg->body_len;
	return req->msg->body;
}

const char *aclm_http_req_peer(const struct aclm_http_req *req)
{
	return req->peer;
}

bool aclm_http_req_is_tls(const struct aclm_http_req *req)
{
	return req->is_tls;
}

const char *aclm_http_req_route(const struct aclm_http_req *req)
{
	return req->route != NULL ? req->route : "";
}

struct aclm_http_server *aclm_http_req_server(const struct aclm_http_req *req)
{
	return req->srv;
}

void *aclm_http_req_alloc(struct aclm_http_req *req, size_t n)
{
	return aclm_http_arena_alloc(&req->arena, n);
}

/* ---- response helpers ------------------------------------------------------ */

static bool is_token(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      strchr("!#$%&'*+-.^_`|~", c) != NULL))
			return false;
	}
	return true;
}

int aclm_http_header_add(struct aclm_http_res *res, const char *name, const char *value)
{
	static const char *const reserved[] = {
		"Content-Length", "Transfer-Encoding", "Connection", "Date",
	};

	if (!is_token(name))
		return aclm_error(ACLM_ERR_USAGE, "HTTP response: bad header name \"%.64s\"", name);
	for (const char *c = value; *c != '\0'; c++)
		if (*c == '\r' || *c == '\n')
			return aclm_error(ACLM_ERR_USAGE,
			                  "HTTP response: CR or LF in the value of header %s", name);
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		if (strcasecmp(name, reserved[i]) == 0)
			return aclm_error(ACLM_ERR_USAGE,
			                  "HTTP response: header %s is set by the engine", name);
	if (strcasecmp(name, "Content-Type") == 0)
		res->has_content_type = true;
	return aclm_buf_printf(&res->headers, "%s: %s\r\n", name, value);
}

void aclm_http_res_status(struct aclm_http_res *res, int status)
{
	res->status = status;
}

int aclm_http_res_append(struct aclm_http_res *res, const void *data, size_t len)
{
	return aclm_buf_append(&res->body, data, len);
}

void aclm_http_res_close(struct aclm_http_res *res)
{
	res->close = true;
}

struct aclm_http_req *aclm_http_res_req(struct aclm_http_res *res)
{
	return res->req;
}

void aclm_http_res_on_abort(struct aclm_http_res *res, aclm_http_abort_fn fn, void *arg)
{
	res->on_abort = fn;
	res->abort_arg = arg;
}

void aclm_http_res_clear(struct aclm_http_res *res)
{
	aclm_buf_reset(&res->headers);
	aclm_buf_reset(&res->body);
	res->has_content_type = false;
	res->status = 200;
}

int aclm_http_reply(struct aclm_http_res *res, int status, const char *content_type,
                    const void *body, size_t len)
{
	int rc;

	if (status < 100 || status > 999)
		return aclm_error(ACLM_ERR_USAGE, "HTTP response: bad status %d", status);
	res->status = status;
	aclm_buf_reset(&res->body);
	if (content_type != NULL && !res->has_content_type &&
	    (rc = aclm_http_header_add(res, "Content-Type", content_type)) != ACLM_OK)
		return rc;
	return aclm_buf_append(&res->body, body != NULL ? body : "", body != NULL ? len : 0);
}

int aclm_http_reply_json(struct aclm_http_res *res, int status, json_t *json)
{
	char *text;
	int rc;

	if (json == NULL) {
		aclm_http_res_clear(res);
		return aclm_http_reply_error(res, 500, "internal", "internal error");
	}
	text = json_dumps(json, JSON_COMPACT);
	json_decref(json);
	if (text == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "HTTP response: JSON could not be serialized");
	rc = aclm_http_reply(res, status, "application/json", text, strlen(text));
	free(text);
	return rc;
}

int aclm_http_json_escape(struct aclm_buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		int rc;

		if (c == '"' || c == '\\')
			rc = aclm_buf_printf(b, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			rc = aclm_buf_printf(b, "\\u%04x", c);
		else
			rc = aclm_buf_putc(b, (char)c);
		if (rc != ACLM_OK)
			return rc;
	}
	return ACLM_OK;
}

int aclm_http_reply_error(struct aclm_http_res *res, int status, const char *error,
                          const char *fmt, ...)
{
	char detail[512];
	json_t *j;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	j = json_pack("{s:s, s:s}", "error", error, "detail", detail);
	if (j == NULL)  /* detail not UTF-8: say only what kind of error it was */
		j = json_pack("{s:s, s:s}", "error", error, "detail", "");
	if (j == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "HTTP response: out of memory");
	return aclm_http_reply_json(res, status, j);
}

int aclm_http_status_for_err(int err)
{
	switch (err) {
	case ACLM_ERR_NOTFOUND: return 404;
	case ACLM_ERR_PARSE: case ACLM_ERR_USAGE: return 400;
	case ACLM_ERR_TOOBIG: return 413;
	case ACLM_ERR_EXISTS: return 409;
	case ACLM_ERR_UNSUPPORTED: return 501;
	default: return 500;
	}
}

const char *aclm_http_status_text(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 412: return "Precondition Failed";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 417: return "Expectation Failed";
	case 422: return "Unprocessable Content";
	case 428: return "Precondition Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}
