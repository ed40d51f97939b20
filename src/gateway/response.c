/* The upstream's response as the gateway reads it (pure, no I/O, so that it
 * can be fuzzed: tests/fuzz/fuzz_gateway_response.c): the head parsed and
 * rewritten for the client (hop-by-hop fields dropped, HSTS added,
 * Connection set), the end of the body found from Content-Length or by
 * following the chunked framing byte by byte (de-chunked for HTTP/1.0
 * clients), so that both connections can be kept alive. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "aclm/buf.h"
#include "gateway-int.h"

bool gw_token_in_list(const char *list, const char *tok)
{
	size_t tl = strlen(tok);

	while (list && *list) {
		size_t len;

		list += strspn(list, " \t,");
		len = strcspn(list, ",");
		while (len && (list[len - 1] == ' ' || list[len - 1] == '\t'))
			len--;
		if (len == tl && !strncasecmp(list, tok, tl))
			return true;
		list += strcspn(list, ",");
	}
	return false;
}

static bool hexval(unsigned char ch, unsigned *v)
{
	if (ch >= '0' && ch <= '9')
		*v = ch - '0';
	else if (ch >= 'a' && ch <= 'f')
		*v = ch - 'a' + 10;
	else if (ch >= 'A' && ch <= 'F')
		*v = ch - 'A' + 10;
	else
		return false;
	return true;
}

/* Follow the chunked framing over p[0..n); the bytes that belong to the
 * body go to out (all of them, or only the data when de-chunking for an
 * HTTP/1.0 client).  *used: bytes of the body; the rest is past its end. */
static int chunk_feed(struct gw_resp *r, struct aclm_buf *out, const unsigned char *p, size_t n,
                      size_t *used)
{
	size_t i = 0;

	while (i < n && !r->body_done) {
		unsigned char ch = p[i];
		unsigned v;

		switch (r->ck) {
		case CK_SIZE:
			if (hexval(ch, &v)) {
				if (++r->ck_digits > 15)
					return -1;
				r->remaining = r->remaining * 16 + v;
				i++;
				break;
			}
			if (!r->ck_digits)
				return -1;
			r->ck = CK_EXT;
			r->ck_line = 0;
			break;
		case CK_EXT:
			i++;
			if (ch == '\n')
				r->ck = r->remaining ? CK_DATA : CK_TRAILER;
			else if (++r->ck_line > 4096)
				return -1;
			break;
		case CK_DATA: {
			size_t take = n - i < r->remaining ? n - i : (size_t)r->remaining;

			if (r->dechunk && aclm_buf_append(out, p + i, take))
				return -1;
			i += take;
			r->remaining -= take;
			if (!r->remaining)
				r->ck = CK_DATA_CR;
			break;
		}
		case CK_DATA_CR:
			i++;
			if (ch == '\r')
				r->ck = CK_DATA_LF;
			else if (ch == '\n')
				r->ck = CK_SIZE, r->ck_digits = 0;
			else
				return -1;
			break;
		case CK_DATA_LF:
			i++;
			if (ch != '\n')
				return -1;
			r->ck = CK_SIZE;
			r->ck_digits = 0;
			break;
		case CK_TRAILER:
			i++;
			if (ch == '\n')
				r->body_done = true;
			else if (ch == '\r')
				r->ck = CK_TRAILER_LF;
			else
				r->ck = CK_TRAILER_LINE;
			break;
		case CK_TRAILER_LF:
			i++;
			if (ch != '\n')
				return -1;
			r->body_done = true;
			break;
		case CK_TRAILER_LINE:
			i++;
			if (ch == '\n')
				r->ck = CK_TRAILER;
			else if (++r->ck_line > 32768)
				return -1;
			break;
		}
	}
	if (!r->dechunk && aclm_buf_append(out, p, i))
		return -1;
	*used = i;
	return 0;
}

/* Body bytes from the upstream into out; bytes past the end make the
 * upstream connection unusable for another request. */
int gw_resp_body(struct gw_resp *r, const unsigned char *p, size_t n, struct aclm_buf *out)
{
	size_t used = n;

	switch (r->framing) {
	case FR_NONE:
		used = 0;
		break;
	case FR_LENGTH:
		used = n < r->remaining ? n : (size_t)r->remaining;
		if (aclm_buf_append(out, p, used))
			return -1;
		r->remaining -= used;
		r->body_done = r->remaining == 0;
		break;
	case FR_CHUNKED:
		if (chunk_feed(r, out, p, n, &used))
			return -1;
		break;
	case FR_CLOSE:
		if (aclm_buf_append(out, p, n))
			return -1;
		break;
	}
	if (used < n)
		r->u_reusable = false;
	return 0;
}

static bool name_is(const char *line, size_t nlen, const char *name)
{
	return strlen(name) == nlen && !strncasecmp(line, name, nlen);
}

