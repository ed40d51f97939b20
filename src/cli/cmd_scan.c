/* aclm scan: discovery.  Targets are checked first (nothing is scanned on a
 * bad token), then the engine probes the endpoints and every result is
 * stored as it arrives: endpoint, certificates (put_cert), observations,
 * the result row, its findings.  Findings that need the whole inventory
 * (key reuse, wildcard overuse) are computed at the end; findings of the
 * probed endpoints that were not raised again are resolved. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aclm/buf.h"
#include "aclm/err.h"
#include "aclm/scan.h"
#include "aclm/store_scan.h"
#include "aclm/str.h"
#include "aclm/timeutil.h"
#include "cli-int.h"

#define MAX_STARTTLS 64
#define MAX_EXCLUDES 1024

struct known_ep {
	struct aclm_scan_endpoint ep;
};

struct scan_cli {
	struct cli *cli;
	struct aclm_scan_targets *targets;
	struct aclm_scan_cursor *cursor;
	/* --known endpoints, then SNI variants of bare addresses */
	struct aclm_scan_endpoint *queue;
	size_t n_queue, cap_queue, q_next;
	const unsigned *st_ports;
	const enum aclm_scan_proto *st_protos;
	size_t n_st;

	int64_t scan_id;
	bool json, ndjson, progress;
	int wildcard_max;
	json_t *endpoints;          /* --json: all endpoint objects */
	json_t *findings;           /* --json: all findings */
	uint64_t n_done, n_reachable, n_silent, n_findings;
	uint64_t by_sev[5];
	bool header_done;
	int store_rc;
	/* Results are committed in batches (one transaction per BATCH_MAX
	 * endpoints or BATCH_SECONDS); each endpoint is a savepoint inside. */
	bool in_batch;
	int batch_n;
	int64_t batch_started;
	struct aclm_buf table;      /* summary rows, printed at the end */
};

/* --- endpoints source ---------------------------------------------------- */

static int queue_push(struct scan_cli *sc, const struct aclm_scan_endpoint *ep)
{
	if (sc->n_queue == sc->cap_queue) {
		size_t nc = sc->cap_queue ? sc->cap_queue * 2 : 64;
		struct aclm_scan_endpoint *p = realloc(sc->queue, nc * sizeof(*p));
		if (p == NULL)
			return aclm_error(ACLM_ERR_NOMEM, "out of memory");
		sc->queue = p;
		sc->cap_queue = nc;
	}
	sc->queue[sc->n_queue++] = *ep;
	return ACLM_OK;
}

static enum aclm_scan_proto proto_for(const struct scan_cli *sc, unsigned port)
{
	for (size_t i = 0; i < sc->n_st; i++)
		if (sc->st_ports[i] == port)
			return sc->st_protos[i];
	return aclm_scan_proto_for_port(port);
}

struct name_ctx {
	struct scan_cli *sc;
	const struct aclm_scan_endpoint *base;
};

static int add_sni_variant(void *ctx, const char *name)
{
	struct name_ctx *n = ctx;
	struct aclm_scan_endpoint ep = *n->base;

	aclm_strlcpy(ep.sni, name, sizeof(ep.sni));
	return queue_push(n->sc, &ep);
}

static int source_next(void *ctx, struct aclm_scan_endpoint *ep)
{
	struct scan_cli *sc = ctx;
	int rc;

	if (sc->q_next < sc->n_queue) {
		*ep = sc->queue[sc->q_next++];
		return 1;
	}
	if (sc->cursor == NULL)
		return 0;
	rc = aclm_scan_cursor_next(sc->cursor, ep);
	if (rc <= 0)
		return rc;
	ep->proto = proto_for(sc, ep->port);
	/* A bare address: also with each name the inventory knows for it. */
	if (ep->host[0] == '\0' && ep->ip[0] != '\0') {
		struct name_ctx n = { sc, ep };
		sc->n_queue = sc->q_next = 0;
		if ((rc = aclm_store_scan_names_for_ip(sc->cli->store, ep->ip, ep->port,
		                                       add_sni_variant, &n)) != ACLM_OK)
			return rc;
	}
	return 1;
}

static int add_known(void *ctx, const char *host, const char *ip, unsigned port,
                     const char *sni)
{
	struct scan_cli *sc = ctx;
	struct aclm_scan_endpoint ep = { 0 };

	aclm_strlcpy(ep.host, host, sizeof(ep.host));
	aclm_strlcpy(ep.ip, ip, sizeof(ep.ip));
	aclm_strlcpy(ep.sni, sni, sizeof(ep.sni));
	ep.port = port;
	if (sc->targets != NULL && aclm_scan_targets_is_excluded(sc->targets, ip, host))
		return 0;
	ep.proto = proto_for(sc, port);
	return queue_push(sc, &ep);
}

/* --- rendering ----------------------------------------------------------- */

static void ep_label(const struct aclm_scan_endpoint *ep, char *out, size_t n)
{
	bool v6 = strchr(ep->ip, ':') != NULL;

	if (ep->host[0] != '\0')
		snprintf(out, n, "%s:%u", ep->host, ep->port);
	else
		snprintf(out, n, v6 ? "[%s]:%u" : "%s:%u", ep->ip, ep->port);
	if (ep->sni[0] != '\0' && strcmp(ep->sni, ep->host) != 0)
		snprintf(out + strlen(out), n - strlen(out), " sni=%s", ep->sni);
}

