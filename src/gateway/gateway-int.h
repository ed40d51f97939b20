/* Private structures of the gateway (src/gateway). */
#ifndef ACLM_GATEWAY_INT_H
#define ACLM_GATEWAY_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include <openssl/ssl.h>

#include "aclm/buf.h"
#include "aclm/gateway.h"
#include "aclm/http.h"

#define GW_MAX_NAMES 64
#define GW_MAX_UPSTREAMS 32
#define GW_MAX_CERTS 2
#define GW_MAX_LISTEN 8
#define GW_DEFAULT_GROUPS "X25519MLKEM768:X25519:P-256"

/* ---- config.c ---- */

struct gw_upstream {
	char url[300];
	char host[256];
	char port[8];
	struct sockaddr_storage addr;
	socklen_t addr_len;
	atomic_int fails;                 /* consecutive failures */
	_Atomic int64_t down_until_ms;    /* passive health: skipped until then */
	atomic_ullong n_requests;
	atomic_ullong n_failures;
};

enum gw_pq { GW_PQ_PREFER, GW_PQ_OFFER, GW_PQ_OFF };
enum gw_cert_source { GW_CERT_FILES, GW_CERT_ACME, GW_CERT_CA };

struct gw_certfile {
	char cert[4096];
	char key[4096];
	struct timespec cert_mtime, key_mtime;
	time_t not_after;
	char key_type[16];                /* "ECDSA", "RSA", ... */
	bool is_missing;                  /* acme: not issued yet (a stand-in is served) */
	unsigned char *ocsp_der;          /* stapled response (ocsp.c, under its lock) */
	size_t ocsp_len;
	X509 *ocsp_leaf;                  /* the certificate it is for */
};

struct gw_site {
	char *names[GW_MAX_NAMES];
	size_t n_names;
	struct gw_upstream *ups;          /* n_ups of them */
	size_t n_ups;
	atomic_uint rr;                   /* round robin cursor */
	enum gw_cert_source cert_source;
	struct gw_certfile certs[GW_MAX_CERTS];
	size_t n_certs;
	enum gw_pq pq;
	unsigned pq_canary_percent;
	char groups[512];                 /* full preference list */
	char groups_classic[512];         /* without the hybrid / ML-KEM groups */
	bool has_pq_group;
	char hsts[256];                   /* Strict-Transport-Security value, "" none */
	bool forwarded;                   /* X-Forwarded-For/-Proto and Forwarded */
	char acme_cas[4][64];             /* acme: CA names of acme.cas, in order; none: all */
	size_t n_acme_cas;
	int acme_keys[GW_MAX_CERTS];      /* enum aclm_keygen, one certificate each */
	size_t n_acme_keys;
	bool acme_tls_alpn;               /* tls-alpn-01 (else http-01) */
	char ca_name[64];                 /* ca: the built-in CA ("" the default, ca.name) */
	char ca_profile[32];              /* ca: its certificate profile ("" default) */
	size_t ca_line;                   /* line of `ca:` (else the site's) */
	size_t line;
	SSL_CTX *ctx;                     /* tls.c */
};

struct gw_timeouts {
	double handshake, header, body, idle, write;
	double upstream_connect, upstream_response;
	double fail_timeout;              /* passive health: down this long */
};

struct aclm_gw_config {
	atomic_int refs;
	char path[4096];
	char listen[GW_MAX_LISTEN][128];
	size_t n_listen;
	char admin[128];                  /* "" none */
	char http_listen[GW_MAX_LISTEN][128]; /* plain HTTP: http-01 answers, else redirect */
	size_t n_http_listen;
	char state_dir[4096];             /* certificates obtained by ACME */
	char webroot[4096];               /* http-01 document root: state_dir/webroot */
	unsigned workers;
	char access_log[4096];            /* "" none, "-" stderr */
	char pid_file[4096];
	char min_version[8];              /* "1.2" or "1.3" */
	char ciphersuites[512];
	char ciphers[512];
	double ticket_rotation;           /* seconds; default 12 h */
	bool session_tickets;             /* issue tickets (default true) */
	double health_interval;           /* active checks: 0 none */
	double health_timeout;
	char health_path[512];            /* "" TCP connect only */
	struct gw_timeouts to;
	struct aclm_http_limits limits;
	unsigned max_conns_per_ip;        /* 0: unlimited */
	struct gw_site *sites;
	size_t n_sites;
};

/* The site for a server name (exact first, then the longest wildcard), or
 * NULL. */
struct gw_site *gw_config_site(struct aclm_gw_config *cfg, const char *name);
void gw_config_ref(struct aclm_gw_config *cfg);

/* ---- tls.c ---- */

/* Build the SSL_CTX of every site of cfg. */
int gw_tls_build(struct aclm_gw_config *cfg);
/* The site whose context ssl is on (the client-hello callback moves it to
 * the site of its SNI); the first site's before that callback. */
