/* Rules: what in the inventory deserves an alert.
 *
 *   expiry          a certificate expires within N days (thresholds, default
 *                   30/14/7/1): one alert per certificate per threshold crossed
 *                   (the tightest one when several are crossed at once)
 *   renewal-failed  a managed certificate whose last renewal attempt failed
 *                   (managed_certificates.failures / last_error, ACME client)
 *   cert-changed    a scan saw another leaf on an endpoint than the scan
 *                   before (finding "certificate-changed") and aclm does not
 *                   know the new certificate (not issued or imported by it)
 *   ghost           a served certificate aclm does not manage ("unmanaged")
 *   unreachable     a scan target did not answer or did not resolve
 *
 * Each candidate has a dedup key (rule + target + threshold); an alert is
 * raised when no alert with that key exists, or the newest is not pending
 * and older than the rule's renotify interval. */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aclm/buf.h"
#include "aclm/err.h"
#include "aclm/log.h"
#include "aclm/scan.h"
#include "aclm/store.h"
#include "aclm/store_acme.h"
#include "aclm/store_notify.h"
#include "aclm/store_scan.h"
#include "aclm/str.h"
#include "aclm/timeutil.h"
#include "notify-int.h"

const char *const aclm_notify_rule_kinds[] = {
	"expiry", "renewal-failed", "cert-changed", "ghost", "unreachable", NULL,
};

bool aclm_notify_rule_kind_valid(const char *kind)
{
	if (kind == NULL)
		return false;
	for (const char *const *k = aclm_notify_rule_kinds; *k != NULL; k++)
		if (strcmp(*k, kind) == 0)
			return true;
	return false;
}

#define MAX_THRESHOLDS 16
static const int default_days[] = { 30, 14, 7, 1 };

/* Thresholds in days, ascending, from params "days" (or the defaults). */
static int thresholds(json_t *params, int out[MAX_THRESHOLDS], size_t *n)
{
	json_t *days = json_object_get(params, "days"), *v;
	size_t i;

	*n = 0;
	if (days == NULL) {
		for (i = sizeof(default_days) / sizeof(default_days[0]); i > 0; i--)
			out[(*n)++] = default_days[i - 1];
		return ACLM_OK;
	}
	if (!json_is_array(days) || json_array_size(days) == 0 ||
	    json_array_size(days) > MAX_THRESHOLDS)
		return aclm_error(ACLM_ERR_USAGE, "days: want a list of 1-%d whole numbers of days",
		                  MAX_THRESHOLDS);
	json_array_foreach(days, i, v) {
		json_int_t d = json_integer_value(v);
		bool seen = false;
		if (!json_is_integer(v) || d < 1 || d > 3650)
			return aclm_error(ACLM_ERR_USAGE, "days: item %zu is not a number of days in "
			                  "1..3650", i + 1);
		for (size_t k = 0; k < *n; k++)
			if (out[k] == (int)d)
				seen = true;
		if (!seen)
			out[(*n)++] = (int)d;
	}
	/* Ascending (insertion sort of at most MAX_THRESHOLDS). */
	for (i = 1; i < *n; i++)
		for (size_t k = i; k > 0 && out[k - 1] > out[k]; k--) {
			int t = out[k];
			out[k] = out[k - 1];
			out[k - 1] = t;
		}
	return ACLM_OK;
}

int aclm_notify_rule_check(const char *kind, const char *params_text)
{
	static const char *const common[] = { "name", "issuer", NULL };
	json_error_t jerr;
	json_t *p, *v;
	const char *k;
	int rc = ACLM_OK;

	if (!aclm_notify_rule_kind_valid(kind))
		return aclm_error(ACLM_ERR_USAGE, "unknown rule kind '%s' (expiry, renewal-failed, "
		                  "cert-changed, ghost, unreachable)", kind ? kind : "");
	p = json_loads(params_text != NULL ? params_text : "{}", 0, &jerr);
	if (p == NULL || !json_is_object(p)) {
		json_decref(p);
		return aclm_error(ACLM_ERR_USAGE, "rule parameters: not a JSON object");
	}
	json_object_foreach(p, k, v) {
		bool known = false;
		for (const char *const *c = common; *c != NULL; c++)
			if (strcmp(k, *c) == 0)
				known = true;
		if (known) {
			if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 255)
				rc = aclm_error(ACLM_ERR_USAGE, "rule parameter %s: want a text of 1-255 "
				                "characters", k);
		} else if (strcmp(kind, "expiry") == 0 && strcmp(k, "days") == 0) {
			int d[MAX_THRESHOLDS];
			size_t n;
			rc = thresholds(p, d, &n);
		} else if (strcmp(kind, "expiry") == 0 && strcmp(k, "include_ca") == 0) {
			if (!json_is_boolean(v))
				rc = aclm_error(ACLM_ERR_USAGE, "rule parameter include_ca: want true or false");
		} else if (strcmp(kind, "cert-changed") == 0 && strcmp(k, "all") == 0) {
			if (!json_is_boolean(v))
				rc = aclm_error(ACLM_ERR_USAGE, "rule parameter all: want true or false");
		} else {
			rc = aclm_error(ACLM_ERR_USAGE, "rule parameter '%s' is not one of a %s rule", k,
			                kind);
		}
		if (rc != ACLM_OK)
			break;
	}
	json_decref(p);
	return rc;
}

