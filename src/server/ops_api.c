/* The API of what aclm does on its own: endpoints and findings from
 * discovery, scans (queued as jobs, watched while they run), managed
 * certificates with their renewal history, renew-now, first issuance, the
 * ACME CAs and accounts, and the jobs themselves. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "aclm/acme.h"
#include "aclm/csr.h"
#include "aclm/err.h"
#include "aclm/json.h"
#include "aclm/scan.h"
#include "aclm/str.h"
#include "aclm/store_acme.h"
#include "aclm/store_endpoints.h"
#include "aclm/store_jobs.h"
#include "aclm/store_scan.h"
#include "aclm/timeutil.h"
#include "server-int.h"

#define MAX_LIMIT 1000

static int bad(struct aclm_http_res *res, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int bad(struct aclm_http_res *res, const char *fmt, ...)
{
	char detail[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	return server_reply_error(res, 400, "bad_request", detail);
}

/* limit/offset of the query string; false when bad (answered). */
static bool paging(struct aclm_http_req *req, struct aclm_http_res *res, int64_t def,
                   int64_t *limit, int64_t *offset)
{
	const char *l = aclm_http_query_get(req, "limit"), *o = aclm_http_query_get(req, "offset");

	*limit = def;
	*offset = 0;
	if (l != NULL && (aclm_parse_int64(l, limit) != ACLM_OK || *limit < 1 || *limit > MAX_LIMIT)) {
		bad(res, "limit: want an integer in 1..%d", MAX_LIMIT);
		return false;
	}
	if (o != NULL && (aclm_parse_int64(o, offset) != ACLM_OK || *offset < 0)) {
		bad(res, "offset: want a non-negative integer");
		return false;
	}
	return true;
}

static json_t *body_json(struct aclm_http_req *req)
{
	size_t len = 0;
	const unsigned char *body = aclm_http_req_body(req, &len);

	return len > 0 ? json_loadb((const char *)body, len, 0, NULL) : NULL;
}

/* The subject of a job asked for through the API: unique, since only one
 * open job may have a given (kind, subject). */
static void api_subject(char *out, size_t n)
{
	unsigned char r[8] = { 0 };
	char hex[17];

	if (RAND_bytes(r, sizeof(r)) != 1)
		memcpy(r, &(int64_t){ aclm_now() }, sizeof(r));
	for (int i = 0; i < 8; i++)
		snprintf(hex + 2 * i, 3, "%02x", r[i]);
	snprintf(out, n, "api-%lld-%s", (long long)aclm_now(), hex);
}

/* --- endpoints and findings ------------------------------------------------- */

static int add_endpoint(void *ctx, const struct aclm_endpoint_row *r)
{
	json_array_append_new(ctx, json_pack(
		"{s:I,s:s,s:s,s:s,s:i,s:o,s:o,s:o,s:b,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:I}",
		"id", (json_int_t)r->id, "host", r->host, "ip", r->ip, "sni", r->sni,
		"port", (int)r->port, "first_seen", aclm_json_time(r->first_seen),
		"last_seen", aclm_json_time(r->last_seen),
		"scanned_at", r->scanned_at ? aclm_json_time(r->scanned_at) : json_null(),
		"reachable", r->reachable, "reason", r->reason, "protocol", r->protocol,
		"versions", r->versions, "negotiated_version", r->negotiated_version,
		"cipher_suite", r->cipher_suite, "negotiated_group", r->negotiated_group,
		"classic_groups", r->classic_groups, "pq_groups", r->pq_groups, "trust", r->trust,
		"leaf_cert_id", r->leaf_cert_id ? json_integer(r->leaf_cert_id) : json_null(),
		"open_findings", (json_int_t)r->open_findings));
	return ACLM_OK;
}

static int endpoints_list(struct server *s, struct aclm_http_req *req,
                          struct aclm_http_res *res, const struct principal *who)
{
	struct aclm_endpoint_filter f = { .pq = -1 };
	const char *pq = aclm_http_query_get(req, "pq");
	int64_t total = 0;
	json_t *items;
	int rc;

