/* The REST API under /api/v1: inventory, audit log, users and tokens,
 * and its own OpenAPI description. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "aclm/bundle.h"
#include "aclm/err.h"
#include "aclm/json.h"
#include "aclm/str.h"
#include "aclm/store_auth.h"
#include "aclm/store_jobs.h"
#include "aclm/store_json.h"
#include "aclm/timeutil.h"
#include "aclm/x509.h"
#include "server-int.h"

#define MAX_LIMIT 1000
#define DEFAULT_LIMIT 50

int server_reply_json(struct aclm_http_res *res, int status, json_t *body)
{
	int rc = aclm_http_reply_json(res, status, body);

	return rc == ACLM_OK ? status : rc;
}

int server_reply_error(struct aclm_http_res *res, int status, const char *error,
                       const char *detail)
{
	aclm_http_reply_error(res, status, error, "%s", detail);
	return status;
}

static int bad_request(struct aclm_http_res *res, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int bad_request(struct aclm_http_res *res, const char *fmt, ...)
{
	char detail[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	return server_reply_error(res, 400, "bad_request", detail);
}

/* A query integer in [lo, hi]; *ok false (and the answer sent) when bad. */
static int64_t query_int(struct aclm_http_req *req, struct aclm_http_res *res, const char *name,
                         int64_t def, int64_t lo, int64_t hi, bool *ok)
{
	const char *v = aclm_http_query_get(req, name);
	int64_t n;

	if (v == NULL)
		return def;
	if (aclm_parse_int64(v, &n) != ACLM_OK || n < lo || n > hi) {
		char detail[128];
		snprintf(detail, sizeof(detail), "query parameter %s: want an integer in %lld..%lld",
		         name, (long long)lo, (long long)hi);
		server_reply_error(res, 400, "bad_request", detail);
		*ok = false;
	}
	return n;
}

/* --- certificates ------------------------------------------------------- */

static const struct {
	const char *name;
	enum aclm_cert_sort sort;
} sorts[] = {
	{ "expiry", ACLM_SORT_NOT_AFTER }, { "not-before", ACLM_SORT_NOT_BEFORE },
	{ "subject", ACLM_SORT_SUBJECT }, { "issuer", ACLM_SORT_ISSUER },
	{ "key", ACLM_SORT_KEY }, { "id", ACLM_SORT_ID },
};

static int append_row(void *ctx, const struct aclm_cert_row *row)
{
	json_t *arr = ctx;

	return json_array_append_new(arr, aclm_cert_row_json(row, aclm_now())) == 0
	       ? ACLM_OK : aclm_error(ACLM_ERR_NOMEM, "out of memory");
}

/* The filters of `aclm list`, from the query string. */
static int cert_filter(struct aclm_http_req *req, struct aclm_http_res *res,
                       struct aclm_cert_filter *f)
{
	const char *v;
	bool ok = true;

	memset(f, 0, sizeof(*f));
	f->now = aclm_now();
	if ((v = aclm_http_query_get(req, "expiring")) != NULL &&
	    (aclm_parse_duration(v, &f->expiring_within) != ACLM_OK || f->expiring_within <= 0))
		return bad_request(res, "expiring: '%s' is not a duration (30d, 12h)", v);
	f->expired = aclm_http_query_get(req, "expired") != NULL;
	f->valid = aclm_http_query_get(req, "valid") != NULL;
	f->ca_only = aclm_http_query_get(req, "ca") != NULL;
	f->leaf_only = aclm_http_query_get(req, "leaf") != NULL;
	f->key_type = aclm_http_query_get(req, "key_type");
	f->issuer = aclm_http_query_get(req, "issuer");
	f->name = aclm_http_query_get(req, "name");
	f->level = aclm_http_query_get(req, "level");
	if (f->level != NULL && strcmp(f->level, "dv") != 0 && strcmp(f->level, "ov") != 0 &&
	    strcmp(f->level, "iv") != 0 && strcmp(f->level, "ev") != 0)
		return bad_request(res, "level: '%s' is not dv, ov, iv or ev", f->level);
	if ((v = aclm_http_query_get(req, "sort")) != NULL) {
		size_t i;
		if (*v == '-') {
			f->descending = true;
			v++;
		}
		for (i = 0; i < sizeof(sorts) / sizeof(sorts[0]); i++)
			if (strcmp(v, sorts[i].name) == 0)
				break;
		if (i == sizeof(sorts) / sizeof(sorts[0]))
			return bad_request(res, "sort: '%s' is not expiry, not-before, subject, issuer, "
			                   "key or id", v);
		f->sort = sorts[i].sort;
	}
	f->limit = query_int(req, res, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT, &ok);
	if (ok)
		f->offset = query_int(req, res, "offset", 0, 0, INT64_MAX / 2, &ok);
	return ok ? 0 : 400;
}

