/* JSON Web Signature for ACME (RFC 7515, RFC 8555 6.2): base64url, the JWK
 * of an account key (RFC 7517/7518) and its thumbprint (RFC 7638), ES256 /
 * ES384 / RS256 signatures and the HS256 External Account Binding. */
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/hmac.h>
#include <openssl/x509.h>

#include "acme-int.h"
#include "aclm/err.h"
#include "aclm/str.h"

static const char b64url_chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int acme_b64url_encode(const unsigned char *in, size_t len, char **out)
{
	size_t n = (len / 3) * 4 + 4 + 1, o = 0, i = 0;
	char *s;

	if (len > (SIZE_MAX / 4) - 8)
		return aclm_error(ACLM_ERR_TOOBIG, "base64url: input too large");
	s = malloc(n);
	if (s == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	for (; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		s[o++] = b64url_chars[(v >> 18) & 63];
		s[o++] = b64url_chars[(v >> 12) & 63];
		s[o++] = b64url_chars[(v >> 6) & 63];
		s[o++] = b64url_chars[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		s[o++] = b64url_chars[(v >> 18) & 63];
		s[o++] = b64url_chars[(v >> 12) & 63];
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		s[o++] = b64url_chars[(v >> 18) & 63];
		s[o++] = b64url_chars[(v >> 12) & 63];
		s[o++] = b64url_chars[(v >> 6) & 63];
	}
	s[o] = '\0';
	*out = s;
	return ACLM_OK;
}

static int b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z') return c - 'A';
	if (c >= 'a' && c <= 'z') return c - 'a' + 26;
	if (c >= '0' && c <= '9') return c - '0' + 52;
	if (c == '-') return 62;
	if (c == '_') return 63;
	return -1;
}

int acme_b64url_decode(const char *in, size_t len, unsigned char **out, size_t *out_len)
{
	unsigned char *d;
	uint32_t acc = 0;
	size_t o = 0;
	int bits = 0;

	if (len % 4 == 1)
		return aclm_error(ACLM_ERR_PARSE, "base64url: impossible length %zu", len);
	d = malloc(len * 3 / 4 + 1);
	if (d == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < len; i++) {
		int v = b64url_value((unsigned char)in[i]);
		if (v < 0) {
			free(d);
			return aclm_error(ACLM_ERR_PARSE, "base64url: bad character at offset %zu", i);
		}
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			d[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0) {  /* non-canonical trailing bits */
		free(d);
		return aclm_error(ACLM_ERR_PARSE, "base64url: non-zero padding bits");
	}
	*out = d;
	*out_len = o;
	return ACLM_OK;
}

const char *acme_alg_name(enum acme_alg a)
{
	switch (a) {
	case ACME_RS256: return "RS256";
	case ACME_ES256: return "ES256";
	case ACME_ES384: return "ES384";
	}
	return "?";
}

static int b64_param_bn(EVP_PKEY *pk, const char *name, char **out)
{
	BIGNUM *bn = NULL;
	unsigned char *buf = NULL;
	int n, rc;

	if (!EVP_PKEY_get_bn_param(pk, name, &bn))
		return aclm_error_openssl(ACLM_ERR_CRYPTO, "JWK: RSA parameter %s", name);
	n = BN_num_bytes(bn);
	buf = malloc(n > 0 ? (size_t)n : 1);
	if (buf == NULL) {
		BN_free(bn);
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	}
	BN_bn2bin(bn, buf);
	rc = acme_b64url_encode(buf, (size_t)n, out);
	free(buf);
	BN_free(bn);
	return rc;
}

/* The canonical JWK: members in lexicographic order, no whitespace, which
 * is exactly the RFC 7638 thumbprint input. */
static int make_jwk(struct acme_key *k)
{
	char *a = NULL, *b = NULL;
	char buf[2048];
	int rc;

	if (k->alg == ACME_RS256) {
		if ((rc = b64_param_bn(k->pk, OSSL_PKEY_PARAM_RSA_E, &a)) != ACLM_OK ||
		    (rc = b64_param_bn(k->pk, OSSL_PKEY_PARAM_RSA_N, &b)) != ACLM_OK)
			goto out;
		snprintf(buf, sizeof(buf), "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}", a, b);
	} else {
		unsigned char pt[133];
		size_t pt_len = 0, flen = k->alg == ACME_ES256 ? 32 : 48;

		if (!EVP_PKEY_get_octet_string_param(k->pk, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
		                                     pt, sizeof(pt), &pt_len) ||
		    pt_len != 1 + 2 * flen || pt[0] != 0x04) {
			rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "JWK: EC public point");
			goto out;
		}
		if ((rc = acme_b64url_encode(pt + 1, flen, &a)) != ACLM_OK ||
		    (rc = acme_b64url_encode(pt + 1 + flen, flen, &b)) != ACLM_OK)
			goto out;
		snprintf(buf, sizeof(buf), "{\"crv\":\"%s\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
		         k->alg == ACME_ES256 ? "P-256" : "P-384", a, b);
	}
	k->jwk = aclm_strdup(buf);
	if (k->jwk == NULL) {
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
		goto out;
	}
	{
		unsigned char md[32];
		unsigned int md_len = 0;
		char *t = NULL;

		if (!EVP_Digest(k->jwk, strlen(k->jwk), md, &md_len, EVP_sha256(), NULL)) {
			rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "JWK thumbprint");
			goto out;
		}
		if ((rc = acme_b64url_encode(md, sizeof(md), &t)) != ACLM_OK)
			goto out;
		aclm_strlcpy(k->thumbprint, t, sizeof(k->thumbprint));
		free(t);
	}
	rc = ACLM_OK;
out:
	free(a);
	free(b);
	return rc;
}

