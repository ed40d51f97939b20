/* Alerting rows: channels, rules, alerts (include/aclm/store_notify.h).
 * Same rules as store.c: every statement once, '?' placeholders, portable
 * SQL; parameters compared with a parameter are CAST for PostgreSQL. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "aclm/err.h"
#include "aclm/str.h"
#include "aclm/store_notify.h"
#include "aclm/timeutil.h"
#include "store-int.h"

static const char SQL_CHANNEL_ADD[] =
	"INSERT INTO alert_channels (name, kind, config, created_at) VALUES (?, ?, ?, ?) "
	"RETURNING id";
#define CHANNEL_COLS "SELECT id, name, kind, config, created_at FROM alert_channels"
static const char SQL_CHANNEL_BY_NAME[] = CHANNEL_COLS " WHERE name = ?";
static const char SQL_CHANNEL_BY_ID[] = CHANNEL_COLS " WHERE id = ?";
static const char SQL_CHANNEL_LIST[] = CHANNEL_COLS " ORDER BY name";
static const char SQL_CHANNEL_USERS[] =
	"SELECT name FROM alert_rules WHERE channel_id = ? ORDER BY name LIMIT 1";
static const char SQL_CHANNEL_DEL[] = "DELETE FROM alert_channels WHERE id = ?";

static const char SQL_RULE_ADD[] =
	"INSERT INTO alert_rules (name, kind, params, channel_id, renotify_seconds, enabled, "
	"created_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id";
static const char SQL_RULE_EXISTS[] = "SELECT id FROM alert_rules WHERE name = ?";
static const char SQL_RULE_EXISTS_ID[] = "SELECT id FROM alert_rules WHERE id = ?";
static const char SQL_RULE_LIST[] =
	"SELECT r.id, r.name, r.kind, r.params, r.channel_id, c.name, r.renotify_seconds, "
	"r.enabled, r.created_at FROM alert_rules r "
	"LEFT JOIN alert_channels c ON c.id = r.channel_id ORDER BY r.name";
static const char SQL_RULE_DEL[] = "DELETE FROM alert_rules WHERE id = ?";

/* Advisory lock key of alert raising (postgres); "aclm" + a number, like
 * the keys of store-int.h. */
#define STORE_LOCK_ALERTS "6372935010000071"
static const char SQL_ALERT_LOCK[] = "SELECT pg_advisory_xact_lock(" STORE_LOCK_ALERTS ")";
static const char SQL_ALERT_LATEST[] =
	"SELECT created_at, state FROM alerts WHERE dedup_key = ? "
	"ORDER BY created_at DESC, id DESC LIMIT 1";
static const char SQL_ALERT_ADD[] =
	"INSERT INTO alerts (rule_id, channel_id, dedup_key, target, subject, message, state, "
	"next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?) RETURNING id";
#define ALERT_WHERE \
	"WHERE (CAST(? AS TEXT) = '' OR a.state = CAST(? AS TEXT)) " \
	"AND (CAST(? AS INTEGER) = 0 OR (a.state = 'pending' AND a.next_attempt_at <= " \
	"CAST(? AS BIGINT))) "
static const char SQL_ALERT_LIST[] =
	"SELECT a.id, a.rule_id, a.channel_id, r.name, r.kind, c.name, a.dedup_key, a.target, "
	"a.subject, a.message, a.state, a.attempts, a.last_error, a.attempt_log, "
	"a.next_attempt_at, a.created_at, a.sent_at FROM alerts a "
	"LEFT JOIN alert_rules r ON r.id = a.rule_id "
	"LEFT JOIN alert_channels c ON c.id = a.channel_id " ALERT_WHERE
	"ORDER BY CASE WHEN CAST(? AS INTEGER) = 1 THEN a.id ELSE -a.id END "
	"LIMIT ? OFFSET ?";
static const char SQL_ALERT_COUNT[] = "SELECT COUNT(*) FROM alerts a " ALERT_WHERE;
static const char SQL_ALERT_CLAIM[] =
	"UPDATE alerts SET next_attempt_at = ? WHERE id = ? AND state = 'pending' "
	"AND next_attempt_at = ? RETURNING id";
static const char SQL_ALERT_RESULT[] =
	"UPDATE alerts SET state = ?, attempts = ?, last_error = ?, attempt_log = ?, "
	"next_attempt_at = ?, sent_at = ? WHERE id = ? RETURNING id";

