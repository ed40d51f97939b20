/* Unit tests of src/core/config.c: lookup order, env overrides, checks with
 * file:line:col, hostile YAML. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "aclm/buf.h"
#include "aclm/config.h"
#include "aclm/err.h"

static char dir[64];

static int reset_env(void **state)
{
	(void)state;
	unsetenv("ACLM_CONFIG");
	unsetenv("ACLM_STORE_URL");
	unsetenv("ACLM_STORE_BUSY_TIMEOUT");
	unsetenv("ACLM_IMPORT_EXCLUDE");
	return 0;
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/aclm-cfg-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	return reset_env(state);
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static const char *write_file(const char *name, const char *text)
{
	static char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static void collect(void *ctx, const char *message)
{
	struct aclm_buf *b = ctx;

	aclm_buf_puts(b, message);
	aclm_buf_putc(b, '\n');
}

static void test_defaults(void **state)
{
	struct aclm_config *cfg;
	char origin[64];

	(void)state;
	assert_int_equal(chdir(dir), 0);     /* no ./aclm.yaml here */
	assert_int_equal(aclm_config_load(NULL, &cfg), ACLM_OK);
	if (aclm_config_path(cfg) != NULL)   /* /etc/aclm/aclm.yaml may exist on a dev box */
		skip();
	assert_string_equal(aclm_config_str(cfg, "store.url"), "sqlite:aclm.db");
	assert_int_equal(aclm_config_duration(cfg, "store.busy_timeout"), 5);
	assert_int_equal(aclm_config_size(cfg, "import.max_file_size"), 64u << 20);
	aclm_config_origin(cfg, "store.url", origin, sizeof(origin));
	assert_string_equal(origin, "default");
	aclm_config_free(cfg);
}

static void test_file_and_env(void **state)
{
	const char *path = write_file("a.yaml",
		"# aclm\n"
		"store:\n"
		"  url: sqlite:/var/lib/aclm/x.db\n"
		"  busy_timeout: 10s\n"
		"import:\n"
		"  exclude: [java, '*.bak']\n");
	struct aclm_config *cfg;
	const char *const *items;
	char origin[64];

	(void)state;
	assert_int_equal(aclm_config_load(path, &cfg), ACLM_OK);
	assert_string_equal(aclm_config_path(cfg), path);
	assert_string_equal(aclm_config_str(cfg, "store.url"), "sqlite:/var/lib/aclm/x.db");
	assert_int_equal(aclm_config_duration(cfg, "store.busy_timeout"), 10);
	assert_int_equal(aclm_config_list(cfg, "import.exclude", &items), 2);
	assert_string_equal(items[1], "*.bak");
	aclm_config_origin(cfg, "store.url", origin, sizeof(origin));
	assert_string_equal(origin, "file:3");
	aclm_config_free(cfg);

	setenv("ACLM_STORE_URL", "postgres://db/aclm", 1);
	setenv("ACLM_IMPORT_EXCLUDE", "a, b,c", 1);
	assert_int_equal(aclm_config_load(path, &cfg), ACLM_OK);
	assert_string_equal(aclm_config_str(cfg, "store.url"), "postgres://db/aclm");
	assert_int_equal(aclm_config_list(cfg, "import.exclude", &items), 3);
	assert_string_equal(items[1], "b");
	aclm_config_origin(cfg, "store.url", origin, sizeof(origin));
	assert_string_equal(origin, "env:ACLM_STORE_URL");
	aclm_config_free(cfg);
	unsetenv("ACLM_STORE_URL");
	unsetenv("ACLM_IMPORT_EXCLUDE");

	/* $ACLM_CONFIG names the file when --config does not */
	setenv("ACLM_CONFIG", path, 1);
	assert_int_equal(aclm_config_load(NULL, &cfg), ACLM_OK);
	assert_string_equal(aclm_config_path(cfg), path);
	aclm_config_free(cfg);
	unsetenv("ACLM_CONFIG");
}

