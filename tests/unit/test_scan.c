/* Unit tests of src/scan: target parsing and its error messages, the lazy
 * cursor (ports, ranges, excludes), port lists, the CA/B validity table,
 * the STARTTLS dialogues (whole and byte by byte), and findings of a
 * hand-built result. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "aclm/err.h"
#include "aclm/scan.h"
#include "aclm/str.h"
#include "../../src/scan/scan-int.h"

/* --- targets -------------------------------------------------------------- */

static struct aclm_scan_targets *parse_ok(const char *const *tok, size_t n)
{
	struct aclm_scan_targets *t = NULL;
	int rc = aclm_scan_targets_parse(tok, n, &t);

	if (rc != ACLM_OK)
		fail_msg("parse failed: %s", aclm_errmsg());
	return t;
}

static void parse_bad(const char *const *tok, size_t n, const char *want)
{
	struct aclm_scan_targets *t = NULL;
	int rc = aclm_scan_targets_parse(tok, n, &t);

	assert_int_equal(rc, ACLM_ERR_USAGE);
	assert_null(t);
	if (strstr(aclm_errmsg(), want) == NULL)
		fail_msg("message '%s' lacks '%s'", aclm_errmsg(), want);
}

/* All endpoints of the targets as "ip|port|host|sni" lines. */
static char *expand(struct aclm_scan_targets *t)
{
	struct aclm_scan_cursor *c = NULL;
	struct aclm_scan_endpoint ep;
	static char out[8192];

	out[0] = '\0';
	assert_int_equal(aclm_scan_cursor_new(t, &c), ACLM_OK);
	while (aclm_scan_cursor_next(c, &ep) == 1)
		snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s|%u|%s|%s\n", ep.ip, ep.port,
		         ep.host, ep.sni);
	aclm_scan_cursor_free(c);
	return out;
}

static void test_targets_forms(void **state)
{
	const char *tok[] = {
		"192.0.2.1", "192.0.2.8/30", "192.0.2.20-22", "192.0.2.30:8443", "[2001:db8::1]:444",
		"2001:db8::10/126", "2001:db8::ff", "198.51.100.1-198.51.100.2",
	};
	struct aclm_scan_targets *t = parse_ok(tok, 8);

	assert_int_equal(aclm_scan_targets_n_addresses(t), 1 + 4 + 3 + 1 + 1 + 4 + 1 + 2);
	assert_string_equal(expand(t),
		"192.0.2.1|443||\n"
		"192.0.2.8|443||\n192.0.2.9|443||\n192.0.2.10|443||\n192.0.2.11|443||\n"
		"192.0.2.20|443||\n192.0.2.21|443||\n192.0.2.22|443||\n"
		"192.0.2.30|8443||\n"
		"2001:db8::1|444||\n"
		"2001:db8::10|443||\n2001:db8::11|443||\n2001:db8::12|443||\n2001:db8::13|443||\n"
		"2001:db8::ff|443||\n"
		"198.51.100.1|443||\n198.51.100.2|443||\n");
	aclm_scan_targets_free(t);
}

static void test_targets_ports_and_excludes(void **state)
{
	const char *tok[] = { "10.1.2.0/30", "10.9.9.9:25" };
	const char *excl[] = { "10.1.2.1", "10.1.2.3/32" };
	struct aclm_scan_targets *t = parse_ok(tok, 2);

	assert_int_equal(aclm_scan_targets_set_ports(t, "443,8443"), ACLM_OK);
	assert_int_equal(aclm_scan_targets_n_endpoints(t), 4 * 2 + 1);
	assert_int_equal(aclm_scan_targets_exclude(t, excl, 2), ACLM_OK);
	assert_string_equal(expand(t),
		"10.1.2.0|443||\n10.1.2.0|8443||\n10.1.2.2|443||\n10.1.2.2|8443||\n10.9.9.9|25||\n");
	assert_true(aclm_scan_targets_is_excluded(t, "10.1.2.3", ""));
	assert_false(aclm_scan_targets_is_excluded(t, "10.1.2.4", ""));
	/* port ranges and their errors */
	assert_int_equal(aclm_scan_targets_set_ports(t, "1-3,9"), ACLM_OK);
	assert_int_equal(aclm_scan_targets_n_endpoints(t), 4 * 4 + 1);
	assert_int_equal(aclm_scan_targets_set_ports(t, "443,0"), ACLM_ERR_USAGE);
	assert_non_null(strstr(aclm_errmsg(), "--ports item 2 '0'"));
	assert_int_equal(aclm_scan_targets_set_ports(t, "443,"), ACLM_ERR_USAGE);
	assert_int_equal(aclm_scan_targets_set_ports(t, "9-3"), ACLM_ERR_USAGE);
	assert_int_equal(aclm_scan_targets_set_ports(t, "https"), ACLM_ERR_USAGE);
	aclm_scan_targets_free(t);
}

