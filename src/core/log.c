/* Log lines to stderr: "aclm: warn: message" or one JSON object a line. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "aclm/buf.h"
#include "aclm/err.h"
#include "aclm/log.h"
#include "aclm/timeutil.h"

static enum aclm_log_level min_level = ACLM_LOG_INFO;
static bool as_json;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void aclm_log_set_level(enum aclm_log_level level)
{
	min_level = level;
}

void aclm_log_set_json(bool json)
{
	as_json = json;
}

int aclm_log_parse_level(const char *s, enum aclm_log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			*out = (enum aclm_log_level)i;
			return ACLM_OK;
		}
	}
	return aclm_error(ACLM_ERR_PARSE, "'%s' is not a log level (debug, info, warn, error)", s);
}

static void json_escape(struct aclm_buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			aclm_buf_printf(b, "\\%c", c);
		else if (c < 0x20)
			aclm_buf_printf(b, "\\u%04x", c);
		else
			aclm_buf_putc(b, (char)c);
	}
}

void aclm_log(enum aclm_log_level level, const char *fmt, ...)
{
	char msg[2048], ts[32];
	struct aclm_buf b;
	va_list ap;

	if (level < min_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!as_json) {
		fprintf(stderr, "aclm: %s%s%s\n", level == ACLM_LOG_INFO ? "" : level_names[level],
		        level == ACLM_LOG_INFO ? "" : ": ", msg);
		return;
	}
	aclm_time_iso(aclm_now(), ts, sizeof(ts));
	aclm_buf_init(&b, 8192);
	aclm_buf_printf(&b, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts, level_names[level]);
	json_escape(&b, msg);
	aclm_buf_puts(&b, "\"}\n");
	fputs(aclm_buf_cstr(&b), stderr);
	aclm_buf_free(&b);
}
