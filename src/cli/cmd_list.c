/* aclm list: the inventory, soonest expiry first. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "aclm/buf.h"
#include "aclm/err.h"
#include "aclm/store_json.h"
#include "aclm/str.h"
#include "aclm/timeutil.h"
#include "cli-int.h"

struct list_ctx {
	bool json;
	bool color;
	int64_t now;
	int64_t n_rows;
	struct aclm_buf out;         /* --json: one row's text */
};

static const struct {
	const char *name;
	enum aclm_cert_sort sort;
} sort_names[] = {
	{ "expiry", ACLM_SORT_NOT_AFTER }, { "not-after", ACLM_SORT_NOT_AFTER },
	{ "not-before", ACLM_SORT_NOT_BEFORE }, { "subject", ACLM_SORT_SUBJECT },
	{ "issuer", ACLM_SORT_ISSUER }, { "key", ACLM_SORT_KEY }, { "id", ACLM_SORT_ID },
};

static int parse_sort(const char *s, struct aclm_cert_filter *f)
{
	if (*s == '-') {
		f->descending = true;
		s++;
	}
	for (size_t i = 0; i < sizeof(sort_names) / sizeof(sort_names[0]); i++) {
		if (strcmp(s, sort_names[i].name) == 0) {
			f->sort = sort_names[i].sort;
			return ACLM_OK;
		}
	}
	return ACLM_ERR_USAGE;
}

static bool valid_key_type(const char *s)
{
	static const char *const ok[] = {
		"rsa", "ec", "ecdsa", "ed25519", "ed448", "sm2", "dsa", "p256", "p384", "p521",
		"ec256", "ec384", "ec521",
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strcmp(s, ok[i]) == 0)
			return true;
	if (strncmp(s, "rsa", 3) == 0 || strncmp(s, "dsa", 3) == 0) {
		int64_t bits;
		return aclm_parse_int64(s + 3, &bits) == ACLM_OK && bits >= 512 && bits <= 16384;
	}
	return false;
}

/* Decimal digits of v into the end of buf[24]; returns their start. */
static char *decimal(int64_t v, char buf[24])
{
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	char *p = buf + 23;

	*p = '\0';
	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u > 0);
	if (v < 0)
		*--p = '-';
	return p;
}

/* s, then spaces to width (printf's %-*s). */
static int put_left(struct aclm_buf *b, const char *s, size_t n, size_t width)
{
	static const char spaces[] = "                                        ";
	int rc = aclm_buf_append(b, s, n);

	while (rc == ACLM_OK && n < width) {
		size_t k = width - n < sizeof(spaces) - 1 ? width - n : sizeof(spaces) - 1;
		rc = aclm_buf_append(b, spaces, k);
		n += k;
	}
	return rc;
}

