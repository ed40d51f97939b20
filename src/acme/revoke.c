/* Revocation (RFC 8555 7.6) and account management (7.3.6 deactivation,
 * 7.3.5 key rollover). */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "acme-int.h"
#include "aclm/err.h"
#include "aclm/keywrap.h"
#include "aclm/log.h"
#include "aclm/store.h"
#include "aclm/store_acme.h"
#include "aclm/str.h"

static int event(struct aclm_store *st, const char *type, const char *subject, json_t *d)
{
	char *txt = json_dumps(d, JSON_COMPACT);
	int rc = aclm_store_append_event(st, type, subject, txt);
	free(txt);
	json_decref(d);
	return rc;
}

/* The certificate's own key, for revocation without the account. */
static int cert_key(struct aclm_store *st, const struct aclm_kek *kek, const char *spki_hex,
                    struct acme_key *k)
{
	unsigned char *sealed = NULL, *pkcs8 = NULL, spki[32];
	size_t sealed_len = 0, len = 0;
	int rc;

	if ((rc = aclm_store_get_private_key(st, spki_hex, &sealed, &sealed_len)) != ACLM_OK)
		return aclm_error(rc, "the certificate was not ordered by aclm and its private key "
		                  "is not in the inventory: it cannot be revoked from here");
	aclm_hex_decode(spki_hex, spki, sizeof(spki));
	rc = aclm_keywrap_open(kek, spki, sizeof(spki), sealed, sealed_len, &pkcs8, &len);
	free(sealed);
	if (rc != ACLM_OK)
		return rc;
	rc = acme_key_load(pkcs8, len, k);
	OPENSSL_clear_free(pkcs8, len);
	return rc;
}

struct spki_ctx {
	char spki[65];
	char cn[256];
};

static int row_fn(void *ctx, const struct aclm_cert_row *row)
{
	struct spki_ctx *s = ctx;
	aclm_strlcpy(s->spki, row->spki, sizeof(s->spki));
	aclm_strlcpy(s->cn, row->subject_cn ? row->subject_cn : row->fingerprint, sizeof(s->cn));
	return 0;
}

int aclm_acme_revoke(struct aclm_store *st, const struct aclm_kek *kek,
                     const struct aclm_acme_ca *cas, size_t n_cas, int64_t cert_id, int reason)
{
	struct aclm_acme_order_row o;
	const struct aclm_acme_ca *ca = NULL;
	struct acme_client c;
	struct acme_response resp;
	struct acme_key ck;
	struct spki_ctx sc;
	unsigned char *der = NULL;
	size_t der_len = 0;
	char *b64 = NULL, *payload = NULL;
	bool by_account = false, opened = false;
	int64_t managed = 0;
	int rc;

	memset(&o, 0, sizeof(o));
	memset(&ck, 0, sizeof(ck));
	memset(&sc, 0, sizeof(sc));
	if (reason < 0 || reason > 10 || reason == 7)
		return aclm_error(ACLM_ERR_USAGE, "revocation reason %d is not an RFC 5280 code", reason);
	if ((rc = aclm_store_get_cert(st, cert_id, row_fn, &sc)) != ACLM_OK)
		return rc;
	if (sc.spki[0] == '\0')
		return aclm_error(ACLM_ERR_NOTFOUND, "no certificate %lld", (long long)cert_id);
	rc = aclm_store_acme_order_by_cert(st, cert_id, &o);
	if (rc == ACLM_OK) {
		ca = aclm_acme_ca_find(cas, n_cas, o.ca);
		if (ca == NULL) {
			rc = aclm_error(ACLM_ERR_CONFIG, "certificate %lld came from CA %s, which is not in "
			                "acme.cas", (long long)cert_id, o.ca);
			goto out;
		}
		by_account = true;
	} else if (rc == ACLM_ERR_NOTFOUND) {
		if (n_cas == 0) {
			rc = aclm_error(ACLM_ERR_CONFIG, "no CA in acme.cas to send the revocation to");
			goto out;
		}
		ca = &cas[0];
	} else {
		goto out;
	}
	if ((rc = aclm_store_get_cert_der(st, cert_id, &der, &der_len)) != ACLM_OK ||
	    (rc = acme_b64url_encode(der, der_len, &b64)) != ACLM_OK)
		goto out;
	if ((rc = acme_client_open(&c, ca)) != ACLM_OK)
		goto out;
	opened = true;
	if (c.dir.revoke_cert[0] == '\0') {
		rc = aclm_error(ACLM_ERR_UNSUPPORTED, "CA %s offers no revokeCert", ca->name);
		goto out;
	}
	if (by_account && (rc = acme_account_ensure(&c, st, kek)) != ACLM_OK)
		goto out;
	if (!by_account && (rc = cert_key(st, kek, sc.spki, &ck)) != ACLM_OK)
		goto out;
	{
		size_t n = strlen(b64) + 64;
		payload = malloc(n);
		if (payload == NULL) {
			rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
			goto out;
		}
		snprintf(payload, n, "{\"certificate\":\"%s\",\"reason\":%d}", b64, reason);
	}
	rc = acme_post(&c, by_account ? &c.account : &ck, !by_account, c.dir.revoke_cert, payload,
	               "revokeCert", &resp);
	if (rc != ACLM_OK)
		goto out;
	acme_response_free(&resp);
	aclm_store_managed_by_cert(st, cert_id, &managed);
	if (managed != 0)
		aclm_store_managed_set_failure(st, managed, "revoked", "certificate revoked", 0);
	event(st, "acme.revoked", sc.cn, json_pack("{s:s, s:I, s:i, s:s}", "ca", ca->name,
	      "cert", (json_int_t)cert_id, "reason", reason,
	      "by", by_account ? "account" : "certificate key"));
out:
	if (opened)
		acme_client_close(&c);
	acme_key_free(&ck);
	aclm_acme_order_row_free(&o);
	free(der);
	free(b64);
	free(payload);
	return rc;
}

