/* Delivery with libcurl: an HTTP POST (webhooks and robots) or an SMTP
 * transaction that insists on TLS (STARTTLS for smtp://).  Errors name the
 * peer by its redacted URL and say what failed; secrets never appear. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "aclm/err.h"
#include "aclm/str.h"
#include "notify-int.h"

#define RESPONSE_MAX 4096   /* what we keep of a receiver's answer, for the error */

struct sink {
	char data[RESPONSE_MAX + 1];
	size_t len;
};

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct sink *s = arg;
	size_t len = size * n, room = RESPONSE_MAX - s->len;

	if (len < room)
		room = len;
	memcpy(s->data + s->len, p, room);
	s->len += room;
	s->data[s->len] = '\0';
	return len;
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
	const volatile int *stop = arg;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return stop != NULL && *stop ? 1 : 0;
}

static void common_opts(CURL *c, const char *ca_file, int64_t timeout, const volatile int *stop,
                        char *errbuf)
{
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)(timeout > 0 ? timeout : 30));
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)(timeout > 0 && timeout < 10 ? timeout : 10));
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)stop);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (ca_file != NULL)
		curl_easy_setopt(c, CURLOPT_CAINFO, ca_file);
}

/* A one-line excerpt of text (control characters become spaces). */
static void excerpt(const char *in, size_t len, char *out, size_t n)
{
	size_t o = 0;

	for (size_t i = 0; i < len && o + 1 < n && o < 160; i++)
		out[o++] = ((unsigned char)in[i] < 0x20 || in[i] == 0x7f) ? ' ' : in[i];
	out[o] = '\0';
}

/* Chat robots answer HTTP 200 also when they refuse a message (bad
 * signature, keyword filter, rate limit) and say so in the body:
 * DingTalk/WeCom {"errcode": n, "errmsg"}, Feishu {"code": n, "msg"}. */
static int robot_refused(const char *kind, const struct sink *resp, const char *peer)
{
	const char *code_key = NULL, *msg_key = NULL;
	json_t *j, *code;
	int rc = ACLM_OK;

	if (strcmp(kind, "dingtalk") == 0 || strcmp(kind, "wecom") == 0) {
		code_key = "errcode";
		msg_key = "errmsg";
	} else if (strcmp(kind, "feishu") == 0) {
		code_key = "code";
		msg_key = "msg";
	} else {
		return ACLM_OK;
	}
	j = json_loadb(resp->data, resp->len, 0, NULL);
	code = json_object_get(j, code_key);
	if (json_is_integer(code) && json_integer_value(code) != 0) {
		char text[200];
		const char *m = json_string_value(json_object_get(j, msg_key));
		excerpt(m != NULL ? m : "", m != NULL ? strlen(m) : 0, text, sizeof(text));
		rc = aclm_error(ACLM_ERR_IO, "POST %s: the %s robot refused the message: %s %lld%s%s",
		                peer, kind, code_key, (long long)json_integer_value(code),
		                text[0] ? ": " : "", text);
	}
	json_decref(j);
	return rc;
}

int notify_deliver_post(const char *kind, const struct aclm_notify_post *p, const char *ca_file,
                        int64_t timeout, const volatile int *stop)
{
	char errbuf[CURL_ERROR_SIZE] = "", peer[300];
	struct curl_slist *headers = NULL;
	struct sink *resp = calloc(1, sizeof(*resp));
	CURL *c = curl_easy_init();
	long status = 0;
	CURLcode cc;
	int rc = ACLM_OK;

	notify_redact_url(p->url, peer, sizeof(peer));
	if (c == NULL || resp == NULL) {
		rc = aclm_error(ACLM_ERR_NOMEM, "POST %s: out of memory", peer);
		goto out;
	}
	for (size_t i = 0; i < p->n_headers; i++) {
		struct curl_slist *h = curl_slist_append(headers, p->headers[i]);
		if (h == NULL) {
			rc = aclm_error(ACLM_ERR_NOMEM, "POST %s: out of memory", peer);
			goto out;
		}
		headers = h;
	}
	headers = curl_slist_append(headers, "Expect:");
	common_opts(c, ca_file, timeout, stop, errbuf);
	curl_easy_setopt(c, CURLOPT_URL, p->url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "aclm/" ACLM_VERSION);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, p->body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)p->body_len);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
	cc = curl_easy_perform(c);
	if (cc != CURLE_OK) {
		rc = aclm_error(ACLM_ERR_IO, "POST %s: %s", peer,
		                cc == CURLE_ABORTED_BY_CALLBACK ? "abandoned (shutting down)" :
		                errbuf[0] != '\0' ? errbuf : curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status > 299) {
		char text[200];
		excerpt(resp->data, resp->len, text, sizeof(text));
		rc = aclm_error(ACLM_ERR_IO, "POST %s: HTTP %ld%s%s", peer, status,
		                text[0] != '\0' ? ": " : "", text);
	} else {
		rc = robot_refused(kind, resp, peer);
	}
out:
	curl_slist_free_all(headers);
	if (c != NULL)
		curl_easy_cleanup(c);
	free(resp);
	return rc;
}

