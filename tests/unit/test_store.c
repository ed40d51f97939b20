/* Unit tests of src/store: migrations, certificates and keys, issuer links,
 * observations, listing filters, lookups, savepoints, the event chain.
 *
 * Every test runs against SQLite (a fresh file per test) and, when
 * ACLM_TEST_PG_URL is set, again against that PostgreSQL database (its
 * public schema is dropped and recreated before each test: use a throwaway
 * database).  Certificates are built by hand: the store does not parse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include "aclm/err.h"
#include "aclm/str.h"
#include "aclm/buf.h"
#include "aclm/store.h"
#include "aclm/store_json.h"

#define NOW 1700000000LL
#define DAY 86400LL

static const char *pg_url;   /* ACLM_TEST_PG_URL */
static bool use_pg;          /* the backend of the group being run */
static char dir[64];
static char url[256];        /* the database of the current test */
static char db_path[192];

/* --- the database under the store's feet -------------------------------- */

static void raw_exec(const char *sql)
{
	if (use_pg) {
		PGconn *c = PQconnectdb(pg_url);
		PGresult *r;

		assert_int_equal(PQstatus(c), CONNECTION_OK);
		PQsetNoticeProcessor(c, NULL, NULL);
		r = PQexec(c, sql);
		if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
			fail_msg("%s: %s", sql, PQresultErrorMessage(r));
		PQclear(r);
		PQfinish(c);
	} else {
		sqlite3 *db = NULL;
		char *msg = NULL;

		assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
		sqlite3_busy_timeout(db, 5000);
		if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
			fail_msg("%s: %s", sql, msg);
		sqlite3_close(db);
	}
}

static void quiet_notice(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

static int64_t raw_int(const char *sql)
{
	int64_t v = -1;

	if (use_pg) {
		PGconn *c = PQconnectdb(pg_url);
		PGresult *r = PQexec(c, sql);

		assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
		assert_int_equal(aclm_parse_int64(PQgetvalue(r, 0, 0), &v), ACLM_OK);
		PQclear(r);
		PQfinish(c);
	} else {
		sqlite3 *db = NULL;
		sqlite3_stmt *s = NULL;

		assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
		assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(s), SQLITE_ROW);
		v = sqlite3_column_int64(s, 0);
		sqlite3_finalize(s);
		sqlite3_close(db);
	}
	return v;
}

static void raw_text(const char *sql, char *out, size_t size)
{
	if (use_pg) {
		PGconn *c = PQconnectdb(pg_url);
		PGresult *r = PQexec(c, sql);

		assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
		aclm_strlcpy(out, PQgetvalue(r, 0, 0), size);
		PQclear(r);
		PQfinish(c);
	} else {
		sqlite3 *db = NULL;
		sqlite3_stmt *s = NULL;

		assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
		assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(s), SQLITE_ROW);
		aclm_strlcpy(out, (const char *)sqlite3_column_text(s, 0), size);
		sqlite3_finalize(s);
		sqlite3_close(db);
	}
}

