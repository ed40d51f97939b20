/* Who is asking, and may they: API tokens, session cookies with CSRF
 * protection, logins with throttling and lockout.  See docs/server.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "aclm/auth.h"
#include "aclm/err.h"
#include "aclm/json.h"
#include "aclm/str.h"
#include "aclm/store_auth.h"
#include "aclm/timeutil.h"
#include "server-int.h"

#define COOKIE_NAME "aclm_session"
#define IP_WINDOW 60          /* seconds */
#define IP_MAX_FAILURES 20    /* per window, all user names together */

static int unauthorized(struct aclm_http_res *res, const char *detail)
{
	aclm_http_header_add(res, "WWW-Authenticate", "Bearer realm=\"aclm\"");
	return server_reply_error(res, 401, "unauthorized", detail);
}

static bool is_safe_method(const char *m)
{
	return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "OPTIONS") == 0;
}

/* The value of one cookie, copied into out; false when absent. */
static bool cookie_value(const char *header, const char *name, char *out, size_t n)
{
	size_t name_len = strlen(name);
	const char *p = header;

	while (p != NULL && *p != '\0') {
		const char *end;
		while (*p == ' ' || *p == ';')
			p++;
		end = strchr(p, ';');
		if (strncmp(p, name, name_len) == 0 && p[name_len] == '=') {
			const char *v = p + name_len + 1;
			size_t len = end ? (size_t)(end - v) : strlen(v);
			if (len == 0 || len >= n)
				return false;
			memcpy(out, v, len);
			out[len] = '\0';
			return true;
		}
		p = end;
	}
	return false;
}

static int by_token(struct server *s, struct aclm_http_res *res, const char *token,
                    struct principal *who)
{
	char lookup[ACLM_TOKEN_LOOKUP_LEN + 1], hash[65];
	struct aclm_token t;
	struct aclm_user u;
	int64_t now = aclm_now();

	if (aclm_auth_token_split(token, lookup, hash) != ACLM_OK)
		return unauthorized(res, "malformed bearer token");
	if (aclm_store_token_get(s->store, lookup, &t) != ACLM_OK ||
	    !aclm_auth_hash_equal(t.secret_hash, hash))
		return unauthorized(res, "invalid token");
	if (t.revoked_at != 0)
		return unauthorized(res, "token revoked");
	if (t.expires_at != 0 && t.expires_at <= now)
		return unauthorized(res, "token expired");
	if (aclm_store_user_get_by_id(s->store, t.user_id, &u) != ACLM_OK)
		return unauthorized(res, "invalid token");
	who->user_id = u.id;
	aclm_strlcpy(who->user, u.name, sizeof(who->user));
	/* A token never has more power than its user has now. */
	who->role = t.role < u.role ? t.role : u.role;
	who->via_token = true;
	who->token_id = t.id;
	snprintf(who->actor, sizeof(who->actor), "token:%s(%s)", t.lookup, u.name);
	aclm_user_clear(&u);
	if (now - t.last_used_at >= 60)
		aclm_store_token_touch(s->store, t.id, now);
	return 0;
}

static int by_session(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                      const char *secret, struct principal *who)
{
	struct aclm_session sess;
	struct aclm_user u;
	char hash[65];

	if (aclm_auth_sha256_hex(secret, hash) != ACLM_OK ||
	    aclm_store_session_get(s->store, hash, aclm_now(), &sess) != ACLM_OK)
		return unauthorized(res, "session expired or logged out: log in again");
	if (!is_safe_method(aclm_http_req_method(req))) {
		const char *csrf = aclm_http_req_header(req, "X-CSRF-Token");
		char csrf_hash[65];
		if (csrf == NULL || strlen(csrf) > 128 || aclm_auth_sha256_hex(csrf, csrf_hash) != ACLM_OK ||
		    !aclm_auth_hash_equal(csrf_hash, sess.csrf_hash))
			return server_reply_error(res, 403, "csrf", "missing or wrong X-CSRF-Token header "
			                          "(the csrf_token of the login answer)");
	}
	if (aclm_store_user_get_by_id(s->store, sess.user_id, &u) != ACLM_OK)
		return unauthorized(res, "session of a deleted user");
	who->user_id = u.id;
	aclm_strlcpy(who->user, u.name, sizeof(who->user));
	who->role = u.role;
	snprintf(who->actor, sizeof(who->actor), "user:%s", u.name);
	aclm_user_clear(&u);
	return 0;
}

