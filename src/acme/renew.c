/* Renewal: when (ARI, RFC 9773, else 2/3 of the lifetime with jitter), and
 * renewing every managed certificate that is due, pairs together. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "acme-int.h"
#include "aclm/err.h"
#include "aclm/log.h"
#include "aclm/store.h"
#include "aclm/store_acme.h"
#include "aclm/str.h"
#include "aclm/timeutil.h"

/* splitmix64: a well-spread value from a small seed */
static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

int64_t aclm_acme_renew_at(int64_t not_before, int64_t not_after, uint64_t seed)
{
	int64_t life = not_after - not_before, at, jitter_span;

	if (life <= 0)
		return not_before;
	at = life <= 10 * 86400 ? not_before + life / 2 : not_before + life / 3 * 2;
	jitter_span = life / 20;
	if (jitter_span > 0)
		at -= (int64_t)(mix(seed) % (uint64_t)jitter_span);
	return at;
}

int aclm_acme_ari_cert_id(const unsigned char *der, size_t der_len, char *out, size_t out_size)
{
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)der_len);
	const ASN1_OCTET_STRING *akid;
	const ASN1_INTEGER *serial;
	char *a = NULL, *b = NULL;
	unsigned char *sder = NULL;
	int n, rc = ACLM_ERR_PARSE;

	if (x == NULL)
		return aclm_error(ACLM_ERR_PARSE, "ARI: not a DER certificate");
	akid = X509_get0_authority_key_id(x);
	serial = X509_get0_serialNumber(x);
	if (akid == NULL || ASN1_STRING_length(akid) == 0) {
		rc = aclm_error(ACLM_ERR_PARSE, "ARI: the certificate has no authority key identifier");
		goto out;
	}
	/* the serial's DER content octets (with a leading 00 when positive
	 * and the high bit is set), without tag and length */
	n = i2d_ASN1_INTEGER(serial, &sder);
	if (n < 3 || sder[1] >= 0x80) {
		rc = aclm_error(ACLM_ERR_PARSE, "ARI: unusual serial number encoding");
		goto out;
	}
	if ((rc = acme_b64url_encode(ASN1_STRING_get0_data(akid), (size_t)ASN1_STRING_length(akid),
	                             &a)) != ACLM_OK ||
	    (rc = acme_b64url_encode(sder + 2, (size_t)n - 2, &b)) != ACLM_OK)
		goto out;
	if ((size_t)snprintf(out, out_size, "%s.%s", a, b) >= out_size)
		rc = aclm_error(ACLM_ERR_TOOBIG, "ARI: certificate id too long");
out:
	OPENSSL_free(sder);
	free(a);
	free(b);
	X509_free(x);
	return rc;
}

int aclm_acme_ari_parse(const char *json, size_t len, struct aclm_acme_ari *out)
{
	json_error_t jerr;
	json_t *root = json_loadb(json, len, 0, &jerr), *w;
	const char *s, *e;
	int rc = ACLM_OK;

	memset(out, 0, sizeof(*out));
	if (root == NULL)
		return aclm_error(ACLM_ERR_PARSE, "renewalInfo is not JSON (%s)", jerr.text);
	w = json_object_get(root, "suggestedWindow");
	s = json_string_value(json_object_get(w, "start"));
	e = json_string_value(json_object_get(w, "end"));
	if (!json_is_object(w) || s == NULL || e == NULL) {
		rc = aclm_error(ACLM_ERR_PARSE, "renewalInfo: suggestedWindow needs start and end");
		goto out;
	}
	{
		/* RFC 3339; fractional seconds and an offset other than Z are
		 * reduced to what aclm_time_parse_iso reads */
		char sb[32], eb[32];
		size_t sl = strcspn(s, ".Z+"), el = strcspn(e, ".Z+");
		if (sl != 19 || el != 19) {
			rc = aclm_error(ACLM_ERR_PARSE, "renewalInfo: window times are not RFC 3339 UTC");
			goto out;
		}
		snprintf(sb, sizeof(sb), "%.19sZ", s);
		snprintf(eb, sizeof(eb), "%.19sZ", e);
		if (aclm_time_parse_iso(sb, &out->start) != ACLM_OK ||
		    aclm_time_parse_iso(eb, &out->end) != ACLM_OK) {
			rc = aclm_error(ACLM_ERR_PARSE, "renewalInfo: bad window time '%s' / '%s'", s, e);
			goto out;
		}
	}
	if (out->end < out->start) {
		rc = aclm_error(ACLM_ERR_PARSE, "renewalInfo: window ends before it starts");
		goto out;
	}
	if ((s = json_string_value(json_object_get(root, "explanationURL"))) != NULL)
		aclm_strlcpy(out->explanation, s, sizeof(out->explanation));
out:
	json_decref(root);
	return rc;
}

