/* Time as int64 seconds since the Unix epoch, UTC everywhere. */
#ifndef ACLM_TIMEUTIL_H
#define ACLM_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Now; honours $ACLM_NOW (seconds or YYYY-MM-DDTHH:MM:SSZ) so tests can pin it. */
int64_t aclm_now(void);
/* "2026-11-22T10:00:00Z" into out (at least 21 bytes). */
void aclm_time_iso(int64_t t, char *out, size_t out_size);
/* "2026-11-22" into out (at least 11 bytes). */
void aclm_time_date(int64_t t, char *out, size_t out_size);
/* Parse "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM:SSZ". */
int aclm_time_parse_iso(const char *s, int64_t *out);
/* Whole days from now to t, rounded towards negative infinity. */
int64_t aclm_days_left(int64_t t, int64_t now);

#endif
