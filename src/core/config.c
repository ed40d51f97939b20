/* Configuration: a flat table of known keys, filled from aclm.yaml and
 * overridden by ACLM_* environment variables.
 *
 * The YAML file is read with libyaml's event API into "section.key" entries
 * that remember their line and column, so every report can say where.  The
 * file is untrusted input: it is size-limited, aliases are refused (no
 * "billion laughs"), nesting is bounded. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yaml.h>

#include "aclm/buf.h"
#include "aclm/config.h"
#include "aclm/err.h"
#include "aclm/log.h"
#include "aclm/str.h"

#define CONFIG_MAX_BYTES (1u << 20)
#define CONFIG_MAX_DEPTH 8
#define CONFIG_MAX_ENTRIES 4096

enum key_type { T_STRING, T_INT, T_BOOL, T_DURATION, T_SIZE, T_LIST, T_ENUM, T_TABLE };
static const char *const type_names[] = { "string", "int", "bool", "duration", "size", "list", "enum",
                                          "table" };

struct key_def {
	const char *key;
	enum key_type type;
	const char *def;
	const char *choices;   /* T_ENUM: "a|b|c"; T_TABLE: the field names "a|b|c" */
	const char *help;
};

/* The one table of known keys.  New modules add their keys here. */
static const struct key_def key_defs[] = {
	{ "store.url", T_STRING, "sqlite:aclm.db", NULL,
	  "inventory database: sqlite:PATH or postgres://user@host:port/db" },
	{ "store.busy_timeout", T_DURATION, "5s", NULL,
	  "how long SQLite waits for a lock held by another process" },
	{ "security.kek_file", T_STRING, "aclm.kek", NULL,
	  "key-encryption key for private keys at rest (created 0600 on first use; $ACLM_KEK overrides)" },
	{ "import.max_file_size", T_SIZE, "64M", NULL,
	  "larger files are refused by `aclm import`" },
	{ "import.exclude", T_LIST, "", NULL,
	  "glob patterns of paths `aclm import` skips (matched against the full path and the base name)" },
	{ "import.follow_symlinks", T_BOOL, "true", NULL,
	  "follow symbolic links while walking directories (loops are detected)" },
	{ "log.level", T_ENUM, "info", "debug|info|warn|error", "least severe level logged" },
	{ "log.format", T_ENUM, "text", "text|json", "log lines as text or JSON" },
	{ "server.listen", T_STRING, "127.0.0.1:8443", NULL,
	  "address:port of `aclm server` (HTTPS); [::]:8443 for every address" },
	{ "server.tls_cert", T_STRING, "", NULL,
	  "certificate chain (PEM) of the server; empty: a self-signed one in server.tls_dir" },
	{ "server.tls_key", T_STRING, "", NULL, "its private key (PEM)" },
	{ "server.tls_dir", T_STRING, "aclm-tls", NULL,
	  "where the server keeps its own certificate and key (key 0600)" },
	{ "server.session_ttl", T_DURATION, "12h", NULL, "how long a login session lasts" },
	{ "server.lockout_after", T_INT, "5", NULL,
	  "failed logins in a row that lock an account (0: never)" },
	{ "server.lockout_time", T_DURATION, "15m", NULL, "how long a locked account stays locked" },
	{ "scan.rescan_interval", T_DURATION, "24h", NULL,
	  "aclm server rescans the endpoints it knows this often (0: never)" },
	{ "reports.channel", T_STRING, "", NULL,
	  "alert channel that aclm server sends scheduled reports to (empty: none)" },
	{ "reports.kinds", T_LIST, "", NULL,
	  "the reports it sends: inventory, expiry, compliance, algorithms, pq-readiness "
	  "(none listed: expiry and compliance)" },
	{ "reports.every", T_DURATION, "7d", NULL, "how often (periods start at the Unix epoch)" },
	{ "scheduler.ari_recheck", T_DURATION, "6h", NULL,
	  "how often aclm server asks a CA's ARI whether a certificate's renewal window moved, "
	  "until the CA's own Retry-After is known (0: only at the planned time)" },
	{ "scheduler.workers", T_INT, "2", NULL,
	  "jobs (renewals, ...) run at the same time by one server" },
	{ "scheduler.interval", T_DURATION, "30s", NULL,
	  "how often the scheduler plans and looks for due jobs" },
	{ "server.max_connections", T_INT, "16384", NULL,
	  "open connections at most; more are refused at once" },
	{ "server.header_timeout", T_DURATION, "10s", NULL,
	  "a request's head must arrive within this (slow clients are dropped)" },
	{ "server.idle_timeout", T_DURATION, "60s", NULL,
	  "how long a keep-alive connection may wait for its next request" },
	{ "server.access_log", T_STRING, "", NULL,
	  "JSON-lines access log: a file, '-' for stderr, empty for none" },
	{ "alerts.interval", T_DURATION, "60s", NULL,
	  "how often aclm server evaluates alert rules and delivers due alerts (0: never)" },
	{ "alerts.max_attempts", T_INT, "8", NULL,
	  "delivery attempts of one alert before it is marked failed (1-20)" },
	{ "alerts.retry_base", T_DURATION, "1m", NULL,
	  "wait before the first retry of a failed delivery; doubles each time, at most 1d" },
	{ "alerts.timeout", T_DURATION, "30s", NULL, "time limit of one delivery (SMTP or HTTP)" },
	{ "scan.exclude", T_LIST, "", NULL,
	  "targets never scanned (addresses, CIDR ranges, a.b.c.d-e ranges, names)" },
	{ "acme.cas", T_TABLE, "", "name|directory|trust|contact|eab_kid|eab_hmac|preferred_chain|"
	  "profile|account_key|timeout|rate_limit",
	  "ACME CAs in priority order: a list of {name, directory, trust, contact, eab_kid, "
	  "eab_hmac, preferred_chain, profile, account_key, timeout, rate_limit} (docs/cli.md)" },
	{ "ca.name", T_STRING, "main", NULL,
	  "the built-in CA `aclm server` creates on first start and serves at /acme/NAME/directory" },
	{ "ca.auto_init", T_BOOL, "false", NULL,
	  "aclm server creates the built-in CA ca.name on first start and, when server.tls_cert "
	  "is unset, serves a certificate from it instead of a self-signed one" },
	{ "ca.url", T_STRING, "", NULL,
	  "base URL put in issued certificates for the CRL and OCSP (default: the server's URL)" },
	{ "ca.dns_suffixes", T_LIST, "", NULL,
	  "DNS names the built-in CA issues for (suffixes such as corp.internal; empty: any)" },
	{ "ca.ip_ranges", T_LIST, "", NULL,
	  "IP ranges (CIDR) the built-in CA issues for (empty: 10/8, 172.16/12, 192.168/16, "
	  "127/8, fc00::/7, ::1)" },
	{ "ca.http01_port", T_INT, "80", NULL, "port the built-in CA's http-01 validation connects to" },
	{ "ca.tlsalpn01_port", T_INT, "443", NULL,
	  "port the built-in CA's tls-alpn-01 validation connects to" },
	{ "ca.ari_retry_after", T_DURATION, "6h", NULL,
	  "how long ACME clients should wait before asking the built-in CA's ARI again "
	  "(Retry-After of renewalInfo)" },
	{ "ca.orders_per_hour", T_INT, "300", NULL,
	  "new orders one ACME account may place per hour (rateLimited beyond)" },
	{ "ca.orders_per_name_per_hour", T_INT, "1000", NULL,
	  "new orders per registered name (the last two labels) per hour, all accounts together" },
	{ "ca.authz_reuse", T_DURATION, "1d", NULL,
	  "how long a valid authorization of the built-in CA is reused for the same account" },
	{ "ca.eab_keys", T_LIST, "", NULL,
	  "external account binding keys of the built-in CA's ACME server, KID:BASE64URL-HMAC-KEY" },
	{ "ca.eab_required", T_BOOL, "false", NULL,
	  "new ACME accounts must carry an external account binding (externalAccountRequired)" },
	{ "ca.validation_connect_to", T_STRING, "", NULL,
	  "connect every http-01 / tls-alpn-01 validation of a DNS name to this address "
	  "(lab and test networks; empty: resolve the name)" },
	{ "ca.dns_resolver", T_STRING, "", NULL,
	  "resolver ADDR[:PORT] the built-in CA asks for dns-01 TXT records (empty: the system's)" },
};
#define N_KEYS (sizeof(key_defs) / sizeof(key_defs[0]))

