/* Router: method + pattern to handler, 404 / 405 with Allow, path params.
 *
 * Patterns are split into segments once, when added.  A request is matched
 * against every route (the route table of a management API is small); the
 * most specific match wins, so the order of aclm_http_route() calls does not
 * matter except between identical patterns. */
#include <stdlib.h>
#include <string.h>

#include "aclm/err.h"
#include "aclm/http.h"
#include "aclm/str.h"
#include "http-int.h"

enum seg_kind {
	SEG_LIT = 0,     /* most specific */
	SEG_PARAM = 1,
	SEG_REST = 2,
};

struct seg {
	enum seg_kind kind;
	char *text;          /* literal, or the parameter name */
};

struct route {
	char *method;
	char *pattern;
	struct seg *segs;
	size_t n_segs;
	aclm_http_handler_fn handler;
	void *arg;
};

static void route_free(struct route *rt)
{
	for (size_t i = 0; i < rt->n_segs; i++)
		free(rt->segs[i].text);
	free(rt->segs);
	free(rt->method);
	free(rt->pattern);
}

int aclm_http_router_add(struct aclm_http_router *r, const char *method, const char *pattern,
                         aclm_http_handler_fn handler, void *arg)
{
	struct route rt = { 0 };
	struct route *n;
	size_t n_segs = 1;
	const char *s;
	int rc = ACLM_OK;

	if (method == NULL || *method == '\0' || pattern == NULL || pattern[0] != '/' ||
	    handler == NULL)
		return aclm_error(ACLM_ERR_USAGE, "HTTP route: need a method, a pattern starting "
		                  "with '/' and a handler (got %s %s)", method != NULL ? method : "(null)",
		                  pattern != NULL ? pattern : "(null)");
	for (s = pattern + 1; *s != '\0'; s++)
		if (*s == '/')
			n_segs++;
	rt.segs = calloc(n_segs, sizeof(*rt.segs));
	rt.method = aclm_strdup(method);
	rt.pattern = aclm_strdup(pattern);
	if (rt.segs == NULL || rt.method == NULL || rt.pattern == NULL) {
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory (HTTP route)");
		goto out;
	}
	rt.handler = handler;
	rt.arg = arg;
	for (s = pattern + 1;;) {
		const char *e = strchr(s, '/');
		size_t len = e != NULL ? (size_t)(e - s) : strlen(s);
		struct seg *sg = &rt.segs[rt.n_segs++];

		if (len == 1 && s[0] == '*') {
			if (e != NULL) {
				rc = aclm_error(ACLM_ERR_USAGE, "HTTP route %s: '*' must be the last segment",
				                pattern);
				goto out;
			}
			sg->kind = SEG_REST;
			sg->text = aclm_strdup("*");
		} else if (len > 0 && s[0] == ':') {
			if (len == 1) {
				rc = aclm_error(ACLM_ERR_USAGE, "HTTP route %s: parameter without a name",
				                pattern);
				goto out;
			}
			sg->kind = SEG_PARAM;
			sg->text = aclm_strndup(s + 1, len - 1);
		} else {
			sg->kind = SEG_LIT;
			sg->text = aclm_strndup(s, len);
		}
		if (sg->text == NULL) {
			rc = aclm_error(ACLM_ERR_NOMEM, "out of memory (HTTP route)");
			goto out;
		}
		if (e == NULL)
			break;
		s = e + 1;
	}
	n = realloc(r->routes, (r->n_routes + 1) * sizeof(*n));
	if (n == NULL) {
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory (HTTP route)");
		goto out;
	}
	r->routes = n;
	r->routes[r->n_routes++] = rt;
	return ACLM_OK;
out:
	route_free(&rt);
	return rc;
}

void aclm_http_router_free(struct aclm_http_router *r)
{
	for (size_t i = 0; i < r->n_routes; i++)
		route_free(&r->routes[i]);
	free(r->routes);
	r->routes = NULL;
	r->n_routes = 0;
}

static bool path_matches(const struct route *rt, char *const *segs, size_t n)
{
	size_t i;

	for (i = 0; i < rt->n_segs; i++) {
		const struct seg *sg = &rt->segs[i];

		if (sg->kind == SEG_REST)
			return true;
		if (i >= n)
			return false;
		if (sg->kind == SEG_LIT ? strcmp(sg->text, segs[i]) != 0 : segs[i][0] == '\0')
			return false;
	}
	return i == n;
}

