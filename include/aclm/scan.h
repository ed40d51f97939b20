/* Discovery: targets, the asynchronous probe engine, per-endpoint results
 * and findings (docs/internals/scan.md).
 *
 * Flow: aclm_scan_targets_parse() checks every token first (a bad one is
 * named with its position and nothing is scanned); aclm_scan_targets_expand()
 * resolves names and yields endpoints lazily (CIDR ranges are never
 * materialised); the engine (aclm_scan_run) probes each endpoint with a table
 * of probes on one libev loop and hands each finished result to a callback;
 * aclm_scan_endpoint_findings() turns a result into findings. */
#ifndef ACLM_SCAN_H
#define ACLM_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aclm/x509.h"

/* --- targets ------------------------------------------------------------ */

/* How the TLS handshake is reached on a port. */
enum aclm_scan_proto {
	ACLM_SCAN_TLS = 0,     /* TLS at once (443, 465, 636, 993, 995, ...) */
	ACLM_SCAN_SMTP,        /* EHLO, STARTTLS (25, 587) */
	ACLM_SCAN_IMAP,        /* CAPABILITY, STARTTLS (143) */
	ACLM_SCAN_POP3,        /* CAPA, STLS (110) */
};
const char *aclm_scan_proto_name(enum aclm_scan_proto p);  /* "tls","smtp","imap","pop3" */
int aclm_scan_proto_parse(const char *s, enum aclm_scan_proto *out);
/* The protocol a port speaks by convention (25/587 smtp, 143 imap, 110 pop3). */
enum aclm_scan_proto aclm_scan_proto_for_port(unsigned port);

struct aclm_scan_targets;

/* Parse target tokens: NAME, IPv4, IPv6, [IPv6], CIDR (v4 and v6),
 * a.b.c.d-e ranges, any of these with :PORT ([v6]:PORT), and @FILE (one
 * target per line, '#' comments).  Errors name the token and its position
 * ("target 3 '10.0.0.0/33': ..." or "FILE:LINE: ...") and nothing is kept. */
int aclm_scan_targets_parse(const char *const *tokens, size_t n_tokens,
                            struct aclm_scan_targets **out);
/* Add excludes (same syntax, ports ignored; a name excludes that name). */
int aclm_scan_targets_exclude(struct aclm_scan_targets *t, const char *const *tokens,
                              size_t n_tokens);
/* Ports for targets without :PORT ("443,8443"; default 443). */
int aclm_scan_targets_set_ports(struct aclm_scan_targets *t, const char *list);
/* Addresses the targets cover (names count once per name), before excludes. */
uint64_t aclm_scan_targets_n_addresses(const struct aclm_scan_targets *t);
uint64_t aclm_scan_targets_n_endpoints(const struct aclm_scan_targets *t);
/* Host names among the targets (each is resolved when the cursor reaches it). */
size_t aclm_scan_targets_n_names(const struct aclm_scan_targets *t);
void aclm_scan_targets_free(struct aclm_scan_targets *t);

/* One endpoint to probe. */
struct aclm_scan_endpoint {
	char host[256];        /* the name asked for, "" for a bare address */
	char ip[64];           /* numeric address; "" when the name did not resolve */
	unsigned port;
	char sni[256];         /* server name sent, "" for none */
	enum aclm_scan_proto proto;
};

/* Called once per endpoint, names resolved (all A/AAAA records); an
 * unresolvable name is passed with ip "" (a finding, not an abort).
 * A non-zero return stops the expansion and is returned. */
typedef int (*aclm_scan_endpoint_fn)(void *ctx, const struct aclm_scan_endpoint *ep);

/* A lazy cursor over the endpoints of the targets (minus excludes). */
struct aclm_scan_cursor;
int aclm_scan_cursor_new(struct aclm_scan_targets *t, struct aclm_scan_cursor **out);
/* 1 and *ep filled, 0 when done. */
int aclm_scan_cursor_next(struct aclm_scan_cursor *c, struct aclm_scan_endpoint *ep);
void aclm_scan_cursor_free(struct aclm_scan_cursor *c);
/* True when ip (numeric) or name is excluded. */
bool aclm_scan_targets_is_excluded(const struct aclm_scan_targets *t, const char *ip,
                                   const char *name);

