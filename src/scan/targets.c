/* Scan targets: parsing (every token checked before anything is scanned),
 * excludes, ports, and a lazy cursor that yields endpoints one by one so a
 * /16 never sits in memory.
 *
 * Grammar of a token (docs/cli.md):
 *   NAME | IPv4 | IPv6 | [IPv6] | IPv4/N | IPv6/N | a.b.c.d-e | a.b.c.d-a.b.c.e
 *   any of them but bare IPv6 followed by :PORT ([IPv6]:PORT, [IPv6/N]:PORT)
 *   @FILE  one token per line, blank lines and '#' comments ignored */
#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "aclm/buf.h"
#include "aclm/err.h"
#include "aclm/scan.h"
#include "aclm/str.h"
#include "scan-int.h"

#define TARGETS_FILE_MAX ((size_t)16 << 20)
#define MAX_PORTS 1024

enum target_kind {
	T_NAME = 0,
	T_V4,      /* range first..last (a single address, CIDR or a-b range) */
	T_V6,      /* base + count addresses */
};

struct target {
	enum target_kind kind;
	char *name;
	uint32_t v4_first, v4_last;
	unsigned char v6_base[16];
	int v6_prefix;
	unsigned port;            /* 0: the --ports list */
};

struct aclm_scan_targets {
	struct target *items;
	size_t n, cap;
	struct target *excl;
	size_t n_excl, cap_excl;
	unsigned ports[MAX_PORTS];
	size_t n_ports;
};

/* --- small parsers --------------------------------------------------------- */

bool scan_ip_is_v6(const char *ip)
{
	return strchr(ip, ':') != NULL;
}

static int parse_port(const char *s, unsigned *port)
{
	int64_t v;

	if (*s == '\0' || aclm_parse_int64(s, &v) != ACLM_OK || v < 1 || v > 65535) {
		aclm_error_clear();
		return ACLM_ERR_PARSE;
	}
	*port = (unsigned)v;
	return ACLM_OK;
}

static bool looks_numeric_v4(const char *s)
{
	bool digit = false;

	for (; *s != '\0'; s++) {
		if (isdigit((unsigned char)*s))
			digit = true;
		else if (*s != '.')
			return false;
	}
	return digit;
}

/* A DNS name as people type it: letters, digits, '-', '_', dots; labels of
 * 1..63, at most 253 in all; a trailing dot is allowed; '*' never. */
static const char *name_problem(const char *s)
{
	size_t len = strlen(s), label = 0;

	if (len == 0)
		return "empty name";
	if (len > 253 + (s[len - 1] == '.'))
		return "name longer than 253 characters";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (label == 0)
				return "empty label in name";
			label = 0;
			continue;
		}
		if (!isalnum(c) && c != '-' && c != '_')
			return "character not allowed in a host name";
		if (++label > 63)
			return "label longer than 63 characters";
	}
	return NULL;
}

static uint32_t v4_of(const struct in_addr *a)
{
	return ntohl(a->s_addr);
}

