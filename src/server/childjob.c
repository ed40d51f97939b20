/* Work asked for through the API that talks to the network runs as a child
 * `aclm` process: a scan (`aclm scan --ndjson`) and a first issuance
 * (`aclm issue --json`), and a revocation at an ACME CA (`aclm revoke`).  The code that parses what hostile servers and CAs
 * send never runs in the address space that holds sessions and API state
 * (privilege separation by process, as relayd and acme-client do).  The
 * worker reads the child's output as it comes, reports progress on the job,
 * and keeps the child's summary as the job's result. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "aclm/buf.h"
#include "aclm/ca.h"
#include "aclm/err.h"
#include "aclm/log.h"
#include "aclm/store_acme.h"
#include "aclm/store_jobs.h"
#include "aclm/timeutil.h"
#include "server-int.h"

#define MAX_ARGS 1100
#define MAX_LINE (1 << 20)
#define STDERR_KEEP 400

struct child_out {
	struct aclm_buf line;
	struct aclm_buf all;         /* the whole stdout (bounded), for --json children */
	char err_tail[STDERR_KEEP + 1];
	size_t err_len;
	int64_t endpoints, findings;
	json_t *summary;
};

static void take_line(struct child_out *c, const char *line)
{
	json_t *j = json_loads(line, 0, NULL);
	const char *kind = json_string_value(json_object_get(j, "kind"));

	if (kind == NULL) {
		json_decref(j);
		return;
	}
	if (strcmp(kind, "endpoint") == 0)
		c->endpoints++;
	else if (strcmp(kind, "finding") == 0)
		c->findings++;
	else if (strcmp(kind, "summary") == 0) {
		json_decref(c->summary);
		c->summary = json_incref(j);
	}
	json_decref(j);
}

static void take_stdout(struct child_out *c, const char *data, size_t n)
{
	if (aclm_buf_append(&c->all, data, n) != ACLM_OK)
		aclm_buf_reset(&c->all);
	for (size_t i = 0; i < n; i++) {
		if (data[i] == '\n') {
			take_line(c, aclm_buf_cstr(&c->line));
			aclm_buf_reset(&c->line);
		} else if (aclm_buf_putc(&c->line, data[i]) != ACLM_OK) {
			aclm_buf_reset(&c->line);  /* an absurd line is dropped, not fatal */
		}
	}
}

static void take_stderr(struct child_out *c, const char *data, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (c->err_len == STDERR_KEEP) {
			memmove(c->err_tail, c->err_tail + 1, STDERR_KEEP - 1);
			c->err_len--;
		}
		c->err_tail[c->err_len++] = data[i];
	}
	c->err_tail[c->err_len] = '\0';
}

/* The child's environment: ours, with the store URL in ACLM_STORE_URL
 * (never on the command line, where `ps` shows a password in it).  Built
 * before fork: between fork and exec only async-signal-safe calls. */
static char **child_env(const char *db_url)
{
	extern char **environ;
	size_t n = 0, k = 0;
	char **env;

	while (environ[n] != NULL)
		n++;
	env = calloc(n + 2, sizeof(*env));
	if (env == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "ACLM_STORE_URL=", 15) != 0)
			env[k++] = environ[i];
	env[k] = malloc(strlen(db_url) + 16);
	if (env[k] == NULL) {
		free(env);
		return NULL;
	}
	memcpy(env[k], "ACLM_STORE_URL=", 15);
	memcpy(env[k] + 15, db_url, strlen(db_url) + 1);
	env[k + 1] = NULL;
	return env;
}

static void child_env_free(char **env)
{
	size_t i = 0;

	if (env == NULL)
		return;
	while (env[i] != NULL && env[i + 1] != NULL)
		i++;
	if (env[i] != NULL) {
		OPENSSL_cleanse(env[i], strlen(env[i]));
		free(env[i]);  /* the one we made is last */
	}
	free(env);
}

static int spawn(char **argv, char **envp, int *out_fd, int *err_fd, pid_t *pid)
{
	int o[2] = { -1, -1 }, e[2] = { -1, -1 };

	if (pipe2(o, O_CLOEXEC) != 0 || pipe2(e, O_CLOEXEC) != 0) {
		int saved = errno;
		if (o[0] >= 0) {
			close(o[0]);
			close(o[1]);
		}
		return aclm_error(ACLM_ERR_IO, "scan: pipe: %s", strerror(saved));
	}
	*pid = fork();
	if (*pid < 0) {
		int saved = errno;
		close(o[0]);
		close(o[1]);
		close(e[0]);
		close(e[1]);
		return aclm_error(ACLM_ERR_IO, "scan: fork: %s", strerror(saved));
	}
	if (*pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0)
			dup2(devnull, 0);
		dup2(o[1], 1);
		dup2(e[1], 2);
		execve(argv[0], argv, envp);
		_exit(127);
	}
	close(o[1]);
	close(e[1]);
	*out_fd = o[0];
	*err_fd = e[0];
	return ACLM_OK;
}

