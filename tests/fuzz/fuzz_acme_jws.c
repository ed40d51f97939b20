/* libFuzzer driver for what an ACME client sends the built-in CA: the
 * flattened JWS (RFC 7515) and the JWK in it (EC, RSA, OKP), then the
 * thumbprint and the signature check, as src/ca/acme_server.c runs them.
 * Seed corpus: tests/fuzz/corpus/acme_jws/. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/ca/ca-int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ca_jws j;
	EVP_PKEY *pk = NULL;
	char thumb[64];

	if (ca_jws_parse(data, size, &j) != 0)
		return 0;
	if (j.jwk != NULL && ca_jwk_to_pkey(j.jwk, &pk) == 0) {
		(void)ca_jwk_thumbprint(j.jwk, thumb);
		if (ca_jws_alg_allowed(j.alg))
			(void)ca_jws_verify_sig(j.alg, pk, (const unsigned char *)j.signing_input,
			                        j.signing_input_len, j.sig, j.sig_len);
		EVP_PKEY_free(pk);
	}
	if (j.payload != NULL && json_is_object(j.payload)) {
		/* keyChange carries a JWS inside the payload. */
		char *inner = json_dumps(j.payload, JSON_COMPACT);
		struct ca_jws k;
		if (inner != NULL && ca_jws_parse((const unsigned char *)inner, strlen(inner), &k) == 0)
			ca_jws_free(&k);
		free(inner);
	}
	ca_jws_free(&j);
	return 0;
}