/* Host part (no port) into t; *why gets the reason on failure. */
static int parse_host(const char *s, struct target *t, const char **why)
{
	struct in_addr a4;
	struct in6_addr a6;
	char buf[300];
	const char *slash = strchr(s, '/'), *dash;

	if (strlen(s) >= sizeof(buf)) {
		*why = "target too long";
		return ACLM_ERR_PARSE;
	}
	if (slash != NULL) {
		int64_t prefix;
		size_t alen = (size_t)(slash - s);

		memcpy(buf, s, alen);
		buf[alen] = '\0';
		if (slash[1] == '\0' || aclm_parse_int64(slash + 1, &prefix) != ACLM_OK) {
			aclm_error_clear();
			*why = "prefix length is not a number";
			return ACLM_ERR_PARSE;
		}
		if (inet_pton(AF_INET, buf, &a4) == 1) {
			uint32_t base, mask;
			if (prefix < 0 || prefix > 32) {
				*why = "IPv4 prefix length out of range 0-32";
				return ACLM_ERR_PARSE;
			}
			mask = prefix == 0 ? 0 : 0xffffffffu << (32 - prefix);
			base = v4_of(&a4) & mask;
			t->kind = T_V4;
			t->v4_first = base;
			t->v4_last = base | ~mask;
			return ACLM_OK;
		}
		if (inet_pton(AF_INET6, buf, &a6) == 1) {
			if (prefix < 0 || prefix > 128) {
				*why = "IPv6 prefix length out of range 0-128";
				return ACLM_ERR_PARSE;
			}
			t->kind = T_V6;
			t->v6_prefix = (int)prefix;
			memcpy(t->v6_base, a6.s6_addr, 16);
			for (int bit = (int)prefix; bit < 128; bit++)
				t->v6_base[bit / 8] &= (unsigned char)~(0x80u >> (bit % 8));
			return ACLM_OK;
		}
		*why = "not an IP address before '/'";
		return ACLM_ERR_PARSE;
	}
	if (inet_pton(AF_INET, s, &a4) == 1) {
		t->kind = T_V4;
		t->v4_first = t->v4_last = v4_of(&a4);
		return ACLM_OK;
	}
	if (inet_pton(AF_INET6, s, &a6) == 1) {
		t->kind = T_V6;
		t->v6_prefix = 128;
		memcpy(t->v6_base, a6.s6_addr, 16);
		return ACLM_OK;
	}
	dash = strchr(s, '-');
	if (dash != NULL && looks_numeric_v4(dash + 1) && dash > s) {
		size_t alen = (size_t)(dash - s);
		struct in_addr b4;

		memcpy(buf, s, alen);
		buf[alen] = '\0';
		if (inet_pton(AF_INET, buf, &a4) == 1) {
			uint32_t first = v4_of(&a4), last;
			if (strchr(dash + 1, '.') == NULL) {
				int64_t e;
				if (aclm_parse_int64(dash + 1, &e) != ACLM_OK || e < 0 || e > 255) {
					aclm_error_clear();
					*why = "range end is not a number 0-255";
					return ACLM_ERR_PARSE;
				}
				last = (first & 0xffffff00u) | (uint32_t)e;
			} else if (inet_pton(AF_INET, dash + 1, &b4) == 1) {
				last = v4_of(&b4);
			} else {
				*why = "range end is not an IPv4 address";
				return ACLM_ERR_PARSE;
			}
			if (last < first) {
				*why = "range ends before it starts";
				return ACLM_ERR_PARSE;
			}
			t->kind = T_V4;
			t->v4_first = first;
			t->v4_last = last;
			return ACLM_OK;
		}
	}
	if (dash != NULL && (size_t)(dash - s) < sizeof(buf)) {
		memcpy(buf, s, (size_t)(dash - s));
		buf[dash - s] = '\0';
		if (looks_numeric_v4(buf)) {
			*why = "not a valid IPv4 range (a.b.c.d-e or a.b.c.d-a.b.c.e)";
			return ACLM_ERR_PARSE;
		}
	}
	if (looks_numeric_v4(s)) {
		*why = "not a valid IPv4 address";
		return ACLM_ERR_PARSE;
	}
	if (strchr(s, ':') != NULL) {
		*why = "not a valid IPv6 address";
		return ACLM_ERR_PARSE;
	}
	if ((*why = name_problem(s)) != NULL)
		return ACLM_ERR_PARSE;
	t->kind = T_NAME;
	t->name = aclm_strdup(s);
	if (t->name == NULL) {
		*why = "out of memory";
		return ACLM_ERR_NOMEM;
	}
	aclm_str_lower(t->name);
	if (t->name[strlen(t->name) - 1] == '.')
		t->name[strlen(t->name) - 1] = '\0';
	return ACLM_OK;
}