static bool all_digits(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}



/* --- channels ---------------------------------------------------------- */

void aclm_alert_channel_clear(struct aclm_alert_channel *c)
{
	free(c->name);
	free(c->kind);
	free(c->config);
	memset(c, 0, sizeof(*c));
}

int aclm_store_alert_channel_add(struct aclm_store *st, const char *actor, const char *name,
                                 const char *kind, const char *config, int64_t *id)
{
	int64_t existing = 0, new_id = 0;
	int rc;

	if ((rc = aclm_store_begin(st)) != ACLM_OK)
		return rc;
	{
		const struct store_param p[] = { SP_T(name) };
		rc = store_int64(st, "SELECT id FROM alert_channels WHERE name = ?",
		                 "look up alert channel", p, SP_COUNT(p), &existing);
	}
	if (rc == 1)
		return store_end(st, aclm_error(ACLM_ERR_EXISTS, "alert channel '%s' exists already",
		                             name));
	if (rc < 0)
		return store_end(st, rc);
	{
		const struct store_param p[] = { SP_T(name), SP_T(kind), SP_T(config), SP_I(aclm_now()) };
		rc = store_int64(st, SQL_CHANNEL_ADD, "add alert channel", p, SP_COUNT(p), &new_id);
	}
	if (rc == 1)
		rc = store_audit(st, "alert.channel.added", name, actor,
		           json_pack("{s:s}", "kind", kind));
	else if (rc == 0)
		rc = aclm_error(ACLM_ERR_DB, "add alert channel '%s': no row returned", name);
	if (rc == ACLM_OK && id != NULL)
		*id = new_id;
	return store_end(st, rc);
}

static int get_channel(struct aclm_store *st, const char *sql, const struct store_param *p,
                       const char *what, struct aclm_alert_channel *out)
{
	const struct store_driver *d = st->drv;
	struct store_query q;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = store_query_open(st, &q, sql, "read alert channel", 0, p, 1)) != ACLM_OK)
		return rc;
	rc = store_query_step(st, &q);
	if (rc == 1) {
		out->id = d->column_int64(q.stmt, 0);
		out->name = aclm_strdup(d->column_text(q.stmt, 1));
		out->kind = aclm_strdup(d->column_text(q.stmt, 2));
		out->config = aclm_strdup(d->column_text(q.stmt, 3));
		out->created_at = d->column_int64(q.stmt, 4);
		rc = ACLM_OK;
		if (out->name == NULL || out->kind == NULL || out->config == NULL) {
			aclm_alert_channel_clear(out);
			rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
		}
	} else if (rc == 0) {
		rc = aclm_error(ACLM_ERR_NOTFOUND, "no alert channel %s", what);
	}
	store_query_close(st, &q);
	return rc;
}

int aclm_store_alert_channel_get(struct aclm_store *st, const char *ref,
                                 struct aclm_alert_channel *out)
{
	char what[96];

	snprintf(what, sizeof(what), "'%s'", ref);
	if (all_digits(ref)) {
		int64_t id = 0;
		if (aclm_parse_int64(ref, &id) == ACLM_OK) {
			int rc = aclm_store_alert_channel_get_id(st, id, out);
			if (rc != ACLM_ERR_NOTFOUND)
				return rc;
		}
	}
	{
		const struct store_param p[] = { SP_T(ref) };
		return get_channel(st, SQL_CHANNEL_BY_NAME, p, what, out);
	}
}

int aclm_store_alert_channel_get_id(struct aclm_store *st, int64_t id,
                                    struct aclm_alert_channel *out)
{
	const struct store_param p[] = { SP_I(id) };
	char what[48];

	snprintf(what, sizeof(what), "with id %lld", (long long)id);
	return get_channel(st, SQL_CHANNEL_BY_ID, p, what, out);
}