static int load_account(struct acme_client *c, struct aclm_store *st, const struct aclm_kek *kek,
                        const struct aclm_acme_ca *ca, struct aclm_acme_account_row *row)
{
	int rc = aclm_store_acme_account_get(st, ca->name, ca->directory, row);

	if (rc == ACLM_ERR_NOTFOUND)
		return aclm_error(rc, "no account at CA %s", ca->name);
	if (rc != ACLM_OK)
		return rc;
	if ((rc = acme_client_open(c, ca)) != ACLM_OK) {
		aclm_acme_account_row_free(row);
		return rc;
	}
	if ((rc = acme_account_ensure(c, st, kek)) != ACLM_OK) {
		acme_client_close(c);
		aclm_acme_account_row_free(row);
	}
	return rc;
}

int aclm_acme_account_deactivate(struct aclm_store *st, const struct aclm_kek *kek,
                                 const struct aclm_acme_ca *ca)
{
	struct aclm_acme_account_row row;
	struct acme_client c;
	struct acme_response resp;
	int rc;

	if ((rc = load_account(&c, st, kek, ca, &row)) != ACLM_OK)
		return rc;
	rc = acme_post(&c, &c.account, false, c.kid, "{\"status\":\"deactivated\"}", "deactivate",
	               &resp);
	if (rc == ACLM_OK) {
		acme_response_free(&resp);
		rc = aclm_store_acme_account_update(st, row.id, "deactivated", NULL, NULL, NULL, 0);
		event(st, "acme.account.deactivated", ca->name, json_pack("{s:s, s:s}", "ca", ca->name,
		      "account", c.kid));
	}
	acme_client_close(&c);
	aclm_acme_account_row_free(&row);
	return rc;
}

