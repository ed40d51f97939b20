/* Reports: inventory, expiry, compliance, algorithms, pq-readiness, each as
 * CSV (RFC 4180), JSON or one self-contained HTML page that prints cleanly.
 *
 * One pass over the store: rows are rendered into a buffer as they stream
 * by while the summary is counted; the document is then assembled as
 * header + summary + rows.  Memory is the size of the output, bounded by the
 * caller's buffer maximum. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aclm/err.h"
#include "aclm/json.h"
#include "aclm/store_policy.h"
#include "aclm/str.h"
#include "aclm/timeutil.h"
#include "policy-int.h"

static const char *const kind_names[] = {
	[ACLM_REPORT_INVENTORY] = "inventory",
	[ACLM_REPORT_EXPIRY] = "expiry",
	[ACLM_REPORT_COMPLIANCE] = "compliance",
	[ACLM_REPORT_ALGORITHMS] = "algorithms",
	[ACLM_REPORT_PQ_READINESS] = "pq-readiness",
};
#define N_KINDS (sizeof(kind_names) / sizeof(kind_names[0]))

int aclm_report_kind_parse(const char *s, enum aclm_report_kind *out)
{
	for (size_t i = 0; s != NULL && i < N_KINDS; i++)
		if (strcmp(s, kind_names[i]) == 0) {
			*out = (enum aclm_report_kind)i;
			return ACLM_OK;
		}
	return aclm_error(ACLM_ERR_USAGE, "unknown report '%s' (inventory, expiry, compliance, "
	                  "algorithms, pq-readiness)", s != NULL ? s : "");
}

int aclm_report_format_parse(const char *s, enum aclm_report_format *out)
{
	static const char *const names[] = { "csv", "json", "html" };

	for (size_t i = 0; s != NULL && i < 3; i++)
		if (strcmp(s, names[i]) == 0) {
			*out = (enum aclm_report_format)i;
			return ACLM_OK;
		}
	return aclm_error(ACLM_ERR_USAGE, "unknown report format '%s' (csv, json, html)",
	                  s != NULL ? s : "");
}

int aclm_report_lang_parse(const char *s, enum aclm_report_lang *out)
{
	if (s != NULL && (strcmp(s, "en") == 0 || strcmp(s, "zh") == 0)) {
		*out = strcmp(s, "zh") == 0 ? ACLM_REPORT_ZH : ACLM_REPORT_EN;
		return ACLM_OK;
	}
	return aclm_error(ACLM_ERR_USAGE, "unknown report language '%s' (en, zh)",
	                  s != NULL ? s : "");
}

const char *aclm_report_kind_name(enum aclm_report_kind k)
{
	return (size_t)k < N_KINDS ? kind_names[k] : "?";
}

const char *aclm_report_content_type(enum aclm_report_format f)
{
	switch (f) {
	case ACLM_REPORT_CSV: return "text/csv; charset=utf-8; header=present";
	case ACLM_REPORT_JSON: return "application/json";
	case ACLM_REPORT_HTML: return "text/html; charset=utf-8";
	}
	return "application/octet-stream";
}

/* --- the report being built ------------------------------------------------- */

enum val_type { V_STR = 0, V_INT, V_BOOL, V_TIME, V_NULL };
struct val {
	enum val_type t;
	const char *s;
	int64_t i;
};
#define VS(x) ((struct val){ .t = (x) != NULL ? V_STR : V_NULL, .s = (x) })
#define VI(x) ((struct val){ .t = V_INT, .i = (x) })
#define VB(x) ((struct val){ .t = V_BOOL, .i = (x) })
#define VT(x) ((struct val){ .t = V_TIME, .i = (x) })

#define MAX_SUMMARY 96  /* more than the five reports ever need: 6 + 64 algorithms */

struct sum_item {
	char key[48];
	char label[96];
	int64_t v;
};

struct rep {
	enum aclm_report_format fmt;
	enum aclm_report_lang lang;
	enum aclm_report_kind kind;
	const char *title;
	const char *const *cols;
	size_t n_cols;
	int64_t now;
	char policy[128];
	struct aclm_buf rows;
	int64_t n_rows;
	struct sum_item sum[MAX_SUMMARY];
	size_t n_sum;
};

static int64_t *sum_slot(struct rep *r, const char *key, const char *label)
{
	for (size_t i = 0; i < r->n_sum; i++)
		if (strcmp(r->sum[i].key, key) == 0)
			return &r->sum[i].v;
	if (r->n_sum == MAX_SUMMARY)
		return NULL;
	aclm_strlcpy(r->sum[r->n_sum].key, key, sizeof(r->sum[0].key));
	aclm_strlcpy(r->sum[r->n_sum].label, label, sizeof(r->sum[0].label));
	r->sum[r->n_sum].v = 0;
	return &r->sum[r->n_sum++].v;
}

static void sum_add(struct rep *r, const char *key, const char *label, int64_t n)
{
	int64_t *v = sum_slot(r, key, label);

	if (v != NULL)
		*v += n;
}

