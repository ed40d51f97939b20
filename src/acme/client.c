/* The ACME HTTP client: directory, nonces (badNonce retried), JWS POSTs and
 * POST-as-GET, problem documents; every response bounded.  Also the CA
 * definitions from aclm.yaml and name normalisation. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <time.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <idn2.h>

#include "acme-int.h"
#include "aclm/buf.h"
#include "aclm/config.h"
#include "aclm/err.h"
#include "aclm/log.h"
#include "aclm/str.h"

/* --- CAs from the configuration ---------------------------------------- */

static char *field_dup(const struct aclm_config_record *r, const char *f)
{
	const char *v = aclm_config_record_get(r, f);
	return v != NULL && *v != '\0' ? aclm_strdup(v) : NULL;
}

int aclm_acme_cas_load(const struct aclm_config *cfg, struct aclm_acme_ca **cas, size_t *n_cas)
{
	const struct aclm_config_record *recs;
	const char *path = aclm_config_path(cfg) ? aclm_config_path(cfg) : "aclm.yaml";
	size_t n = aclm_config_table(cfg, "acme.cas", &recs);
	struct aclm_acme_ca *out;

	*cas = NULL;
	*n_cas = 0;
	if (n == 0)
		return ACLM_OK;
	out = calloc(n, sizeof(*out));
	if (out == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const struct aclm_config_record *r = &recs[i];
		struct aclm_acme_ca *ca = &out[i];
		const char *t = aclm_config_record_get(r, "timeout");

		ca->name = field_dup(r, "name");
		ca->directory = field_dup(r, "directory");
		ca->trust = field_dup(r, "trust");
		ca->contact = field_dup(r, "contact");
		ca->eab_kid = field_dup(r, "eab_kid");
		ca->eab_hmac = field_dup(r, "eab_hmac");
		ca->preferred_chain = field_dup(r, "preferred_chain");
		ca->profile = field_dup(r, "profile");
		ca->account_key = field_dup(r, "account_key");
		*n_cas = i + 1;
		if (ca->name == NULL || ca->directory == NULL) {
			aclm_acme_cas_free(out, *n_cas);
			*n_cas = 0;
			return aclm_error(ACLM_ERR_CONFIG, "%s:%zu:%zu: acme.cas entry %zu needs a name "
			                  "and a directory", path, r->line, r->col, i + 1);
		}
		if (!aclm_str_has_prefix(ca->directory, "https://") &&
		    !aclm_str_has_prefix(ca->directory, "http://")) {
			int rc = aclm_error(ACLM_ERR_CONFIG, "%s:%zu:%zu: CA %s: directory '%s' is not an "
			                    "https URL", path, r->line, r->col, ca->name, ca->directory);
			aclm_acme_cas_free(out, *n_cas);
			*n_cas = 0;
			return rc;
		}
		if ((ca->eab_kid == NULL) != (ca->eab_hmac == NULL)) {
			int rc = aclm_error(ACLM_ERR_CONFIG, "%s:%zu:%zu: CA %s: eab_kid and eab_hmac go "
			                    "together", path, r->line, r->col, ca->name);
			aclm_acme_cas_free(out, *n_cas);
			*n_cas = 0;
			return rc;
		}
		if ((t = aclm_config_record_get(r, "rate_limit")) != NULL) {
			const char *slash = strchr(t, '/');
			char num[32];
			if (slash == NULL || (size_t)(slash - t) >= sizeof(num) ||
			    (memcpy(num, t, (size_t)(slash - t)), num[slash - t] = '\0',
			     aclm_parse_int64(num, &ca->rate_orders)) != ACLM_OK || ca->rate_orders < 1 ||
			    aclm_parse_duration(slash + 1, &ca->rate_window) != ACLM_OK ||
			    ca->rate_window < 1) {
				int rc = aclm_error(ACLM_ERR_CONFIG, "%s:%zu:%zu: CA %s: rate_limit '%s' is not "
				                    "N/DURATION (e.g. 300/3h)", path, r->line, r->col,
				                    ca->name, t);
				aclm_acme_cas_free(out, *n_cas);
				*n_cas = 0;
				return rc;
			}
		}
		t = aclm_config_record_get(r, "timeout");
		if (t != NULL && aclm_parse_duration(t, &ca->timeout) != ACLM_OK) {
			int rc = aclm_error(ACLM_ERR_CONFIG, "%s:%zu:%zu: CA %s: timeout '%s' is not a "
			                    "duration", path, r->line, r->col, ca->name, t);
			aclm_acme_cas_free(out, *n_cas);
			*n_cas = 0;
			return rc;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(out[j].name, ca->name) == 0) {
				int rc = aclm_error(ACLM_ERR_CONFIG, "%s:%zu:%zu: CA name '%s' is declared "
				                    "twice", path, r->line, r->col, ca->name);
				aclm_acme_cas_free(out, *n_cas);
				*n_cas = 0;
				return rc;
			}
		}
	}
	*cas = out;
	return ACLM_OK;
}

