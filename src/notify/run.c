/* Delivery of due alerts: claim, send through the channel, record the
 * attempt (retry with exponential backoff, or give up after max_attempts),
 * and the audit event alert.sent / alert.failed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "aclm/buf.h"
#include "aclm/config.h"
#include "aclm/err.h"
#include "aclm/keywrap.h"
#include "aclm/log.h"
#include "aclm/store_notify.h"
#include "aclm/str.h"
#include "aclm/timeutil.h"
#include "notify-int.h"

#define DUE_BATCH 100
#define MAX_BATCHES 100
#define MAX_BACKOFF 86400

void aclm_notify_opts_init(struct aclm_notify_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->max_attempts = 8;
	o->retry_base = 60;
	o->timeout = 30;
}

void aclm_notify_opts_from_config(const struct aclm_config *cfg, struct aclm_notify_opts *o)
{
	int64_t n = aclm_config_int(cfg, "alerts.max_attempts");

	aclm_notify_opts_init(o);
	o->max_attempts = n < 1 ? 1 : n > 20 ? 20 : (int)n;
	o->retry_base = aclm_config_duration(cfg, "alerts.retry_base");
	o->timeout = aclm_config_duration(cfg, "alerts.timeout");
	if (o->retry_base <= 0)
		o->retry_base = 60;
	if (o->timeout <= 0)
		o->timeout = 30;
	o->kek_env = getenv("ACLM_KEK");
	o->kek_file = aclm_config_str(cfg, "security.kek_file");
}

static void wipe_free(char *s)
{
	if (s != NULL) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

static int send_email(const char *channel, json_t *cfg, const struct aclm_notify_msg *m,
                      const struct aclm_notify_opts *o, struct aclm_kek *kek, bool *have_kek,
                      int64_t now)
{
	const char *to[32];
	json_t *arr = json_object_get(cfg, "to"), *v;
	struct notify_smtp smtp = {
		.url = json_string_value(json_object_get(cfg, "url")),
		.from = json_string_value(json_object_get(cfg, "from")),
		.to = to,
		.username = json_string_value(json_object_get(cfg, "username")),
		.ca_file = json_string_value(json_object_get(cfg, "ca_file")),
	};
	char *password = NULL, host[128] = "localhost", msgid[256];
	unsigned char rnd[8];
	char rnd_hex[17];
	struct aclm_buf msg;
	size_t i;
	int rc;

	json_array_foreach(arr, i, v) {
		if (smtp.n_to < sizeof(to) / sizeof(to[0]) && json_is_string(v))
			to[smtp.n_to++] = json_string_value(v);
	}
	if (smtp.url == NULL || smtp.from == NULL || smtp.n_to == 0)
		return aclm_error(ACLM_ERR_CONFIG, "channel '%s': incomplete e-mail settings (url, from, "
		                  "to)", channel);
	if ((rc = notify_channel_secret(channel, cfg, "password", o, kek, have_kek, &password)) !=
	    ACLM_OK)
		return rc;
	smtp.password = password;
	if (gethostname(host, sizeof(host) - 1) != 0 || strpbrk(host, "<>@ \r\n") != NULL)
		aclm_strlcpy(host, "localhost", sizeof(host));
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		wipe_free(password);
		return aclm_error_openssl(ACLM_ERR_CRYPTO, "random Message-ID");
	}
	aclm_hex_encode(rnd, sizeof(rnd), rnd_hex);
	snprintf(msgid, sizeof(msgid), "aclm-alert-%lld-%s@%s", (long long)m->alert_id, rnd_hex, host);
	aclm_buf_init(&msg, 4u << 20);   /* reports (aclm report --send) are long */
	rc = aclm_notify_build_email(smtp.from, to, smtp.n_to, m->subject, m->text, now, msgid, &msg);
	if (rc == ACLM_OK)
		rc = notify_deliver_email(&smtp, aclm_buf_cstr(&msg), msg.len, o->timeout, o->stop);
	aclm_buf_free(&msg);
	wipe_free(password);
	return rc;
}