/* --- raising --------------------------------------------------------------- */

struct eval {
	struct aclm_store *st;
	const struct aclm_alert_rule *rule;
	json_t *params;
	const char *name_glob;
	const char *issuer;
	int64_t now;
	json_t *candidates;          /* [{key, target, subject, text}] */
	struct aclm_notify_stats *stats;
};

static char *cut(const char *s, size_t max)
{
	size_t n = strlen(s != NULL ? s : "");

	if (n <= max)
		return aclm_strdup(s != NULL ? s : "");
	/* Cut on a UTF-8 boundary. */
	while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
		max--;
	return aclm_strndup(s, max);
}

static int candidate(struct eval *e, const char *key, const char *target, const char *subject,
                     const struct aclm_buf *text)
{
	char *subj = cut(subject, NOTIFY_MAX_SUBJECT), *txt = cut(aclm_buf_cstr(text), NOTIFY_MAX_TEXT);
	json_t *c = NULL;

	if (subj != NULL && txt != NULL)
		c = json_pack("{s:s,s:s,s:s,s:s}", "key", key, "target", target, "subject", subj,
		              "text", txt);
	free(subj);
	free(txt);
	/* json_pack refuses text that is not UTF-8 (a hostile certificate):
	 * say so rather than drop the alert. */
	if (c == NULL)
		c = json_pack("{s:s,s:s,s:s,s:s}", "key", key, "target", "(not UTF-8)", "subject",
		              "[aclm] alert (text not UTF-8)", "text", "details were not valid UTF-8");
	if (c == NULL || json_array_append_new(e->candidates, c) != 0)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	return ACLM_OK;
}

static int raise_one(struct eval *e, json_t *c)
{
	const char *key = json_string_value(json_object_get(c, "key"));
	char dedup[600], state[16];
	int64_t created = 0, id = 0;
	bool found = false;
	int rc;

	snprintf(dedup, sizeof(dedup), "rule:%lld|%s", (long long)e->rule->id, key);
	if ((rc = aclm_store_alert_latest(e->st, dedup, &found, &created, state)) != ACLM_OK)
		return rc;
	if (found && (strcmp(state, "pending") == 0 || e->rule->renotify_seconds <= 0 ||
	              e->now - created < e->rule->renotify_seconds)) {
		e->stats->suppressed++;
		return ACLM_OK;
	}
	{
		struct aclm_alert_new a = {
			.rule_id = e->rule->id,
			.channel_id = e->rule->channel_id,
			.dedup_key = dedup,
			.target = json_string_value(json_object_get(c, "target")),
			.subject = json_string_value(json_object_get(c, "subject")),
			.message = json_string_value(json_object_get(c, "text")),
			.now = e->now,
		};
		if ((rc = aclm_store_alert_add(e->st, &a, &id)) != ACLM_OK)
			return rc;
	}
	e->stats->raised++;
	aclm_info("alert %lld raised by rule '%s': %s", (long long)id, e->rule->name,
	          json_string_value(json_object_get(c, "subject")));
	return ACLM_OK;
}

static bool glob_match(const char *glob, const char *s)
{
	return glob == NULL || (s != NULL && *s != '\0' && fnmatch(glob, s, FNM_CASEFOLD) == 0);
}

/* --- expiry ------------------------------------------------------------------ */

struct expiry {
	struct eval *e;
	int days[MAX_THRESHOLDS];
	size_t n_days;
};

