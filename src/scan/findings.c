/* Findings of one endpoint from its result alone.  The findings that need
 * the inventory (unmanaged, certificate changed, key reuse, wildcard
 * overuse) are decided where the result is stored (store/scan.c callers in
 * cli/cmd_scan.c).  Severity is part of the type: one table. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "aclm/err.h"
#include "aclm/str.h"
#include "aclm/timeutil.h"
#include "scan-int.h"

const char *const aclm_scan_finding_types[] = {
	ACLM_FIND_UNREACHABLE, ACLM_FIND_UNRESOLVED, ACLM_FIND_NOT_TLS, ACLM_FIND_EXPIRED,
	ACLM_FIND_NOT_YET_VALID, ACLM_FIND_UNMANAGED, ACLM_FIND_HOSTNAME, ACLM_FIND_UNTRUSTED,
	ACLM_FIND_SELF_SIGNED, ACLM_FIND_INCOMPLETE, ACLM_FIND_WEAK_KEY, ACLM_FIND_SHA1,
	ACLM_FIND_VALIDITY, ACLM_FIND_KEY_REUSE, ACLM_FIND_WILDCARD, ACLM_FIND_NO_PQ,
	ACLM_FIND_CHANGED, NULL,
};

const char *aclm_severity_name(enum aclm_severity s)
{
	switch (s) {
	case ACLM_SEV_INFO: return "info";
	case ACLM_SEV_LOW: return "low";
	case ACLM_SEV_MEDIUM: return "medium";
	case ACLM_SEV_HIGH: return "high";
	case ACLM_SEV_CRITICAL: return "critical";
	}
	return "info";
}

int aclm_severity_parse(const char *s, enum aclm_severity *out)
{
	for (int i = ACLM_SEV_INFO; i <= ACLM_SEV_CRITICAL; i++) {
		if (strcasecmp(s, aclm_severity_name((enum aclm_severity)i)) == 0) {
			*out = (enum aclm_severity)i;
			return ACLM_OK;
		}
	}
	return ACLM_ERR_PARSE;
}

/* CA/Browser Forum Baseline Requirements 6.3.2 (SC-081). */
int aclm_scan_max_validity_days(int64_t not_before)
{
	static const struct {
		int64_t from;     /* 00:00:00Z of the date */
		int days;
	} steps[] = {
		{ 1868227200, 47 },   /* 2029-03-15 */
		{ 1805068800, 100 },  /* 2027-03-15 */
		{ 1773532800, 200 },  /* 2026-03-15 */
	};
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
		if (not_before >= steps[i].from)
			return steps[i].days;
	return 398;
}

