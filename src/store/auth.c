/* Users, API tokens and sessions: see include/aclm/store_auth.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "aclm/err.h"
#include "aclm/str.h"
#include "aclm/store_auth.h"
#include "aclm/timeutil.h"
#include "store-int.h"

static const char SQL_USER_ADD[] =
	"INSERT INTO users (name, password_hash, role, created_at, updated_at) "
	"VALUES (?, ?, ?, ?, ?) RETURNING id";
static const char SQL_USER_EXISTS[] = "SELECT id FROM users WHERE name = ?";
#define USER_COLS "SELECT id, name, password_hash, role, failed_logins, locked_until, " \
	"created_at FROM users"
static const char SQL_USER_GET[] = USER_COLS " WHERE name = ?";
static const char SQL_USER_GET_ID[] = USER_COLS " WHERE id = ?";
static const char SQL_USER_LIST[] = USER_COLS " ORDER BY name";
static const char SQL_USER_COUNT[] = "SELECT COUNT(*) FROM users";
static const char SQL_USER_SET_PW[] =
	"UPDATE users SET password_hash = ?, failed_logins = 0, locked_until = 0, "
	"updated_at = ? WHERE name = ? RETURNING id";
static const char SQL_USER_SET_ROLE[] =
	"UPDATE users SET role = ?, updated_at = ? WHERE name = ? RETURNING id";
static const char SQL_USER_SESSIONS_END[] = "DELETE FROM sessions WHERE user_id = ?";
static const char SQL_USER_TOKENS_DEL[] = "DELETE FROM api_tokens WHERE user_id = ?";
static const char SQL_USER_DEL[] = "DELETE FROM users WHERE id = ?";
static const char SQL_ADMINS[] = "SELECT COUNT(*) FROM users WHERE role = 'admin'";
static const char SQL_USER_FAILED[] =
	"UPDATE users SET failed_logins = failed_logins + 1 WHERE id = ? "
	"RETURNING failed_logins";
static const char SQL_USER_LOCK[] =
	"UPDATE users SET locked_until = ?, failed_logins = 0 WHERE id = ?";
static const char SQL_USER_OK[] =
	"UPDATE users SET failed_logins = 0 WHERE id = ? AND failed_logins <> 0";

static const char SQL_TOKEN_ADD[] =
	"INSERT INTO api_tokens (user_id, name, lookup, secret_hash, role, expires_at, created_at) "
	"VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id";
#define TOKEN_COLS "SELECT t.id, t.user_id, u.name, t.name, t.lookup, t.secret_hash, t.role, " \
	"t.expires_at, t.revoked_at, t.last_used_at, t.created_at " \
	"FROM api_tokens t JOIN users u ON u.id = t.user_id"
static const char SQL_TOKEN_GET[] = TOKEN_COLS " WHERE t.lookup = ?";
static const char SQL_TOKEN_GET_ID[] = TOKEN_COLS " WHERE t.id = ?";
static const char SQL_TOKEN_LIST_ALL[] = TOKEN_COLS " ORDER BY t.id";
static const char SQL_TOKEN_LIST_USER[] = TOKEN_COLS " WHERE t.user_id = ? ORDER BY t.id";
static const char SQL_TOKEN_REVOKE[] =
	"UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at = 0";
static const char SQL_TOKEN_TOUCH[] = "UPDATE api_tokens SET last_used_at = ? WHERE id = ?";

static const char SQL_SESSION_ADD[] =
	"INSERT INTO sessions (secret_hash, csrf_hash, user_id, created_at, expires_at, last_seen) "
	"VALUES (?, ?, ?, ?, ?, ?)";
static const char SQL_SESSION_GET[] =
	"SELECT id, user_id, csrf_hash, expires_at FROM sessions "
	"WHERE secret_hash = ? AND expires_at > ?";
static const char SQL_SESSION_DEL[] = "DELETE FROM sessions WHERE secret_hash = ?";
static const char SQL_SESSION_PURGE[] = "DELETE FROM sessions WHERE expires_at <= ?";

void aclm_user_clear(struct aclm_user *u)
{
	free(u->password_hash);
	memset(u, 0, sizeof(*u));
}

bool aclm_user_name_valid(const char *name)
{
	size_t n;

	if (name == NULL || name[0] == '\0' || name[0] == '-')
		return false;
	n = strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._@-");
	return n == strlen(name) && n <= 64;
}



int aclm_store_user_add(struct aclm_store *st, const char *actor, const char *name,
                        const char *password_hash, enum aclm_role role, int64_t *id)
{
	int64_t existing = 0, new_id = 0;
	int rc;

	if (!aclm_user_name_valid(name))
		return aclm_error(ACLM_ERR_USAGE, "invalid user name '%s': 1-64 of A-Z a-z 0-9 . _ @ -",
		                  name != NULL ? name : "");
	if (role == ACLM_ROLE_NONE)
		return aclm_error(ACLM_ERR_USAGE, "a user needs a role (admin, operator, auditor, "
		                  "viewer)");
	if ((rc = aclm_store_begin(st)) != ACLM_OK)
		return rc;
	{
		const struct store_param p[] = { SP_T(name) };
		rc = store_int64(st, SQL_USER_EXISTS, "look up user", p, SP_COUNT(p), &existing);
	}
	if (rc == 1) {
		rc = aclm_error(ACLM_ERR_EXISTS, "user '%s' exists already", name);
		return store_end(st, rc);
	}
	if (rc < 0)
		return store_end(st, rc);
	{
		int64_t now = aclm_now();
		const struct store_param p[] = {
			SP_T(name), SP_T(password_hash), SP_T(aclm_role_name(role)), SP_I(now), SP_I(now),
		};
		rc = store_int64(st, SQL_USER_ADD, "add user", p, SP_COUNT(p), &new_id);
	}
	if (rc == 1) {
		json_t *d = json_object();
		json_object_set_new(d, "role", json_string(aclm_role_name(role)));
		rc = store_audit(st, "user.added", name, actor, d);
	} else if (rc == 0) {
		rc = aclm_error(ACLM_ERR_DB, "add user '%s': no row returned", name);
	}
	if (rc == ACLM_OK && id != NULL)
		*id = new_id;
	return store_end(st, rc);
}

static int read_user(struct aclm_store *st, struct store_query *q, struct aclm_user *u)
{
	const struct store_driver *d = st->drv;
	const char *hash = d->column_text(q->stmt, 2);

	memset(u, 0, sizeof(*u));
	u->id = d->column_int64(q->stmt, 0);
	aclm_strlcpy(u->name, d->column_text(q->stmt, 1), sizeof(u->name));
	u->password_hash = aclm_strdup(hash != NULL ? hash : "");
	u->role = aclm_role_parse(d->column_text(q->stmt, 3));
	u->failed_logins = (int)d->column_int64(q->stmt, 4);
	u->locked_until = d->column_int64(q->stmt, 5);
	u->created_at = d->column_int64(q->stmt, 6);
	if (u->password_hash == NULL)
		return aclm_error(ACLM_ERR_NOMEM, "out of memory");
	return ACLM_OK;
}

static int get_user(struct aclm_store *st, const char *sql, const struct store_param *p,
                    const char *what, struct aclm_user *out)
{
	struct store_query q;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = store_query_open(st, &q, sql, "read user", 0, p, 1)) != ACLM_OK)
		return rc;
	rc = store_query_step(st, &q);
	if (rc == 1)
		rc = read_user(st, &q, out);
	else if (rc == 0)
		rc = aclm_error(ACLM_ERR_NOTFOUND, "no user %s", what);
	store_query_close(st, &q);
	return rc;
}

int aclm_store_user_get(struct aclm_store *st, const char *name, struct aclm_user *out)
{
	const struct store_param p[] = { SP_T(name) };
	char what[96];

	snprintf(what, sizeof(what), "'%s'", name);
	return get_user(st, SQL_USER_GET, p, what, out);
}

int aclm_store_user_get_by_id(struct aclm_store *st, int64_t id, struct aclm_user *out)
{
	const struct store_param p[] = { SP_I(id) };
	char what[48];

	snprintf(what, sizeof(what), "with id %lld", (long long)id);
	return get_user(st, SQL_USER_GET_ID, p, what, out);
}

int aclm_store_user_set_password(struct aclm_store *st, const char *actor, const char *name,
                                 const char *password_hash)
{
	int64_t id = 0;
	int rc;

	if ((rc = aclm_store_begin(st)) != ACLM_OK)
		return rc;
	{
		const struct store_param p[] = { SP_T(password_hash), SP_I(aclm_now()), SP_T(name) };
		rc = store_int64(st, SQL_USER_SET_PW, "set password", p, SP_COUNT(p), &id);
	}
	if (rc == 0)
		rc = aclm_error(ACLM_ERR_NOTFOUND, "no user '%s'", name);
	if (rc == 1) {
		const struct store_param p[] = { SP_I(id) };
		rc = store_run(st, SQL_USER_SESSIONS_END, "end sessions", p, SP_COUNT(p));
	}
	if (rc == ACLM_OK)
		rc = store_audit(st, "user.password", name, actor, NULL);
	return store_end(st, rc);
}

int aclm_store_user_set_role(struct aclm_store *st, const char *actor, const char *name,
                             enum aclm_role role)
{
	struct aclm_user u;
	int64_t id = 0, admins = 0;
	int rc;

	if (role == ACLM_ROLE_NONE)
		return aclm_error(ACLM_ERR_USAGE, "unknown role (admin, operator, auditor, viewer)");
	if ((rc = aclm_store_begin(st)) != ACLM_OK)
		return rc;
	if ((rc = aclm_store_user_get(st, name, &u)) != ACLM_OK)
		return store_end(st, rc);
	if (u.role == ACLM_ROLE_ADMIN && role != ACLM_ROLE_ADMIN) {
		if ((rc = store_int64(st, SQL_ADMINS, "count admins", NULL, 0, &admins)) < 0)
			goto out;
		if (admins <= 1) {
			rc = aclm_error(ACLM_ERR_USAGE, "'%s' is the last admin: add another admin first",
			                name);
			goto out;
		}
	}
	{
		const struct store_param p[] = { SP_T(aclm_role_name(role)), SP_I(aclm_now()),
		                                 SP_T(name) };
		rc = store_int64(st, SQL_USER_SET_ROLE, "set role", p, SP_COUNT(p), &id);
	}
	if (rc == 1) {
		json_t *d = json_object();
		json_object_set_new(d, "from", json_string(aclm_role_name(u.role)));
		json_object_set_new(d, "role", json_string(aclm_role_name(role)));
		rc = store_audit(st, "user.role", name, actor, d);
	}
out:
	aclm_user_clear(&u);
	return store_end(st, rc);
}

int aclm_store_user_delete(struct aclm_store *st, const char *actor, const char *name)
{
	struct aclm_user u;
	int64_t admins = 0;
	int rc;

	if ((rc = aclm_store_begin(st)) != ACLM_OK)
		return rc;
	if ((rc = aclm_store_user_get(st, name, &u)) != ACLM_OK)
		return store_end(st, rc);
	if (u.role == ACLM_ROLE_ADMIN) {
		if ((rc = store_int64(st, SQL_ADMINS, "count admins", NULL, 0, &admins)) < 0)
			goto out;
		if (admins <= 1) {
			rc = aclm_error(ACLM_ERR_USAGE, "'%s' is the last admin: add another admin first",
			                name);
			goto out;
		}
	}
	{
		const struct store_param p[] = { SP_I(u.id) };
		if ((rc = store_run(st, SQL_USER_SESSIONS_END, "end sessions", p, 1)) != ACLM_OK ||
		    (rc = store_run(st, SQL_USER_TOKENS_DEL, "delete tokens", p, 1)) != ACLM_OK ||
		    (rc = store_run(st, SQL_USER_DEL, "delete user", p, 1)) != ACLM_OK)
			goto out;
	}
	rc = store_audit(st, "user.deleted", name, actor, NULL);
out:
	aclm_user_clear(&u);
	return store_end(st, rc);
}

int aclm_store_user_list(struct aclm_store *st, aclm_user_fn fn, void *ctx)
{
	struct store_query q;
	int rc;

	if ((rc = store_query_open(st, &q, SQL_USER_LIST, "list users", 0, NULL, 0)) != ACLM_OK)
		return rc;
	while ((rc = store_query_step(st, &q)) == 1) {
		struct aclm_user u;
		if ((rc = read_user(st, &q, &u)) == ACLM_OK)
			rc = fn(ctx, &u);
		aclm_user_clear(&u);
		if (rc != ACLM_OK)
			break;
	}
	store_query_close(st, &q);
	return rc < 0 ? rc : ACLM_OK;
}

int aclm_store_user_count(struct aclm_store *st, int64_t *n)
{
	int rc = store_int64(st, SQL_USER_COUNT, "count users", NULL, 0, n);

	return rc < 0 ? rc : ACLM_OK;
}

int aclm_store_user_login_failed(struct aclm_store *st, int64_t user_id, int64_t now,
                                 int lock_after, int64_t lock_seconds, bool *now_locked)
{
	int64_t failed = 0;
	int rc;

	*now_locked = false;
	if ((rc = aclm_store_begin(st)) != ACLM_OK)
		return rc;
	{
		const struct store_param p[] = { SP_I(user_id) };
		rc = store_int64(st, SQL_USER_FAILED, "count failed login", p, 1, &failed);
	}
	if (rc == 0)
		rc = aclm_error(ACLM_ERR_NOTFOUND, "no user with id %lld", (long long)user_id);
	if (rc == 1)
		rc = ACLM_OK;
	if (rc == ACLM_OK && lock_after > 0 && failed >= lock_after) {
		const struct store_param p[] = { SP_I(now + lock_seconds), SP_I(user_id) };
		rc = store_run(st, SQL_USER_LOCK, "lock user", p, SP_COUNT(p));
		if (rc == ACLM_OK) {
			struct aclm_user u;
			if ((rc = aclm_store_user_get_by_id(st, user_id, &u)) == ACLM_OK) {
				json_t *d = json_object();
				json_object_set_new(d, "failures", json_integer(failed));
				json_object_set_new(d, "until", json_integer(now + lock_seconds));
				rc = store_audit(st, "user.locked", u.name, "system", d);
			}
			aclm_user_clear(&u);
			*now_locked = rc == ACLM_OK;
		}
	}
	return store_end(st, rc);
}

int aclm_store_user_login_ok(struct aclm_store *st, int64_t user_id)
{
	const struct store_param p[] = { SP_I(user_id) };

	return store_run(st, SQL_USER_OK, "reset failed logins", p, 1);
}

/* --- tokens ------------------------------------------------------------- */

