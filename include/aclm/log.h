/* Logging to stderr, as text lines or JSON lines.  Never pass secrets. */
#ifndef ACLM_LOG_H
#define ACLM_LOG_H

#include <stdbool.h>

enum aclm_log_level {
	ACLM_LOG_DEBUG = 0,
	ACLM_LOG_INFO = 1,
	ACLM_LOG_WARN = 2,
	ACLM_LOG_ERROR = 3,
};

void aclm_log_set_level(enum aclm_log_level level);
void aclm_log_set_json(bool json);
/* Parse "debug|info|warn|error"; returns 0 or ACLM_ERR_PARSE. */
int aclm_log_parse_level(const char *s, enum aclm_log_level *out);
void aclm_log(enum aclm_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define aclm_debug(...) aclm_log(ACLM_LOG_DEBUG, __VA_ARGS__)
#define aclm_info(...)  aclm_log(ACLM_LOG_INFO, __VA_ARGS__)
#define aclm_warn(...)  aclm_log(ACLM_LOG_WARN, __VA_ARGS__)
#define aclm_err(...)   aclm_log(ACLM_LOG_ERROR, __VA_ARGS__)

#endif
