/* Issuance: CSR checks (signature, key strength, identifiers), profiles,
 * identifier policy, the leaf's extensions (CRL DP, AIA OCSP), storage. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "aclm/bundle.h"
#include "aclm/buf.h"
#include "aclm/ca.h"
#include "aclm/config.h"
#include "aclm/csr.h"
#include "aclm/err.h"
#include "aclm/store.h"
#include "aclm/store_ca.h"
#include "aclm/str.h"
#include "aclm/timeutil.h"
#include "ca-int.h"

#define MAX_IDENTIFIERS 100
#define MAX_CSR_BYTES 16384

static const struct aclm_ca_profile profiles[] = {
	{ "default", 90 * 86400LL, true, true, false, "90 days, DNS and IP, serverAuth" },
	{ "shortlived", 7 * 86400LL, true, true, false, "7 days, DNS and IP, serverAuth" },
	{ "intranet", 47 * 86400LL, true, true, true,
	  "47 days, DNS and IP, serverAuth and clientAuth" },
};
#define N_PROFILES (sizeof(profiles) / sizeof(profiles[0]))

const struct aclm_ca_profile *aclm_ca_profile_find(const char *name)
{
	if (name == NULL || *name == '\0')
		name = "default";
	for (size_t i = 0; i < N_PROFILES; i++)
		if (strcmp(profiles[i].name, name) == 0)
			return &profiles[i];
	return NULL;
}

size_t aclm_ca_profiles(const struct aclm_ca_profile **out)
{
	*out = profiles;
	return N_PROFILES;
}

/* --- identifier policy -------------------------------------------------- */

static bool in_cidr(const char *ip, const char *cidr)
{
	unsigned char a[16], b[16];
	char net[64];
	const char *slash = strchr(cidr, '/');
	int64_t bits;
	int fam, len;

	if (slash == NULL || (size_t)(slash - cidr) >= sizeof(net))
		return false;
	memcpy(net, cidr, (size_t)(slash - cidr));
	net[slash - cidr] = '\0';
	if (aclm_parse_int64(slash + 1, &bits) != ACLM_OK)
		return false;
	fam = strchr(net, ':') != NULL ? AF_INET6 : AF_INET;
	len = fam == AF_INET6 ? 16 : 4;
	if ((strchr(ip, ':') != NULL) != (fam == AF_INET6))
		return false;
	if (inet_pton(fam, net, b) != 1 || inet_pton(fam, ip, a) != 1 || bits < 0 ||
	    bits > len * 8)
		return false;
	for (int i = 0; i < len && bits > 0; i++, bits -= 8) {
		unsigned mask = bits >= 8 ? 0xffu : (0xffu << (8 - bits)) & 0xffu;
		if ((a[i] & mask) != (b[i] & mask))
			return false;
	}
	return true;
}

static const char *const private_ranges[] = {
	"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "fc00::/7", "::1/128",
};

int aclm_ca_policy_check(const struct aclm_ca_policy *pol, const char *type, const char *value)
{
	if (strcmp(type, "ip") == 0) {
		const char *const *r = private_ranges;
		size_t n = sizeof(private_ranges) / sizeof(private_ranges[0]);
		if (pol->n_ip_ranges > 0) {
			r = pol->ip_ranges;
			n = pol->n_ip_ranges;
		}
		for (size_t i = 0; i < n; i++)
			if (in_cidr(value, r[i]))
				return ACLM_OK;
		return aclm_error(ACLM_ERR_USAGE, "IP address %s is outside the ranges this CA "
		                  "issues for (%s%s)", value, pol->n_ip_ranges > 0 ? "" : "private: ",
		                  n > 0 ? r[0] : "none");
	}
	if (pol->n_dns_suffixes == 0)
		return ACLM_OK;
	{
		const char *name = aclm_str_has_prefix(value, "*.") ? value + 2 : value;
		size_t nl = strlen(name);
		for (size_t i = 0; i < pol->n_dns_suffixes; i++) {
			const char *suf = pol->dns_suffixes[i];
			size_t sl;
			if (*suf == '.')
				suf++;
			sl = strlen(suf);
			if (sl == 0)
				continue;
			if (nl == sl && strcasecmp(name, suf) == 0)
				return ACLM_OK;
			if (nl > sl && name[nl - sl - 1] == '.' && strcasecmp(name + nl - sl, suf) == 0)
				return ACLM_OK;
		}
	}
	return aclm_error(ACLM_ERR_USAGE, "DNS name %s is outside the suffixes this CA issues "
	                  "for (%s, ...)", value, pol->dns_suffixes[0]);
}

