/* JSON helpers shared by every front end (jansson). */
#include <string.h>

#include "aclm/json.h"
#include "aclm/timeutil.h"

json_t *aclm_json_str(const char *s)
{
	/* Certificates may carry invalid UTF-8; never drop the field for it. */
	json_t *j;

	if (s == NULL)
		return json_null();
	j = json_string(s);
	return j != NULL ? j : json_stringn_nocheck(s, strlen(s));
}

json_t *aclm_json_time(int64_t t)
{
	char buf[32];

	aclm_time_iso(t, buf, sizeof(buf));
	return json_string(buf);
}
