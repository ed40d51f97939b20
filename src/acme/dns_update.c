/* dns-01 by RFC 2136 dynamic update, signed with TSIG (RFC 8945,
 * hmac-sha256), sent to the zone's primary; then wait until every
 * authoritative server of the zone (its NS records, addresses from the
 * primary) answers the TXT record.
 *
 * Messages are built and parsed here with bounded cursors; every length
 * read from the network is checked against what is left. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "acme-int.h"
#include "aclm/buf.h"
#include "aclm/err.h"
#include "aclm/log.h"
#include "aclm/str.h"
#include "aclm/timeutil.h"

#define DNS_MAX 4096
enum { T_A = 1, T_NS = 2, T_SOA = 6, T_TXT = 16, T_TSIG = 250, C_IN = 1, C_NONE = 254,
       C_ANY = 255 };

struct msg {
	unsigned char b[DNS_MAX];
	size_t len;
	bool overflow;
};

static void put(struct msg *m, const void *p, size_t n)
{
	if (m->len + n > sizeof(m->b)) {
		m->overflow = true;
		return;
	}
	memcpy(m->b + m->len, p, n);
	m->len += n;
}

static void put16(struct msg *m, unsigned v)
{
	unsigned char x[2] = { (unsigned char)(v >> 8), (unsigned char)v };
	put(m, x, 2);
}

static void put32(struct msg *m, uint32_t v)
{
	unsigned char x[4] = { (unsigned char)(v >> 24), (unsigned char)(v >> 16),
	                       (unsigned char)(v >> 8), (unsigned char)v };
	put(m, x, 4);
}

/* A name in wire form, lower-cased (canonical, as TSIG wants). */
static int put_name(struct msg *m, const char *name)
{
	const char *p = name;

	while (*p != '\0') {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		unsigned char l[64];
		if (n == 0 || n > 63)
			return aclm_error(ACLM_ERR_USAGE, "DNS name '%s': bad label", name);
		l[0] = (unsigned char)n;
		for (size_t i = 0; i < n; i++)
			l[i + 1] = (unsigned char)((p[i] >= 'A' && p[i] <= 'Z') ? p[i] + 32 : p[i]);
		put(m, l, n + 1);
		p += n + (dot != NULL);
	}
	put(m, "", 1);
	return m->overflow ? aclm_error(ACLM_ERR_TOOBIG, "DNS message too large") : ACLM_OK;
}

/* --- TSIG key file (the format of BIND's tsig-keygen) ------------------ */

static int quoted_after(const char *text, const char *word, char *out, size_t out_size)
{
	const char *p = strstr(text, word), *q, *e;

	if (p == NULL || (q = strchr(p + strlen(word), '"')) == NULL ||
	    (e = strchr(q + 1, '"')) == NULL || (size_t)(e - q - 1) >= out_size)
		return ACLM_ERR_PARSE;
	memcpy(out, q + 1, (size_t)(e - q - 1));
	out[e - q - 1] = '\0';
	return ACLM_OK;
}

int acme_rfc2136_load(const char *server, const char *zone, const char *tsig_file,
                      struct acme_rfc2136 *out)
{
	struct aclm_buf text;
	char secret_b64[256];
	unsigned char dec[256];
	int n, rc;

