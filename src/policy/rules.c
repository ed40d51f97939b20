/* Policy documents: YAML or JSON text -> checked struct aclm_policy, the
 * built-in cabf-baseline, and back to a normalised JSON document. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "aclm/err.h"
#include "aclm/str.h"
#include "aclm/timeutil.h"
#include "policy-int.h"

static const char *const family_names[KF_COUNT] = {
	[KF_RSA] = "rsa", [KF_EC] = "ec", [KF_SM2] = "sm2",
	[KF_ED25519] = "ed25519", [KF_ED448] = "ed448", [KF_DSA] = "dsa",
};

const char *policy_family_name(enum key_family f)
{
	return f < KF_COUNT ? family_names[f] : "?";
}

int policy_family_parse(const char *s, enum key_family *out)
{
	if (s == NULL)
		return ACLM_ERR_PARSE;
	if (strcasecmp(s, "ecdsa") == 0) {
		*out = KF_EC;
		return ACLM_OK;
	}
	for (int i = 0; i < KF_COUNT; i++)
		if (strcasecmp(s, family_names[i]) == 0) {
			*out = (enum key_family)i;
			return ACLM_OK;
		}
	return ACLM_ERR_PARSE;
}

bool policy_family_of(const char *key_type, enum key_family *out)
{
	return policy_family_parse(key_type, out) == ACLM_OK;
}

/* --- matching ------------------------------------------------------------ */

bool policy_glob(const char *p, const char *s)
{
	const char *star = NULL, *resume = NULL;

	/* Iterative with one backtrack point: linear in practice, never
	 * exponential on hostile patterns. */
	while (*s != '\0') {
		if (*p == '*') {
			star = p++;
			resume = s;
		} else if (*p != '\0' && (*p == '?' || tolower((unsigned char)*p) ==
		                                       tolower((unsigned char)*s))) {
			p++;
			s++;
		} else if (star != NULL) {
			p = star + 1;
			s = ++resume;
		} else {
			return false;
		}
	}
	while (*p == '*')
		p++;
	return *p == '\0';
}

static bool cidr_match(const char *pattern, const char *addr)
{
	unsigned char net[16], a[16];
	char buf[64];
	const char *slash = strchr(pattern, '/');
	int64_t bits = -1;
	int af, len;

	if (slash == NULL || (size_t)(slash - pattern) >= sizeof(buf))
		return false;
	memcpy(buf, pattern, (size_t)(slash - pattern));
	buf[slash - pattern] = '\0';
	af = strchr(buf, ':') != NULL ? AF_INET6 : AF_INET;
	len = af == AF_INET6 ? 16 : 4;
	if (inet_pton(af, buf, net) != 1 || inet_pton(af, addr, a) != 1 ||
	    aclm_parse_int64(slash + 1, &bits) != ACLM_OK || bits < 0 || bits > len * 8)
		return false;
	for (int i = 0; i < len && bits > 0; i++, bits -= 8) {
		unsigned mask = bits >= 8 ? 0xffu : (0xffu << (8 - bits)) & 0xffu;
		if ((net[i] & mask) != (a[i] & mask))
			return false;
	}
	return true;
}

bool policy_san_match(const char *pattern, const char *type, const char *value)
{
	if (strcmp(type, "IP") == 0) {
		unsigned char x[16], y[16];
		if (strchr(pattern, '/') != NULL)
			return cidr_match(pattern, value);
		if (inet_pton(AF_INET, pattern, x) == 1 && inet_pton(AF_INET, value, y) == 1)
			return memcmp(x, y, 4) == 0;
		if (inet_pton(AF_INET6, pattern, x) == 1 && inet_pton(AF_INET6, value, y) == 1)
			return memcmp(x, y, 16) == 0;
		return false;
	}
	if (strchr(pattern, '/') != NULL)
		return false;
	return policy_glob(pattern, value);
}

bool policy_name_covers(const char *cert_name, const char *host)
{
	const char *dot;

	if (strcasecmp(cert_name, host) == 0)
		return true;
	if (strncmp(cert_name, "*.", 2) != 0)
		return false;
	dot = strchr(host, '.');
	return dot != NULL && dot != host && strcasecmp(dot + 1, cert_name + 2) == 0;
}

