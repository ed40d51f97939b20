/* Session-ticket keys of the gateway: one ring for the whole process, so
 * every worker and every site context (also after a reload) encrypts with
 * the same current key and accepts the previous one.  The key rotates every
 * tls.ticket_rotation seconds (aclm_gateway_tick); a ticket under the
 * previous key is accepted once more and replaced, older ones are not: a
 * stolen key opens at most two rotation periods of sessions. */
#include <pthread.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "aclm/err.h"
#include "gateway-int.h"

struct tkey {
	unsigned char name[16];
	unsigned char aes[32];
	unsigned char hmac[32];
	bool is_set;
};

static struct tkey cur, prev;
static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;

static int fresh(struct tkey *k)
{
	if (RAND_bytes(k->name, sizeof(k->name)) != 1 || RAND_bytes(k->aes, sizeof(k->aes)) != 1 ||
	    RAND_bytes(k->hmac, sizeof(k->hmac)) != 1)
		return aclm_error_openssl(ACLM_ERR_CRYPTO, "session ticket key");
	k->is_set = true;
	return 0;
}

int gw_tickets_rotate(void)
{
	struct tkey next;
	int rc = fresh(&next);

	if (rc)
		return rc;
	pthread_rwlock_wrlock(&lock);
	prev = cur;
	cur = next;
	pthread_rwlock_unlock(&lock);
	OPENSSL_cleanse(&next, sizeof(next));
	return 0;
}

static int setup(const struct tkey *k, unsigned char *iv, EVP_CIPHER_CTX *ctx,
                 EVP_MAC_CTX *hctx, int enc)
{
	OSSL_PARAM params[2];

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (!EVP_MAC_CTX_set_params(hctx, params) ||
	    !EVP_MAC_init(hctx, k->hmac, sizeof(k->hmac), NULL))
		return -1;
	if (enc)
		return EVP_EncryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, k->aes, iv) ? 1 : -1;
	return EVP_DecryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, k->aes, iv) ? 1 : -1;
}

static int ticket_cb(SSL *s, unsigned char key_name[16], unsigned char *iv,
                     EVP_CIPHER_CTX *ctx, EVP_MAC_CTX *hctx, int enc)
{
	int rc = 0;

	pthread_rwlock_rdlock(&lock);
	if (enc) {
		if (!cur.is_set || RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) != 1) {
			rc = -1;
		} else {
			memcpy(key_name, cur.name, 16);
			rc = setup(&cur, iv, ctx, hctx, 1);
		}
	} else if (cur.is_set && !memcmp(key_name, cur.name, 16)) {
		rc = setup(&cur, iv, ctx, hctx, 0);
	} else if (prev.is_set && !memcmp(key_name, prev.name, 16)) {
		/* accepted, and a new ticket under the current key is issued */
		rc = setup(&prev, iv, ctx, hctx, 0) == 1 ? 2 : -1;
	}
	pthread_rwlock_unlock(&lock);
	return rc;
}

int gw_tickets_install(SSL_CTX *ctx)
{
	pthread_rwlock_rdlock(&lock);
	bool ready = cur.is_set;
	pthread_rwlock_unlock(&lock);
	if (!ready) {
		int rc = gw_tickets_rotate();

		if (rc)
			return rc;
	}
	if (SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb) != 1)
		return aclm_error_openssl(ACLM_ERR_CRYPTO, "session ticket callback");
	return 0;
}
