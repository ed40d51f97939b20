/* Bulk import: many certificates seen at one place, in a few statements.
 *
 * aclm_store_import_certs() has the meaning of aclm_store_put_cert() and
 * aclm_store_add_observation() called for each certificate in turn, and on
 * SQLite that is what it does: SQLite answers in-process, so a statement
 * costs microseconds.  On PostgreSQL each statement is work in the server
 * (parse of the bound values, planning, a subtransaction per savepoint), so
 * a bundle of a thousand certificates is sent as arrays instead: one query
 * finds the certificates already stored, one draws the new rows' ids from
 * the sequence and looks up their issuers, and one multi-row INSERT ...
 * SELECT FROM unnest(...) per table writes them (keys, certificates, DER,
 * names, events, observations).
 *
 * The result is the same rows, ids and event chain as the one-by-one path
 * (docs/internals/store.md, "Bulk import"); in particular the issuer link
 * follows the same rule, computed here for the certificates of the batch
 * (which the INSERT's own subquery could not see). */
#include <stdlib.h>
#include <string.h>

#include "aclm/buf.h"
#include "aclm/err.h"
#include "aclm/str.h"
#include "aclm/timeutil.h"
#include "store-int.h"

/* Certificates per round of statements: bounds the arrays (DER in hex is
 * the largest, about 4 kB a certificate). */
#define BULK_CHUNK 1000
#define ARRAY_MAX ((size_t)64 << 20)

#define SELF_SIGNED_C \
	"(c.subject_hash = c.issuer_hash AND (c.aki IS NULL OR c.ski IS NULL OR c.aki = c.ski))"

static const char SQL_KNOWN[] =
	"SELECT fingerprint, id FROM certificates "
	"WHERE fingerprint = ANY(CAST(? AS TEXT[]))";
/* Ids for the new rows, drawn from the column's own sequence so that the
 * one-by-one path and other writers go on from there. */
static const char SQL_NEW_IDS[] =
	"SELECT nextval(pg_get_serial_sequence('certificates', 'id')) AS id "
	"FROM generate_series(1, CAST(? AS INTEGER)) ORDER BY 1";
/* For each (issuer name, AKI) of the batch, the best stored issuer by the
 * rule of SQL_INSERT_CERT in store.c: a CA first, then the lowest id. */
static const char SQL_STORED_ISSUERS[] =
	"SELECT u.o, p.id, p.is_ca "
	"FROM unnest(CAST(? AS TEXT[]), CAST(? AS TEXT[])) WITH ORDINALITY AS u(h, a, o) "
	"CROSS JOIN LATERAL (SELECT p.id, p.is_ca FROM certificates p WHERE p.subject_hash = u.h "
	"AND (p.ski IS NULL OR p.ski = COALESCE(u.a, p.ski)) "
	"ORDER BY p.is_ca DESC, p.id LIMIT 1) p";
static const char SQL_BULK_KEYS[] =
	"INSERT INTO keys (spki_sha256, key_type, key_bits, curve) "
	"SELECT u.s, u.t, u.b, u.c "
	"FROM unnest(CAST(? AS TEXT[]), CAST(? AS TEXT[]), CAST(? AS INTEGER[]), "
	"CAST(? AS TEXT[])) WITH ORDINALITY AS u(s, t, b, c, o) "
	"WHERE NOT EXISTS (SELECT 1 FROM keys k WHERE k.spki_sha256 = u.s) "
	"ORDER BY u.o ON CONFLICT (spki_sha256) DO NOTHING";
/* No ON CONFLICT on the new rows: the ids are fresh and the fingerprints
 * were just found absent, so a conflict means another writer stored one
 * of them meanwhile; the statement then fails, and the batch is redone one
 * by one (aclm_store_import_certs).  Speculative insertion would cost
 * about a sixth of the INSERT. */
static const char SQL_BULK_CERTS[] =
	"INSERT INTO certificates (id, fingerprint, key_id, subject, issuer, subject_cn, "
	"issuer_cn, subject_hash, issuer_hash, serial, not_before, not_after, key_type, key_bits, "
	"curve, sig_alg, level, is_ca, ski, aki, sans, created_at, issuer_id, first_seen, "
	"last_seen, list_name, list_issuer) "
	"SELECT u.id, u.fp, (SELECT k.id FROM keys k WHERE k.spki_sha256 = u.spki), u.subject, "
	"u.issuer, u.subject_cn, u.issuer_cn, u.subject_hash, u.issuer_hash, u.serial, "
	"u.not_before, u.not_after, u.key_type, u.key_bits, u.curve, u.sig_alg, u.level, u.is_ca, "
	"u.ski, u.aki, u.sans, CAST(? AS BIGINT), u.issuer_id, CAST(? AS BIGINT), "
	"CAST(? AS BIGINT), u.list_name, u.list_issuer "
	"FROM unnest(CAST(? AS BIGINT[]), CAST(? AS TEXT[]), CAST(? AS TEXT[]), "
	"CAST(? AS TEXT[]), CAST(? AS TEXT[]), CAST(? AS TEXT[]), CAST(? AS TEXT[]), "
	"CAST(? AS TEXT[]), CAST(? AS TEXT[]), CAST(? AS TEXT[]), CAST(? AS BIGINT[]), "
	"CAST(? AS BIGINT[]), CAST(? AS TEXT[]), CAST(? AS INTEGER[]), CAST(? AS TEXT[]), "
	"CAST(? AS TEXT[]), CAST(? AS TEXT[]), CAST(? AS INTEGER[]), CAST(? AS TEXT[]), "
	"CAST(? AS TEXT[]), CAST(? AS TEXT[]), CAST(? AS BIGINT[]), CAST(? AS TEXT[]), "
	"CAST(? AS TEXT[])) "
	"AS u(id, fp, spki, subject, issuer, subject_cn, issuer_cn, subject_hash, issuer_hash, "
	"serial, not_before, not_after, key_type, key_bits, curve, sig_alg, level, is_ca, ski, "
	"aki, sans, issuer_id, list_name, list_issuer) "
	"ORDER BY u.id";
