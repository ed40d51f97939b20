/* Private keys at rest: AES-256-GCM under the key-encryption key (KEK).
 * The sealed format is documented in include/aclm/keywrap.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "aclm/err.h"
#include "aclm/keywrap.h"
#include "aclm/str.h"

#define MAGIC "AK1"
#define MAGIC_LEN 3
#define KEK_ID_LEN 8
#define NONCE_LEN 12
#define TAG_LEN 16
#define HEADER_LEN (MAGIC_LEN + KEK_ID_LEN + NONCE_LEN)
#define KEK_LEN 32
/* A KEK file holds 64 hex digits and a newline; anything much longer is not one. */
#define KEK_FILE_MAX 256

/* ---- the KEK ------------------------------------------------------------ */

static int kek_finish(struct aclm_kek *k)
{
	static const char label[] = "aclm-kek-id";
	unsigned char md[32];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok;

	ok = ctx != NULL &&
	     EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
	     EVP_DigestUpdate(ctx, label, sizeof(label) - 1) == 1 &&
	     EVP_DigestUpdate(ctx, k->key, sizeof(k->key)) == 1 &&
	     EVP_DigestFinal_ex(ctx, md, NULL) == 1;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return aclm_error_openssl(ACLM_ERR_CRYPTO, "key-encryption key: SHA-256 failed");
	memcpy(k->id, md, sizeof(k->id));
	OPENSSL_cleanse(md, sizeof(md));
	return ACLM_OK;
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Exactly 64 hex digits, then only white space. */
static bool kek_from_hex(const char *s, size_t n, unsigned char key[KEK_LEN])
{
	size_t i;

	if (n < 2 * KEK_LEN)
		return false;
	for (i = 0; i < KEK_LEN; i++) {
		int hi = hexval((unsigned char)s[2 * i]), lo = hexval((unsigned char)s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		key[i] = (unsigned char)(hi << 4 | lo);
	}
	for (i = 2 * KEK_LEN; i < n; i++)
		if (s[i] != '\n' && s[i] != '\r' && s[i] != ' ' && s[i] != '\t')
			return false;
	return true;
}

/* Base64 of exactly 32 bytes: 44 characters ending in one '='. */
static bool kek_from_base64(const char *s, size_t n, unsigned char key[KEK_LEN])
{
	unsigned char tmp[36];
	bool ok;

	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
		n--;
	if (n != 44 || s[43] != '=' || s[42] == '=')
		return false;
	/* EVP_DecodeBlock does not strip padding: 44 characters give 33 bytes */
	ok = EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)n) == 33;
	if (ok)
		memcpy(key, tmp, KEK_LEN);
	OPENSSL_cleanse(tmp, sizeof(tmp));
	ERR_clear_error();
	return ok;
}

