/* Policy and compliance: named rule sets applied to the certificates and
 * endpoints of the inventory, and the reports built on them
 * (docs/internals/policy.md).
 *
 * A policy is a JSON (or YAML) document:
 *
 *   name: corp
 *   description: what it is for
 *   rules:
 *     key_types: {rsa: {min_bits: 2048}, ec: {curves: [P-256, P-384]}, sm2: {}}
 *     signature_algorithms: [sha256WithRSAEncryption, ecdsa-with-SHA256, ...]
 *     max_validity: cabf          # or a number of days
 *     issuers: ["*Corp Issuing CA*"]
 *     san_patterns: ["*.example.com", "example.com", "10.0.0.0/8"]
 *     wildcards: allow            # deny, or a list of allowed wildcard names
 *     one_site_one_key: true
 *     dual_certificates: [{site: www.example.com, pairs: [[sm2, ec], [ec, rsa]]}]
 *     pq_key_exchange: [{endpoint: "*.example.com:443", groups: [X25519MLKEM768]}]
 *
 * Every rule is optional; an absent rule checks nothing.  Results are
 * computed on demand from the store (no cache to invalidate): each
 * certificate, endpoint and named site is compliant or has a list of
 * violations (rule + detail). */
#ifndef ACLM_POLICY_H
#define ACLM_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "aclm/buf.h"
#include "aclm/store.h"
#include "aclm/store_policy.h"

struct aclm_policy;

/* The built-in policy that needs no configuration. */
#define ACLM_POLICY_BUILTIN "cabf-baseline"

/* Rule identifiers, as they appear in results. */
#define ACLM_RULE_KEY_TYPE   "key-type"
#define ACLM_RULE_KEY_SIZE   "key-size"
#define ACLM_RULE_KEY_CURVE  "key-curve"
#define ACLM_RULE_SIGNATURE  "signature-algorithm"
#define ACLM_RULE_VALIDITY   "max-validity"
#define ACLM_RULE_ISSUER     "issuer"
#define ACLM_RULE_SAN        "san-pattern"
#define ACLM_RULE_WILDCARD   "wildcard"
#define ACLM_RULE_KEY_REUSE  "one-site-one-key"
#define ACLM_RULE_DUAL       "dual-certificate"
#define ACLM_RULE_PQ         "pq-key-exchange"

/* --- policies ------------------------------------------------------------ */

/* Parse and check a policy document (JSON or YAML text); what names the
 * source in messages (a file name).  A rule with a bad value is named with
 * its path ("rules.key_types.rsa.min_bits: want an integer 512..16384"). */
int aclm_policy_parse(const char *text, size_t len, const char *what,
                      struct aclm_policy **out);
/* From a JSON value (the stored or API form); the value is not kept. */
int aclm_policy_from_json(json_t *doc, const char *what, struct aclm_policy **out);
/* The built-in cabf-baseline policy. */
int aclm_policy_builtin(struct aclm_policy **out);
void aclm_policy_free(struct aclm_policy *p);
const char *aclm_policy_name(const struct aclm_policy *p);
/* The normalised document (a new reference; caller decrefs). */
json_t *aclm_policy_json(const struct aclm_policy *p);

/* Load by name: the built-in one or a stored one; name NULL: the stored
 * default, else the built-in. */
int aclm_policy_load(struct aclm_store *st, const char *name, struct aclm_policy **out);

/* Maximum validity in days the CA/Browser Forum allows for a TLS
 * certificate whose notBefore is t: 398, 200 from 2026-03-15, 100 from
 * 2027-03-15, 47 from 2029-03-15 (00:00:00 UTC). */
int aclm_policy_cabf_max_days(int64_t not_before);
/* Validity in days as the Baseline Requirements count it: the period is
 * notBefore through notAfter inclusive (RFC 5280 4.1.2.5), i.e.
 * notAfter - notBefore + 1 seconds, and any part of a day counts as a day. */
int64_t aclm_policy_validity_days(int64_t not_before, int64_t not_after);

/* --- evaluation ------------------------------------------------------------ */

enum aclm_subject_kind {
	ACLM_SUBJECT_CERT = 0,
	ACLM_SUBJECT_ENDPOINT,
	ACLM_SUBJECT_SITE,           /* a name of dual_certificates / pq_key_exchange */
};
const char *aclm_subject_kind_name(enum aclm_subject_kind k);  /* "certificate", ... */

struct aclm_violation {
	const char *rule;            /* ACLM_RULE_* */
	char *detail;                /* for a person */
};

struct aclm_policy_subject {
	enum aclm_subject_kind kind;
	int64_t id;                  /* certificate or endpoint row id; 0 for a site */
	char *label;                 /* CN or first name / "host:port" / the site */
	char *ref;                   /* certificate fingerprint, endpoint ip, "" */
	int64_t not_after;           /* certificates */
	struct aclm_violation *v;
	size_t n_v, cap_v;
};

#define ACLM_POLICY_N_RULES 11
struct aclm_policy_result {
	char policy[128];
	int64_t evaluated_at;
	struct aclm_policy_subject *subjects;  /* certificates by id, endpoints by id, sites */
	size_t n, cap;
	int64_t n_total[3], n_violating[3];    /* by enum aclm_subject_kind */
	int64_t n_violations;
	const char *rule_names[ACLM_POLICY_N_RULES];
	int64_t by_rule[ACLM_POLICY_N_RULES];  /* subjects with >= 1 violation of the rule */
};