/* < 0 when a is more specific than b. */
static int specificity_cmp(const struct route *a, const struct route *b)
{
	for (size_t i = 0; i < a->n_segs && i < b->n_segs; i++)
		if (a->segs[i].kind != b->segs[i].kind)
			return (int)a->segs[i].kind - (int)b->segs[i].kind;
	return 0;
}

/* 3 exact method, 2 via HEAD -> GET, 1 "*", 0 no. */
static int method_rank(const struct route *rt, const char *method)
{
	if (strcmp(rt->method, method) == 0)
		return 3;
	if (strcmp(method, "HEAD") == 0 && strcmp(rt->method, "GET") == 0)
		return 2;
	if (strcmp(rt->method, "*") == 0)
		return 1;
	return 0;
}

static void allow_add(char *allow, size_t size, const char *method)
{
	size_t len = strlen(method), alen = strlen(allow);
	const char *s = allow;

	while ((s = strstr(s, method)) != NULL) {    /* already listed? */
		if ((s == allow || (s - allow >= 2 && s[-2] == ',')) && (s[len] == '\0' || s[len] == ','))
			return;
		s += len;
	}
	if (alen + len + 3 > size)
		return;
	if (alen > 0) {
		aclm_strlcpy(allow + alen, ", ", size - alen);
		alen += 2;
	}
	aclm_strlcpy(allow + alen, method, size - alen);
}

static int bind_params(const struct route *rt, struct aclm_http_req *req)
{
	size_t n = 0;

	for (size_t i = 0; i < rt->n_segs; i++)
		if (rt->segs[i].kind != SEG_LIT)
			n++;
	req->n_params = 0;
	if (n == 0)
		return ACLM_OK;
	req->params = aclm_http_arena_alloc(&req->arena, n * sizeof(*req->params));
	if (req->params == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory (HTTP params)");
	for (size_t i = 0; i < rt->n_segs; i++) {
		const struct seg *sg = &rt->segs[i];
		struct aclm_http_param *pm = &req->params[req->n_params];

		if (sg->kind == SEG_LIT)
			continue;
		pm->name = sg->text;
		if (sg->kind == SEG_PARAM) {
			pm->value = req->segs[i];
		} else {
			size_t len = 0, off = 0;
			char *v;

			for (size_t k = i; k < req->n_segs; k++)
				len += strlen(req->segs[k]) + 1;
			v = aclm_http_arena_alloc(&req->arena, len + 1);
			if (v == NULL)
				return aclm_error(ACLM_ERR_NOMEM, "out of memory (HTTP params)");
			for (size_t k = i; k < req->n_segs; k++) {
				size_t sl = strlen(req->segs[k]);

				if (k > i)
					v[off++] = '/';
				memcpy(v + off, req->segs[k], sl);
				off += sl;
			}
			v[off] = '\0';
			pm->value = v;
		}
		req->n_params++;
	}
	return ACLM_OK;
}

int aclm_http_router_match(const struct aclm_http_router *r, struct aclm_http_req *req,
                           struct aclm_http_match *m)
{
	const char *method = req->msg->method;
	const struct route *best = NULL;
	int best_rank = 0;
	bool any_path = false;

	memset(m, 0, sizeof(*m));
	for (size_t i = 0; i < r->n_routes; i++) {
		const struct route *rt = &r->routes[i];
		int rank, cmp;

		if (!path_matches(rt, req->segs, req->n_segs))
			continue;
		any_path = true;
		if (strcmp(rt->method, "*") != 0) {
			allow_add(m->allow, sizeof(m->allow), rt->method);
			if (strcmp(rt->method, "GET") == 0)
				allow_add(m->allow, sizeof(m->allow), "HEAD");
		}
		rank = method_rank(rt, method);
		if (rank == 0)
			continue;
		cmp = best != NULL ? specificity_cmp(rt, best) : -1;
		if (cmp < 0 || (cmp == 0 && rank > best_rank)) {
			best = rt;
			best_rank = rank;
		}
	}
	if (best == NULL) {
		if (!any_path) {
			m->status = 404;
			return ACLM_OK;
		}
		allow_add(m->allow, sizeof(m->allow), "OPTIONS");
		m->status = strcmp(method, "OPTIONS") == 0 ? 204 : 405;
		return ACLM_OK;
	}
	m->handler = best->handler;
	m->arg = best->arg;
	m->pattern = best->pattern;
	req->route = best->pattern;
	return bind_params(best, req);
}
