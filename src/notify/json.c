/* Alerting rows as JSON: one shape for `aclm alert ... --json` and the
 * REST API. */
#include <string.h>

#include "aclm/json.h"
#include "aclm/store_notify.h"
#include "notify-int.h"

json_t *aclm_notify_alert_json(const struct aclm_alert_row *a)
{
	json_t *log = json_loads(a->attempt_log != NULL ? a->attempt_log : "[]", 0, NULL);
	json_t *o = json_object();

	if (o == NULL) {
		json_decref(log);
		return NULL;
	}
	if (!json_is_array(log)) {
		json_decref(log);
		log = json_array();
	} else {
		/* Times in the log as ISO 8601, like every other time. */
		size_t i;
		json_t *e;
		json_array_foreach(log, i, e) {
			json_t *at = json_object_get(e, "at");
			if (json_is_integer(at))
				json_object_set_new(e, "at", aclm_json_time(json_integer_value(at)));
		}
	}
	json_object_set_new(o, "id", json_integer(a->id));
	json_object_set_new(o, "rule", aclm_json_str(a->rule));
	json_object_set_new(o, "rule_kind", aclm_json_str(a->rule_kind));
	json_object_set_new(o, "channel", aclm_json_str(a->channel));
	json_object_set_new(o, "dedup_key", aclm_json_str(a->dedup_key));
	json_object_set_new(o, "target", aclm_json_str(a->target));
	json_object_set_new(o, "subject", aclm_json_str(a->subject));
	json_object_set_new(o, "message", aclm_json_str(a->message));
	json_object_set_new(o, "state", aclm_json_str(a->state));
	json_object_set_new(o, "attempts", json_integer(a->attempts));
	json_object_set_new(o, "last_error", aclm_json_str(a->last_error));
	json_object_set_new(o, "attempt_log", log);
	json_object_set_new(o, "next_attempt_at",
	                    a->next_attempt_at > 0 && strcmp(a->state, "pending") == 0
	                    ? aclm_json_time(a->next_attempt_at) : json_null());
	json_object_set_new(o, "created_at", aclm_json_time(a->created_at));
	json_object_set_new(o, "sent_at", a->sent_at > 0 ? aclm_json_time(a->sent_at) : json_null());
	return o;
}

json_t *aclm_notify_rule_json(const struct aclm_alert_rule *r)
{
	json_t *params = json_loads(r->params != NULL ? r->params : "{}", 0, NULL);
	json_t *o = json_object();

	if (o == NULL) {
		json_decref(params);
		return NULL;
	}
	json_object_set_new(o, "id", json_integer(r->id));
	json_object_set_new(o, "name", aclm_json_str(r->name));
	json_object_set_new(o, "kind", aclm_json_str(r->kind));
	json_object_set_new(o, "params", params != NULL ? params : json_object());
	json_object_set_new(o, "channel", aclm_json_str(r->channel));
	json_object_set_new(o, "renotify_seconds", json_integer(r->renotify_seconds));
	json_object_set_new(o, "enabled", json_boolean(r->enabled));
	json_object_set_new(o, "created_at", aclm_json_time(r->created_at));
	return o;
}

json_t *aclm_notify_channel_json(const struct aclm_alert_channel *c)
{
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	json_object_set_new(o, "id", json_integer(c->id));
	json_object_set_new(o, "name", aclm_json_str(c->name));
	json_object_set_new(o, "kind", aclm_json_str(c->kind));
	json_object_set_new(o, "config", aclm_notify_channel_public(c->kind, c->config));
	json_object_set_new(o, "created_at", aclm_json_time(c->created_at));
	return o;
}
