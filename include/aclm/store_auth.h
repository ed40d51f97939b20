/* The store's users, API tokens and login sessions (migration 4).
 *
 * Only hashes of secrets reach the database (see auth.h).  Every change is
 * one transaction together with its audit event; `actor` names who did it
 * ("user:alice", "token:abc...", "system", "cli") and goes into the event. */
#ifndef ACLM_STORE_AUTH_H
#define ACLM_STORE_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "aclm/auth.h"
#include "aclm/store.h"

struct aclm_user {
	int64_t id;
	char name[65];
	char *password_hash;        /* owned; aclm_user_clear() frees */
	enum aclm_role role;
	int failed_logins;
	int64_t locked_until;
	int64_t created_at;
};
void aclm_user_clear(struct aclm_user *u);

/* User names: 1-64 of [A-Za-z0-9._@-], not starting with '-'. */
bool aclm_user_name_valid(const char *name);

/* ACLM_ERR_EXISTS when the name is taken. */
int aclm_store_user_add(struct aclm_store *st, const char *actor, const char *name,
                        const char *password_hash, enum aclm_role role, int64_t *id);
/* ACLM_ERR_NOTFOUND when there is no such user. */
int aclm_store_user_get(struct aclm_store *st, const char *name, struct aclm_user *out);
int aclm_store_user_get_by_id(struct aclm_store *st, int64_t id, struct aclm_user *out);
/* Also clears failed logins and any lockout, and ends the user's sessions. */
int aclm_store_user_set_password(struct aclm_store *st, const char *actor, const char *name,
                                 const char *password_hash);
int aclm_store_user_set_role(struct aclm_store *st, const char *actor, const char *name,
                             enum aclm_role role);
/* Deletes the user with their tokens and sessions.  Refuses to delete the
 * last admin (ACLM_ERR_USAGE). */
int aclm_store_user_delete(struct aclm_store *st, const char *actor, const char *name);
typedef int (*aclm_user_fn)(void *ctx, const struct aclm_user *u);
int aclm_store_user_list(struct aclm_store *st, aclm_user_fn fn, void *ctx);
int aclm_store_user_count(struct aclm_store *st, int64_t *n);

/* Login bookkeeping: a failure counts and, at `lock_after` failures in a
 * row, locks the account until now + lock_seconds (event "user.locked");
 * a success resets the count. */
int aclm_store_user_login_failed(struct aclm_store *st, int64_t user_id, int64_t now,
                                 int lock_after, int64_t lock_seconds, bool *now_locked);
int aclm_store_user_login_ok(struct aclm_store *st, int64_t user_id);

struct aclm_token {
	int64_t id;
	int64_t user_id;
	char user[65];
	char name[65];
	char lookup[ACLM_TOKEN_LOOKUP_LEN + 1];
	char secret_hash[65];
	enum aclm_role role;         /* never above the owner's role (checked on use) */
	int64_t expires_at;          /* 0: never */
	int64_t revoked_at;          /* 0: valid */
	int64_t last_used_at;
	int64_t created_at;
};

int aclm_store_token_add(struct aclm_store *st, const char *actor, int64_t user_id,
                         const char *name, const char *lookup, const char *secret_hash,
                         enum aclm_role role, int64_t expires_at, int64_t *id);
/* By its public lookup part; ACLM_ERR_NOTFOUND. */
int aclm_store_token_get(struct aclm_store *st, const char *lookup, struct aclm_token *out);
/* Revoke by id or lookup (ref); ACLM_ERR_NOTFOUND.  Revoking twice is ok. */
int aclm_store_token_revoke(struct aclm_store *st, const char *actor, const char *ref);
int aclm_store_token_touch(struct aclm_store *st, int64_t id, int64_t now);
typedef int (*aclm_token_fn)(void *ctx, const struct aclm_token *t);
/* user_id 0: every user's. */
int aclm_store_token_list(struct aclm_store *st, int64_t user_id, aclm_token_fn fn, void *ctx);

struct aclm_session {
	int64_t id;
	int64_t user_id;
	char csrf_hash[65];
	int64_t expires_at;
};
int aclm_store_session_add(struct aclm_store *st, const char *secret_hash,
                           const char *csrf_hash, int64_t user_id, int64_t now,
                           int64_t expires_at);
/* A live session (expires_at > now); ACLM_ERR_NOTFOUND otherwise. */
int aclm_store_session_get(struct aclm_store *st, const char *secret_hash, int64_t now,
                           struct aclm_session *out);
int aclm_store_session_delete(struct aclm_store *st, const char *secret_hash);
int aclm_store_session_purge(struct aclm_store *st, int64_t now);

#endif