/* One token (no '@') into t. */
static int parse_token(const char *tok, struct target *t, const char **why)
{
	char host[300];
	const char *colon;
	size_t n_colons = 0;

	memset(t, 0, sizeof(*t));
	for (const char *p = tok; *p != '\0'; p++)
		n_colons += *p == ':';
	if (*tok == '\0') {
		*why = "empty target";
		return ACLM_ERR_PARSE;
	}
	if (strlen(tok) >= sizeof(host)) {
		*why = "target too long";
		return ACLM_ERR_PARSE;
	}
	if (*tok == '[') {
		const char *end = strchr(tok, ']');
		size_t hlen;
		int rc;

		if (end == NULL) {
			*why = "'[' without ']'";
			return ACLM_ERR_PARSE;
		}
		hlen = (size_t)(end - tok - 1);
		memcpy(host, tok + 1, hlen);
		host[hlen] = '\0';
		if (strchr(host, ':') == NULL) {
			*why = "only IPv6 addresses go in brackets";
			return ACLM_ERR_PARSE;
		}
		if ((rc = parse_host(host, t, why)) != ACLM_OK)
			return rc;
		if (end[1] == '\0')
			return ACLM_OK;
		if (end[1] != ':' || parse_port(end + 2, &t->port) != ACLM_OK) {
			*why = end[1] == ':' ? "port is not a number 1-65535" : "junk after ']'";
			return ACLM_ERR_PARSE;
		}
		return ACLM_OK;
	}
	if (n_colons == 1) {
		colon = strchr(tok, ':');
		memcpy(host, tok, (size_t)(colon - tok));
		host[colon - tok] = '\0';
		if (parse_port(colon + 1, &t->port) != ACLM_OK) {
			*why = "port is not a number 1-65535";
			return ACLM_ERR_PARSE;
		}
		if (host[0] == '\0') {
			*why = "no host before ':'";
			return ACLM_ERR_PARSE;
		}
		return parse_host(host, t, why);
	}
	return parse_host(tok, t, why);
}

static void target_clear(struct target *t)
{
	free(t->name);
	t->name = NULL;
}

static int push(struct target **items, size_t *n, size_t *cap, const struct target *t)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		struct target *p = realloc(*items, nc * sizeof(*p));
		if (p == NULL)
			return aclm_error(ACLM_ERR_NOMEM, "out of memory for scan targets");
		*items = p;
		*cap = nc;
	}
	(*items)[(*n)++] = *t;
	return ACLM_OK;
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* Parse a list into items (targets or excludes). */
static int parse_list(const char *const *tokens, size_t n_tokens, struct target **items,
                      size_t *n, size_t *cap, const char *what)
{
	struct aclm_buf file;
	int rc = ACLM_OK;

	aclm_buf_init(&file, TARGETS_FILE_MAX);
	for (size_t i = 0; i < n_tokens && rc == ACLM_OK; i++) {
		const char *tok = tokens[i];
		struct target t;
		const char *why = NULL;

		if (tok[0] == '@') {
			char *line, *save = NULL;
			size_t lineno = 0;

			aclm_buf_reset(&file);
			if (tok[1] == '\0') {
				rc = aclm_error(ACLM_ERR_USAGE, "%s %zu '@': no file name after '@'", what,
				                i + 1);
				break;
			}
			if ((rc = aclm_buf_read_file(&file, tok + 1)) != ACLM_OK) {
				aclm_error_wrap(ACLM_ERR_USAGE, "%s %zu", what, i + 1);
				rc = ACLM_ERR_USAGE;
				break;
			}
			if (memchr(file.data, '\0', file.len) != NULL) {
				rc = aclm_error(ACLM_ERR_USAGE, "%s: not a text file (NUL byte)", tok + 1);
				break;
			}
			/* strtok_r on '\n' would merge empty lines: count them by hand. */
			for (line = (char *)file.data; line != NULL && rc == ACLM_OK; line = save) {
				char *nl = strchr(line, '\n'), *hash, *s;
				save = nl ? nl + 1 : NULL;
				if (nl)
					*nl = '\0';
				lineno++;
				if ((hash = strchr(line, '#')) != NULL)
					*hash = '\0';
				s = trim(line);
				if (*s == '\0')
					continue;
				if (*s == '@') {
					rc = aclm_error(ACLM_ERR_USAGE, "%s:%zu: '%s': a targets file cannot "
					                "name another file", tok + 1, lineno, s);
					break;
				}
				rc = parse_token(s, &t, &why);
				if (rc == ACLM_OK)
					rc = push(items, n, cap, &t);
				else
					rc = aclm_error(ACLM_ERR_USAGE, "%s:%zu: '%s': %s", tok + 1, lineno, s,
					                why);
			}
			continue;
		}
		rc = parse_token(tok, &t, &why);
		if (rc == ACLM_OK)
			rc = push(items, n, cap, &t);
		else
			rc = aclm_error(ACLM_ERR_USAGE, "%s %zu '%s': %s", what, i + 1, tok, why);
	}
	aclm_buf_free(&file);
	return rc;
}

int aclm_scan_targets_parse(const char *const *tokens, size_t n_tokens,
                            struct aclm_scan_targets **out)
{
	struct aclm_scan_targets *t;
	int rc;