struct gw_site *gw_tls_site(SSL *ssl);

/* ---- tickets.c ---- */

/* Session tickets under the process-wide key ring (current + previous),
 * so resumption works on every worker, site context and across reloads. */
int gw_tickets_install(SSL_CTX *ctx);
/* A new current key; the current one becomes the previous. */
int gw_tickets_rotate(void);
/* Negotiated group name of an established connection ("" unknown). */
const char *gw_tls_group(SSL *ssl);

/* ---- upstream.c ---- */

/* The next upstream to try for site, skipping those in tried[] (bitmap over
 * site->ups) and, while healthy ones remain, those marked down.  NULL when
 * none is left. */
struct gw_upstream *gw_upstream_pick(struct gw_site *site, uint32_t *tried);
void gw_upstream_failed(struct gw_upstream *u, const struct gw_timeouts *to);
void gw_upstream_ok(struct gw_upstream *u);
int64_t gw_now_ms(void);

/* Per-worker pool of idle keep-alive upstream connections. */
struct gw_pool;
struct gw_pool *gw_pool_new(void);
void gw_pool_free(struct gw_pool *p);
/* An idle connection to addr, or -1.  Connections closed by the peer
 * meanwhile are dropped. */
int gw_pool_take(struct gw_pool *p, const struct sockaddr_storage *addr, socklen_t len);
/* Give fd back (closed when the pool is full). */
void gw_pool_put(struct gw_pool *p, const struct sockaddr_storage *addr, socklen_t len, int fd);

/* ---- log.c / admin.c: counters ---- */

struct gw_metrics {
	atomic_ullong requests;
	atomic_ullong status[6];          /* by class: 1xx..5xx, [0] other */
	atomic_ullong handshakes;
	atomic_ullong handshake_failures;
	atomic_ullong connections;
	atomic_ullong refused;            /* over connections_per_ip */
	atomic_ullong bytes_out;
	pthread_mutex_t mu;               /* handshakes by group and version */
	char hs_group[16][40];
	char hs_version[16][12];
	unsigned long long hs_count[16];
	size_t n_hs;
};

extern struct gw_metrics gw_metrics;

struct gw_access {
	const char *client;
	const char *sni;
	const char *tls_version;
	const char *group;
	const char *suite;
	const char *method;
	const char *path;
	int status;
	unsigned long long bytes;
	const char *upstream;
	double duration;
	double upstream_duration;
};

int gw_log_open(const char *path);
void gw_log_close(void);
void gw_log_access(const struct gw_access *a);
void gw_metrics_handshake(const char *group, const char *version);

struct aclm_gateway;
/* The admin listener (/metrics) on its own thread. */
int gw_admin_start(struct aclm_gateway *gw, const char *addr);
void gw_admin_stop(struct aclm_gateway *gw);

/* ---- worker.c / proxy.c ---- */

struct xreq;

struct gw_worker {
	struct aclm_gateway *gw;
	struct ev_loop *loop;
	pthread_t thread;
	int listen_fds[2 * GW_MAX_LISTEN];
	bool listen_tls[2 * GW_MAX_LISTEN];
	size_t n_listen;
	struct gw_pool *pool;
	void *accept_watchers;            /* ev_io[n_listen] */
	void *stop_async;                 /* ev_async */
	unsigned n_conns;
	struct xreq *free_x;              /* proxy.c: request states to reuse */
	unsigned n_free_x;
	unsigned id;
	bool thread_started;
};

struct aclm_gateway {
	pthread_mutex_t mu;               /* guards cfg */
	struct aclm_gw_config *cfg;       /* current snapshot */
	int64_t next_rotation_ms;         /* of the session-ticket key */
	struct gw_worker *workers;
	unsigned n_workers;
	void *admin;                      /* admin.c */
	void *acme;                       /* acme.c */
	void *health;                     /* health.c */
	void *ocsp;                       /* ocsp.c */
};

/* The current snapshot, with a reference for the caller. */
struct aclm_gw_config *gw_current(struct aclm_gateway *gw);
/* A new client connection on a worker (proxy.c). */
void gw_proxy_accept(struct gw_worker *w, int fd, const struct sockaddr_storage *peer,
                     socklen_t peer_len, bool is_tls);
/* Free what the worker's proxy keeps for reuse (its loop has ended). */
void gw_proxy_worker_free(struct gw_worker *w);

/* ---- response.c ---- */

#define MAX_RESP_HEAD 32768

enum gw_framing { FR_NONE, FR_LENGTH, FR_CHUNKED, FR_CLOSE };
enum gw_chunk_st { CK_SIZE, CK_EXT, CK_DATA, CK_DATA_CR, CK_DATA_LF, CK_TRAILER, CK_TRAILER_LINE,
                   CK_TRAILER_LF };

