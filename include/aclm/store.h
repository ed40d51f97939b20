/* The inventory: one C API over two backends, SQLite and PostgreSQL.
 *
 * URLs: "sqlite:PATH" (also a bare path), "postgres://..." / "postgresql://..."
 * (any libpq connection URI).  Opening runs the numbered migrations unless
 * told not to, and refuses a database whose schema is newer than this binary.
 *
 * Every function that writes several rows does so in one transaction; callers
 * may also wrap many calls in aclm_store_begin()/commit() for speed (nested
 * begin calls are counted, only the outermost commits). */
#ifndef ACLM_STORE_H
#define ACLM_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aclm/x509.h"

struct aclm_store;

enum aclm_source {
	ACLM_SRC_IMPORT = 0,
	ACLM_SRC_SCAN,
	ACLM_SRC_ACME,
	ACLM_SRC_CA,
};
const char *aclm_source_name(enum aclm_source s); /* "import","scan","acme","ca" */

struct aclm_store_opts {
	int busy_timeout_ms;  /* SQLite busy timeout; 0 = default 5000 */
	bool no_migrate;      /* open without migrating (for `aclm db status`) */
};

int aclm_store_open(const char *url, const struct aclm_store_opts *opts, struct aclm_store **out);
void aclm_store_close(struct aclm_store *st);
const char *aclm_store_backend(const struct aclm_store *st); /* "sqlite" or "postgres" */

/* Schema version of this binary, and of the open database (0 = empty). */
int aclm_store_code_version(void);
int aclm_store_schema_version(struct aclm_store *st, int *version);
/* Apply pending migrations, each in its own transaction. */
int aclm_store_migrate(struct aclm_store *st, int *from, int *to);
/* The same, and how many migrations it applied: a version missing below
 * the newest recorded one is applied without changing *to. */
int aclm_store_migrate_count(struct aclm_store *st, int *from, int *to, int *applied);

int aclm_store_begin(struct aclm_store *st);
int aclm_store_commit(struct aclm_store *st);
int aclm_store_rollback(struct aclm_store *st);

/* --- certificates and keys ------------------------------------------- */

/* Insert a certificate if its fingerprint is new: the certificate row, its
 * key row (by SPKI SHA-256, shared by every certificate with that key), its
 * names, the link to its issuer when the issuer is known (and of any stored
 * certificates this one issued), and a "cert.added" event; all in one
 * transaction.  Existing: nothing changes.  *id gets the row id either way. */
int aclm_store_put_cert(struct aclm_store *st, const struct aclm_cert *c,
                        int64_t *id, bool *is_new);

/* Store a sealed private key (see keywrap.h) on the key row with this SPKI.
 * ACLM_ERR_NOTFOUND if no certificate with that key is stored.
 * *stored is false when the row had a private key already (kept as is). */
int aclm_store_put_private_key(struct aclm_store *st, const char spki_hex[65],
                               const unsigned char *sealed, size_t sealed_len,
                               bool *stored);
/* The sealed private key for this SPKI; ACLM_ERR_NOTFOUND if none. */
int aclm_store_get_private_key(struct aclm_store *st, const char spki_hex[65],
                               unsigned char **sealed, size_t *sealed_len);

/* Record that a certificate was seen: at a path (import), an endpoint
 * "host:port" (scan), ... at time `when`. */
int aclm_store_add_observation(struct aclm_store *st, int64_t cert_id,
                               enum aclm_source source, const char *location,
                               int64_t when);

/* Certificates seen together at one location (a file): the same as
 * aclm_store_put_cert() and aclm_store_add_observation() for each in turn,
 * in one transaction; ids[i] and is_new[i] as put_cert gives them (the
 * same certificate twice is new once, then known).  On PostgreSQL a bundle
 * is written with a few multi-row statements per thousand certificates. */
int aclm_store_import_certs(struct aclm_store *st, struct aclm_cert *const *certs, size_t n,
                            enum aclm_source source, const char *location, int64_t when,
                            int64_t *ids, bool *is_new);

/* --- listing -------------------------------------------------------- */

enum aclm_cert_sort {
	ACLM_SORT_NOT_AFTER = 0,  /* default: soonest expiry first */
	ACLM_SORT_NOT_BEFORE,
	ACLM_SORT_SUBJECT,
	ACLM_SORT_ISSUER,
	ACLM_SORT_KEY,
	ACLM_SORT_ID,
};

struct aclm_cert_filter {
	int64_t now;              /* reference time for expiring/expired */
	int64_t expiring_within;  /* > 0: not_after in [now, now + this) */
	bool expired;             /* not_after < now */
	bool valid;               /* not_before <= now <= not_after */
	const char *key_type;     /* "rsa","ec","ecdsa","ed25519","ed448","sm2","dsa", or with
	                             size: "rsa2048", "ec256", "p256", "p384", "p521" */
	const char *issuer;       /* case-insensitive substring of the issuer DN */
	const char *name;         /* DNS/IP/email SAN (or CN) match; wildcards honoured both
	                             ways: "a.example.com" finds "*.example.com" and
	                             "*.example.com" finds "a.example.com" */
	const char *level;        /* "dv","ov","iv","ev" */
	bool ca_only, leaf_only;
	enum aclm_cert_sort sort;
	bool descending;
	bool summary;             /* read only what a one-line summary shows: id,
	                             not_after, key type and bits, level,
	                             list_name and list_issuer; the other fields
	                             are empty, NULL or 0 */
	int64_t limit;            /* 0 = no limit */
	int64_t offset;
};

