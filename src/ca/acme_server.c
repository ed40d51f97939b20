/* The ACME server (RFC 8555) of the built-in CA: directory, nonces,
 * accounts, orders, authorizations, challenges, finalize, certificate
 * download, revocation, key change, ARI renewalInfo (RFC 9773) and
 * profiles (draft-ietf-acme-profiles).  State lives in the store
 * (ca_acme_objects); nonces are in memory (a restart invalidates them and
 * clients retry on badNonce, as RFC 8555 section 6.5 expects). */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "aclm/buf.h"
#include "aclm/bundle.h"
#include "aclm/ca.h"
#include "aclm/csr.h"
#include "aclm/err.h"
#include "aclm/log.h"
#include "aclm/store.h"
#include "aclm/store_ca.h"
#include "aclm/str.h"
#include "aclm/timeutil.h"
#include "ca-int.h"

#define NONCE_SLOTS 8192
#define NONCE_LIFETIME 3600
#define MAX_JWS_BYTES (64 * 1024)
#define MAX_IDENTIFIERS 100
#define MAX_QUEUE 1024
#define ORDER_LIFETIME (7 * 86400)
#define PENDING_AUTHZ_LIFETIME (7 * 86400)

struct nonce_slot {
	char value[24];
	int64_t expires;
};

struct aclm_ca_acme {
	struct aclm_ca_acme_opts o;
	char *cert_base_url;
	char *connect_to;
	char *dns_resolver;
	const char **suffixes;
	const char **ranges;
	const char **eab;
	struct nonce_slot nonces[NONCE_SLOTS];
	size_t nonce_next;
	struct aclm_ca_acme_validation *queue;
	size_t n_queue;
};

/* --- setup ------------------------------------------------------------------ */

static const char **copy_list(const char *const *in, size_t n)
{
	const char **out = calloc(n + 1, sizeof(*out));

	for (size_t i = 0; out != NULL && i < n; i++)
		out[i] = aclm_strdup(in[i]);
	return out;
}

static void free_list(const char **l, size_t n)
{
	for (size_t i = 0; l != NULL && i < n; i++)
		free((char *)l[i]);
	free(l);
}

int aclm_ca_acme_new(const struct aclm_ca_acme_opts *opts, struct aclm_ca_acme **out)
{
	struct aclm_ca_acme *a = calloc(1, sizeof(*a));

	if (a == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	a->o = *opts;
	a->cert_base_url = opts->cert_base_url ? aclm_strdup(opts->cert_base_url) : NULL;
	a->connect_to = opts->connect_to && *opts->connect_to ? aclm_strdup(opts->connect_to) : NULL;
	a->dns_resolver = opts->dns_resolver && *opts->dns_resolver ? aclm_strdup(opts->dns_resolver)
	                                                              : NULL;
	a->suffixes = copy_list(opts->policy.dns_suffixes, opts->policy.n_dns_suffixes);
	a->ranges = copy_list(opts->policy.ip_ranges, opts->policy.n_ip_ranges);
	a->eab = copy_list(opts->eab_keys, opts->n_eab_keys);
	a->queue = calloc(MAX_QUEUE, sizeof(*a->queue));
	if (a->suffixes == NULL || a->ranges == NULL || a->eab == NULL || a->queue == NULL) {
		aclm_ca_acme_free(a);
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	}
	a->o.policy.dns_suffixes = a->suffixes;
	a->o.policy.ip_ranges = a->ranges;
	a->o.eab_keys = a->eab;
	a->o.cert_base_url = a->cert_base_url;
	a->o.connect_to = a->connect_to;
	a->o.dns_resolver = a->dns_resolver;
	if (a->o.http01_port <= 0)
		a->o.http01_port = 80;
	if (a->o.tlsalpn01_port <= 0)
		a->o.tlsalpn01_port = 443;
	if (a->o.authz_reuse <= 0)
		a->o.authz_reuse = 86400;
	if (a->o.validation_timeout <= 0)
		a->o.validation_timeout = 10;
	*out = a;
	return ACLM_OK;
}

void aclm_ca_acme_free(struct aclm_ca_acme *a)
{
	if (a == NULL)
		return;
	free(a->cert_base_url);
	free(a->connect_to);
	free(a->dns_resolver);
	free_list(a->suffixes, a->o.policy.n_dns_suffixes);
	free_list(a->ranges, a->o.policy.n_ip_ranges);
	free_list(a->eab, a->o.n_eab_keys);
	free(a->queue);
	free(a);
}

const struct aclm_ca_acme_opts *ca_acme_opts(const struct aclm_ca_acme *a)
{
	return &a->o;
}

void aclm_ca_acme_res_free(struct aclm_ca_acme_res *r)
{
	free(r->body);
	r->body = NULL;
	r->body_len = 0;
}

/* --- small helpers ------------------------------------------------------------- */

static void random_ref(char *out, size_t n_bytes, size_t out_size)
{
	unsigned char b[32];

	if (n_bytes > sizeof(b))
		n_bytes = sizeof(b);
	if (RAND_bytes(b, (int)n_bytes) != 1)
		memset(b, 0, sizeof(b));  /* RAND failing is fatal elsewhere; never a fixed ref */
	ca_b64url_encode(b, n_bytes, out, out_size);
}

static void new_nonce(struct aclm_ca_acme *a, char out[64])
{
	struct nonce_slot *s = &a->nonces[a->nonce_next];

	a->nonce_next = (a->nonce_next + 1) % NONCE_SLOTS;
	random_ref(s->value, 16, sizeof(s->value));
	s->expires = aclm_now() + NONCE_LIFETIME;
	aclm_strlcpy(out, s->value, 64);
}

/* Single use: a nonce is forgotten as it is accepted. */
static bool use_nonce(struct aclm_ca_acme *a, const char *n)
{
	int64_t now = aclm_now();

	if (n == NULL || strlen(n) != 22)
		return false;
	for (size_t i = 0; i < NONCE_SLOTS; i++) {
		struct nonce_slot *s = &a->nonces[i];
		if (s->value[0] != '\0' && aclm_ct_equal(s->value, n, 22)) {
			bool fresh = s->expires >= now;
			memset(s, 0, sizeof(*s));
			return fresh;
		}
	}
	return false;
}

static int reply_json(struct aclm_ca_acme_res *res, int status, json_t *j)
{
	char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	if (text == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	free(res->body);
	res->status = status;
	res->content_type = "application/json";
	res->body = text;
	res->body_len = strlen(text);
	return ACLM_OK;
}

static int problem(struct aclm_ca_acme_res *res, int status, const char *type, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));
static int problem(struct aclm_ca_acme_res *res, int status, const char *type, const char *fmt,
                   ...)
{
	char detail[600], urn[96];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	snprintf(urn, sizeof(urn), "urn:ietf:params:acme:error:%s", type);
	rc = reply_json(res, status, json_pack("{s:s, s:s, s:i}", "type", urn, "detail", detail,
	                                       "status", status));
	res->content_type = "application/problem+json";
	return rc;
}

static void add_link(struct aclm_ca_acme_res *res, const char *url, const char *rel)
{
	if (res->n_links < ACLM_CA_ACME_MAX_LINKS)
		snprintf(res->links[res->n_links++], sizeof(res->links[0]), "<%s>;rel=\"%s\"", url, rel);
}

static void iso(int64_t t, char out[32])
{
	aclm_time_iso(t, out, 32);
}

/* --- request context ----------------------------------------------------------- */

struct ctx {
	struct aclm_ca_acme *a;
	struct aclm_store *st;
	const struct aclm_ca_acme_req *req;
	struct aclm_ca_acme_res *res;
	struct ca_jws jws;
	struct aclm_ca_acme_obj account;  /* the signer's account (kid), or empty */
	bool has_account;
	json_t *account_body;
	char thumb[64];                   /* of the key that signed */
	char url[600];                    /* base + path */
};

static void url_of(const struct ctx *c, const char *kind, const char *ref, char *out, size_t n)
{
	snprintf(out, n, "%s/%s/%s", c->req->base, kind, ref);
}

/* --- directory, nonce, ARI --------------------------------------------------- */

static int do_directory(struct ctx *c)
{
	const struct aclm_ca_profile *profs;
	size_t n = aclm_ca_profiles(&profs);
	json_t *p = json_object(), *d;
	char u[7][600];
	const char *names[] = { "new-nonce", "new-account", "new-order", "revoke-cert", "key-change",
	                        "renewal-info" };

	for (size_t i = 0; i < n; i++)
		json_object_set_new(p, profs[i].name, json_string(profs[i].description));
	for (int i = 0; i < 6; i++)
		snprintf(u[i], sizeof(u[i]), "%s/%s", c->req->base, names[i]);
	d = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:o, s:b}}", "newNonce", u[0],
	              "newAccount", u[1], "newOrder", u[2], "revokeCert", u[3], "keyChange", u[4],
	              "renewalInfo", u[5], "meta", "profiles", p, "externalAccountRequired",
	              c->a->o.eab_required);
	return reply_json(c->res, 200, d);
}

