/* libFuzzer driver for the STARTTLS reply parser (src/scan/starttls.c): the
 * first byte picks the protocol and how the rest is cut into reads, the
 * rest is what a server sends.  Invariants: never more consumed than given,
 * the partial line stays within its bound.  Seeds: corpus/scan_starttls/. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "../../src/scan/scan-int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum aclm_scan_proto protos[] = { ACLM_SCAN_SMTP, ACLM_SCAN_IMAP,
	                                               ACLM_SCAN_POP3 };
	struct starttls st;
	size_t off = 1, chunk;

	if (size < 1)
		return 0;
	starttls_init(&st, protos[data[0] % 3]);
	chunk = (size_t)(data[0] >> 2) + 1;
	while (off < size) {
		size_t n = size - off < chunk ? size - off : chunk, used = 0;
		enum starttls_step step = starttls_feed(&st, data + off, n, &used);

		if (used > n || st.line_len >= STARTTLS_LINE_MAX || st.out_len >= sizeof(st.out))
			abort();
		if (step == STARTTLS_READY || step == STARTTLS_FAILED)
			break;
		off += used ? used : n;
	}
	return 0;
}
