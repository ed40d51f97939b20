/* Inventory rows as JSON: one shape for `aclm list --json` and the API. */
#ifndef ACLM_STORE_JSON_H
#define ACLM_STORE_JSON_H

#include <stdint.h>

#include <jansson.h>

#include "aclm/store.h"

json_t *aclm_cert_row_json(const struct aclm_cert_row *r, int64_t now);
/* "DNS:a,IP:b" -> ["DNS:a", "IP:b"]. */
json_t *aclm_sans_json(const char *sans);

#endif