static int setup(void **state)
{
	(void)state;
	if (use_pg) {
		PGconn *c = PQconnectdb(pg_url);
		PGresult *r;
		int ok;

		if (PQstatus(c) != CONNECTION_OK) {
			fprintf(stderr, "ACLM_TEST_PG_URL: %s", PQerrorMessage(c));
			PQfinish(c);
			return -1;
		}
		PQsetNoticeProcessor(c, quiet_notice, NULL);
		r = PQexec(c, "DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public");
		ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
		PQfinish(c);
		aclm_strlcpy(url, pg_url, sizeof(url));
		return ok ? 0 : -1;
	}
	snprintf(dir, sizeof(dir), "/tmp/aclm-store-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(db_path, sizeof(db_path), "%s/aclm.db", dir);
	snprintf(url, sizeof(url), "sqlite:%s", db_path);
	return 0;
}

static int teardown(void **state)
{
	char p[256];

	(void)state;
	if (use_pg)
		return 0;
	unlink(db_path);
	snprintf(p, sizeof(p), "%s-wal", db_path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", db_path);
	unlink(p);
	rmdir(dir);
	return 0;
}

static struct aclm_store *open_store(void)
{
	struct aclm_store *st = NULL;
	int rc = aclm_store_open(url, NULL, &st);

	if (rc != ACLM_OK)
		fail_msg("open %s: %s", url, aclm_errmsg());
	return st;
}

/* --- hand-made certificates ---------------------------------------------- */

struct tcert {
	struct aclm_cert c;
	struct aclm_san sans[4];
	char san_values[4][64];
	char der[64];
	char subject[128], issuer[128], cn[64], issuer_cn[64];
	char ski[41], aki[41];
	char curve[16];
};

static void sha256_hex(const char *a, const char *b, char out[65])
{
	unsigned char md[32];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	EVP_DigestUpdate(ctx, a, strlen(a));
	EVP_DigestUpdate(ctx, b, strlen(b));
	EVP_DigestFinal_ex(ctx, md, NULL);
	EVP_MD_CTX_free(ctx);
	aclm_hex_encode(md, sizeof(md), out);
}

/* A certificate named `label` (its fingerprint), subject CN=cn, issued by
 * CN=issuer_cn, with key `key` and issuer key `issuer_key` (AKI); EC P-256,
 * valid for 90 days up to not_after; the CN is also a DNS SAN when it has
 * a dot. */
static void tcert(struct tcert *t, const char *label, const char *cn, const char *issuer_cn,
                  const char *key, const char *issuer_key, int64_t not_after)
{
	char h[65];

	memset(t, 0, sizeof(*t));
	sha256_hex("cert:", label, t->c.fingerprint_hex);
	sha256_hex("key:", key, t->c.spki_hex);
	snprintf(t->cn, sizeof(t->cn), "%s", cn);
	snprintf(t->issuer_cn, sizeof(t->issuer_cn), "%s", issuer_cn);
	snprintf(t->subject, sizeof(t->subject), "CN=%s,O=Test", cn);
	snprintf(t->issuer, sizeof(t->issuer), "CN=%s,O=Test", issuer_cn);
	sha256_hex("name:", t->subject, t->c.subject_hash);
	sha256_hex("name:", t->issuer, t->c.issuer_hash);
	sha256_hex("ski:", key, h);
	memcpy(t->ski, h, 40);
	t->c.ski_hex = t->ski;
	if (issuer_key != NULL) {
		sha256_hex("ski:", issuer_key, h);
		memcpy(t->aki, h, 40);
		t->c.aki_hex = t->aki;
	}
	snprintf(t->der, sizeof(t->der), "DER of %s", label);
	t->c.der = (unsigned char *)t->der;
	t->c.der_len = strlen(t->der);
	t->c.subject = t->subject;
	t->c.issuer = t->issuer;
	t->c.subject_cn = t->cn;
	t->c.issuer_cn = t->issuer_cn;
	t->c.serial_hex = (char *)"0A1B";
	t->c.not_after = not_after;
	t->c.not_before = not_after - 90 * DAY;
	t->c.version = 3;
	t->c.key_type = ACLM_KEY_EC;
	t->c.key_bits = 256;
	snprintf(t->curve, sizeof(t->curve), "P-256");
	t->c.curve = t->curve;
	t->c.sig_alg = (char *)"ecdsa-with-SHA256";
	t->c.sans = t->sans;
	if (strchr(cn, '.') != NULL) {
		snprintf(t->san_values[0], sizeof(t->san_values[0]), "%s", cn);
		t->sans[0].type = ACLM_SAN_DNS;
		t->sans[0].value = t->san_values[0];
		t->c.n_sans = 1;
	}
}

static void add_san(struct tcert *t, enum aclm_san_type type, const char *value)
{
	size_t i = t->c.n_sans++;

	snprintf(t->san_values[i], sizeof(t->san_values[i]), "%s", value);
	t->sans[i].type = type;
	t->sans[i].value = t->san_values[i];
}

static int64_t put(struct aclm_store *st, struct tcert *t)
{
	int64_t id = 0;
	bool is_new = false;

	if (aclm_store_put_cert(st, &t->c, &id, &is_new) != ACLM_OK)
		fail_msg("put_cert: %s", aclm_errmsg());
	assert_true(is_new);
	return id;
}

/* --- collecting rows ------------------------------------------------------ */

#define MAX_ROWS 16

struct rows {
	int n;
	int64_t id[MAX_ROWS];
	int64_t issuer_id[MAX_ROWS];
	bool has_private_key[MAX_ROWS];
	int64_t first_seen[MAX_ROWS], last_seen[MAX_ROWS];
	char sans[MAX_ROWS][128];
	char spki[MAX_ROWS][65];
	char curve[MAX_ROWS][16];
	char level[MAX_ROWS][8];
};

static int collect(void *ctx, const struct aclm_cert_row *r)
{
	struct rows *rs = ctx;

	assert_true(rs->n < MAX_ROWS);
	rs->id[rs->n] = r->id;
	rs->issuer_id[rs->n] = r->issuer_id;
	rs->has_private_key[rs->n] = r->has_private_key;
	rs->first_seen[rs->n] = r->first_seen;
	rs->last_seen[rs->n] = r->last_seen;
	aclm_strlcpy(rs->sans[rs->n], r->sans, sizeof(rs->sans[0]));
	aclm_strlcpy(rs->spki[rs->n], r->spki, sizeof(rs->spki[0]));
	aclm_strlcpy(rs->curve[rs->n], r->curve != NULL ? r->curve : "(null)", sizeof(rs->curve[0]));
	aclm_strlcpy(rs->level[rs->n], r->level, sizeof(rs->level[0]));
	rs->n++;
	return 0;
}

static struct rows get_row(struct aclm_store *st, int64_t id)
{
	struct rows rs = { 0 };

	if (aclm_store_get_cert(st, id, collect, &rs) != ACLM_OK)
		fail_msg("get_cert %lld: %s", (long long)id, aclm_errmsg());
	assert_int_equal(rs.n, 1);
	return rs;
}

static struct rows list(struct aclm_store *st, const struct aclm_cert_filter *f)
{
	struct rows rs = { 0 };
	int64_t count = -1;

	if (aclm_store_list_certs(st, f, collect, &rs) != ACLM_OK)
		fail_msg("list_certs: %s", aclm_errmsg());
	if (f->limit == 0 && f->offset == 0) {
		assert_int_equal(aclm_store_count_certs(st, f, &count), ACLM_OK);
		assert_int_equal(count, rs.n);
	}
	return rs;
}

/* Listed ids, as "3,1,2" for readable assertions. */
static const char *ids(const struct rows *rs)
{
	static char out[256];
	size_t len = 0;

	out[0] = '\0';
	for (int i = 0; i < rs->n; i++)
		len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%lld", i ? "," : "",
		                        (long long)rs->id[i]);
	return out;
}

/* --- tests ---------------------------------------------------------------- */

static void test_migrate_fresh(void **state)
{
	struct aclm_store *st = open_store();
	struct aclm_store_stats s;
	int v = -1;

	(void)state;
	assert_string_equal(aclm_store_backend(st), use_pg ? "postgres" : "sqlite");
	assert_int_equal(aclm_store_schema_version(st, &v), ACLM_OK);
	assert_int_equal(v, aclm_store_code_version());
	assert_true(v >= 1);
	assert_int_equal(aclm_store_stats(st, &s), ACLM_OK);
	assert_int_equal(s.certificates + s.keys + s.observations + s.events, 0);
	aclm_store_close(st);
	if (!use_pg) {
		struct stat sb;
		assert_int_equal(stat(db_path, &sb), 0);
		assert_int_equal(sb.st_mode & 0777, 0600);
		/* A bare path is SQLite too. */
		assert_int_equal(aclm_store_open(db_path, NULL, &st), ACLM_OK);
		assert_string_equal(aclm_store_backend(st), "sqlite");
		assert_int_equal(aclm_store_schema_version(st, &v), ACLM_OK);
		assert_int_equal(v, aclm_store_code_version());
		aclm_store_close(st);
	}
	assert_int_equal(raw_int("SELECT MAX(version) FROM schema_migrations"),
	                 aclm_store_code_version());
	assert_int_equal(raw_int("SELECT COUNT(DISTINCT version) FROM schema_migrations"),
	                 raw_int("SELECT COUNT(*) FROM schema_migrations"));
}

static void test_reopen_no_remigration(void **state)
{
	struct aclm_store *st = open_store();
	int from = -1, to = -1;

	(void)state;
	aclm_store_close(st);
	st = open_store();
	assert_int_equal(aclm_store_migrate(st, &from, &to), ACLM_OK);
	assert_int_equal(from, aclm_store_code_version());
	assert_int_equal(to, aclm_store_code_version());
	aclm_store_close(st);
	assert_int_equal(raw_int("SELECT MAX(version) FROM schema_migrations"),
	                 aclm_store_code_version());
	assert_int_equal(raw_int("SELECT COUNT(DISTINCT version) FROM schema_migrations"),
	                 raw_int("SELECT COUNT(*) FROM schema_migrations"));
}

static void test_no_migrate_then_migrate(void **state)
{
	struct aclm_store_opts opts = { .no_migrate = true };
	struct aclm_store *st = NULL;
	int v = -1, from = -1, to = -1;

	(void)state;
	assert_int_equal(aclm_store_open(url, &opts, &st), ACLM_OK);
	assert_int_equal(aclm_store_schema_version(st, &v), ACLM_OK);
	assert_int_equal(v, 0);
	assert_int_equal(aclm_store_migrate(st, &from, &to), ACLM_OK);
	assert_int_equal(from, 0);
	assert_int_equal(to, aclm_store_code_version());
	aclm_store_close(st);
}

static void test_newer_schema_refused(void **state)
{
	struct aclm_store_opts opts = { .no_migrate = true };
	struct aclm_store *st = open_store();
	char sql[128];
	int v = 0;

	(void)state;
	aclm_store_close(st);
	snprintf(sql, sizeof(sql), "INSERT INTO schema_migrations (version, applied_at) "
	         "VALUES (%d, 1)", aclm_store_code_version() + 1);
	raw_exec(sql);
	st = NULL;
	assert_int_equal(aclm_store_open(url, NULL, &st), ACLM_ERR_VERSION);
	assert_null(st);
	assert_non_null(strstr(aclm_errmsg(), "is newer than this aclm"));
	assert_non_null(strstr(aclm_errmsg(), "upgrade aclm"));
	/* `aclm db status` can still look at it. */
	assert_int_equal(aclm_store_open(url, &opts, &st), ACLM_OK);
	assert_int_equal(aclm_store_schema_version(st, &v), ACLM_OK);
	assert_int_equal(v, aclm_store_code_version() + 1);
	assert_int_equal(aclm_store_migrate(st, NULL, NULL), ACLM_ERR_VERSION);
	aclm_store_close(st);
}

/* Two processes open the same fresh database at once: one migrates, the
 * other waits and finds it done. */
static void test_concurrent_first_open(void **state)
{
	pid_t pids[3];

	(void)state;
	for (int i = 0; i < 3; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			struct aclm_store *st = NULL;
			int rc = aclm_store_open(url, NULL, &st);
			if (rc != ACLM_OK)
				fprintf(stderr, "child: %s\n", aclm_errmsg());
			aclm_store_close(st);
			_exit(rc == ACLM_OK ? 0 : 1);
		}
	}
	for (int i = 0; i < 3; i++) {
		int status = 0;
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	assert_int_equal(raw_int("SELECT MAX(version) FROM schema_migrations"),
	                 aclm_store_code_version());
	assert_int_equal(raw_int("SELECT COUNT(DISTINCT version) FROM schema_migrations"),
	                 raw_int("SELECT COUNT(*) FROM schema_migrations"));
}

static void test_put_twice(void **state)
{
	struct aclm_store *st = open_store();
	struct aclm_store_stats s;
	struct tcert a;
	int64_t id1, id2 = 0;
	bool is_new = true;

	(void)state;
	tcert(&a, "a", "a.example.com", "CA", "ka", "kca", NOW + 10 * DAY);
	id1 = put(st, &a);
	assert_true(id1 > 0);
	assert_int_equal(aclm_store_put_cert(st, &a.c, &id2, &is_new), ACLM_OK);
	assert_false(is_new);
	assert_int_equal(id1, id2);
	assert_int_equal(aclm_store_stats(st, &s), ACLM_OK);
	assert_int_equal(s.certificates, 1);
	assert_int_equal(s.keys, 1);
	assert_int_equal(s.events, 1);
	aclm_store_close(st);
	assert_int_equal(raw_int("SELECT COUNT(*) FROM cert_names"), 1);
}

static void test_bad_cert_refused(void **state)
{
	struct aclm_store *st = open_store();
	struct tcert a;
	int64_t id;
	bool is_new;

	(void)state;
	tcert(&a, "a", "a.example.com", "CA", "ka", "kca", NOW);
	a.c.fingerprint_hex[10] = 'x';
	assert_int_equal(aclm_store_put_cert(st, &a.c, &id, &is_new), ACLM_ERR_USAGE);
	aclm_store_close(st);
}

static void test_shared_key(void **state)
{
	struct aclm_store *st = open_store();
	struct aclm_store_stats s;
	struct tcert a, b, c;
	struct rows rs = { 0 };
	int64_t ida, idb;

	(void)state;
	tcert(&a, "a", "a.example.com", "CA", "shared", "kca", NOW + 10 * DAY);
	tcert(&b, "b", "b.example.com", "CA", "shared", "kca", NOW + 20 * DAY);
	tcert(&c, "c", "c.example.com", "CA", "other", "kca", NOW + 30 * DAY);
	ida = put(st, &a);
	idb = put(st, &b);
	put(st, &c);
	assert_int_equal(aclm_store_stats(st, &s), ACLM_OK);
	assert_int_equal(s.certificates, 3);
	assert_int_equal(s.keys, 2);
	assert_int_equal(aclm_store_list_same_key(st, ida, collect, &rs), ACLM_OK);
	assert_int_equal(rs.n, 1);
	assert_int_equal(rs.id[0], idb);
	assert_string_equal(rs.spki[0], a.c.spki_hex);
	aclm_store_close(st);
}

/* root <- intermediate <- leaf, plus a root with the same name but another
 * key that must not be taken for the issuer. */
struct chain {
	struct tcert root, other_root, inter, leaf;
};

static void make_chain(struct chain *ch)
{
	tcert(&ch->root, "root", "Root CA", "Root CA", "kroot", "kroot", NOW + 3000 * DAY);
	ch->root.c.is_ca = true;
	tcert(&ch->other_root, "root2", "Root CA", "Root CA", "kroot2", "kroot2", NOW + 3000 * DAY);
	ch->other_root.c.is_ca = true;
	tcert(&ch->inter, "inter", "Intermediate CA", "Root CA", "kinter", "kroot", NOW + 1000 * DAY);
	ch->inter.c.is_ca = true;
	tcert(&ch->leaf, "leaf", "www.example.com", "Intermediate CA", "kleaf", "kinter",
	      NOW + 60 * DAY);
}

static void check_chain(struct aclm_store *st, int64_t root, int64_t other_root, int64_t inter,
                        int64_t leaf)
{
	assert_int_equal(get_row(st, leaf).issuer_id[0], inter);
	assert_int_equal(get_row(st, inter).issuer_id[0], root);
	assert_int_equal(get_row(st, root).issuer_id[0], 0);        /* self-signed: NULL */
	assert_int_equal(get_row(st, other_root).issuer_id[0], 0);
}

static void test_issuer_first(void **state)
{
	struct aclm_store *st = open_store();
	struct chain ch;
	int64_t other, root, inter, leaf;

	(void)state;
	make_chain(&ch);
	other = put(st, &ch.other_root);
	root = put(st, &ch.root);
	inter = put(st, &ch.inter);
	leaf = put(st, &ch.leaf);
	check_chain(st, root, other, inter, leaf);
	aclm_store_close(st);
}

static void test_leaf_first(void **state)
{
	struct aclm_store *st = open_store();
	struct chain ch;
	int64_t other, root, inter, leaf;

	(void)state;
	make_chain(&ch);
	leaf = put(st, &ch.leaf);
	assert_int_equal(get_row(st, leaf).issuer_id[0], 0);
	inter = put(st, &ch.inter);
	other = put(st, &ch.other_root);
	root = put(st, &ch.root);
	check_chain(st, root, other, inter, leaf);
	aclm_store_close(st);
}

/* Without key identifiers the name decides; a CA wins over a non-CA. */
static void test_issuer_without_aki(void **state)
{
	struct aclm_store *st = open_store();
	struct tcert ca, leaf, leaf2;
	int64_t ca_id, leaf_id, leaf2_id;

	(void)state;
	tcert(&leaf, "leaf", "a.example.com", "Some CA", "kleaf", NULL, NOW + DAY);
	leaf.c.ski_hex = NULL;
	leaf_id = put(st, &leaf);
	tcert(&ca, "ca", "Some CA", "Some Root", "kca", NULL, NOW + 900 * DAY);
	ca.c.ski_hex = NULL;
	ca.c.is_ca = true;
	ca_id = put(st, &ca);
	assert_int_equal(get_row(st, leaf_id).issuer_id[0], ca_id);
	tcert(&leaf2, "leaf2", "b.example.com", "Some CA", "kleaf2", "kca", NOW + DAY);
	leaf2_id = put(st, &leaf2);
	assert_int_equal(get_row(st, leaf2_id).issuer_id[0], ca_id);
	aclm_store_close(st);
}

static void test_private_key(void **state)
{
	struct aclm_store *st = open_store();
	struct aclm_store_stats s;
	struct tcert a, b;
	unsigned char sealed[40], *got = NULL;
	size_t got_len = 0;
	char unknown[65];
	bool stored = false;
	int64_t ida, idb;

	(void)state;
	for (size_t i = 0; i < sizeof(sealed); i++)
		sealed[i] = (unsigned char)(i * 7);  /* includes 0x00 bytes */
	tcert(&a, "a", "a.example.com", "CA", "ka", "kca", NOW + DAY);
	tcert(&b, "b", "b.example.com", "CA", "ka", "kca", NOW + 2 * DAY);
	ida = put(st, &a);
	idb = put(st, &b);
	sha256_hex("key:", "nobody", unknown);
	assert_int_equal(aclm_store_put_private_key(st, unknown, sealed, sizeof(sealed), &stored),
	                 ACLM_ERR_NOTFOUND);
	assert_int_equal(aclm_store_get_private_key(st, a.c.spki_hex, &got, &got_len),
	                 ACLM_ERR_NOTFOUND);
	assert_false(get_row(st, ida).has_private_key[0]);
	assert_int_equal(aclm_store_put_private_key(st, a.c.spki_hex, sealed, sizeof(sealed),
	                                            &stored), ACLM_OK);
	assert_true(stored);
	assert_int_equal(aclm_store_put_private_key(st, a.c.spki_hex, sealed, 3, &stored), ACLM_OK);
	assert_false(stored);  /* kept as is */
	assert_int_equal(aclm_store_get_private_key(st, a.c.spki_hex, &got, &got_len), ACLM_OK);
	assert_int_equal(got_len, sizeof(sealed));
	assert_memory_equal(got, sealed, sizeof(sealed));
	free(got);
	assert_int_equal(aclm_store_get_private_key(st, unknown, &got, &got_len), ACLM_ERR_NOTFOUND);
	assert_true(get_row(st, ida).has_private_key[0]);
	assert_true(get_row(st, idb).has_private_key[0]);  /* same key */
	assert_int_equal(aclm_store_stats(st, &s), ACLM_OK);
	assert_int_equal(s.private_keys, 1);
	aclm_store_close(st);
}

struct obs {
	int n;
	int64_t id[8], seen[8];
	char source[8][8], location[8][64];
};

static int collect_obs(void *ctx, const struct aclm_observation_row *r)
{
	struct obs *o = ctx;

	assert_true(o->n < 8);
	o->id[o->n] = r->id;
	o->seen[o->n] = r->seen_at;
	aclm_strlcpy(o->source[o->n], r->source, sizeof(o->source[0]));
	aclm_strlcpy(o->location[o->n], r->location, sizeof(o->location[0]));
	o->n++;
	return 0;
}

static void test_observations(void **state)
{
	struct aclm_store *st = open_store();
	struct aclm_store_stats s;
	struct tcert a;
	struct obs o = { 0 };
	struct rows rs;
	int64_t id;

	(void)state;
	tcert(&a, "a", "a.example.com", "CA", "ka", "kca", NOW + DAY);
	id = put(st, &a);
	/* A failure on first use of a statement leaves it usable. */
	assert_int_equal(aclm_store_add_observation(st, 9998, ACLM_SRC_IMPORT, "x", NOW),
	                 ACLM_ERR_DB);
	rs = get_row(st, id);
	assert_int_equal(rs.first_seen[0], 0);
	assert_int_equal(rs.last_seen[0], 0);
	assert_int_equal(aclm_store_add_observation(st, id, ACLM_SRC_IMPORT, "/etc/ssl/a.pem",
	                                            NOW - 100), ACLM_OK);
	assert_int_equal(aclm_store_add_observation(st, id, ACLM_SRC_SCAN, "a.example.com:443",
	                                            NOW), ACLM_OK);
	assert_int_equal(aclm_store_add_observation(st, id, ACLM_SRC_SCAN, "A.example.com:443",
	                                            NOW), ACLM_OK);
	assert_int_equal(aclm_store_add_observation(st, id, ACLM_SRC_ACME, "order 7",
	                                            NOW - 500), ACLM_OK);
	assert_int_equal(aclm_store_list_observations(st, id, collect_obs, &o), ACLM_OK);
	assert_int_equal(o.n, 4);
	assert_int_equal(o.seen[0], NOW);
	assert_int_equal(o.seen[1], NOW);
	assert_true(o.id[0] > o.id[1]);   /* same time: newest row first */
	assert_string_equal(o.location[0], "A.example.com:443");
	assert_string_equal(o.source[0], "scan");
	assert_string_equal(o.source[2], "import");
	assert_string_equal(o.location[2], "/etc/ssl/a.pem");
	assert_int_equal(o.seen[3], NOW - 500);
	rs = get_row(st, id);
	assert_int_equal(rs.first_seen[0], NOW - 500);
	assert_int_equal(rs.last_seen[0], NOW);
	assert_int_equal(aclm_store_stats(st, &s), ACLM_OK);
	assert_int_equal(s.observations, 4);
	assert_int_equal(s.endpoints, 1);
	/* Unknown certificate: refused, named in the message. */
	assert_int_equal(aclm_store_add_observation(st, 9999, ACLM_SRC_IMPORT, "x", NOW),
	                 ACLM_ERR_DB);
	assert_non_null(strstr(aclm_errmsg(), "9999"));
	assert_int_equal(aclm_store_add_observation(st, id, (enum aclm_source)42, "x", NOW),
	                 ACLM_ERR_USAGE);
	assert_int_equal(aclm_store_stats(st, &s), ACLM_OK);
	assert_int_equal(s.observations, 4);
	aclm_store_close(st);
}

/* The listing fixture: ids 1..7 in this order. */
static void listing_fixture(struct aclm_store *st)
{
	struct tcert t;

	/* 1: rsa2048, expires in 10 days, Let's Encrypt, DV */
	tcert(&t, "1", "a.example.com", "Let's Encrypt R3", "k1", NULL, NOW + 10 * DAY);
	snprintf(t.issuer, sizeof(t.issuer), "CN=R3,O=Let's Encrypt,C=US");
	t.c.key_type = ACLM_KEY_RSA;
	t.c.key_bits = 2048;
	t.c.curve = NULL;
	t.c.level = ACLM_LEVEL_DV;
	add_san(&t, ACLM_SAN_IP, "192.0.2.1");
	put(st, &t);
	/* 2: P-256, a wildcard, 40 days, OV */
	tcert(&t, "2", "*.example.com", "Other CA 100%", "k2", NULL, NOW + 40 * DAY);
	t.c.level = ACLM_LEVEL_OV;
	put(st, &t);
	/* 3: P-384, expired yesterday; its CN is not a SAN */
	tcert(&t, "3", "b.other.org", "Other CA", "k3", NULL, NOW - DAY);
	t.c.n_sans = 0;
	add_san(&t, ACLM_SAN_EMAIL, "Admin@Other.org");
	t.c.key_bits = 384;
	snprintf(t.curve, sizeof(t.curve), "P-384");
	put(st, &t);
	/* 4: Ed25519 CA, 100 days */
	tcert(&t, "4", "Example CA", "Example CA", "k4", "k4", NOW + 100 * DAY);
	t.c.not_before = NOW - 1000 * DAY;
	t.c.key_type = ACLM_KEY_ED25519;
	t.c.key_bits = 255;
	t.c.curve = NULL;
	t.c.is_ca = true;
	put(st, &t);
	/* 5: rsa4096, 5 days, two labels under example.com */
	tcert(&t, "5", "x.y.example.com", "Let's Encrypt R3", "k5", NULL, NOW + 5 * DAY);
	t.c.key_type = ACLM_KEY_RSA;
	t.c.key_bits = 4096;
	t.c.curve = NULL;
	put(st, &t);
	/* 6: SM2, not valid yet */
	tcert(&t, "6", "sm.example.cn", "SM CA", "k6", NULL, NOW + 200 * DAY);
	t.c.not_before = NOW + DAY;
	t.c.key_type = ACLM_KEY_SM2;
	snprintf(t.curve, sizeof(t.curve), "SM2");
	put(st, &t);
	/* 7: P-521, same expiry as 1 (order by id) */
	tcert(&t, "7", "c.example.net", "Other CA", "k7", NULL, NOW + 10 * DAY);
	t.c.key_bits = 521;
	snprintf(t.curve, sizeof(t.curve), "P-521");
	put(st, &t);
}

static void test_list_filters(void **state)
{
	struct aclm_store *st = open_store();
	struct aclm_cert_filter f;
	struct rows rs;

	(void)state;
	listing_fixture(st);
#define LIST(expect, ...) do { \
		memset(&f, 0, sizeof(f)); \
		f.now = NOW; \
		__VA_ARGS__; \
		rs = list(st, &f); \
		assert_string_equal(ids(&rs), expect); \
	} while (0)
	LIST("3,5,1,7,2,4,6");
	LIST("5,1,7", f.expiring_within = 30 * DAY);
	LIST("3", f.expired = true);
	LIST("5,1,7,2,4", f.valid = true);
	LIST("5,1", f.key_type = "rsa");
	LIST("1", f.key_type = "rsa2048");
	LIST("5", f.key_type = "RSA4096");
	LIST("3,7,2", f.key_type = "ec");
	LIST("3,7,2", f.key_type = "ecdsa");
	LIST("2", f.key_type = "p256");
	LIST("2", f.key_type = "ec256");
	LIST("3", f.key_type = "p384");
	LIST("7", f.key_type = "p521");
	LIST("4", f.key_type = "ed25519");
	LIST("", f.key_type = "ed448");
	LIST("6", f.key_type = "sm2");
	LIST("5,1", f.issuer = "let's ENCRYPT");
	LIST("2", f.issuer = "100%");
	LIST("", f.issuer = "1_0");
	LIST("3,7,2", f.issuer = "other ca");
	LIST("1,2", f.name = "a.example.com");
	LIST("1,2", f.name = "A.Example.COM");
	LIST("1,2", f.name = "*.example.com");
	LIST("5", f.name = "x.y.example.com");
	LIST("5", f.name = "*.y.example.com");
	LIST("2", f.name = "zzz.example.com");
	LIST("", f.name = "example.com");
	LIST("3", f.name = "b.other.org");            /* CN, not repeated by a SAN */
	LIST("3", f.name = "admin@other.org");
	LIST("1", f.name = "192.0.2.1");
	LIST("4", f.name = "Example CA");             /* a CN that is no name: exact text */
	LIST("", f.name = "*.Example CA");
	LIST("1", f.level = "dv");
	LIST("2", f.level = "ov");
	LIST("4", f.ca_only = true);
	LIST("3,5,1,7,2,6", f.leaf_only = true);
	LIST("6,4,2,7,1,5,3", f.descending = true);
	LIST("1,2,3,4,5,6,7", f.sort = ACLM_SORT_ID);
	LIST("7,6,5,4,3,2,1", f.sort = ACLM_SORT_ID; f.descending = true);
	LIST("4,3,5,1,7,2,6", f.sort = ACLM_SORT_NOT_BEFORE);
	/* subjects: "CN=*.example.com" < "CN=Example CA" < "CN=a..." (byte order) */
	LIST("2,4,1,3,7,6,5", f.sort = ACLM_SORT_SUBJECT);
	LIST("4,5,2,3,7,1,6", f.sort = ACLM_SORT_ISSUER);
	LIST("2,3,7,4,1,5,6", f.sort = ACLM_SORT_KEY);
	LIST("3,5", f.limit = 2);
	LIST("5,1", f.limit = 2; f.offset = 1);
	LIST("4,6", f.offset = 5);
	LIST("7", f.expiring_within = 30 * DAY; f.key_type = "ec");
	LIST("", f.expired = true; f.valid = true);
#undef LIST
	memset(&f, 0, sizeof(f));
	f.key_type = "rsa2x";
	assert_int_equal(aclm_store_list_certs(st, &f, collect, &rs), ACLM_ERR_USAGE);
	f.key_type = NULL;
	f.limit = -1;
	assert_int_equal(aclm_store_list_certs(st, &f, collect, &rs), ACLM_ERR_USAGE);
	aclm_store_close(st);
}