	(void)who;
	if (!paging(req, res, 50, &f.limit, &f.offset))
		return 400;
	f.host = aclm_http_query_get(req, "host");
	f.reachable_only = aclm_http_query_get(req, "reachable") != NULL;
	if (pq != NULL) {
		if (strcmp(pq, "yes") == 0)
			f.pq = 1;
		else if (strcmp(pq, "none") == 0)
			f.pq = 0;
		else
			return bad(res, "pq: '%s' is not yes or none", pq);
	}
	if ((rc = aclm_store_count_endpoints(s->store, &f, &total)) != ACLM_OK)
		return rc;
	items = json_array();
	if ((rc = aclm_store_list_endpoints(s->store, &f, add_endpoint, items)) != ACLM_OK) {
		json_decref(items);
		return rc;
	}
	return server_reply_json(res, 200, json_pack("{s:o,s:I,s:I,s:I}", "items", items, "total",
	                                             (json_int_t)total, "limit", (json_int_t)f.limit,
	                                             "offset", (json_int_t)f.offset));
}

/* Findings as they stream: the first `limit` become items (0: all), every
 * one is counted. */
struct findings_out {
	json_t *items;
	int64_t limit, total;
};

static int add_finding(void *ctx, const struct aclm_finding_row *r)
{
	struct findings_out *fo = ctx;

	if (fo->limit > 0 && fo->total++ >= fo->limit)
		return ACLM_OK;
	if (fo->limit == 0)
		fo->total++;
	json_array_append_new(fo->items, json_pack(
		"{s:I,s:s,s:s,s:o,s:s,s:s,s:s,s:i,s:o,s:o?,s:o,s:o,s:o,s:o,s:o}",
		"id", (json_int_t)r->id, "type", r->type, "severity", r->severity,
		"endpoint_id", r->endpoint_id ? json_integer(r->endpoint_id) : json_null(),
		"host", r->host, "ip", r->ip, "sni", r->sni, "port", (int)r->port,
		"cert_id", r->cert_id ? json_integer(r->cert_id) : json_null(),
		"fingerprint", aclm_json_str(r->fingerprint), "subject", aclm_json_str(r->subject),
		"detail", aclm_json_str(r->detail), "first_seen", aclm_json_time(r->first_seen),
		"last_seen", aclm_json_time(r->last_seen),
		"resolved_at", r->resolved_at ? aclm_json_time(r->resolved_at) : json_null()));
	return ACLM_OK;
}

static int findings_list(struct server *s, struct aclm_http_req *req,
                         struct aclm_http_res *res, const struct principal *who)
{
	struct aclm_finding_filter f;
	struct findings_out fo = { NULL, 0, 0 };
	const char *sev = aclm_http_query_get(req, "severity");
	const char *lim = aclm_http_query_get(req, "limit");
	int rc;

	(void)who;
	memset(&f, 0, sizeof(f));
	/* limit: the first ones only (most severe first), with the total; a
	 * page showing a few of thousands need not carry them all */
	if (lim != NULL && (aclm_parse_int64(lim, &fo.limit) != ACLM_OK || fo.limit < 1 ||
	                    fo.limit > MAX_LIMIT))
		return bad(res, "limit: want an integer in 1..%d", MAX_LIMIT);
	f.type = aclm_http_query_get(req, "type");
	f.include_resolved = aclm_http_query_get(req, "resolved") != NULL;
	if (sev != NULL) {
		enum aclm_severity v;
		if (aclm_severity_parse(sev, &v) != ACLM_OK)
			return bad(res, "severity: '%s' is not info, low, medium, high or critical", sev);
		f.min_severity = (int)v;
	}
	fo.items = json_array();
	if ((rc = aclm_store_list_findings(s->store, &f, add_finding, &fo)) != ACLM_OK) {
		json_decref(fo.items);
		return rc;
	}
	return server_reply_json(res, 200, json_pack("{s:o,s:I}", "items", fo.items, "total",
	                                             (json_int_t)fo.total));
}

