/* Unit tests of src/notify: payloads of every channel kind, signatures
 * (known answers computed with `openssl dgst -sha256 -hmac`), e-mail
 * messages, channel configuration (sealed secrets, refused settings) and
 * rule parameters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "aclm/buf.h"
#include "aclm/err.h"
#include "aclm/keywrap.h"
#include "aclm/notify.h"

static const struct aclm_notify_msg msg = {
	.alert_id = 42,
	.rule = "expiry-30",
	.kind = "expiry",
	.target = "www.example.com",
	.subject = "[aclm] certificate www.example.com expires in 7 days",
	.text = "line one\nline two",
	.created_at = 1700000000,
};

/* printf '%s' BODY | openssl dgst -sha256 -hmac aclm-test-secret */
static void test_hmac_known_answer(void **state)
{
	char hex[65];

	(void)state;
	assert_int_equal(aclm_notify_hmac_hex("aclm-test-secret", 16, "{\"text\":\"hi\"}", 13, hex),
	                 ACLM_OK);
	assert_string_equal(hex, "0db6906554f8db15b88a3367abd87e432e1329b7981f7177752ec8619e254dfe");
}

/* printf '1700000000000\nSEC123' | openssl dgst -sha256 -hmac SEC123 -binary | base64 */
static void test_dingtalk_sign(void **state)
{
	char sign[128];

	(void)state;
	assert_int_equal(aclm_notify_dingtalk_sign("SEC123", 1700000000000LL, sign, sizeof(sign)),
	                 ACLM_OK);
	/* lkcPI1uoxBY1gUnCnnPH1Kkru0Hqjo7rFpA3haIVhEQ= percent-encoded */
	assert_string_equal(sign, "lkcPI1uoxBY1gUnCnnPH1Kkru0Hqjo7rFpA3haIVhEQ%3D");
	assert_int_equal(aclm_notify_dingtalk_sign("SEC123", 1700000000000LL, sign, 10),
	                 ACLM_ERR_TOOBIG);
}

/* printf '' | openssl dgst -sha256 -mac HMAC -macopt "key:1700000000<LF>SEC123" -binary | base64 */
static void test_feishu_sign(void **state)
{
	char sign[64];

	(void)state;
	assert_int_equal(aclm_notify_feishu_sign("SEC123", 1700000000, sign, sizeof(sign)), ACLM_OK);
	assert_string_equal(sign, "j/tImR0k8vYXRsYw0+GHVQkV1v/J/8obOuMU7PE/KDo=");
}

static json_t *body_of(const struct aclm_notify_post *p)
{
	json_t *j = json_loadb(p->body, p->body_len, 0, NULL);

	assert_non_null(j);
	return j;
}

static const char *header(const struct aclm_notify_post *p, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < p->n_headers; i++)
		if (strncmp(p->headers[i], name, n) == 0 && p->headers[i][n] == ':')
			return p->headers[i] + n + 2;
	return NULL;
}

static void test_webhook_payload(void **state)
{
	struct aclm_notify_post p;
	char hex[65];
	json_t *j;

	(void)state;
	assert_int_equal(aclm_notify_build_post("webhook", "https://hooks.example/x", "aclm-test-secret",
	                                        &msg, 1700000100, &p), ACLM_OK);
	assert_string_equal(p.url, "https://hooks.example/x");
	assert_string_equal(p.body,
		"{\"id\":42,\"rule\":\"expiry-30\",\"kind\":\"expiry\",\"target\":\"www.example.com\","
		"\"subject\":\"[aclm] certificate www.example.com expires in 7 days\","
		"\"text\":\"line one\\nline two\",\"created_at\":\"2023-11-14T22:13:20Z\","
		"\"timestamp\":1700000100}");
	assert_string_equal(header(&p, "X-Aclm-Timestamp"), "1700000100");
	/* openssl dgst -sha256 -hmac aclm-test-secret of the body above */
	assert_string_equal(header(&p, "X-Aclm-Signature"),
	                    "sha256=b857fd9fac699b786520c56f17dd7537c31ee126bc44d837c8dae39dde2e25db");
	/* and it is the HMAC of exactly the bytes sent */
	assert_int_equal(aclm_notify_hmac_hex("aclm-test-secret", 16, p.body, p.body_len, hex),
	                 ACLM_OK);
	assert_string_equal(header(&p, "X-Aclm-Signature") + 7, hex);
	j = body_of(&p);
	assert_int_equal(json_integer_value(json_object_get(j, "timestamp")), 1700000100);
	json_decref(j);
	aclm_notify_post_clear(&p);

	/* no secret: no signature, still the timestamp */
	assert_int_equal(aclm_notify_build_post("webhook", "http://127.0.0.1:1/", NULL, &msg, 5, &p),
	                 ACLM_OK);
	assert_null(header(&p, "X-Aclm-Signature"));
	assert_string_equal(header(&p, "X-Aclm-Timestamp"), "5");
	aclm_notify_post_clear(&p);
}