static int certs_list(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                      const struct principal *who)
{
	struct aclm_cert_filter f, count_f;
	json_t *items;
	int64_t total = 0;
	int rc;

	(void)who;
	if ((rc = cert_filter(req, res, &f)) != 0)
		return rc;
	count_f = f;
	count_f.limit = 0;
	count_f.offset = 0;
	if ((rc = aclm_store_count_certs(s->store, &count_f, &total)) != ACLM_OK)
		return rc;
	items = json_array();
	if ((rc = aclm_store_list_certs(s->store, &f, append_row, items)) != ACLM_OK) {
		json_decref(items);
		return rc;
	}
	return server_reply_json(res, 200, json_pack("{s:o,s:I,s:I,s:I}", "items", items, "total",
	                                             (json_int_t)total, "limit",
	                                             (json_int_t)f.limit, "offset",
	                                             (json_int_t)f.offset));
}

static int one_row(void *ctx, const struct aclm_cert_row *row)
{
	json_t **out = ctx;

	*out = aclm_cert_row_json(row, aclm_now());
	return ACLM_OK;
}

static int add_observation(void *ctx, const struct aclm_observation_row *o)
{
	json_array_append_new(ctx, json_pack("{s:s,s:o,s:o}", "source", o->source, "location",
	                                     aclm_json_str(o->location), "seen_at",
	                                     aclm_json_time(o->seen_at)));
	return ACLM_OK;
}

static int cert_show(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                     const struct principal *who)
{
	json_t *cert = NULL, *obs;
	int64_t id = 0;
	int rc;

	(void)who;
	if ((rc = aclm_store_find_cert(s->store, aclm_http_req_param(req, "id"), &id)) != ACLM_OK)
		return rc;
	if ((rc = aclm_store_get_cert(s->store, id, one_row, &cert)) != ACLM_OK)
		return rc;
	if (cert == NULL)
		return aclm_error(ACLM_ERR_NOTFOUND, "no certificate %lld", (long long)id);
	obs = json_array();
	if ((rc = aclm_store_list_observations(s->store, id, add_observation, obs)) != ACLM_OK) {
		json_decref(cert);
		json_decref(obs);
		return rc;
	}
	json_object_set_new(cert, "observations", obs);
	json_object_set_new(cert, "revocation", server_cert_revocation(s, id));
	return server_reply_json(res, 200, cert);
}

/* Other certificates with the same key: key reuse across sites shows. */
static int cert_same_key(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                         const struct principal *who)
{
	json_t *items;
	int64_t id = 0;
	int rc;

	(void)who;
	if ((rc = aclm_store_find_cert(s->store, aclm_http_req_param(req, "id"), &id)) != ACLM_OK)
		return rc;
	items = json_array();
	if ((rc = aclm_store_list_same_key(s->store, id, append_row, items)) != ACLM_OK) {
		json_decref(items);
		return rc;
	}
	return server_reply_json(res, 200, json_pack("{s:o}", "items", items));
}

