/* Inventory rows as JSON: one shape for `aclm list --json` and the API. */
#ifndef ACLM_STORE_JSON_H
#define ACLM_STORE_JSON_H

#include <stdint.h>

#include <jansson.h>

#include "aclm/store.h"

json_t *aclm_cert_row_json(const struct aclm_cert_row *r, int64_t now);
/* The same object as text, appended to b: exactly what json_dumpb() of
 * aclm_cert_row_json() gives with JSON_INDENT(2) | JSON_PRESERVE_ORDER |
 * JSON_ENSURE_ASCII (test_store.c holds them equal), written directly,
 * at a third of the cost (a long `aclm list --json`).  Bytes that are not
 * UTF-8 come out as \u00XX instead of failing the row. */
struct aclm_buf;
int aclm_cert_row_json_text(const struct aclm_cert_row *r, int64_t now, struct aclm_buf *b);
/* "DNS:a,IP:b" -> ["DNS:a", "IP:b"]. */
json_t *aclm_sans_json(const char *sans);

#endif