static int kek_read(const char *path, int fd, struct aclm_kek *out)
{
	char buf[KEK_FILE_MAX];
	struct stat st;
	size_t len = 0;
	ssize_t n;
	int rc = ACLM_OK;

	if (fstat(fd, &st) != 0)
		return aclm_error(ACLM_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return aclm_error(ACLM_ERR_CONFIG, "%s: the key-encryption key must be a regular file", path);
	if ((st.st_mode & 077) != 0)
		return aclm_error(ACLM_ERR_CONFIG,
		                  "%s: permissions %04o are too open; the key-encryption key must be 0600",
		                  path, (unsigned)(st.st_mode & 07777));
	for (;;) {
		n = read(fd, buf + len, sizeof(buf) - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = aclm_error(ACLM_ERR_IO, "%s: read failed: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == sizeof(buf)) {
			rc = aclm_error(ACLM_ERR_CONFIG, "%s: too long for a key-encryption key "
			                "(expected 64 hex digits)", path);
			goto out;
		}
	}
	if (!kek_from_hex(buf, len, out->key)) {
		rc = aclm_error(ACLM_ERR_CONFIG, "%s: not a key-encryption key (expected 64 hex digits)", path);
		goto out;
	}
	rc = kek_finish(out);
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Create path with a fresh random key, mode 0600; EEXIST is returned as
 * ACLM_ERR_EXISTS so the caller can read the file another process made. */
static int kek_create(const char *path, struct aclm_kek *out)
{
	char hex[2 * KEK_LEN + 2];
	struct stat st;
	int fd, rc = ACLM_OK;


	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 && errno == EEXIST && lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
		return aclm_error(ACLM_ERR_IO, "%s: is a symbolic link to a file that does not exist", path);
	if (fd < 0 && errno == EEXIST)
		return ACLM_ERR_EXISTS;
	if (fd < 0 && errno == ENOENT)
		return aclm_error(ACLM_ERR_IO, "%s: cannot create the key-encryption key: "
		                  "its directory does not exist", path);
	if (fd < 0)
		return aclm_error(ACLM_ERR_IO, "%s: cannot create the key-encryption key: %s",
		                  path, strerror(errno));
	if (RAND_priv_bytes(out->key, sizeof(out->key)) != 1) {
		rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "%s: no random bytes for the key-encryption key", path);
		goto out;
	}
	aclm_hex_encode(out->key, sizeof(out->key), hex);
	hex[2 * KEK_LEN] = '\n';
	hex[2 * KEK_LEN + 1] = '\0';
	if (write_all(fd, hex, 2 * KEK_LEN + 1) != 0 || fsync(fd) != 0) {
		rc = aclm_error(ACLM_ERR_IO, "%s: cannot write the key-encryption key: %s",
		                path, strerror(errno));
		goto out;
	}
	rc = kek_finish(out);
out:
	OPENSSL_cleanse(hex, sizeof(hex));
	if (close(fd) != 0 && rc == ACLM_OK)
		rc = aclm_error(ACLM_ERR_IO, "%s: cannot write the key-encryption key: %s",
		                path, strerror(errno));
	if (rc != ACLM_OK) {
		unlink(path);
		aclm_kek_wipe(out);
	}
	return rc;
}

int aclm_kek_load(const char *env_value, const char *path, bool create, struct aclm_kek *out)
{
	int fd, rc;

	memset(out, 0, sizeof(*out));
	if (env_value != NULL && env_value[0] != '\0') {
		size_t n = strlen(env_value);
		if (!kek_from_hex(env_value, n, out->key) && !kek_from_base64(env_value, n, out->key)) {
			aclm_kek_wipe(out);
			return aclm_error(ACLM_ERR_CONFIG, "ACLM_KEK: not a key-encryption key "
			                  "(expected 64 hex digits or base64 of 32 bytes)");
		}
		return kek_finish(out);
	}
	if (path == NULL || path[0] == '\0')
		return aclm_error(ACLM_ERR_CONFIG, "no key-encryption key: set ACLM_KEK or security.kek_file");
	for (int attempt = 0; attempt < 2; attempt++) {
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
		if (fd >= 0) {
			rc = kek_read(path, fd, out);
			close(fd);
			if (rc != ACLM_OK)
				aclm_kek_wipe(out);
			return rc;
		}
		if (errno != ENOENT)
			return aclm_error(ACLM_ERR_IO, "%s: cannot open the key-encryption key: %s",
			                  path, strerror(errno));
		if (!create)
			return aclm_error(ACLM_ERR_IO, "%s: the key-encryption key does not exist", path);
		rc = kek_create(path, out);
		if (rc != ACLM_ERR_EXISTS)
			return rc;
		/* created by someone else in the meantime: read theirs */
	}
	return aclm_error(ACLM_ERR_IO, "%s: the key-encryption key keeps appearing and disappearing", path);
}

void aclm_kek_wipe(struct aclm_kek *k)
{
	if (k != NULL)
		OPENSSL_cleanse(k, sizeof(*k));
}

/* ---- sealing ------------------------------------------------------------ */

static int gcm(bool seal, const struct aclm_kek *k, const unsigned char *nonce,
               const unsigned char *aad, size_t aad_len, const unsigned char *in, size_t in_len,
               unsigned char *out, unsigned char tag[TAG_LEN])
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n = 0, ok;

	ok = ctx != NULL && aad_len <= INT_MAX && in_len <= INT_MAX &&
	     EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, seal ? 1 : 0) == 1 &&
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) == 1 &&
	     EVP_CipherInit_ex(ctx, NULL, NULL, k->key, nonce, -1) == 1 &&
	     (aad_len == 0 || EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aad_len) == 1) &&
	     (in_len == 0 || EVP_CipherUpdate(ctx, out, &n, in, (int)in_len) == 1) &&
	     (seal || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) == 1) &&
	     EVP_CipherFinal_ex(ctx, out + (in_len == 0 ? 0 : n), &n) == 1 &&
	     (!seal || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) == 1);
	EVP_CIPHER_CTX_free(ctx);
	return ok ? 0 : -1;
}

