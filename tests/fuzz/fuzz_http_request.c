/* libFuzzer driver for the HTTP request parser (src/http/parser.c) and the
 * decoding of the request target (path segments, query parameters).
 *
 * The first byte picks small or default limits and where the input is cut
 * into pieces; the rest is a stream of pipelined requests.  Each request is
 * parsed twice, from the whole stream and from the pieces, and both must
 * agree (result, bytes used, method, target, body): incremental feeding must
 * never change the outcome.  Seed corpus: tests/fuzz/corpus/http_request/. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aclm/err.h"
#include "aclm/http.h"
#include "../../src/http/http-int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Feed [0, n) in pieces of step bytes; returns the result, *used. */
static int feed_pieces(struct aclm_http_parser *p, const uint8_t *d, size_t n, size_t step,
                       size_t *used)
{
	size_t off = 0;
	int rc = ACLM_AGAIN;

	while (off < n) {
		size_t k = n - off < step ? n - off : step, c = 0;

		rc = aclm_http_parser_feed(p, d + off, k, &c);
		off += c;
		if (rc != ACLM_AGAIN)
			break;
		if (c != k)
			abort();       /* AGAIN must take everything */
	}
	*used = off;
	return rc;
}

static void check_target(struct aclm_http_parser *p)
{
	struct aclm_http_req *req = aclm_http_req_new(NULL, p, 1024);
	const char *reason = "";

	if (req == NULL)
		return;
	if (aclm_http_req_decode_target(req, &reason) == 0) {
		(void)aclm_http_query_get(req, "limit");
		(void)aclm_http_query_get(req, "");
		if (req->path[0] != '/' && strcmp(req->path, "*") != 0)
			abort();
	}
	req->parser = NULL;       /* still the caller's */
	aclm_http_req_free(req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct aclm_http_limits small = { .max_request_line = 64, .max_headers = 4,
	                                  .max_header_bytes = 128, .max_body = 64 };
	struct aclm_http_parser *a = NULL, *b = NULL;
	size_t step, off = 0;

	if (size < 1)
		return 0;
	step = (size_t)(data[0] >> 1) % 17 + 1;
	if (aclm_http_parser_new((data[0] & 1) != 0 ? &small : NULL, &a) != ACLM_OK ||
	    aclm_http_parser_new((data[0] & 1) != 0 ? &small : NULL, &b) != ACLM_OK)
		goto out;
	data++;
	size--;
	for (int n = 0; n < 64 && off < size; n++) {
		size_t ua = 0, ub = 0;
		int ra = aclm_http_parser_feed(a, data + off, size - off, &ua);
		int rb = feed_pieces(b, data + off, size - off, step, &ub);
		const struct aclm_http_msg *ma, *mb;

		if (ra != rb || ua != ub)
			abort();
		if (ra != 1) {
			if (ra < 0 && aclm_http_parser_status(a) != aclm_http_parser_status(b))
				abort();
			break;
		}
		ma = aclm_http_parser_msg(a);
		mb = aclm_http_parser_msg(b);
		if (ma == NULL || mb == NULL || strcmp(ma->method, mb->method) != 0 ||
		    strcmp(ma->target, mb->target) != 0 || ma->body_len != mb->body_len ||
		    memcmp(ma->body, mb->body, ma->body_len) != 0 ||
		    ma->keep_alive != mb->keep_alive || ma->n_headers != mb->n_headers)
			abort();
		if (ua == 0)
			abort();       /* a request takes at least one byte */
		check_target(a);
		off += ua;
		aclm_http_parser_reset(a);
		aclm_http_parser_reset(b);
	}
out:
	aclm_http_parser_free(a);
	aclm_http_parser_free(b);
	return 0;
}
