/* gw.yaml: the gateway's configuration, read with libyaml's document API so
 * that every error can name the file and line of the offending node. */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "aclm/ca.h"
#include "aclm/csr.h"
#include "aclm/err.h"
#include "aclm/str.h"
#include "gateway-int.h"

struct ld {
	yaml_document_t doc;
	const char *path;
	struct aclm_gw_config *cfg;
};

static int cerr(struct ld *ld, const yaml_node_t *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int cerr(struct ld *ld, const yaml_node_t *n, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return aclm_error(ACLM_ERR_CONFIG, "%s:%lu: %s", ld->path,
	                  n ? (unsigned long)n->start_mark.line + 1 : 1UL, msg);
}

static const char *scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int get_str(struct ld *ld, const yaml_node_t *n, const char *key, char *out, size_t cap)
{
	const char *s = scalar(n);

	if (!s)
		return cerr(ld, n, "%s: expected a string", key);
	if (strlen(s) >= cap)
		return cerr(ld, n, "%s: longer than %zu bytes", key, cap - 1);
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

static int get_num(struct ld *ld, const yaml_node_t *n, const char *key, double lo, double hi,
                   double *out)
{
	const char *s = scalar(n);
	char *end = NULL;
	double v;

	if (!s || !*s)
		return cerr(ld, n, "%s: expected a number", key);
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || v != v)
		return cerr(ld, n, "%s: '%s' is not a number", key, s);
	if (v < lo || v > hi)
		return cerr(ld, n, "%s: %s is outside %g..%g", key, s, lo, hi);
	*out = v;
	return 0;
}

static int get_uint(struct ld *ld, const yaml_node_t *n, const char *key, double lo, double hi,
                    unsigned long long *out)
{
	double v = 0;
	int rc = get_num(ld, n, key, lo, hi, &v);

	if (rc)
		return rc;
	if (v != (double)(unsigned long long)v)
		return cerr(ld, n, "%s: expected a whole number", key);
	*out = (unsigned long long)v;
	return 0;
}

static int get_bool(struct ld *ld, const yaml_node_t *n, const char *key, bool *out)
{
	const char *s = scalar(n);

	if (s && (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on"))) {
		*out = true;
		return 0;
	}
	if (s && (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off"))) {
		*out = false;
		return 0;
	}
	return cerr(ld, n, "%s: expected true or false", key);
}

#define FOR_PAIRS(ld, map, k, v) \
	for (yaml_node_pair_t *pp_ = (map)->data.mapping.pairs.start; \
	     pp_ < (map)->data.mapping.pairs.top && \
	     ((k) = yaml_document_get_node(&(ld)->doc, pp_->key), \
	      (v) = yaml_document_get_node(&(ld)->doc, pp_->value), 1); \
	     pp_++)

#define FOR_ITEMS(ld, seq, it) \
	for (yaml_node_item_t *ip_ = (seq)->data.sequence.items.start; \
	     ip_ < (seq)->data.sequence.items.top && \
	     ((it) = yaml_document_get_node(&(ld)->doc, *ip_), 1); \
	     ip_++)

static int need_map(struct ld *ld, const yaml_node_t *n, const char *what)
{
	if (!n || n->type != YAML_MAPPING_NODE)
		return cerr(ld, n, "%s: expected a mapping", what);
	return 0;
}

static int need_seq(struct ld *ld, const yaml_node_t *n, const char *what)
{
	if (!n || n->type != YAML_SEQUENCE_NODE)
		return cerr(ld, n, "%s: expected a list", what);
	return 0;
}

/* "host:port" or "[v6]:port" with a port 1..65535. */
static int check_addr(struct ld *ld, const yaml_node_t *n, const char *key, const char *a)
{
	const char *colon = strrchr(a, ':');
	unsigned long port;
	char *end;

	if (!colon || colon == a)
		return cerr(ld, n, "%s: '%s' is not host:port", key, a);
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end || colon[1] == '\0' || port > 65535)
		return cerr(ld, n, "%s: '%s' has no valid port", key, a);
	return 0;
}

static int load_timeouts(struct ld *ld, yaml_node_t *map)
{
	struct gw_timeouts *t = &ld->cfg->to;
	yaml_node_t *k, *v;
	int rc;

	if ((rc = need_map(ld, map, "timeouts")))
		return rc;
	FOR_PAIRS(ld, map, k, v) {
		const char *key = scalar(k);
		double *dst = NULL;

		if (!key)
			return cerr(ld, k, "timeouts: keys must be strings");
		if (!strcmp(key, "handshake")) dst = &t->handshake;
		else if (!strcmp(key, "header")) dst = &t->header;
		else if (!strcmp(key, "body")) dst = &t->body;
		else if (!strcmp(key, "idle")) dst = &t->idle;
		else if (!strcmp(key, "write")) dst = &t->write;
		else if (!strcmp(key, "upstream_connect")) dst = &t->upstream_connect;
		else if (!strcmp(key, "upstream_response")) dst = &t->upstream_response;
		else if (!strcmp(key, "fail_timeout")) dst = &t->fail_timeout;
		else
			return cerr(ld, k, "timeouts: unknown field '%s' (handshake, header, body, "
			            "idle, write, upstream_connect, upstream_response, fail_timeout)", key);
		if ((rc = get_num(ld, v, key, 0.001, 86400, dst)))
			return rc;
	}
	return 0;
}

static int load_health(struct ld *ld, yaml_node_t *map)
{
	struct aclm_gw_config *c = ld->cfg;
	yaml_node_t *k, *v;
	int rc;

	if ((rc = need_map(ld, map, "health_check")))
		return rc;
	c->health_interval = 5;
	c->health_timeout = 2;
	FOR_PAIRS(ld, map, k, v) {
		const char *key = scalar(k);

		if (key && !strcmp(key, "interval"))
			rc = get_num(ld, v, key, 0.1, 3600, &c->health_interval);
		else if (key && !strcmp(key, "timeout"))
			rc = get_num(ld, v, key, 0.05, 60, &c->health_timeout);
		else if (key && !strcmp(key, "path")) {
			rc = get_str(ld, v, key, c->health_path, sizeof(c->health_path));
			if (!rc && (c->health_path[0] != '/' ||
			            strpbrk(c->health_path, " \t\r\n")))
				rc = cerr(ld, v, "path: an absolute path without blanks");
		} else
			rc = cerr(ld, k, "health_check: unknown field '%s' (interval, timeout, path)",
			          key ? key : "?");
		if (rc)
			return rc;
	}
	return 0;
}

static int load_limits(struct ld *ld, yaml_node_t *map)
{
	struct aclm_gw_config *c = ld->cfg;
	yaml_node_t *k, *v;
	unsigned long long u = 0;
	int rc;

	if ((rc = need_map(ld, map, "limits")))
		return rc;
	FOR_PAIRS(ld, map, k, v) {
		const char *key = scalar(k);

		if (!key)
			return cerr(ld, k, "limits: keys must be strings");
		if (!strcmp(key, "header_bytes")) {
			if ((rc = get_uint(ld, v, key, 1024, 1 << 20, &u)))
				return rc;
			c->limits.max_header_bytes = u;
		} else if (!strcmp(key, "headers")) {
			if ((rc = get_uint(ld, v, key, 1, 1000, &u)))
				return rc;
			c->limits.max_headers = u;
		} else if (!strcmp(key, "request_line")) {
			if ((rc = get_uint(ld, v, key, 256, 1 << 20, &u)))
				return rc;
			c->limits.max_request_line = u;
		} else if (!strcmp(key, "body_bytes")) {
			if ((rc = get_uint(ld, v, key, 1, 1ULL << 30, &u)))
				return rc;
			c->limits.max_body = u;
		} else if (!strcmp(key, "connections_per_ip")) {
			if ((rc = get_uint(ld, v, key, 0, 1000000, &u)))
				return rc;
			c->max_conns_per_ip = (unsigned)u;
		} else {
			return cerr(ld, k, "limits: unknown field '%s' (header_bytes, headers, "
			            "request_line, body_bytes, connections_per_ip)", key);
		}
	}
	return 0;
}

static int load_tls(struct ld *ld, yaml_node_t *map, char *groups, size_t groups_cap)
{
	struct aclm_gw_config *c = ld->cfg;
	yaml_node_t *k, *v;
	int rc;

	if ((rc = need_map(ld, map, "tls")))
		return rc;
	FOR_PAIRS(ld, map, k, v) {
		const char *key = scalar(k);

		if (!key)
			return cerr(ld, k, "tls: keys must be strings");
		if (!strcmp(key, "min_version")) {
			if ((rc = get_str(ld, v, key, c->min_version, sizeof(c->min_version))))
				return rc;
			if (strcmp(c->min_version, "1.2") && strcmp(c->min_version, "1.3"))
				return cerr(ld, v, "min_version: expected 1.2 or 1.3");
		} else if (!strcmp(key, "groups")) {
			if ((rc = get_str(ld, v, key, groups, groups_cap)))
				return rc;
		} else if (!strcmp(key, "ciphersuites")) {
			if ((rc = get_str(ld, v, key, c->ciphersuites, sizeof(c->ciphersuites))))
				return rc;
		} else if (!strcmp(key, "session_tickets")) {
			if ((rc = get_bool(ld, v, key, &c->session_tickets)))
				return rc;
		} else if (!strcmp(key, "ticket_rotation")) {
			if ((rc = get_num(ld, v, key, 1, 7 * 86400, &c->ticket_rotation)))
				return rc;
		} else if (!strcmp(key, "ciphers")) {
			if ((rc = get_str(ld, v, key, c->ciphers, sizeof(c->ciphers))))
				return rc;
		} else {
			return cerr(ld, k, "tls: unknown field '%s' (min_version, groups, "
			            "ciphersuites, ciphers, session_tickets, ticket_rotation)", key);
		}
	}
	return 0;
}

static int parse_upstream(struct ld *ld, const yaml_node_t *n, struct gw_upstream *u)
{
	const char *s = scalar(n), *hp, *colon;
	struct addrinfo hints = { 0 }, *res = NULL;
	char *end;
	unsigned long port = 80;
	size_t hlen;
	int grc;

	if (!s)
		return cerr(ld, n, "upstreams: expected a URL string");
	if (strlen(s) >= sizeof(u->url))
		return cerr(ld, n, "upstreams: URL too long");
	memcpy(u->url, s, strlen(s) + 1);
	if (strncmp(s, "http://", 7))
		return cerr(ld, n, "upstream '%s': only http://host:port is supported", s);
	hp = s + 7;
	if (strchr(hp, '/') && strcmp(strchr(hp, '/'), "/"))
		return cerr(ld, n, "upstream '%s': a path is not supported", s);
	if (*hp == '[') {
		const char *rb = strchr(hp, ']');

		if (!rb)
			return cerr(ld, n, "upstream '%s': unterminated [IPv6 address]", s);
		hlen = (size_t)(rb - hp - 1);
		hp++;
		colon = rb[1] == ':' ? rb + 1 : NULL;
	} else {
		colon = strchr(hp, ':');
		hlen = colon ? (size_t)(colon - hp) : strcspn(hp, "/");
	}
	if (hlen == 0 || hlen >= sizeof(u->host))
		return cerr(ld, n, "upstream '%s': no host", s);
	memcpy(u->host, hp, hlen);
	u->host[hlen] = '\0';
	if (colon) {
		errno = 0;
		port = strtoul(colon + 1, &end, 10);
		if (errno || end == colon + 1 || (*end && strcmp(end, "/")) || port == 0 ||
		    port > 65535)
			return cerr(ld, n, "upstream '%s': bad port", s);
	}
	snprintf(u->port, sizeof(u->port), "%lu", port);
	hints.ai_socktype = SOCK_STREAM;
	grc = getaddrinfo(u->host, u->port, &hints, &res);
	if (grc || !res)
		return cerr(ld, n, "upstream '%s': cannot resolve %s: %s", s, u->host,
		            gai_strerror(grc));
	memcpy(&u->addr, res->ai_addr, res->ai_addrlen);
	u->addr_len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static int load_certs(struct ld *ld, struct gw_site *site, yaml_node_t *seq)
{
	yaml_node_t *it, *k, *v;
	int rc;

	if ((rc = need_seq(ld, seq, "certificates")))
		return rc;
	FOR_ITEMS(ld, seq, it) {
		struct gw_certfile *cf;
		struct stat st;

		if ((rc = need_map(ld, it, "certificates item")))
			return rc;
		if (site->n_certs == GW_MAX_CERTS)
			return cerr(ld, it, "certificates: at most %d (one ECDSA, one RSA)",
			            GW_MAX_CERTS);
		cf = &site->certs[site->n_certs];
		FOR_PAIRS(ld, it, k, v) {
			const char *key = scalar(k);

			if (key && !strcmp(key, "cert"))
				rc = get_str(ld, v, key, cf->cert, sizeof(cf->cert));
			else if (key && !strcmp(key, "key"))
				rc = get_str(ld, v, key, cf->key, sizeof(cf->key));
			else
				rc = cerr(ld, k, "certificates: unknown field '%s' (cert, key)",
				          key ? key : "?");
			if (rc)
				return rc;
		}
		if (!cf->cert[0] || !cf->key[0])
			return cerr(ld, it, "certificates: both cert and key are required");
		if (stat(cf->cert, &st))
			return cerr(ld, it, "certificate %s: %s", cf->cert, strerror(errno));
		cf->cert_mtime = st.st_mtim;
		if (stat(cf->key, &st))
			return cerr(ld, it, "key %s: %s", cf->key, strerror(errno));
		cf->key_mtime = st.st_mtim;
		site->n_certs++;
	}
	return 0;
}

static bool is_pq_group(const char *g, size_t len)
{
	for (size_t i = 0; i + 5 <= len; i++)
		if (!strncasecmp(g + i, "MLKEM", 5) || !strncasecmp(g + i, "KYBER", 5))
			return true;
	return false;
}

/* groups_classic = groups without the hybrid and ML-KEM groups. */
static int split_groups(struct ld *ld, const yaml_node_t *n, struct gw_site *s)
{
	const char *p = s->groups;
	size_t out = 0;

	s->has_pq_group = false;
	s->groups_classic[0] = '\0';
	while (*p) {
		size_t len = strcspn(p, ":");

		if (len == 0)
			return cerr(ld, n, "groups '%s': empty group name", s->groups);
		if (is_pq_group(p, len)) {
			s->has_pq_group = true;
		} else {
			if (out + len + 2 > sizeof(s->groups_classic))
				return cerr(ld, n, "groups: list too long");
			if (out)
				s->groups_classic[out++] = ':';
			memcpy(s->groups_classic + out, p, len);
			out += len;
			s->groups_classic[out] = '\0';
		}
		p += len;
		if (*p == ':')
			p++;
	}
	if (!out)
		return cerr(ld, n, "groups '%s': no classical group left for clients without "
		            "post-quantum support", s->groups);
	return 0;
}

static bool valid_name(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > 253)
		return false;
	if (!strncmp(s, "*.", 2))
		s += 2;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '.'))
			return false;
	return true;
}