static void test_row_fields(void **state)
{
	struct aclm_store *st = open_store();
	struct tcert t;
	struct rows rs;
	int64_t id;

	(void)state;
	tcert(&t, "r", "a.example.com", "CA", "k", NULL, NOW + DAY);
	add_san(&t, ACLM_SAN_IP, "10.0.0.1");
	add_san(&t, ACLM_SAN_URI, "https://a.example.com/");
	t.c.level = ACLM_LEVEL_EV;
	id = put(st, &t);
	rs = get_row(st, id);
	assert_string_equal(rs.sans[0], "DNS:a.example.com,IP:10.0.0.1,URI:https://a.example.com/");
	assert_string_equal(rs.spki[0], t.c.spki_hex);
	assert_string_equal(rs.curve[0], "P-256");
	assert_string_equal(rs.level[0], "ev");
	t.c.curve = NULL;
	t.c.level = ACLM_LEVEL_NONE;
	t.c.n_sans = 0;
	sha256_hex("cert:", "r2", t.c.fingerprint_hex);
	id = put(st, &t);
	rs = get_row(st, id);
	assert_string_equal(rs.sans[0], "");
	assert_string_equal(rs.curve[0], "(null)");
	assert_string_equal(rs.level[0], "");
	assert_int_equal(aclm_store_get_cert(st, 999, collect, &rs), ACLM_ERR_NOTFOUND);
	aclm_store_close(st);
}

