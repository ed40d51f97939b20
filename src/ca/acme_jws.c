/* Strict JWS checking for the ACME server (RFC 8555 section 6.2, RFC 7515):
 * flattened JSON only, an algorithm allow-list, jwk xor kid, signatures
 * checked with the exact key (ES256 / ES384 raw r||s, RS256 >= 2048 bits,
 * EdDSA with Ed25519).  Nonce and url are checked by the caller, which
 * knows the nonce table and the request URL. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "aclm/err.h"
#include "aclm/str.h"
#include "ca-int.h"

#define JWS_MAX_FIELD (64 * 1024)

static int b64url_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z') return c - 'A';
	if (c >= 'a' && c <= 'z') return c - 'a' + 26;
	if (c >= '0' && c <= '9') return c - '0' + 52;
	if (c == '-') return 62;
	if (c == '_') return 63;
	return -1;
}

int ca_b64url_decode(const char *in, size_t in_len, unsigned char **out, size_t *out_len)
{
	unsigned char *o;
	size_t n = 0;
	uint32_t acc = 0;
	int bits = 0;

	if (in_len > JWS_MAX_FIELD * 2 || in_len % 4 == 1)
		return aclm_error(ACLM_ERR_PARSE, "bad base64url length %zu", in_len);
	o = malloc(in_len * 3 / 4 + 1);
	if (o == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < in_len; i++) {
		int v = b64url_val((unsigned char)in[i]);
		if (v < 0) {
			free(o);
			return aclm_error(ACLM_ERR_PARSE, "character %zu is not base64url (padding and "
			                  "'+', '/' are not allowed)", i);
		}
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			o[n++] = (unsigned char)(acc >> bits);
		}
	}
	if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
		free(o);
		return aclm_error(ACLM_ERR_PARSE, "base64url with non-zero trailing bits");
	}
	o[n] = 0;
	*out = o;
	*out_len = n;
	return ACLM_OK;
}

void ca_b64url_encode(const unsigned char *in, size_t len, char *out, size_t out_size)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;

	for (size_t i = 0; i < len && o + 1 < out_size; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 6 && o + 1 < out_size) {
			bits -= 6;
			out[o++] = tab[(acc >> bits) & 63];
		}
	}
	if (bits > 0 && o + 1 < out_size)
		out[o++] = tab[(acc << (6 - bits)) & 63];
	out[o] = '\0';
}

static int b64_member(json_t *obj, const char *name, unsigned char **out, size_t *len)
{
	const char *s = json_string_value(json_object_get(obj, name));

	if (s == NULL)
		return aclm_error(ACLM_ERR_PARSE, "JWK: member '%s' missing", name);
	return ca_b64url_decode(s, strlen(s), out, len);
}

int ca_jwk_to_pkey(json_t *jwk, EVP_PKEY **out)
{
	const char *kty = json_string_value(json_object_get(jwk, "kty"));
	const char *crv = json_string_value(json_object_get(jwk, "crv"));
	unsigned char *a = NULL, *b = NULL, *pt = NULL;
	size_t alen = 0, blen = 0;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	BIGNUM *n = NULL, *e = NULL;
	int rc = ACLM_ERR_PARSE;

	*out = NULL;
	if (!json_is_object(jwk) || kty == NULL)
		return aclm_error(ACLM_ERR_PARSE, "JWK is not an object with 'kty'");
	if (strcmp(kty, "EC") == 0) {
		size_t clen;
		const char *group;
		if (crv != NULL && strcmp(crv, "P-256") == 0) {
			clen = 32;
			group = "prime256v1";
		} else if (crv != NULL && strcmp(crv, "P-384") == 0) {
			clen = 48;
			group = "secp384r1";
		} else {
			return aclm_error(ACLM_ERR_PARSE, "JWK: EC curve '%s' (P-256 or P-384)",
			                  crv != NULL ? crv : "?");
		}
		if ((rc = b64_member(jwk, "x", &a, &alen)) != ACLM_OK ||
		    (rc = b64_member(jwk, "y", &b, &blen)) != ACLM_OK)
			goto out;
		if (alen != clen || blen != clen) {
			rc = aclm_error(ACLM_ERR_PARSE, "JWK: EC coordinates of the wrong length");
			goto out;
		}
		pt = malloc(1 + 2 * clen);
		if (pt == NULL) {
			rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
			goto out;
		}
		pt[0] = 4;
		memcpy(pt + 1, a, clen);
		memcpy(pt + 1 + clen, b, clen);
		bld = OSSL_PARAM_BLD_new();
		if (bld == NULL ||
		    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ||
		    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, 1 + 2 * clen) ||
		    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
		    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
		    EVP_PKEY_fromdata_init(ctx) != 1 ||
		    EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) != 1) {
			rc = aclm_error_openssl(ACLM_ERR_PARSE, "JWK: EC public key");
			goto out;
		}
		EVP_PKEY_CTX_free(ctx);
		ctx = EVP_PKEY_CTX_new_from_pkey(NULL, *out, NULL);
		if (ctx == NULL || EVP_PKEY_public_check(ctx) != 1) {
			rc = aclm_error(ACLM_ERR_PARSE, "JWK: EC point not on the curve");
			goto out;
		}
	} else if (strcmp(kty, "RSA") == 0) {
		if ((rc = b64_member(jwk, "n", &a, &alen)) != ACLM_OK ||
		    (rc = b64_member(jwk, "e", &b, &blen)) != ACLM_OK)
			goto out;
		if (alen < 256 || alen > 1024 || blen == 0 || blen > 8 || a[0] == 0) {
			rc = aclm_error(ACLM_ERR_PARSE, "JWK: RSA modulus of %zu bits (2048 to 8192 "
			                "accepted)", alen * 8);
			goto out;
		}
		n = BN_bin2bn(a, (int)alen, NULL);
		e = BN_bin2bn(b, (int)blen, NULL);
		bld = OSSL_PARAM_BLD_new();
		if (n == NULL || e == NULL || bld == NULL ||
		    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
		    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
		    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
		    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL ||
		    EVP_PKEY_fromdata_init(ctx) != 1 ||
		    EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) != 1) {
			rc = aclm_error_openssl(ACLM_ERR_PARSE, "JWK: RSA public key");
			goto out;
		}
		if (EVP_PKEY_get_bits(*out) < 2048) {
			rc = aclm_error(ACLM_ERR_PARSE, "JWK: RSA key under 2048 bits");
			goto out;
		}
	} else if (strcmp(kty, "OKP") == 0) {
		if (crv == NULL || strcmp(crv, "Ed25519") != 0) {
			rc = aclm_error(ACLM_ERR_PARSE, "JWK: OKP curve '%s' (Ed25519)", crv ? crv : "?");
			goto out;
		}
		if ((rc = b64_member(jwk, "x", &a, &alen)) != ACLM_OK)
			goto out;
		if (alen != 32 ||
		    (*out = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, a, alen)) == NULL) {
			rc = aclm_error(ACLM_ERR_PARSE, "JWK: Ed25519 key");
			goto out;
		}
	} else {
		rc = aclm_error(ACLM_ERR_PARSE, "JWK: key type '%s' (EC, RSA or OKP)", kty);
		goto out;
	}
	rc = ACLM_OK;
out:
	if (rc != ACLM_OK) {
		EVP_PKEY_free(*out);
		*out = NULL;
	}
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	free(a);
	free(b);
	free(pt);
	return rc;
}

int ca_jwk_thumbprint(json_t *jwk, char out[64])
{
	const char *kty = json_string_value(json_object_get(jwk, "kty"));
	json_t *canon;
	char *text;
	unsigned char md[32];
	unsigned int md_len = 0;
	int ok;

	if (kty == NULL)
		return aclm_error(ACLM_ERR_PARSE, "JWK without 'kty'");
	if (strcmp(kty, "EC") == 0)
		canon = json_pack("{s:O, s:s, s:O, s:O}", "crv", json_object_get(jwk, "crv"), "kty", kty,
		                  "x", json_object_get(jwk, "x"), "y", json_object_get(jwk, "y"));
	else if (strcmp(kty, "RSA") == 0)
		canon = json_pack("{s:O, s:s, s:O}", "e", json_object_get(jwk, "e"), "kty", kty, "n",
		                  json_object_get(jwk, "n"));
	else
		canon = json_pack("{s:O, s:s, s:O}", "crv", json_object_get(jwk, "crv"), "kty", kty,
		                  "x", json_object_get(jwk, "x"));
	if (canon == NULL)
		return aclm_error(ACLM_ERR_PARSE, "JWK members missing");
	text = json_dumps(canon, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(canon);
	if (text == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	ok = EVP_Digest(text, strlen(text), md, &md_len, EVP_sha256(), NULL);
	free(text);
	if (!ok)
		return aclm_error_openssl(ACLM_ERR_CRYPTO, "JWK thumbprint");
	ca_b64url_encode(md, md_len, out, 64);
	return ACLM_OK;
}

static const char *const allowed_algs[] = { "ES256", "ES384", "RS256", "EdDSA" };

bool ca_jws_alg_allowed(const char *alg)
{
	for (size_t i = 0; i < sizeof(allowed_algs) / sizeof(allowed_algs[0]); i++)
		if (alg != NULL && strcmp(alg, allowed_algs[i]) == 0)
			return true;
	return false;
}

/* Does alg fit the key?  (ES256 needs P-256, ES384 P-384, RS256 RSA,
 * EdDSA Ed25519.) */
