/* The scheduler: persistent jobs (store_jobs.h) run by worker threads, each
 * with its own store connection, so that slow work (an ACME order, a scan)
 * never blocks the API's event loop.
 *
 * Every tick the leader (PostgreSQL advisory lock; SQLite is one node)
 * plans: one open 'renew' job per managed certificate at the time the ACME
 * client computed (ARI or 2/3 of the lifetime, with jitter; or the retry
 * time after a failure).  Every worker then claims due jobs with a lease;
 * a job whose worker died is due again once its lease runs out.  Failures
 * retry with exponential backoff, bounded; CA failover and per-CA backoff
 * are the ACME client's.  Each finished job is an audit event. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "aclm/acme.h"
#include "aclm/err.h"
#include "aclm/keywrap.h"
#include "aclm/log.h"
#include "aclm/policy.h"
#include "aclm/store_acme.h"
#include "aclm/store_endpoints.h"
#include "aclm/store_jobs.h"
#include "aclm/timeutil.h"
#include "server-int.h"

#define MAX_WORKERS 16
#define MAX_ATTEMPTS 8
#define LEASE_SECONDS 900

struct scheduler {
	struct aclm_config *cfg;
	const char *db_url;
	const char *config_path;
	char address[128];           /* this server's URL, for the nodes table */
	int n_workers;
	double interval;
	pthread_t threads[MAX_WORKERS];
	int n_threads;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stop;
	char node[64];
};

struct worker {
	struct scheduler *sch;
	int index;
	struct aclm_store *store;
	char owner[96];
	struct aclm_kek kek;
	bool has_kek;
	struct aclm_acme_ca *cas;
	size_t n_cas;
};

/* --- job kinds ------------------------------------------------------------ */

/* The outcome of one run: ok, or an error and when to try again (0: let
 * the scheduler's backoff decide). */
struct outcome {
	bool ok;
	char error[512];
	int64_t retry_at;
	char result[512];            /* JSON, or "" */
};

static void job_renew(struct worker *w, const struct aclm_job *job, struct outcome *out)
{
	struct aclm_acme_renew_opts o;
	struct aclm_managed_row m;
	int64_t id = strtoll(job->subject, NULL, 10);
	int n_renewed = 0, n_failed = 0;

	if (!w->has_kek) {
		const char *env = getenv("ACLM_KEK");
		if (aclm_kek_load(env, aclm_config_str(w->sch->cfg, "security.kek_file"), true,
		                  &w->kek) != ACLM_OK) {
			snprintf(out->error, sizeof(out->error), "key-encryption key: %s", aclm_errmsg());
			return;
		}
		w->has_kek = true;
	}
	if (w->cas == NULL && aclm_acme_cas_load(w->sch->cfg, &w->cas, &w->n_cas) != ACLM_OK) {
		snprintf(out->error, sizeof(out->error), "acme.cas: %s", aclm_errmsg());
		return;
	}
	memset(&o, 0, sizeof(o));
	o.ids = &id;
	o.n_ids = 1;
	/* "renew-now" (asked for through the API) renews whatever the
	 * certificate's time; "renew" only when the ACME client says it is due. */
	o.force = strcmp(job->kind, "renew-now") == 0;
	if (aclm_acme_renew(w->store, &w->kek, w->cas, w->n_cas, &o, &n_renewed, &n_failed) !=
	    ACLM_OK || n_failed > 0) {
		snprintf(out->error, sizeof(out->error), "%s", aclm_errmsg()[0] ? aclm_errmsg()
		                                                               : "renewal failed");
		/* The client records when it wants to try again. */
		if (aclm_store_managed_get(w->store, id, &m) == ACLM_OK) {
			if (m.last_error != NULL && m.last_error[0] != '\0')
				snprintf(out->error, sizeof(out->error), "%s", m.last_error);
			out->retry_at = m.next_attempt_at;
			aclm_managed_row_free(&m);
		}
		return;
	}
	out->ok = true;
}

static void job_child(struct worker *w, const struct aclm_job *job, struct outcome *out)
{
	struct scheduler_job_ctx ctx = {
		.store = w->store, .db_url = w->sch->db_url, .config_path = w->sch->config_path,
		.owner = w->owner, .lease_seconds = LEASE_SECONDS,
	};

	(strcmp(job->kind, "scan") == 0 ? server_job_scan :
	 strcmp(job->kind, "revoke") == 0 ? server_job_revoke : server_job_issue)(
		&ctx, job, out->error, sizeof(out->error), out->result, sizeof(out->result), &out->ok);
}

