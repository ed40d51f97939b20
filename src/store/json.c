/* Inventory rows as JSON, the one shape the CLI (--json) and the REST API
 * share. */
#include <stdio.h>
#include <string.h>

#include "aclm/json.h"
#include "aclm/store_json.h"
#include "aclm/timeutil.h"

static void key_label(const struct aclm_cert_row *r, char *out, size_t n)
{
	if (strcmp(r->key_type, "rsa") == 0 || strcmp(r->key_type, "dsa") == 0)
		snprintf(out, n, "%s%d", r->key_type, r->key_bits);
	else if (strcmp(r->key_type, "ec") == 0)
		snprintf(out, n, "ec%d", r->key_bits);
	else
		snprintf(out, n, "%s", r->key_type);
}

json_t *aclm_sans_json(const char *sans)
{
	json_t *a = json_array();
	const char *p = sans;

	while (p != NULL && *p != '\0') {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		json_t *s = json_stringn(p, n);
		json_array_append_new(a, s != NULL ? s : json_stringn_nocheck(p, n));
		p = comma ? comma + 1 : NULL;
	}
	return a;
}

json_t *aclm_cert_row_json(const struct aclm_cert_row *r, int64_t now)
{
	json_t *o = json_object();
	char key[32];

	key_label(r, key, sizeof(key));
	json_object_set_new(o, "id", json_integer(r->id));
	json_object_set_new(o, "fingerprint", json_string(r->fingerprint));
	json_object_set_new(o, "spki_sha256", json_string(r->spki));
	json_object_set_new(o, "subject", aclm_json_str(r->subject));
	json_object_set_new(o, "issuer", aclm_json_str(r->issuer));
	json_object_set_new(o, "subject_cn", aclm_json_str(r->subject_cn));
	json_object_set_new(o, "issuer_cn", aclm_json_str(r->issuer_cn));
	json_object_set_new(o, "serial", aclm_json_str(r->serial));
	json_object_set_new(o, "not_before", aclm_json_time(r->not_before));
	json_object_set_new(o, "not_after", aclm_json_time(r->not_after));
	json_object_set_new(o, "days_left", json_integer(aclm_days_left(r->not_after, now)));
	json_object_set_new(o, "key_type", aclm_json_str(r->key_type));
	json_object_set_new(o, "key_bits", json_integer(r->key_bits));
	json_object_set_new(o, "curve", aclm_json_str(r->curve));
	json_object_set_new(o, "key", json_string(key));
	json_object_set_new(o, "sig_alg", aclm_json_str(r->sig_alg));
	json_object_set_new(o, "level", aclm_json_str(r->level ? r->level : ""));
	json_object_set_new(o, "sans", aclm_sans_json(r->sans));
	json_object_set_new(o, "is_ca", json_boolean(r->is_ca));
	json_object_set_new(o, "issuer_id", r->issuer_id ? json_integer(r->issuer_id) : json_null());
	json_object_set_new(o, "has_private_key", json_boolean(r->has_private_key));
	json_object_set_new(o, "first_seen", r->first_seen ? aclm_json_time(r->first_seen) : json_null());
	json_object_set_new(o, "last_seen", r->last_seen ? aclm_json_time(r->last_seen) : json_null());
	return o;
}
