/* POST /api/v1/certificates/:id/revoke: revocation from the dashboard.
 *
 * Who can revoke a certificate is whoever issued it.  aclm can for two
 * kinds: those its built-in CA issued (a row of ca_issued, revoked in the
 * store at once, so the CRL and OCSP say so on their next answer) and
 * those its ACME client ordered (an RFC 8555 revokeCert at the CA of the
 * order, signed with the account key: network work, so a "revoke" job that
 * runs `aclm revoke` in a child process, as issuance does).  Any other
 * certificate (imported, found by a scan) is refused with the reason.
 *
 * Each revocation leaves a "certificate.revoked" event about the
 * certificate's fingerprint (who, how, why) beside the request's own audit
 * event, so the certificate's history shows it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "aclm/ca.h"
#include "aclm/err.h"
#include "aclm/json.h"
#include "aclm/store_acme.h"
#include "aclm/store_ca.h"
#include "aclm/store_jobs.h"
#include "aclm/str.h"
#include "aclm/timeutil.h"
#include "server-int.h"

#define MAX_CAS 16

/* RFC 5280 CRLReason names a revocation may carry (removeFromCRL only
 * undoes a hold in a delta CRL: not a reason to revoke). */
static int reason_by_name(const char *name)
{
	for (int code = 0; code <= 10; code++)
		if (code != 7 && code != 8 && strcmp(aclm_ca_reason_name(code), name) == 0)
			return code;
	return -1;
}

/* ACME CAs take the reasons of RFC 8555 section 7.6 as aclm revoke sends
 * them: not the CA-compromise ones, which are the CA's own to state. */
static bool acme_reason_ok(int code)
{
	return code != 2 && code != 10;
}

struct cert_id {
	char fingerprint[65];
	char serial[72];
	char subject[256];
};

static int cert_fn(void *ctx, const struct aclm_cert_row *row)
{
	struct cert_id *c = ctx;

	aclm_strlcpy(c->fingerprint, row->fingerprint, sizeof(c->fingerprint));
	aclm_strlcpy(c->serial, row->serial != NULL ? row->serial : "", sizeof(c->serial));
	aclm_strlcpy(c->subject, row->subject_cn != NULL ? row->subject_cn
	             : row->subject != NULL ? row->subject : "", sizeof(c->subject));
	return ACLM_OK;
}

struct ca_names {
	char name[MAX_CAS][64];
	size_t n;
};

static int hier_fn(void *ctx, const struct aclm_ca_hier_row *r)
{
	struct ca_names *c = ctx;

	if (c->n > 0 && strcmp(c->name[c->n - 1], r->ca) == 0)
		return ACLM_OK;  /* ordered by ca: one entry per CA */
	if (c->n < MAX_CAS && strlen(r->ca) < sizeof(c->name[0]))
		aclm_strlcpy(c->name[c->n++], r->ca, sizeof(c->name[0]));
	return ACLM_OK;
}

/* The built-in CA's row of certificate id: ACLM_OK and *found, with out
 * filled (freed by the caller) when one of its CAs issued it. */
static int builtin_issued(struct aclm_store *st, int64_t id, const char *serial,
                          struct aclm_ca_issued_row *out, bool *found)
{
	struct ca_names cas;
	int rc;

	*found = false;
	memset(&cas, 0, sizeof(cas));
	if (serial[0] == '\0' || serial[0] == '-' || strlen(serial) > 64)
		return ACLM_OK;
	if ((rc = aclm_store_ca_hier_list(st, NULL, hier_fn, &cas)) != ACLM_OK)
		return rc;
	for (size_t i = 0; i < cas.n; i++) {
		rc = aclm_store_ca_issued_get(st, cas.name[i], serial, out);
		if (rc == ACLM_ERR_NOTFOUND)
			continue;
		if (rc != ACLM_OK)
			return rc;
		if (out->cert_id == id) {
			*found = true;
			return ACLM_OK;
		}
		aclm_ca_issued_row_free(out);
	}
	aclm_error_clear();
	return ACLM_OK;
}

static int revoked_event(struct aclm_store *st, const char *fingerprint, json_t *detail)
{
	char *text = json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS);
	int rc;

	json_decref(detail);
	if (text == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	rc = aclm_store_append_event(st, "certificate.revoked", fingerprint, text);
	free(text);
	return rc;
}

/* The newest "certificate.revoked" event about a fingerprint. */
struct last_revoked {
	json_t *detail;
	int64_t at;
};

static int event_fn(void *ctx, const struct aclm_event_row *r)
{
	struct last_revoked *l = ctx;

	if (l->detail != NULL || r->type == NULL || strcmp(r->type, "certificate.revoked") != 0 ||
	    r->detail == NULL)
		return ACLM_OK;
	l->detail = json_loads(r->detail, 0, NULL);
	l->at = r->at;
	return ACLM_OK;
}