static void list_bits(char *out, size_t n, uint32_t bits, const char *const *names,
                      size_t n_names)
{
	out[0] = '\0';
	for (size_t i = 0; i < n_names; i++) {
		if (!(bits & (1u << i)))
			continue;
		if (out[0] != '\0')
			aclm_strlcpy(out + strlen(out), ",", n - strlen(out));
		aclm_strlcpy(out + strlen(out), names[i], n - strlen(out));
	}
}

static void versions_text(const struct aclm_scan_result *r, char *out, size_t n)
{
	out[0] = '\0';
	for (int i = 0; i < ACLM_SCAN_N_VERSIONS; i++) {
		if (!(r->versions & (1u << i)))
			continue;
		if (out[0] != '\0')
			aclm_strlcpy(out + strlen(out), ",", n - strlen(out));
		aclm_strlcpy(out + strlen(out), aclm_scan_version_name(i), n - strlen(out));
	}
}

static json_t *bits_json(uint32_t bits, uint32_t probed, const char *const *names, size_t n)
{
	json_t *o = json_object();

	for (size_t i = 0; i < n; i++)
		json_object_set_new(o, names[i], (probed & (1u << i)) ? json_boolean(bits & (1u << i))
		                                                      : json_null());
	return o;
}

static json_t *result_json(const struct aclm_scan_result *r, const char *const *fps,
                           const int64_t *cert_ids, json_t *findings)
{
	const char *const *cg, *const *pq;
	size_t n_cg = aclm_scan_classic_groups(&cg), n_pq = aclm_scan_pq_groups(&pq);
	json_t *o = json_object(), *v = json_object(), *chain = json_array(), *pql = json_array();
	char iso[32];

	json_object_set_new(o, "host", json_string(r->ep.host));
	json_object_set_new(o, "ip", json_string(r->ep.ip));
	json_object_set_new(o, "port", json_integer(r->ep.port));
	json_object_set_new(o, "sni", json_string(r->ep.sni));
	json_object_set_new(o, "protocol", json_string(aclm_scan_proto_name(r->ep.proto)));
	aclm_time_iso(r->scanned_at, iso, sizeof(iso));
	json_object_set_new(o, "scanned_at", json_string(iso));
	json_object_set_new(o, "reachable", json_boolean(r->reachable));
	json_object_set_new(o, "reason", json_string(aclm_scan_reason_name(r->reason)));
	json_object_set_new(o, "detail", cli_json_str(r->detail));
	for (int i = 0; i < ACLM_SCAN_N_VERSIONS; i++)
		json_object_set_new(v, aclm_scan_version_name(i),
		                    (r->versions_probed & (1u << i)) ? json_boolean(r->versions & (1u << i))
		                                                     : json_null());
	json_object_set_new(o, "versions", v);
	json_object_set_new(o, "negotiated_version", json_string(r->negotiated_version));
	json_object_set_new(o, "cipher_suite", json_string(r->cipher_suite));
	json_object_set_new(o, "negotiated_group", json_string(r->negotiated_group));
	json_object_set_new(o, "groups", bits_json(r->groups, r->groups_probed, cg, n_cg));
	json_object_set_new(o, "pq_groups", bits_json(r->pq_groups, r->pq_probed, pq, n_pq));
	for (size_t i = 0; i < n_pq; i++)
		if (r->pq_groups & (1u << i))
			json_array_append_new(pql, json_string(pq[i]));
	json_object_set_new(o, "pq", r->pq_probed == 0 ? json_null()
	                             : json_array_size(pql) ? pql : json_string("none"));
	if (r->pq_probed == 0 || json_array_size(pql) == 0)
		json_decref(pql);
	json_object_set_new(o, "ocsp_stapled", json_boolean(r->ocsp_stapled));
	for (size_t i = 0; i < r->n_chain; i++) {
		const struct aclm_cert *c = r->chain[i];
		json_t *cj = json_object();
		json_object_set_new(cj, "id", cert_ids && cert_ids[i] ? json_integer(cert_ids[i])
		                                                      : json_null());
		json_object_set_new(cj, "fingerprint", json_string(fps ? fps[i] : c->fingerprint_hex));
		json_object_set_new(cj, "subject", cli_json_str(c->subject));
		json_object_set_new(cj, "issuer", cli_json_str(c->issuer));
		json_object_set_new(cj, "not_before", cli_json_time(c->not_before));
		json_object_set_new(cj, "not_after", cli_json_time(c->not_after));
		json_object_set_new(cj, "key_type", json_string(aclm_key_type_name(c->key_type)));
		json_object_set_new(cj, "key_bits", json_integer(c->key_bits));
		json_object_set_new(cj, "sig_alg", cli_json_str(c->sig_alg));
		json_array_append_new(chain, cj);
	}
	json_object_set_new(o, "chain", chain);
	if (r->n_chain > 0) {
		json_t *leaf = json_object();
		json_object_set_new(leaf, "valid", json_boolean(!r->is_expired && !r->is_not_yet_valid));
		json_object_set_new(leaf, "expired", json_boolean(r->is_expired));
		json_object_set_new(leaf, "not_yet_valid", json_boolean(r->is_not_yet_valid));
		json_object_set_new(leaf, "hostname_match", r->has_name ? json_boolean(r->hostname_matches)
		                                                        : json_null());
		json_object_set_new(leaf, "trust", json_string(aclm_scan_trust_name(r->trust)));
		json_object_set_new(leaf, "verify_error", json_string(r->verify_error));
		json_object_set_new(o, "leaf", leaf);
	} else {
		json_object_set_new(o, "leaf", json_null());
	}
	json_object_set_new(o, "findings", findings);
	return o;
}