static int on_expiring(void *ctx, const struct aclm_cert_row *r)
{
	struct expiry *x = ctx;
	int64_t left = r->not_after - x->e->now;
	int64_t days_left = (left + 86399) / 86400;   /* 4 days and 23 hours: "in 5 days" */
	const char *name = r->subject_cn != NULL ? r->subject_cn : r->subject;
	char key[128], subject[400], when[32];
	struct aclm_buf text;
	int threshold = 0, rc;

	for (size_t i = 0; i < x->n_days; i++)
		if (left < (int64_t)x->days[i] * 86400) {
			threshold = x->days[i];
			break;
		}
	if (threshold == 0)
		return ACLM_OK;
	aclm_time_iso(r->not_after, when, sizeof(when));
	snprintf(key, sizeof(key), "cert:%s|%dd", r->fingerprint, threshold);
	if (days_left > 1)
		snprintf(subject, sizeof(subject), "[aclm] certificate %.200s expires in %lld days (%.10s)",
		         name, (long long)days_left, when);
	else
		snprintf(subject, sizeof(subject), "[aclm] certificate %.200s expires within a day (%s)",
		         name, when);
	aclm_buf_init(&text, NOTIFY_MAX_TEXT * 2);
	aclm_buf_printf(&text, "The certificate %s expires on %s, in %lld day%s (rule '%s', "
	                "threshold %d day%s).\n\n", name, when, (long long)days_left,
	                days_left == 1 ? "" : "s", x->e->rule->name, threshold,
	                threshold == 1 ? "" : "s");
	aclm_buf_printf(&text, "Subject: %s\nIssuer:  %s\nNames:   %s\nSerial:  %s\nSHA-256: %s\n",
	                r->subject, r->issuer, r->sans && *r->sans ? r->sans : "-", r->serial,
	                r->fingerprint);
	rc = candidate(x->e, key, name, subject, &text);
	aclm_buf_free(&text);
	return rc;
}

static int eval_expiry(struct eval *e)
{
	struct expiry x = { .e = e };
	struct aclm_cert_filter f;
	int rc;

	if ((rc = thresholds(e->params, x.days, &x.n_days)) != ACLM_OK)
		return rc;
	memset(&f, 0, sizeof(f));
	f.now = e->now;
	f.expiring_within = (int64_t)x.days[x.n_days - 1] * 86400;
	f.name = e->name_glob;
	f.issuer = e->issuer;
	f.leaf_only = !json_is_true(json_object_get(e->params, "include_ca"));
	return aclm_store_list_certs(e->st, &f, on_expiring, &x);
}

/* --- renewal failed ------------------------------------------------------------ */

static int on_managed(void *ctx, const struct aclm_managed_row *m)
{
	struct eval *e = ctx;
	char key[96], subject[300], next[32] = "-";
	struct aclm_buf text;
	int rc;

	if (m->failures <= 0 || m->last_error == NULL || !glob_match(e->name_glob, m->name))
		return ACLM_OK;
	if (e->issuer != NULL && (m->ca == NULL || !aclm_str_icontains(m->ca, e->issuer)))
		return ACLM_OK;
	/* A new key once the certificate changes: a later failure of the
	 * renewed certificate is news again. */
	snprintf(key, sizeof(key), "managed:%lld|cert:%lld", (long long)m->id,
	         (long long)m->current_cert_id);
	snprintf(subject, sizeof(subject), "[aclm] renewal of %.200s failed", m->name);
	if (m->next_attempt_at > 0)
		aclm_time_iso(m->next_attempt_at, next, sizeof(next));
	aclm_buf_init(&text, NOTIFY_MAX_TEXT * 2);
	aclm_buf_printf(&text, "Renewing the managed certificate %s failed %lld time%s "
	                "(rule '%s').\n\nLast error: %s\nNames:      %s\nCAs:        %s\n"
	                "Status:     %s\nNext try:   %s\n", m->name, (long long)m->failures,
	                m->failures == 1 ? "" : "s", e->rule->name, m->last_error,
	                m->identifiers ? m->identifiers : "-", m->cas ? m->cas : "-",
	                m->status ? m->status : "-", next);
	rc = candidate(e, key, m->name, subject, &text);
	aclm_buf_free(&text);
	return rc;
}

/* --- findings ----------------------------------------------------------------- */