json_t *server_cert_revocation(struct server *s, int64_t id)
{
	struct cert_id c;
	struct aclm_ca_issued_row row;
	struct aclm_acme_order_row o;
	struct last_revoked last = { NULL, 0 };
	bool found = false;
	json_t *out = NULL;

	memset(&c, 0, sizeof(c));
	if (aclm_store_get_cert(s->store, id, cert_fn, &c) != ACLM_OK || c.fingerprint[0] == '\0')
		goto none;
	if (builtin_issued(s->store, id, c.serial, &row, &found) != ACLM_OK)
		goto none;
	if (found) {
		out = json_pack("{s:s,s:s,s:b}", "by", "ca", "ca", row.ca, "revoked",
		                row.revoked_at != 0);
		if (row.revoked_at != 0) {
			json_object_set_new(out, "revoked_at", aclm_json_time(row.revoked_at));
			json_object_set_new(out, "reason", json_string(aclm_ca_reason_name(row.reason)));
		}
		aclm_ca_issued_row_free(&row);
		return out;
	}
	memset(&o, 0, sizeof(o));
	if (aclm_store_acme_order_by_cert(s->store, id, &o) != ACLM_OK)
		goto none;
	out = json_pack("{s:s,s:s?,s:b}", "by", "acme", "ca", o.ca, "revoked",
	                o.status != NULL && strcmp(o.status, "revoked") == 0);
	aclm_acme_order_row_free(&o);
	if (json_is_true(json_object_get(out, "revoked")) &&
	    aclm_store_list_events_about(s->store, c.fingerprint, 50, event_fn, &last) == ACLM_OK &&
	    last.detail != NULL) {
		json_object_set_new(out, "revoked_at", aclm_json_time(last.at));
		json_object_set(out, "reason", json_object_get(last.detail, "reason"));
	}
	json_decref(last.detail);
	return out;
none:
	aclm_error_clear();
	return json_null();
}

/* An open "revoke" job of this certificate (one at a time: the jobs
 * table allows one open job per kind and subject). */
struct open_job {
	const char *subject;
	int64_t id;
};

static int open_job_fn(void *ctx, const struct aclm_job *j)
{
	struct open_job *o = ctx;

	if (o->id == 0 && strcmp(j->kind, "revoke") == 0 && strcmp(j->subject, o->subject) == 0)
		o->id = j->id;
	return ACLM_OK;
}

