/* Inside the policy module: the parsed form of a policy (rules.c builds it,
 * policy.c applies it, report.c renders what policy.c found). */
#ifndef ACLM_POLICY_INT_H
#define ACLM_POLICY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "aclm/policy.h"

/* Bounds on a policy document: a policy is configuration, never bulk data. */
#define POLICY_MAX_TEXT   (1u << 20)  /* bytes of a document */
#define POLICY_MAX_LIST   1024        /* entries of any list */
#define POLICY_MAX_DEPTH  16          /* YAML nesting */
#define POLICY_MAX_NAME   64

/* Key families a rule may name (key_type of the store, "ec" for ECDSA). */
enum key_family {
	KF_RSA = 0,
	KF_EC,
	KF_SM2,
	KF_ED25519,
	KF_ED448,
	KF_DSA,
	KF_COUNT,
};

struct str_list {
	char **v;
	size_t n;
};

struct dual_rule {
	char *site;
	/* Each pair is two key families; the site complies with any one. */
	enum key_family (*pairs)[2];
	size_t n_pairs;
};

struct pq_rule {
	char *endpoint;              /* glob on host:port, host, ip, sni */
	struct str_list groups;      /* any one of them */
};

struct aclm_policy {
	char *name;
	char *description;

	bool has_key_types;
	bool key_allowed[KF_COUNT];
	int rsa_min_bits;            /* 0: any */
	struct str_list ec_curves;   /* empty: any */

	bool has_sig_algs;
	struct str_list sig_algs;    /* allowed, exact names (case-insensitive) */

	int max_validity_days;       /* 0: no rule; -1: the CA/B schedule */

	struct str_list issuers;     /* globs on issuer CN or DN; empty: no rule */
	struct str_list san_patterns;/* globs / CIDR; empty: no rule */

	enum { WILD_ANY = 0, WILD_ALLOW, WILD_DENY, WILD_LIST } wildcards;
	struct str_list wildcard_names;

	bool one_site_one_key;

	struct dual_rule *duals;
	size_t n_duals;
	struct pq_rule *pqs;
	size_t n_pqs;
};

const char *policy_family_name(enum key_family f);
int policy_family_parse(const char *s, enum key_family *out);
/* key_type of the store ("rsa","ec","sm2",...) -> family; false if unknown. */
bool policy_family_of(const char *key_type, enum key_family *out);

/* Case-insensitive glob: '*' any run of characters (dots too), '?' one. */
bool policy_glob(const char *pattern, const char *s);
/* A SAN pattern against one name: a glob for names, "a.b.c.d/n" or
 * "x::/n" (CIDR) or an exact address for IP SANs. */
bool policy_san_match(const char *pattern, const char *type, const char *value);
/* A certificate name covering host: exact, or a leftmost "*." label. */
bool policy_name_covers(const char *cert_name, const char *host);
/* SHA-1 or MD5 signature algorithm names. */
bool policy_sig_is_weak(const char *sig_alg);

/* YAML text -> JSON value; *err gets a message with line and column. */
int policy_yaml_to_json(const char *text, size_t len, const char *what, json_t **out);

#endif
