/* The alerting part of the REST API: raised alerts with their delivery
 * state, rules and channels.  Reading needs read-all (auditor and up),
 * changing needs write (operator and up).  Channel secrets come in the
 * request body, are sealed with the KEK at once and never come back out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aclm/err.h"
#include "aclm/keywrap.h"
#include "aclm/notify.h"
#include "aclm/store_notify.h"
#include "aclm/str.h"
#include "server-int.h"

#define MAX_LIMIT 1000
#define DEFAULT_LIMIT 50
#define MAX_TO 32

static json_t *body_object(struct aclm_http_req *req)
{
	size_t len = 0;
	const unsigned char *body = aclm_http_req_body(req, &len);
	json_t *j = len > 0 ? json_loadb((const char *)body, len, 0, NULL) : NULL;

	if (j != NULL && !json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static int bad(struct aclm_http_res *res, const char *detail)
{
	return server_reply_error(res, 400, "bad_request", detail);
}

/* --- alerts ------------------------------------------------------------------ */

static int append_alert(void *ctx, const struct aclm_alert_row *a)
{
	json_t *o = aclm_notify_alert_json(a);

	if (o == NULL || json_array_append_new(ctx, o) != 0)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	return ACLM_OK;
}

static int alerts_list(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                       const struct principal *who)
{
	struct aclm_alert_filter f = { .limit = DEFAULT_LIMIT };
	const char *v;
	json_t *items;
	int64_t total = 0;
	int rc;

	(void)who;
	f.state = aclm_http_query_get(req, "state");
	if (f.state != NULL && strcmp(f.state, "pending") != 0 && strcmp(f.state, "sent") != 0 &&
	    strcmp(f.state, "failed") != 0)
		return bad(res, "state: want pending, sent or failed");
	if ((v = aclm_http_query_get(req, "limit")) != NULL &&
	    (aclm_parse_int64(v, &f.limit) != ACLM_OK || f.limit < 1 || f.limit > MAX_LIMIT))
		return bad(res, "limit: want an integer in 1..1000");
	if ((v = aclm_http_query_get(req, "offset")) != NULL &&
	    (aclm_parse_int64(v, &f.offset) != ACLM_OK || f.offset < 0))
		return bad(res, "offset: want an integer >= 0");
	if ((items = json_array()) == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	if ((rc = aclm_store_alert_count(s->store, &f, &total)) != ACLM_OK ||
	    (rc = aclm_store_alert_list(s->store, &f, append_alert, items)) != ACLM_OK) {
		json_decref(items);
		return rc;
	}
	return server_reply_json(res, 200, json_pack("{s:o,s:I,s:I,s:I}", "items", items, "total",
	                                             (json_int_t)total, "limit", (json_int_t)f.limit,
	                                             "offset", (json_int_t)f.offset));
}

/* --- rules ------------------------------------------------------------------- */

static int append_rule(void *ctx, const struct aclm_alert_rule *r)
{
	json_t *o = aclm_notify_rule_json(r);

	if (o == NULL || json_array_append_new(ctx, o) != 0)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	return ACLM_OK;
}

static int rules_list(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                      const struct principal *who)
{
	json_t *items = json_array();
	int rc;

	(void)req;
	(void)who;
	if (items == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	if ((rc = aclm_store_alert_rule_list(s->store, append_rule, items)) != ACLM_OK) {
		json_decref(items);
		return rc;
	}
	return server_reply_json(res, 200, json_pack("{s:o}", "items", items));
}

static int rules_add(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                     const struct principal *who)
{
	json_t *j = body_object(req), *params, *renotify, *enabled;
	const char *name, *kind, *channel;
	struct aclm_alert_channel ch;
	struct aclm_alert_rule r;
	char *params_text = NULL;
	int64_t id = 0;
	int rc;

	memset(&ch, 0, sizeof(ch));
	memset(&r, 0, sizeof(r));
	name = json_string_value(json_object_get(j, "name"));
	kind = json_string_value(json_object_get(j, "kind"));
	channel = json_string_value(json_object_get(j, "channel"));
	params = json_object_get(j, "params");
	renotify = json_object_get(j, "renotify");
	enabled = json_object_get(j, "enabled");
	if (j == NULL || name == NULL || *name == '\0' || strlen(name) > 64 || kind == NULL ||
	    channel == NULL || (params != NULL && !json_is_object(params)) ||
	    (enabled != NULL && !json_is_boolean(enabled))) {
		json_decref(j);
		return bad(res, "want {\"name\", \"kind\", \"channel\", optional \"params\": {...}, "
		           "\"renotify\": \"1d\" or seconds or \"never\", \"enabled\": true}");
	}
	r.renotify_seconds = 86400;
	if (json_is_integer(renotify) && json_integer_value(renotify) >= 0) {
		r.renotify_seconds = json_integer_value(renotify);
	} else if (json_is_string(renotify) && strcmp(json_string_value(renotify), "never") == 0) {
		r.renotify_seconds = 0;
	} else if (renotify != NULL && (!json_is_string(renotify) ||
	                                aclm_parse_duration(json_string_value(renotify),
	                                                    &r.renotify_seconds) != ACLM_OK)) {
		json_decref(j);
		return bad(res, "renotify: want a duration (\"1d\"), seconds or \"never\"");
	}
	params_text = params != NULL ? json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS)
	                             : aclm_strdup("{}");
	if (params_text == NULL) {
		json_decref(j);
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	}
	if ((rc = aclm_notify_rule_check(kind, params_text)) != ACLM_OK) {
		rc = bad(res, aclm_errmsg());
		goto out;
	}
	if ((rc = aclm_store_alert_channel_get(s->store, channel, &ch)) != ACLM_OK) {
		if (rc == ACLM_ERR_NOTFOUND)
			rc = bad(res, aclm_errmsg());
		goto out;
	}
	r.name = (char *)name;
	r.kind = (char *)kind;
	r.params = params_text;
	r.channel_id = ch.id;
	r.enabled = enabled == NULL || json_is_true(enabled);
	if ((rc = aclm_store_alert_rule_add(s->store, who->actor, &r, &id)) != ACLM_OK)
		goto out;
	rc = server_reply_json(res, 201, json_pack("{s:I,s:s}", "id", (json_int_t)id, "name", name));
out:
	aclm_alert_channel_clear(&ch);
	free(params_text);
	json_decref(j);
	return rc;
}

static int rules_del(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                     const struct principal *who)
{
	int rc = aclm_store_alert_rule_delete(s->store, who->actor, aclm_http_req_param(req, "name"));

	if (rc != ACLM_OK)
		return rc;
	return server_reply_json(res, 200, json_pack("{s:b}", "deleted", 1));
}

/* --- channels ----------------------------------------------------------------- */

static int append_channel(void *ctx, const struct aclm_alert_channel *c)
{
	json_t *o = aclm_notify_channel_json(c);

	if (o == NULL || json_array_append_new(ctx, o) != 0)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	return ACLM_OK;
}

static int channels_list(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                         const struct principal *who)
{
	json_t *items = json_array();
	int rc;

	(void)req;
	(void)who;
	if (items == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	if ((rc = aclm_store_alert_channel_list(s->store, append_channel, items)) != ACLM_OK) {
		json_decref(items);
		return rc;
	}
	return server_reply_json(res, 200, json_pack("{s:o}", "items", items));
}

static char *copy_secret(json_t *j, const char *key)
{
	const char *v = json_string_value(json_object_get(j, key));

	return v != NULL ? aclm_strdup(v) : NULL;
}

static int channels_add(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                        const struct principal *who)
{
	json_t *j = body_object(req), *to = json_object_get(j, "to"), *v;
	const char *to_list[MAX_TO];
	struct aclm_notify_channel_input in;
	struct aclm_kek kek;
	bool have_kek = false;
	char *config = NULL;
	int64_t id = 0;
	size_t i;
	int rc;

	memset(&in, 0, sizeof(in));
	memset(&kek, 0, sizeof(kek));
	if (j == NULL || (to != NULL && (!json_is_array(to) || json_array_size(to) > MAX_TO))) {
		json_decref(j);
		return bad(res, "want {\"name\", \"kind\", \"url\", and for email \"from\", \"to\": [...], "
		           "optional \"username\"/\"password\"; for webhooks optional \"secret\"; "
		           "optional \"ca_file\"}");
	}
	in.name = json_string_value(json_object_get(j, "name"));
	in.kind = json_string_value(json_object_get(j, "kind"));
	in.url = json_string_value(json_object_get(j, "url"));
	in.from = json_string_value(json_object_get(j, "from"));
	in.username = json_string_value(json_object_get(j, "username"));
	in.ca_file = json_string_value(json_object_get(j, "ca_file"));
	json_array_foreach(to, i, v) {
		if (!json_is_string(v)) {
			json_decref(j);
			return bad(res, "to: want a list of addresses");
		}
		to_list[in.n_to++] = json_string_value(v);
	}
	in.to = to_list;
	in.password = copy_secret(j, "password");
	in.secret = copy_secret(j, "secret");
	if (in.password != NULL || in.secret != NULL) {
		if ((rc = aclm_kek_load(getenv("ACLM_KEK"), aclm_config_str(s->cfg, "security.kek_file"),
		                        true, &kek)) != ACLM_OK)
			goto out;
		have_kek = true;
	}
	if ((rc = aclm_notify_channel_config(&in, have_kek ? &kek : NULL, &config)) != ACLM_OK) {
		if (rc == ACLM_ERR_USAGE)
			rc = bad(res, aclm_errmsg());
		goto out;
	}
	if ((rc = aclm_store_alert_channel_add(s->store, who->actor, in.name, in.kind, config,
	                                       &id)) != ACLM_OK)
		goto out;
	rc = server_reply_json(res, 201, json_pack("{s:I,s:s}", "id", (json_int_t)id, "name",
	                                           in.name));
out:
	aclm_notify_channel_input_wipe(&in);
	if (have_kek)
		aclm_kek_wipe(&kek);
	free(config);
	json_decref(j);
	return rc;
}

static int channels_del(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                        const struct principal *who)
{
	int rc = aclm_store_alert_channel_delete(s->store, who->actor,
	                                         aclm_http_req_param(req, "name"));

	if (rc == ACLM_ERR_USAGE)
		return server_reply_error(res, 409, "conflict", aclm_errmsg());
	if (rc != ACLM_OK)
		return rc;
	return server_reply_json(res, 200, json_pack("{s:b}", "deleted", 1));
}

const struct api_route server_alert_routes[] = {
	{ "GET", "/api/v1/alerts", ACCESS_PERM, ACLM_PERM_READ_ALL, alerts_list,
	  "raised alerts, newest first, with delivery state, attempts and errors (state, limit, "
	  "offset)" },
	{ "GET", "/api/v1/alert-rules", ACCESS_PERM, ACLM_PERM_READ_ALL, rules_list, "alert rules" },
	{ "POST", "/api/v1/alert-rules", ACCESS_PERM, ACLM_PERM_WRITE, rules_add,
	  "add an alert rule {name, kind, channel, params, renotify, enabled}" },
	{ "DELETE", "/api/v1/alert-rules/:name", ACCESS_PERM, ACLM_PERM_WRITE, rules_del,
	  "delete an alert rule" },
	{ "GET", "/api/v1/alert-channels", ACCESS_PERM, ACLM_PERM_READ_ALL, channels_list,
	  "alert channels (secrets never shown)" },
	{ "POST", "/api/v1/alert-channels", ACCESS_PERM, ACLM_PERM_WRITE, channels_add,
	  "add an alert channel {name, kind, url, from, to, username, password, secret, ca_file}" },
	{ "DELETE", "/api/v1/alert-channels/:name", ACCESS_PERM, ACLM_PERM_WRITE, channels_del,
	  "delete an alert channel (not while a rule uses it)" },
};
const size_t server_n_alert_routes = sizeof(server_alert_routes) / sizeof(server_alert_routes[0]);