static void test_targets_names(void **state)
{
	const char *tok[] = { "LocalHost.", "no-such-host.invalid:8443", "web-01" };
	const char *excl[] = { "web-01" };
	struct aclm_scan_targets *t = parse_ok(tok, 3);
	const char *out;

	assert_int_equal(aclm_scan_targets_exclude(t, excl, 1), ACLM_OK);
	out = expand(t);
	/* localhost: at least 127.0.0.1, with SNI; the .invalid name: one
	 * unresolved entry (no address), never an abort. */
	assert_non_null(strstr(out, "127.0.0.1|443|localhost|localhost\n"));
	assert_non_null(strstr(out, "|8443|no-such-host.invalid|no-such-host.invalid\n"));
	assert_null(strstr(out, "web-01"));
	aclm_scan_targets_free(t);
}

static void test_targets_errors(void **state)
{
	const char *a[] = { "192.0.2.1", "10.0.0.0/33" };
	const char *b[] = { "10.0.0.256" };
	const char *c[] = { "ok.example", "a..b" };
	const char *d[] = { "host:0" };
	const char *e[] = { "host:99999" };
	const char *f[] = { "[2001:db8::1" };
	const char *g[] = { "10.0.0.9-3" };
	const char *h[] = { "2001:db8::/129" };
	const char *i[] = { "bad_chars!" };
	const char *j[] = { "" };
	const char *k[] = { "[10.0.0.1]:443" };
	const char *l[] = { "1.2.3.4/x" };

	parse_bad(a, 2, "target 2 '10.0.0.0/33': IPv4 prefix length out of range 0-32");
	parse_bad(b, 1, "target 1 '10.0.0.256': not a valid IPv4 address");
	parse_bad(c, 2, "target 2 'a..b': empty label");
	parse_bad(d, 1, "target 1 'host:0': port is not a number 1-65535");
	parse_bad(e, 1, "port is not a number 1-65535");
	parse_bad(f, 1, "'[' without ']'");
	parse_bad(g, 1, "range ends before it starts");
	parse_bad(h, 1, "IPv6 prefix length out of range 0-128");
	parse_bad(i, 1, "character not allowed");
	parse_bad(j, 1, "empty target");
	parse_bad(k, 1, "only IPv6 addresses go in brackets");
	parse_bad(l, 1, "prefix length is not a number");
}

static void test_targets_file(void **state)
{
	char path[] = "/tmp/aclm-test-targets-XXXXXX", arg[64];
	int fd = mkstemp(path);
	const char *good = "# fleet\n192.0.2.1\n\n  192.0.2.2:8443  # comment\n";
	const char *bad = "192.0.2.1\n\n10.0.0.0/40\n";
	const char *tok[1];
	struct aclm_scan_targets *t;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, good, strlen(good)), (ssize_t)strlen(good));
	close(fd);
	snprintf(arg, sizeof(arg), "@%s", path);
	tok[0] = arg;
	t = parse_ok(tok, 1);
	assert_string_equal(expand(t), "192.0.2.1|443||\n192.0.2.2|8443||\n");
	aclm_scan_targets_free(t);

	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
	close(fd);
	{
		char want[128];
		snprintf(want, sizeof(want), "%s:3: '10.0.0.0/40'", path);
		parse_bad(tok, 1, want);
	}
	unlink(path);
	tok[0] = "@/nonexistent/aclm-targets";
	parse_bad(tok, 1, "target 1");
}

