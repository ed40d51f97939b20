/* The SQLite driver: the store over libsqlite3.
 *
 * One connection per store, used from one thread.  The database is opened in
 * WAL mode with foreign keys on; a new database file is created 0600 (SQLite
 * gives its -wal and -shm files the same mode). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "aclm/err.h"
#include "aclm/str.h"
#include "store-int.h"

#define DEFAULT_BUSY_TIMEOUT_MS 5000

struct store_conn {
	sqlite3 *db;
	char err[512];
};

struct store_stmt {
	struct store_conn *conn;
	sqlite3_stmt *st;
	const char *what;
	bool sent;        /* send() took the first step: */
	int sent_rc;      /* what it returned, for the first step() */
};

static int fail(struct store_conn *c, const char *what)
{
	snprintf(c->err, sizeof(c->err), "%s: %s", what, sqlite3_errmsg(c->db));
	return ACLM_ERR_DB;
}

/* "sqlite:PATH", "sqlite://PATH" (so "sqlite:///var/lib/aclm.db" works) or
 * a bare path. */
static const char *url_path(const char *url)
{
	if (strncmp(url, "sqlite:", 7) != 0)
		return url;
	url += 7;
	if (strncmp(url, "//", 2) == 0)
		url += 2;
	return url;
}

/* Create the file ourselves so that it starts private; SQLite would use
 * 0644 less the umask. */
static int create_private(const char *path, const char *display)
{
	struct stat sb;
	int fd;

	if (strcmp(path, ":memory:") == 0 || stat(path, &sb) == 0)
		return ACLM_OK;
	if (errno != ENOENT)
		return aclm_error(ACLM_ERR_IO, "%s: %s", display, strerror(errno));
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 && errno != EEXIST)
		return aclm_error(ACLM_ERR_IO, "%s: cannot create the database: %s",
		                  display, strerror(errno));
	if (fd >= 0)
		close(fd);
	return ACLM_OK;
}

/* Before the library's first use in the process: no allocation
 * statistics, whose global mutex every sqlite3_malloc() takes (aclm never
 * reads them; an import made ~7% of its calls into that mutex).  A call
 * after initialisation fails harmlessly and changes nothing. */
static void configure_library(void)
{
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static int sq_open(const char *url, const struct aclm_store_opts *opts,
                   struct store_conn **out, char **display)
{
	static const char setup[] =
		"PRAGMA journal_mode = WAL;"
		"PRAGMA synchronous = NORMAL;"
		"PRAGMA foreign_keys = ON;"
		"PRAGMA temp_store = MEMORY;"
		"PRAGMA cache_size = -32768;"
		/* Read through a memory map (up to the library's limit, 2 GB in
		 * Debian's build): a page in the OS cache costs a pointer instead of
		 * a pread() and a copy, a third of a 70,000-row listing's time. */
		"PRAGMA mmap_size = 2147418112;";
	const char *path = url_path(url);
	struct store_conn *c = NULL;
	char *disp = NULL, *msg = NULL;
	size_t disp_len;
	int rc, timeout;

	if (*path == '\0')
		return aclm_error(ACLM_ERR_USAGE, "%s: no database path in the URL", url);
	disp_len = strlen(path) + sizeof("sqlite:");
	disp = malloc(disp_len);
	c = calloc(1, sizeof(*c));
	if (disp == NULL || c == NULL) {
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory opening %s", url);
		goto out;
	}
	snprintf(disp, disp_len, "sqlite:%s", path);
	if ((rc = create_private(path, disp)) != ACLM_OK)
		goto out;
	{
		static pthread_once_t once = PTHREAD_ONCE_INIT;
		(void)pthread_once(&once, configure_library);
	}
	if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	                    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		rc = aclm_error(ACLM_ERR_DB, "%s: cannot open: %s", disp,
		                c->db != NULL ? sqlite3_errmsg(c->db) : "out of memory");
		goto out;
	}
	sqlite3_extended_result_codes(c->db, 1);
	timeout = opts != NULL && opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms
	                                                   : DEFAULT_BUSY_TIMEOUT_MS;
	sqlite3_busy_timeout(c->db, timeout);
	if (sqlite3_exec(c->db, setup, NULL, NULL, &msg) != SQLITE_OK) {
		rc = aclm_error(ACLM_ERR_DB, "%s: cannot set up the connection: %s", disp,
		                msg != NULL ? msg : sqlite3_errmsg(c->db));
		goto out;
	}
	*out = c;
	*display = disp;
	c = NULL;
	disp = NULL;
	rc = ACLM_OK;
out:
	sqlite3_free(msg);
	if (c != NULL) {
		sqlite3_close(c->db);
		free(c);
	}
	free(disp);
	return rc;
}

static void sq_close(struct store_conn *c)
{
	if (c == NULL)
		return;
	/* close_v2: statements the caller forgot do not keep the file open. */
	sqlite3_close_v2(c->db);
	free(c);
}

