/* /metrics in the Prometheus text format (version 0.0.4). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aclm/buf.h"
#include "aclm/store_acme.h"
#include "aclm/store_endpoints.h"
#include "aclm/err.h"
#include "aclm/timeutil.h"
#include "server-int.h"

/* Upper bounds (seconds) of the request-duration histogram. */
static const double bucket_le[N_DURATION_BUCKETS] = {
	0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
};

void server_observe(struct server *s, int status, double seconds)
{
	s->requests_total++;
	if (status >= 100 && status < 600)
		s->requests_by_class[status / 100]++;
	s->duration_sum += seconds;
	for (int i = 0; i < N_DURATION_BUCKETS; i++)
		if (seconds <= bucket_le[i])
			s->duration_buckets[i]++;
}

static int count(struct server *s, struct aclm_cert_filter *f, int64_t *n)
{
	f->now = aclm_now();
	return aclm_store_count_certs(s->store, f, n);
}

/* Seconds to expiry of each managed certificate's current certificate. */
struct managed_ctx {
	struct server *s;
	struct aclm_buf *b;
	int64_t now;
};

static int not_after_of(void *ctx, const struct aclm_cert_row *row)
{
	*(int64_t *)ctx = row->not_after;
	return ACLM_OK;
}

/* Prometheus label values: backslash, quote and newline escaped. */
static void label(struct aclm_buf *b, const char *v)
{
	for (const char *p = v != NULL ? v : ""; *p != '\0'; p++) {
		if (*p == '\\' || *p == '"')
			aclm_buf_putc(b, '\\');
		if (*p == '\n')
			aclm_buf_puts(b, "\\n");
		else
			aclm_buf_putc(b, *p);
	}
}

struct managed_item {
	int64_t id, cert_id;
	char name[128];
	char status[16];
};

struct managed_list {
	struct managed_item *items;
	size_t n, cap;
};

static int collect_managed(void *ctx, const struct aclm_managed_row *m)
{
	struct managed_list *l = ctx;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct managed_item *it = realloc(l->items, cap * sizeof(*it));
		if (it == NULL)
			return aclm_error(ACLM_ERR_NOMEM, "out of memory");
		l->items = it;
		l->cap = cap;
	}
	l->items[l->n].id = m->id;
	l->items[l->n].cert_id = m->current_cert_id;
	snprintf(l->items[l->n].name, sizeof(l->items[l->n].name), "%s", m->name ? m->name : "");
	snprintf(l->items[l->n].status, sizeof(l->items[l->n].status), "%s",
	         m->status ? m->status : "");
	l->n++;
	return ACLM_OK;
}

/* Orders by CA and outcome. */
#define MAX_CAS 32
struct ca_counts {
	char ca[MAX_CAS][64];
	uint64_t done[MAX_CAS], failed[MAX_CAS];
	int n;
};

static int count_order(void *ctx, const struct aclm_acme_order_row *o)
{
	struct ca_counts *c = ctx;
	const char *ca = o->ca != NULL ? o->ca : "";
	int i;

	for (i = 0; i < c->n; i++)
		if (strcmp(c->ca[i], ca) == 0)
			break;
	if (i == c->n) {
		if (c->n == MAX_CAS)
			return ACLM_OK;
		snprintf(c->ca[c->n++], sizeof(c->ca[0]), "%s", ca);
	}
	if (o->state != NULL && strcmp(o->state, "done") == 0)
		c->done[i]++;
	else if (o->state != NULL && strcmp(o->state, "failed") == 0)
		c->failed[i]++;
	return ACLM_OK;
}

static int count_scan(void *ctx, const struct aclm_scan_row *r)
{
	(void)r;
	(*(int64_t *)ctx)++;
	return ACLM_OK;
}

