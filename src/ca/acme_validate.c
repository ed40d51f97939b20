/* Validation of ACME challenges, run off the event loop (any thread, no
 * store): http-01 (RFC 8555 8.3, redirects bounded), tls-alpn-01 (RFC
 * 8737: ALPN acme-tls/1, the id-pe-acmeIdentifier extension) and dns-01
 * (RFC 8555 8.4: TXT at _acme-challenge through the configured resolver).
 * Every step has a time limit and a size limit. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <strings.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "aclm/buf.h"
#include "aclm/ca.h"
#include "aclm/err.h"
#include "aclm/str.h"
#include "ca-int.h"

#define HTTP01_MAX_BODY 8192
#define HTTP01_MAX_REDIRECTS 3

static void fail(struct aclm_ca_acme_validation *v, const char *problem, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fail(struct aclm_ca_acme_validation *v, const char *problem, const char *fmt, ...)
{
	va_list ap;

	v->ok = false;
	aclm_strlcpy(v->problem, problem, sizeof(v->problem));
	va_start(ap, fmt);
	vsnprintf(v->error, sizeof(v->error), fmt, ap);
	va_end(ap);
}

static void digest_b64(const char *text, char out[64])
{
	unsigned char md[32];
	unsigned int n = 0;

	EVP_Digest(text, strlen(text), md, &n, EVP_sha256(), NULL);
	ca_b64url_encode(md, 32, out, 64);
}

/* --- http-01 ------------------------------------------------------------------ */

struct body_buf {
	char data[HTTP01_MAX_BODY + 1];
	size_t len;
	bool too_big;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct body_buf *b = arg;
	size_t len = size * n;

	if (b->len + len > HTTP01_MAX_BODY) {
		b->too_big = true;
		return 0;
	}
	memcpy(b->data + b->len, p, len);
	b->len += len;
	b->data[b->len] = '\0';
	return len;
}

static void http01(const struct aclm_ca_acme_opts *o, struct aclm_ca_acme_validation *v)
{
	CURL *c = curl_easy_init();
	struct curl_slist *connect_to = NULL;
	struct body_buf *b = calloc(1, sizeof(*b));
	char url[512], ct[300];
	long status = 0;
	bool v6 = strcmp(v->ident_type, "ip") == 0 && strchr(v->value, ':') != NULL;
	CURLcode cc;

	if (c == NULL || b == NULL) {
		fail(v, "serverInternal", "out of memory");
		goto out;
	}
	snprintf(url, sizeof(url), "http://%s%s%s:%d/.well-known/acme-challenge/%s", v6 ? "[" : "",
	         v->value, v6 ? "]" : "", o->http01_port, v->token);
	if (o->connect_to != NULL && strcmp(v->ident_type, "dns") == 0) {
		/* Every name to the one configured address (a lab or test network). */
		snprintf(ct, sizeof(ct), "::%s:", o->connect_to);
		connect_to = curl_slist_append(NULL, ct);
		curl_easy_setopt(c, CURLOPT_CONNECT_TO, connect_to);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, (long)HTTP01_MAX_REDIRECTS);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(o->validation_timeout * 1000));
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(o->validation_timeout * 1000));
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);  /* RFC 8555 8.3: redirects to https */
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "aclm-ca-validator");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
	cc = curl_easy_perform(c);
	if (b->too_big) {
		fail(v, "unauthorized", "http-01 %s: response larger than %d bytes", url,
		     HTTP01_MAX_BODY);
		goto out;
	}
	if (cc != CURLE_OK) {
		fail(v, cc == CURLE_TOO_MANY_REDIRECTS ? "unauthorized" : "connection",
		     "http-01 %s: %s", url, curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		fail(v, "unauthorized", "http-01 %s: HTTP %ld", url, status);
		goto out;
	}
	while (b->len > 0 && (b->data[b->len - 1] == '\n' || b->data[b->len - 1] == '\r' ||
	                      b->data[b->len - 1] == ' ' || b->data[b->len - 1] == '\t'))
		b->data[--b->len] = '\0';
	if (strcmp(b->data, v->keyauth) != 0) {
		fail(v, "unauthorized", "http-01 %s: the key authorization does not match", url);
		goto out;
	}
	v->ok = true;
out:
	curl_slist_free_all(connect_to);
	curl_easy_cleanup(c);
	free(b);
}