int aclm_store_alert_channel_list(struct aclm_store *st, aclm_alert_channel_fn fn, void *ctx)
{
	const struct store_driver *d = st->drv;
	struct store_query q;
	int rc;

	if ((rc = store_query_open(st, &q, SQL_CHANNEL_LIST, "list alert channels", 0, NULL, 0)) !=
	    ACLM_OK)
		return rc;
	while ((rc = store_query_step(st, &q)) == 1) {
		struct aclm_alert_channel c = {
			.id = d->column_int64(q.stmt, 0),
			.name = (char *)d->column_text(q.stmt, 1),
			.kind = (char *)d->column_text(q.stmt, 2),
			.config = (char *)d->column_text(q.stmt, 3),
			.created_at = d->column_int64(q.stmt, 4),
		};
		if ((rc = fn(ctx, &c)) != 0)
			break;
	}
	store_query_close(st, &q);
	return rc;
}

int aclm_store_alert_channel_delete(struct aclm_store *st, const char *actor, const char *ref)
{
	struct aclm_alert_channel c;
	struct store_query q;
	int rc;

	if ((rc = aclm_store_begin(st)) != ACLM_OK)
		return rc;
	if ((rc = aclm_store_alert_channel_get(st, ref, &c)) != ACLM_OK)
		return store_end(st, rc);
	{
		const struct store_param p[] = { SP_I(c.id) };
		rc = store_query_open(st, &q, SQL_CHANNEL_USERS, "look up rules of the channel", 0, p,
		                      SP_COUNT(p));
	}
	if (rc == ACLM_OK) {
		rc = store_query_step(st, &q);
		if (rc == 1)
			rc = aclm_error(ACLM_ERR_USAGE, "alert channel '%s' is used by rule '%s': delete "
			                "the rule first", c.name, st->drv->column_text(q.stmt, 0));
		store_query_close(st, &q);
	}
	if (rc == 0) {
		const struct store_param p[] = { SP_I(c.id) };
		rc = store_run(st, SQL_CHANNEL_DEL, "delete alert channel", p, SP_COUNT(p));
	}
	if (rc == ACLM_OK)
		rc = store_audit(st, "alert.channel.deleted", c.name, actor, json_pack("{s:s}", "kind", c.kind));
	aclm_alert_channel_clear(&c);
	return store_end(st, rc);
}

/* --- rules --------------------------------------------------------------- */

void aclm_alert_rule_clear(struct aclm_alert_rule *r)
{
	free(r->name);
	free(r->kind);
	free(r->params);
	free(r->channel);
	memset(r, 0, sizeof(*r));
}

int aclm_store_alert_rule_add(struct aclm_store *st, const char *actor,
                              const struct aclm_alert_rule *r, int64_t *id)
{
	int64_t existing = 0, new_id = 0;
	int rc;

	if ((rc = aclm_store_begin(st)) != ACLM_OK)
		return rc;
	{
		const struct store_param p[] = { SP_T(r->name) };
		rc = store_int64(st, SQL_RULE_EXISTS, "look up alert rule", p, SP_COUNT(p), &existing);
	}
	if (rc == 1)
		return store_end(st, aclm_error(ACLM_ERR_EXISTS, "alert rule '%s' exists already",
		                             r->name));
	if (rc < 0)
		return store_end(st, rc);
	{
		const struct store_param p[] = {
			SP_T(r->name), SP_T(r->kind), SP_T(r->params ? r->params : "{}"),
			r->channel_id ? (struct store_param)SP_I(r->channel_id) : (struct store_param)SP_N(),
			SP_I(r->renotify_seconds), SP_I(r->enabled ? 1 : 0), SP_I(aclm_now()),
		};
		rc = store_int64(st, SQL_RULE_ADD, "add alert rule", p, SP_COUNT(p), &new_id);
	}
	if (rc == 1)
		rc = store_audit(st, "alert.rule.added", r->name, actor,
		           json_pack("{s:s,s:s,s:I}", "kind", r->kind, "params",
		                     r->params ? r->params : "{}", "channel_id",
		                     (json_int_t)r->channel_id));
	else if (rc == 0)
		rc = aclm_error(ACLM_ERR_DB, "add alert rule '%s': no row returned", r->name);
	if (rc == ACLM_OK && id != NULL)
		*id = new_id;
	return store_end(st, rc);
}

