/* The probe table: one entry per kind of question asked of an endpoint, each
 * with its SSL_CTX built once (DESIGN: no per-handshake fetches).
 *
 *   basic      every version 1.0-1.3, classic then PQ groups: chain, the
 *              negotiated version/suite/group, the OCSP staple
 *   TLSv1.x    only that version offered (SECLEVEL 0: Debian's OpenSSL would
 *              otherwise refuse to offer 1.0/1.1 at all)
 *   group G    only G offered in supported_groups / key_share
 *   PQ group G only G, TLS 1.3 only; the aclm-pq provider lives in the
 *              scanner's own OSSL_LIB_CTX
 *
 * Adding a probe kind (TLCP, RFC 8998) = an enum value, table rows here and a
 * case in probe_record(). */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/ssl.h>
#include <openssl/tls1.h>

#include "aclm/err.h"
#include "aclm/str.h"
#include "scan-int.h"

const struct group_info scan_classic_groups[] = {
	{ "X25519", 29, NID_X25519 },
	{ "P-256", 23, NID_X9_62_prime256v1 },
	{ "P-384", 24, NID_secp384r1 },
	{ "P-521", 25, NID_secp521r1 },
	{ "X448", 30, NID_X448 },
	{ "ffdhe2048", 256, NID_ffdhe2048 },
};
const size_t scan_n_classic_groups = sizeof(scan_classic_groups) / sizeof(scan_classic_groups[0]);

const struct group_info scan_pq_groups[] = {
	{ "X25519MLKEM768", 0x11EC, 0 },
	{ "SecP256r1MLKEM768", 0x11EB, 0 },
	{ "SecP384r1MLKEM1024", 0x11ED, 0 },
	{ "curveSM2MLKEM768", 0x11EE, 0 },
	{ "MLKEM768", 0x0201, 0 },
	{ "MLKEM1024", 0x0202, 0 },
};
const size_t scan_n_pq_groups = sizeof(scan_pq_groups) / sizeof(scan_pq_groups[0]);

static const char *const classic_names[] = {
	"X25519", "P-256", "P-384", "P-521", "X448", "ffdhe2048",
};
static const char *const pq_names[] = {
	"X25519MLKEM768", "SecP256r1MLKEM768", "SecP384r1MLKEM1024", "curveSM2MLKEM768",
	"MLKEM768", "MLKEM1024",
};

size_t aclm_scan_classic_groups(const char *const **names)
{
	*names = classic_names;
	return scan_n_classic_groups;
}

size_t aclm_scan_pq_groups(const char *const **names)
{
	*names = pq_names;
	return scan_n_pq_groups;
}

static const int version_of[ACLM_SCAN_N_VERSIONS] = {
	TLS1_VERSION, TLS1_1_VERSION, TLS1_2_VERSION, TLS1_3_VERSION,
};

const char *aclm_scan_version_name(int i)
{
	static const char *const names[] = { "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3" };
	return i >= 0 && i < ACLM_SCAN_N_VERSIONS ? names[i] : "?";
}

static int version_index(int v)
{
	for (int i = 0; i < ACLM_SCAN_N_VERSIONS; i++)
		if (version_of[i] == v)
			return i;
	return -1;
}

const char *scan_group_name(int nid)
{
	if (nid == 0)
		return NULL;
	if ((nid & TLSEXT_nid_unknown) != 0) {
		int id = nid & 0xffff;
		for (size_t i = 0; i < scan_n_pq_groups; i++)
			if (scan_pq_groups[i].id == id)
				return scan_pq_groups[i].name;
		for (size_t i = 0; i < scan_n_classic_groups; i++)
			if (scan_classic_groups[i].id == id)
				return scan_classic_groups[i].name;
		return NULL;
	}
	for (size_t i = 0; i < scan_n_classic_groups; i++)
		if (scan_classic_groups[i].nid == nid)
			return scan_classic_groups[i].name;
	return OBJ_nid2sn(nid);
}

/* A client context that will talk to anything: every suite, SECLEVEL 0, no
 * verification (the chain is judged afterwards, chain.c). */
static SSL_CTX *new_ctx(OSSL_LIB_CTX *libctx, int min, int max, const char *groups)
{
	SSL_CTX *ctx = SSL_CTX_new_ex(libctx, NULL, TLS_client_method());

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_security_level(ctx, 0);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_LEGACY_SERVER_CONNECT |
	                         SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (SSL_CTX_set_min_proto_version(ctx, min) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, max) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, "ALL:COMPLEMENTOFALL:@SECLEVEL=0") != 1 ||
	    SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
	                             "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_CCM_SHA256:"
	                             "TLS_AES_128_CCM_8_SHA256") != 1 ||
	    (groups != NULL && SSL_CTX_set1_groups_list(ctx, groups) != 1)) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	/* Chains up to 100 KiB (OpenSSL's default); a 1 MB chain is an error. */
	SSL_CTX_set_max_cert_list(ctx, 100 * 1024);
	return ctx;
}

