/* The web dashboard: its files, embedded at build time (ui-assets.h), at
 * "/" and "/assets/...".  Public routes: the page holds no data; everything
 * it shows comes from /api/v1 with the session.  See docs/internals/dashboard.md. */
#include <string.h>
#include <strings.h>

#include "aclm/err.h"
#include "server-int.h"
#include "ui-assets.h"

/* Scripts, styles and data only from this origin; no inline script or style,
 * no framing, no plugins, no form posts elsewhere.  "data:" images are the
 * empty favicon and chart exports. */
#define UI_CSP "default-src 'none'; script-src 'self'; style-src 'self'; " \
	"img-src 'self' data:; connect-src 'self'; font-src 'self'; manifest-src 'self'; " \
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

static const struct ui_asset *find_asset(const char *path)
{
	for (size_t i = 0; i < ui_n_assets; i++)
		if (strcmp(ui_assets[i].path, path) == 0)
			return &ui_assets[i];
	return NULL;
}

/* Does the Accept-Encoding header allow gzip?  "gzip;q=0" refuses it. */
static bool accepts_gzip(const char *ae)
{
	const char *p = ae;

	while (p != NULL && *p != '\0') {
		const char *end = strchr(p, ',');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p), tok;
		while (len > 0 && (*p == ' ' || *p == '\t')) {
			p++;
			len--;
		}
		tok = strcspn(p, ";, \t");
		if (tok > len)
			tok = len;
		if ((tok == 4 && strncasecmp(p, "gzip", 4) == 0) || (tok == 1 && *p == '*')) {
			const char *q = p + tok;
			bool is_zero = false;
			while (q < p + len && (*q == ' ' || *q == ';' || *q == '\t'))
				q++;
			if (q + 2 <= p + len && (q[0] == 'q' || q[0] == 'Q') && q[1] == '=') {
				const char *v = q + 2;
				is_zero = true;
				while (v < p + len && (*v == '0' || *v == '.'))
					v++;
				if (v < p + len && *v >= '1' && *v <= '9')
					is_zero = false;
			}
			return !is_zero;
		}
		p = end != NULL ? end + 1 : NULL;
	}
	return false;
}

/* Does If-None-Match name this ETag (or "*")? */
static bool etag_matches(const char *inm, const char *etag)
{
	size_t n = strlen(etag);
	const char *p;

	if (inm == NULL)
		return false;
	if (strcmp(inm, "*") == 0)
		return true;
	for (p = strstr(inm, etag); p != NULL; p = strstr(p + 1, etag)) {
		/* a whole list element, weak ("W/") or strong */
		const char *after = p + n;
		if (*after == '\0' || *after == ',' || *after == ' ')
			return true;
	}
	return false;
}

static int add_headers(struct aclm_http_res *res, const struct ui_asset *a)
{
	int rc;

	if ((rc = aclm_http_header_add(res, "ETag", a->etag)) != ACLM_OK ||
	    (rc = aclm_http_header_add(res, "Cache-Control",
	                               a->is_immutable ? "public, max-age=31536000, immutable"
	                                               : "no-cache")) != ACLM_OK ||
	    (rc = aclm_http_header_add(res, "Content-Security-Policy", UI_CSP)) != ACLM_OK ||
	    (rc = aclm_http_header_add(res, "X-Content-Type-Options", "nosniff")) != ACLM_OK ||
	    (rc = aclm_http_header_add(res, "X-Frame-Options", "DENY")) != ACLM_OK ||
	    (rc = aclm_http_header_add(res, "Referrer-Policy", "no-referrer")) != ACLM_OK ||
	    (rc = aclm_http_header_add(res, "Cross-Origin-Opener-Policy", "same-origin")) != ACLM_OK)
		return rc;
	if (a->gz != NULL)
		rc = aclm_http_header_add(res, "Vary", "Accept-Encoding");
	return rc;
}

static int serve(struct aclm_http_req *req, struct aclm_http_res *res, const struct ui_asset *a)
{
	int rc;

	if ((rc = add_headers(res, a)) != ACLM_OK)
		return rc;
	if (etag_matches(aclm_http_req_header(req, "If-None-Match"), a->etag)) {
		aclm_http_res_status(res, 304);
		return 304;
	}
	if (a->gz != NULL && accepts_gzip(aclm_http_req_header(req, "Accept-Encoding"))) {
		if ((rc = aclm_http_header_add(res, "Content-Encoding", "gzip")) != ACLM_OK)
			return rc;
		rc = aclm_http_reply(res, 200, a->content_type, a->gz, a->gz_len);
	} else {
		rc = aclm_http_reply(res, 200, a->content_type, a->data, a->len);
	}
	return rc == ACLM_OK ? 200 : rc;
}

static int ui_index(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                    const struct principal *who)
{
	const struct ui_asset *a = find_asset("/index.html");

	(void)s;
	(void)who;
	if (a == NULL)
		return aclm_error(ACLM_ERR_NOTFOUND, "the dashboard has no index.html");
	return serve(req, res, a);
}

static int ui_file(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                   const struct principal *who)
{
	const struct ui_asset *a = find_asset(aclm_http_req_path(req));

	(void)s;
	(void)who;
	if (a == NULL)
		return aclm_error(ACLM_ERR_NOTFOUND, "no dashboard file %s%s",
		                  aclm_http_req_path(req),
		                  ui_assets_built ? "" : " (the dashboard was not built into this "
		                                         "binary: run scripts/install-deps, rebuild)");
	return serve(req, res, a);
}

const struct api_route server_ui_routes[] = {
	{ "GET", "/", ACCESS_PUBLIC, 0, ui_index, "the web dashboard" },
	{ "GET", "/assets/*", ACCESS_PUBLIC, 0, ui_file,
	  "the dashboard's scripts and styles (content-hashed names, cached for a year)" },
};
const size_t server_n_ui_routes = sizeof(server_ui_routes) / sizeof(server_ui_routes[0]);