int acme_key_load(const unsigned char *pkcs8, size_t len, struct acme_key *k)
{
	const unsigned char *p = pkcs8;
	int rc;

	memset(k, 0, sizeof(*k));
	k->pk = d2i_AutoPrivateKey(NULL, &p, (long)len);
	if (k->pk == NULL)
		return aclm_error_openssl(ACLM_ERR_PARSE, "account key is not a private key");
	if (EVP_PKEY_is_a(k->pk, "RSA")) {
		if (EVP_PKEY_get_bits(k->pk) < 2048) {
			rc = aclm_error(ACLM_ERR_UNSUPPORTED, "account key: RSA keys need 2048 bits or more");
			goto fail;
		}
		k->alg = ACME_RS256;
	} else if (EVP_PKEY_is_a(k->pk, "EC") && EVP_PKEY_get_bits(k->pk) == 256) {
		k->alg = ACME_ES256;
	} else if (EVP_PKEY_is_a(k->pk, "EC") && EVP_PKEY_get_bits(k->pk) == 384) {
		k->alg = ACME_ES384;
	} else {
		rc = aclm_error(ACLM_ERR_UNSUPPORTED, "account key: only RSA, P-256 and P-384 "
		                "keys can sign ACME requests");
		goto fail;
	}
	/* SM2 keys also report "EC" on some builds: refuse by group name. */
	{
		char group[32];
		size_t glen = 0;
		if (k->alg != ACME_RS256 &&
		    EVP_PKEY_get_utf8_string_param(k->pk, OSSL_PKEY_PARAM_GROUP_NAME, group,
		                                   sizeof(group), &glen) &&
		    strcmp(group, "prime256v1") != 0 && strcmp(group, "secp384r1") != 0) {
			rc = aclm_error(ACLM_ERR_UNSUPPORTED, "account key: curve %s cannot sign "
			                "ACME requests", group);
			goto fail;
		}
	}
	if ((rc = make_jwk(k)) != ACLM_OK)
		goto fail;
	return ACLM_OK;
fail:
	acme_key_free(k);
	return rc;
}

void acme_key_free(struct acme_key *k)
{
	EVP_PKEY_free(k->pk);
	free(k->jwk);
	memset(k, 0, sizeof(*k));
}