/* Run argv, feeding its output to c; progress reported on the job about
 * once a second (which also extends the job's lease).  *status gets the
 * wait status; ACLM_OK when the child ran. */
static int run_child(struct scheduler_job_ctx *ctx, const struct aclm_job *job, char **argv,
                     struct child_out *c, int *status)
{
	int out_fd = -1, err_fd = -1;
	int64_t last_report = 0;
	char **envp = child_env(ctx->db_url);
	pid_t pid = -1;
	ssize_t n;
	int rc;

	if (envp == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	rc = spawn(argv, envp, &out_fd, &err_fd, &pid);
	child_env_free(envp);
	if (rc != ACLM_OK)
		return rc;
	while (out_fd >= 0 || err_fd >= 0) {
		struct pollfd p[2] = { { out_fd, POLLIN, 0 }, { err_fd, POLLIN, 0 } };
		char buf[16384];
		int64_t now;

		if (poll(p, 2, 1000) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 2; i++) {
			int *fd = i == 0 ? &out_fd : &err_fd;
			if (*fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			n = read(*fd, buf, sizeof(buf));
			if (n <= 0) {
				close(*fd);
				*fd = -1;
			} else if (i == 0) {
				take_stdout(c, buf, (size_t)n);
			} else {
				take_stderr(c, buf, (size_t)n);
			}
		}
		now = aclm_now();
		if (now != last_report) {
			char prog[128];
			snprintf(prog, sizeof(prog), "{\"endpoints_done\":%lld,\"findings\":%lld}",
			         (long long)c->endpoints, (long long)c->findings);
			aclm_store_job_progress(ctx->store, job->id, ctx->owner, prog,
			                        now + ctx->lease_seconds);
			last_report = now;
		}
	}
	if (out_fd >= 0)
		close(out_fd);
	if (err_fd >= 0)
		close(err_fd);
	while (waitpid(pid, status, 0) < 0 && errno == EINTR)
		;
	{
		/* The final count, whatever second the last report was in. */
		char prog[128];
		snprintf(prog, sizeof(prog), "{\"endpoints_done\":%lld,\"findings\":%lld}",
		         (long long)c->endpoints, (long long)c->findings);
		aclm_store_job_progress(ctx->store, job->id, ctx->owner, prog,
		                        aclm_now() + ctx->lease_seconds);
	}
	return ACLM_OK;
}

/* The last line the child wrote on stderr: why it failed. */
static void child_error(struct child_out *c, int status, const char *what, char *error,
                        size_t error_size)
{
	char *nl;

	while (c->err_len > 0 && c->err_tail[c->err_len - 1] == '\n')
		c->err_tail[--c->err_len] = '\0';
	nl = strrchr(c->err_tail, '\n');
	snprintf(error, error_size, "%s %s: %s", what,
	         WIFEXITED(status) ? "failed" : "killed",
	         c->err_len > 0 ? (nl != NULL ? nl + 1 : c->err_tail) : "no output");
}

/* argv[0..] of `aclm [--config PATH]` (the store URL goes in the
 * environment); returns the count. */
static int base_argv(struct scheduler_job_ctx *ctx, char *self, size_t self_size, char **argv)
{
	ssize_t n = readlink("/proc/self/exe", self, self_size - 1);
	int argc = 0;

	if (n <= 0)
		return aclm_error(ACLM_ERR_IO, "cannot find the aclm binary (/proc/self/exe)");
	self[n] = '\0';
	argv[argc++] = self;
	if (ctx->config_path != NULL) {
		argv[argc++] = (char *)"--config";
		argv[argc++] = (char *)ctx->config_path;
	}
	return argc;
}

void server_job_scan(struct scheduler_job_ctx *ctx, const struct aclm_job *job,
                     char *error, size_t error_size, char *result, size_t result_size,
                     bool *ok)
{
	json_t *params = json_loads(job->params, 0, NULL), *targets;
	char *argv[MAX_ARGS];
	char self[4096];
	struct child_out c;
	int argc, status = 0;

	*ok = false;
	memset(&c, 0, sizeof(c));
	aclm_buf_init(&c.line, MAX_LINE);
	aclm_buf_init(&c.all, 1);
	if (params == NULL) {
		snprintf(error, error_size, "scan: bad job parameters");
		goto out;
	}
	if ((argc = base_argv(ctx, self, sizeof(self), argv)) < 0) {
		snprintf(error, error_size, "scan: %s", aclm_errmsg());
		goto out;
	}
	argv[argc++] = (char *)"scan";
	argv[argc++] = (char *)"--ndjson";
	argv[argc++] = (char *)"--no-progress";
	if (json_is_string(json_object_get(params, "ports"))) {
		argv[argc++] = (char *)"--ports";
		argv[argc++] = (char *)json_string_value(json_object_get(params, "ports"));
	}
	if (json_is_true(json_object_get(params, "known")))
		argv[argc++] = (char *)"--known";
	targets = json_object_get(params, "targets");
	for (size_t i = 0; i < json_array_size(targets) && argc < MAX_ARGS - 2; i++) {
		const char *t = json_string_value(json_array_get(targets, i));
		if (t != NULL)
			argv[argc++] = (char *)t;
	}
	argv[argc] = NULL;
	if (run_child(ctx, job, argv, &c, &status) != ACLM_OK) {
		snprintf(error, error_size, "scan: %s", aclm_errmsg());
		goto out;
	}
	if (c.summary != NULL) {
		/* A scan that finished is a result, even when endpoints failed
		 * (exit 1): those are findings. */
		char *text = json_dumps(c.summary, JSON_COMPACT | JSON_SORT_KEYS);
		snprintf(result, result_size, "%s", text != NULL ? text : "{}");
		free(text);
		*ok = true;
	} else {
		child_error(&c, status, "scan", error, error_size);
	}
out:
	aclm_buf_free(&c.line);
	aclm_buf_free(&c.all);
	json_decref(c.summary);
	json_decref(params);
}

/* A first issuance: `aclm issue --json NAMES [--key K] [--ca C]... [solver]`;
 * it creates the managed certificate that the scheduler renews from then
 * on. */
void server_job_issue(struct scheduler_job_ctx *ctx, const struct aclm_job *job,
                      char *error, size_t error_size, char *result, size_t result_size,
                      bool *ok)
{
	static const char *const opts[] = { "key", "dual", "challenge", "standalone", "webroot",
	                                    "dns_hook", "profile" };
	json_t *params = json_loads(job->params, 0, NULL), *out = NULL;
	char *argv[MAX_ARGS], self[4096], flag[8][24];
	struct child_out c;
	int argc, status = 0;

	*ok = false;
	memset(&c, 0, sizeof(c));
	aclm_buf_init(&c.line, MAX_LINE);
	aclm_buf_init(&c.all, MAX_LINE);
	if (params == NULL) {
		snprintf(error, error_size, "issue: bad job parameters");
		goto out;
	}
	if ((argc = base_argv(ctx, self, sizeof(self), argv)) < 0) {
		snprintf(error, error_size, "issue: %s", aclm_errmsg());
		goto out;
	}
	argv[argc++] = (char *)"issue";
	argv[argc++] = (char *)"--json";
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		const char *v = json_string_value(json_object_get(params, opts[i]));
		if (v == NULL)
			continue;
		snprintf(flag[i], sizeof(flag[i]), "--%s", opts[i]);
		for (char *p = flag[i]; *p != '\0'; p++)
			if (*p == '_')
				*p = '-';
		argv[argc++] = flag[i];
		argv[argc++] = (char *)v;
	}
	for (size_t i = 0; i < json_array_size(json_object_get(params, "cas")) && argc < 40; i++) {
		const char *ca = json_string_value(json_array_get(json_object_get(params, "cas"), i));
		if (ca != NULL) {
			argv[argc++] = (char *)"--ca";
			argv[argc++] = (char *)ca;
		}
	}
	for (size_t i = 0; i < json_array_size(json_object_get(params, "names")) &&
	                   argc < MAX_ARGS - 2; i++) {
		const char *name = json_string_value(json_array_get(json_object_get(params, "names"), i));
		if (name != NULL)
			argv[argc++] = (char *)name;
	}
	argv[argc] = NULL;
	if (run_child(ctx, job, argv, &c, &status) != ACLM_OK) {
		snprintf(error, error_size, "issue: %s", aclm_errmsg());
		goto out;
	}
	out = json_loads(aclm_buf_cstr(&c.all), 0, NULL);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && json_is_array(out)) {
		json_t *summary = json_array();
		size_t i;
		json_t *o;
		json_array_foreach(out, i, o) {
			json_array_append_new(summary, json_pack("{s:O?,s:O?,s:O?}", "cert_id",
			                      json_object_get(o, "cert_id"), "managed_id",
			                      json_object_get(o, "managed_id"), "key",
			                      json_object_get(o, "key")));
		}
		{
			json_t *r = json_pack("{s:o}", "issued", summary);
			char *text = r != NULL ? json_dumps(r, JSON_COMPACT) : NULL;
			snprintf(result, result_size, "%s", text != NULL ? text : "{}");
			free(text);
			json_decref(r);
		}
		*ok = true;
	} else {
		child_error(&c, status, "issue", error, error_size);
	}
out:
	json_decref(out);
	aclm_buf_free(&c.line);
	aclm_buf_free(&c.all);
	json_decref(params);
}