/* A scheduled report (reports.kinds, every reports.every) queued as an
 * alert on reports.channel; the alert thread delivers it.  The alert's key
 * is per period, so a report never goes out twice in one. */
static void job_report(struct worker *w, const struct aclm_job *job, struct outcome *out)
{
	const char *channel = aclm_config_str(w->sch->cfg, "reports.channel");
	int64_t every = aclm_config_duration(w->sch->cfg, "reports.every"), id = 0;
	enum aclm_report_kind kind;

	if (aclm_report_kind_parse(job->subject, &kind) != ACLM_OK) {
		snprintf(out->error, sizeof(out->error), "report: unknown kind '%s'", job->subject);
		return;
	}
	if (channel == NULL || *channel == '\0') {
		snprintf(out->error, sizeof(out->error), "report: reports.channel is not set");
		return;
	}
	if (aclm_report_send(w->store, kind, NULL, channel, every, aclm_now(), &id) != ACLM_OK) {
		snprintf(out->error, sizeof(out->error), "report %s to %s: %s", job->subject, channel,
		         aclm_errmsg());
		return;
	}
	snprintf(out->result, sizeof(out->result), "{\"alert_id\":%lld}", (long long)id);
	out->ok = true;
}

/* The kinds of job.  retry: a failure is tried again with backoff (a
 * renewal); a scan someone asked for is not repeated behind their back. */
static const struct {
	const char *kind;
	void (*run)(struct worker *w, const struct aclm_job *job, struct outcome *out);
	bool retry;
} kinds[] = {
	{ "renew", job_renew, true },
	{ "renew-now", job_renew, true },
	{ "scan", job_child, false },
	{ "issue", job_child, false },
	{ "revoke", job_child, false },
	{ "report", job_report, true },
};

/* --- planning (leader only) ----------------------------------------------- */

/* What planning needs of a managed certificate, copied out of the listing
 * (the store is not re-entered while a listing streams). */
struct due {
	int64_t id;
	int64_t at;
};

struct plan_ctx {
	int64_t now;
	int64_t ari_recheck;         /* seconds; 0: only at the planned time */
	struct due *due;
	size_t n, cap;
};

static int collect(void *ctx, const struct aclm_managed_row *m)
{
	struct plan_ctx *p = ctx;
	int64_t at;

	if (m->status != NULL && strcmp(m->status, "revoked") == 0)
		return ACLM_OK;
	at = m->current_cert_id == 0 || m->renew_at == 0 ? p->now : m->renew_at;
	/* ARI: the CA may move the window earlier (an incident, renew-early),
	 * so the job also runs when ARI is to be asked again, which renews only
	 * when the window says so: at the Retry-After of the CA's last answer,
	 * or, before any answer or from a CA without ARI, in fixed slots
	 * (epoch-aligned, offset per certificate so a fleet spreads; planning
	 * every tick does not push them ahead). */
	if (m->ari_check_at > 0 && m->current_cert_id != 0) {
		/* The time the CA asked for (renewalInfo's Retry-After). */
		if (m->ari_check_at < at)
			at = m->ari_check_at;
	} else if (p->ari_recheck > 0 && m->current_cert_id != 0) {
		int64_t off = (m->id * 7919) % p->ari_recheck;
		int64_t next = ((p->now - off) / p->ari_recheck + 1) * p->ari_recheck + off;
		if (next < at)
			at = next;
	}
	if (m->next_attempt_at > at)
		at = m->next_attempt_at;
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		struct due *d = realloc(p->due, cap * sizeof(*d));
		if (d == NULL)
			return aclm_error(ACLM_ERR_NOMEM, "out of memory");
		p->due = d;
		p->cap = cap;
	}
	p->due[p->n].id = m->id;
	p->due[p->n].at = at;
	p->n++;
	return ACLM_OK;
}

/* Periodic rescan of the endpoints the inventory knows (scan.rescan_interval;
 * 0 turns it off): one open job at a time, the next one planned an interval
 * after the last. */
static void plan_rescan(struct worker *w, int64_t now)
{
	int64_t every = aclm_config_duration(w->sch->cfg, "scan.rescan_interval"), n = 0;
	struct aclm_endpoint_filter all = { .pq = -1 };

	if (every <= 0 || aclm_store_count_endpoints(w->store, &all, &n) != ACLM_OK || n == 0)
		return;
	if (aclm_store_job_ensure(w->store, "scan", "rescan-known", now + every,
	                          "{\"known\":true}", false) != ACLM_OK)
		aclm_warn("scheduler: plan the rescan: %s", aclm_errmsg());
}

/* Scheduled reports: one open job per kind, at the start of the next
 * period (periods are counted from the Unix epoch, so with 7d every
 * Thursday 00:00 UTC). */
