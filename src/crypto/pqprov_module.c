/* Entry point of the loadable module aclm-pq.so. */
#include <openssl/core.h>

#include "aclm/pqprov.h"

int OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                       const OSSL_DISPATCH **out, void **provctx);

__attribute__((visibility("default")))
int OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                       const OSSL_DISPATCH **out, void **provctx)
{
	return aclm_pqprov_init(handle, in, out, provctx);
}