static int load_site(struct ld *ld, yaml_node_t *map, struct gw_site *s, const char *groups)
{
	yaml_node_t *k, *v, *it, *groups_node = map;
	bool has_pq = false, has_canary = false;
	int rc;

	s->line = map->start_mark.line + 1;
	s->pq = GW_PQ_PREFER;
	s->pq_canary_percent = 100;
	s->forwarded = true;
	snprintf(s->groups, sizeof(s->groups), "%s", groups);
	FOR_PAIRS(ld, map, k, v) {
		const char *key = scalar(k);
		unsigned long long u = 0;

		if (!key)
			return cerr(ld, k, "site: keys must be strings");
		if (!strcmp(key, "names")) {
			if (s->n_names)
				return cerr(ld, k, "names given twice");
			if ((rc = need_seq(ld, v, "names")))
				return rc;
			FOR_ITEMS(ld, v, it) {
				const char *name = scalar(it);

				if (!name || !valid_name(name))
					return cerr(ld, it, "names: '%s' is not a host name or *.wildcard",
					            name ? name : "?");
				if (s->n_names == GW_MAX_NAMES)
					return cerr(ld, it, "names: at most %d", GW_MAX_NAMES);
				s->names[s->n_names] = strdup(name);
				if (!s->names[s->n_names])
					return aclm_error(ACLM_ERR_NOMEM, "out of memory");
				for (char *c = s->names[s->n_names]; *c; c++)
					if (*c >= 'A' && *c <= 'Z')
						*c = (char)(*c - 'A' + 'a');
				s->n_names++;
			}
		} else if (!strcmp(key, "upstreams")) {
			size_t n;

			if (s->ups)
				return cerr(ld, k, "upstreams given twice");
			if ((rc = need_seq(ld, v, "upstreams")))
				return rc;
			n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
			if (n == 0 || n > GW_MAX_UPSTREAMS)
				return cerr(ld, v, "upstreams: 1 to %d URLs", GW_MAX_UPSTREAMS);
			s->ups = calloc(n, sizeof(*s->ups));
			if (!s->ups)
				return aclm_error(ACLM_ERR_NOMEM, "out of memory");
			FOR_ITEMS(ld, v, it) {
				if ((rc = parse_upstream(ld, it, &s->ups[s->n_ups])))
					return rc;
				s->n_ups++;
			}
		} else if (!strcmp(key, "certificates")) {
			if (s->n_certs)
				return cerr(ld, k, "certificates given twice");
			if ((rc = load_certs(ld, s, v)))
				return rc;
		} else if (!strcmp(key, "cert_source")) {
			const char *src = scalar(v);

			if (src && !strcmp(src, "files"))
				s->cert_source = GW_CERT_FILES;
			else if (src && !strcmp(src, "acme"))
				s->cert_source = GW_CERT_ACME;
			else if (src && !strcmp(src, "ca"))
				s->cert_source = GW_CERT_CA;
			else
				return cerr(ld, v, "cert_source: expected files, acme or ca");
		} else if (!strcmp(key, "ca")) {
			if ((rc = get_str(ld, v, key, s->ca_name, sizeof(s->ca_name))))
				return rc;
			if (!s->ca_name[0] || strspn(s->ca_name, "abcdefghijklmnopqrstuvwxyz"
			                             "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
			                      strlen(s->ca_name))
				return cerr(ld, v, "ca: '%s' is not a CA name (letters, digits, '.', "
				            "'_', '-')", s->ca_name);
			s->ca_line = v->start_mark.line + 1;
		} else if (!strcmp(key, "ca_profile")) {
			if ((rc = get_str(ld, v, key, s->ca_profile, sizeof(s->ca_profile))))
				return rc;
			if (!aclm_ca_profile_find(s->ca_profile))
				return cerr(ld, v, "ca_profile: unknown profile '%s' (default, "
				            "shortlived, intranet)", s->ca_profile);
		} else if (!strcmp(key, "acme_cas")) {
			if ((rc = need_seq(ld, v, "acme_cas")))
				return rc;
			FOR_ITEMS(ld, v, it) {
				if (s->n_acme_cas == 4)
					return cerr(ld, it, "acme_cas: at most 4");
				if ((rc = get_str(ld, it, key, s->acme_cas[s->n_acme_cas],
				                  sizeof(s->acme_cas[0]))))
					return rc;
				s->n_acme_cas++;
			}
		} else if (!strcmp(key, "acme_challenge")) {
			const char *ch = scalar(v);

			if (ch && !strcmp(ch, "http-01"))
				s->acme_tls_alpn = false;
			else if (ch && !strcmp(ch, "tls-alpn-01"))
				s->acme_tls_alpn = true;
			else
				return cerr(ld, v, "acme_challenge: expected http-01 or tls-alpn-01");
		} else if (!strcmp(key, "acme_key") || !strcmp(key, "key_type")) {
			/* one key type, or a list of an ECDSA and an RSA one (a dual
			 * pair: two certificates) */
			yaml_node_t *one = v;
			yaml_node_item_t *item = NULL;

			if (v->type == YAML_SEQUENCE_NODE) {
				item = v->data.sequence.items.start;
				if (v->data.sequence.items.top - item < 1 ||
				    v->data.sequence.items.top - item > GW_MAX_CERTS)
					return cerr(ld, v, "%s: one or two key types", key);
			}
			s->n_acme_keys = 0;
			for (;;) {
				const char *kt;
				int kt_id;

				if (item) {
					if (item == v->data.sequence.items.top)
						break;
					one = yaml_document_get_node(&ld->doc, *item++);
				}
				kt = scalar(one);
				if (kt && !strcmp(kt, "ec256"))
					kt_id = 0;
				else if (kt && !strcmp(kt, "ec384"))
					kt_id = 1;
				else if (kt && !strcmp(kt, "rsa2048"))
					kt_id = 2;
				else
					return cerr(ld, one, "%s: expected ec256, ec384 or rsa2048", key);
				if (s->n_acme_keys == 1 && (kt_id == 2) == (s->acme_keys[0] == 2))
					return cerr(ld, one, "%s: a pair is one ECDSA and one RSA key type",
					            key);
				s->acme_keys[s->n_acme_keys++] = kt_id;
				if (!item)
					break;
			}
		} else if (!strcmp(key, "pq")) {
			const char *m = scalar(v);

			if (m && !strcmp(m, "prefer"))
				s->pq = GW_PQ_PREFER;
			else if (m && !strcmp(m, "offer"))
				s->pq = GW_PQ_OFFER;
			else if (m && !strcmp(m, "off"))
				s->pq = GW_PQ_OFF;
			else
				return cerr(ld, v, "pq: expected prefer, offer or off");
			has_pq = true;
		} else if (!strcmp(key, "pq_canary_percent")) {
			if ((rc = get_uint(ld, v, key, 0, 100, &u)))
				return rc;
			s->pq_canary_percent = (unsigned)u;
			has_canary = true;
		} else if (!strcmp(key, "groups")) {
			if ((rc = get_str(ld, v, key, s->groups, sizeof(s->groups))))
				return rc;
			groups_node = v;
		} else if (!strcmp(key, "hsts")) {
			if ((rc = get_str(ld, v, key, s->hsts, sizeof(s->hsts))))
				return rc;
			if (strpbrk(s->hsts, "\r\n"))
				return cerr(ld, v, "hsts: no line breaks");
		} else if (!strcmp(key, "forwarded")) {
			if ((rc = get_bool(ld, v, key, &s->forwarded)))
				return rc;
		} else {
			return cerr(ld, k, "site: unknown field '%s' (names, upstreams, certificates, "
			            "cert_source, acme_cas, acme_key, acme_challenge, ca, ca_profile, "
			            "key_type, pq, pq_canary_percent, groups, "
			            "hsts, forwarded)", key);
		}
	}
	if (s->cert_source != GW_CERT_CA && (s->ca_name[0] || s->ca_profile[0]))
		return cerr(ld, map, "site: ca and ca_profile go with cert_source ca");
	if (s->cert_source != GW_CERT_ACME && (s->n_acme_cas || s->acme_tls_alpn))
		return cerr(ld, map, "site: acme_cas and acme_challenge go with cert_source acme");
	if (s->cert_source == GW_CERT_FILES && s->n_acme_keys)
		return cerr(ld, map, "site: key types go with cert_source acme or ca (the "
		            "certificates' files say theirs)");
	if (s->cert_source != GW_CERT_FILES) {
		const char *src = s->cert_source == GW_CERT_ACME ? "acme" : "ca";
		char base[256];
		struct stat st;

		if (s->n_certs)
			return cerr(ld, map, "site: cert_source %s and certificates exclude each "
			            "other", src);
		if (!ld->cfg->state_dir[0])
			return cerr(ld, map, "site: cert_source %s needs state_dir (where the "
			            "certificates obtained are kept)", src);
		if (!s->n_names)
			return cerr(ld, map, "site: names is required");
		for (size_t i = 0; i < s->n_names && s->cert_source == GW_CERT_ACME; i++)
			if (s->names[i][0] == '*')
				return cerr(ld, map, "site: '%s': a wildcard cannot be validated by "
				            "http-01 or tls-alpn-01", s->names[i]);
		if (!s->ca_line)
			s->ca_line = s->line;
		if (!s->n_acme_keys)
			s->acme_keys[s->n_acme_keys++] = 0;
		/* files are named after the first name ("*." as "_.") */
		snprintf(base, sizeof(base), "%s%s", s->names[0][0] == '*' ? "_" : "",
		         s->names[0] + (s->names[0][0] == '*'));
		/* NAME.crt/.key for the first key type, NAME.rsa.crt/.key or
		 * NAME.ecdsa.crt/.key for the second */
		for (size_t i = 0; i < s->n_acme_keys; i++) {
			struct gw_certfile *cf = &s->certs[i];
			const char *sfx = i == 0 ? "" : s->acme_keys[i] == 2 ? ".rsa" : ".ecdsa";

			if (snprintf(cf->cert, sizeof(cf->cert), "%s/%s%s.crt", ld->cfg->state_dir,
			             base, sfx) >= (int)sizeof(cf->cert) ||
			    snprintf(cf->key, sizeof(cf->key), "%s/%s%s.key", ld->cfg->state_dir,
			             base, sfx) >= (int)sizeof(cf->key))
				return cerr(ld, map, "site: state_dir too long");
			cf->is_missing = stat(cf->cert, &st) != 0;
			if (!cf->is_missing)
				cf->cert_mtime = st.st_mtim;
			if (!cf->is_missing && stat(cf->key, &st) == 0)
				cf->key_mtime = st.st_mtim;
			else
				cf->is_missing = true;
		}
		s->n_certs = s->n_acme_keys;
	}
	if (!s->n_names)
		return cerr(ld, map, "site: names is required");
	if (!s->n_ups)
		return cerr(ld, map, "site %s: upstreams is required", s->names[0]);
	if (!s->n_certs)
		return cerr(ld, map, "site %s: certificates (or cert_source: acme or ca) is "
		            "required", s->names[0]);
	if ((rc = split_groups(ld, groups_node, s)))
		return rc;
	if (has_canary && !has_pq)
		s->pq = GW_PQ_PREFER;
	return 0;
}

static int load_root(struct ld *ld, yaml_node_t *root)
{
	struct aclm_gw_config *c = ld->cfg;
	char groups[512] = GW_DEFAULT_GROUPS;
	yaml_node_t *k, *v, *it, *sites = NULL;
	unsigned long long u = 0;
	int rc;

	if ((rc = need_map(ld, root, "the document")))
		return rc;
	FOR_PAIRS(ld, root, k, v) {
		const char *key = scalar(k);

		if (!key)
			return cerr(ld, k, "keys must be strings");
		if (!strcmp(key, "listen")) {
			if ((rc = need_seq(ld, v, "listen")))
				return rc;
			FOR_ITEMS(ld, v, it) {
				if (c->n_listen == GW_MAX_LISTEN)
					return cerr(ld, it, "listen: at most %d addresses", GW_MAX_LISTEN);
				if ((rc = get_str(ld, it, key, c->listen[c->n_listen],
				                  sizeof(c->listen[0]))) ||
				    (rc = check_addr(ld, it, key, c->listen[c->n_listen])))
					return rc;
				c->n_listen++;
			}
		} else if (!strcmp(key, "http_listen")) {
			if ((rc = need_seq(ld, v, "http_listen")))
				return rc;
			FOR_ITEMS(ld, v, it) {
				if (c->n_http_listen == GW_MAX_LISTEN)
					return cerr(ld, it, "http_listen: at most %d addresses",
					            GW_MAX_LISTEN);
				if ((rc = get_str(ld, it, key, c->http_listen[c->n_http_listen],
				                  sizeof(c->http_listen[0]))) ||
				    (rc = check_addr(ld, it, key, c->http_listen[c->n_http_listen])))
					return rc;
				c->n_http_listen++;
			}
		} else if (!strcmp(key, "state_dir")) {
			if ((rc = get_str(ld, v, key, c->state_dir, sizeof(c->state_dir) - 64)))
				return rc;
		} else if (!strcmp(key, "admin")) {
			if ((rc = get_str(ld, v, key, c->admin, sizeof(c->admin))) ||
			    (rc = check_addr(ld, v, key, c->admin)))
				return rc;
		} else if (!strcmp(key, "workers")) {
			if ((rc = get_uint(ld, v, key, 0, 256, &u)))
				return rc;
			c->workers = (unsigned)u;
		} else if (!strcmp(key, "access_log")) {
			if ((rc = get_str(ld, v, key, c->access_log, sizeof(c->access_log))))
				return rc;
		} else if (!strcmp(key, "pid_file")) {
			if ((rc = get_str(ld, v, key, c->pid_file, sizeof(c->pid_file))))
				return rc;
		} else if (!strcmp(key, "timeouts")) {
			if ((rc = load_timeouts(ld, v)))
				return rc;
		} else if (!strcmp(key, "health_check")) {
			if ((rc = load_health(ld, v)))
				return rc;
		} else if (!strcmp(key, "limits")) {
			if ((rc = load_limits(ld, v)))
				return rc;
		} else if (!strcmp(key, "tls")) {
			if ((rc = load_tls(ld, v, groups, sizeof(groups))))
				return rc;
		} else if (!strcmp(key, "sites")) {
			sites = v;
		} else {
			return cerr(ld, k, "unknown field '%s' (listen, http_listen, admin, workers, "
			            "access_log, pid_file, state_dir, timeouts, limits, health_check, "
			            "tls, sites)", key);
		}
	}
	if (!c->n_listen)
		return cerr(ld, root, "listen: at least one address is required");
	if (!sites)
		return cerr(ld, root, "sites: at least one site is required");
	if (c->state_dir[0])
		snprintf(c->webroot, sizeof(c->webroot), "%s/webroot", c->state_dir);
	if ((rc = need_seq(ld, sites, "sites")))
		return rc;
	c->n_sites = (size_t)(sites->data.sequence.items.top - sites->data.sequence.items.start);
	if (!c->n_sites)
		return cerr(ld, sites, "sites: at least one site is required");
	c->sites = calloc(c->n_sites, sizeof(*c->sites));
	if (!c->sites)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	{
		size_t i = 0;

		FOR_ITEMS(ld, sites, it) {
			if ((rc = need_map(ld, it, "site")) ||
			    (rc = load_site(ld, it, &c->sites[i++], groups)))
				return rc;
		}
	}
	/* A name belongs to one site. */
	for (size_t i = 0; i < c->n_sites; i++)
		for (size_t j = 0; j < c->sites[i].n_names; j++)
			for (size_t a = 0; a <= i; a++)
				for (size_t b = 0; b < (a == i ? j : c->sites[a].n_names); b++)
					if (!strcmp(c->sites[i].names[j], c->sites[a].names[b]))
						return aclm_error(ACLM_ERR_CONFIG, "%s:%zu: name '%s' is "
						                  "already used by the site at line %zu",
						                  ld->path, c->sites[i].line,
						                  c->sites[i].names[j], c->sites[a].line);
	return 0;
}

static void config_free(struct aclm_gw_config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_sites; i++) {
		for (size_t j = 0; j < c->sites[i].n_names; j++)
			free(c->sites[i].names[j]);
		free(c->sites[i].ups);
		for (size_t j = 0; j < c->sites[i].n_certs; j++)
			gw_ocsp_certfile_free(&c->sites[i].certs[j]);
		SSL_CTX_free(c->sites[i].ctx);
	}
	free(c->sites);
	free(c);
}

