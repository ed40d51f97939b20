/* The gateway's workers: N threads, each with its own libev loop and its
 * own SO_REUSEPORT socket on every listen address (the kernel spreads new
 * connections over them), and the configuration snapshot they share. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ev.h>
#include <openssl/rand.h>

#include "aclm/err.h"
#include "aclm/log.h"
#include "aclm/pqprov.h"
#include "gateway-int.h"

struct aclm_gw_config *gw_current(struct aclm_gateway *gw)
{
	struct aclm_gw_config *cfg;

	pthread_mutex_lock(&gw->mu);
	cfg = gw->cfg;
	gw_config_ref(cfg);
	pthread_mutex_unlock(&gw->mu);
	return cfg;
}

/* "host:port" / "[v6]:port" -> a bound, listening, non-blocking socket.
 * defer_secs > 0 (the TLS listeners, whose clients speak first): a
 * connection is accepted once its first bytes (the ClientHello) are there,
 * for at most that long (TCP_DEFER_ACCEPT): the accept and the first
 * SSL_do_handshake then happen in one wakeup, without a read that finds
 * nothing; a peer that connects and never sends costs no connection. */
static int listen_on(const char *addr, int defer_secs, int *out)
{
	char host[128];
	const char *colon = strrchr(addr, ':');
	struct addrinfo hints = { 0 }, *res = NULL;
	size_t hlen = colon ? (size_t)(colon - addr) : 0;
	int fd = -1, one = 1, grc, rc = 0;

	if (!colon || hlen >= sizeof(host))
		return aclm_error(ACLM_ERR_CONFIG, "listen %s: not host:port", addr);
	memcpy(host, addr, hlen);
	host[hlen] = '\0';
	if (host[0] == '[' && hlen >= 2 && host[hlen - 1] == ']') {
		memmove(host, host + 1, hlen - 2);
		host[hlen - 2] = '\0';
	}
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	grc = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &res);
	if (grc || !res)
		return aclm_error(ACLM_ERR_CONFIG, "listen %s: %s", addr, gai_strerror(grc));
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = aclm_error(ACLM_ERR_IO, "listen %s: socket: %s", addr, strerror(errno));
		goto out;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (res->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	/* accepted sockets inherit it (Linux): no setsockopt per connection */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (defer_secs > 0)
		setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer_secs, sizeof(defer_secs));
	if (bind(fd, res->ai_addr, res->ai_addrlen) || listen(fd, 4096)) {
		rc = aclm_error(ACLM_ERR_IO, "listen %s: %s", addr, strerror(errno));
		goto out;
	}
	*out = fd;
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	freeaddrinfo(res);
	return rc;
}

static void accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct gw_worker *w = io->data;
	bool is_tls = true;

	for (size_t l = 0; l < w->n_listen; l++)
		if (w->listen_fds[l] == io->fd)
			is_tls = w->listen_tls[l];
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage peer;
		socklen_t len = sizeof(peer);
		int fd = accept4(io->fd, (struct sockaddr *)&peer, &len,
		                 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				aclm_warn("gateway: accept: %s", strerror(errno));
			return;
		}
		gw_proxy_accept(w, fd, &peer, len, is_tls);
	}
}

static void stop_cb(struct ev_loop *loop, ev_async *a, int revents)
{
	ev_break(loop, EVBREAK_ALL);
}

static void *worker_main(void *arg)
{
	struct gw_worker *w = arg;

	ev_run(w->loop, 0);
	return NULL;
}

int aclm_gateway_new(struct aclm_gw_config *cfg, struct aclm_gateway **out)
{
	struct aclm_gateway *gw = NULL;
	int rc;

	*out = NULL;
	if (aclm_pqprov_load(NULL)) {
		rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "loading the aclm-pq provider");
		goto fail;
	}
	gw = calloc(1, sizeof(*gw));
	if (!gw) {
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
		goto fail;
	}
	pthread_mutex_init(&gw->mu, NULL);
	if ((rc = gw_tls_build(cfg)))
		goto fail;
	gw->cfg = cfg;
	*out = gw;
	return 0;
