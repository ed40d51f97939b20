/* Output helpers: JSON rendering of inventory rows, terminal colours. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aclm/buf.h"
#include "aclm/err.h"
#include "aclm/timeutil.h"
#include "cli-int.h"

bool cli_color(FILE *f)
{
	const char *nc = getenv("NO_COLOR");

	return isatty(fileno(f)) && (nc == NULL || *nc == '\0');
}

void cli_json_print(json_t *j)
{
	if (j == NULL) {
		fputs("null\n", stdout);
		return;
	}
	json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
	fputc('\n', stdout);
	json_decref(j);
}

json_t *cli_json_time(int64_t t)
{
	char buf[32];

	aclm_time_iso(t, buf, sizeof(buf));
	return json_string(buf);
}

json_t *cli_json_str(const char *s)
{
	/* Certificates may carry invalid UTF-8; never drop the field for it. */
	json_t *j;

	if (s == NULL)
		return json_null();
	j = json_string(s);
	return j != NULL ? j : json_stringn_nocheck(s, strlen(s));
}

json_t *cli_sans_json(const char *sans)
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

static void key_label(const struct aclm_cert_row *r, char *out, size_t n)
{
	if (strcmp(r->key_type, "rsa") == 0 || strcmp(r->key_type, "dsa") == 0)
		snprintf(out, n, "%s%d", r->key_type, r->key_bits);
	else if (strcmp(r->key_type, "ec") == 0)
		snprintf(out, n, "ec%d", r->key_bits);
	else
		snprintf(out, n, "%s", r->key_type);
}

json_t *cli_cert_row_json(const struct aclm_cert_row *r, int64_t now)
{
	json_t *o = json_object();
	char key[32];

	key_label(r, key, sizeof(key));
	json_object_set_new(o, "id", json_integer(r->id));
	json_object_set_new(o, "fingerprint", json_string(r->fingerprint));
	json_object_set_new(o, "spki_sha256", json_string(r->spki));
	json_object_set_new(o, "subject", cli_json_str(r->subject));
	json_object_set_new(o, "issuer", cli_json_str(r->issuer));
	json_object_set_new(o, "subject_cn", cli_json_str(r->subject_cn));
	json_object_set_new(o, "issuer_cn", cli_json_str(r->issuer_cn));
	json_object_set_new(o, "serial", cli_json_str(r->serial));
	json_object_set_new(o, "not_before", cli_json_time(r->not_before));
	json_object_set_new(o, "not_after", cli_json_time(r->not_after));
	json_object_set_new(o, "days_left", json_integer(aclm_days_left(r->not_after, now)));
	json_object_set_new(o, "key_type", cli_json_str(r->key_type));
	json_object_set_new(o, "key_bits", json_integer(r->key_bits));
	json_object_set_new(o, "curve", cli_json_str(r->curve));
	json_object_set_new(o, "key", json_string(key));
	json_object_set_new(o, "sig_alg", cli_json_str(r->sig_alg));
	json_object_set_new(o, "level", cli_json_str(r->level ? r->level : ""));
	json_object_set_new(o, "sans", cli_sans_json(r->sans));
	json_object_set_new(o, "is_ca", json_boolean(r->is_ca));
	json_object_set_new(o, "issuer_id", r->issuer_id ? json_integer(r->issuer_id) : json_null());
	json_object_set_new(o, "has_private_key", json_boolean(r->has_private_key));
	json_object_set_new(o, "first_seen", r->first_seen ? cli_json_time(r->first_seen) : json_null());
	json_object_set_new(o, "last_seen", r->last_seen ? cli_json_time(r->last_seen) : json_null());
	return o;
}

int cli_read_password_file(const char *path, char **out)
{
	struct aclm_buf b;
	char *nl;
	int rc;

	aclm_buf_init(&b, 64 * 1024);
	rc = aclm_buf_read_file(&b, path);
	if (rc != ACLM_OK) {
		aclm_buf_free_secret(&b);
		return rc;
	}
	*out = aclm_buf_steal(&b, NULL);
	if (*out == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	nl = strpbrk(*out, "\r\n");
	if (nl != NULL)
		*nl = '\0';
	return ACLM_OK;
}
