/* The policy API: policies, the compliance of the inventory, and reports
 * (src/policy; docs/internals/policy.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aclm/buf.h"
#include "aclm/err.h"
#include "aclm/json.h"
#include "aclm/policy.h"
#include "aclm/store_policy.h"
#include "aclm/str.h"
#include "aclm/timeutil.h"
#include "server-int.h"

/* Under the engine's response limit (64 MiB): larger reports are for the
 * CLI (aclm report --out). */
#define API_REPORT_MAX ((size_t)60 << 20)

static bool query_flag(struct aclm_http_req *req, const char *name)
{
	const char *v = aclm_http_query_get(req, name);
	bool b = false;

	if (v == NULL)
		return false;
	return *v == '\0' || (aclm_parse_bool(v, &b) == ACLM_OK && b);
}

static int list_one(void *ctx, const struct aclm_policy_rec *r)
{
	json_t *doc = json_loads(r->body, 0, NULL), *rules = json_object_get(doc, "rules");

	rules = rules != NULL ? json_incref(rules) : json_object();
	json_array_append_new(ctx, json_pack("{s:s,s:b,s:b,s:o,s:o,s:o,s:o}", "name", r->name,
	                                     "builtin", 0, "default", r->is_default,
	                                     "description",
	                                     aclm_json_str(json_string_value(
	                                             json_object_get(doc, "description"))),
	                                     "rules", rules,
	                                     "created_at", aclm_json_time(r->created_at),
	                                     "updated_at", aclm_json_time(r->updated_at)));
	json_decref(doc);
	return ACLM_OK;
}

static int policies_list(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                         const struct principal *who)
{
	struct aclm_policy *b = NULL;
	json_t *items, *doc;
	char *def = NULL;
	int rc;

	(void)req;
	(void)who;
	if ((rc = aclm_store_policy_default(s->store, &def)) != ACLM_OK ||
	    (rc = aclm_policy_builtin(&b)) != ACLM_OK) {
		free(def);
		return rc;
	}
	doc = aclm_policy_json(b);
	items = json_array();
	json_array_append_new(items, json_pack("{s:s,s:b,s:b,s:O,s:O,s:n,s:n}", "name",
	                                       ACLM_POLICY_BUILTIN, "builtin", 1, "default",
	                                       def == NULL, "description",
	                                       json_object_get(doc, "description"), "rules",
	                                       json_object_get(doc, "rules"), "created_at",
	                                       "updated_at"));
	json_decref(doc);
	aclm_policy_free(b);
	free(def);
	if ((rc = aclm_store_policy_list(s->store, list_one, items)) != ACLM_OK) {
		json_decref(items);
		return rc;
	}
	return server_reply_json(res, 200, json_pack("{s:o}", "items", items));
}

static int policy_show(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                       const struct principal *who)
{
	const char *name = aclm_http_req_param(req, "name");
	struct aclm_policy *p = NULL;
	char *def = NULL;
	json_t *doc;
	int rc;

	(void)who;
	if ((rc = aclm_policy_load(s->store, name, &p)) != ACLM_OK)
		return rc;
	if ((rc = aclm_store_policy_default(s->store, &def)) != ACLM_OK) {
		aclm_policy_free(p);
		return rc;
	}
	doc = aclm_policy_json(p);
	json_object_set_new(doc, "builtin", json_boolean(strcmp(name, ACLM_POLICY_BUILTIN) == 0));
	json_object_set_new(doc, "default", json_boolean(def != NULL ? strcmp(def, name) == 0
	                                                 : strcmp(name, ACLM_POLICY_BUILTIN) == 0));
	free(def);
	aclm_policy_free(p);
	return server_reply_json(res, 200, doc);
}

/* Body: a policy as JSON (or YAML); ?replace=1 to change an existing one,
 * ?default=1 to make it the default. */
static int policy_add(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                      const struct principal *who)
{
	size_t len = 0;
	const unsigned char *body = aclm_http_req_body(req, &len);
	bool replace = query_flag(req, "replace"), make_default = query_flag(req, "default");
	struct aclm_policy *p = NULL;
	char *text = NULL;
	json_t *doc;
	int rc;

	if (len == 0)
		return server_reply_error(res, 400, "bad_request", "empty body: send a policy "
		                          "{\"name\", \"description\", \"rules\"}");
	if (aclm_policy_parse((const char *)body, len, "request body", &p) != ACLM_OK)
		return server_reply_error(res, 400, "bad_request", aclm_errmsg());
	doc = aclm_policy_json(p);
	text = doc != NULL ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	if (text == NULL)
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
	else
		rc = aclm_store_policy_put(s->store, who->actor, aclm_policy_name(p), text, replace);
	if (rc == ACLM_OK && make_default)
		rc = aclm_store_policy_set_default(s->store, who->actor, aclm_policy_name(p));
	free(text);
	aclm_policy_free(p);
	if (rc != ACLM_OK) {
		json_decref(doc);
		return rc;
	}
	json_object_set_new(doc, "default", json_boolean(make_default));
	return server_reply_json(res, replace ? 200 : 201, doc);
}

