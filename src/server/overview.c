/* GET /api/v1/overview: the figures of the dashboard's first page, summed up
 * by the database (store_summary.h: totals, expiry windows, expiries per UTC
 * day for the next 366 days, keys, issuers).  Every count uses the same definitions
 * as the filters of GET /api/v1/certificates, so each figure can link to the
 * list behind it: expired = not_after < now; expiring within d =
 * now <= not_after < now + d. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aclm/err.h"
#include "aclm/json.h"
#include "aclm/store.h"
#include "aclm/store_summary.h"
#include "aclm/timeutil.h"
#include "server-int.h"

#define DAYS 366
#define MAX_KEYS 64            /* distinct key labels kept; more go to "other" */
#define TOP_ISSUERS 15

struct tally {
	char name[32];
	int64_t n;
};

struct issuer_row {
	char *dn, *cn;
	int64_t n;
};

struct overview {
	int64_t now, day0;         /* day0: 00:00 UTC of today */
	int64_t total, expired, expiring_7d, expiring_30d, ca, leaf, with_key;
	int64_t days[DAYS];
	struct tally keys[MAX_KEYS];
	size_t n_keys;
	int64_t other_keys;
	struct issuer_row issuers[TOP_ISSUERS];   /* most certificates first */
	size_t n_top;
	int64_t n_issuers;         /* distinct issuer DNs */
};

/* The key label of the certificate JSON ("rsa2048", "ec256", "ed25519"),
 * which is also a key_type filter of the list. */
static void key_label(const char *type, int bits, char *out, size_t n)
{
	if (strcmp(type, "rsa") == 0 || strcmp(type, "dsa") == 0 || strcmp(type, "ec") == 0)
		snprintf(out, n, "%s%d", type, bits);
	else
		snprintf(out, n, "%s", type[0] != '\0' ? type : "unknown");
}

static int add_key(void *ctx, const char *type, int bits, int64_t count)
{
	struct overview *o = ctx;
	char label[32];

	key_label(type, bits, label, sizeof(label));
	for (size_t i = 0; i < o->n_keys; i++) {
		if (strcmp(o->keys[i].name, label) == 0) {
			o->keys[i].n += count;
			return ACLM_OK;
		}
	}
	if (o->n_keys == MAX_KEYS) {
		o->other_keys += count;
		return ACLM_OK;
	}
	memcpy(o->keys[o->n_keys].name, label, sizeof(label));
	o->keys[o->n_keys++].n = count;
	return ACLM_OK;
}

static int add_day(void *ctx, int64_t day, int64_t count)
{
	struct overview *o = ctx;

	if (day >= 0 && day < DAYS)
		o->days[day] += count;
	return ACLM_OK;
}

static int add_issuer(void *ctx, const char *dn, const char *cn, int64_t count)
{
	struct overview *o = ctx;

	if (o->n_top == TOP_ISSUERS)
		return ACLM_OK;
	o->issuers[o->n_top].dn = strdup(dn);
	o->issuers[o->n_top].cn = strdup(cn);
	o->issuers[o->n_top].n = count;
	if (o->issuers[o->n_top].dn == NULL || o->issuers[o->n_top].cn == NULL) {
		free(o->issuers[o->n_top].dn);
		free(o->issuers[o->n_top].cn);
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	}
	o->n_top++;
	return ACLM_OK;
}

static int by_count_desc(const void *a, const void *b)
{
	const struct tally *x = a, *y = b;

	return x->n < y->n ? 1 : x->n > y->n ? -1 : strcmp(x->name, y->name);
}

static json_t *overview_json(struct overview *o)
{
	json_t *days = json_array(), *keys = json_array(), *issuers = json_array();
	int64_t shown = 0;
	char day[32];

	for (int i = 0; i < DAYS; i++) {
		if (o->days[i] == 0)
			continue;
		aclm_time_iso(o->day0 + (int64_t)i * 86400, day, sizeof(day));
		day[10] = '\0';
		json_array_append_new(days, json_pack("[s,I]", day, (json_int_t)o->days[i]));
	}
	qsort(o->keys, o->n_keys, sizeof(o->keys[0]), by_count_desc);
	for (size_t i = 0; i < o->n_keys; i++)
		json_array_append_new(keys, json_pack("{s:s,s:I}", "key", o->keys[i].name, "count",
		                                      (json_int_t)o->keys[i].n));
	for (size_t i = 0; i < o->n_top; i++) {
		json_array_append_new(issuers, json_pack("{s:s,s:s,s:I}", "issuer", o->issuers[i].dn,
		                                         "issuer_cn", o->issuers[i].cn, "count",
		                                         (json_int_t)o->issuers[i].n));
		shown += o->issuers[i].n;
	}
	return json_pack("{s:o,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:{s:o,s:I,s:o},s:o,s:I,s:o,s:I,s:I}",
		"now", aclm_json_time(o->now), "total", (json_int_t)o->total,
		"expired", (json_int_t)o->expired, "expiring_7d", (json_int_t)o->expiring_7d,
		"expiring_30d", (json_int_t)o->expiring_30d, "ca", (json_int_t)o->ca,
		"leaf", (json_int_t)o->leaf, "with_private_key", (json_int_t)o->with_key,
		"expiry_by_day", "from", aclm_json_time(o->day0), "days", (json_int_t)DAYS,
		"counts", days,
		"keys", keys, "other_keys", (json_int_t)o->other_keys,
		"issuers", issuers, "issuers_total", (json_int_t)o->n_issuers,
		"other_issuers", (json_int_t)(o->total - shown));
}