/* --- storing a result -------------------------------------------------------- */

struct ep_store {
	struct scan_cli *sc;
	const struct aclm_scan_result *r;
	int64_t endpoint_id;
	int64_t *cert_ids;
	char label[600];
	json_t *types;               /* finding types of this endpoint */
};

static int put_finding(struct ep_store *es, const char *type, const char *sev,
                       int64_t cert_id, const char *cert_fp, const char *detail)
{
	struct scan_cli *sc = es->sc;
	struct aclm_finding_in f = { 0 };
	char ident[900];
	enum aclm_severity s = ACLM_SEV_INFO;
	int rc;

	snprintf(ident, sizeof(ident), "%s|%s|%s|%u|%s|%s", type, es->r->ep.host, es->r->ep.ip,
	         es->r->ep.port, es->r->ep.sni, cert_fp ? cert_fp : "");
	f.ident = ident;
	f.type = type;
	f.severity = sev;
	f.endpoint_id = es->endpoint_id;
	f.cert_id = cert_id;
	f.subject = es->label;
	f.detail = detail;
	f.when = es->r->scanned_at;
	if ((rc = aclm_store_scan_put_finding(sc->cli->store, sc->scan_id, &f, NULL)) != ACLM_OK)
		return rc;
	aclm_severity_parse(sev, &s);
	sc->by_sev[s]++;
	sc->n_findings++;
	json_array_append_new(es->types, json_string(type));
	if (sc->json || sc->ndjson) {
		json_t *o = json_object();
		json_object_set_new(o, "type", json_string(type));
		json_object_set_new(o, "severity", json_string(sev));
		json_object_set_new(o, "endpoint", json_string(es->label));
		json_object_set_new(o, "certificate", cert_fp ? json_string(cert_fp) : json_null());
		json_object_set_new(o, "detail", cli_json_str(detail));
		if (sc->ndjson) {
			json_object_set_new(o, "kind", json_string("finding"));
			json_dumpf(o, stdout, JSON_COMPACT | JSON_ENSURE_ASCII);
			fputc('\n', stdout);
			json_decref(o);
		} else {
			json_array_append_new(sc->findings, o);
		}
	}
	return ACLM_OK;
}

static int on_finding(void *ctx, const struct aclm_finding *f)
{
	struct ep_store *es = ctx;
	int idx = f->cert_index;

	return put_finding(es, f->type, aclm_severity_name(f->severity),
	                   idx >= 0 ? es->cert_ids[idx] : 0,
	                   idx >= 0 ? es->r->chain[idx]->fingerprint_hex : NULL, f->detail);
}

static void table_row(struct scan_cli *sc, const struct aclm_scan_result *r, const char *label,
                      size_t n_findings)
{
	const char *const *pq;
	size_t n_pq = aclm_scan_pq_groups(&pq);
	char vers[64], pqs[160], exp[16] = "-";

	if (!r->reachable && (r->reason == ACLM_SCAN_REFUSED ||
	                      r->reason == ACLM_SCAN_CONNECT_TIMEOUT ||
	                      r->reason == ACLM_SCAN_UNREACHABLE)) {
		sc->n_silent++;
		return;
	}
	versions_text(r, vers, sizeof(vers));
	list_bits(pqs, sizeof(pqs), r->pq_groups, pq, n_pq);
	if (r->pq_probed != 0 && pqs[0] == '\0')
		aclm_strlcpy(pqs, "none", sizeof(pqs));
	if (r->n_chain > 0)
		aclm_time_date(r->chain[0]->not_after, exp, sizeof(exp));
	if (!sc->header_done) {
		aclm_buf_printf(&sc->table, "%-32s %-11s %-17s %-10s %-11s %-8s %s\n", "ENDPOINT",
		                "STATUS", "VERSIONS", "EXPIRES", "TRUST", "FINDINGS", "PQ GROUPS");
		sc->header_done = true;
	}
	aclm_buf_printf(&sc->table, "%-32s %-11s %-17s %-10s %-11s %-8zu %s\n", label,
	                r->reachable ? "ok" : aclm_scan_reason_name(r->reason),
	                vers[0] ? vers : "-", exp,
	                r->n_chain ? aclm_scan_trust_name(r->trust) : "-", n_findings,
	                pqs[0] ? pqs : "-");
}

static void join_versions(const struct aclm_scan_result *r, char *out, size_t n)
{
	versions_text(r, out, n);
}

