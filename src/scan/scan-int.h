/* Inside the scanner: shared between targets.c, engine.c, probe.c,
 * starttls.c, chain.c and findings.c. */
#ifndef ACLM_SCAN_INT_H
#define ACLM_SCAN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "aclm/scan.h"

/* --- STARTTLS dialogues (starttls.c) ------------------------------------ *
 * A client-side dialogue driven by the server's bytes.  The parser is a
 * pure function of its input (fuzzed by tests/fuzz/fuzz_scan_starttls.c):
 * it never reads past what it was given and keeps at most
 * STARTTLS_LINE_MAX bytes of a partial line. */
#define STARTTLS_LINE_MAX 1024
#define STARTTLS_MAX_LINES 256     /* lines in one multi-line reply */

enum starttls_step {
	STARTTLS_NEED_MORE = 0,    /* read more from the server */
	STARTTLS_SEND,             /* send st->out (out_len bytes), then read */
	STARTTLS_READY,            /* the server agreed: start the TLS handshake */
	STARTTLS_FAILED,           /* st->error says why */
};

struct starttls {
	enum aclm_scan_proto proto;
	int phase;                 /* per protocol, see starttls.c */
	char line[STARTTLS_LINE_MAX];
	size_t line_len;
	int n_lines;               /* lines of the current reply */
	bool saw_starttls;         /* the capability was announced */
	char out[64];
	size_t out_len;
	char error[160];
};

void starttls_init(struct starttls *st, enum aclm_scan_proto proto);
/* The first action before any byte is read (IMAP/SMTP/POP3 all wait for a
 * greeting: NEED_MORE). */
enum starttls_step starttls_start(struct starttls *st);
/* Feed bytes from the server; *used gets how many were consumed (the rest,
 * if any, must not exist: after READY the server must wait for our
 * ClientHello; bytes after READY are an error). */
enum starttls_step starttls_feed(struct starttls *st, const unsigned char *data, size_t len,
                                 size_t *used);

/* --- crafted TLS 1.3 ClientHello (hello.c) ---------------------------- */

/* A ClientHello record at `version` (0x0301..0x0304) offering `groups`;
 * for TLS 1.3 with an empty key_share.  Returns its length (0 if cap < 512,
 * no or more than 32 groups, or the SNI is too long). */
size_t hello_build(unsigned char *out, size_t cap, uint16_t version, const uint16_t *groups,
                   size_t n_groups, const char *sni);

enum hello_verdict {
	HELLO_NEED_MORE = 0,
	HELLO_SERVER_HELLO,        /* version, is_hrr, group, cipher are set */
	HELLO_ALERT,               /* alert_desc is set */
	HELLO_NOT_TLS,             /* why is set */
	HELLO_ERROR,               /* malformed TLS; why is set */
};

struct hello_reader {
	unsigned char hdr[5];
	size_t hdr_len;
	unsigned rec_type;
	size_t rec_left;
	unsigned char msg[4096];   /* the first handshake message, reassembled */
	size_t msg_len;
	unsigned char alert[2];
	size_t alert_len;
	/* results */
	uint16_t version;          /* supported_versions if present, else legacy */
	bool is_hrr;
	uint16_t group;            /* key_share: selected (HRR) or used group */
	uint16_t cipher;
	unsigned alert_desc;
	char why[96];
};

void hello_reader_init(struct hello_reader *r);
/* Feed the server's bytes; anything after the verdict is ignored. */
enum hello_verdict hello_feed(struct hello_reader *r, const unsigned char *data, size_t len);

/* --- probes (probe.c) --------------------------------------------------- */

enum probe_kind {
	PROBE_BASIC = 0,   /* default handshake: chain, version, suite, staple */
	PROBE_VERSION,     /* only TLS 1.x offered */
	PROBE_GROUP,       /* only one classic group offered */
	PROBE_PQ_GROUP,    /* only one post-quantum group offered (TLS 1.3) */
	/* TLCP and RFC 8998 (SM2) probes slot in here: their own ClientHello
	 * and record handling, same table. */
};

struct probe_def {
	enum probe_kind kind;
	int index;                 /* version 0..3, or index into a group table */
	const char *name;          /* "basic", "TLSv1.2", "X25519", ... */
	SSL_CTX *ctx;              /* built once, shared by every connection */
	/* PROBE_GROUP against a server without TLS 1.3: TLS 1.2 ties the
	 * ECDSA certificate's curve to supported_groups, so the group is
	 * offered first and the NIST curves after it; accepted = chosen. */
	SSL_CTX *ctx_tls12;
};

struct scan_conn;

/* Build the probe table; *defs is owned by the engine. */
int probes_build(OSSL_LIB_CTX *libctx, struct probe_def **defs, size_t *n_defs);
void probes_free(struct probe_def *defs, size_t n_defs);
/* Record the outcome of one probe connection on the result (ok = the
 * handshake completed). */
void probe_record(const struct probe_def *d, struct aclm_scan_result *r, SSL *ssl, bool ok);
/* Whether this probe, on this endpoint, is asked with a crafted hello. */
bool probe_is_raw(const struct probe_def *d, const struct aclm_scan_result *r);
/* The crafted hello of a probe into out (its length, 0 on failure), and
 * whether the server's answer means "accepted". */
size_t probe_raw_hello(const struct probe_def *d, unsigned char *out, size_t cap,
                       const char *sni);
bool probe_raw_accepts(const struct probe_def *d, const struct hello_reader *h);
/* Record a crafted-hello probe: accepted or not. */
void probe_record_raw(const struct probe_def *d, struct aclm_scan_result *r, bool accepted);

/* Classic/PQ group tables and their IANA code points. */
struct group_info {
	const char *name;          /* as SSL_CTX_set1_groups_list spells it */
	uint16_t id;               /* IANA code point */
	int nid;                   /* OpenSSL NID, 0 for provider groups */
};
/* The name of a group as SSL_get_negotiated_group() reports it, or NULL. */
const char *scan_group_name(int nid);
extern const struct group_info scan_classic_groups[];
extern const size_t scan_n_classic_groups;
extern const struct group_info scan_pq_groups[];
extern const size_t scan_n_pq_groups;

/* --- chain analysis (chain.c) ------------------------------------------- */

struct chain_ctx;
int chain_ctx_new(OSSL_LIB_CTX *libctx, struct chain_ctx **out);
void chain_ctx_free(struct chain_ctx *c);
int chain_ctx_add(struct chain_ctx *c, const unsigned char *der, size_t len, bool anchor);
/* Fill the analysis fields of r from r->chain at time now. */
void chain_analyse(struct chain_ctx *c, struct aclm_scan_result *r, int64_t now);

/* --- targets helpers (targets.c), exposed for the engine --------------- */
bool scan_ip_is_v6(const char *ip);

#endif