static void test_targets_big(void **state)
{
	const char *a[] = { "10.0.0.0/8" };
	const char *b[] = { "2001:db8::/64" };
	struct aclm_scan_targets *t = parse_ok(a, 1);

	assert_int_equal(aclm_scan_targets_n_addresses(t), 16777216);
	aclm_scan_targets_free(t);
	t = parse_ok(b, 1);
	assert_true(aclm_scan_targets_n_addresses(t) == UINT64_MAX);
	aclm_scan_targets_free(t);
}

/* --- validity table --------------------------------------------------------- */

static void test_max_validity(void **state)
{
	assert_int_equal(aclm_scan_max_validity_days(1773532799), 398);   /* 2026-03-14T23:59:59Z */
	assert_int_equal(aclm_scan_max_validity_days(1773532800), 200);   /* 2026-03-15 */
	assert_int_equal(aclm_scan_max_validity_days(1805068799), 200);
	assert_int_equal(aclm_scan_max_validity_days(1805068800), 100);   /* 2027-03-15 */
	assert_int_equal(aclm_scan_max_validity_days(1868227199), 100);
	assert_int_equal(aclm_scan_max_validity_days(1868227200), 47);    /* 2029-03-15 */
}

/* --- STARTTLS ------------------------------------------------------------------ */

/* Run a dialogue: the server's replies in order (one per command sent);
 * returns the final step and the commands sent, '|'-separated. */
static enum starttls_step dialogue(enum aclm_scan_proto p, const char *const *replies, size_t n,
                                   bool bytewise, char *sent, size_t sent_size,
                                   struct starttls *st)
{
	enum starttls_step step = STARTTLS_NEED_MORE;

	sent[0] = '\0';
	starttls_init(st, p);
	for (size_t i = 0; i < n; i++) {
		const unsigned char *d = (const unsigned char *)replies[i];
		size_t len = strlen(replies[i]), off = 0;

		while (off < len) {
			size_t chunk = bytewise ? 1 : len - off, used = 0;
			step = starttls_feed(st, d + off, chunk, &used);
			off += used ? used : chunk;
			if (step == STARTTLS_SEND) {
				snprintf(sent + strlen(sent), sent_size - strlen(sent), "%.*s|",
				         (int)st->out_len - 2, st->out);
			} else if (step != STARTTLS_NEED_MORE) {
				return step;
			}
		}
	}
	return step;
}

static void test_starttls_dialogues(void **state)
{
	static const char *const smtp[] = {
		"220 mx.example ESMTP\r\n",
		"250-mx.example\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n",
		"220 2.0.0 Ready to start TLS\r\n",
	};
	static const char *const imap[] = {
		"* OK IMAP4rev1 ready\r\n",
		"* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\na1 OK done\r\n",
		"a2 OK Begin TLS\r\n",
	};
	static const char *const pop3[] = {
		"+OK POP3 ready\r\n", "+OK\r\nUSER\r\nSTLS\r\n.\r\n", "+OK go\r\n",
	};
	struct starttls st;
	char sent[256];

	for (int bytewise = 0; bytewise < 2; bytewise++) {
		assert_int_equal(dialogue(ACLM_SCAN_SMTP, smtp, 3, bytewise, sent, sizeof(sent), &st),
		                 STARTTLS_READY);
		assert_string_equal(sent, "EHLO aclm-scan.invalid|STARTTLS|");
		assert_int_equal(dialogue(ACLM_SCAN_IMAP, imap, 3, bytewise, sent, sizeof(sent), &st),
		                 STARTTLS_READY);
		assert_string_equal(sent, "a1 CAPABILITY|a2 STARTTLS|");
		assert_int_equal(dialogue(ACLM_SCAN_POP3, pop3, 3, bytewise, sent, sizeof(sent), &st),
		                 STARTTLS_READY);
		assert_string_equal(sent, "CAPA|STLS|");
	}
}