int aclm_acme_account_rollover(struct aclm_store *st, const struct aclm_kek *kek,
                               const struct aclm_acme_ca *ca)
{
	struct aclm_acme_account_row row;
	struct acme_client c;
	struct acme_response resp;
	struct acme_key nk;
	enum aclm_keygen kind = ACLM_KEYGEN_EC256;
	unsigned char *pkcs8 = NULL, *sealed = NULL, spki[32];
	size_t pkcs8_len = 0, sealed_len = 0;
	char spki_hex[65], *inner_txt = NULL, *payload = NULL;
	json_t *inner = NULL, *pl = NULL;
	int rc;

	memset(&nk, 0, sizeof(nk));
	if ((rc = load_account(&c, st, kek, ca, &row)) != ACLM_OK)
		return rc;
	if (c.dir.key_change[0] == '\0') {
		rc = aclm_error(ACLM_ERR_UNSUPPORTED, "CA %s offers no keyChange", ca->name);
		goto out;
	}
	if (row.key_type != NULL && aclm_keygen_parse(row.key_type, &kind) != ACLM_OK)
		kind = ACLM_KEYGEN_EC256;
	if ((rc = aclm_key_generate(kind, &pkcs8, &pkcs8_len)) != ACLM_OK ||
	    (rc = acme_key_load(pkcs8, pkcs8_len, &nk)) != ACLM_OK ||
	    (rc = aclm_key_spki_sha256(pkcs8, pkcs8_len, spki, spki_hex)) != ACLM_OK ||
	    (rc = aclm_keywrap_seal(kek, spki, sizeof(spki), pkcs8, pkcs8_len, &sealed,
	                            &sealed_len)) != ACLM_OK)
		goto out;
	pl = json_pack("{s:s, s:o}", "account", c.kid, "oldKey", json_loads(c.account.jwk, 0, NULL));
	inner_txt = json_dumps(pl, JSON_COMPACT);
	if ((rc = acme_jws_sign_inner(&nk, c.dir.key_change, inner_txt, &inner)) != ACLM_OK)
		goto out;
	payload = json_dumps(inner, JSON_COMPACT);
	if ((rc = acme_post(&c, &c.account, false, c.dir.key_change, payload, "keyChange",
	                    &resp)) != ACLM_OK)
		goto out;
	acme_response_free(&resp);
	rc = aclm_store_acme_account_update(st, row.id, NULL, aclm_keygen_name(kind), spki_hex, sealed,
	                                    sealed_len);
	if (rc == ACLM_OK)
		event(st, "acme.account.rollover", ca->name, json_pack("{s:s, s:s, s:s}", "ca", ca->name,
		      "account", c.kid, "key", spki_hex));
out:
	if (pkcs8 != NULL)
		OPENSSL_clear_free(pkcs8, pkcs8_len);
	free(sealed);
	free(inner_txt);
	free(payload);
	json_decref(pl);
	json_decref(inner);
	acme_key_free(&nk);
	acme_client_close(&c);
	aclm_acme_account_row_free(&row);
	return rc;
}

int aclm_acme_account_orders(struct aclm_store *st, const struct aclm_kek *kek,
                             const struct aclm_acme_ca *ca,
                             void (*fn)(void *ctx, const char *url), void *ctx)
{
	struct aclm_acme_account_row row;
	struct acme_client c;
	struct acme_response resp;
	char url[ACME_MAX_URL];
	json_t *acct = NULL;
	int rc, pages = 0;

	if ((rc = load_account(&c, st, kek, ca, &row)) != ACLM_OK)
		return rc;
	memset(&resp, 0, sizeof(resp));
	if ((rc = acme_post(&c, &c.account, false, c.kid, NULL, "account", &resp)) != ACLM_OK ||
	    (rc = acme_json(&c, &resp, "account", &acct)) != ACLM_OK)
		goto out;
	acme_response_free(&resp);
	if (json_string_value(json_object_get(acct, "orders")) == NULL) {
		rc = aclm_error(ACLM_ERR_UNSUPPORTED, "CA %s does not list the orders of an account",
		                ca->name);
		goto out;
	}
	aclm_strlcpy(url, json_string_value(json_object_get(acct, "orders")), sizeof(url));
	while (url[0] != '\0' && pages++ < 1000) {
		json_t *list = NULL, *v;
		size_t i;
		if ((rc = acme_post(&c, &c.account, false, url, NULL, "orders", &resp)) != ACLM_OK ||
		    (rc = acme_json(&c, &resp, "orders", &list)) != ACLM_OK)
			goto out;
		json_array_foreach(json_object_get(list, "orders"), i, v)
			if (json_is_string(v))
				fn(ctx, json_string_value(v));
		json_decref(list);
		aclm_strlcpy(url, resp.next, sizeof(url));
		acme_response_free(&resp);
	}
out:
	acme_response_free(&resp);
	json_decref(acct);
	acme_client_close(&c);
	aclm_acme_account_row_free(&row);
	return rc;
}