static int sq_exec(struct store_conn *c, const char *script)
{
	char *msg = NULL;
	int rc = ACLM_OK;

	if (sqlite3_exec(c->db, script, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(c->err, sizeof(c->err), "%s", msg != NULL ? msg : sqlite3_errmsg(c->db));
		rc = ACLM_ERR_DB;
	}
	sqlite3_free(msg);
	return rc;
}

static int sq_sync(struct store_conn *c)
{
	return ACLM_OK;
}

static int sq_prepare(struct store_conn *c, const char *sql, const char *what,
                      unsigned flags, struct store_stmt **out)
{
	struct store_stmt *s = calloc(1, sizeof(*s));
	unsigned pf = (flags & STORE_STMT_PERSISTENT) ? SQLITE_PREPARE_PERSISTENT : 0;

	if (s == NULL) {
		snprintf(c->err, sizeof(c->err), "%s: out of memory", what);
		return ACLM_ERR_DB;
	}
	if (sqlite3_prepare_v3(c->db, sql, -1, pf, &s->st, NULL) != SQLITE_OK) {
		free(s);
		return fail(c, what);
	}
	s->conn = c;
	s->what = what;
	*out = s;
	return ACLM_OK;
}

static int bound(struct store_stmt *s, int rc)
{
	return rc == SQLITE_OK ? ACLM_OK : fail(s->conn, s->what);
}

static int sq_bind_int64(struct store_stmt *s, int idx, int64_t v)
{
	return bound(s, sqlite3_bind_int64(s->st, idx, v));
}

static int sq_bind_text(struct store_stmt *s, int idx, const char *v)
{
	if (v == NULL)
		return bound(s, sqlite3_bind_null(s->st, idx));
	return bound(s, sqlite3_bind_text(s->st, idx, v, -1, SQLITE_TRANSIENT));
}

static int sq_bind_blob(struct store_stmt *s, int idx, const void *v, size_t len)
{
	/* A zero-length blob is still a blob, not NULL. */
	return bound(s, sqlite3_bind_blob64(s->st, idx, len > 0 ? v : "", len, SQLITE_TRANSIENT));
}

static int sq_bind_null(struct store_stmt *s, int idx)
{
	return bound(s, sqlite3_bind_null(s->st, idx));
}

static int sq_step(struct store_stmt *s)
{
	if (s->sent) {
		s->sent = false;
		return s->sent_rc;
	}
	switch (sqlite3_step(s->st)) {
	case SQLITE_ROW:
		return 1;
	case SQLITE_DONE:
		return 0;
	default:
		return fail(s->conn, s->what);
	}
}

static int sq_run(struct store_stmt *s)
{
	int rc;

	while ((rc = sq_step(s)) == 1)
		;
	sqlite3_reset(s->st);
	return rc;
}

/* Execute now (in order with other statements); step() returns the rows. */
static int sq_send(struct store_stmt *s)
{
	int rc = sq_step(s);

	if (rc < 0)
		return rc;
	s->sent = true;
	s->sent_rc = rc;
	return ACLM_OK;
}

static bool sq_column_is_null(struct store_stmt *s, int col)
{
	return sqlite3_column_type(s->st, col) == SQLITE_NULL;
}

static int64_t sq_column_int64(struct store_stmt *s, int col)
{
	return sqlite3_column_int64(s->st, col);
}

static const char *sq_column_text(struct store_stmt *s, int col)
{
	return (const char *)sqlite3_column_text(s->st, col);
}

static const unsigned char *sq_column_blob(struct store_stmt *s, int col, size_t *len)
{
	const unsigned char *p = sqlite3_column_blob(s->st, col);

	*len = (size_t)sqlite3_column_bytes(s->st, col);
	return p;
}

static void sq_reset(struct store_stmt *s)
{
	s->sent = false;
	sqlite3_reset(s->st);
	sqlite3_clear_bindings(s->st);
}

static void sq_finalize(struct store_stmt *s)
{
	if (s == NULL)
		return;
	sqlite3_finalize(s->st);
	free(s);
}

static const char *sq_errmsg(struct store_conn *c)
{
	return c->err;
}

static bool sq_in_transaction(struct store_conn *c)
{
	return !sqlite3_get_autocommit(c->db);
}

const struct store_driver store_sqlite_driver = {
	.name = "sqlite",
	.dialect = STORE_SQLITE,
	.open = sq_open,
	.close = sq_close,
	.exec = sq_exec,
	.sync = sq_sync,
	.prepare = sq_prepare,
	.bind_int64 = sq_bind_int64,
	.bind_text = sq_bind_text,
	.bind_blob = sq_bind_blob,
	.bind_null = sq_bind_null,
	.step = sq_step,
	.run = sq_run,
	.send = sq_send,
	.column_is_null = sq_column_is_null,
	.column_int64 = sq_column_int64,
	.column_text = sq_column_text,
	.column_blob = sq_column_blob,
	.reset = sq_reset,
	.finalize = sq_finalize,
	.errmsg = sq_errmsg,
	.in_transaction = sq_in_transaction,
};
