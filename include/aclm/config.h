/* Configuration: aclm.yaml plus ACLM_* environment overrides.
 *
 * Lookup order of the file: --config PATH, $ACLM_CONFIG, ./aclm.yaml,
 * /etc/aclm/aclm.yaml; no file at all is fine (defaults).  Every known key
 * "section.name" can be overridden by ACLM_SECTION_NAME.  Known keys, their
 * types and defaults are one table in config.c; `aclm config check` reports
 * unknown keys and bad values as "file:line:col: message". */
#ifndef ACLM_CONFIG_H
#define ACLM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct aclm_config;

/* Load the configuration.  explicit_path (from --config) may be NULL.  A file
 * that was named explicitly (option or $ACLM_CONFIG) must exist.  Syntax
 * errors fail the load with "file:line:col: ..."; unknown keys and bad values
 * do not (they are reported by aclm_config_check), but a bad value falls
 * back to the default only after being reported there. */
int aclm_config_load(const char *explicit_path, struct aclm_config **out);
void aclm_config_free(struct aclm_config *cfg);

/* The file used, or NULL when running on defaults. */
const char *aclm_config_path(const struct aclm_config *cfg);

/* Typed getters: value from env, else file, else default.  Keys not in the
 * table abort in debug builds (a programming error) and return defaults. */
const char *aclm_config_str(const struct aclm_config *cfg, const char *key);
int64_t aclm_config_int(const struct aclm_config *cfg, const char *key);
bool aclm_config_bool(const struct aclm_config *cfg, const char *key);
int64_t aclm_config_duration(const struct aclm_config *cfg, const char *key); /* seconds */
uint64_t aclm_config_size(const struct aclm_config *cfg, const char *key);   /* bytes */
/* The effective text of any scalar key, whatever its type (for display). */
const char *aclm_config_str_any(const struct aclm_config *cfg, const char *key);
/* A list value: YAML sequence, or comma-separated in the environment. */
size_t aclm_config_list(const struct aclm_config *cfg, const char *key, const char *const **items);

/* A list of mappings (type "table", e.g. acme.cas): one record per entry,
 * its fields in file order with where the entry starts.  Not settable from
 * the environment. */
struct aclm_config_record {
	char *fields[64];
	char *values[64];
	size_t n_fields;
	size_t line, col;
};
size_t aclm_config_table(const struct aclm_config *cfg, const char *key,
                         const struct aclm_config_record **records);
/* A field's value, NULL when absent. */
const char *aclm_config_record_get(const struct aclm_config_record *r, const char *field);

/* Where a key's effective value comes from: "default", "file:LINE", "env:ACLM_X". */
void aclm_config_origin(const struct aclm_config *cfg, const char *key, char *out, size_t out_size);

/* Report every problem through fn(ctx, "file:line:col: message"); returns
 * the number of problems. */
typedef void (*aclm_config_report_fn)(void *ctx, const char *message);
int aclm_config_check(const struct aclm_config *cfg, aclm_config_report_fn fn, void *ctx);

/* Enumerate the known keys (for `aclm config show`). */
struct aclm_config_key_info {
	const char *key;
	const char *type;     /* "string","int","bool","duration","size","list","enum","table" */
	const char *def;
	const char *help;
};
size_t aclm_config_keys(const struct aclm_config_key_info **keys);

#endif
