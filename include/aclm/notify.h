/* Alerting: rules that watch the inventory, channels that carry alerts to
 * people (e-mail over SMTP with STARTTLS, signed webhooks, Slack, DingTalk,
 * WeCom and Feishu robots), de-duplication and retried delivery
 * (docs/internals/notify.md).
 *
 * A run evaluates every enabled rule (raising an alert row per new dedup
 * key, or again once the rule's renotify interval has passed) and then
 * delivers every due alert; a failed delivery is retried with exponential
 * backoff until max_attempts, each attempt recorded on the row and in the
 * audit log (alert.sent / alert.failed). */
#ifndef ACLM_NOTIFY_H
#define ACLM_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct aclm_store;
struct aclm_kek;
struct aclm_buf;
struct aclm_config;
struct aclm_alert_row;
struct aclm_alert_rule;
struct aclm_alert_channel;

/* Known kinds (NULL-terminated). */
extern const char *const aclm_notify_channel_kinds[]; /* email webhook slack dingtalk wecom feishu */
extern const char *const aclm_notify_rule_kinds[];    /* expiry renewal-failed cert-changed ghost
                                                         unreachable */
bool aclm_notify_channel_kind_valid(const char *kind);
bool aclm_notify_rule_kind_valid(const char *kind);
/* Check a rule's parameters (JSON object text): name (glob on certificate
 * names / endpoint hosts / managed names), issuer (substring), and per kind
 * days [30,14,7,1] and include_ca (expiry), all (cert-changed). */
int aclm_notify_rule_check(const char *kind, const char *params);

/* --- channel configuration ----------------------------------------------- */

/* Plain settings of a channel as a person gives them; secrets in plain
 * text only here, wiped by aclm_notify_channel_input_wipe(). */
struct aclm_notify_channel_input {
	const char *kind;
	const char *name;
	const char *url;            /* smtp://host:port, smtps://..., https://... */
	const char *from;           /* email */
	const char *const *to;      /* email recipients */
	size_t n_to;
	const char *username;       /* email: SMTP AUTH user */
	char *password;             /* email: SMTP AUTH password (wiped) */
	char *secret;               /* webhook/dingtalk/feishu: HMAC secret (wiped) */
	const char *ca_file;        /* PEM CA bundle to trust instead of the system's */
};
void aclm_notify_channel_input_wipe(struct aclm_notify_channel_input *in);

/* Check the settings and build the stored config (JSON text, malloc'd):
 * secrets are sealed with the KEK (AAD binds them to the channel name and
 * field); kek may be NULL when there is no secret. */
int aclm_notify_channel_config(const struct aclm_notify_channel_input *in,
                               const struct aclm_kek *kek, char **config);
/* The config for people: secrets replaced by "(sealed)", webhook URLs cut
 * to scheme://host[:port]/... (robot URLs carry access tokens). */
json_t *aclm_notify_channel_public(const char *kind, const char *config);
bool aclm_notify_channel_has_secret(const char *config);

/* --- payloads (pure; unit-tested) ----------------------------------------- */

struct aclm_notify_msg {
	int64_t alert_id;           /* 0 for a test message */
	const char *rule;           /* rule name, or "test" */
	const char *kind;           /* rule kind */
	const char *target;
	const char *subject;
	const char *text;
	int64_t created_at;
};

/* One HTTP POST of a webhook-like channel. */
#define ACLM_NOTIFY_MAX_HEADERS 4
struct aclm_notify_post {
	char *url;
	char *body;
	size_t body_len;
	char headers[ACLM_NOTIFY_MAX_HEADERS][160];
	size_t n_headers;
};
void aclm_notify_post_clear(struct aclm_notify_post *p);

/* Build the POST for kind (webhook, slack, dingtalk, wecom, feishu) at
 * time now (seconds; DingTalk signs milliseconds now*1000).  secret may be
 * NULL (no signature). */