static int cert_pem(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                    const struct principal *who)
{
	unsigned char *der = NULL;
	char *pem = NULL;
	size_t der_len = 0, pem_len = 0;
	int64_t id = 0;
	int rc;

	(void)who;
	if ((rc = aclm_store_find_cert(s->store, aclm_http_req_param(req, "id"), &id)) != ACLM_OK)
		return rc;
	if ((rc = aclm_store_get_cert_der(s->store, id, &der, &der_len)) != ACLM_OK)
		return rc;
	rc = aclm_pem_encode_cert(der, der_len, &pem, &pem_len);
	free(der);
	if (rc != ACLM_OK)
		return rc;
	rc = aclm_http_reply(res, 200, "application/pem-certificate-chain", pem, pem_len);
	free(pem);
	return rc == ACLM_OK ? 200 : rc;
}

/* POST a PEM/DER/PKCS#7 body: every certificate in it goes to the inventory
 * (private keys in an upload are refused: use `aclm import` on the host). */
static int certs_import(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                        const struct principal *who)
{
	struct aclm_bundle b;
	size_t len = 0;
	const unsigned char *body = aclm_http_req_body(req, &len);
	json_t *items, *problems;
	int rc;

	if (len == 0)
		return server_reply_error(res, 400, "bad_request", "empty body: send PEM, DER or "
		                          "PKCS#7 certificates");
	if ((rc = aclm_bundle_parse(body, len, NULL, &b)) != ACLM_OK)
		return server_reply_error(res, 400, "bad_request", aclm_errmsg());
	if (b.n_keys > 0) {
		aclm_bundle_free(&b);
		return server_reply_error(res, 400, "bad_request", "the upload holds a private key: "
		                          "keys are never accepted over the API");
	}
	if (b.n_certs == 0) {
		json_t *e = json_pack("{s:s,s:s}", "error", "bad_request", "detail",
		                      b.n_problems > 0 ? b.problems[0] : "no certificate found");
		aclm_bundle_free(&b);
		return server_reply_json(res, 400, e);
	}
	items = json_array();
	problems = json_array();
	if ((rc = aclm_store_begin(s->store)) != ACLM_OK)
		goto fail;
	for (size_t i = 0; i < b.n_certs; i++) {
		int64_t id = 0;
		bool is_new = false;
		if ((rc = aclm_store_put_cert(s->store, b.certs[i], &id, &is_new)) != ACLM_OK ||
		    (rc = aclm_store_add_observation(s->store, id, ACLM_SRC_IMPORT, who->actor,
		                                     aclm_now())) != ACLM_OK) {
			aclm_store_rollback(s->store);
			goto fail;
		}
		json_array_append_new(items, json_pack("{s:I,s:s,s:b}", "id", (json_int_t)id,
		                                       "fingerprint", b.certs[i]->fingerprint_hex,
		                                       "new", is_new));
	}
	for (size_t i = 0; i < b.n_problems; i++)
		json_array_append_new(problems, json_string(b.problems[i]));
	if ((rc = aclm_store_commit(s->store)) != ACLM_OK)
		goto fail;
	aclm_bundle_free(&b);
	return server_reply_json(res, 201, json_pack("{s:o,s:o}", "certificates", items,
	                                             "problems", problems));
fail:
	json_decref(items);
	json_decref(problems);
	aclm_bundle_free(&b);
	return rc;
}

/* --- audit -------------------------------------------------------------- */

static int append_event(void *ctx, const struct aclm_event_row *r)
{
	json_t *detail = r->detail != NULL ? json_loads(r->detail, 0, NULL) : NULL;

	json_array_append_new(ctx, json_pack("{s:I,s:o,s:o,s:o,s:o,s:o}", "id", (json_int_t)r->id,
	                                     "at", aclm_json_time(r->at), "type",
	                                     aclm_json_str(r->type), "subject",
	                                     aclm_json_str(r->subject), "detail",
	                                     detail != NULL ? detail : aclm_json_str(r->detail),
	                                     "hash", aclm_json_str(r->hash)));
	return ACLM_OK;
}

