/* Private keys at rest: AES-256-GCM under a key-encryption key (KEK).
 *
 * Sealed format (all binary): "AK1" | kek_id[8] | nonce[12] | ciphertext | tag[16]
 * kek_id is the first 8 bytes of SHA-256("aclm-kek-id" | KEK) so a wrong KEK
 * is reported as such, not as a corrupt record.  The caller supplies AAD
 * (the key's SPKI SHA-256) so a sealed blob cannot be moved to another key. */
#ifndef ACLM_KEYWRAP_H
#define ACLM_KEYWRAP_H

#include <stdbool.h>
#include <stddef.h>

struct aclm_kek {
	unsigned char key[32];
	unsigned char id[8];
};

/* Load the KEK.  If env_value is non-NULL and non-empty it is the key itself
 * (64 hex digits or base64 of 32 bytes).  Otherwise read path (64 hex digits
 * and optional newline); when the file does not exist and create is true,
 * generate a random key and write it with mode 0600 (refusing a file with
 * wider permissions when reading). */
int aclm_kek_load(const char *env_value, const char *path, bool create, struct aclm_kek *out);
void aclm_kek_wipe(struct aclm_kek *k);

int aclm_keywrap_seal(const struct aclm_kek *k, const unsigned char *aad, size_t aad_len,
                      const unsigned char *pt, size_t pt_len,
                      unsigned char **out, size_t *out_len);
/* Returns ACLM_ERR_CRYPTO "sealed with a different key-encryption key" or
 * "authentication failed (corrupt or tampered)"; *out must be wiped by caller. */
int aclm_keywrap_open(const struct aclm_kek *k, const unsigned char *aad, size_t aad_len,
                      const unsigned char *sealed, size_t sealed_len,
                      unsigned char **out, size_t *out_len);

#endif
