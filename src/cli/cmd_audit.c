/* aclm audit verify|export: the tamper-evident event log. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "aclm/err.h"
#include "aclm/str.h"
#include "aclm/timeutil.h"
#include "cli-int.h"

struct verify_ctx {
	json_t *problems;   /* JSON mode */
	int64_t n;
};

static int report(void *ctx, const struct aclm_audit_issue *is)
{
	struct verify_ctx *v = ctx;
	char text[200];

	switch (is->problem) {
	case ACLM_AUDIT_DELETED:
		if (is->id == is->last)
			snprintf(text, sizeof(text), "event %lld is missing (deleted)", (long long)is->id);
		else
			snprintf(text, sizeof(text), "events %lld..%lld are missing (deleted)",
			         (long long)is->id, (long long)is->last);
		break;
	case ACLM_AUDIT_EDITED:
		snprintf(text, sizeof(text), "event %lld does not match its hash (edited)",
		         (long long)is->id);
		break;
	case ACLM_AUDIT_REORDERED:
		snprintf(text, sizeof(text), "event %lld holds the record written as event %lld "
		         "(reordered)", (long long)is->id, (long long)is->was);
		break;
	case ACLM_AUDIT_RELINKED:
		snprintf(text, sizeof(text), "event %lld does not follow the event before it "
		         "(chain rewritten)", (long long)is->id);
		break;
	}
	v->n++;
	if (v->problems != NULL) {
		static const char *const kinds[] = { "edited", "deleted", "reordered", "relinked" };
		json_t *o = json_object();
		json_object_set_new(o, "problem", json_string(kinds[is->problem]));
		json_object_set_new(o, "id", json_integer(is->id));
		if (is->problem == ACLM_AUDIT_DELETED)
			json_object_set_new(o, "last", json_integer(is->last));
		if (is->problem == ACLM_AUDIT_REORDERED)
			json_object_set_new(o, "was", json_integer(is->was));
		json_object_set_new(o, "message", json_string(text));
		json_array_append_new(v->problems, o);
	} else {
		fprintf(stderr, "aclm: audit: %s\n", text);
	}
	return ACLM_OK;
}

static int audit_verify(struct cli *cli, bool json, const char *expect_head)
{
	struct verify_ctx v = { .problems = json ? json_array() : NULL, .n = 0 };
	int64_t n = 0, head_id = 0, want_id = 0;
	char head_hash[65], want_hash[65] = "";
	bool head_ok = true;

	if (expect_head != NULL) {
		const char *colon = strchr(expect_head, ':');
		char idtext[24];
		if (colon == NULL || (size_t)(colon - expect_head) >= sizeof(idtext) ||
		    strlen(colon + 1) != 64)
			return cli_usage_error("audit", "--expect-head: want ID:HASH as printed by an "
			                       "earlier verify");
		snprintf(idtext, sizeof(idtext), "%.*s", (int)(colon - expect_head), expect_head);
		if (aclm_parse_int64(idtext, &want_id) != ACLM_OK || want_id < 0)
			return cli_usage_error("audit", "--expect-head: '%s' is not an event id", idtext);
		aclm_strlcpy(want_hash, colon + 1, sizeof(want_hash));
	}
	if (cli_open_store(cli) != EXIT_OK) {
		json_decref(v.problems);
		return EXIT_FAILED;
	}
	if (aclm_store_audit_verify(cli->store, report, &v, &n, &head_id, head_hash) != ACLM_OK) {
		json_decref(v.problems);
		return cli_fail("%s", aclm_errmsg());
	}
	if (expect_head != NULL) {
		/* The remembered head must still be in the log with the same hash. */
		head_ok = head_id >= want_id;
		if (head_ok && want_id > 0) {
			char got_hash[65] = "";
			head_ok = aclm_store_event_hash(cli->store, want_id, got_hash) == ACLM_OK &&
			          strcmp(got_hash, want_hash) == 0;
		}
		if (!head_ok) {
			char text[160];
			snprintf(text, sizeof(text), "the log no longer holds event %lld with the expected "
			         "hash (events cut from the end or rewritten)", (long long)want_id);
			if (v.problems != NULL)
				json_array_append_new(v.problems, json_pack("{s:s,s:I,s:s}", "problem",
				                      "truncated", "id", (json_int_t)want_id, "message", text));
			else
				fprintf(stderr, "aclm: audit: %s\n", text);
			v.n++;
		}
	}
	if (json) {
		json_t *o = json_object();
		json_object_set_new(o, "events", json_integer(n));
		json_object_set_new(o, "intact", json_boolean(v.n == 0));
		json_object_set_new(o, "head", n ? json_pack("{s:I,s:s}", "id", (json_int_t)head_id,
		                                             "hash", head_hash) : json_null());
		json_object_set_new(o, "problems", v.problems);
		cli_json_print(o);
	} else if (v.n == 0 && !cli->quiet) {
		printf("audit log intact: %lld events; head %lld:%s\n", (long long)n,
		       (long long)head_id, head_hash);
	}
	if (v.n != 0) {
		if (!json)
			fprintf(stderr, "aclm: error: audit log altered: %lld problem%s in %lld events\n",
			        (long long)v.n, v.n == 1 ? "" : "s", (long long)n);
		return EXIT_FAILED;
	}
	return EXIT_OK;
}

