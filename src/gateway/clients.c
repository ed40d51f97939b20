/* Open connections per client address (limits.connections_per_ip), shared
 * by all workers: a chained hash table under one mutex, touched once at
 * accept and once at close. */
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "gateway-int.h"

#define N_BUCKETS 4096

struct client {
	struct client *next;
	unsigned char addr[16];
	unsigned n;
};

static struct client *buckets[N_BUCKETS];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void key_of(const struct sockaddr_storage *ss, unsigned char key[16])
{
	memset(key, 0, 16);
	if (ss->ss_family == AF_INET)
		memcpy(key + 12, &((const struct sockaddr_in *)ss)->sin_addr, 4);
	else if (ss->ss_family == AF_INET6)
		memcpy(key, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
}

static size_t hash(const unsigned char key[16])
{
	uint64_t h = 1469598103934665603ULL;

	for (int i = 0; i < 16; i++)
		h = (h ^ key[i]) * 1099511628211ULL;
	return (size_t)(h % N_BUCKETS);
}

bool gw_clients_enter(const struct sockaddr_storage *peer, unsigned limit)
{
	unsigned char key[16];
	struct client *c;
	size_t b;
	bool ok = true;

	if (!limit)
		return true;
	key_of(peer, key);
	b = hash(key);
	pthread_mutex_lock(&mu);
	for (c = buckets[b]; c && memcmp(c->addr, key, 16); c = c->next)
		;
	if (!c) {
		c = calloc(1, sizeof(*c));
		if (c) {
			memcpy(c->addr, key, 16);
			c->next = buckets[b];
			buckets[b] = c;
		}
	}
	if (!c || c->n >= limit)
		ok = false;
	else
		c->n++;
	pthread_mutex_unlock(&mu);
	return ok;
}

void gw_clients_leave(const struct sockaddr_storage *peer)
{
	unsigned char key[16];
	struct client **pp, *c;

	key_of(peer, key);
	pthread_mutex_lock(&mu);
	for (pp = &buckets[hash(key)]; (c = *pp) && memcmp(c->addr, key, 16); pp = &c->next)
		;
	if (c && c->n && --c->n == 0) {
		*pp = c->next;
		free(c);
	}
	pthread_mutex_unlock(&mu);
}