void aclm_acme_cas_free(struct aclm_acme_ca *cas, size_t n_cas)
{
	for (size_t i = 0; cas != NULL && i < n_cas; i++) {
		free(cas[i].name);
		free(cas[i].directory);
		free(cas[i].trust);
		free(cas[i].contact);
		free(cas[i].eab_kid);
		if (cas[i].eab_hmac != NULL)
			OPENSSL_cleanse(cas[i].eab_hmac, strlen(cas[i].eab_hmac));
		free(cas[i].eab_hmac);
		free(cas[i].preferred_chain);
		free(cas[i].profile);
		free(cas[i].account_key);
	}
	free(cas);
}

const struct aclm_acme_ca *aclm_acme_ca_find(const struct aclm_acme_ca *cas, size_t n_cas,
                                             const char *name)
{
	for (size_t i = 0; i < n_cas; i++)
		if (strcmp(cas[i].name, name) == 0)
			return &cas[i];
	return NULL;
}

const char *aclm_acme_chall_name(enum aclm_acme_chall c)
{
	switch (c) {
	case ACLM_CHALL_HTTP01: return "http-01";
	case ACLM_CHALL_TLSALPN01: return "tls-alpn-01";
	case ACLM_CHALL_DNS01: return "dns-01";
	}
	return "?";
}

int aclm_acme_chall_parse(const char *s, enum aclm_acme_chall *out)
{
	for (int c = ACLM_CHALL_HTTP01; c <= ACLM_CHALL_DNS01; c++) {
		if (strcmp(s, aclm_acme_chall_name((enum aclm_acme_chall)c)) == 0) {
			*out = (enum aclm_acme_chall)c;
			return ACLM_OK;
		}
	}
	return aclm_error(ACLM_ERR_USAGE, "unknown challenge type '%s' (http-01, tls-alpn-01 or "
	                  "dns-01)", s);
}

/* --- names ------------------------------------------------------------ */

static int check_dns_name(const char *orig, const char *n)
{
	size_t len = strlen(n), label = 0;

	if (len == 0 || len > 253)
		return aclm_error(ACLM_ERR_USAGE, "name '%s': %s", orig,
		                  len == 0 ? "empty" : "longer than 253 characters");
	if (n[0] == '*') {
		if (n[1] != '.')
			return aclm_error(ACLM_ERR_USAGE, "name '%s': a wildcard must be the whole first "
			                  "label (*.example.com)", orig);
		n += 2;
	}
	for (const char *p = n;; p++) {
		if (*p == '.' || *p == '\0') {
			if (label == 0)
				return aclm_error(ACLM_ERR_USAGE, "name '%s': empty label", orig);
			if (label > 63)
				return aclm_error(ACLM_ERR_USAGE, "name '%s': a label is longer than 63 "
				                  "characters", orig);
			if (p[-1] == '-' || p[-(long)label] == '-')
				return aclm_error(ACLM_ERR_USAGE, "name '%s': a label starts or ends with "
				                  "'-'", orig);
			if (*p == '\0')
				break;
			label = 0;
			continue;
		}
		if (*p == '_')
			return aclm_error(ACLM_ERR_USAGE, "name '%s': underscores are not allowed in "
			                  "host names", orig);
		if (*p == '*')
			return aclm_error(ACLM_ERR_USAGE, "name '%s': '*' is only allowed as the whole "
			                  "first label", orig);
		if (!isalnum((unsigned char)*p) && *p != '-')
			return aclm_error(ACLM_ERR_USAGE, "name '%s': character '%c' is not allowed",
			                  orig, *p);
		label++;
	}
	if (strchr(n, '.') == NULL)
		return aclm_error(ACLM_ERR_USAGE, "name '%s': not a fully qualified name", orig);
	return ACLM_OK;
}