static int export_row(void *ctx, const struct aclm_event_row *r)
{
	json_t *o = json_object(), *detail = NULL;
	char *line;

	(void)ctx;
	json_object_set_new(o, "id", json_integer(r->id));
	json_object_set_new(o, "at", cli_json_time(r->at));
	json_object_set_new(o, "type", cli_json_str(r->type));
	json_object_set_new(o, "subject", cli_json_str(r->subject));
	if (r->detail != NULL)
		detail = json_loads(r->detail, 0, NULL);
	json_object_set_new(o, "detail", detail != NULL ? detail : cli_json_str(r->detail));
	json_object_set_new(o, "prev_hash", cli_json_str(r->prev_hash));
	json_object_set_new(o, "hash", cli_json_str(r->hash));
	line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (line == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	puts(line);
	free(line);
	return ACLM_OK;
}

static int audit_export(struct cli *cli, const char *since_text)
{
	int64_t since = 0;

	if (since_text != NULL) {
		int64_t ago;
		if (aclm_time_parse_iso(since_text, &since) != ACLM_OK) {
			if (aclm_parse_duration(since_text, &ago) != ACLM_OK)
				return cli_usage_error("audit", "--since: '%s' is neither a time "
				                       "(2026-11-30T00:00:00Z) nor a duration (7d)", since_text);
			since = aclm_now() - ago;
		}
	}
	if (cli_open_store(cli) != EXIT_OK)
		return EXIT_FAILED;
	if (aclm_store_list_events(cli->store, since, 0, 0, export_row, NULL) != ACLM_OK)
		return cli_fail("%s", aclm_errmsg());
	return EXIT_OK;
}

int cmd_audit(struct cli *cli, int argc, char **argv)
{
	enum { O_JSON = 256, O_SINCE, O_EXPECT_HEAD };
	static const struct option opts[] = {
		{ "json", no_argument, NULL, O_JSON },
		{ "since", required_argument, NULL, O_SINCE },
		{ "expect-head", required_argument, NULL, O_EXPECT_HEAD },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cli_command *self = cli_find_command("audit");
	const char *since = NULL, *expect_head = NULL;
	bool json = false;
	int opt;

	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (opt) {
		case O_JSON: json = true; break;
		case O_SINCE: since = optarg; break;
		case O_EXPECT_HEAD: expect_head = optarg; break;
		default: return cli_getopt_default(self, opt, argv);
		}
	}
	if (optind >= argc)
		return cli_usage_error("audit", "missing subcommand (verify, export)");
	if (optind + 1 < argc)
		return cli_usage_error("audit", "unexpected argument '%s'", argv[optind + 1]);
	if (strcmp(argv[optind], "verify") == 0)
		return audit_verify(cli, json, expect_head);
	if (strcmp(argv[optind], "export") == 0)
		return audit_export(cli, since);
	return cli_usage_error("audit", "unknown subcommand '%s' (verify, export)", argv[optind]);
}
