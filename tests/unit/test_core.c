/* Unit tests of src/core: buffers, strings, numbers, time, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "aclm/buf.h"
#include "aclm/err.h"
#include "aclm/str.h"
#include "aclm/timeutil.h"

static void test_buf_limit(void **state)
{
	struct aclm_buf b;

	(void)state;
	aclm_buf_init(&b, 8);
	assert_int_equal(aclm_buf_puts(&b, "1234"), ACLM_OK);
	assert_int_equal(aclm_buf_printf(&b, "%d", 5678), ACLM_OK);
	assert_string_equal(aclm_buf_cstr(&b), "12345678");
	assert_int_equal(aclm_buf_putc(&b, '9'), ACLM_ERR_TOOBIG);
	assert_int_equal(b.len, 8);          /* a failed append changes nothing */
	assert_string_equal(aclm_buf_cstr(&b), "12345678");
	aclm_buf_reset(&b);
	assert_string_equal(aclm_buf_cstr(&b), "");
	aclm_buf_free(&b);
	assert_string_equal(aclm_buf_cstr(&b), "");
}

static void test_buf_steal(void **state)
{
	struct aclm_buf b;
	size_t len = 99;
	char *s;

	(void)state;
	aclm_buf_init(&b, 0);
	s = aclm_buf_steal(&b, &len);      /* empty buffer: still a valid string */
	assert_non_null(s);
	assert_string_equal(s, "");
	assert_int_equal(len, 0);
	free(s);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(aclm_buf_printf(&b, "%04d", i), ACLM_OK);
	assert_int_equal(b.len, 4000);
	s = aclm_buf_steal(&b, &len);
	assert_int_equal(len, 4000);
	assert_memory_equal(s + 3996, "0999", 4);
	assert_null(b.data);
	free(s);
}