int aclm_store_alert_rule_list(struct aclm_store *st, aclm_alert_rule_fn fn, void *ctx)
{
	const struct store_driver *d = st->drv;
	struct store_query q;
	int rc;

	if ((rc = store_query_open(st, &q, SQL_RULE_LIST, "list alert rules", 0, NULL, 0)) != ACLM_OK)
		return rc;
	while ((rc = store_query_step(st, &q)) == 1) {
		struct aclm_alert_rule r = {
			.id = d->column_int64(q.stmt, 0),
			.name = (char *)d->column_text(q.stmt, 1),
			.kind = (char *)d->column_text(q.stmt, 2),
			.params = (char *)d->column_text(q.stmt, 3),
			.channel_id = d->column_int64(q.stmt, 4),
			.channel = (char *)d->column_text(q.stmt, 5),
			.renotify_seconds = d->column_int64(q.stmt, 6),
			.enabled = d->column_int64(q.stmt, 7) != 0,
			.created_at = d->column_int64(q.stmt, 8),
		};
		if ((rc = fn(ctx, &r)) != 0)
			break;
	}
	store_query_close(st, &q);
	return rc;
}

int aclm_store_alert_rule_delete(struct aclm_store *st, const char *actor, const char *ref)
{
	int64_t id = 0;
	int rc;

	if ((rc = aclm_store_begin(st)) != ACLM_OK)
		return rc;
	rc = 0;
	if (all_digits(ref)) {
		int64_t n = 0;
		if (aclm_parse_int64(ref, &n) == ACLM_OK) {
			const struct store_param p[] = { SP_I(n) };
			rc = store_int64(st, SQL_RULE_EXISTS_ID, "look up alert rule", p, SP_COUNT(p), &id);
		}
	}
	if (rc == 0) {
		const struct store_param p[] = { SP_T(ref) };
		rc = store_int64(st, SQL_RULE_EXISTS, "look up alert rule", p, SP_COUNT(p), &id);
	}
	if (rc == 0)
		return store_end(st, aclm_error(ACLM_ERR_NOTFOUND, "no alert rule '%s'", ref));
	if (rc < 0)
		return store_end(st, rc);
	{
		const struct store_param p[] = { SP_I(id) };
		rc = store_run(st, SQL_RULE_DEL, "delete alert rule", p, SP_COUNT(p));
	}
	if (rc == ACLM_OK)
		rc = store_audit(st, "alert.rule.deleted", ref, actor, json_pack("{s:I}", "id", (json_int_t)id));
	return store_end(st, rc);
}

/* --- alerts -------------------------------------------------------------- */

int aclm_store_alert_lock(struct aclm_store *st)
{
	if (st->drv->dialect != STORE_POSTGRES)
		return ACLM_OK;   /* SQLite: BEGIN IMMEDIATE holds the write lock already */
	return store_run(st, SQL_ALERT_LOCK, "lock alert raising", NULL, 0);
}

int aclm_store_alert_latest(struct aclm_store *st, const char *dedup_key, bool *found,
                            int64_t *created_at, char state[16])
{
	const struct store_param p[] = { SP_T(dedup_key) };
	struct store_query q;
	int rc;

	*found = false;
	*created_at = 0;
	state[0] = '\0';
	if ((rc = store_query_open(st, &q, SQL_ALERT_LATEST, "look up earlier alerts", 0, p,
	                           SP_COUNT(p))) != ACLM_OK)
		return rc;
	rc = store_query_step(st, &q);
	if (rc == 1) {
		const char *s = st->drv->column_text(q.stmt, 1);
		*found = true;
		*created_at = st->drv->column_int64(q.stmt, 0);
		aclm_strlcpy(state, s != NULL ? s : "", 16);
		rc = ACLM_OK;
	}
	store_query_close(st, &q);
	return rc;
}

int aclm_store_alert_add(struct aclm_store *st, const struct aclm_alert_new *a, int64_t *id)
{
	const struct store_param p[] = {
		a->rule_id ? (struct store_param)SP_I(a->rule_id) : (struct store_param)SP_N(),
		a->channel_id ? (struct store_param)SP_I(a->channel_id) : (struct store_param)SP_N(),
		SP_T(a->dedup_key), SP_T(a->target ? a->target : ""), SP_T(a->subject),
		SP_T(a->message), SP_I(a->now), SP_I(a->now),
	};
	int64_t new_id = 0;
	int rc = store_int64(st, SQL_ALERT_ADD, "add alert", p, SP_COUNT(p), &new_id);

	if (rc == 0)
		return aclm_error(ACLM_ERR_DB, "add alert: no row returned");
	if (rc < 0)
		return rc;
	if (id != NULL)
		*id = new_id;
	return ACLM_OK;
}