int aclm_notify_build_post(const char *kind, const char *url, const char *secret,
                           const struct aclm_notify_msg *m, int64_t now,
                           struct aclm_notify_post *out);

/* HMAC-SHA256; hex (65 bytes) or base64 (45 bytes with NUL). */
int aclm_notify_hmac_hex(const void *key, size_t key_len, const void *data, size_t len,
                         char hex[65]);
/* DingTalk: base64(HMAC(secret, "<ts_ms>\n<secret>")), percent-encoded. */
int aclm_notify_dingtalk_sign(const char *secret, int64_t ts_ms, char *out, size_t n);
/* Feishu: base64(HMAC(key = "<ts>\n<secret>", data = "")). */
int aclm_notify_feishu_sign(const char *secret, int64_t ts, char *out, size_t n);

/* An RFC 5322 message (CRLF lines, UTF-8 body, RFC 2047 subject when not
 * ASCII).  Refuses CR/LF in header values. */
int aclm_notify_build_email(const char *from, const char *const *to, size_t n_to,
                            const char *subject, const char *text, int64_t now,
                            const char *message_id, struct aclm_buf *out);

/* Rows as JSON (secrets of a channel never included; see
 * aclm_notify_channel_public). */
json_t *aclm_notify_alert_json(const struct aclm_alert_row *a);
json_t *aclm_notify_rule_json(const struct aclm_alert_rule *r);
json_t *aclm_notify_channel_json(const struct aclm_alert_channel *c);

/* --- running -------------------------------------------------------------- */

struct aclm_notify_opts {
	int max_attempts;           /* per alert; 1..20 */
	int64_t retry_base;         /* seconds; the n-th retry waits base * 2^(n-1), at most a day */
	int64_t timeout;            /* seconds per delivery */
	const char *kek_env;        /* $ACLM_KEK, may be NULL */
	const char *kek_file;       /* security.kek_file */
	const volatile int *stop;   /* non-zero: abandon deliveries in flight (server shutdown) */
};
void aclm_notify_opts_init(struct aclm_notify_opts *o);
/* From alerts.max_attempts, alerts.retry_base, alerts.timeout,
 * security.kek_file and $ACLM_KEK. */
void aclm_notify_opts_from_config(const struct aclm_config *cfg, struct aclm_notify_opts *o);

struct aclm_notify_stats {
	int64_t raised;             /* new alert rows */
	int64_t suppressed;         /* matches within the renotify interval */
	int64_t sent;
	int64_t failed;             /* attempts that failed (retried or given up) */
	int64_t given_up;
	int64_t deferred;           /* not tried: their channel failed earlier in the run */
};

/* Evaluate every enabled rule at time now; raise alerts. */
int aclm_notify_evaluate(struct aclm_store *st, int64_t now, struct aclm_notify_stats *stats);
/* Deliver every alert due at now. */
int aclm_notify_deliver_due(struct aclm_store *st, const struct aclm_notify_opts *o, int64_t now,
                            struct aclm_notify_stats *stats);
/* Both. */
int aclm_notify_run(struct aclm_store *st, const struct aclm_notify_opts *o,
                    struct aclm_notify_stats *stats);
/* Send a test message through a channel now (no alert row); the error
 * says what failed. */
int aclm_notify_test_channel(struct aclm_store *st, const char *channel_ref,
                             const struct aclm_notify_opts *o);

/* A background thread with its own store connection that runs
 * aclm_notify_run() each time it is kicked (aclm server's timer). */
struct aclm_notify_worker;
int aclm_notify_worker_start(const char *store_url, const struct aclm_notify_opts *o,
                             struct aclm_notify_worker **out);
/* Never blocks; a kick while a run is in progress starts one more after it. */
void aclm_notify_worker_kick(struct aclm_notify_worker *w);
/* Abandons deliveries in flight and joins the thread. */
void aclm_notify_worker_stop(struct aclm_notify_worker *w);

#endif