static void test_buf_read_file(void **state)
{
	char dir[] = "/tmp/aclm-test-XXXXXX", path[256];
	struct aclm_buf b;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/f", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("hello world", f);
	fclose(f);

	aclm_buf_init(&b, 100);
	assert_int_equal(aclm_buf_read_file(&b, path), ACLM_OK);
	assert_string_equal(aclm_buf_cstr(&b), "hello world");
	aclm_buf_free(&b);

	aclm_buf_init(&b, 5);
	assert_int_equal(aclm_buf_read_file(&b, path), ACLM_ERR_TOOBIG);
	assert_non_null(strstr(aclm_errmsg(), path));
	assert_non_null(strstr(aclm_errmsg(), "too large"));
	aclm_buf_free(&b);

	aclm_buf_init(&b, 100);
	assert_int_equal(aclm_buf_read_file(&b, dir), ACLM_ERR_IO);
	assert_non_null(strstr(aclm_errmsg(), "directory"));
	snprintf(path, sizeof(path), "%s/fifo", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(aclm_buf_read_file(&b, path), ACLM_ERR_IO);  /* must not block */
	assert_non_null(strstr(aclm_errmsg(), "not a regular file"));
	unlink(path);
	snprintf(path, sizeof(path), "%s/missing", dir);
	assert_int_equal(aclm_buf_read_file(&b, path), ACLM_ERR_IO);
	assert_non_null(strstr(aclm_errmsg(), "No such file"));
	aclm_buf_free(&b);
	snprintf(path, sizeof(path), "%s/f", dir);
	unlink(path);
	rmdir(dir);
}

static void test_parse_numbers(void **state)
{
	int64_t v;
	uint64_t u;
	bool b;

	(void)state;
	assert_int_equal(aclm_parse_int64("42", &v), ACLM_OK);
	assert_int_equal(v, 42);
	assert_int_equal(aclm_parse_int64("-7", &v), ACLM_OK);
	assert_int_equal(v, -7);
	assert_int_equal(aclm_parse_int64("", &v), ACLM_ERR_PARSE);
	assert_int_equal(aclm_parse_int64(" 1", &v), ACLM_ERR_PARSE);
	assert_int_equal(aclm_parse_int64("1x", &v), ACLM_ERR_PARSE);
	assert_int_equal(aclm_parse_int64("99999999999999999999", &v), ACLM_ERR_PARSE);

	assert_int_equal(aclm_parse_duration("30d", &v), ACLM_OK);
	assert_int_equal(v, 30 * 86400);
	assert_int_equal(aclm_parse_duration("12h", &v), ACLM_OK);
	assert_int_equal(v, 12 * 3600);
	assert_int_equal(aclm_parse_duration("2w", &v), ACLM_OK);
	assert_int_equal(v, 14 * 86400);
	assert_int_equal(aclm_parse_duration("45", &v), ACLM_OK);
	assert_int_equal(v, 45);
	assert_int_equal(aclm_parse_duration("3x", &v), ACLM_ERR_PARSE);
	assert_non_null(strstr(aclm_errmsg(), "'3x' is not a duration"));
	assert_int_equal(aclm_parse_duration("-1d", &v), ACLM_ERR_PARSE);
	assert_int_equal(aclm_parse_duration("d", &v), ACLM_ERR_PARSE);
	assert_int_equal(aclm_parse_duration("999999999999999999w", &v), ACLM_ERR_PARSE);

	assert_int_equal(aclm_parse_size("64M", &u), ACLM_OK);
	assert_int_equal(u, 64u << 20);
	assert_int_equal(aclm_parse_size("1k", &u), ACLM_OK);
	assert_int_equal(u, 1024);
	assert_int_equal(aclm_parse_size("1T", &u), ACLM_ERR_PARSE);

	assert_int_equal(aclm_parse_bool("yes", &b), ACLM_OK);
	assert_true(b);
	assert_int_equal(aclm_parse_bool("Off", &b), ACLM_OK);
	assert_false(b);
	assert_int_equal(aclm_parse_bool("maybe", &b), ACLM_ERR_PARSE);
}

static void test_strings(void **state)
{
	char small[4], hex[9];
	unsigned char raw[4];

	(void)state;
	assert_int_equal(aclm_strlcpy(small, "abcdef", sizeof(small)), 6);
	assert_string_equal(small, "abc");
	aclm_hex_encode((const unsigned char *)"\x01\xab\xff\x00", 4, hex);
	assert_string_equal(hex, "01abff00");
	assert_int_equal(aclm_hex_decode("01:AB:ff:00", raw, sizeof(raw)), 4);
	assert_memory_equal(raw, "\x01\xab\xff\x00", 4);
	assert_int_equal(aclm_hex_decode("0g", raw, sizeof(raw)), ACLM_ERR_PARSE);
	assert_int_equal(aclm_hex_decode("abc", raw, sizeof(raw)), ACLM_ERR_PARSE);
	assert_int_equal(aclm_hex_decode("0102030405", raw, sizeof(raw)), ACLM_ERR_TOOBIG);
	assert_true(aclm_str_icontains("CN=Let's Encrypt", "let's"));
	assert_false(aclm_str_icontains("abc", "abd"));
	assert_true(aclm_str_has_suffix("a.pem", ".pem"));
	assert_false(aclm_str_has_suffix("pem", "a.pem"));
	assert_true(aclm_ct_equal("abcd", "abcd", 4));
	assert_false(aclm_ct_equal("abcd", "abce", 4));
}


/* The arithmetic date formatting against the C library's, across the
 * range it handles (years 0..9999), its edges and beyond them. */
static void check_against_libc(int64_t t)
{
	char want[64], got[64];
	struct tm tm;
	time_t tt = (time_t)t;

	assert_non_null(gmtime_r(&tt, &tm));
	assert_true(strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%SZ", &tm) > 0);
	aclm_time_iso(t, got, sizeof(got));
	assert_string_equal(got, want);
	assert_true(strftime(want, sizeof(want), "%Y-%m-%d", &tm) > 0);
	aclm_time_date(t, got, sizeof(got));
	assert_string_equal(got, want);
}

static void test_time_formatting(void **state)
{
	static const int64_t edges[] = {
		0, -1, 1, 86399, 86400, -86400, -86401, 951782400 /* 2000-02-29 */,
		951868799, 4107456000 /* 2100-02-28 */, 4107542400 /* 2100-03-01 */,
		-62167219200LL /* 0000-01-01 */, -30610224000LL /* 1000-01-01 */,
		-30610224001LL, 253402300799LL /* 9999-12-31T23:59:59 */,
		253402300800LL /* 10000-01-01: strftime's path */, -62167219201LL,
		1798761600, 68169600 /* 1972-02-29 */,
	};
	uint64_t x = 0x9e3779b97f4a7c15ULL;

	(void)state;
	for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
		check_against_libc(edges[i]);
	for (int i = 0; i < 20000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		check_against_libc((int64_t)(x % 315537897600ULL) - 62167219200LL);
	}
}

static void test_time(void **state)
{
	char buf[32];
	int64_t t;

	(void)state;
	aclm_time_iso(0, buf, sizeof(buf));
	assert_string_equal(buf, "1970-01-01T00:00:00Z");
	assert_int_equal(aclm_time_parse_iso("2026-03-15", &t), ACLM_OK);
	aclm_time_iso(t, buf, sizeof(buf));
	assert_string_equal(buf, "2026-03-15T00:00:00Z");
	assert_int_equal(aclm_time_parse_iso("2026-03-15T12:30:00Z", &t), ACLM_OK);
	aclm_time_date(t, buf, sizeof(buf));
	assert_string_equal(buf, "2026-03-15");
	assert_int_equal(aclm_time_parse_iso("15/03/2026", &t), ACLM_ERR_PARSE);
	assert_int_equal(aclm_days_left(86400 * 10, 0), 10);
	assert_int_equal(aclm_days_left(86400 * 10 - 1, 0), 9);
	assert_int_equal(aclm_days_left(0, 1), -1);      /* expired a second ago: day -1 */
	assert_int_equal(aclm_days_left(0, 86400), -1);
	assert_int_equal(aclm_days_left(0, 86401), -2);
	setenv("ACLM_NOW", "2027-01-01T00:00:00Z", 1);
	assert_int_equal(aclm_now(), 1798761600);
	unsetenv("ACLM_NOW");
}

static void test_errors(void **state)
{
	(void)state;
	assert_int_equal(aclm_error(ACLM_ERR_IO, "%s: %s", "a.pem", "boom"), ACLM_ERR_IO);
	assert_string_equal(aclm_errmsg(), "a.pem: boom");
	assert_int_equal(aclm_error_wrap(ACLM_ERR_PARSE, "import"), ACLM_ERR_PARSE);
	assert_string_equal(aclm_errmsg(), "import: a.pem: boom");
	aclm_error_clear();
	assert_string_equal(aclm_errmsg(), "");
	assert_string_equal(aclm_err_name(ACLM_ERR_NOTFOUND), "not found");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_limit),
		cmocka_unit_test(test_buf_steal),
		cmocka_unit_test(test_buf_read_file),
		cmocka_unit_test(test_parse_numbers),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_time),
		cmocka_unit_test(test_time_formatting),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
