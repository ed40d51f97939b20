/* The certificate model: one X.509 certificate parsed into plain fields.
 *
 * Everything here is owned by the struct and freed by aclm_cert_free().
 * No OpenSSL types leak out: the DER is kept so any module can re-parse. */
#ifndef ACLM_X509_H
#define ACLM_X509_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum aclm_key_type {
	ACLM_KEY_UNKNOWN = 0,
	ACLM_KEY_RSA,
	ACLM_KEY_EC,       /* ECDSA on a NIST/other named curve; see curve */
	ACLM_KEY_ED25519,
	ACLM_KEY_ED448,
	ACLM_KEY_SM2,      /* EC key on curve 1.2.156.10197.1.301 */
	ACLM_KEY_DSA,
};

enum aclm_san_type {
	ACLM_SAN_DNS = 0,
	ACLM_SAN_IP,
	ACLM_SAN_EMAIL,
	ACLM_SAN_URI,
};

/* Validation level from certificate policy OIDs (CA/Browser Forum). */
enum aclm_level {
	ACLM_LEVEL_NONE = 0,
	ACLM_LEVEL_DV,   /* 2.23.140.1.2.1 */
	ACLM_LEVEL_OV,   /* 2.23.140.1.2.2 */
	ACLM_LEVEL_IV,   /* 2.23.140.1.2.3 */
	ACLM_LEVEL_EV,   /* 2.23.140.1.1 */
};

/* Key usage bits, same order as RFC 5280 (bit 0 = digitalSignature). */
enum aclm_key_usage {
	ACLM_KU_DIGITAL_SIGNATURE = 1u << 0,
	ACLM_KU_NON_REPUDIATION   = 1u << 1,
	ACLM_KU_KEY_ENCIPHERMENT  = 1u << 2,
	ACLM_KU_DATA_ENCIPHERMENT = 1u << 3,
	ACLM_KU_KEY_AGREEMENT     = 1u << 4,
	ACLM_KU_KEY_CERT_SIGN     = 1u << 5,
	ACLM_KU_CRL_SIGN          = 1u << 6,
	ACLM_KU_ENCIPHER_ONLY     = 1u << 7,
	ACLM_KU_DECIPHER_ONLY     = 1u << 8,
};

struct aclm_san {
	enum aclm_san_type type;
	char *value;              /* DNS/email/URI as text; IP as text (v4 or v6) */
};

struct aclm_cert {
	unsigned char *der;
	size_t der_len;

	unsigned char fingerprint[32];  /* SHA-256 of the DER */
	char fingerprint_hex[65];
	unsigned char spki_sha256[32];  /* SHA-256 of the DER SubjectPublicKeyInfo */
	char spki_hex[65];
	/* SHA-256 of the DER-encoded subject/issuer names: exact name matching
	 * for leaf -> issuer linking. */
	char subject_hash[65];
	char issuer_hash[65];

	char *subject;       /* RFC 2253 one-line, e.g. "CN=a,O=b,C=CN" (UTF-8) */
	char *issuer;
	char *subject_cn;    /* last CN of the subject, or NULL */
	char *issuer_cn;     /* last CN of the issuer, or NULL (falls back to O) */
	char *serial_hex;    /* upper-case hex, no separators, e.g. "0A1B" */
	int64_t not_before;  /* seconds since epoch, UTC */
	int64_t not_after;
	int version;         /* 1..3 */

	enum aclm_key_type key_type;
	int key_bits;        /* RSA modulus, EC field size, 255 for Ed25519 */
	char *curve;         /* "P-256", "P-384", "P-521", "SM2", other SN, or NULL */
	char *sig_alg;       /* "sha256WithRSAEncryption", "ecdsa-with-SHA256",
	                        "SM2-with-SM3", "ED25519", ... (OpenSSL long names) */
	char *sig_alg_oid;   /* dotted OID of the signature algorithm */

	char *ski_hex;       /* subject key identifier, lower-case hex, or NULL */
	char *aki_hex;       /* authority key identifier keyid, or NULL */

	bool has_basic_constraints;
	bool is_ca;
	int path_len;        /* -1 when absent */
	bool has_key_usage;
	unsigned key_usage;  /* enum aclm_key_usage bits */
	char **eku;          /* short names ("serverAuth") or dotted OIDs */
	size_t n_eku;
	char **policies;     /* dotted OIDs */
	size_t n_policies;
	enum aclm_level level;

	struct aclm_san *sans;
	size_t n_sans;

	bool is_self_issued; /* subject == issuer */
};

/* Parse one DER certificate.  On failure sets the error message (what is
 * wrong) and returns ACLM_ERR_PARSE; *out is untouched. */
int aclm_cert_parse_der(const unsigned char *der, size_t len, struct aclm_cert **out);
void aclm_cert_free(struct aclm_cert *c);

const char *aclm_key_type_name(enum aclm_key_type t);  /* "rsa","ec","ed25519","sm2",... */
/* Short display of the key: "rsa2048", "ec256", "ec384", "sm2", "ed25519". */
void aclm_cert_key_label(const struct aclm_cert *c, char *out, size_t out_size);
const char *aclm_level_name(enum aclm_level l);        /* "", "dv","ov","iv","ev" */
int aclm_level_parse(const char *s, enum aclm_level *out);
const char *aclm_san_type_name(enum aclm_san_type t);   /* "DNS","IP","email","URI" */
/* Key usage as "digitalSignature,keyEncipherment" into out. */
void aclm_key_usage_str(unsigned ku, char *out, size_t out_size);

/* DNS-name match as TLS does it: exact (case-insensitive) or a wildcard
 * pattern "*.example.com" matching exactly one left-most label. */
bool aclm_dns_name_matches(const char *pattern, const char *name);

#endif