int aclm_store_token_add(struct aclm_store *st, const char *actor, int64_t user_id,
                         const char *name, const char *lookup, const char *secret_hash,
                         enum aclm_role role, int64_t expires_at, int64_t *id)
{
	struct aclm_user u;
	int64_t new_id = 0;
	int rc;

	if (name == NULL || *name == '\0' || strlen(name) > 64)
		return aclm_error(ACLM_ERR_USAGE, "a token needs a name of 1-64 characters");
	if ((rc = aclm_store_begin(st)) != ACLM_OK)
		return rc;
	if ((rc = aclm_store_user_get_by_id(st, user_id, &u)) != ACLM_OK)
		return store_end(st, rc);
	if (role == ACLM_ROLE_NONE)
		role = u.role;
	if (role > u.role) {
		rc = aclm_error(ACLM_ERR_USAGE, "a token of '%s' (%s) cannot have the role %s", u.name,
		                aclm_role_name(u.role), aclm_role_name(role));
		goto out;
	}
	{
		const struct store_param p[] = {
			SP_I(user_id), SP_T(name), SP_T(lookup), SP_T(secret_hash),
			SP_T(aclm_role_name(role)), SP_I(expires_at), SP_I(aclm_now()),
		};
		rc = store_int64(st, SQL_TOKEN_ADD, "add token", p, SP_COUNT(p), &new_id);
	}
	if (rc == 1) {
		json_t *d = json_object();
		json_object_set_new(d, "user", json_string(u.name));
		json_object_set_new(d, "name", json_string(name));
		json_object_set_new(d, "role", json_string(aclm_role_name(role)));
		json_object_set_new(d, "expires_at", json_integer(expires_at));
		rc = store_audit(st, "token.created", lookup, actor, d);
	} else if (rc == 0) {
		rc = aclm_error(ACLM_ERR_DB, "add token: no row returned");
	}
	if (rc == ACLM_OK && id != NULL)
		*id = new_id;
out:
	aclm_user_clear(&u);
	return store_end(st, rc);
}

