/* UTC time helpers. */
#include <stdbool.h>
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

/* Year, month, day and seconds of the day of t, by the days-from-civil
 * arithmetic (proleptic Gregorian, UTC): false outside years 1000..9999,
 * where gmtime_r() and strftime() take over (glibc does not pad years
 * below 1000 to four digits).  A long listing formats a date per row;
 * strftime() was a tenth of its instructions. */
static bool civil(int64_t t, int *y, int *m, int *d, int *sod)
{
	int64_t days, era, doe, yoe, doy, mp;

	if (t < -30610224000LL || t > 253402300799LL)   /* 1000-01-01 .. 9999-12-31 */
		return false;
	days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
	*sod = (int)(t - days * 86400);
	days += 719468;
	era = (days >= 0 ? days : days - 146096) / 146097;
	doe = days - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yoe + era * 400 + (*m <= 2));
	return true;
}

static void digits(char *p, int v, int n)
{
	while (n-- > 0) {
		p[n] = (char)('0' + v % 10);
		v /= 10;
	}
}

/* t as "YYYY-MM-DDTHH:MM:SSZ", or its first 10 characters (the date). */
static void format_utc(int64_t t, char *out, size_t out_size, bool with_time)
{
	struct tm tm;
	time_t tt = (time_t)t;
	int y, m, d, sod;

	size_t len = with_time ? 20 : 10;

	if (out_size > len && civil(t, &y, &m, &d, &sod)) {
		char buf[21] = "0000-00-00T00:00:00Z";

		digits(buf, y, 4);
		digits(buf + 5, m, 2);
		digits(buf + 8, d, 2);
		digits(buf + 11, sod / 3600, 2);
		digits(buf + 14, sod / 60 % 60, 2);
		digits(buf + 17, sod % 60, 2);
		memcpy(out, buf, len);
		out[len] = '\0';
		return;
	}
	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(out, out_size, with_time ? "%Y-%m-%dT%H:%M:%SZ" : "%Y-%m-%d", &tm) == 0)
		snprintf(out, out_size, "@%lld", (long long)t);
}

void aclm_time_iso(int64_t t, char *out, size_t out_size)
{
	format_utc(t, out, out_size, true);
}

void aclm_time_date(int64_t t, char *out, size_t out_size)
{
	format_utc(t, out, out_size, false);
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
