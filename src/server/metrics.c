/* /metrics in the Prometheus text format (version 0.0.4). */
#include <stdio.h>
#include <string.h>

#include "aclm/buf.h"
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