int64_t aclm_acme_ari_pick(const struct aclm_acme_ari *w, int64_t now, uint64_t seed)
{
	int64_t span;

	if (w->end <= now)
		return now;
	span = w->end - w->start;
	if (span <= 0)
		return w->start;
	return w->start + (int64_t)(mix(seed) % (uint64_t)span);
}

/* --- renewing -------------------------------------------------------------- */

struct due {
	struct aclm_managed_row m;
	bool selected;
	int64_t when;
	char ari_id[256];
};

struct collect {
	struct due *items;
	size_t n;
};

static int collect_fn(void *ctx, const struct aclm_managed_row *r)
{
	struct collect *c = ctx;
	struct due *n = realloc(c->items, (c->n + 1) * sizeof(*n));

	if (n == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	c->items = n;
	memset(&n[c->n], 0, sizeof(n[c->n]));
	/* copy: the row's strings belong to the store */
	n[c->n].m = *r;
	n[c->n].m.name = aclm_strdup(r->name);
	n[c->n].m.identifiers = aclm_strdup(r->identifiers);
	n[c->n].m.key_type = aclm_strdup(r->key_type);
	n[c->n].m.ca = aclm_strdup(r->ca);
	n[c->n].m.cas = aclm_strdup(r->cas);
	n[c->n].m.solver = aclm_strdup(r->solver);
	n[c->n].m.profile = aclm_strdup(r->profile);
	n[c->n].m.status = aclm_strdup(r->status);
	n[c->n].m.last_error = aclm_strdup(r->last_error);
	c->n++;
	return 0;
}

/* ARI: ask the CA that issued the current certificate (acme.h). */
int aclm_acme_ari_check(struct aclm_store *st, const struct aclm_acme_ca *ca, int64_t managed_id,
                        int64_t cert_id, uint64_t seed, int64_t *when, char *ari_id,
                        size_t ari_id_size)
{
	struct acme_client c;
	struct acme_response resp;
	unsigned char *der = NULL;
	size_t der_len = 0;
	struct aclm_acme_ari w;
	char url[ACME_MAX_URL + 256];
	int rc;

	if ((rc = acme_client_open(&c, ca)) != ACLM_OK)
		return rc;
	if (c.dir.renewal_info[0] == '\0')
		goto out;
	if ((rc = aclm_store_get_cert_der(st, cert_id, &der, &der_len)) != ACLM_OK ||
	    (rc = aclm_acme_ari_cert_id(der, der_len, ari_id, ari_id_size)) != ACLM_OK)
		goto out;
	snprintf(url, sizeof(url), "%s%s%s", c.dir.renewal_info,
	         aclm_str_has_suffix(c.dir.renewal_info, "/") ? "" : "/", ari_id);
	if ((rc = acme_get(&c, url, &resp)) != ACLM_OK)
		goto out;
	if (resp.status != 200) {
		rc = aclm_error(ACLM_ERR_IO, "CA %s: renewalInfo: HTTP %ld", ca->name, resp.status);
	} else if ((rc = aclm_acme_ari_parse(resp.body, resp.body_len, &w)) == ACLM_OK) {
		/* Ask again after the Retry-After the CA gives (RFC 9773 section
		 * 4.3), within a minute and a day; six hours when it gives none. */
		int64_t again = resp.retry_after > 0 ? resp.retry_after : 6 * 3600;
		if (again < 60)
			again = 60;
		if (again > 86400)
			again = 86400;
		*when = aclm_acme_ari_pick(&w, aclm_now(), seed);
		if (aclm_store_managed_set_ari_check(st, managed_id, aclm_now() + again) != ACLM_OK)
			aclm_warn("CA %s: %s", ca->name, aclm_errmsg());
	} else {
		aclm_error_wrap(rc, "CA %s", ca->name);
	}
	acme_response_free(&resp);
out:
	free(der);
	acme_client_close(&c);
	return rc;
}

static int json_strings(const char *txt, char ***out, size_t *n)
{
	json_t *a = json_loads(txt ? txt : "[]", 0, NULL), *v;
	size_t i;

	*out = NULL;
	*n = 0;
	if (!json_is_array(a)) {
		json_decref(a);
		return aclm_error(ACLM_ERR_DB, "stored list '%s' is not a JSON array", txt ? txt : "");
	}
	*out = calloc(json_array_size(a) + 1, sizeof(char *));
	json_array_foreach(a, i, v)
		if (json_is_string(v))
			(*out)[(*n)++] = aclm_strdup(json_string_value(v));
	json_decref(a);
	return ACLM_OK;
}

static int renew_one(struct aclm_store *st, const struct aclm_kek *kek,
                     const struct aclm_acme_ca *cas, size_t n_cas,
                     const struct aclm_managed_row *m, const char *replaces)
{
	struct aclm_acme_request req;
	struct aclm_acme_result res;
	char **names = NULL, **calist = NULL;
	size_t n_names = 0, n_calist = 0;
	json_t *solver = NULL;
	const char *t;
	int rc;

	memset(&req, 0, sizeof(req));
	if ((rc = json_strings(m->identifiers, &names, &n_names)) != ACLM_OK ||
	    (rc = json_strings(m->cas, &calist, &n_calist)) != ACLM_OK)
		goto out;
	solver = json_loads(m->solver ? m->solver : "{}", 0, NULL);
	t = json_string_value(json_object_get(solver, "type"));
	if (t == NULL || (rc = aclm_acme_chall_parse(t, &req.solver.type)) != ACLM_OK) {
		rc = aclm_error(ACLM_ERR_DB, "managed certificate %lld has no challenge settings",
		                (long long)m->id);
		goto out;
	}
	req.solver.standalone = json_string_value(json_object_get(solver, "standalone"));
	req.solver.webroot = json_string_value(json_object_get(solver, "webroot"));
	req.solver.dns_hook = json_string_value(json_object_get(solver, "dns_hook"));
	req.solver.dns_wait = json_integer_value(json_object_get(solver, "dns_wait"));
	req.solver.dns_server = json_string_value(json_object_get(solver, "dns_server"));
	req.solver.dns_zone = json_string_value(json_object_get(solver, "dns_zone"));
	req.solver.tsig_key = json_string_value(json_object_get(solver, "tsig_key"));
	req.solver.dns_timeout = json_integer_value(json_object_get(solver, "dns_timeout"));
	if ((rc = aclm_keygen_parse(m->key_type ? m->key_type : "ec256", &req.key)) != ACLM_OK)
		goto out;
	req.names = (const char *const *)names;
	req.n_names = n_names;
	req.cas = (const char *const *)calist;
	req.n_cas = n_calist;
	req.profile = m->profile;
	req.reuse_key = m->reuse_key;
	req.managed_id = m->id;
	req.replaces = replaces;
	rc = aclm_acme_issue(st, kek, cas, n_cas, &req, &res);
out:
	json_decref(solver);
	aclm_acme_names_free(names, n_names);
	aclm_acme_names_free(calist, n_calist);
	return rc;
}

static void report(const struct aclm_acme_renew_opts *o, const struct aclm_managed_row *m,
                   const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void report(const struct aclm_acme_renew_opts *o, const struct aclm_managed_row *m,
                   const char *fmt, ...)
{
	char msg[1200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (o->report != NULL)
		o->report(o->ctx, m->id, m->name, msg);
}

/* A gateway site with cert_source ca: no ACME order can renew it (no
 * challenge settings); the gateway does, inside the built-in CA's window. */
static bool from_builtin_ca(const struct aclm_managed_row *m)
{
	json_t *solver = json_loads(m->solver ? m->solver : "{}", 0, NULL);
	const char *t = json_string_value(json_object_get(solver, "type"));
	bool yes = t != NULL && strcmp(t, "builtin-ca") == 0;

	json_decref(solver);
	return yes;
}

int aclm_acme_renew(struct aclm_store *st, const struct aclm_kek *kek,
                    const struct aclm_acme_ca *cas, size_t n_cas,
                    const struct aclm_acme_renew_opts *o, int *n_renewed, int *n_failed)
{
	struct collect c = { NULL, 0 };
	int64_t now = aclm_now();
	int rc;

	*n_renewed = *n_failed = 0;
	if ((rc = aclm_store_managed_list(st, collect_fn, &c)) != ACLM_OK)
		goto out;
	for (size_t i = 0; i < o->n_ids; i++) {
		bool found = false;
		for (size_t j = 0; j < c.n; j++)
			if (c.items[j].m.id == o->ids[i])
				found = true;
		if (!found) {
			rc = aclm_error(ACLM_ERR_NOTFOUND, "no managed certificate %lld",
			                (long long)o->ids[i]);
			goto out;
		}
	}
	for (size_t j = 0; j < c.n; j++) {
		struct due *d = &c.items[j];
		const struct aclm_acme_ca *ca;
		bool listed = o->n_ids == 0;
		char iso[32];

		for (size_t i = 0; i < o->n_ids; i++)
			if (o->ids[i] == d->m.id)
				listed = true;
		if (!listed || (d->m.status != NULL && strcmp(d->m.status, "revoked") == 0))
			continue;
		if (from_builtin_ca(&d->m)) {
			report(o, &d->m, "issued by the gateway from the built-in CA: the gateway "
			       "renews it");
			continue;
		}
		if (o->force) {
			/* Forced, but still a renewal: name the certificate it replaces
			 * when the CA speaks ARI (RFC 9773 section 5). */
			ca = d->m.ca ? aclm_acme_ca_find(cas, n_cas, d->m.ca) : NULL;
			d->when = now;
			if (d->m.current_cert_id != 0 && ca != NULL &&
			    aclm_acme_ari_check(st, ca, d->m.id, d->m.current_cert_id, (uint64_t)d->m.id, &d->when,
			              d->ari_id, sizeof(d->ari_id)) != ACLM_OK)
				d->ari_id[0] = '\0';
			d->selected = true;
			continue;
		}
		if (d->m.next_attempt_at > now) {
			aclm_time_iso(d->m.next_attempt_at, iso, sizeof(iso));
			report(o, &d->m, "backing off after a failure until %s", iso);
			continue;
		}
		if (d->m.current_cert_id == 0) {  /* never issued: due now */
			d->selected = true;
			continue;
		}
		/* ARI decides when the CA offers it; else the lifetime rule */
		ca = d->m.ca ? aclm_acme_ca_find(cas, n_cas, d->m.ca) : NULL;
		d->when = d->m.renew_at;
		if (ca != NULL && aclm_acme_ari_check(st, ca, d->m.id, d->m.current_cert_id, (uint64_t)d->m.id, &d->when,
		                            d->ari_id, sizeof(d->ari_id)) != ACLM_OK) {
			aclm_warn("%s: ARI failed (%s); using the lifetime rule", d->m.name, aclm_errmsg());
			d->ari_id[0] = '\0';
			d->when = d->m.renew_at;
		}
		if (d->when <= now) {
			d->selected = true;
		} else {
			aclm_time_iso(d->when, iso, sizeof(iso));
			report(o, &d->m, "not due (renews after %s%s)", iso,
			       d->when != d->m.renew_at ? ", suggested by the CA" : "");
		}
	}
	/* a --dual pair renews together */
	for (size_t j = 0; j < c.n; j++) {
		if (!c.items[j].selected || c.items[j].m.pair_id == 0)
			continue;
		for (size_t k = 0; k < c.n; k++)
			if (c.items[k].m.id == c.items[j].m.pair_id && !c.items[k].selected &&
			    (c.items[k].m.status == NULL || strcmp(c.items[k].m.status, "revoked") != 0)) {
				c.items[k].selected = true;
				report(o, &c.items[k].m, "renewed with its pair %lld",
				       (long long)c.items[j].m.id);
			}
	}
	for (size_t j = 0; j < c.n; j++) {
		struct due *d = &c.items[j];

		if (!d->selected)
			continue;
		if (o->dry_run) {
			report(o, &d->m, "due");
			continue;
		}
		if (renew_one(st, kek, cas, n_cas, &d->m, d->ari_id[0] ? d->ari_id : NULL) == ACLM_OK) {
			(*n_renewed)++;
			report(o, &d->m, "renewed");
		} else {
			(*n_failed)++;
			report(o, &d->m, "failed: %s", aclm_errmsg());
		}
	}
	rc = ACLM_OK;
out:
	for (size_t j = 0; j < c.n; j++)
		aclm_managed_row_free(&c.items[j].m);
	free(c.items);
	return rc;
}
