/* Channels: their stored configuration (secrets sealed under the KEK) and
 * the payload each kind of receiver expects. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "aclm/buf.h"
#include "aclm/err.h"
#include "aclm/keywrap.h"
#include "aclm/str.h"
#include "aclm/timeutil.h"
#include "notify-int.h"

const char *const aclm_notify_channel_kinds[] = {
	"email", "webhook", "slack", "dingtalk", "wecom", "feishu", NULL,
};

static bool in_list(const char *const *list, const char *s)
{
	if (s == NULL)
		return false;
	for (; *list != NULL; list++)
		if (strcmp(*list, s) == 0)
			return true;
	return false;
}

bool aclm_notify_channel_kind_valid(const char *kind)
{
	return in_list(aclm_notify_channel_kinds, kind);
}

/* --- encodings ------------------------------------------------------------- */

char *notify_base64(const unsigned char *in, size_t len)
{
	size_t n = 4 * ((len + 2) / 3) + 1;
	char *out = malloc(n);

	if (out == NULL)
		return NULL;
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	return out;
}

int notify_unbase64(const char *in, unsigned char **out, size_t *out_len)
{
	size_t len = strlen(in), pad = 0;
	unsigned char *buf;
	int n;

	*out = NULL;
	*out_len = 0;
	if (len == 0 || len % 4 != 0 || len > (1u << 20))
		return aclm_error(ACLM_ERR_PARSE, "not base64 (length %zu)", len);
	if (in[len - 1] == '=')
		pad++;
	if (in[len - 2] == '=')
		pad++;
	if ((buf = malloc(len / 4 * 3 + 1)) == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	n = EVP_DecodeBlock(buf, (const unsigned char *)in, (int)len);
	if (n < 0 || (size_t)n < pad) {
		free(buf);
		return aclm_error(ACLM_ERR_PARSE, "not base64");
	}
	*out = buf;
	*out_len = (size_t)n - pad;
	return ACLM_OK;
}

int aclm_notify_hmac_hex(const void *key, size_t key_len, const void *data, size_t len,
                         char hex[65])
{
	unsigned char mac[32];
	unsigned int mac_len = 0;

	if (HMAC(EVP_sha256(), key, (int)key_len, data, len, mac, &mac_len) == NULL ||
	    mac_len != sizeof(mac))
		return aclm_error_openssl(ACLM_ERR_CRYPTO, "HMAC-SHA256");
	aclm_hex_encode(mac, sizeof(mac), hex);
	return ACLM_OK;
}

static int hmac_b64(const void *key, size_t key_len, const void *data, size_t len,
                    char out[45])
{
	unsigned char mac[32];
	unsigned int mac_len = 0;

	if (HMAC(EVP_sha256(), key, (int)key_len, data, len, mac, &mac_len) == NULL ||
	    mac_len != sizeof(mac))
		return aclm_error_openssl(ACLM_ERR_CRYPTO, "HMAC-SHA256");
	EVP_EncodeBlock((unsigned char *)out, mac, (int)sizeof(mac));
	return ACLM_OK;
}

int aclm_notify_dingtalk_sign(const char *secret, int64_t ts_ms, char *out, size_t n)
{
	struct aclm_buf s;
	char b64[45];
	size_t o = 0;
	int rc;

	aclm_buf_init(&s, 64 * 1024);
	if (aclm_buf_printf(&s, "%lld\n%s", (long long)ts_ms, secret) != ACLM_OK) {
		aclm_buf_free_secret(&s);
		return aclm_error(ACLM_ERR_TOOBIG, "DingTalk secret too long");
	}
	rc = hmac_b64(secret, strlen(secret), aclm_buf_cstr(&s), s.len, b64);
	aclm_buf_free_secret(&s);
	if (rc != ACLM_OK)
		return rc;
	/* Percent-encode the base64 text for the query string. */
	for (const char *p = b64; *p != '\0'; p++) {
		if (*p == '+' || *p == '/' || *p == '=') {
			if (o + 4 > n)
				return aclm_error(ACLM_ERR_TOOBIG, "DingTalk signature buffer");
			o += (size_t)snprintf(out + o, n - o, "%%%02X", (unsigned char)*p);
		} else {
			if (o + 2 > n)
				return aclm_error(ACLM_ERR_TOOBIG, "DingTalk signature buffer");
			out[o++] = *p;
			out[o] = '\0';
		}
	}
	return ACLM_OK;
}

int aclm_notify_feishu_sign(const char *secret, int64_t ts, char *out, size_t n)
{
	struct aclm_buf key;
	char b64[45];
	int rc;

	if (n < sizeof(b64))
		return aclm_error(ACLM_ERR_TOOBIG, "Feishu signature buffer");
	aclm_buf_init(&key, 64 * 1024);
	if (aclm_buf_printf(&key, "%lld\n%s", (long long)ts, secret) != ACLM_OK) {
		aclm_buf_free_secret(&key);
		return aclm_error(ACLM_ERR_TOOBIG, "Feishu secret too long");
	}
	/* Feishu's scheme: the string to sign is the key, the message empty. */
	rc = hmac_b64(aclm_buf_cstr(&key), key.len, "", 0, b64);
	aclm_buf_free_secret(&key);
	if (rc == ACLM_OK)
		aclm_strlcpy(out, b64, n);
	return rc;
}

void notify_redact_url(const char *url, char *out, size_t n)
{
	const char *p = strstr(url != NULL ? url : "", "://"), *host, *end, *at;

	if (p == NULL) {
		aclm_strlcpy(out, "(not a URL)", n);
		return;
	}
	host = p + 3;
	end = host + strcspn(host, "/?#");
	at = memchr(host, '@', (size_t)(end - host));
	if (at != NULL)
		host = at + 1;
	snprintf(out, n, "%.*s%.*s%s", (int)(p + 3 - url), url, (int)(end - host), host,
	         *end != '\0' ? "/..." : "");
}

/* --- configuration ----------------------------------------------------------- */

void aclm_notify_channel_input_wipe(struct aclm_notify_channel_input *in)
{
	if (in->password != NULL) {
		OPENSSL_cleanse(in->password, strlen(in->password));
		free(in->password);
		in->password = NULL;
	}
	if (in->secret != NULL) {
		OPENSSL_cleanse(in->secret, strlen(in->secret));
		free(in->secret);
		in->secret = NULL;
	}
}

static void seal_aad(const char *channel, const char *field, char *aad, size_t n)
{
	snprintf(aad, n, "aclm-alert-channel:%s:%s", channel, field);
}

static int seal(const struct aclm_kek *kek, const char *channel, const char *field,
                const char *secret, json_t *config)
{
	char aad[256], key[64];
	unsigned char *sealed = NULL;
	size_t sealed_len = 0;
	char *b64;
	int rc;

	if (kek == NULL)
		return aclm_error(ACLM_ERR_USAGE, "a secret needs the key-encryption key to be sealed");
	seal_aad(channel, field, aad, sizeof(aad));
	if ((rc = aclm_keywrap_seal(kek, (const unsigned char *)aad, strlen(aad),
	                            (const unsigned char *)secret, strlen(secret), &sealed,
	                            &sealed_len)) != ACLM_OK)
		return rc;
	b64 = notify_base64(sealed, sealed_len);
	free(sealed);
	if (b64 == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	snprintf(key, sizeof(key), "%s_sealed", field);
	json_object_set_new(config, key, json_string(b64));
	free(b64);
	return ACLM_OK;
}

static bool header_safe(const char *s)
{
	return s != NULL && strpbrk(s, "\r\n") == NULL;
}

/* A bare address (local@domain): no spaces, brackets, commas, controls. */
static bool address_ok(const char *a)
{
	const char *at;

	if (a == NULL || *a == '\0' || strlen(a) > 254)
		return false;
	for (const char *p = a; *p != '\0'; p++)
		if ((unsigned char)*p <= ' ' || strchr("<>,;\"()[]\\", *p) != NULL ||
		    (unsigned char)*p == 0x7f)
			return false;
	at = strchr(a, '@');
	return at != NULL && at != a && at[1] != '\0' && strchr(at + 1, '@') == NULL;
}

static bool url_scheme(const char *url, const char *const *schemes)
{
	for (; *schemes != NULL; schemes++)
		if (aclm_str_has_prefix(url, *schemes) && url[strlen(*schemes)] != '\0')
			return true;
	return false;
}

int aclm_notify_channel_config(const struct aclm_notify_channel_input *in,
                               const struct aclm_kek *kek, char **config)
{
	static const char *const smtp_schemes[] = { "smtp://", "smtps://", NULL };
	static const char *const http_schemes[] = { "https://", "http://", NULL };
	bool is_email;
	json_t *c = NULL;
	int rc = ACLM_OK;

	*config = NULL;
	if (!aclm_notify_channel_kind_valid(in->kind))
		return aclm_error(ACLM_ERR_USAGE, "unknown channel kind '%s' (email, webhook, slack, "
		                  "dingtalk, wecom, feishu)", in->kind ? in->kind : "");
	if (in->name == NULL || *in->name == '\0' || strlen(in->name) > 64 ||
	    strspn(in->name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") !=
	    strlen(in->name))
		return aclm_error(ACLM_ERR_USAGE, "channel name '%s': 1-64 of A-Z a-z 0-9 . _ -",
		                  in->name ? in->name : "");
	is_email = strcmp(in->kind, "email") == 0;
	if (in->url == NULL || strlen(in->url) > 2000 || !header_safe(in->url) ||
	    strchr(in->url, ' ') != NULL)
		return aclm_error(ACLM_ERR_USAGE, "channel '%s': a URL is required (%s)", in->name,
		                  is_email ? "smtp://host:port or smtps://host:port" : "https://...");
	if (!url_scheme(in->url, is_email ? smtp_schemes : http_schemes))
		return aclm_error(ACLM_ERR_USAGE, "channel '%s': URL must start with %s", in->name,
		                  is_email ? "smtp:// (STARTTLS required) or smtps://"
		                           : "https:// or http://");
	if (is_email) {
		if (!address_ok(in->from))
			return aclm_error(ACLM_ERR_USAGE, "channel '%s': --from must be an address "
			                  "like aclm@example.com", in->name);
		if (in->n_to == 0)
			return aclm_error(ACLM_ERR_USAGE, "channel '%s': at least one recipient (--to)",
			                  in->name);
		for (size_t i = 0; i < in->n_to; i++)
			if (!address_ok(in->to[i]))
				return aclm_error(ACLM_ERR_USAGE, "channel '%s': recipient '%s' is not an "
				                  "address like ops@example.com", in->name, in->to[i]);
		if ((in->username == NULL) != (in->password == NULL))
			return aclm_error(ACLM_ERR_USAGE, "channel '%s': SMTP AUTH needs both a user "
			                  "name and a password", in->name);
		if (in->secret != NULL)
			return aclm_error(ACLM_ERR_USAGE, "channel '%s': e-mail has no HMAC secret",
			                  in->name);
	} else {
		if (in->from != NULL || in->n_to > 0 || in->username != NULL || in->password != NULL)
			return aclm_error(ACLM_ERR_USAGE, "channel '%s': from, to, user and password are "
			                  "e-mail settings", in->name);
		if (in->secret != NULL && (strcmp(in->kind, "slack") == 0 ||
		                           strcmp(in->kind, "wecom") == 0))
			return aclm_error(ACLM_ERR_USAGE, "channel '%s': %s robots have no signing "
			                  "secret (the URL is the secret)", in->name, in->kind);
	}
	if (in->secret != NULL && (*in->secret == '\0' || strlen(in->secret) > 1024))
		return aclm_error(ACLM_ERR_USAGE, "channel '%s': the secret must be 1-1024 bytes",
		                  in->name);
	if (in->ca_file != NULL && (*in->ca_file == '\0' || strlen(in->ca_file) > 1024))
		return aclm_error(ACLM_ERR_USAGE, "channel '%s': bad CA file name", in->name);
	if (in->ca_file != NULL && access(in->ca_file, R_OK) != 0)
		return aclm_error(ACLM_ERR_USAGE, "channel '%s': CA file %s: %s", in->name, in->ca_file,
		                  strerror(errno));

	c = json_object();
	if (c == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	json_object_set_new(c, "url", json_string(in->url));
	if (in->ca_file != NULL)
		json_object_set_new(c, "ca_file", json_string(in->ca_file));
	if (is_email) {
		json_t *to = json_array();
		for (size_t i = 0; i < in->n_to; i++)
			json_array_append_new(to, json_string(in->to[i]));
		json_object_set_new(c, "from", json_string(in->from));
		json_object_set_new(c, "to", to);
		if (in->username != NULL) {
			json_object_set_new(c, "username", json_string(in->username));
			rc = seal(kek, in->name, "password", in->password, c);
		}
	} else if (in->secret != NULL) {
		rc = seal(kek, in->name, "secret", in->secret, c);
	}
	if (rc == ACLM_OK && (*config = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
	json_decref(c);
	return rc;
}

bool aclm_notify_channel_has_secret(const char *config)
{
	json_t *c = json_loads(config != NULL ? config : "{}", 0, NULL);
	bool has = c != NULL && (json_object_get(c, "password_sealed") != NULL ||
	                         json_object_get(c, "secret_sealed") != NULL);

	json_decref(c);
	return has;
}

json_t *aclm_notify_channel_public(const char *kind, const char *config)
{
	json_t *c = json_loads(config != NULL ? config : "{}", 0, NULL), *out = json_object();
	const char *k;
	json_t *v;

	if (out == NULL) {
		json_decref(c);
		return NULL;
	}
	if (c == NULL)
		return out;
	json_object_foreach(c, k, v) {
		if (aclm_str_has_suffix(k, "_sealed")) {
			char name[64];
			snprintf(name, sizeof(name), "%.*s", (int)(strlen(k) - 7), k);
			json_object_set_new(out, name, json_string("(sealed)"));
		} else if (strcmp(k, "url") == 0 && strcmp(kind, "email") != 0) {
			char red[300];
			notify_redact_url(json_string_value(v), red, sizeof(red));
			json_object_set_new(out, k, json_string(red));
		} else {
			json_object_set(out, k, v);
		}
	}
	json_decref(c);
	return out;
}

int notify_channel_secret(const char *channel, json_t *config, const char *field,
                          const struct aclm_notify_opts *o, struct aclm_kek *kek,
                          bool *have_kek, char **out)
{
	char key[64], aad[256];
	const char *b64;
	unsigned char *sealed = NULL, *plain = NULL;
	size_t sealed_len = 0, plain_len = 0;
	int rc;

	*out = NULL;
	snprintf(key, sizeof(key), "%s_sealed", field);
	b64 = json_string_value(json_object_get(config, key));
	if (b64 == NULL)
		return ACLM_OK;
	if (!*have_kek) {
		if ((rc = aclm_kek_load(o->kek_env, o->kek_file, false, kek)) != ACLM_OK)
			return aclm_error_wrap(rc, "channel '%s': cannot open its sealed %s", channel, field);
		*have_kek = true;
	}
	if ((rc = notify_unbase64(b64, &sealed, &sealed_len)) != ACLM_OK)
		return aclm_error_wrap(rc, "channel '%s': sealed %s", channel, field);
	seal_aad(channel, field, aad, sizeof(aad));
	rc = aclm_keywrap_open(kek, (const unsigned char *)aad, strlen(aad), sealed, sealed_len,
	                       &plain, &plain_len);
	free(sealed);
	if (rc != ACLM_OK)
		return aclm_error_wrap(rc, "channel '%s': sealed %s", channel, field);
	*out = malloc(plain_len + 1);
	if (*out == NULL) {
		OPENSSL_cleanse(plain, plain_len);
		free(plain);
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	}
	memcpy(*out, plain, plain_len);
	(*out)[plain_len] = '\0';
	OPENSSL_cleanse(plain, plain_len);
	free(plain);
	if (strlen(*out) != plain_len) {
		OPENSSL_cleanse(*out, plain_len);
		free(*out);
		*out = NULL;
		return aclm_error(ACLM_ERR_PARSE, "channel '%s': sealed %s holds a NUL byte", channel,
		                  field);
	}
	return ACLM_OK;
}

/* --- payloads ----------------------------------------------------------------- */

void aclm_notify_post_clear(struct aclm_notify_post *p)
{
	free(p->url);
	free(p->body);
	memset(p, 0, sizeof(*p));
}

static int add_header(struct aclm_notify_post *p, const char *name, const char *prefix,
                      const char *v)
{
	if (p->n_headers >= ACLM_NOTIFY_MAX_HEADERS)
		return aclm_error(ACLM_ERR_TOOBIG, "too many headers");
	snprintf(p->headers[p->n_headers++], sizeof(p->headers[0]), "%s: %s%s", name, prefix, v);
	return ACLM_OK;
}

/* "subject\n\ntext": what the chat robots show. */
static char *robot_text(const struct aclm_notify_msg *m)
{
	struct aclm_buf b;

	aclm_buf_init(&b, NOTIFY_MAX_SUBJECT + NOTIFY_MAX_TEXT + 64);
	aclm_buf_puts(&b, m->subject != NULL ? m->subject : "");
	if (m->text != NULL && *m->text != '\0') {
		aclm_buf_puts(&b, "\n\n");
		aclm_buf_puts(&b, m->text);
	}
	return aclm_buf_steal(&b, NULL);
}

int aclm_notify_build_post(const char *kind, const char *url, const char *secret,
                           const struct aclm_notify_msg *m, int64_t now,
                           struct aclm_notify_post *out)
{
	json_t *body = NULL;
	char *text = NULL, ts[32];
	int rc = ACLM_OK;

	memset(out, 0, sizeof(*out));
	if (url == NULL)
		return aclm_error(ACLM_ERR_USAGE, "channel without a URL");
	if (strcmp(kind, "webhook") != 0 && (text = robot_text(m)) == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	snprintf(ts, sizeof(ts), "%lld", (long long)now);
	if (strcmp(kind, "webhook") == 0) {
		char created[32];
		aclm_time_iso(m->created_at, created, sizeof(created));
		/* The timestamp is inside the signed body too: a receiver that
		 * compares it with X-Aclm-Timestamp and its clock refuses replays. */
		body = json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:I}", "id", (json_int_t)m->alert_id,
		                 "rule", m->rule ? m->rule : "", "kind", m->kind ? m->kind : "",
		                 "target", m->target ? m->target : "", "subject",
		                 m->subject ? m->subject : "", "text", m->text ? m->text : "",
		                 "created_at", created, "timestamp", (json_int_t)now);
	} else if (strcmp(kind, "slack") == 0) {
		body = json_pack("{s:s}", "text", text);
	} else if (strcmp(kind, "dingtalk") == 0 || strcmp(kind, "wecom") == 0) {
		body = json_pack("{s:s,s:{s:s}}", "msgtype", "text", "text", "content", text);
	} else if (strcmp(kind, "feishu") == 0) {
		body = json_pack("{s:s,s:{s:s}}", "msg_type", "text", "content", "text", text);
		if (body != NULL && secret != NULL) {
			char sign[64];
			if ((rc = aclm_notify_feishu_sign(secret, now, sign, sizeof(sign))) == ACLM_OK) {
				json_object_set_new(body, "timestamp", json_string(ts));
				json_object_set_new(body, "sign", json_string(sign));
			}
		}
	} else {
		rc = aclm_error(ACLM_ERR_USAGE, "channel kind '%s' is not a webhook", kind);
	}
	free(text);
	if (rc == ACLM_OK && body == NULL)
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory (or text not UTF-8)");
	if (rc == ACLM_OK) {
		out->body = json_dumps(body, JSON_COMPACT);
		if (out->body == NULL)
			rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
		else
			out->body_len = strlen(out->body);
	}
	json_decref(body);
	if (rc == ACLM_OK && strcmp(kind, "dingtalk") == 0 && secret != NULL) {
		char sign[128];
		struct aclm_buf u;
		int64_t ms = now * 1000;
		aclm_buf_init(&u, 4096);
		if ((rc = aclm_notify_dingtalk_sign(secret, ms, sign, sizeof(sign))) == ACLM_OK &&
		    aclm_buf_printf(&u, "%s%ctimestamp=%lld&sign=%s", url,
		                    strchr(url, '?') != NULL ? '&' : '?', (long long)ms, sign) != ACLM_OK)
			rc = aclm_error(ACLM_ERR_TOOBIG, "URL too long");
		if (rc == ACLM_OK)
			out->url = aclm_buf_steal(&u, NULL);
		aclm_buf_free(&u);
	} else if (rc == ACLM_OK) {
		out->url = aclm_strdup(url);
	}
	if (rc == ACLM_OK && out->url == NULL)
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
	if (rc == ACLM_OK)
		rc = add_header(out, "Content-Type", "", "application/json; charset=utf-8");
	if (rc == ACLM_OK && strcmp(kind, "webhook") == 0) {
		rc = add_header(out, "X-Aclm-Timestamp", "", ts);
		if (rc == ACLM_OK && secret != NULL) {
			char hex[65];
			if ((rc = aclm_notify_hmac_hex(secret, strlen(secret), out->body, out->body_len,
			                               hex)) == ACLM_OK)
				rc = add_header(out, "X-Aclm-Signature", "sha256=", hex);
		}
	}
	if (rc != ACLM_OK)
		aclm_notify_post_clear(out);
	return rc;
}

/* --- e-mail --------------------------------------------------------------------- */

/* Subject as one header value: controls become spaces; non-ASCII text as
 * RFC 2047 encoded words (base64, whole UTF-8 sequences per word). */
static int put_subject(struct aclm_buf *b, const char *subject)
{
	char clean[NOTIFY_MAX_SUBJECT + 1];
	bool ascii = true;
	size_t n = 0;

	for (const char *p = subject; *p != '\0' && n < sizeof(clean) - 1; p++) {
		unsigned char c = (unsigned char)*p;
		clean[n++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
		if (c >= 0x80)
			ascii = false;
	}
	/* Do not end inside a UTF-8 sequence. */
	while (n > 0 && ((unsigned char)clean[n - 1] & 0xc0) == 0x80)
		n--;
	if (n > 0 && (unsigned char)clean[n - 1] >= 0xc0)
		n--;
	clean[n] = '\0';
	if (ascii)
		return aclm_buf_printf(b, "Subject: %s\r\n", clean);
	aclm_buf_puts(b, "Subject:");
	for (size_t i = 0; i < n;) {
		size_t j = i + 45 < n ? i + 45 : n;
		char *enc;
		while (j < n && ((unsigned char)clean[j] & 0xc0) == 0x80)
			j--;
		if ((enc = notify_base64((const unsigned char *)clean + i, j - i)) == NULL)
			return aclm_error(ACLM_ERR_NOMEM, "out of memory");
		aclm_buf_printf(b, "%s=?UTF-8?B?%s?=", i == 0 ? " " : "\r\n ", enc);
		free(enc);
		i = j;
	}
	return aclm_buf_puts(b, "\r\n");
}

int aclm_notify_build_email(const char *from, const char *const *to, size_t n_to,
                            const char *subject, const char *text, int64_t now,
                            const char *message_id, struct aclm_buf *out)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
	                                      "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t t = (time_t)now;
	struct tm tm;
	size_t col = 0;
	int rc;

	if (!address_ok(from))
		return aclm_error(ACLM_ERR_USAGE, "sender '%s' is not an address", from ? from : "");
	for (size_t i = 0; i < n_to; i++)
		if (!address_ok(to[i]))
			return aclm_error(ACLM_ERR_USAGE, "recipient '%s' is not an address", to[i]);
	if (n_to == 0)
		return aclm_error(ACLM_ERR_USAGE, "no recipient");
	if (!header_safe(message_id) || strchr(message_id, '>') != NULL)
		return aclm_error(ACLM_ERR_USAGE, "bad Message-ID");
	if (gmtime_r(&t, &tm) == NULL)
		return aclm_error(ACLM_ERR_USAGE, "time out of range");
	aclm_buf_printf(out, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n", days[tm.tm_wday],
	                tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
	                tm.tm_sec);
	aclm_buf_printf(out, "From: <%s>\r\nTo: ", from);
	for (size_t i = 0; i < n_to; i++)
		aclm_buf_printf(out, "%s<%s>", i ? ",\r\n " : "", to[i]);
	aclm_buf_printf(out, "\r\nMessage-ID: <%s>\r\n", message_id);
	if ((rc = put_subject(out, subject != NULL ? subject : "")) != ACLM_OK)
		return rc;
	aclm_buf_puts(out, "MIME-Version: 1.0\r\n"
	              "Content-Type: text/plain; charset=UTF-8\r\n"
	              "Content-Transfer-Encoding: 8bit\r\n"
	              "Auto-Submitted: auto-generated\r\n\r\n");
	/* Body: CRLF line ends, lines cut at 990 bytes (RFC 5321 allows 998);
	 * libcurl dot-stuffs lines that start with '.'. */
	for (const char *p = text != NULL ? text : ""; *p != '\0'; p++) {
		if (*p == '\r')
			continue;
		if (*p == '\n' || col >= 990) {
			aclm_buf_puts(out, "\r\n");
			col = 0;
			if (*p == '\n')
				continue;
		}
		aclm_buf_putc(out, *p);
		col++;
	}
	if (aclm_buf_puts(out, "\r\n") != ACLM_OK)
		return aclm_error(ACLM_ERR_TOOBIG, "e-mail message too large");
	return ACLM_OK;
}
