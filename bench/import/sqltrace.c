/* sqltrace: an LD_PRELOAD shim that records every SQL statement a program
 * runs through SQLite, with its bound values, so the benchmark can replay
 * exactly the listing's SELECT with the sqlite3 CLI (the "raw database"
 * peer).
 *
 *   ACLM_BENCH_SQLTRACE=FILE LD_PRELOAD=.../sqltrace.so aclm ...
 *
 * Each statement is appended to FILE on its first sqlite3_step(), as
 * sqlite3_expanded_sql() gives it, followed by a NUL byte. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

int sqlite3_step(sqlite3_stmt *stmt)
{
	static int (*real_step)(sqlite3_stmt *);
	const char *path = getenv("ACLM_BENCH_SQLTRACE");

	if (real_step == NULL)
		*(void **)&real_step = dlsym(RTLD_NEXT, "sqlite3_step");
	if (real_step == NULL)
		abort();
	if (path != NULL && !sqlite3_stmt_busy(stmt)) {
		char *sql = sqlite3_expanded_sql(stmt);
		FILE *f = fopen(path, "a");

		if (sql != NULL && f != NULL) {
			fputs(sql, f);
			fputc('\0', f);
		}
		if (f != NULL)
			fclose(f);
		sqlite3_free(sql);
	}
	return real_step(stmt);
}
