/* Certificates for sites with cert_source ca: issued in process by aclm's
 * built-in CA (src/ca) from the store, no ACME round trip.  The key is made
 * here, sealed under the KEK on its key row, and the certificate becomes
 * the current one of the site's managed certificate ("NAME/KEYTYPE", as
 * the ACME client names them), so inventory, expiry alerts and reports see
 * it like any other.  The renewal time follows the CA's own renewal window
 * (what its ARI answers; `aclm ca renew-early` moves it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "aclm/acme.h"
#include "aclm/ca.h"
#include "aclm/csr.h"
#include "aclm/err.h"
#include "aclm/keywrap.h"
#include "aclm/store.h"
#include "aclm/store_acme.h"
#include "aclm/timeutil.h"
#include "gateway-int.h"

/* The managed certificate's desired state for this site and key type. */
static int ensure_managed(struct aclm_store *st, const struct gw_ca_opts *o,
                          const struct gw_site *s, enum aclm_keygen kt, int64_t *id)
{
	struct aclm_managed_row m;
	json_t *ids = json_array(), *cas = json_array(), *solver;
	char name[512], ref[80];
	int rc;

	memset(&m, 0, sizeof(m));
	snprintf(ref, sizeof(ref), "ca:%s", o->ca);
	for (size_t i = 0; i < s->n_names; i++)
		json_array_append_new(ids, json_string(s->names[i]));
	json_array_append_new(cas, json_string(ref));
	/* not an ACME challenge: renewed by the gateway that serves it */
	solver = json_pack("{s:s, s:s}", "type", "builtin-ca", "by", "gateway");
	snprintf(name, sizeof(name), "%s/%s", s->names[0], aclm_keygen_name(kt));
	m.name = name;
	m.key_type = (char *)aclm_keygen_name(kt);
	m.profile = s->ca_profile[0] ? (char *)s->ca_profile : NULL;
	m.identifiers = json_dumps(ids, JSON_COMPACT);
	m.cas = json_dumps(cas, JSON_COMPACT);
	m.solver = json_dumps(solver, JSON_COMPACT);
	if (!m.identifiers || !m.cas || !m.solver)
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
	else
		rc = aclm_store_managed_upsert(st, &m, id);
	free(m.identifiers);
	free(m.cas);
	free(m.solver);
	json_decref(ids);
	json_decref(cas);
	json_decref(solver);
	return rc;
}

int gw_ca_issue(struct aclm_store *st, const struct aclm_kek *kek, const struct gw_ca_opts *o,
                const struct gw_site *s, size_t ki, int64_t pair_id, int64_t *managed_id,
                int64_t *cert_id)
{
	enum aclm_keygen kt = (enum aclm_keygen)s->acme_keys[ki];
	struct aclm_csr_names names = { (const char *const *)s->names, s->n_names };
	struct aclm_ca_issue_req req;
	struct aclm_ca_issue_res res;
	unsigned char *pkcs8 = NULL, *csr = NULL, *sealed = NULL, spki[32];
	size_t pkcs8_len = 0, csr_len = 0, sealed_len = 0;
	char spki_hex[65], ref[80], loc[4200];
	bool exists = false, stored = false;
	int64_t now = aclm_now();
	int rc;

	memset(&res, 0, sizeof(res));
	if ((rc = aclm_ca_exists(st, o->ca, &exists)))
		return rc;
	if (!exists)
		return aclm_error(ACLM_ERR_NOTFOUND, "the built-in CA '%s' does not exist in this "
		                  "store (create it with `aclm ca init --name %s`)", o->ca, o->ca);
	if ((rc = aclm_key_generate(kt, &pkcs8, &pkcs8_len)) ||
	    (rc = aclm_key_spki_sha256(pkcs8, pkcs8_len, spki, spki_hex)) ||
	    (rc = aclm_csr_build(pkcs8, pkcs8_len, &names, &csr, &csr_len)) ||
	    (rc = aclm_keywrap_seal(kek, spki, sizeof(spki), pkcs8, pkcs8_len, &sealed,
	                            &sealed_len)))
		goto out;
	memset(&req, 0, sizeof(req));
	req.ca = o->ca;
	req.csr = csr;
	req.csr_len = csr_len;
	req.profile = s->ca_profile[0] ? s->ca_profile : NULL;
	req.policy = o->policy;
	req.base_url = o->base_url;
	if ((rc = aclm_ca_issue(st, kek, &req, &res))) {
		aclm_error_wrap(rc, "CA %s refused (%s)", o->ca, res.problem ? res.problem : "error");
		goto out;
	}
	if ((rc = ensure_managed(st, o, s, kt, managed_id)))
		goto out;
	/* the key, where the certificate is served, and the managed
	 * certificate's new current one: together */
	snprintf(ref, sizeof(ref), "ca:%s", o->ca);
	snprintf(loc, sizeof(loc), "gateway %s", s->certs[ki].cert);
	if ((rc = aclm_store_begin(st)))
		goto out;
	{
		/* The managed certificate's renewal time is the end of the CA's
		 * window: the gateway renews inside it, so `aclm renew` and the
		 * server's scheduler, which cannot (no ACME challenge), never find
		 * it due unless the gateway failed to. */
		const struct aclm_ca_profile *prof = aclm_ca_profile_find(req.profile);
		int64_t nb = now - 60, na = now + (prof ? prof->validity : 90 * 86400) - 60;
		int64_t ws = 0, renew_at = aclm_acme_renew_at(nb, na, (uint64_t)*managed_id);

		if (aclm_ca_renewal_window(st, o->ca, res.serial, &ws, &renew_at))
			renew_at = aclm_acme_renew_at(nb, na, (uint64_t)*managed_id);
		if ((rc = aclm_store_put_private_key(st, spki_hex, sealed, sealed_len, &stored)) ||
		    (rc = aclm_store_add_observation(st, res.cert_id, ACLM_SRC_CA, loc, now)) ||
		    (rc = aclm_store_managed_set_current(st, *managed_id, res.cert_id, ref,
		                                         renew_at)) ||
		    (pair_id && ((rc = aclm_store_managed_set_pair(st, *managed_id, pair_id)) ||
		                 (rc = aclm_store_managed_set_pair(st, pair_id, *managed_id))))) {
			char saved[1024];

			snprintf(saved, sizeof(saved), "%s", aclm_errmsg());
			aclm_store_rollback(st);
			aclm_error(rc, "%s", saved);
			goto out;
		}
		if ((rc = aclm_store_commit(st)))
			goto out;
	}
	*cert_id = res.cert_id;
out:
	if (pkcs8)
		OPENSSL_clear_free(pkcs8, pkcs8_len);
	free(csr);
	free(sealed);
	aclm_ca_issue_res_free(&res);
	return rc;
}

int gw_ca_renew_at(struct aclm_store *st, const char *ca, const char *serial_hex,
                   uint64_t seed, int64_t *when)
{
	struct aclm_acme_ari w = { 0 };
	int rc;

	if ((rc = aclm_ca_renewal_window(st, ca, serial_hex, &w.start, &w.end)))
		return rc;
	*when = aclm_acme_ari_pick(&w, aclm_now(), seed);
	return 0;
}