int aclm_store_alert_list(struct aclm_store *st, const struct aclm_alert_filter *f,
                          aclm_alert_fn fn, void *ctx)
{
	const struct store_driver *d = st->drv;
	const char *state = f->state != NULL ? f->state : "";
	const struct store_param p[] = {
		SP_T(state), SP_T(state), SP_I(f->due_only ? 1 : 0), SP_I(f->due_at),
		SP_I(f->due_only ? 1 : 0), SP_I(f->limit > 0 ? f->limit : INT64_MAX / 2),
		SP_I(f->offset),
	};
	struct store_query q;
	int rc;

	if ((rc = store_query_open(st, &q, SQL_ALERT_LIST, "list alerts", STORE_STMT_STREAM, p,
	                           SP_COUNT(p))) != ACLM_OK)
		return rc;
	while ((rc = store_query_step(st, &q)) == 1) {
		const char *log = d->column_text(q.stmt, 13);
		struct aclm_alert_row a = {
			.id = d->column_int64(q.stmt, 0),
			.rule_id = d->column_int64(q.stmt, 1),
			.channel_id = d->column_int64(q.stmt, 2),
			.rule = d->column_text(q.stmt, 3),
			.rule_kind = d->column_text(q.stmt, 4),
			.channel = d->column_text(q.stmt, 5),
			.dedup_key = d->column_text(q.stmt, 6),
			.target = d->column_text(q.stmt, 7),
			.subject = d->column_text(q.stmt, 8),
			.message = d->column_text(q.stmt, 9),
			.state = d->column_text(q.stmt, 10),
			.attempts = (int)d->column_int64(q.stmt, 11),
			.last_error = d->column_text(q.stmt, 12),
			.attempt_log = log != NULL ? log : "[]",
			.next_attempt_at = d->column_int64(q.stmt, 14),
			.created_at = d->column_int64(q.stmt, 15),
			.sent_at = d->column_int64(q.stmt, 16),
		};
		if ((rc = fn(ctx, &a)) != 0)
			break;
	}
	store_query_close(st, &q);
	return rc;
}

int aclm_store_alert_count(struct aclm_store *st, const struct aclm_alert_filter *f,
                           int64_t *n)
{
	const char *state = f->state != NULL ? f->state : "";
	const struct store_param p[] = {
		SP_T(state), SP_T(state), SP_I(f->due_only ? 1 : 0), SP_I(f->due_at),
	};
	int rc = store_int64(st, SQL_ALERT_COUNT, "count alerts", p, SP_COUNT(p), n);

	return rc < 0 ? rc : ACLM_OK;
}

int aclm_store_alert_claim(struct aclm_store *st, int64_t id, int64_t was, int64_t lease_until,
                           bool *claimed)
{
	const struct store_param p[] = { SP_I(lease_until), SP_I(id), SP_I(was) };
	int64_t got = 0;
	int rc = store_int64(st, SQL_ALERT_CLAIM, "claim alert", p, SP_COUNT(p), &got);

	if (rc < 0)
		return rc;
	*claimed = rc == 1;
	return ACLM_OK;
}

int aclm_store_alert_result(struct aclm_store *st, int64_t id, const struct aclm_alert_result *r)
{
	int64_t got = 0;
	char subject[32];
	int rc;

	if ((rc = aclm_store_begin(st)) != ACLM_OK)
		return rc;
	{
		const struct store_param p[] = {
			SP_T(r->state), SP_I(r->attempts), SP_T(r->last_error),
			SP_T(r->attempt_log ? r->attempt_log : "[]"), SP_I(r->next_attempt_at),
			SP_I(r->sent_at), SP_I(id),
		};
		rc = store_int64(st, SQL_ALERT_RESULT, "record alert delivery", p, SP_COUNT(p), &got);
	}
	if (rc == 0)
		rc = aclm_error(ACLM_ERR_NOTFOUND, "alert %lld is gone", (long long)id);
	else if (rc == 1)
		rc = ACLM_OK;
	snprintf(subject, sizeof(subject), "alert:%lld", (long long)id);
	if (rc == ACLM_OK && r->event_type != NULL)
		rc = aclm_store_append_event(st, r->event_type, subject, r->event_detail);
	return store_end(st, rc);
}