static int store_result(struct scan_cli *sc, const struct aclm_scan_result *r)
{
	struct aclm_store *st = sc->cli->store;
	struct ep_store es = { .sc = sc, .r = r };
	const char *const *cg, *const *pq;
	size_t n_cg = aclm_scan_classic_groups(&cg), n_pq = aclm_scan_pq_groups(&pq);
	char prev[65], vers[64], groups[200], pqs[200];
	struct aclm_buf chain;
	bool had_prev = false;
	const char **fps = NULL;
	int rc;

	aclm_buf_init(&chain, 1 << 20);
	ep_label(&r->ep, es.label, sizeof(es.label));
	es.types = json_array();
	es.cert_ids = calloc(r->n_chain ? r->n_chain : 1, sizeof(*es.cert_ids));
	fps = calloc(r->n_chain ? r->n_chain : 1, sizeof(*fps));
	if (es.cert_ids == NULL || fps == NULL || es.types == NULL) {
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((rc = aclm_store_begin(st)) != ACLM_OK)
		goto out;
	if ((rc = aclm_store_scan_endpoint(st, r->ep.host, r->ep.ip, r->ep.port, r->ep.sni,
	                                   r->scanned_at, &es.endpoint_id)) != ACLM_OK ||
	    (rc = aclm_store_scan_previous_leaf(st, es.endpoint_id, prev, &had_prev)) != ACLM_OK)
		goto fail;
	for (size_t i = 0; i < r->n_chain; i++) {
		bool is_new;
		fps[i] = r->chain[i]->fingerprint_hex;
		if ((rc = aclm_store_put_cert(st, r->chain[i], &es.cert_ids[i], &is_new)) != ACLM_OK ||
		    (rc = aclm_store_scan_observe(st, es.cert_ids[i], es.endpoint_id, es.label,
		                                  r->scanned_at)) != ACLM_OK)
			goto fail;
		if (i > 0)
			aclm_buf_putc(&chain, ',');
		aclm_buf_puts(&chain, fps[i]);
	}
	join_versions(r, vers, sizeof(vers));
	list_bits(groups, sizeof(groups), r->groups, cg, n_cg);
	list_bits(pqs, sizeof(pqs), r->pq_groups, pq, n_pq);
	if (r->pq_probed != 0 && pqs[0] == '\0')
		aclm_strlcpy(pqs, "none", sizeof(pqs));
	{
		struct aclm_scan_result_row row = {
			.scanned_at = r->scanned_at,
			.protocol = aclm_scan_proto_name(r->ep.proto),
			.reachable = r->reachable,
			.reason = aclm_scan_reason_name(r->reason),
			.detail = r->detail,
			.versions = vers,
			.negotiated_version = r->negotiated_version,
			.cipher_suite = r->cipher_suite,
			.negotiated_group = r->negotiated_group,
			.classic_groups = groups,
			.pq_groups = pqs,
			.ocsp_stapled = r->ocsp_stapled,
			.leaf_cert_id = r->n_chain ? es.cert_ids[0] : 0,
			.chain = aclm_buf_cstr(&chain),
			.leaf_valid = r->n_chain ? !r->is_expired && !r->is_not_yet_valid : -1,
			.hostname_match = r->n_chain && r->has_name ? r->hostname_matches : -1,
			.trust = r->n_chain ? aclm_scan_trust_name(r->trust) : "",
		};
		if ((rc = aclm_store_scan_put_result(st, sc->scan_id, es.endpoint_id, &row)) != ACLM_OK)
			goto fail;
	}
	if ((rc = aclm_scan_endpoint_findings(r, r->scanned_at, on_finding, &es)) != ACLM_OK)
		goto fail;
	if (r->n_chain > 0) {
		bool managed = false;
		if ((rc = aclm_store_scan_is_managed(st, es.cert_ids[0], &managed)) != ACLM_OK)
			goto fail;
		if (!managed && (rc = put_finding(&es, ACLM_FIND_UNMANAGED, "low", es.cert_ids[0],
		                                  fps[0], "served but not managed by aclm (not "
		                                  "imported, not issued through aclm)")) != ACLM_OK)
			goto fail;
		if (had_prev && strcmp(prev, fps[0]) != 0) {
			char detail[200];
			snprintf(detail, sizeof(detail), "was %.16s..., now %.16s...", prev, fps[0]);
			if ((rc = put_finding(&es, ACLM_FIND_CHANGED, "info", es.cert_ids[0], fps[0],
			                      detail)) != ACLM_OK)
				goto fail;
		}
	}
	if ((rc = aclm_store_commit(st)) != ACLM_OK)
		goto out;
	sc->n_done++;
	if (r->reachable)
		sc->n_reachable++;
	table_row(sc, r, es.label, json_array_size(es.types));
	if (sc->json || sc->ndjson) {
		json_t *o = result_json(r, fps, es.cert_ids, es.types);
		es.types = NULL;
		if (sc->ndjson) {
			json_object_set_new(o, "kind", json_string("endpoint"));
			json_dumpf(o, stdout, JSON_COMPACT | JSON_ENSURE_ASCII);
			fputc('\n', stdout);
			fflush(stdout);
			json_decref(o);
		} else {
			json_array_append_new(sc->endpoints, o);
		}
	}
	goto out;
fail:
	{
		char saved[1024];
		snprintf(saved, sizeof(saved), "%s", aclm_errmsg());
		aclm_store_rollback(st);
		aclm_error(rc, "%s: %s", es.label, saved);
	}
out:
	json_decref(es.types);
	free(es.cert_ids);
	free(fps);
	aclm_buf_free(&chain);
	return rc;
}

#define BATCH_MAX 200
#define BATCH_SECONDS 2

static int batch_commit(struct scan_cli *sc)
{
	if (!sc->in_batch)
		return ACLM_OK;
	sc->in_batch = false;
	sc->batch_n = 0;
	return aclm_store_commit(sc->cli->store);
}

static int on_result(void *ctx, const struct aclm_scan_result *r)
{
	struct scan_cli *sc = ctx;
	int rc;

	if (!sc->in_batch) {
		if ((rc = aclm_store_begin(sc->cli->store)) != ACLM_OK) {
			sc->store_rc = rc;
			return rc;
		}
		sc->in_batch = true;
		sc->batch_started = aclm_now();
	}
	rc = store_result(sc, r);
	if (rc == ACLM_OK && (++sc->batch_n >= BATCH_MAX ||
	                      aclm_now() - sc->batch_started >= BATCH_SECONDS))
		rc = batch_commit(sc);
	if (rc != ACLM_OK)
		sc->store_rc = rc;
	return rc;
}

static void on_progress(void *ctx, const struct aclm_scan_progress *p)
{
	struct scan_cli *sc = ctx;
	double rate = p->elapsed > 0 ? (double)p->done / p->elapsed : 0;
	uint64_t total = p->total > p->started ? p->total : p->started;

	if (!sc->progress)
		return;
	if (total > p->done && rate > 0) {
		double eta = (double)(total - p->done) / rate;
		fprintf(stderr, "\r\033[Kscan: %llu/%llu endpoints  %.1f/s  ETA %d:%02d  findings %llu",
		        (unsigned long long)p->done, (unsigned long long)total, rate,
		        (int)(eta / 60), (int)eta % 60, (unsigned long long)sc->n_findings);
	} else {
		fprintf(stderr, "\r\033[Kscan: %llu/%llu endpoints  %.1f/s  findings %llu",
		        (unsigned long long)p->done, (unsigned long long)total, rate,
		        (unsigned long long)sc->n_findings);
	}
	fflush(stderr);
}

/* --- inventory-wide findings ----------------------------------------------- */

struct leaf {
	char spki[65];
	char fp[65];
	char site[300];      /* host name, or the address */
	char sans[512];
	int64_t cert_id;
	int64_t endpoint_id;
	bool wildcard;
};

struct leaves {
	struct leaf *v;
	size_t n, cap;
};

static int collect_leaf(void *ctx, const struct aclm_scan_leaf_row *row)
{
	struct leaves *l = ctx;
	struct leaf *x;

	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 64;
		struct leaf *p = realloc(l->v, nc * sizeof(*p));
		if (p == NULL)
			return aclm_error(ACLM_ERR_NOMEM, "out of memory");
		l->v = p;
		l->cap = nc;
	}
	x = &l->v[l->n++];
	memset(x, 0, sizeof(*x));
	aclm_strlcpy(x->spki, row->spki, sizeof(x->spki));
	aclm_strlcpy(x->fp, row->fingerprint, sizeof(x->fp));
	aclm_strlcpy(x->site, row->sni[0] ? row->sni : row->host[0] ? row->host : row->ip,
	             sizeof(x->site));
	aclm_strlcpy(x->sans, row->sans, sizeof(x->sans));
	x->cert_id = row->cert_id;
	x->endpoint_id = row->endpoint_id;
	x->wildcard = strstr(row->sans, "DNS:*.") != NULL;
	return 0;
}