static void test_starttls_failures(void **state)
{
	static const char *const no_tls[] = { "220 hi\r\n", "250-hi\r\n250 SIZE 100\r\n" };
	static const char *const refused[] = { "554 go away\r\n" };
	static const char *const garbage[] = { "\x16\x03\x01\x02\x05\x01\r\n" };
	static const char *const after[] = { "220 hi\r\n", "250 STARTTLS\r\n",
	                                     "220 go\r\n\x16\x03\x01" };
	static const char *const imap_no[] = { "* BYE\r\n" };
	struct starttls st;
	char sent[256], longline[1500];
	size_t used;

	assert_int_equal(dialogue(ACLM_SCAN_SMTP, no_tls, 2, false, sent, sizeof(sent), &st),
	                 STARTTLS_FAILED);
	assert_non_null(strstr(st.error, "STARTTLS not offered"));
	assert_int_equal(dialogue(ACLM_SCAN_SMTP, refused, 1, false, sent, sizeof(sent), &st),
	                 STARTTLS_FAILED);
	assert_non_null(strstr(st.error, "refused the session"));
	assert_int_equal(dialogue(ACLM_SCAN_SMTP, garbage, 1, false, sent, sizeof(sent), &st),
	                 STARTTLS_FAILED);
	assert_non_null(strstr(st.error, "not an SMTP reply"));
	assert_int_equal(dialogue(ACLM_SCAN_SMTP, after, 3, false, sent, sizeof(sent), &st),
	                 STARTTLS_FAILED);
	assert_non_null(strstr(st.error, "data after the go-ahead"));
	assert_int_equal(dialogue(ACLM_SCAN_IMAP, imap_no, 1, false, sent, sizeof(sent), &st),
	                 STARTTLS_FAILED);
	/* a line that never ends is cut off at the bound */
	memset(longline, 'A', sizeof(longline));
	starttls_init(&st, ACLM_SCAN_SMTP);
	assert_int_equal(starttls_feed(&st, (unsigned char *)longline, sizeof(longline), &used),
	                 STARTTLS_FAILED);
	assert_non_null(strstr(st.error, "longer than 1024"));
	/* a NUL byte */
	starttls_init(&st, ACLM_SCAN_POP3);
	assert_int_equal(starttls_feed(&st, (const unsigned char *)"+OK\0", 4, &used),
	                 STARTTLS_FAILED);
}

/* --- findings of a hand-built result ----------------------------------------- */

static struct aclm_cert *make_cert(int64_t nb, int64_t na, const EVP_MD *md, int rsa_bits,
                                   const char *cn, const char *san)
{
	EVP_PKEY *k = rsa_bits ? EVP_RSA_gen((unsigned)rsa_bits) : EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();
	unsigned char *der = NULL;
	struct aclm_cert *c = NULL;
	int len;

	assert_non_null(k);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	ASN1_TIME_set(X509_getm_notBefore(x), (time_t)nb);
	ASN1_TIME_set(X509_getm_notAfter(x), (time_t)na);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, n);
	X509_set_pubkey(x, k);
	if (san != NULL) {
		X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san);
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	}
	assert_true(X509_sign(x, k, md) > 0);
	len = i2d_X509(x, &der);
	assert_int_equal(aclm_cert_parse_der(der, (size_t)len, &c), ACLM_OK);
	OPENSSL_free(der);
	X509_NAME_free(n);
	X509_free(x);
	EVP_PKEY_free(k);
	return c;
}

struct collected {
	char types[512];
	int n;
};

static int collect(void *ctx, const struct aclm_finding *f)
{
	struct collected *c = ctx;

	snprintf(c->types + strlen(c->types), sizeof(c->types) - strlen(c->types), "%s%s:%s",
	         c->n++ ? "," : "", f->type, aclm_severity_name(f->severity));
	return 0;
}