struct entry {
	char *key;            /* "store.url" */
	char *value;          /* scalar text; NULL for a sequence or mapping */
	char **items;         /* sequence items */
	size_t n_items;
	bool is_mapping;      /* a mapping where a value was expected */
	struct aclm_config_record *records;  /* T_TABLE: the list's mappings */
	size_t n_records;
	size_t line, col;
};

struct value {                /* effective value of one known key */
	const char *text;     /* env, file or default text */
	const char *const *items;
	size_t n_items;
	char origin[64];
	bool is_bad;          /* failed validation; the default is used */
	union { int64_t i; bool b; uint64_t u; } parsed;
	char **env_items;     /* storage for a split env list */
	size_t n_env_items;
	const struct aclm_config_record *records;  /* T_TABLE */
	size_t n_records;
};

struct aclm_config {
	char *path;
	struct entry *entries;
	size_t n_entries;
	struct value values[N_KEYS];
	struct aclm_buf problems;   /* NUL-separated messages */
	size_t n_problems;
};

static void add_problem(struct aclm_config *cfg, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void add_problem(struct aclm_config *cfg, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	aclm_buf_vprintf(&cfg->problems, fmt, ap);
	va_end(ap);
	aclm_buf_putc(&cfg->problems, '\0');
	cfg->n_problems++;
}

static const struct key_def *find_def(const char *key, size_t *idx)
{
	for (size_t i = 0; i < N_KEYS; i++) {
		if (strcmp(key_defs[i].key, key) == 0) {
			if (idx != NULL)
				*idx = i;
			return &key_defs[i];
		}
	}
	return NULL;
}

/* Levenshtein distance, for "did you mean" on unknown keys. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), prev[64], cur[64];

	if (la >= 63 || lb >= 63)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
			size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
			cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
		}
		memcpy(prev, cur, sizeof(size_t) * (lb + 1));
	}
	return prev[lb];
}

static const char *suggest(const char *key)
{
	const char *best = NULL;
	size_t best_d = 4;

	for (size_t i = 0; i < N_KEYS; i++) {
		size_t d = edit_distance(key, key_defs[i].key);
		if (d < best_d) {
			best_d = d;
			best = key_defs[i].key;
		}
	}
	return best;
}

/* --- YAML to flat entries ------------------------------------------- */

struct parse_state {
	struct aclm_config *cfg;
	yaml_parser_t parser;
	char *stack[CONFIG_MAX_DEPTH];
	size_t depth;
};

static char *join_key(struct parse_state *ps, const char *last)
{
	struct aclm_buf b;

	aclm_buf_init(&b, 1024);
	for (size_t i = 0; i < ps->depth; i++) {
		aclm_buf_puts(&b, ps->stack[i]);
		aclm_buf_putc(&b, '.');
	}
	aclm_buf_puts(&b, last);
	return aclm_buf_steal(&b, NULL);
}

static struct entry *new_entry(struct parse_state *ps, const char *key, const yaml_mark_t *m)
{
	struct aclm_config *cfg = ps->cfg;
	struct entry *e, *n;

	if (cfg->n_entries >= CONFIG_MAX_ENTRIES)
		return NULL;
	n = realloc(cfg->entries, (cfg->n_entries + 1) * sizeof(*n));
	if (n == NULL)
		return NULL;
	cfg->entries = n;
	e = &cfg->entries[cfg->n_entries++];
	memset(e, 0, sizeof(*e));
	e->key = join_key(ps, key);
	e->line = m->line + 1;
	e->col = m->column + 1;
	return e;
}

static int syntax_error(struct parse_state *ps, const yaml_mark_t *m, const char *what)
{
	return aclm_error(ACLM_ERR_CONFIG, "%s:%zu:%zu: %s", ps->cfg->path,
	                  m->line + 1, m->column + 1, what);
}

static int next_event(struct parse_state *ps, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&ps->parser, ev)) {
		const yaml_mark_t *m = &ps->parser.problem_mark;
		return aclm_error(ACLM_ERR_CONFIG, "%s:%zu:%zu: YAML syntax error: %s", ps->cfg->path,
		                  m->line + 1, m->column + 1,
		                  ps->parser.problem ? ps->parser.problem : "unknown");
	}
	if (ev->type == YAML_ALIAS_EVENT) {
		int rc = syntax_error(ps, &ev->start_mark, "YAML aliases are not supported in aclm.yaml");
		yaml_event_delete(ev);
		return rc;
	}
	return ACLM_OK;
}