int aclm_acme_names_normalize(const char *const *in, size_t n, char ***out, size_t *n_out)
{
	char **names;
	int rc = ACLM_OK;
	size_t k = 0;

	if (n == 0)
		return aclm_error(ACLM_ERR_USAGE, "no names given");
	if (n > 100000)
		return aclm_error(ACLM_ERR_USAGE, "too many names (%zu, at most 100000)", n);
	names = calloc(n, sizeof(*names));
	if (names == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const char *s = in[i];
		bool ascii = true;
		char *a = NULL;

		for (const char *p = s; *p; p++)
			if ((unsigned char)*p >= 0x80)
				ascii = false;
		if (aclm_is_ip_literal(s)) {
			a = aclm_strdup(s);
		} else if (ascii) {
			a = aclm_strdup(s);
			if (a != NULL)
				aclm_str_lower(a);
			if (a != NULL && strlen(a) > 1 && a[strlen(a) - 1] == '.')
				a[strlen(a) - 1] = '\0';  /* absolute form */
		} else {
			bool wild = strncmp(s, "*.", 2) == 0;
			char *conv = NULL;
			int r = idn2_to_ascii_8z(wild ? s + 2 : s, &conv,
			                         IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
			if (r != IDN2_OK) {
				rc = aclm_error(ACLM_ERR_USAGE, "name '%s': not a valid internationalised "
				                "name (%s)", s, idn2_strerror(r));
				goto fail;
			}
			size_t len = strlen(conv) + 3;
			a = malloc(len);
			if (a != NULL)
				snprintf(a, len, "%s%s", wild ? "*." : "", conv);
			idn2_free(conv);
		}
		if (a == NULL) {
			rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
			goto fail;
		}
		if (!aclm_is_ip_literal(a) && (rc = check_dns_name(s, a)) != ACLM_OK) {
			free(a);
			goto fail;
		}
		bool dup = false;
		for (size_t j = 0; j < k; j++)
			if (strcmp(names[j], a) == 0)
				dup = true;
		if (dup) {
			free(a);
			continue;
		}
		names[k++] = a;
	}
	*out = names;
	*n_out = k;
	return ACLM_OK;
fail:
	aclm_acme_names_free(names, n);
	return rc;
}

void aclm_acme_names_free(char **names, size_t n)
{
	for (size_t i = 0; names != NULL && i < n; i++)
		free(names[i]);
	free(names);
}

/* --- documents ---------------------------------------------------------- */

static void copy_url(json_t *o, const char *key, char *dst)
{
	const char *s = json_string_value(json_object_get(o, key));
	dst[0] = '\0';
	if (s != NULL && strlen(s) < ACME_MAX_URL)
		aclm_strlcpy(dst, s, ACME_MAX_URL);
}

void acme_directory_free(struct acme_directory *d)
{
	for (size_t i = 0; i < d->n_profiles; i++)
		free(d->profiles[i]);
	free(d->profiles);
	memset(d, 0, sizeof(*d));
}

int acme_directory_parse(const char *json, size_t len, struct acme_directory *d)
{
	json_error_t jerr;
	json_t *root = json_loadb(json, len, 0, &jerr), *meta, *profiles;
	static const char *const required[] = { "newNonce", "newAccount", "newOrder" };
	int rc = ACLM_OK;

	memset(d, 0, sizeof(*d));
	if (root == NULL)
		return aclm_error(ACLM_ERR_PARSE, "directory is not JSON (line %d: %s)", jerr.line,
		                  jerr.text);
	if (!json_is_object(root)) {
		rc = aclm_error(ACLM_ERR_PARSE, "directory is not a JSON object");
		goto out;
	}
	for (size_t i = 0; i < 3; i++) {
		const char *s = json_string_value(json_object_get(root, required[i]));
		if (s == NULL || !(aclm_str_has_prefix(s, "https://") || aclm_str_has_prefix(s, "http://")) ||
		    strlen(s) >= ACME_MAX_URL) {
			rc = aclm_error(ACLM_ERR_PARSE, "directory: \"%s\" is missing or not a URL",
			                required[i]);
			goto out;
		}
	}
	copy_url(root, "newNonce", d->new_nonce);
	copy_url(root, "newAccount", d->new_account);
	copy_url(root, "newOrder", d->new_order);
	copy_url(root, "revokeCert", d->revoke_cert);
	copy_url(root, "keyChange", d->key_change);
	copy_url(root, "renewalInfo", d->renewal_info);
	meta = json_object_get(root, "meta");
	if (meta != NULL && !json_is_object(meta)) {
		rc = aclm_error(ACLM_ERR_PARSE, "directory: \"meta\" is not an object");
		goto out;
	}
	d->eab_required = json_is_true(json_object_get(meta, "externalAccountRequired"));
	profiles = json_object_get(meta, "profiles");
	if (json_is_object(profiles)) {
		const char *key;
		json_t *v;
		size_t np = json_object_size(profiles);
		if (np > 64) {
			rc = aclm_error(ACLM_ERR_PARSE, "directory: too many profiles (%zu)", np);
			goto out;
		}
		d->profiles = calloc(np ? np : 1, sizeof(char *));
		if (d->profiles == NULL) {
			rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
			goto out;
		}
		json_object_foreach(profiles, key, v) {
			(void)v;
			d->profiles[d->n_profiles++] = aclm_strdup(key);
		}
	}
out:
	json_decref(root);
	if (rc != ACLM_OK)
		acme_directory_free(d);
	return rc;
}

int acme_problem_parse(const char *json, size_t len, struct acme_problem *p)
{
	json_t *root = json_loadb(json, len, 0, NULL), *subs;
	size_t i;
	json_t *s;

	memset(p, 0, sizeof(*p));
	if (!json_is_object(root)) {
		json_decref(root);
		return aclm_error(ACLM_ERR_PARSE, "problem document is not a JSON object");
	}
	aclm_strlcpy(p->type, json_string_value(json_object_get(root, "type")) ?
	             json_string_value(json_object_get(root, "type")) : "about:blank", sizeof(p->type));
	if (json_string_value(json_object_get(root, "detail")) != NULL)
		aclm_strlcpy(p->detail, json_string_value(json_object_get(root, "detail")),
		             sizeof(p->detail));
	p->status = (int)json_integer_value(json_object_get(root, "status"));
	subs = json_object_get(root, "subproblems");
	json_array_foreach(subs, i, s) {
		json_t *id = json_object_get(s, "identifier");
		char one[512];
		size_t used = strlen(p->subproblems);
		snprintf(one, sizeof(one), "%s%s: %s: %s", used ? "; " : "",
		         json_string_value(json_object_get(id, "value")) ?
		         json_string_value(json_object_get(id, "value")) : "?",
		         json_string_value(json_object_get(s, "type")) ?
		         json_string_value(json_object_get(s, "type")) : "?",
		         json_string_value(json_object_get(s, "detail")) ?
		         json_string_value(json_object_get(s, "detail")) : "");
		aclm_strlcpy(p->subproblems + used, one, sizeof(p->subproblems) - used);
	}
	json_decref(root);
	return ACLM_OK;
}

/* --- HTTP ---------------------------------------------------------------- */

struct xfer {
	struct aclm_buf body;
	struct acme_response *r;
	bool too_big;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	size_t n = size * nmemb;

	if (aclm_buf_append(&x->body, ptr, n) != ACLM_OK) {
		x->too_big = true;
		return 0;
	}
	return n;
}

static void trim_copy(char *dst, size_t dst_size, const char *v, size_t n)
{
	while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
		n--;
	while (n > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		n--;
	}
	if (n >= dst_size)
		n = dst_size - 1;
	memcpy(dst, v, n);
	dst[n] = '\0';
}

/* Link: <url>;rel="alternate", <url2>;rel="up" */
static void parse_link(struct acme_response *r, const char *v, size_t n)
{
	char buf[4096], *save = NULL, *part;

	trim_copy(buf, sizeof(buf), v, n);
	for (part = strtok_r(buf, ",", &save); part; part = strtok_r(NULL, ",", &save)) {
		char *lt = strchr(part, '<'), *gt = lt ? strchr(lt, '>') : NULL;
		if (lt == NULL || gt == NULL || gt - lt - 1 >= ACME_MAX_URL)
			continue;
		*gt = '\0';
		if (strstr(gt + 1, "rel=\"alternate\"") != NULL && r->n_alternates < 8) {
			char **na = realloc(r->alternates, (r->n_alternates + 1) * sizeof(char *));
			if (na == NULL)
				continue;
			r->alternates = na;
			r->alternates[r->n_alternates++] = aclm_strdup(lt + 1);
		} else if (strstr(gt + 1, "rel=\"up\"") != NULL) {
			aclm_strlcpy(r->up, lt + 1, sizeof(r->up));
		} else if (strstr(gt + 1, "rel=\"next\"") != NULL) {
			aclm_strlcpy(r->next, lt + 1, sizeof(r->next));
		}
	}
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	size_t n = size * nmemb;
	char *colon = memchr(ptr, ':', n);
	size_t klen;

	if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) {
		/* a new response (after a redirect or 100): forget older headers */
		x->r->nonce[0] = x->r->location[0] = x->r->content_type[0] = '\0';
		return n;
	}
	if (colon == NULL)
		return n;
	klen = (size_t)(colon - ptr);
	const char *v = colon + 1;
	size_t vlen = n - klen - 1;
	if (klen == 12 && strncasecmp(ptr, "Replay-Nonce", 12) == 0)
		trim_copy(x->r->nonce, sizeof(x->r->nonce), v, vlen);
	else if (klen == 8 && strncasecmp(ptr, "Location", 8) == 0)
		trim_copy(x->r->location, sizeof(x->r->location), v, vlen);
	else if (klen == 12 && strncasecmp(ptr, "Content-Type", 12) == 0)
		trim_copy(x->r->content_type, sizeof(x->r->content_type), v, vlen);
	else if (klen == 4 && strncasecmp(ptr, "Link", 4) == 0)
		parse_link(x->r, v, vlen);
	else if (klen == 11 && strncasecmp(ptr, "Retry-After", 11) == 0) {
		char buf[128];
		int64_t secs;
		trim_copy(buf, sizeof(buf), v, vlen);
		if (aclm_parse_int64(buf, &secs) == ACLM_OK && secs >= 0) {
			x->r->retry_after = secs;
		} else {
			time_t t = curl_getdate(buf, NULL);
			if (t > 0) {
				int64_t d = (int64_t)t - (int64_t)time(NULL);
				x->r->retry_after = d > 0 ? d : 0;
			}
		}
	}
	return n;
}

