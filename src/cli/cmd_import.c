/* aclm import: certificates and keys from files and directories.
 *
 * Each file is stored as one unit, so a database failure on one file loses
 * nothing else: small files inside a savepoint of a batch transaction that
 * is committed every COMMIT_EVERY certificates, files of OWN_TRANSACTION
 * certificates or more as a transaction of their own.  A crash keeps what
 * was committed and never half a certificate.  Private keys are matched to certificates after every
 * file of the run has been read (the key may come before its certificate),
 * sealed with the key-encryption key and only then stored. */
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "aclm/buf.h"
#include "aclm/bundle.h"
#include "aclm/err.h"
#include "aclm/keywrap.h"
#include "aclm/log.h"
#include "aclm/str.h"
#include "aclm/timeutil.h"
#include "cli-int.h"

#define COMMIT_EVERY 5000
/* Every certificate is stored in a savepoint of its own.  Nested in a
 * savepoint of the file, SQLite keeps their statement journal until the
 * file's level ends and walks it at every release: quadratic in the
 * certificates of one file (a bundle of 1,000 took seconds).  A file this
 * large therefore ends the batch and is a transaction by itself. */
#define OWN_TRANSACTION 64  /* SQLite only: PostgreSQL stores a bundle in a few
                              * multi-row statements, no savepoint per
                              * certificate, and a commit is a WAL flush. */
#define MAX_DEPTH 64

struct pending_key {
	char *path;
	struct aclm_privkey key;     /* owns key.pkcs8 (secret) */
};

/* Reading and parsing a file is about a third of an import and needs no
 * database: parser threads do it for the files a directory listing shows
 * next, while this thread stores, one connection, in the walk's order.
 * AHEAD bounds the files read but not yet stored (and so the memory). */
#define AHEAD 8
#define MAX_PARSERS 4

struct parsed {
	char *path;                  /* NULL: free slot */
	bool started, done;
	bool read_failed;            /* rc is of reading, else of parsing */
	int rc;
	char *err;                   /* the message when rc != ACLM_OK */
	struct aclm_bundle b;        /* owns any private keys */
};

struct ahead {
	pthread_mutex_t mu;
	pthread_cond_t work, ready;
	struct parsed ring[AHEAD];   /* FIFO: first .. first + n - 1 */
	size_t first, n;
	size_t n_threads;
	pthread_t threads[MAX_PARSERS];
	bool stop;
	const char *password;
	uint64_t max_file_size;
};

struct import {
	struct cli *cli;
	const char *password;
	const char **exclude;
	size_t n_exclude;
	bool store_keys;
	bool follow_symlinks;
	bool json;
	uint64_t max_file_size;
	int64_t now;

	/* directories on the current walk path, for loop detection */
	dev_t dir_dev[MAX_DEPTH];
	ino_t dir_ino[MAX_DEPTH];
	size_t depth;

	struct pending_key *keys;
	size_t n_keys;
	int64_t since_commit;

	int64_t n_files, n_certs, n_new, n_known, n_keys_stored;
	int64_t n_problems;
	json_t *problems;            /* for --json */
	bool db_failed;              /* stop on a database error */
	struct ahead *ahead;         /* NULL: every file parsed inline */
};