static void read_token(struct aclm_store *st, struct store_query *q, struct aclm_token *t)
{
	const struct store_driver *d = st->drv;
	const char *s;

	memset(t, 0, sizeof(*t));
	t->id = d->column_int64(q->stmt, 0);
	t->user_id = d->column_int64(q->stmt, 1);
	aclm_strlcpy(t->user, (s = d->column_text(q->stmt, 2)) ? s : "", sizeof(t->user));
	aclm_strlcpy(t->name, (s = d->column_text(q->stmt, 3)) ? s : "", sizeof(t->name));
	aclm_strlcpy(t->lookup, (s = d->column_text(q->stmt, 4)) ? s : "", sizeof(t->lookup));
	aclm_strlcpy(t->secret_hash, (s = d->column_text(q->stmt, 5)) ? s : "",
	             sizeof(t->secret_hash));
	t->role = aclm_role_parse(d->column_text(q->stmt, 6));
	t->expires_at = d->column_int64(q->stmt, 7);
	t->revoked_at = d->column_int64(q->stmt, 8);
	t->last_used_at = d->column_int64(q->stmt, 9);
	t->created_at = d->column_int64(q->stmt, 10);
}

static int get_token(struct aclm_store *st, const char *sql, const struct store_param *p,
                     const char *ref, struct aclm_token *out)
{
	struct store_query q;
	int rc;

	if ((rc = store_query_open(st, &q, sql, "read token", 0, p, 1)) != ACLM_OK)
		return rc;
	rc = store_query_step(st, &q);
	if (rc == 1) {
		read_token(st, &q, out);
		rc = ACLM_OK;
	} else if (rc == 0) {
		rc = aclm_error(ACLM_ERR_NOTFOUND, "no token '%s'", ref);
	}
	store_query_close(st, &q);
	return rc;
}