/* A DNS name as a certificate may carry it: LDH labels, at most 253
 * characters, a wildcard only as the whole left-most label. */
bool ca_dns_name_ok(const char *s, bool allow_wildcard)
{
	size_t n = strlen(s), label = 0;

	if (n == 0 || n > 253)
		return false;
	if (s[0] == '*') {
		if (!allow_wildcard || s[1] != '.')
			return false;
		s += 2;
		n -= 2;
		if (n == 0)
			return false;
	}
	if (strchr(s, '.') == NULL && strcmp(s, "localhost") != 0)
		return false;  /* a bare label is not a name a CA vouches for */
	for (size_t i = 0; i <= n; i++) {
		char c = s[i];
		if (c == '.' || c == '\0') {
			if (label == 0 || label > 63 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-'))
			return false;
		if (label == 0 && c == '-')
			return false;
		label++;
	}
	{
		/* A name whose last label is numeric is an IP address in disguise. */
		const char *last = strrchr(s, '.');
		last = last != NULL ? last + 1 : s;
		if (strspn(last, "0123456789") == strlen(last))
			return false;
	}
	return true;
}

/* --- the CSR ------------------------------------------------------------ */

struct ident {
	char type[4];      /* "dns" or "ip" */
	char value[256];
};

struct csr_info {
	X509_REQ *req;
	EVP_PKEY *pk;
	enum aclm_ca_algo algo;
	struct ident ids[MAX_IDENTIFIERS];
	size_t n_ids;
};

static void csr_info_free(struct csr_info *ci)
{
	EVP_PKEY_free(ci->pk);
	X509_REQ_free(ci->req);
}

static int add_ident(struct csr_info *ci, const char *type, const char *value)
{
	for (size_t i = 0; i < ci->n_ids; i++)
		if (strcmp(ci->ids[i].type, type) == 0 && strcasecmp(ci->ids[i].value, value) == 0)
			return ACLM_OK;
	if (ci->n_ids == MAX_IDENTIFIERS)
		return aclm_error(ACLM_ERR_PARSE, "CSR: more than %d identifiers", MAX_IDENTIFIERS);
	if (strlen(value) >= sizeof(ci->ids[0].value))
		return aclm_error(ACLM_ERR_PARSE, "CSR: identifier longer than 255 characters");
	aclm_strlcpy(ci->ids[ci->n_ids].type, type, sizeof(ci->ids[0].type));
	aclm_strlcpy(ci->ids[ci->n_ids].value, value, sizeof(ci->ids[0].value));
	aclm_str_lower(ci->ids[ci->n_ids].value);
	ci->n_ids++;
	return ACLM_OK;
}

static int csr_names(struct csr_info *ci, const struct aclm_ca_profile *prof)
{
	STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(ci->req);
	GENERAL_NAMES *gens = NULL;
	X509_NAME *subj = X509_REQ_get_subject_name(ci->req);
	int rc = ACLM_OK, crit = 0, idx;

	if (exts != NULL)
		gens = X509V3_get_d2i(exts, NID_subject_alt_name, &crit, NULL);
	for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens) && rc == ACLM_OK; i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		if (g->type == GEN_DNS) {
			const unsigned char *d = ASN1_STRING_get0_data(g->d.dNSName);
			int len = ASN1_STRING_length(g->d.dNSName);
			char name[256];
			if (len <= 0 || len > 253 || memchr(d, 0, (size_t)len) != NULL) {
				rc = aclm_error(ACLM_ERR_PARSE, "CSR: a DNS name is empty, too long or "
				                "holds a NUL");
				break;
			}
			memcpy(name, d, (size_t)len);
			name[len] = '\0';
			if (aclm_is_ip_literal(name) && prof->allow_ip) {
				/* Clients without RFC 8738 (lego 4.9) put IPs in dNSName. */
				rc = add_ident(ci, "ip", name);
				continue;
			}
			if (!ca_dns_name_ok(name, prof->allow_wildcard)) {
				rc = aclm_error(ACLM_ERR_PARSE, "CSR: '%s' is not a valid DNS name%s", name,
				                name[0] == '*' && !prof->allow_wildcard ?
				                " (profile allows no wildcard)" : "");
				break;
			}
			rc = add_ident(ci, "dns", name);
		} else if (g->type == GEN_IPADD) {
			char ip[64];
			int len = ASN1_STRING_length(g->d.iPAddress);
			const unsigned char *d = ASN1_STRING_get0_data(g->d.iPAddress);
			if ((len != 4 && len != 16) ||
			    inet_ntop(len == 4 ? AF_INET : AF_INET6, d, ip, sizeof(ip)) == NULL) {
				rc = aclm_error(ACLM_ERR_PARSE, "CSR: malformed IP address");
				break;
			}
			if (!prof->allow_ip) {
				rc = aclm_error(ACLM_ERR_PARSE, "CSR: profile %s allows no IP address",
				                prof->name);
				break;
			}
			rc = add_ident(ci, "ip", ip);
		} else {
			rc = aclm_error(ACLM_ERR_PARSE, "CSR: only DNS names and IP addresses may be "
			                "asked for");
		}
	}
	/* A CN must be one of the names (or become one when there is no SAN). */
	idx = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
	if (rc == ACLM_OK && idx >= 0) {
		ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx));
		unsigned char *u = NULL;
		int len = ASN1_STRING_to_UTF8(&u, cn);
		if (len <= 0 || len > 253 || memchr(u, 0, (size_t)len) != NULL) {
			rc = aclm_error(ACLM_ERR_PARSE, "CSR: bad common name");
		} else {
			bool found = false;
			for (size_t i = 0; i < ci->n_ids; i++)
				if (strcasecmp(ci->ids[i].value, (char *)u) == 0)
					found = true;
			if (!found) {
				if (aclm_is_ip_literal((char *)u))
					rc = prof->allow_ip ? add_ident(ci, "ip", (char *)u)
					                    : aclm_error(ACLM_ERR_PARSE, "CSR: IP in CN");
				else if (ca_dns_name_ok((char *)u, prof->allow_wildcard))
					rc = add_ident(ci, "dns", (char *)u);
				else
					rc = aclm_error(ACLM_ERR_PARSE, "CSR: common name '%s' is not a DNS "
					                "name", (char *)u);
			}
		}
		OPENSSL_free(u);
	}
	if (rc == ACLM_OK && ci->n_ids == 0)
		rc = aclm_error(ACLM_ERR_PARSE, "CSR asks for no identifier");
	GENERAL_NAMES_free(gens);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return rc;
}