static int policy_del(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                      const struct principal *who)
{
	const char *name = aclm_http_req_param(req, "name");
	int rc;

	if (strcmp(name, ACLM_POLICY_BUILTIN) == 0)
		return server_reply_error(res, 400, "bad_request", "the built-in policy cannot be "
		                          "deleted");
	if ((rc = aclm_store_policy_delete(s->store, who->actor, name)) != ACLM_OK)
		return rc;
	return server_reply_json(res, 200, json_pack("{s:b}", "deleted", 1));
}

static int policy_default(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                          const struct principal *who)
{
	const char *name = aclm_http_req_param(req, "name");
	int rc;

	rc = aclm_store_policy_set_default(s->store, who->actor,
	                                   strcmp(name, ACLM_POLICY_BUILTIN) == 0 ? NULL : name);
	if (rc != ACLM_OK)
		return rc;
	return server_reply_json(res, 200, json_pack("{s:s}", "default", name));
}

/* The last evaluation, reused while the inventory's generation
 * (aclm_store_policy_generation), the policy's text and the minute stay
 * the same: an evaluation of 100,000 certificates takes about a second and
 * the dashboard asks for it on every overview.  Handlers run on the
 * server's one loop thread; nothing else touches this. */
static struct {
	bool valid;
	char key[256];
	char *policy_text;
	struct aclm_policy_result res;
} cache;