/* --- results ------------------------------------------------------------ */

enum aclm_scan_reason {
	ACLM_SCAN_OK = 0,
	ACLM_SCAN_UNRESOLVED,      /* the name has no A/AAAA record */
	ACLM_SCAN_REFUSED,         /* connection refused */
	ACLM_SCAN_CONNECT_TIMEOUT, /* no answer to SYN within the connect timeout */
	ACLM_SCAN_UNREACHABLE,     /* network/host unreachable, other connect errors */
	ACLM_SCAN_TIMEOUT,         /* connected, but the handshake did not finish in time */
	ACLM_SCAN_RESET,           /* the peer reset or closed the connection */
	ACLM_SCAN_NOT_TLS,         /* the peer spoke something that is not TLS */
	ACLM_SCAN_STARTTLS,        /* the STARTTLS dialogue failed */
	ACLM_SCAN_HANDSHAKE,       /* TLS spoken, but no version/suite agreed or an alert */
};
const char *aclm_scan_reason_name(enum aclm_scan_reason r);

enum aclm_scan_trust {
	ACLM_TRUST_UNKNOWN = 0,    /* no chain */
	ACLM_TRUST_TRUSTED,        /* chains to the system store or an inventory CA */
	ACLM_TRUST_SELF_SIGNED,    /* the leaf signed itself and is not an anchor */
	ACLM_TRUST_INCOMPLETE,     /* trusted only with intermediates the server did not send */
	ACLM_TRUST_UNTRUSTED,      /* no path to an anchor */
};
const char *aclm_scan_trust_name(enum aclm_scan_trust t);

/* TLS versions, bit i = TLS 1.i (bit 0 TLS 1.0 .. bit 3 TLS 1.3). */
#define ACLM_SCAN_N_VERSIONS 4
const char *aclm_scan_version_name(int i);  /* "TLSv1.0".."TLSv1.3" */

/* Group tables, in probe order. */
size_t aclm_scan_classic_groups(const char *const **names);
size_t aclm_scan_pq_groups(const char *const **names);

struct aclm_scan_result {
	struct aclm_scan_endpoint ep;
	int64_t scanned_at;
	bool reachable;                  /* a TLS handshake completed */
	enum aclm_scan_reason reason;
	char detail[256];                /* why not, for a person */

	unsigned versions;               /* accepted, bits as above */
	unsigned versions_probed;        /* which were asked */
	char negotiated_version[16];     /* of the first (default) handshake */
	char cipher_suite[64];
	char negotiated_group[32];
	uint32_t groups;                 /* bit i: classic group i accepted */
	uint32_t groups_probed;
	uint32_t pq_groups;              /* bit i: PQ group i accepted */
	uint32_t pq_probed;
	bool ocsp_stapled;

	struct aclm_cert **chain;        /* as served, leaf first */
	size_t n_chain;

	/* Analysis of the leaf (valid when n_chain > 0). */
	bool is_expired;
	bool is_not_yet_valid;
	bool has_name;                   /* there was a name or address to check */
	bool hostname_matches;
	enum aclm_scan_trust trust;
	char verify_error[128];          /* OpenSSL's reason when not trusted */
};

void aclm_scan_result_free(struct aclm_scan_result *r);

/* --- the engine --------------------------------------------------------- */

struct aclm_scan_opts {
	int concurrency;            /* connections in flight (default 256) */
	double rate;                /* new connections per second, 0 = unlimited */
	int per_host;               /* connections in flight per address (default 32) */
	double connect_timeout;     /* seconds (default 3) */
	double handshake_timeout;   /* seconds, STARTTLS included (default 5) */
	bool no_versions;           /* skip the per-version probes */
	bool no_groups;             /* skip the per-group probes (classic and PQ) */
	/* Port -> protocol overrides ("2525" -> smtp), beyond the conventions. */
	const unsigned *starttls_ports;
	const enum aclm_scan_proto *starttls_protos;
	size_t n_starttls;
};

struct aclm_scan;

