/* Per-thread error message; see include/aclm/err.h for the convention. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "aclm/err.h"
#include "aclm/str.h"

#define ERRMSG_MAX 1024

static _Thread_local char errmsg[ERRMSG_MAX];

int aclm_error(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errmsg, sizeof(errmsg), fmt, ap);
	va_end(ap);
	return code;
}

int aclm_error_wrap(int code, const char *fmt, ...)
{
	char prefix[ERRMSG_MAX], old[ERRMSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	aclm_strlcpy(old, errmsg, sizeof(old));
	if (old[0] != '\0')
		snprintf(errmsg, sizeof(errmsg), "%s: %s", prefix, old);
	else
		aclm_strlcpy(errmsg, prefix, sizeof(errmsg));
	return code;
}

int aclm_error_openssl(int code, const char *fmt, ...)
{
	va_list ap;
	size_t len;
	unsigned long e;
	const char *reason;

	va_start(ap, fmt);
	vsnprintf(errmsg, sizeof(errmsg), fmt, ap);
	va_end(ap);
	/* The innermost (last) OpenSSL error is usually the most specific. */
	e = ERR_peek_last_error();
	if (e != 0) {
		reason = ERR_reason_error_string(e);
		len = strlen(errmsg);
		if (reason != NULL && len + 3 < sizeof(errmsg))
			snprintf(errmsg + len, sizeof(errmsg) - len, " (%s)", reason);
	}
	ERR_clear_error();
	return code;
}

const char *aclm_errmsg(void)
{
	return errmsg;
}

void aclm_error_clear(void)
{
	errmsg[0] = '\0';
}

const char *aclm_err_name(int code)
{
	switch (code) {
	case ACLM_OK: return "ok";
	case ACLM_ERR_NOMEM: return "out of memory";
	case ACLM_ERR_IO: return "i/o error";
	case ACLM_ERR_PARSE: return "parse error";
	case ACLM_ERR_NOTFOUND: return "not found";
	case ACLM_ERR_DB: return "database error";
	case ACLM_ERR_CRYPTO: return "crypto error";
	case ACLM_ERR_USAGE: return "usage error";
	case ACLM_ERR_TOOBIG: return "too big";
	case ACLM_ERR_PASSWORD: return "bad password";
	case ACLM_ERR_CONFIG: return "configuration error";
	case ACLM_ERR_VERSION: return "version mismatch";
	case ACLM_ERR_EXISTS: return "exists";
	case ACLM_ERR_UNSUPPORTED: return "unsupported";
	case ACLM_ERR_AMBIGUOUS: return "ambiguous";
	case ACLM_AGAIN: return "again";
	default: return "error";
	}
}