/* Parse, verify, classify: every failure here is badCSR. */
static int csr_check(const unsigned char *der, size_t len, const struct aclm_ca_profile *prof,
                     struct csr_info *ci)
{
	const unsigned char *p = der;
	int rc;

	memset(ci, 0, sizeof(*ci));
	if (len == 0 || len > MAX_CSR_BYTES)
		return aclm_error(ACLM_ERR_PARSE, "CSR of %zu bytes (1 to %d accepted)", len,
		                  MAX_CSR_BYTES);
	ci->req = d2i_X509_REQ(NULL, &p, (long)len);
	if (ci->req == NULL || p != der + len)
		return aclm_error_openssl(ACLM_ERR_PARSE, "CSR is not one DER PKCS#10 request");
	ci->pk = X509_REQ_get_pubkey(ci->req);
	if (ci->pk == NULL)
		return aclm_error_openssl(ACLM_ERR_PARSE, "CSR: unreadable public key");
	if ((rc = ca_algo_of_key(ci->pk, &ci->algo)) != ACLM_OK)
		return aclm_error_wrap(ACLM_ERR_PARSE, "CSR: weak or unsupported key");
	if (ci->algo == ACLM_CA_SM2) {
		ASN1_OCTET_STRING *id = ASN1_OCTET_STRING_new();
		if (id == NULL || !ASN1_OCTET_STRING_set(id, (const unsigned char *)ACLM_SM2_DEFAULT_ID,
		                                         (int)strlen(ACLM_SM2_DEFAULT_ID))) {
			ASN1_OCTET_STRING_free(id);
			return aclm_error(ACLM_ERR_NOMEM, "out of memory");
		}
		X509_REQ_set0_distinguishing_id(ci->req, id);
	}
	if (X509_REQ_verify(ci->req, ci->pk) != 1)
		return aclm_error_openssl(ACLM_ERR_PARSE, "CSR: signature does not verify");
	if (ci->algo != ACLM_CA_RSA) {
		EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, ci->pk, NULL);
		int ok = c != NULL && EVP_PKEY_public_check(c) == 1;
		EVP_PKEY_CTX_free(c);
		if (!ok)
			return aclm_error_openssl(ACLM_ERR_PARSE, "CSR: public key is not a valid point");
	}
	return csr_names(ci, prof);
}