int notify_send(const char *channel_name, const char *kind, const char *config_text,
                const struct aclm_notify_msg *m, const struct aclm_notify_opts *o,
                struct aclm_kek *kek, bool *have_kek, int64_t now)
{
	json_t *cfg = json_loads(config_text != NULL ? config_text : "{}", 0, NULL);
	char *secret = NULL;
	int rc;

	if (cfg == NULL || !json_is_object(cfg)) {
		json_decref(cfg);
		return aclm_error(ACLM_ERR_CONFIG, "channel '%s': stored settings are not a JSON "
		                  "object", channel_name);
	}
	if (strcmp(kind, "email") == 0) {
		rc = send_email(channel_name, cfg, m, o, kek, have_kek, now);
	} else {
		struct aclm_notify_post post;
		rc = notify_channel_secret(channel_name, cfg, "secret", o, kek, have_kek, &secret);
		if (rc == ACLM_OK)
			rc = aclm_notify_build_post(kind, json_string_value(json_object_get(cfg, "url")),
			                            secret, m, now, &post);
		if (rc == ACLM_OK) {
			rc = notify_deliver_post(kind, &post, json_string_value(json_object_get(cfg, "ca_file")),
			                         o->timeout, o->stop);
			aclm_notify_post_clear(&post);
		}
		wipe_free(secret);
	}
	json_decref(cfg);
	return rc;
}

/* --- due alerts ----------------------------------------------------------------- */

static int collect_due(void *ctx, const struct aclm_alert_row *a)
{
	json_t *arr = ctx;
	json_t *o = json_pack("{s:I,s:I,s:I,s:s?,s:s?,s:s?,s:s,s:s,s:s,s:i,s:s,s:I,s:I}",
	                      "id", (json_int_t)a->id, "rule_id", (json_int_t)a->rule_id,
	                      "channel_id", (json_int_t)a->channel_id, "rule", a->rule,
	                      "kind", a->rule_kind, "channel", a->channel,
	                      "target", a->target ? a->target : "", "subject", a->subject,
	                      "text", a->message, "attempts", a->attempts,
	                      "attempt_log", a->attempt_log, "next", (json_int_t)a->next_attempt_at,
	                      "created", (json_int_t)a->created_at);

	if (o == NULL || json_array_append_new(arr, o) != 0)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	return ACLM_OK;
}

static int64_t backoff(const struct aclm_notify_opts *o, int attempts)
{
	int64_t wait = o->retry_base > 0 ? o->retry_base : 60;

	for (int i = 1; i < attempts && wait < MAX_BACKOFF; i++)
		wait *= 2;
	return wait < MAX_BACKOFF ? wait : MAX_BACKOFF;
}

/* *send_failed: this attempt was made and failed (the channel is then
 * left alone for the rest of the run). */