static int print_row(void *ctx, const struct aclm_cert_row *r)
{
	struct list_ctx *c = ctx;
	char date[16];
	const char *on = "", *off = "";
	int64_t days = aclm_days_left(r->not_after, c->now);

	if (c->json) {
		/* Written directly into one reused buffer, then one fwrite(): a
		 * jansson object per row cost two thirds of a long listing. */
		aclm_buf_reset(&c->out);
		if (aclm_cert_row_json_text(r, c->now, &c->out) != ACLM_OK)
			return ACLM_ERR_NOMEM;
		fputs(c->n_rows == 0 ? "[\n" : ",\n", stdout);
		fwrite(c->out.data, 1, c->out.len, stdout);
		c->n_rows++;
		return 0;
	}
	if (c->n_rows == 0)
		printf("%-7s %-10s %6s  %-8s %-5s %-40s %s\n", "ID", "EXPIRES", "DAYS", "KEY",
		       "LEVEL", "NAME", "ISSUER");
	/* Built by hand and written at once: printf() and strftime() were a
	 * third of a long listing's instructions. */
	{
		struct aclm_buf *b = &c->out;
		const char *level = r->level && *r->level ? r->level : "-";
		size_t key_start;
		char num[24], *d;
		int rc;

		if (c->color) {
			off = "\033[0m";
			on = days < 7 ? "\033[31m" : days < 30 ? "\033[33m" : "\033[32m";
		}
		aclm_buf_reset(b);
		aclm_time_date(r->not_after, date, sizeof(date));
		d = decimal(r->id, num);
		rc = put_left(b, d, strlen(d), 7);
		if (rc == ACLM_OK && (rc = aclm_buf_putc(b, ' ')) == ACLM_OK)
			rc = put_left(b, date, strlen(date), 10);
		if (rc == ACLM_OK && (rc = aclm_buf_putc(b, ' ')) == ACLM_OK &&
		    (rc = aclm_buf_puts(b, on)) == ACLM_OK) {
			d = decimal(days, num);
			rc = put_left(b, "", 0, 6 - (strlen(d) < 6 ? strlen(d) : 6));
			if (rc == ACLM_OK && (rc = aclm_buf_puts(b, d)) == ACLM_OK &&
			    (rc = aclm_buf_puts(b, off)) == ACLM_OK)
				rc = aclm_buf_puts(b, "  ");
		}
		key_start = b->len;
		if (rc == ACLM_OK && (rc = aclm_buf_puts(b, r->key_type)) == ACLM_OK &&
		    (strcmp(r->key_type, "rsa") == 0 || strcmp(r->key_type, "dsa") == 0 ||
		     strcmp(r->key_type, "ec") == 0))
			rc = aclm_buf_puts(b, decimal(r->key_bits, num));
		if (rc == ACLM_OK)
			rc = put_left(b, "", 0, 8 - (b->len - key_start < 8 ? b->len - key_start : 8));
		if (rc == ACLM_OK && (rc = aclm_buf_putc(b, ' ')) == ACLM_OK)
			rc = put_left(b, level, strlen(level), 5);
		if (rc == ACLM_OK && (rc = aclm_buf_putc(b, ' ')) == ACLM_OK)
			rc = put_left(b, r->list_name, strlen(r->list_name), 40);
		if (rc == ACLM_OK && (rc = aclm_buf_putc(b, ' ')) == ACLM_OK &&
		    (rc = aclm_buf_puts(b, r->list_issuer)) == ACLM_OK)
			rc = aclm_buf_putc(b, '\n');
		if (rc != ACLM_OK)
			return aclm_error(rc, "out of memory formatting certificate %lld",
			                  (long long)r->id);
		fwrite(b->data, 1, b->len, stdout);
	}
	c->n_rows++;
	return 0;
}

