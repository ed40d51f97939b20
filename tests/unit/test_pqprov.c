/* Unit tests of the aclm-pq provider through OpenSSL's public API: the
 * exact share and secret layouts of each group (checked against ML-KEM and
 * ECDH computed independently), rejection of bad peer shares, and full
 * TLS 1.3 handshakes over a BIO pair for every group. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "aclm/mlkem.h"
#include "aclm/pqprov.h"

struct layout {
	const char *name;
	unsigned int id;
	const char *ec_alg;    /* "X25519", "EC" or NULL */
	const char *curve;
	size_t ec_len, ec_ss_len, ek_len, ct_len;
	int kem_first;
};

static const struct layout layouts[] = {
	{ "X25519MLKEM768", 0x11EC, "X25519", NULL, 32, 32, 1184, 1088, 1 },
	{ "SecP256r1MLKEM768", 0x11EB, "EC", "P-256", 65, 32, 1184, 1088, 0 },
	{ "SecP384r1MLKEM1024", 0x11ED, "EC", "P-384", 97, 48, 1568, 1568, 0 },
	{ "curveSM2MLKEM768", 0x11EE, "EC", "SM2", 65, 32, 1184, 1088, 0 },
	{ "MLKEM768", 0x0201, NULL, NULL, 0, 0, 1184, 1088, 0 },
	{ "MLKEM1024", 0x0202, NULL, NULL, 0, 0, 1568, 1568, 0 },
};
#define N_LAYOUTS (sizeof(layouts) / sizeof(layouts[0]))

static OSSL_LIB_CTX *libctx;

static int setup(void **state)
{
	(void)state;
	libctx = OSSL_LIB_CTX_new();
	return libctx != NULL && aclm_pqprov_load(libctx) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	OSSL_LIB_CTX_free(libctx);
	return 0;
}

static void test_selftest_and_groups(void **state)
{
	const char *const *names;
	int status = 0;

	(void)state;
	aclm_pqprov_selftest(&status);
	assert_int_equal(status, 1);
	assert_int_equal(aclm_pqprov_groups(&names), N_LAYOUTS);
	for (size_t i = 0; i < N_LAYOUTS; i++)
		assert_string_equal(names[i], layouts[i].name);
}

/* EVP_PKEY_Q_keygen knows only OpenSSL's own key types. */
static EVP_PKEY *keygen(const char *name)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(libctx, name, NULL);
	EVP_PKEY *k = NULL;

	assert_non_null(c);
	assert_int_equal(EVP_PKEY_keygen_init(c), 1);
	assert_int_equal(EVP_PKEY_keygen(c, &k), 1);
	EVP_PKEY_CTX_free(c);
	return k;
}

static EVP_PKEY *peer_template(const char *name)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(libctx, name, NULL);
	EVP_PKEY *k = NULL;

	assert_non_null(c);
	assert_int_equal(EVP_PKEY_paramgen_init(c), 1);
	assert_int_equal(EVP_PKEY_paramgen(c, &k), 1);
	EVP_PKEY_CTX_free(c);
	return k;
}

/* Our own ECDH between a fresh key and the client's ECDH share. */
static EVP_PKEY *ecdh_key(const struct layout *l)
{
	if (strcmp(l->ec_alg, "X25519") == 0)
		return EVP_PKEY_Q_keygen(libctx, NULL, "X25519");
	return EVP_PKEY_Q_keygen(libctx, NULL, "EC", l->curve);
}

static void ecdh(const struct layout *l, EVP_PKEY *mine, const unsigned char *peer_pub,
                 unsigned char *out)
{
	EVP_PKEY *peer;
	EVP_PKEY_CTX *c;
	size_t n = l->ec_ss_len;

	if (strcmp(l->ec_alg, "X25519") == 0) {
		peer = EVP_PKEY_new_raw_public_key_ex(libctx, "X25519", NULL, peer_pub, 32);
	} else {
		EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(libctx, "EC", NULL);
		peer = NULL;
		assert_int_equal(EVP_PKEY_paramgen_init(pc), 1);
		assert_int_equal(EVP_PKEY_CTX_set_group_name(pc, l->curve), 1);
		assert_int_equal(EVP_PKEY_paramgen(pc, &peer), 1);
		assert_int_equal(EVP_PKEY_set1_encoded_public_key(peer, peer_pub, l->ec_len), 1);
		EVP_PKEY_CTX_free(pc);
	}
	assert_non_null(peer);
	c = EVP_PKEY_CTX_new_from_pkey(libctx, mine, NULL);
	assert_int_equal(EVP_PKEY_derive_init(c), 1);
	assert_int_equal(EVP_PKEY_derive_set_peer(c, peer), 1);
	assert_int_equal(EVP_PKEY_derive(c, out, &n), 1);
	assert_int_equal(n, l->ec_ss_len);
	EVP_PKEY_CTX_free(c);
	EVP_PKEY_free(peer);
}

