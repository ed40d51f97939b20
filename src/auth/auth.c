/* Passwords (argon2id), random tokens and roles: see include/aclm/auth.h. */
#include <argon2.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "aclm/auth.h"
#include "aclm/err.h"

/* OWASP's argon2id baseline (2023): 19 MiB, 2 passes, 1 lane.  The encoded
 * hash carries them, so raising them later needs no migration. */
#define ARGON_T 2
#define ARGON_M_KIB 19456
#define ARGON_P 1
#define SALT_LEN 16
#define HASH_LEN 32
#define ENCODED_MAX 128

static const char *const role_names[] = {
	[ACLM_ROLE_NONE] = "none",
	[ACLM_ROLE_VIEWER] = "viewer",
	[ACLM_ROLE_AUDITOR] = "auditor",
	[ACLM_ROLE_OPERATOR] = "operator",
	[ACLM_ROLE_ADMIN] = "admin",
};

const char *aclm_role_name(enum aclm_role r)
{
	if ((unsigned)r >= sizeof(role_names) / sizeof(role_names[0]))
		return "none";
	return role_names[r];
}

enum aclm_role aclm_role_parse(const char *name)
{
	if (name == NULL)
		return ACLM_ROLE_NONE;
	for (size_t i = 1; i < sizeof(role_names) / sizeof(role_names[0]); i++)
		if (strcmp(name, role_names[i]) == 0)
			return (enum aclm_role)i;
	return ACLM_ROLE_NONE;
}

/* The table of who may do what: a row per role, a column per permission. */
static const bool allowed[][4] = {
	/*                    READ_INV READ_ALL WRITE  ADMIN */
	[ACLM_ROLE_NONE]     = { false, false, false, false },
	[ACLM_ROLE_VIEWER]   = { true,  false, false, false },
	[ACLM_ROLE_AUDITOR]  = { true,  true,  false, false },
	[ACLM_ROLE_OPERATOR] = { true,  true,  true,  false },
	[ACLM_ROLE_ADMIN]    = { true,  true,  true,  true  },
};

bool aclm_role_allows(enum aclm_role r, enum aclm_perm p)
{
	if ((unsigned)r >= sizeof(allowed) / sizeof(allowed[0]) || (unsigned)p >= 4)
		return false;
	return allowed[r][p];
}

