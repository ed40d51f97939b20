/* libFuzzer driver for aclm_bundle_parse: every container format, with and
 * without a password (chosen by the first byte so both paths are reached
 * from one corpus).  Seed corpus: tests/fuzz/corpus/bundle/. */
#include <stddef.h>
#include <stdint.h>

#include "aclm/bundle.h"
#include "aclm/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct aclm_bundle b;
	const char *password = size > 0 && (data[0] & 1) != 0 ? "x" : NULL;

	(void)aclm_bundle_parse(data, size, password, &b);
	aclm_bundle_free(&b);
	return 0;
}