/* Skip a whole node whose first event was already read (for nested values
 * of unknown keys). */
static int skip_node(struct parse_state *ps, yaml_event_type_t first)
{
	int level = (first == YAML_MAPPING_START_EVENT || first == YAML_SEQUENCE_START_EVENT) ? 1 : 0;
	yaml_event_t ev;
	int rc;

	while (level > 0) {
		if ((rc = next_event(ps, &ev)) != ACLM_OK)
			return rc;
		if (ev.type == YAML_MAPPING_START_EVENT || ev.type == YAML_SEQUENCE_START_EVENT)
			level++;
		else if (ev.type == YAML_MAPPING_END_EVENT || ev.type == YAML_SEQUENCE_END_EVENT)
			level--;
		yaml_event_delete(&ev);
	}
	return ACLM_OK;
}

/* One mapping of scalar fields inside a T_TABLE list. */
static int parse_record(struct parse_state *ps, struct entry *e, const struct key_def *d,
                        const yaml_mark_t *start)
{
	struct aclm_config_record *n, *r;
	yaml_event_t kev, vev;
	int rc = ACLM_OK;

	if (e->n_records >= CONFIG_MAX_ENTRIES)
		return syntax_error(ps, start, "too many list entries");
	n = realloc(e->records, (e->n_records + 1) * sizeof(*n));
	if (n == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory reading %s", ps->cfg->path);
	e->records = n;
	r = &e->records[e->n_records++];
	memset(r, 0, sizeof(*r));
	r->line = start->line + 1;
	r->col = start->column + 1;
	for (;;) {
		if ((rc = next_event(ps, &kev)) != ACLM_OK)
			return rc;
		if (kev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&kev);
			return ACLM_OK;
		}
		if ((rc = next_event(ps, &vev)) != ACLM_OK) {
			yaml_event_delete(&kev);
			return rc;
		}
		if (kev.type != YAML_SCALAR_EVENT || vev.type != YAML_SCALAR_EVENT) {
			rc = syntax_error(ps, &kev.start_mark, "entries of this list are mappings of "
			                  "plain values");
		} else if (r->n_fields >= 64) {
			rc = syntax_error(ps, &kev.start_mark, "too many fields");
		} else {
			const char *f = (const char *)kev.data.scalar.value;
			size_t flen = strlen(f);
			bool known = false;
			for (const char *p = d->choices; *p != '\0';) {
				const char *bar = strchr(p, '|');
				size_t plen = bar ? (size_t)(bar - p) : strlen(p);
				if (plen == flen && strncmp(p, f, plen) == 0)
					known = true;
				p += plen + (bar != NULL);
			}
			if (!known)
				add_problem(ps->cfg, "%s:%zu:%zu: %s: unknown field '%s' (known: %s)",
				            ps->cfg->path, kev.start_mark.line + 1,
				            kev.start_mark.column + 1, e->key, f, d->choices);
			r->fields[r->n_fields] = aclm_strdup(f);
			r->values[r->n_fields] = aclm_strndup((const char *)vev.data.scalar.value,
			                                      vev.data.scalar.length);
			r->n_fields++;
		}
		yaml_event_delete(&kev);
		yaml_event_delete(&vev);
		if (rc != ACLM_OK)
			return rc;
	}
}