static int stop_at_two(void *ctx, const struct aclm_cert_row *r)
{
	int *n = ctx;

	(void)r;
	return ++*n == 2 ? 42 : 0;
}

struct nested {
	struct aclm_store *st;
	int n;
};

/* A callback that queries the store: the listing must go on after it. */
static int nested_get(void *ctx, const struct aclm_cert_row *r)
{
	struct nested *nc = ctx;
	struct rows inner = { 0 };
	unsigned char *der = NULL;
	size_t len = 0;

	assert_int_equal(aclm_store_get_cert(nc->st, r->id, collect, &inner), ACLM_OK);
	assert_int_equal(inner.id[0], r->id);
	assert_int_equal(aclm_store_get_cert_der(nc->st, r->id, &der, &len), ACLM_OK);
	free(der);
	nc->n++;
	return 0;
}

static int nested_get_again(void *ctx, const struct aclm_cert_row *r)
{
	struct nested *nc = ctx;
	struct rows inner = { 0 };

	/* get_cert inside get_cert: the cached statement is busy. */
	assert_int_equal(aclm_store_get_cert(nc->st, r->id == 1 ? 2 : 1, collect, &inner), ACLM_OK);
	nc->n++;
	return 0;
}

static void test_list_callbacks(void **state)
{
	struct aclm_store *st = open_store();
	struct aclm_cert_filter f = { .now = NOW };
	struct nested nc = { .st = st };
	int n = 0;

	(void)state;
	listing_fixture(st);
	assert_int_equal(aclm_store_list_certs(st, &f, stop_at_two, &n), 42);
	assert_int_equal(n, 2);
	assert_int_equal(aclm_store_list_certs(st, &f, nested_get, &nc), ACLM_OK);
	assert_int_equal(nc.n, 7);
	nc.n = 0;
	assert_int_equal(aclm_store_get_cert(st, 1, nested_get_again, &nc), ACLM_OK);
	assert_int_equal(nc.n, 1);
	/* The store still works after an abandoned listing. */
	n = 0;
	assert_int_equal(aclm_store_list_certs(st, &f, stop_at_two, &n), 42);
	assert_int_equal(aclm_store_count_certs(st, &f, &(int64_t){ 0 }), ACLM_OK);
	aclm_store_close(st);
}