static const char SQL_BULK_DER[] =
	"INSERT INTO certificate_der (cert_id, der) "
	"SELECT * FROM unnest(CAST(? AS BIGINT[]), CAST(? AS BYTEA[]))";
static const char SQL_BULK_NAMES[] =
	"INSERT INTO cert_names (cert_id, name, type, parent) "
	"SELECT * FROM unnest(CAST(? AS BIGINT[]), CAST(? AS TEXT[]), CAST(? AS TEXT[]), "
	"CAST(? AS TEXT[]))";
/* Stored certificates with no issuer yet that one of the batch issued:
 * the first of the batch (lowest id) that fits, as SQL_LINK_CHILDREN run
 * for each new certificate in turn would choose. */
static const char SQL_BULK_LINK_CHILDREN[] =
	"WITH p AS (SELECT * FROM unnest(CAST(? AS BIGINT[]), CAST(? AS TEXT[]), "
	"CAST(? AS TEXT[])) AS p(id, h, ski)), "
	"x AS (SELECT DISTINCT ON (c.id) c.id AS cid, p.id AS pid "
	"FROM certificates c JOIN p ON p.h = c.issuer_hash "
	"AND (p.ski IS NULL OR c.aki IS NULL OR c.aki = p.ski) "
	/* = ANY(array) keeps the probe on the index whatever the planner
	 * guesses of p's size (a join on p alone turned into a scan of all
	 * certificates per row of p while the table had no statistics). */
	"WHERE c.issuer_hash = ANY(CAST(? AS TEXT[])) AND c.issuer_id IS NULL "
	"AND c.id < CAST(? AS BIGINT) AND NOT " SELF_SIGNED_C " ORDER BY c.id, p.id) "
	"UPDATE certificates SET issuer_id = x.pid FROM x WHERE certificates.id = x.cid";
static const char SQL_BULK_EVENTS[] =
	"INSERT INTO events (id, at, type, subject, detail, prev_hash, hash) "
	"SELECT u.id, CAST(? AS BIGINT), 'cert.added', u.s, u.d, u.p, u.h "
	"FROM unnest(CAST(? AS BIGINT[]), CAST(? AS TEXT[]), CAST(? AS TEXT[]), "
	"CAST(? AS TEXT[]), CAST(? AS TEXT[])) AS u(id, s, d, p, h) ORDER BY u.id";
static const char SQL_BULK_OBSERVATIONS[] =
	"INSERT INTO observations (cert_id, endpoint_id, source, location, seen_at) "
	"SELECT u.c, CAST(NULL AS BIGINT), ?, ?, CAST(? AS BIGINT) "
	"FROM unnest(CAST(? AS BIGINT[])) WITH ORDINALITY AS u(c, o) ORDER BY u.o";
/* Known certificates only (new rows were written with the time), and only
 * rows that change: PostgreSQL writes a new row version even for an
 * UPDATE that sets the same values. */
static const char SQL_BULK_SEEN[] =
	"UPDATE certificates SET "
	"first_seen = CASE WHEN first_seen IS NULL OR first_seen > ? THEN ? ELSE first_seen END, "
	"last_seen = CASE WHEN last_seen IS NULL OR last_seen < ? THEN ? ELSE last_seen END "
	"WHERE id = ANY(CAST(? AS BIGINT[])) "
	"AND (first_seen IS NULL OR first_seen > ? OR last_seen IS NULL OR last_seen < ?)";

/* --- PostgreSQL arrays, binary ----------------------------------------- */

/* Arrays are sent in PostgreSQL's binary format (array_recv): no quoting or
 * hex on this side, no parsing of a text literal on the server.  Header:
 * ndim, has-nulls flag, element type OID, then length and lower bound of
 * the one dimension; each element a 4-byte length (-1: NULL) and its
 * bytes, integers big-endian.  The statement's CAST gives the parameter its
 * type, and the server checks the element OID against it. */
enum {
	OID_BYTEA = 17,
	OID_INT8 = 20,
	OID_INT4 = 23,
	OID_TEXT = 25,
};
#define ARR_HEADER 20

struct arr {
	struct aclm_buf b;
	uint32_t oid;
	uint32_t n;
	bool nulls;
	int rc;      /* the first failure sticks */
};

#define SP_ARR(a) SP_B((a).b.data, (a).b.len)

static void be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static void arr_init(struct arr *a, uint32_t oid)
{
	static const unsigned char zero[ARR_HEADER];

	aclm_buf_init(&a->b, ARRAY_MAX);
	a->oid = oid;
	a->n = 0;
	a->nulls = false;
	a->rc = aclm_buf_append(&a->b, zero, sizeof(zero));
}

static void arr_bytes(struct arr *a, const void *p, size_t len)
{
	unsigned char hdr[4];

	if (a->rc != ACLM_OK)
		return;
	if (len > INT32_MAX) {
		a->rc = ACLM_ERR_TOOBIG;
		return;
	}
	be32(hdr, (uint32_t)len);
	if ((a->rc = aclm_buf_append(&a->b, hdr, 4)) == ACLM_OK && len > 0)
		a->rc = aclm_buf_append(&a->b, p, len);
	a->n++;
}