/* --- scans ------------------------------------------------------------------- */

static int add_scan(void *ctx, const struct aclm_scan_row *r)
{
	json_array_append_new(ctx, json_pack("{s:I,s:o,s:o,s:s,s:s,s:I,s:I,s:I}",
		"id", (json_int_t)r->id, "started_at", aclm_json_time(r->started_at),
		"finished_at", r->finished_at ? aclm_json_time(r->finished_at) : json_null(),
		"targets", r->targets, "status", r->status, "endpoints", (json_int_t)r->n_endpoints,
		"reachable", (json_int_t)r->n_reachable, "findings", (json_int_t)r->n_findings));
	return ACLM_OK;
}

static int scans_list(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                      const struct principal *who)
{
	int64_t limit, offset;
	json_t *items;
	int rc;

	(void)who;
	if (!paging(req, res, 50, &limit, &offset))
		return 400;
	items = json_array();
	if ((rc = aclm_store_list_scans(s->store, 0, limit, add_scan, items)) != ACLM_OK) {
		json_decref(items);
		return rc;
	}
	return server_reply_json(res, 200, json_pack("{s:o}", "items", items));
}

static int scan_show(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                     const struct principal *who)
{
	int64_t id;
	json_t *items;
	int rc;

	(void)who;
	if (aclm_parse_int64(aclm_http_req_param(req, "id"), &id) != ACLM_OK || id <= 0)
		return bad(res, "scan id: want a positive integer");
	items = json_array();
	if ((rc = aclm_store_list_scans(s->store, id, 1, add_scan, items)) != ACLM_OK) {
		json_decref(items);
		return rc;
	}
	rc = server_reply_json(res, 200, json_incref(json_array_get(items, 0)));
	json_decref(items);
	return rc;
}

static json_t *job_json(const struct aclm_job *j)
{
	return json_pack("{s:I,s:s,s:s,s:s,s:o,s:i,s:s?,s:o?,s:o?,s:o?,s:o,s:o}",
		"id", (json_int_t)j->id, "kind", j->kind, "subject", j->subject, "state", j->state,
		"run_at", aclm_json_time(j->run_at), "attempts", j->attempts,
		"last_error", j->last_error[0] ? j->last_error : NULL,
		"params", json_loads(j->params, 0, NULL), "progress", json_loads(j->progress, 0, NULL),
		"result", json_loads(j->result, 0, NULL), "created_at", aclm_json_time(j->created_at),
		"updated_at", aclm_json_time(j->updated_at));
}

/* Queue a job asked for through the API and answer 202 with the job and its
 * URL in Location; the scheduler is woken so it starts at once. */
static int queue_job(struct server *s, struct aclm_http_res *res, const char *kind,
                     const char *params_json)
{
	struct aclm_job job;
	char subject[48], loc[64];
	int64_t id = 0;
	int rc;

	api_subject(subject, sizeof(subject));
	if ((rc = aclm_store_job_add(s->store, kind, subject, aclm_now(), params_json, &id)) !=
	    ACLM_OK || (rc = aclm_store_job_get(s->store, id, &job)) != ACLM_OK)
		return rc;
	server_scheduler_wake(s->sch);
	snprintf(loc, sizeof(loc), "/api/v1/jobs/%lld", (long long)id);
	aclm_http_header_add(res, "Location", loc);
	return server_reply_json(res, 202, job_json(&job));
}

/* Queue a scan: the targets are checked here (a bad token is named with its
 * position and nothing is queued); the scan runs on a scheduler worker. */