static void problem(struct import *im, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* One line per problem: "aclm: error: PATH: reason". */
static void problem(struct import *im, const char *path, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	im->n_problems++;
	if (im->problems != NULL) {
		json_t *o = json_object();
		json_object_set_new(o, "path", cli_json_str(path));
		json_object_set_new(o, "error", cli_json_str(msg));
		json_array_append_new(im->problems, o);
	}
	fprintf(stderr, "aclm: error: %s: %s\n", path, msg);
}

/* aclm_errmsg() of file functions starts with "PATH: "; drop it, problem() adds it. */
static const char *strip_path(const char *msg, const char *path)
{
	size_t n = strlen(path);

	if (strncmp(msg, path, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ')
		return msg + n + 2;
	return msg;
}

static bool is_excluded(const struct import *im, const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	for (size_t i = 0; i < im->n_exclude; i++)
		if (fnmatch(im->exclude[i], path, 0) == 0 || fnmatch(im->exclude[i], base, 0) == 0)
			return true;
	return false;
}

static int keep_key(struct import *im, const char *path, struct aclm_privkey *k)
{
	struct pending_key *n = realloc(im->keys, (im->n_keys + 1) * sizeof(*n));

	if (n == NULL)
		return ACLM_ERR_NOMEM;
	im->keys = n;
	n[im->n_keys].path = aclm_strdup(path);
	n[im->n_keys].key = *k;
	im->n_keys++;
	/* ownership moved: the bundle must not wipe/free it */
	k->pkcs8 = NULL;
	k->pkcs8_len = 0;
	return ACLM_OK;
}

static int store_file(struct import *im, const char *path, struct aclm_bundle *b)
{
	int64_t *ids = calloc(b->n_certs > 0 ? b->n_certs : 1, sizeof(*ids));
	bool *is_new = calloc(b->n_certs > 0 ? b->n_certs : 1, sizeof(*is_new));
	int64_t new_here = 0;
	int rc;

	if (ids == NULL || is_new == NULL) {
		rc = aclm_error(ACLM_ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = aclm_store_import_certs(im->cli->store, b->certs, b->n_certs, ACLM_SRC_IMPORT, path,
	                             im->now, ids, is_new);
	if (rc != ACLM_OK)
		goto out;
	for (size_t i = 0; i < b->n_certs; i++)
		new_here += is_new[i] ? 1 : 0;
	im->n_new += new_here;
	im->n_known += (int64_t)b->n_certs - new_here;
	im->n_certs += (int64_t)b->n_certs;
	im->since_commit += (int64_t)b->n_certs;
out:
	free(ids);
	free(is_new);
	return rc;
}

/* Called inside the batch transaction; leaves one open. */
static int store_certs(struct import *im, const char *path, struct aclm_bundle *b)
{
	struct aclm_store *st = im->cli->store;
	int rc, rc2;

	if (b->n_certs < OWN_TRANSACTION || strcmp(aclm_store_backend(st), "postgres") == 0) {
		if ((rc = store_file(im, path, b)) != ACLM_OK || im->since_commit < COMMIT_EVERY)
			return rc;
		/* End the batch and start the next. */
		if ((rc = aclm_store_commit(st)) != ACLM_OK || (rc = aclm_store_begin(st)) != ACLM_OK)
			return rc;
		im->since_commit = 0;
		return ACLM_OK;
	}
	if ((rc = aclm_store_commit(st)) != ACLM_OK)
		return rc;
	im->since_commit = 0;
	rc = store_file(im, path, b);
	if ((rc2 = aclm_store_begin(st)) != ACLM_OK && rc == ACLM_OK)
		rc = rc2;
	return rc;
}

/* Read and parse one file; any thread.  The result is complete in *p. */
static void read_and_parse(const char *path, const char *password, uint64_t max_file_size,
                           struct parsed *p)
{
	struct aclm_buf data;

	aclm_buf_init(&data, (size_t)max_file_size);
	p->rc = aclm_buf_read_file(&data, path);
	p->read_failed = p->rc != ACLM_OK;
	if (p->rc == ACLM_OK)
		p->rc = aclm_bundle_parse(data.data, data.len, password, &p->b);
	/* the file may hold a private key: wipe the raw bytes */
	aclm_buf_free_secret(&data);
	if (p->rc != ACLM_OK)
		p->err = aclm_strdup(aclm_errmsg());
}

static void parsed_free(struct parsed *p)
{
	if (p->started && !p->read_failed)
		aclm_bundle_free(&p->b);
	free(p->err);
	free(p->path);
	memset(p, 0, sizeof(*p));
}

static void *parser_main(void *arg)
{
	struct ahead *a = arg;

	pthread_mutex_lock(&a->mu);
	while (!a->stop) {
		struct parsed *job = NULL;

		for (size_t i = 0; i < a->n && job == NULL; i++)
			if (!a->ring[(a->first + i) % AHEAD].started)
				job = &a->ring[(a->first + i) % AHEAD];
		if (job == NULL) {
			pthread_cond_wait(&a->work, &a->mu);
			continue;
		}
		job->started = true;
		pthread_mutex_unlock(&a->mu);
		read_and_parse(job->path, a->password, a->max_file_size, job);
		pthread_mutex_lock(&a->mu);
		job->done = true;
		pthread_cond_broadcast(&a->ready);
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

static void ahead_start(struct import *im)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	struct ahead *a = calloc(1, sizeof(*a));
	size_t want = cpus > 1 ? (size_t)(cpus - 1) : 1;

	if (a == NULL)
		return;  /* parse inline */
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->work, NULL);
	pthread_cond_init(&a->ready, NULL);
	a->password = im->password;
	a->max_file_size = im->max_file_size;
	for (size_t i = 0; i < want && i < MAX_PARSERS; i++) {
		if (pthread_create(&a->threads[a->n_threads], NULL, parser_main, a) != 0)
			break;
		a->n_threads++;
	}
	if (a->n_threads == 0) {
		pthread_mutex_destroy(&a->mu);
		pthread_cond_destroy(&a->work);
		pthread_cond_destroy(&a->ready);
		free(a);
		return;
	}
	im->ahead = a;
}

static void ahead_stop(struct import *im)
{
	struct ahead *a = im->ahead;

	if (a == NULL)
		return;
	pthread_mutex_lock(&a->mu);
	a->stop = true;
	pthread_cond_broadcast(&a->work);
	pthread_mutex_unlock(&a->mu);
	for (size_t i = 0; i < a->n_threads; i++)
		pthread_join(a->threads[i], NULL);
	for (size_t i = 0; i < a->n; i++)
		parsed_free(&a->ring[(a->first + i) % AHEAD]);
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->work);
	pthread_cond_destroy(&a->ready);
	free(a);
	im->ahead = NULL;
}

/* Queue path for the parsers; false when the window is full. */
static bool ahead_submit(struct import *im, const char *path)
{
	struct ahead *a = im->ahead;
	char *copy;

	if (a == NULL || a->n == AHEAD || (copy = aclm_strdup(path)) == NULL)
		return false;
	pthread_mutex_lock(&a->mu);
	a->ring[(a->first + a->n) % AHEAD].path = copy;
	a->n++;
	pthread_cond_signal(&a->work);
	pthread_mutex_unlock(&a->mu);
	return true;
}

/* The parsed result for path, waiting for it, into *out; false when path
 * was not queued (then it is parsed inline).  Queued files the walk did
 * not reach before path (it skipped them) are dropped. */
static bool ahead_take(struct import *im, const char *path, struct parsed *out)
{
	struct ahead *a = im->ahead;
	size_t k;

	if (a == NULL)
		return false;
	pthread_mutex_lock(&a->mu);
	for (k = 0; k < a->n; k++)
		if (strcmp(a->ring[(a->first + k) % AHEAD].path, path) == 0)
			break;
	if (k == a->n) {
		pthread_mutex_unlock(&a->mu);
		return false;
	}
	for (;;) {
		struct parsed *head = &a->ring[a->first];

		while (!head->done)
			pthread_cond_wait(&a->ready, &a->mu);
		a->first = (a->first + 1) % AHEAD;
		a->n--;
		if (k-- == 0) {
			*out = *head;
			memset(head, 0, sizeof(*head));
			break;
		}
		parsed_free(head);
	}
	pthread_mutex_unlock(&a->mu);
	return true;
}

static void import_file(struct import *im, const char *path)
{
	struct parsed p = { 0 };
	int rc;

	im->n_files++;
	if (!ahead_take(im, path, &p))
		read_and_parse(path, im->password, im->max_file_size, &p);
	p.started = true;
	if (p.rc != ACLM_OK) {
		const char *msg = p.err != NULL ? p.err : "out of memory";

		problem(im, path, "%s", p.read_failed ? strip_path(msg, path) : msg);
		goto out;
	}
	for (size_t i = 0; i < p.b.n_problems; i++)
		problem(im, path, "%s", p.b.problems[i]);
	if (p.b.n_certs > 0) {
		rc = store_certs(im, path, &p.b);
		if (rc != ACLM_OK) {
			problem(im, path, "not stored: %s", aclm_errmsg());
			if (rc == ACLM_ERR_DB || rc == ACLM_ERR_NOMEM)
				im->db_failed = true;
		}
	}
	if (im->store_keys) {
		for (size_t i = 0; i < p.b.n_keys; i++)
			if (keep_key(im, path, &p.b.keys[i]) != ACLM_OK)
				problem(im, path, "out of memory keeping a private key");
	}
out:
	parsed_free(&p);
}

static void import_path(struct import *im, const char *path);

/* Queue a directory entry that import_path() will read as a regular file;
 * false when the parsers' window is full. */
static bool submit_entry(struct import *im, const char *dir, const struct dirent *e)
{
	struct aclm_buf child;
	struct stat lst;
	bool queued = true;

	if (im->ahead == NULL)
		return false;
	if (e->d_type != DT_REG && e->d_type != DT_UNKNOWN)
		return true;
	aclm_buf_init(&child, PATH_MAX);
	if (aclm_buf_printf(&child, "%s%s%s", dir, aclm_str_has_suffix(dir, "/") ? "" : "/",
	                    e->d_name) == ACLM_OK && !is_excluded(im, aclm_buf_cstr(&child)) &&
	    (e->d_type == DT_REG ||
	     (lstat(aclm_buf_cstr(&child), &lst) == 0 && S_ISREG(lst.st_mode))))
		queued = ahead_submit(im, aclm_buf_cstr(&child));
	aclm_buf_free(&child);
	return queued;
}

static void import_dir(struct import *im, const char *path, const struct stat *st)
{
	struct dirent **names = NULL;
	int n;

	for (size_t i = 0; i < im->depth; i++) {
		if (im->dir_dev[i] == st->st_dev && im->dir_ino[i] == st->st_ino) {
			problem(im, path, "symbolic link loop (directory already being imported); skipped");
			return;
		}
	}
	if (im->depth >= MAX_DEPTH) {
		problem(im, path, "directories nested deeper than %d levels; skipped", MAX_DEPTH);
		return;
	}
	n = scandir(path, &names, NULL, alphasort);
	if (n < 0) {
		problem(im, path, "cannot read directory: %s", strerror(errno));
		return;
	}
	im->dir_dev[im->depth] = st->st_dev;
	im->dir_ino[im->depth] = st->st_ino;
	im->depth++;
	for (int i = 0, next = 0; i < n; i++) {
		const char *name = names[i]->d_name;

		/* Keep the parsers busy with the regular files that come next. */
		for (next = next > i ? next : i; next < n && !im->db_failed; next++)
			if (!submit_entry(im, path, names[next]))
				break;
		if (!im->db_failed && strcmp(name, ".") != 0 && strcmp(name, "..") != 0) {
			struct aclm_buf child;
			aclm_buf_init(&child, PATH_MAX);
			if (aclm_buf_printf(&child, "%s%s%s", path,
			                    aclm_str_has_suffix(path, "/") ? "" : "/", name) == ACLM_OK)
				import_path(im, aclm_buf_cstr(&child));
			else
				problem(im, path, "path of '%s' is too long", name);
			aclm_buf_free(&child);
		}
		free(names[i]);
	}
	free(names);
	im->depth--;
}

static void import_path(struct import *im, const char *path)
{
	struct stat lst, st;

	if (is_excluded(im, path)) {
		aclm_debug("%s: excluded", path);
		return;
	}
	if (lstat(path, &lst) != 0) {
		problem(im, path, "%s", strerror(errno));
		return;
	}
	if (S_ISLNK(lst.st_mode)) {
		if (!im->follow_symlinks && im->depth > 0) {
			aclm_debug("%s: symbolic link not followed", path);
			return;
		}
		if (stat(path, &st) != 0) {
			if (errno == ELOOP)
				problem(im, path, "symbolic link loop");
			else if (errno == ENOENT)
				problem(im, path, "broken symbolic link (target does not exist)");
			else
				problem(im, path, "%s", strerror(errno));
			return;
		}
	} else {
		st = lst;
	}
	if (S_ISDIR(st.st_mode)) {
		import_dir(im, path, &st);
		return;
	}
	if (!S_ISREG(st.st_mode)) {
		im->n_files++;
		problem(im, path, "not a regular file (%s); skipped",
		        S_ISFIFO(st.st_mode) ? "named pipe" : S_ISSOCK(st.st_mode) ? "socket" :
		        S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "device" : "special file");
		return;
	}
	import_file(im, path);
}

/* Seal and store each private key whose certificate is in the inventory. */
static void store_keys(struct import *im)
{
	struct aclm_kek kek;
	const char *env = getenv("ACLM_KEK");
	const char *kek_path = aclm_config_str(im->cli->cfg, "security.kek_file");
	int rc;

	if (im->n_keys == 0 || im->db_failed)
		return;
	rc = aclm_kek_load(env, kek_path, true, &kek);
	if (rc != ACLM_OK) {
		problem(im, env && *env ? "$ACLM_KEK" : kek_path, "%s; %zu private key%s not stored",
		        strip_path(aclm_errmsg(), kek_path), im->n_keys, im->n_keys == 1 ? "" : "s");
		return;
	}
	for (size_t i = 0; i < im->n_keys; i++) {
		struct pending_key *pk = &im->keys[i];
		unsigned char *sealed = NULL;
		size_t sealed_len = 0;
		bool stored = false;

		rc = aclm_keywrap_seal(&kek, pk->key.spki_sha256, sizeof(pk->key.spki_sha256),
		                       pk->key.pkcs8, pk->key.pkcs8_len, &sealed, &sealed_len);
		if (rc == ACLM_OK)
			rc = aclm_store_put_private_key(im->cli->store, pk->key.spki_hex, sealed,
			                                sealed_len, &stored);
		free(sealed);
		if (rc == ACLM_ERR_NOTFOUND)
			aclm_warn("%s: private key (public key SHA-256 %.16s...) matches no certificate in the inventory; not stored",
			          pk->path, pk->key.spki_hex);
		else if (rc != ACLM_OK)
			problem(im, pk->path, "private key not stored: %s", aclm_errmsg());
		else if (stored)
			im->n_keys_stored++;
	}
	aclm_kek_wipe(&kek);
}

static void free_keys(struct import *im)
{
	for (size_t i = 0; i < im->n_keys; i++) {
		if (im->keys[i].key.pkcs8 != NULL) {
			OPENSSL_cleanse(im->keys[i].key.pkcs8, im->keys[i].key.pkcs8_len);
			free(im->keys[i].key.pkcs8);
		}
		free(im->keys[i].path);
	}
	free(im->keys);
}

static void print_summary(struct import *im)
{
	if (im->json) {
		json_t *o = json_object();
		json_object_set_new(o, "files", json_integer(im->n_files));
		json_object_set_new(o, "certificates", json_integer(im->n_certs));
		json_object_set_new(o, "new", json_integer(im->n_new));
		json_object_set_new(o, "known", json_integer(im->n_known));
		json_object_set_new(o, "keys_stored", json_integer(im->n_keys_stored));
		json_object_set_new(o, "problems", json_incref(im->problems));
		cli_json_print(o);
		return;
	}
	if (im->cli->quiet)
		return;
	printf("imported %lld certificate%s from %lld file%s: %lld new, %lld already known; "
	       "%lld private key%s stored; %lld problem%s\n",
	       (long long)im->n_certs, im->n_certs == 1 ? "" : "s",
	       (long long)im->n_files, im->n_files == 1 ? "" : "s",
	       (long long)im->n_new, (long long)im->n_known,
	       (long long)im->n_keys_stored, im->n_keys_stored == 1 ? "" : "s",
	       (long long)im->n_problems, im->n_problems == 1 ? "" : "s");
}

int cmd_import(struct cli *cli, int argc, char **argv)
{
	enum { O_PASSWORD_FILE = 256, O_EXCLUDE, O_NO_KEYS, O_JSON };
	static const struct option opts[] = {
		{ "password-file", required_argument, NULL, O_PASSWORD_FILE },
		{ "exclude", required_argument, NULL, O_EXCLUDE },
		{ "no-keys", no_argument, NULL, O_NO_KEYS },
		{ "json", no_argument, NULL, O_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cli_command *self = cli_find_command("import");
	struct import im = { 0 };
	const char *const *cfg_exclude;
	const char *password_file = NULL;
	char *password = NULL;
	size_t n_cfg_exclude;
	int opt, rc = EXIT_OK;

	im.cli = cli;
	im.store_keys = true;
	n_cfg_exclude = aclm_config_list(cli->cfg, "import.exclude", &cfg_exclude);
	im.exclude = calloc(n_cfg_exclude + (size_t)argc + 1, sizeof(*im.exclude));
	if (im.exclude == NULL)
		return cli_fail("out of memory");
	for (size_t i = 0; i < n_cfg_exclude; i++)
		im.exclude[im.n_exclude++] = cfg_exclude[i];

	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (opt) {
		case O_PASSWORD_FILE: password_file = optarg; break;
		case O_EXCLUDE: im.exclude[im.n_exclude++] = optarg; break;
		case O_NO_KEYS: im.store_keys = false; break;
		case O_JSON: im.json = true; break;
		default:
			free(im.exclude);
			return cli_getopt_default(self, opt, argv);
		}
	}
	if (optind >= argc) {
		free(im.exclude);
		return cli_usage_error("import", "no PATH given");
	}
	if (password_file != NULL && cli_read_password_file(password_file, &password) != ACLM_OK) {
		free(im.exclude);
		return cli_fail("--password-file: %s", aclm_errmsg());
	}
	im.password = password;
	im.max_file_size = aclm_config_size(cli->cfg, "import.max_file_size");
	im.follow_symlinks = aclm_config_bool(cli->cfg, "import.follow_symlinks");
	im.now = aclm_now();
	im.problems = im.json ? json_array() : NULL;

	if (cli_open_store(cli) != ACLM_OK) {
		rc = EXIT_FAILED;
		goto out;
	}
	ahead_start(&im);
	if (aclm_store_begin(cli->store) != ACLM_OK) {
		rc = cli_fail("%s", aclm_errmsg());
		goto out;
	}
	for (int i = optind; i < argc && !im.db_failed; i++) {
		/* Observations record absolute paths, without resolving links:
		 * the path the operator knows, not where a link points. */
		struct aclm_buf abs;
		char cwd[PATH_MAX];

		aclm_buf_init(&abs, PATH_MAX);
		if (argv[i][0] != '/' && getcwd(cwd, sizeof(cwd)) != NULL)
			aclm_buf_printf(&abs, "%s/%s", cwd, argv[i]);
		else
			aclm_buf_puts(&abs, argv[i]);
		im.depth = 0;
		import_path(&im, abs.len > 0 ? aclm_buf_cstr(&abs) : argv[i]);
		aclm_buf_free(&abs);
	}
	if (im.db_failed) {
		aclm_store_rollback(cli->store);
	} else if (aclm_store_commit(cli->store) != ACLM_OK) {
		problem(&im, "database", "commit failed: %s", aclm_errmsg());
		im.db_failed = true;
	}
	if (im.store_keys)
		store_keys(&im);
	print_summary(&im);
	rc = im.n_problems > 0 || im.db_failed ? EXIT_FAILED : EXIT_OK;
out:
	ahead_stop(&im);
	free_keys(&im);
	json_decref(im.problems);
	if (password != NULL) {
		OPENSSL_cleanse(password, strlen(password));
		free(password);
	}
	free(im.exclude);
	return rc;
}