static void test_robot_payloads(void **state)
{
	static const char text[] = "[aclm] certificate www.example.com expires in 7 days\n\n"
	                           "line one\nline two";
	struct aclm_notify_post p;
	json_t *j;

	(void)state;
	assert_int_equal(aclm_notify_build_post("slack", "https://hooks.slack.example/T/B/x", NULL,
	                                        &msg, 1700000000, &p), ACLM_OK);
	j = body_of(&p);
	assert_int_equal(json_object_size(j), 1);
	assert_string_equal(json_string_value(json_object_get(j, "text")), text);
	json_decref(j);
	assert_null(header(&p, "X-Aclm-Signature"));
	aclm_notify_post_clear(&p);

	assert_int_equal(aclm_notify_build_post("wecom", "https://qyapi.example/send?key=k", NULL,
	                                        &msg, 1700000000, &p), ACLM_OK);
	assert_string_equal(p.body, "{\"msgtype\":\"text\",\"text\":{\"content\":\"[aclm] certificate "
	                    "www.example.com expires in 7 days\\n\\nline one\\nline two\"}}");
	assert_string_equal(p.url, "https://qyapi.example/send?key=k");
	aclm_notify_post_clear(&p);

	/* DingTalk: same body, the signature in the query */
	assert_int_equal(aclm_notify_build_post("dingtalk", "https://oapi.example/robot/send?"
	                                        "access_token=t", "SEC123", &msg, 1700000000, &p),
	                 ACLM_OK);
	assert_string_equal(p.url, "https://oapi.example/robot/send?access_token=t&timestamp="
	                    "1700000000000&sign=lkcPI1uoxBY1gUnCnnPH1Kkru0Hqjo7rFpA3haIVhEQ%3D");
	j = body_of(&p);
	assert_string_equal(json_string_value(json_object_get(j, "msgtype")), "text");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "text"), "content")),
	                    text);
	json_decref(j);
	aclm_notify_post_clear(&p);
	/* without a secret the URL is left alone; '?' added when it has none */
	assert_int_equal(aclm_notify_build_post("dingtalk", "https://oapi.example/r", NULL, &msg,
	                                        1700000000, &p), ACLM_OK);
	assert_string_equal(p.url, "https://oapi.example/r");
	aclm_notify_post_clear(&p);
	assert_int_equal(aclm_notify_build_post("dingtalk", "https://oapi.example/r", "SEC123", &msg,
	                                        1700000000, &p), ACLM_OK);
	assert_true(strncmp(p.url, "https://oapi.example/r?timestamp=1700000000000&sign=", 51) == 0);
	aclm_notify_post_clear(&p);

	/* Feishu: msg_type/content, and timestamp + sign in the body */
	assert_int_equal(aclm_notify_build_post("feishu", "https://open.example/hook/x", "SEC123",
	                                        &msg, 1700000000, &p), ACLM_OK);
	j = body_of(&p);
	assert_string_equal(json_string_value(json_object_get(j, "msg_type")), "text");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "content"), "text")),
	                    text);
	assert_string_equal(json_string_value(json_object_get(j, "timestamp")), "1700000000");
	assert_string_equal(json_string_value(json_object_get(j, "sign")),
	                    "j/tImR0k8vYXRsYw0+GHVQkV1v/J/8obOuMU7PE/KDo=");
	json_decref(j);
	aclm_notify_post_clear(&p);
	assert_int_equal(aclm_notify_build_post("feishu", "https://open.example/hook/x", NULL, &msg,
	                                        1700000000, &p), ACLM_OK);
	assert_string_equal(p.body, "{\"msg_type\":\"text\",\"content\":{\"text\":\"[aclm] certificate "
	                    "www.example.com expires in 7 days\\n\\nline one\\nline two\"}}");
	aclm_notify_post_clear(&p);

	assert_int_equal(aclm_notify_build_post("email", "smtp://x", NULL, &msg, 1, &p),
	                 ACLM_ERR_USAGE);
}