static int scans_create(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                        const struct principal *who)
{
	json_t *j = body_json(req), *targets, *params = NULL;
	const char *ports;
	const char **tokens = NULL;
	struct aclm_scan_targets *t = NULL;
	bool known;
	char *text = NULL;
	size_t n;
	int rc;

	(void)who;
	targets = json_object_get(j, "targets");
	ports = json_string_value(json_object_get(j, "ports"));
	known = json_is_true(json_object_get(j, "known"));
	n = json_array_size(targets);
	if (j == NULL || (!json_is_array(targets) && !known) || (n == 0 && !known) || n > 1000) {
		json_decref(j);
		return bad(res, "want {\"targets\": [\"host\", \"10.0.0.0/24\", ...] (1-1000), "
		           "optional \"ports\": \"443,8443\", optional \"known\": true}");
	}
	tokens = calloc(n + 1, sizeof(*tokens));
	for (size_t i = 0; tokens != NULL && i < n; i++) {
		tokens[i] = json_string_value(json_array_get(targets, i));
		if (tokens[i] == NULL) {
			free(tokens);
			json_decref(j);
			return bad(res, "targets[%zu]: want a string", i);
		}
	}
	if (tokens == NULL) {
		json_decref(j);
		return ACLM_ERR_NOMEM;
	}
	if (n > 0 && (rc = aclm_scan_targets_parse(tokens, n, &t)) != ACLM_OK) {
		free(tokens);
		json_decref(j);
		return server_reply_error(res, 400, "bad_request", aclm_errmsg());
	}
	if (t != NULL && ports != NULL && (rc = aclm_scan_targets_set_ports(t, ports)) != ACLM_OK) {
		aclm_scan_targets_free(t);
		free(tokens);
		json_decref(j);
		return server_reply_error(res, 400, "bad_request", aclm_errmsg());
	}
	aclm_scan_targets_free(t);
	free(tokens);
	params = json_pack("{s:O,s:s?,s:b}", "targets", n > 0 ? targets : json_array(), "ports",
	                   ports, "known", known);
	text = params != NULL ? json_dumps(params, JSON_COMPACT) : NULL;
	json_decref(params);
	json_decref(j);
	if (text == NULL)
		return ACLM_ERR_NOMEM;
	rc = queue_job(s, res, "scan", text);
	free(text);
	return rc;
}

static int job_show(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                    const struct principal *who)
{
	struct aclm_job job;
	int64_t id;
	int rc;

	(void)who;
	if (aclm_parse_int64(aclm_http_req_param(req, "id"), &id) != ACLM_OK || id <= 0)
		return bad(res, "job id: want a positive integer");
	if ((rc = aclm_store_job_get(s->store, id, &job)) != ACLM_OK)
		return rc;
	return server_reply_json(res, 200, job_json(&job));
}

/* --- managed certificates ------------------------------------------------------ */

static json_t *managed_json(const struct aclm_managed_row *m)
{
	return json_pack("{s:I,s:s,s:o?,s:s?,s:s?,s:o?,s:s?,s:s?,s:o,s:o,s:o,s:I,s:s?,s:o}",
		"id", (json_int_t)m->id, "name", m->name,
		"identifiers", m->identifiers ? json_loads(m->identifiers, 0, NULL) : NULL,
		"key_type", m->key_type, "ca", m->ca,
		"cas", m->cas ? json_loads(m->cas, 0, NULL) : NULL, "profile", m->profile,
		"status", m->status,
		"current_cert_id", m->current_cert_id ? json_integer(m->current_cert_id) : json_null(),
		"renew_at", m->renew_at ? aclm_json_time(m->renew_at) : json_null(),
		"next_attempt_at", m->next_attempt_at ? aclm_json_time(m->next_attempt_at) : json_null(),
		"failures", (json_int_t)m->failures, "last_error", m->last_error,
		"pair_id", m->pair_id ? json_integer(m->pair_id) : json_null());
}

static int add_managed(void *ctx, const struct aclm_managed_row *m)
{
	json_array_append_new(ctx, managed_json(m));
	return ACLM_OK;
}

static int managed_list(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                        const struct principal *who)
{
	json_t *items = json_array();
	int rc;

	(void)req;
	(void)who;
	if ((rc = aclm_store_managed_list(s->store, add_managed, items)) != ACLM_OK) {
		json_decref(items);
		return rc;
	}
	return server_reply_json(res, 200, json_pack("{s:o}", "items", items));
}