	memset(out, 0, sizeof(*out));
	if (server == NULL || zone == NULL || tsig_file == NULL)
		return aclm_error(ACLM_ERR_USAGE, "RFC 2136 needs --dns-server, --dns-zone and --tsig-key");
	aclm_strlcpy(out->server, server, sizeof(out->server));
	aclm_strlcpy(out->zone, zone, sizeof(out->zone));
	if (out->zone[0] != '\0' && out->zone[strlen(out->zone) - 1] == '.')
		out->zone[strlen(out->zone) - 1] = '\0';
	aclm_buf_init(&text, 64 * 1024);
	if ((rc = aclm_buf_read_file(&text, tsig_file)) != ACLM_OK)
		return aclm_error_wrap(rc, "TSIG key");
	if (quoted_after((const char *)text.data, "key", out->key_name, sizeof(out->key_name)) != ACLM_OK ||
	    quoted_after((const char *)text.data, "secret", secret_b64, sizeof(secret_b64)) != ACLM_OK) {
		aclm_buf_free_secret(&text);
		return aclm_error(ACLM_ERR_PARSE, "%s: not a TSIG key file (key \"NAME\" { algorithm "
		                  "hmac-sha256; secret \"BASE64\"; };)", tsig_file);
	}
	if (strstr((const char *)text.data, "hmac-sha256") == NULL) {
		aclm_buf_free_secret(&text);
		return aclm_error(ACLM_ERR_UNSUPPORTED, "%s: only hmac-sha256 TSIG keys are supported",
		                  tsig_file);
	}
	aclm_buf_free_secret(&text);
	n = EVP_DecodeBlock(dec, (const unsigned char *)secret_b64, (int)strlen(secret_b64));
	if (n <= 0) {
		OPENSSL_cleanse(secret_b64, sizeof(secret_b64));
		return aclm_error(ACLM_ERR_PARSE, "%s: the secret is not base64", tsig_file);
	}
	for (size_t i = strlen(secret_b64); i > 0 && secret_b64[i - 1] == '='; i--)
		n--;  /* EVP_DecodeBlock counts padding as zero bytes */
	memcpy(out->secret, dec, (size_t)n);
	out->secret_len = (size_t)n;
	OPENSSL_cleanse(dec, sizeof(dec));
	OPENSSL_cleanse(secret_b64, sizeof(secret_b64));
	return ACLM_OK;
}

/* Sign m (complete but for the TSIG RR) and append the TSIG RR. */
static int tsig_sign(struct msg *m, const struct acme_rfc2136 *d)
{
	struct msg vars;
	unsigned char mac[32];
	unsigned int mac_len = 0;
	uint64_t now = (uint64_t)time(NULL);
	unsigned id = (unsigned)m->b[0] << 8 | m->b[1];
	unsigned ar;
	unsigned char input[2 * DNS_MAX];
	int rc;

	memset(&vars, 0, sizeof(vars));
	if ((rc = put_name(&vars, d->key_name)) != ACLM_OK)
		return rc;
	put16(&vars, C_ANY);
	put32(&vars, 0);
	put_name(&vars, "hmac-sha256");
	put16(&vars, (unsigned)(now >> 32));
	put32(&vars, (uint32_t)now);
	put16(&vars, 300);   /* fudge */
	put16(&vars, 0);     /* error */
	put16(&vars, 0);     /* other len */
	/* MAC over the message and then the TSIG variables (RFC 8945 4.3.3) */
	memcpy(input, m->b, m->len);
	memcpy(input + m->len, vars.b, vars.len);
	if (HMAC(EVP_sha256(), d->secret, (int)d->secret_len, input, m->len + vars.len, mac,
	         &mac_len) == NULL)
		return aclm_error_openssl(ACLM_ERR_CRYPTO, "TSIG: HMAC-SHA256");
	put_name(m, d->key_name);
	put16(m, T_TSIG);
	put16(m, C_ANY);
	put32(m, 0);
	{
		struct msg rd;
		memset(&rd, 0, sizeof(rd));
		put_name(&rd, "hmac-sha256");
		put16(&rd, (unsigned)(now >> 32));
		put32(&rd, (uint32_t)now);
		put16(&rd, 300);
		put16(&rd, mac_len);
		put(&rd, mac, mac_len);
		put16(&rd, id);
		put16(&rd, 0);
		put16(&rd, 0);
		put16(m, (unsigned)rd.len);
		put(m, rd.b, rd.len);
	}
	ar = (unsigned)m->b[10] << 8 | m->b[11];
	ar++;
	m->b[10] = (unsigned char)(ar >> 8);
	m->b[11] = (unsigned char)ar;
	OPENSSL_cleanse(mac, sizeof(mac));
	return m->overflow ? aclm_error(ACLM_ERR_TOOBIG, "DNS message too large") : ACLM_OK;
}

