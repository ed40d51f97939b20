/* The order state machine (RFC 8555 7.4) and issuing with CA failover.
 *
 * An order is a row in acme_orders whose `state` names the next handler in
 * the table below; every handler persists its result before returning, so
 * a run killed at any point resumes at the same step with the same order
 * URL and the same (sealed) pending key:
 *
 *   new --newOrder--> ordered --challenges answered, authz valid--> ready
 *       --finalize--> finalized --order valid--> valid --download, store--> done
 *
 * Any state may go to failed (the CA said invalid, or gave up).  The
 * certificate, its chain and its sealed key are stored, and the managed
 * certificate switched to it, in one transaction. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "acme-int.h"
#include "aclm/bundle.h"
#include "aclm/err.h"
#include "aclm/keywrap.h"
#include "aclm/log.h"
#include "aclm/store.h"
#include "aclm/store_acme.h"
#include "aclm/str.h"
#include "aclm/timeutil.h"
#include "aclm/x509.h"

struct run {
	struct acme_client *c;
	struct aclm_store *st;
	const struct aclm_kek *kek;
	const struct aclm_acme_request *req;
	struct aclm_acme_responder *responder;
	struct aclm_acme_order_row o;
	struct aclm_acme_result *res;
	int64_t deadline;
	char **dns_cleanup;      /* "fqdn value" pairs to remove at the end */
	size_t n_dns_cleanup;
	char **webroot_tokens;
	size_t n_webroot_tokens;
};

enum order_state { ST_NEW, ST_ORDERED, ST_READY, ST_FINALIZED, ST_VALID, ST_DONE, ST_FAILED };

static int do_new(struct run *r);
static int do_authorize(struct run *r);
static int do_finalize(struct run *r);
static int do_wait_valid(struct run *r);
static int do_download(struct run *r);

static const struct {
	const char *name;
	int (*handler)(struct run *r);
} states[] = {
	[ST_NEW] = { "new", do_new },
	[ST_ORDERED] = { "ordered", do_authorize },
	[ST_READY] = { "ready", do_finalize },
	[ST_FINALIZED] = { "finalized", do_wait_valid },
	[ST_VALID] = { "valid", do_download },
	[ST_DONE] = { "done", NULL },
	[ST_FAILED] = { "failed", NULL },
};

static int state_of(const char *name)
{
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		if (name != NULL && strcmp(states[i].name, name) == 0)
			return (int)i;
	return -1;
}

static void set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = v != NULL ? aclm_strdup(v) : NULL;
}

/* Persist the order in its new state; the test hook kills the process
 * right after a state is durable (tests/integration/test_acme_crash.py). */