void aclm_gw_config_unref(struct aclm_gw_config *cfg)
{
	if (cfg && atomic_fetch_sub(&cfg->refs, 1) == 1)
		config_free(cfg);
}

void gw_config_ref(struct aclm_gw_config *cfg)
{
	atomic_fetch_add(&cfg->refs, 1);
}

size_t aclm_gw_config_n_sites(const struct aclm_gw_config *cfg)
{
	return cfg->n_sites;
}

bool aclm_gw_config_needs_acme(const struct aclm_gw_config *cfg)
{
	for (size_t i = 0; i < cfg->n_sites; i++)
		if (cfg->sites[i].cert_source == GW_CERT_ACME)
			return true;
	return false;
}

bool aclm_gw_config_needs_ca(const struct aclm_gw_config *cfg)
{
	for (size_t i = 0; i < cfg->n_sites; i++)
		if (cfg->sites[i].cert_source == GW_CERT_CA)
			return true;
	return false;
}

int aclm_gw_config_check_cas(const struct aclm_gw_config *cfg, struct aclm_store *st,
                             const char *default_ca, const struct aclm_ca_policy *policy)
{
	for (size_t i = 0; i < cfg->n_sites; i++) {
		const struct gw_site *s = &cfg->sites[i];
		const char *ca = s->ca_name[0] ? s->ca_name : default_ca;
		bool exists = false;
		int rc;

		if (s->cert_source != GW_CERT_CA)
			continue;
		for (size_t j = 0; policy && j < s->n_names; j++)
			if ((rc = aclm_ca_policy_check(policy, aclm_is_ip_literal(s->names[j]) ?
			                               "ip" : "dns", s->names[j])))
				return aclm_error_wrap(ACLM_ERR_CONFIG, "%s:%zu: ca.dns_suffixes / "
				                       "ca.ip_ranges of aclm.yaml", cfg->path, s->line);
		if ((rc = aclm_ca_exists(st, ca, &exists)))
			return aclm_error_wrap(rc, "%s:%zu: ca '%s'", cfg->path, s->ca_line, ca);
		if (!exists)
			return aclm_error(ACLM_ERR_CONFIG, "%s:%zu: ca '%s': no such built-in CA in "
			                  "this store (create it with `aclm ca init%s%s`)",
			                  cfg->path, s->ca_line, ca, strcmp(ca, default_ca) ?
			                  " --name " : "", strcmp(ca, default_ca) ? ca : "");
	}
	return 0;
}

