/* aclm server: start, first-start setup, signals, readiness, shutdown. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <curl/curl.h>
#include <ev.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "aclm/auth.h"
#include "aclm/err.h"
#include "aclm/log.h"
#include "aclm/notify.h"
#include "aclm/server.h"
#include "aclm/store_auth.h"
#include "aclm/timeutil.h"
#include "server-int.h"
#include "ui-assets.h"

/* systemd's readiness protocol (sd_notify) without libsystemd: one
 * datagram to $NOTIFY_SOCKET. */
static void notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	size_t len;
	int fd;

	if (path == NULL || (path[0] != '/' && path[0] != '@'))
		return;
	len = strlen(path);
	if (len >= sizeof(sa.sun_path))
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, len);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0';
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, state, strlen(state), 0, (struct sockaddr *)&sa,
	           (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0)
		aclm_warn("server: sd_notify: %s", strerror(errno));
	close(fd);
}

/* First start: an admin, with $ACLM_ADMIN_PASSWORD or a random password
 * printed once. */
static int ensure_admin(struct server *s)
{
	const char *env = getenv("ACLM_ADMIN_PASSWORD");
	char random_pw[33], *hash = NULL;
	const char *pw;
	int64_t n = 0;
	int rc;

	if ((rc = aclm_store_user_count(s->store, &n)) != ACLM_OK || n > 0)
		return rc;
	if (env != NULL && *env != '\0') {
		pw = env;
	} else {
		if ((rc = aclm_auth_random_password(random_pw)) != ACLM_OK)
			return rc;
		pw = random_pw;
	}
	rc = aclm_auth_hash_password(pw, &hash);
	if (rc == ACLM_OK)
		rc = aclm_store_user_add(s->store, "system", "admin", hash, ACLM_ROLE_ADMIN, NULL);
	free(hash);
	if (rc == ACLM_OK) {
		if (pw == random_pw)
			printf("first start: user 'admin' created; password (shown once): %s\n", random_pw);
		else
			printf("first start: user 'admin' created with the password of "
			       "$ACLM_ADMIN_PASSWORD\n");
		fflush(stdout);
	} else {
		aclm_error_wrap(rc, "first start: create the admin user");
	}
	OPENSSL_cleanse(random_pw, sizeof(random_pw));
	return rc;
}

static void apply_settings(struct server *s)
{
	s->session_ttl = aclm_config_duration(s->cfg, "server.session_ttl");
	s->lockout_after = (int)aclm_config_int(s->cfg, "server.lockout_after");
	s->lockout_seconds = aclm_config_duration(s->cfg, "server.lockout_time");
}

struct signals {
	struct server *s;
	ev_signal term, intr, hup;
	ev_timer housekeeping;
	ev_timer alerts;                        /* alerts.interval: kicks the alert worker */
	struct aclm_notify_worker *alerts_worker;
	bool stopping;
};

static void shutdown_done(struct aclm_http_server *srv, void *arg)
{
	(void)arg;
	ev_break(aclm_http_server_loop(srv), EVBREAK_ALL);
}

static void on_stop(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct signals *sg = w->data;

	(void)loop;
	(void)revents;
	if (sg->stopping)
		return;
	sg->stopping = true;
	notify("STOPPING=1");
	aclm_info("server: signal %d: finishing requests in flight, then exiting", w->signum);
	aclm_http_server_shutdown(sg->s->http, shutdown_done, NULL);
}

/* SIGHUP: read the configuration again; what needs a restart (listen
 * address, store, TLS files) is said so in the log. */
static void on_reload(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct signals *sg = w->data;
	struct server *s = sg->s;
	struct aclm_config *cfg = NULL;

	(void)loop;
	(void)revents;
	notify("RELOADING=1");
	if (aclm_config_load(s->config_path, &cfg) != ACLM_OK) {
		aclm_err("server: reload: %s; keeping the running configuration", aclm_errmsg());
	} else {
		aclm_config_free(s->cfg);
		s->cfg = cfg;
		apply_settings(s);
		aclm_info("server: configuration reloaded (listen address, store and TLS files "
		          "change at restart)");
	}
	notify("READY=1");
}

