/* gencerts: write a directory of synthetic certificates for the import
 * benchmark, quickly.
 *
 *   gencerts [-j JOBS] [-s SEED] OUTDIR N
 *
 * N leaf certificates issued by a two-level ECDSA P-256 CA (root ->
 * intermediate), laid out the way real certificate directories look:
 *
 *   OUTDIR/ca/root.pem, ca/intermediate.pem     the CA (2 certificates)
 *   OUTDIR/bundles/bundle-NNNN.pem              PEM bundles of 1000 leaves
 *   OUTDIR/sites/NN/site-NNNNN.pem              one leaf + the intermediate
 *                                               (a "fullchain.pem"), 0.7% of N
 *   OUTDIR/der/NN/cert-NNNNN.der                one leaf, DER, 0.3% of N
 *   OUTDIR/p7b/bundle-NN.p7b                    PEM PKCS#7 of 250 leaves, 1% of N
 *
 * Leaf keys come from small pools generated at start and reused (RSA 2048,
 * EC P-256, P-384, Ed25519, SM2), so an inventory built from this has far
 * fewer distinct keys than certificates.  notAfter is spread uniformly over
 * now-30 .. now+400 days; validity periods, SAN sets (DNS, wildcards, IP,
 * e-mail), subjects and CA/B policy OIDs (DV/OV/EV/none) vary by certificate.
 * The output is a function of SEED and the clock (not of JOBS) apart from
 * the keys and ECDSA signatures, which are random.
 *
 * On success prints, one per line: "files F", "certificates C" (certificate
 * blocks in all files, intermediates repeated in site files included),
 * "unique U" (distinct certificates: N + 2), "seconds S". */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define DAY 86400
#define BUNDLE_SIZE 1000
#define P7_SIZE 250
#define N_KEY_KINDS 5

struct key_kind {
	const char *name;
	int weight;          /* share of leaves, in percent */
	int n_keys;
	EVP_PKEY **keys;
	X509_EXTENSION **skis;
	X509_EXTENSION *key_usage;
};

static struct key_kind kinds[N_KEY_KINDS] = {
	{ "rsa2048", 35, 6, NULL, NULL, NULL },
	{ "p256", 35, 32, NULL, NULL, NULL },
	{ "p384", 10, 32, NULL, NULL, NULL },
	{ "ed25519", 10, 32, NULL, NULL, NULL },
	{ "sm2", 10, 32, NULL, NULL, NULL },
};

static const char *const domains[] = {
	"example.com", "example.net", "example.org", "corp.example", "internal.test",
	"shop.example.com", "api.example.net", "cdn.example.org", "mail.example.com",
	"bank.example", "health.example", "edu.example.org", "gov.example", "iot.example.net",
	"payments.example.com", "staging.example.org",
};
static const char *const hosts[] = {
	"www", "api", "mail", "vpn", "git", "ci", "db", "auth", "login", "cdn", "static",
	"portal", "admin", "files", "chat", "metrics", "grafana", "proxy", "edge", "app",
};
static const char *const orgs[] = {
	"Example Corp", "Acme Widgets Ltd", "Globex", "Initech", "Umbrella GmbH",
	"Hooli", "Stark Industries", "Wayne Enterprises",
};
static const char *const countries[] = { "US", "DE", "CN", "FR", "GB", "JP", "BR", "IN" };

static EVP_PKEY *root_key, *int_key;
static X509 *root_cert, *int_cert;
static X509_EXTENSION *ext_bc_leaf, *ext_eku, *ext_aki, *ext_pol[3];
static time_t now;

/* splitmix64: a small deterministic generator, one state per file */
static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static unsigned rnd_below(uint64_t *s, unsigned n)
{
	return (unsigned)(rnd(s) % n);
}