static int deliver_one(struct aclm_store *st, json_t *a, const struct aclm_notify_opts *o,
                       struct aclm_kek *kek, bool *have_kek, struct aclm_notify_stats *stats,
                       bool *send_failed)
{
	int64_t id = json_integer_value(json_object_get(a, "id"));
	int64_t channel_id = json_integer_value(json_object_get(a, "channel_id"));
	int attempts = (int)json_integer_value(json_object_get(a, "attempts")) + 1;
	int64_t now = aclm_now();
	struct aclm_alert_channel ch;
	struct aclm_notify_msg m = {
		.alert_id = id,
		.rule = json_string_value(json_object_get(a, "rule")),
		.kind = json_string_value(json_object_get(a, "kind")),
		.target = json_string_value(json_object_get(a, "target")),
		.subject = json_string_value(json_object_get(a, "subject")),
		.text = json_string_value(json_object_get(a, "text")),
		.created_at = json_integer_value(json_object_get(a, "created")),
	};
	struct aclm_alert_result res = { 0 };
	char error[NOTIFY_MAX_ERROR + 1] = "";
	json_t *log = NULL, *detail = NULL;
	char *log_text = NULL, *detail_text = NULL;
	bool claimed = false, final = false;
	int rc, sent_rc;

	memset(&ch, 0, sizeof(ch));
	if ((rc = aclm_store_alert_claim(st, id, json_integer_value(json_object_get(a, "next")),
	                                 now + (o->timeout > 0 ? o->timeout : 30) + 60,
	                                 &claimed)) != ACLM_OK || !claimed)
		return rc;
	if (channel_id == 0) {
		sent_rc = aclm_error(ACLM_ERR_NOTFOUND, "its channel was deleted");
		final = true;
	} else if ((sent_rc = aclm_store_alert_channel_get_id(st, channel_id, &ch)) == ACLM_OK) {
		sent_rc = notify_send(ch.name, ch.kind, ch.config, &m, o, kek, have_kek, now);
	} else if (sent_rc == ACLM_ERR_NOTFOUND) {
		final = true;
	}
	if (sent_rc != ACLM_OK) {
		json_t *probe;
		aclm_strlcpy(error, aclm_errmsg(), sizeof(error));
		/* A hostile receiver's text must not break the row (PostgreSQL
		 * refuses invalid UTF-8): keep it only when it is valid. */
		if ((probe = json_string(error)) == NULL) {
			for (char *p = error; *p != '\0'; p++)
				if ((unsigned char)*p >= 0x80)
					*p = '?';
		}
		json_decref(probe);
	}
	*send_failed = sent_rc != ACLM_OK;
	now = aclm_now();
	log = json_loads(json_string_value(json_object_get(a, "attempt_log")), 0, NULL);
	if (!json_is_array(log)) {
		json_decref(log);
		log = json_array();
	}
	if (sent_rc != ACLM_OK) {
		json_t *entry = json_pack("{s:I,s:i,s:s}", "at", (json_int_t)now, "attempt", attempts,
		                          "error", error);
		if (entry == NULL)  /* not UTF-8 */
			entry = json_pack("{s:I,s:i,s:s}", "at", (json_int_t)now, "attempt", attempts,
			                  "error", "(error text not UTF-8)");
		json_array_append_new(log, entry);
	}
	log_text = json_dumps(log, JSON_COMPACT);
	if (sent_rc == ACLM_OK) {
		res.state = "sent";
		res.sent_at = now;
		res.event_type = "alert.sent";
		detail = json_pack("{s:s?,s:s?,s:s?,s:s,s:i}", "rule", m.rule, "channel", ch.name,
		                   "kind", ch.kind, "subject", m.subject ? m.subject : "",
		                   "attempts", attempts);
		stats->sent++;
		aclm_info("alert %lld sent through channel '%s' (%s)", (long long)id, ch.name, ch.kind);
	} else {
		final = final || attempts >= o->max_attempts;
		res.state = final ? "failed" : "pending";
		res.last_error = error;
		res.next_attempt_at = final ? 0 : now + backoff(o, attempts);
		res.event_type = "alert.failed";
		detail = json_pack("{s:s?,s:s?,s:s,s:i,s:b,s:I}", "rule", m.rule, "channel", ch.name,
		                   "error", error, "attempt", attempts, "final", final,
		                   "next_attempt_at", (json_int_t)res.next_attempt_at);
		stats->failed++;
		if (final)
			stats->given_up++;
		aclm_warn("alert %lld: delivery attempt %d failed: %s%s", (long long)id, attempts, error,
		          final ? " (giving up)" : "");
	}
	res.attempts = attempts;
	res.attempt_log = log_text != NULL ? log_text : "[]";
	detail_text = detail != NULL ? json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	res.event_detail = detail_text;
	rc = aclm_store_alert_result(st, id, &res);
	free(log_text);
	free(detail_text);
	json_decref(log);
	json_decref(detail);
	aclm_alert_channel_clear(&ch);
	return rc;
}