static int lifecycle_metrics(struct server *s, struct aclm_buf *b)
{
	struct managed_list l = { 0 };
	struct ca_counts cc;
	struct aclm_endpoint_filter all = { .pq = -1 }, pq = { .pq = 1 }, nopq = { .pq = 0 };
	int64_t now = aclm_now(), n_scans = 0, n_ep = 0, n_pq = 0, n_nopq = 0;
	int rc;

	memset(&cc, 0, sizeof(cc));
	if ((rc = aclm_store_managed_list(s->store, collect_managed, &l)) != ACLM_OK)
		goto out;
	aclm_buf_puts(b, "# HELP aclm_managed_certificate_expiry_seconds Seconds until the current "
	              "certificate of a managed certificate expires.\n"
	              "# TYPE aclm_managed_certificate_expiry_seconds gauge\n");
	for (size_t i = 0; i < l.n; i++) {
		int64_t not_after = 0;
		if (l.items[i].cert_id == 0 ||
		    aclm_store_get_cert(s->store, l.items[i].cert_id, not_after_of, &not_after) != ACLM_OK)
			continue;
		aclm_buf_printf(b, "aclm_managed_certificate_expiry_seconds{id=\"%lld\",name=\"",
		                (long long)l.items[i].id);
		label(b, l.items[i].name);
		aclm_buf_printf(b, "\",status=\"");
		label(b, l.items[i].status);
		aclm_buf_printf(b, "\"} %lld\n", (long long)(not_after - now));
	}
	if ((rc = aclm_store_acme_order_list(s->store, 0, count_order, &cc)) != ACLM_OK)
		goto out;
	aclm_buf_puts(b, "# HELP aclm_acme_orders_total ACME orders by CA and outcome.\n"
	              "# TYPE aclm_acme_orders_total counter\n");
	for (int i = 0; i < cc.n; i++) {
		aclm_buf_puts(b, "aclm_acme_orders_total{ca=\"");
		label(b, cc.ca[i]);
		aclm_buf_printf(b, "\",result=\"done\"} %llu\n", (unsigned long long)cc.done[i]);
		aclm_buf_puts(b, "aclm_acme_orders_total{ca=\"");
		label(b, cc.ca[i]);
		aclm_buf_printf(b, "\",result=\"failed\"} %llu\n", (unsigned long long)cc.failed[i]);
	}
	if ((rc = aclm_store_list_scans(s->store, 0, 0, count_scan, &n_scans)) != ACLM_OK ||
	    (rc = aclm_store_count_endpoints(s->store, &all, &n_ep)) != ACLM_OK ||
	    (rc = aclm_store_count_endpoints(s->store, &pq, &n_pq)) != ACLM_OK ||
	    (rc = aclm_store_count_endpoints(s->store, &nopq, &n_nopq)) != ACLM_OK)
		goto out;
	aclm_buf_printf(b, "# HELP aclm_scans_total Scans run.\n"
	                "# TYPE aclm_scans_total counter\n"
	                "aclm_scans_total %lld\n"
	                "# HELP aclm_endpoints_pq Endpoints by post-quantum key exchange at their "
	                "latest scan.\n"
	                "# TYPE aclm_endpoints_pq gauge\n"
	                "aclm_endpoints_pq{pq=\"yes\"} %lld\n"
	                "aclm_endpoints_pq{pq=\"none\"} %lld\n"
	                "aclm_endpoints_pq{pq=\"unknown\"} %lld\n",
	                (long long)n_scans, (long long)n_pq, (long long)n_nopq,
	                (long long)(n_ep - n_pq - n_nopq));
out:
	free(l.items);
	return rc;
}

