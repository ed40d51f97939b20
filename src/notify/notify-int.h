/* Inside the notify module: shared by channels.c, deliver.c, rules.c,
 * run.c and worker.c. */
#ifndef ACLM_NOTIFY_INT_H
#define ACLM_NOTIFY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "aclm/notify.h"

struct aclm_kek;

/* Bounds of what one alert carries (hostile certificates can have long
 * names; the text is cut, never refused). */
#define NOTIFY_MAX_SUBJECT 200
#define NOTIFY_MAX_TEXT 4000
#define NOTIFY_MAX_ERROR 400

/* Base64 (standard alphabet, padded) into a malloc'd string. */
char *notify_base64(const unsigned char *in, size_t len);
/* Decode; ACLM_ERR_PARSE on junk.  *out malloc'd. */
int notify_unbase64(const char *in, unsigned char **out, size_t *out_len);

/* The plain secret stored sealed under field ("password", "secret") of a
 * channel's config; *out NULL when the channel has none.  The caller wipes
 * and frees it.  kek is loaded on first need into *kek (*have_kek). */
int notify_channel_secret(const char *channel, json_t *config, const char *field,
                          const struct aclm_notify_opts *o, struct aclm_kek *kek,
                          bool *have_kek, char **out);

/* "scheme://host[:port]/..." of url, for messages (no path, no query,
 * no user info). */
void notify_redact_url(const char *url, char *out, size_t n);

/* deliver.c: one transfer with libcurl.  0 or ACLM_ERR_IO with
 * a message naming the peer (redacted URL) and what failed; a robot's
 * refusal inside a 200 answer is a failure too. */
int notify_deliver_post(const char *kind, const struct aclm_notify_post *p, const char *ca_file,
                        int64_t timeout, const volatile int *stop);
struct notify_smtp {
	const char *url;
	const char *from;
	const char *const *to;
	size_t n_to;
	const char *username;       /* NULL: no AUTH */
	const char *password;
	const char *ca_file;
};
int notify_deliver_email(const struct notify_smtp *m, const char *message, size_t len,
                         int64_t timeout, const volatile int *stop);

/* Send one message through a channel (its config, decoded). */
int notify_send(const char *channel_name, const char *kind, const char *config_text,
                const struct aclm_notify_msg *m, const struct aclm_notify_opts *o,
                struct aclm_kek *kek, bool *have_kek, int64_t now);

#endif