struct upload {
	const char *data;
	size_t len, off;
};

static size_t on_read(char *buf, size_t size, size_t n, void *arg)
{
	struct upload *u = arg;
	size_t room = size * n, left = u->len - u->off;

	if (left < room)
		room = left;
	memcpy(buf, u->data + u->off, room);
	u->off += room;
	return room;
}

int notify_deliver_email(const struct notify_smtp *m, const char *message, size_t len,
                         int64_t timeout, const volatile int *stop)
{
	char errbuf[CURL_ERROR_SIZE] = "", peer[300], from[300];
	struct curl_slist *rcpt = NULL;
	struct upload up = { .data = message, .len = len };
	CURL *c = curl_easy_init();
	long code = 0;
	CURLcode cc;
	int rc = ACLM_OK;

	notify_redact_url(m->url, peer, sizeof(peer));
	if (c == NULL) {
		rc = aclm_error(ACLM_ERR_NOMEM, "SMTP %s: out of memory", peer);
		goto out;
	}
	for (size_t i = 0; i < m->n_to; i++) {
		char to[300];
		struct curl_slist *r;
		snprintf(to, sizeof(to), "<%s>", m->to[i]);
		if ((r = curl_slist_append(rcpt, to)) == NULL) {
			rc = aclm_error(ACLM_ERR_NOMEM, "SMTP %s: out of memory", peer);
			goto out;
		}
		rcpt = r;
	}
	snprintf(from, sizeof(from), "<%s>", m->from);
	common_opts(c, m->ca_file, timeout, stop, errbuf);
	curl_easy_setopt(c, CURLOPT_URL, m->url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	/* smtp://: STARTTLS or nothing (a server that does not offer it fails
	 * the delivery); smtps://: TLS from the first byte. */
	curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
	curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
	if (m->username != NULL) {
		curl_easy_setopt(c, CURLOPT_USERNAME, m->username);
		curl_easy_setopt(c, CURLOPT_PASSWORD, m->password != NULL ? m->password : "");
	}
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
	curl_easy_setopt(c, CURLOPT_READDATA, &up);
	curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	if (cc != CURLE_OK) {
		const char *what = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(cc);
		if (cc == CURLE_ABORTED_BY_CALLBACK)
			what = "abandoned (shutting down)";
		if (cc == CURLE_LOGIN_DENIED)
			rc = aclm_error(ACLM_ERR_IO, "SMTP %s: authentication as '%s' refused (wrong user "
			                "name or password?): %s", peer, m->username ? m->username : "",
			                what);
		else if (cc == CURLE_USE_SSL_FAILED)
			rc = aclm_error(ACLM_ERR_IO, "SMTP %s: the server offers no STARTTLS (%s)", peer,
			                what);
		else if (code >= 400)
			rc = aclm_error(ACLM_ERR_IO, "SMTP %s: server answered %ld: %s", peer, code, what);
		else
			rc = aclm_error(ACLM_ERR_IO, "SMTP %s: %s", peer, what);
	}
out:
	curl_slist_free_all(rcpt);
	if (c != NULL)
		curl_easy_cleanup(c);
	return rc;
}
