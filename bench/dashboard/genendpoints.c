/* genendpoints: fill an inventory with N scanned endpoints for the
 * dashboard benchmark, through the store's own scan API (the calls `aclm
 * scan` makes for each result), without a network.
 *
 *   genendpoints [-s SEED] DB_URL N
 *
 * The certificates must be there already (bench/dashboard/run imports
 * them first): every reachable endpoint serves one of the inventory's leaf
 * certificates, named by its CN.  One scan run holds all the results, as if
 * one sweep had found them, spread over the last 24 hours.
 *
 * The mix (deterministic for a SEED):
 *   networks  five sites, each a 127.S.0.0/16 of /24s of 200 hosts (dc-east
 *             40%, dc-west 30%, dmz 15%, office 10%, lab 5%).  Loopback on
 *             purpose: an accidental rescan of a kept benchmark inventory
 *             touches nothing outside this machine;
 *   ports     443 80%, 8443 8%, 636 5%, 993 4%, 465 3%;
 *   reach     1.5% unreachable (connect-timeout, refused);
 *   versions  TLS 1.2+1.3 58%, 1.3 only 25%, 1.2 only 12%, 1.0-1.2 5%;
 *   groups    of the TLS 1.3 endpoints 45% accept X25519MLKEM768, 3%
 *             curveSM2MLKEM768 too, 2% curveSM2MLKEM768 alone; the rest none,
 *             negotiating X25519 (80%) or P-256;
 *   trust     trusted 85%, incomplete chain 8%, untrusted 4%, self-signed 3%;
 *             2% answer for a name their certificate does not cover;
 *   findings  what the scanner would raise for that: no-pq-group (info),
 *             incomplete-chain (medium), untrusted / self-signed /
 *             hostname-mismatch (high), expired (critical) when the served
 *             certificate has expired, unreachable (medium).
 *
 * Prints "endpoints E", "reachable R", "findings F", "seconds S". */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aclm/err.h"
#include "aclm/store.h"
#include "aclm/store_scan.h"
#include "aclm/str.h"
#include "aclm/timeutil.h"

#define MAX_LEAVES 200000
#define BATCH 500

struct leaf {
	int64_t id;
	char fingerprint[65];
	char cn[128];
	int64_t not_before, not_after;
};

struct leaves {
	struct leaf *v;
	size_t n;
};

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
	/* xorshift64*: plenty for picking a mix */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 2685821657736338717ULL) >> 32) % n;
}

static int leaf_fn(void *ctx, const struct aclm_cert_row *row)
{
	struct leaves *l = ctx;
	struct leaf *f;

	if (l->n == MAX_LEAVES)
		return 0;
	f = &l->v[l->n++];
	f->id = row->id;
	memcpy(f->fingerprint, row->fingerprint, sizeof(f->fingerprint));
	aclm_strlcpy(f->cn, row->subject_cn != NULL ? row->subject_cn : "", sizeof(f->cn));
	/* a CN that is not a host name (an e-mail address, spaces) gets a made-up one */
	if (strchr(f->cn, ' ') != NULL || strchr(f->cn, '@') != NULL || f->cn[0] == '*')
		f->cn[0] = '\0';
	f->not_before = row->not_before;
	f->not_after = row->not_after;
	return 0;
}

static const struct site {
	const char *name;
	int octet, weight;
} sites[] = {
	{ "dc-east", 10, 40 }, { "dc-west", 20, 30 }, { "dmz", 30, 15 }, { "office", 40, 10 },
	{ "lab", 50, 5 },
};
#define N_SITES (sizeof(sites) / sizeof(sites[0]))

static int finding(struct aclm_store *st, int64_t scan_id, int64_t *n, const char *type,
                   const char *sev, int64_t ep, int64_t cert, const char *label, const char *ip,
                   const char *fp, const char *detail, int64_t when)
{
	char ident[600];
	struct aclm_finding_in f;
	bool is_new = false;

	/* as the scanner's: type and the endpoint (and the certificate) */
	snprintf(ident, sizeof(ident), "%s|%s|%s|%s", type, label, ip, fp != NULL ? fp : "");
	memset(&f, 0, sizeof(f));
	f.ident = ident;
	f.type = type;
	f.severity = sev;
	f.endpoint_id = ep;
	f.cert_id = cert;
	f.subject = label;
	f.detail = detail;
	f.when = when;
	(*n)++;
	return aclm_store_scan_put_finding(st, scan_id, &f, &is_new);
}

