/* GET /api/v1/overview: the figures of the dashboard's first page in one
 * pass over the inventory (totals, expiry windows, expiries per UTC day for
 * the next 366 days, keys, issuers).  Every count uses the same definitions
 * as the filters of GET /api/v1/certificates, so each figure can link to the
 * list behind it: expired = not_after < now; expiring within d =
 * now <= not_after < now + d. */
#include <stdlib.h>
#include <string.h>

#include "aclm/err.h"
#include "aclm/json.h"
#include "aclm/store.h"
#include "aclm/timeutil.h"
#include "server-int.h"

#define DAYS 366
#define MAX_KEYS 64            /* distinct key labels kept; more go to "other" */
#define MAX_ISSUERS 65536      /* distinct issuer names kept; more go to "other" */
#define TOP_ISSUERS 15

struct tally {
	char name[32];
	int64_t n;
};

struct issuer_slot {
	char *dn;                  /* NULL: empty slot */
	char *cn;
	int64_t n;
};

struct overview {
	int64_t now, day0;         /* day0: 00:00 UTC of today */
	int64_t total, expired, expiring_7d, expiring_30d, ca, leaf, with_key;
	int64_t days[DAYS];
	struct tally keys[MAX_KEYS];
	size_t n_keys;
	int64_t other_keys;
	struct issuer_slot *issuers;   /* open addressing, cap slots */
	size_t cap, n_issuers;
	int64_t other_issuers;
};

/* The key label of the certificate JSON ("rsa2048", "ec256", "ed25519"),
 * which is also a key_type filter of the list. */
static void key_label(const struct aclm_cert_row *r, char *out, size_t n)
{
	if (strcmp(r->key_type, "rsa") == 0 || strcmp(r->key_type, "dsa") == 0 ||
	    strcmp(r->key_type, "ec") == 0)
		snprintf(out, n, "%s%d", r->key_type, r->key_bits);
	else
		snprintf(out, n, "%s", r->key_type[0] != '\0' ? r->key_type : "unknown");
}

static void count_key(struct overview *o, const struct aclm_cert_row *r)
{
	char label[32];

	key_label(r, label, sizeof(label));
	for (size_t i = 0; i < o->n_keys; i++) {
		if (strcmp(o->keys[i].name, label) == 0) {
			o->keys[i].n++;
			return;
		}
	}
	if (o->n_keys == MAX_KEYS) {
		o->other_keys++;
		return;
	}
	memcpy(o->keys[o->n_keys].name, label, sizeof(label));
	o->keys[o->n_keys++].n = 1;
}

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;   /* FNV-1a */

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static int grow_issuers(struct overview *o)
{
	size_t cap = o->cap ? o->cap * 2 : 256;
	struct issuer_slot *t = calloc(cap, sizeof(*t));

	if (t == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < o->cap; i++) {
		size_t j;
		if (o->issuers[i].dn == NULL)
			continue;
		for (j = hash_str(o->issuers[i].dn) & (cap - 1); t[j].dn != NULL; j = (j + 1) & (cap - 1))
			;
		t[j] = o->issuers[i];
	}
	free(o->issuers);
	o->issuers = t;
	o->cap = cap;
	return ACLM_OK;
}

static int count_issuer(struct overview *o, const struct aclm_cert_row *r)
{
	size_t j;
	int rc;

	if (o->n_issuers * 2 >= o->cap) {
		if (o->n_issuers >= MAX_ISSUERS) {
			/* known ones still count; a new name goes to "other" */
			for (j = hash_str(r->issuer) & (o->cap - 1); o->issuers[j].dn != NULL;
			     j = (j + 1) & (o->cap - 1))
				if (strcmp(o->issuers[j].dn, r->issuer) == 0) {
					o->issuers[j].n++;
					return ACLM_OK;
				}
			o->other_issuers++;
			return ACLM_OK;
		}
		if ((rc = grow_issuers(o)) != ACLM_OK)
			return rc;
	}
	for (j = hash_str(r->issuer) & (o->cap - 1); o->issuers[j].dn != NULL;
	     j = (j + 1) & (o->cap - 1)) {
		if (strcmp(o->issuers[j].dn, r->issuer) == 0) {
			o->issuers[j].n++;
			return ACLM_OK;
		}
	}
	o->issuers[j].dn = strdup(r->issuer);
	o->issuers[j].cn = strdup(r->issuer_cn != NULL ? r->issuer_cn : "");
	if (o->issuers[j].dn == NULL || o->issuers[j].cn == NULL) {
		free(o->issuers[j].dn);
		free(o->issuers[j].cn);
		o->issuers[j].dn = NULL;
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	}
	o->issuers[j].n = 1;
	o->n_issuers++;
	return ACLM_OK;
}

static int count_row(void *ctx, const struct aclm_cert_row *r)
{
	struct overview *o = ctx;

	o->total++;
	if (r->not_after < o->now) {
		o->expired++;
	} else {
		int64_t day = (r->not_after - o->day0) / 86400;
		if (r->not_after - o->now < 7 * 86400)
			o->expiring_7d++;
		if (r->not_after - o->now < 30 * 86400)
			o->expiring_30d++;
		if (day >= 0 && day < DAYS)
			o->days[day]++;
	}
	if (r->is_ca)
		o->ca++;
	else
		o->leaf++;
	if (r->has_private_key)
		o->with_key++;
	count_key(o, r);
	return count_issuer(o, r);
}

static int by_count_desc(const void *a, const void *b)
{
	const struct tally *x = a, *y = b;

	return x->n < y->n ? 1 : x->n > y->n ? -1 : strcmp(x->name, y->name);
}

static int issuer_desc(const void *a, const void *b)
{
	const struct issuer_slot *x = a, *y = b;

	if (x->dn == NULL || y->dn == NULL)
		return (x->dn == NULL) - (y->dn == NULL);
	return x->n < y->n ? 1 : x->n > y->n ? -1 : strcmp(x->dn, y->dn);
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
	if (o->cap > 0)
		qsort(o->issuers, o->cap, sizeof(o->issuers[0]), issuer_desc);
	for (size_t i = 0; i < o->cap && i < TOP_ISSUERS && o->issuers[i].dn != NULL; i++) {
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
		"issuers", issuers, "issuers_total", (json_int_t)(o->n_issuers +
		                                                  (o->other_issuers > 0)),
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
	struct aclm_cert_filter f;
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
	memset(&f, 0, sizeof(f));
	f.now = o->now;
	f.sort = ACLM_SORT_ID;
	rc = aclm_store_list_certs(s->store, &f, count_row, o);
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
	for (size_t i = 0; i < o->cap; i++) {
		free(o->issuers[i].dn);
		free(o->issuers[i].cn);
	}
	free(o->issuers);
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