static int cmp_spki(const void *a, const void *b)
{
	const struct leaf *x = a, *y = b;
	int c = strcmp(x->spki, y->spki);
	return c ? c : strcmp(x->fp, y->fp);
}

static int cmp_fp(const void *a, const void *b)
{
	const struct leaf *x = a, *y = b;
	return strcmp(x->fp, y->fp);
}

static int global_finding(struct scan_cli *sc, const char *type, const char *sev,
                          const char *ident_tail, int64_t cert_id, const char *cert_fp,
                          const char *subject, const char *detail)
{
	struct aclm_finding_in f = { 0 };
	char ident[200];
	enum aclm_severity s = ACLM_SEV_INFO;
	int rc;

	snprintf(ident, sizeof(ident), "%s|%s", type, ident_tail);
	f.ident = ident;
	f.type = type;
	f.severity = sev;
	f.cert_id = cert_id;
	f.subject = subject;
	f.detail = detail;
	f.when = aclm_now();
	if ((rc = aclm_store_scan_put_finding(sc->cli->store, sc->scan_id, &f, NULL)) != ACLM_OK)
		return rc;
	aclm_severity_parse(sev, &s);
	sc->by_sev[s]++;
	sc->n_findings++;
	if (sc->json || sc->ndjson) {
		json_t *o = json_object();
		json_object_set_new(o, "type", json_string(type));
		json_object_set_new(o, "severity", json_string(sev));
		json_object_set_new(o, "endpoint", json_null());
		json_object_set_new(o, "certificate", cert_fp ? json_string(cert_fp) : json_null());
		json_object_set_new(o, "subject", json_string(subject));
		json_object_set_new(o, "detail", cli_json_str(detail));
		if (sc->ndjson) {
			json_object_set_new(o, "kind", json_string("finding"));
			json_dumpf(o, stdout, JSON_COMPACT | JSON_ENSURE_ASCII);
			fputc('\n', stdout);
			json_decref(o);
		} else {
			json_array_append_new(sc->findings, o);
		}
	}
	return ACLM_OK;
}

/* One site, one key: the same SPKI in certificates for different names
 * (different SAN sets; the same certificate on several ports or addresses
 * is one site).  A wildcard certificate on more than wildcard_max
 * endpoints. */
