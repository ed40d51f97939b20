/* libFuzzer driver for policy documents (YAML and JSON, src/policy/rules.c):
 * any input either fails with a message or gives a policy whose normalised
 * JSON parses again to the same document; a parsed policy is then applied
 * to a few certificate and endpoint rows (globs, CIDR, wildcards from the
 * input meet names).  Seed corpus: tests/fuzz/corpus/policy/. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aclm/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void apply(const struct aclm_policy *p)
{
	static const char *const sans[] = {
		"DNS:www.example.com,DNS:example.com", "DNS:*.example.com,IP:10.0.0.1",
		"DNS:*.*.a.b,IP:2001:db8::1", "",
	};
	struct aclm_cert_row r;
	struct aclm_policy_endpoint_row e = {
		.id = 1, .host = "www.example.com", .ip = "10.0.0.1", .sni = "www.example.com",
		.port = 443, .scanned = true, .reachable = true, .pq_groups = "X25519MLKEM768,none",
		.negotiated_group = "X25519", .leaf_cert_id = 1, .leaf_spki = "aa",
		.leaf_sans = "DNS:www.example.com",
	};
	struct aclm_policy_eval *ev = NULL;
	struct aclm_policy_result res;

	if (aclm_policy_eval_new(p, 1790000000, &ev) != 0)
		return;
	for (size_t i = 0; i < sizeof(sans) / sizeof(sans[0]); i++) {
		memset(&r, 0, sizeof(r));
		r.id = (int64_t)i + 1;
		memcpy(r.spki, i < 2 ? "aa" : "bb", 3);
		r.subject = r.issuer = "CN=x";
		r.subject_cn = i == 3 ? "cn.example.com" : NULL;
		r.issuer_cn = "Issuer";
		r.serial = "1";
		r.not_before = 1780000000;
		r.not_after = 1780000000 + (int64_t)i * 100 * 86400;
		r.key_type = i == 1 ? "rsa" : "ec";
		r.key_bits = 256;
		r.curve = i == 1 ? NULL : "P-256";
		r.sig_alg = "ecdsa-with-SHA256";
		r.level = "";
		r.sans = sans[i];
		aclm_policy_eval_cert(ev, &r);
	}
	aclm_policy_eval_endpoint(ev, &e);
	if (aclm_policy_eval_finish(ev, &res) == 0) {
		json_decref(aclm_policy_result_json(&res, false, 0, 0));
		aclm_policy_result_free(&res);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct aclm_policy *p = NULL, *q = NULL;
	json_t *a, *b;
	char *text;

	if (aclm_policy_parse((const char *)data, size, "fuzz", &p) != 0)
		return 0;
	a = aclm_policy_json(p);
	text = json_dumps(a, JSON_COMPACT);
	if (text == NULL || aclm_policy_parse(text, strlen(text), "again", &q) != 0)
		abort();
	b = aclm_policy_json(q);
	if (!json_equal(a, b))
		abort();
	apply(p);
	free(text);
	json_decref(a);
	json_decref(b);
	aclm_policy_free(p);
	aclm_policy_free(q);
	return 0;
}