static void die(const char *what)
{
	fprintf(stderr, "gencerts: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static void mkdirs(const char *path)
{
	char tmp[4096];
	size_t len = strlen(path);

	if (len >= sizeof(tmp))
		die("path too long");
	memcpy(tmp, path, len + 1);
	for (char *p = tmp + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
			die(tmp);
		*p = '/';
	}
	if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
		die(tmp);
}

static EVP_PKEY *gen_key(const char *kind)
{
	EVP_PKEY *k = NULL;

	if (strcmp(kind, "rsa2048") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	else if (strcmp(kind, "p256") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	else if (strcmp(kind, "p384") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	else if (strcmp(kind, "ed25519") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	else if (strcmp(kind, "sm2") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "SM2");
	if (k == NULL)
		die(kind);
	return k;
}

/* subjectKeyIdentifier = SHA-1 of the subjectPublicKey bits (RFC 5280 4.2.1.2 (1)) */
static X509_EXTENSION *ski_for(EVP_PKEY *k)
{
	X509_PUBKEY *xpk = NULL;
	const unsigned char *bits;
	unsigned char md[SHA_DIGEST_LENGTH];
	int bits_len;
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	X509_EXTENSION *ext;

	if (os == NULL || X509_PUBKEY_set(&xpk, k) != 1 ||
	    X509_PUBKEY_get0_param(NULL, &bits, &bits_len, NULL, xpk) != 1)
		die("public key encoding");
	SHA1(bits, (size_t)bits_len, md);
	if (ASN1_OCTET_STRING_set(os, md, sizeof(md)) != 1)
		die("SKI");
	ext = X509V3_EXT_i2d(NID_subject_key_identifier, 0, os);
	if (ext == NULL)
		die("SKI extension");
	ASN1_OCTET_STRING_free(os);
	X509_PUBKEY_free(xpk);
	return ext;
}

static X509_EXTENSION *conf_ext(X509 *issuer, X509 *subject, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&ctx, issuer, subject, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (ext == NULL)
		die(value);
	return ext;
}

/* certificatePolicies with one policy OID and no qualifiers (the config
 * syntax would need a config database) */
static X509_EXTENSION *policy_ext(const char *oid)
{
	CERTIFICATEPOLICIES *pols = sk_POLICYINFO_new_null();
	POLICYINFO *pi = POLICYINFO_new();
	X509_EXTENSION *ext;

	if (pols == NULL || pi == NULL)
		die("policies");
	ASN1_OBJECT_free(pi->policyid);
	pi->policyid = OBJ_txt2obj(oid, 1);
	if (pi->policyid == NULL || sk_POLICYINFO_push(pols, pi) <= 0)
		die(oid);
	ext = X509V3_EXT_i2d(NID_certificate_policies, 0, pols);
	if (ext == NULL)
		die("policies extension");
	CERTIFICATEPOLICIES_free(pols);
	return ext;
}

static void set_serial(X509 *x, uint64_t hi, uint64_t lo)
{
	unsigned char b[16];
	BIGNUM *bn;

	for (int i = 0; i < 8; i++) {
		b[i] = (unsigned char)(hi >> (56 - 8 * i));
		b[8 + i] = (unsigned char)(lo >> (56 - 8 * i));
	}
	b[0] &= 0x7f;
	b[0] |= 0x40; /* positive, always 16 bytes */
	bn = BN_bin2bn(b, sizeof(b), NULL);
	if (bn == NULL || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL)
		die("serial");
	BN_free(bn);
}

static void set_times(X509 *x, time_t not_before, time_t not_after)
{
	if (X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &not_before) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), 0, 0, &not_after) == NULL)
		die("validity");
}

static X509 *make_ca(const char *cn, uint64_t serial, EVP_PKEY *key, X509 *issuer,
                     EVP_PKEY *issuer_key, const char *path_len)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();

	if (x == NULL || n == NULL || X509_set_version(x, 2) != 1)
		die("CA");
	X509_NAME_add_entry_by_txt(n, "C", MBSTRING_ASC, (const unsigned char *)"US", -1, -1, 0);
	X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"aclm bench", -1,
	                           -1, 0);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
	set_serial(x, (uint64_t)now, serial);
	set_times(x, now - 400 * DAY, now + 3650 * DAY);
	X509_set_pubkey(x, key);
	X509_add_ext(x, conf_ext(issuer ? issuer : x, x, NID_basic_constraints, path_len), -1);
	X509_add_ext(x, conf_ext(issuer ? issuer : x, x, NID_key_usage,
	                         "critical,keyCertSign,cRLSign,digitalSignature"), -1);
	X509_add_ext(x, conf_ext(issuer ? issuer : x, x, NID_subject_key_identifier, "hash"), -1);
	if (issuer != NULL)
		X509_add_ext(x, conf_ext(issuer, x, NID_authority_key_identifier, "keyid:always"),
		             -1);
	if (X509_sign(x, issuer_key, EVP_sha256()) <= 0)
		die("CA signature");
	X509_NAME_free(n);
	return x;
}

static void setup(void)
{
	now = time(NULL);
	root_key = gen_key("p256");
	int_key = gen_key("p256");
	root_cert = make_ca("aclm bench Root CA", 1, root_key, NULL, root_key, "critical,CA:TRUE");
	int_cert = make_ca("aclm bench Issuing CA 1", 2, int_key, root_cert, root_key,
	                   "critical,CA:TRUE,pathlen:0");

	ext_bc_leaf = conf_ext(int_cert, NULL, NID_basic_constraints, "critical,CA:FALSE");
	ext_eku = conf_ext(int_cert, NULL, NID_ext_key_usage, "serverAuth,clientAuth");
	ext_aki = conf_ext(int_cert, NULL, NID_authority_key_identifier, "keyid:always");
	ext_pol[0] = policy_ext("2.23.140.1.2.1");
	ext_pol[1] = policy_ext("2.23.140.1.2.2");
	ext_pol[2] = policy_ext("2.23.140.1.1");

	for (int i = 0; i < N_KEY_KINDS; i++) {
		struct key_kind *k = &kinds[i];

		k->keys = calloc((size_t)k->n_keys, sizeof(*k->keys));
		k->skis = calloc((size_t)k->n_keys, sizeof(*k->skis));
		if (k->keys == NULL || k->skis == NULL)
			die("out of memory");
		for (int j = 0; j < k->n_keys; j++) {
			k->keys[j] = gen_key(k->name);
			k->skis[j] = ski_for(k->keys[j]);
		}
		k->key_usage = conf_ext(int_cert, NULL, NID_key_usage,
		                        strcmp(k->name, "rsa2048") == 0
		                            ? "critical,digitalSignature,keyEncipherment"
		                            : "critical,digitalSignature");
	}
}

static void add_dns(GENERAL_NAMES *gens, const char *name)
{
	GENERAL_NAME *g = GENERAL_NAME_new();
	ASN1_IA5STRING *s = ASN1_IA5STRING_new();

	if (g == NULL || s == NULL || ASN1_STRING_set(s, name, -1) != 1)
		die("SAN");
	GENERAL_NAME_set0_value(g, GEN_DNS, s);
	sk_GENERAL_NAME_push(gens, g);
}

static void add_ip(GENERAL_NAMES *gens, const unsigned char *ip, int len)
{
	GENERAL_NAME *g = GENERAL_NAME_new();
	ASN1_OCTET_STRING *s = ASN1_OCTET_STRING_new();

	if (g == NULL || s == NULL || ASN1_OCTET_STRING_set(s, ip, len) != 1)
		die("SAN");
	GENERAL_NAME_set0_value(g, GEN_IPADD, s);
	sk_GENERAL_NAME_push(gens, g);
}

static void add_email(GENERAL_NAMES *gens, const char *addr)
{
	GENERAL_NAME *g = GENERAL_NAME_new();
	ASN1_IA5STRING *s = ASN1_IA5STRING_new();

	if (g == NULL || s == NULL || ASN1_STRING_set(s, addr, -1) != 1)
		die("SAN");
	GENERAL_NAME_set0_value(g, GEN_EMAIL, s);
	sk_GENERAL_NAME_push(gens, g);
}

/* Leaf number idx (0-based, global); rs is the per-file random state. */
static X509 *make_leaf(uint64_t idx, uint64_t *rs)
{
	static const int validity_days[] = { 90, 90, 90, 365, 397, 397, 730 };
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	const char *domain = domains[rnd_below(rs, sizeof(domains) / sizeof(domains[0]))];
	const char *host = hosts[rnd_below(rs, sizeof(hosts) / sizeof(hosts[0]))];
	unsigned pick = rnd_below(rs, 100), level = rnd_below(rs, 10);
	unsigned n_dns = 1 + rnd_below(rs, 4);
	struct key_kind *kind = &kinds[0];
	int key_ix, acc = 0;
	char cn[160], alt[200];
	time_t not_after, not_before;

	if (x == NULL || n == NULL || gens == NULL || X509_set_version(x, 2) != 1)
		die("leaf");
	for (int i = 0; i < N_KEY_KINDS; i++) {
		acc += kinds[i].weight;
		if ((int)pick < acc) {
			kind = &kinds[i];
			break;
		}
	}
	key_ix = (int)rnd_below(rs, (unsigned)kind->n_keys);

	snprintf(cn, sizeof(cn), "%s%llu.%s", host, (unsigned long long)idx, domain);
	/* level: 0-5 DV, 6-7 OV, 8 EV, 9 no policy */
	if (level >= 6 && level <= 8) {
		X509_NAME_add_entry_by_txt(n, "C", MBSTRING_ASC,
		    (const unsigned char *)countries[rnd_below(rs, 8)], -1, -1, 0);
		X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC,
		    (const unsigned char *)orgs[rnd_below(rs, 8)], -1, -1, 0);
	}
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, X509_get_subject_name(int_cert));
	set_serial(x, rnd(rs), idx);

	not_after = now - 30 * DAY + (time_t)(rnd(rs) % (430ULL * DAY));
	not_before = not_after -
	             (time_t)validity_days[rnd_below(rs, sizeof(validity_days) / sizeof(int))] * DAY;
	if (not_before > now) /* issued recently, not in the future */
		not_before = now - (time_t)(rnd(rs) % (30ULL * DAY));
	set_times(x, not_before, not_after);
	X509_set_pubkey(x, kind->keys[key_ix]);

	add_dns(gens, cn);
	for (unsigned i = 1; i < n_dns; i++) {
		if (i == 1 && rnd_below(rs, 4) == 0)
			snprintf(alt, sizeof(alt), "*.%s%llu.%s", host, (unsigned long long)idx, domain);
		else
			snprintf(alt, sizeof(alt), "%s%u-%llu.%s", hosts[rnd_below(rs, 20)], i,
			         (unsigned long long)idx, domain);
		add_dns(gens, alt);
	}
	if (rnd_below(rs, 10) == 0) {
		unsigned char ip[4] = { 10, (unsigned char)(idx >> 16), (unsigned char)(idx >> 8),
		                        (unsigned char)idx };
		add_ip(gens, ip, 4);
	}
	if (rnd_below(rs, 50) == 0) {
		unsigned char ip6[16] = { 0x20, 0x01, 0x0d, 0xb8 };
		for (int i = 8; i < 16; i++)
			ip6[i] = (unsigned char)(idx >> (8 * (15 - i)));
		add_ip(gens, ip6, 16);
	}
	if (rnd_below(rs, 50) == 0) {
		snprintf(alt, sizeof(alt), "hostmaster@%s", domain);
		add_email(gens, alt);
	}

	X509_add_ext(x, ext_bc_leaf, -1);
	X509_add_ext(x, kind->key_usage, -1);
	X509_add_ext(x, ext_eku, -1);
	X509_add_ext(x, kind->skis[key_ix], -1);
	X509_add_ext(x, ext_aki, -1);
	if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1)
		die("SAN extension");
	if (level <= 8)
		X509_add_ext(x, ext_pol[level <= 5 ? 0 : level <= 7 ? 1 : 2], -1);

	if (X509_sign(x, int_key, EVP_sha256()) <= 0)
		die("leaf signature");
	sk_GENERAL_NAME_pop_free(gens, GENERAL_NAME_free);
	X509_NAME_free(n);
	return x;
}

