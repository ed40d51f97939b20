/* String and number helpers (replacements for the banned libc calls). */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aclm/err.h"
#include "aclm/str.h"

size_t aclm_strlcpy(char *dst, const char *src, size_t size)
{
	size_t n = strlen(src);

	if (size > 0) {
		size_t c = n < size - 1 ? n : size - 1;
		memcpy(dst, src, c);
		dst[c] = '\0';
	}
	return n;
}

char *aclm_strdup(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

char *aclm_strndup(const char *s, size_t n)
{
	return s != NULL ? strndup(s, n) : NULL;
}

int aclm_parse_int64(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
		return aclm_error(ACLM_ERR_PARSE, "'%s' is not an integer", s ? s : "");
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno == ERANGE)
		return aclm_error(ACLM_ERR_PARSE, "'%s' is out of range", s);
	if (*end != '\0')
		return aclm_error(ACLM_ERR_PARSE, "'%s' is not an integer", s);
	*out = v;
	return ACLM_OK;
}

/* Split "30d" into a non-negative integer and a unit suffix. */
static int number_with_unit(const char *s, int64_t *n, const char **unit)
{
	const char *p = s;
	int64_t v = 0;

	if (s == NULL || !isdigit((unsigned char)*p))
		return ACLM_ERR_PARSE;
	while (isdigit((unsigned char)*p)) {
		int d = *p - '0';
		if (v > (INT64_MAX - d) / 10)
			return ACLM_ERR_PARSE;
		v = v * 10 + d;
		p++;
	}
	*n = v;
	*unit = p;
	return ACLM_OK;
}

int aclm_parse_duration(const char *s, int64_t *seconds)
{
	static const struct { const char *u; int64_t mult; } units[] = {
		{ "", 1 }, { "s", 1 }, { "m", 60 }, { "h", 3600 }, { "d", 86400 }, { "w", 604800 },
	};
	const char *unit;
	int64_t n;

	if (number_with_unit(s, &n, &unit) == ACLM_OK) {
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			if (strcasecmp(unit, units[i].u) == 0) {
				if (n > INT64_MAX / units[i].mult)
					break;
				*seconds = n * units[i].mult;
				return ACLM_OK;
			}
		}
	}
	return aclm_error(ACLM_ERR_PARSE, "'%s' is not a duration (e.g. 30d, 12h, 90m, 45s, 2w)",
	                  s ? s : "");
}

int aclm_parse_size(const char *s, uint64_t *bytes)
{
	static const struct { const char *u; uint64_t mult; } units[] = {
		{ "", 1 }, { "b", 1 }, { "k", 1024 }, { "kb", 1024 }, { "kib", 1024 },
		{ "m", 1u << 20 }, { "mb", 1u << 20 }, { "mib", 1u << 20 },
		{ "g", 1u << 30 }, { "gb", 1u << 30 }, { "gib", 1u << 30 },
	};
	const char *unit;
	int64_t n;

	if (number_with_unit(s, &n, &unit) == ACLM_OK) {
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			if (strcasecmp(unit, units[i].u) == 0) {
				if ((uint64_t)n > UINT64_MAX / units[i].mult)
					break;
				*bytes = (uint64_t)n * units[i].mult;
				return ACLM_OK;
			}
		}
	}
	return aclm_error(ACLM_ERR_PARSE, "'%s' is not a size (e.g. 64M, 512k, 1G)", s ? s : "");
}

int aclm_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };

	for (size_t i = 0; s != NULL && i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return ACLM_OK;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return ACLM_OK;
		}
	}
	return aclm_error(ACLM_ERR_PARSE, "'%s' is not a boolean (true or false)", s ? s : "");
}

void aclm_hex_encode(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

int aclm_hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int aclm_hex_decode(const char *in, unsigned char *out, size_t out_size)
{
	size_t n = 0;

	while (*in != '\0') {
		int hi, lo;
		if (*in == ':') {
			in++;
			continue;
		}
		hi = aclm_hex_digit((unsigned char)in[0]);
		lo = hi < 0 ? -1 : aclm_hex_digit((unsigned char)in[1]);
		if (hi < 0 || lo < 0)
			return aclm_error(ACLM_ERR_PARSE, "not hexadecimal: '%s'", in);
		if (n >= out_size)
			return aclm_error(ACLM_ERR_TOOBIG, "hex value longer than %zu bytes", out_size);
		out[n++] = (unsigned char)(hi << 4 | lo);
		in += 2;
	}
	return (int)n;
}

void aclm_str_lower(char *s)
{
	for (; *s != '\0'; s++)
		*s = (char)tolower((unsigned char)*s);
}

bool aclm_str_has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool aclm_str_has_suffix(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);

	return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

bool aclm_str_icontains(const char *haystack, const char *needle)
{
	size_t ln = strlen(needle);

	if (ln == 0)
		return true;
	for (; *haystack != '\0'; haystack++)
		if (strncasecmp(haystack, needle, ln) == 0)
			return true;
	return false;
}

bool aclm_ct_equal(const void *a, const void *b, size_t n)
{
	const volatile unsigned char *x = a, *y = b;
	unsigned char d = 0;

	for (size_t i = 0; i < n; i++)
		d |= x[i] ^ y[i];
	return d == 0;
}