static void test_findings(void **state)
{
	const int64_t now = 1800000000;   /* 2027-01-15 */
	struct aclm_scan_result r = { 0 };
	struct aclm_cert *chain[1];
	struct collected got = { 0 };

	/* expired, 400 days, SHA-1, RSA-1024, wrong name, self-signed, no PQ */
	chain[0] = make_cert(now - 500 * 86400LL, now - 100 * 86400LL, EVP_sha1(), 1024,
	                     "old.example", "DNS:old.example");
	r.chain = chain;
	r.n_chain = 1;
	r.reachable = true;
	aclm_strlcpy(r.ep.sni, "www.example", sizeof(r.ep.sni));
	r.is_expired = true;
	r.has_name = true;
	r.hostname_matches = false;
	r.trust = ACLM_TRUST_SELF_SIGNED;
	r.pq_probed = 0x3f;
	assert_int_equal(aclm_scan_endpoint_findings(&r, now, collect, &got), 0);
	assert_string_equal(got.types, "expired:critical,hostname-mismatch:high,self-signed:high,"
	                    "weak-key:high,sha1-signature:high,validity-too-long:medium,"
	                    "no-pq-group:info");
	aclm_cert_free(chain[0]);

	/* a clean one: 90 days, P-256, trusted, one PQ group */
	memset(&got, 0, sizeof(got));
	chain[0] = make_cert(now - 86400, now + 89 * 86400LL, EVP_sha256(), 0, "www.example",
	                     "DNS:www.example");
	r.is_expired = false;
	r.hostname_matches = true;
	r.trust = ACLM_TRUST_TRUSTED;
	r.pq_groups = 1;
	assert_int_equal(aclm_scan_endpoint_findings(&r, now, collect, &got), 0);
	assert_string_equal(got.types, "");
	aclm_cert_free(chain[0]);

	/* unreachable endpoints: silence is no finding, a timeout is one */
	memset(&r, 0, sizeof(r));
	memset(&got, 0, sizeof(got));
	r.reason = ACLM_SCAN_REFUSED;
	assert_int_equal(aclm_scan_endpoint_findings(&r, now, collect, &got), 0);
	r.reason = ACLM_SCAN_TIMEOUT;
	assert_int_equal(aclm_scan_endpoint_findings(&r, now, collect, &got), 0);
	r.reason = ACLM_SCAN_NOT_TLS;
	assert_int_equal(aclm_scan_endpoint_findings(&r, now, collect, &got), 0);
	assert_string_equal(got.types, "unreachable:medium,not-tls:medium");
}

/* --- crafted hello and the ServerHello reader ------------------------------ */

static size_t put_record(unsigned char *out, unsigned type, const unsigned char *p, size_t n)
{
	out[0] = (unsigned char)type;
	out[1] = 3;
	out[2] = 3;
	out[3] = (unsigned char)(n >> 8);
	out[4] = (unsigned char)n;
	memcpy(out + 5, p, n);
	return n + 5;
}

/* A HelloRetryRequest selecting `group` (or a ServerHello when !hrr). */
static size_t server_hello(unsigned char *out, bool hrr, uint16_t version, uint16_t group)
{
	static const unsigned char hrr_random[32] = {
		0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65,
		0xB8, 0x91, 0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2,
		0xC8, 0xA8, 0x33, 0x9C,
	};
	unsigned char m[256];
	size_t n = 4;

	m[n++] = 3; m[n++] = 3;
	if (hrr)
		memcpy(m + n, hrr_random, 32);
	else
		memset(m + n, 7, 32);
	n += 32;
	m[n++] = 0;                              /* session id */
	m[n++] = 0x13; m[n++] = 0x01; m[n++] = 0;
	m[n++] = 0; m[n++] = 12;                 /* extensions */
	m[n++] = 0; m[n++] = 43; m[n++] = 0; m[n++] = 2;
	m[n++] = (unsigned char)(version >> 8); m[n++] = (unsigned char)version;
	m[n++] = 0; m[n++] = 51; m[n++] = 0; m[n++] = 2;
	m[n++] = (unsigned char)(group >> 8); m[n++] = (unsigned char)group;
	m[0] = 2; m[1] = 0; m[2] = 0; m[3] = (unsigned char)(n - 4);
	return put_record(out, 0x16, m, n);
}