static void arr_text(struct arr *a, const char *v)
{
	static const unsigned char null[4] = { 0xff, 0xff, 0xff, 0xff };

	if (v != NULL) {
		arr_bytes(a, v, strlen(v));
		return;
	}
	if (a->rc == ACLM_OK)
		a->rc = aclm_buf_append(&a->b, null, 4);
	a->nulls = true;
	a->n++;
}

static void arr_int(struct arr *a, int64_t v)
{
	unsigned char x[8];

	if (a->oid == OID_INT4) {
		be32(x, (uint32_t)(int32_t)v);
		arr_bytes(a, x, 4);
		return;
	}
	be32(x, (uint32_t)((uint64_t)v >> 32));
	be32(x + 4, (uint32_t)v);
	arr_bytes(a, x, 8);
}

/* 0 is no row id: NULL. */
static void arr_id_or_null(struct arr *a, int64_t v)
{
	if (v == 0)
		arr_text(a, NULL);
	else
		arr_int(a, v);
}

/* Finish the header; the error is recorded when building failed. */
static int arr_end(struct arr *a, const char *what)
{
	unsigned char *h = a->b.data;

	if (a->rc != ACLM_OK) {
		if (a->rc == ACLM_ERR_TOOBIG)
			return aclm_error(a->rc, "bulk import: the %s of one batch exceed %zu MB", what,
			                  ARRAY_MAX >> 20);
		return aclm_error(a->rc, "out of memory");
	}
	be32(h, a->n > 0 ? 1 : 0);     /* an empty array has no dimension */
	be32(h + 4, a->nulls ? 1 : 0);
	be32(h + 8, a->oid);
	be32(h + 12, a->n);
	be32(h + 16, 1);
	if (a->n == 0)
		a->b.len = 12;
	return ACLM_OK;
}

static int arrs_end(struct arr *a, size_t n, const char *what)
{
	int rc = ACLM_OK;

	for (size_t i = 0; i < n && rc == ACLM_OK; i++)
		rc = arr_end(&a[i], what);
	return rc;
}

static void arrs_free(struct arr *a, size_t n)
{
	for (size_t i = 0; i < n; i++)
		aclm_buf_free(&a[i].b);
}

/* --- one batch ----------------------------------------------------------- */

struct item {
	const struct aclm_cert *c;
	char fp[65];
	char spki[65];
	size_t dup_of;     /* index of the first occurrence in the batch, or itself */
	int64_t id;        /* 0: not known yet */
	bool is_new;
	int64_t issuer_id; /* new certificates: the chosen issuer, 0 for none */
	int64_t stored_issuer;  /* best issuer among rows stored before the batch */
	bool stored_issuer_ca;
	bool key_first;     /* new, and the first of the batch with its key */
};

struct batch {
	struct aclm_store *st;
	struct item *it;
	size_t n;
	size_t *by_fp;     /* indexes sorted by fingerprint, then index */
	size_t *news;      /* indexes of the new certificates, in batch order */
	size_t n_new;
	size_t *by_subject;  /* news sorted by subject hash, then id */
};

/* qsort has no context argument; per thread, as every thread may import
 * on its own store connection. */
static _Thread_local struct batch *sort_ctx;

