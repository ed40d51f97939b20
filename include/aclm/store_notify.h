/* Alerting in the store (migration 4): channels (where to send), rules
 * (what to watch) and alerts (one row per notification, retried in place).
 *
 * A channel's config is a JSON text whose secrets are sealed by the notify
 * module before they get here; the store never sees them in plain text.
 * Changes to channels and rules are one transaction with their audit event
 * ("alert.channel.added", ...); `actor` names who did it. */
#ifndef ACLM_STORE_NOTIFY_H
#define ACLM_STORE_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

#include "aclm/store.h"

struct aclm_alert_channel {
	int64_t id;
	char *name;
	char *kind;                 /* email, webhook, slack, dingtalk, wecom, feishu */
	char *config;               /* JSON text */
	int64_t created_at;
};
void aclm_alert_channel_clear(struct aclm_alert_channel *c);

/* ACLM_ERR_EXISTS when the name is taken. */
int aclm_store_alert_channel_add(struct aclm_store *st, const char *actor, const char *name,
                                 const char *kind, const char *config, int64_t *id);
/* By name, or by id when ref is all digits; ACLM_ERR_NOTFOUND. */
int aclm_store_alert_channel_get(struct aclm_store *st, const char *ref,
                                 struct aclm_alert_channel *out);
int aclm_store_alert_channel_get_id(struct aclm_store *st, int64_t id,
                                    struct aclm_alert_channel *out);
typedef int (*aclm_alert_channel_fn)(void *ctx, const struct aclm_alert_channel *c);
int aclm_store_alert_channel_list(struct aclm_store *st, aclm_alert_channel_fn fn, void *ctx);
/* Refused (ACLM_ERR_USAGE) while a rule sends to the channel. */
int aclm_store_alert_channel_delete(struct aclm_store *st, const char *actor, const char *ref);

struct aclm_alert_rule {
	int64_t id;
	char *name;
	char *kind;                 /* expiry, renewal-failed, cert-changed, ghost, unreachable */
	char *params;               /* JSON text */
	int64_t channel_id;         /* 0: none (its channel was deleted) */
	char *channel;              /* the channel's name, NULL when none */
	int64_t renotify_seconds;   /* 0: never again for the same key */
	bool enabled;
	int64_t created_at;
};
void aclm_alert_rule_clear(struct aclm_alert_rule *r);

int aclm_store_alert_rule_add(struct aclm_store *st, const char *actor,
                              const struct aclm_alert_rule *r, int64_t *id);
typedef int (*aclm_alert_rule_fn)(void *ctx, const struct aclm_alert_rule *r);
int aclm_store_alert_rule_list(struct aclm_store *st, aclm_alert_rule_fn fn, void *ctx);
int aclm_store_alert_rule_delete(struct aclm_store *st, const char *actor, const char *ref);

/* --- alerts ---------------------------------------------------------- */

/* Inside a transaction: serialise "look up the newest alert, then insert"
 * across processes (PostgreSQL advisory lock; SQLite's write lock). */
int aclm_store_alert_lock(struct aclm_store *st);

/* The newest alert with this key: *found, its creation time and state. */
int aclm_store_alert_latest(struct aclm_store *st, const char *dedup_key, bool *found,
                            int64_t *created_at, char state[16]);

struct aclm_alert_new {
	int64_t rule_id;
	int64_t channel_id;
	const char *dedup_key;
	const char *target;
	const char *subject;
	const char *message;
	int64_t now;                /* created_at, and due at once */
};
int aclm_store_alert_add(struct aclm_store *st, const struct aclm_alert_new *a, int64_t *id);

struct aclm_alert_row {
	int64_t id;
	int64_t rule_id, channel_id;  /* 0: deleted */
	const char *rule;             /* NULL when deleted */
	const char *rule_kind;        /* NULL when deleted */
	const char *channel;          /* NULL when deleted */
	const char *dedup_key, *target, *subject, *message;
	const char *state;            /* pending, sent, failed */
	int attempts;
	const char *last_error;       /* NULL when none */
	const char *attempt_log;      /* JSON array */
	int64_t next_attempt_at, created_at, sent_at;
};
struct aclm_alert_filter {
	const char *state;            /* NULL: any */
	bool due_only;                /* pending with next_attempt_at <= due_at, oldest first */
	int64_t due_at;
	int64_t limit;                /* 0: no limit */
	int64_t offset;
};
/* Newest first (due_only: oldest first); strings valid during the call. */
typedef int (*aclm_alert_fn)(void *ctx, const struct aclm_alert_row *a);
int aclm_store_alert_list(struct aclm_store *st, const struct aclm_alert_filter *f,
                          aclm_alert_fn fn, void *ctx);
int aclm_store_alert_count(struct aclm_store *st, const struct aclm_alert_filter *f,
                           int64_t *n);

/* Take a due alert for delivery: moves next_attempt_at from `was` to
 * lease_until; *claimed false when another process took it first. */
int aclm_store_alert_claim(struct aclm_store *st, int64_t id, int64_t was, int64_t lease_until,
                           bool *claimed);
/* The result of one attempt: new state, attempts, error (NULL on success),
 * the attempt log (JSON), when to try again, when sent; with its audit event
 * (alert.sent or alert.failed, detail detail_json) in one transaction. */
struct aclm_alert_result {
	const char *state;
	int attempts;
	const char *last_error;
	const char *attempt_log;
	int64_t next_attempt_at;
	int64_t sent_at;
	const char *event_type;
	const char *event_detail;     /* JSON text */
};
int aclm_store_alert_result(struct aclm_store *st, int64_t id, const struct aclm_alert_result *r);

#endif