static int one(struct aclm_store *st, int64_t scan_id, const struct leaves *l, int64_t i,
               int64_t now, int64_t *n_reach, int64_t *n_find)
{
	static int64_t per_site[N_SITES];
	const struct site *s = &sites[0];
	const struct leaf *lf;
	char ip[32], host[200], label[240], detail[300];
	const char *versions, *negotiated, *cipher, *group, *classic, *pq, *trust;
	unsigned port;
	int64_t ep = 0, when = now - 60 - (int64_t)rnd(86400), j;
	uint32_t r = rnd(100), w = 0;
	bool reachable, tls13, mismatch;
	int rc;

	for (size_t k = 0; k < N_SITES; k++) {
		w += (uint32_t)sites[k].weight;
		if (r < w) {
			s = &sites[k];
			break;
		}
	}
	j = per_site[s - sites]++;
	snprintf(ip, sizeof(ip), "127.%d.%d.%d", s->octet + (int)(j / 51200), (int)(j / 200 % 256),
	         10 + (int)(j % 200));
	r = rnd(100);
	port = r < 80 ? 443 : r < 88 ? 8443 : r < 93 ? 636 : r < 97 ? 993 : 465;
	lf = &l->v[(size_t)((uint64_t)i * 7919u % l->n)];
	mismatch = rnd(100) < 2;
	if (lf->cn[0] != '\0' && !mismatch)
		aclm_strlcpy(host, lf->cn, sizeof(host));
	else
		snprintf(host, sizeof(host), "svc-%05lld.%s.bench.test", (long long)i, s->name);
	snprintf(label, sizeof(label), "%s:%u", host, port);
	if ((rc = aclm_store_scan_endpoint(st, host, ip, port, host, when, &ep)) != ACLM_OK)
		return rc;

	reachable = rnd(1000) >= 15;
	if (!reachable) {
		const char *reason = rnd(2) ? "connect-timeout" : "refused";
		struct aclm_scan_result_row row = {
			.scanned_at = when, .protocol = "tls", .reachable = false, .reason = reason,
			.detail = reason, .versions = "", .pq_groups = "", .leaf_valid = -1,
			.hostname_match = -1, .trust = "", .chain = "",
		};
		if ((rc = aclm_store_scan_put_result(st, scan_id, ep, &row)) != ACLM_OK)
			return rc;
		snprintf(detail, sizeof(detail), "%s: %s", reason, ip);
		return finding(st, scan_id, n_find, "unreachable", "medium", ep, 0, label, ip, NULL, detail,
		               when);
	}
	(*n_reach)++;
	r = rnd(100);
	versions = r < 58 ? "TLSv1.2,TLSv1.3" : r < 83 ? "TLSv1.3" : r < 95 ? "TLSv1.2"
	           : "TLSv1.0,TLSv1.1,TLSv1.2";
	tls13 = strstr(versions, "TLSv1.3") != NULL;
	negotiated = tls13 ? "TLSv1.3" : "TLSv1.2";
	classic = rnd(10) < 8 ? "X25519,P-256,P-384" : "P-256,P-384";
	pq = "none";
	if (tls13) {
		r = rnd(100);
		pq = r < 42 ? "X25519MLKEM768" : r < 45 ? "X25519MLKEM768,curveSM2MLKEM768"
		     : r < 47 ? "curveSM2MLKEM768" : "none";
	}
	if (strcmp(pq, "none") != 0)
		group = strncmp(pq, "curveSM2", 8) == 0 ? "curveSM2MLKEM768" : "X25519MLKEM768";
	else
		group = classic[0] == 'X' && rnd(10) < 8 ? "X25519" : "P-256";
	if (tls13) {
		static const char *const c13[] = { "TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256",
		                                   "TLS_CHACHA20_POLY1305_SHA256" };
		cipher = c13[rnd(3)];
	} else {
		cipher = rnd(2) ? "ECDHE-ECDSA-AES128-GCM-SHA256" : "ECDHE-RSA-AES256-GCM-SHA384";
	}
	r = rnd(100);
	trust = r < 85 ? "trusted" : r < 93 ? "incomplete" : r < 97 ? "untrusted" : "self-signed";
	{
		struct aclm_scan_result_row row = {
			.scanned_at = when, .protocol = "tls", .reachable = true, .reason = "ok",
			.detail = "", .versions = versions, .negotiated_version = negotiated,
			.cipher_suite = cipher, .negotiated_group = group, .classic_groups = classic,
			.pq_groups = pq, .ocsp_stapled = rnd(10) < 3, .leaf_cert_id = lf->id,
			.chain = lf->fingerprint,
			.leaf_valid = lf->not_before <= when && when <= lf->not_after,
			.hostname_match = mismatch ? 0 : 1, .trust = trust,
		};
		if ((rc = aclm_store_scan_put_result(st, scan_id, ep, &row)) != ACLM_OK ||
		    (rc = aclm_store_scan_observe(st, lf->id, ep, label, when)) != ACLM_OK)
			return rc;
	}
	if (strcmp(pq, "none") == 0 &&
	    (rc = finding(st, scan_id, n_find, "no-pq-group", "info", ep, 0, label, ip, NULL,
	                  "no post-quantum key exchange group accepted", when)) != ACLM_OK)
		return rc;
	if (strcmp(trust, "incomplete") == 0 &&
	    (rc = finding(st, scan_id, n_find, "incomplete-chain", "medium", ep, lf->id, label, ip,
	                  lf->fingerprint, "the server does not send the intermediate certificates "
	                  "(1 sent)", when)) != ACLM_OK)
		return rc;
	if ((strcmp(trust, "untrusted") == 0 || strcmp(trust, "self-signed") == 0) &&
	    (rc = finding(st, scan_id, n_find, trust, "high", ep, lf->id, label, ip, lf->fingerprint,
	                  trust[0] == 'u' ? "unable to get local issuer certificate"
	                                  : "self-signed", when)) != ACLM_OK)
		return rc;
	if (mismatch) {
		snprintf(detail, sizeof(detail), "the certificate is not valid for %s", host);
		if ((rc = finding(st, scan_id, n_find, "hostname-mismatch", "high", ep, lf->id, label, ip,
		                  lf->fingerprint, detail, when)) != ACLM_OK)
			return rc;
	}
	if (lf->not_after < when) {
		char date[16];
		aclm_time_date(lf->not_after, date, sizeof(date));
		snprintf(detail, sizeof(detail), "expired %s", date);
		if ((rc = finding(st, scan_id, n_find, "expired", "critical", ep, lf->id, label, ip,
		                  lf->fingerprint, detail, when)) != ACLM_OK)
			return rc;
	}
	return ACLM_OK;
}