enum file_kind { F_BUNDLE, F_SITE, F_DER, F_P7B };

struct file_job {
	enum file_kind kind;
	uint64_t first;   /* global index of the first leaf */
	unsigned n;       /* leaves in the file */
	unsigned no;      /* file number within its kind */
};

static FILE *open_out(const char *outdir, const char *sub, const char *name)
{
	char dir[4096], path[4200];
	FILE *f;

	snprintf(dir, sizeof(dir), "%s/%s", outdir, sub);
	mkdirs(dir);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (f == NULL)
		die(path);
	setvbuf(f, NULL, _IOFBF, 1 << 20);
	return f;
}

static void write_file(const char *outdir, const struct file_job *j, uint64_t seed)
{
	uint64_t rs = seed ^ (j->first * 0x2545F4914F6CDD1DULL) ^ ((uint64_t)j->kind << 60);
	char sub[64], name[64];
	FILE *f;
	PKCS7 *p7 = NULL;

	switch (j->kind) {
	case F_BUNDLE:
		snprintf(sub, sizeof(sub), "bundles");
		snprintf(name, sizeof(name), "bundle-%04u.pem", j->no);
		break;
	case F_SITE:
		snprintf(sub, sizeof(sub), "sites/%02u", j->no % 32);
		snprintf(name, sizeof(name), "site-%05u.pem", j->no);
		break;
	case F_DER:
		snprintf(sub, sizeof(sub), "der/%02u", j->no % 8);
		snprintf(name, sizeof(name), "cert-%05u.der", j->no);
		break;
	case F_P7B:
		snprintf(sub, sizeof(sub), "p7b");
		snprintf(name, sizeof(name), "bundle-%02u.p7b", j->no);
		p7 = PKCS7_new();
		if (p7 == NULL || PKCS7_set_type(p7, NID_pkcs7_signed) != 1 ||
		    PKCS7_content_new(p7, NID_pkcs7_data) != 1)
			die("PKCS#7");
		break;
	}
	f = open_out(outdir, sub, name);
	for (unsigned i = 0; i < j->n; i++) {
		X509 *x = make_leaf(j->first + i, &rs);
		int ok = 1;

		if (j->kind == F_DER)
			ok = i2d_X509_fp(f, x);
		else if (j->kind == F_P7B)
			ok = PKCS7_add_certificate(p7, x);
		else
			ok = PEM_write_X509(f, x);
		if (ok != 1)
			die("write");
		X509_free(x);
	}
	if (j->kind == F_SITE && PEM_write_X509(f, int_cert) != 1)
		die("write");
	if (p7 != NULL) {
		if (PEM_write_PKCS7(f, p7) != 1)
			die("write PKCS#7");
		PKCS7_free(p7);
	}
	if (fclose(f) != 0)
		die("close");
}