int aclm_store_token_get(struct aclm_store *st, const char *lookup, struct aclm_token *out)
{
	const struct store_param p[] = { SP_T(lookup) };

	return get_token(st, SQL_TOKEN_GET, p, lookup, out);
}

int aclm_store_token_revoke(struct aclm_store *st, const char *actor, const char *ref)
{
	struct aclm_token t;
	char *end = NULL;
	long long n;
	int rc;

	if ((rc = aclm_store_begin(st)) != ACLM_OK)
		return rc;
	n = strtoll(ref, &end, 10);
	if (end != ref && *end == '\0' && n > 0) {
		const struct store_param p[] = { SP_I(n) };
		rc = get_token(st, SQL_TOKEN_GET_ID, p, ref, &t);
	} else {
		rc = aclm_store_token_get(st, ref, &t);
	}
	if (rc != ACLM_OK)
		return store_end(st, rc);
	if (t.revoked_at == 0) {
		const struct store_param p[] = { SP_I(aclm_now()), SP_I(t.id) };
		if ((rc = store_run(st, SQL_TOKEN_REVOKE, "revoke token", p, SP_COUNT(p))) == ACLM_OK) {
			json_t *d = json_object();
			json_object_set_new(d, "user", json_string(t.user));
			json_object_set_new(d, "name", json_string(t.name));
			rc = store_audit(st, "token.revoked", t.lookup, actor, d);
		}
	}
	return store_end(st, rc);
}