int aclm_notify_deliver_due(struct aclm_store *st, const struct aclm_notify_opts *o, int64_t now,
                            struct aclm_notify_stats *stats)
{
	struct aclm_alert_filter f = { .due_only = true, .due_at = now, .limit = DUE_BATCH };
	struct aclm_kek kek;
	bool have_kek = false;
	size_t n_batch = DUE_BATCH;
	json_t *failed_channels = json_object();
	int rc = ACLM_OK;

	memset(&kek, 0, sizeof(kek));
	if (failed_channels == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	/* Batches until none is full.  Every alert of a batch leaves the due
	 * set (sent, failed, retried later, or claimed by someone else: its
	 * next_attempt_at moves to the future) except those of a channel that
	 * failed earlier in this run: they wait for the next run (a dead SMTP
	 * server costs one timeout per run, not one per alert) and are skipped
	 * by the offset.  A bound on the batches keeps one run finite. */
	for (int batch = 0; rc == ACLM_OK && n_batch == DUE_BATCH && batch < MAX_BATCHES; batch++) {
		json_t *due = json_array(), *a;
		size_t i;
		if (due == NULL) {
			rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
			break;
		}
		rc = aclm_store_alert_list(st, &f, collect_due, due);
		n_batch = json_array_size(due);
		json_array_foreach(due, i, a) {
			char ch_key[32];
			bool send_failed = false;
			if (rc != ACLM_OK || (o->stop != NULL && *o->stop))
				break;
			snprintf(ch_key, sizeof(ch_key), "%lld",
			         (long long)json_integer_value(json_object_get(a, "channel_id")));
			if (json_object_get(failed_channels, ch_key) != NULL) {
				f.offset++;
				stats->deferred++;
				continue;
			}
			rc = deliver_one(st, a, o, &kek, &have_kek, stats, &send_failed);
			if (send_failed)
				json_object_set_new(failed_channels, ch_key, json_true());
		}
		json_decref(due);
		if (o->stop != NULL && *o->stop)
			break;
	}
	if (have_kek)
		aclm_kek_wipe(&kek);
	json_decref(failed_channels);
	return rc;
}

int aclm_notify_run(struct aclm_store *st, const struct aclm_notify_opts *o,
                    struct aclm_notify_stats *stats)
{
	int rc = aclm_notify_evaluate(st, aclm_now(), stats);
	int rc2;
	char saved[512];

	/* Deliver what is due even when a rule failed; report the first error. */
	aclm_strlcpy(saved, aclm_errmsg(), sizeof(saved));
	rc2 = aclm_notify_deliver_due(st, o, aclm_now(), stats);
	if (rc != ACLM_OK) {
		aclm_error(rc, "%s", saved);
		return rc;
	}
	return rc2;
}

int aclm_notify_test_channel(struct aclm_store *st, const char *channel_ref,
                             const struct aclm_notify_opts *o)
{
	struct aclm_alert_channel ch;
	struct aclm_kek kek;
	bool have_kek = false;
	int64_t now = aclm_now();
	struct aclm_notify_msg m = {
		.rule = "test",
		.kind = "test",
		.target = "test",
		.subject = "[aclm] test message",
		.text = "This is a test message from aclm: the channel works.",
		.created_at = now,
	};
	int rc;

	memset(&kek, 0, sizeof(kek));
	if ((rc = aclm_store_alert_channel_get(st, channel_ref, &ch)) != ACLM_OK)
		return rc;
	rc = notify_send(ch.name, ch.kind, ch.config, &m, o, &kek, &have_kek, now);
	if (have_kek)
		aclm_kek_wipe(&kek);
	aclm_alert_channel_clear(&ch);
	return rc;
}