static bool alg_fits(const char *alg, EVP_PKEY *pk)
{
	if (strcmp(alg, "RS256") == 0)
		return EVP_PKEY_is_a(pk, "RSA");
	if (strcmp(alg, "EdDSA") == 0)
		return EVP_PKEY_is_a(pk, "ED25519");
	if (!EVP_PKEY_is_a(pk, "EC"))
		return false;
	return strcmp(alg, "ES256") == 0 ? EVP_PKEY_get_bits(pk) == 256
	                                 : EVP_PKEY_get_bits(pk) == 384;
}

int ca_jws_verify_sig(const char *alg, EVP_PKEY *pk, const unsigned char *data, size_t len,
                      const unsigned char *sig, size_t sig_len)
{
	EVP_MD_CTX *m = NULL;
	unsigned char *der = NULL;
	const unsigned char *use = sig;
	size_t use_len = sig_len;
	const EVP_MD *md = NULL;
	ECDSA_SIG *es = NULL;
	int rc = ACLM_ERR_CRYPTO;

	if (!alg_fits(alg, pk))
		return aclm_error(ACLM_ERR_CRYPTO, "algorithm %s does not fit the key", alg);
	if (strcmp(alg, "ES256") == 0 || strcmp(alg, "ES384") == 0) {
		size_t half = strcmp(alg, "ES256") == 0 ? 32 : 48;
		BIGNUM *r, *s;
		int n;
		if (sig_len != 2 * half)
			return aclm_error(ACLM_ERR_CRYPTO, "%s signature of %zu bytes (%zu expected)", alg,
			                  sig_len, 2 * half);
		md = half == 32 ? EVP_sha256() : EVP_sha384();
		r = BN_bin2bn(sig, (int)half, NULL);
		s = BN_bin2bn(sig + half, (int)half, NULL);
		es = ECDSA_SIG_new();
		if (r == NULL || s == NULL || es == NULL || !ECDSA_SIG_set0(es, r, s)) {
			BN_free(r);
			BN_free(s);
			rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
			goto out;
		}
		n = i2d_ECDSA_SIG(es, &der);
		if (n <= 0) {
			rc = aclm_error(ACLM_ERR_CRYPTO, "ECDSA signature encoding");
			goto out;
		}
		use = der;
		use_len = (size_t)n;
	} else if (strcmp(alg, "RS256") == 0) {
		md = EVP_sha256();
	}
	m = EVP_MD_CTX_new();
	if (m == NULL || EVP_DigestVerifyInit(m, NULL, md, NULL, pk) != 1) {
		rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "verify context");
		goto out;
	}
	if (EVP_DigestVerify(m, use, use_len, data, len) != 1) {
		ERR_clear_error();
		rc = aclm_error(ACLM_ERR_CRYPTO, "JWS signature does not verify");
		goto out;
	}
	rc = ACLM_OK;