/* --- transport ---------------------------------------------------------- */

static int split_hostport(const char *s, char *host, size_t host_size, char *port)
{
	const char *colon = strrchr(s, ':');

	if (colon == NULL) {
		aclm_strlcpy(host, s, host_size);
		snprintf(port, 8, "53");
		return ACLM_OK;
	}
	if ((size_t)(colon - s) >= host_size || strlen(colon + 1) > 5)
		return aclm_error(ACLM_ERR_USAGE, "DNS server '%s' is not ADDR:PORT", s);
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	snprintf(port, 8, "%s", colon + 1);
	return ACLM_OK;
}

/* One UDP exchange (3 tries, 2 s each); the answer must carry our id. */
static int exchange(const char *server, const struct msg *q, struct msg *a)
{
	char host[128], port[8];
	struct addrinfo hints, *ai = NULL;
	int fd = -1, rc, e;

	if ((rc = split_hostport(server, host, sizeof(host), port)) != ACLM_OK)
		return rc;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	if ((e = getaddrinfo(host, port, &hints, &ai)) != 0)
		return aclm_error(ACLM_ERR_USAGE, "DNS server %s: %s (give an IP address)", server,
		                  gai_strerror(e));
	fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		rc = aclm_error(ACLM_ERR_IO, "DNS server %s: %s", server, strerror(errno));
		goto out;
	}
	rc = aclm_error(ACLM_ERR_IO, "DNS server %s does not answer (3 tries)", server);
	for (int attempt = 0; attempt < 3; attempt++) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		ssize_t n;
		if (send(fd, q->b, q->len, 0) < 0) {
			rc = aclm_error(ACLM_ERR_IO, "DNS server %s: %s", server, strerror(errno));
			break;
		}
		while (poll(&pfd, 1, 2000) == 1) {
			n = recv(fd, a->b, sizeof(a->b), 0);
			if (n < 0) {
				rc = aclm_error(ACLM_ERR_IO, "DNS server %s: %s", server, strerror(errno));
				attempt = 3;
				break;
			}
			if (n >= 12 && a->b[0] == q->b[0] && a->b[1] == q->b[1]) {
				a->len = (size_t)n;
				rc = ACLM_OK;
				goto out;
			}
		}
	}
out:
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	return rc;
}

static void header(struct msg *m, unsigned flags, unsigned qd, unsigned an, unsigned ns,
                   unsigned ar)
{
	unsigned char id[2];

	RAND_bytes(id, sizeof(id));
	memset(m, 0, sizeof(*m));
	put(m, id, 2);
	put16(m, flags);
	put16(m, qd);
	put16(m, an);
	put16(m, ns);
	put16(m, ar);
}

static const char *rcode_name(int rc)
{
	static const char *const names[] = { "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP",
	                                     "REFUSED", "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH",
	                                     "NOTZONE" };
	return rc >= 0 && rc <= 10 ? names[rc] : "?";
}