int aclm_store_token_touch(struct aclm_store *st, int64_t id, int64_t now)
{
	const struct store_param p[] = { SP_I(now), SP_I(id) };

	return store_run(st, SQL_TOKEN_TOUCH, "record token use", p, SP_COUNT(p));
}

int aclm_store_token_list(struct aclm_store *st, int64_t user_id, aclm_token_fn fn, void *ctx)
{
	const struct store_param p[] = { SP_I(user_id) };
	struct store_query q;
	int rc;

	rc = user_id > 0 ? store_query_open(st, &q, SQL_TOKEN_LIST_USER, "list tokens", 0, p, 1)
	                 : store_query_open(st, &q, SQL_TOKEN_LIST_ALL, "list tokens", 0, NULL, 0);
	if (rc != ACLM_OK)
		return rc;
	while ((rc = store_query_step(st, &q)) == 1) {
		struct aclm_token t;
		read_token(st, &q, &t);
		if ((rc = fn(ctx, &t)) != ACLM_OK)
			break;
	}
	store_query_close(st, &q);
	return rc < 0 ? rc : ACLM_OK;
}

/* --- sessions ----------------------------------------------------------- */

int aclm_store_session_add(struct aclm_store *st, const char *secret_hash,
                           const char *csrf_hash, int64_t user_id, int64_t now,
                           int64_t expires_at)
{
	const struct store_param p[] = {
		SP_T(secret_hash), SP_T(csrf_hash), SP_I(user_id), SP_I(now), SP_I(expires_at),
		SP_I(now),
	};

	return store_run(st, SQL_SESSION_ADD, "add session", p, SP_COUNT(p));
}