void acme_response_free(struct acme_response *r)
{
	free(r->body);
	for (size_t i = 0; i < r->n_alternates; i++)
		free(r->alternates[i]);
	free(r->alternates);
	memset(r, 0, sizeof(*r));
}

/* One HTTP exchange; body NULL = GET, else a JOSE POST.  HEAD for nonces. */
static int perform(struct acme_client *c, const char *url, const char *body, bool head,
                   const char *step, struct acme_response *r)
{
	CURL *h = c->curl;
	struct curl_slist *hdrs = NULL;
	struct xfer x;
	CURLcode cc;
	int rc = ACLM_OK;

	memset(r, 0, sizeof(*r));
	aclm_buf_init(&x.body, ACME_MAX_RESPONSE);
	x.r = r;
	x.too_big = false;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOBODY, head ? 1L : 0L);
	if (body != NULL) {
		hdrs = curl_slist_append(hdrs, "Content-Type: application/jose+json");
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	} else {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
		if (head)
			curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
	cc = curl_easy_perform(h);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdrs);
	if (x.too_big) {
		rc = aclm_error(ACLM_ERR_TOOBIG, "CA %s: %s: response from %s is larger than %u bytes",
		                c->ca->name, step, url, ACME_MAX_RESPONSE);
		goto fail;
	}
	if (cc != CURLE_OK) {
		rc = aclm_error(ACLM_ERR_IO, "CA %s: %s: %s: %s", c->ca->name, step, url,
		                curl_easy_strerror(cc));
		goto fail;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	r->body = aclm_buf_steal(&x.body, &r->body_len);
	if (r->body == NULL)
		r->body = aclm_strdup("");
	if (r->nonce[0] != '\0')
		aclm_strlcpy(c->nonce, r->nonce, sizeof(c->nonce));
	c->last_status = r->status;
	c->last_retry_after = r->retry_after;
	return ACLM_OK;
fail:
	c->last_status = 0;
	aclm_buf_free(&x.body);
	acme_response_free(r);
	return rc;
}

