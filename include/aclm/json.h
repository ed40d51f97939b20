/* JSON helpers shared by every front end (jansson). */
#ifndef ACLM_JSON_H
#define ACLM_JSON_H

#include <stdint.h>

#include <jansson.h>

/* A string, or null for NULL; text that is not valid UTF-8 (certificates
 * carry such) is kept as it is rather than dropped. */
json_t *aclm_json_str(const char *s);
/* ISO 8601 UTC ("2026-11-30T12:00:00Z"). */
json_t *aclm_json_time(int64_t t);

#endif