int aclm_keywrap_seal(const struct aclm_kek *k, const unsigned char *aad, size_t aad_len,
                      const unsigned char *pt, size_t pt_len,
                      unsigned char **out, size_t *out_len)
{
	unsigned char *buf;
	size_t total;

	*out = NULL;
	*out_len = 0;
	if (pt_len > INT_MAX || aad_len > INT_MAX)
		return aclm_error(ACLM_ERR_TOOBIG, "key to seal is too large (%zu bytes)", pt_len);
	total = HEADER_LEN + pt_len + TAG_LEN;
	buf = malloc(total);
	if (buf == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	memcpy(buf, MAGIC, MAGIC_LEN);
	memcpy(buf + MAGIC_LEN, k->id, KEK_ID_LEN);
	/* Random 96-bit nonces: far below the 2^32 seals per key that NIST
	 * SP 800-38D allows with random nonces. */
	if (RAND_bytes(buf + MAGIC_LEN + KEK_ID_LEN, NONCE_LEN) != 1) {
		free(buf);
		return aclm_error_openssl(ACLM_ERR_CRYPTO, "no random bytes for the nonce");
	}
	if (gcm(true, k, buf + MAGIC_LEN + KEK_ID_LEN, aad, aad_len, pt, pt_len,
	        buf + HEADER_LEN, buf + HEADER_LEN + pt_len) != 0) {
		OPENSSL_cleanse(buf, total);
		free(buf);
		return aclm_error_openssl(ACLM_ERR_CRYPTO, "AES-256-GCM encryption failed");
	}
	*out = buf;
	*out_len = total;
	return ACLM_OK;
}

int aclm_keywrap_open(const struct aclm_kek *k, const unsigned char *aad, size_t aad_len,
                      const unsigned char *sealed, size_t sealed_len,
                      unsigned char **out, size_t *out_len)
{
	unsigned char tag[TAG_LEN], *buf;
	size_t ct_len;

	*out = NULL;
	*out_len = 0;
	if (sealed == NULL || sealed_len < HEADER_LEN + TAG_LEN || memcmp(sealed, MAGIC, MAGIC_LEN) != 0)
		return aclm_error(ACLM_ERR_PARSE, "sealed key: not in the AK1 format (%zu bytes)", sealed_len);
	if (!aclm_ct_equal(sealed + MAGIC_LEN, k->id, KEK_ID_LEN))
		return aclm_error(ACLM_ERR_CRYPTO, "sealed with a different key-encryption key");
	ct_len = sealed_len - HEADER_LEN - TAG_LEN;
	if (ct_len > INT_MAX || aad_len > INT_MAX)
		return aclm_error(ACLM_ERR_TOOBIG, "sealed key is too large (%zu bytes)", sealed_len);
	/* one byte more so an empty plaintext still has a buffer */
	buf = malloc(ct_len + 1);
	if (buf == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	memcpy(tag, sealed + HEADER_LEN + ct_len, TAG_LEN);
	if (gcm(false, k, sealed + MAGIC_LEN + KEK_ID_LEN, aad, aad_len, sealed + HEADER_LEN, ct_len,
	        buf, tag) != 0) {
		OPENSSL_cleanse(buf, ct_len + 1);
		free(buf);
		ERR_clear_error();
		return aclm_error(ACLM_ERR_CRYPTO, "authentication failed (corrupt or tampered)");
	}
	*out = buf;
	*out_len = ct_len;
	return ACLM_OK;
}
