/* libFuzzer driver for scan target parsing (src/scan/targets.c): the input
 * is split at newlines into tokens; parsed targets are expanded (at most a
 * few hundred endpoints; inputs with names are not expanded) and
 * checked against the excludes.  Seeds: corpus/scan_targets/. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aclm/err.h"
#include "aclm/scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy, *tok[64];
	size_t n = 0;
	struct aclm_scan_targets *t = NULL;

	if (size > 4096)
		return 0;
	copy = malloc(size + 1);
	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	for (char *p = copy, *nl; p != NULL && n < 64; p = nl ? nl + 1 : NULL) {
		nl = strchr(p, '\n');
		if (nl)
			*nl = '\0';
		if (*p != '@')        /* no files from fuzz input */
			tok[n++] = p;
	}
	if (aclm_scan_targets_parse((const char *const *)tok, n, &t) == ACLM_OK) {
		struct aclm_scan_cursor *c = NULL;
		(void)aclm_scan_targets_n_endpoints(t);
		if (n > 1)
			(void)aclm_scan_targets_exclude(t, (const char *const *)tok + n - 1, 1);
		/* Names would be resolved (network): expand addresses only. */
		if (aclm_scan_targets_n_names(t) == 0 && aclm_scan_cursor_new(t, &c) == ACLM_OK) {
			struct aclm_scan_endpoint ep;
			for (int i = 0; i < 300 && aclm_scan_cursor_next(c, &ep) == 1; i++)
				;
			aclm_scan_cursor_free(c);
		}
		aclm_scan_targets_free(t);
	}
	aclm_error_clear();
	free(copy);
	return 0;
}