bool policy_sig_is_weak(const char *sig_alg)
{
	return aclm_str_icontains(sig_alg, "sha1") || aclm_str_icontains(sig_alg, "sha-1") ||
	       aclm_str_icontains(sig_alg, "md5") || aclm_str_icontains(sig_alg, "md2") ||
	       aclm_str_icontains(sig_alg, "md4");
}

/* --- YAML -> JSON ------------------------------------------------------------ */

struct yaml_ctx {
	yaml_parser_t parser;
	const char *what;
};

static int yaml_fail(struct yaml_ctx *y, const yaml_event_t *ev, const char *msg)
{
	if (ev != NULL)
		return aclm_error(ACLM_ERR_PARSE, "%s: line %zu column %zu: %s", y->what,
		                  ev->start_mark.line + 1, ev->start_mark.column + 1, msg);
	return aclm_error(ACLM_ERR_PARSE, "%s: line %zu column %zu: %s", y->what,
	                  y->parser.problem_mark.line + 1, y->parser.problem_mark.column + 1,
	                  y->parser.problem != NULL ? y->parser.problem : msg);
}

static int yaml_next(struct yaml_ctx *y, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&y->parser, ev))
		return yaml_fail(y, NULL, "not valid YAML");
	return ACLM_OK;
}

static json_t *scalar_json(const yaml_event_t *ev)
{
	const char *v = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	int64_t n;

	if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
		if (len == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0)
			return json_null();
		if (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0)
			return json_true();
		if (strcmp(v, "false") == 0 || strcmp(v, "no") == 0)
			return json_false();
		if (aclm_parse_int64(v, &n) == ACLM_OK)
			return json_integer(n);
	}
	return json_stringn(v, len);
}

static int yaml_node(struct yaml_ctx *y, yaml_event_t *ev, int depth, json_t **out);

/* The node that starts with ev (consumed); *out a new reference. */
static int yaml_node(struct yaml_ctx *y, yaml_event_t *ev, int depth, json_t **out)
{
	yaml_event_t e;
	json_t *c = NULL;
	int rc;

	*out = NULL;
	if (depth > POLICY_MAX_DEPTH)
		return yaml_fail(y, ev, "nested too deep");
	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		return yaml_fail(y, ev, "aliases (*name) are not supported in policies");
	case YAML_SCALAR_EVENT:
		*out = scalar_json(ev);
		return *out != NULL ? ACLM_OK : yaml_fail(y, ev, "text is not valid UTF-8");
	case YAML_SEQUENCE_START_EVENT:
		c = json_array();
		for (;;) {
			json_t *item;
			if ((rc = yaml_next(y, &e)) != ACLM_OK)
				goto fail;
			if (e.type == YAML_SEQUENCE_END_EVENT) {
				yaml_event_delete(&e);
				break;
			}
			if (json_array_size(c) >= POLICY_MAX_LIST) {
				rc = yaml_fail(y, &e, "list too long");
				yaml_event_delete(&e);
				goto fail;
			}
			rc = yaml_node(y, &e, depth + 1, &item);
			yaml_event_delete(&e);
			if (rc != ACLM_OK)
				goto fail;
			json_array_append_new(c, item);
		}
		*out = c;
		return ACLM_OK;
	case YAML_MAPPING_START_EVENT:
		c = json_object();
		for (;;) {
			json_t *val;
			char key[256];
			if ((rc = yaml_next(y, &e)) != ACLM_OK)
				goto fail;
			if (e.type == YAML_MAPPING_END_EVENT) {
				yaml_event_delete(&e);
				break;
			}
			if (e.type != YAML_SCALAR_EVENT || e.data.scalar.length >= sizeof(key)) {
				rc = yaml_fail(y, &e, "a mapping key must be a short scalar");
				yaml_event_delete(&e);
				goto fail;
			}
			if (json_object_size(c) >= POLICY_MAX_LIST) {
				rc = yaml_fail(y, &e, "mapping too large");
				yaml_event_delete(&e);
				goto fail;
			}
			memcpy(key, e.data.scalar.value, e.data.scalar.length);
			key[e.data.scalar.length] = '\0';
			if (json_object_get(c, key) != NULL) {
				char msg[300];
				snprintf(msg, sizeof(msg), "duplicate key '%s'", key);
				rc = yaml_fail(y, &e, msg);
				yaml_event_delete(&e);
				goto fail;
			}
			yaml_event_delete(&e);
			if ((rc = yaml_next(y, &e)) != ACLM_OK)
				goto fail;
			rc = yaml_node(y, &e, depth + 1, &val);
			yaml_event_delete(&e);
			if (rc != ACLM_OK)
				goto fail;
			json_object_set_new(c, key, val);
		}
		*out = c;
		return ACLM_OK;
	default:
		return yaml_fail(y, ev, "unexpected YAML event");
	}