static int add_order(void *ctx, const struct aclm_acme_order_row *o)
{
	json_array_append_new(ctx, json_pack("{s:I,s:s?,s:s?,s:s?,s:s?,s:o,s:s?,s:s?,s:o,s:o}",
		"id", (json_int_t)o->id, "ca", o->ca, "state", o->state, "status", o->status,
		"url", o->url, "cert_id", o->cert_id ? json_integer(o->cert_id) : json_null(),
		"replaces", o->replaces, "error", o->error, "created_at", aclm_json_time(o->created_at),
		"updated_at", aclm_json_time(o->updated_at)));
	return ACLM_OK;
}

static int managed_show(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                        const struct principal *who)
{
	struct aclm_managed_row m;
	json_t *o, *orders;
	int64_t id;
	int rc;

	(void)who;
	if (aclm_parse_int64(aclm_http_req_param(req, "id"), &id) != ACLM_OK || id <= 0)
		return bad(res, "managed certificate id: want a positive integer");
	if ((rc = aclm_store_managed_get(s->store, id, &m)) != ACLM_OK)
		return rc;
	o = managed_json(&m);
	aclm_managed_row_free(&m);
	orders = json_array();
	if ((rc = aclm_store_acme_order_list(s->store, id, add_order, orders)) != ACLM_OK) {
		json_decref(o);
		json_decref(orders);
		return rc;
	}
	json_object_set_new(o, "history", orders);
	return server_reply_json(res, 200, o);
}

/* Renew now: a "renew-now" job (forced, whatever the certificate's time),
 * and the scheduler woken. */
static int managed_renew(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                         const struct principal *who)
{
	struct aclm_managed_row m;
	const char *ref = aclm_http_req_param(req, "id");
	int64_t id;
	int rc;

	(void)who;
	if (aclm_parse_int64(ref, &id) != ACLM_OK || id <= 0)
		return bad(res, "managed certificate id: want a positive integer");
	if ((rc = aclm_store_managed_get(s->store, id, &m)) != ACLM_OK)
		return rc;
	aclm_managed_row_free(&m);
	if ((rc = aclm_store_job_ensure(s->store, "renew-now", ref, aclm_now(), NULL, true)) != ACLM_OK)
		return rc;
	server_scheduler_wake(s->sch);
	return server_reply_json(res, 202, json_pack("{s:s,s:I}", "queued", "renew-now",
	                                             "managed_id", (json_int_t)id));
}

/* A new managed certificate: validated here, issued by a job (`aclm issue`
 * in a child process), renewed by the scheduler from then on. */
static int managed_create(struct server *s, struct aclm_http_req *req,
                          struct aclm_http_res *res, const struct principal *who)
{
	static const char *const strings[] = { "key", "dual", "challenge", "standalone", "webroot",
	                                       "dns_hook", "profile" };
	json_t *j = body_json(req), *names, *cas, *params;
	struct aclm_acme_ca *all = NULL;
	size_t n_all = 0;
	char *text;
	int rc;

	(void)who;
	names = json_object_get(j, "names");
	cas = json_object_get(j, "cas");
	if (j == NULL || !json_is_array(names) || json_array_size(names) == 0 ||
	    json_array_size(names) > 100) {
		json_decref(j);
		return bad(res, "want {\"names\": [\"www.example.com\", ...], optional \"key\", "
		           "\"dual\", \"cas\": [...], \"challenge\", \"standalone\", \"webroot\", "
		           "\"dns_hook\", \"profile\"}");
	}
	params = json_object();
	json_object_set(params, "names", names);
	for (size_t i = 0; i < json_array_size(names); i++) {
		if (!json_is_string(json_array_get(names, i))) {
			json_decref(params);
			json_decref(j);
			return bad(res, "names[%zu]: want a string", i);
		}
	}
	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
		json_t *v = json_object_get(j, strings[i]);
		if (v == NULL)
			continue;
		if (!json_is_string(v)) {
			json_decref(params);
			json_decref(j);
			return bad(res, "%s: want a string", strings[i]);
		}
		json_object_set(params, strings[i], v);
	}
	if (cas != NULL) {
		if ((rc = aclm_acme_cas_load(s->cfg, &all, &n_all)) != ACLM_OK) {
			json_decref(params);
			json_decref(j);
			return server_reply_error(res, 409, "config", aclm_errmsg());
		}
		for (size_t i = 0; i < json_array_size(cas); i++) {
			const char *name = json_string_value(json_array_get(cas, i));
			if (name == NULL || aclm_acme_ca_find(all, n_all, name) == NULL) {
				rc = bad(res, "cas[%zu]: no CA '%s' in acme.cas", i, name ? name : "?");
				aclm_acme_cas_free(all, n_all);
				json_decref(params);
				json_decref(j);
				return rc;
			}
		}
		aclm_acme_cas_free(all, n_all);
		json_object_set(params, "cas", cas);
	}
	text = json_dumps(params, JSON_COMPACT);
	json_decref(params);
	json_decref(j);
	if (text == NULL)
		return ACLM_ERR_NOMEM;
	rc = queue_job(s, res, "issue", text);
	free(text);
	return rc;
}