int aclm_store_session_get(struct aclm_store *st, const char *secret_hash, int64_t now,
                           struct aclm_session *out)
{
	const struct store_param p[] = { SP_T(secret_hash), SP_I(now) };
	struct store_query q;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = store_query_open(st, &q, SQL_SESSION_GET, "read session", 0, p,
	                           SP_COUNT(p))) != ACLM_OK)
		return rc;
	rc = store_query_step(st, &q);
	if (rc == 1) {
		const char *c = st->drv->column_text(q.stmt, 2);
		out->id = st->drv->column_int64(q.stmt, 0);
		out->user_id = st->drv->column_int64(q.stmt, 1);
		aclm_strlcpy(out->csrf_hash, c != NULL ? c : "", sizeof(out->csrf_hash));
		out->expires_at = st->drv->column_int64(q.stmt, 3);
		rc = ACLM_OK;
	} else if (rc == 0) {
		rc = aclm_error(ACLM_ERR_NOTFOUND, "no such session (expired or logged out)");
	}
	store_query_close(st, &q);
	return rc;
}

int aclm_store_session_delete(struct aclm_store *st, const char *secret_hash)
{
	const struct store_param p[] = { SP_T(secret_hash) };

	return store_run(st, SQL_SESSION_DEL, "delete session", p, 1);
}

int aclm_store_session_purge(struct aclm_store *st, int64_t now)
{
	const struct store_param p[] = { SP_I(now) };

	return store_run(st, SQL_SESSION_PURGE, "purge sessions", p, 1);
}