static int evaluate_cached(struct server *s, const struct aclm_policy *p,
                           const struct aclm_policy_result **out)
{
	char gen[200], key[256];
	json_t *doc = aclm_policy_json(p);
	char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	int64_t now = aclm_now();
	int rc;

	json_decref(doc);
	if (text == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	if ((rc = aclm_store_policy_generation(s->store, gen, sizeof(gen))) != ACLM_OK) {
		free(text);
		return rc;
	}
	snprintf(key, sizeof(key), "%s/%lld", gen, (long long)(now / 60));
	if (cache.valid && strcmp(cache.key, key) == 0 && strcmp(cache.policy_text, text) == 0) {
		free(text);
		*out = &cache.res;
		return ACLM_OK;
	}
	if (cache.valid) {
		aclm_policy_result_free(&cache.res);
		free(cache.policy_text);
		cache.valid = false;
	}
	if ((rc = aclm_policy_evaluate(s->store, p, now, &cache.res)) != ACLM_OK) {
		free(text);
		return rc;
	}
	snprintf(cache.key, sizeof(cache.key), "%s", key);
	cache.policy_text = text;
	cache.valid = true;
	*out = &cache.res;
	return ACLM_OK;
}

/* ?policy=NAME (default: the default policy), ?violating=1 (only subjects
 * with violations), ?rule=RULE (only those violating it), ?kind=certificate|
 * endpoint|site, ?limit (default 100, at most 1000), ?offset. */
static int compliance(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                      const struct principal *who)
{
	const char *lv = aclm_http_query_get(req, "limit"), *ov = aclm_http_query_get(req, "offset");
	int64_t limit = 100, offset = 0;
	struct aclm_policy *p = NULL;
	const struct aclm_policy_result *r = NULL;
	struct aclm_policy_filter f = { .kind = -1 };
	const char *rule = aclm_http_query_get(req, "rule"), *kind = aclm_http_query_get(req, "kind");
	json_t *out;
	int rc;

	(void)who;
	if ((lv != NULL && (aclm_parse_int64(lv, &limit) != ACLM_OK || limit < 1 || limit > 1000)) ||
	    (ov != NULL && (aclm_parse_int64(ov, &offset) != ACLM_OK || offset < 0)))
		return server_reply_error(res, 400, "bad_request", "limit: 1..1000, offset: >= 0");
	f.violating_only = query_flag(req, "violating");
	if (rule != NULL && (f.rule = aclm_policy_rule_name(rule)) == NULL)
		return server_reply_error(res, 400, "bad_request", "rule: not a rule name (key-type, "
		                          "key-size, key-curve, signature-algorithm, max-validity, "
		                          "issuer, san-pattern, wildcard, one-site-one-key, "
		                          "dual-certificate, pq-key-exchange)");
	if (kind != NULL) {
		for (f.kind = 0; f.kind < 3; f.kind++)
			if (strcmp(kind, aclm_subject_kind_name((enum aclm_subject_kind)f.kind)) == 0)
				break;
		if (f.kind == 3)
			return server_reply_error(res, 400, "bad_request", "kind: certificate, endpoint "
			                          "or site");
	}
	if ((rc = aclm_policy_load(s->store, aclm_http_query_get(req, "policy"), &p)) != ACLM_OK)
		return rc;
	rc = evaluate_cached(s, p, &r);
	aclm_policy_free(p);
	if (rc != ACLM_OK)
		return rc;
	out = aclm_policy_result_items_json(r, &f, (size_t)offset, (size_t)limit);
	json_object_set_new(out, "limit", json_integer(limit));
	return server_reply_json(res, 200, out);
}

static int report(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                  const struct principal *who)
{
	const char *fv = aclm_http_query_get(req, "format"), *pv = aclm_http_query_get(req, "policy");
	enum aclm_report_format fmt = ACLM_REPORT_JSON;
	enum aclm_report_lang lang = ACLM_REPORT_EN;
	const char *lv = aclm_http_query_get(req, "lang");
	enum aclm_report_kind kind;
	struct aclm_policy *p = NULL;
	struct aclm_buf b;
	char disp[96];
	int rc;

	(void)who;
	if (aclm_report_kind_parse(aclm_http_req_param(req, "kind"), &kind) != ACLM_OK)
		return server_reply_error(res, 404, "not_found", aclm_errmsg());
	if (fv != NULL && aclm_report_format_parse(fv, &fmt) != ACLM_OK)
		return server_reply_error(res, 400, "bad_request", aclm_errmsg());
	if (lv != NULL && aclm_report_lang_parse(lv, &lang) != ACLM_OK)
		return server_reply_error(res, 400, "bad_request", aclm_errmsg());
	if (kind == ACLM_REPORT_COMPLIANCE && (rc = aclm_policy_load(s->store, pv, &p)) != ACLM_OK)
		return rc;
	aclm_buf_init(&b, API_REPORT_MAX);
	rc = aclm_report_render_lang(s->store, kind, fmt, lang, p, aclm_now(), &b);
	aclm_policy_free(p);
	if (rc == ACLM_ERR_TOOBIG) {
		aclm_buf_free(&b);
		return server_reply_error(res, 413, "too_large", "the report is larger than the API "
		                          "answers: use aclm report --out FILE");
	}
	if (rc != ACLM_OK) {
		aclm_buf_free(&b);
		return rc;
	}
	if (fmt == ACLM_REPORT_CSV) {
		snprintf(disp, sizeof(disp), "attachment; filename=\"aclm-%s.csv\"",
		         aclm_report_kind_name(kind));
		aclm_http_header_add(res, "Content-Disposition", disp);
	}
	if (fmt == ACLM_REPORT_HTML)
		/* The report is one inert page: no scripts, styles inline. */
		aclm_http_header_add(res, "Content-Security-Policy",
		                     "default-src 'none'; style-src 'unsafe-inline'");
	rc = aclm_http_reply(res, 200, aclm_report_content_type(fmt), b.data, b.len);
	aclm_buf_free(&b);
	return rc == ACLM_OK ? 200 : rc;
}

const struct api_route server_policy_routes[] = {
	{ "GET", "/api/v1/policies", ACCESS_PERM, ACLM_PERM_READ_ALL, policies_list,
	  "policies: the built-in cabf-baseline and the stored ones" },
	{ "GET", "/api/v1/policies/:name", ACCESS_PERM, ACLM_PERM_READ_ALL, policy_show,
	  "one policy's rules" },
	{ "POST", "/api/v1/policies", ACCESS_PERM, ACLM_PERM_ADMIN, policy_add,
	  "store a policy (JSON or YAML body; replace=1, default=1)" },
	{ "DELETE", "/api/v1/policies/:name", ACCESS_PERM, ACLM_PERM_ADMIN, policy_del,
	  "delete a stored policy" },
	{ "POST", "/api/v1/policies/:name/default", ACCESS_PERM, ACLM_PERM_ADMIN, policy_default,
	  "make a policy the default (cabf-baseline: the built-in)" },
	{ "GET", "/api/v1/compliance", ACCESS_PERM, ACLM_PERM_READ_ALL, compliance,
	  "compliance of every certificate, endpoint and site (policy, violating, rule, kind, limit, "
	  "offset)" },
	{ "GET", "/api/v1/reports/:kind", ACCESS_PERM, ACLM_PERM_READ_ALL, report,
	  "inventory, expiry, compliance, algorithms or pq-readiness report (format=csv|json|html, "
	  "lang=en|zh for HTML, policy)" },
};
const size_t server_n_policy_routes = sizeof(server_policy_routes) / sizeof(server_policy_routes[0]);
