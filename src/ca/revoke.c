/* Revocation (RFC 5280 reasons) and the ARI renewal window (RFC 9773). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aclm/ca.h"
#include "aclm/err.h"
#include "aclm/store.h"
#include "aclm/store_ca.h"
#include "aclm/str.h"
#include "aclm/timeutil.h"
#include "ca-int.h"

static const char *const reason_names[] = {
	"unspecified", "keyCompromise", "cACompromise", "affiliationChanged", "superseded",
	"cessationOfOperation", "certificateHold", NULL /* 7 unused */, "removeFromCRL",
	"privilegeWithdrawn", "aACompromise",
};
#define N_REASONS (sizeof(reason_names) / sizeof(reason_names[0]))

const char *aclm_ca_reason_name(int reason)
{
	if (reason < 0 || (size_t)reason >= N_REASONS || reason_names[reason] == NULL)
		return "unknown";
	return reason_names[reason];
}

int aclm_ca_reason_parse(const char *s, int *reason)
{
	int64_t v;

	for (size_t i = 0; i < N_REASONS; i++)
		if (reason_names[i] != NULL && i != 8 && strcmp(s, reason_names[i]) == 0) {
			*reason = (int)i;
			return ACLM_OK;
		}
	if (aclm_parse_int64(s, &v) == ACLM_OK && v >= 0 && v <= 10 && v != 7 && v != 8) {
		*reason = (int)v;
		return ACLM_OK;
	}
	return aclm_error(ACLM_ERR_USAGE, "revocation reason '%s': use unspecified, keyCompromise, "
	                  "cACompromise, affiliationChanged, superseded, cessationOfOperation, "
	                  "certificateHold, privilegeWithdrawn, aACompromise or a code", s);
}

int aclm_ca_revoke(struct aclm_store *st, const char *ca, const char *serial, int reason)
{
	char detail[256];
	int rc;

	if (strlen(serial) > 64)
		return aclm_error(ACLM_ERR_USAGE, "serial '%.20s...' is too long", serial);
	if ((rc = aclm_store_begin(st)) != ACLM_OK)
		return rc;
	if ((rc = aclm_store_ca_issued_revoke(st, ca, serial, reason, aclm_now())) != ACLM_OK) {
		aclm_store_rollback(st);
		return rc;
	}
	snprintf(detail, sizeof(detail), "{\"ca\":\"%s\",\"serial\":\"%s\",\"reason\":\"%s\"}", ca,
	         serial, aclm_ca_reason_name(reason));
	if ((rc = aclm_store_append_event(st, "ca.revoked", serial, detail)) != ACLM_OK) {
		aclm_store_rollback(st);
		return rc;
	}
	return aclm_store_commit(st);
}

int aclm_ca_renewal_window(struct aclm_store *st, const char *ca, const char *serial,
                           int64_t *start, int64_t *end)
{
	struct aclm_ca_issued_row r;
	int64_t life;
	uint64_t spread = 0;
	int rc;

	if ((rc = aclm_store_ca_issued_get(st, ca, serial, &r)) != ACLM_OK)
		return rc;
	life = r.not_after - r.not_before;
	/* The middle third of the second half of the life, each certificate at
	 * its own place in it (by serial) so a fleet does not renew at once. */
	for (const char *p = r.serial; *p != '\0'; p++)
		spread = spread * 31 + (unsigned char)*p;
	*start = r.not_before + life / 2 + (int64_t)(spread % (uint64_t)(life / 6 + 1));
	*end = *start + life / 6;
	if (r.revoked_at != 0 || (r.renew_after != 0 && r.renew_after < *start)) {
		/* Early: an hour from the revocation or from renew-early's time,
		 * fixed, so that a time an hour ago is a window in the past, which
		 * clients answer by renewing at once (RFC 9773 section 4.2). */
		int64_t from = r.revoked_at != 0 ? r.revoked_at : r.renew_after;
		*start = from;
		*end = from + 3600;
	}
	aclm_ca_issued_row_free(&r);
	return ACLM_OK;
}