static int csv_field(struct aclm_buf *b, const struct val *v)
{
	char tmp[32];
	const char *s;

	switch (v->t) {
	case V_NULL: return ACLM_OK;
	case V_INT: return aclm_buf_printf(b, "%lld", (long long)v->i);
	case V_BOOL: return aclm_buf_puts(b, v->i ? "true" : "false");
	case V_TIME:
		aclm_time_iso(v->i, tmp, sizeof(tmp));
		return aclm_buf_puts(b, tmp);
	case V_STR: break;
	}
	s = v->s;
	/* A spreadsheet runs a cell that starts with = + - @ as a formula, and
	 * certificate names come from strangers: such text gets a leading '. */
	if (s[0] != '\0' && strchr("=+-@\t\r", s[0]) != NULL) {
		int rc = aclm_buf_puts(b, "\"'");
		for (const char *p = s; rc == ACLM_OK && *p != '\0'; p++)
			rc = *p == '"' ? aclm_buf_puts(b, "\"\"") : aclm_buf_putc(b, *p);
		return rc == ACLM_OK ? aclm_buf_putc(b, '"') : rc;
	}
	if (strpbrk(s, ",\"\r\n") == NULL)
		return aclm_buf_puts(b, s);
	{
		int rc = aclm_buf_putc(b, '"');
		for (const char *p = s; rc == ACLM_OK && *p != '\0'; p++)
			rc = *p == '"' ? aclm_buf_puts(b, "\"\"") : aclm_buf_putc(b, *p);
		return rc == ACLM_OK ? aclm_buf_putc(b, '"') : rc;
	}
}

static int html_text(struct aclm_buf *b, const char *s)
{
	int rc = ACLM_OK;

	for (const char *p = s; rc == ACLM_OK && *p != '\0'; p++) {
		switch (*p) {
		case '<': rc = aclm_buf_puts(b, "&lt;"); break;
		case '>': rc = aclm_buf_puts(b, "&gt;"); break;
		case '&': rc = aclm_buf_puts(b, "&amp;"); break;
		case '"': rc = aclm_buf_puts(b, "&quot;"); break;
		case '\'': rc = aclm_buf_puts(b, "&#39;"); break;
		default: rc = aclm_buf_putc(b, *p);
		}
	}
	return rc;
}

static json_t *val_json(const struct val *v)
{
	char tmp[32];

	switch (v->t) {
	case V_NULL: return json_null();
	case V_INT: return json_integer(v->i);
	case V_BOOL: return json_boolean(v->i);
	case V_TIME:
		aclm_time_iso(v->i, tmp, sizeof(tmp));
		return json_string(tmp);
	case V_STR: break;
	}
	return aclm_json_str(v->s);
}

static int rep_row(struct rep *r, const struct val *v)
{
	struct aclm_buf *b = &r->rows;
	char tmp[32];
	int rc = ACLM_OK;

	switch (r->fmt) {
	case ACLM_REPORT_CSV:
		for (size_t i = 0; rc == ACLM_OK && i < r->n_cols; i++) {
			if (i > 0)
				rc = aclm_buf_putc(b, ',');
			if (rc == ACLM_OK)
				rc = csv_field(b, &v[i]);
		}
		if (rc == ACLM_OK)
			rc = aclm_buf_puts(b, "\r\n");
		break;
	case ACLM_REPORT_JSON: {
		json_t *o = json_object();
		char *text;
		for (size_t i = 0; i < r->n_cols; i++)
			json_object_set_new(o, r->cols[i], val_json(&v[i]));
		text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_decref(o);
		if (text == NULL)
			return aclm_error(ACLM_ERR_NOMEM, "out of memory");
		rc = aclm_buf_printf(b, "%s\n  %s", r->n_rows > 0 ? "," : "", text);
		free(text);
		break;
	}
	case ACLM_REPORT_HTML:
		rc = aclm_buf_puts(b, "<tr>");
		for (size_t i = 0; rc == ACLM_OK && i < r->n_cols; i++) {
			rc = aclm_buf_puts(b, v[i].t == V_INT ? "<td class=\"n\">" : "<td>");
			if (rc != ACLM_OK)
				break;
			switch (v[i].t) {
			case V_NULL: break;
			case V_INT: rc = aclm_buf_printf(b, "%lld", (long long)v[i].i); break;
			case V_BOOL: rc = aclm_buf_puts(b, v[i].i ? "yes" : "no"); break;
			case V_TIME:
				aclm_time_iso(v[i].i, tmp, sizeof(tmp));
				rc = aclm_buf_puts(b, tmp);
				break;
			case V_STR: rc = html_text(b, v[i].s); break;
			}
			if (rc == ACLM_OK)
				rc = aclm_buf_puts(b, "</td>");
		}
		if (rc == ACLM_OK)
			rc = aclm_buf_puts(b, "</tr>\n");
		break;
	}
	if (rc == ACLM_ERR_TOOBIG)
		return aclm_error(rc, "the %s report is larger than %zu bytes", kind_names[r->kind],
		                  b->max);
	r->n_rows++;
	return rc;
}