static int expect_match(const struct csr_info *ci, const char *const *expect, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		bool found = false;
		for (size_t j = 0; j < ci->n_ids && !found; j++) {
			char both[300];
			snprintf(both, sizeof(both), "%s:%s", ci->ids[j].type, ci->ids[j].value);
			found = strcasecmp(both, expect[i]) == 0;
		}
		if (!found)
			return aclm_error(ACLM_ERR_PARSE, "CSR does not ask for %s of the order", expect[i]);
	}
	for (size_t j = 0; j < ci->n_ids; j++) {
		bool found = false;
		char both[300];
		snprintf(both, sizeof(both), "%s:%s", ci->ids[j].type, ci->ids[j].value);
		for (size_t i = 0; i < n && !found; i++)
			found = strcasecmp(both, expect[i]) == 0;
		if (!found)
			return aclm_error(ACLM_ERR_PARSE, "CSR asks for %s, which the order has not",
			                  both);
	}
	return ACLM_OK;
}

/* --- the certificate ---------------------------------------------------- */

static int leaf_extensions(X509 *x, X509 *issuer, const struct csr_info *ci,
                           const struct aclm_ca_profile *prof, const char *ca,
                           const char *base_url)
{
	struct aclm_buf san;
	char v[1024];
	int rc;

	aclm_buf_init(&san, 64 * 1024);
	for (size_t i = 0; i < ci->n_ids; i++)
		if ((rc = aclm_buf_printf(&san, "%s%s:%s", i ? "," : "",
		                          strcmp(ci->ids[i].type, "ip") == 0 ? "IP" : "DNS",
		                          ci->ids[i].value)) != ACLM_OK)
			goto out;
	if ((rc = ca_add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE")) != ACLM_OK ||
	    (rc = ca_add_ext(x, issuer, NID_key_usage,
	                     ci->algo == ACLM_CA_RSA ? "critical,digitalSignature,keyEncipherment"
	                                             : "critical,digitalSignature")) != ACLM_OK ||
	    (rc = ca_add_ext(x, issuer, NID_ext_key_usage,
	                     prof->client_auth ? "serverAuth,clientAuth" : "serverAuth")) != ACLM_OK ||
	    (rc = ca_add_ext(x, issuer, NID_subject_key_identifier, "hash")) != ACLM_OK ||
	    (rc = ca_add_ext(x, issuer, NID_authority_key_identifier, "keyid:always")) != ACLM_OK ||
	    (rc = ca_add_ext(x, issuer, NID_subject_alt_name, aclm_buf_cstr(&san))) != ACLM_OK)
		goto out;
	if (base_url != NULL && *base_url != '\0') {
		const char *algo = aclm_ca_algo_name(ci->algo);
		size_t bl = strlen(base_url);
		int trim = bl > 0 && base_url[bl - 1] == '/' ? 1 : 0;
		snprintf(v, sizeof(v), "URI:%.*s/ca/%s/crl/%s", (int)(bl - (size_t)trim), base_url,
		         ca, algo);
		if ((rc = ca_add_ext(x, issuer, NID_crl_distribution_points, v)) != ACLM_OK)
			goto out;
		snprintf(v, sizeof(v), "OCSP;URI:%.*s/ca/%s/ocsp,caIssuers;URI:%.*s/ca/%s/issuer/%s",
		         (int)(bl - (size_t)trim), base_url, ca, (int)(bl - (size_t)trim), base_url, ca,
		         algo);
		if ((rc = ca_add_ext(x, issuer, NID_info_access, v)) != ACLM_OK)
			goto out;
	}
out:
	aclm_buf_free(&san);
	return rc;
}

void aclm_ca_issue_res_free(struct aclm_ca_issue_res *r)
{
	free(r->chain_pem);
	r->chain_pem = NULL;
	r->chain_pem_len = 0;
}

static int chain_of(struct aclm_store *st, const char *ca, enum aclm_ca_algo algo, X509 *leaf,
                    struct aclm_ca_issue_res *res)
{
	unsigned char *der = NULL;
	char *pem = NULL, *rest = NULL;
	size_t pem_len = 0, rest_len = 0;
	int n = i2d_X509(leaf, &der), rc;

	if (n <= 0)
		return aclm_error_openssl(ACLM_ERR_CRYPTO, "encode certificate");
	rc = aclm_pem_encode_cert(der, (size_t)n, &pem, &pem_len);
	OPENSSL_free(der);
	if (rc == ACLM_OK)
		rc = aclm_ca_chain_pem(st, ca, algo, false, &rest, &rest_len);
	if (rc == ACLM_OK) {
		res->chain_pem = malloc(pem_len + rest_len + 1);
		if (res->chain_pem == NULL) {
			rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
		} else {
			memcpy(res->chain_pem, pem, pem_len);
			memcpy(res->chain_pem + pem_len, rest, rest_len);
			res->chain_pem[pem_len + rest_len] = '\0';
			res->chain_pem_len = pem_len + rest_len;
		}
	}
	free(pem);
	free(rest);
	return rc;
}

int aclm_ca_issue(struct aclm_store *st, const struct aclm_kek *kek,
                  const struct aclm_ca_issue_req *req, struct aclm_ca_issue_res *res)
{
	const struct aclm_ca_profile *prof = aclm_ca_profile_find(req->profile);
	struct csr_info ci;
	X509 *issuer = NULL, *x = NULL;
	X509_NAME *subj = NULL;
	EVP_PKEY *key = NULL;
	EVP_MD_CTX *mctx = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	ASN1_INTEGER *serial = NULL;
	int64_t now = aclm_now();
	int rc;

	memset(res, 0, sizeof(*res));
	memset(&ci, 0, sizeof(ci));
	res->problem = "badCSR";
	if (prof == NULL) {
		res->problem = "invalidProfile";
		return aclm_error(ACLM_ERR_USAGE, "unknown profile '%s' (default, shortlived, intranet)",
		                  req->profile);
	}
	if ((rc = csr_check(req->csr, req->csr_len, prof, &ci)) != ACLM_OK)
		goto out;
	if (req->expect != NULL && (rc = expect_match(&ci, req->expect, req->n_expect)) != ACLM_OK)
		goto out;
	if (req->policy != NULL) {
		for (size_t i = 0; i < ci.n_ids; i++) {
			if ((rc = aclm_ca_policy_check(req->policy, ci.ids[i].type,
			                               ci.ids[i].value)) != ACLM_OK) {
				res->problem = "rejectedIdentifier";
				goto out;
			}
		}
	}
	res->problem = "serverInternal";
	res->algo = ci.algo;
	if ((rc = ca_load_issuer(st, kek, req->ca, ci.algo, &issuer, &key)) != ACLM_OK)
		goto out;
	if ((x = X509_new()) == NULL || (subj = X509_NAME_new()) == NULL) {
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < ci.n_ids; i++) {
		if (strcmp(ci.ids[i].type, "dns") == 0 && strlen(ci.ids[i].value) <= 64) {
			if (!X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_UTF8,
			                                (const unsigned char *)ci.ids[i].value, -1, -1, 0)) {
				rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "subject");
				goto out;
			}
			break;
		}
	}
	if ((rc = ca_random_serial(&serial)) != ACLM_OK)
		goto out;
	if (!X509_set_version(x, 2) || !X509_set_serialNumber(x, serial) ||
	    !X509_set_subject_name(x, subj) ||
	    !X509_set_issuer_name(x, X509_get_subject_name(issuer)) ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -60) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), (long)prof->validity - 60) == NULL ||
	    !X509_set_pubkey(x, ci.pk)) {
		rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "build certificate");
		goto out;
	}
	if ((rc = leaf_extensions(x, issuer, &ci, prof, req->ca, req->base_url)) != ACLM_OK)
		goto out;
	/* No subject: the SAN extension must be critical (RFC 5280 4.2.1.6). */
	if (X509_NAME_entry_count(subj) == 0) {
		int idx = X509_get_ext_by_NID(x, NID_subject_alt_name, -1);
		if (idx >= 0)
			X509_EXTENSION_set_critical(X509_get_ext(x, idx), 1);
	}
	if ((rc = ca_sign_ctx(key, &mctx, &pctx)) != ACLM_OK)
		goto out;
	if (X509_sign_ctx(x, mctx) <= 0) {
		rc = aclm_error_openssl(ACLM_ERR_CRYPTO, "sign certificate");
		goto out;
	}
	if ((rc = aclm_store_begin(st)) != ACLM_OK)
		goto out;
	{
		struct aclm_ca_issued_row row;
		char detail[512];
		memset(&row, 0, sizeof(row));
		if ((rc = ca_store_cert(st, req->ca, x, &res->cert_id, res->serial)) != ACLM_OK)
			goto rollback;
		row.ca = (char *)req->ca;
		row.algo = (char *)aclm_ca_algo_name(ci.algo);
		row.serial = res->serial;
		row.cert_id = res->cert_id;
		row.profile = (char *)prof->name;
		row.account_ref = (char *)req->account_ref;
		row.not_before = now - 60;
		row.not_after = now + prof->validity - 60;
		if ((rc = aclm_store_ca_issued_add(st, &row)) != ACLM_OK)
			goto rollback;
		snprintf(detail, sizeof(detail), "{\"ca\":\"%s\",\"serial\":\"%s\",\"algo\":\"%s\","
		         "\"profile\":\"%s\",\"cert_id\":%lld,\"names\":%zu}", req->ca, res->serial,
		         row.algo, prof->name, (long long)res->cert_id, ci.n_ids);
		if ((rc = aclm_store_append_event(st, "ca.issued", ci.ids[0].value, detail)) != ACLM_OK)
			goto rollback;
		if ((rc = aclm_store_commit(st)) != ACLM_OK)
			goto out;
	}
	rc = chain_of(st, req->ca, ci.algo, x, res);
	if (rc == ACLM_OK)
		res->problem = NULL;
	goto out;