fail:
	aclm_gw_config_unref(cfg);
	free(gw);
	return rc;
}

int aclm_gateway_start(struct aclm_gateway *gw)
{
	struct aclm_gw_config *cfg = gw->cfg;
	unsigned n = cfg->workers;
	int rc;

	if (n == 0) {
		long cores = sysconf(_SC_NPROCESSORS_ONLN);

		n = cores > 0 && cores < 256 ? (unsigned)cores : 1;
	}
	/* A peer that resets while OpenSSL writes would otherwise end us. */
	signal(SIGPIPE, SIG_IGN);
	/* Every connection takes one descriptor, two while proxied. */
	{
		struct rlimit rl;

		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	if ((rc = gw_log_open(cfg->access_log)))
		return rc;
	gw->workers = calloc(n, sizeof(*gw->workers));
	if (!gw->workers)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	for (unsigned i = 0; i < n; i++) {
		struct gw_worker *w = &gw->workers[i];
		ev_io *ios;
		ev_async *stop;

		w->gw = gw;
		w->id = i;
		w->loop = ev_loop_new(EVFLAG_AUTO);
		w->pool = gw_pool_new();
		ios = calloc(cfg->n_listen + cfg->n_http_listen, sizeof(*ios));
		stop = calloc(1, sizeof(*stop));
		w->accept_watchers = ios;
		w->stop_async = stop;
		gw->n_workers = i + 1;
		if (!w->loop || !w->pool || !ios || !stop)
			return aclm_error(ACLM_ERR_NOMEM, "out of memory");
		for (size_t l = 0; l < cfg->n_listen + cfg->n_http_listen; l++) {
			bool is_tls = l < cfg->n_listen;

			if ((rc = listen_on(is_tls ? cfg->listen[l] : cfg->http_listen[l - cfg->n_listen],
			                    !is_tls ? 0 : cfg->to.handshake < 60 ? (int)cfg->to.handshake + 1 : 60,
			                    &w->listen_fds[l])))
				return rc;
			w->listen_tls[l] = is_tls;
			w->n_listen = l + 1;
			ev_io_init(&ios[l], accept_cb, w->listen_fds[l], EV_READ);
			ios[l].data = w;
			ev_io_start(w->loop, &ios[l]);
		}
		ev_async_init(stop, stop_cb);
		ev_async_start(w->loop, stop);
	}
	if (cfg->admin[0] && (rc = gw_admin_start(gw, cfg->admin)))
		return rc;
	if ((aclm_gw_config_needs_acme(cfg) || aclm_gw_config_needs_ca(cfg)) &&
	    (rc = gw_acme_start(gw)))
		return rc;
	if (cfg->health_interval > 0 && (rc = gw_health_start(gw)))
		return rc;
	if ((rc = gw_ocsp_start(gw)))
		return rc;
	for (unsigned i = 0; i < gw->n_workers; i++)
		if (pthread_create(&gw->workers[i].thread, NULL, worker_main, &gw->workers[i])) {
			gw->n_workers = i;
			return aclm_error(ACLM_ERR_IO, "cannot start worker thread %u", i);
		}
	for (unsigned i = 0; i < gw->n_workers; i++)
		gw->workers[i].thread_started = true;
	aclm_info("gateway: %u workers on %zu listeners, %zu sites", gw->n_workers,
	          cfg->n_listen, cfg->n_sites);
	return 0;
}

int aclm_gateway_reload(struct aclm_gateway *gw)
{
	struct aclm_gw_config *next = NULL, *old;
	int rc;

	if ((rc = aclm_gw_config_load(gw->cfg->path, &next)))
		return rc;
	if ((rc = gw_acme_reload_check(gw, next)) || (rc = gw_tls_build(next))) {
		aclm_gw_config_unref(next);
		return rc;
	}
	/* Listeners, workers and the admin address stay as started. */
	next->n_listen = gw->cfg->n_listen;
	memcpy(next->listen, gw->cfg->listen, sizeof(next->listen));
	next->n_http_listen = gw->cfg->n_http_listen;
	memcpy(next->http_listen, gw->cfg->http_listen, sizeof(next->http_listen));
	next->workers = gw->cfg->workers;
	memcpy(next->admin, gw->cfg->admin, sizeof(next->admin));
	pthread_mutex_lock(&gw->mu);
	old = gw->cfg;
	gw->cfg = next;
	pthread_mutex_unlock(&gw->mu);
	aclm_gw_config_unref(old);
	aclm_info("gateway: configuration %s reloaded (%zu sites)", next->path, next->n_sites);
	return 0;
}

static bool mtime_differs(const char *path, const struct timespec *ts)
{
	struct stat st;

	/* A missing file (being replaced, or not issued yet): look again
	 * next time. */
	if (stat(path, &st))
		return false;
	return st.st_mtim.tv_sec != ts->tv_sec || st.st_mtim.tv_nsec != ts->tv_nsec;
}

void aclm_gateway_tick(struct aclm_gateway *gw)
{
	struct aclm_gw_config *cfg = gw_current(gw);
	int64_t now = gw_now_ms();

	if (!gw->next_rotation_ms) {
		gw->next_rotation_ms = now + (int64_t)(cfg->ticket_rotation * 1000);
	} else if (now >= gw->next_rotation_ms) {
		if (gw_tickets_rotate())
			aclm_err("gateway: %s", aclm_errmsg());
		gw->next_rotation_ms = now + (int64_t)(cfg->ticket_rotation * 1000);
	}
	aclm_gw_config_unref(cfg);
}

bool aclm_gateway_certs_changed(struct aclm_gateway *gw)
{
	struct aclm_gw_config *cfg = gw_current(gw);
	bool changed = false;

	for (size_t i = 0; i < cfg->n_sites && !changed; i++)
		for (size_t j = 0; j < cfg->sites[i].n_certs && !changed; j++)
			changed = mtime_differs(cfg->sites[i].certs[j].cert,
			                        &cfg->sites[i].certs[j].cert_mtime) ||
			          mtime_differs(cfg->sites[i].certs[j].key,
			                        &cfg->sites[i].certs[j].key_mtime);
	aclm_gw_config_unref(cfg);
	return changed;
}

void aclm_gateway_free(struct aclm_gateway *gw)
{
	if (!gw)
		return;
	for (unsigned i = 0; i < gw->n_workers; i++)
		if (gw->workers[i].thread_started)
			ev_async_send(gw->workers[i].loop, gw->workers[i].stop_async);
	for (unsigned i = 0; i < gw->n_workers; i++)
		if (gw->workers[i].thread_started)
			pthread_join(gw->workers[i].thread, NULL);
	gw_admin_stop(gw);
	/* OCSP of ca sites asks the certificate thread's store */
	gw_ocsp_stop(gw);
	gw_acme_stop(gw);
	gw_health_stop(gw);
	for (unsigned i = 0; i < gw->n_workers; i++) {
		struct gw_worker *w = &gw->workers[i];

		/* Connections still open are abandoned with their loop: the
		 * process is about to exit. */
		for (size_t l = 0; l < w->n_listen; l++)
			close(w->listen_fds[l]);
		gw_pool_free(w->pool);
		gw_proxy_worker_free(w);
		if (w->loop)
			ev_loop_destroy(w->loop);
		free(w->accept_watchers);
		free(w->stop_async);
	}
	free(gw->workers);
	gw_log_close();
	aclm_gw_config_unref(gw->cfg);
	pthread_mutex_destroy(&gw->mu);
	free(gw);
}