static void test_find(void **state)
{
	struct aclm_store *st = open_store();
	struct tcert a, b, c;
	int64_t ida, idb, id = 0;
	char ref[128];

	(void)state;
	tcert(&a, "a", "a.example.com", "CA", "ka", NULL, NOW);
	tcert(&b, "b", "b.example.com", "CA", "kb", NULL, NOW);
	tcert(&c, "c", "c.example.com", "CA", "kc", NULL, NOW);
	memcpy(a.c.fingerprint_hex, "deadbeef00", 10);
	memcpy(b.c.fingerprint_hex, "deadbeef11", 10);
	memcpy(c.c.fingerprint_hex, "0123456789", 10);
	ida = put(st, &a);
	idb = put(st, &b);
	put(st, &c);
	assert_int_equal(aclm_store_find_cert(st, "2", &id), ACLM_OK);
	assert_int_equal(id, idb);
	assert_int_equal(aclm_store_find_cert(st, "99", &id), ACLM_ERR_NOTFOUND);
	assert_int_equal(aclm_store_find_cert(st, a.c.fingerprint_hex, &id), ACLM_OK);
	assert_int_equal(id, ida);
	assert_int_equal(aclm_store_find_cert(st, "DE:AD:BE:EF:00", &id), ACLM_OK);
	assert_int_equal(id, ida);
	assert_int_equal(aclm_store_find_cert(st, "deadbeef1", &id), ACLM_OK);
	assert_int_equal(id, idb);
	assert_int_equal(aclm_store_find_cert(st, "deadbeef", &id), ACLM_ERR_AMBIGUOUS);
	assert_non_null(strstr(aclm_errmsg(), "several"));
	assert_int_equal(aclm_store_find_cert(st, "deadbee", &id), ACLM_ERR_USAGE);
	assert_int_equal(aclm_store_find_cert(st, "ffffffff", &id), ACLM_ERR_NOTFOUND);
	assert_int_equal(aclm_store_find_cert(st, "deadbeef22", &id), ACLM_ERR_NOTFOUND);
	assert_non_null(strstr(aclm_errmsg(), "deadbeef22"));
	assert_int_equal(aclm_store_find_cert(st, "www.example.com", &id), ACLM_ERR_USAGE);
	snprintf(ref, sizeof(ref), "%s0", a.c.fingerprint_hex);
	assert_int_equal(aclm_store_find_cert(st, ref, &id), ACLM_ERR_USAGE);
	aclm_store_close(st);
}