static int parse_sequence(struct parse_state *ps, struct entry *e)
{
	const struct key_def *d = find_def(e->key, NULL);
	yaml_event_t ev;
	int rc;

	for (;;) {
		if ((rc = next_event(ps, &ev)) != ACLM_OK)
			return rc;
		if (ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&ev);
			return ACLM_OK;
		}
		if (ev.type == YAML_SCALAR_EVENT) {
			char **n = realloc(e->items, (e->n_items + 1) * sizeof(*n));
			if (n == NULL) {
				yaml_event_delete(&ev);
				return aclm_error(ACLM_ERR_NOMEM, "out of memory reading %s", ps->cfg->path);
			}
			e->items = n;
			e->items[e->n_items++] = aclm_strndup((const char *)ev.data.scalar.value,
			                                      ev.data.scalar.length);
			yaml_event_delete(&ev);
			continue;
		}
		if (ev.type == YAML_MAPPING_START_EVENT && d != NULL && d->type == T_TABLE) {
			yaml_mark_t m = ev.start_mark;
			yaml_event_delete(&ev);
			if ((rc = parse_record(ps, e, d, &m)) != ACLM_OK)
				return rc;
			continue;
		}
		rc = syntax_error(ps, &ev.start_mark, "only plain values are allowed inside a list");
		yaml_event_delete(&ev);
		return rc;
	}
}

