/* STARTTLS dialogues as a client: SMTP (RFC 3207), IMAP (RFC 3501 §6.2.1),
 * POP3 (RFC 2595 STLS).  A parser of server bytes: bounded line buffer, a
 * bounded number of lines per reply, no allocation (fuzz_scan_starttls.c).
 *
 * Phases (per protocol):
 *   SMTP  0 greeting 220  -> send EHLO   1 EHLO reply 250 (STARTTLS listed)
 *         -> send STARTTLS   2 reply 220 -> READY
 *   IMAP  0 greeting * OK -> send CAPABILITY  1 untagged CAPABILITY lines then
 *         "a1 OK" -> send "a2 STARTTLS"  2 "a2 OK" -> READY
 *   POP3  0 greeting +OK -> send CAPA  1 +OK, lines, "." -> send STLS
 *         2 +OK -> READY */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "aclm/str.h"
#include "scan-int.h"

void starttls_init(struct starttls *st, enum aclm_scan_proto proto)
{
	memset(st, 0, sizeof(*st));
	st->proto = proto;
}

enum starttls_step starttls_start(struct starttls *st)
{
	(void)st;
	return STARTTLS_NEED_MORE;
}

static enum starttls_step send_cmd(struct starttls *st, const char *cmd)
{
	st->out_len = aclm_strlcpy(st->out, cmd, sizeof(st->out));
	st->phase++;
	st->n_lines = 0;
	return STARTTLS_SEND;
}

static enum starttls_step fail(struct starttls *st, const char *what)
{
	char shown[48];
	size_t n = 0;

	/* Show the start of the offending line, printable characters only. */
	for (size_t i = 0; i < st->line_len && n + 1 < sizeof(shown); i++) {
		unsigned char c = (unsigned char)st->line[i];
		shown[n++] = isprint(c) ? (char)c : '?';
	}
	shown[n] = '\0';
	snprintf(st->error, sizeof(st->error), "%s STARTTLS: %s%s%s%s",
	         aclm_scan_proto_name(st->proto), what, n ? " (\"" : "", shown, n ? "\")" : "");
	return STARTTLS_FAILED;
}

static bool word_in(const char *line, size_t len, const char *word)
{
	size_t wl = strlen(word);

	for (size_t i = 0; i + wl <= len; i++) {
		if ((i == 0 || !isalnum((unsigned char)line[i - 1])) &&
		    strncasecmp(line + i, word, wl) == 0 &&
		    (i + wl == len || !isalnum((unsigned char)line[i + wl])))
			return true;
	}
	return false;
}

/* SMTP: "ddd-text" continues, "ddd text" ends a reply. */
static enum starttls_step smtp_line(struct starttls *st)
{
	const char *l = st->line;
	size_t n = st->line_len;
	bool last;

	if (n < 3 || !isdigit((unsigned char)l[0]) || !isdigit((unsigned char)l[1]) ||
	    !isdigit((unsigned char)l[2]) || (n > 3 && l[3] != ' ' && l[3] != '-'))
		return fail(st, "not an SMTP reply");
	last = n == 3 || l[3] == ' ';
	switch (st->phase) {
	case 0:
		if (l[0] != '2')
			return fail(st, "server refused the session");
		return last ? send_cmd(st, "EHLO aclm-scan.invalid\r\n") : STARTTLS_NEED_MORE;
	case 1:
		if (strncmp(l, "250", 3) != 0)
			return fail(st, "EHLO refused");
		if (n > 4 && word_in(l + 4, n - 4, "STARTTLS"))
			st->saw_starttls = true;
		if (!last)
			return STARTTLS_NEED_MORE;
		if (!st->saw_starttls)
			return fail(st, "STARTTLS not offered");
		return send_cmd(st, "STARTTLS\r\n");
	case 2:
		if (strncmp(l, "220", 3) != 0)
			return fail(st, "STARTTLS refused");
		return last ? STARTTLS_READY : STARTTLS_NEED_MORE;
	}
	return fail(st, "unexpected reply");
}

