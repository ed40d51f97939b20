/* Upstream choice (round robin with passive health) and the per-worker pool
 * of idle keep-alive connections to upstreams. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "gateway-int.h"

#define POOL_MAX 256
#define POOL_IDLE_MS 30000

int64_t gw_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct gw_upstream *gw_upstream_pick(struct gw_site *site, uint32_t *tried)
{
	unsigned start = atomic_fetch_add(&site->rr, 1);
	int64_t now = gw_now_ms();
	struct gw_upstream *fallback = NULL;

	for (size_t i = 0; i < site->n_ups; i++) {
		size_t k = (start + i) % site->n_ups;
		struct gw_upstream *u = &site->ups[k];

		if (*tried & (1u << k))
			continue;
		if (atomic_load(&u->down_until_ms) > now) {
			if (!fallback)
				fallback = u;
			continue;
		}
		*tried |= 1u << k;
		return u;
	}
	/* Only upstreams marked down are left: try them anyway, the mark may
	 * be stale. */
	if (fallback)
		*tried |= 1u << (size_t)(fallback - site->ups);
	return fallback;
}

void gw_upstream_failed(struct gw_upstream *u, const struct gw_timeouts *to)
{
	atomic_fetch_add(&u->fails, 1);
	atomic_fetch_add(&u->n_failures, 1);
	atomic_store(&u->down_until_ms, gw_now_ms() + (int64_t)(to->fail_timeout * 1000));
}

void gw_upstream_ok(struct gw_upstream *u)
{
	if (atomic_load(&u->fails)) {
		atomic_store(&u->fails, 0);
		atomic_store(&u->down_until_ms, 0);
	}
}

struct pool_entry {
	struct sockaddr_storage addr;
	socklen_t len;
	int fd;
	int64_t since_ms;
};

struct gw_pool {
	struct pool_entry e[POOL_MAX];
	size_t n;
};

struct gw_pool *gw_pool_new(void)
{
	return calloc(1, sizeof(struct gw_pool));
}

void gw_pool_free(struct gw_pool *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++)
		close(p->e[i].fd);
	free(p);
}

static void drop(struct gw_pool *p, size_t i)
{
	close(p->e[i].fd);
	p->e[i] = p->e[--p->n];
}

int gw_pool_take(struct gw_pool *p, const struct sockaddr_storage *addr, socklen_t len)
{
	int64_t now = gw_now_ms();

	for (size_t i = p->n; i-- > 0;) {
		struct pool_entry *e = &p->e[i];
		char c;
		ssize_t r;
		int fd;

		if (now - e->since_ms > POOL_IDLE_MS) {
			drop(p, i);
			continue;
		}
		if (e->len != len || memcmp(&e->addr, addr, len))
			continue;
		/* An idle connection must have nothing to read: EOF or stray bytes
		 * mean the upstream closed it or broke the protocol. */
		r = recv(e->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
		if (r >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
			drop(p, i);
			continue;
		}
		fd = e->fd;
		p->e[i] = p->e[--p->n];
		return fd;
	}
	return -1;
}

void gw_pool_put(struct gw_pool *p, const struct sockaddr_storage *addr, socklen_t len, int fd)
{
	if (p->n == POOL_MAX)
		drop(p, 0);
	p->e[p->n].addr = *addr;
	p->e[p->n].len = len;
	p->e[p->n].fd = fd;
	p->e[p->n].since_ms = gw_now_ms();
	p->n++;
}