/* Change what aclm keeps: CA order, key type, profile, how challenges are
 * answered.  It applies from the next renewal ("renew now" to apply at
 * once). */
static int managed_update(struct server *s, struct aclm_http_req *req,
                          struct aclm_http_res *res, const struct principal *who)
{
	static const char *const solver_keys[] = { "challenge", "standalone", "webroot",
	                                           "dns_hook" };
	json_t *j = body_json(req), *solver = NULL, *v;
	struct aclm_managed_row m;
	enum aclm_keygen kg;
	char *cas_text = NULL, *solver_text = NULL, *key = NULL, *profile = NULL;
	int64_t id, got = 0;
	int rc;

	if (aclm_parse_int64(aclm_http_req_param(req, "id"), &id) != ACLM_OK || id <= 0) {
		json_decref(j);
		return bad(res, "managed certificate id: want a positive integer");
	}
	if (!json_is_object(j)) {
		json_decref(j);
		return bad(res, "want a JSON object with any of cas, key, profile, challenge, "
		           "standalone, webroot, dns_hook");
	}
	if ((rc = aclm_store_managed_get(s->store, id, &m)) != ACLM_OK) {
		json_decref(j);
		return rc;
	}
	if ((v = json_object_get(j, "cas")) != NULL) {
		struct aclm_acme_ca *all = NULL;
		size_t n_all = 0;
		if (!json_is_array(v) || json_array_size(v) == 0) {
			rc = bad(res, "cas: want a non-empty array of CA names");
			goto out;
		}
		if (aclm_acme_cas_load(s->cfg, &all, &n_all) != ACLM_OK) {
			rc = server_reply_error(res, 409, "config", aclm_errmsg());
			goto out;
		}
		for (size_t i = 0; i < json_array_size(v); i++) {
			const char *name = json_string_value(json_array_get(v, i));
			if (name == NULL || aclm_acme_ca_find(all, n_all, name) == NULL) {
				rc = bad(res, "cas[%zu]: no CA '%s' in acme.cas", i, name ? name : "?");
				aclm_acme_cas_free(all, n_all);
				goto out;
			}
		}
		aclm_acme_cas_free(all, n_all);
		cas_text = json_dumps(v, JSON_COMPACT);
	}
	if ((v = json_object_get(j, "key")) != NULL) {
		if (!json_is_string(v) || aclm_keygen_parse(json_string_value(v), &kg) != ACLM_OK) {
			rc = bad(res, "key: want ec256, ec384, rsa2048, rsa3072, rsa4096 or sm2");
			goto out;
		}
		key = aclm_strdup(aclm_keygen_name(kg));
	}
	if ((v = json_object_get(j, "profile")) != NULL) {
		if (!json_is_string(v)) {
			rc = bad(res, "profile: want a string");
			goto out;
		}
		profile = aclm_strdup(json_string_value(v));
	}
	for (size_t i = 0; i < sizeof(solver_keys) / sizeof(solver_keys[0]); i++) {
		v = json_object_get(j, solver_keys[i]);
		if (v == NULL)
			continue;
		if (!json_is_string(v)) {
			rc = bad(res, "%s: want a string", solver_keys[i]);
			goto out;
		}
		if (solver == NULL)
			solver = json_loads(m.solver ? m.solver : "{}", 0, NULL);
		if (solver == NULL)
			solver = json_object();
		if (i == 0) {
			enum aclm_acme_chall c;
			if (aclm_acme_chall_parse(json_string_value(v), &c) != ACLM_OK) {
				rc = bad(res, "challenge: want http-01, tls-alpn-01 or dns-01");
				goto out;
			}
			json_object_set_new(solver, "type", json_string(aclm_acme_chall_name(c)));
		} else {
			json_object_set(solver, solver_keys[i], v);
		}
	}
	if (solver != NULL)
		solver_text = json_dumps(solver, JSON_COMPACT);
	if (cas_text != NULL) {
		free(m.cas);
		m.cas = cas_text;
		cas_text = NULL;
	}
	if (key != NULL) {
		free(m.key_type);
		m.key_type = key;
		key = NULL;
	}
	if (profile != NULL) {
		free(m.profile);
		m.profile = profile;
		profile = NULL;
	}
	if (solver_text != NULL) {
		free(m.solver);
		m.solver = solver_text;
		solver_text = NULL;
	}
	if ((rc = aclm_store_managed_upsert(s->store, &m, &got)) != ACLM_OK)
		goto out;
	aclm_managed_row_free(&m);
	if ((rc = aclm_store_managed_get(s->store, id, &m)) != ACLM_OK)
		goto done;
	rc = server_reply_json(res, 200, managed_json(&m));
	(void)who;
out:
	aclm_managed_row_free(&m);
done:
	free(cas_text);
	free(solver_text);
	free(key);
	free(profile);
	json_decref(solver);
	json_decref(j);
	return rc;
}

