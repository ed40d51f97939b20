/* String and number helpers that replace the banned libc functions. */
#ifndef ACLM_STR_H
#define ACLM_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Copy with truncation; always NUL-terminates; returns strlen(src). */
size_t aclm_strlcpy(char *dst, const char *src, size_t size);
/* strdup that returns NULL for NULL. */
char *aclm_strdup(const char *s);
char *aclm_strndup(const char *s, size_t n);
/* Parse a whole decimal integer; ACLM_ERR_PARSE on junk or overflow. */
int aclm_parse_int64(const char *s, int64_t *out);
/* "30d", "12h", "90m", "45s", "2w", plain seconds; into seconds. */
int aclm_parse_duration(const char *s, int64_t *seconds);
/* "64M", "1G", "512k", plain bytes. */
int aclm_parse_size(const char *s, uint64_t *bytes);
/* "true/false/yes/no/on/off/1/0". */
int aclm_parse_bool(const char *s, bool *out);
/* Lower-case hex of n bytes into out (2n+1 bytes). */
void aclm_hex_encode(const unsigned char *in, size_t n, char *out);
/* Decode hex (upper/lower, optional ':' separators) into out; returns the
 * number of bytes or ACLM_ERR_PARSE / ACLM_ERR_TOOBIG. */
/* The value of one hex digit (either case), or -1. */
int aclm_hex_digit(int c);
int aclm_hex_decode(const char *in, unsigned char *out, size_t out_size);
void aclm_str_lower(char *s);
bool aclm_str_has_prefix(const char *s, const char *prefix);
bool aclm_str_has_suffix(const char *s, const char *suffix);
/* Case-insensitive substring test. */
bool aclm_str_icontains(const char *haystack, const char *needle);
/* Constant-time comparison of two buffers of equal length. */
bool aclm_ct_equal(const void *a, const void *b, size_t n);

#endif