static void test_der(void **state)
{
	struct aclm_store *st = open_store();
	struct tcert a;
	unsigned char *der = NULL;
	size_t len = 0;
	int64_t id;

	(void)state;
	tcert(&a, "a", "a.example.com", "CA", "ka", NULL, NOW);
	a.der[3] = '\0';  /* a NUL inside the blob */
	id = put(st, &a);
	assert_int_equal(aclm_store_get_cert_der(st, id, &der, &len), ACLM_OK);
	assert_int_equal(len, a.c.der_len);
	assert_memory_equal(der, a.c.der, len);
	free(der);
	assert_int_equal(aclm_store_get_cert_der(st, id + 1, &der, &len), ACLM_ERR_NOTFOUND);
	aclm_store_close(st);
}

static void test_savepoints(void **state)
{
	struct aclm_store *st = open_store();
	struct aclm_store_stats s;
	struct tcert a, b, c, d;
	int64_t ida, idb, idc, n = 0, bad = -1, id;
	bool is_new;

	(void)state;
	tcert(&a, "a", "a.example.com", "CA", "ka", NULL, NOW);
	tcert(&b, "b", "b.example.com", "CA", "kb", NULL, NOW);
	tcert(&c, "c", "c.example.com", "CA", "kc", NULL, NOW);
	tcert(&d, "d", "d.example.com", "CA", "kd", NULL, NOW);
	assert_int_equal(aclm_store_begin(st), ACLM_OK);
	ida = put(st, &a);
	assert_int_equal(aclm_store_add_observation(st, ida, ACLM_SRC_IMPORT, "a.pem", NOW), ACLM_OK);
	/* A failed operation rolls back only itself. */
	assert_int_equal(aclm_store_add_observation(st, 12345, ACLM_SRC_IMPORT, "x", NOW),
	                 ACLM_ERR_DB);
	assert_int_equal(aclm_store_begin(st), ACLM_OK);
	idb = put(st, &b);
	assert_int_equal(aclm_store_add_observation(st, idb, ACLM_SRC_IMPORT, "b.pem", NOW), ACLM_OK);
	assert_int_equal(aclm_store_rollback(st), ACLM_OK);
	idc = put(st, &c);
	assert_int_equal(aclm_store_begin(st), ACLM_OK);
	assert_int_equal(aclm_store_begin(st), ACLM_OK);
	put(st, &d);
	assert_int_equal(aclm_store_commit(st), ACLM_OK);
	assert_int_equal(aclm_store_rollback(st), ACLM_OK);  /* takes d with it */
	assert_int_equal(aclm_store_commit(st), ACLM_OK);
	assert_int_equal(aclm_store_commit(st), ACLM_ERR_USAGE);
	assert_int_equal(aclm_store_stats(st, &s), ACLM_OK);
	assert_int_equal(s.certificates, 2);
	assert_int_equal(s.observations, 1);
	assert_int_equal(s.events, 2);
	assert_int_equal(aclm_store_find_cert(st, b.c.fingerprint_hex, &id), ACLM_ERR_NOTFOUND);
	assert_int_equal(aclm_store_find_cert(st, c.c.fingerprint_hex, &id), ACLM_OK);
	assert_int_equal(id, idc);
	/* The chain continues from the event that survived. */
	assert_int_equal(aclm_store_verify_events(st, &n, &bad), ACLM_OK);
	assert_int_equal(n, 2);
	assert_int_equal(bad, 0);
	/* After the outer transaction: b can go in again. */
	assert_int_equal(aclm_store_put_cert(st, &b.c, &id, &is_new), ACLM_OK);
	assert_true(is_new);
	aclm_store_close(st);
}