int acme_rfc2136_update(const struct acme_rfc2136 *d, bool add, const char *fqdn,
                        const char *value)
{
	struct msg m, a;
	size_t vlen = strlen(value);
	int rc;

	if (vlen > 255)
		return aclm_error(ACLM_ERR_USAGE, "TXT value too long");
	header(&m, 5u << 11, 1, 0, 1, 0);  /* opcode UPDATE; zone, -, update, - */
	if ((rc = put_name(&m, d->zone)) != ACLM_OK)
		return rc;
	put16(&m, T_SOA);
	put16(&m, C_IN);
	if ((rc = put_name(&m, fqdn)) != ACLM_OK)
		return rc;
	put16(&m, T_TXT);
	put16(&m, add ? C_IN : C_NONE);   /* NONE: delete this RR (RFC 2136 2.5.4) */
	put32(&m, add ? 60 : 0);
	put16(&m, (unsigned)vlen + 1);
	{
		unsigned char l = (unsigned char)vlen;
		put(&m, &l, 1);
		put(&m, value, vlen);
	}
	if ((rc = tsig_sign(&m, d)) != ACLM_OK)
		return rc;
	memset(&a, 0, sizeof(a));
	if ((rc = exchange(d->server, &m, &a)) != ACLM_OK)
		return aclm_error_wrap(rc, "dns-01: RFC 2136 %s of %s", add ? "add" : "delete", fqdn);
	if ((a.b[3] & 0x0f) != 0)
		return aclm_error(ACLM_ERR_IO, "dns-01: RFC 2136 %s of %s in zone %s at %s: %s%s",
		                  add ? "add" : "delete", fqdn, d->zone, d->server, rcode_name(a.b[3] & 0x0f),
		                  (a.b[3] & 0x0f) == 9 ? " (TSIG key refused)" :
		                  (a.b[3] & 0x0f) == 5 ? " (updates not allowed for this key)" : "");
	aclm_debug("dns-01: %s %s TXT at %s", add ? "added" : "deleted", fqdn, d->server);
	return ACLM_OK;
}

/* --- queries and the propagation check ------------------------------------ */

/* Read a possibly compressed name at *off into out (dotted, no final dot);
 * *off moves past it in the message. */
static int read_name(const struct msg *m, size_t *off, char *out, size_t out_size)
{
	size_t p = *off, o = 0;
	bool jumped = false;
	int hops = 0;

	out[0] = '\0';
	for (;;) {
		unsigned l;
		if (p >= m->len || ++hops > 128)
			return ACLM_ERR_PARSE;
		l = m->b[p];
		if ((l & 0xc0) == 0xc0) {
			if (p + 1 >= m->len)
				return ACLM_ERR_PARSE;
			if (!jumped)
				*off = p + 2;
			jumped = true;
			p = (size_t)(l & 0x3f) << 8 | m->b[p + 1];
			continue;
		}
		if (l > 63)
			return ACLM_ERR_PARSE;
		if (l == 0) {
			if (!jumped)
				*off = p + 1;
			out[o] = '\0';
			return ACLM_OK;
		}
		if (p + 1 + l > m->len || o + l + 2 > out_size)
			return ACLM_ERR_PARSE;
		if (o > 0)
			out[o++] = '.';
		memcpy(out + o, m->b + p + 1, l);
		o += l;
		p += 1 + l;
	}
}

typedef int (*rr_fn)(void *ctx, const struct msg *m, unsigned type, size_t rdata, size_t rdlen);

static int query(const char *server, const char *name, unsigned type, rr_fn fn, void *ctx)
{
	struct msg q, a;
	size_t off = 12;
	char tmp[300];
	unsigned qd, an;
	int rc;

	header(&q, 0, 1, 0, 0, 0);
	if ((rc = put_name(&q, name)) != ACLM_OK)
		return rc;
	put16(&q, type);
	put16(&q, C_IN);
	memset(&a, 0, sizeof(a));
	if ((rc = exchange(server, &q, &a)) != ACLM_OK)
		return rc;
	qd = (unsigned)a.b[4] << 8 | a.b[5];
	an = (unsigned)a.b[6] << 8 | a.b[7];
	for (unsigned i = 0; i < qd; i++) {
		if (read_name(&a, &off, tmp, sizeof(tmp)) != ACLM_OK || off + 4 > a.len)
			return aclm_error(ACLM_ERR_PARSE, "DNS answer from %s is malformed", server);
		off += 4;
	}
	for (unsigned i = 0; i < an; i++) {
		unsigned t, rdlen;
		if (read_name(&a, &off, tmp, sizeof(tmp)) != ACLM_OK || off + 10 > a.len)
			return aclm_error(ACLM_ERR_PARSE, "DNS answer from %s is malformed", server);
		t = (unsigned)a.b[off] << 8 | a.b[off + 1];
		rdlen = (unsigned)a.b[off + 8] << 8 | a.b[off + 9];
		off += 10;
		if (off + rdlen > a.len)
			return aclm_error(ACLM_ERR_PARSE, "DNS answer from %s is truncated", server);
		if ((rc = fn(ctx, &a, t, off, rdlen)) != 0)
			return rc > 0 ? ACLM_OK : rc;
		off += rdlen;
	}
	return ACLM_OK;
}

