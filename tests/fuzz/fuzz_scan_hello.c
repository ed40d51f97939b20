/* libFuzzer driver for the reader of a server's first flight
 * (src/scan/hello.c): the first byte cuts the input into reads of 1..64
 * bytes.  Invariants: the reassembled message stays within its buffer and a
 * verdict is final.  Seeds: corpus/scan_hello/. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "../../src/scan/scan-int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hello_reader *r;
	size_t off = 1, chunk;

	if (size < 1)
		return 0;
	r = malloc(sizeof(*r));
	if (r == NULL)
		return 0;
	hello_reader_init(r);
	chunk = (size_t)(data[0] & 63) + 1;
	while (off < size) {
		size_t n = size - off < chunk ? size - off : chunk;
		enum hello_verdict v = hello_feed(r, data + off, n);

		if (r->msg_len > sizeof(r->msg) || r->hdr_len > sizeof(r->hdr))
			abort();
		if (v != HELLO_NEED_MORE)
			break;
		off += n;
	}
	free(r);
	return 0;
}