static int events_list(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                       const struct principal *who)
{
	const char *subject = aclm_http_query_get(req, "subject");
	bool ok = true;
	int64_t after = query_int(req, res, "after", 0, 0, INT64_MAX / 2, &ok);
	int64_t limit = ok ? query_int(req, res, "limit", 100, 1, MAX_LIMIT, &ok) : 0;
	int64_t since = 0;
	const char *v = aclm_http_query_get(req, "since");
	json_t *items;
	int rc;

	(void)who;
	if (!ok)
		return 400;
	if (v != NULL && aclm_time_parse_iso(v, &since) != ACLM_OK)
		return bad_request(res, "since: '%s' is not an ISO 8601 time", v);
	items = json_array();
	/* subject: the newest events about it (a certificate's history);
	 * otherwise the log from since/after, oldest first. */
	if (subject != NULL)
		rc = aclm_store_list_events_about(s->store, subject, limit, append_event, items);
	else
		rc = aclm_store_list_events(s->store, since, after, limit, append_event, items);
	if (rc != ACLM_OK) {
		json_decref(items);
		return rc;
	}
	return server_reply_json(res, 200, json_pack("{s:o}", "items", items));
}

static int add_issue(void *ctx, const struct aclm_audit_issue *is)
{
	static const char *const kinds[] = { "edited", "deleted", "reordered", "relinked" };

	json_array_append_new(ctx, json_pack("{s:s,s:I,s:I,s:I}", "problem", kinds[is->problem],
	                                     "id", (json_int_t)is->id, "last", (json_int_t)is->last,
	                                     "was", (json_int_t)is->was));
	return ACLM_OK;
}

static int audit_verify(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                        const struct principal *who)
{
	json_t *issues = json_array();
	int64_t n = 0, head = 0;
	char head_hash[65];
	int rc;

	(void)req;
	(void)who;
	if ((rc = aclm_store_audit_verify(s->store, add_issue, issues, &n, &head, head_hash)) !=
	    ACLM_OK) {
		json_decref(issues);
		return rc;
	}
	return server_reply_json(res, 200, json_pack("{s:I,s:b,s:I,s:s,s:o}", "events",
	                                             (json_int_t)n, "intact",
	                                             json_array_size(issues) == 0, "head_id",
	                                             (json_int_t)head, "head_hash", head_hash,
	                                             "problems", issues));
}

/* --- users and tokens --------------------------------------------------- */

static int append_user(void *ctx, const struct aclm_user *u)
{
	json_array_append_new(ctx, json_pack("{s:I,s:s,s:s,s:b,s:o}", "id", (json_int_t)u->id,
	                                     "name", u->name, "role", aclm_role_name(u->role),
	                                     "locked", u->locked_until > aclm_now(), "created_at",
	                                     aclm_json_time(u->created_at)));
	return ACLM_OK;
}

static int users_list(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                      const struct principal *who)
{
	json_t *items = json_array();
	int rc;

	(void)req;
	(void)who;
	if ((rc = aclm_store_user_list(s->store, append_user, items)) != ACLM_OK) {
		json_decref(items);
		return rc;
	}
	return server_reply_json(res, 200, json_pack("{s:o}", "items", items));
}

static json_t *body_json(struct aclm_http_req *req)
{
	size_t len = 0;
	const unsigned char *body = aclm_http_req_body(req, &len);

	return len > 0 ? json_loadb((const char *)body, len, 0, NULL) : NULL;
}

static int users_add(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                     const struct principal *who)
{
	json_t *j = body_json(req);
	const char *name = json_string_value(json_object_get(j, "name"));
	const char *password = json_string_value(json_object_get(j, "password"));
	const char *role = json_string_value(json_object_get(j, "role"));
	enum aclm_role r = aclm_role_parse(role != NULL ? role : "viewer");
	char *hash = NULL;
	int64_t id = 0;
	int rc;

	if (name == NULL || password == NULL) {
		json_decref(j);
		return server_reply_error(res, 400, "bad_request", "want {\"name\", \"password\", "
		                          "\"role\"}");
	}
	if (r == ACLM_ROLE_NONE) {
		json_decref(j);
		return server_reply_error(res, 400, "bad_request", "role: admin, operator, auditor "
		                          "or viewer");
	}
	rc = aclm_auth_hash_password(password, &hash);
	if (rc == ACLM_OK)
		rc = aclm_store_user_add(s->store, who->actor, name, hash, r, &id);
	free(hash);
	if (rc == ACLM_OK)
		rc = server_reply_json(res, 201, json_pack("{s:I,s:s,s:s}", "id", (json_int_t)id,
		                                           "name", name, "role", aclm_role_name(r)));
	json_decref(j);
	return rc;
}