static void test_check_reports_where(void **state)
{
	const char *path = write_file("bad.yaml",
		"store:\n"
		"  url: sqlite:x.db\n"
		"  busy_timeout: 5x\n"
		"stor:\n"
		"  url: y\n"
		"log:\n"
		"  level: loud\n");
	struct aclm_config *cfg;
	struct aclm_buf out;
	char expect[256];

	(void)state;
	aclm_buf_init(&out, 0);
	assert_int_equal(aclm_config_load(path, &cfg), ACLM_OK);
	assert_int_equal(aclm_config_check(cfg, collect, &out), 3);
	snprintf(expect, sizeof(expect), "%s:3:3: store.busy_timeout: '5x' is not a duration", path);
	assert_non_null(strstr(aclm_buf_cstr(&out), expect));
	snprintf(expect, sizeof(expect), "%s:5:3: unknown key 'stor.url' (did you mean 'store.url'?)", path);
	assert_non_null(strstr(aclm_buf_cstr(&out), expect));
	snprintf(expect, sizeof(expect), "%s:7:3: log.level: 'loud' is not one of debug|info|warn|error", path);
	assert_non_null(strstr(aclm_buf_cstr(&out), expect));
	/* the bad value falls back to the default */
	assert_int_equal(aclm_config_duration(cfg, "store.busy_timeout"), 5);
	aclm_config_free(cfg);

	setenv("ACLM_STORE_BUSY_TIMEOUT", "soon", 1);
	aclm_buf_reset(&out);
	assert_int_equal(aclm_config_load(path, &cfg), ACLM_OK);
	assert_int_equal(aclm_config_check(cfg, collect, &out), 4);
	assert_non_null(strstr(aclm_buf_cstr(&out), "ACLM_STORE_BUSY_TIMEOUT: store.busy_timeout: 'soon' is not a duration"));
	aclm_config_free(cfg);
	unsetenv("ACLM_STORE_BUSY_TIMEOUT");
	aclm_buf_free(&out);
}

static void test_wrong_shapes(void **state)
{
	const char *path = write_file("shape.yaml",
		"store:\n"
		"  url:\n"
		"    nested: 1\n"
		"import:\n"
		"  exclude: java\n");
	struct aclm_config *cfg;
	struct aclm_buf out;

	(void)state;
	aclm_buf_init(&out, 0);
	assert_int_equal(aclm_config_load(path, &cfg), ACLM_OK);
	assert_int_equal(aclm_config_check(cfg, collect, &out), 2);
	assert_non_null(strstr(aclm_buf_cstr(&out), ":2:3: store.url must be a string value"));
	assert_non_null(strstr(aclm_buf_cstr(&out), ":5:3: import.exclude must be a list"));
	assert_string_equal(aclm_config_str(cfg, "store.url"), "sqlite:aclm.db");
	aclm_config_free(cfg);
	aclm_buf_free(&out);
}

static void test_syntax_errors(void **state)
{
	struct aclm_config *cfg = NULL;
	const char *path;
	char expect[160];

	(void)state;
	path = write_file("syntax.yaml", "store:\n  url: [unclosed\n");
	assert_int_equal(aclm_config_load(path, &cfg), ACLM_ERR_CONFIG);
	assert_null(cfg);
	snprintf(expect, sizeof(expect), "%s:", path);
	assert_non_null(strstr(aclm_errmsg(), expect));
	assert_non_null(strstr(aclm_errmsg(), "YAML syntax error"));

	path = write_file("alias.yaml", "a: &x [1, 2]\nb: *x\n");
	assert_int_equal(aclm_config_load(path, &cfg), ACLM_ERR_CONFIG);
	assert_non_null(strstr(aclm_errmsg(), "aliases are not supported"));

	path = write_file("scalar.yaml", "just text\n");
	assert_int_equal(aclm_config_load(path, &cfg), ACLM_ERR_CONFIG);
	assert_non_null(strstr(aclm_errmsg(), "top level must be a mapping"));

	path = write_file("empty.yaml", "");
	assert_int_equal(aclm_config_load(path, &cfg), ACLM_OK);
	aclm_config_free(cfg);

	snprintf(expect, sizeof(expect), "%s/missing.yaml", dir);
	assert_int_equal(aclm_config_load(expect, &cfg), ACLM_ERR_CONFIG);
	assert_non_null(strstr(aclm_errmsg(), "missing.yaml"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_defaults, reset_env),
		cmocka_unit_test_setup(test_file_and_env, reset_env),
		cmocka_unit_test_setup(test_check_reports_where, reset_env),
		cmocka_unit_test_setup(test_wrong_shapes, reset_env),
		cmocka_unit_test_setup(test_syntax_errors, reset_env),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