static int emit(aclm_finding_fn fn, void *ctx, const char *type, enum aclm_severity sev,
                int cert_index, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int emit(aclm_finding_fn fn, void *ctx, const char *type, enum aclm_severity sev,
                int cert_index, const char *fmt, ...)
{
	struct aclm_finding f = { .type = type, .severity = sev, .cert_index = cert_index };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(f.detail, sizeof(f.detail), fmt, ap);
	va_end(ap);
	return fn(ctx, &f);
}

static bool is_sha1(const char *sig_alg)
{
	return sig_alg != NULL && (aclm_str_icontains(sig_alg, "sha1") ||
	                           aclm_str_icontains(sig_alg, "sha-1"));
}

int aclm_scan_endpoint_findings(const struct aclm_scan_result *r, int64_t now,
                                aclm_finding_fn fn, void *ctx)
{
	const struct aclm_cert *leaf;
	char date[32];
	int rc = 0;

	(void)now;
	if (!r->reachable) {
		switch (r->reason) {
		case ACLM_SCAN_UNRESOLVED:
			return emit(fn, ctx, ACLM_FIND_UNRESOLVED, ACLM_SEV_MEDIUM, -1, "%s", r->detail);
		case ACLM_SCAN_NOT_TLS:
			return emit(fn, ctx, ACLM_FIND_NOT_TLS, ACLM_SEV_MEDIUM, -1, "%s", r->detail);
		case ACLM_SCAN_TIMEOUT:
		case ACLM_SCAN_RESET:
		case ACLM_SCAN_STARTTLS:
		case ACLM_SCAN_HANDSHAKE:
			/* Something listens there but no TLS session came of it. */
			return emit(fn, ctx, ACLM_FIND_UNREACHABLE, ACLM_SEV_MEDIUM, -1, "%s: %s",
			            aclm_scan_reason_name(r->reason), r->detail);
		default:
			/* Nothing listens (refused, no answer): not a finding in a sweep. */
			return 0;
		}
	}
	if (r->n_chain == 0)
		return emit(fn, ctx, ACLM_FIND_UNTRUSTED, ACLM_SEV_HIGH, -1,
		            "the server sent no certificate");
	leaf = r->chain[0];
	if (r->is_expired) {
		aclm_time_iso(leaf->not_after, date, sizeof(date));
		if ((rc = emit(fn, ctx, ACLM_FIND_EXPIRED, ACLM_SEV_CRITICAL, 0, "expired %s", date)))
			return rc;
	}
	if (r->is_not_yet_valid) {
		aclm_time_iso(leaf->not_before, date, sizeof(date));
		if ((rc = emit(fn, ctx, ACLM_FIND_NOT_YET_VALID, ACLM_SEV_HIGH, 0,
		               "not valid before %s", date)))
			return rc;
	}
	if (r->has_name && !r->hostname_matches &&
	    (rc = emit(fn, ctx, ACLM_FIND_HOSTNAME, ACLM_SEV_HIGH, 0,
	               "the certificate is not valid for %s",
	               r->ep.sni[0] ? r->ep.sni : r->ep.ip)))
		return rc;
	switch (r->trust) {
	case ACLM_TRUST_SELF_SIGNED:
		rc = emit(fn, ctx, ACLM_FIND_SELF_SIGNED, ACLM_SEV_HIGH, 0, "self-signed: %s",
		          leaf->subject);
		break;
	case ACLM_TRUST_UNTRUSTED:
		rc = emit(fn, ctx, ACLM_FIND_UNTRUSTED, ACLM_SEV_HIGH, 0, "%s", r->verify_error);
		break;
	case ACLM_TRUST_INCOMPLETE:
		rc = emit(fn, ctx, ACLM_FIND_INCOMPLETE, ACLM_SEV_MEDIUM, 0,
		          "the server does not send the intermediate certificates (%zu sent)",
		          r->n_chain);
		break;
	default:
		break;
	}
	if (rc)
		return rc;
	for (size_t i = 0; i < r->n_chain; i++) {
		const struct aclm_cert *c = r->chain[i];
		if (c->key_type == ACLM_KEY_RSA && c->key_bits < 2048 &&
		    (rc = emit(fn, ctx, ACLM_FIND_WEAK_KEY, ACLM_SEV_HIGH, (int)i,
		               "RSA key of %d bits (%s)", c->key_bits, c->subject)))
			return rc;
		/* A self-signed root's own signature is never checked: harmless. */
		if (is_sha1(c->sig_alg) && !(i > 0 && c->is_self_issued) &&
		    (rc = emit(fn, ctx, ACLM_FIND_SHA1, ACLM_SEV_HIGH, (int)i, "%s signature (%s)",
		               c->sig_alg, c->subject)))
			return rc;
	}
	{
		int max = aclm_scan_max_validity_days(leaf->not_before);
		int64_t secs = leaf->not_after - leaf->not_before;
		if (secs > (int64_t)max * 86400 &&
		    (rc = emit(fn, ctx, ACLM_FIND_VALIDITY, ACLM_SEV_MEDIUM, 0,
		               "valid for %lld days; at its issuance the maximum was %d",
		               (long long)((secs + 86399) / 86400), max)))
			return rc;
	}
	if (r->pq_probed != 0 && r->pq_groups == 0 &&
	    (rc = emit(fn, ctx, ACLM_FIND_NO_PQ, ACLM_SEV_INFO, -1,
	               "no post-quantum key exchange group accepted")))
		return rc;
	return 0;
}