static int managed_delete(struct server *s, struct aclm_http_req *req,
                          struct aclm_http_res *res, const struct principal *who)
{
	int64_t id;
	int rc;

	if (aclm_parse_int64(aclm_http_req_param(req, "id"), &id) != ACLM_OK || id <= 0)
		return bad(res, "managed certificate id: want a positive integer");
	if ((rc = aclm_store_managed_delete(s->store, who->actor, id)) != ACLM_OK)
		return rc;
	return server_reply_json(res, 200, json_pack("{s:b}", "deleted", 1));
}

/* --- ACME CAs and accounts ----------------------------------------------------- */

static int add_account(void *ctx, const struct aclm_acme_account_row *a)
{
	json_array_append_new(ctx, json_pack("{s:I,s:s?,s:s?,s:s?,s:s?,s:s?,s:s?,s:o}",
		"id", (json_int_t)a->id, "ca", a->ca, "directory", a->directory, "url", a->url,
		"key_type", a->key_type, "contact", a->contact, "status", a->status,
		"created_at", aclm_json_time(a->created_at)));
	return ACLM_OK;
}

static int acme_cas(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                    const struct principal *who)
{
	struct aclm_acme_ca *cas = NULL;
	size_t n = 0;
	json_t *items, *accounts;
	int rc;

	(void)req;
	(void)who;
	if ((rc = aclm_acme_cas_load(s->cfg, &cas, &n)) != ACLM_OK)
		return server_reply_error(res, 409, "config", aclm_errmsg());
	items = json_array();
	for (size_t i = 0; i < n; i++)
		/* The EAB MAC key is a secret: only whether one is set. */
		json_array_append_new(items, json_pack("{s:s,s:s,s:s?,s:s?,s:b,s:s?,s:s?}",
			"name", cas[i].name, "directory", cas[i].directory, "contact", cas[i].contact,
			"profile", cas[i].profile, "eab", cas[i].eab_kid != NULL, "preferred_chain",
			cas[i].preferred_chain, "account_key", cas[i].account_key));
	aclm_acme_cas_free(cas, n);
	accounts = json_array();
	if ((rc = aclm_store_acme_account_list(s->store, add_account, accounts)) != ACLM_OK) {
		json_decref(items);
		json_decref(accounts);
		return rc;
	}
	return server_reply_json(res, 200, json_pack("{s:o,s:o}", "cas", items, "accounts",
	                                             accounts));
}

