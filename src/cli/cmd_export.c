/* aclm export: a certificate, optionally with chain and key, as PEM, DER or
 * PKCS#12.  A private key is written only to a file (never to a terminal or
 * a pipe by accident), created 0600. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "aclm/buf.h"
#include "aclm/bundle.h"
#include "aclm/err.h"
#include "aclm/keywrap.h"
#include "aclm/str.h"
#include "cli-int.h"

#define MAX_CHAIN 16

struct row_info {
	int64_t id;
	int64_t issuer_id;
	char spki[65];
	char *cn;
	bool has_private_key;
};

static int grab_info(void *ctx, const struct aclm_cert_row *r)
{
	struct row_info *i = ctx;

	i->id = r->id;
	i->issuer_id = r->issuer_id == r->id ? 0 : r->issuer_id;
	aclm_strlcpy(i->spki, r->spki, sizeof(i->spki));
	i->cn = aclm_strdup(r->subject_cn);
	i->has_private_key = r->has_private_key;
	return 0;
}

struct chain {
	unsigned char *der[MAX_CHAIN];
	size_t len[MAX_CHAIN];
	size_t n;
};

static int load_chain(struct aclm_store *st, int64_t issuer_id, struct chain *ch)
{
	int64_t seen[MAX_CHAIN];

	while (issuer_id != 0 && ch->n < MAX_CHAIN) {
		struct row_info info = { 0 };
		bool loop = false;
		int rc;

		for (size_t i = 0; i < ch->n; i++)
			loop |= seen[i] == issuer_id;
		if (loop)
			break;
		if ((rc = aclm_store_get_cert(st, issuer_id, grab_info, &info)) != ACLM_OK)
			return rc;
		free(info.cn);
		rc = aclm_store_get_cert_der(st, issuer_id, &ch->der[ch->n], &ch->len[ch->n]);
		if (rc != ACLM_OK)
			return rc;
		seen[ch->n++] = issuer_id;
		issuer_id = info.issuer_id;
	}
	return ACLM_OK;
}

static int load_key(struct cli *cli, const char *spki_hex, unsigned char **pkcs8, size_t *len)
{
	unsigned char *sealed = NULL, spki[32];
	size_t sealed_len = 0;
	struct aclm_kek kek;
	int rc;

	rc = aclm_store_get_private_key(cli->store, spki_hex, &sealed, &sealed_len);
	if (rc != ACLM_OK)
		return rc;
	rc = aclm_kek_load(getenv("ACLM_KEK"), aclm_config_str(cli->cfg, "security.kek_file"),
	                   false, &kek);
	if (rc == ACLM_OK) {
		aclm_hex_decode(spki_hex, spki, sizeof(spki));
		rc = aclm_keywrap_open(&kek, spki, sizeof(spki), sealed, sealed_len, pkcs8, len);
		aclm_kek_wipe(&kek);
	}
	free(sealed);
	return rc;
}

static int write_all(int fd, const void *p, size_t n)
{
	const unsigned char *c = p;

	while (n > 0) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return ACLM_ERR_IO;
		c += w;
		n -= (size_t)w;
	}
	return ACLM_OK;
}

int cmd_export(struct cli *cli, int argc, char **argv)
{
	enum { O_FORMAT = 256, O_CHAIN, O_KEY, O_OUT, O_PASSWORD_FILE };
	static const struct option opts[] = {
		{ "format", required_argument, NULL, O_FORMAT },
		{ "chain", no_argument, NULL, O_CHAIN },
		{ "key", no_argument, NULL, O_KEY },
		{ "out", required_argument, NULL, O_OUT },
		{ "password-file", required_argument, NULL, O_PASSWORD_FILE },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cli_command *self = cli_find_command("export");
	const char *format = "pem", *out_path = NULL, *password_file = NULL;
	bool with_chain = false, with_key = false;
	struct row_info info = { 0 };
	struct chain ch = { 0 };
	struct aclm_buf out, pw;
	unsigned char *der = NULL, *pkcs8 = NULL;
	size_t der_len = 0, pkcs8_len = 0;
	char *password = NULL;
	int64_t id;
	int opt, fd = -1, rc = EXIT_FAILED;

	aclm_buf_init(&out, (size_t)256 << 20);
	aclm_buf_init(&pw, 64 * 1024);
	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (opt) {
		case O_FORMAT:
			if (strcmp(optarg, "pem") != 0 && strcmp(optarg, "der") != 0 &&
			    strcmp(optarg, "p12") != 0)
				return cli_usage_error("export", "--format: '%s' is not one of pem, der, p12", optarg);
			format = optarg;
			break;
		case O_CHAIN: with_chain = true; break;
		case O_KEY: with_key = true; break;
		case O_OUT: out_path = optarg; break;
		case O_PASSWORD_FILE: password_file = optarg; break;
		default:
			return cli_getopt_default(self, opt, argv);
		}
	}
	if (optind >= argc)
		return cli_usage_error("export", "missing ID or FINGERPRINT");
	if (optind + 1 < argc)
		return cli_usage_error("export", "unexpected argument '%s'", argv[optind + 1]);
	if (with_key && out_path == NULL)
		return cli_usage_error("export", "--key needs --out FILE (private keys are not written to stdout)");
	if (with_key && strcmp(format, "der") == 0)
		return cli_usage_error("export", "--key cannot be used with --format der (use pem or p12)");
	if (out_path == NULL && strcmp(format, "pem") != 0 && isatty(STDOUT_FILENO))
		return cli_usage_error("export", "refusing to write binary %s to a terminal; use --out FILE", format);

	if (cli_open_store(cli) != ACLM_OK)
		return EXIT_FAILED;
	if (aclm_store_find_cert(cli->store, argv[optind], &id) != ACLM_OK)
		return cli_fail("%s", aclm_errmsg());
	if (aclm_store_get_cert(cli->store, id, grab_info, &info) != ACLM_OK ||
	    aclm_store_get_cert_der(cli->store, id, &der, &der_len) != ACLM_OK) {
		cli_fail("%s", aclm_errmsg());
		goto out;
	}
	if (with_chain && load_chain(cli->store, info.issuer_id, &ch) != ACLM_OK) {
		cli_fail("issuer chain of certificate %lld: %s", (long long)id, aclm_errmsg());
		goto out;
	}
	/* p12 carries the key whenever the inventory has it. */
	if (with_key || (strcmp(format, "p12") == 0 && info.has_private_key)) {
		int krc = load_key(cli, info.spki, &pkcs8, &pkcs8_len);
		if (krc == ACLM_ERR_NOTFOUND && with_key) {
			cli_fail("certificate %lld: no private key stored for it", (long long)id);
			goto out;
		}
		if (krc != ACLM_OK && krc != ACLM_ERR_NOTFOUND) {
			cli_fail("certificate %lld: private key: %s", (long long)id, aclm_errmsg());
			goto out;
		}
	}
	if (password_file != NULL) {
		if (aclm_buf_read_file(&pw, password_file) != ACLM_OK) {
			cli_fail("--password-file: %s", aclm_errmsg());
			goto out;
		}
		password = (char *)pw.data;
		if (password != NULL)
			password[strcspn(password, "\r\n")] = '\0';
	}

	if (strcmp(format, "der") == 0) {
		aclm_buf_append(&out, der, der_len);
	} else if (strcmp(format, "pem") == 0) {
		char *pem = NULL;
		size_t pem_len = 0;
		if (aclm_pem_encode_cert(der, der_len, &pem, &pem_len) != ACLM_OK)
			goto encode_failed;
		aclm_buf_append(&out, pem, pem_len);
		free(pem);
		for (size_t i = 0; i < ch.n; i++) {
			if (aclm_pem_encode_cert(ch.der[i], ch.len[i], &pem, &pem_len) != ACLM_OK)
				goto encode_failed;
			aclm_buf_append(&out, pem, pem_len);
			free(pem);
		}
		if (pkcs8 != NULL) {
			if (aclm_pem_encode_key(pkcs8, pkcs8_len, &pem, &pem_len) != ACLM_OK)
				goto encode_failed;
			aclm_buf_append(&out, pem, pem_len);
			OPENSSL_cleanse(pem, pem_len);
			free(pem);
		}
	} else {
		unsigned char *p12 = NULL;
		size_t p12_len = 0;
		if (pkcs8 != NULL && (password == NULL || *password == '\0')) {
			cli_fail("certificate %lld has a private key: PKCS#12 export needs --password-file with a non-empty password",
			         (long long)id);
			goto out;
		}
		if (aclm_pkcs12_build(der, der_len, (const unsigned char *const *)ch.der, ch.len, ch.n,
		                      pkcs8, pkcs8_len, password ? password : "", info.cn,
		                      &p12, &p12_len) != ACLM_OK)
			goto encode_failed;
		aclm_buf_append(&out, p12, p12_len);
		free(p12);
	}

	if (out_path != NULL) {
		fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		          pkcs8 != NULL ? 0600 : 0644);
		if (fd < 0) {
			cli_fail("%s: cannot create: %s", out_path, strerror(errno));
			goto out;
		}
		/* An existing file keeps its mode on O_TRUNC: tighten it for keys. */
		if (pkcs8 != NULL && fchmod(fd, 0600) != 0) {
			cli_fail("%s: cannot set mode 0600: %s", out_path, strerror(errno));
			goto out;
		}
	}
	if (write_all(fd >= 0 ? fd : STDOUT_FILENO, out.data, out.len) != ACLM_OK ||
	    (fd >= 0 && close(fd) != 0)) {
		cli_fail("%s: write failed: %s", out_path ? out_path : "stdout", strerror(errno));
		fd = -1;
		goto out;
	}
	fd = -1;
	rc = EXIT_OK;
	goto out;
encode_failed:
	cli_fail("certificate %lld: %s", (long long)id, aclm_errmsg());
out:
	if (fd >= 0)
		close(fd);
	aclm_buf_free_secret(&out);
	aclm_buf_free_secret(&pw);
	if (pkcs8 != NULL) {
		OPENSSL_cleanse(pkcs8, pkcs8_len);
		free(pkcs8);
	}
	for (size_t i = 0; i < ch.n; i++)
		free(ch.der[i]);
	free(der);
	free(info.cn);
	return rc;
}