/* Sign "protected.payload" and give the JWS signature bytes (ES*: r||s). */
static int sign_input(const struct acme_key *k, const char *input, unsigned char **sig,
                      size_t *sig_len)
{
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	const EVP_MD *md = k->alg == ACME_ES384 ? EVP_sha384() : EVP_sha256();
	unsigned char *der = NULL;
	size_t der_len = 0;
	int rc = ACLM_ERR_CRYPTO;

	if (mctx == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	if (EVP_DigestSignInit(mctx, NULL, md, NULL, k->pk) != 1 ||
	    EVP_DigestSign(mctx, NULL, &der_len, (const unsigned char *)input, strlen(input)) != 1 ||
	    (der = malloc(der_len)) == NULL ||
	    EVP_DigestSign(mctx, der, &der_len, (const unsigned char *)input, strlen(input)) != 1) {
		rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "JWS: sign");
		goto out;
	}
	if (k->alg == ACME_RS256) {
		*sig = der;
		*sig_len = der_len;
		der = NULL;
		rc = ACLM_OK;
		goto out;
	}
	{
		const unsigned char *p = der;
		size_t flen = k->alg == ACME_ES256 ? 32 : 48;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
		unsigned char *rs = malloc(2 * flen);

		if (es == NULL || rs == NULL ||
		    BN_bn2binpad(ECDSA_SIG_get0_r(es), rs, (int)flen) != (int)flen ||
		    BN_bn2binpad(ECDSA_SIG_get0_s(es), rs + flen, (int)flen) != (int)flen) {
			ECDSA_SIG_free(es);
			free(rs);
			rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "JWS: ECDSA signature encoding");
			goto out;
		}
		ECDSA_SIG_free(es);
		*sig = rs;
		*sig_len = 2 * flen;
		rc = ACLM_OK;
	}
out:
	free(der);
	EVP_MD_CTX_free(mctx);
	return rc;
}