/* What the response of one request is, and how far its body has come. */
struct gw_resp {
	enum gw_framing framing;
	enum gw_chunk_st ck;
	unsigned ck_digits;
	size_t ck_line;
	uint64_t remaining;               /* of the Content-Length or current chunk */
	int status;
	bool body_done;
	bool dechunk;                     /* chunked upstream, HTTP/1.0 client */
	bool close_after;                 /* the client connection closes after it */
	bool u_reusable;                  /* the upstream connection can be pooled */
};

/* The request side of it. */
struct gw_resp_req {
	bool is_head;
	bool client_ka;
	int client_minor;
	const char *hsts;                 /* "" none */
};

/* Is tok one of the comma-separated tokens of list (case-insensitive)? */
bool gw_token_in_list(const char *list, const char *tok);
/* Length of the head at p (through its blank line), 0 while incomplete. */
size_t gw_resp_head_end(const unsigned char *p, size_t n);
/* Parse the head (head_len bytes, blank line included) into r and append
 * the client's head to out.  0; 1 for an interim (1xx) response to skip;
 * -1 when malformed (the answer is then 502). */
int gw_resp_parse_head(struct gw_resp *r, const char *head, size_t head_len,
                       const struct gw_resp_req *q, struct aclm_buf *out);
/* Body bytes p[0..n) of the upstream: what belongs to the body is appended
 * to out; bytes past its end make the upstream connection unusable.  0, or
 * -1 for a broken framing or a full out. */
int gw_resp_body(struct gw_resp *r, const unsigned char *p, size_t n, struct aclm_buf *out);

/* ---- clients.c ---- */

/* Count a new connection of peer; false (not counted) when it already has
 * limit open (limit 0: no limit, always true). */
bool gw_clients_enter(const struct sockaddr_storage *peer, unsigned limit);
/* The end of a connection counted by gw_clients_enter. */
void gw_clients_leave(const struct sockaddr_storage *peer);

/* ---- ocsp.c ---- */

void gw_ocsp_install(SSL_CTX *ctx);
void gw_ocsp_certfile_free(struct gw_certfile *cf);
int gw_ocsp_start(struct aclm_gateway *gw);
void gw_ocsp_stop(struct aclm_gateway *gw);

/* ---- health.c ---- */

int gw_health_start(struct aclm_gateway *gw);
void gw_health_stop(struct aclm_gateway *gw);

/* ---- acme.c ---- */

/* While a tls-alpn-01 validation may come in: the loopback port of the ACME
 * client's responder, to which connections offering ALPN "acme-tls/1" are
 * passed through untouched (0: none). */
extern atomic_int gw_alpn_port;

/* Obtain and renew the certificates of the sites with cert_source acme or
 * ca on a thread of its own (gw->acme set by aclm_gateway_set_acme). */
int gw_acme_start(struct aclm_gateway *gw);
void gw_acme_stop(struct aclm_gateway *gw);
/* Can the running certificate thread serve the sites of next (a reload)?
 * An error says why not (no thread, no CA, a built-in CA that is missing). */
int gw_acme_reload_check(struct aclm_gateway *gw, const struct aclm_gw_config *next);
/* OCSP for a site with cert_source ca, answered in process by the built-in
 * CA's responder: the DER response to the DER request req.  ACLM_AGAIN
 * while the store is busy (ask again later); ACLM_ERR_UNSUPPORTED without a
 * store. */
int gw_certs_ocsp(struct aclm_gateway *gw, const struct gw_site *s, const unsigned char *req,
                  size_t req_len, unsigned char **resp, size_t *resp_len);

/* ---- builtin_ca.c ---- */

struct aclm_store;
struct aclm_kek;
struct aclm_ca_policy;
struct gw_ca_opts {
	const char *ca;                   /* the CA's name */
	const char *base_url;             /* CRL / OCSP URLs in certificates */
	const struct aclm_ca_policy *policy;
};
/* Issue certificate ki of site s from the built-in CA: a fresh key (sealed
 * on its key row), the certificate, an observation, and the managed
 * certificate "NAME/KEYTYPE" with it current (paired with pair_id when
 * not 0).  ACLM_ERR_NOTFOUND naming `aclm ca init` when the CA does not
 * exist. */
int gw_ca_issue(struct aclm_store *st, const struct aclm_kek *kek, const struct gw_ca_opts *o,
                const struct gw_site *s, size_t ki, int64_t pair_id, int64_t *managed_id,
                int64_t *cert_id);
/* When to renew the certificate of CA ca with this serial (hex): a time in
 * the CA's renewal window chosen from seed.  ACLM_ERR_NOTFOUND when the CA
 * did not issue it. */
int gw_ca_renew_at(struct aclm_store *st, const char *ca, const char *serial_hex,
                   uint64_t seed, int64_t *when);

#endif
