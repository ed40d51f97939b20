/* ACME accounts (RFC 8555 7.3): found in the store or created at the CA,
 * with External Account Binding when configured or required.  The account
 * key is sealed under the KEK (AAD = its SPKI SHA-256) like any private key. */
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

static int open_sealed(const struct aclm_kek *kek, const char *spki_hex,
                       const unsigned char *sealed, size_t sealed_len, struct acme_key *k)
{
	unsigned char spki[32], *pkcs8 = NULL;
	size_t len = 0;
	int rc;

	if (spki_hex == NULL || aclm_hex_decode(spki_hex, spki, sizeof(spki)) != 32)
		return aclm_error(ACLM_ERR_DB, "stored key has a bad SPKI fingerprint");
	if ((rc = aclm_keywrap_open(kek, spki, sizeof(spki), sealed, sealed_len, &pkcs8, &len)) != ACLM_OK)
		return rc;
	rc = acme_key_load(pkcs8, len, k);
	OPENSSL_clear_free(pkcs8, len);
	return rc;
}

int acme_account_ensure(struct acme_client *c, struct aclm_store *st, const struct aclm_kek *kek)
{
	struct aclm_acme_account_row row;
	struct acme_response r;
	enum aclm_keygen kind = ACLM_KEYGEN_EC256;
	unsigned char *pkcs8 = NULL, *sealed = NULL, spki[32];
	size_t pkcs8_len = 0, sealed_len = 0;
	char spki_hex[65], *payload = NULL;
	json_t *req = NULL;
	int rc;

	memset(&r, 0, sizeof(r));
	rc = aclm_store_acme_account_get(st, c->ca->name, c->ca->directory, &row);
	if (rc == ACLM_OK) {
		rc = open_sealed(kek, row.key_spki, row.key_sealed, row.key_sealed_len, &c->account);
		if (rc == ACLM_OK)
			aclm_strlcpy(c->kid, row.url, sizeof(c->kid));
		else
			aclm_error_wrap(rc, "CA %s: account key", c->ca->name);
		aclm_acme_account_row_free(&row);
		return rc;
	}
	if (rc != ACLM_ERR_NOTFOUND)
		return rc;

	if (c->ca->account_key != NULL &&
	    (rc = aclm_keygen_parse(c->ca->account_key, &kind)) != ACLM_OK)
		return aclm_error_wrap(rc, "CA %s: account_key", c->ca->name);
	if (kind == ACLM_KEYGEN_SM2)
		return aclm_error(ACLM_ERR_CONFIG, "CA %s: account_key sm2 cannot sign ACME requests "
		                  "(JWS has no SM2 algorithm); use ec256, ec384 or rsa2048",
		                  c->ca->name);
	if ((rc = aclm_key_generate(kind, &pkcs8, &pkcs8_len)) != ACLM_OK ||
	    (rc = acme_key_load(pkcs8, pkcs8_len, &c->account)) != ACLM_OK ||
	    (rc = aclm_key_spki_sha256(pkcs8, pkcs8_len, spki, spki_hex)) != ACLM_OK)
		goto out;
	req = json_pack("{s:b}", "termsOfServiceAgreed", 1);
	if (c->ca->contact != NULL)
		json_object_set_new(req, "contact", json_pack("[s]", c->ca->contact));
	if (c->ca->eab_kid != NULL) {
		unsigned char *mac = NULL;
		size_t mac_len = 0;
		json_t *eab = NULL;
		const char *h = c->ca->eab_hmac;

		if ((rc = acme_b64url_decode(h, strlen(h), &mac, &mac_len)) != ACLM_OK) {
			aclm_error_wrap(rc, "CA %s: eab_hmac", c->ca->name);
			goto out;
		}
		rc = acme_jws_eab(c->ca->eab_kid, mac, mac_len, c->dir.new_account, c->account.jwk, &eab);
		OPENSSL_clear_free(mac, mac_len);
		if (rc != ACLM_OK)
			goto out;
		json_object_set_new(req, "externalAccountBinding", eab);
	} else if (c->dir.eab_required) {
		rc = aclm_error(ACLM_ERR_CONFIG, "CA %s requires External Account Binding: set "
		                "eab_kid and eab_hmac in acme.cas", c->ca->name);
		goto out;
	}
	payload = json_dumps(req, JSON_COMPACT);
	if (payload == NULL) {
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((rc = acme_post(c, &c->account, true, c->dir.new_account, payload, "newAccount",
	                    &r)) != ACLM_OK)
		goto out;
	if (r.location[0] == '\0') {
		rc = aclm_error(ACLM_ERR_PARSE, "CA %s: newAccount: no Location header", c->ca->name);
		goto out;
	}
	aclm_strlcpy(c->kid, r.location, sizeof(c->kid));
	if ((rc = aclm_keywrap_seal(kek, spki, sizeof(spki), pkcs8, pkcs8_len, &sealed,
	                            &sealed_len)) != ACLM_OK)
		goto out;
	{
		struct aclm_acme_account_row nr = {
			.ca = c->ca->name, .directory = c->ca->directory, .url = c->kid,
			.key_type = (char *)aclm_keygen_name(kind), .key_spki = spki_hex,
			.key_sealed = sealed, .key_sealed_len = sealed_len, .contact = c->ca->contact,
		};
		int64_t id = 0;
		json_t *d;
		char *detail;

		if ((rc = aclm_store_acme_account_add(st, &nr, &id)) != ACLM_OK) {
			/* another process stored its account first: use that one */
			struct aclm_acme_account_row other;
			char saved[512];
			aclm_strlcpy(saved, aclm_errmsg(), sizeof(saved));
			if (aclm_store_acme_account_get(st, c->ca->name, c->ca->directory, &other) != ACLM_OK) {
				aclm_error(rc, "%s", saved);
				goto out;
			}
			acme_key_free(&c->account);
			rc = open_sealed(kek, other.key_spki, other.key_sealed, other.key_sealed_len,
			                 &c->account);
			if (rc == ACLM_OK)
				aclm_strlcpy(c->kid, other.url, sizeof(c->kid));
			aclm_acme_account_row_free(&other);
			goto out;
		}
		d = json_pack("{s:s, s:s}", "ca", c->ca->name, "account", c->kid);
		detail = d ? json_dumps(d, JSON_COMPACT) : NULL;
		aclm_store_append_event(st, "acme.account.created", c->ca->name, detail);
		free(detail);
		json_decref(d);
	}
	aclm_info("CA %s: account %s created", c->ca->name, c->kid);
out:
	if (pkcs8 != NULL)
		OPENSSL_clear_free(pkcs8, pkcs8_len);
	free(sealed);
	free(payload);
	json_decref(req);
	acme_response_free(&r);
	return rc;
}

int aclm_acme_account_ensure(struct aclm_store *st, const struct aclm_kek *kek,
                             const struct aclm_acme_ca *ca)
{
	struct acme_client c;
	int rc;

	if ((rc = acme_client_open(&c, ca)) != ACLM_OK)
		return rc;
	rc = acme_account_ensure(&c, st, kek);
	acme_client_close(&c);
	return rc;
}