static int cert_revoke(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                       const struct principal *who)
{
	size_t len = 0;
	const unsigned char *body = aclm_http_req_body(req, &len);
	json_t *j = len > 0 ? json_loadb((const char *)body, len, 0, NULL) : NULL;
	json_t *reason_j = json_object_get(j, "reason");
	struct aclm_ca_issued_row row;
	struct aclm_acme_order_row o;
	struct cert_id c;
	char detail[512], subject[32], loc[64], *params;
	bool found = false;
	int64_t id = 0, job_id = 0;
	int code, rc;

	if (!json_is_object(j)) {
		json_decref(j);
		return server_reply_error(res, 400, "bad_request", "want a JSON object "
		                          "{\"reason\": \"keyCompromise\"}");
	}
	if (!json_is_string(reason_j)) {
		json_decref(j);
		return server_reply_error(res, 400, "bad_request", "reason: required, an RFC 5280 "
		                          "reason name (unspecified, keyCompromise, affiliationChanged, "
		                          "superseded, cessationOfOperation, ...)");
	}
	code = reason_by_name(json_string_value(reason_j));
	if (code < 0) {
		snprintf(detail, sizeof(detail), "reason: '%.40s' is not an RFC 5280 reason: use "
		         "unspecified, keyCompromise, cACompromise, affiliationChanged, superseded, "
		         "cessationOfOperation, certificateHold, privilegeWithdrawn or aACompromise",
		         json_string_value(reason_j));
		json_decref(j);
		return server_reply_error(res, 400, "bad_request", detail);
	}
	json_decref(j);

	if ((rc = aclm_store_find_cert(s->store, aclm_http_req_param(req, "id"), &id)) != ACLM_OK)
		return rc;
	memset(&c, 0, sizeof(c));
	if ((rc = aclm_store_get_cert(s->store, id, cert_fn, &c)) != ACLM_OK)
		return rc;
	if (c.fingerprint[0] == '\0')
		return aclm_error(ACLM_ERR_NOTFOUND, "no certificate %lld", (long long)id);

	/* 1. Issued by the built-in CA: revoked here and now. */
	if ((rc = builtin_issued(s->store, id, c.serial, &row, &found)) != ACLM_OK)
		return rc;
	if (found) {
		if (row.revoked_at != 0) {
			char when[32];
			aclm_time_iso(row.revoked_at, when, sizeof(when));
			snprintf(detail, sizeof(detail), "certificate %lld (serial %s of CA %s) was revoked "
			         "already, on %s (%s)", (long long)id, row.serial, row.ca, when,
			         aclm_ca_reason_name(row.reason));
			aclm_ca_issued_row_free(&row);
			return server_reply_error(res, 409, "already_revoked", detail);
		}
		rc = aclm_ca_revoke(s->store, row.ca, row.serial, code);
		if (rc == ACLM_ERR_EXISTS) {
			aclm_ca_issued_row_free(&row);
			return server_reply_error(res, 409, "already_revoked", aclm_errmsg());
		}
		if (rc == ACLM_OK)
			rc = revoked_event(s->store, c.fingerprint,
			                   json_pack("{s:s,s:s,s:s,s:s,s:s,s:I}", "actor", who->actor, "by",
			                             "ca", "ca", row.ca, "serial", row.serial, "reason",
			                             aclm_ca_reason_name(code), "cert",
			                             (json_int_t)id));
		if (rc != ACLM_OK) {
			aclm_ca_issued_row_free(&row);
			return rc;
		}
		rc = server_reply_json(res, 200, json_pack("{s:I,s:b,s:s,s:s,s:s,s:s,s:o}",
		                       "id", (json_int_t)id, "revoked", 1, "by", "ca", "ca", row.ca,
		                       "serial", row.serial, "reason", aclm_ca_reason_name(code),
		                       "revoked_at", aclm_json_time(aclm_now())));
		aclm_ca_issued_row_free(&row);
		return rc;
	}

	/* 2. Ordered by aclm's ACME client: revokeCert at that CA, in a job. */
	memset(&o, 0, sizeof(o));
	rc = aclm_store_acme_order_by_cert(s->store, id, &o);
	if (rc == ACLM_OK) {
		bool was_revoked = o.status != NULL && strcmp(o.status, "revoked") == 0;
		char ca[64];
		aclm_strlcpy(ca, o.ca != NULL ? o.ca : "", sizeof(ca));
		aclm_acme_order_row_free(&o);
		if (was_revoked) {
			snprintf(detail, sizeof(detail), "certificate %lld was revoked already at ACME CA %s",
			         (long long)id, ca);
			return server_reply_error(res, 409, "already_revoked", detail);
		}
		if (!acme_reason_ok(code)) {
			snprintf(detail, sizeof(detail), "reason: %s is for a CA to state; an ACME "
			         "revocation of certificate %lld takes unspecified, keyCompromise, "
			         "affiliationChanged, superseded, cessationOfOperation, certificateHold "
			         "or privilegeWithdrawn", aclm_ca_reason_name(code), (long long)id);
			return server_reply_error(res, 400, "bad_request", detail);
		}
		snprintf(subject, sizeof(subject), "%lld", (long long)id);
		{
			struct open_job oj = { subject, 0 };
			if ((rc = aclm_store_job_list(s->store, "pending", 1000, open_job_fn, &oj)) !=
			    ACLM_OK ||
			    (rc = aclm_store_job_list(s->store, "running", 1000, open_job_fn, &oj)) !=
			    ACLM_OK)
				return rc;
			if (oj.id != 0) {
				snprintf(detail, sizeof(detail), "the revocation of certificate %lld at ACME CA "
				         "%s is under way already (job %lld)", (long long)id, ca,
				         (long long)oj.id);
				return server_reply_error(res, 409, "revocation_under_way", detail);
			}
		}
		{
			json_t *p = json_pack("{s:I,s:i,s:s}", "cert_id", (json_int_t)id, "reason", code,
			                      "actor", who->actor);
			params = p != NULL ? json_dumps(p, JSON_COMPACT) : NULL;
			json_decref(p);
		}
		if (params == NULL)
			return aclm_error(ACLM_ERR_NOMEM, "out of memory");
		rc = aclm_store_job_add(s->store, "revoke", subject, aclm_now(), params, &job_id);
		free(params);
		if (rc != ACLM_OK)
			return rc;
		server_scheduler_wake(s->sch);
		snprintf(loc, sizeof(loc), "/api/v1/jobs/%lld", (long long)job_id);
		aclm_http_header_add(res, "Location", loc);
		return server_reply_json(res, 202, json_pack("{s:I,s:s,s:s,s:s,s:I,s:s}", "id",
		                         (json_int_t)id, "queued", "revoke", "by", "acme", "ca", ca,
		                         "job_id", (json_int_t)job_id, "reason",
		                         aclm_ca_reason_name(code)));
	}
	if (rc != ACLM_ERR_NOTFOUND)
		return rc;

	/* 3. Anyone else's certificate. */
	snprintf(detail, sizeof(detail), "certificate %lld (%.80s) was not issued by aclm's built-in "
	         "CA nor ordered through aclm's ACME client: only its issuer can revoke it",
	         (long long)id, c.subject);
	return server_reply_error(res, 422, "not_revocable", detail);
}

const struct api_route server_revoke_routes[] = {
	{ "POST", "/api/v1/certificates/:id/revoke", ACCESS_PERM, ACLM_PERM_WRITE, cert_revoke,
	  "revoke {reason: RFC 5280 name}: at once when the built-in CA issued it; as a job "
	  "(revokeCert at its CA) when aclm's ACME client ordered it; 422 otherwise" },
};
const size_t server_n_revoke_routes = sizeof(server_revoke_routes) /
                                      sizeof(server_revoke_routes[0]);