static int parse_mapping(struct parse_state *ps)
{
	yaml_event_t kev, vev;
	int rc = ACLM_OK;

	for (;;) {
		if ((rc = next_event(ps, &kev)) != ACLM_OK)
			return rc;
		if (kev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&kev);
			return ACLM_OK;
		}
		if (kev.type != YAML_SCALAR_EVENT) {
			rc = syntax_error(ps, &kev.start_mark, "keys must be plain names");
			yaml_event_delete(&kev);
			return rc;
		}
		if ((rc = next_event(ps, &vev)) != ACLM_OK) {
			yaml_event_delete(&kev);
			return rc;
		}
		const char *k = (const char *)kev.data.scalar.value;
		if (vev.type == YAML_MAPPING_START_EVENT) {
			char *full = join_key(ps, k);
			/* A known scalar key given a mapping is a bad value, not a section. */
			if (find_def(full, NULL) != NULL || ps->depth + 1 >= CONFIG_MAX_DEPTH) {
				struct entry *e = new_entry(ps, k, &kev.start_mark);
				if (e != NULL)
					e->is_mapping = true;
				rc = skip_node(ps, vev.type);
			} else {
				ps->stack[ps->depth++] = aclm_strdup(k);
				rc = parse_mapping(ps);
				free(ps->stack[--ps->depth]);
			}
			free(full);
		} else {
			struct entry *e = new_entry(ps, k, &kev.start_mark);
			if (e == NULL) {
				rc = syntax_error(ps, &kev.start_mark, "too many keys");
			} else if (vev.type == YAML_SCALAR_EVENT) {
				e->value = aclm_strndup((const char *)vev.data.scalar.value,
				                        vev.data.scalar.length);
			} else if (vev.type == YAML_SEQUENCE_START_EVENT) {
				rc = parse_sequence(ps, e);
			} else {
				rc = syntax_error(ps, &vev.start_mark, "unexpected YAML node");
			}
		}
		yaml_event_delete(&kev);
		yaml_event_delete(&vev);
		if (rc != ACLM_OK)
			return rc;
	}
}

static int parse_yaml(struct aclm_config *cfg, const struct aclm_buf *text)
{
	struct parse_state ps;
	yaml_event_t ev;
	int rc;

	memset(&ps, 0, sizeof(ps));
	ps.cfg = cfg;
	if (!yaml_parser_initialize(&ps.parser))
		return aclm_error(ACLM_ERR_NOMEM, "out of memory (YAML parser)");
	yaml_parser_set_input_string(&ps.parser, text->data ? text->data : (const unsigned char *)"",
	                             text->len);
	/* stream start, document start (or stream end for an empty file) */
	for (;;) {
		if ((rc = next_event(&ps, &ev)) != ACLM_OK)
			goto out;
		yaml_event_type_t t = ev.type;
		yaml_mark_t m = ev.start_mark;
		yaml_event_delete(&ev);
		if (t == YAML_STREAM_START_EVENT || t == YAML_DOCUMENT_START_EVENT)
			continue;
		if (t == YAML_STREAM_END_EVENT)
			break;
		if (t == YAML_MAPPING_START_EVENT) {
			if ((rc = parse_mapping(&ps)) != ACLM_OK)
				goto out;
			continue;
		}
		if (t == YAML_DOCUMENT_END_EVENT)
			continue;
		if (t == YAML_SCALAR_EVENT && text->len > 0) {
			/* an empty document parses as one empty scalar */
			rc = syntax_error(&ps, &m, "the top level must be a mapping of sections (e.g. 'store:')");
			goto out;
		}
		if (t != YAML_SCALAR_EVENT) {
			rc = syntax_error(&ps, &m, "the top level must be a mapping of sections (e.g. 'store:')");
			goto out;
		}
	}
	rc = ACLM_OK;
out:
	yaml_parser_delete(&ps.parser);
	return rc;
}