/* --- tls-alpn-01 ---------------------------------------------------------------- */

static int connect_timeout(const char *host, int port, double timeout, char *err, size_t n)
{
	struct addrinfo hints, *res = NULL, *ai;
	char ps[16];
	int fd = -1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	snprintf(ps, sizeof(ps), "%d", port);
	if ((rc = getaddrinfo(host, ps, &hints, &res)) != 0) {
		snprintf(err, n, "%s: %s", host, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
		struct pollfd pfd;
		int so = 0;
		socklen_t sl = sizeof(so);
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
			snprintf(err, n, "connect %s:%d: %s", host, port, strerror(errno));
			close(fd);
			fd = -1;
			continue;
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, (int)(timeout * 1000)) != 1 ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &sl) < 0 || so != 0) {
			snprintf(err, n, "connect %s:%d: %s", host, port, so ? strerror(so) : "timed out");
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd >= 0) {
		/* Blocking from here on, each read and write bounded by the timeout. */
		struct timeval tv = { (time_t)timeout, 0 };
		int fl = fcntl(fd, F_GETFL);
		if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
			snprintf(err, n, "socket: %s", strerror(errno));
			close(fd);
			return -1;
		}
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	return fd;
}

static void tlsalpn01(const struct aclm_ca_acme_opts *o, struct aclm_ca_acme_validation *v)
{
	static const unsigned char alpn[] = "\x0a" "acme-tls/1";
	const char *host = v->value;
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	X509 *peer = NULL;
	char err[300] = "";
	const unsigned char *sel = NULL;
	unsigned int sel_len = 0;
	int fd, idx;

	if (o->connect_to != NULL && strcmp(v->ident_type, "dns") == 0)
		host = o->connect_to;
	fd = connect_timeout(host, o->tlsalpn01_port, o->validation_timeout, err, sizeof(err));
	if (fd < 0) {
		fail(v, "connection", "tls-alpn-01 %s: %s", v->value, err);
		return;
	}
	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL || (ssl = SSL_new(ctx)) == NULL) {
		fail(v, "serverInternal", "tls-alpn-01: TLS context");
		goto out;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
	SSL_set_alpn_protos(ssl, alpn, sizeof(alpn) - 1);
	if (strcmp(v->ident_type, "dns") == 0) {
		SSL_set_tlsext_host_name(ssl, v->value);
	} else {
		/* RFC 8738 section 6: the reverse-mapping name of the address. */
		char rev[80] = "";
		unsigned char ip[16];
		size_t pos = 0;
		if (strchr(v->value, ':') == NULL && inet_pton(AF_INET, v->value, ip) == 1) {
			snprintf(rev, sizeof(rev), "%u.%u.%u.%u.in-addr.arpa", ip[3], ip[2], ip[1], ip[0]);
		} else if (inet_pton(AF_INET6, v->value, ip) == 1) {
			static const char hex[] = "0123456789abcdef";
			for (int i = 15; i >= 0 && pos + 4 < sizeof(rev); i--) {
				rev[pos++] = hex[ip[i] & 15];
				rev[pos++] = '.';
				rev[pos++] = hex[ip[i] >> 4];
				rev[pos++] = '.';
			}
			rev[pos] = '\0';
			aclm_strlcpy(rev + pos, "ip6.arpa", sizeof(rev) - pos);
		}
		if (rev[0] != '\0')
			SSL_set_tlsext_host_name(ssl, rev);
	}
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) != 1) {
		fail(v, "tls", "tls-alpn-01 %s: handshake failed", v->value);
		goto out;
	}
	SSL_get0_alpn_selected(ssl, &sel, &sel_len);
	if (sel_len != 10 || memcmp(sel, "acme-tls/1", 10) != 0) {
		fail(v, "unauthorized", "tls-alpn-01 %s: the server did not select acme-tls/1",
		     v->value);
		goto out;
	}
	peer = SSL_get1_peer_certificate(ssl);
	if (peer == NULL) {
		fail(v, "unauthorized", "tls-alpn-01 %s: no certificate", v->value);
		goto out;
	}
	{
		/* Exactly one SAN: the identifier. */
		GENERAL_NAMES *gens = X509_get_ext_d2i(peer, NID_subject_alt_name, NULL, NULL);
		bool ok = gens != NULL && sk_GENERAL_NAME_num(gens) == 1;
		if (ok) {
			GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, 0);
			if (strcmp(v->ident_type, "dns") == 0) {
				ok = g->type == GEN_DNS &&
				     (size_t)ASN1_STRING_length(g->d.dNSName) == strlen(v->value) &&
				     strncasecmp((const char *)ASN1_STRING_get0_data(g->d.dNSName), v->value,
				                 strlen(v->value)) == 0;
			} else {
				unsigned char ip[16];
				int len = strchr(v->value, ':') ? 16 : 4;
				ok = g->type == GEN_IPADD &&
				     inet_pton(len == 16 ? AF_INET6 : AF_INET, v->value, ip) == 1 &&
				     ASN1_STRING_length(g->d.iPAddress) == len &&
				     memcmp(ASN1_STRING_get0_data(g->d.iPAddress), ip, (size_t)len) == 0;
			}
		}
		GENERAL_NAMES_free(gens);
		if (!ok) {
			fail(v, "unauthorized", "tls-alpn-01 %s: the certificate must name exactly the "
			     "identifier", v->value);
			goto out;
		}
	}
	{
		ASN1_OBJECT *oid = OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1);
		X509_EXTENSION *ext;
		ASN1_OCTET_STRING *data, *inner = NULL;
		const unsigned char *p;
		unsigned char md[32];
		unsigned int md_len = 0;
		idx = oid != NULL ? X509_get_ext_by_OBJ(peer, oid, -1) : -1;
		ASN1_OBJECT_free(oid);
		if (idx < 0 || (ext = X509_get_ext(peer, idx)) == NULL || !X509_EXTENSION_get_critical(ext)) {
			fail(v, "unauthorized", "tls-alpn-01 %s: no critical acmeIdentifier extension",
			     v->value);
			goto out;
		}
		data = X509_EXTENSION_get_data(ext);
		p = ASN1_STRING_get0_data(data);
		inner = d2i_ASN1_OCTET_STRING(NULL, &p, ASN1_STRING_length(data));
		EVP_Digest(v->keyauth, strlen(v->keyauth), md, &md_len, EVP_sha256(), NULL);
		if (inner == NULL || ASN1_STRING_length(inner) != 32 ||
		    memcmp(ASN1_STRING_get0_data(inner), md, 32) != 0) {
			ASN1_OCTET_STRING_free(inner);
			fail(v, "unauthorized", "tls-alpn-01 %s: acmeIdentifier does not match the key "
			     "authorization", v->value);
			goto out;
		}
		ASN1_OCTET_STRING_free(inner);
	}
	v->ok = true;