/* Reads may be repeated: a transport error or a 5xx is retried twice
 * (after 0.5 s and 1 s) before it counts as the CA failing. */
#define READ_TRIES 3

static bool transient(int rc, const struct acme_response *r)
{
	return rc == ACLM_ERR_IO || (rc == ACLM_OK && r->status >= 500);
}

static void backoff_sleep(int attempt)
{
	struct timespec ts = { 0, 500000000L };
	if (attempt > 0)
		ts = (struct timespec){ 1, 0 };
	nanosleep(&ts, NULL);
}

int acme_get(struct acme_client *c, const char *url, struct acme_response *r)
{
	int rc = ACLM_OK;

	for (int attempt = 0; attempt < READ_TRIES; attempt++) {
		rc = perform(c, url, NULL, false, "GET", r);
		if (!transient(rc, r) || attempt + 1 == READ_TRIES)
			return rc;
		if (rc == ACLM_OK)
			acme_response_free(r);
		aclm_debug("CA %s: GET %s: retrying", c->ca->name, url);
		backoff_sleep(attempt);
	}
	return rc;
}

static int problem_error(struct acme_client *c, const struct acme_response *r, const char *step)
{
	struct acme_problem *p = &c->last_problem;
	int code;

	memset(p, 0, sizeof(*p));
	if (strncmp(r->content_type, "application/problem+json", 24) != 0 ||
	    acme_problem_parse(r->body, r->body_len, p) != ACLM_OK) {
		snprintf(p->type, sizeof(p->type), "http-%ld", r->status);
		snprintf(p->detail, sizeof(p->detail), "HTTP status %ld (%s)", r->status,
		         r->content_type[0] ? r->content_type : "no content type");
	}
	p->status = (int)r->status;
	code = r->status == 404 ? ACLM_ERR_NOTFOUND :
	       r->status >= 500 || r->status == 429 ? ACLM_ERR_IO : ACLM_ERR_UNSUPPORTED;
	if (strstr(p->type, ":malformed") != NULL || strstr(p->type, ":rejectedIdentifier") != NULL)
		code = ACLM_ERR_USAGE;
	return aclm_error(code, "CA %s: %s: %s: %s%s%s%s", c->ca->name, step, p->type, p->detail,
	                  p->subproblems[0] ? " (" : "", p->subproblems,
	                  p->subproblems[0] ? ")" : "");
}