struct aclm_cert_row {
	int64_t id;
	char fingerprint[65];
	char spki[65];
	const char *subject;
	const char *issuer;
	const char *subject_cn;   /* may be NULL */
	const char *issuer_cn;    /* may be NULL */
	const char *serial;
	int64_t not_before;
	int64_t not_after;
	const char *key_type;     /* "rsa","ec","sm2","ed25519",... */
	int key_bits;
	const char *curve;        /* may be NULL */
	const char *sig_alg;
	const char *level;        /* "" when none */
	const char *sans;         /* "DNS:a.example,IP:10.0.0.1" (may be "") */
	bool is_ca;
	int64_t issuer_id;        /* 0 when the issuer is not in the inventory */
	bool has_private_key;
	int64_t first_seen;
	int64_t last_seen;
	/* A one-line summary's name: the CN, else the first SAN's value, else
	 * the subject DN, with " (+N)" for N more SANs; and its issuer: the
	 * issuer's CN, else its DN.  Each cut to 200 bytes and "..." */
	const char *list_name;
	const char *list_issuer;
};

/* Calls fn for each matching row in order; the row's strings are valid only
 * during the call.  A non-zero return from fn stops the listing and is
 * returned. */
typedef int (*aclm_cert_row_fn)(void *ctx, const struct aclm_cert_row *row);
int aclm_store_list_certs(struct aclm_store *st, const struct aclm_cert_filter *f,
                          aclm_cert_row_fn fn, void *ctx);
int aclm_store_count_certs(struct aclm_store *st, const struct aclm_cert_filter *f,
                           int64_t *count);

/* Resolve "42" (row id) or a fingerprint / fingerprint prefix (>= 8 hex
 * digits, ':' allowed) to a row id.  ACLM_ERR_NOTFOUND, ACLM_ERR_AMBIGUOUS. */
int aclm_store_find_cert(struct aclm_store *st, const char *ref, int64_t *id);
/* One row by id (fn called once) — same row shape as the listing. */
int aclm_store_get_cert(struct aclm_store *st, int64_t id, aclm_cert_row_fn fn, void *ctx);
/* The DER of a certificate; caller frees *der. */
int aclm_store_get_cert_der(struct aclm_store *st, int64_t id,
                            unsigned char **der, size_t *der_len);

struct aclm_observation_row {
	int64_t id;
	int64_t cert_id;
	const char *source;
	const char *location;
	int64_t seen_at;
};
typedef int (*aclm_observation_fn)(void *ctx, const struct aclm_observation_row *row);
/* Observations of one certificate, newest first. */
int aclm_store_list_observations(struct aclm_store *st, int64_t cert_id,
                                 aclm_observation_fn fn, void *ctx);

/* Other certificates stored with the same key (SPKI), excluding cert_id. */
int aclm_store_list_same_key(struct aclm_store *st, int64_t cert_id,
                             aclm_cert_row_fn fn, void *ctx);

/* --- events (append-only, hash-chained audit log) -------------------- */

/* Append an event; hash = SHA-256(prev_hash | id | time | type | subject | detail).
 * detail is a JSON text or NULL. */
int aclm_store_append_event(struct aclm_store *st, const char *type,
                            const char *subject, const char *detail_json);
/* Recompute the chain; *n_events counts rows, *first_bad_id is 0 when intact. */
int aclm_store_verify_events(struct aclm_store *st, int64_t *n_events, int64_t *first_bad_id);

/* What aclm_store_audit_verify found wrong with one place of the chain. */
enum aclm_audit_problem {
	ACLM_AUDIT_EDITED = 0,     /* the row's contents do not give its hash */
	ACLM_AUDIT_DELETED,        /* ids first..last are missing */
	ACLM_AUDIT_REORDERED,      /* the row holds the record that was number `was` */
	ACLM_AUDIT_RELINKED,       /* intact row whose prev_hash is not its predecessor's hash */
};
struct aclm_audit_issue {
	enum aclm_audit_problem problem;
	int64_t id;                /* the row (EDITED, REORDERED, RELINKED); first missing id */
	int64_t last;              /* DELETED: last missing id */
	int64_t was;               /* REORDERED: the id the record was written with */
};
typedef int (*aclm_audit_issue_fn)(void *ctx, const struct aclm_audit_issue *issue);
/* Check every row and report each problem once, in id order.  *head_id and
 * head_hash give the last event (0 and "" when empty): an operator who keeps
 * them can later tell that events were cut from the end, which no chain can
 * show by itself. */
int aclm_store_audit_verify(struct aclm_store *st, aclm_audit_issue_fn fn, void *ctx,
                            int64_t *n_events, int64_t *head_id, char head_hash[65]);

/* The stored hash of event id; ACLM_ERR_NOTFOUND when there is none. */
int aclm_store_event_hash(struct aclm_store *st, int64_t id, char hash[65]);

struct aclm_event_row {
	int64_t id;
	int64_t at;
	const char *type;
	const char *subject;       /* may be NULL */
	const char *detail;        /* JSON text or NULL */
	const char *prev_hash;
	const char *hash;
};
typedef int (*aclm_event_fn)(void *ctx, const struct aclm_event_row *row);
/* Events with at >= since and id > after_id, oldest first; limit 0 = all. */
int aclm_store_list_events(struct aclm_store *st, int64_t since, int64_t after_id,
                           int64_t limit, aclm_event_fn fn, void *ctx);
/* The events about one subject (a certificate's fingerprint, a user's
 * name...), newest first; limit 0 = all. */
int aclm_store_list_events_about(struct aclm_store *st, const char *subject, int64_t limit,
                                 aclm_event_fn fn, void *ctx);

/* --- totals, for `aclm db status` and the listing footer -------------- */
struct aclm_store_stats {
	int64_t certificates;
	int64_t keys;
	int64_t private_keys;
	int64_t observations;
	int64_t endpoints;
	int64_t managed;
	int64_t events;
};
int aclm_store_stats(struct aclm_store *st, struct aclm_store_stats *out);

#endif
