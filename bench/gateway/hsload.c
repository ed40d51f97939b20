/* Load tool of bench/gateway: TLS 1.3 full handshakes over real sockets,
 * non-blocking OpenSSL on epoll, many connections at once, no resumption.
 *
 *   hsload rate PORT CONCURRENCY SECONDS GROUPS   -> "handshakes N per_s R"
 *   hsload hold PORT COUNT GROUPS SECONDS         -> opens COUNT TLS
 *        connections (256 handshakes at a time), prints "held N failed F"
 *        and keeps them idle SECONDS.
 *
 * Each connection: connect, handshake (SNI "bench.test", the given group
 * list), then close (rate) or stay (hold). */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "aclm/pqprov.h"

struct slot {
	int fd;
	SSL *ssl;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int port;
static int ep;

/* Connections come from 127.0.0.2 .. 127.0.0.(1 + N_SOURCES) in turn: the
 * ephemeral ports of one source address towards one server port (28,000
 * by default, fewer while earlier runs' connections sit in TIME_WAIT) do
 * not then bound how many connections a run can hold. */
#define N_SOURCES 8
#define HOLD_INFLIGHT 256

static int start(SSL_CTX *ctx, struct slot *s, int idx)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct sockaddr_in src = { .sin_family = AF_INET };
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)idx };
	int one = 1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	src.sin_addr.s_addr = htonl(INADDR_LOOPBACK + 1 + (uint32_t)(idx % N_SOURCES));
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (s->fd < 0)
		return -1;
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* the port is chosen at connect, for the whole 4-tuple */
	setsockopt(s->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	if (bind(s->fd, (struct sockaddr *)&src, sizeof(src))) {
		close(s->fd);
		return -1;
	}
	if (connect(s->fd, (struct sockaddr *)&a, sizeof(a)) && errno != EINPROGRESS) {
		close(s->fd);
		return -1;
	}
	s->ssl = SSL_new(ctx);
	SSL_set_fd(s->ssl, s->fd);
	SSL_set_tlsext_host_name(s->ssl, "bench.test");
	SSL_set_connect_state(s->ssl);
	epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
	return 0;
}

static void finish(struct slot *s)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
	SSL_free(s->ssl);
	close(s->fd);
	s->ssl = NULL;
	s->fd = -1;
}

/* 1 done, 0 in progress, -1 failed */
static int step(struct slot *s, int idx)
{
	int r = SSL_do_handshake(s->ssl);
	struct epoll_event ev = { 0 };

	if (r == 1)
		return 1;
	switch (SSL_get_error(s->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		ev.events = EPOLLIN;
		break;
	case SSL_ERROR_WANT_WRITE:
		ev.events = EPOLLOUT;
		break;
	default:
		ERR_clear_error();
		return -1;
	}
	ev.data.u32 = (uint32_t)idx;
	epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
	return 0;
}

int main(int argc, char **argv)
{
	struct rlimit rl;
	SSL_CTX *ctx;
	struct slot *slots;
	struct epoll_event evs[256];
	const char *mode, *groups;
	int n, n_started, done = 0, failed = 0;
	double secs = 0, t0, end;
	bool hold;

	if (argc < 5) {
		fprintf(stderr, "usage: hsload rate PORT CONC SECONDS GROUPS | hold PORT COUNT GROUPS SECONDS\n");
		return 2;
	}
	mode = argv[1];
	hold = !strcmp(mode, "hold");
	port = (int)strtol(argv[2], NULL, 10);
	n = (int)strtol(argv[3], NULL, 10);
	if (argc < 6)
		return 2;
	if (hold) {
		groups = argv[4];
		secs = strtod(argv[5], NULL);
	} else {
		secs = strtod(argv[4], NULL);
		groups = argv[5];
	}
	/* one descriptor per connection held */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur < (rlim_t)n + 64) {
			fprintf(stderr, "hsload: %d connections need %d descriptors; the limit is %lu "
			        "(ulimit -Hn)\n", n, n + 64, (unsigned long)rl.rlim_cur);
			return 1;
		}
	}
	if (aclm_pqprov_load(NULL)) {
		fprintf(stderr, "hsload: cannot load aclm-pq\n");
		return 1;
	}
	ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if (!SSL_CTX_set1_groups_list(ctx, groups)) {
		fprintf(stderr, "hsload: groups %s\n", groups);
		return 1;
	}
	ep = epoll_create1(0);
	slots = calloc((size_t)n, sizeof(*slots));
	/* hold: at most HOLD_INFLIGHT handshakes at a time, as clients arrive,
	 * not every SYN at once (which measures handshake timeouts instead) */
	n_started = hold && n > HOLD_INFLIGHT ? HOLD_INFLIGHT : n;
	for (int i = 0; i < n_started; i++)
		if (start(ctx, &slots[i], i))
			failed++;
	t0 = now();
	end = hold ? t0 + 120 : t0 + secs;
	while (now() < end) {
		int k = epoll_wait(ep, evs, 256, 100);

		for (int e = 0; e < k; e++) {
			int i = (int)evs[e].data.u32;
			struct slot *s = &slots[i];
			int r;

			if (!s->ssl)
				continue;
			r = step(s, i);
			if (r == 0)
				continue;
			if (r < 0)
				failed++;
			else
				done++;
			if (hold) {
				if (r > 0) {
					/* kept open and idle */
					epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
				} else {
					finish(s);
				}
				for (; n_started < n; n_started++)
					if (start(ctx, &slots[n_started], n_started) == 0) {
						n_started++;
						break;
					} else {
						failed++;
					}
				if (done + failed >= n)
					goto held;
				continue;
			}
			finish(s);
			if (start(ctx, s, i))
				failed++;
		}
	}
	if (hold)
		goto held;
	printf("handshakes %d per_s %.0f failed %d\n", done, done / (now() - t0), failed);
	return 0;
held:
	printf("held %d failed %d\n", done, failed);
	fflush(stdout);
	sleep((unsigned)secs);
	return 0;
}