int server_authenticate(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                        const struct api_route *r, struct principal *who)
{
	const char *authz = aclm_http_req_header(req, "Authorization");
	const char *cookies = aclm_http_req_header(req, "Cookie");
	char secret[128];
	int status;

	if (authz != NULL) {
		if (strncasecmp(authz, "Bearer ", 7) != 0)
			return unauthorized(res, "Authorization must be 'Bearer <token>'");
		status = by_token(s, res, authz + 7, who);
	} else if (cookies != NULL && cookie_value(cookies, COOKIE_NAME, secret, sizeof(secret))) {
		status = by_session(s, req, res, secret, who);
		OPENSSL_cleanse(secret, sizeof(secret));
	} else {
		return unauthorized(res, "log in (POST /api/v1/login) or send Authorization: Bearer");
	}
	if (status != 0)
		return status;
	if (r->access == ACCESS_PERM && !aclm_role_allows(who->role, r->perm)) {
		char detail[160];
		snprintf(detail, sizeof(detail), "the role %s may not %s %s", aclm_role_name(who->role),
		         aclm_http_req_method(req), r->pattern);
		return server_reply_error(res, 403, "forbidden", detail);
	}
	return 0;
}

/* --- login throttling per client address --------------------------------- */

static void peer_ip(struct aclm_http_req *req, char *out, size_t n)
{
	const char *peer = aclm_http_req_peer(req);
	const char *colon = strrchr(peer, ':');
	size_t len = colon != NULL ? (size_t)(colon - peer) : strlen(peer);

	if (len >= n)
		len = n - 1;
	memcpy(out, peer, len);
	out[len] = '\0';
}

static struct throttle_slot *throttle_slot(struct server *s, const char *ip, int64_t now)
{
	struct throttle_slot *oldest = &s->throttle[0];

	for (int i = 0; i < THROTTLE_SLOTS; i++) {
		struct throttle_slot *t = &s->throttle[i];
		if (strcmp(t->peer_ip, ip) == 0) {
			if (now - t->window_start >= IP_WINDOW) {
				t->window_start = now;
				t->failures = 0;
			}
			return t;
		}
		if (t->window_start < oldest->window_start)
			oldest = t;
	}
	aclm_strlcpy(oldest->peer_ip, ip, sizeof(oldest->peer_ip));
	oldest->failures = 0;
	oldest->window_start = now;
	return oldest;
}

/* A fixed hash verified when the user does not exist, so that a wrong name
 * costs as much time as a wrong password. */
static const char *dummy_hash(void)
{
	static char *h;

	if (h == NULL && aclm_auth_hash_password("not a real password at all", &h) != ACLM_OK)
		h = NULL;
	return h;
}

static int random_secret(char *out, size_t n)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char raw[43];

	if (n < sizeof(raw) + 1 || RAND_bytes(raw, sizeof(raw)) != 1)
		return aclm_error(ACLM_ERR_CRYPTO, "no random bytes for a session");
	for (size_t i = 0; i < sizeof(raw); i++)
		out[i] = alphabet[raw[i] & 63];
	out[sizeof(raw)] = '\0';
	OPENSSL_cleanse(raw, sizeof(raw));
	return ACLM_OK;
}

