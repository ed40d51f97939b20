/* Inside aclm server: the shared state of api.c, authn.c, metrics.c,
 * tls.c and server.c. */
#ifndef ACLM_SERVER_INT_H
#define ACLM_SERVER_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "aclm/auth.h"
#include "aclm/config.h"
#include "aclm/http.h"
#include "aclm/store.h"

#include <jansson.h>

struct ssl_ctx_st;

/* Who is asking: filled by the authentication hook, read by handlers. */
struct principal {
	int64_t user_id;
	char user[65];
	enum aclm_role role;
	bool via_token;              /* false: session cookie */
	int64_t token_id;
	char actor[96];              /* "user:alice" or "token:<lookup>(alice)" */
};

/* Per-IP login throttle: a small fixed table, oldest entry recycled. */
#define THROTTLE_SLOTS 256
struct throttle_slot {
	char peer_ip[48];
	int failures;
	int64_t window_start;
};

#define N_DURATION_BUCKETS 8

struct server {
	struct aclm_config *cfg;
	const char *config_path;
	struct aclm_store *store;
	struct aclm_http_server *http;
	struct ssl_ctx_st *ssl_ctx;
	char url[128];
	bool quiet;

	int64_t session_ttl;
	int lockout_after;
	int64_t lockout_seconds;
	struct throttle_slot throttle[THROTTLE_SLOTS];

	/* Metrics kept in memory since start. */
	int64_t started_at;
	uint64_t requests_total;
	uint64_t requests_by_class[6];  /* 1xx..5xx, index = status / 100 */
	uint64_t duration_buckets[N_DURATION_BUCKETS];
	double duration_sum;
	uint64_t login_failures;

	struct scheduler *sch;           /* set once the loop runs */

	const struct api_route **routes;
	size_t n_routes;
	struct route_binding **bindings;  /* one per route: what the engine's arg points to */
};

struct route_binding {
	struct server *s;
	const struct api_route *r;
};

/* A route of the API.  Handlers return the HTTP status they answered
 * (> 0) or a negative enum aclm_err (the engine answers it).  who is NULL
 * on public routes. */
typedef int (*api_fn)(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                      const struct principal *who);
enum route_access {
	ACCESS_PUBLIC = 0,           /* no login */
	ACCESS_LOGGED_IN,            /* any role */
	ACCESS_PERM,                 /* the role must allow `perm` */
};
struct api_route {
	const char *method;
	const char *pattern;
	enum route_access access;
	enum aclm_perm perm;
	api_fn fn;
	const char *summary;         /* for openapi.json */
};

/* Register routes (the table must outlive the server).  Every request
 * goes through one dispatcher: authentication (Bearer token or session
 * cookie), the role check, CSRF for cookie sessions on state-changing
 * methods, the handler, the audit event of a state-changing request, and
 * the metrics. */
int server_add_routes(struct server *s, const struct api_route *routes, size_t n);
/* Every route registered so far, for openapi.json. */
size_t server_routes(const struct server *s, const struct api_route *const **out);

/* authn.c */
extern const struct api_route server_auth_routes[];
extern const size_t server_n_auth_routes;
/* 0 and *who filled, or the HTTP status to answer (401/403) with res filled. */
int server_authenticate(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                        const struct api_route *r, struct principal *who);

/* api.c */
extern const struct api_route server_api_routes[];
extern const size_t server_n_api_routes;
int server_reply_json(struct aclm_http_res *res, int status, json_t *body);
int server_reply_error(struct aclm_http_res *res, int status, const char *error,
                       const char *detail);

/* ui.c: the dashboard's files; overview.c: its first page's figures. */
extern const struct api_route server_ui_routes[];
extern const size_t server_n_ui_routes;
extern const struct api_route server_overview_routes[];
extern const size_t server_n_overview_routes;

/* policy_api.c */
extern const struct api_route server_policy_routes[];
extern const size_t server_n_policy_routes;

/* alerts_api.c */
extern const struct api_route server_alert_routes[];
extern const size_t server_n_alert_routes;

/* ops_api.c: endpoints, findings, scans, jobs, managed certificates, ACME. */
extern const struct api_route server_ops_routes[];
extern const size_t server_n_ops_routes;

/* revoke_api.c: POST /api/v1/certificates/:id/revoke; and what the
 * certificate page shows of a revocation (JSON null when aclm cannot
 * revoke it: neither its CA nor its ACME client issued it). */
extern const struct api_route server_revoke_routes[];
extern const size_t server_n_revoke_routes;
json_t *server_cert_revocation(struct server *s, int64_t id);

/* ca_api.c: the built-in CA's ACME server, CRLs and OCSP (public routes). */
extern const struct api_route server_ca_routes[];
extern const size_t server_n_ca_routes;
/* ca.auto_init: create the built-in CA on first start; a TLS pair for the
 * server from it (ACLM_ERR_NOTFOUND when there is no CA to use). */
int server_ca_first_start(struct server *s);
int server_ca_tls_pair(struct server *s, const char *dir, const char *crt_path,
                       const char *key_path);

/* metrics.c */
extern const struct api_route server_metrics_routes[];
extern const size_t server_n_metrics_routes;
void server_observe(struct server *s, int status, double seconds);

/* scheduler.c: worker threads with their own store connections; stop
 * waits for jobs in progress. */
struct scheduler;
struct scheduler *server_scheduler_start(struct aclm_config *cfg, const char *db_url,
                                         const char *config_path, const char *address);
void server_scheduler_stop(struct scheduler *sch);

/* What a job kind gets from its worker. */
struct scheduler_job_ctx {
	struct aclm_store *store;    /* the worker's own connection */
	const char *db_url;
	const char *config_path;     /* NULL: the default search */
	const char *owner;
	int64_t lease_seconds;
};
struct aclm_job;
/* childjob.c: network work as a child aclm process: a scan (`aclm scan
 * --ndjson`), a first issuance (`aclm issue --json`). */
void server_job_scan(struct scheduler_job_ctx *ctx, const struct aclm_job *job,
                     char *error, size_t error_size, char *result, size_t result_size,
                     bool *ok);
void server_job_issue(struct scheduler_job_ctx *ctx, const struct aclm_job *job,
                      char *error, size_t error_size, char *result, size_t result_size,
                      bool *ok);
/* A revocation at an ACME CA (`aclm revoke --reason CODE ID`); the order
 * is marked revoked and a "certificate.revoked" event written when it
 * succeeded. */
void server_job_revoke(struct scheduler_job_ctx *ctx, const struct aclm_job *job,
                       char *error, size_t error_size, char *result, size_t result_size,
                       bool *ok);
/* Wake the scheduler now (a job was queued through the API). */
void server_scheduler_wake(struct scheduler *sch);

/* tls.c: the server's certificate and key (files given in the
 * configuration, else a self-signed P-256 pair kept in server.tls_dir,
 * renewed when it nears expiry). */
int server_tls_ctx(struct server *s, struct ssl_ctx_st **out);

#endif