static void test_hello(void **state)
{
	unsigned char rec[1024], resp[600];
	struct hello_reader r;
	size_t n, rn;
	const unsigned char *ext;
	bool found = false;

	/* the hello: one handshake record, lengths consistent, our group alone */
	{
		const uint16_t g[] = { 0x11EC };
		n = hello_build(rec, sizeof(rec), 0x0304, g, 1, "www.example");
	}
	assert_true(n > 100);
	assert_int_equal(rec[0], 0x16);
	assert_int_equal((size_t)(rec[3] << 8 | rec[4]), n - 5);
	assert_int_equal(rec[5], 1);
	assert_int_equal((size_t)(rec[6] << 16 | rec[7] << 8 | rec[8]), n - 9);
	for (ext = rec; ext + 8 <= rec + n; ext++)
		if (memcmp(ext, "\x00\x0a\x00\x04\x00\x02\x11\xec", 8) == 0)
			found = true;
	assert_true(found);
	assert_non_null(memmem(rec, n, "www.example", 11));
	{
		const uint16_t g[] = { 29, 23 };
		assert_int_equal(hello_build(rec, 100, 0x0304, g, 1, NULL), 0);
		assert_int_equal(hello_build(rec, sizeof(rec), 0x0304, g, 0, NULL), 0);
		/* TLS 1.2: legacy_version says it, no supported_versions */
		n = hello_build(rec, sizeof(rec), 0x0303, g, 2, NULL);
		assert_true(n > 100);
		assert_int_equal(rec[9], 3);
		assert_int_equal(rec[10], 3);
		assert_null(memmem(rec, n, "\x00\x2b\x00\x03\x02\x03\x04", 7));
	}

	/* an HRR naming the group, fed byte by byte */
	rn = server_hello(resp, true, 0x0304, 0x11EC);
	hello_reader_init(&r);
	for (size_t i = 0; i + 1 < rn; i++)
		assert_int_equal(hello_feed(&r, resp + i, 1), HELLO_NEED_MORE);
	assert_int_equal(hello_feed(&r, resp + rn - 1, 1), HELLO_SERVER_HELLO);
	assert_true(r.is_hrr);
	assert_int_equal(r.version, 0x0304);
	assert_int_equal(r.group, 0x11EC);

	/* the message split over two records */
	{
		unsigned char two[600];
		size_t a = put_record(two, 0x16, resp + 5, 20);
		a += put_record(two + a, 0x16, resp + 25, rn - 25);
		hello_reader_init(&r);
		assert_int_equal(hello_feed(&r, two, a), HELLO_SERVER_HELLO);
		assert_int_equal(r.group, 0x11EC);
	}
	/* a plain ServerHello is not an HRR */
	rn = server_hello(resp, false, 0x0304, 29);
	hello_reader_init(&r);
	assert_int_equal(hello_feed(&r, resp, rn), HELLO_SERVER_HELLO);
	assert_false(r.is_hrr);
	assert_int_equal(r.group, 29);

	/* an alert, HTTP, an oversized message */
	hello_reader_init(&r);
	n = put_record(rec, 0x15, (const unsigned char *)"\x02\x28", 2);
	assert_int_equal(hello_feed(&r, rec, n), HELLO_ALERT);
	assert_int_equal(r.alert_desc, 40);
	hello_reader_init(&r);
	assert_int_equal(hello_feed(&r, (const unsigned char *)"HTTP/1.1 400 Bad", 16), HELLO_NOT_TLS);
	hello_reader_init(&r);
	n = put_record(rec, 0x16, (const unsigned char *)"\x02\x01\x00\x00", 4);
	assert_int_equal(hello_feed(&r, rec, n), HELLO_ERROR);
	assert_non_null(strstr(r.why, "4 KiB"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_targets_forms),
		cmocka_unit_test(test_targets_ports_and_excludes),
		cmocka_unit_test(test_targets_names),
		cmocka_unit_test(test_targets_errors),
		cmocka_unit_test(test_targets_file),
		cmocka_unit_test(test_targets_big),
		cmocka_unit_test(test_max_validity),
		cmocka_unit_test(test_starttls_dialogues),
		cmocka_unit_test(test_starttls_failures),
		cmocka_unit_test(test_findings),
		cmocka_unit_test(test_hello),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
