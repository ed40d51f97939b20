/* Errors: one convention for the whole code base.
 *
 * Functions return 0 on success and a negative enum aclm_err on failure.
 * The function that understands a failure records a message for a person
 * (what, where, what was expected) with aclm_error(); callers pass the code
 * up unchanged and the front end prints aclm_errmsg() once.  The message is
 * per thread. */
#ifndef ACLM_ERR_H
#define ACLM_ERR_H

enum aclm_err {
	ACLM_OK = 0,
	ACLM_ERR_NOMEM = -1,       /* allocation failed */
	ACLM_ERR_IO = -2,          /* read/write/open failed */
	ACLM_ERR_PARSE = -3,       /* input is malformed */
	ACLM_ERR_NOTFOUND = -4,    /* no such object */
	ACLM_ERR_DB = -5,          /* database error */
	ACLM_ERR_CRYPTO = -6,      /* a cryptographic operation failed */
	ACLM_ERR_USAGE = -7,       /* bad arguments from the caller or user */
	ACLM_ERR_TOOBIG = -8,      /* input exceeds a configured limit */
	ACLM_ERR_PASSWORD = -9,    /* missing or wrong password */
	ACLM_ERR_CONFIG = -10,     /* bad configuration */
	ACLM_ERR_VERSION = -11,    /* incompatible version (e.g. newer schema) */
	ACLM_ERR_EXISTS = -12,     /* object exists already */
	ACLM_ERR_UNSUPPORTED = -13,/* valid but not supported */
	ACLM_ERR_AMBIGUOUS = -14,  /* a prefix matched several objects */
	ACLM_AGAIN = -100,         /* partial I/O: try again later */
};

/* Record a message for the current thread; returns code so callers can
 * write `return aclm_error(ACLM_ERR_IO, "%s: %s", path, strerror(errno));`. */
int aclm_error(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Prefix the current message with "prefix: " (adds context on the way up). */
int aclm_error_wrap(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The last message recorded on this thread, "" if none. */
const char *aclm_errmsg(void);

/* A short stable name for a code ("io", "parse", ...). */
const char *aclm_err_name(int code);

void aclm_error_clear(void);

/* Append OpenSSL's error queue (then clear it) to the current message. */
int aclm_error_openssl(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