const char *aclm_gw_config_pid_file(const struct aclm_gw_config *cfg)
{
	return cfg->pid_file;
}

int aclm_gw_config_load(const char *path, struct aclm_gw_config **out)
{
	struct ld ld = { .path = path };
	yaml_parser_t parser;
	FILE *f = NULL;
	bool has_parser = false, has_doc = false;
	int rc = 0;

	*out = NULL;
	if (strlen(path) >= sizeof(ld.cfg->path))
		return aclm_error(ACLM_ERR_USAGE, "%s: path too long", path);
	f = fopen(path, "r");
	if (!f)
		return aclm_error(ACLM_ERR_IO, "%s: %s", path, strerror(errno));
	ld.cfg = calloc(1, sizeof(*ld.cfg));
	if (!ld.cfg || !yaml_parser_initialize(&parser)) {
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
		goto out;
	}
	has_parser = true;
	atomic_init(&ld.cfg->refs, 1);
	memcpy(ld.cfg->path, path, strlen(path) + 1);
	ld.cfg->to = (struct gw_timeouts){ .handshake = 10, .header = 10, .body = 30,
	                                   .idle = 60, .write = 30, .upstream_connect = 5,
	                                   .upstream_response = 60, .fail_timeout = 10 };
	ld.cfg->limits = (struct aclm_http_limits){
		.max_request_line = ACLM_HTTP_DEFAULT_MAX_REQUEST_LINE,
		.max_headers = ACLM_HTTP_DEFAULT_MAX_HEADERS,
		.max_header_bytes = ACLM_HTTP_DEFAULT_MAX_HEADER_BYTES,
		.max_body = ACLM_HTTP_DEFAULT_MAX_BODY,
	};
	snprintf(ld.cfg->min_version, sizeof(ld.cfg->min_version), "1.2");
	ld.cfg->ticket_rotation = 12 * 3600;
	ld.cfg->session_tickets = true;
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &ld.doc)) {
		rc = aclm_error(ACLM_ERR_CONFIG, "%s:%lu:%lu: %s", path,
		                (unsigned long)parser.problem_mark.line + 1,
		                (unsigned long)parser.problem_mark.column + 1,
		                parser.problem ? parser.problem : "YAML syntax error");
		goto out;
	}
	has_doc = true;
	if (!yaml_document_get_root_node(&ld.doc)) {
		rc = aclm_error(ACLM_ERR_CONFIG, "%s:1: the file is empty", path);
		goto out;
	}
	if ((rc = load_root(&ld, yaml_document_get_root_node(&ld.doc))))
		goto out;
	*out = ld.cfg;
	ld.cfg = NULL;
