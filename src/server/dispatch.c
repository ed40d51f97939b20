/* The one path every API request takes: authenticate, authorise, CSRF,
 * handler, audit, metrics. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "aclm/err.h"
#include "aclm/log.h"
#include "aclm/store.h"
#include "server-int.h"

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool is_safe_method(const char *m)
{
	return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "OPTIONS") == 0;
}

static int status_of_error(int rc)
{
	switch (rc) {
	case ACLM_ERR_NOTFOUND: return 404;
	case ACLM_ERR_PARSE: case ACLM_ERR_USAGE: case ACLM_ERR_AMBIGUOUS: return 400;
	case ACLM_ERR_TOOBIG: return 413;
	case ACLM_ERR_EXISTS: return 409;
	case ACLM_ERR_UNSUPPORTED: return 501;
	default: return 500;
	}
}

/* A state-changing request leaves an event: who, what, on what, result. */
static void audit_request(struct server *s, struct aclm_http_req *req,
                          const struct principal *who, int status)
{
	json_t *d = json_object();
	char *text;

	json_object_set_new(d, "actor", json_string(who != NULL ? who->actor : "anonymous"));
	json_object_set_new(d, "method", json_string(aclm_http_req_method(req)));
	json_object_set_new(d, "route", json_string(aclm_http_req_route(req)));
	json_object_set_new(d, "status", json_integer(status));
	json_object_set_new(d, "result", json_string(status < 400 ? "ok" : "failed"));
	json_object_set_new(d, "peer", json_string(aclm_http_req_peer(req)));
	text = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(d);
	if (text == NULL || aclm_store_append_event(s->store, "api.request",
	                                            aclm_http_req_path(req), text) != ACLM_OK)
		aclm_err("audit event for %s %s not written: %s", aclm_http_req_method(req),
		         aclm_http_req_path(req), aclm_errmsg());
	free(text);
}

static int dispatch(struct aclm_http_req *req, struct aclm_http_res *res, void *arg)
{
	const struct route_binding *b = arg;
	struct server *s = b->s;
	const struct api_route *r = b->r;
	struct principal who;
	const struct principal *whop = NULL;
	double t0 = mono_now();
	int status;

	memset(&who, 0, sizeof(who));
	if (r->access != ACCESS_PUBLIC) {
		status = server_authenticate(s, req, res, r, &who);
		if (status != 0)
			goto done;
		whop = &who;
	}
	aclm_error_clear();
	status = r->fn(s, req, res, whop);
	if (status < 0) {
		int code = status;
		status = status_of_error(code);
		if (status == 500) {
			aclm_err("%s %s: %s", aclm_http_req_method(req), aclm_http_req_route(req),
			         aclm_errmsg());
			server_reply_error(res, 500, "internal", "internal error");
		} else {
			server_reply_error(res, status, aclm_err_name(code), aclm_errmsg());
		}
	}
done:
	if (!is_safe_method(aclm_http_req_method(req)))
		audit_request(s, req, whop, status);
	server_observe(s, status, mono_now() - t0);
	return ACLM_HTTP_DONE;
}

int server_add_routes(struct server *s, const struct api_route *routes, size_t n)
{
	const struct api_route **nr;
	struct route_binding **nb;

	nr = realloc(s->routes, (s->n_routes + n) * sizeof(*nr));
	if (nr == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	s->routes = nr;
	nb = realloc(s->bindings, (s->n_routes + n) * sizeof(*nb));
	if (nb == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	s->bindings = nb;
	for (size_t i = 0; i < n; i++) {
		struct route_binding *b = malloc(sizeof(*b));
		int rc;
		if (b == NULL)
			return aclm_error(ACLM_ERR_NOMEM, "out of memory");
		b->s = s;
		b->r = &routes[i];
		s->routes[s->n_routes] = &routes[i];
		s->bindings[s->n_routes] = b;
		s->n_routes++;
		rc = aclm_http_route(s->http, routes[i].method, routes[i].pattern, dispatch, b);
		if (rc != ACLM_OK)
			return aclm_error_wrap(rc, "route %s %s", routes[i].method, routes[i].pattern);
	}
	return ACLM_OK;
}

size_t server_routes(const struct server *s, const struct api_route *const **out)
{
	*out = s->routes;
	return s->n_routes;
}