static void usage(void)
{
	fprintf(stderr, "usage: gencerts [-j JOBS] [-s SEED] OUTDIR N\n");
	exit(2);
}

int main(int argc, char **argv)
{
	long jobs = sysconf(_SC_NPROCESSORS_ONLN);
	uint64_t seed = 1, total, next = 0;
	unsigned n_site, n_der, n_p7, n_bundle_leaves;
	struct file_job *fj;
	size_t n_jobs = 0, cap;
	unsigned long long n_blocks;
	struct timespec t0, t1;
	const char *outdir;
	FILE *f;
	int opt;

	while ((opt = getopt(argc, argv, "j:s:")) != -1) {
		if (opt == 'j')
			jobs = strtol(optarg, NULL, 10);
		else if (opt == 's')
			seed = strtoull(optarg, NULL, 10);
		else
			usage();
	}
	if (argc - optind != 2)
		usage();
	outdir = argv[optind];
	total = strtoull(argv[optind + 1], NULL, 10);
	if (total == 0 || total > 100000000ULL || jobs < 1)
		usage();
	clock_gettime(CLOCK_MONOTONIC, &t0);

	n_site = (unsigned)(total * 7 / 1000);
	n_der = (unsigned)(total * 3 / 1000);
	n_p7 = (unsigned)(total / 100);
	n_bundle_leaves = (unsigned)(total - n_site - n_der - n_p7);
	cap = n_site + n_der + n_p7 / P7_SIZE + 2 + n_bundle_leaves / BUNDLE_SIZE + 2;
	fj = calloc(cap, sizeof(*fj));
	if (fj == NULL)
		die("out of memory");
	for (unsigned no = 0; next < n_bundle_leaves; no++) {
		unsigned n = n_bundle_leaves - next < BUNDLE_SIZE ? (unsigned)(n_bundle_leaves - next)
		                                                  : BUNDLE_SIZE;
		fj[n_jobs++] = (struct file_job){ F_BUNDLE, next, n, no };
		next += n;
	}
	for (unsigned no = 0, left = n_p7; left > 0; no++) {
		unsigned n = left < P7_SIZE ? left : P7_SIZE;
		fj[n_jobs++] = (struct file_job){ F_P7B, next, n, no };
		next += n;
		left -= n;
	}
	for (unsigned no = 0; no < n_site; no++, next++)
		fj[n_jobs++] = (struct file_job){ F_SITE, next, 1, no };
	for (unsigned no = 0; no < n_der; no++, next++)
		fj[n_jobs++] = (struct file_job){ F_DER, next, 1, no };

	setup();
	mkdirs(outdir);
	f = open_out(outdir, "ca", "root.pem");
	if (PEM_write_X509(f, root_cert) != 1 || fclose(f) != 0)
		die("write root");
	f = open_out(outdir, "ca", "intermediate.pem");
	if (PEM_write_X509(f, int_cert) != 1 || fclose(f) != 0)
		die("write intermediate");

	/* Workers take every jobs-th file; the content depends only on the file. */
	for (long w = 0; w < jobs; w++) {
		pid_t pid = jobs == 1 ? 0 : fork();

		if (pid < 0)
			die("fork");
		if (pid == 0) {
			for (size_t i = (size_t)w; i < n_jobs; i += (size_t)jobs)
				write_file(outdir, &fj[i], seed);
			if (jobs == 1)
				break;
			_exit(0);
		}
	}
	for (long w = 0; jobs > 1 && w < jobs; w++) {
		int status;

		if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			die("a worker failed");
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	n_blocks = (unsigned long long)total + n_site + 2;
	printf("files %zu\ncertificates %llu\nunique %llu\nseconds %.2f\n", n_jobs + 2, n_blocks,
	       (unsigned long long)total + 2,
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
}