static void endpoint_label(const struct aclm_finding_row *f, char *out, size_t n)
{
	const char *host = *f->host ? f->host : f->ip;

	if (*f->sni && strcmp(f->sni, host) != 0)
		snprintf(out, n, "%s:%u (%s)", host, f->port, f->sni);
	else if (*host)
		snprintf(out, n, "%s%s%s:%u", strchr(host, ':') ? "[" : "", host,
		         strchr(host, ':') ? "]" : "", f->port);
	else
		aclm_strlcpy(out, f->subject ? f->subject : "?", n);
}

struct cert_issuer {
	const char *want;
	bool matches;
};

static int on_cert_issuer(void *ctx, const struct aclm_cert_row *r)
{
	struct cert_issuer *ci = ctx;

	ci->matches = ci->want == NULL || aclm_str_icontains(r->issuer, ci->want);
	return ACLM_OK;
}

static int on_finding(void *ctx, const struct aclm_finding_row *f)
{
	struct eval *e = ctx;
	const char *kind = e->rule->kind;
	char label[300], key[200], subject[400];
	struct aclm_buf text;
	int rc;

	if (e->name_glob != NULL && !glob_match(e->name_glob, f->host) &&
	    !glob_match(e->name_glob, f->sni) && !glob_match(e->name_glob, f->ip))
		return ACLM_OK;
	if (e->issuer != NULL) {
		struct cert_issuer ci = { .want = e->issuer };
		if (f->cert_id == 0)
			return ACLM_OK;
		if ((rc = aclm_store_get_cert(e->st, f->cert_id, on_cert_issuer, &ci)) != ACLM_OK)
			return rc;
		if (!ci.matches)
			return ACLM_OK;
	}
	if (strcmp(kind, "cert-changed") == 0 && f->cert_id != 0 &&
	    !json_is_true(json_object_get(e->params, "all"))) {
		bool managed = false;
		if ((rc = aclm_store_scan_is_managed(e->st, f->cert_id, &managed)) != ACLM_OK)
			return rc;
		if (managed)
			return ACLM_OK;   /* aclm issued or imported it: an expected change */
	}
	endpoint_label(f, label, sizeof(label));
	if (strcmp(kind, "cert-changed") == 0) {
		snprintf(key, sizeof(key), "finding:%lld|%s", (long long)f->id,
		         f->fingerprint ? f->fingerprint : "");
		snprintf(subject, sizeof(subject), "[aclm] certificate changed on %.250s", label);
	} else if (strcmp(kind, "ghost") == 0) {
		snprintf(key, sizeof(key), "finding:%lld|%s", (long long)f->id,
		         f->fingerprint ? f->fingerprint : "");
		snprintf(subject, sizeof(subject), "[aclm] unmanaged certificate served on %.250s",
		         label);
	} else {
		snprintf(key, sizeof(key), "finding:%lld", (long long)f->id);
		snprintf(subject, sizeof(subject), "[aclm] scan target %.250s %s", label,
		         strcmp(f->type, ACLM_FIND_UNRESOLVED) == 0 ? "does not resolve"
		                                                    : "is unreachable");
	}
	aclm_buf_init(&text, NOTIFY_MAX_TEXT * 2);
	aclm_buf_printf(&text, "%s (rule '%s', finding %lld of type %s, severity %s).\n\n"
	                "Endpoint: %s\nDetail:   %s\n", subject + 7, e->rule->name, (long long)f->id,
	                f->type, f->severity, label, f->detail ? f->detail : "-");
	if (f->fingerprint != NULL)
		aclm_buf_printf(&text, "SHA-256:  %s\n", f->fingerprint);
	{
		char first[32], last[32];
		aclm_time_iso(f->first_seen, first, sizeof(first));
		aclm_time_iso(f->last_seen, last, sizeof(last));
		aclm_buf_printf(&text, "First seen %s, last seen %s.\n", first, last);
	}
	rc = candidate(e, key, label, subject, &text);
	aclm_buf_free(&text);
	return rc;
}

static int eval_findings(struct eval *e, const char *type)
{
	struct aclm_finding_filter f;

	memset(&f, 0, sizeof(f));
	f.type = type;
	return aclm_store_list_findings(e->st, &f, on_finding, e);
}

/* --- one rule, all rules ----------------------------------------------------------- */

static int eval_rule(struct aclm_store *st, const struct aclm_alert_rule *r, int64_t now,
                     struct aclm_notify_stats *stats)
{
	struct eval e = { .st = st, .rule = r, .now = now, .stats = stats };
	size_t i;
	json_t *c;
	int rc;