static int inventory_findings(struct scan_cli *sc)
{
	struct leaves l = { 0 };
	int rc;

	if ((rc = aclm_store_scan_latest_leaves(sc->cli->store, collect_leaf, &l)) != ACLM_OK)
		goto out;
	if (l.n == 0)
		goto out;
	qsort(l.v, l.n, sizeof(l.v[0]), cmp_spki);
	for (size_t i = 0; i < l.n && rc == ACLM_OK;) {
		size_t j = i;
		bool differ = false;
		char detail[320];
		while (j < l.n && strcmp(l.v[j].spki, l.v[i].spki) == 0) {
			if (strcmp(l.v[j].sans, l.v[i].sans) != 0)
				differ = true;
			j++;
		}
		if (differ) {
			snprintf(detail, sizeof(detail), "one key in certificates for different names:");
			for (size_t k = i; k < j; k++) {
				bool seen = false;
				for (size_t m = i; m < k; m++)
					seen = seen || strcmp(l.v[m].fp, l.v[k].fp) == 0;
				if (!seen)
					snprintf(detail + strlen(detail), sizeof(detail) - strlen(detail), " [%s]",
					         l.v[k].sans[0] ? l.v[k].sans : l.v[k].site);
			}
			rc = global_finding(sc, ACLM_FIND_KEY_REUSE, "medium", l.v[i].spki, 0, NULL,
			                    l.v[i].spki, detail);
		}
		i = j;
	}
	qsort(l.v, l.n, sizeof(l.v[0]), cmp_fp);
	for (size_t i = 0; i < l.n && rc == ACLM_OK;) {
		size_t j = i;
		while (j < l.n && strcmp(l.v[j].fp, l.v[i].fp) == 0)
			j++;
		if (l.v[i].wildcard && (int)(j - i) > sc->wildcard_max) {
			char detail[200];
			snprintf(detail, sizeof(detail), "wildcard certificate served on %zu endpoints "
			         "(more than %d)", j - i, sc->wildcard_max);
			rc = global_finding(sc, ACLM_FIND_WILDCARD, "low", l.v[i].fp, l.v[i].cert_id,
			                    l.v[i].fp, l.v[i].fp, detail);
		}
		i = j;
	}
out:
	free(l.v);
	return rc;
}

/* --- trust anchors ---------------------------------------------------------- */

static int add_ca(void *ctx, const unsigned char *der, size_t len, bool self_signed)
{
	struct aclm_scan *s = ctx;

	return self_signed ? aclm_scan_add_anchor(s, der, len)
	                   : aclm_scan_add_intermediate(s, der, len);
}

/* --- options ------------------------------------------------------------------- */

static int parse_seconds(const char *s, double *out)
{
	char *end = NULL;
	double v = strtod(s, &end);

	if (end == s || v <= 0 || v > 3600)
		return ACLM_ERR_PARSE;
	if (strcmp(end, "ms") == 0)
		v /= 1000;
	else if (*end != '\0' && strcmp(end, "s") != 0)
		return ACLM_ERR_PARSE;
	*out = v;
	return ACLM_OK;
}

static int parse_count(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
	if (aclm_parse_int64(s, out) != ACLM_OK || *out < lo || *out > hi) {
		aclm_error_clear();
		return ACLM_ERR_PARSE;
	}
	return ACLM_OK;
}