static int users_del(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                     const struct principal *who)
{
	int rc = aclm_store_user_delete(s->store, who->actor, aclm_http_req_param(req, "name"));

	if (rc != ACLM_OK)
		return rc;
	return server_reply_json(res, 200, json_pack("{s:b}", "deleted", 1));
}

static int append_token(void *ctx, const struct aclm_token *t)
{
	int64_t now = aclm_now();
	const char *state = t->revoked_at ? "revoked"
	                    : (t->expires_at && t->expires_at <= now) ? "expired" : "valid";

	json_array_append_new(ctx, json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:o}", "id",
	                                     (json_int_t)t->id, "user", t->user, "name", t->name,
	                                     "lookup", t->lookup, "role", aclm_role_name(t->role),
	                                     "state", state, "expires_at",
	                                     t->expires_at ? aclm_json_time(t->expires_at)
	                                                   : json_null()));
	return ACLM_OK;
}

static int tokens_list(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                       const struct principal *who)
{
	json_t *items = json_array();
	int rc;

	(void)req;
	/* Everyone sees their own tokens; an admin sees all. */
	rc = aclm_store_token_list(s->store,
	                           aclm_role_allows(who->role, ACLM_PERM_ADMIN) ? 0 : who->user_id,
	                           append_token, items);
	if (rc != ACLM_OK) {
		json_decref(items);
		return rc;
	}
	return server_reply_json(res, 200, json_pack("{s:o}", "items", items));
}

static int tokens_create(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                         const struct principal *who)
{
	json_t *j = body_json(req);
	const char *name = json_string_value(json_object_get(j, "name"));
	const char *role = json_string_value(json_object_get(j, "role"));
	const char *expires = json_string_value(json_object_get(j, "expires"));
	enum aclm_role r = role != NULL ? aclm_role_parse(role) : who->role;
	char token[ACLM_TOKEN_MAX], lookup[ACLM_TOKEN_LOOKUP_LEN + 1], hash[65];
	int64_t ttl = 90 * 86400, id = 0;
	int rc;

	if (name == NULL || r == ACLM_ROLE_NONE ||
	    (expires != NULL && aclm_parse_duration(expires, &ttl) != ACLM_OK) || ttl <= 0) {
		json_decref(j);
		return server_reply_error(res, 400, "bad_request", "want {\"name\", optional \"role\", "
		                          "optional \"expires\": \"90d\"}");
	}
	if (r > who->role) {
		json_decref(j);
		return server_reply_error(res, 403, "forbidden", "a token cannot have more power "
		                          "than its creator");
	}
	rc = aclm_auth_token_new(token, lookup, hash);
	if (rc == ACLM_OK)
		rc = aclm_store_token_add(s->store, who->actor, who->user_id, name, lookup, hash, r,
		                          aclm_now() + ttl, &id);
	json_decref(j);
	if (rc != ACLM_OK) {
		OPENSSL_cleanse(token, sizeof(token));
		return rc;
	}
	aclm_http_header_add(res, "Cache-Control", "no-store");
	rc = server_reply_json(res, 201, json_pack("{s:I,s:s,s:s,s:s}", "id", (json_int_t)id,
	                                           "lookup", lookup, "token", token, "note",
	                                           "shown once: store it now"));
	OPENSSL_cleanse(token, sizeof(token));
	return rc;
}

static int tokens_revoke(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                         const struct principal *who)
{
	const char *ref = aclm_http_req_param(req, "id");
	struct aclm_token t;
	int rc;

	/* Only an admin revokes other people's tokens. */
	if ((rc = aclm_store_token_get(s->store, ref, &t)) != ACLM_OK)
		return rc;
	if (t.user_id != who->user_id && !aclm_role_allows(who->role, ACLM_PERM_ADMIN))
		return server_reply_error(res, 403, "forbidden", "not your token");
	if ((rc = aclm_store_token_revoke(s->store, who->actor, t.lookup)) != ACLM_OK)
		return rc;
	return server_reply_json(res, 200, json_pack("{s:b}", "revoked", 1));
}