	*out = NULL;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory for scan targets");
	t->ports[0] = 443;
	t->n_ports = 1;
	rc = parse_list(tokens, n_tokens, &t->items, &t->n, &t->cap, "target");
	if (rc != ACLM_OK) {
		aclm_scan_targets_free(t);
		return rc;
	}
	*out = t;
	return ACLM_OK;
}

int aclm_scan_targets_exclude(struct aclm_scan_targets *t, const char *const *tokens,
                              size_t n_tokens)
{
	return parse_list(tokens, n_tokens, &t->excl, &t->n_excl, &t->cap_excl, "exclude");
}

int aclm_scan_targets_set_ports(struct aclm_scan_targets *t, const char *list)
{
	const char *p = list;
	size_t n = 0, pos = 0;
	unsigned ports[MAX_PORTS];

	while (*p != '\0') {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		char item[16];
		unsigned lo, hi;
		const char *dash;

		pos++;
		if (len == 0 || len >= sizeof(item))
			return aclm_error(ACLM_ERR_USAGE, "--ports item %zu '%.*s': not a port", pos,
			                  (int)len, p);
		memcpy(item, p, len);
		item[len] = '\0';
		dash = strchr(item, '-');
		if (dash != NULL) {
			char a[16];
			memcpy(a, item, (size_t)(dash - item));
			a[dash - item] = '\0';
			if (parse_port(a, &lo) != ACLM_OK || parse_port(dash + 1, &hi) != ACLM_OK ||
			    hi < lo)
				return aclm_error(ACLM_ERR_USAGE, "--ports item %zu '%s': not a port "
				                  "range LOW-HIGH within 1-65535", pos, item);
		} else if (parse_port(item, &lo) != ACLM_OK) {
			return aclm_error(ACLM_ERR_USAGE, "--ports item %zu '%s': not a port "
			                  "1-65535", pos, item);
		} else {
			hi = lo;
		}
		for (unsigned v = lo; v <= hi; v++) {
			if (n == MAX_PORTS)
				return aclm_error(ACLM_ERR_USAGE, "--ports: more than %d ports", MAX_PORTS);
			ports[n++] = v;
		}
		p = comma ? comma + 1 : p + len;
		if (comma != NULL && *p == '\0')
			return aclm_error(ACLM_ERR_USAGE, "--ports: empty item after ','");
	}
	if (n == 0)
		return aclm_error(ACLM_ERR_USAGE, "--ports: no port given");
	memcpy(t->ports, ports, n * sizeof(ports[0]));
	t->n_ports = n;
	return ACLM_OK;
}

static uint64_t target_addresses(const struct target *t)
{
	switch (t->kind) {
	case T_NAME: return 1;
	case T_V4: return (uint64_t)t->v4_last - t->v4_first + 1;
	case T_V6: return 128 - t->v6_prefix >= 64 ? UINT64_MAX : (uint64_t)1 << (128 - t->v6_prefix);
	}
	return 0;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

uint64_t aclm_scan_targets_n_addresses(const struct aclm_scan_targets *t)
{
	uint64_t n = 0;

	for (size_t i = 0; i < t->n; i++)
		n = sat_add(n, target_addresses(&t->items[i]));
	return n;
}

uint64_t aclm_scan_targets_n_endpoints(const struct aclm_scan_targets *t)
{
	uint64_t n = 0;

	for (size_t i = 0; i < t->n; i++) {
		uint64_t a = target_addresses(&t->items[i]);
		uint64_t ports = t->items[i].port ? 1 : t->n_ports;
		n = sat_add(n, a > UINT64_MAX / ports ? UINT64_MAX : a * ports);
	}
	return n;
}

size_t aclm_scan_targets_n_names(const struct aclm_scan_targets *t)
{
	size_t n = 0;

	for (size_t i = 0; i < t->n; i++)
		n += t->items[i].kind == T_NAME;
	return n;
}

void aclm_scan_targets_free(struct aclm_scan_targets *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->n; i++)
		target_clear(&t->items[i]);
	for (size_t i = 0; i < t->n_excl; i++)
		target_clear(&t->excl[i]);
	free(t->items);
	free(t->excl);
	free(t);
}