out:
	ERR_clear_error();
	X509_free(peer);
	if (ssl != NULL)
		SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
}

/* --- dns-01 -------------------------------------------------------------------- */

/* Skip a (possibly compressed) domain name; 0 when malformed. */
static size_t skip_name(const unsigned char *m, size_t len, size_t off)
{
	for (int labels = 0; off < len && labels < 128; labels++) {
		unsigned char l = m[off];
		if (l == 0)
			return off + 1;
		if ((l & 0xc0) == 0xc0)
			return off + 2 <= len ? off + 2 : 0;
		if ((l & 0xc0) != 0)
			return 0;
		off += 1 + (size_t)l;
	}
	return 0;
}

/* Does the DNS answer m hold a TXT record whose first string is want? */
static bool txt_has(const unsigned char *m, size_t len, const char *want)
{
	size_t off = 12, wl = strlen(want);
	unsigned qd, an;

	if (len < 12)
		return false;
	qd = (unsigned)(m[4] << 8 | m[5]);
	an = (unsigned)(m[6] << 8 | m[7]);
	for (unsigned i = 0; i < qd; i++) {
		if ((off = skip_name(m, len, off)) == 0 || off + 4 > len)
			return false;
		off += 4;
	}
	for (unsigned i = 0; i < an; i++) {
		unsigned type, rdlen;
		if ((off = skip_name(m, len, off)) == 0 || off + 10 > len)
			return false;
		type = (unsigned)(m[off] << 8 | m[off + 1]);
		rdlen = (unsigned)(m[off + 8] << 8 | m[off + 9]);
		off += 10;
		if (off + rdlen > len)
			return false;
		if (type == 16 && rdlen >= 1 + wl && m[off] == wl && memcmp(m + off + 1, want, wl) == 0)
			return true;
		off += rdlen;
	}
	return false;
}