/* "Content-Length: v\r\n", without printf (once per response). */
static int put_length(struct aclm_buf *o, uint64_t v)
{
	char d[20];
	size_t n = 0;

	do {
		d[sizeof(d) - 1 - n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return aclm_buf_puts(o, "Content-Length: ") | aclm_buf_append(o, d + sizeof(d) - n, n) |
	       aclm_buf_puts(o, "\r\n");
}

int gw_resp_parse_head(struct gw_resp *r, const char *head, size_t head_len,
                       const struct gw_resp_req *q, struct aclm_buf *out)
{
	const char *h = head, *end = h + head_len, *line, *eol;
	bool has_cl = false, chunked = false, has_te = false, has_hsts = false, up_close = false,
	     up_ka = false;
	uint64_t cl = 0;
	int up_minor, status;
	struct aclm_buf *o = out;
	int rc = 0;

	if (head_len < 14 || strncmp(h, "HTTP/1.", 7) || (h[7] != '0' && h[7] != '1') ||
	    h[8] != ' ' || h[9] < '1' || h[9] > '5' || h[10] < '0' || h[10] > '9' ||
	    h[11] < '0' || h[11] > '9' || (h[12] != ' ' && h[12] != '\r'))
		return -1;
	up_minor = h[7] - '0';
	status = (h[9] - '0') * 100 + (h[10] - '0') * 10 + (h[11] - '0');
	if (status >= 100 && status < 200) {
		if (status == 101)
			return -1;
		return 1;
	}
	eol = memchr(h, '\n', head_len);
	rc |= aclm_buf_append(o, "HTTP/1.1 ", 9);
	rc |= aclm_buf_append(o, h + 9, (size_t)(eol - (h + 9)) + 1);
	if (o->len >= 2 && o->data[o->len - 2] != '\r')
		return -1;
	for (line = eol + 1; line < end; line = eol + 1) {
		const char *colon, *val;
		size_t nlen, vlen;

		eol = memchr(line, '\n', (size_t)(end - line));
		if (!eol)
			return -1;
		if (eol == line || (eol == line + 1 && line[0] == '\r'))
			break;
		colon = memchr(line, ':', (size_t)(eol - line));
		if (!colon || colon == line)
			return -1;
		nlen = (size_t)(colon - line);
		for (size_t i = 0; i < nlen; i++)
			if (line[i] == ' ' || line[i] == '\t' || (unsigned char)line[i] < 0x21)
				return -1;
		val = colon + 1;
		while (val < eol && (*val == ' ' || *val == '\t'))
			val++;
		vlen = (size_t)(eol - val);
		while (vlen && (val[vlen - 1] == '\r' || val[vlen - 1] == ' ' ||
		                val[vlen - 1] == '\t'))
			vlen--;
		if (name_is(line, nlen, "Content-Length")) {
			uint64_t v = 0;

			if (!vlen)
				return -1;
			for (size_t i = 0; i < vlen; i++) {
				if (val[i] < '0' || val[i] > '9' || v > (UINT64_MAX - 9) / 10)
					return -1;
				v = v * 10 + (uint64_t)(val[i] - '0');
			}
			if (has_cl && v != cl)
				return -1;
			has_cl = true;
			cl = v;
			continue;
		}
		if (name_is(line, nlen, "Transfer-Encoding")) {
			has_te = true;
			chunked = vlen >= 7 && !strncasecmp(val + vlen - 7, "chunked", 7);
			continue;
		}
		if (name_is(line, nlen, "Connection")) {
			char tmp[256];
			size_t k = vlen < sizeof(tmp) - 1 ? vlen : sizeof(tmp) - 1;

			memcpy(tmp, val, k);
			tmp[k] = '\0';
			up_close |= gw_token_in_list(tmp, "close");
			up_ka |= gw_token_in_list(tmp, "keep-alive");
			continue;
		}
		if (name_is(line, nlen, "Keep-Alive") || name_is(line, nlen, "Proxy-Connection") ||
		    name_is(line, nlen, "Upgrade"))
			continue;
		if (name_is(line, nlen, "Strict-Transport-Security"))
			has_hsts = true;
		rc |= aclm_buf_append(o, line, nlen);
		rc |= aclm_buf_append(o, ": ", 2);
		rc |= aclm_buf_append(o, val, vlen);
		rc |= aclm_buf_append(o, "\r\n", 2);
	}
	r->status = status;
	r->u_reusable = !up_close && (up_minor == 1 || up_ka);
	r->body_done = false;
	r->dechunk = false;
	r->close_after = !q->client_ka;
	if (q->is_head || status == 204 || status == 304) {
		r->framing = FR_NONE;
		r->body_done = true;
		if (has_cl)
			rc |= put_length(o, cl);
	} else if (has_te && chunked) {
		r->framing = FR_CHUNKED;
		r->ck = CK_SIZE;
		r->ck_digits = 0;
		r->remaining = 0;
		if (q->client_minor == 0) {
			r->dechunk = true;
			r->close_after = true;
		} else {
			rc |= aclm_buf_puts(o, "Transfer-Encoding: chunked\r\n");
		}
	} else if (has_te) {
		r->framing = FR_CLOSE;
		r->u_reusable = false;
		r->close_after = true;
	} else if (has_cl) {
		r->framing = FR_LENGTH;
		r->remaining = cl;
		r->body_done = cl == 0;
		rc |= put_length(o, cl);
	} else {
		r->framing = FR_CLOSE;
		r->u_reusable = false;
		r->close_after = true;
	}
	if (q->hsts[0] && !has_hsts)
		rc |= aclm_buf_puts(o, "Strict-Transport-Security: ") | aclm_buf_puts(o, q->hsts) |
		      aclm_buf_puts(o, "\r\n");
	if (r->close_after)
		rc |= aclm_buf_puts(o, "Connection: close\r\n");
	else if (q->client_minor == 0)
		rc |= aclm_buf_puts(o, "Connection: keep-alive\r\n");
	rc |= aclm_buf_puts(o, "\r\n");
	return rc ? -1 : 0;
}

size_t gw_resp_head_end(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++) {
		if (p[i] != '\n')
			continue;
		if (p[i + 1] == '\n')
			return i + 2;
		if (p[i + 1] == '\r' && i + 2 < n && p[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}
