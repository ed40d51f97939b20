/* Active health checks (health_check in gw.yaml): a thread probes every
 * upstream of the running configuration each interval — a TCP connect, and
 * with a path an HTTP GET that must answer 2xx or 3xx — and marks it down
 * (skipped by new requests, as after a passive failure) or up again. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "aclm/err.h"
#include "aclm/log.h"
#include "gateway-int.h"

struct health {
	struct aclm_gateway *gw;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
};

static bool wait_fd(int fd, short events, int64_t deadline_ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int64_t left = deadline_ms - gw_now_ms();

	return left > 0 && poll(&p, 1, (int)left) == 1;
}

/* true when the upstream answers as configured */
static bool probe(const struct gw_upstream *u, const struct aclm_gw_config *cfg)
{
	int64_t deadline = gw_now_ms() + (int64_t)(cfg->health_timeout * 1000);
	int fd = socket(u->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	bool ok = false;
	int err = 0;
	socklen_t len = sizeof(err);
	char req[600], buf[64];
	size_t got = 0;

	if (fd < 0)
		return false;
	if (connect(fd, (const struct sockaddr *)&u->addr, u->addr_len) && errno != EINPROGRESS)
		goto out;
	if (!wait_fd(fd, POLLOUT, deadline) || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) ||
	    err)
		goto out;
	if (!cfg->health_path[0]) {
		ok = true;
		goto out;
	}
	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n"
	         "User-Agent: aclm-gateway-health\r\n\r\n", cfg->health_path, u->host);
	if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req))
		goto out;
	while (got < 12 && wait_fd(fd, POLLIN, deadline)) {
		ssize_t n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	ok = got >= 12 && !strncmp(buf, "HTTP/1.", 7) && (buf[9] == '2' || buf[9] == '3');
out:
	close(fd);
	return ok;
}

static void *health_main(void *arg)
{
	struct health *h = arg;

	pthread_mutex_lock(&h->mu);
	while (!h->stop) {
		struct aclm_gw_config *cfg;
		struct timespec until;
		double interval;

		pthread_mutex_unlock(&h->mu);
		cfg = gw_current(h->gw);
		interval = cfg->health_interval;
		for (size_t i = 0; i < cfg->n_sites && interval > 0; i++)
			for (size_t j = 0; j < cfg->sites[i].n_ups; j++) {
				struct gw_upstream *u = &cfg->sites[i].ups[j];
				bool was_down = atomic_load(&u->down_until_ms) > gw_now_ms();

				if (probe(u, cfg)) {
					if (was_down)
						aclm_info("gateway: upstream %s is up", u->url);
					gw_upstream_ok(u);
				} else {
					if (!was_down)
						aclm_warn("gateway: upstream %s failed its health check",
						          u->url);
					gw_upstream_failed(u, &cfg->to);
				}
			}
		aclm_gw_config_unref(cfg);
		pthread_mutex_lock(&h->mu);
		clock_gettime(CLOCK_REALTIME, &until);
		if (interval <= 0)
			interval = 1;   /* checks switched off by a reload: look again */
		until.tv_sec += (time_t)interval;
		until.tv_nsec += (long)((interval - (double)(time_t)interval) * 1e9);
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		if (!h->stop)
			pthread_cond_timedwait(&h->cv, &h->mu, &until);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

int gw_health_start(struct aclm_gateway *gw)
{
	struct health *h = calloc(1, sizeof(*h));

	if (!h)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	h->gw = gw;
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	if (pthread_create(&h->thread, NULL, health_main, h)) {
		free(h);
		return aclm_error(ACLM_ERR_IO, "cannot start the health-check thread");
	}
	gw->health = h;
	return 0;
}

void gw_health_stop(struct aclm_gateway *gw)
{
	struct health *h = gw->health;

	if (!h)
		return;
	pthread_mutex_lock(&h->mu);
	h->stop = true;
	pthread_cond_signal(&h->cv);
	pthread_mutex_unlock(&h->mu);
	pthread_join(h->thread, NULL);
	pthread_cond_destroy(&h->cv);
	pthread_mutex_destroy(&h->mu);
	free(h);
	gw->health = NULL;
}