/* An outer transaction rolled back as a whole leaves nothing. */
static void test_outer_rollback(void **state)
{
	struct aclm_store *st = open_store();
	struct aclm_store_stats s;
	struct tcert a;

	(void)state;
	tcert(&a, "a", "a.example.com", "CA", "ka", NULL, NOW);
	assert_int_equal(aclm_store_begin(st), ACLM_OK);
	put(st, &a);
	assert_int_equal(aclm_store_rollback(st), ACLM_OK);
	assert_int_equal(aclm_store_rollback(st), ACLM_ERR_USAGE);
	assert_int_equal(aclm_store_stats(st, &s), ACLM_OK);
	assert_int_equal(s.certificates + s.keys + s.events, 0);
	put(st, &a);
	aclm_store_close(st);
}

/* The documented encoding, computed independently of store.c. */
static void expected_hash(const char *prev, int64_t id, int64_t at, const char *type,
                          const char *subject, const char *detail, char out[65])
{
	const char *fields[6];
	char id_text[24], at_text[24];
	unsigned char md[32];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	snprintf(id_text, sizeof(id_text), "%lld", (long long)id);
	snprintf(at_text, sizeof(at_text), "%lld", (long long)at);
	fields[0] = prev;
	fields[1] = id_text;
	fields[2] = at_text;
	fields[3] = type;
	fields[4] = subject;
	fields[5] = detail;
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	for (int i = 0; i < 6; i++) {
		unsigned char len[4] = { 0xff, 0xff, 0xff, 0xff };
		if (fields[i] != NULL) {
			size_t n = strlen(fields[i]);
			len[0] = (unsigned char)(n >> 24);
			len[1] = (unsigned char)(n >> 16);
			len[2] = (unsigned char)(n >> 8);
			len[3] = (unsigned char)n;
		}
		EVP_DigestUpdate(ctx, len, 4);
		if (fields[i] != NULL)
			EVP_DigestUpdate(ctx, fields[i], strlen(fields[i]));
	}
	EVP_DigestFinal_ex(ctx, md, NULL);
	EVP_MD_CTX_free(ctx);
	aclm_hex_encode(md, sizeof(md), out);
}

static void test_events(void **state)
{
	struct aclm_store *st = open_store();
	struct tcert a;
	int64_t n = -1, bad = -1;
	char h1[65], h2[65], stored[80];

	(void)state;
	assert_int_equal(aclm_store_verify_events(st, &n, &bad), ACLM_OK);
	assert_int_equal(n, 0);
	assert_int_equal(bad, 0);
	assert_int_equal(aclm_store_append_event(st, "test.one", "s1", NULL), ACLM_OK);
	assert_int_equal(aclm_store_append_event(st, "test.two", NULL, "{\"k\":\"v\"}"), ACLM_OK);
	tcert(&a, "a", "a.example.com", "CA", "ka", NULL, NOW);
	put(st, &a);
	assert_int_equal(aclm_store_append_event(st, "", "s", NULL), ACLM_ERR_USAGE);
	assert_int_equal(aclm_store_verify_events(st, &n, &bad), ACLM_OK);
	assert_int_equal(n, 3);
	assert_int_equal(bad, 0);
	/* The hashes follow the documented encoding. */
	expected_hash("0000000000000000000000000000000000000000000000000000000000000000",
	              1, NOW, "test.one", "s1", NULL, h1);
	raw_text("SELECT hash FROM events WHERE id = 1", stored, sizeof(stored));
	assert_string_equal(stored, h1);
	expected_hash(h1, 2, NOW, "test.two", NULL, "{\"k\":\"v\"}", h2);
	raw_text("SELECT hash FROM events WHERE id = 2", stored, sizeof(stored));
	assert_string_equal(stored, h2);
	raw_text("SELECT detail FROM events WHERE id = 3", stored, sizeof(stored));
	assert_string_equal(stored, "{\"subject\":\"CN=a.example.com,O=Test\",\"not_after\":1700000000}");
	raw_text("SELECT type FROM events WHERE id = 3", stored, sizeof(stored));
	assert_string_equal(stored, "cert.added");
	aclm_store_close(st);

	/* Tampering behind the store's back is found. */
	raw_exec("UPDATE events SET detail = '{\"k\":\"w\"}' WHERE id = 2");
	st = open_store();
	assert_int_equal(aclm_store_verify_events(st, &n, &bad), ACLM_OK);
	assert_int_equal(n, 3);
	assert_int_equal(bad, 2);
	aclm_store_close(st);
	raw_exec("UPDATE events SET detail = '{\"k\":\"v\"}' WHERE id = 2");
	raw_exec("DELETE FROM events WHERE id = 2");
	st = open_store();
	assert_int_equal(aclm_store_verify_events(st, &n, &bad), ACLM_OK);
	assert_int_equal(n, 2);
	assert_int_equal(bad, 3);
	aclm_store_close(st);
}