int probes_build(OSSL_LIB_CTX *libctx, struct probe_def **defs, size_t *n_defs)
{
	size_t n = 1 + ACLM_SCAN_N_VERSIONS + scan_n_classic_groups + scan_n_pq_groups, k = 0;
	struct probe_def *d = calloc(n, sizeof(*d));
	char all[512] = "";

	if (d == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory for the probe table");
	for (size_t i = 0; i < scan_n_classic_groups; i++) {
		if (strcmp(scan_classic_groups[i].name, "ffdhe2048") == 0)
			continue;
		if (*all)
			strncat(all, ":", sizeof(all) - strlen(all) - 1);
		strncat(all, scan_classic_groups[i].name, sizeof(all) - strlen(all) - 1);
	}
	for (size_t i = 0; i < scan_n_pq_groups; i++) {
		strncat(all, ":", sizeof(all) - strlen(all) - 1);
		strncat(all, scan_pq_groups[i].name, sizeof(all) - strlen(all) - 1);
	}
	d[k++] = (struct probe_def){ PROBE_BASIC, 0, "basic",
	                             new_ctx(libctx, TLS1_VERSION, TLS1_3_VERSION, all), NULL };
	for (int v = 0; v < ACLM_SCAN_N_VERSIONS; v++)
		d[k++] = (struct probe_def){ PROBE_VERSION, v, aclm_scan_version_name(v),
		                             new_ctx(libctx, version_of[v], version_of[v], NULL), NULL };
	for (size_t i = 0; i < scan_n_classic_groups; i++) {
		char list[128];
		const char *g = scan_classic_groups[i].name;
		snprintf(list, sizeof(list), "%s%s%s%s", g, strcmp(g, "P-256") ? ":P-256" : "",
		         strcmp(g, "P-384") ? ":P-384" : "", strcmp(g, "P-521") ? ":P-521" : "");
		d[k++] = (struct probe_def){ PROBE_GROUP, (int)i, g,
		                             new_ctx(libctx, TLS1_3_VERSION, TLS1_3_VERSION, g),
		                             new_ctx(libctx, TLS1_VERSION, TLS1_2_VERSION, list) };
		if (d[k - 1].ctx_tls12 == NULL) {
			SSL_CTX_free(d[k - 1].ctx);
			d[k - 1].ctx = NULL;  /* reported below */
		}
	}
	for (size_t i = 0; i < scan_n_pq_groups; i++)
		d[k++] = (struct probe_def){ PROBE_PQ_GROUP, (int)i, scan_pq_groups[i].name,
		                             new_ctx(libctx, TLS1_3_VERSION, TLS1_3_VERSION,
		                                     scan_pq_groups[i].name), NULL };
	for (size_t i = 0; i < k; i++) {
		if (d[i].ctx == NULL) {
			int rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "scanner: cannot set up the "
			                            "'%s' probe", d[i].name);
			probes_free(d, k);
			return rc;
		}
	}
	*defs = d;
	*n_defs = k;
	return ACLM_OK;
}

void probes_free(struct probe_def *defs, size_t n_defs)
{
	if (defs == NULL)
		return;
	for (size_t i = 0; i < n_defs; i++) {
		SSL_CTX_free(defs[i].ctx);
		SSL_CTX_free(defs[i].ctx_tls12);
	}
	free(defs);
}

#define MAX_CHAIN 16

static void take_chain(struct aclm_scan_result *r, SSL *ssl)
{
	STACK_OF(X509) *sk = SSL_get_peer_cert_chain(ssl);
	int n = sk ? sk_X509_num(sk) : 0;

	if (n <= 0 || r->n_chain > 0)
		return;
	if (n > MAX_CHAIN)
		n = MAX_CHAIN;
	r->chain = calloc((size_t)n, sizeof(*r->chain));
	if (r->chain == NULL)
		return;
	for (int i = 0; i < n; i++) {
		unsigned char *der = NULL;
		int len = i2d_X509(sk_X509_value(sk, i), &der);
		struct aclm_cert *c = NULL;

		if (len > 0 && aclm_cert_parse_der(der, (size_t)len, &c) == ACLM_OK)
			r->chain[r->n_chain++] = c;
		else
			aclm_error_clear();
		OPENSSL_free(der);
	}
}

