/* Inventory rows as JSON, the one shape the CLI (--json) and the REST API
 * share. */
#include <stdio.h>
#include <string.h>

#include "aclm/buf.h"
#include "aclm/err.h"
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

/* --- the same, as text ---------------------------------------------------- */

/* The length of the UTF-8 sequence at p (at most n bytes) and its code
 * point, or 0 when it is not well-formed (overlong, surrogate, > U+10FFFF,
 * truncated), as jansson's utf8_check_full() judges it. */
static size_t utf8_seq(const unsigned char *p, size_t n, uint32_t *cp)
{
	size_t len;
	uint32_t v;

	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2;
		v = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		v = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		v = p[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (p[i] & 0x3f);
	}
	if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff) || (len == 3 && v < 0x800) ||
	    (len == 4 && v < 0x10000))
		return 0;
	*cp = v;
	return len;
}

/* A JSON string of n bytes: '"' and '\\' escaped, control characters as
 * jansson writes them, everything above ASCII as \uXXXX (surrogate pairs
 * above U+FFFF). */
static int put_str(struct aclm_buf *b, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	int rc = aclm_buf_putc(b, '"');

	while (p < end && rc == ACLM_OK) {
		const unsigned char *run = p;
		uint32_t cp;
		size_t len;
		char esc[16];

		/* printable ASCII but '"' and '\\' goes out as it is */
		while (p < end && (unsigned)(*p - 0x20) < 0x60 && *p != '"' && *p != '\\')
			p++;
		if (p > run && (rc = aclm_buf_append(b, run, (size_t)(p - run))) != ACLM_OK)
			break;
		if (p == end)
			break;
		len = utf8_seq(p, (size_t)(end - p), &cp);
		if (len == 0) {          /* not UTF-8: the byte as a Latin-1 letter */
			cp = *p;
			len = 1;
		}
		p += len;
		switch (cp) {
		case '"': rc = aclm_buf_append(b, "\\\"", 2); continue;
		case '\\': rc = aclm_buf_append(b, "\\\\", 2); continue;
		case '\b': rc = aclm_buf_append(b, "\\b", 2); continue;
		case '\f': rc = aclm_buf_append(b, "\\f", 2); continue;
		case '\n': rc = aclm_buf_append(b, "\\n", 2); continue;
		case '\r': rc = aclm_buf_append(b, "\\r", 2); continue;
		case '\t': rc = aclm_buf_append(b, "\\t", 2); continue;
		default: break;
		}
		if (cp < 0x10000) {
			snprintf(esc, sizeof(esc), "\\u%04X", (unsigned)cp);
		} else {
			cp -= 0x10000;
			snprintf(esc, sizeof(esc), "\\u%04X\\u%04X", (unsigned)(0xd800 | (cp >> 10)),
			         (unsigned)(0xdc00 | (cp & 0x3ff)));
		}
		rc = aclm_buf_puts(b, esc);
	}
	return rc == ACLM_OK ? aclm_buf_putc(b, '"') : rc;
}

/* ,\n  "key": (keys are plain ASCII) */
static int put_key(struct aclm_buf *b, const char *key, bool first)
{
	char text[48];
	size_t n = strlen(key);

	if (n > sizeof(text) - 8)
		return aclm_error(ACLM_ERR_TOOBIG, "JSON key '%s' too long", key);
	memcpy(text, first ? "{\n  \"" : ",\n  \"", 5);
	memcpy(text + 5, key, n);
	memcpy(text + 5 + n, "\": ", 3);
	return aclm_buf_append(b, text, n + 8);
}

/* v in decimal (printf's %lld). */
static int put_decimal(struct aclm_buf *b, int64_t v)
{
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	char buf[24], *p = buf + sizeof(buf);

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u > 0);
	if (v < 0)
		*--p = '-';
	return aclm_buf_append(b, p, (size_t)(buf + sizeof(buf) - p));
}

static int put_text(struct aclm_buf *b, const char *key, const char *v)
{
	int rc = put_key(b, key, false);

	if (rc != ACLM_OK)
		return rc;
	return v != NULL ? put_str(b, v, strlen(v)) : aclm_buf_puts(b, "null");
}