int cmd_list(struct cli *cli, int argc, char **argv)
{
	enum { O_EXPIRING = 256, O_EXPIRED, O_VALID, O_KEY_TYPE, O_ISSUER, O_NAME, O_LEVEL,
	       O_CA, O_LEAF, O_SORT, O_REVERSE, O_LIMIT, O_OFFSET, O_JSON };
	static const struct option opts[] = {
		{ "expiring", required_argument, NULL, O_EXPIRING },
		{ "expired", no_argument, NULL, O_EXPIRED },
		{ "valid", no_argument, NULL, O_VALID },
		{ "key-type", required_argument, NULL, O_KEY_TYPE },
		{ "issuer", required_argument, NULL, O_ISSUER },
		{ "name", required_argument, NULL, O_NAME },
		{ "level", required_argument, NULL, O_LEVEL },
		{ "ca", no_argument, NULL, O_CA },
		{ "leaf", no_argument, NULL, O_LEAF },
		{ "sort", required_argument, NULL, O_SORT },
		{ "reverse", no_argument, NULL, O_REVERSE },
		{ "limit", required_argument, NULL, O_LIMIT },
		{ "offset", required_argument, NULL, O_OFFSET },
		{ "json", no_argument, NULL, O_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cli_command *self = cli_find_command("list");
	struct aclm_cert_filter f = { 0 };
	struct list_ctx ctx = { 0 };
	bool reverse = false;
	char *key_type = NULL;
	int opt, rc = EXIT_FAILED;

	f.now = aclm_now();
	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (opt) {
		case O_EXPIRING:
			if (aclm_parse_duration(optarg, &f.expiring_within) != ACLM_OK || f.expiring_within == 0) {
				rc = cli_usage_error("list", "--expiring: '%s' is not a duration (e.g. 30d, 12h, 2w)", optarg);
				goto out;
			}
			break;
		case O_EXPIRED: f.expired = true; break;
		case O_VALID: f.valid = true; break;
		case O_KEY_TYPE:
			free(key_type);
			key_type = aclm_strdup(optarg);
			aclm_str_lower(key_type);
			if (!valid_key_type(key_type)) {
				rc = cli_usage_error("list", "--key-type: '%s' is not a key type (rsa, ec, ed25519, ed448, sm2, dsa, rsa2048, p256, p384, p521)", optarg);
				goto out;
			}
			f.key_type = key_type;
			break;
		case O_ISSUER: f.issuer = optarg; break;
		case O_NAME: f.name = optarg; break;
		case O_LEVEL:
			if (strcmp(optarg, "dv") != 0 && strcmp(optarg, "ov") != 0 &&
			    strcmp(optarg, "iv") != 0 && strcmp(optarg, "ev") != 0) {
				rc = cli_usage_error("list", "--level: '%s' is not one of dv, ov, iv, ev", optarg);
				goto out;
			}
			f.level = optarg;
			break;
		case O_CA: f.ca_only = true; break;
		case O_LEAF: f.leaf_only = true; break;
		case O_SORT:
			if (parse_sort(optarg, &f) != ACLM_OK) {
				rc = cli_usage_error("list", "--sort: '%s' is not one of expiry, not-before, subject, issuer, key, id", optarg);
				goto out;
			}
			break;
		case O_REVERSE: reverse = true; break;
		case O_LIMIT:
		case O_OFFSET: {
			int64_t v;
			if (aclm_parse_int64(optarg, &v) != ACLM_OK || v < 0) {
				rc = cli_usage_error("list", "--%s: '%s' is not a non-negative number",
				                     opt == O_LIMIT ? "limit" : "offset", optarg);
				goto out;
			}
			if (opt == O_LIMIT)
				f.limit = v;
			else
				f.offset = v;
			break;
		}
		case O_JSON: ctx.json = true; break;
		default:
			rc = cli_getopt_default(self, opt, argv);
			goto out;
		}
	}
	if (optind < argc) {
		rc = cli_usage_error("list", "unexpected argument '%s'", argv[optind]);
		goto out;
	}
	if (f.ca_only && f.leaf_only) {
		rc = cli_usage_error("list", "--ca and --leaf exclude each other");
		goto out;
	}
	if (reverse)
		f.descending = !f.descending;
	if (cli_open_store(cli) != ACLM_OK) {
		rc = EXIT_FAILED;
		goto out;
	}
	ctx.now = f.now;
	aclm_buf_init(&ctx.out, 0);
	ctx.color = !ctx.json && cli_color(stdout);
	f.summary = !ctx.json;
	if (aclm_store_list_certs(cli->store, &f, print_row, &ctx) != ACLM_OK) {
		if (ctx.json && ctx.n_rows > 0)
			fputs("\n]\n", stdout);
		rc = cli_fail("%s", aclm_errmsg());
		goto out;
	}
	if (ctx.json)
		fputs(ctx.n_rows == 0 ? "[]\n" : "\n]\n", stdout);
	else if (ctx.n_rows == 0 && !cli->quiet)
		fputs("no certificates match\n", stderr);
	rc = EXIT_OK;
out:
	aclm_buf_free(&ctx.out);
	free(key_type);
	return rc;
}