/* --- values ----------------------------------------------------------- */

static void env_name(const char *key, char *out, size_t out_size)
{
	size_t n = 0;

	n += aclm_strlcpy(out, "ACLM_", out_size);
	for (const char *p = key; *p != '\0' && n + 1 < out_size; p++, n++)
		out[n] = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
	out[n < out_size ? n : out_size - 1] = '\0';
}

/* Validate text for def; on failure returns the message in msg. */
static int validate(const struct key_def *d, const char *text, struct value *v,
                    char *msg, size_t msg_size)
{
	int rc = ACLM_OK;

	switch (d->type) {
	case T_STRING:
	case T_LIST:
	case T_TABLE:
		return ACLM_OK;
	case T_INT:
		rc = aclm_parse_int64(text, &v->parsed.i);
		break;
	case T_BOOL:
		rc = aclm_parse_bool(text, &v->parsed.b);
		break;
	case T_DURATION:
		rc = aclm_parse_duration(text, &v->parsed.i);
		break;
	case T_SIZE:
		rc = aclm_parse_size(text, &v->parsed.u);
		break;
	case T_ENUM: {
		size_t len = strlen(text);
		const char *p = d->choices;
		while (*p != '\0') {
			const char *bar = strchr(p, '|');
			size_t plen = bar ? (size_t)(bar - p) : strlen(p);
			if (plen == len && strncmp(p, text, len) == 0)
				return ACLM_OK;
			p += plen + (bar != NULL);
		}
		rc = aclm_error(ACLM_ERR_PARSE, "'%s' is not one of %s", text, d->choices);
		break;
	}
	}
	if (rc != ACLM_OK)
		aclm_strlcpy(msg, aclm_errmsg(), msg_size);
	return rc;
}

static void split_env_list(struct value *v, const char *text)
{
	char *copy = aclm_strdup(text), *save = NULL, *tok;

	if (copy == NULL)
		return;
	for (tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		while (isspace((unsigned char)*tok))
			tok++;
		if (*tok == '\0')
			continue;
		char **n = realloc(v->env_items, (v->n_env_items + 1) * sizeof(*n));
		if (n == NULL)
			break;
		v->env_items = n;
		v->env_items[v->n_env_items++] = aclm_strdup(tok);
	}
	free(copy);
	v->items = (const char *const *)v->env_items;
	v->n_items = v->n_env_items;
}

