/* libFuzzer driver for what an ACME CA sends us as JSON: the directory,
 * problem documents and ARI renewalInfo (the first byte picks the parser so
 * one corpus reaches all three).  Seed corpus: tests/fuzz/corpus/acme_documents/. */
#include <stddef.h>
#include <stdint.h>

#include "../../src/acme/acme-int.h"
#include "aclm/acme.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct acme_directory d;
	struct acme_problem p;
	struct aclm_acme_ari w;

	if (size == 0)
		return 0;
	switch (data[0] % 3) {
	case 0:
		if (acme_directory_parse((const char *)data + 1, size - 1, &d) == 0)
			acme_directory_free(&d);
		break;
	case 1:
		(void)acme_problem_parse((const char *)data + 1, size - 1, &p);
		break;
	default:
		if (aclm_acme_ari_parse((const char *)data + 1, size - 1, &w) == 0)
			(void)aclm_acme_ari_pick(&w, 1700000000, size);
		break;
	}
	return 0;
}