/* Appenders in several processes at once: one unbroken chain. */
static void test_events_concurrent(void **state)
{
	struct aclm_store *st = open_store();
	pid_t pids[3];
	int64_t n = -1, bad = -1;

	(void)state;
	aclm_store_close(st);
	for (int i = 0; i < 3; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			struct aclm_store *cst = NULL;
			int rc = aclm_store_open(url, NULL, &cst);
			for (int j = 0; j < 30 && rc == ACLM_OK; j++) {
				char subject[32];
				snprintf(subject, sizeof(subject), "p%d-%d", i, j);
				rc = aclm_store_append_event(cst, "test.concurrent", subject, NULL);
			}
			if (rc != ACLM_OK)
				fprintf(stderr, "child %d: %s\n", i, aclm_errmsg());
			aclm_store_close(cst);
			_exit(rc == ACLM_OK ? 0 : 1);
		}
	}
	for (int i = 0; i < 3; i++) {
		int status = 0;
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	st = open_store();
	assert_int_equal(aclm_store_verify_events(st, &n, &bad), ACLM_OK);
	assert_int_equal(n, 90);
	assert_int_equal(bad, 0);
	aclm_store_close(st);
}

/* Errors name the database and what failed. */
static void test_error_messages(void **state)
{
	struct aclm_store *st = NULL;

	(void)state;
	if (use_pg) {
		assert_int_equal(aclm_store_open("postgresql://nobody:secret@127.0.0.1:1/x?sslmode=disable",
		                                 NULL, &st), ACLM_ERR_DB);
		assert_non_null(strstr(aclm_errmsg(), "postgresql://nobody@127.0.0.1:1/x"));
		assert_null(strstr(aclm_errmsg(), "secret"));
	} else {
		assert_int_equal(aclm_store_open("sqlite:/nonexistent-dir/x.db", NULL, &st), ACLM_ERR_IO);
		assert_non_null(strstr(aclm_errmsg(), "sqlite:/nonexistent-dir/x.db"));
	}
	assert_null(st);
}


/* aclm_cert_row_json_text() writes what json_dumpb() makes of
 * aclm_cert_row_json(), byte for byte: jansson is the oracle. */
static void check_row_text(const struct aclm_cert_row *r)
{
	const size_t flags = JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII;
	json_t *o = aclm_cert_row_json(r, 1700000000);
	char *want = json_dumps(o, flags);
	struct aclm_buf b;

	assert_non_null(want);
	aclm_buf_init(&b, 0);
	assert_int_equal(aclm_cert_row_json_text(r, 1700000000, &b), ACLM_OK);
	assert_string_equal(aclm_buf_cstr(&b), want);
	aclm_buf_free(&b);
	free(want);
	json_decref(o);
}

static void test_row_json_text(void **state)
{
	struct aclm_cert_row r = {
		.id = 42, .fingerprint = "ab01", .spki = "cd02",
		.subject = "CN=\"quoted\" \\ back/slash,O=Caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80",
		.issuer = "CN=ctl \x01\x1f\b\f\n\r\t\x7f end", .subject_cn = NULL,
		.issuer_cn = "Issuer", .serial = "00ff", .not_before = 1690000000,
		.not_after = 1702592000, .key_type = "rsa", .key_bits = 2048, .curve = NULL,
		.sig_alg = "sha256WithRSAEncryption", .level = "ov",
		.sans = "DNS:a.example,,IP:10.0.0.1,email:\xc3\xa9@x,", .is_ca = false,
		.issuer_id = 0, .has_private_key = true, .first_seen = 0, .last_seen = 1699999999,
	};

	(void)state;
	check_row_text(&r);
	r.sans = "";
	r.key_type = "ec";
	r.key_bits = 256;
	r.curve = "P-256";
	r.issuer_id = 7;
	r.first_seen = 1690000001;
	r.level = NULL;
	r.is_ca = true;
	r.has_private_key = false;
	r.subject_cn = "only ascii";
	check_row_text(&r);
	r.sans = "DNS:x";
	r.key_type = "ed25519";
	r.not_after = 1600000000;   /* expired: negative days */
	check_row_text(&r);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_migrate_fresh),
		T(test_reopen_no_remigration),
		T(test_no_migrate_then_migrate),
		T(test_newer_schema_refused),
		T(test_concurrent_first_open),
		T(test_put_twice),
		T(test_bad_cert_refused),
		T(test_shared_key),
		T(test_issuer_first),
		T(test_leaf_first),
		T(test_issuer_without_aki),
		T(test_private_key),
		T(test_observations),
		T(test_list_filters),
		T(test_row_fields),
		T(test_list_callbacks),
		T(test_find),
		T(test_der),
		T(test_savepoints),
		T(test_outer_rollback),
		T(test_events),
		T(test_events_concurrent),
		T(test_error_messages),
	};
	int failed;

	setenv("ACLM_NOW", "1700000000", 1);
	pg_url = getenv("ACLM_TEST_PG_URL");
	use_pg = false;
	{
		const struct CMUnitTest plain[] = { cmocka_unit_test(test_row_json_text) };
		failed = cmocka_run_group_tests_name("store/json", plain, NULL, NULL);
	}
	failed += cmocka_run_group_tests_name("store/sqlite", tests, NULL, NULL);
	if (pg_url != NULL && *pg_url != '\0') {
		use_pg = true;
		failed += cmocka_run_group_tests_name("store/postgres", tests, NULL, NULL);
	}
	return failed;
}