out:
	if (has_doc)
		yaml_document_delete(&ld.doc);
	if (has_parser)
		yaml_parser_delete(&parser);
	config_free(ld.cfg);
	fclose(f);
	return rc;
}

struct gw_site *gw_config_site(struct aclm_gw_config *cfg, const char *name)
{
	struct gw_site *best = NULL;
	size_t best_len = 0;
	char lower[256];
	size_t len;

	if (!name || !*name)
		return NULL;
	len = strlen(name);
	if (len >= sizeof(lower))
		return NULL;
	for (size_t i = 0; i <= len; i++)
		lower[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] - 'A' + 'a' : name[i]);
	if (len && lower[len - 1] == '.')
		lower[--len] = '\0';
	for (size_t i = 0; i < cfg->n_sites; i++)
		for (size_t j = 0; j < cfg->sites[i].n_names; j++)
			if (!strcmp(cfg->sites[i].names[j], lower))
				return &cfg->sites[i];
	/* "*.example.com" matches exactly one more label. */
	for (size_t i = 0; i < cfg->n_sites; i++)
		for (size_t j = 0; j < cfg->sites[i].n_names; j++) {
			const char *pat = cfg->sites[i].names[j];
			const char *dot = strchr(lower, '.');

			if (strncmp(pat, "*.", 2) || !dot || dot == lower)
				continue;
			if (!strcmp(dot + 1, pat + 2) && strlen(pat) > best_len) {
				best = &cfg->sites[i];
				best_len = strlen(pat);
			}
		}
	return best;
}
