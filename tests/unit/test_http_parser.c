/* Unit tests of the HTTP request parser (src/http/parser.c): a table of good
 * and bad requests (every request-smuggling shape, the limits, chunked edge
 * cases), each fed at once and byte by byte with the same outcome;
 * pipelined requests; keep-alive rules; the router's path decoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aclm/err.h"
#include "aclm/http.h"

struct pcase {
	const char *name;
	const char *in;
	int status;              /* 0: a good request; else the HTTP status */
	const char *body;        /* expected body of a good request */
	int keep_alive;          /* -1: don't check */
};

static const struct pcase cases[] = {
	/* ---- good ---- */
	{ "simple GET", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0, "", 1 },
	{ "HTTP/1.0 without Host", "GET /x HTTP/1.0\r\n\r\n", 0, "", 0 },
	{ "HTTP/1.0 keep-alive", "GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 0, "", 1 },
	{ "HTTP/1.1 close", "GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, close\r\n\r\n",
	  0, "", 0 },
	{ "HTTP/1.1 close, case", "GET / HTTP/1.1\r\nHost: a\r\nconnection: CLOSE\r\n\r\n", 0, "", 0 },
	{ "leading empty line", "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 0, "", 1 },
	{ "Content-Length body", "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
	  0, "hello", 1 },
	{ "Content-Length 0", "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", 0, "", 1 },
	{ "no length, no body", "POST /p HTTP/1.1\r\nHost: a\r\n\r\n", 0, "", 1 },
	{ "chunked", "POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 0, "hello world", 1 },
	{ "chunked, upper hex and extension", "POST /p HTTP/1.1\r\nHost: a\r\n"
	  "Transfer-Encoding: Chunked\r\n\r\nA;name=val\r\n0123456789\r\n0\r\n\r\n",
	  0, "0123456789", 1 },
	{ "chunked with trailers", "POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
	  "\r\n3\r\nabc\r\n0\r\nX-Sum: 1\r\nX-Other: two words\r\n\r\n", 0, "abc", 1 },
	{ "chunked, leading zeros", "POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
	  "\r\n0003\r\nabc\r\n000\r\n\r\n", 0, "abc", 1 },
	{ "header value blanks trimmed", "GET / HTTP/1.1\r\nHost:   a \t\r\nX-E:\r\n\r\n", 0, "", 1 },
	{ "HTTP/1.9 treated as 1.1", "GET / HTTP/1.9\r\nHost: a\r\n\r\n", 0, "", 1 },
	{ "absolute-form", "GET http://a/x?y HTTP/1.1\r\nHost: a\r\n\r\n", 0, "", 1 },
	{ "OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 0, "", 1 },
	{ "obs-text in a value", "GET / HTTP/1.1\r\nHost: a\r\nX-T: caf\xc3\xa9\r\n\r\n", 0, "", 1 },
	{ "Expect 100-continue", "PUT /u HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n"
	  "Content-Length: 2\r\n\r\nok", 0, "ok", 1 },

	/* ---- request smuggling shapes: 400 ---- */
	{ "CL and TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
	  "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, NULL, -1 },
	{ "TE and CL", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
	  "Content-Length: 3\r\n\r\n0\r\n\r\n", 400, NULL, -1 },
	{ "duplicate CL, same value", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
	  "Content-Length: 3\r\n\r\nabc", 400, NULL, -1 },
	{ "differing CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
	  "Content-Length: 4\r\n\r\nabcd", 400, NULL, -1 },
	{ "CL list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc", 400, NULL, -1 },
	{ "CL with sign", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc", 400, NULL, -1 },
	{ "CL hex", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x3\r\n\r\nabc", 400, NULL, -1 },
	{ "CL empty", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", 400, NULL, -1 },
	{ "CL overflow", "POST / HTTP/1.1\r\nHost: a\r\n"
	  "Content-Length: 99999999999999999999999\r\n\r\n", 400, NULL, -1 },
	{ "obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", 400, NULL, -1 },
	{ "obs-fold tab", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n", 400, NULL, -1 },
	{ "space before colon", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 0\r\n\r\n",
	  400, NULL, -1 },
	{ "tab before colon", "GET / HTTP/1.1\r\nHost: a\r\nX-A\t: b\r\n\r\n", 400, NULL, -1 },
	{ "bare LF in headers", "GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", 400, NULL, -1 },
	{ "bare LF ends head", "GET / HTTP/1.1\r\nHost: a\r\n\n", 400, NULL, -1 },
	{ "bare LF request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", 400, NULL, -1 },
	{ "bare CR in header", "GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n", 400, NULL, -1 },
	{ "bare CR in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400, NULL, -1 },
	{ "NUL in header", "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", 400, NULL, -1 },
	{ "NUL in request line", "GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n", 400, NULL, -1 },
	{ "chunk size not hex", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "g\r\nx\r\n0\r\n\r\n", 400, NULL, -1 },
	{ "chunk size empty", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "\r\n", 400, NULL, -1 },
	{ "chunk size negative", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "-1\r\nx\r\n0\r\n\r\n", 400, NULL, -1 },
	{ "chunk size 0x", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "0x3\r\nabc\r\n0\r\n\r\n", 400, NULL, -1 },
	{ "chunk size overflow", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "10000000000000001\r\nx\r\n0\r\n\r\n", 400, NULL, -1 },
	{ "chunk size space", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "3 \r\nabc\r\n0\r\n\r\n", 400, NULL, -1 },
	{ "chunk size bare LF", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "3\nabc\r\n0\r\n\r\n", 400, NULL, -1 },
	{ "chunk data without CRLF", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
	  "\r\n3\r\nabcd\r\n0\r\n\r\n", 400, NULL, -1 },
	{ "chunk data bare LF", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
	  "\r\n3\r\nabc\n0\r\n\r\n", 400, NULL, -1 },
	{ "last chunk without final CRLF", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked"
	  "\r\n\r\n0\r\nX\r\n\r\n", 400, NULL, -1 },
	{ "trailer obs-fold", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "0\r\nX: a\r\n b\r\n\r\n", 400, NULL, -1 },
	{ "trailer space before colon", "POST / HTTP/1.1\r\nHost: a\r\n"
	  "Transfer-Encoding: chunked\r\n\r\n0\r\nX : a\r\n\r\n", 400, NULL, -1 },
	{ "chunked twice", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n"
	  "\r\n0\r\n\r\n", 400, NULL, -1 },
	{ "chunked in two headers", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
	  "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, NULL, -1 },
	{ "TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	  400, NULL, -1 },
	{ "no Host in 1.1", "GET / HTTP/1.1\r\n\r\n", 400, NULL, -1 },
	{ "two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, NULL, -1 },
	{ "header without colon", "GET / HTTP/1.1\r\nHost: a\r\nX\r\n\r\n", 400, NULL, -1 },
	{ "empty header name", "GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n", 400, NULL, -1 },
	{ "bad header name char", "GET / HTTP/1.1\r\nHost: a\r\nX(y): x\r\n\r\n", 400, NULL, -1 },
	{ "control char in value", "GET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n", 400, NULL, -1 },
	{ "two spaces in request line", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400, NULL, -1 },
	{ "missing version", "GET /\r\nHost: a\r\n\r\n", 400, NULL, -1 },
	{ "lower-case version", "GET / http/1.1\r\nHost: a\r\n\r\n", 400, NULL, -1 },
	{ "bad target", "GET x HTTP/1.1\r\nHost: a\r\n\r\n", 400, NULL, -1 },
	{ "asterisk with GET", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400, NULL, -1 },
	{ "bad method char", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400, NULL, -1 },
	{ "non-ASCII in target", "GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", 400, NULL, -1 },
	{ "bare LF before request", "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, NULL, -1 },

	/* ---- other statuses ---- */
	{ "HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, NULL, -1 },
	{ "HTTP/0.9-ish", "GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505, NULL, -1 },
	{ "gzip coding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
	  501, NULL, -1 },
	{ "identity coding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n",
	  501, NULL, -1 },
	{ "unknown expectation", "GET / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", 417, NULL, -1 },
};

/* Feed all of in at once or byte by byte; returns 1 or the error status, and
 * the bytes used. */
static int run(struct aclm_http_parser *p, const char *in, size_t len, bool bytewise,
               size_t *used)
{
	size_t total = 0, c = 0;
	int rc = ACLM_AGAIN;

	if (!bytewise) {
		rc = aclm_http_parser_feed(p, in, len, &c);
		total = c;
	} else {
		for (size_t i = 0; i < len; i++) {
			rc = aclm_http_parser_feed(p, in + i, 1, &c);
			total += c;
			if (rc != ACLM_AGAIN)
				break;
			assert_int_equal(c, 1);
		}
	}
	*used = total;
	if (rc == 1)
		return 1;
	if (rc == ACLM_AGAIN)
		return 0;
	assert_true(rc < 0);
	return aclm_http_parser_status(p);
}

static size_t case_len(const struct pcase *tc)
{
	/* The cases named "NUL ..." hold exactly one NUL byte. */
	const char *s = tc->in;
	size_t n = strlen(s);

	if (strstr(tc->name, "NUL") != NULL)
		n += 1 + strlen(s + n + 1);
	return n;
}

static void test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct pcase *tc = &cases[i];
		size_t len = case_len(tc);

		for (int bytewise = 0; bytewise < 2; bytewise++) {
			struct aclm_http_parser *p = NULL;
			size_t used = 0;
			int got;

			assert_int_equal(aclm_http_parser_new(NULL, &p), ACLM_OK);
			got = run(p, tc->in, len, bytewise != 0, &used);
			if (got != (tc->status == 0 ? 1 : tc->status))
				fail_msg("case \"%s\" (%s): got %d, want %d (%s)", tc->name,
				         bytewise ? "byte by byte" : "at once", got,
				         tc->status == 0 ? 1 : tc->status, aclm_http_parser_reason(p));
			if (tc->status == 0) {
				const struct aclm_http_msg *m = aclm_http_parser_msg(p);

				assert_non_null(m);
				assert_int_equal(used, len);
				assert_int_equal(m->body_len, strlen(tc->body));
				assert_memory_equal(m->body, tc->body, m->body_len);
				assert_int_equal(m->body[m->body_len], '\0');
				if (tc->keep_alive >= 0 && m->keep_alive != (tc->keep_alive != 0))
					fail_msg("case \"%s\": keep_alive %d", tc->name, m->keep_alive);
			} else {
				assert_null(aclm_http_parser_msg(p));
				assert_true(strlen(aclm_http_parser_reason(p)) > 0);
			}
			aclm_http_parser_free(p);
		}
	}
}

static void test_fields(void **state)
{
	static const char in[] = "POST /api/v1/x?limit=5 HTTP/1.1\r\nHost: example\r\n"
	                         "X-Mixed-Case:  v1 \r\nx-mixed-case: v2\r\n"
	                         "Content-Length: 3\r\n\r\nabc";
	struct aclm_http_parser *p = NULL;
	const struct aclm_http_msg *m;
	size_t used;

	(void)state;
	assert_int_equal(aclm_http_parser_new(NULL, &p), ACLM_OK);
	assert_int_equal(aclm_http_parser_feed(p, in, sizeof(in) - 1, &used), 1);
	m = aclm_http_parser_msg(p);
	assert_string_equal(m->method, "POST");
	assert_string_equal(m->target, "/api/v1/x?limit=5");
	assert_int_equal(m->version_minor, 1);
	assert_int_equal(m->n_headers, 4);
	assert_string_equal(m->headers[1].name, "X-Mixed-Case");
	assert_string_equal(aclm_http_msg_header(m, "x-MIXED-case"), "v1");
	assert_string_equal(aclm_http_msg_header(m, "HOST"), "example");
	assert_null(aclm_http_msg_header(m, "Cookie"));
	assert_int_equal(aclm_http_parser_bytes(p), sizeof(in) - 1);
	/* Done means done: more bytes are not taken until a reset. */
	assert_int_equal(aclm_http_parser_feed(p, "GET", 3, &used), 1);
	assert_int_equal(used, 0);
	aclm_http_parser_reset(p);
	assert_null(aclm_http_parser_msg(p));
	assert_int_equal(aclm_http_parser_feed(p, "GET / HTTP/1.0\r\n\r\n", 18, &used), 1);
	assert_string_equal(aclm_http_parser_msg(p)->target, "/");
	aclm_http_parser_free(p);
}

/* Three requests in one buffer: each ends exactly where the next begins. */
static void test_pipelining(void **state)
{
	static const char in[] =
		"GET /one HTTP/1.1\r\nHost: a\r\n\r\n"
		"POST /two HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nabcd"
		"POST /three HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
		"2\r\nxy\r\n0\r\n\r\n"
		"GET /four HTTP/1.1\r\nHo";
	static const char *const targets[] = { "/one", "/two", "/three" };
	static const char *const bodies[] = { "", "abcd", "xy" };
	struct aclm_http_parser *p = NULL;
	size_t off = 0, used;

	(void)state;
	assert_int_equal(aclm_http_parser_new(NULL, &p), ACLM_OK);
	for (int i = 0; i < 3; i++) {
		const struct aclm_http_msg *m;

		assert_int_equal(aclm_http_parser_feed(p, in + off, sizeof(in) - 1 - off, &used), 1);
		m = aclm_http_parser_msg(p);
		assert_string_equal(m->target, targets[i]);
		assert_string_equal((const char *)m->body, bodies[i]);
		off += used;
		aclm_http_parser_reset(p);
	}
	assert_memory_equal(in + off, "GET /four", 9);
	assert_int_equal(aclm_http_parser_feed(p, in + off, sizeof(in) - 1 - off, &used), ACLM_AGAIN);
	assert_int_equal(used, sizeof(in) - 1 - off);
	assert_false(aclm_http_parser_head_done(p));
	assert_int_equal(aclm_http_parser_feed(p, "st: a\r\n\r\n", 9, &used), 1);
	assert_string_equal(aclm_http_parser_msg(p)->target, "/four");
	aclm_http_parser_free(p);
}

static int feed_all(const struct aclm_http_limits *lim, const char *in, size_t len)
{
	struct aclm_http_parser *p = NULL;
	size_t used;
	int rc, status;

	assert_int_equal(aclm_http_parser_new(lim, &p), ACLM_OK);
	rc = aclm_http_parser_feed(p, in, len, &used);
	status = rc == 1 ? 200 : rc == ACLM_AGAIN ? 0 : aclm_http_parser_status(p);
	aclm_http_parser_free(p);
	return status;
}

static void test_limits(void **state)
{
	struct aclm_http_limits lim = { .max_request_line = 64, .max_headers = 3,
	                                .max_header_bytes = 100, .max_body = 10 };
	char big[512];
	int n;

	(void)state;
	/* request line: 64 bytes fit, 65 do not (414 before the line ends) */
	n = snprintf(big, sizeof(big), "GET /%0*d HTTP/1.1\r\nHost: a\r\n\r\n", 64 - 14, 0);
	assert_int_equal(feed_all(&lim, big, (size_t)n), 200);
	n = snprintf(big, sizeof(big), "GET /%0*d HTTP/1.1\r\n", 64 - 13, 0);
	assert_int_equal(feed_all(&lim, big, (size_t)n), 414);
	n = snprintf(big, sizeof(big), "GET /%0*d", 200, 0);   /* no CRLF yet */
	assert_int_equal(feed_all(&lim, big, (size_t)n), 414);
	/* header count */
	assert_int_equal(feed_all(&lim, "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n", 39), 200);
	assert_int_equal(feed_all(&lim, "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 45),
	                 431);
	/* header bytes: exactly 100 (with both CRLFs of the end) fit */
	n = snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: a\r\nX: %0*d\r\n\r\n", 100 - 9 - 5 - 2,
	             0);
	assert_int_equal(feed_all(&lim, big, (size_t)n), 200);
	n = snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: a\r\nX: %0*d\r\n\r\n", 100 - 9 - 5 - 1,
	             0);
	assert_int_equal(feed_all(&lim, big, (size_t)n), 431);
	/* body: Content-Length over the limit is refused before the body */
	assert_int_equal(feed_all(&lim, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n"
	                          "0123456789", 58), 200);
	assert_int_equal(feed_all(&lim, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n", 49),
	                 413);
	/* chunked: the sum of the chunks counts */
	assert_int_equal(feed_all(&lim, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	                          "5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n", 81), 200);
	assert_int_equal(feed_all(&lim, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	                          "5\r\n01234\r\n6\r\n", 69), 413);
	/* trailers count against the header limits */
	assert_int_equal(feed_all(&lim, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	                          "0\r\nA: 1\r\nB: 2\r\n", 70), 431);
	/* endless empty lines before the request line */
	memset(big, 0, sizeof(big));
	for (int i = 0; i < 100; i++)
		memcpy(big + 2 * i, "\r\n", 2);
	assert_int_equal(feed_all(&lim, big, 200), 414);
}

/* Every prefix of a good request is "need more", never an error. */
static void test_prefixes(void **state)
{
	static const char in[] = "POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	                         "5;x=y\r\nhello\r\n0\r\nT: v\r\n\r\n";

	(void)state;
	for (size_t n = 0; n < sizeof(in) - 1; n++)
		assert_int_equal(feed_all(NULL, in, n), 0);
	assert_int_equal(feed_all(NULL, in, sizeof(in) - 1), 200);
}

static void test_head_done(void **state)
{
	static const char head[] = "PUT /u HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
	                           "Content-Length: 3\r\n\r\n";
	struct aclm_http_parser *p = NULL;
	size_t used;

	(void)state;
	assert_int_equal(aclm_http_parser_new(NULL, &p), ACLM_OK);
	assert_int_equal(aclm_http_parser_feed(p, head, sizeof(head) - 1, &used), ACLM_AGAIN);
	assert_true(aclm_http_parser_head_done(p));
	assert_true(aclm_http_parser_expects_continue(p));
	assert_string_equal(aclm_http_parser_method(p), "PUT");
	assert_null(aclm_http_parser_msg(p));
	assert_int_equal(aclm_http_parser_feed(p, "abc", 3, &used), 1);
	assert_string_equal((const char *)aclm_http_parser_msg(p)->body, "abc");
	aclm_http_parser_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_pipelining),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_prefixes),
		cmocka_unit_test(test_head_done),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