int aclm_auth_hash_password(const char *password, char **encoded)
{
	unsigned char salt[SALT_LEN];
	char out[ENCODED_MAX];
	size_t len;
	int rc;

	*encoded = NULL;
	if (password == NULL)
		return aclm_error(ACLM_ERR_USAGE, "no password given");
	len = strlen(password);
	if (len < ACLM_PASSWORD_MIN)
		return aclm_error(ACLM_ERR_USAGE, "password too short: %zu characters, at least %d "
		                  "needed", len, ACLM_PASSWORD_MIN);
	if (len > ACLM_PASSWORD_MAX)
		return aclm_error(ACLM_ERR_USAGE, "password too long: at most %d bytes",
		                  ACLM_PASSWORD_MAX);
	if (RAND_bytes(salt, sizeof(salt)) != 1)
		return aclm_error_openssl(ACLM_ERR_CRYPTO, "no random bytes for a password salt");
	rc = argon2id_hash_encoded(ARGON_T, ARGON_M_KIB, ARGON_P, password, len, salt,
	                           sizeof(salt), HASH_LEN, out, sizeof(out));
	if (rc != ARGON2_OK)
		return aclm_error(ACLM_ERR_CRYPTO, "argon2id: %s", argon2_error_message(rc));
	*encoded = strdup(out);
	if (*encoded == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	return ACLM_OK;
}

bool aclm_auth_verify_password(const char *password, const char *encoded)
{
	size_t len;

	if (password == NULL || encoded == NULL || strncmp(encoded, "$argon2id$", 10) != 0)
		return false;
	len = strlen(password);
	if (len > ACLM_PASSWORD_MAX)
		return false;
	return argon2id_verify(encoded, password, len) == ARGON2_OK;
}

static int random_b64url(char *out, size_t n_bytes, size_t out_size)
{
	unsigned char raw[48];
	unsigned char b64[72];
	int n;

	if (n_bytes > sizeof(raw) || out_size < (n_bytes * 4 + 2) / 3 + 1)
		return aclm_error(ACLM_ERR_USAGE, "random_b64url: buffer too small");
	if (RAND_bytes(raw, (int)n_bytes) != 1)
		return aclm_error_openssl(ACLM_ERR_CRYPTO, "no random bytes");
	n = EVP_EncodeBlock(b64, raw, (int)n_bytes);
	OPENSSL_cleanse(raw, sizeof(raw));
	/* base64 -> base64url without padding */
	while (n > 0 && b64[n - 1] == '=')
		n--;
	for (int i = 0; i < n; i++) {
		char ch = (char)b64[i];
		out[i] = ch == '+' ? '-' : ch == '/' ? '_' : ch;
	}
	out[n] = '\0';
	OPENSSL_cleanse(b64, sizeof(b64));
	return ACLM_OK;
}

int aclm_auth_random_password(char out[33])
{
	return random_b64url(out, 18, 33);  /* 24 characters, 144 bits */
}

int aclm_auth_sha256_hex(const char *s, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[32];
	unsigned int md_len = 0;

	if (EVP_Digest(s, strlen(s), md, &md_len, EVP_sha256(), NULL) != 1 || md_len != 32)
		return aclm_error_openssl(ACLM_ERR_CRYPTO, "SHA-256");
	for (int i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
	return ACLM_OK;
}

bool aclm_auth_hash_equal(const char *a, const char *b)
{
	if (a == NULL || b == NULL || strlen(a) != 64 || strlen(b) != 64)
		return false;
	return CRYPTO_memcmp(a, b, 64) == 0;
}

#define TOKEN_PREFIX "aclm_"
#define SECRET_B64_LEN 43  /* 32 bytes in base64url */

int aclm_auth_token_new(char token[ACLM_TOKEN_MAX], char lookup[ACLM_TOKEN_LOOKUP_LEN + 1],
                        char secret_hash[65])
{
	static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
	unsigned char raw[ACLM_TOKEN_LOOKUP_LEN];
	char secret[SECRET_B64_LEN + 1];
	int rc;

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return aclm_error_openssl(ACLM_ERR_CRYPTO, "no random bytes for a token");
	for (size_t i = 0; i < sizeof(raw); i++)
		lookup[i] = b32[raw[i] & 31];
	lookup[ACLM_TOKEN_LOOKUP_LEN] = '\0';
	if ((rc = random_b64url(secret, 32, sizeof(secret))) != ACLM_OK)
		return rc;
	rc = aclm_auth_sha256_hex(secret, secret_hash);
	if (rc == ACLM_OK)
		snprintf(token, ACLM_TOKEN_MAX, TOKEN_PREFIX "%s_%s", lookup, secret);
	OPENSSL_cleanse(secret, sizeof(secret));
	return rc;
}

int aclm_auth_token_split(const char *token, char lookup[ACLM_TOKEN_LOOKUP_LEN + 1],
                          char secret_hash[65])
{
	const char *p;
	size_t n;

	if (token == NULL || strncmp(token, TOKEN_PREFIX, strlen(TOKEN_PREFIX)) != 0)
		return aclm_error(ACLM_ERR_PARSE, "not an aclm token (expected aclm_...)");
	p = token + strlen(TOKEN_PREFIX);
	n = strspn(p, "abcdefghijklmnopqrstuvwxyz234567");
	if (n != ACLM_TOKEN_LOOKUP_LEN || p[n] != '_')
		return aclm_error(ACLM_ERR_PARSE, "malformed aclm token");
	memcpy(lookup, p, ACLM_TOKEN_LOOKUP_LEN);
	lookup[ACLM_TOKEN_LOOKUP_LEN] = '\0';
	p += n + 1;
	n = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");
	if (n != SECRET_B64_LEN || p[n] != '\0')
		return aclm_error(ACLM_ERR_PARSE, "malformed aclm token");
	return aclm_auth_sha256_hex(p, secret_hash);
}
