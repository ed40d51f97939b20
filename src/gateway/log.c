/* The gateway's JSON-lines access log and its counters.  One line per
 * answered request, written with one write(2) on an O_APPEND descriptor so
 * that lines of different workers never interleave. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "aclm/err.h"
#include "gateway-int.h"

struct gw_metrics gw_metrics = { .mu = PTHREAD_MUTEX_INITIALIZER };

static int log_fd = -1;

int gw_log_open(const char *path)
{
	int fd;

	if (!path || !*path)
		return 0;
	if (!strcmp(path, "-")) {
		log_fd = STDERR_FILENO;
		return 0;
	}
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
		return aclm_error(ACLM_ERR_IO, "access log %s: %s", path, strerror(errno));
	log_fd = fd;
	return 0;
}

void gw_log_close(void)
{
	if (log_fd > STDERR_FILENO)
		close(log_fd);
	log_fd = -1;
}

void gw_log_access(const struct gw_access *a)
{
	char ts[40];
	struct timespec now;
	struct tm tm;
	json_t *j;
	char *line;

	if (log_fd < 0)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	         now.tv_nsec / 1000000);
	j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:I, s:s, s:I, s:I}",
	              "time", ts, "client", a->client, "sni", a->sni, "tls_version",
	              a->tls_version, "group", a->group, "suite", a->suite, "method", a->method,
	              "path", a->path, "status", a->status, "bytes", (json_int_t)a->bytes,
	              "upstream", a->upstream,
	              "duration_us", (json_int_t)(a->duration * 1e6),
	              "upstream_us", (json_int_t)(a->upstream_duration * 1e6));
	if (!j)
		return;
	line = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(j);
	if (!line)
		return;
	{
		size_t len = strlen(line);
		char *l2 = realloc(line, len + 2);

		if (l2) {
			line = l2;
			line[len] = '\n';
			if (write(log_fd, line, len + 1) < 0) {
				/* nothing better to do: the log is best effort */
			}
		}
	}
	free(line);
}

void gw_metrics_handshake(const char *group, const char *version)
{
	size_t i;

	pthread_mutex_lock(&gw_metrics.mu);
	for (i = 0; i < gw_metrics.n_hs; i++)
		if (!strcmp(gw_metrics.hs_group[i], group) &&
		    !strcmp(gw_metrics.hs_version[i], version))
			break;
	if (i == gw_metrics.n_hs && i < sizeof(gw_metrics.hs_count) / sizeof(gw_metrics.hs_count[0])) {
		snprintf(gw_metrics.hs_group[i], sizeof(gw_metrics.hs_group[i]), "%s", group);
		snprintf(gw_metrics.hs_version[i], sizeof(gw_metrics.hs_version[i]), "%s", version);
		gw_metrics.n_hs++;
	}
	if (i < gw_metrics.n_hs)
		gw_metrics.hs_count[i]++;
	pthread_mutex_unlock(&gw_metrics.mu);
}