static void plan_reports(struct worker *w, int64_t now)
{
	const char *channel = aclm_config_str(w->sch->cfg, "reports.channel");
	int64_t every = aclm_config_duration(w->sch->cfg, "reports.every");
	static const char *const defaults[] = { "expiry", "compliance" };
	const char *const *names;
	size_t n = aclm_config_list(w->sch->cfg, "reports.kinds", &names);

	if (n == 0) {
		names = defaults;
		n = sizeof(defaults) / sizeof(defaults[0]);
	}

	if (channel == NULL || *channel == '\0' || every <= 0)
		return;
	for (size_t i = 0; i < n; i++) {
		enum aclm_report_kind k;
		if (aclm_report_kind_parse(names[i], &k) != ACLM_OK) {
			aclm_warn("scheduler: reports.kinds: '%s' is not a report", names[i]);
			continue;
		}
		if (aclm_store_job_ensure(w->store, "report", aclm_report_kind_name(k),
		                          (now / every + 1) * every, NULL, false) != ACLM_OK)
			aclm_warn("scheduler: plan the %s report: %s", names[i], aclm_errmsg());
	}
}

static void plan(struct worker *w)
{
	struct plan_ctx p = { .now = aclm_now() };
	bool leader = false;

	p.ari_recheck = aclm_config_duration(w->sch->cfg, "scheduler.ari_recheck");

	if (aclm_store_node_heartbeat(w->store, w->sch->node, "server", w->sch->address,
	                              ACLM_VERSION, p.now) != ACLM_OK)
		aclm_warn("scheduler: heartbeat: %s", aclm_errmsg());
	if (aclm_store_try_leader(w->store, &leader) != ACLM_OK) {
		aclm_warn("scheduler: %s", aclm_errmsg());
		return;
	}
	if (!leader)
		return;
	if (aclm_store_managed_list(w->store, collect, &p) != ACLM_OK)
		aclm_warn("scheduler: list managed certificates: %s", aclm_errmsg());
	for (size_t i = 0; i < p.n; i++) {
		char subject[32];
		snprintf(subject, sizeof(subject), "%lld", (long long)p.due[i].id);
		if (aclm_store_job_ensure(w->store, "renew", subject, p.due[i].at, NULL, true) !=
		    ACLM_OK)
			aclm_warn("scheduler: plan renewal of managed certificate %s: %s", subject,
			          aclm_errmsg());
	}
	free(p.due);
	plan_rescan(w, p.now);
	plan_reports(w, p.now);
	aclm_store_job_prune(w->store, p.now - 30 * 86400);
}

/* --- running --------------------------------------------------------------- */

static void record(struct worker *w, const struct aclm_job *job, const struct outcome *o,
                   const char *state)
{
	json_t *d = json_pack("{s:s,s:s,s:s,s:i,s:s?}", "actor", "system", "kind", job->kind,
	                      "result", state, "attempt", job->attempts + 1, "error",
	                      o->ok ? NULL : o->error);
	char *text = d != NULL ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	char type[48];

	snprintf(type, sizeof(type), "job.%s", state);
	if (text == NULL || aclm_store_append_event(w->store, type, job->subject, text) != ACLM_OK)
		aclm_warn("scheduler: audit event of job %lld: %s", (long long)job->id, aclm_errmsg());
	free(text);
	json_decref(d);
}

static void run_one(struct worker *w, const struct aclm_job *job)
{
	struct outcome o;
	const char *state;
	size_t i;

	memset(&o, 0, sizeof(o));
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(kinds[i].kind, job->kind) == 0)
			break;
	if (i == sizeof(kinds) / sizeof(kinds[0]))
		snprintf(o.error, sizeof(o.error), "unknown job kind '%s'", job->kind);
	else
		kinds[i].run(w, job, &o);
	if (!o.ok && i < sizeof(kinds) / sizeof(kinds[0]) && kinds[i].retry &&
	    job->attempts + 1 < MAX_ATTEMPTS) {
		/* 1, 2, 4 ... minutes, at most 6 hours; later if the job asks. */
		int64_t backoff = (int64_t)60 << (job->attempts < 9 ? job->attempts : 9);
		int64_t at = aclm_now() + (backoff < 6 * 3600 ? backoff : 6 * 3600);
		if (o.retry_at < at)
			o.retry_at = at;
	} else if (!o.ok) {
		o.retry_at = 0;
	}
	state = o.ok ? "done" : o.retry_at > 0 ? "retry" : "failed";
	if (!o.ok)
		aclm_warn("scheduler: %s %s: %s (%s)", job->kind, job->subject, o.error, state);
	else
		aclm_info("scheduler: %s %s done", job->kind, job->subject);
	if (aclm_store_job_finish(w->store, job->id, w->owner, o.ok, o.error, o.retry_at,
	                          o.result[0] ? o.result : NULL) != ACLM_OK)
		aclm_warn("scheduler: %s", aclm_errmsg());
	record(w, job, &o, state);
}