static void test_email_message(void **state)
{
	const char *to[] = { "ops@example.com", "sec@example.com" };
	struct aclm_notify_msg m = msg;
	struct aclm_buf b;
	const char *s;

	(void)state;
	aclm_buf_init(&b, 1 << 20);
	m.text = "first\n.dot line\nlast";
	assert_int_equal(aclm_notify_build_email("aclm@example.com", to, 2, m.subject, m.text,
	                                         1700000000, "id1@host", &b), ACLM_OK);
	s = aclm_buf_cstr(&b);
	assert_non_null(strstr(s, "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"));
	assert_non_null(strstr(s, "From: <aclm@example.com>\r\n"));
	assert_non_null(strstr(s, "To: <ops@example.com>,\r\n <sec@example.com>\r\n"));
	assert_non_null(strstr(s, "Message-ID: <id1@host>\r\n"));
	assert_non_null(strstr(s, "Subject: [aclm] certificate www.example.com expires in 7 days\r\n"));
	assert_non_null(strstr(s, "Content-Type: text/plain; charset=UTF-8\r\n"));
	assert_non_null(strstr(s, "\r\n\r\nfirst\r\n.dot line\r\nlast\r\n"));
	assert_null(strstr(s, "\n\n"));  /* no bare LF anywhere */
	aclm_buf_reset(&b);

	/* A hostile subject cannot add headers; non-ASCII is RFC 2047 */
	assert_int_equal(aclm_notify_build_email("aclm@example.com", to, 1,
	                                         "x\r\nBcc: evil@example.com", "t", 0, "i@h", &b),
	                 ACLM_OK);
	assert_null(strstr(aclm_buf_cstr(&b), "\r\nBcc:"));
	assert_non_null(strstr(aclm_buf_cstr(&b), "Subject: x  Bcc: evil@example.com\r\n"));
	aclm_buf_reset(&b);
	/* "Zertifikat läuft ab" */
	assert_int_equal(aclm_notify_build_email("aclm@example.com", to, 1,
	                                         "Zertifikat l\xc3\xa4uft ab", "t", 0, "i@h", &b),
	                 ACLM_OK);
	/* printf 'Zertifikat läuft ab' | base64 */
	assert_non_null(strstr(aclm_buf_cstr(&b), "Subject: =?UTF-8?B?WmVydGlmaWthdCBsw6R1ZnQgYWI=?="));
	aclm_buf_reset(&b);

	/* addresses with header syntax are refused */
	assert_int_equal(aclm_notify_build_email("a@b>, <c@d", to, 1, "s", "t", 0, "i@h", &b),
	                 ACLM_ERR_USAGE);
	to[0] = "ops@example.com\r\nBcc: x@y";
	assert_int_equal(aclm_notify_build_email("aclm@example.com", to, 1, "s", "t", 0, "i@h", &b),
	                 ACLM_ERR_USAGE);
	assert_int_equal(aclm_notify_build_email("aclm@example.com", to, 0, "s", "t", 0, "i@h", &b),
	                 ACLM_ERR_USAGE);
	aclm_buf_free(&b);
}