/* The client side: our key share, then a server share we build ourselves
 * from independent ML-KEM and ECDH, decapsulated by the provider. */
static void test_client_layouts(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_LAYOUTS; i++) {
		const struct layout *l = &layouts[i];
		enum aclm_mlkem_param p = l->ek_len == 1184 ? ACLM_MLKEM_768 : ACLM_MLKEM_1024;
		EVP_PKEY *client = keygen(l->name), *eph = NULL;
		unsigned char *share = NULL, srv[1568 + 97], want[80], got[80], m[32], ss_k[32], ss_e[48];
		size_t share_len, got_len = sizeof(got);
		const unsigned char *ek, *ec_pub;
		EVP_PKEY_CTX *c;

		memset(m, 0x5a, sizeof(m));
		assert_non_null(client);
		share_len = EVP_PKEY_get1_encoded_public_key(client, &share);
		assert_int_equal(share_len, l->ek_len + l->ec_len);
		ek = l->kem_first ? share : share + l->ec_len;
		ec_pub = l->kem_first ? share + l->ek_len : share;
		assert_int_equal(aclm_mlkem_check_ek(p, ek, l->ek_len), 0);
		assert_int_equal(aclm_mlkem_encaps_internal(p, ek, l->ek_len, m,
		                 srv + (l->kem_first ? 0 : l->ec_len), l->ct_len, ss_k, 32), 0);
		if (l->ec_alg != NULL) {
			unsigned char pub[97];
			size_t pub_len = 0;
			eph = ecdh_key(l);
			assert_int_equal(EVP_PKEY_get_octet_string_param(eph,
			                 strcmp(l->ec_alg, "X25519") == 0 ? OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY
			                 : OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub), &pub_len), 1);
			assert_int_equal(pub_len, l->ec_len);
			memcpy(srv + (l->kem_first ? l->ct_len : 0), pub, l->ec_len);
			ecdh(l, eph, ec_pub, ss_e);
		}
		/* secret order: ML-KEM first only for X25519MLKEM768 */
		if (l->kem_first || l->ec_alg == NULL) {
			memcpy(want, ss_k, 32);
			memcpy(want + 32, ss_e, l->ec_ss_len);
		} else {
			memcpy(want, ss_e, l->ec_ss_len);
			memcpy(want + l->ec_ss_len, ss_k, 32);
		}
		c = EVP_PKEY_CTX_new_from_pkey(libctx, client, NULL);
		assert_int_equal(EVP_PKEY_decapsulate_init(c, NULL), 1);
		assert_int_equal(EVP_PKEY_decapsulate(c, got, &got_len, srv, l->ct_len + l->ec_len), 1);
		assert_int_equal(got_len, 32 + l->ec_ss_len);
		assert_memory_equal(got, want, got_len);
		/* a server share of the wrong length is refused */
		got_len = sizeof(got);
		assert_int_not_equal(EVP_PKEY_decapsulate(c, got, &got_len, srv, l->ct_len + l->ec_len - 1), 1);
		EVP_PKEY_CTX_free(c);
		EVP_PKEY_free(eph);
		EVP_PKEY_free(client);
		OPENSSL_free(share);
		ERR_clear_error();
	}
}

/* The server side: a bad client share must be refused when it is set. */
static void test_server_rejects_bad_shares(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_LAYOUTS; i++) {
		const struct layout *l = &layouts[i];
		EVP_PKEY *client = keygen(l->name);
		EVP_PKEY *server = peer_template(l->name);
		unsigned char *share = NULL, bad[1568 + 97];
		size_t n = EVP_PKEY_get1_encoded_public_key(client, &share);
		size_t ek_off = l->kem_first ? 0 : l->ec_len;

		assert_int_equal(EVP_PKEY_set1_encoded_public_key(server, share, n - 1), 0);
		memcpy(bad, share, n);
		bad[ek_off] = 0xff;         /* first coefficient: 12 bits of ones = 4095 >= q */
		bad[ek_off + 1] |= 0x0f;
		assert_int_equal(EVP_PKEY_set1_encoded_public_key(server, bad, n), 0);
		if (l->ec_alg != NULL && strcmp(l->ec_alg, "EC") == 0) {
			size_t ec_off = l->kem_first ? l->ek_len : 0;
			memcpy(bad, share, n);
			bad[ec_off + l->ec_len - 1] ^= 1;   /* off the curve */
			assert_int_equal(EVP_PKEY_set1_encoded_public_key(server, bad, n), 0);
			memcpy(bad, share, n);
			bad[ec_off] = 0x02;                   /* compressed form is not allowed */
			assert_int_equal(EVP_PKEY_set1_encoded_public_key(server, bad, n), 0);
		}
		assert_int_equal(EVP_PKEY_set1_encoded_public_key(server, share, n), 1);
		EVP_PKEY_free(server);
		EVP_PKEY_free(client);
		OPENSSL_free(share);
		ERR_clear_error();
	}
}

