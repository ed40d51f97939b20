/* The admin listener: GET /metrics (Prometheus text) on its own address and
 * thread, served by the HTTP engine of src/http on a loop of its own. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ev.h>

#include "aclm/buf.h"
#include "aclm/err.h"
#include "aclm/http.h"
#include "aclm/log.h"
#include "gateway-int.h"

struct admin {
	struct ev_loop *loop;
	struct aclm_http_server *srv;
	ev_async stop;
	pthread_t thread;
	struct aclm_gateway *gw;
};

static int metrics(struct aclm_http_req *req, struct aclm_http_res *res, void *arg)
{
	struct admin *a = arg;
	struct aclm_gw_config *cfg = gw_current(a->gw);
	struct aclm_buf b;
	time_t now = time(NULL);
	int rc = 0;

	aclm_buf_init(&b, 4 << 20);
	rc |= aclm_buf_printf(&b, "# TYPE aclm_gateway_requests_total counter\n"
	                      "aclm_gateway_requests_total %llu\n",
	                      (unsigned long long)atomic_load(&gw_metrics.requests));
	rc |= aclm_buf_puts(&b, "# TYPE aclm_gateway_responses_total counter\n");
	for (int i = 1; i < 6; i++)
		rc |= aclm_buf_printf(&b, "aclm_gateway_responses_total{class=\"%dxx\"} %llu\n", i,
		                      (unsigned long long)atomic_load(&gw_metrics.status[i]));
	rc |= aclm_buf_printf(&b, "# TYPE aclm_gateway_connections_total counter\n"
	                      "aclm_gateway_connections_total %llu\n"
	                      "# TYPE aclm_gateway_refused_connections_total counter\n"
	                      "aclm_gateway_refused_connections_total %llu\n"
	                      "# TYPE aclm_gateway_handshake_failures_total counter\n"
	                      "aclm_gateway_handshake_failures_total %llu\n"
	                      "# TYPE aclm_gateway_response_bytes_total counter\n"
	                      "aclm_gateway_response_bytes_total %llu\n",
	                      (unsigned long long)atomic_load(&gw_metrics.connections),
	                      (unsigned long long)atomic_load(&gw_metrics.refused),
	                      (unsigned long long)atomic_load(&gw_metrics.handshake_failures),
	                      (unsigned long long)atomic_load(&gw_metrics.bytes_out));
	rc |= aclm_buf_puts(&b, "# TYPE aclm_gateway_handshakes_total counter\n");
	pthread_mutex_lock(&gw_metrics.mu);
	for (size_t i = 0; i < gw_metrics.n_hs; i++)
		rc |= aclm_buf_printf(&b, "aclm_gateway_handshakes_total{group=\"%s\",version=\"%s\"} "
		                      "%llu\n", gw_metrics.hs_group[i], gw_metrics.hs_version[i],
		                      gw_metrics.hs_count[i]);
	pthread_mutex_unlock(&gw_metrics.mu);
	rc |= aclm_buf_puts(&b, "# TYPE aclm_gateway_upstream_up gauge\n");
	for (size_t i = 0; i < cfg->n_sites; i++)
		for (size_t j = 0; j < cfg->sites[i].n_ups; j++) {
			struct gw_upstream *u = &cfg->sites[i].ups[j];

			rc |= aclm_buf_printf(&b, "aclm_gateway_upstream_up{site=\"%s\",upstream=\"%s\"} "
			                      "%d\n", cfg->sites[i].names[0], u->url,
			                      atomic_load(&u->down_until_ms) > gw_now_ms() ? 0 : 1);
			rc |= aclm_buf_printf(&b, "aclm_gateway_upstream_failures_total{site=\"%s\","
			                      "upstream=\"%s\"} %llu\n", cfg->sites[i].names[0], u->url,
			                      (unsigned long long)atomic_load(&u->n_failures));
		}
	rc |= aclm_buf_puts(&b, "# TYPE aclm_gateway_certificate_expiry_seconds gauge\n");
	for (size_t i = 0; i < cfg->n_sites; i++)
		for (size_t j = 0; j < cfg->sites[i].n_certs; j++)
			rc |= aclm_buf_printf(&b, "aclm_gateway_certificate_expiry_seconds{site=\"%s\","
			                      "key=\"%s\"} %lld\n", cfg->sites[i].names[0],
			                      cfg->sites[i].certs[j].key_type,
			                      (long long)(cfg->sites[i].certs[j].not_after - now));
	aclm_gw_config_unref(cfg);
	if (!rc)
		rc = aclm_http_reply(res, 200, "text/plain; version=0.0.4", b.data, b.len);
	aclm_buf_free(&b);
	return rc ? ACLM_ERR_NOMEM : ACLM_HTTP_DONE;
}

static void stop_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	ev_break(loop, EVBREAK_ALL);
}

static void *admin_main(void *arg)
{
	struct admin *a = arg;

	ev_run(a->loop, 0);
	return NULL;
}

int gw_admin_start(struct aclm_gateway *gw, const char *addr)
{
	struct admin *a = calloc(1, sizeof(*a));
	struct aclm_http_server_opts opts;
	int rc;

	if (!a)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	a->gw = gw;
	a->loop = ev_loop_new(EVFLAG_AUTO);
	if (!a->loop) {
		free(a);
		return aclm_error(ACLM_ERR_NOMEM, "admin loop");
	}
	aclm_http_server_opts_init(&opts);
	if ((rc = aclm_http_server_new(a->loop, &opts, &a->srv)) ||
	    (rc = aclm_http_route(a->srv, "GET", "/metrics", metrics, a)) ||
	    (rc = aclm_http_listen(a->srv, addr, NULL, NULL))) {
		aclm_error_wrap(rc, "admin listener %s", addr);
		goto fail;
	}
	ev_async_init(&a->stop, stop_cb);
	ev_async_start(a->loop, &a->stop);
	if (pthread_create(&a->thread, NULL, admin_main, a)) {
		rc = aclm_error(ACLM_ERR_IO, "admin thread");
		goto fail;
	}
	gw->admin = a;
	return 0;
fail:
	if (a->srv)
		aclm_http_server_free(a->srv);
	ev_loop_destroy(a->loop);
	free(a);
	return rc;
}

void gw_admin_stop(struct aclm_gateway *gw)
{
	struct admin *a = gw->admin;

	if (!a)
		return;
	ev_async_send(a->loop, &a->stop);
	pthread_join(a->thread, NULL);
	aclm_http_server_free(a->srv);
	ev_loop_destroy(a->loop);
	free(a);
	gw->admin = NULL;
}