static int add_node(void *ctx, const struct aclm_node_row *r)
{
	json_array_append_new(ctx, json_pack("{s:I,s:s,s:s,s:s,s:s,s:o}", "id", (json_int_t)r->id,
	                                     "name", r->name, "kind", r->kind, "address",
	                                     r->address, "version", r->version, "last_seen",
	                                     aclm_json_time(r->last_seen)));
	return ACLM_OK;
}

static int nodes_list(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                      const struct principal *who)
{
	json_t *items = json_array();
	int rc;

	(void)req;
	(void)who;
	if ((rc = aclm_store_node_list(s->store, add_node, items)) != ACLM_OK) {
		json_decref(items);
		return rc;
	}
	return server_reply_json(res, 200, json_pack("{s:o}", "items", items));
}

const struct api_route server_ops_routes[] = {
	{ "GET", "/api/v1/nodes", ACCESS_PERM, ACLM_PERM_READ_ALL, nodes_list,
	  "the servers (and gateways) sharing this store, with their last heartbeat" },
	{ "GET", "/api/v1/endpoints", ACCESS_PERM, ACLM_PERM_READ_INVENTORY, endpoints_list,
	  "endpoints with their latest scan result (host, pq=yes|none, reachable, limit, offset)" },
	{ "GET", "/api/v1/findings", ACCESS_PERM, ACLM_PERM_READ_INVENTORY, findings_list,
	  "open findings, most severe first (type, severity, resolved, limit), with their total" },
	{ "GET", "/api/v1/scans", ACCESS_PERM, ACLM_PERM_READ_INVENTORY, scans_list,
	  "scans, newest first" },
	{ "GET", "/api/v1/scans/:id", ACCESS_PERM, ACLM_PERM_READ_INVENTORY, scan_show, "one scan" },
	{ "POST", "/api/v1/scans", ACCESS_PERM, ACLM_PERM_WRITE, scans_create,
	  "queue a scan {targets, ports, known}; watch it at the Location (a job)" },
	{ "GET", "/api/v1/jobs/:id", ACCESS_PERM, ACLM_PERM_READ_ALL, job_show,
	  "one job: state, progress, result" },
	{ "GET", "/api/v1/managed", ACCESS_PERM, ACLM_PERM_READ_ALL, managed_list,
	  "managed certificates (desired state, renewal time, last error)" },
	{ "POST", "/api/v1/managed", ACCESS_PERM, ACLM_PERM_WRITE, managed_create,
	  "issue and manage a certificate {names, key, dual, cas, challenge, standalone, webroot, "
	  "dns_hook, profile}; a job" },
	{ "GET", "/api/v1/managed/:id", ACCESS_PERM, ACLM_PERM_READ_ALL, managed_show,
	  "one managed certificate with its order history" },
	{ "PATCH", "/api/v1/managed/:id", ACCESS_PERM, ACLM_PERM_WRITE, managed_update,
	  "change CA order, key type, profile or challenge settings (from the next renewal)" },
	{ "DELETE", "/api/v1/managed/:id", ACCESS_PERM, ACLM_PERM_WRITE, managed_delete,
	  "stop managing (the certificates stay in the inventory)" },
	{ "POST", "/api/v1/managed/:id/renew", ACCESS_PERM, ACLM_PERM_WRITE, managed_renew,
	  "renew now (queued for the scheduler)" },
	{ "GET", "/api/v1/acme", ACCESS_PERM, ACLM_PERM_READ_ALL, acme_cas,
	  "the ACME CAs of the configuration and the accounts at them" },
};
const size_t server_n_ops_routes = sizeof(server_ops_routes) / sizeof(server_ops_routes[0]);