fail:
	json_decref(c);
	return rc;
}

int policy_yaml_to_json(const char *text, size_t len, const char *what, json_t **out)
{
	struct yaml_ctx y = { .what = what };
	yaml_event_t e;
	json_t *doc = NULL;
	int rc;

	*out = NULL;
	if (!yaml_parser_initialize(&y.parser))
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	yaml_parser_set_input_string(&y.parser, (const unsigned char *)text, len);
	/* stream start, document start, the node, document end, stream end */
	for (;;) {
		if ((rc = yaml_next(&y, &e)) != ACLM_OK)
			goto out;
		if (e.type == YAML_STREAM_START_EVENT || e.type == YAML_DOCUMENT_START_EVENT) {
			yaml_event_delete(&e);
			continue;
		}
		if (e.type == YAML_STREAM_END_EVENT) {
			yaml_event_delete(&e);
			rc = aclm_error(ACLM_ERR_PARSE, "%s: empty document", what);
			goto out;
		}
		break;
	}
	rc = yaml_node(&y, &e, 0, &doc);
	yaml_event_delete(&e);
	if (rc != ACLM_OK)
		goto out;
	if ((rc = yaml_next(&y, &e)) != ACLM_OK)
		goto out;
	if (e.type == YAML_DOCUMENT_END_EVENT) {
		yaml_event_delete(&e);
		if ((rc = yaml_next(&y, &e)) != ACLM_OK)
			goto out;
	}
	if (e.type != YAML_STREAM_END_EVENT) {
		rc = yaml_fail(&y, &e, "one policy per file: a second document follows");
		yaml_event_delete(&e);
		goto out;
	}
	yaml_event_delete(&e);
	*out = doc;
	doc = NULL;
out:
	json_decref(doc);
	yaml_parser_delete(&y.parser);
	return rc;
}

/* --- JSON -> policy ------------------------------------------------------- */