/* The engine: its own OpenSSL library context with the aclm-pq provider
 * loaded, one SSL_CTX per probe kind. */
int aclm_scan_new(const struct aclm_scan_opts *opts, struct aclm_scan **out);
void aclm_scan_free(struct aclm_scan *s);
/* Trust anchors (self-signed CAs) and extra intermediates (to tell an
 * incomplete chain from an untrusted one), DER.  The system store is
 * always used as well. */
int aclm_scan_add_anchor(struct aclm_scan *s, const unsigned char *der, size_t len);
int aclm_scan_add_intermediate(struct aclm_scan *s, const unsigned char *der, size_t len);

/* Where endpoints come from: next() returns 1 with *ep filled, 0 at the end,
 * < 0 on error (stops the scan). */
struct aclm_scan_source {
	int (*next)(void *ctx, struct aclm_scan_endpoint *ep);
	void *ctx;
	uint64_t total_hint;        /* for progress; 0 if unknown */
};

/* Called on the loop for each finished endpoint; the result is freed after
 * the call.  A non-zero return stops the scan and is returned. */
typedef int (*aclm_scan_result_fn)(void *ctx, const struct aclm_scan_result *r);
/* Called about 4 times a second. */
struct aclm_scan_progress {
	uint64_t done, started, total;
	double elapsed;
	uint64_t connections;
};
typedef void (*aclm_scan_progress_fn)(void *ctx, const struct aclm_scan_progress *p);

int aclm_scan_run(struct aclm_scan *s, const struct aclm_scan_source *src,
                  aclm_scan_result_fn on_result, aclm_scan_progress_fn on_progress, void *ctx);

/* --- findings ------------------------------------------------------------ */

enum aclm_severity {
	ACLM_SEV_INFO = 0,
	ACLM_SEV_LOW,
	ACLM_SEV_MEDIUM,
	ACLM_SEV_HIGH,
	ACLM_SEV_CRITICAL,
};
const char *aclm_severity_name(enum aclm_severity s);
int aclm_severity_parse(const char *s, enum aclm_severity *out);

/* Finding types (stable names, stored). */
#define ACLM_FIND_UNREACHABLE      "unreachable"
#define ACLM_FIND_UNRESOLVED       "unresolved"
#define ACLM_FIND_NOT_TLS          "not-tls"
#define ACLM_FIND_EXPIRED          "expired"
#define ACLM_FIND_NOT_YET_VALID    "not-yet-valid"
#define ACLM_FIND_UNMANAGED        "unmanaged"
#define ACLM_FIND_HOSTNAME         "hostname-mismatch"
#define ACLM_FIND_UNTRUSTED        "untrusted"
#define ACLM_FIND_SELF_SIGNED      "self-signed"
#define ACLM_FIND_INCOMPLETE       "incomplete-chain"
#define ACLM_FIND_WEAK_KEY         "weak-key"
#define ACLM_FIND_SHA1             "sha1-signature"
#define ACLM_FIND_VALIDITY         "validity-too-long"
#define ACLM_FIND_KEY_REUSE        "key-reuse"
#define ACLM_FIND_WILDCARD         "wildcard-overuse"
#define ACLM_FIND_NO_PQ            "no-pq-group"
#define ACLM_FIND_CHANGED          "certificate-changed"

/* Known types, for filters: NULL-terminated. */
extern const char *const aclm_scan_finding_types[];

struct aclm_finding {
	const char *type;
	enum aclm_severity severity;
	int cert_index;             /* index into the result's chain, -1 for none */
	char detail[320];
};

typedef int (*aclm_finding_fn)(void *ctx, const struct aclm_finding *f);

/* Findings of one endpoint on its own (not unmanaged/changed/key reuse/
 * wildcard, which need the inventory), at time now. */
int aclm_scan_endpoint_findings(const struct aclm_scan_result *r, int64_t now,
                                aclm_finding_fn fn, void *ctx);

/* The CA/Browser Forum maximum validity (days) for a certificate issued at
 * not_before: 398; 200 from 2026-03-15; 100 from 2027-03-15; 47 from
 * 2029-03-15. */
int aclm_scan_max_validity_days(int64_t not_before);

#endif
