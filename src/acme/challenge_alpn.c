/* tls-alpn-01 (RFC 8737): the responder offers only the "acme-tls/1"
 * protocol and, for the name in the SNI, a self-signed certificate whose
 * critical id-pe-acmeIdentifier extension (1.3.6.1.5.5.7.1.31) holds the
 * SHA-256 of the key authorization as a DER OCTET STRING. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "challenge-int.h"
#include "aclm/csr.h"
#include "aclm/err.h"
#include "aclm/str.h"

#define OID_ACME_IDENTIFIER "1.3.6.1.5.5.7.1.31"

int acme_alpn_cert(const char *name, const char *keyauth, EVP_PKEY **key, void **x509)
{
	EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *x = X509_new();
	X509_NAME *nm = X509_NAME_new();
	ASN1_OBJECT *oid = OBJ_txt2obj(OID_ACME_IDENTIFIER, 1);
	ASN1_OCTET_STRING *inner = ASN1_OCTET_STRING_new(), *ext_data = ASN1_OCTET_STRING_new();
	X509_EXTENSION *ext = NULL;
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	GENERAL_NAME *g = GENERAL_NAME_new();
	ASN1_IA5STRING *dns = ASN1_IA5STRING_new();
	unsigned char md[32], *der = NULL;
	unsigned int md_len = 0;
	int der_len, rc = ACLM_ERR_CRYPTO;

	if (pk == NULL || x == NULL || nm == NULL || oid == NULL || inner == NULL ||
	    ext_data == NULL || gens == NULL || g == NULL || dns == NULL)
		goto fail;
	if (!EVP_Digest(keyauth, strlen(keyauth), md, &md_len, EVP_sha256(), NULL) ||
	    !ASN1_OCTET_STRING_set(inner, md, (int)md_len) ||
	    (der_len = i2d_ASN1_OCTET_STRING(inner, &der)) <= 0 ||
	    !ASN1_OCTET_STRING_set(ext_data, der, der_len) ||
	    (ext = X509_EXTENSION_create_by_OBJ(NULL, oid, 1, ext_data)) == NULL)
		goto fail;
	if (aclm_is_ip_literal(name)) {
		ASN1_OCTET_STRING *ip = a2i_IPADDRESS(name);
		if (ip == NULL)
			goto fail;
		GENERAL_NAME_set0_value(g, GEN_IPADD, ip);
	} else {
		if (!ASN1_STRING_set(dns, name, (int)strlen(name)))
			goto fail;
		GENERAL_NAME_set0_value(g, GEN_DNS, dns);
		dns = NULL;
	}
	if (!sk_GENERAL_NAME_push(gens, g))
		goto fail;
	g = NULL;
	if (!X509_set_version(x, 2) ||
	    !ASN1_INTEGER_set(X509_get_serialNumber(x), 1) ||
	    !X509_NAME_add_entry_by_NID(nm, NID_commonName, MBSTRING_UTF8,
	                                (const unsigned char *)name, -1, -1, 0) ||
	    !X509_set_subject_name(x, nm) || !X509_set_issuer_name(x, nm) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), 7 * 86400) ||
	    !X509_set_pubkey(x, pk) ||
	    !X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) ||
	    !X509_add_ext(x, ext, -1) ||
	    !X509_sign(x, pk, EVP_sha256()))
		goto fail;
	*key = pk;
	*x509 = x;
	pk = NULL;
	x = NULL;
	rc = ACLM_OK;
fail:
	if (rc != ACLM_OK)
		aclm_error_openssl(rc, "tls-alpn-01: validation certificate for %s", name);
	OPENSSL_free(der);
	EVP_PKEY_free(pk);
	X509_free(x);
	X509_NAME_free(nm);
	ASN1_OBJECT_free(oid);
	ASN1_OCTET_STRING_free(inner);
	ASN1_OCTET_STRING_free(ext_data);
	X509_EXTENSION_free(ext);
	GENERAL_NAMES_free(gens);
	GENERAL_NAME_free(g);
	ASN1_IA5STRING_free(dns);
	return rc;
}

int acme_reverse_name(const char *ip, char *out, size_t out_size)
{
	unsigned char a[16];
	size_t o = 0;

	if (inet_pton(AF_INET, ip, a) == 1) {
		snprintf(out, out_size, "%u.%u.%u.%u.in-addr.arpa", a[3], a[2], a[1], a[0]);
		return ACLM_OK;
	}
	if (inet_pton(AF_INET6, ip, a) != 1 || out_size < 74)
		return aclm_error(ACLM_ERR_USAGE, "'%s' is not an IP address", ip);
	for (int i = 15; i >= 0; i--)
		o += (size_t)snprintf(out + o, out_size - o, "%x.%x.", a[i] & 15, a[i] >> 4);
	snprintf(out + o, out_size - o, "ip6.arpa");
	return ACLM_OK;
}

static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
	static const unsigned char proto[] = "acme-tls/1";

	for (unsigned int i = 0; i < inlen;) {
		unsigned int n = in[i];
		if (i + 1 + n > inlen)
			break;
		if (n == sizeof(proto) - 1 && memcmp(in + i + 1, proto, n) == 0) {
			*out = in + i + 1;
			*outlen = (unsigned char)n;
			return SSL_TLSEXT_ERR_OK;
		}
		i += 1 + n;
	}
	(void)ssl;
	(void)arg;
	return SSL_TLSEXT_ERR_ALERT_FATAL;  /* RFC 8737 3: only acme-tls/1 */
}

static int on_sni(SSL *ssl, int *alert, void *arg)
{
	struct aclm_acme_responder *r = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	const struct responder_token *t;
	int rc = SSL_TLSEXT_ERR_ALERT_FATAL;

	*alert = SSL_AD_UNRECOGNIZED_NAME;
	if (name == NULL)
		return rc;
	pthread_mutex_lock(&r->mu);
	t = responder_find(r, name);
	if (t != NULL && SSL_use_certificate(ssl, t->x509) == 1 &&
	    SSL_use_PrivateKey(ssl, t->pkey) == 1)
		rc = SSL_TLSEXT_ERR_OK;
	pthread_mutex_unlock(&r->mu);
	return rc;
}

int responder_tls_init(struct aclm_acme_responder *r)
{
	r->ssl_ctx = SSL_CTX_new(TLS_server_method());
	if (r->ssl_ctx == NULL)
		return aclm_error_openssl(ACLM_ERR_CRYPTO, "tls-alpn-01: TLS context");
	SSL_CTX_set_min_proto_version(r->ssl_ctx, TLS1_2_VERSION);
	SSL_CTX_set_alpn_select_cb(r->ssl_ctx, on_alpn, r);
	SSL_CTX_set_tlsext_servername_callback(r->ssl_ctx, on_sni);
	SSL_CTX_set_tlsext_servername_arg(r->ssl_ctx, r);
	return ACLM_OK;
}

int responder_tls_step(struct aclm_acme_responder *r, SSL *ssl)
{
	int rc = SSL_do_handshake(ssl);

	(void)r;
	if (rc == 1)
		return 1;
	switch (SSL_get_error(ssl, rc)) {
	case SSL_ERROR_WANT_READ: return 0;
	case SSL_ERROR_WANT_WRITE: return 2;
	default:
		ERR_clear_error();
		return -1;
	}
}