int main(int argc, char **argv)
{
	struct aclm_store *st = NULL;
	struct aclm_cert_filter f;
	struct leaves l = { NULL, 0 };
	struct timespec t0, t1;
	int64_t n = 0, scan_id = 0, now = aclm_now(), n_reach = 0, n_find = 0, i;
	char targets[64];
	int rc = ACLM_OK, argi = 1;

	rng_state = 0x9e3779b97f4a7c15ULL;
	if (argc > 3 && strcmp(argv[1], "-s") == 0) {
		rng_state ^= strtoull(argv[2], NULL, 10) * 0xbf58476d1ce4e5b9ULL;
		argi = 3;
	}
	if (argc - argi != 2 || aclm_parse_int64(argv[argi + 1], &n) != ACLM_OK || n <= 0 ||
	    n > 10000000) {
		fprintf(stderr, "usage: genendpoints [-s SEED] DB_URL N   (N in 1..10000000)\n");
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	l.v = calloc(MAX_LEAVES, sizeof(*l.v));
	if (l.v == NULL) {
		fprintf(stderr, "genendpoints: out of memory\n");
		return 1;
	}
	if ((rc = aclm_store_open(argv[argi], NULL, &st)) != ACLM_OK)
		goto out;
	memset(&f, 0, sizeof(f));
	f.now = now;
	f.leaf_only = true;
	f.sort = ACLM_SORT_ID;
	f.limit = MAX_LEAVES;
	if ((rc = aclm_store_list_certs(st, &f, leaf_fn, &l)) != ACLM_OK)
		goto out;
	if (l.n == 0) {
		rc = aclm_error(ACLM_ERR_NOTFOUND, "%s has no leaf certificate to serve: import some "
		                "first", argv[argi]);
		goto out;
	}
	snprintf(targets, sizeof(targets), "bench: %lld generated endpoints", (long long)n);
	if ((rc = aclm_store_scan_start(st, targets, now - 86400, &scan_id)) != ACLM_OK)
		goto out;
	for (i = 0; i < n; i += BATCH) {
		if ((rc = aclm_store_begin(st)) != ACLM_OK)
			goto out;
		for (int64_t k = i; k < n && k < i + BATCH; k++)
			if ((rc = one(st, scan_id, &l, k, now, &n_reach, &n_find)) != ACLM_OK) {
				aclm_store_rollback(st);
				goto out;
			}
		if ((rc = aclm_store_commit(st)) != ACLM_OK)
			goto out;
	}
	rc = aclm_store_scan_finish(st, scan_id, now, "done", n, n_reach, n_find);
out:
	if (rc != ACLM_OK)
		fprintf(stderr, "genendpoints: %s\n", aclm_errmsg());
	aclm_store_close(st);
	free(l.v);
	if (rc != ACLM_OK)
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("endpoints %lld\nreachable %lld\nfindings %lld\nseconds %.1f\n", (long long)n,
	       (long long)n_reach, (long long)n_find,
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
}