static enum starttls_step imap_line(struct starttls *st)
{
	const char *l = st->line;
	size_t n = st->line_len;

	switch (st->phase) {
	case 0:
		if (n >= 4 && strncasecmp(l, "* OK", 4) == 0)
			return send_cmd(st, "a1 CAPABILITY\r\n");
		return fail(st, "no IMAP greeting");
	case 1:
		if (n >= 1 && l[0] == '*') {
			if (word_in(l, n, "STARTTLS"))
				st->saw_starttls = true;
			return STARTTLS_NEED_MORE;
		}
		if (n >= 5 && strncasecmp(l, "a1 OK", 5) == 0) {
			if (!st->saw_starttls)
				return fail(st, "STARTTLS not in CAPABILITY");
			return send_cmd(st, "a2 STARTTLS\r\n");
		}
		return fail(st, "CAPABILITY failed");
	case 2:
		if (n >= 1 && l[0] == '*')
			return STARTTLS_NEED_MORE;
		if (n >= 5 && strncasecmp(l, "a2 OK", 5) == 0)
			return STARTTLS_READY;
		return fail(st, "STARTTLS refused");
	}
	return fail(st, "unexpected reply");
}

static enum starttls_step pop3_line(struct starttls *st)
{
	const char *l = st->line;
	size_t n = st->line_len;

	switch (st->phase) {
	case 0:
		if (n >= 3 && strncmp(l, "+OK", 3) == 0)
			return send_cmd(st, "CAPA\r\n");
		return fail(st, "no POP3 greeting");
	case 1:
		if (st->n_lines == 1) {
			if (n >= 3 && strncmp(l, "+OK", 3) == 0)
				return STARTTLS_NEED_MORE;
			return fail(st, "CAPA failed");
		}
		if (n == 1 && l[0] == '.') {
			if (!st->saw_starttls)
				return fail(st, "STLS not in CAPA");
			return send_cmd(st, "STLS\r\n");
		}
		if (word_in(l, n, "STLS"))
			st->saw_starttls = true;
		return STARTTLS_NEED_MORE;
	case 2:
		if (n >= 3 && strncmp(l, "+OK", 3) == 0)
			return STARTTLS_READY;
		return fail(st, "STLS refused");
	}
	return fail(st, "unexpected reply");
}

enum starttls_step starttls_feed(struct starttls *st, const unsigned char *data, size_t len,
                                 size_t *used)
{
	size_t i = 0;

	*used = 0;
	while (i < len) {
		unsigned char c = data[i++];
		enum starttls_step step;

		if (c != '\n') {
			if (c == '\0')
				return fail(st, "NUL byte in reply");
			if (st->line_len + 1 >= sizeof(st->line))
				return fail(st, "reply line longer than 1024 bytes");
			st->line[st->line_len++] = (char)c;
			continue;
		}
		if (st->line_len > 0 && st->line[st->line_len - 1] == '\r')
			st->line_len--;
		st->line[st->line_len] = '\0';
		if (++st->n_lines > STARTTLS_MAX_LINES)
			return fail(st, "reply of more than 256 lines");
		switch (st->proto) {
		case ACLM_SCAN_SMTP: step = smtp_line(st); break;
		case ACLM_SCAN_IMAP: step = imap_line(st); break;
		case ACLM_SCAN_POP3: step = pop3_line(st); break;
		default: step = fail(st, "no dialogue for this protocol"); break;
		}
		st->line_len = 0;
		*used = i;
		if (step != STARTTLS_NEED_MORE) {
			if (step == STARTTLS_READY && i < len) {
				snprintf(st->error, sizeof(st->error), "%s STARTTLS: data after the "
				         "go-ahead (%zu bytes)", aclm_scan_proto_name(st->proto), len - i);
				return STARTTLS_FAILED;
			}
			return step;
		}
	}
	*used = len;
	return STARTTLS_NEED_MORE;
}
