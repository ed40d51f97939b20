/* Rule evaluation: certificates and endpoints of the inventory against one
 * policy, computed on demand (docs/internals/policy.md says why there is
 * no cache).  Per-row rules are decided as rows stream by; the rules that
 * need the whole inventory (one site one key, dual certificates, PQ
 * patterns that match nothing) at finish, from compact side tables. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aclm/err.h"
#include "aclm/json.h"
#include "aclm/str.h"
#include "aclm/timeutil.h"
#include "policy-int.h"

static const char *const rule_names[ACLM_POLICY_N_RULES] = {
	ACLM_RULE_KEY_TYPE, ACLM_RULE_KEY_SIZE, ACLM_RULE_KEY_CURVE, ACLM_RULE_SIGNATURE,
	ACLM_RULE_VALIDITY, ACLM_RULE_ISSUER, ACLM_RULE_SAN, ACLM_RULE_WILDCARD,
	ACLM_RULE_KEY_REUSE, ACLM_RULE_DUAL, ACLM_RULE_PQ,
};

const char *aclm_subject_kind_name(enum aclm_subject_kind k)
{
	switch (k) {
	case ACLM_SUBJECT_CERT: return "certificate";
	case ACLM_SUBJECT_ENDPOINT: return "endpoint";
	case ACLM_SUBJECT_SITE: return "site";
	}
	return "?";
}

/* A leaf's key and the names it is for ("site"), for one site one key. */
struct key_use {
	char *spki;
	char *site;
	size_t subj;
	bool reused;
};

struct ep_key {
	char *spki;
	size_t subj;
};

struct aclm_policy_eval {
	const struct aclm_policy *p;
	int64_t now;
	struct aclm_policy_result res;
	struct key_use *keys;
	size_t n_keys, cap_keys;
	struct ep_key *ep_keys;
	size_t n_ep_keys, cap_ep_keys;
	unsigned *dual_seen;          /* per dual rule: bit per key family */
	size_t *pq_matched;           /* per PQ rule: endpoints that matched */
};

/* --- results ------------------------------------------------------------- */