static int metrics(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                   const struct principal *who)
{
	struct aclm_cert_filter all = { 0 }, expired = { .expired = true },
	                        soon = { .expiring_within = 30 * 86400 },
	                        week = { .expiring_within = 7 * 86400 }, valid = { .valid = true };
	struct aclm_store_stats st;
	int64_t n_all = 0, n_expired = 0, n_soon = 0, n_week = 0, n_valid = 0;
	struct aclm_buf b;
	int rc;

	(void)req;
	(void)who;
	if ((rc = count(s, &all, &n_all)) != ACLM_OK || (rc = count(s, &expired, &n_expired)) != ACLM_OK ||
	    (rc = count(s, &soon, &n_soon)) != ACLM_OK || (rc = count(s, &week, &n_week)) != ACLM_OK ||
	    (rc = count(s, &valid, &n_valid)) != ACLM_OK ||
	    (rc = aclm_store_stats(s->store, &st)) != ACLM_OK)
		return rc;
	aclm_buf_init(&b, 1 << 20);
	aclm_buf_printf(&b,
		"# HELP aclm_certificates Certificates in the inventory by state.\n"
		"# TYPE aclm_certificates gauge\n"
		"aclm_certificates{state=\"all\"} %lld\n"
		"aclm_certificates{state=\"valid\"} %lld\n"
		"aclm_certificates{state=\"expired\"} %lld\n"
		"aclm_certificates{state=\"expiring_7d\"} %lld\n"
		"aclm_certificates{state=\"expiring_30d\"} %lld\n"
		"aclm_certificates{state=\"not_yet_valid\"} %lld\n",
		(long long)n_all, (long long)n_valid, (long long)n_expired, (long long)n_week,
		(long long)n_soon, (long long)(n_all - n_valid - n_expired));
	aclm_buf_printf(&b,
		"# HELP aclm_managed_certificates Certificates aclm keeps renewed.\n"
		"# TYPE aclm_managed_certificates gauge\n"
		"aclm_managed_certificates %lld\n"
		"# HELP aclm_private_keys Private keys held (sealed) in the store.\n"
		"# TYPE aclm_private_keys gauge\n"
		"aclm_private_keys %lld\n"
		"# HELP aclm_endpoints Endpoints known to the inventory.\n"
		"# TYPE aclm_endpoints gauge\n"
		"aclm_endpoints %lld\n"
		"# HELP aclm_audit_events Events in the audit log.\n"
		"# TYPE aclm_audit_events gauge\n"
		"aclm_audit_events %lld\n",
		(long long)st.managed, (long long)st.private_keys, (long long)st.endpoints,
		(long long)st.events);
	aclm_buf_printf(&b,
		"# HELP aclm_login_failures_total Failed logins since start.\n"
		"# TYPE aclm_login_failures_total counter\n"
		"aclm_login_failures_total %llu\n"
		"# HELP aclm_http_requests_total API requests answered, by status class.\n"
		"# TYPE aclm_http_requests_total counter\n",
		(unsigned long long)s->login_failures);
	for (int c = 1; c <= 5; c++)
		aclm_buf_printf(&b, "aclm_http_requests_total{code=\"%dxx\"} %llu\n", c,
		                (unsigned long long)s->requests_by_class[c]);
	aclm_buf_printf(&b,
		"# HELP aclm_http_request_duration_seconds Time to answer an API request.\n"
		"# TYPE aclm_http_request_duration_seconds histogram\n");
	for (int i = 0; i < N_DURATION_BUCKETS; i++)
		aclm_buf_printf(&b, "aclm_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
		                bucket_le[i], (unsigned long long)s->duration_buckets[i]);
	aclm_buf_printf(&b,
		"aclm_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
		"aclm_http_request_duration_seconds_sum %.6f\n"
		"aclm_http_request_duration_seconds_count %llu\n"
		"# HELP aclm_start_time_seconds When this server started (unix time).\n"
		"# TYPE aclm_start_time_seconds gauge\n"
		"aclm_start_time_seconds %lld\n",
		(unsigned long long)s->requests_total, s->duration_sum,
		(unsigned long long)s->requests_total, (long long)s->started_at);
	if ((rc = lifecycle_metrics(s, &b)) != ACLM_OK) {
		aclm_buf_free(&b);
		return rc;
	}
	rc = aclm_http_reply(res, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
	aclm_buf_free(&b);
	return rc == ACLM_OK ? 200 : rc;
}

const struct api_route server_metrics_routes[] = {
	{ "GET", "/metrics", ACCESS_PERM, ACLM_PERM_READ_INVENTORY, metrics,
	  "Prometheus metrics (send a viewer token as Bearer)" },
};
const size_t server_n_metrics_routes =
	sizeof(server_metrics_routes) / sizeof(server_metrics_routes[0]);
