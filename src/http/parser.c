/* Incremental, bounded HTTP/1.1 request parser (RFC 9112), no I/O.
 *
 * A byte-driven state machine.  Lines of the head are gathered into one
 * bounded buffer and checked when their CRLF arrives; the body is decoded
 * into a second buffer bounded by max_body.  Everything that could let two
 * HTTP implementations disagree about where a request ends (request
 * smuggling) is an error that closes the connection: see
 * docs/internals/http.md for the list and the reasons. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aclm/buf.h"
#include "aclm/err.h"
#include "aclm/http.h"
#include "http-int.h"

enum pstate {
	P_START,          /* before the request line: empty lines allowed */
	P_START_LF,       /* CR of an empty leading line seen */
	P_REQLINE,        /* gathering the request line */
	P_REQLINE_LF,
	P_HEADER,         /* gathering a header line (empty: end of head) */
	P_HEADER_LF,
	P_BODY,           /* Content-Length body */
	P_CHUNK_SIZE,     /* hex digits */
	P_CHUNK_EXT,      /* ";ext" after the size */
	P_CHUNK_SIZE_LF,
	P_CHUNK_DATA,
	P_CHUNK_DATA_CR,  /* CRLF after the chunk data */
	P_CHUNK_DATA_LF,
	P_TRAILER_START,  /* first byte of a trailer line (or CR of the end) */
	P_TRAILER_NAME,
	P_TRAILER_VALUE,
	P_TRAILER_LF,
	P_END_LF,         /* LF of the final empty line after the trailers */
	P_DONE,
	P_ERROR,
};

/* Header fields are kept as offsets while the head buffer may still move. */
struct hdr_off {
	uint32_t name;
	uint32_t value;
};

struct aclm_http_parser {
	struct aclm_http_limits lim;
	enum pstate st;
	struct aclm_buf head;        /* request line + header lines, NULs in place */
	size_t line_start;           /* offset of the line being gathered */
	size_t n_leading;            /* bytes of empty lines before the request line */
	size_t header_bytes;         /* bytes of the header section so far */
	size_t n_fields;             /* header + trailer fields seen */
	struct hdr_off *offs;
	size_t n_offs, cap_offs;
	struct aclm_http_header *hdrs;
	struct aclm_buf body;
	uint64_t remaining;          /* body or chunk bytes still to come */
	unsigned chunk_digits;
	size_t chunk_line;           /* bytes of the chunk-size line */
	size_t total;                /* bytes taken for this request */
	bool head_done;
	bool saw_cl, saw_te;
	int64_t content_length;
	struct aclm_http_msg msg;
	int status;
	const char *reason;
};

/* Longest chunk-size line (size and extensions) accepted. */
#define CHUNK_LINE_MAX 1024