static int put_int(struct aclm_buf *b, const char *key, int64_t v)
{
	int rc = put_key(b, key, false);

	return rc == ACLM_OK ? put_decimal(b, v) : rc;
}

static int put_time(struct aclm_buf *b, const char *key, int64_t t)
{
	char iso[32];

	aclm_time_iso(t, iso, sizeof(iso));
	return put_text(b, key, iso);
}

static int put_bool(struct aclm_buf *b, const char *key, bool v)
{
	int rc = put_key(b, key, false);

	return rc == ACLM_OK ? aclm_buf_puts(b, v ? "true" : "false") : rc;
}

int aclm_cert_row_json_text(const struct aclm_cert_row *r, int64_t now, struct aclm_buf *b)
{
	char key[32];
	int rc;

	key_label(r, key, sizeof(key));
	if ((rc = put_key(b, "id", true)) != ACLM_OK ||
	    (rc = put_decimal(b, r->id)) != ACLM_OK ||
	    (rc = put_text(b, "fingerprint", r->fingerprint)) != ACLM_OK ||
	    (rc = put_text(b, "spki_sha256", r->spki)) != ACLM_OK ||
	    (rc = put_text(b, "subject", r->subject)) != ACLM_OK ||
	    (rc = put_text(b, "issuer", r->issuer)) != ACLM_OK ||
	    (rc = put_text(b, "subject_cn", r->subject_cn)) != ACLM_OK ||
	    (rc = put_text(b, "issuer_cn", r->issuer_cn)) != ACLM_OK ||
	    (rc = put_text(b, "serial", r->serial)) != ACLM_OK ||
	    (rc = put_time(b, "not_before", r->not_before)) != ACLM_OK ||
	    (rc = put_time(b, "not_after", r->not_after)) != ACLM_OK ||
	    (rc = put_int(b, "days_left", aclm_days_left(r->not_after, now))) != ACLM_OK ||
	    (rc = put_text(b, "key_type", r->key_type)) != ACLM_OK ||
	    (rc = put_int(b, "key_bits", r->key_bits)) != ACLM_OK ||
	    (rc = put_text(b, "curve", r->curve)) != ACLM_OK ||
	    (rc = put_text(b, "key", key)) != ACLM_OK ||
	    (rc = put_text(b, "sig_alg", r->sig_alg)) != ACLM_OK ||
	    (rc = put_text(b, "level", r->level ? r->level : "")) != ACLM_OK ||
	    (rc = put_key(b, "sans", false)) != ACLM_OK)
		goto out;
	if (r->sans == NULL || *r->sans == '\0') {
		rc = aclm_buf_puts(b, "[]");
	} else {
		const char *p = r->sans;
		bool first = true;

		while (p != NULL && rc == ACLM_OK) {
			const char *comma = strchr(p, ',');
			size_t n = comma ? (size_t)(comma - p) : strlen(p);

			if ((rc = aclm_buf_puts(b, first ? "[\n    " : ",\n    ")) == ACLM_OK)
				rc = put_str(b, p, n);
			first = false;
			p = comma ? comma + 1 : NULL;
			if (p != NULL && *p == '\0')
				p = NULL;
		}
		if (rc == ACLM_OK)
			rc = aclm_buf_puts(b, "\n  ]");
	}
	if (rc != ACLM_OK ||
	    (rc = put_bool(b, "is_ca", r->is_ca)) != ACLM_OK ||
	    (rc = r->issuer_id ? put_int(b, "issuer_id", r->issuer_id)
	                       : put_text(b, "issuer_id", NULL)) != ACLM_OK ||
	    (rc = put_bool(b, "has_private_key", r->has_private_key)) != ACLM_OK ||
	    (rc = r->first_seen ? put_time(b, "first_seen", r->first_seen)
	                        : put_text(b, "first_seen", NULL)) != ACLM_OK ||
	    (rc = r->last_seen ? put_time(b, "last_seen", r->last_seen)
	                       : put_text(b, "last_seen", NULL)) != ACLM_OK)
		goto out;
	rc = aclm_buf_puts(b, "\n}");
out:
	return rc == ACLM_OK ? ACLM_OK : aclm_error(rc, "certificate %lld as JSON: %s",
	                                            (long long)r->id, rc == ACLM_ERR_TOOBIG
	                                            ? "too large" : "out of memory");
}
