/* Bounded growable buffer. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "aclm/buf.h"
#include "aclm/err.h"

void aclm_buf_init(struct aclm_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max != 0 ? max : ACLM_BUF_MAX_DEFAULT;
}

static int reserve(struct aclm_buf *b, size_t extra)
{
	size_t need, ncap;
	unsigned char *p;

	if (extra > b->max || b->len > b->max - extra)
		return aclm_error(ACLM_ERR_TOOBIG, "data exceeds the limit of %zu bytes", b->max);
	need = b->len + extra + 1;
	if (need <= b->cap)
		return ACLM_OK;
	ncap = b->cap != 0 ? b->cap : 256;
	while (ncap < need)
		ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
	if (ncap > b->max + 1)
		ncap = b->max + 1;
	p = realloc(b->data, ncap);
	if (p == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory (buffer of %zu bytes)", ncap);
	b->data = p;
	b->cap = ncap;
	return ACLM_OK;
}

int aclm_buf_append(struct aclm_buf *b, const void *p, size_t n)
{
	int rc;

	/* The common case, room and within the limit, without a call. */
	if (n > 0 && b->cap > b->len && b->cap - b->len > n && n <= b->max &&
	    b->len <= b->max - n) {
		memcpy(b->data + b->len, p, n);
		b->len += n;
		b->data[b->len] = '\0';
		return ACLM_OK;
	}
	if ((rc = reserve(b, n)) != ACLM_OK)
		return rc;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return ACLM_OK;
}

int aclm_buf_puts(struct aclm_buf *b, const char *s)
{
	return aclm_buf_append(b, s, strlen(s));
}

int aclm_buf_putc(struct aclm_buf *b, char c)
{
	return aclm_buf_append(b, &c, 1);
}

int aclm_buf_vprintf(struct aclm_buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	int n, rc;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return aclm_error(ACLM_ERR_PARSE, "bad format string");
	rc = reserve(b, (size_t)n);
	if (rc != ACLM_OK)
		return rc;
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return ACLM_OK;
}

int aclm_buf_printf(struct aclm_buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = aclm_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

const char *aclm_buf_cstr(const struct aclm_buf *b)
{
	return b->data != NULL ? (const char *)b->data : "";
}

char *aclm_buf_steal(struct aclm_buf *b, size_t *len)
{
	char *p;

	if (b->data == NULL && reserve(b, 0) != ACLM_OK)
		return NULL;
	b->data[b->len] = '\0';
	p = (char *)b->data;
	if (len != NULL)
		*len = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

void aclm_buf_reset(struct aclm_buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

void aclm_buf_free(struct aclm_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void aclm_buf_free_secret(struct aclm_buf *b)
{
	if (b->data != NULL)
		OPENSSL_cleanse(b->data, b->cap);
	aclm_buf_free(b);
}

int aclm_buf_read_file(struct aclm_buf *b, const char *path)
{
	struct stat st;
	unsigned char chunk[65536];
	ssize_t n;
	int fd, rc = ACLM_OK;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return aclm_error(ACLM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0) {
		rc = aclm_error(ACLM_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		rc = aclm_error(ACLM_ERR_IO, "%s: is a directory", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = aclm_error(ACLM_ERR_IO, "%s: not a regular file", path);
		goto out;
	}
	if ((uint64_t)st.st_size > b->max) {
		rc = aclm_error(ACLM_ERR_TOOBIG, "%s: file too large (%lld bytes, limit %zu)",
		                path, (long long)st.st_size, b->max);
		goto out;
	}
	/* Regular file: clear O_NONBLOCK (it only mattered for FIFOs). */
	(void)fcntl(fd, F_SETFL, 0);
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = aclm_error(ACLM_ERR_IO, "%s: read failed: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		rc = aclm_buf_append(b, chunk, (size_t)n);
		if (rc != ACLM_OK) {
			rc = aclm_error(rc, "%s: file too large (limit %zu bytes)", path, b->max);
			goto out;
		}
	}
out:
	close(fd);
	return rc;
}