/* A streaming evaluator: feed every certificate row and endpoint row (in
 * any order), then finish.  The cross-row rules (one site one key, dual
 * certificates, PQ sites that match nothing) are decided at finish. */
struct aclm_policy_eval;
int aclm_policy_eval_new(const struct aclm_policy *p, int64_t now,
                         struct aclm_policy_eval **out);
int aclm_policy_eval_cert(struct aclm_policy_eval *ev, const struct aclm_cert_row *row);
int aclm_policy_eval_endpoint(struct aclm_policy_eval *ev,
                              const struct aclm_policy_endpoint_row *row);
/* Fills *res (the caller frees it with aclm_policy_result_free) and frees ev. */
int aclm_policy_eval_finish(struct aclm_policy_eval *ev, struct aclm_policy_result *res);
void aclm_policy_eval_free(struct aclm_policy_eval *ev);

/* The whole inventory through the evaluator. */
int aclm_policy_evaluate(struct aclm_store *st, const struct aclm_policy *p, int64_t now,
                         struct aclm_policy_result *res);
void aclm_policy_result_free(struct aclm_policy_result *res);
/* {policy, evaluated_at, summary{...}, items[...]}; items of violating
 * subjects only when violating_only; offset/limit (limit 0: all) page items. */
json_t *aclm_policy_result_json(const struct aclm_policy_result *res, bool violating_only,
                                size_t offset, size_t limit);
json_t *aclm_policy_summary_json(const struct aclm_policy_result *res);
/* Which subjects aclm_policy_result_items_json lists. */
struct aclm_policy_filter {
	bool violating_only;
	const char *rule;            /* only subjects violating this rule; NULL: any */
	int kind;                    /* enum aclm_subject_kind, or -1: any */
};
/* Like aclm_policy_result_json, with a filter (f NULL: every subject). */
json_t *aclm_policy_result_items_json(const struct aclm_policy_result *res,
                                      const struct aclm_policy_filter *f, size_t offset,
                                      size_t limit);
bool aclm_policy_subject_matches(const struct aclm_policy_subject *s,
                                 const struct aclm_policy_filter *f);
/* The rule name as in results, or NULL when there is no such rule. */
const char *aclm_policy_rule_name(const char *s);

/* Queue the violations of res as one alert on an alert channel (by name
 * or id; src/notify delivers it): when the set of violating subjects and
 * their rules differs from the last alerted one, or with every > 0 again
 * once every seconds.  *alert_id is 0 when nothing was queued (no
 * violation, or already alerted). */
int aclm_policy_alert(struct aclm_store *st, const struct aclm_policy_result *res,
                      const char *channel, int64_t every, int64_t now, int64_t *alert_id);

/* --- reports --------------------------------------------------------------- */

enum aclm_report_kind {
	ACLM_REPORT_INVENTORY = 0,
	ACLM_REPORT_EXPIRY,
	ACLM_REPORT_COMPLIANCE,
	ACLM_REPORT_ALGORITHMS,
	ACLM_REPORT_PQ_READINESS,
};
enum aclm_report_format {
	ACLM_REPORT_CSV = 0,
	ACLM_REPORT_JSON,
	ACLM_REPORT_HTML,
};
int aclm_report_kind_parse(const char *s, enum aclm_report_kind *out);
int aclm_report_format_parse(const char *s, enum aclm_report_format *out);
const char *aclm_report_kind_name(enum aclm_report_kind k);
const char *aclm_report_content_type(enum aclm_report_format f);

/* The language of an HTML report's headings and summary labels (column
 * names and keys are identifiers and stay). */
enum aclm_report_lang {
	ACLM_REPORT_EN = 0,
	ACLM_REPORT_ZH,
};
int aclm_report_lang_parse(const char *s, enum aclm_report_lang *out);  /* "en", "zh" */

/* Build a report from the store into out (appended; out's maximum bounds
 * it).  policy is used by the compliance report (NULL: the default). */
int aclm_report_render(struct aclm_store *st, enum aclm_report_kind kind,
                       enum aclm_report_format fmt, const struct aclm_policy *policy,
                       int64_t now, struct aclm_buf *out);
int aclm_report_render_lang(struct aclm_store *st, enum aclm_report_kind kind,
                            enum aclm_report_format fmt, enum aclm_report_lang lang,
                            const struct aclm_policy *policy, int64_t now,
                            struct aclm_buf *out);

/* Queue the report as text on an alert channel; with every > 0 at most
 * once per period of every seconds (a daily job with 7 days sends weekly).
 * *alert_id is 0 when it went there already in this period. */
int aclm_report_send(struct aclm_store *st, enum aclm_report_kind kind,
                     const struct aclm_policy *policy, const char *channel, int64_t every,
                     int64_t now, int64_t *alert_id);

/* The report as plain text for a message (alert channels): title, the
 * summary, and the first max_rows rows as "column=value" lines. */
int aclm_report_text(struct aclm_store *st, enum aclm_report_kind kind,
                     const struct aclm_policy *policy, int64_t now, size_t max_rows,
                     struct aclm_buf *out);

#endif