static int cmp_fp(const void *a, const void *b)
{
	const struct item *x = &sort_ctx->it[*(const size_t *)a];
	const struct item *y = &sort_ctx->it[*(const size_t *)b];
	int d = strcmp(x->fp, y->fp);

	if (d != 0)
		return d;
	return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

static int cmp_spki(const void *a, const void *b)
{
	const struct item *x = &sort_ctx->it[*(const size_t *)a];
	const struct item *y = &sort_ctx->it[*(const size_t *)b];
	int d = strcmp(x->spki, y->spki);

	if (d != 0)
		return d;
	return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

/* key_first[i] for each new certificate: the first of the batch with its
 * key, which inserts the key's row (a sort, not a scan of those before). */
static void mark_first_keys(struct batch *bt)
{
	sort_ctx = bt;
	for (size_t j = 0; j < bt->n_new; j++)
		bt->by_subject[j] = bt->news[j];     /* scratch, sorted by subject later */
	qsort(bt->by_subject, bt->n_new, sizeof(*bt->by_subject), cmp_spki);
	for (size_t j = 0; j < bt->n_new; j++) {
		struct item *x = &bt->it[bt->by_subject[j]];
		x->key_first = j == 0 || strcmp(bt->it[bt->by_subject[j - 1]].spki, x->spki) != 0;
	}
}

static int cmp_subject(const void *a, const void *b)
{
	const struct item *x = &sort_ctx->it[*(const size_t *)a];
	const struct item *y = &sort_ctx->it[*(const size_t *)b];
	int d = strcmp(x->c->subject_hash, y->c->subject_hash);

	if (d != 0)
		return d;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* The first index of by_fp whose fingerprint is fp, or n. */
static size_t find_fp(const struct batch *bt, const char *fp)
{
	size_t lo = 0, hi = bt->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(bt->it[bt->by_fp[mid]].fp, fp) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < bt->n && strcmp(bt->it[bt->by_fp[lo]].fp, fp) == 0 ? lo : bt->n;
}

/* Which certificates are stored already (one query), and which are the
 * same certificate twice in the batch. */
static int find_known(struct batch *bt)
{
	struct aclm_store *st = bt->st;
	struct store_query q = { .stmt = NULL, .slot = -1 };
	struct arr fps;
	int rc;

	arr_init(&fps, OID_TEXT);
	for (size_t i = 0; i < bt->n; i++) {
		bt->by_fp[i] = i;
		arr_text(&fps, bt->it[i].fp);
	}
	sort_ctx = bt;
	qsort(bt->by_fp, bt->n, sizeof(*bt->by_fp), cmp_fp);
	for (size_t k = 0; k < bt->n; k++) {
		size_t i = bt->by_fp[k];
		bt->it[i].dup_of = k > 0 && strcmp(bt->it[bt->by_fp[k - 1]].fp, bt->it[i].fp) == 0
		                   ? bt->it[bt->by_fp[k - 1]].dup_of : i;
	}
	if ((rc = arr_end(&fps, "fingerprints")) != ACLM_OK)
		goto out;
	{
		const struct store_param p[] = { SP_ARR(fps) };
		if ((rc = store_query_open(st, &q, SQL_KNOWN, "find stored certificates", 0,
		                           p, 1)) != ACLM_OK)
			goto out;
	}
	while ((rc = store_query_step(st, &q)) == 1) {
		const char *fp = st->drv->column_text(q.stmt, 0);
		int64_t id = st->drv->column_int64(q.stmt, 1);
		size_t k = fp != NULL ? find_fp(bt, fp) : bt->n;

		for (; k < bt->n && strcmp(bt->it[bt->by_fp[k]].fp, fp) == 0; k++)
			bt->it[bt->by_fp[k]].id = id;
	}
	store_query_close(st, &q);
out:
	aclm_buf_free(&fps.b);
	return rc < 0 ? rc : ACLM_OK;
}

/* Ids for the new certificates, in batch order, and the best stored issuer
 * of each: two queries, one round trip. */
static int draw_ids(struct batch *bt)
{
	struct aclm_store *st = bt->st;
	struct store_query ids = { .stmt = NULL, .slot = -1 };
	struct store_query iss = { .stmt = NULL, .slot = -1 };
	struct arr a[2];
	size_t k = 0;
	int rc;

	arr_init(&a[0], OID_TEXT);
	arr_init(&a[1], OID_TEXT);
	for (size_t j = 0; j < bt->n_new; j++) {
		const struct aclm_cert *c = bt->it[bt->news[j]].c;
		arr_text(&a[0], c->issuer_hash);
		arr_text(&a[1], c->aki_hex);
	}
	if ((rc = arrs_end(a, 2, "issuer names")) != ACLM_OK)
		goto out;
	{
		const struct store_param p[] = { SP_I((int64_t)bt->n_new) };
		if ((rc = store_query_open(st, &ids, SQL_NEW_IDS, "draw certificate ids", 0,
		                           p, 1)) != ACLM_OK)
			goto out;
		if (st->drv->send(ids.stmt) != ACLM_OK) {
			rc = store_db_error(st, NULL);
			goto out;
		}
	}
	{
		const struct store_param p[] = { SP_ARR(a[0]), SP_ARR(a[1]) };
		if ((rc = store_query_open(st, &iss, SQL_STORED_ISSUERS, "find stored issuers", 0,
		                           p, 2)) != ACLM_OK)
			goto out;
		if (st->drv->send(iss.stmt) != ACLM_OK) {
			rc = store_db_error(st, NULL);
			goto out;
		}
	}
	while ((rc = store_query_step(st, &ids)) == 1) {
		if (k < bt->n_new)
			bt->it[bt->news[k]].id = st->drv->column_int64(ids.stmt, 0);
		k++;
	}
	if (rc < 0)
		goto out;
	if (k != bt->n_new) {
		rc = aclm_error(ACLM_ERR_DB, "%s: asked for %zu certificate ids, got %zu",
		                st->display, bt->n_new, k);
		goto out;
	}
	while ((rc = store_query_step(st, &iss)) == 1) {
		int64_t o = st->drv->column_int64(iss.stmt, 0);
		if (o >= 1 && (size_t)o <= bt->n_new) {
			struct item *x = &bt->it[bt->news[o - 1]];
			x->stored_issuer = st->drv->column_int64(iss.stmt, 1);
			x->stored_issuer_ca = st->drv->column_int64(iss.stmt, 2) != 0;
		}
	}
	if (rc > 0)
		rc = ACLM_OK;
out:
	store_query_close(st, &iss);
	store_query_close(st, &ids);
	arrs_free(a, 2);
	return rc;
}

static bool may_issue(const struct aclm_cert *p, const struct aclm_cert *c)
{
	return p->ski_hex == NULL || c->aki_hex == NULL || strcmp(p->ski_hex, c->aki_hex) == 0;
}

/* The issuer of each new certificate, as the one-by-one path would have
 * linked it: among the rows before it (stored ones and earlier ones of the
 * batch) a CA first, then the lowest id; failing those, the first later
 * certificate of the batch that fits (linked when it arrived). */
static void choose_issuers(struct batch *bt)
{
	sort_ctx = bt;
	for (size_t j = 0; j < bt->n_new; j++)
		bt->by_subject[j] = bt->news[j];
	qsort(bt->by_subject, bt->n_new, sizeof(*bt->by_subject), cmp_subject);

	for (size_t j = 0; j < bt->n_new; j++) {
		struct item *x = &bt->it[bt->news[j]];
		const struct aclm_cert *c = x->c;
		int64_t before_ca = 0, before = 0, after = 0;
		size_t lo = 0, hi = bt->n_new;

		x->issuer_id = 0;
		if (c->issuer_hash[0] == '\0' || store_self_signed(c))
			continue;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (strcmp(bt->it[bt->by_subject[mid]].c->subject_hash, c->issuer_hash) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (; lo < bt->n_new; lo++) {
			const struct item *p = &bt->it[bt->by_subject[lo]];
			if (strcmp(p->c->subject_hash, c->issuer_hash) != 0)
				break;
			if (p == x || !may_issue(p->c, c))
				continue;
			if (p->id > x->id) {
				if (after == 0)
					after = p->id;   /* sorted by id: the first is the lowest */
			} else if (p->c->is_ca) {
				if (before_ca == 0)
					before_ca = p->id;
			} else if (before == 0) {
				before = p->id;
			}
		}
		if (x->stored_issuer != 0 && x->stored_issuer_ca)
			x->issuer_id = x->stored_issuer;
		else if (before_ca != 0)
			x->issuer_id = before_ca;
		else if (x->stored_issuer != 0)
			x->issuer_id = x->stored_issuer;
		else if (before != 0)
			x->issuer_id = before;
		else
			x->issuer_id = after;
	}
}

struct name_rows {
	struct arr *a;      /* cert_id, name, type, parent */
	int64_t id;
	/* This certificate's rows so far, "type\0name": the same SAN twice
	 * would break cert_names' primary key. */
	char **seen;
	size_t n_seen;
	int rc;
};

static int add_name_row(void *ctx, const char *name, const char *type, const char *parent)
{
	struct name_rows *nr = ctx;
	size_t tl = strlen(type), nl = strlen(name);
	char **more, *key;

	for (size_t i = 0; i < nr->n_seen; i++)
		if (strcmp(nr->seen[i], type) == 0 && strcmp(nr->seen[i] + tl + 1, name) == 0)
			return ACLM_OK;
	if ((more = realloc(nr->seen, (nr->n_seen + 1) * sizeof(*more))) == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	nr->seen = more;
	if ((key = malloc(tl + nl + 2)) == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	memcpy(key, type, tl + 1);
	memcpy(key + tl + 1, name, nl + 1);
	nr->seen[nr->n_seen++] = key;

	arr_int(&nr->a[0], nr->id);
	arr_text(&nr->a[1], name);
	arr_text(&nr->a[2], type);
	arr_text(&nr->a[3], parent);
	return ACLM_OK;
}

static void name_rows_clear(struct name_rows *nr)
{
	for (size_t i = 0; i < nr->n_seen; i++)
		free(nr->seen[i]);
	free(nr->seen);
	nr->seen = NULL;
	nr->n_seen = 0;
}

enum {
	C_ID, C_FP, C_SPKI, C_SUBJECT, C_ISSUER, C_SUBJECT_CN, C_ISSUER_CN, C_SUBJECT_HASH,
	C_ISSUER_HASH, C_SERIAL, C_NOT_BEFORE, C_NOT_AFTER, C_KEY_TYPE, C_KEY_BITS, C_CURVE,
	C_SIG_ALG, C_LEVEL, C_IS_CA, C_SKI, C_AKI, C_SANS, C_ISSUER_ID, C_LIST_NAME, C_LIST_ISSUER,
	N_CERT_COLS
};

/* The rows of the new certificates, queued. */
static int queue_new_rows(struct batch *bt, int64_t when)
{
	struct aclm_store *st = bt->st;
	struct arr cols[N_CERT_COLS], keys[4], der[2], names[4], links[3], ev[5];
	int64_t now = aclm_now(), first_new = bt->it[bt->news[0]].id;
	struct aclm_buf detail;
	int rc = ACLM_OK;

	aclm_buf_init(&detail, (size_t)16 << 20);
	for (size_t k = 0; k < N_CERT_COLS; k++)
		arr_init(&cols[k], k == C_ID || k == C_NOT_BEFORE || k == C_NOT_AFTER ||
		                   k == C_ISSUER_ID ? OID_INT8 :
		                   k == C_KEY_BITS || k == C_IS_CA ? OID_INT4 : OID_TEXT);
	for (size_t k = 0; k < 5; k++) {
		if (k < 4) {
			arr_init(&keys[k], k == 2 ? OID_INT4 : OID_TEXT);
			arr_init(&names[k], k == 0 ? OID_INT8 : OID_TEXT);
		}
		if (k < 3)
			arr_init(&links[k], k == 0 ? OID_INT8 : OID_TEXT);
		if (k < 2)
			arr_init(&der[k], k == 0 ? OID_INT8 : OID_BYTEA);
		arr_init(&ev[k], k == 0 ? OID_INT8 : OID_TEXT);
	}
	if ((rc = store_events_lock(st)) != ACLM_OK)
		goto out;

	for (size_t j = 0; j < bt->n_new && rc == ACLM_OK; j++) {
		const struct item *x = &bt->it[bt->news[j]];
		const struct aclm_cert *c = x->c;
		struct name_rows nr = { .a = names, .id = x->id };
		char *sans = NULL;
		char hash[65], list[STORE_LIST_MAX];

		/* A key's row once, at its first certificate. */
		if (x->key_first) {
			arr_text(&keys[0], x->spki);
			arr_text(&keys[1], aclm_key_type_name(c->key_type));
			arr_int(&keys[2], c->key_bits);
			arr_text(&keys[3], c->curve);
		}
		if ((rc = store_sans_text(c, &sans)) != ACLM_OK)
			break;
		arr_int(&cols[C_ID], x->id);
		arr_text(&cols[C_FP], x->fp);
		arr_text(&cols[C_SPKI], x->spki);
		arr_text(&cols[C_SUBJECT], store_text_or_empty(c->subject));
		arr_text(&cols[C_ISSUER], store_text_or_empty(c->issuer));
		arr_text(&cols[C_SUBJECT_CN], c->subject_cn);
		arr_text(&cols[C_ISSUER_CN], c->issuer_cn);
		arr_text(&cols[C_SUBJECT_HASH], c->subject_hash);
		arr_text(&cols[C_ISSUER_HASH], c->issuer_hash);
		arr_text(&cols[C_SERIAL], store_text_or_empty(c->serial_hex));
		arr_int(&cols[C_NOT_BEFORE], c->not_before);
		arr_int(&cols[C_NOT_AFTER], c->not_after);
		arr_text(&cols[C_KEY_TYPE], aclm_key_type_name(c->key_type));
		arr_int(&cols[C_KEY_BITS], c->key_bits);
		arr_text(&cols[C_CURVE], c->curve);
		arr_text(&cols[C_SIG_ALG], store_text_or_empty(c->sig_alg));
		arr_text(&cols[C_LEVEL], store_level_text(c->level));
		arr_int(&cols[C_IS_CA], c->is_ca ? 1 : 0);
		arr_text(&cols[C_SKI], c->ski_hex);
		arr_text(&cols[C_AKI], c->aki_hex);
		arr_text(&cols[C_SANS], sans);
		arr_id_or_null(&cols[C_ISSUER_ID], x->issuer_id);
		store_list_name(list, c->subject, c->subject_cn, sans);
		arr_text(&cols[C_LIST_NAME], list);
		store_list_issuer(list, c->issuer, c->issuer_cn);
		arr_text(&cols[C_LIST_ISSUER], list);
		free(sans);

		arr_int(&der[0], x->id);
		arr_bytes(&der[1], c->der, c->der_len);
		rc = store_cert_names(c, add_name_row, &nr);
		name_rows_clear(&nr);
		if (rc != ACLM_OK)
			break;
		if (c->subject_hash[0] != '\0') {
			arr_int(&links[0], x->id);
			arr_text(&links[1], c->subject_hash);
			arr_text(&links[2], c->ski_hex);
		}

		aclm_buf_reset(&detail);
		if ((rc = store_cert_added_detail(c, &detail)) != ACLM_OK ||
		    (rc = store_event_hash(st->tail_hash, st->tail_id + 1, now, "cert.added", x->fp,
		                           aclm_buf_cstr(&detail), hash)) != ACLM_OK)
			break;
		arr_int(&ev[0], st->tail_id + 1);
		arr_text(&ev[1], x->fp);
		arr_text(&ev[2], aclm_buf_cstr(&detail));
		arr_text(&ev[3], st->tail_hash);
		arr_text(&ev[4], hash);
		st->tail_id++;
		aclm_strlcpy(st->tail_hash, hash, sizeof(st->tail_hash));
	}
	if (rc != ACLM_OK)
		goto out;

	if ((rc = arrs_end(keys, 4, "keys")) != ACLM_OK)
		goto out;
	{
		const struct store_param p[] = {
			SP_ARR(keys[0]), SP_ARR(keys[1]), SP_ARR(keys[2]), SP_ARR(keys[3]),
		};
		if ((rc = store_run(st, SQL_BULK_KEYS, "insert keys", p, SP_COUNT(p))) != ACLM_OK)
			goto out;
	}
	if ((rc = arrs_end(cols, N_CERT_COLS, "certificate rows")) != ACLM_OK)
		goto out;
	{
		const struct store_param p[] = {
			SP_I(now), SP_I(when), SP_I(when),
			SP_ARR(cols[C_ID]), SP_ARR(cols[C_FP]), SP_ARR(cols[C_SPKI]),
			SP_ARR(cols[C_SUBJECT]), SP_ARR(cols[C_ISSUER]), SP_ARR(cols[C_SUBJECT_CN]),
			SP_ARR(cols[C_ISSUER_CN]), SP_ARR(cols[C_SUBJECT_HASH]),
			SP_ARR(cols[C_ISSUER_HASH]), SP_ARR(cols[C_SERIAL]), SP_ARR(cols[C_NOT_BEFORE]),
			SP_ARR(cols[C_NOT_AFTER]), SP_ARR(cols[C_KEY_TYPE]), SP_ARR(cols[C_KEY_BITS]),
			SP_ARR(cols[C_CURVE]), SP_ARR(cols[C_SIG_ALG]), SP_ARR(cols[C_LEVEL]),
			SP_ARR(cols[C_IS_CA]), SP_ARR(cols[C_SKI]), SP_ARR(cols[C_AKI]),
			SP_ARR(cols[C_SANS]), SP_ARR(cols[C_ISSUER_ID]), SP_ARR(cols[C_LIST_NAME]),
			SP_ARR(cols[C_LIST_ISSUER]),
		};
		if ((rc = store_run(st, SQL_BULK_CERTS, "insert certificates", p,
		                    SP_COUNT(p))) != ACLM_OK)
			goto out;
	}
	if ((rc = arrs_end(der, 2, "DER")) != ACLM_OK)
		goto out;
	{
		const struct store_param p[] = { SP_ARR(der[0]), SP_ARR(der[1]) };
		if ((rc = store_run(st, SQL_BULK_DER, "insert certificate DER", p,
		                    SP_COUNT(p))) != ACLM_OK)
			goto out;
	}
	if (names[0].n > 0) {
		if ((rc = arrs_end(names, 4, "names")) != ACLM_OK)
			goto out;
		const struct store_param p[] = {
			SP_ARR(names[0]), SP_ARR(names[1]), SP_ARR(names[2]), SP_ARR(names[3]),
		};
		if ((rc = store_run(st, SQL_BULK_NAMES, "insert certificate names", p,
		                    SP_COUNT(p))) != ACLM_OK)
			goto out;
	}
	if (links[0].n > 0) {
		if ((rc = arrs_end(links, 3, "issuer links")) != ACLM_OK)
			goto out;
		const struct store_param p[] = {
			SP_ARR(links[0]), SP_ARR(links[1]), SP_ARR(links[2]), SP_ARR(links[1]),
			SP_I(first_new),
		};
		if ((rc = store_run(st, SQL_BULK_LINK_CHILDREN, "link issued certificates", p,
		                    SP_COUNT(p))) != ACLM_OK)
			goto out;
	}
	if ((rc = arrs_end(ev, 5, "events")) != ACLM_OK)
		goto out;
	{
		const struct store_param p[] = {
			SP_I(now), SP_ARR(ev[0]), SP_ARR(ev[1]), SP_ARR(ev[2]), SP_ARR(ev[3]), SP_ARR(ev[4]),
		};
		rc = store_run(st, SQL_BULK_EVENTS, "insert events", p, SP_COUNT(p));
	}
out:
	aclm_buf_free(&detail);
	arrs_free(cols, N_CERT_COLS);
	arrs_free(keys, 4);
	arrs_free(der, 2);
	arrs_free(names, 4);
	arrs_free(links, 3);
	arrs_free(ev, 5);
	return rc;
}

/* The observation of every certificate of the batch, and first/last seen
 * of the ones that were stored before. */
static int queue_observations(struct batch *bt, const char *source, const char *location,
                              int64_t when)
{
	struct aclm_store *st = bt->st;
	struct arr all, known;
	int rc;

	arr_init(&all, OID_INT8);
	arr_init(&known, OID_INT8);
	for (size_t i = 0; i < bt->n; i++) {
		arr_int(&all, bt->it[i].id);
		if (!bt->it[i].is_new && bt->it[i].dup_of == i)
			arr_int(&known, bt->it[i].id);
	}
	if ((rc = arr_end(&all, "observations")) != ACLM_OK ||
	    (rc = arr_end(&known, "observations")) != ACLM_OK)
		goto out;
	{
		const struct store_param p[] = { SP_T(source), SP_T(location), SP_I(when), SP_ARR(all) };
		if ((rc = store_run(st, SQL_BULK_OBSERVATIONS, "insert observations", p,
		                    SP_COUNT(p))) != ACLM_OK)
			goto out;
	}
	if (known.n > 0) {
		const struct store_param p[] = {
			SP_I(when), SP_I(when), SP_I(when), SP_I(when), SP_ARR(known), SP_I(when), SP_I(when),
		};
		rc = store_run(st, SQL_BULK_SEEN, "update first/last seen", p, SP_COUNT(p));
	}
out:
	aclm_buf_free(&all.b);
	aclm_buf_free(&known.b);
	return rc;
}

/* One batch on PostgreSQL, in the caller's transaction level; its
 * statements are queued, the caller's store_end() waits for them. */
static int bulk_batch(struct batch *bt, const char *source, const char *location,
                      int64_t when)
{
	int rc;

	if ((rc = find_known(bt)) != ACLM_OK)
		return rc;
	bt->n_new = 0;
	for (size_t i = 0; i < bt->n; i++) {
		struct item *x = &bt->it[i];
		x->is_new = x->id == 0 && x->dup_of == i;
		if (x->is_new)
			bt->news[bt->n_new++] = i;
	}
	if (bt->n_new > 0) {
		if ((rc = draw_ids(bt)) != ACLM_OK)
			return rc;
		mark_first_keys(bt);
		choose_issuers(bt);
		if ((rc = queue_new_rows(bt, when)) != ACLM_OK)
			return rc;
	}
	for (size_t i = 0; i < bt->n; i++)
		bt->it[i].id = bt->it[bt->it[i].dup_of].id;
	return queue_observations(bt, source, location, when);
}

static int one_by_one(struct aclm_store *st, struct aclm_cert *const *certs, size_t n,
                      enum aclm_source source, const char *location, int64_t when,
                      int64_t *ids, bool *is_new)
{
	int rc = ACLM_OK;

	for (size_t i = 0; i < n && rc == ACLM_OK; i++) {
		rc = aclm_store_put_cert(st, certs[i], &ids[i], &is_new[i]);
		if (rc == ACLM_OK)
			rc = aclm_store_add_observation(st, ids[i], source, location, when);
	}
	return rc;
}

int aclm_store_import_certs(struct aclm_store *st, struct aclm_cert *const *certs, size_t n,
                            enum aclm_source source, const char *location, int64_t when,
                            int64_t *ids, bool *is_new)
{
	struct batch bt = { .st = st };
	const char *src;
	int rc;

	if ((rc = store_source_text(source, &src)) != ACLM_OK)
		return rc;
	if (location == NULL)
		location = "";
	if ((rc = aclm_store_begin(st)) != ACLM_OK)
		return rc;
	/* Scan observations also record the endpoint: the one-by-one path. */
	if (st->drv->dialect != STORE_POSTGRES || source == ACLM_SRC_SCAN || n == 0) {
		rc = one_by_one(st, certs, n, source, location, when, ids, is_new);
		return store_end(st, rc);
	}
	bt.it = calloc(n < BULK_CHUNK ? n : BULK_CHUNK, sizeof(*bt.it));
	bt.by_fp = calloc(BULK_CHUNK, sizeof(*bt.by_fp));
	bt.news = calloc(BULK_CHUNK, sizeof(*bt.news));
	bt.by_subject = calloc(BULK_CHUNK, sizeof(*bt.by_subject));
	if (bt.it == NULL || bt.by_fp == NULL || bt.news == NULL || bt.by_subject == NULL) {
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t lo = 0; lo < n && rc == ACLM_OK; lo += bt.n) {
		bt.n = n - lo < BULK_CHUNK ? n - lo : BULK_CHUNK;
		memset(bt.it, 0, bt.n * sizeof(*bt.it));
		for (size_t i = 0; i < bt.n; i++) {
			const struct aclm_cert *c = certs[lo + i];
			bt.it[i].c = c;
			if (!store_hex64(c->fingerprint_hex, bt.it[i].fp) ||
			    !store_hex64(c->spki_hex, bt.it[i].spki)) {
				rc = aclm_error(ACLM_ERR_USAGE, "certificate without a SHA-256 fingerprint "
				                "or SPKI hash: not stored");
				goto out;
			}
		}
		if ((rc = aclm_store_begin(st)) != ACLM_OK)
			goto out;
		rc = store_end(st, bulk_batch(&bt, src, location, when));
		if (rc != ACLM_OK) {
			/* Another writer stored one of the new certificates since
			 * find_known() (the INSERT failed on the fingerprint), or the
			 * batch failed otherwise; its level is rolled back.  Take the
			 * path that checks each certificate on its own, whose error,
			 * if any, names the certificate. */
			aclm_error_clear();
			if ((rc = aclm_store_begin(st)) != ACLM_OK)
				goto out;
			rc = one_by_one(st, certs + lo, bt.n, source, location, when, ids + lo,
			                is_new + lo);
			if ((rc = store_end(st, rc)) != ACLM_OK)
				goto out;
			continue;
		}
		for (size_t i = 0; i < bt.n; i++) {
			ids[lo + i] = bt.it[i].id;
			is_new[lo + i] = bt.it[i].is_new;
		}
	}
out:
	free(bt.it);
	free(bt.by_fp);
	free(bt.news);
	free(bt.by_subject);
	return store_end(st, rc);
}

/* --- migration 10 ------------------------------------------------------ */

/* The list columns of the rows that have none, LIST_FILL_CHUNK rows at a
 * time in id order: each chunk read, then written, on PostgreSQL by one
 * UPDATE from arrays (a million rows one by one would be a million round
 * trips), on SQLite row by row. */
#define LIST_FILL_CHUNK 2000

struct list_row {
	int64_t id;
	char name[STORE_LIST_MAX];
	char issuer[STORE_LIST_MAX];
};

static const char SQL_LIST_SOURCE[] =
	"SELECT id, subject, subject_cn, sans, issuer, issuer_cn FROM certificates "
	"WHERE list_name IS NULL AND id > ? ORDER BY id LIMIT ?";
static const char SQL_LIST_SET[] =
	"UPDATE certificates SET list_name = ?, list_issuer = ? WHERE id = ?";
static const char SQL_LIST_SET_ARRAYS[] =
	"UPDATE certificates SET list_name = u.n, list_issuer = u.i "
	"FROM unnest(CAST(? AS BIGINT[]), CAST(? AS TEXT[]), CAST(? AS TEXT[])) AS u(id, n, i) "
	"WHERE certificates.id = u.id";

/* Up to LIST_FILL_CHUNK rows after id *last into rows[]; *n of them. */
static int list_rows_read(struct aclm_store *st, int64_t *last, struct list_row *rows,
                          size_t *n)
{
	const struct store_driver *d = st->drv;
	const struct store_param p[] = { SP_I(*last), SP_I(LIST_FILL_CHUNK) };
	struct store_query q = { .stmt = NULL, .slot = -1 };
	int rc;

	*n = 0;
	if ((rc = store_query_open(st, &q, SQL_LIST_SOURCE, "read certificates", 0, p,
	                           SP_COUNT(p))) != ACLM_OK)
		return rc;
	while (*n < LIST_FILL_CHUNK && (rc = store_query_step(st, &q)) == 1) {
		struct list_row *r = &rows[(*n)++];
		r->id = *last = d->column_int64(q.stmt, 0);
		store_list_name(r->name, d->column_text(q.stmt, 1), d->column_text(q.stmt, 2),
		                d->column_text(q.stmt, 3));
		store_list_issuer(r->issuer, d->column_text(q.stmt, 4), d->column_text(q.stmt, 5));
	}
	store_query_close(st, &q);
	return rc < 0 ? rc : ACLM_OK;
}

static int list_rows_write(struct aclm_store *st, const struct list_row *rows, size_t n)
{
	struct arr a[3];
	int rc = ACLM_OK;

	if (st->drv->dialect != STORE_POSTGRES) {
		for (size_t i = 0; i < n && rc == ACLM_OK; i++) {
			const struct store_param p[] = {
				SP_T(rows[i].name), SP_T(rows[i].issuer), SP_I(rows[i].id),
			};
			rc = store_run(st, SQL_LIST_SET, "fill the list columns", p, SP_COUNT(p));
		}
		return rc;
	}
	arr_init(&a[0], OID_INT8);
	arr_init(&a[1], OID_TEXT);
	arr_init(&a[2], OID_TEXT);
	for (size_t i = 0; i < n; i++) {
		arr_int(&a[0], rows[i].id);
		arr_text(&a[1], rows[i].name);
		arr_text(&a[2], rows[i].issuer);
	}
	if ((rc = arrs_end(a, 3, "list columns")) == ACLM_OK) {
		const struct store_param p[] = { SP_ARR(a[0]), SP_ARR(a[1]), SP_ARR(a[2]) };
		rc = store_run(st, SQL_LIST_SET_ARRAYS, "fill the list columns", p, SP_COUNT(p));
	}
	arrs_free(a, 3);
	return rc;
}

int store_fill_list_columns(struct aclm_store *st)
{
	struct list_row *rows = calloc(LIST_FILL_CHUNK, sizeof(*rows));
	int64_t last = INT64_MIN;
	size_t n = 0;
	int rc;

	if (rows == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory filling the list columns");
	do {
		if ((rc = list_rows_read(st, &last, rows, &n)) == ACLM_OK)
			rc = list_rows_write(st, rows, n);
	} while (rc == ACLM_OK && n == LIST_FILL_CHUNK);
	free(rows);
	return rc;
}
