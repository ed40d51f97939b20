/* Growable byte buffer with a hard maximum (curl's dynbuf "toobig").
 * Every buffer that holds untrusted input is created with a limit. */
#ifndef ACLM_BUF_H
#define ACLM_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct aclm_buf {
	unsigned char *data; /* always NUL-terminated past len when non-NULL */
	size_t len;
	size_t cap;
	size_t max;          /* appends that would exceed this fail with ACLM_ERR_TOOBIG */
};

#define ACLM_BUF_MAX_DEFAULT ((size_t)64 << 20)

void aclm_buf_init(struct aclm_buf *b, size_t max);
int aclm_buf_append(struct aclm_buf *b, const void *p, size_t n);
int aclm_buf_puts(struct aclm_buf *b, const char *s);
int aclm_buf_putc(struct aclm_buf *b, char c);
int aclm_buf_printf(struct aclm_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int aclm_buf_vprintf(struct aclm_buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* The contents as a C string ("" when empty); valid until the next append. */
const char *aclm_buf_cstr(const struct aclm_buf *b);
/* Hand the storage to the caller (NUL-terminated) and reset the buffer. */
char *aclm_buf_steal(struct aclm_buf *b, size_t *len);
void aclm_buf_reset(struct aclm_buf *b);
void aclm_buf_free(struct aclm_buf *b);
/* Like aclm_buf_free but wipes the contents first (secrets). */
void aclm_buf_free_secret(struct aclm_buf *b);

/* Read a whole regular file into b, at most b->max bytes; the message names
 * the path and the reason (not found, permission, too large, not a file). */
int aclm_buf_read_file(struct aclm_buf *b, const char *path);

#endif