int cmd_scan(struct cli *cli, int argc, char **argv)
{
	enum { O_PORTS = 256, O_KNOWN, O_EXCLUDE, O_YES, O_CONC, O_RATE, O_PER_HOST, O_CT, O_HT,
	       O_STARTTLS, O_NO_VERSIONS, O_NO_GROUPS, O_WILDCARD, O_JSON, O_NDJSON,
	       O_NO_PROGRESS };
	static const struct option opts[] = {
		{ "ports", required_argument, NULL, O_PORTS },
		{ "known", no_argument, NULL, O_KNOWN },
		{ "exclude", required_argument, NULL, O_EXCLUDE },
		{ "yes", no_argument, NULL, O_YES },
		{ "concurrency", required_argument, NULL, O_CONC },
		{ "rate", required_argument, NULL, O_RATE },
		{ "per-host", required_argument, NULL, O_PER_HOST },
		{ "connect-timeout", required_argument, NULL, O_CT },
		{ "handshake-timeout", required_argument, NULL, O_HT },
		{ "starttls", required_argument, NULL, O_STARTTLS },
		{ "no-versions", no_argument, NULL, O_NO_VERSIONS },
		{ "no-groups", no_argument, NULL, O_NO_GROUPS },
		{ "wildcard-max", required_argument, NULL, O_WILDCARD },
		{ "json", no_argument, NULL, O_JSON },
		{ "ndjson", no_argument, NULL, O_NDJSON },
		{ "no-progress", no_argument, NULL, O_NO_PROGRESS },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cli_command *self = cli_find_command("scan");
	struct aclm_scan_opts so = { 0 };
	struct scan_cli sc = { .cli = cli, .wildcard_max = 10 };
	struct aclm_scan *scan = NULL;
	struct aclm_scan_source src = { 0 };
	const char *ports = NULL;
	const char *excludes[MAX_EXCLUDES];
	size_t n_excludes = 0;
	unsigned st_ports[MAX_STARTTLS];
	enum aclm_scan_proto st_protos[MAX_STARTTLS];
	bool known = false, yes = false, no_progress = false;
	int64_t v, started;
	struct aclm_buf tokens_text;
	int opt, rc = EXIT_FAILED, run_rc;

	aclm_buf_init(&tokens_text, 1 << 16);
	aclm_buf_init(&sc.table, 64 << 20);
	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (opt) {
		case O_PORTS: ports = optarg; break;
		case O_KNOWN: known = true; break;
		case O_EXCLUDE:
			if (n_excludes == MAX_EXCLUDES) {
				rc = cli_usage_error("scan", "more than %d --exclude", MAX_EXCLUDES);
				goto out;
			}
			excludes[n_excludes++] = optarg;
			break;
		case O_YES: yes = true; break;
		case O_CONC:
			if (parse_count(optarg, 1, 20000, &v) != ACLM_OK) {
				rc = cli_usage_error("scan", "--concurrency: '%s' is not a number 1-20000", optarg);
				goto out;
			}
			so.concurrency = (int)v;
			break;
		case O_RATE:
			if (parse_count(optarg, 1, 1000000, &v) != ACLM_OK) {
				rc = cli_usage_error("scan", "--rate: '%s' is not a number of connections "
				                     "per second 1-1000000", optarg);
				goto out;
			}
			so.rate = (double)v;
			break;
		case O_PER_HOST:
			if (parse_count(optarg, 1, 20000, &v) != ACLM_OK) {
				rc = cli_usage_error("scan", "--per-host: '%s' is not a number 1-20000", optarg);
				goto out;
			}
			so.per_host = (int)v;
			break;
		case O_CT:
		case O_HT: {
			double d;
			if (parse_seconds(optarg, &d) != ACLM_OK) {
				rc = cli_usage_error("scan", "--%s: '%s' is not a duration (3, 2.5s, 500ms)",
				                     opt == O_CT ? "connect-timeout" : "handshake-timeout", optarg);
				goto out;
			}
			if (opt == O_CT)
				so.connect_timeout = d;
			else
				so.handshake_timeout = d;
			break;
		}
		case O_STARTTLS: {
			const char *colon = strchr(optarg, ':');
			char port[16];
			if (sc.n_st == MAX_STARTTLS || colon == NULL ||
			    (size_t)(colon - optarg) >= sizeof(port)) {
				rc = cli_usage_error("scan", "--starttls: '%s' is not PORT:smtp|imap|pop3|tls",
				                     optarg);
				goto out;
			}
			memcpy(port, optarg, (size_t)(colon - optarg));
			port[colon - optarg] = '\0';
			if (parse_count(port, 1, 65535, &v) != ACLM_OK ||
			    aclm_scan_proto_parse(colon + 1, &st_protos[sc.n_st]) != ACLM_OK) {
				rc = cli_usage_error("scan", "--starttls: '%s' is not PORT:smtp|imap|pop3|tls",
				                     optarg);
				goto out;
			}
			st_ports[sc.n_st++] = (unsigned)v;
			break;
		}
		case O_NO_VERSIONS: so.no_versions = true; break;
		case O_NO_GROUPS: so.no_groups = true; break;
		case O_WILDCARD:
			if (parse_count(optarg, 1, 1000000, &v) != ACLM_OK) {
				rc = cli_usage_error("scan", "--wildcard-max: '%s' is not a number >= 1", optarg);
				goto out;
			}
			sc.wildcard_max = (int)v;
			break;
		case O_JSON: sc.json = true; break;
		case O_NDJSON: sc.ndjson = true; break;
		case O_NO_PROGRESS: no_progress = true; break;
		default:
			rc = cli_getopt_default(self, opt, argv);
			goto out;
		}
	}
	if (sc.json && sc.ndjson) {
		rc = cli_usage_error("scan", "--json and --ndjson exclude each other");
		goto out;
	}
	if (optind >= argc && !known) {
		rc = cli_usage_error("scan", "no targets (names, addresses, CIDR ranges, @FILE) and "
		                     "no --known");
		goto out;
	}
	sc.st_ports = st_ports;
	sc.st_protos = st_protos;
	if (aclm_scan_targets_parse((const char *const *)argv + optind, (size_t)(argc - optind),
	                            &sc.targets) != ACLM_OK) {
		rc = cli_usage_error("scan", "%s; nothing was scanned", aclm_errmsg());
		goto out;
	}
	{
		const char *const *cfg_excl = NULL;
		size_t n_cfg = aclm_config_list(cli->cfg, "scan.exclude", &cfg_excl);
		if ((n_cfg > 0 && aclm_scan_targets_exclude(sc.targets, cfg_excl, n_cfg) != ACLM_OK) ||
		    (n_excludes > 0 && aclm_scan_targets_exclude(sc.targets, excludes, n_excludes) != ACLM_OK)) {
			rc = cli_usage_error("scan", "%s; nothing was scanned", aclm_errmsg());
			goto out;
		}
	}
	if (ports != NULL && aclm_scan_targets_set_ports(sc.targets, ports) != ACLM_OK) {
		rc = cli_usage_error("scan", "%s", aclm_errmsg());
		goto out;
	}
	if (!yes && aclm_scan_targets_n_addresses(sc.targets) > 65536) {
		rc = cli_usage_error("scan", "the targets cover %llu addresses, more than 65,536; "
		                     "add --yes to scan them all",
		                     (unsigned long long)aclm_scan_targets_n_addresses(sc.targets));
		goto out;
	}
	if (cli_open_store(cli) != ACLM_OK)
		goto out;
	so.starttls_ports = st_ports;
	so.starttls_protos = st_protos;
	so.n_starttls = sc.n_st;
	if (aclm_scan_new(&so, &scan) != ACLM_OK) {
		rc = cli_fail("%s", aclm_errmsg());
		goto out;
	}
	if (aclm_store_scan_ca_certs(cli->store, add_ca, scan) != ACLM_OK) {
		rc = cli_fail("%s", aclm_errmsg());
		goto out;
	}
	if (known && aclm_store_scan_known_endpoints(cli->store, add_known, &sc) != ACLM_OK) {
		rc = cli_fail("%s", aclm_errmsg());
		goto out;
	}
	if (optind < argc && aclm_scan_cursor_new(sc.targets, &sc.cursor) != ACLM_OK) {
		rc = cli_fail("%s", aclm_errmsg());
		goto out;
	}
	for (int i = optind; i < argc; i++)
		aclm_buf_printf(&tokens_text, "%s%s", i > optind ? " " : "", argv[i]);
	if (known)
		aclm_buf_printf(&tokens_text, "%s--known", optind < argc ? " " : "");
	started = aclm_now();
	if (aclm_store_scan_start(cli->store, aclm_buf_cstr(&tokens_text), started,
	                          &sc.scan_id) != ACLM_OK) {
		rc = cli_fail("%s", aclm_errmsg());
		goto out;
	}
	sc.endpoints = json_array();
	sc.findings = json_array();
	sc.progress = !no_progress && !cli->quiet && isatty(STDERR_FILENO);
	src.next = source_next;
	src.ctx = &sc;
	src.total_hint = aclm_scan_targets_n_endpoints(sc.targets) + sc.n_queue;
	run_rc = aclm_scan_run(scan, &src, on_result, on_progress, &sc);
	if (sc.progress)
		fputs("\r\033[K", stderr);
	if (run_rc == ACLM_OK)
		run_rc = batch_commit(&sc);
	else if (sc.in_batch)
		aclm_store_rollback(cli->store);
	if (run_rc != ACLM_OK) {
		char saved[1024];
		snprintf(saved, sizeof(saved), "%s", aclm_errmsg());
		aclm_store_scan_finish(cli->store, sc.scan_id, aclm_now(), "failed",
		                       (int64_t)sc.n_done, (int64_t)sc.n_reachable,
		                       (int64_t)sc.n_findings);
		rc = cli_fail("scan stopped: %s", saved);
		goto out;
	}
	{
		static const char *const global_types[] = { ACLM_FIND_KEY_REUSE, ACLM_FIND_WILDCARD,
		                                             NULL };
		int64_t n_resolved = 0;
		if (inventory_findings(&sc) != ACLM_OK ||
		    aclm_store_scan_resolve(cli->store, sc.scan_id, aclm_now(), global_types,
		                            &n_resolved) != ACLM_OK ||
		    aclm_store_scan_finish(cli->store, sc.scan_id, aclm_now(), "done",
		                           (int64_t)sc.n_done, (int64_t)sc.n_reachable,
		                           (int64_t)sc.n_findings) != ACLM_OK) {
			rc = cli_fail("%s", aclm_errmsg());
			goto out;
		}
	}
	if (sc.json) {
		json_t *o = json_object(), *sum = json_object();
		json_object_set_new(o, "scan_id", json_integer(sc.scan_id));
		json_object_set_new(o, "started_at", cli_json_time(started));
		json_object_set_new(o, "finished_at", cli_json_time(aclm_now()));
		json_object_set_new(sum, "endpoints", json_integer((json_int_t)sc.n_done));
		json_object_set_new(sum, "reachable", json_integer((json_int_t)sc.n_reachable));
		json_object_set_new(sum, "findings", json_integer((json_int_t)sc.n_findings));
		json_object_set_new(o, "summary", sum);
		json_object_set_new(o, "endpoints", sc.endpoints);
		json_object_set_new(o, "findings", sc.findings);
		sc.endpoints = sc.findings = NULL;
		cli_json_print(o);
	} else if (sc.ndjson) {
		printf("{\"kind\":\"summary\",\"scan_id\":%lld,\"endpoints\":%llu,\"reachable\":%llu,"
		       "\"findings\":%llu}\n", (long long)sc.scan_id, (unsigned long long)sc.n_done,
		       (unsigned long long)sc.n_reachable, (unsigned long long)sc.n_findings);
	} else {
		fputs(aclm_buf_cstr(&sc.table), stdout);
		printf("%sscan %lld: %llu endpoints, %llu reachable", sc.header_done ? "\n" : "",
		       (long long)sc.scan_id, (unsigned long long)sc.n_done,
		       (unsigned long long)sc.n_reachable);
		if (sc.n_silent > 0)
			printf(", %llu did not answer (refused or no reply; not listed)",
			       (unsigned long long)sc.n_silent);
		printf("; %llu findings", (unsigned long long)sc.n_findings);
		if (sc.n_findings > 0) {
			const char *sep = " (";
			for (int i = ACLM_SEV_CRITICAL; i >= ACLM_SEV_INFO; i--) {
				if (sc.by_sev[i] == 0)
					continue;
				printf("%s%llu %s", sep, (unsigned long long)sc.by_sev[i],
				       aclm_severity_name((enum aclm_severity)i));
				sep = ", ";
			}
			printf(")");
		}
		printf(" in %llds\n", (long long)(aclm_now() - started));
		if (sc.n_findings > 0)
			printf("details: aclm findings --scan %lld\n", (long long)sc.scan_id);
	}
	rc = EXIT_OK;
out:
	aclm_scan_free(scan);
	aclm_scan_cursor_free(sc.cursor);
	aclm_scan_targets_free(sc.targets);
	free(sc.queue);
	json_decref(sc.endpoints);
	json_decref(sc.findings);
	aclm_buf_free(&sc.table);
	aclm_buf_free(&tokens_text);
	return rc;
}