static int fresh_nonce(struct acme_client *c)
{
	struct acme_response r;
	int rc;

	if (c->nonce[0] != '\0')
		return ACLM_OK;
	if ((rc = perform(c, c->dir.new_nonce, NULL, true, "newNonce", &r)) != ACLM_OK)
		return rc;
	if (r.status != 200 && r.status != 204) {
		rc = problem_error(c, &r, "newNonce");
	} else if (c->nonce[0] == '\0') {
		rc = aclm_error(ACLM_ERR_PARSE, "CA %s: newNonce: no Replay-Nonce header", c->ca->name);
	}
	acme_response_free(&r);
	return rc;
}

int acme_post(struct acme_client *c, const struct acme_key *k, bool use_jwk,
              const char *url, const char *payload, const char *step,
              struct acme_response *r)
{
	int rc = ACLM_OK, reads = 0;

	for (int attempt = 0; attempt < ACME_BADNONCE_TRIES; attempt++) {
		char nonce[ACME_MAX_NONCE], *jws = NULL;

		if ((rc = fresh_nonce(c)) != ACLM_OK)
			return rc;
		aclm_strlcpy(nonce, c->nonce, sizeof(nonce));
		c->nonce[0] = '\0';  /* each nonce is used once */
		rc = acme_jws_sign(k, use_jwk ? NULL : c->kid, nonce, url, payload, &jws);
		if (rc != ACLM_OK)
			return rc;
		rc = perform(c, url, jws, false, step, r);
		free(jws);
		/* POST-as-GET is a read: retried like a GET; other POSTs are not
		 * (a lost newOrder answer must not become two orders) */
		if (payload == NULL && transient(rc, r) && reads + 1 < READ_TRIES) {
			if (rc == ACLM_OK)
				acme_response_free(r);
			aclm_debug("CA %s: %s: retrying", c->ca->name, step);
			backoff_sleep(reads++);
			attempt--;
			continue;
		}
		if (rc != ACLM_OK)
			return rc;
		if (r->status >= 200 && r->status < 300)
			return ACLM_OK;
		rc = problem_error(c, r, step);
		if (strcmp(c->last_problem.type, "urn:ietf:params:acme:error:badNonce") != 0) {
			acme_response_free(r);
			return rc;
		}
		aclm_debug("CA %s: %s: bad nonce, retrying (%d)", c->ca->name, step, attempt + 1);
		acme_response_free(r);
	}
	return aclm_error(ACLM_ERR_IO, "CA %s: %s: the CA rejected %d nonces in a row", c->ca->name,
	                  step, ACME_BADNONCE_TRIES);
}