/* --- scheduler jobs -------------------------------------------------------- */

static int append_job(void *ctx, const struct aclm_job *j)
{
	json_array_append_new(ctx, json_pack("{s:I,s:s,s:s,s:s,s:o,s:i,s:s?,s:o}", "id",
	                                     (json_int_t)j->id, "kind", j->kind, "subject",
	                                     j->subject, "state", j->state, "run_at",
	                                     aclm_json_time(j->run_at), "attempts", j->attempts,
	                                     "last_error", j->last_error[0] ? j->last_error : NULL,
	                                     "updated_at", aclm_json_time(j->updated_at)));
	return ACLM_OK;
}

static int jobs_list(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                     const struct principal *who)
{
	const char *state = aclm_http_query_get(req, "state");
	bool ok = true;
	int64_t limit = query_int(req, res, "limit", 100, 1, MAX_LIMIT, &ok);
	json_t *items;
	int rc;

	(void)who;
	if (!ok)
		return 400;
	if (state != NULL && strcmp(state, "pending") != 0 && strcmp(state, "running") != 0 &&
	    strcmp(state, "done") != 0 && strcmp(state, "failed") != 0)
		return bad_request(res, "state: '%s' is not pending, running, done or failed", state);
	items = json_array();
	if ((rc = aclm_store_job_list(s->store, state, limit, append_job, items)) != ACLM_OK) {
		json_decref(items);
		return rc;
	}
	return server_reply_json(res, 200, json_pack("{s:o}", "items", items));
}

/* --- the API's description and health ------------------------------------ */

static int openapi(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                   const struct principal *who)
{
	const struct api_route *const *routes;
	size_t n = server_routes(s, &routes);
	json_t *paths = json_object();

	(void)req;
	(void)who;
	for (size_t i = 0; i < n; i++) {
		const struct api_route *r = routes[i];
		char path[256], method[16];
		json_t *item, *op, *params;
		size_t o = 0;

		/* The API, not the dashboard's files. */
		if (strncmp(r->pattern, "/api/", 5) != 0 && strcmp(r->pattern, "/metrics") != 0 &&
		    strcmp(r->pattern, "/healthz") != 0)
			continue;
		params = json_array();

		/* "/x/:id" -> "/x/{id}" */
		for (const char *p = r->pattern; *p != '\0' && o + 3 < sizeof(path); p++) {
			if (*p == ':' && p[-1] == '/') {
				size_t len = strcspn(p + 1, "/");
				json_array_append_new(params, json_pack("{s:s#,s:s,s:b,s:{s:s}}", "name", p + 1,
				                      (int)len, "in", "path", "required", 1, "schema",
				                      "type", "string"));
				o += (size_t)snprintf(path + o, sizeof(path) - o, "{%.*s}", (int)len, p + 1);
				p += len;
			} else {
				path[o++] = *p;
			}
		}
		path[o] = '\0';
		for (size_t k = 0; k < sizeof(method) - 1 && r->method[k] != '\0'; k++) {
			method[k] = (char)(r->method[k] | 0x20);
			method[k + 1] = '\0';
		}
		item = json_object_get(paths, path);
		if (item == NULL) {
			item = json_object();
			json_object_set_new(paths, path, item);
		}
		op = json_pack("{s:s,s:o,s:{s:{s:s}}}", "summary", r->summary, "parameters", params,
		               "responses", "200", "description", "OK");
		if (r->access == ACCESS_PUBLIC)
			json_object_set_new(op, "security", json_array());
		else
			json_object_set_new(op, "x-aclm-permission",
			                    json_string(r->access == ACCESS_LOGGED_IN ? "logged-in" :
			                                r->perm == ACLM_PERM_READ_INVENTORY ? "read-inventory" :
			                                r->perm == ACLM_PERM_READ_ALL ? "read-all" :
			                                r->perm == ACLM_PERM_WRITE ? "write" : "admin"));
		json_object_set_new(item, method, op);
	}
	return server_reply_json(res, 200, json_pack(
		"{s:s,s:{s:s,s:s},s:o,s:{s:{s:{s:s,s:s},s:{s:s,s:s,s:s}}},s:[{s:[]},{s:[]}]}",
		"openapi", "3.0.3", "info", "title", "aclm", "version", ACLM_VERSION, "paths", paths,
		"components", "securitySchemes", "bearer", "type", "http", "scheme", "bearer",
		"session", "type", "apiKey", "in", "cookie", "name", "aclm_session",
		"security", "bearer", "session"));
}