static int advance(struct run *r, enum order_state next)
{
	const char *kill_at = getenv("ACLM_TEST_ACME_KILL_AT");
	int rc;

	set_str(&r->o.state, states[next].name);
	if ((rc = aclm_store_acme_order_update(r->st, &r->o)) != ACLM_OK)
		return rc;
	aclm_debug("order %lld: %s", (long long)r->o.id, states[next].name);
	if (kill_at != NULL && strcmp(kill_at, states[next].name) == 0)
		raise(SIGKILL);
	return ACLM_OK;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Wait before the next poll: Retry-After when given (bounded by the
 * deadline), else a short growing interval. */
static int poll_wait(struct run *r, int attempt, const char *what)
{
	int64_t ms = r->c->last_retry_after > 0 ? r->c->last_retry_after * 1000 :
	             (attempt < 4 ? 100 + 150 * attempt : 1000 + 500 * (attempt > 10 ? 10 : attempt - 4));

	if (aclm_now() + ms / 1000 > r->deadline)
		return aclm_error(ACLM_ERR_IO, "CA %s: order %s: timed out waiting for %s",
		                  r->c->ca->name, r->o.url ? r->o.url : "(new)", what);
	sleep_ms(ms);
	return ACLM_OK;
}

static int fetch_json(struct run *r, const char *url, const char *step, json_t **out,
                      struct acme_response *keep)
{
	struct acme_response resp;
	int rc;

	if ((rc = acme_post(r->c, &r->c->account, false, url, NULL, step, &resp)) != ACLM_OK)
		return rc;
	rc = acme_json(r->c, &resp, step, out);
	if (keep != NULL && rc == ACLM_OK)
		*keep = resp;
	else
		acme_response_free(&resp);
	return rc;
}

static void take_order_fields(struct run *r, json_t *o)
{
	const char *s;

	if ((s = json_string_value(json_object_get(o, "status"))) != NULL)
		set_str(&r->o.status, s);
	if ((s = json_string_value(json_object_get(o, "finalize"))) != NULL)
		set_str(&r->o.finalize_url, s);
	if ((s = json_string_value(json_object_get(o, "certificate"))) != NULL)
		set_str(&r->o.cert_url, s);
}

/* "CA X: order URL: invalid: <problem>" from an order or authorization object. */
static int invalid_error(struct run *r, json_t *obj, const char *what)
{
	json_t *err = json_object_get(obj, "error");
	char *txt = err ? json_dumps(err, JSON_COMPACT) : NULL;
	struct acme_problem p;
	int rc;

	if (txt != NULL && acme_problem_parse(txt, strlen(txt), &p) == ACLM_OK)
		rc = aclm_error(ACLM_ERR_UNSUPPORTED, "CA %s: order %s: %s is invalid: %s: %s%s%s%s",
		                r->c->ca->name, r->o.url, what, p.type, p.detail,
		                p.subproblems[0] ? " (" : "", p.subproblems, p.subproblems[0] ? ")" : "");
	else
		rc = aclm_error(ACLM_ERR_UNSUPPORTED, "CA %s: order %s: %s is invalid (no reason given)",
		                r->c->ca->name, r->o.url, what);
	free(txt);
	return rc;
}

/* --- new: the pending key exists (sealed) before the CA hears of us ------- */

static int do_new(struct run *r)
{
	json_t *ids = json_array(), *payload = NULL, *names = NULL, *o = NULL;
	struct acme_response resp;
	char *txt = NULL;
	size_t i;
	json_t *v;
	int rc;

	memset(&resp, 0, sizeof(resp));
	names = json_loads(r->o.identifiers, 0, NULL);
	json_array_foreach(names, i, v) {
		const char *n = json_string_value(v);
		json_array_append_new(ids, json_pack("{s:s, s:s}", "type",
		                                     aclm_is_ip_literal(n) ? "ip" : "dns", "value", n));
	}
	payload = json_pack("{s:O}", "identifiers", ids);
	if (r->o.replaces != NULL)
		json_object_set_new(payload, "replaces", json_string(r->o.replaces));
	if (r->o.profile != NULL)
		json_object_set_new(payload, "profile", json_string(r->o.profile));
	txt = json_dumps(payload, JSON_COMPACT);
	rc = acme_post(r->c, &r->c->account, false, r->c->dir.new_order, txt, "newOrder", &resp);
	if (rc != ACLM_OK && r->o.replaces != NULL && r->c->last_status >= 400 &&
	    r->c->last_status < 500 && r->c->last_status != 429) {
		/* A CA that rejects `replaces` still gets the order, without it. */
		aclm_warn("CA %s: newOrder with replaces refused (%s); retrying without",
		          r->c->ca->name, aclm_errmsg());
		set_str(&r->o.replaces, NULL);
		json_object_del(payload, "replaces");
		free(txt);
		txt = json_dumps(payload, JSON_COMPACT);
		rc = acme_post(r->c, &r->c->account, false, r->c->dir.new_order, txt, "newOrder", &resp);
	}
	if (rc != ACLM_OK)
		goto out;
	if ((rc = acme_json(r->c, &resp, "newOrder", &o)) != ACLM_OK)
		goto out;
	if (resp.location[0] == '\0') {
		rc = aclm_error(ACLM_ERR_PARSE, "CA %s: newOrder: no Location header", r->c->ca->name);
		goto out;
	}
	set_str(&r->o.url, resp.location);
	take_order_fields(r, o);
	if (r->o.finalize_url == NULL || !json_is_array(json_object_get(o, "authorizations"))) {
		rc = aclm_error(ACLM_ERR_PARSE, "CA %s: newOrder: order %s has no finalize URL or "
		                "authorizations", r->c->ca->name, r->o.url);
		goto out;
	}
	rc = advance(r, ST_ORDERED);
out:
	free(txt);
	json_decref(o);
	json_decref(payload);
	json_decref(ids);
	json_decref(names);
	acme_response_free(&resp);
	return rc;
}

/* --- ordered: answer every pending authorization, wait for them ---------- */

static int publish(struct run *r, const char *ident, bool wildcard, const char *token,
                   const char *keyauth)
{
	const struct aclm_acme_solver *s = &r->req->solver;
	int rc = ACLM_OK;

	switch (s->type) {
	case ACLM_CHALL_HTTP01:
		if (s->webroot != NULL) {
			rc = acme_webroot_add(s->webroot, token, keyauth);
			if (rc == ACLM_OK) {
				char **n = realloc(r->webroot_tokens, (r->n_webroot_tokens + 1) * sizeof(*n));
				if (n != NULL) {
					r->webroot_tokens = n;
					n[r->n_webroot_tokens++] = aclm_strdup(token);
				}
			}
		} else {
			rc = acme_responder_add(r->responder, token, keyauth);
		}
		break;
	case ACLM_CHALL_TLSALPN01:
		rc = acme_responder_add(r->responder, ident, keyauth);
		break;
	case ACLM_CHALL_DNS01: {
		char value[64], fqdn[300];
		snprintf(fqdn, sizeof(fqdn), "_acme-challenge.%s.", ident);
		(void)wildcard;
		if ((rc = acme_dns01_value(keyauth, value)) != ACLM_OK)
			break;
		if (s->dns_server != NULL) {
			struct acme_rfc2136 d;
			if ((rc = acme_rfc2136_load(s->dns_server, s->dns_zone, s->tsig_key, &d)) == ACLM_OK &&
			    (rc = acme_rfc2136_update(&d, true, fqdn, value)) == ACLM_OK)
				rc = acme_dns_wait_txt(&d, fqdn, value, s->dns_timeout);
			OPENSSL_cleanse(&d, sizeof(d));
		} else {
			rc = acme_dns_hook(s->dns_hook, "add", fqdn, value);
		}
		if (rc == ACLM_OK) {
			char **n = realloc(r->dns_cleanup, (r->n_dns_cleanup + 2) * sizeof(*n));
			if (n != NULL) {
				r->dns_cleanup = n;
				n[r->n_dns_cleanup++] = aclm_strdup(fqdn);
				n[r->n_dns_cleanup++] = aclm_strdup(value);
			}
		}
		break;
	}
	}
	return rc;
}

static int answer_authz(struct run *r, const char *url, bool *is_valid)
{
	const char *want = aclm_acme_chall_name(r->req->solver.type);
	json_t *a = NULL, *chall = NULL, *ch;
	const char *status, *ident, *token = NULL, *curl = NULL;
	char *keyauth = NULL;
	struct acme_response resp;
	size_t i;
	int rc;

	*is_valid = false;
	if ((rc = fetch_json(r, url, "authorization", &a, NULL)) != ACLM_OK)
		return rc;
	status = json_string_value(json_object_get(a, "status"));
	ident = json_string_value(json_object_get(json_object_get(a, "identifier"), "value"));
	if (status == NULL || ident == NULL) {
		rc = aclm_error(ACLM_ERR_PARSE, "CA %s: authorization %s: no status or identifier",
		                r->c->ca->name, url);
		goto out;
	}
	if (strcmp(status, "valid") == 0) {
		*is_valid = true;
		aclm_store_acme_authz_put(r->st, r->o.id, url, ident, status, NULL, NULL, NULL);
		goto out;
	}
	if (strcmp(status, "pending") != 0) {
		rc = invalid_error(r, a, "authorization");
		goto out;
	}
	json_array_foreach(json_object_get(a, "challenges"), i, ch) {
		const char *t = json_string_value(json_object_get(ch, "type"));
		if (t != NULL && strcmp(t, want) == 0) {
			chall = ch;
			break;
		}
	}
	if (chall == NULL) {
		rc = aclm_error(ACLM_ERR_UNSUPPORTED, "CA %s: authorization for %s offers no %s "
		                "challenge", r->c->ca->name, ident, want);
		goto out;
	}
	token = json_string_value(json_object_get(chall, "token"));
	curl = json_string_value(json_object_get(chall, "url"));
	if (token == NULL || curl == NULL) {
		rc = aclm_error(ACLM_ERR_PARSE, "CA %s: %s challenge for %s: no token or url",
		                r->c->ca->name, want, ident);
		goto out;
	}
	if ((rc = acme_key_authorization(&r->c->account, token, &keyauth)) != ACLM_OK) {
		aclm_error_wrap(rc, "CA %s: %s challenge for %s", r->c->ca->name, want, ident);
		goto out;
	}
	if ((rc = publish(r, ident, json_is_true(json_object_get(a, "wildcard")), token,
	                  keyauth)) != ACLM_OK) {
		aclm_error_wrap(rc, "CA %s: order %s", r->c->ca->name, r->o.url);
		goto out;
	}
	aclm_store_acme_authz_put(r->st, r->o.id, url, ident, status, want, curl, token);
	{
		const char *cs = json_string_value(json_object_get(chall, "status"));
		if (cs != NULL && strcmp(cs, "pending") != 0)
			goto out;  /* answered before a crash: just wait */
	}
	if (r->req->solver.type == ACLM_CHALL_DNS01 && r->req->solver.dns_wait > 0)
		sleep_ms(r->req->solver.dns_wait * 1000);
	rc = acme_post(r->c, &r->c->account, false, curl, "{}", "respond to challenge", &resp);
	acme_response_free(&resp);
out:
	free(keyauth);
	json_decref(a);
	return rc;
}

static int do_authorize(struct run *r)
{
	json_t *o = NULL, *authz;
	const char *u;
	size_t i, n_valid;
	int rc, attempt = 0;

	if ((rc = fetch_json(r, r->o.url, "order", &o, NULL)) != ACLM_OK)
		return rc;
	take_order_fields(r, o);
	if (strcmp(r->o.status, "invalid") == 0) {
		rc = invalid_error(r, o, "the order");
		goto out;
	}
	if (strcmp(r->o.status, "pending") != 0) {
		rc = advance(r, ST_READY);  /* ready, processing or valid already */
		goto out;
	}
	authz = json_object_get(o, "authorizations");
	json_t *it;
	json_array_foreach(authz, i, it) {
		bool ok;
		if ((u = json_string_value(it)) == NULL) {
			rc = aclm_error(ACLM_ERR_PARSE, "CA %s: order %s: authorization %zu is not a URL",
			                r->c->ca->name, r->o.url, i);
			goto out;
		}
		if ((rc = answer_authz(r, u, &ok)) != ACLM_OK)
			goto out;
	}
	/* wait until each is valid (or one is invalid) */
	for (;;) {
		n_valid = 0;
		json_array_foreach(authz, i, it) {
			json_t *a = NULL;
			const char *st;
			if ((rc = fetch_json(r, json_string_value(it), "authorization", &a, NULL)) != ACLM_OK)
				goto out;
			st = json_string_value(json_object_get(a, "status"));
			if (st != NULL && strcmp(st, "valid") == 0) {
				n_valid++;
			} else if (st == NULL || strcmp(st, "pending") != 0) {
				const char *id = json_string_value(json_object_get(json_object_get(a, "identifier"),
				                                                   "value"));
				json_t *ch;
				size_t k;
				/* the reason is on the challenge that failed */
				json_array_foreach(json_object_get(a, "challenges"), k, ch) {
					if (json_object_get(ch, "error") != NULL) {
						rc = invalid_error(r, ch, id ? id : "authorization");
						break;
					}
				}
				if (k == json_array_size(json_object_get(a, "challenges")))
					rc = invalid_error(r, a, id ? id : "authorization");
				json_decref(a);
				goto out;
			}
			json_decref(a);
		}
		if (n_valid == json_array_size(authz))
			break;
		if ((rc = poll_wait(r, attempt++, "authorizations")) != ACLM_OK)
			goto out;
	}
	rc = advance(r, ST_READY);
out:
	json_decref(o);
	return rc;
}

/* --- ready: finalize with a CSR of the pending key ------------------------ */

static int pending_key(struct run *r, unsigned char **pkcs8, size_t *len)
{
	unsigned char spki[32];

	if (r->o.key_spki == NULL || r->o.key_sealed == NULL ||
	    aclm_hex_decode(r->o.key_spki, spki, sizeof(spki)) != 32)
		return aclm_error(ACLM_ERR_DB, "order %lld has no pending key", (long long)r->o.id);
	return aclm_keywrap_open(r->kek, spki, sizeof(spki), r->o.key_sealed, r->o.key_sealed_len,
	                         pkcs8, len);
}

static int do_finalize(struct run *r)
{
	json_t *o = NULL, *names = NULL, *v;
	const char **list = NULL;
	unsigned char *pkcs8 = NULL, *csr = NULL;
	size_t pkcs8_len = 0, csr_len = 0, n = 0, i;
	char *csr_b64 = NULL, *payload = NULL;
	struct acme_response resp;
	int rc, attempt = 0;

	memset(&resp, 0, sizeof(resp));
	for (;;) {
		if ((rc = fetch_json(r, r->o.url, "order", &o, NULL)) != ACLM_OK)
			goto out;
		take_order_fields(r, o);
		if (strcmp(r->o.status, "ready") == 0)
			break;
		if (strcmp(r->o.status, "processing") == 0 || strcmp(r->o.status, "valid") == 0) {
			rc = advance(r, ST_FINALIZED);  /* finalized before a crash */
			goto out;
		}
		if (strcmp(r->o.status, "pending") != 0) {
			rc = invalid_error(r, o, "the order");
			goto out;
		}
		json_decref(o);
		o = NULL;
		if ((rc = poll_wait(r, attempt++, "the order to be ready")) != ACLM_OK)
			goto out;
	}
	names = json_loads(r->o.identifiers, 0, NULL);
	n = json_array_size(names);
	list = calloc(n ? n : 1, sizeof(*list));
	if (list == NULL) {
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
		goto out;
	}
	json_array_foreach(names, i, v)
		list[i] = json_string_value(v);
	{
		struct aclm_csr_names cn = { list, n };
		if ((rc = pending_key(r, &pkcs8, &pkcs8_len)) != ACLM_OK ||
		    (rc = aclm_csr_build(pkcs8, pkcs8_len, &cn, &csr, &csr_len)) != ACLM_OK ||
		    (rc = acme_b64url_encode(csr, csr_len, &csr_b64)) != ACLM_OK)
			goto out;
	}
	payload = malloc(strlen(csr_b64) + 16);
	if (payload == NULL) {
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
		goto out;
	}
	snprintf(payload, strlen(csr_b64) + 16, "{\"csr\":\"%s\"}", csr_b64);
	if ((rc = acme_post(r->c, &r->c->account, false, r->o.finalize_url, payload, "finalize",
	                    &resp)) != ACLM_OK)
		goto out;
	rc = advance(r, ST_FINALIZED);
out:
	if (pkcs8 != NULL)
		OPENSSL_clear_free(pkcs8, pkcs8_len);
	free(csr);
	free(csr_b64);
	free(payload);
	free(list);
	json_decref(names);
	json_decref(o);
	acme_response_free(&resp);
	return rc;
}

/* --- finalized: wait for the certificate URL ------------------------------ */

static int do_wait_valid(struct run *r)
{
	int rc, attempt = 0;

	for (;;) {
		json_t *o = NULL;
		if ((rc = fetch_json(r, r->o.url, "order", &o, NULL)) != ACLM_OK)
			return rc;
		take_order_fields(r, o);
		if (strcmp(r->o.status, "valid") == 0 && r->o.cert_url != NULL) {
			json_decref(o);
			return advance(r, ST_VALID);
		}
		if (strcmp(r->o.status, "processing") != 0 && strcmp(r->o.status, "valid") != 0) {
			rc = invalid_error(r, o, "the order");
			json_decref(o);
			return rc;
		}
		json_decref(o);
		if ((rc = poll_wait(r, attempt++, "the certificate")) != ACLM_OK)
			return rc;
	}
}

/* --- valid: download, pick the chain, store everything in one go ---------- */

static const char *top_issuer_cn(const struct aclm_bundle *b)
{
	if (b->n_certs == 0)
		return NULL;
	return b->certs[b->n_certs - 1]->issuer_cn;
}

static int download_chain(struct run *r, const char *url, struct aclm_bundle *out,
                          struct acme_response *keep)
{
	struct acme_response resp;
	int rc;

	if ((rc = acme_post(r->c, &r->c->account, false, url, NULL, "download", &resp)) != ACLM_OK)
		return rc;
	if (strncmp(resp.content_type, "application/pem-certificate-chain", 33) != 0) {
		rc = aclm_error(ACLM_ERR_PARSE, "CA %s: download %s: expected "
		                "application/pem-certificate-chain, got '%s'", r->c->ca->name, url,
		                resp.content_type);
		acme_response_free(&resp);
		return rc;
	}
	rc = aclm_bundle_parse((const unsigned char *)resp.body, resp.body_len, NULL, out);
	if (rc != ACLM_OK || out->n_certs == 0 || out->n_keys != 0) {
		aclm_bundle_free(out);
		rc = aclm_error(ACLM_ERR_PARSE, "CA %s: download %s: not a PEM certificate chain",
		                r->c->ca->name, url);
		acme_response_free(&resp);
		return rc;
	}
	if (keep != NULL)
		*keep = resp;
	else
		acme_response_free(&resp);
	return ACLM_OK;
}

static int store_issued(struct run *r, struct aclm_bundle *b)
{
	struct aclm_cert *leaf = b->certs[0];
	unsigned char *pkcs8 = NULL;
	size_t pkcs8_len = 0;
	int64_t cert_id = 0, now = aclm_now();
	bool is_new = false, stored = false;
	char loc[ACME_MAX_URL + 80];
	int rc;

	if (strcmp(leaf->spki_hex, r->o.key_spki) != 0)
		return aclm_error(ACLM_ERR_CRYPTO, "CA %s: order %s: the certificate is not for the "
		                  "key we sent (SPKI %s, expected %s)", r->c->ca->name, r->o.url,
		                  leaf->spki_hex, r->o.key_spki);
	snprintf(loc, sizeof(loc), "%s %s", r->c->ca->name, r->o.cert_url);
	if ((rc = aclm_store_begin(r->st)) != ACLM_OK)
		return rc;
	/* the chain first, so the leaf links to its issuer */
	for (size_t i = b->n_certs; i-- > 1;) {
		int64_t id;
		bool n;
		if ((rc = aclm_store_put_cert(r->st, b->certs[i], &id, &n)) != ACLM_OK)
			goto fail;
	}
	if ((rc = aclm_store_put_cert(r->st, leaf, &cert_id, &is_new)) != ACLM_OK ||
	    (rc = aclm_store_put_private_key(r->st, leaf->spki_hex, r->o.key_sealed,
	                                     r->o.key_sealed_len, &stored)) != ACLM_OK ||
	    (rc = aclm_store_add_observation(r->st, cert_id, ACLM_SRC_ACME, loc, now)) != ACLM_OK ||
	    (rc = aclm_store_managed_set_current(r->st, r->o.managed_id, cert_id, r->c->ca->name,
	                                         aclm_acme_renew_at(leaf->not_before, leaf->not_after,
	                                                            (uint64_t)r->o.managed_id * 7919u +
	                                                            (uint64_t)now))) != ACLM_OK)
		goto fail;
	r->o.cert_id = cert_id;
	set_str(&r->o.state, states[ST_DONE].name);
	if ((rc = aclm_store_acme_order_update(r->st, &r->o)) != ACLM_OK)
		goto fail;
	{
		json_t *d = json_pack("{s:s, s:I, s:I, s:s, s:s}", "ca", r->c->ca->name,
		                      "managed", (json_int_t)r->o.managed_id, "cert", (json_int_t)cert_id,
		                      "order", r->o.url, "fingerprint", leaf->fingerprint_hex);
		char *txt = json_dumps(d, JSON_COMPACT);
		rc = aclm_store_append_event(r->st, "acme.issued", leaf->subject_cn ? leaf->subject_cn :
		                             leaf->fingerprint_hex, txt);
		free(txt);
		json_decref(d);
		if (rc != ACLM_OK)
			goto fail;
	}
	if ((rc = aclm_store_commit(r->st)) != ACLM_OK)
		return rc;
	r->res->cert_id = cert_id;
	r->res->not_after = leaf->not_after;
	aclm_strlcpy(r->res->fingerprint, leaf->fingerprint_hex, sizeof(r->res->fingerprint));
	(void)pkcs8;
	(void)pkcs8_len;
	return ACLM_OK;
fail:
	{
		char saved[1024];
		aclm_strlcpy(saved, aclm_errmsg(), sizeof(saved));
		aclm_store_rollback(r->st);
		aclm_error(rc, "%s", saved);
	}
	return rc;
}

static int do_download(struct run *r)
{
	struct aclm_bundle b;
	struct acme_response resp;
	const char *want = r->c->ca->preferred_chain;
	int rc;

	memset(&resp, 0, sizeof(resp));
	memset(&b, 0, sizeof(b));
	if ((rc = download_chain(r, r->o.cert_url, &b, &resp)) != ACLM_OK)
		return rc;
	if (want != NULL && (top_issuer_cn(&b) == NULL || strcmp(top_issuer_cn(&b), want) != 0)) {
		for (size_t i = 0; i < resp.n_alternates; i++) {
			struct aclm_bundle alt;
			memset(&alt, 0, sizeof(alt));
			if (download_chain(r, resp.alternates[i], &alt, NULL) != ACLM_OK)
				continue;
			const char *top = top_issuer_cn(&alt);
			if (top != NULL && strcmp(top, want) == 0 &&
			    strcmp(alt.certs[0]->fingerprint_hex, b.certs[0]->fingerprint_hex) == 0) {
				aclm_bundle_free(&b);
				b = alt;
				break;
			}
			aclm_bundle_free(&alt);
		}
	}
	rc = store_issued(r, &b);
	aclm_bundle_free(&b);
	acme_response_free(&resp);
	if (rc == ACLM_OK) {
		const char *kill_at = getenv("ACLM_TEST_ACME_KILL_AT");
		if (kill_at != NULL && strcmp(kill_at, "done") == 0)
			raise(SIGKILL);
	}
	return rc;
}

/* --- one CA --------------------------------------------------------------- */

static void cleanup_solvers(struct run *r)
{
	for (size_t i = 0; i + 1 < r->n_dns_cleanup; i += 2) {
		const struct aclm_acme_solver *s = &r->req->solver;
		if (s->dns_server != NULL) {
			struct acme_rfc2136 d;
			if (acme_rfc2136_load(s->dns_server, s->dns_zone, s->tsig_key, &d) != ACLM_OK ||
			    acme_rfc2136_update(&d, false, r->dns_cleanup[i], r->dns_cleanup[i + 1]) != ACLM_OK)
				aclm_warn("%s", aclm_errmsg());
			OPENSSL_cleanse(&d, sizeof(d));
		} else if (acme_dns_hook(s->dns_hook, "remove", r->dns_cleanup[i],
		                         r->dns_cleanup[i + 1]) != ACLM_OK) {
			aclm_warn("%s", aclm_errmsg());
		}
	}
	for (size_t i = 0; i < r->n_dns_cleanup; i++)
		free(r->dns_cleanup[i]);
	free(r->dns_cleanup);
	for (size_t i = 0; i < r->n_webroot_tokens; i++) {
		acme_webroot_remove(r->req->solver.webroot, r->webroot_tokens[i]);
		free(r->webroot_tokens[i]);
	}
	free(r->webroot_tokens);
	r->dns_cleanup = r->webroot_tokens = NULL;
	r->n_dns_cleanup = r->n_webroot_tokens = 0;
}

static int names_json(const struct aclm_acme_request *req, char **out)
{
	json_t *a = json_array();
	for (size_t i = 0; i < req->n_names; i++)
		json_array_append_new(a, json_string(req->names[i]));
	*out = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	return *out ? ACLM_OK : aclm_error(ACLM_ERR_NOMEM, "out of memory");
}

struct spki_row {
	char spki[65];
};

static int spki_fn(void *ctx, const struct aclm_cert_row *row)
{
	aclm_strlcpy(((struct spki_row *)ctx)->spki, row->spki, 65);
	return 0;
}

/* --reuse-key: the sealed key of the current certificate, as stored (its
 * AAD is its SPKI, so the blob moves to the order unchanged). */
static int reuse_current_key(struct run *r)
{
	struct aclm_managed_row m;
	struct spki_row sr = { "" };
	int rc;

	if ((rc = aclm_store_managed_get(r->st, r->res->managed_id, &m)) != ACLM_OK)
		return rc;
	if (m.current_cert_id == 0) {
		aclm_managed_row_free(&m);
		return ACLM_ERR_NOTFOUND;  /* first issue: a fresh key */
	}
	rc = aclm_store_get_cert(r->st, m.current_cert_id, spki_fn, &sr);
	aclm_managed_row_free(&m);
	if (rc != ACLM_OK || sr.spki[0] == '\0')
		return ACLM_ERR_NOTFOUND;
	if ((rc = aclm_store_get_private_key(r->st, sr.spki, &r->o.key_sealed,
	                                     &r->o.key_sealed_len)) != ACLM_OK) {
		aclm_warn("--reuse-key: the current key is not stored; using a fresh one");
		return rc;
	}
	r->o.key_spki = aclm_strdup(sr.spki);
	return ACLM_OK;
}

/* A new order row: the key is generated and sealed first. */
static int create_order(struct run *r, const char *profile)
{
	unsigned char *pkcs8 = NULL, spki[32];
	size_t pkcs8_len = 0;
	char spki_hex[65];
	int rc;

	memset(&r->o, 0, sizeof(r->o));
	r->o.managed_id = r->res->managed_id;
	r->o.ca = aclm_strdup(r->c->ca->name);
	r->o.state = aclm_strdup(states[ST_NEW].name);
	r->o.key_type = aclm_strdup(aclm_keygen_name(r->req->key));
	r->o.replaces = r->req->replaces ? aclm_strdup(r->req->replaces) : NULL;
	r->o.profile = profile ? aclm_strdup(profile) : NULL;
	if ((rc = names_json(r->req, &r->o.identifiers)) != ACLM_OK)
		return rc;
	if (r->req->reuse_key && reuse_current_key(r) == ACLM_OK) {
		rc = aclm_store_acme_order_add(r->st, &r->o, &r->o.id);
		goto out;
	}
	if ((rc = aclm_key_generate(r->req->key, &pkcs8, &pkcs8_len)) != ACLM_OK ||
	    (rc = aclm_key_spki_sha256(pkcs8, pkcs8_len, spki, spki_hex)) != ACLM_OK ||
	    (rc = aclm_keywrap_seal(r->kek, spki, sizeof(spki), pkcs8, pkcs8_len, &r->o.key_sealed,
	                            &r->o.key_sealed_len)) != ACLM_OK)
		goto out;
	r->o.key_spki = aclm_strdup(spki_hex);
	rc = aclm_store_acme_order_add(r->st, &r->o, &r->o.id);
	if (rc == ACLM_OK && getenv("ACLM_TEST_ACME_KILL_AT") != NULL &&
	    strcmp(getenv("ACLM_TEST_ACME_KILL_AT"), "new") == 0)
		raise(SIGKILL);  /* before newOrder: the key is stored, the CA knows nothing */
out:
	if (pkcs8 != NULL)
		OPENSSL_clear_free(pkcs8, pkcs8_len);
	return rc;
}

static bool has_profile(const struct acme_directory *d, const char *p)
{
	for (size_t i = 0; i < d->n_profiles; i++)
		if (strcmp(d->profiles[i], p) == 0)
			return true;
	return false;
}

static int run_ca(struct run *r, const struct aclm_acme_ca *ca, bool resume)
{
	struct acme_client c;
	const char *profile = r->req->profile ? r->req->profile : ca->profile;
	int rc, st;

	if ((rc = acme_client_open(&c, ca)) != ACLM_OK) {
		if (resume && r->req->n_cas > 1) {
			/* unreachable: give the certificate to the next CA */
			char saved[1024];
			aclm_strlcpy(saved, aclm_errmsg(), sizeof(saved));
			set_str(&r->o.error, saved);
			set_str(&r->o.state, states[ST_FAILED].name);
			aclm_store_acme_order_update(r->st, &r->o);
			aclm_error(rc, "%s", saved);
		}
		return rc;
	}
	r->c = &c;
	r->deadline = aclm_now() + (ca->timeout > 0 ? ca->timeout : 300);
	if (profile != NULL && !resume) {
		if (c.dir.n_profiles == 0 && r->req->profile != NULL) {
			rc = aclm_error(ACLM_ERR_UNSUPPORTED, "CA %s advertises no profiles; --profile %s "
			                "cannot be used", ca->name, profile);
			goto out;
		}
		if (c.dir.n_profiles > 0 && !has_profile(&c.dir, profile)) {
			rc = aclm_error(ACLM_ERR_USAGE, "CA %s has no profile '%s'", ca->name, profile);
			goto out;
		}
		if (c.dir.n_profiles == 0)
			profile = NULL;  /* the CA's configured default, but the CA has none */
	}
	if ((rc = acme_account_ensure(&c, r->st, r->kek)) != ACLM_OK)
		goto out;
	if (!resume && (rc = create_order(r, profile)) != ACLM_OK)
		goto out;
	aclm_strlcpy(r->res->ca, ca->name, sizeof(r->res->ca));
	r->res->order_id = r->o.id;
	while ((st = state_of(r->o.state)) >= 0 && states[st].handler != NULL) {
		if ((rc = states[st].handler(r)) != ACLM_OK)
			break;
	}
	if (rc == ACLM_OK && state_of(r->o.state) != ST_DONE)
		rc = aclm_error(ACLM_ERR_DB, "order %lld is in unknown state '%s'", (long long)r->o.id,
		                r->o.state);
out:
	if (rc != ACLM_OK && r->o.id != 0 && state_of(r->o.state) != ST_DONE) {
		/* The order is dead at this CA: free the slot for the next CA.
		 * A transport failure keeps it open to be resumed. */
		bool transient = c.last_status == 0 || c.last_status >= 500 || c.last_status == 429;
		if (!transient || r->req->n_cas > 1) {
			char saved[1024];
			aclm_strlcpy(saved, aclm_errmsg(), sizeof(saved));
			set_str(&r->o.error, saved);
			set_str(&r->o.state, states[ST_FAILED].name);
			aclm_store_acme_order_update(r->st, &r->o);
			aclm_error(rc, "%s", saved);
		}
	}
	if (rc != ACLM_OK && (c.last_status == 429 || c.last_status >= 500)) {
		int64_t until = 0, failures = 0;
		char saved[1024];
		aclm_strlcpy(saved, aclm_errmsg(), sizeof(saved));
		aclm_store_acme_ca_backoff(r->st, ca->name, &until, &failures);
		failures++;
		until = aclm_now() + (c.last_retry_after > 0 ? c.last_retry_after :
		                      (failures > 10 ? 3600 : (int64_t)60 << (failures - 1)));
		aclm_store_acme_ca_set_backoff(r->st, ca->name, until, failures, saved);
		aclm_error(rc, "%s", saved);
	}
	cleanup_solvers(r);
	r->c = NULL;
	acme_client_close(&c);
	return rc;
}

/* --- issuing with failover ------------------------------------------------ */

static void event_failover(struct aclm_store *st, const char *subject, const char *ca,
                           const char *next, const char *reason)
{
	json_t *d = json_pack("{s:s, s:s?, s:s}", "ca", ca, "next", next, "reason", reason);
	char *txt = json_dumps(d, JSON_COMPACT);
	aclm_store_append_event(st, "acme.failover", subject, txt);
	free(txt);
	json_decref(d);
}

static int ensure_managed(struct aclm_store *st, const struct aclm_acme_request *req,
                          int64_t *id)
{
	struct aclm_managed_row m;
	json_t *cas = json_array(), *solver;
	char name[512];
	int rc;

	memset(&m, 0, sizeof(m));
	for (size_t i = 0; i < req->n_cas; i++)
		json_array_append_new(cas, json_string(req->cas[i]));
	solver = json_pack("{s:s}", "type", aclm_acme_chall_name(req->solver.type));
	if (req->solver.standalone)
		json_object_set_new(solver, "standalone", json_string(req->solver.standalone));
	if (req->solver.webroot)
		json_object_set_new(solver, "webroot", json_string(req->solver.webroot));
	if (req->solver.dns_hook)
		json_object_set_new(solver, "dns_hook", json_string(req->solver.dns_hook));
	if (req->solver.dns_wait)
		json_object_set_new(solver, "dns_wait", json_integer(req->solver.dns_wait));
	if (req->solver.dns_server)
		json_object_set_new(solver, "dns_server", json_string(req->solver.dns_server));
	if (req->solver.dns_zone)
		json_object_set_new(solver, "dns_zone", json_string(req->solver.dns_zone));
	if (req->solver.tsig_key)
		json_object_set_new(solver, "tsig_key", json_string(req->solver.tsig_key));
	if (req->solver.dns_timeout)
		json_object_set_new(solver, "dns_timeout", json_integer(req->solver.dns_timeout));
	snprintf(name, sizeof(name), "%s/%s", req->names[0], aclm_keygen_name(req->key));
	m.name = name;
	m.key_type = (char *)aclm_keygen_name(req->key);
	m.profile = (char *)req->profile;
	m.reuse_key = req->reuse_key;
	m.cas = json_dumps(cas, JSON_COMPACT);
	m.solver = json_dumps(solver, JSON_COMPACT);
	if ((rc = names_json(req, &m.identifiers)) == ACLM_OK)
		rc = aclm_store_managed_upsert(st, &m, id);
	free(m.cas);
	free(m.solver);
	free(m.identifiers);
	json_decref(cas);
	json_decref(solver);
	return rc;
}

int aclm_acme_issue(struct aclm_store *st, const struct aclm_kek *kek,
                    const struct aclm_acme_ca *cas, size_t n_cas,
                    const struct aclm_acme_request *req, struct aclm_acme_result *res)
{
	struct run r;
	struct aclm_acme_order_row open;
	const char *subject;
	bool has_open = false;
	int rc = ACLM_OK;

	memset(&r, 0, sizeof(r));
	memset(res, 0, sizeof(*res));
	if (req->n_names == 0 || req->n_cas == 0)
		return aclm_error(ACLM_ERR_USAGE, "nothing to issue: no names or no CA");
	if (req->n_names > ACME_MAX_NAMES)
		return aclm_error(ACLM_ERR_USAGE, "too many names for one certificate (%zu, at most %d; "
		                  "--each makes one certificate per name)", req->n_names, ACME_MAX_NAMES);
	subject = req->names[0];
	for (size_t i = 0; i < req->n_names; i++) {
		if (req->names[i][0] == '*' && req->solver.type != ACLM_CHALL_DNS01)
			return aclm_error(ACLM_ERR_USAGE, "%s: wildcard names can only be validated with "
			                  "dns-01 (RFC 8555 7.1.3), not %s", req->names[i],
			                  aclm_acme_chall_name(req->solver.type));
		if (aclm_is_ip_literal(req->names[i]) && req->solver.type == ACLM_CHALL_DNS01)
			return aclm_error(ACLM_ERR_USAGE, "%s: IP addresses cannot be validated with dns-01 "
			                  "(RFC 8738)", req->names[i]);
	}
	for (size_t i = 0; i < req->n_cas; i++)
		if (aclm_acme_ca_find(cas, n_cas, req->cas[i]) == NULL)
			return aclm_error(ACLM_ERR_CONFIG, "CA '%s' is not declared in acme.cas", req->cas[i]);
	if (req->solver.type == ACLM_CHALL_DNS01 && req->solver.dns_hook == NULL &&
	    req->solver.dns_server == NULL)
		return aclm_error(ACLM_ERR_USAGE, "dns-01 needs a DNS provider (--dns-hook SCRIPT, or "
		                  "--dns-server with --dns-zone and --tsig-key)");
	if (req->solver.dns_server != NULL) {
		struct acme_rfc2136 d;
		int lrc = acme_rfc2136_load(req->solver.dns_server, req->solver.dns_zone,
		                            req->solver.tsig_key, &d);
		OPENSSL_cleanse(&d, sizeof(d));
		if (lrc != ACLM_OK)
			return lrc;
	}
	if (req->solver.type != ACLM_CHALL_DNS01 && req->solver.webroot == NULL &&
	    req->solver.standalone == NULL)
		return aclm_error(ACLM_ERR_USAGE, "%s needs --standalone ADDR:PORT%s",
		                  aclm_acme_chall_name(req->solver.type),
		                  req->solver.type == ACLM_CHALL_HTTP01 ? " or --webroot DIR" : "");

	res->managed_id = req->managed_id;
	if (res->managed_id == 0 && (rc = ensure_managed(st, req, &res->managed_id)) != ACLM_OK)
		return rc;
	if (req->pair_id != 0)
		aclm_store_managed_set_pair(st, res->managed_id, req->pair_id);
	rc = aclm_store_acme_order_open(st, res->managed_id, &open);
	if (rc == ACLM_OK)
		has_open = true;
	else if (rc != ACLM_ERR_NOTFOUND)
		return rc;

	r.responder = req->solver.responder;
	if (r.responder == NULL && req->solver.type != ACLM_CHALL_DNS01 &&
	    req->solver.webroot == NULL &&
	    (rc = aclm_acme_responder_start(req->solver.standalone, req->solver.type,
	                                    &r.responder)) != ACLM_OK)
		goto out;
	r.st = st;
	r.kek = kek;
	r.req = req;
	r.res = res;

	if (has_open) {
		const struct aclm_acme_ca *ca = aclm_acme_ca_find(cas, n_cas, open.ca);
		if (ca == NULL) {
			/* its CA is gone from the configuration: abandon the order */
			set_str(&open.state, states[ST_FAILED].name);
			set_str(&open.error, "CA no longer configured");
			aclm_store_acme_order_update(st, &open);
			aclm_acme_order_row_free(&open);
		} else {
			aclm_info("%s: resuming order %s at CA %s (%s)", subject,
			          open.url ? open.url : "(not yet sent)", ca->name, open.state);
			r.o = open;
			res->resumed = true;
			rc = run_ca(&r, ca, true);
			aclm_acme_order_row_free(&r.o);
			if (rc == ACLM_OK)
				goto out;
			aclm_warn("%s", aclm_errmsg());
		}
	}
	for (size_t i = 0; i < req->n_cas; i++) {
		const struct aclm_acme_ca *ca = aclm_acme_ca_find(cas, n_cas, req->cas[i]);
		const char *next = i + 1 < req->n_cas ? req->cas[i + 1] : NULL;
		int64_t until = 0, failures = 0;
		char reason[1024];

		aclm_store_acme_ca_backoff(st, ca->name, &until, &failures);
		int64_t recent = 0;
		if (ca->rate_window > 0)
			aclm_store_acme_orders_since(st, ca->name, aclm_now() - ca->rate_window, &recent);
		if (ca->rate_window > 0 && recent >= ca->rate_orders) {
			rc = aclm_error(ACLM_ERR_IO, "CA %s: the configured rate limit of %lld orders per "
			                "%llds is reached", ca->name, (long long)ca->rate_orders,
			                (long long)ca->rate_window);
		} else if (until > aclm_now()) {
			char iso[32];
			aclm_time_iso(until, iso, sizeof(iso));
			rc = aclm_error(ACLM_ERR_IO, "CA %s is backing off until %s after %lld failures",
			                ca->name, iso, (long long)failures);
		} else {
			rc = run_ca(&r, ca, false);
			aclm_acme_order_row_free(&r.o);
			if (rc == ACLM_OK) {
				if (failures > 0)
					aclm_store_acme_ca_set_backoff(st, ca->name, 0, 0, NULL);
				break;
			}
			if (rc == ACLM_ERR_USAGE && strstr(aclm_errmsg(), "has no profile") != NULL)
				break;  /* a request error, not a CA failure */
		}
		aclm_strlcpy(reason, aclm_errmsg(), sizeof(reason));
		event_failover(st, subject, ca->name, next, reason);
		if (next != NULL)
			aclm_warn("%s; trying CA %s", reason, next);
		aclm_error(rc, "%s", reason);
	}
out:
	if (rc != ACLM_OK) {
		char saved[1024];
		struct aclm_managed_row m;
		int64_t delay = 300;
		aclm_strlcpy(saved, aclm_errmsg(), sizeof(saved));
		/* 5 min, doubling with each failure in a row, at most a day */
		if (aclm_store_managed_get(st, res->managed_id, &m) == ACLM_OK) {
			delay = (int64_t)300 << (m.failures < 9 ? m.failures : 9);
			if (delay > 86400)
				delay = 86400;
			aclm_managed_row_free(&m);
		}
		aclm_store_managed_set_failure(st, res->managed_id, NULL, saved, aclm_now() + delay);
		aclm_error(rc, "%s", saved);
	}
	if (r.responder != NULL && r.responder != req->solver.responder)
		aclm_acme_responder_stop(r.responder);
	return rc;
}
