/* aclm-pq: the OpenSSL 3 provider with ML-KEM and hybrid TLS 1.3 groups.
 *
 * Built twice: into libaclm (register with aclm_pqprov_load) and as the
 * loadable module aclm-pq.so for any OpenSSL 3 program (openssl.cnf). */
#ifndef ACLM_PQPROV_H
#define ACLM_PQPROV_H

#include <stddef.h>

#include <openssl/core.h>
#include <openssl/types.h>

#define ACLM_PQ_PROVIDER_NAME "aclm-pq"

/* The provider's OSSL_provider_init. */
int aclm_pqprov_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                     const OSSL_DISPATCH **out, void **provctx);

/* Register the built-in provider in libctx (NULL = default) and load it
 * together with "default".  Returns 0, or -1 when loading (or its
 * self-test) failed; OpenSSL's error queue says why. */
int aclm_pqprov_load(OSSL_LIB_CTX *libctx);

/* Self-test result of the last load: status 1 passed, -1 failed, 0 not run. */
const char *aclm_pqprov_selftest(int *status);

/* The TLS group names the provider announces, in preference order. */
size_t aclm_pqprov_groups(const char *const **names);

#endif