out:
	EVP_MD_CTX_free(m);
	ECDSA_SIG_free(es);
	OPENSSL_free(der);
	return rc;
}

void ca_jws_free(struct ca_jws *j)
{
	json_decref(j->protected_hdr);
	json_decref(j->payload);
	free(j->signing_input);
	free(j->sig);
	memset(j, 0, sizeof(*j));
}

int ca_jws_parse(const unsigned char *body, size_t len, struct ca_jws *j)
{
	json_error_t jerr;
	json_t *root = NULL;
	const char *prot, *pay, *sig;
	unsigned char *prot_raw = NULL, *pay_raw = NULL;
	size_t prot_len = 0, pay_len = 0, n;
	int rc = ACLM_ERR_PARSE;

	memset(j, 0, sizeof(*j));
	root = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(root)) {
		rc = aclm_error(ACLM_ERR_PARSE, "request body is not a JSON object (%s)", jerr.text);
		goto out;
	}
	if (json_object_size(root) != 3 ||
	    (prot = json_string_value(json_object_get(root, "protected"))) == NULL ||
	    (pay = json_string_value(json_object_get(root, "payload"))) == NULL ||
	    (sig = json_string_value(json_object_get(root, "signature"))) == NULL) {
		rc = aclm_error(ACLM_ERR_PARSE, "JWS must be flattened JSON with exactly 'protected', "
		                "'payload' and 'signature'");
		goto out;
	}
	if ((rc = ca_b64url_decode(prot, strlen(prot), &prot_raw, &prot_len)) != ACLM_OK ||
	    (rc = ca_b64url_decode(pay, strlen(pay), &pay_raw, &pay_len)) != ACLM_OK ||
	    (rc = ca_b64url_decode(sig, strlen(sig), &j->sig, &j->sig_len)) != ACLM_OK) {
		aclm_error_wrap(rc, "JWS");
		goto out;
	}
	j->protected_hdr = json_loadb((const char *)prot_raw, prot_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(j->protected_hdr)) {
		rc = aclm_error(ACLM_ERR_PARSE, "JWS protected header is not a JSON object");
		goto out;
	}
	j->alg = json_string_value(json_object_get(j->protected_hdr, "alg"));
	j->nonce = json_string_value(json_object_get(j->protected_hdr, "nonce"));
	j->url = json_string_value(json_object_get(j->protected_hdr, "url"));
	j->kid = json_string_value(json_object_get(j->protected_hdr, "kid"));
	j->jwk = json_object_get(j->protected_hdr, "jwk");
	if (pay_len == 0) {
		j->is_post_as_get = true;
	} else {
		j->payload = json_loadb((const char *)pay_raw, pay_len, JSON_REJECT_DUPLICATES, &jerr);
		if (!json_is_object(j->payload)) {
			rc = aclm_error(ACLM_ERR_PARSE, "JWS payload is not a JSON object");
			goto out;
		}
	}
	n = strlen(prot) + 1 + strlen(pay);
	j->signing_input = malloc(n + 1);
	if (j->signing_input == NULL) {
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
		goto out;
	}
	memcpy(j->signing_input, prot, strlen(prot));
	j->signing_input[strlen(prot)] = '.';
	memcpy(j->signing_input + strlen(prot) + 1, pay, strlen(pay) + 1);
	j->signing_input_len = n;
	rc = ACLM_OK;
out:
	json_decref(root);
	free(prot_raw);
	free(pay_raw);
	if (rc != ACLM_OK)
		ca_jws_free(j);
	return rc;
}