int acme_json(struct acme_client *c, const struct acme_response *r, const char *step,
              json_t **out)
{
	json_error_t jerr;

	if (strncmp(r->content_type, "application/json", 16) != 0)
		return aclm_error(ACLM_ERR_PARSE, "CA %s: %s: expected application/json, got '%s'",
		                  c->ca->name, step, r->content_type);
	*out = json_loadb(r->body, r->body_len, 0, &jerr);
	if (*out == NULL || !json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return aclm_error(ACLM_ERR_PARSE, "CA %s: %s: response is not a JSON object (%s)",
		                  c->ca->name, step, jerr.text);
	}
	return ACLM_OK;
}

int acme_client_open(struct acme_client *c, const struct aclm_acme_ca *ca)
{
	struct acme_response r;
	int rc;

	memset(c, 0, sizeof(*c));
	c->ca = ca;
	c->curl = curl_easy_init();
	if (c->curl == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory (curl)");
	curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "aclm/" ACLM_VERSION);
	curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "https,http");
	curl_easy_setopt(c->curl, CURLOPT_FOLLOWLOCATION, 0L);
	if (ca->trust != NULL)
		curl_easy_setopt(c->curl, CURLOPT_CAINFO, ca->trust);
	if ((rc = perform(c, ca->directory, NULL, false, "directory", &r)) != ACLM_OK)
		goto fail;
	if (r.status != 200) {
		rc = problem_error(c, &r, "directory");
		acme_response_free(&r);
		goto fail;
	}
	rc = acme_directory_parse(r.body, r.body_len, &c->dir);
	acme_response_free(&r);
	if (rc != ACLM_OK) {
		aclm_error_wrap(rc, "CA %s (%s)", ca->name, ca->directory);
		goto fail;
	}
	return ACLM_OK;
fail:
	acme_client_close(c);
	return rc;
}

void acme_client_close(struct acme_client *c)
{
	if (c->curl != NULL)
		curl_easy_cleanup(c->curl);
	acme_directory_free(&c->dir);
	acme_key_free(&c->account);
	c->curl = NULL;
}