static int login(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                 const struct principal *unused)
{
	size_t len = 0;
	const unsigned char *body = aclm_http_req_body(req, &len);
	json_t *j = json_loadb((const char *)body, len, 0, NULL);
	const char *name = j ? json_string_value(json_object_get(j, "username")) : NULL;
	const char *password = j ? json_string_value(json_object_get(j, "password")) : NULL;
	struct throttle_slot *t;
	struct aclm_user u;
	char ip[48], secret[64], csrf[64], h_secret[65], h_csrf[65], cookie[200];
	int64_t now = aclm_now(), expires;
	bool ok, locked = false;
	int status;

	(void)unused;
	memset(&u, 0, sizeof(u));
	if (name == NULL || password == NULL) {
		json_decref(j);
		return server_reply_error(res, 400, "bad_request",
		                          "want a JSON body {\"username\": ..., \"password\": ...}");
	}
	peer_ip(req, ip, sizeof(ip));
	t = throttle_slot(s, ip, now);
	if (t->failures >= IP_MAX_FAILURES) {
		char retry[24];
		snprintf(retry, sizeof(retry), "%lld", (long long)(t->window_start + IP_WINDOW - now));
		aclm_http_header_add(res, "Retry-After", retry);
		status = server_reply_error(res, 429, "throttled", "too many failed logins from this "
		                            "address; wait and retry");
		goto out;
	}
	if (aclm_store_user_get(s->store, name, &u) != ACLM_OK) {
		(void)aclm_auth_verify_password(password, dummy_hash());
		ok = false;
	} else if (u.locked_until > now) {
		char detail[96], until[32];
		aclm_time_iso(u.locked_until, until, sizeof(until));
		snprintf(detail, sizeof(detail), "account locked after repeated failures until %s",
		         until);
		t->failures++;
		status = server_reply_error(res, 423, "locked", detail);
		goto out;
	} else {
		ok = aclm_auth_verify_password(password, u.password_hash);
	}
	if (!ok) {
		t->failures++;
		s->login_failures++;
		if (u.id != 0)
			aclm_store_user_login_failed(s->store, u.id, now, s->lockout_after,
			                             s->lockout_seconds, &locked);
		status = locked ? server_reply_error(res, 423, "locked", "account locked after "
		                                     "repeated failures")
		                : server_reply_error(res, 401, "unauthorized", "wrong user name or "
		                                     "password");
		goto out;
	}
	expires = now + s->session_ttl;
	if (random_secret(secret, sizeof(secret)) != ACLM_OK ||
	    random_secret(csrf, sizeof(csrf)) != ACLM_OK ||
	    aclm_auth_sha256_hex(secret, h_secret) != ACLM_OK ||
	    aclm_auth_sha256_hex(csrf, h_csrf) != ACLM_OK ||
	    aclm_store_user_login_ok(s->store, u.id) != ACLM_OK ||
	    aclm_store_session_add(s->store, h_secret, h_csrf, u.id, now, expires) != ACLM_OK) {
		status = ACLM_ERR_DB;
		goto out;
	}
	aclm_store_session_purge(s->store, now);
	snprintf(cookie, sizeof(cookie), COOKIE_NAME "=%s; Path=/; Max-Age=%lld; HttpOnly; Secure; "
	         "SameSite=Strict", secret, (long long)s->session_ttl);
	aclm_http_header_add(res, "Set-Cookie", cookie);
	aclm_http_header_add(res, "Cache-Control", "no-store");
	status = server_reply_json(res, 200, json_pack("{s:s,s:s,s:s,s:o}", "user", u.name, "role",
	                                               aclm_role_name(u.role), "csrf_token", csrf,
	                                               "expires_at", aclm_json_time(expires)));
	OPENSSL_cleanse(secret, sizeof(secret));
	OPENSSL_cleanse(csrf, sizeof(csrf));
	OPENSSL_cleanse(cookie, sizeof(cookie));
out:
	aclm_user_clear(&u);
	json_decref(j);
	return status;
}

static int logout(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
                  const struct principal *who)
{
	const char *cookies = aclm_http_req_header(req, "Cookie");
	char secret[128], hash[65];

	(void)who;
	if (cookies != NULL && cookie_value(cookies, COOKIE_NAME, secret, sizeof(secret)) &&
	    aclm_auth_sha256_hex(secret, hash) == ACLM_OK)
		aclm_store_session_delete(s->store, hash);
	OPENSSL_cleanse(secret, sizeof(secret));
	aclm_http_header_add(res, "Set-Cookie", COOKIE_NAME "=; Path=/; Max-Age=0; HttpOnly; Secure; "
	                     "SameSite=Strict");
	return server_reply_json(res, 200, json_pack("{s:b}", "logged_out", 1));
}

static int me(struct server *s, struct aclm_http_req *req, struct aclm_http_res *res,
              const struct principal *who)
{
	(void)s;
	(void)req;
	return server_reply_json(res, 200, json_pack("{s:s,s:s,s:s}", "user", who->user, "role",
	                                             aclm_role_name(who->role), "via",
	                                             who->via_token ? "token" : "session"));
}

const struct api_route server_auth_routes[] = {
	{ "POST", "/api/v1/login", ACCESS_PUBLIC, 0, login,
	  "log in with {username, password}: a session cookie and a CSRF token" },
	{ "POST", "/api/v1/logout", ACCESS_LOGGED_IN, 0, logout, "end the session" },
	{ "GET", "/api/v1/me", ACCESS_LOGGED_IN, 0, me, "who is logged in, and the role" },
};
const size_t server_n_auth_routes = sizeof(server_auth_routes) / sizeof(server_auth_routes[0]);