static int do_renewal_info(struct ctx *c, const char *certid)
{
	const char *dot = certid != NULL ? strchr(certid, '.') : NULL;
	unsigned char *serial = NULL;
	size_t serial_len = 0;
	char hex[200], s[32], e[32];
	int64_t start = 0, end = 0;
	int rc;

	if (dot == NULL || ca_b64url_decode(dot + 1, strlen(dot + 1), &serial, &serial_len) != ACLM_OK ||
	    serial_len == 0 || serial_len > 64)
		return problem(c->res, 400, "malformed", "renewalInfo: the certificate identifier is "
		               "not base64url(AKI).base64url(serial)");
	aclm_hex_encode(serial, serial_len, hex);
	free(serial);
	for (char *p = hex; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	rc = aclm_ca_renewal_window(c->st, c->req->ca, hex, &start, &end);
	if (rc == ACLM_ERR_NOTFOUND)
		return problem(c->res, 404, "malformed", "renewalInfo: no certificate with serial %s",
		               hex);
	if (rc != ACLM_OK)
		return rc;
	iso(start, s);
	iso(end, e);
	c->res->retry_after = c->a->o.ari_retry_after > 0 ? c->a->o.ari_retry_after : 6 * 3600;
	return reply_json(c->res, 200, json_pack("{s:{s:s, s:s}}", "suggestedWindow", "start", s,
	                                         "end", e));
}

/* --- JWS checking ---------------------------------------------------------------- */

static bool ends_with_op(const char *path, const char *op)
{
	return strcmp(path, op) == 0;
}

/* Check everything RFC 8555 section 6 asks of a POST; on refusal res holds
 * the problem and 1 is returned. */
static int check_jws(struct ctx *c, bool allow_jwk, bool need_jwk)
{
	const struct aclm_ca_acme_req *req = c->req;
	const char *ct = req->content_type;
	EVP_PKEY *pk = NULL;
	json_t *key;
	int rc;

	if (ct == NULL || strncasecmp(ct, "application/jose+json", 21) != 0)
		return problem(c->res, 415, "malformed", "Content-Type must be application/jose+json")
		       ?: 1;
	if (req->body_len > MAX_JWS_BYTES)
		return problem(c->res, 413, "malformed", "request body of %zu bytes (at most %d)",
		               req->body_len, MAX_JWS_BYTES) ?: 1;
	if (ca_jws_parse(req->body, req->body_len, &c->jws) != ACLM_OK)
		return problem(c->res, 400, "malformed", "%s", aclm_errmsg()) ?: 1;
	if (!ca_jws_alg_allowed(c->jws.alg)) {
		rc = problem(c->res, 400, "badSignatureAlgorithm", "algorithm '%s' is not accepted "
		             "(ES256, ES384, RS256, EdDSA)", c->jws.alg ? c->jws.alg : "(none)");
		if (rc == ACLM_OK) {
			json_t *j = json_loads(c->res->body, 0, NULL);
			json_object_set_new(j, "algorithms", json_pack("[s,s,s,s]", "ES256", "ES384",
			                                               "RS256", "EdDSA"));
			reply_json(c->res, 400, j);
			c->res->content_type = "application/problem+json";
		}
		return rc ?: 1;
	}
	if (!use_nonce(c->a, c->jws.nonce))
		return problem(c->res, 400, "badNonce", "the nonce is missing, used or unknown") ?: 1;
	if (c->jws.url == NULL || strcmp(c->jws.url, c->url) != 0)
		return problem(c->res, 401, "unauthorized", "the JWS url '%s' is not the request URL "
		               "%s", c->jws.url ? c->jws.url : "(none)", c->url) ?: 1;
	if ((c->jws.jwk != NULL) == (c->jws.kid != NULL))
		return problem(c->res, 400, "malformed", "the JWS must carry exactly one of 'jwk' "
		               "and 'kid'") ?: 1;
	if (c->jws.jwk != NULL && !allow_jwk)
		return problem(c->res, 400, "malformed", "this request must be signed by an account "
		               "('kid')") ?: 1;
	if (c->jws.kid != NULL && need_jwk)
		return problem(c->res, 400, "malformed", "this request must carry the key ('jwk')")
		       ?: 1;
	if (c->jws.kid != NULL) {
		char prefix[600];
		size_t pl;
		snprintf(prefix, sizeof(prefix), "%s/acct/", req->base);
		pl = strlen(prefix);
		if (strncmp(c->jws.kid, prefix, pl) != 0 || strlen(c->jws.kid + pl) > 64 ||
		    (rc = aclm_store_ca_acme_get(c->st, req->ca, "account", c->jws.kid + pl,
		                                 &c->account)) == ACLM_ERR_NOTFOUND)
			return problem(c->res, 400, "accountDoesNotExist", "no account '%s'", c->jws.kid)
			       ?: 1;
		if (rc != ACLM_OK)
			return rc;
		c->has_account = true;
		c->account_body = json_loads(c->account.body, 0, NULL);
		if (strcmp(c->account.status, "valid") != 0)
			return problem(c->res, 401, "unauthorized", "account %s is %s", c->account.ref,
			               c->account.status) ?: 1;
		key = json_object_get(c->account_body, "key");
	} else {
		key = c->jws.jwk;
	}
	if (ca_jwk_to_pkey(key, &pk) != ACLM_OK)
		return problem(c->res, 400, "badPublicKey", "%s", aclm_errmsg()) ?: 1;
	rc = ca_jws_verify_sig(c->jws.alg, pk, (const unsigned char *)c->jws.signing_input,
	                       c->jws.signing_input_len, c->jws.sig, c->jws.sig_len);
	EVP_PKEY_free(pk);
	if (rc != ACLM_OK)
		return problem(c->res, 400, "malformed", "%s", aclm_errmsg()) ?: 1;
	if (ca_jwk_thumbprint(key, c->thumb) != ACLM_OK)
		return problem(c->res, 400, "badPublicKey", "%s", aclm_errmsg()) ?: 1;
	return 0;
}

/* --- accounts -------------------------------------------------------------------- */

static json_t *account_view(struct ctx *c, const struct aclm_ca_acme_obj *acc, json_t *body)
{
	char orders[600];
	json_t *v = json_deep_copy(body);

	url_of(c, "acct", acc->ref, orders, sizeof(orders));
	aclm_strlcpy(orders + strlen(orders), "/orders", sizeof(orders) - strlen(orders));
	json_object_del(v, "key");
	json_object_set_new(v, "status", json_string(acc->status));
	json_object_set_new(v, "orders", json_string(orders));
	return v;
}

static int check_contact(struct ctx *c, json_t *contact)
{
	size_t i;
	json_t *v;

	if (contact == NULL)
		return 0;
	if (!json_is_array(contact) || json_array_size(contact) > 10)
		return problem(c->res, 400, "malformed", "contact must be an array of mailto: URLs") ?: 1;
	json_array_foreach(contact, i, v) {
		const char *s = json_string_value(v);
		if (s == NULL || strncmp(s, "mailto:", 7) != 0 || strlen(s) > 320 ||
		    strchr(s + 7, '@') == NULL || strpbrk(s, ",? \r\n") != NULL)
			return problem(c->res, 400, "invalidContact", "contact '%s' is not one mailto: "
			               "address", s ? s : "?") ?: 1;
	}
	return 0;
}

/* RFC 8555 7.3.4: a JWS over the account key, HS256 with a key we gave
 * out.  0: fine (or none and not required); 1: refused (res filled). */
static int check_eab(struct ctx *c, json_t *eab, char *kid_out, size_t kid_size)
{
	struct ca_jws j;
	const char *kid;
	unsigned char *key = NULL, mac[32];
	unsigned int mac_len = 0;
	size_t key_len = 0;
	int rc = 1;

	kid_out[0] = '\0';
	if (eab == NULL)
		return c->a->o.eab_required ? problem(c->res, 400, "externalAccountRequired", "this CA "
		                                      "needs an external account binding") ?: 1 : 0;
	{
		char *text = json_dumps(eab, JSON_COMPACT);
		int prc = text != NULL ? ca_jws_parse((const unsigned char *)text, strlen(text), &j)
		                       : ACLM_ERR_NOMEM;
		free(text);
		if (prc != ACLM_OK)
			return problem(c->res, 400, "malformed", "externalAccountBinding: %s",
			               aclm_errmsg()) ?: 1;
	}
	kid = json_string_value(json_object_get(j.protected_hdr, "kid"));
	if (j.alg == NULL || strcmp(j.alg, "HS256") != 0 || kid == NULL || j.nonce != NULL ||
	    j.url == NULL || strcmp(j.url, c->url) != 0 || j.payload == NULL ||
	    !json_equal(j.payload, c->jws.jwk)) {
		rc = problem(c->res, 400, "malformed", "externalAccountBinding must be HS256 with a "
		             "'kid', this 'url', no nonce, and the account key as payload") ?: 1;
		goto out;
	}
	for (size_t i = 0; i < c->a->o.n_eab_keys && key == NULL; i++) {
		const char *e = c->a->o.eab_keys[i], *colon = strchr(e, ':');
		if (colon != NULL && (size_t)(colon - e) == strlen(kid) &&
		    strncmp(e, kid, strlen(kid)) == 0 &&
		    ca_b64url_decode(colon + 1, strlen(colon + 1), &key, &key_len) != ACLM_OK)
			key = NULL;
	}
	if (key == NULL) {
		rc = problem(c->res, 401, "unauthorized", "externalAccountBinding: unknown key id "
		             "'%.64s'", kid) ?: 1;
		goto out;
	}
	if (HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)j.signing_input,
	         j.signing_input_len, mac, &mac_len) == NULL || j.sig_len != 32 ||
	    !aclm_ct_equal(mac, j.sig, 32)) {
		rc = problem(c->res, 401, "unauthorized", "externalAccountBinding: the MAC does not "
		             "verify") ?: 1;
		goto out;
	}
	aclm_strlcpy(kid_out, kid, kid_size);
	rc = 0;
