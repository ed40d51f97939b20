/* The alert worker of aclm server: one thread with its own store
 * connection, so slow receivers (SMTP timeouts) never hold up the event
 * loop.  The server's timer kicks it; a kick during a run asks for one
 * more run after it. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "aclm/err.h"
#include "aclm/log.h"
#include "aclm/store.h"
#include "aclm/str.h"
#include "notify-int.h"

struct aclm_notify_worker {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool kicked;
	bool started;
	volatile int stop;
	char *url;
	char *kek_env;
	char *kek_file;
	struct aclm_notify_opts o;
};

static void one_run(struct aclm_notify_worker *w, struct aclm_store **st)
{
	struct aclm_notify_stats stats;

	memset(&stats, 0, sizeof(stats));
	if (*st == NULL && aclm_store_open(w->url, NULL, st) != ACLM_OK) {
		aclm_warn("alerts: cannot open the store: %s; trying again at the next run",
		          aclm_errmsg());
		*st = NULL;
		return;
	}
	if (aclm_notify_run(*st, &w->o, &stats) != ACLM_OK)
		aclm_warn("alerts: %s", aclm_errmsg());
	if (stats.raised || stats.sent || stats.failed)
		aclm_info("alerts: %lld raised, %lld sent, %lld failed attempts (%lld given up)",
		          (long long)stats.raised, (long long)stats.sent, (long long)stats.failed,
		          (long long)stats.given_up);
}

static void *run_thread(void *arg)
{
	struct aclm_notify_worker *w = arg;
	struct aclm_store *st = NULL;

	for (;;) {
		pthread_mutex_lock(&w->mu);
		while (!w->kicked && !w->stop)
			pthread_cond_wait(&w->cv, &w->mu);
		w->kicked = false;
		pthread_mutex_unlock(&w->mu);
		if (w->stop)
			break;
		one_run(w, &st);
	}
	aclm_store_close(st);
	return NULL;
}

int aclm_notify_worker_start(const char *store_url, const struct aclm_notify_opts *o,
                             struct aclm_notify_worker **out)
{
	struct aclm_notify_worker *w = calloc(1, sizeof(*w));
	int err;

	*out = NULL;
	if (w == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	w->o = *o;
	w->url = aclm_strdup(store_url);
	w->kek_env = aclm_strdup(o->kek_env);
	w->kek_file = aclm_strdup(o->kek_file);
	w->o.kek_env = w->kek_env;
	w->o.kek_file = w->kek_file;
	w->o.stop = &w->stop;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if (w->url == NULL || (o->kek_file != NULL && w->kek_file == NULL) ||
	    (o->kek_env != NULL && w->kek_env == NULL)) {
		aclm_notify_worker_stop(w);
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	}
	if ((err = pthread_create(&w->thread, NULL, run_thread, w)) != 0) {
		aclm_notify_worker_stop(w);
		return aclm_error(ACLM_ERR_IO, "cannot start the alert thread: %s", strerror(err));
	}
	w->started = true;
	*out = w;
	return ACLM_OK;
}

void aclm_notify_worker_kick(struct aclm_notify_worker *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	w->kicked = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

void aclm_notify_worker_stop(struct aclm_notify_worker *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	if (w->started)
		pthread_join(w->thread, NULL);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	if (w->kek_env != NULL)
		OPENSSL_cleanse(w->kek_env, strlen(w->kek_env));
	free(w->kek_env);
	free(w->kek_file);
	free(w->url);
	free(w);
}
