/* libFuzzer driver for name normalisation (IDNs to A-labels, label rules)
 * and base64url decoding: NUL-separated names from the input.  Seed corpus:
 * tests/fuzz/corpus/acme_names/. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/acme/acme-int.h"
#include "aclm/acme.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size + 1), **out = NULL;
	const char *names[16];
	size_t n = 0, n_out = 0;
	unsigned char *dec = NULL;
	size_t dec_len = 0;

	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	for (char *p = copy; p < copy + size + 1 && n < 16; p += strlen(p) + 1)
		names[n++] = p;
	if (aclm_acme_names_normalize(names, n, &out, &n_out) == 0)
		aclm_acme_names_free(out, n_out);
	if (acme_b64url_decode(copy, strlen(copy), &dec, &dec_len) == 0)
		free(dec);
	free(copy);
	return 0;
}