static const char html_style[] =
	"body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em;color:#1a1a1a}"
	"h1{font-size:1.5em;margin:0 0 .2em}p.meta{color:#555;margin:0 0 1.5em}"
	"table{border-collapse:collapse;margin-bottom:1.5em}"
	"th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}"
	"th{background:#f0f0f0}td.n{text-align:right;font-variant-numeric:tabular-nums}"
	"table.rows td{word-break:break-all;max-width:28em}"
	"table.summary th{font-weight:normal}table.summary td{font-weight:bold}"
	"@media print{body{margin:0;font-size:10pt;color:#000}"
	"@page{size:A4 landscape;margin:12mm}"
	"thead{display:table-header-group}tr{page-break-inside:avoid;break-inside:avoid}"
	"th{background:none;border-bottom:2px solid #000}a{color:#000;text-decoration:none}"
	"table.rows{font-size:8pt}}";

/* Chinese labels of the HTML report (the dashboard speaks both); column
 * names and summary keys stay as they are, they are identifiers. */
static const char *zh_title(enum aclm_report_kind k)
{
	static const char *const t[] = {
		[ACLM_REPORT_INVENTORY] = "证书清单",
		[ACLM_REPORT_EXPIRY] = "证书到期",
		[ACLM_REPORT_COMPLIANCE] = "策略合规",
		[ACLM_REPORT_ALGORITHMS] = "密钥算法",
		[ACLM_REPORT_PQ_READINESS] = "端点后量子就绪情况",
	};
	return (size_t)k < N_KINDS ? t[k] : "?";
}

static const char *zh_label(const char *key)
{
	static const struct {
		const char *key, *zh;
	} t[] = {
		{ "total", "总数" }, { "leaf", "终端实体证书" }, { "ca", "CA 证书" },
		{ "valid", "当前有效" }, { "expired", "已过期" }, { "not_yet_valid", "尚未生效" },
		{ "with_private_key", "存有私钥" }, { "7d", "7 天内到期" },
		{ "30d", "7 至 30 天内到期" }, { "90d", "30 至 90 天内到期" },
		{ "later", "90 天以后到期" }, { "rsa", "RSA" }, { "ecdsa", "ECDSA" },
		{ "ed25519", "Ed25519" }, { "sm2", "SM2" }, { "other", "其他密钥类型" },
		{ "x25519mlkem768", "支持 X25519MLKEM768" },
		{ "curvesm2mlkem768", "支持 curveSM2MLKEM768" }, { "both", "两者都支持" },
		{ "none", "都不支持" }, { "unknown", "未知（未扫描、不可达或未探测）" },
		{ "certificates_total", "已评估证书" }, { "certificates_compliant", "合规证书" },
		{ "certificates_violating", "违规证书" }, { "endpoints_total", "已评估端点" },
		{ "endpoints_compliant", "合规端点" }, { "endpoints_violating", "违规端点" },
		{ "sites_total", "已评估站点" }, { "sites_compliant", "合规站点" },
		{ "sites_violating", "违规站点" }, { "violations", "违规项" },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(t[i].key, key) == 0)
			return t[i].zh;
	return NULL;
}