static void resolve(struct aclm_config *cfg)
{
	char msg[512], env[128];

	/* file entries: unknown keys and type problems */
	for (size_t i = 0; i < cfg->n_entries; i++) {
		struct entry *e = &cfg->entries[i];
		size_t idx;
		const struct key_def *d = find_def(e->key, &idx);
		if (d == NULL) {
			const char *s = suggest(e->key);
			if (s != NULL)
				add_problem(cfg, "%s:%zu:%zu: unknown key '%s' (did you mean '%s'?)",
				            cfg->path, e->line, e->col, e->key, s);
			else
				add_problem(cfg, "%s:%zu:%zu: unknown key '%s'", cfg->path, e->line,
				            e->col, e->key);
			continue;
		}
		struct value *v = &cfg->values[idx];
		if (e->is_mapping || (e->items != NULL && d->type != T_LIST) ||
		    (e->value == NULL && e->items == NULL && d->type != T_LIST && d->type != T_TABLE) ||
		    (d->type == T_TABLE && e->items != NULL)) {
			add_problem(cfg, "%s:%zu:%zu: %s must be a %s value", cfg->path, e->line, e->col,
			            e->key, type_names[d->type]);
			v->is_bad = true;
			continue;
		}
		if (d->type == T_TABLE) {
			if (e->value != NULL && e->value[0] != '\0') {
				add_problem(cfg, "%s:%zu:%zu: %s must be a list of mappings", cfg->path,
				            e->line, e->col, e->key);
				v->is_bad = true;
				continue;
			}
			v->records = e->records;
			v->n_records = e->n_records;
		} else if (d->type == T_LIST) {
			if (e->value != NULL && e->value[0] != '\0') {
				add_problem(cfg, "%s:%zu:%zu: %s must be a list (e.g. [a, b])", cfg->path,
				            e->line, e->col, e->key);
				v->is_bad = true;
				continue;
			}
			v->items = (const char *const *)e->items;
			v->n_items = e->n_items;
		} else if (validate(d, e->value, v, msg, sizeof(msg)) != ACLM_OK) {
			add_problem(cfg, "%s:%zu:%zu: %s: %s", cfg->path, e->line, e->col, e->key, msg);
			v->is_bad = true;
			continue;
		}
		v->text = (d->type == T_LIST || d->type == T_TABLE) ? "" : e->value;
		snprintf(v->origin, sizeof(v->origin), "file:%zu", e->line);
	}
	/* environment overrides */
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct key_def *d = &key_defs[i];
		struct value *v = &cfg->values[i];
		const char *text;

		env_name(d->key, env, sizeof(env));
		text = getenv(env);
		if (text == NULL)
			continue;
		if (d->type == T_TABLE) {
			add_problem(cfg, "%s: %s is a list of mappings and cannot be set from the "
			            "environment", env, d->key);
			continue;
		}
		if (d->type == T_LIST) {
			v->items = NULL;
			v->n_items = 0;
			split_env_list(v, text);
		} else if (validate(d, text, v, msg, sizeof(msg)) != ACLM_OK) {
			add_problem(cfg, "%s: %s: %s", env, d->key, msg);
			v->is_bad = true;
			continue;
		}
		v->is_bad = false;
		v->text = text;
		snprintf(v->origin, sizeof(v->origin), "env:%s", env);
	}
	/* defaults for everything unset or bad */
	for (size_t i = 0; i < N_KEYS; i++) {
		struct value *v = &cfg->values[i];
		if (v->text != NULL && !v->is_bad)
			continue;
		v->text = key_defs[i].def;
		if (key_defs[i].type == T_LIST) {
			v->items = NULL;
			v->n_items = 0;
		}
		if (key_defs[i].type == T_TABLE) {
			v->records = NULL;
			v->n_records = 0;
		}
		validate(&key_defs[i], v->text, v, msg, sizeof(msg));
		aclm_strlcpy(v->origin, "default", sizeof(v->origin));
	}
}

int aclm_config_load(const char *explicit_path, struct aclm_config **out)
{
	struct aclm_config *cfg;
	struct aclm_buf text;
	const char *path = explicit_path;
	bool must_exist = true;
	int rc = ACLM_OK;

	aclm_buf_init(&text, CONFIG_MAX_BYTES);
	cfg = calloc(1, sizeof(*cfg));
	if (cfg == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	aclm_buf_init(&cfg->problems, 1u << 20);
	if (path == NULL || *path == '\0') {
		path = getenv("ACLM_CONFIG");
		if (path == NULL || *path == '\0') {
			must_exist = false;
			if (access("aclm.yaml", F_OK) == 0)
				path = "aclm.yaml";
			else if (access("/etc/aclm/aclm.yaml", F_OK) == 0)
				path = "/etc/aclm/aclm.yaml";
			else
				path = NULL;
		}
	}
	if (path != NULL) {
		cfg->path = aclm_strdup(path);
		rc = aclm_buf_read_file(&text, path);
		if (rc != ACLM_OK && !must_exist && errno == ENOENT) {
			rc = ACLM_OK;
		} else if (rc != ACLM_OK) {
			rc = aclm_error_wrap(ACLM_ERR_CONFIG, "configuration");
			goto out;
		} else if ((rc = parse_yaml(cfg, &text)) != ACLM_OK) {
			goto out;
		}
	}
	resolve(cfg);
out:
	aclm_buf_free(&text);
	if (rc != ACLM_OK) {
		aclm_config_free(cfg);
		return rc;
	}
	*out = cfg;
	return ACLM_OK;
}

void aclm_config_free(struct aclm_config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->n_entries; i++) {
		struct entry *e = &cfg->entries[i];
		free(e->key);
		free(e->value);
		for (size_t j = 0; j < e->n_items; j++)
			free(e->items[j]);
		free(e->items);
		for (size_t j = 0; j < e->n_records; j++) {
			for (size_t k = 0; k < e->records[j].n_fields; k++) {
				free(e->records[j].fields[k]);
				free(e->records[j].values[k]);
			}
		}
		free(e->records);
	}
	for (size_t i = 0; i < N_KEYS; i++) {
		for (size_t j = 0; j < cfg->values[i].n_env_items; j++)
			free(cfg->values[i].env_items[j]);
		free(cfg->values[i].env_items);
	}
	free(cfg->entries);
	free(cfg->path);
	aclm_buf_free(&cfg->problems);
	free(cfg);
}