static bool v6_in(const struct target *x, const unsigned char a[16])
{
	for (int bit = 0; bit < x->v6_prefix; bit++) {
		unsigned char m = (unsigned char)(0x80u >> (bit % 8));
		if ((a[bit / 8] & m) != (x->v6_base[bit / 8] & m))
			return false;
	}
	return true;
}

bool aclm_scan_targets_is_excluded(const struct aclm_scan_targets *t, const char *ip,
                                   const char *name)
{
	struct in_addr a4;
	struct in6_addr a6;
	bool is4 = ip != NULL && *ip && inet_pton(AF_INET, ip, &a4) == 1;
	bool is6 = !is4 && ip != NULL && *ip && inet_pton(AF_INET6, ip, &a6) == 1;

	for (size_t i = 0; i < t->n_excl; i++) {
		const struct target *x = &t->excl[i];
		switch (x->kind) {
		case T_NAME:
			if (name != NULL && *name && strcasecmp(name, x->name) == 0)
				return true;
			break;
		case T_V4:
			if (is4 && v4_of(&a4) >= x->v4_first && v4_of(&a4) <= x->v4_last)
				return true;
			break;
		case T_V6:
			if (is6 && v6_in(x, a6.s6_addr))
				return true;
			break;
		}
	}
	return false;
}

/* --- the cursor ------------------------------------------------------------- */

struct aclm_scan_cursor {
	struct aclm_scan_targets *t;
	size_t ti;              /* current target */
	uint64_t ai;            /* address offset within it */
	size_t pi;              /* port index */
	/* resolved addresses of the current name */
	char (*addrs)[64];
	size_t n_addrs;
	bool resolved;
};

int aclm_scan_cursor_new(struct aclm_scan_targets *t, struct aclm_scan_cursor **out)
{
	*out = calloc(1, sizeof(**out));
	if (*out == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	(*out)->t = t;
	return ACLM_OK;
}

void aclm_scan_cursor_free(struct aclm_scan_cursor *c)
{
	if (c == NULL)
		return;
	free(c->addrs);
	free(c);
}

static void resolve(struct aclm_scan_cursor *c, const char *name)
{
	struct addrinfo hints = { 0 }, *res = NULL, *ai;
	size_t n = 0;

	free(c->addrs);
	c->addrs = NULL;
	c->n_addrs = 0;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(name, NULL, &hints, &res) != 0)
		return;
	for (ai = res; ai != NULL; ai = ai->ai_next)
		n++;
	c->addrs = calloc(n ? n : 1, sizeof(*c->addrs));
	if (c->addrs == NULL) {
		freeaddrinfo(res);
		return;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		char buf[64];
		const void *a = ai->ai_family == AF_INET
			? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
			: (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
		bool dup = false;

		if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
		    inet_ntop(ai->ai_family, a, buf, sizeof(buf)) == NULL)
			continue;
		for (size_t i = 0; i < c->n_addrs; i++)
			dup = dup || strcmp(c->addrs[i], buf) == 0;
		if (!dup)
			aclm_strlcpy(c->addrs[c->n_addrs++], buf, sizeof(c->addrs[0]));
	}
	freeaddrinfo(res);
}

static void address_at(const struct target *t, uint64_t off, char *out, size_t n)
{
	if (t->kind == T_V4) {
		struct in_addr a = { .s_addr = htonl(t->v4_first + (uint32_t)off) };
		inet_ntop(AF_INET, &a, out, (socklen_t)n);
	} else {
		unsigned char a[16];
		uint64_t carry = off;
		memcpy(a, t->v6_base, 16);
		for (int i = 15; i >= 0 && carry != 0; i--) {
			uint64_t v = a[i] + (carry & 0xff);
			a[i] = (unsigned char)v;
			carry = (carry >> 8) + (v >> 8);
		}
		inet_ntop(AF_INET6, a, out, (socklen_t)n);
	}
}

/* The address at offset c->ai - 1 (ports done or not) is excluded: jump
 * past the whole excluded block, so excluding a /8 from a /0 costs one
 * step, not 16 million. */
static void skip_excluded(const struct aclm_scan_targets *t, const struct target *x,
                          struct aclm_scan_cursor *c)
{
	uint64_t off = c->pi == 0 ? c->ai - 1 : c->ai, next = off + 1;