struct txt_ctx {
	const char *value;
	bool found;
};

static int txt_fn(void *ctx, const struct msg *m, unsigned type, size_t rd, size_t len)
{
	struct txt_ctx *t = ctx;
	size_t vl = strlen(t->value);

	if (type == T_TXT && len >= 1 && m->b[rd] == vl && len >= 1 + vl &&
	    memcmp(m->b + rd + 1, t->value, vl) == 0) {
		t->found = true;
		return 1;
	}
	return 0;
}

struct ns_ctx {
	char names[8][256];
	int n;
};

static int ns_fn(void *ctx, const struct msg *m, unsigned type, size_t rd, size_t len)
{
	struct ns_ctx *c = ctx;
	size_t off = rd;

	if (type == T_NS && c->n < 8 && read_name(m, &off, c->names[c->n], 256) == ACLM_OK)
		c->n++;
	(void)len;
	return 0;
}

struct a_ctx {
	char addr[8][64];
	int n;
};

static int a_fn(void *ctx, const struct msg *m, unsigned type, size_t rd, size_t len)
{
	struct a_ctx *c = ctx;

	if (type == T_A && len == 4 && c->n < 8)
		inet_ntop(AF_INET, m->b + rd, c->addr[c->n++], 64);
	return 0;
}

int acme_dns_wait_txt(const struct acme_rfc2136 *d, const char *fqdn, const char *value,
                      int64_t timeout)
{
	char servers[9][140], host[128], port[8];
	struct ns_ctx ns;
	int n_servers = 0, rc;
	int64_t end = aclm_now() + (timeout > 0 ? timeout : 120);

	memset(&ns, 0, sizeof(ns));
	if ((rc = split_hostport(d->server, host, sizeof(host), port)) != ACLM_OK)
		return rc;
	aclm_strlcpy(servers[n_servers++], d->server, sizeof(servers[0]));
	/* the zone's authoritative servers, addresses as the primary knows them */
	if (query(d->server, d->zone, T_NS, ns_fn, &ns) == ACLM_OK) {
		for (int i = 0; i < ns.n; i++) {
			struct a_ctx a;
			memset(&a, 0, sizeof(a));
			if (query(d->server, ns.names[i], T_A, a_fn, &a) != ACLM_OK)
				continue;
			for (int j = 0; j < a.n && n_servers < 9; j++) {
				char s[140];
				bool dup = false;
				snprintf(s, sizeof(s), "%s:%s", a.addr[j], port);
				for (int k = 0; k < n_servers; k++)
					if (strcmp(servers[k], s) == 0)
						dup = true;
				if (!dup)
					aclm_strlcpy(servers[n_servers++], s, sizeof(servers[0]));
			}
		}
	}
	for (int i = 0; i < n_servers; i++) {
		for (int attempt = 0;; attempt++) {
			struct txt_ctx t = { value, false };
			rc = query(servers[i], fqdn, T_TXT, txt_fn, &t);
			if (rc == ACLM_OK && t.found)
				break;
			if (aclm_now() >= end)
				return aclm_error(ACLM_ERR_IO, "dns-01: %s TXT is not served by %s after %llds",
				                  fqdn, servers[i], (long long)(timeout > 0 ? timeout : 120));
			if (attempt % 5 == 4)
				aclm_info("dns-01: waiting for %s at %s", fqdn, servers[i]);
			struct timespec ts = { 0, 200 * 1000000L };
			nanosleep(&ts, NULL);
		}
		aclm_debug("dns-01: %s answered by %s", fqdn, servers[i]);
	}
	return ACLM_OK;
}