out:
	if (key != NULL)
		OPENSSL_clear_free(key, key_len);
	ca_jws_free(&j);
	return rc;
}

static int do_new_account(struct ctx *c)
{
	struct aclm_ca_acme_obj old, obj;
	json_t *p = c->jws.payload, *body;
	char ref[48], url[600], eab_kid[80];
	char *text;
	int rc;

	if (p == NULL)
		return problem(c->res, 400, "malformed", "newAccount needs a payload");
	rc = aclm_store_ca_acme_find(c->st, c->req->ca, "account", c->thumb, NULL, "valid,deactivated",
	                             &old);
	if (rc == ACLM_OK) {
		body = json_loads(old.body, 0, NULL);
		url_of(c, "acct", old.ref, url, sizeof(url));
		aclm_strlcpy(c->res->location, url, sizeof(c->res->location));
		if (strcmp(old.status, "valid") != 0)
			rc = problem(c->res, 401, "unauthorized", "account %s is %s", old.ref, old.status);
		else
			rc = reply_json(c->res, 200, account_view(c, &old, body));
		json_decref(body);
		aclm_ca_acme_obj_free(&old);
		return rc;
	}
	if (rc != ACLM_ERR_NOTFOUND)
		return rc;
	if (json_is_true(json_object_get(p, "onlyReturnExisting")))
		return problem(c->res, 400, "accountDoesNotExist", "no account for this key");
	if (check_contact(c, json_object_get(p, "contact")))
		return ACLM_OK;
	if (check_eab(c, json_object_get(p, "externalAccountBinding"), eab_kid, sizeof(eab_kid)))
		return ACLM_OK;
	random_ref(ref, 12, sizeof(ref));
	body = json_pack("{s:O?, s:b, s:O}", "contact", json_object_get(p, "contact"),
	                 "termsOfServiceAgreed", json_is_true(json_object_get(p, "termsOfServiceAgreed")),
	                 "key", c->jws.jwk);
	if (eab_kid[0] != '\0')
		json_object_set_new(body, "eab_kid", json_string(eab_kid));
	text = body != NULL ? json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	if (text == NULL) {
		json_decref(body);
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	}
	memset(&obj, 0, sizeof(obj));
	obj.ca = (char *)c->req->ca;
	obj.kind = "account";
	obj.ref = ref;
	obj.account_ref = ref;
	obj.status = "valid";
	obj.lookup = c->thumb;
	obj.body = text;
	rc = aclm_store_ca_acme_add(c->st, &obj);
	free(text);
	if (rc == ACLM_OK) {
		url_of(c, "acct", ref, url, sizeof(url));
		aclm_strlcpy(c->res->location, url, sizeof(c->res->location));
		rc = reply_json(c->res, 201, account_view(c, &obj, body));
	}
	json_decref(body);
	return rc;
}

