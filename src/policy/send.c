/* Reports and violations as alerts on an alert channel (src/notify's
 * public API): queued as alert rows whose delivery, retries and audit are
 * the alert machinery's.  Callable from the CLI and from a scheduler. */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "aclm/buf.h"
#include "aclm/err.h"
#include "aclm/store_notify.h"
#include "aclm/str.h"
#include "aclm/timeutil.h"
#include "policy-int.h"

/* At most this many subjects are listed in one violations alert. */
#define ALERT_MAX_SUBJECTS 100
#define MESSAGE_MAX ((size_t)1 << 20)

/* Add the alert unless one with this key exists and, with every > 0, is
 * younger than every (every 0: the key alone decides). */
static int queue(struct aclm_store *st, const struct aclm_alert_channel *ch, const char *key,
                 int64_t every, const char *target, const char *subject, const char *text,
                 int64_t now, int64_t *alert_id)
{
	struct aclm_alert_new a = {
		.channel_id = ch->id, .dedup_key = key, .target = target, .subject = subject,
		.message = text, .now = now,
	};
	char state[16];
	int64_t created = 0;
	bool found = false;
	int rc;

	if ((rc = aclm_store_alert_latest(st, key, &found, &created, state)) != ACLM_OK)
		return rc;
	if (found && (every <= 0 || created > now - every))
		return ACLM_OK;
	return aclm_store_alert_add(st, &a, alert_id);
}

int aclm_report_send(struct aclm_store *st, enum aclm_report_kind kind,
                     const struct aclm_policy *policy, const char *channel, int64_t every,
                     int64_t now, int64_t *alert_id)
{
	struct aclm_alert_channel ch;
	struct aclm_buf text;
	char key[256], subject[160], date[16];
	int rc;

	*alert_id = 0;
	memset(&ch, 0, sizeof(ch));
	if ((rc = aclm_store_alert_channel_get(st, channel, &ch)) != ACLM_OK)
		return rc;
	/* One key per period: a daily run with every = 7d sends weekly. */
	snprintf(key, sizeof(key), "report:%s:%s:%lld", aclm_report_kind_name(kind), ch.name,
	         (long long)(every > 0 ? now / every : now));
	aclm_time_date(now, date, sizeof(date));
	snprintf(subject, sizeof(subject), "aclm %s report %s", aclm_report_kind_name(kind), date);
	aclm_buf_init(&text, MESSAGE_MAX);
	rc = aclm_report_text(st, kind, policy, now, 200, &text);
	if (rc == ACLM_OK)
		rc = queue(st, &ch, key, 0, aclm_report_kind_name(kind), subject, aclm_buf_cstr(&text),
		           now, alert_id);
	aclm_buf_free(&text);
	aclm_alert_channel_clear(&ch);
	return rc;
}

int aclm_policy_alert(struct aclm_store *st, const struct aclm_policy_result *res,
                      const char *channel, int64_t every, int64_t now, int64_t *alert_id)
{
	struct aclm_alert_channel ch;
	struct aclm_buf text;
	EVP_MD_CTX *md = NULL;
	unsigned char digest[32];
	char hex[65], key[256], subject[200];
	size_t listed = 0;
	int rc;

	*alert_id = 0;
	memset(&ch, 0, sizeof(ch));
	if ((rc = aclm_store_alert_channel_get(st, channel, &ch)) != ACLM_OK)
		return rc;
	md = EVP_MD_CTX_new();
	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(md);
		aclm_alert_channel_clear(&ch);
		return aclm_error(ACLM_ERR_CRYPTO, "SHA-256 unavailable");
	}
	aclm_buf_init(&text, MESSAGE_MAX);
	rc = aclm_buf_printf(&text, "Policy %s: %lld of %lld certificates, %lld of %lld endpoints, "
	                     "%lld of %lld sites violate it (%lld violations).\n\n", res->policy,
	                     (long long)res->n_violating[0], (long long)res->n_total[0],
	                     (long long)res->n_violating[1], (long long)res->n_total[1],
	                     (long long)res->n_violating[2], (long long)res->n_total[2],
	                     (long long)res->n_violations);
	/* The key hashes the set of violating subjects and their rules: a new
	 * or fixed violation changes it. */
	for (size_t i = 0; rc == ACLM_OK && i < res->n; i++) {
		const struct aclm_policy_subject *s = &res->subjects[i];
		char line[128];
		if (s->n_v == 0)
			continue;
		snprintf(line, sizeof(line), "%s:%lld:%.80s:", aclm_subject_kind_name(s->kind),
		         (long long)s->id, s->kind == ACLM_SUBJECT_SITE ? s->label : "");
		EVP_DigestUpdate(md, line, strlen(line));
		for (size_t k = 0; k < s->n_v; k++)
			EVP_DigestUpdate(md, s->v[k].rule, strlen(s->v[k].rule) + 1);
		if (listed++ >= ALERT_MAX_SUBJECTS)
			continue;
		rc = aclm_buf_printf(&text, "%s %s\n", aclm_subject_kind_name(s->kind), s->label);
		for (size_t k = 0; rc == ACLM_OK && k < s->n_v; k++)
			rc = aclm_buf_printf(&text, "  %s: %s\n", s->v[k].rule, s->v[k].detail);
	}
	if (rc == ACLM_OK && listed > ALERT_MAX_SUBJECTS)
		rc = aclm_buf_printf(&text, "... and %zu more (aclm policy check)\n",
		                     listed - ALERT_MAX_SUBJECTS);
	EVP_DigestFinal_ex(md, digest, NULL);
	EVP_MD_CTX_free(md);
	if (rc == ACLM_OK && listed > 0) {
		aclm_hex_encode(digest, 16, hex);
		snprintf(key, sizeof(key), "policy:%s:%s:%s", res->policy, ch.name, hex);
		snprintf(subject, sizeof(subject), "aclm: %zu subject%s violate policy %s", listed,
		         listed > 1 ? "s" : "", res->policy);
		rc = queue(st, &ch, key, every, res->policy, subject, aclm_buf_cstr(&text), now,
		           alert_id);
	}
	aclm_buf_free(&text);
	aclm_alert_channel_clear(&ch);
	return rc;
}