static int healthz(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                   const struct principal *who)
{
	int version = 0;

	(void)req;
	(void)who;
	if (aclm_store_schema_version(s->store, &version) != ACLM_OK)
		return server_reply_json(res, 503, json_pack("{s:s,s:s}", "status", "unavailable",
		                                             "detail", "database not reachable"));
	return server_reply_json(res, 200, json_pack("{s:s,s:i}", "status", "ok", "schema",
	                                             version));
}

const struct api_route server_api_routes[] = {
	{ "GET", "/api/v1/certificates", ACCESS_PERM, ACLM_PERM_READ_INVENTORY, certs_list,
	  "certificates, filtered as `aclm list` (expiring, expired, valid, key_type, issuer, "
	  "name, level, ca, leaf, sort, limit, offset)" },
	{ "POST", "/api/v1/certificates", ACCESS_PERM, ACLM_PERM_WRITE, certs_import,
	  "import PEM, DER or PKCS#7 certificates from the body" },
	{ "GET", "/api/v1/certificates/:id", ACCESS_PERM, ACLM_PERM_READ_INVENTORY, cert_show,
	  "one certificate by id or fingerprint, with where it was seen" },
	{ "GET", "/api/v1/certificates/:id/pem", ACCESS_PERM, ACLM_PERM_READ_INVENTORY, cert_pem,
	  "the certificate as PEM" },
	{ "GET", "/api/v1/certificates/:id/same-key", ACCESS_PERM, ACLM_PERM_READ_INVENTORY,
	  cert_same_key, "other certificates with the same key (SPKI)" },
	{ "GET", "/api/v1/events", ACCESS_PERM, ACLM_PERM_READ_ALL, events_list,
	  "the audit log, oldest first (since, after, limit); or the newest about one subject "
	  "(subject=FINGERPRINT, limit)" },
	{ "GET", "/api/v1/audit/verify", ACCESS_PERM, ACLM_PERM_READ_ALL, audit_verify,
	  "recompute the audit log's hash chain" },
	{ "GET", "/api/v1/jobs", ACCESS_PERM, ACLM_PERM_READ_ALL, jobs_list,
	  "the scheduler's jobs, newest first (state, limit)" },
	{ "GET", "/api/v1/users", ACCESS_PERM, ACLM_PERM_ADMIN, users_list, "users" },
	{ "POST", "/api/v1/users", ACCESS_PERM, ACLM_PERM_ADMIN, users_add,
	  "add a user {name, password, role}" },
	{ "DELETE", "/api/v1/users/:name", ACCESS_PERM, ACLM_PERM_ADMIN, users_del,
	  "delete a user, with their tokens and sessions" },
	{ "GET", "/api/v1/tokens", ACCESS_LOGGED_IN, 0, tokens_list,
	  "API tokens: your own, or all for an admin" },
	{ "POST", "/api/v1/tokens", ACCESS_LOGGED_IN, 0, tokens_create,
	  "create an API token {name, role, expires}; shown once" },
	{ "DELETE", "/api/v1/tokens/:id", ACCESS_LOGGED_IN, 0, tokens_revoke,
	  "revoke a token by its lookup" },
	{ "GET", "/api/v1/openapi.json", ACCESS_PUBLIC, 0, openapi, "this document" },
	{ "GET", "/healthz", ACCESS_PUBLIC, 0, healthz, "liveness and database reachability" },
};
const size_t server_n_api_routes = sizeof(server_api_routes) / sizeof(server_api_routes[0]);
