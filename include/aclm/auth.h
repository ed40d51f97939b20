/* Authentication and authorisation: passwords, API tokens, sessions, roles.
 *
 * Passwords are hashed with argon2id (an encoded string with its own salt and
 * parameters, so the cost can grow without a migration).  API tokens and
 * session cookies are random: "aclm_" + lookup (12 base32 chars, public,
 * indexed) + "_" + secret (32 random bytes, base64url); the store keeps only
 * the SHA-256 of the secret, compared in constant time.
 *
 * Roles, from most to least power:
 *   admin     everything, including users, tokens of others and settings
 *   operator  everything but users and settings
 *   auditor   reads everything, including the audit log; changes nothing
 *   viewer    reads certificates and endpoints only */
#ifndef ACLM_AUTH_H
#define ACLM_AUTH_H

#include <stdbool.h>
#include <stddef.h>

enum aclm_role {
	ACLM_ROLE_NONE = 0,
	ACLM_ROLE_VIEWER,
	ACLM_ROLE_AUDITOR,
	ACLM_ROLE_OPERATOR,
	ACLM_ROLE_ADMIN,
};

/* What a request wants to do. */
enum aclm_perm {
	ACLM_PERM_READ_INVENTORY = 0,  /* certificates, endpoints, findings */
	ACLM_PERM_READ_ALL,            /* + managed certs, jobs, alerts, audit, tokens (own) */
	ACLM_PERM_WRITE,               /* change inventory, managed certs, scans, alerts */
	ACLM_PERM_ADMIN,               /* users, other people's tokens, settings */
};

const char *aclm_role_name(enum aclm_role r);      /* "admin", ..., "none" */
enum aclm_role aclm_role_parse(const char *name);  /* ACLM_ROLE_NONE if unknown */
bool aclm_role_allows(enum aclm_role r, enum aclm_perm p);

/* Password policy: at least 12 characters, at most 1024 bytes. */
#define ACLM_PASSWORD_MIN 12
#define ACLM_PASSWORD_MAX 1024

/* argon2id encoded hash of password; caller frees *encoded.
 * ACLM_ERR_USAGE (with the reason) when the password breaks the policy. */
int aclm_auth_hash_password(const char *password, char **encoded);
/* true only when password matches encoded (constant-time compare inside
 * argon2).  A malformed encoded string is false, never a crash. */
bool aclm_auth_verify_password(const char *password, const char *encoded);

/* A fresh random password for first start (24 chars, base64url). */
int aclm_auth_random_password(char out[33]);

#define ACLM_TOKEN_LOOKUP_LEN 12
#define ACLM_TOKEN_MAX 80

/* A new token: *token is what the user receives (shown once), lookup and
 * secret_hash are what the store keeps. */
int aclm_auth_token_new(char token[ACLM_TOKEN_MAX], char lookup[ACLM_TOKEN_LOOKUP_LEN + 1],
                        char secret_hash[65]);
/* Split a presented token into its lookup and the SHA-256 of its secret.
 * ACLM_ERR_PARSE when it is not of the aclm_ shape. */
int aclm_auth_token_split(const char *token, char lookup[ACLM_TOKEN_LOOKUP_LEN + 1],
                          char secret_hash[65]);
/* Constant-time equality of two 64-digit hex hashes. */
bool aclm_auth_hash_equal(const char *a, const char *b);
/* SHA-256 hex of a string (for session and CSRF tokens). */
int aclm_auth_sha256_hex(const char *s, char out[65]);

#endif