static int save_account(struct ctx *c, const char *status, const char *lookup)
{
	char *text = json_dumps(c->account_body, JSON_COMPACT | JSON_SORT_KEYS);
	int rc;

	if (text == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	rc = aclm_store_ca_acme_update(c->st, c->account.ref, status, text, 0, lookup);
	free(text);
	if (rc == ACLM_OK && status != c->account.status) {
		free(c->account.status);
		c->account.status = aclm_strdup(status);
	}
	return rc;
}

struct orders_ctx {
	struct ctx *c;
	json_t *list;
	int n;
};

static int orders_fn(void *ctx, const struct aclm_ca_acme_obj *o)
{
	struct orders_ctx *oc = ctx;
	char url[600];

	if (strcmp(o->status, "invalid") == 0)
		return 0;
	url_of(oc->c, "order", o->ref, url, sizeof(url));
	json_array_append_new(oc->list, json_string(url));
	return ++oc->n >= 1000 ? 1 : 0;
}

static int do_account(struct ctx *c, const char *ref, const char *sub)
{
	json_t *p = c->jws.payload;
	int rc;

	if (strcmp(ref, c->account.ref) != 0)
		return problem(c->res, 401, "unauthorized", "the request is signed by another account");
	if (sub != NULL) {
		/* RFC 8555 7.1.2.1: the account's orders (pending, ready,
		 * processing and valid ones; at most 1000, newest first). */
		struct orders_ctx oc = { c, json_array(), 0 };
		if ((rc = aclm_store_ca_acme_list_account(c->st, c->req->ca, "order", c->account.ref,
		                                          orders_fn, &oc)) < 0) {
			json_decref(oc.list);
			return rc;
		}
		return reply_json(c->res, 200, json_pack("{s:o}", "orders", oc.list));
	}
	if (p != NULL) {
		const char *status = json_string_value(json_object_get(p, "status"));
		json_t *contact = json_object_get(p, "contact");
		if (status != NULL && strcmp(status, "deactivated") != 0)
			return problem(c->res, 400, "malformed", "an account can only be deactivated");
		if (check_contact(c, contact))
			return ACLM_OK;
		if (contact != NULL)
			json_object_set(c->account_body, "contact", contact);
		if ((rc = save_account(c, status != NULL ? "deactivated" : c->account.status,
		                       NULL)) != ACLM_OK)
			return rc;
	}
	return reply_json(c->res, 200, account_view(c, &c->account, c->account_body));
}

static int do_key_change(struct ctx *c)
{
	const char *inner_text;
	struct ca_jws inner;
	char *blob = NULL, thumb[64], acct_url[600];
	struct aclm_ca_acme_obj other;
	EVP_PKEY *pk = NULL;
	json_t *old_key;
	int rc;

	if (c->jws.payload == NULL)
		return problem(c->res, 400, "malformed", "keyChange needs a payload");
	blob = json_dumps(c->jws.payload, JSON_COMPACT);
	inner_text = blob;
	if (blob == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	rc = ca_jws_parse((const unsigned char *)inner_text, strlen(inner_text), &inner);
	free(blob);
	if (rc != ACLM_OK)
		return problem(c->res, 400, "malformed", "keyChange inner JWS: %s", aclm_errmsg());
	rc = ACLM_OK;
	url_of(c, "acct", c->account.ref, acct_url, sizeof(acct_url));
	old_key = json_object_get(c->account_body, "key");
	if (inner.jwk == NULL || inner.kid != NULL || inner.nonce != NULL || inner.payload == NULL ||
	    !ca_jws_alg_allowed(inner.alg)) {
		rc = problem(c->res, 400, "malformed", "keyChange inner JWS must have 'jwk', no "
		             "'nonce', an allowed 'alg' and a payload");
		goto out;
	}
	if (inner.url == NULL || strcmp(inner.url, c->url) != 0) {
		rc = problem(c->res, 400, "malformed", "keyChange inner 'url' differs from the outer");
		goto out;
	}
	if (ca_jwk_to_pkey(inner.jwk, &pk) != ACLM_OK) {
		rc = problem(c->res, 400, "badPublicKey", "%s", aclm_errmsg());
		goto out;
	}
	if (ca_jws_verify_sig(inner.alg, pk, (const unsigned char *)inner.signing_input,
	                      inner.signing_input_len, inner.sig, inner.sig_len) != ACLM_OK) {
		rc = problem(c->res, 400, "malformed", "keyChange inner JWS: %s", aclm_errmsg());
		goto out;
	}
	{
		const char *acct = json_string_value(json_object_get(inner.payload, "account"));
		json_t *ok = json_object_get(inner.payload, "oldKey");
		if (acct == NULL || strcmp(acct, acct_url) != 0 || !json_equal(ok, old_key)) {
			rc = problem(c->res, 400, "malformed", "keyChange payload must name this account "
			             "and its current key");
			goto out;
		}
	}
	if (ca_jwk_thumbprint(inner.jwk, thumb) != ACLM_OK) {
		rc = problem(c->res, 400, "badPublicKey", "%s", aclm_errmsg());
		goto out;
	}
	if (aclm_store_ca_acme_find(c->st, c->req->ca, "account", thumb, NULL, "valid,deactivated",
	                            &other) == ACLM_OK) {
		url_of(c, "acct", other.ref, c->res->location, sizeof(c->res->location));
		aclm_ca_acme_obj_free(&other);
		rc = problem(c->res, 409, "malformed", "the new key belongs to another account");
		goto out;
	}
	json_object_set(c->account_body, "key", inner.jwk);
	if ((rc = save_account(c, c->account.status, thumb)) == ACLM_OK)
		rc = reply_json(c->res, 200, account_view(c, &c->account, c->account_body));
out:
	EVP_PKEY_free(pk);
	ca_jws_free(&inner);
	return rc;
}

/* --- identifiers --------------------------------------------------------------- */

/* An ACME dns identifier: a name the CA may issue for (ca_dns_name_ok),
 * in lower case as RFC 8555 section 7.1.4 asks, and with a dot (no
 * "localhost" by ACME). */
static bool dns_ok(const char *s)
{
	for (const char *p = s; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			return false;
	return strchr(s, '.') != NULL && ca_dns_name_ok(s, true);
}

/* --- authorizations and challenges ---------------------------------------------- */

static int put_obj(struct ctx *c, const char *kind, const char *ref, const char *status,
                   const char *lookup, json_t *body, int64_t expires)
{
	struct aclm_ca_acme_obj o;
	char *text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	int rc;

	if (text == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	memset(&o, 0, sizeof(o));
	o.ca = (char *)c->req->ca;
	o.kind = (char *)kind;
	o.ref = (char *)ref;
	o.account_ref = c->account.ref;
	o.status = (char *)status;
	o.lookup = (char *)lookup;
	o.body = text;
	o.expires_at = expires;
	rc = aclm_store_ca_acme_add(c->st, &o);
	free(text);
	return rc;
}

static int update_obj(struct aclm_store *st, const char *ref, const char *status, json_t *body,
                      int64_t expires)
{
	char *text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	int rc;

	if (text == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	rc = aclm_store_ca_acme_update(st, ref, status, text, expires, NULL);
	free(text);
	return rc;
}

/* A new pending authorization with its challenges; ref_out gets its ref. */
static int new_authz(struct ctx *c, const char *type, const char *value, char ref_out[48])
{
	const char *types[3];
	size_t n = 0;
	bool wildcard = strncmp(value, "*.", 2) == 0;
	json_t *chals = json_array(), *body;
	char lookup[300];
	int64_t exp = aclm_now() + PENDING_AUTHZ_LIFETIME;
	int rc = ACLM_OK;

	if (wildcard) {
		types[n++] = "dns-01";
	} else {
		types[n++] = "http-01";
		types[n++] = "tls-alpn-01";
		if (strcmp(type, "dns") == 0)
			types[n++] = "dns-01";
	}
	random_ref(ref_out, 12, 48);
	for (size_t i = 0; i < n && rc == ACLM_OK; i++) {
		char cref[48], token[64];
		json_t *cb;
		random_ref(cref, 12, sizeof(cref));
		random_ref(token, 32, sizeof(token));
		cb = json_pack("{s:s, s:s, s:s}", "type", types[i], "token", token, "authz", ref_out);
		rc = put_obj(c, "challenge", cref, "pending", NULL, cb, exp);
		json_decref(cb);
		json_array_append_new(chals, json_string(cref));
	}
	snprintf(lookup, sizeof(lookup), "%s:%s", type, value);
	body = json_pack("{s:{s:s, s:s}, s:o, s:b}", "identifier", "type", type, "value",
	                 wildcard ? value + 2 : value, "challenges", chals, "wildcard", wildcard);
	if (rc == ACLM_OK)
		rc = put_obj(c, "authz", ref_out, "pending", lookup, body, exp);
	json_decref(body);
	return rc;
}

static json_t *challenge_view(struct ctx *c, const struct aclm_ca_acme_obj *o, json_t *b)
{
	char url[600], t[32];
	json_t *v = json_pack("{s:O, s:s, s:s, s:O}", "type", json_object_get(b, "type"), "url", "",
	                      "status", o->status, "token", json_object_get(b, "token"));

	url_of(c, "chall", o->ref, url, sizeof(url));
	json_object_set_new(v, "url", json_string(url));
	if (strcmp(o->status, "valid") == 0) {
		iso(o->updated_at, t);
		json_object_set_new(v, "validated", json_string(t));
	}
	if (json_object_get(b, "error") != NULL)
		json_object_set(v, "error", json_object_get(b, "error"));
	return v;
}

static json_t *authz_view(struct ctx *c, const struct aclm_ca_acme_obj *o, json_t *b)
{
	json_t *chals = json_array(), *v;
	size_t i;
	json_t *r;
	char t[32];

	json_array_foreach(json_object_get(b, "challenges"), i, r) {
		struct aclm_ca_acme_obj co;
		if (aclm_store_ca_acme_get(c->st, c->req->ca, "challenge", json_string_value(r),
		                           &co) == ACLM_OK) {
			json_t *cb = json_loads(co.body, 0, NULL);
			/* A valid authorization shows only the challenge that made it valid. */
			if (strcmp(o->status, "valid") != 0 || strcmp(co.status, "valid") == 0)
				json_array_append_new(chals, challenge_view(c, &co, cb));
			json_decref(cb);
			aclm_ca_acme_obj_free(&co);
		}
	}
	iso(o->expires_at, t);
	v = json_pack("{s:s, s:s, s:O, s:o}", "status", o->status, "expires", t, "identifier",
	              json_object_get(b, "identifier"), "challenges", chals);
	if (json_is_true(json_object_get(b, "wildcard")))
		json_object_set_new(v, "wildcard", json_true());
	return v;
}

static int do_authz(struct ctx *c, const char *ref)
{
	struct aclm_ca_acme_obj o;
	json_t *b;
	int rc = aclm_store_ca_acme_get(c->st, c->req->ca, "authz", ref, &o);

	if (rc == ACLM_ERR_NOTFOUND)
		return problem(c->res, 404, "malformed", "no authorization %s", ref);
	if (rc != ACLM_OK)
		return rc;
	if (o.account_ref == NULL || strcmp(o.account_ref, c->account.ref) != 0) {
		aclm_ca_acme_obj_free(&o);
		return problem(c->res, 403, "unauthorized", "authorization %s belongs to another "
		               "account", ref);
	}
	b = json_loads(o.body, 0, NULL);
	if (c->jws.payload != NULL) {
		const char *s = json_string_value(json_object_get(c->jws.payload, "status"));
		if (s == NULL || strcmp(s, "deactivated") != 0) {
			rc = problem(c->res, 400, "malformed", "an authorization can only be deactivated");
			goto out;
		}
		if ((rc = update_obj(c->st, o.ref, "deactivated", b, 0)) != ACLM_OK)
			goto out;
		free(o.status);
		o.status = aclm_strdup("deactivated");
	} else if (strcmp(o.status, "pending") == 0 && o.expires_at < aclm_now()) {
		update_obj(c->st, o.ref, "expired", b, 0);
		free(o.status);
		o.status = aclm_strdup("expired");
	}
	if (strcmp(o.status, "pending") == 0)
		c->res->retry_after = 1;  /* validation takes about a second */
	rc = reply_json(c->res, 200, authz_view(c, &o, b));
out:
	json_decref(b);
	aclm_ca_acme_obj_free(&o);
	return rc;
}

static int queue_validation(struct ctx *c, const struct aclm_ca_acme_obj *chal, json_t *cb,
                            json_t *ab, const char *thumb)
{
	struct aclm_ca_acme_validation *v;
	json_t *ident = json_object_get(ab, "identifier");

	if (c->a->n_queue >= MAX_QUEUE)
		return aclm_error(ACLM_ERR_TOOBIG, "validation queue full");
	v = &c->a->queue[c->a->n_queue];
	memset(v, 0, sizeof(*v));
	aclm_strlcpy(v->challenge, chal->ref, sizeof(v->challenge));
	aclm_strlcpy(v->type, json_string_value(json_object_get(cb, "type")), sizeof(v->type));
	aclm_strlcpy(v->ident_type, json_string_value(json_object_get(ident, "type")),
	             sizeof(v->ident_type));
	aclm_strlcpy(v->value, json_string_value(json_object_get(ident, "value")), sizeof(v->value));
	aclm_strlcpy(v->token, json_string_value(json_object_get(cb, "token")), sizeof(v->token));
	snprintf(v->keyauth, sizeof(v->keyauth), "%s.%s", v->token, thumb);
	c->a->n_queue++;
	return ACLM_OK;
}

static int do_challenge(struct ctx *c, const char *ref)
{
	struct aclm_ca_acme_obj o, az;
	json_t *b = NULL, *ab = NULL;
	char up[600];
	int rc = aclm_store_ca_acme_get(c->st, c->req->ca, "challenge", ref, &o);

	memset(&az, 0, sizeof(az));
	if (rc == ACLM_ERR_NOTFOUND)
		return problem(c->res, 404, "malformed", "no challenge %s", ref);
	if (rc != ACLM_OK)
		return rc;
	if (o.account_ref == NULL || strcmp(o.account_ref, c->account.ref) != 0) {
		rc = problem(c->res, 403, "unauthorized", "challenge %s belongs to another account", ref);
		goto out;
	}
	b = json_loads(o.body, 0, NULL);
	url_of(c, "authz", json_string_value(json_object_get(b, "authz")), up, sizeof(up));
	add_link(c->res, up, "up");
	if (c->jws.payload != NULL && strcmp(o.status, "pending") == 0) {
		if ((rc = aclm_store_ca_acme_get(c->st, c->req->ca, "authz",
		                                 json_string_value(json_object_get(b, "authz")),
		                                 &az)) != ACLM_OK)
			goto out;
		if (strcmp(az.status, "pending") != 0 || az.expires_at < aclm_now()) {
			rc = problem(c->res, 400, "malformed", "authorization is %s", az.status);
			goto out;
		}
		ab = json_loads(az.body, 0, NULL);
		if ((rc = queue_validation(c, &o, b, ab, c->thumb)) != ACLM_OK) {
			rc = problem(c->res, 503, "rateLimited", "too many validations in progress");
			c->res->retry_after = 10;
			goto out;
		}
		json_object_set_new(b, "thumbprint", json_string(c->thumb));
		if ((rc = update_obj(c->st, o.ref, "processing", b, 0)) != ACLM_OK)
			goto out;
		free(o.status);
		o.status = aclm_strdup("processing");
	}
	if (strcmp(o.status, "processing") == 0)
		c->res->retry_after = 1;
	rc = reply_json(c->res, 200, challenge_view(c, &o, b));
out:
	json_decref(b);
	json_decref(ab);
	aclm_ca_acme_obj_free(&o);
	aclm_ca_acme_obj_free(&az);
	return rc;
}

/* --- orders ---------------------------------------------------------------------- */

/* The order's status from its authorizations (pending -> ready / invalid). */
static int order_refresh(struct ctx *c, struct aclm_ca_acme_obj *o, json_t *b)
{
	size_t i, n_valid = 0, n = 0;
	json_t *r;
	const char *next = NULL;

	if (strcmp(o->status, "pending") != 0)
		return ACLM_OK;
	if (o->expires_at < aclm_now()) {
		next = "invalid";
	} else {
		json_array_foreach(json_object_get(b, "authorizations"), i, r) {
			struct aclm_ca_acme_obj az;
			n++;
			if (aclm_store_ca_acme_get(c->st, c->req->ca, "authz", json_string_value(r),
			                           &az) != ACLM_OK) {
				next = "invalid";
				break;
			}
			if (strcmp(az.status, "valid") == 0)
				n_valid++;
			else if (strcmp(az.status, "pending") != 0)
				next = "invalid";
			aclm_ca_acme_obj_free(&az);
			if (next != NULL)
				break;
		}
		if (next == NULL && n_valid == n && n > 0)
			next = "ready";
	}
	if (next == NULL)
		return ACLM_OK;
	free(o->status);
	o->status = aclm_strdup(next);
	return update_obj(c->st, o->ref, next, b, 0);
}

static json_t *order_view(struct ctx *c, const struct aclm_ca_acme_obj *o, json_t *b)
{
	json_t *az = json_array(), *v, *r;
	char url[600], t[32];
	size_t i;

	json_array_foreach(json_object_get(b, "authorizations"), i, r) {
		url_of(c, "authz", json_string_value(r), url, sizeof(url));
		json_array_append_new(az, json_string(url));
	}
	iso(o->expires_at, t);
	url_of(c, "order", o->ref, url, sizeof(url));
	aclm_strlcpy(url + strlen(url), "/finalize", sizeof(url) - strlen(url));
	v = json_pack("{s:s, s:s, s:O, s:o, s:s}", "status", o->status, "expires", t, "identifiers",
	              json_object_get(b, "identifiers"), "authorizations", az, "finalize", url);
	if (json_object_get(b, "profile") != NULL)
		json_object_set(v, "profile", json_object_get(b, "profile"));
	if (json_object_get(b, "certificate") != NULL) {
		url_of(c, "cert", json_string_value(json_object_get(b, "certificate")), url, sizeof(url));
		json_object_set_new(v, "certificate", json_string(url));
	}
	if (json_object_get(b, "error") != NULL)
		json_object_set(v, "error", json_object_get(b, "error"));
	return v;
}

static int do_new_order(struct ctx *c)
{
	json_t *p = c->jws.payload, *ids, *id, *authzs = NULL, *idents = NULL, *body = NULL;
	const char *profile, *replaces = NULL;
	struct aclm_ca_acme_obj prior;
	char ref[48], url[600], name_key[300], replaces_key[270];
	int64_t now = aclm_now(), n_recent = 0;
	size_t i;
	int rc = ACLM_OK;

	if (p == NULL || !json_is_array(ids = json_object_get(p, "identifiers")) ||
	    json_array_size(ids) == 0)
		return problem(c->res, 400, "malformed", "newOrder needs a non-empty 'identifiers' "
		               "array");
	if (json_array_size(ids) > MAX_IDENTIFIERS)
		return problem(c->res, 400, "rejectedIdentifier", "at most %d identifiers per order",
		               MAX_IDENTIFIERS);
	if (json_object_get(p, "notBefore") != NULL || json_object_get(p, "notAfter") != NULL)
		return problem(c->res, 400, "malformed", "notBefore / notAfter are not supported: the "
		               "profile sets the validity");
	profile = json_string_value(json_object_get(p, "profile"));
	if (json_object_get(p, "profile") != NULL &&
	    (profile == NULL || aclm_ca_profile_find(profile) == NULL))
		return problem(c->res, 400, "invalidProfile", "unknown profile '%s'",
		               profile ? profile : "?");
	if (c->a->o.orders_per_hour > 0) {
		if ((rc = aclm_store_ca_acme_count(c->st, "order", c->account.ref, now - 3600,
		                                   &n_recent)) != ACLM_OK)
			return rc;
		if (n_recent >= c->a->o.orders_per_hour) {
			c->res->retry_after = 3600;
			return problem(c->res, 429, "rateLimited", "account %s placed %lld orders in the "
			               "last hour (limit %lld)", c->account.ref, (long long)n_recent,
			               (long long)c->a->o.orders_per_hour);
		}
	}
	/* Check every identifier before creating anything.  An IP address sent
	 * as a "dns" identifier (clients without RFC 8738, e.g. lego 4.9) is
	 * taken as the "ip" identifier it means. */
	json_array_foreach(ids, i, id) {
		const char *type = json_string_value(json_object_get(id, "type"));
		const char *value = json_string_value(json_object_get(id, "value"));
		if (type != NULL && value != NULL && strcmp(type, "dns") == 0 &&
		    aclm_is_ip_literal(value)) {
			json_object_set_new(id, "type", json_string("ip"));
			type = "ip";
		}
		if (type == NULL || value == NULL || json_object_size(id) != 2)
			return problem(c->res, 400, "malformed", "identifier %zu: needs 'type' and 'value'",
			               i);
		if (strcmp(type, "dns") == 0) {
			if (!dns_ok(value))
				return problem(c->res, 400, "rejectedIdentifier", "'%.300s' is not a valid "
				               "lower-case DNS name", value);
		} else if (strcmp(type, "ip") == 0) {
			unsigned char buf[16];
			if (inet_pton(strchr(value, ':') ? AF_INET6 : AF_INET, value, buf) != 1)
				return problem(c->res, 400, "malformed", "'%.300s' is not an IP address", value);
		} else {
			return problem(c->res, 400, "unsupportedIdentifier", "identifier type '%.40s' "
			               "(dns or ip)", type);
		}
		if (aclm_ca_policy_check(&c->a->o.policy, type, value) != ACLM_OK)
			return problem(c->res, 400, "rejectedIdentifier", "%s", aclm_errmsg());
	}
	/* Per registered name: the last two labels of the first DNS name (or
	 * the address), all accounts together. */
	{
		const char *first = json_string_value(json_object_get(json_array_get(ids, 0), "value"));
		const char *reg = first;
		int dots = 0;
		if (strcmp(json_string_value(json_object_get(json_array_get(ids, 0), "type")), "dns") == 0)
			for (const char *q = first + strlen(first); q > first; q--)
				if (q[-1] == '.' && ++dots == 2) {
					reg = q;
					break;
				}
		snprintf(name_key, sizeof(name_key), "name:%s", reg);
		if (c->a->o.orders_per_name_per_hour > 0) {
			if ((rc = aclm_store_ca_acme_count_lookup(c->st, c->req->ca, "order", name_key,
			                                          now - 3600, &n_recent)) != ACLM_OK)
				return rc;
			if (n_recent >= c->a->o.orders_per_name_per_hour) {
				c->res->retry_after = 3600;
				return problem(c->res, 429, "rateLimited", "%lld orders for %s in the last "
				               "hour (limit %lld)", (long long)n_recent, reg,
				               (long long)c->a->o.orders_per_name_per_hour);
			}
		}
	}
	/* ARI (RFC 9773 section 5): `replaces` names the certificate this order
	 * renews; one certificate is replaced once ("alreadyReplaced"). */
	replaces = json_string_value(json_object_get(p, "replaces"));
	if (json_object_get(p, "replaces") != NULL) {
		const char *dot = replaces != NULL ? strchr(replaces, '.') : NULL;
		if (dot == NULL || dot == replaces || dot[1] == '\0' || strlen(replaces) > 250 ||
		    strspn(replaces, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") !=
		    strlen(replaces))
			return problem(c->res, 400, "malformed", "'replaces' is not an ARI certificate "
			               "identifier (base64url AKI '.' base64url serial)");
		snprintf(replaces_key, sizeof(replaces_key), "replaces:%s", replaces);
		rc = aclm_store_ca_acme_find(c->st, c->req->ca, "replacement", replaces_key, NULL,
		                             "valid", &prior);
		if (rc == ACLM_OK) {
			/* Replaced by an order that may still succeed: refused.  An
			 * order that failed or lapsed replaced nothing. */
			json_t *pb = json_loads(prior.body ? prior.body : "{}", 0, NULL);
			const char *oref = json_string_value(json_object_get(pb, "order"));
			struct aclm_ca_acme_obj order;
			bool live = true;
			if (oref != NULL &&
			    aclm_store_ca_acme_find_ref(c->st, "order", oref, &order) == ACLM_OK) {
				live = strcmp(order.status, "invalid") != 0 &&
				       (strcmp(order.status, "valid") == 0 || order.expires_at > now);
				aclm_ca_acme_obj_free(&order);
			}
			json_decref(pb);
			aclm_ca_acme_obj_free(&prior);
			if (live)
				return problem(c->res, 409, "alreadyReplaced", "certificate %.250s was "
				               "already replaced by an earlier order", replaces);
		} else if (rc != ACLM_ERR_NOTFOUND) {
			return rc;
		}
		rc = ACLM_OK;
	}
	authzs = json_array();
	idents = json_array();
	if ((rc = aclm_store_begin(c->st)) != ACLM_OK)
		goto out;
	json_array_foreach(ids, i, id) {
		const char *type = json_string_value(json_object_get(id, "type"));
		const char *value = json_string_value(json_object_get(id, "value"));
		char lookup[300], azref[48];
		struct aclm_ca_acme_obj old;
		snprintf(lookup, sizeof(lookup), "%s:%s", type, value);
		json_array_append_new(idents, json_pack("{s:s, s:s}", "type", type, "value", value));
		rc = aclm_store_ca_acme_find(c->st, c->req->ca, "authz", lookup, c->account.ref,
		                             "valid", &old);
		if (rc == ACLM_OK && old.expires_at > now + 3600) {
			json_array_append_new(authzs, json_string(old.ref));
			aclm_ca_acme_obj_free(&old);
			continue;
		}
		if (rc == ACLM_OK)
			aclm_ca_acme_obj_free(&old);
		else if (rc != ACLM_ERR_NOTFOUND)
			break;
		if ((rc = new_authz(c, type, value, azref)) != ACLM_OK)
			break;
		json_array_append_new(authzs, json_string(azref));
	}
	if (rc != ACLM_OK) {
		aclm_store_rollback(c->st);
		goto out;
	}
	random_ref(ref, 12, sizeof(ref));
	if (replaces != NULL) {
		char rref[48];
		json_t *rb = json_pack("{s:s, s:s}", "order", ref, "replaces", replaces);
		random_ref(rref, 12, sizeof(rref));
		rc = put_obj(c, "replacement", rref, "valid", replaces_key, rb,
		             now + 400 * 86400);
		json_decref(rb);
		if (rc != ACLM_OK) {
			aclm_store_rollback(c->st);
			goto out;
		}
	}
	body = json_pack("{s:O, s:O}", "identifiers", idents, "authorizations", authzs);
	if (profile != NULL)
		json_object_set_new(body, "profile", json_string(profile));
	if (replaces != NULL)
		json_object_set_new(body, "replaces", json_string(replaces));
	if ((rc = put_obj(c, "order", ref, "pending", name_key, body, now + ORDER_LIFETIME)) != ACLM_OK) {
		aclm_store_rollback(c->st);
		goto out;
	}
	if ((rc = aclm_store_commit(c->st)) != ACLM_OK)
		goto out;
	{
		struct aclm_ca_acme_obj o;
		if ((rc = aclm_store_ca_acme_get(c->st, c->req->ca, "order", ref, &o)) != ACLM_OK)
			goto out;
		order_refresh(c, &o, body);
		url_of(c, "order", ref, url, sizeof(url));
		aclm_strlcpy(c->res->location, url, sizeof(c->res->location));
		rc = reply_json(c->res, 201, order_view(c, &o, body));
		aclm_ca_acme_obj_free(&o);
	}
out:
	json_decref(authzs);
	json_decref(idents);
	json_decref(body);
	return rc;
}

static int do_order(struct ctx *c, const char *ref, const char *sub)
{
	struct aclm_ca_acme_obj o;
	json_t *b = NULL;
	int rc = aclm_store_ca_acme_get(c->st, c->req->ca, "order", ref, &o);

	if (rc == ACLM_ERR_NOTFOUND)
		return problem(c->res, 404, "malformed", "no order %s", ref);
	if (rc != ACLM_OK)
		return rc;
	if (o.account_ref == NULL || strcmp(o.account_ref, c->account.ref) != 0) {
		rc = problem(c->res, 403, "unauthorized", "order %s belongs to another account", ref);
		goto out;
	}
	b = json_loads(o.body, 0, NULL);
	if ((rc = order_refresh(c, &o, b)) != ACLM_OK)
		goto out;
	if (sub != NULL && strcmp(sub, "finalize") == 0) {
		struct aclm_ca_issue_req ir;
		struct aclm_ca_issue_res res;
		const char *csr_b64 = c->jws.payload ? json_string_value(json_object_get(c->jws.payload,
		                                                                         "csr")) : NULL;
		unsigned char *csr = NULL;
		size_t csr_len = 0, i, n = 0;
		const char *expect[MAX_IDENTIFIERS];
		char exp_buf[MAX_IDENTIFIERS][300];
		json_t *id;

		if (strcmp(o.status, "ready") != 0) {
			rc = problem(c->res, 403, "orderNotReady", "order %s is %s", ref, o.status);
			goto out;
		}
		if (csr_b64 == NULL || ca_b64url_decode(csr_b64, strlen(csr_b64), &csr, &csr_len) != ACLM_OK) {
			rc = problem(c->res, 400, "malformed", "finalize needs 'csr' (base64url DER)");
			goto out;
		}
		json_array_foreach(json_object_get(b, "identifiers"), i, id) {
			if (n == MAX_IDENTIFIERS)
				break;
			snprintf(exp_buf[n], sizeof(exp_buf[n]), "%s:%s",
			         json_string_value(json_object_get(id, "type")),
			         json_string_value(json_object_get(id, "value")));
			expect[n] = exp_buf[n];
			n++;
		}
		memset(&ir, 0, sizeof(ir));
		ir.ca = c->req->ca;
		ir.csr = csr;
		ir.csr_len = csr_len;
		ir.profile = json_string_value(json_object_get(b, "profile"));
		ir.policy = &c->a->o.policy;
		{
			/* CRL / OCSP at the CA's own base: https://host:port */
			char base[600];
			const char *acme = strstr(c->req->base, "/acme/");
			if (c->a->o.cert_base_url != NULL)
				aclm_strlcpy(base, c->a->o.cert_base_url, sizeof(base));
			else
				snprintf(base, sizeof(base), "%.*s",
				         acme ? (int)(acme - c->req->base) : (int)strlen(c->req->base),
				         c->req->base);
			ir.base_url = base;
			ir.account_ref = c->account.ref;
			ir.expect = expect;
			ir.n_expect = n;
			rc = aclm_ca_issue(c->st, c->a->o.kek, &ir, &res);
		}
		free(csr);
		if (rc != ACLM_OK) {
			const char *pt = res.problem != NULL ? res.problem : "serverInternal";
			if (strcmp(pt, "serverInternal") == 0) {
				aclm_err("ACME finalize of order %s: %s", ref, aclm_errmsg());
				rc = problem(c->res, 500, pt, "the certificate could not be issued");
			} else {
				rc = problem(c->res, 400, pt, "%s", aclm_errmsg());
			}
			goto out;
		}
		json_object_set_new(b, "certificate", json_string(res.serial));
		aclm_ca_issue_res_free(&res);
		if ((rc = update_obj(c->st, o.ref, "valid", b, 0)) != ACLM_OK)
			goto out;
		free(o.status);
		o.status = aclm_strdup("valid");
	}
	url_of(c, "order", o.ref, c->res->location, sizeof(c->res->location));
	if (strcmp(o.status, "pending") == 0 || strcmp(o.status, "processing") == 0)
		c->res->retry_after = 1;
	rc = reply_json(c->res, 200, order_view(c, &o, b));
out:
	json_decref(b);
	aclm_ca_acme_obj_free(&o);
	return rc;
}

static int do_cert(struct ctx *c, const char *serial)
{
	struct aclm_ca_issued_row r;
	unsigned char *der = NULL;
	size_t der_len = 0;
	char *chain = NULL, *leaf = NULL;
	size_t chain_len = 0, leaf_len = 0;
	enum aclm_ca_algo algo;
	int rc;

	if (strlen(serial) > 64 || aclm_store_ca_issued_get(c->st, c->req->ca, serial, &r) != ACLM_OK)
		return problem(c->res, 404, "malformed", "no certificate %.64s", serial);
	if (r.account_ref == NULL || strcmp(r.account_ref, c->account.ref) != 0) {
		aclm_ca_issued_row_free(&r);
		return problem(c->res, 403, "unauthorized", "certificate %s belongs to another "
		               "account", serial);
	}
	if ((rc = aclm_ca_algo_parse(r.algo, &algo)) != ACLM_OK ||
	    (rc = aclm_store_get_cert_der(c->st, r.cert_id, &der, &der_len)) != ACLM_OK ||
	    (rc = aclm_pem_encode_cert(der, der_len, &leaf, &leaf_len)) != ACLM_OK ||
	    (rc = aclm_ca_chain_pem(c->st, c->req->ca, algo, false, &chain, &chain_len)) != ACLM_OK)
		goto out;
	free(c->res->body);
	c->res->body = malloc(leaf_len + chain_len + 1);
	if (c->res->body == NULL) {
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
		goto out;
	}
	memcpy(c->res->body, leaf, leaf_len);
	memcpy(c->res->body + leaf_len, chain, chain_len);
	c->res->body[leaf_len + chain_len] = '\0';
	c->res->body_len = leaf_len + chain_len;
	c->res->status = 200;
	c->res->content_type = "application/pem-certificate-chain";
out:
	free(der);
	free(leaf);
	free(chain);
	aclm_ca_issued_row_free(&r);
	return rc;
}

static int do_revoke(struct ctx *c)
{
	const char *b64 = c->jws.payload ? json_string_value(json_object_get(c->jws.payload,
	                                                                     "certificate")) : NULL;
	json_t *reason_j = c->jws.payload ? json_object_get(c->jws.payload, "reason") : NULL;
	unsigned char *der = NULL;
	size_t der_len = 0;
	struct aclm_cert *cert = NULL;
	struct aclm_ca_issued_row r;
	bool have_row = false;
	int reason = 0, rc;

	if (b64 == NULL || ca_b64url_decode(b64, strlen(b64), &der, &der_len) != ACLM_OK ||
	    aclm_cert_parse_der(der, der_len, &cert) != ACLM_OK) {
		rc = problem(c->res, 400, "malformed", "revokeCert needs 'certificate' (base64url DER)");
		goto out;
	}
	if (reason_j != NULL) {
		json_int_t v = json_integer_value(reason_j);
		if (!json_is_integer(reason_j) || v < 0 || v > 10 || v == 7 || v == 8) {
			rc = problem(c->res, 400, "badRevocationReason", "reason must be 0-6, 9 or 10");
			goto out;
		}
		reason = (int)v;
	}
	if (aclm_store_ca_issued_get(c->st, c->req->ca, cert->serial_hex, &r) != ACLM_OK) {
		rc = problem(c->res, 404, "malformed", "this CA issued no certificate with serial %s",
		             cert->serial_hex);
		goto out;
	}
	have_row = true;
	{
		/* The stored DER must be this very certificate. */
		unsigned char *mine = NULL;
		size_t mine_len = 0;
		bool same = aclm_store_get_cert_der(c->st, r.cert_id, &mine, &mine_len) == ACLM_OK &&
		            mine_len == der_len && memcmp(mine, der, der_len) == 0;
		free(mine);
		if (!same) {
			rc = problem(c->res, 404, "malformed", "certificate does not match serial %s",
			             cert->serial_hex);
			goto out;
		}
	}
	if (c->has_account) {
		if (r.account_ref == NULL || strcmp(r.account_ref, c->account.ref) != 0) {
			rc = problem(c->res, 403, "unauthorized", "the account did not order this "
			             "certificate");
			goto out;
		}
	} else {
		/* Signed by the certificate's own key: the JWK must be its public key. */
		EVP_PKEY *pk = NULL;
		unsigned char *spki = NULL;
		unsigned char md[32];
		unsigned int md_len = 0;
		char hex[65];
		int n;
		if (ca_jwk_to_pkey(c->jws.jwk, &pk) != ACLM_OK) {
			rc = problem(c->res, 400, "badPublicKey", "%s", aclm_errmsg());
			goto out;
		}
		n = i2d_PUBKEY(pk, &spki);
		EVP_PKEY_free(pk);
		if (n <= 0 || EVP_Digest(spki, (size_t)n, md, &md_len, EVP_sha256(), NULL) != 1) {
			OPENSSL_free(spki);
			rc = aclm_error(ACLM_ERR_CRYPTO, "JWK SPKI");
			goto out;
		}
		OPENSSL_free(spki);
		aclm_hex_encode(md, 32, hex);
		if (strcmp(hex, cert->spki_hex) != 0) {
			rc = problem(c->res, 403, "unauthorized", "the JWK is not the certificate's key");
			goto out;
		}
	}
	if (r.revoked_at != 0) {
		rc = problem(c->res, 400, "alreadyRevoked", "certificate %s is revoked already",
		             r.serial);
		goto out;
	}
	if ((rc = aclm_ca_revoke(c->st, c->req->ca, r.serial, reason)) != ACLM_OK)
		goto out;
	c->res->status = 200;
	c->res->content_type = NULL;
out:
	if (have_row)
		aclm_ca_issued_row_free(&r);
	aclm_cert_free(cert);
	free(der);
	return rc;
}

/* --- the entry point --------------------------------------------------------------- */

/* "/order/ABC/finalize" -> op "order", id "ABC", sub "finalize". */
static void split_path(const char *path, char *op, char *id, char *sub, size_t n)
{
	const char *p = path[0] == '/' ? path + 1 : path;
	char *outs[3] = { op, id, sub };

	op[0] = id[0] = sub[0] = '\0';
	for (int i = 0; i < 3 && *p != '\0'; i++) {
		const char *e = strchr(p, '/');
		size_t len = e != NULL ? (size_t)(e - p) : strlen(p);
		if (len >= n)
			len = n - 1;
		memcpy(outs[i], p, len);
		outs[i][len] = '\0';
		p = e != NULL ? e + 1 : p + strlen(p);
	}
}

int aclm_ca_acme_handle(struct aclm_ca_acme *a, struct aclm_store *st,
                        const struct aclm_ca_acme_req *req, struct aclm_ca_acme_res *res)
{
	struct ctx c;
	char op[64], id[80], sub[64];
	bool is_post = strcmp(req->method, "POST") == 0;
	bool exists = false;
	int rc;

	memset(res, 0, sizeof(*res));
	memset(&c, 0, sizeof(c));
	c.a = a;
	c.st = st;
	c.req = req;
	c.res = res;
	snprintf(c.url, sizeof(c.url), "%s%s", req->base, req->path);
	split_path(req->path, op, id, sub, sizeof(op));
	if ((rc = aclm_ca_exists(st, req->ca, &exists)) != ACLM_OK)
		return rc;
	new_nonce(a, res->nonce);
	if (!exists)
		return problem(res, 404, "malformed", "no CA named '%.40s'", req->ca);
	{
		char index[600];
		snprintf(index, sizeof(index), "%s/directory", req->base);
		if (strcmp(op, "directory") != 0)
			add_link(res, index, "index");
	}
	if (strcmp(op, "directory") == 0 && id[0] == '\0' && !is_post) {
		res->nonce[0] = '\0';
		return do_directory(&c);
	}
	if (strcmp(op, "new-nonce") == 0 && id[0] == '\0' && !is_post) {
		res->status = strcmp(req->method, "HEAD") == 0 ? 200 : 204;
		return ACLM_OK;
	}
	if (strcmp(op, "renewal-info") == 0 && !is_post)
		return do_renewal_info(&c, id);
	if (!is_post)
		return problem(res, 405, "malformed", "%s needs POST (POST-as-GET for reading)",
		               req->path);
	if (ends_with_op(op, "new-account") && id[0] == '\0')
		rc = check_jws(&c, true, true);
	else if (ends_with_op(op, "revoke-cert") && id[0] == '\0')
		rc = check_jws(&c, true, false);
	else
		rc = check_jws(&c, false, false);
	if (rc != 0)
		goto out;
	if (strcmp(op, "new-account") == 0 && id[0] == '\0')
		rc = do_new_account(&c);
	else if (strcmp(op, "revoke-cert") == 0 && id[0] == '\0')
		rc = do_revoke(&c);
	else if (strcmp(op, "key-change") == 0 && id[0] == '\0')
		rc = do_key_change(&c);
	else if (strcmp(op, "new-order") == 0 && id[0] == '\0')
		rc = do_new_order(&c);
	else if (strcmp(op, "acct") == 0 && id[0] != '\0' && (sub[0] == '\0' || strcmp(sub, "orders") == 0))
		rc = do_account(&c, id, sub[0] ? sub : NULL);
	else if (strcmp(op, "order") == 0 && id[0] != '\0' && (sub[0] == '\0' || strcmp(sub, "finalize") == 0))
		rc = do_order(&c, id, sub[0] ? sub : NULL);
	else if (strcmp(op, "authz") == 0 && id[0] != '\0' && sub[0] == '\0')
		rc = do_authz(&c, id);
	else if (strcmp(op, "chall") == 0 && id[0] != '\0' && sub[0] == '\0')
		rc = do_challenge(&c, id);
	else if (strcmp(op, "cert") == 0 && id[0] != '\0' && sub[0] == '\0')
		rc = do_cert(&c, id);
	else
		rc = problem(res, 404, "malformed", "no such resource %.200s", req->path);
out:
	if (rc > 0)
		rc = ACLM_OK;
	if (rc != ACLM_OK) {
		aclm_err("ACME %s %s: %s", req->method, req->path, aclm_errmsg());
		problem(res, 500, "serverInternal", "internal error");
	}
	ca_jws_free(&c.jws);
	json_decref(c.account_body);
	aclm_ca_acme_obj_free(&c.account);
	return ACLM_OK;
}

/* --- validations -------------------------------------------------------------------- */

size_t aclm_ca_acme_take(struct aclm_ca_acme *a, struct aclm_ca_acme_validation *out, size_t max)
{
	size_t n = a->n_queue < max ? a->n_queue : max;

	memcpy(out, a->queue, n * sizeof(*out));
	memmove(a->queue, a->queue + n, (a->n_queue - n) * sizeof(*a->queue));
	a->n_queue -= n;
	return n;
}

int aclm_ca_acme_validation_done(struct aclm_ca_acme *a, struct aclm_store *st,
                                 const struct aclm_ca_acme_validation *v)
{
	struct aclm_ca_acme_obj ch, az;
	json_t *cb = NULL, *ab = NULL;
	int64_t now = aclm_now();
	int rc;

	(void)a;
	memset(&az, 0, sizeof(az));
	if ((rc = aclm_store_ca_acme_find_ref(st, "challenge", v->challenge, &ch)) != ACLM_OK)
		return rc;
	if (strcmp(ch.status, "processing") != 0)
		goto out;
	cb = json_loads(ch.body, 0, NULL);
	if ((rc = aclm_store_ca_acme_get(st, ch.ca, "authz",
	                                 json_string_value(json_object_get(cb, "authz")), &az)) != ACLM_OK)
		goto out;
	ab = json_loads(az.body, 0, NULL);
	if ((rc = aclm_store_begin(st)) != ACLM_OK)
		goto out;
	if (v->ok) {
		rc = update_obj(st, ch.ref, "valid", cb, 0);
		if (rc == ACLM_OK && strcmp(az.status, "pending") == 0)
			rc = update_obj(st, az.ref, "valid", ab, now + a->o.authz_reuse);
	} else {
		char urn[96];
		snprintf(urn, sizeof(urn), "urn:ietf:params:acme:error:%s", v->problem);
		json_object_set_new(cb, "error", json_pack("{s:s, s:s, s:i}", "type", urn, "detail",
		                                           v->error, "status", 403));
		rc = update_obj(st, ch.ref, "invalid", cb, 0);
		if (rc == ACLM_OK && strcmp(az.status, "pending") == 0)
			rc = update_obj(st, az.ref, "invalid", ab, 0);
	}
	rc = rc == ACLM_OK ? aclm_store_commit(st) : (aclm_store_rollback(st), rc);
out:
	json_decref(cb);
	json_decref(ab);
	aclm_ca_acme_obj_free(&ch);
	aclm_ca_acme_obj_free(&az);
	return rc;
}

struct resume_ctx {
	struct aclm_ca_acme *a;
	struct aclm_store *st;
};

static int resume_fn(void *ctx, const struct aclm_ca_acme_obj *o)
{
	struct resume_ctx *r = ctx;
	struct aclm_ca_acme_obj az;
	struct ctx c;
	struct aclm_ca_acme_req req;
	json_t *cb = json_loads(o->body, 0, NULL), *ab;
	const char *thumb = json_string_value(json_object_get(cb, "thumbprint"));

	memset(&c, 0, sizeof(c));
	memset(&req, 0, sizeof(req));
	req.ca = o->ca;
	c.a = r->a;
	c.req = &req;
	if (thumb == NULL || aclm_store_ca_acme_get(r->st, o->ca, "authz",
	                                            json_string_value(json_object_get(cb, "authz")),
	                                            &az) != ACLM_OK) {
		json_decref(cb);
		return 0;
	}
	ab = json_loads(az.body, 0, NULL);
	queue_validation(&c, o, cb, ab, thumb);
	json_decref(ab);
	json_decref(cb);
	aclm_ca_acme_obj_free(&az);
	return 0;
}

int aclm_ca_acme_resume(struct aclm_ca_acme *a, struct aclm_store *st)
{
	struct resume_ctx r = { a, st };

	return aclm_store_ca_acme_list(st, "challenge", "processing", resume_fn, &r);
}