static void dns01(const struct aclm_ca_acme_opts *o, struct aclm_ca_acme_validation *v)
{
	struct __res_state rs;
	unsigned char *answer = NULL;
	char qname[300], want[64];
	int len;
	bool found = false;

	memset(&rs, 0, sizeof(rs));
	if (res_ninit(&rs) != 0) {
		fail(v, "dns", "dns-01: resolver setup failed");
		return;
	}
	if (o->dns_resolver != NULL) {
		char host[64];
		const char *colon = strrchr(o->dns_resolver, ':');
		int port = 53;
		struct sockaddr_in sin;
		if (colon != NULL && strchr(o->dns_resolver, '.') != NULL) {
			snprintf(host, sizeof(host), "%.*s", (int)(colon - o->dns_resolver), o->dns_resolver);
			port = (int)strtol(colon + 1, NULL, 10);
		} else {
			aclm_strlcpy(host, o->dns_resolver, sizeof(host));
		}
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
			fail(v, "dns", "dns-01: resolver '%s' is not IPv4 ADDR[:PORT]", o->dns_resolver);
			res_nclose(&rs);
			return;
		}
		rs.nsaddr_list[0] = sin;
		rs.nscount = 1;
	}
	rs.retrans = (int)o->validation_timeout / 2 + 1;
	rs.retry = 2;
	rs.options &= ~(unsigned long)(RES_DNSRCH | RES_DEFNAMES);
	snprintf(qname, sizeof(qname), "_acme-challenge.%s", v->value);
	answer = malloc(65536);
	if (answer == NULL) {
		fail(v, "serverInternal", "out of memory");
		res_nclose(&rs);
		return;
	}
	len = res_nquery(&rs, qname, 1 /* IN */, 16 /* TXT */, answer, 65536);
	if (len < 0) {
		fail(v, "dns", "dns-01: no TXT record at %s", qname);
		goto out;
	}
	if (len < 12) {
		fail(v, "dns", "dns-01: malformed answer for %s", qname);
		goto out;
	}
	digest_b64(v->keyauth, want);
	found = txt_has(answer, (size_t)len, want);
	if (!found)
		fail(v, "unauthorized", "dns-01: no TXT record at %s matches the key authorization",
		     qname);
	else
		v->ok = true;
out:
	free(answer);
	res_nclose(&rs);
}

void aclm_ca_acme_validate(const struct aclm_ca_acme *a, struct aclm_ca_acme_validation *v)
{
	const struct aclm_ca_acme_opts *o = ca_acme_opts(a);

	v->ok = false;
	v->problem[0] = v->error[0] = '\0';
	if (strcmp(v->type, "http-01") == 0)
		http01(o, v);
	else if (strcmp(v->type, "tls-alpn-01") == 0)
		tlsalpn01(o, v);
	else if (strcmp(v->type, "dns-01") == 0 && strcmp(v->ident_type, "dns") == 0)
		dns01(o, v);
	else
		fail(v, "malformed", "challenge type %s is not supported for %s identifiers", v->type,
		     v->ident_type);
}