	if ((rc = aclm_notify_rule_check(r->kind, r->params)) != ACLM_OK)
		return aclm_error_wrap(rc, "rule '%s'", r->name);
	e.params = json_loads(r->params, 0, NULL);
	e.candidates = json_array();
	if (e.params == NULL || e.candidates == NULL) {
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
		goto out;
	}
	e.name_glob = json_string_value(json_object_get(e.params, "name"));
	e.issuer = json_string_value(json_object_get(e.params, "issuer"));
	if (strcmp(r->kind, "expiry") == 0)
		rc = eval_expiry(&e);
	else if (strcmp(r->kind, "renewal-failed") == 0)
		rc = aclm_store_managed_list(st, on_managed, &e);
	else if (strcmp(r->kind, "cert-changed") == 0)
		rc = eval_findings(&e, ACLM_FIND_CHANGED);
	else if (strcmp(r->kind, "ghost") == 0)
		rc = eval_findings(&e, ACLM_FIND_UNMANAGED);
	else if ((rc = eval_findings(&e, ACLM_FIND_UNREACHABLE)) == ACLM_OK)
		rc = eval_findings(&e, ACLM_FIND_UNRESOLVED);
	if (rc != ACLM_OK) {
		aclm_error_wrap(rc, "rule '%s'", r->name);
		goto out;
	}
	/* One transaction per rule under the alert lock: the dedup look-up
	 * and the insert are one step for a concurrent `aclm alert run` or
	 * another server, and many alerts cost one commit. */
	if (json_array_size(e.candidates) == 0)
		goto out;
	if ((rc = aclm_store_begin(st)) != ACLM_OK)
		goto out;
	rc = aclm_store_alert_lock(st);
	json_array_foreach(e.candidates, i, c) {
		if (rc != ACLM_OK)
			break;
		if ((rc = raise_one(&e, c)) != ACLM_OK)
			break;
	}
	if (rc == ACLM_OK) {
		rc = aclm_store_commit(st);
	} else {
		char saved[512];
		aclm_strlcpy(saved, aclm_errmsg(), sizeof(saved));
		aclm_store_rollback(st);
		aclm_error(rc, "rule '%s': %s", r->name, saved);
	}
out:
	json_decref(e.params);
	json_decref(e.candidates);
	return rc;
}

struct rule_list {
	struct aclm_alert_rule *v;
	size_t n, cap;
};

static int collect_rule(void *ctx, const struct aclm_alert_rule *r)
{
	struct rule_list *l = ctx;
	struct aclm_alert_rule *c;

	if (!r->enabled || r->channel_id == 0)
		return ACLM_OK;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		struct aclm_alert_rule *v = realloc(l->v, cap * sizeof(*v));
		if (v == NULL)
			return aclm_error(ACLM_ERR_NOMEM, "out of memory");
		l->v = v;
		l->cap = cap;
	}
	c = &l->v[l->n];
	*c = *r;
	c->name = aclm_strdup(r->name);
	c->kind = aclm_strdup(r->kind);
	c->params = aclm_strdup(r->params ? r->params : "{}");
	c->channel = aclm_strdup(r->channel);
	l->n++;
	if (c->name == NULL || c->kind == NULL || c->params == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	return ACLM_OK;
}

int aclm_notify_evaluate(struct aclm_store *st, int64_t now, struct aclm_notify_stats *stats)
{
	struct rule_list l = { 0 };
	int rc, first_rc = ACLM_OK;
	char first_msg[512] = "";

	rc = aclm_store_alert_rule_list(st, collect_rule, &l);
	for (size_t i = 0; rc == ACLM_OK && i < l.n; i++) {
		/* One broken rule does not silence the others. */
		int r = eval_rule(st, &l.v[i], now, stats);
		if (r != ACLM_OK) {
			aclm_warn("alerts: %s", aclm_errmsg());
			if (first_rc == ACLM_OK) {
				first_rc = r;
				aclm_strlcpy(first_msg, aclm_errmsg(), sizeof(first_msg));
			}
		}
	}
	for (size_t i = 0; i < l.n; i++)
		aclm_alert_rule_clear(&l.v[i]);
	free(l.v);
	if (rc == ACLM_OK && first_rc != ACLM_OK)
		rc = aclm_error(first_rc, "%s", first_msg);
	return rc;
}