static int fingerprint_fn(void *ctx, const struct aclm_cert_row *row)
{
	memcpy(ctx, row->fingerprint, sizeof(row->fingerprint));
	return ACLM_OK;
}

/* A revocation at the ACME CA that issued the certificate: `aclm revoke
 * --reason CODE ID` (the account key is opened in the child).  Once the CA
 * said yes, the order is marked revoked, so the API refuses a second one
 * and the certificate page shows it. */
void server_job_revoke(struct scheduler_job_ctx *ctx, const struct aclm_job *job,
                       char *error, size_t error_size, char *result, size_t result_size,
                       bool *ok)
{
	json_t *params = json_loads(job->params, 0, NULL);
	struct aclm_acme_order_row o;
	char *argv[12], self[4096], id_s[24], reason_s[8], fp[65];
	struct child_out c;
	json_int_t id = json_integer_value(json_object_get(params, "cert_id"));
	json_int_t reason = json_integer_value(json_object_get(params, "reason"));
	int argc, status = 0;

	*ok = false;
	memset(&c, 0, sizeof(c));
	memset(&o, 0, sizeof(o));
	aclm_buf_init(&c.line, MAX_LINE);
	aclm_buf_init(&c.all, 1);
	if (params == NULL || id <= 0 || reason < 0 || reason > 10) {
		snprintf(error, error_size, "revoke: bad job parameters");
		goto out;
	}
	if ((argc = base_argv(ctx, self, sizeof(self), argv)) < 0) {
		snprintf(error, error_size, "revoke: %s", aclm_errmsg());
		goto out;
	}
	snprintf(id_s, sizeof(id_s), "%lld", (long long)id);
	snprintf(reason_s, sizeof(reason_s), "%d", (int)reason);
	argv[argc++] = (char *)"-q";
	argv[argc++] = (char *)"revoke";
	argv[argc++] = (char *)"--reason";
	argv[argc++] = reason_s;
	argv[argc++] = id_s;
	argv[argc] = NULL;
	if (run_child(ctx, job, argv, &c, &status) != ACLM_OK) {
		snprintf(error, error_size, "revoke: %s", aclm_errmsg());
		goto out;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		child_error(&c, status, "revoke", error, error_size);
		goto out;
	}
	*ok = true;
	snprintf(result, result_size, "{\"revoked\":%lld,\"reason\":\"%s\"}", (long long)id,
	         aclm_ca_reason_name((int)reason));
	/* The CA revoked it: what follows is bookkeeping, logged when it fails. */
	if (aclm_store_acme_order_by_cert(ctx->store, id, &o) == ACLM_OK) {
		free(o.status);
		o.status = strdup("revoked");
		if (o.status == NULL || aclm_store_acme_order_update(ctx->store, &o) != ACLM_OK)
			aclm_warn("revoke: certificate %lld: order not marked revoked: %s", (long long)id,
			          aclm_errmsg());
		fp[0] = '\0';
		if (aclm_store_get_cert(ctx->store, id, fingerprint_fn, fp) == ACLM_OK && fp[0] != '\0') {
			const char *actor = json_string_value(json_object_get(params, "actor"));
			json_t *d = json_pack("{s:s,s:s,s:s?,s:I,s:I,s:s}", "actor",
			                      actor != NULL ? actor : "scheduler", "by", "acme", "ca", o.ca,
			                      "cert", id, "job", (json_int_t)job->id, "reason",
			                      aclm_ca_reason_name((int)reason));
			char *text = d != NULL ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
			if (text == NULL ||
			    aclm_store_append_event(ctx->store, "certificate.revoked", fp, text) != ACLM_OK)
				aclm_warn("revoke: certificate %lld: event not written: %s", (long long)id,
				          aclm_errmsg());
			free(text);
			json_decref(d);
		}
	}
out:
	aclm_acme_order_row_free(&o);
	aclm_buf_free(&c.line);
	aclm_buf_free(&c.all);
	json_decref(params);
}