static bool is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* field-vchar / SP / HTAB / obs-text: anything but CTLs (HTAB allowed). */
static bool is_value_char(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int fail(struct aclm_http_parser *p, int status, const char *reason)
{
	int code;

	p->st = P_ERROR;
	p->status = status;
	p->reason = reason;
	switch (status) {
	case 413: case 414: case 431: code = ACLM_ERR_TOOBIG; break;
	case 501: case 505: code = ACLM_ERR_UNSUPPORTED; break;
	default: code = ACLM_ERR_PARSE; break;
	}
	return aclm_error(code, "HTTP request: %s (%d)", reason, status);
}

int aclm_http_parser_new(const struct aclm_http_limits *limits, struct aclm_http_parser **out)
{
	struct aclm_http_parser *p;

	*out = NULL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory (HTTP parser)");
	aclm_http_limits_normalize(limits, &p->lim);
	aclm_buf_init(&p->head, p->lim.max_request_line + p->lim.max_header_bytes + 4);
	aclm_buf_init(&p->body, p->lim.max_body + 1);
	aclm_http_parser_reset(p);
	*out = p;
	return ACLM_OK;
}

void aclm_http_limits_normalize(const struct aclm_http_limits *in, struct aclm_http_limits *out)
{
	static const struct aclm_http_limits none;

	if (in == NULL)
		in = &none;
	out->max_request_line = in->max_request_line != 0 ? in->max_request_line
	                                                  : ACLM_HTTP_DEFAULT_MAX_REQUEST_LINE;
	out->max_headers = in->max_headers != 0 ? in->max_headers : ACLM_HTTP_DEFAULT_MAX_HEADERS;
	out->max_header_bytes = in->max_header_bytes != 0 ? in->max_header_bytes
	                                                  : ACLM_HTTP_DEFAULT_MAX_HEADER_BYTES;
	out->max_body = in->max_body != 0 ? in->max_body : ACLM_HTTP_DEFAULT_MAX_BODY;
	/* Offsets are 32-bit. */
	if (out->max_request_line > (1u << 24))
		out->max_request_line = 1u << 24;
	if (out->max_header_bytes > (1u << 24))
		out->max_header_bytes = 1u << 24;
}

void aclm_http_parser_reset(struct aclm_http_parser *p)
{
	/* Idle keep-alive connections should cost little: give big buffers back. */
	if (p->head.cap > 4096)
		aclm_buf_free(&p->head);
	else
		aclm_buf_reset(&p->head);
	if (p->body.cap > 4096)
		aclm_buf_free(&p->body);
	else
		aclm_buf_reset(&p->body);
	free(p->offs);
	free(p->hdrs);
	p->offs = NULL;
	p->hdrs = NULL;
	p->n_offs = p->cap_offs = 0;
	p->st = P_START;
	p->line_start = 0;
	p->n_leading = 0;
	p->header_bytes = 0;
	p->n_fields = 0;
	p->remaining = 0;
	p->chunk_digits = 0;
	p->chunk_line = 0;
	p->total = 0;
	p->head_done = false;
	p->saw_cl = p->saw_te = false;
	p->content_length = -1;
	memset(&p->msg, 0, sizeof(p->msg));
	p->status = 0;
	p->reason = "";
}

void aclm_http_parser_free(struct aclm_http_parser *p)
{
	if (p == NULL)
		return;
	aclm_buf_free(&p->head);
	aclm_buf_free(&p->body);
	free(p->offs);
	free(p->hdrs);
	free(p);
}

/* ---- the head --------------------------------------------------------- */

static char *head_at(struct aclm_http_parser *p, size_t off)
{
	return (char *)p->head.data + off;
}

/* "METHOD SP target SP HTTP/1.x", already without CRLF, NUL-terminated. */
static int parse_request_line(struct aclm_http_parser *p)
{
	char *line = head_at(p, p->line_start);
	char *sp1, *sp2, *ver, *target;
	size_t len = strlen(line);

	if (len != p->head.len - p->line_start)
		return fail(p, 400, "NUL byte in the request line");
	sp1 = strchr(line, ' ');
	if (sp1 == NULL || sp1 == line)
		return fail(p, 400, "malformed request line");
	for (char *c = line; c < sp1; c++)
		if (!is_tchar((unsigned char)*c))
			return fail(p, 400, "bad character in the method");
	target = sp1 + 1;
	sp2 = strchr(target, ' ');
	if (sp2 == NULL || sp2 == target)
		return fail(p, 400, "malformed request line");
	ver = sp2 + 1;
	if (strchr(ver, ' ') != NULL)
		return fail(p, 400, "malformed request line (extra spaces)");
	for (char *c = target; c < sp2; c++)
		if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
			return fail(p, 400, "bad character in the request target");
	if (strncmp(ver, "HTTP/", 5) != 0 || strlen(ver) != 8 || ver[6] != '.' ||
	    ver[5] < '0' || ver[5] > '9' || ver[7] < '0' || ver[7] > '9')
		return fail(p, 400, "malformed HTTP version");
	if (ver[5] != '1')
		return fail(p, 505, "HTTP version not supported");
	*sp1 = '\0';
	*sp2 = '\0';
	if (*target == '*') {
		if (sp2 - target != 1 || strcmp(line, "OPTIONS") != 0)
			return fail(p, 400, "asterisk target outside OPTIONS");
	} else if (*target != '/' && strncasecmp(target, "http://", 7) != 0 &&
	           strncasecmp(target, "https://", 8) != 0) {
		return fail(p, 400, "request target is neither a path nor an absolute URI");
	}
	p->msg.version_minor = ver[7] == '0' ? 0 : 1;
	p->msg.method = line;        /* pointers fixed up at the end of the head */
	p->msg.target = target;
	return ACLM_OK;
}

/* "name: value" without CRLF; stores offsets. */
static int parse_header_line(struct aclm_http_parser *p)
{
	char *line = head_at(p, p->line_start);
	size_t len = p->head.len - p->line_start;
	char *colon, *v, *end;

	if (line[0] == ' ' || line[0] == '\t')
		return fail(p, 400, "obsolete line folding in a header");
	if (strlen(line) != len)
		return fail(p, 400, "NUL byte in a header");
	colon = memchr(line, ':', len);
	if (colon == NULL)
		return fail(p, 400, "header line without a colon");
	if (colon == line)
		return fail(p, 400, "empty header name");
	for (char *c = line; c < colon; c++) {
		if (*c == ' ' || *c == '\t')
			return fail(p, 400, "whitespace between a header name and the colon");
		if (!is_tchar((unsigned char)*c))
			return fail(p, 400, "bad character in a header name");
	}
	for (char *c = colon + 1; c < line + len; c++)
		if (!is_value_char((unsigned char)*c))
			return fail(p, 400, "control character in a header value");
	if (++p->n_fields > p->lim.max_headers)
		return fail(p, 431, "too many header fields");
	*colon = '\0';
	v = colon + 1;
	while (*v == ' ' || *v == '\t')
		v++;
	end = line + len;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	if (p->n_offs == p->cap_offs) {
		size_t ncap = p->cap_offs != 0 ? p->cap_offs * 2 : 16;
		struct hdr_off *n = realloc(p->offs, ncap * sizeof(*n));

		if (n == NULL)
			return fail(p, 503, "out of memory");
		p->offs = n;
		p->cap_offs = ncap;
	}
	p->offs[p->n_offs].name = (uint32_t)p->line_start;
	p->offs[p->n_offs].value = (uint32_t)(v - (char *)p->head.data);
	p->n_offs++;
	return ACLM_OK;
}

/* Does the comma-separated list value contain token tok (case-insensitive)? */
static bool list_has(const char *value, const char *tok)
{
	size_t tlen = strlen(tok);
	const char *s = value;

	while (*s != '\0') {
		const char *e;
		size_t n;

		while (*s == ' ' || *s == '\t' || *s == ',')
			s++;
		e = s;
		while (*e != '\0' && *e != ',')
			e++;
		n = (size_t)(e - s);
		while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
			n--;
		if (n == tlen && strncasecmp(s, tok, n) == 0)
			return true;
		s = e;
	}
	return false;
}

/* Transfer-Encoding: only "chunked", once, is understood. */
static int check_transfer_encoding(struct aclm_http_parser *p, const char *value)
{
	const char *s = value;
	bool chunked = false;

	if (*s == '\0')
		return fail(p, 400, "empty Transfer-Encoding");
	while (*s != '\0') {
		const char *e;
		size_t n;

		while (*s == ' ' || *s == '\t')
			s++;
		e = s;
		while (*e != '\0' && *e != ',')
			e++;
		n = (size_t)(e - s);
		while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
			n--;
		if (n == 0)
			return fail(p, 400, "empty element in Transfer-Encoding");
		if (n == 7 && strncasecmp(s, "chunked", 7) == 0) {
			if (chunked || p->msg.is_chunked)
				return fail(p, 400, "chunked applied twice");
			chunked = true;
		} else {
			return fail(p, 501, "transfer coding not implemented");
		}
		s = *e == ',' ? e + 1 : e;
	}
	p->msg.is_chunked = true;
	return ACLM_OK;
}

/* The head is complete: fix up pointers, decide framing and keep-alive. */
static int finish_head(struct aclm_http_parser *p)
{
	char *base = (char *)p->head.data;
	bool conn_close = false, conn_keep = false;
	size_t n_host = 0;

	p->msg.method = base;
	p->msg.target = base + strlen(base) + 1;
	if (p->n_offs > 0) {
		p->hdrs = calloc(p->n_offs, sizeof(*p->hdrs));
		if (p->hdrs == NULL)
			return fail(p, 503, "out of memory");
	}
	for (size_t i = 0; i < p->n_offs; i++) {
		const char *name = base + p->offs[i].name;
		const char *value = base + p->offs[i].value;

		p->hdrs[i].name = name;
		p->hdrs[i].value = value;
		if (strcasecmp(name, "Content-Length") == 0) {
			int64_t v = 0;

			if (p->saw_cl)
				return fail(p, 400, "more than one Content-Length");
			p->saw_cl = true;
			if (*value == '\0')
				return fail(p, 400, "empty Content-Length");
			for (const char *c = value; *c != '\0'; c++) {
				if (*c < '0' || *c > '9')
					return fail(p, 400, "Content-Length is not a number");
				if (v > (INT64_MAX - 9) / 10)
					return fail(p, 400, "Content-Length overflows");
				v = v * 10 + (*c - '0');
			}
			p->content_length = v;
		} else if (strcasecmp(name, "Transfer-Encoding") == 0) {
			int rc;

			p->saw_te = true;
			if ((rc = check_transfer_encoding(p, value)) != ACLM_OK)
				return rc;
		} else if (strcasecmp(name, "Connection") == 0) {
			if (list_has(value, "close"))
				conn_close = true;
			if (list_has(value, "keep-alive"))
				conn_keep = true;
		} else if (strcasecmp(name, "Host") == 0) {
			n_host++;
		} else if (strcasecmp(name, "Expect") == 0) {
			if (strcasecmp(value, "100-continue") != 0)
				return fail(p, 417, "unsupported expectation");
			p->msg.expect_continue = true;
		}
	}
	p->msg.headers = p->hdrs;
	p->msg.n_headers = p->n_offs;
	if (p->saw_cl && p->saw_te)
		return fail(p, 400, "both Content-Length and Transfer-Encoding");
	if (p->saw_te && p->msg.version_minor == 0)
		return fail(p, 400, "Transfer-Encoding in an HTTP/1.0 request");
	if (p->msg.version_minor == 1 && n_host != 1)
		return fail(p, 400, n_host == 0 ? "HTTP/1.1 request without Host"
		                                : "more than one Host header");
	if (n_host > 1)
		return fail(p, 400, "more than one Host header");
	if (p->msg.version_minor == 0)
		p->msg.expect_continue = false;
	p->msg.keep_alive = p->msg.version_minor == 1 ? !conn_close : (conn_keep && !conn_close);
	if (p->saw_cl && (uint64_t)p->content_length > p->lim.max_body)
		return fail(p, 413, "body larger than the limit");
	p->head_done = true;
	if (p->msg.is_chunked) {
		p->st = P_CHUNK_SIZE;
		p->remaining = 0;
		p->chunk_digits = 0;
		p->chunk_line = 0;
	} else if (p->content_length > 0) {
		p->remaining = (uint64_t)p->content_length;
		if (aclm_buf_append(&p->body, "", 0) != ACLM_OK)
			return fail(p, 503, "out of memory");
		p->st = P_BODY;
	} else {
		p->st = P_DONE;
	}
	return ACLM_OK;
}

/* ---- the byte loop ----------------------------------------------------- */

/* Append the run of ordinary bytes of a head line that starts at d[*i]
 * (up to CR, LF or NUL, which the caller's state handles), enforcing the
 * limit of its section.  Over the limit it takes exactly the bytes that
 * still fit and fails, as if they had come one by one. */
static int head_run(struct aclm_http_parser *p, const unsigned char *d, size_t len, size_t *i,
                    bool in_reqline)
{
	size_t j = *i, n, room;

	while (j < len && d[j] != '\r' && d[j] != '\n' && d[j] != '\0')
		j++;
	n = j - *i;
	room = in_reqline ? p->lim.max_request_line - (p->head.len - p->line_start)
	                  : p->lim.max_header_bytes - p->header_bytes;
	if (n > room)
		n = room;
	if (aclm_buf_append(&p->head, d + *i, n) != ACLM_OK)
		return fail(p, 503, "out of memory");
	if (!in_reqline)
		p->header_bytes += n;
	*i += n;
	p->total += n;
	if (*i < j)     /* the byte at *i does not fit */
		return in_reqline ? fail(p, 414, "request line longer than the limit")
		                  : fail(p, 431, "header section larger than the limit");
	return ACLM_OK;
}

static int chunk_size_done(struct aclm_http_parser *p)
{
	if (p->remaining == 0) {
		p->st = P_TRAILER_START;
		p->line_start = 0;
		return ACLM_OK;
	}
	if (p->remaining > p->lim.max_body - p->body.len)
		return fail(p, 413, "body larger than the limit");
	p->st = P_CHUNK_DATA;
	return ACLM_OK;
}

static int trailer_byte(struct aclm_http_parser *p)
{
	if (p->header_bytes + 1 > p->lim.max_header_bytes)
		return fail(p, 431, "trailer section larger than the limit");
	p->header_bytes++;
	return ACLM_OK;
}

int aclm_http_parser_feed(struct aclm_http_parser *p, const void *data, size_t len,
                          size_t *consumed)
{
	const unsigned char *d = data;
	size_t i = 0;
	int rc = ACLM_OK;

	*consumed = 0;
	if (p->st == P_ERROR)
		return ACLM_ERR_PARSE;
	if (p->st == P_DONE)
		return 1;
	while (i < len) {
		unsigned char c = d[i];

		switch (p->st) {
		case P_START:
			if (c == '\r') {
				p->st = P_START_LF;
			} else if (c == '\n') {
				rc = fail(p, 400, "bare LF before the request line");
			} else {
				p->st = P_REQLINE;
				continue;       /* same byte, next state */
			}
			if (rc == ACLM_OK && ++p->n_leading > p->lim.max_request_line)
				rc = fail(p, 414, "too many empty lines before the request line");
			break;
		case P_START_LF:
			if (c != '\n')
				rc = fail(p, 400, "bare CR before the request line");
			else
				p->st = P_START;
			break;
		case P_REQLINE:
			if (c == '\r')
				p->st = P_REQLINE_LF;
			else if (c == '\n')
				rc = fail(p, 400, "bare LF in the request line");
			else if (c == '\0')
				rc = fail(p, 400, "NUL byte in the request line");
			else if ((rc = head_run(p, d, len, &i, true)) == ACLM_OK)
				continue;
			break;
		case P_REQLINE_LF:
			if (c != '\n') {
				rc = fail(p, 400, "bare CR in the request line");
				break;
			}
			/* The buffer is NUL-terminated past len: the line is a string.
			 * Keep that NUL as the separator from the next line. */
			if ((rc = parse_request_line(p)) != ACLM_OK)
				break;
			if (aclm_buf_append(&p->head, "", 1) != ACLM_OK) {
				rc = fail(p, 414, "request line longer than the limit");
				break;
			}
			p->line_start = p->head.len;
			p->st = P_HEADER;
			break;
		case P_HEADER:
			if (c == '\r')
				p->st = P_HEADER_LF;
			else if (c == '\n')
				rc = fail(p, 400, "bare LF in the header section");
			else if (c == '\0')
				rc = fail(p, 400, "NUL byte in a header");
			else if ((rc = head_run(p, d, len, &i, false)) == ACLM_OK)
				continue;
			break;
		case P_HEADER_LF:
			if (c != '\n') {
				rc = fail(p, 400, "bare CR in the header section");
				break;
			}
			if (p->header_bytes + 2 > p->lim.max_header_bytes) {
				rc = fail(p, 431, "header section larger than the limit");
				break;
			}
			p->header_bytes += 2;
			if (p->head.len == p->line_start) {
				p->total += 1;
				i++;
				rc = finish_head(p);
				if (rc != ACLM_OK)
					goto out;
				if (p->st == P_DONE)
					goto out;
				continue;
			}
			if ((rc = parse_header_line(p)) != ACLM_OK)
				break;
			if (aclm_buf_append(&p->head, "", 1) != ACLM_OK) {
				rc = fail(p, 431, "header section larger than the limit");
				break;
			}
			p->line_start = p->head.len;
			p->st = P_HEADER;
			break;
		case P_BODY: {
			size_t n = len - i;

			if (n > p->remaining)
				n = (size_t)p->remaining;
			if (aclm_buf_append(&p->body, d + i, n) != ACLM_OK) {
				rc = fail(p, 413, "body larger than the limit");
				break;
			}
			p->remaining -= n;
			p->total += n;
			i += n;
			if (p->remaining == 0) {
				p->st = P_DONE;
				goto out;
			}
			continue;
		}
		case P_CHUNK_SIZE: {
			int h = hexval(c);

			if (++p->chunk_line > CHUNK_LINE_MAX) {
				rc = fail(p, 400, "chunk-size line too long");
				break;
			}
			if (h >= 0) {
				if (++p->chunk_digits > 16 || p->remaining > (UINT64_MAX >> 4)) {
					rc = fail(p, 400, "chunk size overflows");
					break;
				}
				p->remaining = (p->remaining << 4) | (uint64_t)h;
			} else if (p->chunk_digits == 0) {
				rc = fail(p, 400, "chunk size is not hexadecimal");
			} else if (c == ';') {
				p->st = P_CHUNK_EXT;
			} else if (c == '\r') {
				p->st = P_CHUNK_SIZE_LF;
			} else {
				rc = fail(p, 400, "bad character after the chunk size");
			}
			break;
		}
		case P_CHUNK_EXT:
			if (++p->chunk_line > CHUNK_LINE_MAX)
				rc = fail(p, 400, "chunk-size line too long");
			else if (c == '\r')
				p->st = P_CHUNK_SIZE_LF;
			else if (!is_value_char(c) || c == '\t')
				rc = fail(p, 400, "control character in a chunk extension");
			break;
		case P_CHUNK_SIZE_LF:
			if (c != '\n')
				rc = fail(p, 400, "chunk-size line without CRLF");
			else
				rc = chunk_size_done(p);
			break;
		case P_CHUNK_DATA: {
			size_t n = len - i;

			if (n > p->remaining)
				n = (size_t)p->remaining;
			if (aclm_buf_append(&p->body, d + i, n) != ACLM_OK) {
				rc = fail(p, 413, "body larger than the limit");
				break;
			}
			p->remaining -= n;
			p->total += n;
			i += n;
			if (p->remaining == 0)
				p->st = P_CHUNK_DATA_CR;
			continue;
		}
		case P_CHUNK_DATA_CR:
			if (c != '\r')
				rc = fail(p, 400, "chunk data not followed by CRLF");
			else
				p->st = P_CHUNK_DATA_LF;
			break;
		case P_CHUNK_DATA_LF:
			if (c != '\n') {
				rc = fail(p, 400, "chunk data not followed by CRLF");
				break;
			}
			p->st = P_CHUNK_SIZE;
			p->remaining = 0;
			p->chunk_digits = 0;
			p->chunk_line = 0;
			break;
		case P_TRAILER_START:
			if (c == '\r') {
				p->st = P_END_LF;
				break;
			}
			if (c == ' ' || c == '\t') {
				rc = fail(p, 400, "obsolete line folding in a trailer");
				break;
			}
			if (++p->n_fields > p->lim.max_headers) {
				rc = fail(p, 431, "too many header and trailer fields");
				break;
			}
			p->st = P_TRAILER_NAME;
			continue;
		case P_TRAILER_NAME:
			if ((rc = trailer_byte(p)) != ACLM_OK)
				break;
			if (c == ':') {
				if (p->line_start == 0)
					rc = fail(p, 400, "empty trailer name");
				p->st = P_TRAILER_VALUE;
			} else if (c == ' ' || c == '\t') {
				rc = fail(p, 400, "whitespace between a trailer name and the colon");
			} else if (!is_tchar(c)) {
				rc = fail(p, 400, c == '\n' || c == '\r' ? "trailer line without a colon"
				                                          : "bad character in a trailer name");
			} else {
				p->line_start++;   /* counts the name length here */
			}
			break;
		case P_TRAILER_VALUE:
			if ((rc = trailer_byte(p)) != ACLM_OK)
				break;
			if (c == '\r')
				p->st = P_TRAILER_LF;
			else if (c == '\n')
				rc = fail(p, 400, "bare LF in a trailer");
			else if (!is_value_char(c))
				rc = fail(p, 400, "control character in a trailer value");
			break;
		case P_TRAILER_LF:
			if ((rc = trailer_byte(p)) != ACLM_OK)
				break;
			if (c != '\n') {
				rc = fail(p, 400, "bare CR in a trailer");
				break;
			}
			p->line_start = 0;
			p->st = P_TRAILER_START;
			break;
		case P_END_LF:
			if (c != '\n') {
				rc = fail(p, 400, "bare CR at the end of the trailers");
				break;
			}
			p->st = P_DONE;
			p->total++;
			i++;
			goto out;
		case P_DONE:
		case P_ERROR:
			goto out;
		}
		if (rc != ACLM_OK)
			goto out;
		p->total++;
		i++;
	}
out:
	*consumed = i;
	if (rc != ACLM_OK || p->st == P_ERROR)
		return rc != ACLM_OK ? rc : ACLM_ERR_PARSE;
	if (p->st == P_DONE) {
		if (p->body.data == NULL && aclm_buf_append(&p->body, "", 0) != ACLM_OK)
			return fail(p, 503, "out of memory");
		p->msg.body = p->body.data;
		p->msg.body_len = p->body.len;
		return 1;
	}
	return ACLM_AGAIN;
}

const struct aclm_http_msg *aclm_http_parser_msg(const struct aclm_http_parser *p)
{
	return p->st == P_DONE ? &p->msg : NULL;
}

bool aclm_http_parser_head_done(const struct aclm_http_parser *p)
{
	return p->head_done;
}

const char *aclm_http_parser_method(const struct aclm_http_parser *p)
{
	return p->head_done ? p->msg.method : NULL;
}

bool aclm_http_parser_expects_continue(const struct aclm_http_parser *p)
{
	return p->head_done && p->msg.expect_continue;
}

bool aclm_http_parser_keep_alive(const struct aclm_http_parser *p)
{
	return p->head_done && p->msg.keep_alive;
}

int aclm_http_parser_status(const struct aclm_http_parser *p)
{
	return p->status;
}

const char *aclm_http_parser_reason(const struct aclm_http_parser *p)
{
	return p->reason;
}

size_t aclm_http_parser_bytes(const struct aclm_http_parser *p)
{
	return p->total;
}

bool aclm_http_parser_started(const struct aclm_http_parser *p)
{
	return p->total > 0;
}

const char *aclm_http_msg_header(const struct aclm_http_msg *m, const char *name)
{
	for (size_t i = 0; i < m->n_headers; i++)
		if (strcasecmp(m->headers[i].name, name) == 0)
			return m->headers[i].value;
	return NULL;
}
