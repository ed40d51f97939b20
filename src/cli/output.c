/* Output helpers: JSON rendering of inventory rows, terminal colours. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aclm/buf.h"
#include "aclm/json.h"
#include "aclm/store_json.h"
#include "aclm/err.h"
#include "aclm/timeutil.h"
#include "cli-int.h"

bool cli_color(FILE *f)
{
	const char *nc = getenv("NO_COLOR");

	return isatty(fileno(f)) && (nc == NULL || *nc == '\0');
}

void cli_json_print(json_t *j)
{
	if (j == NULL) {
		fputs("null\n", stdout);
		return;
	}
	json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
	fputc('\n', stdout);
	json_decref(j);
}

int cli_read_password_file(const char *path, char **out)
{
	struct aclm_buf b;
	char *nl;
	int rc;

	aclm_buf_init(&b, 64 * 1024);
	rc = aclm_buf_read_file(&b, path);
	if (rc != ACLM_OK) {
		aclm_buf_free_secret(&b);
		return rc;
	}
	*out = aclm_buf_steal(&b, NULL);
	if (*out == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	nl = strpbrk(*out, "\r\n");
	if (nl != NULL)
		*nl = '\0';
	return ACLM_OK;
}

json_t *cli_json_str(const char *s)
{
	return aclm_json_str(s);
}

json_t *cli_json_time(int64_t t)
{
	return aclm_json_time(t);
}

json_t *cli_cert_row_json(const struct aclm_cert_row *r, int64_t now)
{
	return aclm_cert_row_json(r, now);
}

json_t *cli_sans_json(const char *sans)
{
	return aclm_sans_json(sans);
}
