/* Judging a chain as served: validity at `now`, host name, and trust.
 *
 * Trust anchors: the system store plus the self-signed CAs the caller adds
 * (aclm's own CAs from the inventory).  Time is not part of trust here
 * (expiry is its own finding): verification runs with NO_CHECK_TIME.
 * "Incomplete" = no path with what the server sent, but a path once the
 * intermediates the caller knows of are added: the server forgot them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "aclm/err.h"
#include "aclm/str.h"
#include "scan-int.h"

struct chain_ctx {
	OSSL_LIB_CTX *libctx;
	X509_STORE *store;
	STACK_OF(X509) *extra;
};

int chain_ctx_new(OSSL_LIB_CTX *libctx, struct chain_ctx **out)
{
	struct chain_ctx *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (c == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	c->libctx = libctx;
	c->store = X509_STORE_new();
	c->extra = sk_X509_new_null();
	if (c->store == NULL || c->extra == NULL) {
		chain_ctx_free(c);
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	}
	/* A missing system store is not an error: then only inventory CAs count. */
	if (X509_STORE_set_default_paths_ex(c->store, libctx, NULL) != 1)
		ERR_clear_error();
	*out = c;
	return ACLM_OK;
}

void chain_ctx_free(struct chain_ctx *c)
{
	if (c == NULL)
		return;
	X509_STORE_free(c->store);
	sk_X509_pop_free(c->extra, X509_free);
	free(c);
}

int chain_ctx_add(struct chain_ctx *c, const unsigned char *der, size_t len, bool anchor)
{
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)len);
	int ok;

	if (x == NULL)
		return aclm_error_openssl(ACLM_ERR_PARSE, "scanner: a CA certificate does not parse");
	if (anchor) {
		ok = X509_STORE_add_cert(c->store, x);
		X509_free(x);
		if (ok != 1)
			ERR_clear_error();  /* already there */
		return ACLM_OK;
	}
	if (sk_X509_push(c->extra, x) <= 0) {
		X509_free(x);
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	}
	return ACLM_OK;
}

/* 1 verified, 0 not (*err set). */
static int verify(struct chain_ctx *c, X509 *leaf, STACK_OF(X509) *untrusted, int *err)
{
	X509_STORE_CTX *ctx = X509_STORE_CTX_new_ex(c->libctx, NULL);
	int ok = 0;

	*err = X509_V_ERR_UNSPECIFIED;
	if (ctx == NULL)
		return 0;
	if (X509_STORE_CTX_init(ctx, c->store, leaf, untrusted) == 1) {
		X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_NO_CHECK_TIME);
		ok = X509_verify_cert(ctx) == 1;
		*err = X509_STORE_CTX_get_error(ctx);
	}
	X509_STORE_CTX_free(ctx);
	ERR_clear_error();
	return ok;
}

static bool signed_by_itself(X509 *x)
{
	EVP_PKEY *k = X509_get0_pubkey(x);
	bool yes = X509_check_issued(x, x) == X509_V_OK && k != NULL && X509_verify(x, k) == 1;

	ERR_clear_error();
	return yes;
}

void chain_analyse(struct chain_ctx *c, struct aclm_scan_result *r, int64_t now)
{
	STACK_OF(X509) *served = NULL, *more = NULL;
	X509 *leaf = NULL;
	const struct aclm_cert *lc;
	int err = 0;

	if (r->n_chain == 0) {
		r->trust = ACLM_TRUST_UNKNOWN;
		return;
	}
	lc = r->chain[0];
	r->is_expired = lc->not_after < now;
	r->is_not_yet_valid = lc->not_before > now;
	served = sk_X509_new_null();
	more = sk_X509_new_null();
	for (size_t i = 0; i < r->n_chain && served != NULL && more != NULL; i++) {
		const unsigned char *p = r->chain[i]->der;
		X509 *x = d2i_X509(NULL, &p, (long)r->chain[i]->der_len);
		if (x == NULL)
			continue;
		if (i == 0) {
			leaf = x;
			continue;
		}
		if (sk_X509_push(served, x) <= 0)
			X509_free(x);
	}
	if (leaf == NULL || served == NULL || more == NULL) {
		r->trust = ACLM_TRUST_UNKNOWN;
		goto out;
	}
	if (r->ep.sni[0] != '\0') {
		r->has_name = true;
		r->hostname_matches = X509_check_host(leaf, r->ep.sni, 0, 0, NULL) == 1;
	} else if (r->ep.ip[0] != '\0') {
		r->has_name = true;
		r->hostname_matches = X509_check_ip_asc(leaf, r->ep.ip, 0) == 1;
	}
	if (verify(c, leaf, served, &err)) {
		r->trust = ACLM_TRUST_TRUSTED;
		goto out;
	}
	if ((err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
	     err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT) && sk_X509_num(c->extra) > 0) {
		int err2;
		for (int i = 0; i < sk_X509_num(served); i++)
			sk_X509_push(more, sk_X509_value(served, i));
		for (int i = 0; i < sk_X509_num(c->extra); i++)
			sk_X509_push(more, sk_X509_value(c->extra, i));
		if (verify(c, leaf, more, &err2)) {
			r->trust = ACLM_TRUST_INCOMPLETE;
			snprintf(r->verify_error, sizeof(r->verify_error), "%s",
			         X509_verify_cert_error_string(err));
			goto out;
		}
	}
	snprintf(r->verify_error, sizeof(r->verify_error), "%s", X509_verify_cert_error_string(err));
	r->trust = err == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
	           (r->n_chain == 1 && signed_by_itself(leaf))
		? ACLM_TRUST_SELF_SIGNED : ACLM_TRUST_UNTRUSTED;
out:
	X509_free(leaf);
	sk_X509_free(more);  /* borrowed pointers */
	sk_X509_pop_free(served, X509_free);
	ERR_clear_error();
}

const char *aclm_scan_trust_name(enum aclm_scan_trust t)
{
	switch (t) {
	case ACLM_TRUST_UNKNOWN: return "unknown";
	case ACLM_TRUST_TRUSTED: return "trusted";
	case ACLM_TRUST_SELF_SIGNED: return "self-signed";
	case ACLM_TRUST_INCOMPLETE: return "incomplete";
	case ACLM_TRUST_UNTRUSTED: return "untrusted";
	}
	return "unknown";
}
