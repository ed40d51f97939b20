/* libFuzzer driver for the gateway's reading of upstream responses
 * (src/gateway/response.c): head parsing and rewriting, then the body
 * framing (Content-Length, chunked, de-chunked, until close).
 *
 * The first byte picks the request side (HEAD or not, HTTP/1.0 or 1.1,
 * keep-alive, HSTS) and the size of the pieces the body is fed in; the rest
 * is what an upstream sends.  The body is followed twice, in one piece and
 * in pieces: both must agree (end found or not, bytes for the client); the
 * client's head must end with a blank line.  Seed
 * corpus: tests/fuzz/corpus/gateway_response/. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aclm/buf.h"
#include "../../src/gateway/gateway-int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int follow(struct gw_resp *r, const uint8_t *p, size_t n, size_t step,
                  struct aclm_buf *out)
{
	for (size_t off = 0; off < n && !r->body_done;) {
		size_t k = n - off < step ? n - off : step;

		if (gw_resp_body(r, p + off, k, out))
			return -1;
		off += k;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gw_resp r1, r2;
	struct gw_resp_req q;
	struct aclm_buf head, b1, b2;
	size_t head_len, step;
	int rc, rc1, rc2;

	if (size < 1)
		return 0;
	q.is_head = data[0] & 1;
	q.client_minor = (data[0] >> 1) & 1;
	q.client_ka = (data[0] >> 2) & 1;
	q.hsts = (data[0] & 8) ? "max-age=1" : "";
	step = 1 + (data[0] >> 4);
	data++;
	size--;
	head_len = gw_resp_head_end(data, size);
	if (!head_len || head_len > MAX_RESP_HEAD)
		return 0;
	aclm_buf_init(&head, 1 << 20);
	memset(&r1, 0, sizeof(r1));
	rc = gw_resp_parse_head(&r1, (const char *)data, head_len, &q, &head);
	if (rc == 0) {
		if (head.len < 4 || memcmp(head.data + head.len - 4, "\r\n\r\n", 4))
			abort();
		r2 = r1;
		aclm_buf_init(&b1, 1 << 20);
		aclm_buf_init(&b2, 1 << 20);
		rc1 = follow(&r1, data + head_len, size - head_len, size, &b1);
		rc2 = follow(&r2, data + head_len, size - head_len, step, &b2);
		if (rc1 != rc2)
			abort();
		/* (reuse may differ: bytes past the end are seen only when they
		 * come in the same piece; the pool checks idle connections) */
		if (rc1 == 0 && (r1.body_done != r2.body_done || b1.len != b2.len ||
		                 (b1.len && memcmp(b1.data, b2.data, b1.len))))
			abort();
		aclm_buf_free(&b1);
		aclm_buf_free(&b2);
	}
	aclm_buf_free(&head);
	return 0;
}