void probe_record(const struct probe_def *d, struct aclm_scan_result *r, SSL *ssl, bool ok)
{
	const char *g = ok ? scan_group_name((int)SSL_get_negotiated_group(ssl)) : NULL;
	int vi = ok ? version_index(SSL_version(ssl)) : -1;

	switch (d->kind) {
	case PROBE_BASIC:
		if (!ok)
			break;
		aclm_strlcpy(r->negotiated_version, SSL_get_version(ssl), sizeof(r->negotiated_version));
		aclm_strlcpy(r->cipher_suite, SSL_get_cipher_name(ssl), sizeof(r->cipher_suite));
		aclm_strlcpy(r->negotiated_group, g ? g : "", sizeof(r->negotiated_group));
		{
			const unsigned char *resp = NULL;
			r->ocsp_stapled = SSL_get_tlsext_status_ocsp_resp(ssl, &resp) > 0;
		}
		if (vi >= 0) {
			r->versions |= 1u << vi;
			r->versions_probed |= 1u << vi;
		}
		take_chain(r, ssl);
		break;
	case PROBE_VERSION:
		r->versions_probed |= 1u << d->index;
		if (ok && vi == d->index) {
			r->versions |= 1u << d->index;
			take_chain(r, ssl);
		}
		break;
	case PROBE_GROUP:
		r->groups_probed |= 1u << d->index;
		if (ok && g != NULL && strcmp(g, scan_classic_groups[d->index].name) == 0) {
			r->groups |= 1u << d->index;
			take_chain(r, ssl);
		}
		break;
	case PROBE_PQ_GROUP:
		r->pq_probed |= 1u << d->index;
		if (ok && g != NULL && strcmp(g, scan_pq_groups[d->index].name) == 0) {
			r->pq_groups |= 1u << d->index;
			take_chain(r, ssl);
		}
		break;
	}
	if (ok && !r->reachable) {
		r->reachable = true;
		r->reason = ACLM_SCAN_OK;
		r->detail[0] = '\0';
	}
}

bool probe_is_raw(const struct probe_def *d, const struct aclm_scan_result *r)
{
	if (d->kind == PROBE_PQ_GROUP || d->kind == PROBE_VERSION)
		return true;
	/* Classic groups: TLS 1.3 servers answer a keyless hello; TLS 1.2 ones
	 * need the real thing (the group shows in ServerKeyExchange). */
	return d->kind == PROBE_GROUP &&
	       (!r->reachable || strcmp(r->negotiated_version, "TLSv1.3") == 0);
}

static const uint16_t wire_version[ACLM_SCAN_N_VERSIONS] = { 0x0301, 0x0302, 0x0303, 0x0304 };

size_t probe_raw_hello(const struct probe_def *d, unsigned char *out, size_t cap,
                       const char *sni)
{
	uint16_t groups[32];
	size_t n = 0;

	switch (d->kind) {
	case PROBE_VERSION:
		/* every group we know, so the answer is about the version only */
		for (size_t i = 0; i < scan_n_classic_groups; i++)
			if (d->index == 3 || scan_classic_groups[i].id < 256)
				groups[n++] = scan_classic_groups[i].id;
		if (d->index == 3)
			for (size_t i = 0; i < scan_n_pq_groups; i++)
				groups[n++] = scan_pq_groups[i].id;
		return hello_build(out, cap, wire_version[d->index], groups, n, sni);
	case PROBE_GROUP:
		groups[0] = scan_classic_groups[d->index].id;
		return hello_build(out, cap, 0x0304, groups, 1, sni);
	case PROBE_PQ_GROUP:
		groups[0] = scan_pq_groups[d->index].id;
		return hello_build(out, cap, 0x0304, groups, 1, sni);
	case PROBE_BASIC:
		break;
	}
	return 0;
}

bool probe_raw_accepts(const struct probe_def *d, const struct hello_reader *h)
{
	switch (d->kind) {
	case PROBE_VERSION:
		return h->version == wire_version[d->index];
	case PROBE_GROUP:
		return h->version == 0x0304 && h->group == scan_classic_groups[d->index].id;
	case PROBE_PQ_GROUP:
		return h->version == 0x0304 && h->group == scan_pq_groups[d->index].id;
	case PROBE_BASIC:
		break;
	}
	return false;
}

void probe_record_raw(const struct probe_def *d, struct aclm_scan_result *r, bool accepted)
{
	switch (d->kind) {
	case PROBE_VERSION:
		r->versions_probed |= 1u << d->index;
		if (accepted)
			r->versions |= 1u << d->index;
		break;
	case PROBE_PQ_GROUP:
		r->pq_probed |= 1u << d->index;
		if (accepted)
			r->pq_groups |= 1u << d->index;
		break;
	case PROBE_GROUP:
		r->groups_probed |= 1u << d->index;
		if (accepted)
			r->groups |= 1u << d->index;
		break;
	case PROBE_BASIC:
		break;
	}
}