static void test_channel_config(void **state)
{
	const char *to[] = { "ops@example.com" };
	struct aclm_notify_channel_input in;
	struct aclm_kek kek;
	char *config = NULL;
	json_t *j, *pub;

	(void)state;
	memset(&kek, 0x5a, sizeof(kek));
	memset(&in, 0, sizeof(in));
	in.kind = "email";
	in.name = "mail";
	in.url = "smtp://127.0.0.1:2525";
	in.from = "aclm@example.com";
	in.to = to;
	in.n_to = 1;
	in.username = "aclm";
	in.password = strdup("very secret password");
	assert_int_equal(aclm_notify_channel_config(&in, &kek, &config), ACLM_OK);
	aclm_notify_channel_input_wipe(&in);
	assert_null(in.password);
	assert_null(strstr(config, "very secret"));
	j = json_loads(config, 0, NULL);
	assert_non_null(json_object_get(j, "password_sealed"));
	assert_null(json_object_get(j, "password"));
	assert_true(aclm_notify_channel_has_secret(config));
	pub = aclm_notify_channel_public("email", config);
	assert_string_equal(json_string_value(json_object_get(pub, "password")), "(sealed)");
	assert_null(json_object_get(pub, "password_sealed"));
	assert_string_equal(json_string_value(json_object_get(pub, "url")), "smtp://127.0.0.1:2525");
	json_decref(pub);
	json_decref(j);
	free(config);

	/* robots: the URL is shown without path and query (it carries tokens) */
	memset(&in, 0, sizeof(in));
	in.kind = "dingtalk";
	in.name = "ding";
	in.url = "https://oapi.example/robot/send?access_token=secret-token";
	assert_int_equal(aclm_notify_channel_config(&in, NULL, &config), ACLM_OK);
	assert_false(aclm_notify_channel_has_secret(config));
	pub = aclm_notify_channel_public("dingtalk", config);
	assert_string_equal(json_string_value(json_object_get(pub, "url")), "https://oapi.example/...");
	json_decref(pub);
	free(config);

	/* refused: plain smtp without STARTTLS is not an option, e-mail settings
	 * on a webhook, a secret for Slack, no KEK for a secret, bad names */
	in.kind = "email";
	in.url = "http://127.0.0.1/";
	in.from = "a@example.com";
	in.to = to;
	in.n_to = 1;
	assert_int_equal(aclm_notify_channel_config(&in, NULL, &config), ACLM_ERR_USAGE);
	in.kind = "webhook";
	in.url = "https://x.example/";
	assert_int_equal(aclm_notify_channel_config(&in, NULL, &config), ACLM_ERR_USAGE);
	in.from = NULL;
	in.n_to = 0;
	in.kind = "slack";
	in.secret = strdup("s");
	assert_int_equal(aclm_notify_channel_config(&in, &kek, &config), ACLM_ERR_USAGE);
	in.kind = "webhook";
	assert_int_equal(aclm_notify_channel_config(&in, NULL, &config), ACLM_ERR_USAGE);
	in.name = "bad name";
	assert_int_equal(aclm_notify_channel_config(&in, &kek, &config), ACLM_ERR_USAGE);
	in.name = "ok";
	in.kind = "pager";
	assert_int_equal(aclm_notify_channel_config(&in, &kek, &config), ACLM_ERR_USAGE);
	in.kind = "webhook";
	in.url = "https://x.example/\r\nX: y";
	assert_int_equal(aclm_notify_channel_config(&in, &kek, &config), ACLM_ERR_USAGE);
	aclm_notify_channel_input_wipe(&in);
}

static void test_rule_params(void **state)
{
	(void)state;
	assert_int_equal(aclm_notify_rule_check("expiry", "{}"), ACLM_OK);
	assert_int_equal(aclm_notify_rule_check("expiry", "{\"days\":[1,30,7,7],\"name\":\"*.e\","
	                                        "\"issuer\":\"R3\",\"include_ca\":true}"), ACLM_OK);
	assert_int_equal(aclm_notify_rule_check("expiry", "{\"days\":[]}"), ACLM_ERR_USAGE);
	assert_int_equal(aclm_notify_rule_check("expiry", "{\"days\":[0]}"), ACLM_ERR_USAGE);
	assert_int_equal(aclm_notify_rule_check("expiry", "{\"days\":[\"7\"]}"), ACLM_ERR_USAGE);
	assert_int_equal(aclm_notify_rule_check("expiry", "{\"days\":[1,2,3,4,5,6,7,8,9,10,11,12,13,"
	                                        "14,15,16,17]}"), ACLM_ERR_USAGE);
	assert_int_equal(aclm_notify_rule_check("expiry", "{\"all\":true}"), ACLM_ERR_USAGE);
	assert_int_equal(aclm_notify_rule_check("cert-changed", "{\"all\":true}"), ACLM_OK);
	assert_int_equal(aclm_notify_rule_check("ghost", "{\"days\":[1]}"), ACLM_ERR_USAGE);
	assert_int_equal(aclm_notify_rule_check("ghost", "{\"name\":3}"), ACLM_ERR_USAGE);
	assert_int_equal(aclm_notify_rule_check("ghost", "[]"), ACLM_ERR_USAGE);
	assert_int_equal(aclm_notify_rule_check("ghost", "{"), ACLM_ERR_USAGE);
	assert_int_equal(aclm_notify_rule_check("pager", "{}"), ACLM_ERR_USAGE);
	for (const char *const *k = aclm_notify_rule_kinds; *k != NULL; k++)
		assert_int_equal(aclm_notify_rule_check(*k, "{\"name\":\"*\"}"), ACLM_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hmac_known_answer),
		cmocka_unit_test(test_dingtalk_sign),
		cmocka_unit_test(test_feishu_sign),
		cmocka_unit_test(test_webhook_payload),
		cmocka_unit_test(test_robot_payloads),
		cmocka_unit_test(test_email_message),
		cmocka_unit_test(test_channel_config),
		cmocka_unit_test(test_rule_params),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
