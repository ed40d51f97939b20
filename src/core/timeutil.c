/* UTC time helpers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aclm/err.h"
#include "aclm/str.h"
#include "aclm/timeutil.h"

int64_t aclm_now(void)
{
	const char *pin = getenv("ACLM_NOW");
	int64_t t;

	if (pin != NULL && *pin != '\0') {
		if (aclm_parse_int64(pin, &t) == ACLM_OK || aclm_time_parse_iso(pin, &t) == ACLM_OK)
			return t;
	}
	return (int64_t)time(NULL);
}

void aclm_time_iso(int64_t t, char *out, size_t out_size)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (gmtime_r(&tt, &tm) == NULL || strftime(out, out_size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, out_size, "@%lld", (long long)t);
}

void aclm_time_date(int64_t t, char *out, size_t out_size)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (gmtime_r(&tt, &tm) == NULL || strftime(out, out_size, "%Y-%m-%d", &tm) == 0)
		snprintf(out, out_size, "@%lld", (long long)t);
}

int aclm_time_parse_iso(const char *s, int64_t *out)
{
	struct tm tm;
	const char *end;

	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (end == NULL || *end != '\0') {
		memset(&tm, 0, sizeof(tm));
		end = strptime(s, "%Y-%m-%d", &tm);
		if (end == NULL || *end != '\0')
			return aclm_error(ACLM_ERR_PARSE, "'%s' is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ)", s);
	}
	*out = (int64_t)timegm(&tm);
	return ACLM_OK;
}

int64_t aclm_days_left(int64_t t, int64_t now)
{
	int64_t d = t - now;

	return d >= 0 ? d / 86400 : -((-d + 86399) / 86400);
}