/* An all-zero X25519 result (a low-order point from the server) fails. */
static void test_x25519_low_order_point(void **state)
{
	EVP_PKEY *client = keygen("X25519MLKEM768");
	unsigned char srv[1088 + 32], out[64];
	size_t out_len = sizeof(out);
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(libctx, client, NULL);

	(void)state;
	memset(srv, 0, sizeof(srv));    /* the X25519 part: u = 0 */
	assert_int_equal(EVP_PKEY_decapsulate_init(c, NULL), 1);
	assert_int_not_equal(EVP_PKEY_decapsulate(c, out, &out_len, srv, sizeof(srv)), 1);
	EVP_PKEY_CTX_free(c);
	EVP_PKEY_free(client);
	ERR_clear_error();
}

static int handshake(SSL_CTX *cctx, SSL_CTX *sctx, int *group)
{
	SSL *c = SSL_new(cctx), *s = SSL_new(sctx);
	BIO *cb, *sb;
	int cdone = 0, sdone = 0, ok;

	BIO_new_bio_pair(&cb, 0, &sb, 0);
	SSL_set_bio(c, cb, cb);
	SSL_set_bio(s, sb, sb);
	SSL_set_connect_state(c);
	SSL_set_accept_state(s);
	for (int i = 0; i < 50 && !(cdone && sdone); i++) {
		if (!cdone && SSL_do_handshake(c) == 1)
			cdone = 1;
		if (!sdone && SSL_do_handshake(s) == 1)
			sdone = 1;
	}
	ok = cdone && sdone;
	*group = ok ? SSL_get_negotiated_group(s) : 0;
	SSL_free(c);
	SSL_free(s);
	return ok;
}

static void test_tls13_handshakes(void **state)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(libctx, NULL, "EC", "P-256");
	X509 *cert = X509_new_ex(libctx, NULL);

	(void)state;
	ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
	X509_gmtime_adj(X509_getm_notBefore(cert), 0);
	X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
	X509_set_pubkey(cert, key);
	assert_true(X509_sign(cert, key, EVP_sha256()) > 0);
	for (size_t i = 0; i < N_LAYOUTS; i++) {
		SSL_CTX *sctx = SSL_CTX_new_ex(libctx, NULL, TLS_server_method());
		SSL_CTX *cctx = SSL_CTX_new_ex(libctx, NULL, TLS_client_method());
		char list[64];
		int group = 0;

		assert_int_equal(SSL_CTX_use_certificate(sctx, cert), 1);
		assert_int_equal(SSL_CTX_use_PrivateKey(sctx, key), 1);
		SSL_CTX_set_min_proto_version(sctx, TLS1_3_VERSION);
		SSL_CTX_set_min_proto_version(cctx, TLS1_3_VERSION);
		assert_int_equal(SSL_CTX_set1_groups_list(sctx, layouts[i].name), 1);
		/* X25519 first: the server must ask again (HelloRetryRequest) */
		snprintf(list, sizeof(list), "X25519:%s", layouts[i].name);
		assert_int_equal(SSL_CTX_set1_groups_list(cctx, list), 1);
		assert_true(handshake(cctx, sctx, &group));
		assert_int_equal(group & 0xffff, layouts[i].id);
		SSL_CTX_free(sctx);
		SSL_CTX_free(cctx);
	}
	X509_free(cert);
	EVP_PKEY_free(key);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_selftest_and_groups),
		cmocka_unit_test(test_client_layouts),
		cmocka_unit_test(test_server_rejects_bad_shares),
		cmocka_unit_test(test_x25519_low_order_point),
		cmocka_unit_test(test_tls13_handshakes),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