/* {"protected":..., "payload":..., "signature":...} from a header object. */
static int finish_jws(const struct acme_key *k, json_t *hdr, const char *payload, json_t **out)
{
	char *hdr_txt = NULL, *hdr_b64 = NULL, *pl_b64 = NULL, *sig_b64 = NULL, *input = NULL;
	unsigned char *sig = NULL;
	size_t sig_len = 0, n;
	int rc;

	hdr_txt = json_dumps(hdr, JSON_COMPACT | JSON_SORT_KEYS);
	if (hdr_txt == NULL) {
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((rc = acme_b64url_encode((const unsigned char *)hdr_txt, strlen(hdr_txt), &hdr_b64)) ||
	    (rc = acme_b64url_encode((const unsigned char *)(payload ? payload : ""),
	                             payload ? strlen(payload) : 0, &pl_b64)))
		goto out;
	n = strlen(hdr_b64) + strlen(pl_b64) + 2;
	input = malloc(n);
	if (input == NULL) {
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
		goto out;
	}
	snprintf(input, n, "%s.%s", hdr_b64, pl_b64);
	if ((rc = sign_input(k, input, &sig, &sig_len)) != ACLM_OK ||
	    (rc = acme_b64url_encode(sig, sig_len, &sig_b64)) != ACLM_OK)
		goto out;
	*out = json_pack("{s:s, s:s, s:s}", "protected", hdr_b64, "payload", pl_b64,
	                 "signature", sig_b64);
	rc = *out ? ACLM_OK : aclm_error(ACLM_ERR_NOMEM, "out of memory");
out:
	free(hdr_txt);
	free(hdr_b64);
	free(pl_b64);
	free(sig_b64);
	free(input);
	free(sig);
	return rc;
}

int acme_jws_sign(const struct acme_key *k, const char *kid, const char *nonce,
                  const char *url, const char *payload, char **out)
{
	json_t *hdr = json_pack("{s:s, s:s, s:s}", "alg", acme_alg_name(k->alg),
	                        "nonce", nonce, "url", url);
	json_t *jws = NULL;
	int rc;

	if (hdr == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	if (kid != NULL) {
		json_object_set_new(hdr, "kid", json_string(kid));
	} else {
		json_t *jwk = json_loads(k->jwk, 0, NULL);
		if (jwk == NULL) {
			json_decref(hdr);
			return aclm_error(ACLM_ERR_NOMEM, "out of memory");
		}
		json_object_set_new(hdr, "jwk", jwk);
	}
	rc = finish_jws(k, hdr, payload, &jws);
	json_decref(hdr);
	if (rc != ACLM_OK)
		return rc;
	*out = json_dumps(jws, JSON_COMPACT);
	json_decref(jws);
	return *out ? ACLM_OK : aclm_error(ACLM_ERR_NOMEM, "out of memory");
}

int acme_jws_sign_inner(const struct acme_key *k, const char *url, const char *payload,
                        json_t **out)
{
	json_t *jwk = json_loads(k->jwk, 0, NULL);
	json_t *hdr = json_pack("{s:s, s:o, s:s}", "alg", acme_alg_name(k->alg), "jwk", jwk,
	                        "url", url);
	int rc;

	if (hdr == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	rc = finish_jws(k, hdr, payload, out);
	json_decref(hdr);
	return rc;
}

int acme_jws_eab(const char *kid, const unsigned char *mac_key, size_t mac_len,
                 const char *url, const char *jwk, json_t **out)
{
	json_t *hdr = json_pack("{s:s, s:s, s:s}", "alg", "HS256", "kid", kid, "url", url);
	char *hdr_txt = NULL, *hdr_b64 = NULL, *pl_b64 = NULL, *sig_b64 = NULL, *input = NULL;
	unsigned char mac[32];
	unsigned int mac_out = 0;
	size_t n;
	int rc;

	if (hdr == NULL || (hdr_txt = json_dumps(hdr, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((rc = acme_b64url_encode((const unsigned char *)hdr_txt, strlen(hdr_txt), &hdr_b64)) ||
	    (rc = acme_b64url_encode((const unsigned char *)jwk, strlen(jwk), &pl_b64)))
		goto out;
	n = strlen(hdr_b64) + strlen(pl_b64) + 2;
	if ((input = malloc(n)) == NULL) {
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
		goto out;
	}
	snprintf(input, n, "%s.%s", hdr_b64, pl_b64);
	if (HMAC(EVP_sha256(), mac_key, (int)mac_len, (const unsigned char *)input, strlen(input),
	         mac, &mac_out) == NULL) {
		rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "EAB: HMAC-SHA256");
		goto out;
	}
	if ((rc = acme_b64url_encode(mac, mac_out, &sig_b64)) != ACLM_OK)
		goto out;
	*out = json_pack("{s:s, s:s, s:s}", "protected", hdr_b64, "payload", pl_b64,
	                 "signature", sig_b64);
	rc = *out ? ACLM_OK : aclm_error(ACLM_ERR_NOMEM, "out of memory");
out:
	OPENSSL_cleanse(mac, sizeof(mac));
	json_decref(hdr);
	free(hdr_txt);
	free(hdr_b64);
	free(pl_b64);
	free(sig_b64);
	free(input);
	return rc;
}

int acme_key_authorization(const struct acme_key *k, const char *token, char **out)
{
	size_t n = strlen(token) + strlen(k->thumbprint) + 2;

	/* Tokens are base64url (RFC 8555 8.1): anything else could inject a
	 * path or a header where the token is used. */
	if (*token == '\0' || strlen(token) > 256)
		return aclm_error(ACLM_ERR_PARSE, "challenge token has a bad length");
	for (const char *p = token; *p; p++)
		if (b64url_value((unsigned char)*p) < 0)
			return aclm_error(ACLM_ERR_PARSE, "challenge token is not base64url");
	*out = malloc(n);
	if (*out == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	snprintf(*out, n, "%s.%s", token, k->thumbprint);
	return ACLM_OK;
}

int acme_dns01_value(const char *keyauth, char out[64])
{
	unsigned char md[32];
	unsigned int md_len = 0;
	char *s = NULL;
	int rc;

	if (!EVP_Digest(keyauth, strlen(keyauth), md, &md_len, EVP_sha256(), NULL))
		return aclm_error_openssl(ACLM_ERR_CRYPTO, "SHA-256");
	if ((rc = acme_b64url_encode(md, sizeof(md), &s)) != ACLM_OK)
		return rc;
	aclm_strlcpy(out, s, 64);
	free(s);
	return ACLM_OK;
}