/* The last answer, reused while the inventory has the same number of
 * certificates and the same highest id (certificates are only ever added
 * or deleted), for at most CACHE_SECONDS (the time windows move).  Handlers
 * run on the server's one loop thread. */
#define CACHE_SECONDS 30
static struct {
	const struct aclm_store *store;
	int64_t count, max_id, at;
	json_t *answer;
} cache;

static int last_id(void *ctx, const struct aclm_cert_row *r)
{
	*(int64_t *)ctx = r->id;
	return ACLM_OK;
}

/* (count, highest id) of the inventory: two indexed queries. */
static int inventory_key(struct aclm_store *st, int64_t now, int64_t *count, int64_t *max_id)
{
	struct aclm_cert_filter f;
	int rc;

	memset(&f, 0, sizeof(f));
	f.now = now;
	if ((rc = aclm_store_count_certs(st, &f, count)) != ACLM_OK)
		return rc;
	f.sort = ACLM_SORT_ID;
	f.descending = true;
	f.limit = 1;
	*max_id = 0;
	return aclm_store_list_certs(st, &f, last_id, max_id);
}

static int overview(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                    const struct principal *who)
{
	struct overview *o = NULL;
	int64_t now = aclm_now(), count = 0, max_id = 0;
	json_t *answer;
	int rc;

	(void)req;
	(void)who;
	aclm_http_header_add(res, "Cache-Control", "no-store");
	if ((rc = inventory_key(s->store, now, &count, &max_id)) != ACLM_OK)
		return rc;
	if (cache.answer != NULL && cache.store == s->store && cache.count == count &&
	    cache.max_id == max_id && now - cache.at < CACHE_SECONDS && now >= cache.at)
		return server_reply_json(res, 200, json_incref(cache.answer));
	if ((o = calloc(1, sizeof(*o))) == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	o->now = now;
	o->day0 = o->now - ((o->now % 86400) + 86400) % 86400;
	{
		const struct aclm_summary_fns fns = {
			.day = add_day, .key = add_key, .issuer = add_issuer, .ctx = o,
			.day0 = o->day0, .n_days = DAYS, .max_issuers = TOP_ISSUERS,
		};
		struct aclm_cert_summary sum;
		rc = aclm_store_cert_summary(s->store, now, &fns, &sum, &o->n_issuers);
		o->total = sum.total;
		o->expired = sum.expired;
		o->expiring_7d = sum.expiring_7d;
		o->expiring_30d = sum.expiring_30d;
		o->ca = sum.ca;
		o->leaf = sum.total - sum.ca;
		o->with_key = sum.with_private_key;
	}
	if (rc == ACLM_OK && (answer = overview_json(o)) != NULL) {
		json_decref(cache.answer);
		cache.answer = json_incref(answer);
		cache.store = s->store;
		cache.count = count;
		cache.max_id = max_id;
		cache.at = now;
		rc = server_reply_json(res, 200, answer);
	} else if (rc == ACLM_OK) {
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
	}
	for (size_t i = 0; i < o->n_top; i++) {
		free(o->issuers[i].dn);
		free(o->issuers[i].cn);
	}
	free(o);
	return rc;
}

const struct api_route server_overview_routes[] = {
	{ "GET", "/api/v1/overview", ACCESS_PERM, ACLM_PERM_READ_INVENTORY, overview,
	  "the dashboard's overview: totals, expired, expiring in 7/30 days, expiries per UTC "
	  "day for a year, key types, top issuers (same definitions as the certificate filters)" },
};
const size_t server_n_overview_routes =
	sizeof(server_overview_routes) / sizeof(server_overview_routes[0]);