rollback:
	aclm_store_rollback(st);
out:
	EVP_MD_CTX_free(mctx);
	EVP_PKEY_CTX_free(pctx);
	ASN1_INTEGER_free(serial);
	X509_NAME_free(subj);
	X509_free(x);
	X509_free(issuer);
	EVP_PKEY_free(key);
	csr_info_free(&ci);
	return rc;
}

int aclm_ca_csr_der(const unsigned char *in, size_t len, unsigned char **der, size_t *der_len)
{
	BIO *bio = NULL;
	X509_REQ *req = NULL;
	unsigned char *tmp = NULL;
	int n;

	if (len > 4 * MAX_CSR_BYTES)
		return aclm_error(ACLM_ERR_TOOBIG, "CSR of %zu bytes", len);
	if (len > 0 && in[0] == 0x30) {
		*der = malloc(len);
		if (*der == NULL)
			return aclm_error(ACLM_ERR_NOMEM, "out of memory");
		memcpy(*der, in, len);
		*der_len = len;
		return ACLM_OK;
	}
	bio = BIO_new_mem_buf(in, (int)len);
	if (bio != NULL)
		req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (req == NULL)
		return aclm_error_openssl(ACLM_ERR_PARSE, "not a PEM or DER certificate request");
	n = i2d_X509_REQ(req, &tmp);
	X509_REQ_free(req);
	if (n <= 0 || (*der = malloc((size_t)n)) == NULL) {
		OPENSSL_free(tmp);
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	}
	memcpy(*der, tmp, (size_t)n);
	*der_len = (size_t)n;
	OPENSSL_free(tmp);
	return ACLM_OK;
}

void aclm_ca_policy_from_config(const struct aclm_config *cfg, struct aclm_ca_policy *pol)
{
	memset(pol, 0, sizeof(*pol));
	pol->n_dns_suffixes = aclm_config_list(cfg, "ca.dns_suffixes", &pol->dns_suffixes);
	pol->n_ip_ranges = aclm_config_list(cfg, "ca.ip_ranges", &pol->ip_ranges);
}

void aclm_ca_base_url(const struct aclm_config *cfg, char *out, size_t out_size)
{
	const char *u = aclm_config_str(cfg, "ca.url");
	const char *listen = aclm_config_str(cfg, "server.listen");
	const char *colon;

	if (u != NULL && *u != '\0') {
		aclm_strlcpy(out, u, out_size);
		return;
	}
	colon = listen != NULL ? strrchr(listen, ':') : NULL;
	if (colon == NULL) {
		aclm_strlcpy(out, "https://127.0.0.1:8443", out_size);
		return;
	}
	if (strncmp(listen, "0.0.0.0:", 8) == 0 || strncmp(listen, "[::]:", 5) == 0)
		snprintf(out, out_size, "https://127.0.0.1%s", colon);
	else
		snprintf(out, out_size, "https://%s", listen);
}