static int rep_finish(struct rep *r, struct aclm_buf *out)
{
	char when[32];
	int rc = ACLM_OK;

	aclm_time_iso(r->now, when, sizeof(when));
	switch (r->fmt) {
	case ACLM_REPORT_CSV:
		for (size_t i = 0; rc == ACLM_OK && i < r->n_cols; i++)
			rc = aclm_buf_printf(out, "%s%s", i ? "," : "", r->cols[i]);
		if (rc == ACLM_OK)
			rc = aclm_buf_puts(out, "\r\n");
		if (rc == ACLM_OK)
			rc = aclm_buf_append(out, r->rows.data, r->rows.len);
		break;
	case ACLM_REPORT_JSON: {
		json_t *head = json_object(), *sum = json_object(), *cols = json_array();
		char *text;
		size_t len;
		for (size_t i = 0; i < r->n_sum; i++)
			json_object_set_new(sum, r->sum[i].key, json_integer(r->sum[i].v));
		for (size_t i = 0; i < r->n_cols; i++)
			json_array_append_new(cols, json_string(r->cols[i]));
		json_object_set_new(head, "report", json_string(kind_names[r->kind]));
		json_object_set_new(head, "title", json_string(r->title));
		json_object_set_new(head, "generated_at", json_string(when));
		if (r->policy[0] != '\0')
			json_object_set_new(head, "policy", json_string(r->policy));
		json_object_set_new(head, "summary", sum);
		json_object_set_new(head, "columns", cols);
		text = json_dumps(head, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		json_decref(head);
		if (text == NULL)
			return aclm_error(ACLM_ERR_NOMEM, "out of memory");
		/* The head ends in "\n}": the rows go in before that brace. */
		len = strlen(text);
		rc = len >= 2 ? aclm_buf_append(out, text, len - 2) : ACLM_ERR_NOMEM;
		if (rc == ACLM_OK)
			rc = aclm_buf_puts(out, ",\n  \"rows\": [");
		if (rc == ACLM_OK)
			rc = aclm_buf_append(out, r->rows.data, r->rows.len);
		if (rc == ACLM_OK)
			rc = aclm_buf_puts(out, r->n_rows > 0 ? "\n  ]\n}\n" : "]\n}\n");
		free(text);
		break;
	}
	case ACLM_REPORT_HTML: {
		bool zh = r->lang == ACLM_REPORT_ZH;
		const char *title = zh ? zh_title(r->kind) : r->title;
		rc = aclm_buf_printf(out, "<!DOCTYPE html>\n<html lang=\"%s\">\n<head>\n"
		                     "<meta charset=\"utf-8\">\n<meta name=\"aclm-report\" "
		                     "content=\"%s\">\n<title>aclm: %s</title>\n<style>%s</style>\n"
		                     "</head>\n<body>\n<h1>%s</h1>\n<p class=\"meta\">%s %s "
		                     "&middot; aclm %s",
		                     zh ? "zh-CN" : "en", kind_names[r->kind], title, html_style, title,
		                     zh ? "生成于" : "Generated", when, ACLM_VERSION);
		if (rc == ACLM_OK && r->policy[0] != '\0') {
			rc = aclm_buf_puts(out, zh ? " &middot; 策略 " : " &middot; policy ");
			if (rc == ACLM_OK)
				rc = html_text(out, r->policy);
		}
		if (rc == ACLM_OK)
			rc = aclm_buf_printf(out, "</p>\n<h2>%s</h2>\n<table class=\"summary\">\n",
			                     zh ? "汇总" : "Summary");
		for (size_t i = 0; rc == ACLM_OK && i < r->n_sum; i++) {
			const char *label = zh ? zh_label(r->sum[i].key) : NULL;
			rc = aclm_buf_puts(out, "<tr><th>");
			if (rc == ACLM_OK)
				rc = html_text(out, label != NULL ? label : r->sum[i].label);
			if (rc == ACLM_OK)
				rc = aclm_buf_puts(out, "</th><td class=\"n\" data-key=\"");
			if (rc == ACLM_OK)
				rc = html_text(out, r->sum[i].key);
			if (rc == ACLM_OK)
				rc = aclm_buf_printf(out, "\">%lld</td></tr>\n", (long long)r->sum[i].v);
		}
		if (rc == ACLM_OK)
			rc = aclm_buf_printf(out, zh ? "</table>\n<h2>明细（%lld 行）</h2>\n"
			                             "<table class=\"rows\">\n<thead><tr>"
			                          : "</table>\n<h2>Details (%lld rows)</h2>\n"
			                            "<table class=\"rows\">\n<thead><tr>",
			                     (long long)r->n_rows);
		for (size_t i = 0; rc == ACLM_OK && i < r->n_cols; i++)
			rc = aclm_buf_printf(out, "<th>%s</th>", r->cols[i]);
		if (rc == ACLM_OK)
			rc = aclm_buf_puts(out, "</tr></thead>\n<tbody>\n");
		if (rc == ACLM_OK)
			rc = aclm_buf_append(out, r->rows.data, r->rows.len);
		if (rc == ACLM_OK)
			rc = aclm_buf_puts(out, "</tbody>\n</table>\n</body>\n</html>\n");
		break;
	}
	}
	if (rc == ACLM_ERR_TOOBIG)
		return aclm_error(rc, "the %s report is larger than %zu bytes", kind_names[r->kind],
		                  out->max);
	return rc;
}

/* --- inventory and expiry ------------------------------------------------------ */

static const char *validity_status(const struct aclm_cert_row *c, int64_t now)
{
	return c->not_after < now ? "expired" : c->not_before > now ? "not-yet-valid" : "valid";
}

static void key_text(const struct aclm_cert_row *c, char *out, size_t n)
{
	if (strcmp(c->key_type, "ec") == 0)
		snprintf(out, n, "ECDSA %s", c->curve != NULL ? c->curve : "unnamed curve");
	else if (strcmp(c->key_type, "rsa") == 0 || strcmp(c->key_type, "dsa") == 0)
		snprintf(out, n, "%s %d", strcmp(c->key_type, "rsa") == 0 ? "RSA" : "DSA",
		         c->key_bits);
	else if (strcmp(c->key_type, "sm2") == 0)
		snprintf(out, n, "SM2");
	else if (strcmp(c->key_type, "ed25519") == 0)
		snprintf(out, n, "Ed25519");
	else if (strcmp(c->key_type, "ed448") == 0)
		snprintf(out, n, "Ed448");
	else
		snprintf(out, n, "%s", c->key_type);
}

static const char *const inventory_cols[] = {
	"id", "fingerprint", "subject", "subject_cn", "issuer", "issuer_cn", "serial", "key",
	"signature_algorithm", "not_before", "not_after", "days_left", "status", "is_ca", "sans",
	"has_private_key", "first_seen", "last_seen",
};

static int inventory_row(void *ctx, const struct aclm_cert_row *c)
{
	struct rep *r = ctx;
	const char *status = validity_status(c, r->now);
	char key[64];

	key_text(c, key, sizeof(key));
	const struct val v[] = {
		VI(c->id), VS(c->fingerprint), VS(c->subject), VS(c->subject_cn), VS(c->issuer),
		VS(c->issuer_cn), VS(c->serial), VS(key), VS(c->sig_alg), VT(c->not_before),
		VT(c->not_after), VI(aclm_days_left(c->not_after, r->now)), VS(status),
		VB(c->is_ca), VS(c->sans), VB(c->has_private_key),
		c->first_seen ? VT(c->first_seen) : VS(NULL),
		c->last_seen ? VT(c->last_seen) : VS(NULL),
	};
	sum_add(r, "total", "Certificates", 1);
	sum_add(r, "leaf", "End-entity certificates", !c->is_ca);
	sum_add(r, "ca", "CA certificates", c->is_ca);
	sum_add(r, "valid", "Valid now", strcmp(status, "valid") == 0);
	sum_add(r, "expired", "Expired", strcmp(status, "expired") == 0);
	sum_add(r, "not_yet_valid", "Not yet valid", strcmp(status, "not-yet-valid") == 0);
	sum_add(r, "with_private_key", "With a stored private key", c->has_private_key);
	return rep_row(r, v);
}

/* Buckets by the time left: expired (notAfter in the past), then within 7,
 * 30, 90 days (notAfter < now + N days), then later. */
static const char *expiry_bucket(int64_t not_after, int64_t now)
{
	if (not_after < now)
		return "expired";
	if (not_after < now + 7 * 86400)
		return "7d";
	if (not_after < now + 30 * 86400)
		return "30d";
	if (not_after < now + 90 * 86400)
		return "90d";
	return "later";
}

static const char *const expiry_cols[] = {
	"id", "fingerprint", "subject_cn", "issuer_cn", "is_ca", "sans", "not_after", "days_left",
	"bucket",
};

static void expiry_summary_init(struct rep *r)
{
	sum_add(r, "total", "Certificates", 0);
	sum_add(r, "expired", "Expired", 0);
	sum_add(r, "7d", "Expiring within 7 days", 0);
	sum_add(r, "30d", "Expiring in 7 to 30 days", 0);
	sum_add(r, "90d", "Expiring in 30 to 90 days", 0);
	sum_add(r, "later", "Expiring later than 90 days", 0);
}

static int expiry_row(void *ctx, const struct aclm_cert_row *c)
{
	struct rep *r = ctx;
	const char *bucket = expiry_bucket(c->not_after, r->now);
	const struct val v[] = {
		VI(c->id), VS(c->fingerprint), VS(c->subject_cn), VS(c->issuer_cn), VB(c->is_ca),
		VS(c->sans), VT(c->not_after), VI(aclm_days_left(c->not_after, r->now)), VS(bucket),
	};

	sum_add(r, "total", "Certificates", 1);
	sum_add(r, bucket, bucket, 1);
	return rep_row(r, v);
}

/* --- algorithms ------------------------------------------------------------------- */

#define MAX_ALGS 64
struct alg_count {
	char family[16];
	char detail[48];
	int64_t n;
};
struct alg_ctx {
	struct alg_count a[MAX_ALGS];
	size_t n;
	int64_t other;
	struct rep *r;
};

static int alg_row(void *ctx, const struct aclm_cert_row *c)
{
	struct alg_ctx *a = ctx;
	char family[16], detail[48] = "";
	size_t i;

	if (strcmp(c->key_type, "rsa") == 0) {
		snprintf(family, sizeof(family), "RSA");
		snprintf(detail, sizeof(detail), "%d", c->key_bits);
	} else if (strcmp(c->key_type, "ec") == 0) {
		snprintf(family, sizeof(family), "ECDSA");
		snprintf(detail, sizeof(detail), "%s", c->curve != NULL ? c->curve : "unnamed");
	} else if (strcmp(c->key_type, "sm2") == 0) {
		snprintf(family, sizeof(family), "SM2");
	} else if (strcmp(c->key_type, "ed25519") == 0) {
		snprintf(family, sizeof(family), "Ed25519");
	} else if (strcmp(c->key_type, "ed448") == 0) {
		snprintf(family, sizeof(family), "Ed448");
	} else if (strcmp(c->key_type, "dsa") == 0) {
		snprintf(family, sizeof(family), "DSA");
		snprintf(detail, sizeof(detail), "%d", c->key_bits);
	} else {
		snprintf(family, sizeof(family), "other");
		snprintf(detail, sizeof(detail), "%.40s", c->key_type);
	}
	for (i = 0; i < a->n; i++)
		if (strcmp(a->a[i].family, family) == 0 && strcmp(a->a[i].detail, detail) == 0)
			break;
	if (i == a->n) {
		if (a->n == MAX_ALGS) {
			a->other++;
			return ACLM_OK;
		}
		aclm_strlcpy(a->a[i].family, family, sizeof(a->a[i].family));
		aclm_strlcpy(a->a[i].detail, detail, sizeof(a->a[i].detail));
		a->a[i].n = 0;
		a->n++;
	}
	a->a[i].n++;
	return ACLM_OK;
}

static int cmp_alg(const void *x, const void *y)
{
	const struct alg_count *a = x, *b = y;
	static const char *const order[] = { "RSA", "ECDSA", "Ed25519", "Ed448", "SM2", "DSA",
	                                     "other" };
	size_t ia = 0, ib = 0;
	int c;

	while (ia < 7 && strcmp(order[ia], a->family) != 0)
		ia++;
	while (ib < 7 && strcmp(order[ib], b->family) != 0)
		ib++;
	if (ia != ib)
		return ia < ib ? -1 : 1;
	/* Numbers by value (RSA 2048 before 4096), names by text. */
	if (strlen(a->detail) != strlen(b->detail) && a->detail[0] >= '0' && a->detail[0] <= '9')
		return strlen(a->detail) < strlen(b->detail) ? -1 : 1;
	c = strcmp(a->detail, b->detail);
	return c;
}

static const char *const alg_cols[] = { "family", "detail", "certificates", "percent" };

static int algorithms_render(struct rep *r, struct alg_ctx *a)
{
	int64_t total = a->other;
	int rc = ACLM_OK;

	for (size_t i = 0; i < a->n; i++)
		total += a->a[i].n;
	qsort(a->a, a->n, sizeof(a->a[0]), cmp_alg);
	sum_add(r, "total", "Certificates", total);
	sum_add(r, "rsa", "RSA", 0);
	sum_add(r, "ecdsa", "ECDSA", 0);
	sum_add(r, "ed25519", "Ed25519", 0);
	sum_add(r, "sm2", "SM2", 0);
	sum_add(r, "other", "Other key types", a->other);
	for (size_t i = 0; rc == ACLM_OK && i < a->n; i++) {
		char pct[16], key[32];
		const struct alg_count *c = &a->a[i];
		snprintf(pct, sizeof(pct), "%.1f", total > 0 ? 100.0 * (double)c->n / (double)total
		                                             : 0.0);
		const struct val v[] = { VS(c->family), VS(c->detail), VI(c->n), VS(pct) };
		if (strcmp(c->family, "RSA") == 0)
			sum_add(r, "rsa", "RSA", c->n);
		else if (strcmp(c->family, "ECDSA") == 0)
			sum_add(r, "ecdsa", "ECDSA", c->n);
		else if (strcmp(c->family, "Ed25519") == 0)
			sum_add(r, "ed25519", "Ed25519", c->n);
		else if (strcmp(c->family, "SM2") == 0)
			sum_add(r, "sm2", "SM2", c->n);
		else
			sum_add(r, "other", "Other key types", c->n);
		/* Per size / curve too, for the charts: rsa_2048, ecdsa_P-256. */
		if (c->detail[0] != '\0' && (strcmp(c->family, "RSA") == 0 ||
		                             strcmp(c->family, "ECDSA") == 0)) {
			char label[64];
			snprintf(key, sizeof(key), "%s_%s", strcmp(c->family, "RSA") == 0 ? "rsa" : "ecdsa",
			         c->detail);
			snprintf(label, sizeof(label), "%s %s", c->family, c->detail);
			sum_add(r, key, label, c->n);
		}
		rc = rep_row(r, v);
	}
	return rc;
}

/* --- pq readiness -------------------------------------------------------------------- */

static const char *const pq_cols[] = {
	"endpoint_id", "endpoint", "ip", "sni", "scanned_at", "reachable", "pq_groups",
	"negotiated_group", "class",
};

static int pq_row(void *ctx, const struct aclm_policy_endpoint_row *e)
{
	struct rep *r = ctx;
	const char *h = e->host[0] != '\0' ? e->host : e->ip;
	char label[320];
	const char *class;
	bool known = e->scanned && e->reachable && e->pq_groups[0] != '\0';
	bool x = false, sm = false;

	if (known) {
		char groups[512];
		char *save = NULL, *tok, *p = groups;
		aclm_strlcpy(groups, e->pq_groups, sizeof(groups));
		while ((tok = strtok_r(p, ",", &save)) != NULL) {
			p = NULL;
			x = x || strcmp(tok, "X25519MLKEM768") == 0;
			sm = sm || strcmp(tok, "curveSM2MLKEM768") == 0;
		}
	}
	class = !known ? "unknown" : x && sm ? "both" : x ? "X25519MLKEM768"
	        : sm ? "curveSM2MLKEM768" : "none";
	snprintf(label, sizeof(label), strchr(h, ':') != NULL ? "[%s]:%u" : "%s:%u", h, e->port);
	const struct val v[] = {
		VI(e->id), VS(label), VS(e->ip), VS(e->sni), e->scanned ? VT(e->scanned_at) : VS(NULL),
		e->scanned ? VB(e->reachable) : VS(NULL), VS(e->pq_groups), VS(e->negotiated_group),
		VS(class),
	};
	sum_add(r, "total", "Endpoints", 1);
	sum_add(r, "x25519mlkem768", "Accepting X25519MLKEM768", x);
	sum_add(r, "curvesm2mlkem768", "Accepting curveSM2MLKEM768", sm);
	sum_add(r, "both", "Accepting both", x && sm);
	sum_add(r, "none", "Accepting neither", known && !x && !sm);
	sum_add(r, "unknown", "Unknown (not scanned, unreachable or not probed)", !known);
	return rep_row(r, v);
}

/* --- compliance ------------------------------------------------------------------------ */

static const char *const compliance_cols[] = {
	"kind", "id", "label", "ref", "status", "violations", "rules", "details",
};

static int compliance_render(struct rep *r, const struct aclm_policy_result *res)
{
	static const char *const kinds[3] = { "certificates", "endpoints", "sites" };
	static const char *const kind_labels[3] = { "Certificates", "Endpoints", "Sites" };
	struct aclm_buf rules, details;
	int rc = ACLM_OK;

	for (int k = 0; k < 3; k++) {
		char key[64], label[96];
		snprintf(key, sizeof(key), "%s_total", kinds[k]);
		snprintf(label, sizeof(label), "%s evaluated", kind_labels[k]);
		sum_add(r, key, label, res->n_total[k]);
		snprintf(key, sizeof(key), "%s_compliant", kinds[k]);
		snprintf(label, sizeof(label), "%s compliant", kind_labels[k]);
		sum_add(r, key, label, res->n_total[k] - res->n_violating[k]);
		snprintf(key, sizeof(key), "%s_violating", kinds[k]);
		snprintf(label, sizeof(label), "%s with violations", kind_labels[k]);
		sum_add(r, key, label, res->n_violating[k]);
	}
	sum_add(r, "violations", "Violations", res->n_violations);
	for (int i = 0; i < ACLM_POLICY_N_RULES; i++) {
		char key[64], label[96];
		snprintf(key, sizeof(key), "rule_%s", res->rule_names[i]);
		snprintf(label, sizeof(label), "Rule %s: subjects violating", res->rule_names[i]);
		sum_add(r, key, label, res->by_rule[i]);
	}
	aclm_buf_init(&rules, 1 << 20);
	aclm_buf_init(&details, 1 << 20);
	for (size_t i = 0; rc == ACLM_OK && i < res->n; i++) {
		const struct aclm_policy_subject *s = &res->subjects[i];
		aclm_buf_reset(&rules);
		aclm_buf_reset(&details);
		for (size_t k = 0; rc == ACLM_OK && k < s->n_v; k++) {
			rc = aclm_buf_printf(&rules, "%s%s", k ? " " : "", s->v[k].rule);
			if (rc == ACLM_OK)
				rc = aclm_buf_printf(&details, "%s%s: %s", k ? "; " : "", s->v[k].rule,
				                     s->v[k].detail);
		}
		if (rc != ACLM_OK)
			break;
		const struct val v[] = {
			VS(aclm_subject_kind_name(s->kind)),
			s->kind != ACLM_SUBJECT_SITE ? VI(s->id) : VS(NULL), VS(s->label), VS(s->ref),
			VS(s->n_v == 0 ? "compliant" : "violating"), VI((int64_t)s->n_v),
			VS(aclm_buf_cstr(&rules)), VS(aclm_buf_cstr(&details)),
		};
		rc = rep_row(r, v);
	}
	aclm_buf_free(&rules);
	aclm_buf_free(&details);
	return rc;
}

/* --- entry point -------------------------------------------------------------------------- */

int aclm_report_render(struct aclm_store *st, enum aclm_report_kind kind,
                       enum aclm_report_format fmt, const struct aclm_policy *policy,
                       int64_t now, struct aclm_buf *out)
{
	return aclm_report_render_lang(st, kind, fmt, ACLM_REPORT_EN, policy, now, out);
}

int aclm_report_render_lang(struct aclm_store *st, enum aclm_report_kind kind,
                            enum aclm_report_format fmt, enum aclm_report_lang lang,
                            const struct aclm_policy *policy, int64_t now,
                            struct aclm_buf *out)
{
	struct rep r = { .fmt = fmt, .lang = lang, .kind = kind, .now = now };
	struct aclm_cert_filter f = { .now = now };
	struct aclm_policy *own = NULL;
	int rc = ACLM_OK;

	aclm_buf_init(&r.rows, out->max);
	switch (kind) {
	case ACLM_REPORT_INVENTORY:
		r.title = "Certificate inventory";
		r.cols = inventory_cols;
		r.n_cols = sizeof(inventory_cols) / sizeof(inventory_cols[0]);
		f.sort = ACLM_SORT_ID;
		sum_add(&r, "total", "Certificates", 0);
		rc = aclm_store_list_certs(st, &f, inventory_row, &r);
		break;
	case ACLM_REPORT_EXPIRY:
		r.title = "Certificate expiry";
		r.cols = expiry_cols;
		r.n_cols = sizeof(expiry_cols) / sizeof(expiry_cols[0]);
		f.sort = ACLM_SORT_NOT_AFTER;
		expiry_summary_init(&r);
		rc = aclm_store_list_certs(st, &f, expiry_row, &r);
		break;
	case ACLM_REPORT_ALGORITHMS: {
		struct alg_ctx *a = calloc(1, sizeof(*a));
		r.title = "Key algorithms";
		r.cols = alg_cols;
		r.n_cols = sizeof(alg_cols) / sizeof(alg_cols[0]);
		if (a == NULL) {
			rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
			break;
		}
		f.sort = ACLM_SORT_ID;
		rc = aclm_store_list_certs(st, &f, alg_row, a);
		if (rc == ACLM_OK)
			rc = algorithms_render(&r, a);
		free(a);
		break;
	}
	case ACLM_REPORT_PQ_READINESS:
		r.title = "Post-quantum readiness of endpoints";
		r.cols = pq_cols;
		r.n_cols = sizeof(pq_cols) / sizeof(pq_cols[0]);
		sum_add(&r, "total", "Endpoints", 0);
		rc = aclm_store_policy_endpoints(st, pq_row, &r);
		break;
	case ACLM_REPORT_COMPLIANCE: {
		struct aclm_policy_result res;
		r.title = "Policy compliance";
		r.cols = compliance_cols;
		r.n_cols = sizeof(compliance_cols) / sizeof(compliance_cols[0]);
		if (policy == NULL && (rc = aclm_policy_load(st, NULL, &own)) != ACLM_OK)
			break;
		if ((rc = aclm_policy_evaluate(st, policy != NULL ? policy : own, now, &res)) !=
		    ACLM_OK)
			break;
		aclm_strlcpy(r.policy, res.policy, sizeof(r.policy));
		rc = compliance_render(&r, &res);
		aclm_policy_result_free(&res);
		break;
	}
	default:
		rc = aclm_error(ACLM_ERR_USAGE, "unknown report kind %d", (int)kind);
	}
	if (rc == ACLM_OK)
		rc = rep_finish(&r, out);
	aclm_buf_free(&r.rows);
	aclm_policy_free(own);
	return rc;
}

/* --- plain text (e-mail and chat channels) ---------------------------------------- */

int aclm_report_text(struct aclm_store *st, enum aclm_report_kind kind,
                     const struct aclm_policy *policy, int64_t now, size_t max_rows,
                     struct aclm_buf *out)
{
	struct aclm_buf j;
	json_t *doc, *v, *row;
	json_error_t e;
	const char *k;
	size_t i;
	int rc;

	aclm_buf_init(&j, out->max);
	if ((rc = aclm_report_render(st, kind, ACLM_REPORT_JSON, policy, now, &j)) != ACLM_OK) {
		aclm_buf_free(&j);
		return rc;
	}
	doc = json_loadb((const char *)j.data, j.len, 0, &e);
	aclm_buf_free(&j);
	if (doc == NULL)
		return aclm_error(ACLM_ERR_PARSE, "report text: %s", e.text);
	rc = aclm_buf_printf(out, "%s\nGenerated %s%s%s\n\nSummary\n",
	                     json_string_value(json_object_get(doc, "title")),
	                     json_string_value(json_object_get(doc, "generated_at")),
	                     json_object_get(doc, "policy") ? ", policy " : "",
	                     json_object_get(doc, "policy")
	                     ? json_string_value(json_object_get(doc, "policy")) : "");
	json_object_foreach(json_object_get(doc, "summary"), k, v)
		if (rc == ACLM_OK)
			rc = aclm_buf_printf(out, "  %-28s %lld\n", k, (long long)json_integer_value(v));
	if (rc == ACLM_OK && max_rows > 0 && json_array_size(json_object_get(doc, "rows")) > 0)
		rc = aclm_buf_printf(out, "\nRows (%zu of %zu)\n",
		                     json_array_size(json_object_get(doc, "rows")) < max_rows
		                     ? json_array_size(json_object_get(doc, "rows")) : max_rows,
		                     json_array_size(json_object_get(doc, "rows")));
	json_array_foreach(json_object_get(doc, "rows"), i, row) {
		size_t c;
		json_t *col;
		if (i >= max_rows || rc != ACLM_OK)
			break;
		rc = aclm_buf_puts(out, " ");
		json_array_foreach(json_object_get(doc, "columns"), c, col) {
			json_t *cell = json_object_get(row, json_string_value(col));
			char *s;
			if (rc != ACLM_OK || cell == NULL || json_is_null(cell))
				continue;
			s = json_is_string(cell) ? NULL : json_dumps(cell, JSON_ENCODE_ANY);
			rc = aclm_buf_printf(out, " %s=%s", json_string_value(col),
			                     s != NULL ? s : json_string_value(cell));
			free(s);
		}
		if (rc == ACLM_OK)
			rc = aclm_buf_putc(out, '\n');
	}
	json_decref(doc);
	if (rc == ACLM_ERR_TOOBIG)
		return aclm_error(rc, "the %s report text is larger than %zu bytes", kind_names[kind],
		                  out->max);
	return rc;
}