static bool sleep_until_tick(struct scheduler *sch)
{
	struct timespec until;
	bool stop;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += (time_t)sch->interval;
	until.tv_nsec += (long)((sch->interval - (double)(time_t)sch->interval) * 1e9);
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&sch->lock);
	if (!sch->stop)
		pthread_cond_timedwait(&sch->wake, &sch->lock, &until);
	stop = sch->stop;
	pthread_mutex_unlock(&sch->lock);
	return !stop;
}

static bool stopping(struct scheduler *sch)
{
	bool stop;

	pthread_mutex_lock(&sch->lock);
	stop = sch->stop;
	pthread_mutex_unlock(&sch->lock);
	return stop;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct scheduler *sch = w->sch;

	do {
		struct aclm_job job;
		if (w->index == 0)
			plan(w);
		while (!stopping(sch)) {
			int rc = aclm_store_job_claim(w->store, w->owner, aclm_now(), LEASE_SECONDS, &job);
			if (rc < 0)
				aclm_warn("scheduler: claim: %s", aclm_errmsg());
			if (rc != 1)
				break;
			run_one(w, &job);
		}
	} while (sleep_until_tick(sch));
	aclm_store_close(w->store);
	aclm_acme_cas_free(w->cas, w->n_cas);
	if (w->has_kek)
		aclm_kek_wipe(&w->kek);
	free(w);
	return NULL;
}

struct scheduler *server_scheduler_start(struct aclm_config *cfg, const char *db_url,
                                         const char *config_path, const char *address)
{
	struct scheduler *sch = calloc(1, sizeof(*sch));
	char host[48] = "node";

	if (sch == NULL)
		return NULL;
	sch->cfg = cfg;
	sch->db_url = db_url;
	sch->config_path = config_path;
	snprintf(sch->address, sizeof(sch->address), "%s", address != NULL ? address : "");
	sch->n_workers = (int)aclm_config_int(cfg, "scheduler.workers");
	sch->interval = (double)aclm_config_duration(cfg, "scheduler.interval");
	if (sch->n_workers < 1)
		sch->n_workers = 1;
	if (sch->n_workers > MAX_WORKERS)
		sch->n_workers = MAX_WORKERS;
	if (sch->interval < 1)
		sch->interval = 1;
	gethostname(host, sizeof(host) - 1);
	snprintf(sch->node, sizeof(sch->node), "%s:%ld", host, (long)getpid());
	pthread_mutex_init(&sch->lock, NULL);
	pthread_cond_init(&sch->wake, NULL);
	for (int i = 0; i < sch->n_workers; i++) {
		struct worker *w = calloc(1, sizeof(*w));
		if (w == NULL)
			break;
		w->sch = sch;
		w->index = i;
		snprintf(w->owner, sizeof(w->owner), "%s/%d", sch->node, i);
		if (aclm_store_open(db_url, NULL, &w->store) != ACLM_OK) {
			aclm_err("scheduler: worker %d: %s", i, aclm_errmsg());
			free(w);
			break;
		}
		if (pthread_create(&sch->threads[sch->n_threads], NULL, worker_main, w) != 0) {
			aclm_store_close(w->store);
			free(w);
			break;
		}
		sch->n_threads++;
	}
	aclm_info("scheduler: %d worker%s, every %gs", sch->n_threads, sch->n_threads == 1 ? "" : "s",
	          sch->interval);
	return sch;
}

void server_scheduler_wake(struct scheduler *sch)
{
	if (sch == NULL)
		return;
	pthread_mutex_lock(&sch->lock);
	pthread_cond_broadcast(&sch->wake);
	pthread_mutex_unlock(&sch->lock);
}

/* Let running jobs finish (an ACME order is never cut in the middle), then
 * join the workers. */
void server_scheduler_stop(struct scheduler *sch)
{
	if (sch == NULL)
		return;
	pthread_mutex_lock(&sch->lock);
	sch->stop = true;
	pthread_cond_broadcast(&sch->wake);
	pthread_mutex_unlock(&sch->lock);
	for (int i = 0; i < sch->n_threads; i++)
		pthread_join(sch->threads[i], NULL);
	pthread_mutex_destroy(&sch->lock);
	pthread_cond_destroy(&sch->wake);
	free(sch);
}
