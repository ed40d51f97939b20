/* Crafted ClientHellos for the version and group probes, and a bounded
 * reader of the server's first handshake message.
 *
 * TLS 1.3: the hello offers its groups in supported_groups and an empty
 * key_share: a server that supports one must answer with a
 * HelloRetryRequest naming it (RFC 8446 §4.1.4), one that does not with an
 * alert.  TLS 1.0-1.2: a plain hello at that version; the ServerHello says
 * which version the server took.  Neither side computes a key, so such a
 * probe costs the server one small message instead of a full handshake.  The reader handles the
 * ServerHello split over several records (at most HELLO_MAX bytes) and is
 * fuzzed by tests/fuzz/fuzz_scan_hello.c. */
#include <stdio.h>
#include <string.h>

#include <openssl/rand.h>

#include "aclm/str.h"
#include "scan-int.h"

/* SHA-256("HelloRetryRequest"), the random of a HelloRetryRequest. */
static const unsigned char hrr_random[32] = {
	0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
	0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
};

static void put16(unsigned char *p, size_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

size_t hello_build(unsigned char *out, size_t cap, uint16_t version, const uint16_t *groups,
                   size_t n_groups, const char *sni)
{
	static const uint16_t suites13[] = { 0x1301, 0x1302, 0x1303, 0x1304, 0x1305 };
	/* TLS 1.0-1.2: ECDHE and RSA key exchange, ECDSA and RSA certificates,
	 * GCM, ChaCha20, CBC (what any server of those versions may pick). */
	static const uint16_t suites12[] = {
		0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8, 0xC009, 0xC013, 0xC00A, 0xC014,
		0xC023, 0xC027, 0xC024, 0xC028, 0x009E, 0x009F, 0x0033, 0x0039, 0x009C, 0x009D,
		0x002F, 0x0035, 0x003C, 0x003D, 0x000A,
	};
	static const uint16_t sigalgs[] = {
		0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0809, 0x080a, 0x080b,
		0x0807, 0x0808, 0x0401, 0x0501, 0x0601, 0x0708, 0x0203, 0x0201,
	};
	const bool tls13 = version == 0x0304;
	const uint16_t *suites = tls13 ? suites13 : suites12;
	size_t n_suites = tls13 ? sizeof(suites13) / sizeof(suites13[0])
	                        : sizeof(suites12) / sizeof(suites12[0]);
	size_t sni_len = sni != NULL ? strlen(sni) : 0, n = 0, body, exts;
	unsigned char *p = out;

	if (sni_len > 255 || n_groups == 0 || n_groups > 32 || cap < 512)
		return 0;
	/* record header and handshake header, lengths filled in at the end */
	p[n++] = 0x16; p[n++] = 0x03; p[n++] = 0x01; n += 2;
	p[n++] = 0x01; n += 3;
	body = n;
	put16(p + n, tls13 ? 0x0303 : version); n += 2;   /* legacy_version */
	RAND_bytes(p + n, 32); n += 32;                   /* random */
	p[n++] = 32; RAND_bytes(p + n, 32); n += 32;      /* session id (middlebox compat) */
	put16(p + n, n_suites * 2); n += 2;
	for (size_t i = 0; i < n_suites; i++, n += 2)
		put16(p + n, suites[i]);
	p[n++] = 1; p[n++] = 0;                           /* null compression */
	exts = n; n += 2;
	if (sni_len > 0) {
		put16(p + n, 0); put16(p + n + 2, sni_len + 5);
		put16(p + n + 4, sni_len + 3); p[n + 6] = 0; put16(p + n + 7, sni_len);
		memcpy(p + n + 9, sni, sni_len);
		n += 9 + sni_len;
	}
	put16(p + n, 10); put16(p + n + 2, n_groups * 2 + 2); put16(p + n + 4, n_groups * 2);
	n += 6;
	for (size_t i = 0; i < n_groups; i++, n += 2)
		put16(p + n, groups[i]);
	put16(p + n, 13); put16(p + n + 2, sizeof(sigalgs) + 2); put16(p + n + 4, sizeof(sigalgs));
	n += 6;
	for (size_t i = 0; i < sizeof(sigalgs) / sizeof(sigalgs[0]); i++, n += 2)
		put16(p + n, sigalgs[i]);
	if (tls13) {
		put16(p + n, 43); put16(p + n + 2, 3); p[n + 4] = 2; put16(p + n + 5, 0x0304); n += 7;
		put16(p + n, 51); put16(p + n + 2, 2); put16(p + n + 4, 0); n += 6;  /* no share */
		put16(p + n, 45); put16(p + n + 2, 2); p[n + 4] = 1; p[n + 5] = 1; n += 6;
	} else {
		put16(p + n, 11); put16(p + n + 2, 2); p[n + 4] = 1; p[n + 5] = 0; n += 6;
		put16(p + n, 0xff01); put16(p + n + 2, 1); p[n + 4] = 0; n += 5;
	}
	put16(p + exts, n - exts - 2);
	p[body - 3] = (unsigned char)((n - body) >> 16);
	put16(p + body - 2, n - body);
	put16(p + 3, n - 5);
	return n;
}

void hello_reader_init(struct hello_reader *r)
{
	memset(r, 0, sizeof(*r));
}

static enum hello_verdict bad(struct hello_reader *r, enum hello_verdict v, const char *why)
{
	aclm_strlcpy(r->why, why, sizeof(r->why));
	return v;
}

/* The first handshake message is complete in r->msg: a ServerHello? */
static enum hello_verdict parse_server_hello(struct hello_reader *r)
{
	const unsigned char *p = r->msg + 4, *end = r->msg + r->msg_len;
	size_t sid, ext_len;

	if (r->msg[0] != 2)
		return bad(r, HELLO_NOT_TLS, "first handshake message is not a ServerHello");
	if (end - p < 2 + 32 + 1)
		return bad(r, HELLO_ERROR, "ServerHello too short");
	r->version = (uint16_t)(p[0] << 8 | p[1]);
	r->is_hrr = memcmp(p + 2, hrr_random, 32) == 0;
	p += 34;
	sid = *p++;
	if ((size_t)(end - p) < sid + 3)
		return bad(r, HELLO_ERROR, "ServerHello too short");
	p += sid;
	r->cipher = (uint16_t)(p[0] << 8 | p[1]);
	p += 3;
	if (p == end)
		return HELLO_SERVER_HELLO;   /* TLS 1.2 and older may have no extensions */
	if (end - p < 2)
		return bad(r, HELLO_ERROR, "ServerHello extensions truncated");
	ext_len = (size_t)(p[0] << 8 | p[1]);
	p += 2;
	if ((size_t)(end - p) != ext_len)
		return bad(r, HELLO_ERROR, "ServerHello extensions length mismatch");
	while (p < end) {
		unsigned type, len;
		if (end - p < 4)
			return bad(r, HELLO_ERROR, "ServerHello extension truncated");
		type = (unsigned)(p[0] << 8 | p[1]);
		len = (unsigned)(p[2] << 8 | p[3]);
		p += 4;
		if ((size_t)(end - p) < len)
			return bad(r, HELLO_ERROR, "ServerHello extension truncated");
		if (type == 43 && len == 2)
			r->version = (uint16_t)(p[0] << 8 | p[1]);
		else if (type == 51 && len >= 2)
			r->group = (uint16_t)(p[0] << 8 | p[1]);
		p += len;
	}
	return HELLO_SERVER_HELLO;
}

enum hello_verdict hello_feed(struct hello_reader *r, const unsigned char *data, size_t len)
{
	size_t i = 0;

	while (i < len) {
		/* record header */
		if (r->hdr_len < 5) {
			r->hdr[r->hdr_len++] = data[i++];
			if (r->hdr_len < 5)
				continue;
			r->rec_type = r->hdr[0];
			r->rec_left = (size_t)(r->hdr[3] << 8 | r->hdr[4]);
			if ((r->rec_type != 0x16 && r->rec_type != 0x15) || r->hdr[1] != 0x03 ||
			    r->rec_left == 0 || r->rec_left > 16384 + 256)
				return bad(r, HELLO_NOT_TLS, "not a TLS record");
			continue;
		}
		{
			size_t take = len - i < r->rec_left ? len - i : r->rec_left;
			if (r->rec_type == 0x15) {
				/* alert: level, description */
				for (size_t k = 0; k < take; k++) {
					if (r->alert_len < 2)
						r->alert[r->alert_len++] = data[i + k];
				}
				i += take;
				r->rec_left -= take;
				if (r->alert_len == 2) {
					r->alert_desc = r->alert[1];
					return HELLO_ALERT;
				}
				if (r->rec_left == 0)
					return bad(r, HELLO_ERROR, "truncated alert");
				continue;
			}
			if (r->msg_len + take > sizeof(r->msg))
				return bad(r, HELLO_ERROR, "ServerHello larger than 4 KiB");
			memcpy(r->msg + r->msg_len, data + i, take);
			r->msg_len += take;
			i += take;
			r->rec_left -= take;
			if (r->rec_left == 0)
				r->hdr_len = 0;
			if (r->msg_len >= 4) {
				size_t want = 4 + ((size_t)r->msg[1] << 16 | (size_t)r->msg[2] << 8 | r->msg[3]);
				if (want > sizeof(r->msg))
					return bad(r, HELLO_ERROR, "ServerHello larger than 4 KiB");
				if (r->msg_len >= want) {
					r->msg_len = want;
					return parse_server_hello(r);
				}
			}
		}
	}
	return HELLO_NEED_MORE;
}