static void list_free(struct str_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

void aclm_policy_free(struct aclm_policy *p)
{
	if (p == NULL)
		return;
	free(p->name);
	free(p->description);
	list_free(&p->ec_curves);
	list_free(&p->sig_algs);
	list_free(&p->issuers);
	list_free(&p->san_patterns);
	list_free(&p->wildcard_names);
	for (size_t i = 0; i < p->n_duals; i++) {
		free(p->duals[i].site);
		free(p->duals[i].pairs);
	}
	free(p->duals);
	for (size_t i = 0; i < p->n_pqs; i++) {
		free(p->pqs[i].endpoint);
		list_free(&p->pqs[i].groups);
	}
	free(p->pqs);
	free(p);
}

const char *aclm_policy_name(const struct aclm_policy *p)
{
	return p->name;
}

static int bad(const char *what, const char *path, const char *want)
{
	return aclm_error(ACLM_ERR_PARSE, "%s: %s: %s", what, path, want);
}

/* A list of non-empty strings (a single string counts as a list of one). */
static int str_list(json_t *v, const char *what, const char *path, size_t max_len,
                    struct str_list *out)
{
	json_t *item;
	size_t i;

	if (json_is_string(v)) {
		json_t *a = json_array();
		int rc;
		json_array_append(a, v);
		rc = str_list(a, what, path, max_len, out);
		json_decref(a);
		return rc;
	}
	if (!json_is_array(v) || json_array_size(v) == 0)
		return bad(what, path, "want a non-empty list of strings");
	if (json_array_size(v) > POLICY_MAX_LIST)
		return bad(what, path, "list too long");
	out->v = calloc(json_array_size(v), sizeof(char *));
	if (out->v == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	json_array_foreach(v, i, item) {
		const char *s = json_string_value(item);
		if (s == NULL || *s == '\0' || strlen(s) > max_len) {
			char p[128];
			snprintf(p, sizeof(p), "%s[%zu]", path, i);
			return bad(what, p, "want a non-empty string (at most 253 characters)");
		}
		if ((out->v[out->n] = aclm_strdup(s)) == NULL)
			return aclm_error(ACLM_ERR_NOMEM, "out of memory");
		out->n++;
	}
	return ACLM_OK;
}

static bool name_valid(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;

	if (n == 0 || n > POLICY_MAX_NAME)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return false;
	return true;
}

static int parse_key_types(struct aclm_policy *p, json_t *v, const char *what)
{
	const char *k;
	json_t *val;

	if (!json_is_object(v) || json_object_size(v) == 0)
		return bad(what, "rules.key_types", "want a mapping of key types (rsa, ec, sm2, "
		           "ed25519, ed448, dsa) to {} or their limits");
	p->has_key_types = true;
	json_object_foreach(v, k, val) {
		enum key_family f;
		char path[128];
		snprintf(path, sizeof(path), "rules.key_types.%s", k);
		if (policy_family_parse(k, &f) != ACLM_OK)
			return bad(what, path, "unknown key type (rsa, ec, sm2, ed25519, ed448, dsa)");
		if (json_is_false(val))
			continue;
		p->key_allowed[f] = true;
		if (json_is_true(val) || json_is_null(val))
			continue;
		if (!json_is_object(val))
			return bad(what, path, "want {}, true, or the limits of this type");
		{
			const char *kk;
			json_t *vv;
			json_object_foreach(val, kk, vv) {
				if (f == KF_RSA && strcmp(kk, "min_bits") == 0) {
					if (!json_is_integer(vv) || json_integer_value(vv) < 512 ||
					    json_integer_value(vv) > 16384)
						return bad(what, "rules.key_types.rsa.min_bits",
						           "want an integer 512..16384");
					p->rsa_min_bits = (int)json_integer_value(vv);
				} else if (f == KF_EC && strcmp(kk, "curves") == 0) {
					int rc = str_list(vv, what, "rules.key_types.ec.curves", 32,
					                  &p->ec_curves);
					if (rc != ACLM_OK)
						return rc;
				} else {
					char pp[192];
					snprintf(pp, sizeof(pp), "%s.%s", path, kk);
					return bad(what, pp, f == KF_RSA ? "unknown setting (min_bits)"
					                     : f == KF_EC ? "unknown setting (curves)"
					                                  : "this key type has no settings");
				}
			}
		}
	}
	return ACLM_OK;
}

static int parse_pairs(struct dual_rule *d, json_t *v, const char *what, const char *path)
{
	json_t *pair;
	size_t i;

	if (v == NULL) {
		/* The two dual combinations of the design: SM2 + ECDSA, ECDSA + RSA. */
		d->pairs = calloc(2, sizeof(*d->pairs));
		if (d->pairs == NULL)
			return aclm_error(ACLM_ERR_NOMEM, "out of memory");
		d->pairs[0][0] = KF_SM2;
		d->pairs[0][1] = KF_EC;
		d->pairs[1][0] = KF_EC;
		d->pairs[1][1] = KF_RSA;
		d->n_pairs = 2;
		return ACLM_OK;
	}
	if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > 16)
		return bad(what, path, "want a list of pairs of key types, e.g. [[sm2, ec], [ec, rsa]]");
	d->pairs = calloc(json_array_size(v), sizeof(*d->pairs));
	if (d->pairs == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	json_array_foreach(v, i, pair) {
		if (!json_is_array(pair) || json_array_size(pair) != 2 ||
		    policy_family_parse(json_string_value(json_array_get(pair, 0)),
		                        &d->pairs[i][0]) != ACLM_OK ||
		    policy_family_parse(json_string_value(json_array_get(pair, 1)),
		                        &d->pairs[i][1]) != ACLM_OK ||
		    d->pairs[i][0] == d->pairs[i][1])
			return bad(what, path, "each pair is two different key types (rsa, ec, sm2, "
			           "ed25519, ed448, dsa)");
		d->n_pairs++;
	}
	return ACLM_OK;
}

static int parse_duals(struct aclm_policy *p, json_t *v, const char *what)
{
	json_t *item;
	size_t i;

	if (!json_is_array(v) || json_array_size(v) > POLICY_MAX_LIST)
		return bad(what, "rules.dual_certificates", "want a list of {site, pairs}");
	p->duals = calloc(json_array_size(v) + 1, sizeof(*p->duals));
	if (p->duals == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	json_array_foreach(v, i, item) {
		struct dual_rule *d = &p->duals[p->n_duals];
		const char *site = json_string_value(json_is_string(item) ? item
		                                     : json_object_get(item, "site"));
		char path[96];
		const char *k;
		json_t *vv;
		int rc;
		snprintf(path, sizeof(path), "rules.dual_certificates[%zu]", i);
		if (site == NULL || *site == '\0' || strlen(site) > 253 || strchr(site, '*') != NULL)
			return bad(what, path, "want a site name (no wildcard), or {site, pairs}");
		if (json_is_object(item))
			json_object_foreach(item, k, vv)
				if (strcmp(k, "site") != 0 && strcmp(k, "pairs") != 0)
					return bad(what, path, "unknown setting (site, pairs)");
		if ((d->site = aclm_strdup(site)) == NULL)
			return aclm_error(ACLM_ERR_NOMEM, "out of memory");
		aclm_str_lower(d->site);
		p->n_duals++;
		strncat(path, ".pairs", sizeof(path) - strlen(path) - 1);
		rc = parse_pairs(d, json_is_object(item) ? json_object_get(item, "pairs") : NULL,
		                 what, path);
		if (rc != ACLM_OK)
			return rc;
	}
	return ACLM_OK;
}

static int parse_pqs(struct aclm_policy *p, json_t *v, const char *what)
{
	json_t *item;
	size_t i;

	if (!json_is_array(v) || json_array_size(v) > POLICY_MAX_LIST)
		return bad(what, "rules.pq_key_exchange", "want a list of {endpoint, groups}");
	p->pqs = calloc(json_array_size(v) + 1, sizeof(*p->pqs));
	if (p->pqs == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	json_array_foreach(v, i, item) {
		struct pq_rule *q = &p->pqs[p->n_pqs];
		const char *ep = json_string_value(json_is_string(item) ? item
		                                   : json_object_get(item, "endpoint"));
		json_t *groups = json_is_object(item) ? json_object_get(item, "groups") : NULL;
		char path[96];
		const char *k;
		json_t *vv;
		int rc;
		snprintf(path, sizeof(path), "rules.pq_key_exchange[%zu]", i);
		if (ep == NULL || *ep == '\0' || strlen(ep) > 300)
			return bad(what, path, "want an endpoint (host, host:port, address, glob), or "
			           "{endpoint, groups}");
		if (json_is_object(item))
			json_object_foreach(item, k, vv)
				if (strcmp(k, "endpoint") != 0 && strcmp(k, "groups") != 0)
					return bad(what, path, "unknown setting (endpoint, groups)");
		if ((q->endpoint = aclm_strdup(ep)) == NULL)
			return aclm_error(ACLM_ERR_NOMEM, "out of memory");
		p->n_pqs++;
		if (groups == NULL) {
			json_t *def = json_pack("[ss]", "X25519MLKEM768", "curveSM2MLKEM768");
			rc = str_list(def, what, path, 64, &q->groups);
			json_decref(def);
		} else {
			strncat(path, ".groups", sizeof(path) - strlen(path) - 1);
			rc = str_list(groups, what, path, 64, &q->groups);
		}
		if (rc != ACLM_OK)
			return rc;
	}
	return ACLM_OK;
}

static int parse_rules(struct aclm_policy *p, json_t *rules, const char *what)
{
	const char *k;
	json_t *v;
	int rc = ACLM_OK;

	if (rules == NULL)
		return ACLM_OK;
	if (!json_is_object(rules))
		return bad(what, "rules", "want a mapping of rules");
	json_object_foreach(rules, k, v) {
		if (json_is_null(v))
			continue;
		if (strcmp(k, "key_types") == 0) {
			rc = parse_key_types(p, v, what);
		} else if (strcmp(k, "signature_algorithms") == 0) {
			p->has_sig_algs = true;
			rc = str_list(v, what, "rules.signature_algorithms", 64, &p->sig_algs);
			for (size_t i = 0; rc == ACLM_OK && i < p->sig_algs.n; i++)
				if (policy_sig_is_weak(p->sig_algs.v[i]))
					rc = bad(what, "rules.signature_algorithms", "SHA-1 and MD5 "
					         "signatures cannot be allowed");
		} else if (strcmp(k, "max_validity") == 0) {
			if (json_is_string(v) && strcasecmp(json_string_value(v), "cabf") == 0)
				p->max_validity_days = -1;
			else if (json_is_integer(v) && json_integer_value(v) >= 1 &&
			         json_integer_value(v) <= 36525)
				p->max_validity_days = (int)json_integer_value(v);
			else
				rc = bad(what, "rules.max_validity", "want 'cabf' (the CA/Browser Forum "
				         "schedule) or a number of days 1..36525");
		} else if (strcmp(k, "issuers") == 0) {
			rc = str_list(v, what, "rules.issuers", 1024, &p->issuers);
		} else if (strcmp(k, "san_patterns") == 0) {
			rc = str_list(v, what, "rules.san_patterns", 253, &p->san_patterns);
		} else if (strcmp(k, "wildcards") == 0) {
			const char *s = json_string_value(v);
			if (s != NULL && strcmp(s, "allow") == 0) {
				p->wildcards = WILD_ALLOW;
			} else if ((s != NULL && strcmp(s, "deny") == 0) || json_is_false(v)) {
				p->wildcards = WILD_DENY;
			} else if (json_is_true(v)) {
				p->wildcards = WILD_ALLOW;
			} else if (json_is_array(v)) {
				p->wildcards = WILD_LIST;
				rc = str_list(v, what, "rules.wildcards", 253, &p->wildcard_names);
			} else {
				rc = bad(what, "rules.wildcards", "want allow, deny, or a list of the "
				         "wildcard names allowed (\"*.dev.example.com\")");
			}
		} else if (strcmp(k, "one_site_one_key") == 0) {
			if (!json_is_boolean(v))
				rc = bad(what, "rules.one_site_one_key", "want true or false");
			p->one_site_one_key = json_is_true(v);
		} else if (strcmp(k, "dual_certificates") == 0) {
			rc = parse_duals(p, v, what);
		} else if (strcmp(k, "pq_key_exchange") == 0) {
			rc = parse_pqs(p, v, what);
		} else {
			char path[300];
			snprintf(path, sizeof(path), "rules.%s", k);
			rc = bad(what, path, "unknown rule (key_types, signature_algorithms, "
			         "max_validity, issuers, san_patterns, wildcards, one_site_one_key, "
			         "dual_certificates, pq_key_exchange)");
		}
		if (rc != ACLM_OK)
			return rc;
	}
	return ACLM_OK;
}

int aclm_policy_from_json(json_t *doc, const char *what, struct aclm_policy **out)
{
	struct aclm_policy *p;
	const char *k, *name, *desc;
	json_t *v;
	int rc;

	*out = NULL;
	if (!json_is_object(doc))
		return bad(what, "(top)", "want a mapping with name and rules");
	json_object_foreach(doc, k, v)
		if (strcmp(k, "name") != 0 && strcmp(k, "description") != 0 &&
		    strcmp(k, "rules") != 0) {
			char path[300];
			snprintf(path, sizeof(path), "%s", k);
			return bad(what, path, "unknown key (name, description, rules)");
		}
	name = json_string_value(json_object_get(doc, "name"));
	if (!name_valid(name))
		return bad(what, "name", "want 1-64 of A-Z a-z 0-9 . _ -");
	if (strcmp(name, ACLM_POLICY_BUILTIN) == 0)
		return bad(what, "name", "'" ACLM_POLICY_BUILTIN "' is the built-in policy: "
		           "choose another name");
	desc = json_string_value(json_object_get(doc, "description"));
	if (json_object_get(doc, "description") != NULL && (desc == NULL || strlen(desc) > 4096))
		return bad(what, "description", "want a string of at most 4096 characters");
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	p->name = aclm_strdup(name);
	p->description = aclm_strdup(desc != NULL ? desc : "");
	if (p->name == NULL || p->description == NULL) {
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
		goto fail;
	}
	if ((rc = parse_rules(p, json_object_get(doc, "rules"), what)) != ACLM_OK)
		goto fail;
	*out = p;
	return ACLM_OK;
fail:
	aclm_policy_free(p);
	return rc;
}

int aclm_policy_parse(const char *text, size_t len, const char *what,
                      struct aclm_policy **out)
{
	json_t *doc = NULL;
	size_t i = 0;
	int rc;

	*out = NULL;
	if (len > POLICY_MAX_TEXT)
		return aclm_error(ACLM_ERR_TOOBIG, "%s: a policy is at most %u bytes", what,
		                  POLICY_MAX_TEXT);
	if (memchr(text, '\0', len) != NULL)
		return aclm_error(ACLM_ERR_PARSE, "%s: binary data, not a YAML or JSON policy", what);
	while (i < len && isspace((unsigned char)text[i]))
		i++;
	if (i < len && text[i] == '{') {
		json_error_t e;
		doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);
		if (doc == NULL)
			return aclm_error(ACLM_ERR_PARSE, "%s: line %d column %d: %s", what, e.line,
			                  e.column, e.text);
	} else if ((rc = policy_yaml_to_json(text, len, what, &doc)) != ACLM_OK) {
		return rc;
	}
	rc = aclm_policy_from_json(doc, what, out);
	json_decref(doc);
	return rc;
}

/* The CA/Browser Forum Baseline Requirements for TLS server certificates:
 * RSA >= 2048, ECDSA on P-256/P-384/P-521, SHA-2 signatures, the validity
 * schedule, well-formed wildcards, one key per site; SM2 (GB/T) is allowed
 * too, as aclm manages Chinese commercial-cryptography estates. */
int aclm_policy_builtin(struct aclm_policy **out)
{
	static const char doc[] =
		"{\"name\": \"cabf\", \"description\": \"CA/Browser Forum Baseline Requirements "
		"for TLS server certificates, plus SM2\", \"rules\": {"
		"\"key_types\": {\"rsa\": {\"min_bits\": 2048}, \"ec\": {\"curves\": "
		"[\"P-256\", \"P-384\", \"P-521\"]}, \"sm2\": {}},"
		"\"signature_algorithms\": [\"sha256WithRSAEncryption\", \"sha384WithRSAEncryption\", "
		"\"sha512WithRSAEncryption\", \"rsassaPss\", \"RSASSA-PSS\", \"ecdsa-with-SHA256\", "
		"\"ecdsa-with-SHA384\", \"ecdsa-with-SHA512\", \"SM2-with-SM3\"],"
		"\"max_validity\": \"cabf\", \"wildcards\": \"allow\", \"one_site_one_key\": true}}";
	json_error_t e;
	json_t *j = json_loads(doc, 0, &e);
	int rc;

	if (j == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "built-in policy: %s", e.text);
	rc = aclm_policy_from_json(j, "built-in policy", out);
	json_decref(j);
	if (rc != ACLM_OK)
		return rc;
	free((*out)->name);
	(*out)->name = aclm_strdup(ACLM_POLICY_BUILTIN);
	if ((*out)->name == NULL) {
		aclm_policy_free(*out);
		*out = NULL;
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	}
	return ACLM_OK;
}

static json_t *list_json(const struct str_list *l)
{
	json_t *a = json_array();

	for (size_t i = 0; i < l->n; i++)
		json_array_append_new(a, json_string(l->v[i]));
	return a;
}

json_t *aclm_policy_json(const struct aclm_policy *p)
{
	json_t *rules = json_object();

	if (p->has_key_types) {
		json_t *kt = json_object();
		for (int f = 0; f < KF_COUNT; f++) {
			json_t *o;
			if (!p->key_allowed[f])
				continue;
			o = json_object();
			if (f == KF_RSA && p->rsa_min_bits > 0)
				json_object_set_new(o, "min_bits", json_integer(p->rsa_min_bits));
			if (f == KF_EC && p->ec_curves.n > 0)
				json_object_set_new(o, "curves", list_json(&p->ec_curves));
			json_object_set_new(kt, family_names[f], o);
		}
		json_object_set_new(rules, "key_types", kt);
	}
	if (p->has_sig_algs)
		json_object_set_new(rules, "signature_algorithms", list_json(&p->sig_algs));
	if (p->max_validity_days != 0)
		json_object_set_new(rules, "max_validity", p->max_validity_days < 0
		                    ? json_string("cabf") : json_integer(p->max_validity_days));
	if (p->issuers.n > 0)
		json_object_set_new(rules, "issuers", list_json(&p->issuers));
	if (p->san_patterns.n > 0)
		json_object_set_new(rules, "san_patterns", list_json(&p->san_patterns));
	if (p->wildcards == WILD_ALLOW)
		json_object_set_new(rules, "wildcards", json_string("allow"));
	else if (p->wildcards == WILD_DENY)
		json_object_set_new(rules, "wildcards", json_string("deny"));
	else if (p->wildcards == WILD_LIST)
		json_object_set_new(rules, "wildcards", list_json(&p->wildcard_names));
	if (p->one_site_one_key)
		json_object_set_new(rules, "one_site_one_key", json_true());
	if (p->n_duals > 0) {
		json_t *a = json_array();
		for (size_t i = 0; i < p->n_duals; i++) {
			json_t *pairs = json_array();
			for (size_t k = 0; k < p->duals[i].n_pairs; k++)
				json_array_append_new(pairs, json_pack("[ss]",
				                      family_names[p->duals[i].pairs[k][0]],
				                      family_names[p->duals[i].pairs[k][1]]));
			json_array_append_new(a, json_pack("{s:s,s:o}", "site", p->duals[i].site,
			                                   "pairs", pairs));
		}
		json_object_set_new(rules, "dual_certificates", a);
	}
	if (p->n_pqs > 0) {
		json_t *a = json_array();
		for (size_t i = 0; i < p->n_pqs; i++)
			json_array_append_new(a, json_pack("{s:s,s:o}", "endpoint", p->pqs[i].endpoint,
			                                   "groups", list_json(&p->pqs[i].groups)));
		json_object_set_new(rules, "pq_key_exchange", a);
	}
	return json_pack("{s:s,s:s,s:o}", "name", p->name, "description", p->description,
	                 "rules", rules);
}

/* --- the CA/B validity schedule ---------------------------------------------- */

int aclm_policy_cabf_max_days(int64_t not_before)
{
	/* Ballot SC-081: issued on or after these days (00:00:00 UTC). */
	static const struct {
		int64_t from;
		int days;
	} schedule[] = {
		{ 1868227200, 47 },   /* 2029-03-15 */
		{ 1805068800, 100 },  /* 2027-03-15 */
		{ 1773532800, 200 },  /* 2026-03-15 */
	};

	for (size_t i = 0; i < sizeof(schedule) / sizeof(schedule[0]); i++)
		if (not_before >= schedule[i].from)
			return schedule[i].days;
	return 398;
}

int64_t aclm_policy_validity_days(int64_t not_before, int64_t not_after)
{
	int64_t secs = not_after - not_before + 1;

	if (secs <= 0)
		return 0;
	return (secs + 86399) / 86400;
}