	for (size_t i = 0; i < t->n_excl; i++) {
		const struct target *e = &t->excl[i];
		if (x->kind == T_V4 && e->kind == T_V4) {
			uint32_t a = x->v4_first + (uint32_t)off;
			if (a >= e->v4_first && a <= e->v4_last) {
				uint64_t end = (uint64_t)e->v4_last - x->v4_first + 1;
				if (end > next)
					next = end;
			}
		} else if (x->kind == T_V6 && e->kind == T_V6) {
			/* 128-bit arithmetic: base + off, the end of e's block. */
			unsigned __int128 base = 0, a, mask, end;
			for (int k = 0; k < 16; k++)
				base = base << 8 | x->v6_base[k];
			a = base + off;
			mask = e->v6_prefix == 0 ? ~(unsigned __int128)0
			                         : ((unsigned __int128)1 << (128 - e->v6_prefix)) - 1;
			{
				unsigned char b[16];
				unsigned __int128 v = a;
				for (int k = 15; k >= 0; k--, v >>= 8)
					b[k] = (unsigned char)v;
				if (!v6_in(e, b))
					continue;
			}
			end = (a | mask) - base;   /* last excluded offset */
			if (end >= UINT64_MAX || e->v6_prefix <= x->v6_prefix)
				next = UINT64_MAX;
			else if ((uint64_t)end + 1 > next)
				next = (uint64_t)end + 1;
		}
	}
	c->ai = next;
	c->pi = 0;
}

int aclm_scan_cursor_next(struct aclm_scan_cursor *c, struct aclm_scan_endpoint *ep)
{
	struct aclm_scan_targets *t = c->t;

	while (c->ti < t->n) {
		const struct target *x = &t->items[c->ti];
		uint64_t n_addr = x->kind == T_NAME ? 0 : target_addresses(x);
		size_t n_ports = x->port ? 1 : t->n_ports;

		if (x->kind == T_NAME && !c->resolved) {
			resolve(c, x->name);
			c->resolved = true;
			c->ai = 0;
			c->pi = 0;
		}
		if (x->kind == T_NAME)
			n_addr = c->n_addrs ? c->n_addrs : 1;  /* 1: the unresolved entry */
		if (c->ai >= n_addr) {
			c->ti++;
			c->ai = 0;
			c->pi = 0;
			c->resolved = false;
			continue;
		}
		memset(ep, 0, sizeof(*ep));
		ep->port = x->port ? x->port : t->ports[c->pi];
		ep->proto = aclm_scan_proto_for_port(ep->port);
		if (x->kind == T_NAME) {
			aclm_strlcpy(ep->host, x->name, sizeof(ep->host));
			aclm_strlcpy(ep->sni, x->name, sizeof(ep->sni));
			if (c->n_addrs > 0)
				aclm_strlcpy(ep->ip, c->addrs[c->ai], sizeof(ep->ip));
		} else {
			address_at(x, c->ai, ep->ip, sizeof(ep->ip));
		}
		if (++c->pi >= n_ports) {
			c->pi = 0;
			c->ai++;
		}
		if (aclm_scan_targets_is_excluded(t, ep->ip, ep->host)) {
			if (x->kind != T_NAME)
				skip_excluded(t, x, c);
			continue;
		}
		return 1;
	}
	return 0;
}

/* --- protocol names ------------------------------------------------------- */

const char *aclm_scan_proto_name(enum aclm_scan_proto p)
{
	switch (p) {
	case ACLM_SCAN_TLS: return "tls";
	case ACLM_SCAN_SMTP: return "smtp";
	case ACLM_SCAN_IMAP: return "imap";
	case ACLM_SCAN_POP3: return "pop3";
	}
	return "tls";
}

int aclm_scan_proto_parse(const char *s, enum aclm_scan_proto *out)
{
	static const enum aclm_scan_proto all[] = {
		ACLM_SCAN_TLS, ACLM_SCAN_SMTP, ACLM_SCAN_IMAP, ACLM_SCAN_POP3,
	};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		if (strcasecmp(s, aclm_scan_proto_name(all[i])) == 0) {
			*out = all[i];
			return ACLM_OK;
		}
	}
	return ACLM_ERR_PARSE;
}

enum aclm_scan_proto aclm_scan_proto_for_port(unsigned port)
{
	switch (port) {
	case 25: case 587: return ACLM_SCAN_SMTP;
	case 143: return ACLM_SCAN_IMAP;
	case 110: return ACLM_SCAN_POP3;
	default: return ACLM_SCAN_TLS;
	}
}