static int grow(void **arr, size_t *cap, size_t need, size_t size)
{
	size_t n;
	void *p;

	if (need <= *cap)
		return ACLM_OK;
	n = *cap ? *cap * 2 : 64;
	while (n < need)
		n *= 2;
	p = realloc(*arr, n * size);
	if (p == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	*arr = p;
	*cap = n;
	return ACLM_OK;
}

static int add_subject(struct aclm_policy_result *r, enum aclm_subject_kind kind, int64_t id,
                       const char *label, const char *ref, size_t *idx)
{
	struct aclm_policy_subject *s;
	int rc;

	if ((rc = grow((void **)&r->subjects, &r->cap, r->n + 1, sizeof(*r->subjects))) != ACLM_OK)
		return rc;
	s = &r->subjects[r->n];
	memset(s, 0, sizeof(*s));
	s->kind = kind;
	s->id = id;
	s->label = aclm_strdup(label != NULL ? label : "");
	s->ref = aclm_strdup(ref != NULL ? ref : "");
	if (s->label == NULL || s->ref == NULL) {
		free(s->label);
		free(s->ref);
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	}
	*idx = r->n++;
	return ACLM_OK;
}

static int add_v(struct aclm_policy_result *r, size_t idx, const char *rule, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int add_v(struct aclm_policy_result *r, size_t idx, const char *rule, const char *fmt, ...)
{
	struct aclm_policy_subject *s = &r->subjects[idx];
	char detail[512];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	if ((rc = grow((void **)&s->v, &s->cap_v, s->n_v + 1, sizeof(*s->v))) != ACLM_OK)
		return rc;
	s->v[s->n_v].rule = rule;
	if ((s->v[s->n_v].detail = aclm_strdup(detail)) == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	s->n_v++;
	return ACLM_OK;
}

void aclm_policy_result_free(struct aclm_policy_result *res)
{
	if (res == NULL)
		return;
	for (size_t i = 0; i < res->n; i++) {
		struct aclm_policy_subject *s = &res->subjects[i];
		for (size_t k = 0; k < s->n_v; k++)
			free(s->v[k].detail);
		free(s->v);
		free(s->label);
		free(s->ref);
	}
	free(res->subjects);
	memset(res, 0, sizeof(*res));
}

/* --- names of a certificate ------------------------------------------------ */

#define MAX_NAMES 512

struct names {
	char *buf;                    /* a copy of the SAN text, split in place */
	const char *type[MAX_NAMES];
	const char *value[MAX_NAMES];
	size_t n;
};

/* "DNS:a,IP:b" (or the CN when there is no DNS/IP SAN) into names. */
static int split_names(const char *sans, const char *cn, struct names *nm)
{
	char *p, *save = NULL, *tok;

	nm->n = 0;
	nm->buf = aclm_strdup(sans != NULL ? sans : "");
	if (nm->buf == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	for (p = nm->buf; (tok = strtok_r(p, ",", &save)) != NULL && nm->n < MAX_NAMES; p = NULL) {
		char *colon = strchr(tok, ':');
		if (colon == NULL)
			continue;
		*colon = '\0';
		if (strcmp(tok, "DNS") != 0 && strcmp(tok, "IP") != 0)
			continue;
		nm->type[nm->n] = tok;
		nm->value[nm->n] = colon + 1;
		nm->n++;
	}
	if (nm->n == 0 && cn != NULL && *cn != '\0') {
		nm->type[0] = "DNS";
		nm->value[0] = cn;
		nm->n = 1;
	}
	return ACLM_OK;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The names a certificate is for, lower-case, sorted, joined: two
 * certificates for the same site give the same text. */
static char *site_key(const struct names *nm)
{
	char *sorted[MAX_NAMES];
	size_t len = 1, n = nm->n;
	char *out, *o;

	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(nm->type[i]) + strlen(nm->value[i]) + 2;
		sorted[i] = malloc(l);
		if (sorted[i] == NULL) {
			for (size_t k = 0; k < i; k++)
				free(sorted[k]);
			return NULL;
		}
		snprintf(sorted[i], l, "%s:%s", nm->type[i], nm->value[i]);
		aclm_str_lower(sorted[i]);
		len += l;
	}
	qsort(sorted, n, sizeof(char *), cmp_str);
	out = malloc(len);
	if (out != NULL) {
		o = out;
		*o = '\0';
		for (size_t i = 0; i < n; i++) {
			/* Duplicates (a CN repeated as SAN) count once. */
			if (i > 0 && strcmp(sorted[i], sorted[i - 1]) == 0)
				continue;
			o += snprintf(o, len - (size_t)(o - out), "%s%s", o == out ? "" : ",",
			              sorted[i]);
		}
	}
	for (size_t i = 0; i < n; i++)
		free(sorted[i]);
	return out;
}

/* --- per-certificate rules --------------------------------------------------- */

static bool list_has(const struct str_list *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (s != NULL && strcasecmp(l->v[i], s) == 0)
			return true;
	return false;
}

static void list_text(const struct str_list *l, char *out, size_t n)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < l->n && o + 1 < n; i++)
		o += (size_t)snprintf(out + o, n - o, "%s%s", i ? ", " : "", l->v[i]);
}

static void allowed_families(const struct aclm_policy *p, char *out, size_t n)
{
	size_t o = 0;

	out[0] = '\0';
	for (int f = 0; f < KF_COUNT && o + 1 < n; f++)
		if (p->key_allowed[f])
			o += (size_t)snprintf(out + o, n - o, "%s%s", o ? ", " : "",
			                      policy_family_name((enum key_family)f));
	if (o == 0)
		snprintf(out, n, "none");
}

static int check_key(struct aclm_policy_eval *ev, const struct aclm_cert_row *row, size_t idx)
{
	const struct aclm_policy *p = ev->p;
	enum key_family f;
	char list[256];

	if (!p->has_key_types)
		return ACLM_OK;
	if (!policy_family_of(row->key_type, &f) || !p->key_allowed[f]) {
		allowed_families(p, list, sizeof(list));
		return add_v(&ev->res, idx, ACLM_RULE_KEY_TYPE, "%s key not allowed (allowed: %s)",
		             row->key_type, list);
	}
	if (f == KF_RSA && p->rsa_min_bits > 0 && row->key_bits < p->rsa_min_bits)
		return add_v(&ev->res, idx, ACLM_RULE_KEY_SIZE, "RSA key of %d bits, below the "
		             "minimum of %d", row->key_bits, p->rsa_min_bits);
	if (f == KF_EC && p->ec_curves.n > 0 && !list_has(&p->ec_curves, row->curve)) {
		list_text(&p->ec_curves, list, sizeof(list));
		return add_v(&ev->res, idx, ACLM_RULE_KEY_CURVE, "ECDSA curve %s not allowed "
		             "(allowed: %s)", row->curve != NULL ? row->curve : "(unnamed)", list);
	}
	return ACLM_OK;
}

static int check_validity(struct aclm_policy_eval *ev, const struct aclm_cert_row *row,
                          size_t idx)
{
	int64_t days = aclm_policy_validity_days(row->not_before, row->not_after);
	int max = ev->p->max_validity_days;
	char issued[32];

	if (max == 0)
		return ACLM_OK;
	aclm_time_iso(row->not_before, issued, sizeof(issued));
	if (max < 0) {
		max = aclm_policy_cabf_max_days(row->not_before);
		if (days > max)
			return add_v(&ev->res, idx, ACLM_RULE_VALIDITY, "valid for %lld days, more "
			             "than the %d the CA/Browser Forum allows for certificates issued "
			             "on %s", (long long)days, max, issued);
		return ACLM_OK;
	}
	if (days > max)
		return add_v(&ev->res, idx, ACLM_RULE_VALIDITY, "valid for %lld days, more than the "
		             "%d allowed", (long long)days, max);
	return ACLM_OK;
}

static int check_issuer(struct aclm_policy_eval *ev, const struct aclm_cert_row *row,
                        size_t idx)
{
	const struct str_list *l = &ev->p->issuers;

	if (l->n == 0)
		return ACLM_OK;
	for (size_t i = 0; i < l->n; i++)
		if (policy_glob(l->v[i], row->issuer) ||
		    (row->issuer_cn != NULL && policy_glob(l->v[i], row->issuer_cn)))
			return ACLM_OK;
	return add_v(&ev->res, idx, ACLM_RULE_ISSUER, "issuer '%s' is not an allowed issuer",
	             row->issuer_cn != NULL ? row->issuer_cn : row->issuer);
}

static bool any_glob(const struct str_list *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (policy_glob(l->v[i], s))
			return true;
	return false;
}

static int check_names(struct aclm_policy_eval *ev, const struct names *nm, size_t idx)
{
	const struct aclm_policy *p = ev->p;
	char bad_san[300] = "", bad_wild[300] = "", denied[300] = "";
	size_t n_bad_san = 0, n_bad_wild = 0, n_denied = 0;
	int rc = ACLM_OK;

	for (size_t i = 0; i < nm->n; i++) {
		const char *v = nm->value[i];
		if (p->san_patterns.n > 0) {
			bool ok = false;
			for (size_t k = 0; k < p->san_patterns.n && !ok; k++)
				ok = policy_san_match(p->san_patterns.v[k], nm->type[i], v);
			if (!ok && n_bad_san++ < 4)
				snprintf(bad_san + strlen(bad_san), sizeof(bad_san) - strlen(bad_san),
				         "%s%s", n_bad_san > 1 ? ", " : "", v);
		}
		if (p->wildcards != WILD_ANY && strcmp(nm->type[i], "DNS") == 0 &&
		    strchr(v, '*') != NULL) {
			/* Well formed (BR 3.2.2.6): "*." then a name of at least two
			 * labels, no other '*'. */
			const char *rest = v + 2;
			bool well = strncmp(v, "*.", 2) == 0 && strchr(rest, '*') == NULL &&
			            strchr(rest, '.') != NULL && rest[0] != '.' &&
			            !aclm_str_has_suffix(rest, ".");
			if (!well) {
				if (n_bad_wild++ < 4)
					snprintf(bad_wild + strlen(bad_wild),
					         sizeof(bad_wild) - strlen(bad_wild), "%s%s",
					         n_bad_wild > 1 ? ", " : "", v);
			} else if (p->wildcards == WILD_DENY ||
			           (p->wildcards == WILD_LIST && !any_glob(&p->wildcard_names, v))) {
				if (n_denied++ < 4)
					snprintf(denied + strlen(denied), sizeof(denied) - strlen(denied),
					         "%s%s", n_denied > 1 ? ", " : "", v);
			}
		}
	}
	if (n_bad_san > 0)
		rc = add_v(&ev->res, idx, ACLM_RULE_SAN, "%zu name%s outside the allowed patterns: "
		           "%s%s", n_bad_san, n_bad_san > 1 ? "s" : "", bad_san,
		           n_bad_san > 4 ? ", ..." : "");
	if (rc == ACLM_OK && n_bad_wild > 0)
		rc = add_v(&ev->res, idx, ACLM_RULE_WILDCARD, "malformed wildcard: %s (only a whole "
		           "leftmost label '*.' over a name of two or more labels)", bad_wild);
	if (rc == ACLM_OK && n_denied > 0)
		rc = add_v(&ev->res, idx, ACLM_RULE_WILDCARD, "wildcard not allowed: %s%s", denied,
		           p->wildcards == WILD_DENY ? " (wildcards are denied)" : "");
	return rc;
}

int aclm_policy_eval_cert(struct aclm_policy_eval *ev, const struct aclm_cert_row *row)
{
	const struct aclm_policy *p = ev->p;
	bool self_signed = row->is_ca && strcmp(row->subject, row->issuer) == 0;
	struct names nm = { 0 };
	const char *label;
	size_t idx;
	int rc;

	if ((rc = split_names(row->sans, row->subject_cn, &nm)) != ACLM_OK)
		return rc;
	label = row->subject_cn != NULL && *row->subject_cn != '\0' ? row->subject_cn
	        : nm.n > 0 ? nm.value[0] : row->subject;
	if ((rc = add_subject(&ev->res, ACLM_SUBJECT_CERT, row->id, label, row->fingerprint,
	                      &idx)) != ACLM_OK)
		goto out;
	ev->res.subjects[idx].not_after = row->not_after;
	if ((rc = check_key(ev, row, idx)) != ACLM_OK)
		goto out;
	/* A trust anchor's own signature is never checked by anyone. */
	if (p->has_sig_algs && !self_signed &&
	    (policy_sig_is_weak(row->sig_alg) || !list_has(&p->sig_algs, row->sig_alg))) {
		rc = add_v(&ev->res, idx, ACLM_RULE_SIGNATURE, "signature algorithm %s not allowed%s",
		           row->sig_alg, policy_sig_is_weak(row->sig_alg) ? " (SHA-1/MD5)" : "");
		if (rc != ACLM_OK)
			goto out;
	}
	if (row->is_ca)
		goto out;
	/* Leaf rules. */
	if ((rc = check_validity(ev, row, idx)) != ACLM_OK ||
	    (rc = check_issuer(ev, row, idx)) != ACLM_OK ||
	    (rc = check_names(ev, &nm, idx)) != ACLM_OK)
		goto out;
	if (p->one_site_one_key && row->spki[0] != '\0') {
		struct key_use *k;
		if ((rc = grow((void **)&ev->keys, &ev->cap_keys, ev->n_keys + 1,
		               sizeof(*ev->keys))) != ACLM_OK)
			goto out;
		k = &ev->keys[ev->n_keys];
		k->spki = aclm_strdup(row->spki);
		k->site = site_key(&nm);
		k->subj = idx;
		k->reused = false;
		if (k->spki == NULL || k->site == NULL) {
			free(k->spki);
			free(k->site);
			rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
			goto out;
		}
		ev->n_keys++;
	}
	if (p->n_duals > 0 && row->not_before <= ev->now && ev->now <= row->not_after) {
		enum key_family f;
		if (policy_family_of(row->key_type, &f))
			for (size_t d = 0; d < p->n_duals; d++)
				for (size_t i = 0; i < nm.n; i++)
					if (strcmp(nm.type[i], "DNS") == 0 &&
					    policy_name_covers(nm.value[i], p->duals[d].site)) {
						ev->dual_seen[d] |= 1u << f;
						break;
					}
	}
out:
	free(nm.buf);
	return rc;
}

/* --- endpoints --------------------------------------------------------------- */

static void endpoint_label(const struct aclm_policy_endpoint_row *r, char *out, size_t n)
{
	const char *h = r->host[0] != '\0' ? r->host : r->ip;

	snprintf(out, n, strchr(h, ':') != NULL ? "[%s]:%u" : "%s:%u", h, r->port);
}

static bool endpoint_matches(const char *pattern, const struct aclm_policy_endpoint_row *r)
{
	const char *names[3] = { r->host, r->ip, r->sni };
	char with_port[300];

	for (int i = 0; i < 3; i++) {
		if (names[i][0] == '\0')
			continue;
		if (policy_glob(pattern, names[i]))
			return true;
		snprintf(with_port, sizeof(with_port), "%s:%u", names[i], r->port);
		if (policy_glob(pattern, with_port))
			return true;
		snprintf(with_port, sizeof(with_port), "[%s]:%u", names[i], r->port);
		if (strchr(names[i], ':') != NULL && policy_glob(pattern, with_port))
			return true;
	}
	return false;
}

/* Is group one of the comma-separated list? */
static bool csv_has(const char *list, const char *group)
{
	size_t n = strlen(group);

	for (const char *p = list; p != NULL && *p != '\0';) {
		const char *c = strchr(p, ',');
		size_t l = c != NULL ? (size_t)(c - p) : strlen(p);
		if (l == n && strncasecmp(p, group, n) == 0)
			return true;
		p = c != NULL ? c + 1 : NULL;
	}
	return false;
}

int aclm_policy_eval_endpoint(struct aclm_policy_eval *ev,
                              const struct aclm_policy_endpoint_row *row)
{
	const struct aclm_policy *p = ev->p;
	char label[320], when[32], groups[256];
	size_t idx;
	int rc;

	endpoint_label(row, label, sizeof(label));
	if ((rc = add_subject(&ev->res, ACLM_SUBJECT_ENDPOINT, row->id, label, row->ip, &idx)) !=
	    ACLM_OK)
		return rc;
	for (size_t i = 0; i < p->n_pqs; i++) {
		const struct pq_rule *q = &p->pqs[i];
		bool ok = false;
		if (!endpoint_matches(q->endpoint, row))
			continue;
		ev->pq_matched[i]++;
		list_text(&q->groups, groups, sizeof(groups));
		aclm_time_iso(row->scanned_at, when, sizeof(when));
		if (!row->scanned) {
			rc = add_v(&ev->res, idx, ACLM_RULE_PQ, "never scanned: post-quantum key exchange "
			           "(%s) unknown", groups);
		} else if (!row->reachable) {
			rc = add_v(&ev->res, idx, ACLM_RULE_PQ, "not reachable at the last scan (%s): "
			           "post-quantum key exchange (%s) unknown", when, groups);
		} else if (row->pq_groups[0] == '\0') {
			rc = add_v(&ev->res, idx, ACLM_RULE_PQ, "post-quantum groups were not probed at "
			           "the last scan (%s)", when);
		} else {
			for (size_t g = 0; g < q->groups.n && !ok; g++)
				ok = csv_has(row->pq_groups, q->groups.v[g]);
			if (!ok)
				rc = add_v(&ev->res, idx, ACLM_RULE_PQ, "accepts none of %s (accepted: %s, "
				           "scanned %s)", groups, row->pq_groups, when);
		}
		if (rc != ACLM_OK)
			return rc;
		break;  /* the first rule that matches the endpoint decides */
	}
	if (p->one_site_one_key && row->leaf_spki[0] != '\0') {
		struct ep_key *k;
		if ((rc = grow((void **)&ev->ep_keys, &ev->cap_ep_keys, ev->n_ep_keys + 1,
		               sizeof(*ev->ep_keys))) != ACLM_OK)
			return rc;
		k = &ev->ep_keys[ev->n_ep_keys];
		if ((k->spki = aclm_strdup(row->leaf_spki)) == NULL)
			return aclm_error(ACLM_ERR_NOMEM, "out of memory");
		k->subj = idx;
		ev->n_ep_keys++;
	}
	return ACLM_OK;
}

/* --- the whole inventory --------------------------------------------------------- */

int aclm_policy_eval_new(const struct aclm_policy *p, int64_t now,
                         struct aclm_policy_eval **out)
{
	struct aclm_policy_eval *ev = calloc(1, sizeof(*ev));

	*out = NULL;
	if (ev == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	ev->p = p;
	ev->now = now;
	ev->dual_seen = calloc(p->n_duals + 1, sizeof(unsigned));
	ev->pq_matched = calloc(p->n_pqs + 1, sizeof(size_t));
	if (ev->dual_seen == NULL || ev->pq_matched == NULL) {
		aclm_policy_eval_free(ev);
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	}
	aclm_strlcpy(ev->res.policy, p->name, sizeof(ev->res.policy));
	ev->res.evaluated_at = now;
	*out = ev;
	return ACLM_OK;
}

void aclm_policy_eval_free(struct aclm_policy_eval *ev)
{
	if (ev == NULL)
		return;
	for (size_t i = 0; i < ev->n_keys; i++) {
		free(ev->keys[i].spki);
		free(ev->keys[i].site);
	}
	free(ev->keys);
	for (size_t i = 0; i < ev->n_ep_keys; i++)
		free(ev->ep_keys[i].spki);
	free(ev->ep_keys);
	free(ev->dual_seen);
	free(ev->pq_matched);
	aclm_policy_result_free(&ev->res);
	free(ev);
}

static int cmp_key_use(const void *a, const void *b)
{
	const struct key_use *x = a, *y = b;
	int c = strcmp(x->spki, y->spki);

	if (c != 0)
		return c;
	c = strcmp(x->site, y->site);
	if (c != 0)
		return c;
	return x->subj < y->subj ? -1 : x->subj > y->subj;
}

static int cmp_spki_key(const void *key, const void *elem)
{
	return strcmp(key, ((const struct key_use *)elem)->spki);
}

/* Leaves grouped by key: a key with more than one site is reused; every
 * certificate of it, and every endpoint serving it, gets the violation. */
static int finish_key_reuse(struct aclm_policy_eval *ev)
{
	size_t i = 0;
	int rc;

	if (ev->n_keys > 1)
		qsort(ev->keys, ev->n_keys, sizeof(*ev->keys), cmp_key_use);
	while (i < ev->n_keys) {
		size_t j = i + 1, n_sites = 1;
		while (j < ev->n_keys && strcmp(ev->keys[j].spki, ev->keys[i].spki) == 0) {
			if (strcmp(ev->keys[j].site, ev->keys[j - 1].site) != 0)
				n_sites++;
			j++;
		}
		if (n_sites > 1) {
			for (size_t k = i; k < j; k++) {
				/* Name another site than this certificate's own. */
				const char *other = NULL;
				for (size_t m = i; m < j && other == NULL; m++)
					if (strcmp(ev->keys[m].site, ev->keys[k].site) != 0)
						other = ev->keys[m].site;
				ev->keys[k].reused = true;
				rc = add_v(&ev->res, ev->keys[k].subj, ACLM_RULE_KEY_REUSE, "key (SPKI "
				           "%.16s...) is used for %zu different sites, e.g. also %.200s",
				           ev->keys[k].spki, n_sites, other != NULL ? other : "");
				if (rc != ACLM_OK)
					return rc;
			}
		}
		i = j;
	}
	for (size_t e = 0; ev->n_keys > 0 && e < ev->n_ep_keys; e++) {
		const struct key_use *k = bsearch(ev->ep_keys[e].spki, ev->keys, ev->n_keys,
		                                  sizeof(*ev->keys), cmp_spki_key);
		if (k != NULL && k->reused &&
		    (rc = add_v(&ev->res, ev->ep_keys[e].subj, ACLM_RULE_KEY_REUSE, "serves a key "
		                "(SPKI %.16s...) that is used for different sites",
		                ev->ep_keys[e].spki)) != ACLM_OK)
			return rc;
	}
	return ACLM_OK;
}

static int site_subject(struct aclm_policy_result *r, const char *name, size_t *idx)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->subjects[i].kind == ACLM_SUBJECT_SITE && strcmp(r->subjects[i].label, name) == 0) {
			*idx = i;
			return ACLM_OK;
		}
	return add_subject(r, ACLM_SUBJECT_SITE, 0, name, "", idx);
}

static int finish_sites(struct aclm_policy_eval *ev)
{
	const struct aclm_policy *p = ev->p;
	size_t idx = 0;
	int rc;

	for (size_t d = 0; d < p->n_duals; d++) {
		const struct dual_rule *r = &p->duals[d];
		unsigned seen = ev->dual_seen[d];
		char have[128] = "", need[256] = "";
		bool ok = false;
		if ((rc = site_subject(&ev->res, r->site, &idx)) != ACLM_OK)
			return rc;
		for (size_t k = 0; k < r->n_pairs && !ok; k++)
			ok = (seen & (1u << r->pairs[k][0])) && (seen & (1u << r->pairs[k][1]));
		if (ok)
			continue;
		for (int f = 0; f < KF_COUNT; f++)
			if (seen & (1u << f))
				snprintf(have + strlen(have), sizeof(have) - strlen(have), "%s%s",
				         have[0] ? " + " : "", policy_family_name((enum key_family)f));
		for (size_t k = 0; k < r->n_pairs; k++)
			snprintf(need + strlen(need), sizeof(need) - strlen(need), "%s%s + %s",
			         k ? " or " : "", policy_family_name(r->pairs[k][0]),
			         policy_family_name(r->pairs[k][1]));
		rc = add_v(&ev->res, idx, ACLM_RULE_DUAL, "valid certificates: %s; needs %s",
		           have[0] ? have : "none", need);
		if (rc != ACLM_OK)
			return rc;
	}
	for (size_t q = 0; q < p->n_pqs; q++) {
		if (ev->pq_matched[q] > 0)
			continue;
		if ((rc = site_subject(&ev->res, p->pqs[q].endpoint, &idx)) != ACLM_OK ||
		    (rc = add_v(&ev->res, idx, ACLM_RULE_PQ, "no endpoint in the inventory matches "
		                "'%s': scan it (aclm scan)", p->pqs[q].endpoint)) != ACLM_OK)
			return rc;
	}
	return ACLM_OK;
}

static int rule_index(const char *rule)
{
	for (int i = 0; i < ACLM_POLICY_N_RULES; i++)
		if (strcmp(rule_names[i], rule) == 0)
			return i;
	return -1;
}

int aclm_policy_eval_finish(struct aclm_policy_eval *ev, struct aclm_policy_result *res)
{
	struct aclm_policy_result *r = &ev->res;
	int rc;

	memset(res, 0, sizeof(*res));
	if ((rc = finish_key_reuse(ev)) != ACLM_OK || (rc = finish_sites(ev)) != ACLM_OK) {
		aclm_policy_eval_free(ev);
		return rc;
	}
	for (int i = 0; i < ACLM_POLICY_N_RULES; i++)
		r->rule_names[i] = rule_names[i];
	for (size_t i = 0; i < r->n; i++) {
		const struct aclm_policy_subject *s = &r->subjects[i];
		bool seen[ACLM_POLICY_N_RULES] = { false };
		r->n_total[s->kind]++;
		if (s->n_v == 0)
			continue;
		r->n_violating[s->kind]++;
		r->n_violations += (int64_t)s->n_v;
		for (size_t k = 0; k < s->n_v; k++) {
			int ri = rule_index(s->v[k].rule);
			if (ri >= 0 && !seen[ri]) {
				seen[ri] = true;
				r->by_rule[ri]++;
			}
		}
	}
	*res = *r;
	memset(r, 0, sizeof(*r));
	aclm_policy_eval_free(ev);
	return ACLM_OK;
}

static int feed_cert(void *ctx, const struct aclm_cert_row *row)
{
	return aclm_policy_eval_cert(ctx, row);
}

static int feed_endpoint(void *ctx, const struct aclm_policy_endpoint_row *row)
{
	return aclm_policy_eval_endpoint(ctx, row);
}

int aclm_policy_evaluate(struct aclm_store *st, const struct aclm_policy *p, int64_t now,
                         struct aclm_policy_result *res)
{
	struct aclm_cert_filter f = { .now = now, .sort = ACLM_SORT_ID };
	struct aclm_policy_eval *ev = NULL;
	int rc;

	memset(res, 0, sizeof(*res));
	if ((rc = aclm_policy_eval_new(p, now, &ev)) != ACLM_OK)
		return rc;
	if ((rc = aclm_store_list_certs(st, &f, feed_cert, ev)) != ACLM_OK ||
	    (rc = aclm_store_policy_endpoints(st, feed_endpoint, ev)) != ACLM_OK) {
		aclm_policy_eval_free(ev);
		return rc;
	}
	return aclm_policy_eval_finish(ev, res);
}

int aclm_policy_load(struct aclm_store *st, const char *name, struct aclm_policy **out)
{
	char *def = NULL, *body = NULL;
	json_t *doc;
	json_error_t e;
	int rc;

	*out = NULL;
	if (name == NULL && st != NULL) {
		if ((rc = aclm_store_policy_default(st, &def)) != ACLM_OK)
			return rc;
		name = def;
	}
	if (name == NULL || strcmp(name, ACLM_POLICY_BUILTIN) == 0) {
		free(def);
		return aclm_policy_builtin(out);
	}
	if (st == NULL)
		return aclm_error(ACLM_ERR_NOTFOUND, "no policy '%s'", name);
	rc = aclm_store_policy_get(st, name, &body, NULL);
	if (rc == ACLM_OK) {
		doc = json_loads(body, 0, &e);
		if (doc == NULL) {
			rc = aclm_error(ACLM_ERR_PARSE, "stored policy '%s': %s", name, e.text);
		} else {
			char what[128];
			snprintf(what, sizeof(what), "stored policy '%s'", name);
			rc = aclm_policy_from_json(doc, what, out);
			json_decref(doc);
		}
	}
	free(body);
	free(def);
	return rc;
}

/* --- results as JSON ---------------------------------------------------------------- */

json_t *aclm_policy_summary_json(const struct aclm_policy_result *res)
{
	json_t *by_rule = json_object(), *s = json_object();
	static const char *const kinds[3] = { "certificates", "endpoints", "sites" };

	for (int i = 0; i < 3; i++)
		json_object_set_new(s, kinds[i], json_pack("{s:I,s:I,s:I}", "total",
		                    (json_int_t)res->n_total[i], "compliant",
		                    (json_int_t)(res->n_total[i] - res->n_violating[i]), "violating",
		                    (json_int_t)res->n_violating[i]));
	for (int i = 0; i < ACLM_POLICY_N_RULES; i++)
		json_object_set_new(by_rule, rule_names[i], json_integer(res->by_rule[i]));
	json_object_set_new(s, "violations", json_integer(res->n_violations));
	json_object_set_new(s, "by_rule", by_rule);
	return s;
}

const char *aclm_policy_rule_name(const char *s)
{
	int i = s != NULL ? rule_index(s) : -1;

	return i >= 0 ? rule_names[i] : NULL;
}

bool aclm_policy_subject_matches(const struct aclm_policy_subject *s,
                                 const struct aclm_policy_filter *f)
{
	if (f == NULL)
		return true;
	if (f->violating_only && s->n_v == 0)
		return false;
	if (f->kind >= 0 && (int)s->kind != f->kind)
		return false;
	if (f->rule != NULL) {
		for (size_t k = 0; k < s->n_v; k++)
			if (strcmp(s->v[k].rule, f->rule) == 0)
				return true;
		return false;
	}
	return true;
}

json_t *aclm_policy_result_items_json(const struct aclm_policy_result *res,
                                      const struct aclm_policy_filter *f, size_t offset,
                                      size_t limit)
{
	json_t *items = json_array();
	size_t seen = 0;

	for (size_t i = 0; i < res->n; i++) {
		const struct aclm_policy_subject *s = &res->subjects[i];
		json_t *o, *v;
		if (!aclm_policy_subject_matches(s, f))
			continue;
		if (seen++ < offset || (limit > 0 && json_array_size(items) >= limit))
			continue;
		v = json_array();
		for (size_t k = 0; k < s->n_v; k++)
			json_array_append_new(v, json_pack("{s:s,s:o}", "rule", s->v[k].rule, "detail",
			                                   aclm_json_str(s->v[k].detail)));
		o = json_pack("{s:s,s:o,s:o,s:b,s:o}", "kind", aclm_subject_kind_name(s->kind),
		              "label", aclm_json_str(s->label), "ref", aclm_json_str(s->ref),
		              "compliant", s->n_v == 0, "violations", v);
		if (s->kind != ACLM_SUBJECT_SITE)
			json_object_set_new(o, "id", json_integer(s->id));
		json_array_append_new(items, o);
	}
	return json_pack("{s:s,s:o,s:o,s:o,s:I,s:I}", "policy", res->policy, "evaluated_at",
	                 aclm_json_time(res->evaluated_at), "summary",
	                 aclm_policy_summary_json(res), "items", items, "total_items",
	                 (json_int_t)seen, "offset", (json_int_t)offset);
}

json_t *aclm_policy_result_json(const struct aclm_policy_result *res, bool violating_only,
                                size_t offset, size_t limit)
{
	struct aclm_policy_filter f = { .violating_only = violating_only, .kind = -1 };

	return aclm_policy_result_items_json(res, &f, offset, limit);
}