static void on_housekeeping(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct signals *sg = w->data;

	(void)loop;
	(void)revents;
	if (aclm_store_session_purge(sg->s->store, aclm_now()) != ACLM_OK)
		aclm_warn("server: purge sessions: %s", aclm_errmsg());
}

/* Each connection is a descriptor: allow max_connections plus room for the
 * store, the scheduler and logs, as far as the hard limit goes. */
static void raise_fd_limit(unsigned max_connections)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)max_connections + 256;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < (rlim_t)max_connections)
		aclm_warn("server: only %llu file descriptors allowed (server.max_connections is %u)",
		          (unsigned long long)rl.rlim_cur, max_connections);
}

static void on_alerts(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct signals *sg = w->data;

	(void)loop;
	(void)revents;
	aclm_notify_worker_kick(sg->alerts_worker);
}

static FILE *open_access_log(const char *path)
{
	FILE *f;

	if (path == NULL || *path == '\0')
		return NULL;
	if (strcmp(path, "-") == 0)
		return stderr;
	f = fopen(path, "a");
	if (f == NULL)
		aclm_warn("server: access log %s: %s; not logging requests", path, strerror(errno));
	return f;
}

int aclm_server_run(struct aclm_server_opts *o)
{
	struct server s;
	struct aclm_http_server_opts hopts;
	struct signals sg;
	struct ev_loop *loop = ev_default_loop(0);
	const char *url, *listen;
	FILE *access_log = NULL;
	struct scheduler *sch = NULL;
	int port = 0, rc;

	memset(&s, 0, sizeof(s));
	memset(&sg, 0, sizeof(sg));
	s.cfg = o->cfg;
	s.config_path = o->config_path;
	s.quiet = o->quiet;
	s.started_at = aclm_now();
	apply_settings(&s);
	signal(SIGPIPE, SIG_IGN);
	if (loop == NULL)
		return aclm_error(ACLM_ERR_IO, "cannot start the event loop");
	url = o->db_url != NULL ? o->db_url : aclm_config_str(s.cfg, "store.url");
	if ((rc = aclm_store_open(url, NULL, &s.store)) != ACLM_OK)
		goto out;
	if ((rc = ensure_admin(&s)) != ACLM_OK)
		goto out;
	if ((rc = server_ca_first_start(&s)) != ACLM_OK)
		goto out;
	if ((rc = server_tls_ctx(&s, &s.ssl_ctx)) != ACLM_OK)
		goto out;
	aclm_http_server_opts_init(&hopts);
	hopts.max_connections = (unsigned)aclm_config_int(s.cfg, "server.max_connections");
	hopts.header_timeout = (double)aclm_config_duration(s.cfg, "server.header_timeout");
	hopts.idle_timeout = (double)aclm_config_duration(s.cfg, "server.idle_timeout");
	raise_fd_limit(hopts.max_connections);
	access_log = open_access_log(aclm_config_str(s.cfg, "server.access_log"));
	hopts.access_log = access_log;
	if ((rc = aclm_http_server_new(loop, &hopts, &s.http)) != ACLM_OK)
		goto out;
	if ((rc = server_add_routes(&s, server_auth_routes, server_n_auth_routes)) != ACLM_OK ||
	    (rc = server_add_routes(&s, server_api_routes, server_n_api_routes)) != ACLM_OK ||
	    (rc = server_add_routes(&s, server_ops_routes, server_n_ops_routes)) != ACLM_OK ||
	    (rc = server_add_routes(&s, server_alert_routes, server_n_alert_routes)) != ACLM_OK ||
	    (rc = server_add_routes(&s, server_policy_routes, server_n_policy_routes)) != ACLM_OK ||
	    (rc = server_add_routes(&s, server_metrics_routes, server_n_metrics_routes)) != ACLM_OK ||
	    (rc = server_add_routes(&s, server_ca_routes, server_n_ca_routes)) != ACLM_OK ||
	    (rc = server_add_routes(&s, server_ui_routes, server_n_ui_routes)) != ACLM_OK ||
	    (rc = server_add_routes(&s, server_overview_routes, server_n_overview_routes)) != ACLM_OK ||
	    (rc = server_add_routes(&s, server_revoke_routes, server_n_revoke_routes)) != ACLM_OK)
		goto out;
	listen = o->listen != NULL ? o->listen : aclm_config_str(s.cfg, "server.listen");
	if ((rc = aclm_http_listen(s.http, listen, s.ssl_ctx, &port)) != ACLM_OK) {
		aclm_error_wrap(rc, "listen on %s", listen);
		goto out;
	}
	{
		/* The URL with the real port (listen may say :0). */
		const char *colon = strrchr(listen, ':');
		size_t host_len = colon != NULL ? (size_t)(colon - listen) : strlen(listen);
		const char *host = listen;
		if ((host_len == 7 && strncmp(host, "0.0.0.0", 7) == 0) ||
		    (host_len == 4 && strncmp(host, "[::]", 4) == 0)) {
			host = "127.0.0.1";
			host_len = 9;
		}
		snprintf(s.url, sizeof(s.url), "https://%.*s:%d/", (int)host_len, host, port);
	}
	printf("aclm server %s: listening on %s (store %s)\n", ACLM_VERSION, s.url,
	       aclm_store_backend(s.store));
	printf("dashboard: %s%s\n", s.url, ui_assets_built ? "" : " (not built into this binary: "
	       "run scripts/install-deps, then rebuild)");
	printf("API: %sapi/v1/ (OpenAPI: %sapi/v1/openapi.json); stop with Ctrl-C\n", s.url, s.url);
	fflush(stdout);

	sg.s = &s;
	ev_signal_init(&sg.term, on_stop, SIGTERM);
	ev_signal_init(&sg.intr, on_stop, SIGINT);
	ev_signal_init(&sg.hup, on_reload, SIGHUP);
	ev_timer_init(&sg.housekeeping, on_housekeeping, 3600., 3600.);
	sg.term.data = sg.intr.data = sg.hup.data = sg.housekeeping.data = &sg;
	ev_signal_start(loop, &sg.term);
	ev_signal_start(loop, &sg.intr);
	ev_signal_start(loop, &sg.hup);
	ev_timer_start(loop, &sg.housekeeping);
	/* libcurl's global state before any worker thread uses it. */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	sch = server_scheduler_start(s.cfg, url, s.config_path, s.url);
	s.sch = sch;
	{
		/* Alerts run on their own thread and store connection. */
		int64_t every = aclm_config_duration(s.cfg, "alerts.interval");
		struct aclm_notify_opts nopts;
		aclm_notify_opts_from_config(s.cfg, &nopts);
		if (every > 0 && aclm_notify_worker_start(url, &nopts, &sg.alerts_worker) == ACLM_OK) {
			ev_timer_init(&sg.alerts, on_alerts, (double)every, (double)every);
			sg.alerts.data = &sg;
			ev_timer_start(loop, &sg.alerts);
		} else if (every > 0) {
			aclm_warn("server: alerts are off: %s", aclm_errmsg());
		}
	}
	notify("READY=1");
	ev_run(loop, 0);
	server_scheduler_stop(sch);
	s.sch = sch = NULL;
	if (sg.alerts_worker != NULL) {
		ev_timer_stop(loop, &sg.alerts);
		aclm_notify_worker_stop(sg.alerts_worker);
		sg.alerts_worker = NULL;
	}
	ev_signal_stop(loop, &sg.term);
	ev_signal_stop(loop, &sg.intr);
	ev_signal_stop(loop, &sg.hup);
	ev_timer_stop(loop, &sg.housekeeping);
	aclm_info("server: stopped");
	rc = ACLM_OK;
out:
	if (s.http != NULL)
		aclm_http_server_free(s.http);
	for (size_t i = 0; i < s.n_routes; i++)
		free(s.bindings[i]);
	free(s.bindings);
	free(s.routes);
	SSL_CTX_free(s.ssl_ctx);
	if (access_log != NULL && access_log != stderr)
		fclose(access_log);
	aclm_store_close(s.store);
	o->cfg = s.cfg;  /* a reload may have replaced it */
	return rc;
}