const char *aclm_config_path(const struct aclm_config *cfg)
{
	return cfg->path;
}

static const struct value *get(const struct aclm_config *cfg, const char *key, enum key_type t)
{
	size_t idx;
	const struct key_def *d = find_def(key, &idx);

	if (d == NULL || d->type != t) {
		aclm_err("internal: configuration key '%s' is not a known %s", key, type_names[t]);
		abort();
	}
	return &cfg->values[idx];
}

const char *aclm_config_str(const struct aclm_config *cfg, const char *key)
{
	size_t idx;
	const struct key_def *d = find_def(key, &idx);

	if (d == NULL || (d->type != T_STRING && d->type != T_ENUM))
		return get(cfg, key, T_STRING)->text;
	return cfg->values[idx].text;
}

const char *aclm_config_str_any(const struct aclm_config *cfg, const char *key)
{
	size_t idx;

	if (find_def(key, &idx) == NULL)
		return NULL;
	return cfg->values[idx].text;
}

int64_t aclm_config_int(const struct aclm_config *cfg, const char *key)
{
	return get(cfg, key, T_INT)->parsed.i;
}

bool aclm_config_bool(const struct aclm_config *cfg, const char *key)
{
	return get(cfg, key, T_BOOL)->parsed.b;
}

int64_t aclm_config_duration(const struct aclm_config *cfg, const char *key)
{
	return get(cfg, key, T_DURATION)->parsed.i;
}

uint64_t aclm_config_size(const struct aclm_config *cfg, const char *key)
{
	return get(cfg, key, T_SIZE)->parsed.u;
}

size_t aclm_config_list(const struct aclm_config *cfg, const char *key, const char *const **items)
{
	const struct value *v = get(cfg, key, T_LIST);

	*items = v->items;
	return v->n_items;
}

size_t aclm_config_table(const struct aclm_config *cfg, const char *key,
                         const struct aclm_config_record **records)
{
	const struct value *v = get(cfg, key, T_TABLE);

	*records = v->records;
	return v->n_records;
}

const char *aclm_config_record_get(const struct aclm_config_record *r, const char *field)
{
	for (size_t i = 0; i < r->n_fields; i++)
		if (strcmp(r->fields[i], field) == 0)
			return r->values[i];
	return NULL;
}

void aclm_config_origin(const struct aclm_config *cfg, const char *key, char *out, size_t out_size)
{
	size_t idx;

	if (find_def(key, &idx) == NULL)
		aclm_strlcpy(out, "unknown", out_size);
	else
		aclm_strlcpy(out, cfg->values[idx].origin, out_size);
}

int aclm_config_check(const struct aclm_config *cfg, aclm_config_report_fn fn, void *ctx)
{
	const char *p = aclm_buf_cstr(&cfg->problems);

	for (size_t i = 0; i < cfg->n_problems; i++) {
		fn(ctx, p);
		p += strlen(p) + 1;
	}
	return (int)cfg->n_problems;
}

size_t aclm_config_keys(const struct aclm_config_key_info **keys)
{
	static struct aclm_config_key_info info[N_KEYS];

	for (size_t i = 0; i < N_KEYS; i++) {
		info[i].key = key_defs[i].key;
		info[i].type = type_names[key_defs[i].type];
		info[i].def = key_defs[i].def;
		info[i].help = key_defs[i].help;
	}
	*keys = info;
	return N_KEYS;
}
