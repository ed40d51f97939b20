"""The test PKI, generated at test time with the openssl command.

Everything the tests expect is written down here as data -- KEYS, CERTS,
TREE -- and the builder turns that data into files.  Tests compare what aclm
reports with these tables (and with the DER itself), never with values copied
from a previous run.

Layout of the generated directory:

    tree/           imported as a whole by most tests (see TREE)
    p12/            PKCS#12 files and their password files (not in tree/)
    extra/          a private key matching no certificate, a CRL, a CSR,
                    one more certificate for the bad-input tests
"""

import base64
import concurrent.futures
import dataclasses
import hashlib
import ipaddress
import os
import subprocess
import time

DAY = 86400
SM2_ID = "1234567812345678"
P12_PASSWORD = "s3cret pass"

# name -> openssl genpkey arguments
KEY_SPECS = {
    "rsa2048": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    "rsa3072": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"],
    "rsa4096": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:4096"],
    "p256": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-pkeyopt", "ec_param_enc:named_curve"],
    "p384": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384",
             "-pkeyopt", "ec_param_enc:named_curve"],
    "p521": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521",
             "-pkeyopt", "ec_param_enc:named_curve"],
    "ed25519": ["-algorithm", "ED25519"],
    "sm2": ["-algorithm", "SM2"],
}

# What aclm must report for each kind of key: (key_type, key_bits, curve, key label).
KEY_EXPECT = {
    "rsa2048": ("rsa", 2048, None, "rsa2048"),
    "rsa3072": ("rsa", 3072, None, "rsa3072"),
    "rsa4096": ("rsa", 4096, None, "rsa4096"),
    "p256": ("ec", 256, "P-256", "ec256"),
    "p384": ("ec", 384, "P-384", "ec384"),
    "p521": ("ec", 521, "P-521", "ec521"),
    "ed25519": ("ed25519", None, None, "ed25519"),
    "sm2": ("sm2", 256, "SM2", "sm2"),
}

# Signature algorithm of a certificate, by the issuer's key kind.
SIG_ALG_BY_ISSUER_KEY = {
    "rsa4096": "sha256WithRSAEncryption",
    "p384": "ecdsa-with-SHA384",
    "sm2": "SM2-with-SM3",
}
DIGEST_BY_ISSUER_KEY = {"rsa4096": "sha256", "p384": "sha384", "sm2": "sm3"}

POLICY_OID = {"dv": "2.23.140.1.2.1", "ov": "2.23.140.1.2.2", "ev": "2.23.140.1.1"}


@dataclasses.dataclass
class Key:
    name: str
    kind: str           # a KEY_SPECS name


# Keys: one per certificate except "shared" (two certificates, one key).
KEYS = [
    Key("root", "rsa4096"), Key("inter", "p384"),
    Key("rsa2048", "rsa2048"), Key("rsa3072", "rsa3072"),
    Key("ec256", "p256"), Key("ec384", "p384"), Key("ec521", "p521"),
    Key("ed25519", "ed25519"),
    Key("wild", "p256"), Key("ip", "p256"), Key("mail", "p256"),
    Key("expired", "p256"), Key("notyet", "p256"), Key("shared", "p256"),
    Key("sm2root", "sm2"), Key("sm2leaf", "sm2"),
    Key("p12pw", "p256"), Key("p12empty", "p256"),
    Key("extra", "p256"), Key("orphan", "p256"),
]


@dataclasses.dataclass
class Cert:
    name: str
    cn: str
    key: str                    # a KEYS name
    issuer: str                 # a CERTS name; == name for self-signed
    start: float                # not before, in days from the build time
    end: float                  # not after, in days from the build time
    is_ca: bool = False
    sans: tuple = ()            # ("DNS:a", "IP:192.0.2.1", "email:x@y", "URI:https://...")
    level: str = ""             # "", "dv", "ov", "ev"
    # filled in by the builder
    pem: str = ""
    der: bytes = b""
    fingerprint: str = ""       # lower-case hex SHA-256 of the DER
    spki_sha256: str = ""
    serial: int = 0
    not_before: int = 0         # seconds since the epoch
    not_after: int = 0
    key_path: str = ""          # the private key PEM
    ski: str = ""               # lower-case hex subject key identifier

    @property
    def subject(self):
        return "/O=aclm tests/CN=" + self.cn


CERTS = [
    Cert("root", "aclm Test Root CA", "root", "root", -30, 3650, is_ca=True),
    Cert("inter", "aclm Test Intermediate CA", "inter", "root", -20, 3000, is_ca=True),
    Cert("rsa2048", "rsa2048.example.test", "rsa2048", "inter", -10, 300, level="ov",
         sans=("DNS:rsa2048.example.test", "DNS:www.rsa2048.example.test")),
    Cert("rsa3072", "rsa3072.example.test", "rsa3072", "inter", -10, 301,
         sans=("DNS:rsa3072.example.test",)),
    Cert("ec256", "ec256.example.test", "ec256", "inter", -10, 302, level="ev",
         sans=("DNS:ec256.example.test",)),
    Cert("ec384", "ec384.example.test", "ec384", "inter", -10, 303, level="dv",
         sans=("DNS:ec384.example.test",)),
    Cert("ec521", "ec521.example.test", "ec521", "inter", -10, 304,
         sans=("DNS:ec521.example.test",)),
    Cert("ed25519", "ed25519.example.test", "ed25519", "inter", -10, 305,
         sans=("DNS:ed25519.example.test",)),
    Cert("wild", "*.example.test", "wild", "inter", -10, 306, level="ov",
         sans=("DNS:*.example.test", "DNS:example.test")),
    Cert("ip", "ip leaf", "ip", "inter", -10, 307,
         sans=("IP:192.0.2.10", "IP:2001:db8::10")),
    Cert("mail", "mail leaf", "mail", "inter", -10, 308,
         sans=("email:admin@example.test", "URI:https://uri.example.test/path")),
    Cert("expired", "expired.example.test", "expired", "inter", -400, -30,
         sans=("DNS:expired.example.test",)),
    Cert("notyet", "notyet.example.test", "notyet", "inter", 30, 400,
         sans=("DNS:notyet.example.test",)),
    Cert("exp5", "exp5.example.test", "shared", "inter", -10, 5,
         sans=("DNS:exp5.example.test",)),
    Cert("exp20", "exp20.example.test", "shared", "inter", -10, 20,
         sans=("DNS:exp20.example.test",)),
    Cert("sm2root", "aclm SM2 Root CA", "sm2root", "sm2root", -30, 3651, is_ca=True),
    Cert("sm2leaf", "sm2.example.test", "sm2leaf", "sm2root", -10, 309, level="ov",
         sans=("DNS:sm2.example.test",)),
    # not in tree/
    Cert("p12pw", "p12pw.example.test", "p12pw", "inter", -10, 310,
         sans=("DNS:p12pw.example.test",)),
    Cert("p12empty", "p12empty.example.test", "p12empty", "inter", -10, 311,
         sans=("DNS:p12empty.example.test",)),
    Cert("extra", "extra.example.test", "extra", "inter", -10, 312,
         sans=("DNS:extra.example.test",)),
]

# tree/: path -> (format, certificates in it, private keys in it)
TREE = {
    "ca/root.pem": ("pem", ["root"], []),
    "ca/intermediate.pem": ("pem", ["inter"], []),
    "leaves/rsa2048.pem": ("pem", ["rsa2048"], []),
    "leaves/rsa2048.key": ("key", [], ["rsa2048"]),
    "der/rsa3072.der": ("der", ["rsa3072"], []),
    "leaves/ec256.pem": ("pem", ["ec256"], []),
    "leaves/combined.pem": ("pem", ["ec384"], ["ec384"]),
    "p7b/ec521.p7b": ("p7b-der", ["ec521"], []),
    "leaves/ed25519.pem": ("pem", ["ed25519"], []),
    "leaves/ed25519.key": ("key", [], ["ed25519"]),
    "chain/fullchain.pem": ("pem", ["wild", "inter", "root"], []),
    "leaves/ip.pem": ("pem", ["ip"], []),
    "p7b/bundle.p7b": ("p7b-pem", ["mail", "inter"], []),
    "leaves/expired.pem": ("pem", ["expired"], []),
    "leaves/notyet.pem": ("pem", ["notyet"], []),
    "leaves/exp5.pem": ("pem", ["exp5"], []),
    "leaves/exp20.pem": ("pem", ["exp20"], []),
    "leaves/shared.key": ("key", [], ["shared"]),
    "sm2/root.pem": ("pem", ["sm2root"], []),
    "sm2/leaf.pem": ("pem", ["sm2leaf"], []),
    "sm2/leaf.key": ("key", [], ["sm2leaf"]),
}

CA_CONFIG = """\
[ ca ]
default_ca = CA_default
[ CA_default ]
dir = {dir}
database = {dir}/index.txt
serial = {dir}/serial
crlnumber = {dir}/crlnumber
new_certs_dir = {dir}/newcerts
default_md = sha256
default_crl_days = 30
policy = policy_anything
unique_subject = no
copy_extensions = none
email_in_dn = no
[ policy_anything ]
organizationName = optional
commonName = supplied
"""


def openssl(*args, input=None):
    p = subprocess.run(["openssl", *args], input=input, capture_output=True, timeout=120)
    if p.returncode != 0:
        raise RuntimeError("openssl %s failed:\n%s" % (" ".join(args), p.stderr.decode(errors="replace")))
    return p.stdout


def pem_blocks(text, label="CERTIFICATE"):
    """The base64 bodies of every '-----BEGIN label-----' block."""
    out, body, inside = [], [], False
    for line in text.splitlines():
        if line == "-----BEGIN %s-----" % label:
            inside, body = True, []
        elif line == "-----END %s-----" % label:
            inside = False
            out.append("".join(body))
        elif inside:
            body.append(line)
    return out


def pem_to_der(text, label="CERTIFICATE"):
    return [base64.b64decode(b) for b in pem_blocks(text, label)]


def der_to_pem(der, label="CERTIFICATE"):
    b = base64.b64encode(der).decode()
    lines = [b[i:i + 64] for i in range(0, len(b), 64)]
    return "-----BEGIN %s-----\n%s\n-----END %s-----\n" % (label, "\n".join(lines), label)


def _tlv(buf, pos):
    """One DER TLV at pos: (tag, start of value, end of value)."""
    tag = buf[pos]
    n = buf[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(buf[pos:pos + k], "big")
        pos += k
    return tag, pos, pos + n


def cert_der_fields(der):
    """(serial, DER of the SubjectPublicKeyInfo) of a DER certificate."""
    _, v, _ = _tlv(der, 0)                 # Certificate
    _, pos, _ = _tlv(der, v)               # tbsCertificate: walk its children
    fields = []
    while len(fields) < 7:
        tag, vs, ve = _tlv(der, pos)
        fields.append((tag, pos, vs, ve))
        pos = ve
    if fields[0][0] == 0xA0:               # explicit version
        fields = fields[1:]
    _, _, svs, sve = fields[0]
    serial = int.from_bytes(der[svs:sve], "big", signed=True)
    _, start, _, end = fields[5]
    return serial, der[start:end]


def spki_key_bits(spki):
    """The subjectPublicKey BIT STRING contents (without the unused-bits byte)."""
    _, v, _ = _tlv(spki, 0)
    _, _, alg_end = _tlv(spki, v)
    _, bs, be = _tlv(spki, alg_end)
    return spki[bs + 1:be]


def dns_match(pattern, name):
    """TLS-style DNS name match, as docs/cli.md describes for --name."""
    pattern, name = pattern.lower(), name.lower()
    if pattern == name:
        return True
    if pattern.startswith("*."):
        head, _, rest = name.partition(".")
        return bool(head) and rest == pattern[2:]
    return False


def ip_equal(a, b):
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return False


def _asn1_time(t):
    return time.strftime("%y%m%d%H%M%SZ", time.gmtime(t))


class PKI:
    """The generated files plus the tables, with derived expectations."""

    def __init__(self, root):
        self.dir = str(root)
        self.tree = os.path.join(self.dir, "tree")
        self.now = int(time.time())
        self.certs = {c.name: dataclasses.replace(c) for c in CERTS}
        self.keys = {k.name: k for k in KEYS}

    # -- derived expectations ------------------------------------------
    def tree_path(self, rel):
        return os.path.join(self.tree, rel)

    def tree_certs(self):
        """Names of the distinct certificates in tree/."""
        seen = []
        for _, (_, certs, _) in TREE.items():
            for c in certs:
                if c not in seen:
                    seen.append(c)
        return seen

    def tree_occurrences(self):
        return sum(len(certs) for _, certs, _ in TREE.values())

    def tree_files(self):
        return len(TREE)

    def files_containing(self, name):
        return [self.tree_path(p) for p, (_, certs, _) in TREE.items() if name in certs]

    def tree_key_names(self):
        return [k for _, _, keys in TREE.values() for k in keys]

    def certs_with_private_key(self):
        keys = set(self.tree_key_names())
        return [c for c in self.tree_certs() if self.certs[c].key in keys]

    def expect(self, name):
        """The list-JSON fields aclm must report for a certificate."""
        c = self.certs[name]
        kind = self.keys[c.key].kind
        key_type, bits, curve, label = KEY_EXPECT[kind]
        issuer_kind = self.keys[self.certs[c.issuer].key].kind
        return {
            "fingerprint": c.fingerprint,
            "spki_sha256": c.spki_sha256,
            "subject_cn": c.cn,
            "issuer_cn": self.certs[c.issuer].cn,
            "serial": c.serial,
            "not_before": c.not_before,
            "not_after": c.not_after,
            "key_type": key_type,
            "key_bits": bits,
            "curve": curve,
            "key": label,
            "sig_alg": SIG_ALG_BY_ISSUER_KEY[issuer_kind],
            "level": c.level,
            "sans": list(c.sans),
            "is_ca": c.is_ca,
        }

    def chain_of(self, name):
        """[name, its issuer, ..., the self-signed root]."""
        chain = [name]
        while self.certs[chain[-1]].issuer != chain[-1]:
            chain.append(self.certs[chain[-1]].issuer)
        return chain

    def names_of(self, name):
        """DNS-ish names of a certificate: DNS SANs and the CN."""
        c = self.certs[name]
        return [s[4:] for s in c.sans if s.startswith("DNS:")] + [c.cn]

    def by_fingerprint(self, fp):
        fp = fp.replace(":", "").lower()
        for c in self.certs.values():
            if c.fingerprint == fp:
                return c.name
        return None

    def key_secrets(self, key_name):
        """What must never be stored or printed in clear for a private key:
        every base64 line of its PEM, its DER, and the raw secret value
        (EC/SM2/Ed25519 "priv", RSA "privateExponent")."""
        path = self.key_file(key_name)
        with open(path) as f:
            text = f.read()
        (der,) = pem_to_der(text, "PRIVATE KEY")
        public = openssl("pkey", "-in", path, "-pubout", "-outform", "DER")
        lines = [ln for ln in text.splitlines() if ln and not ln.startswith("-----")]
        # PEM lines that hold only public bytes (an RSA modulus) are no secret
        out = [ln.encode() for i, ln in enumerate(lines) if der[48 * i:48 * i + 48] not in public]
        out.append(der)
        dump = openssl("pkey", "-in", path, "-text", "-noout").decode()
        field = None
        hexes = {}
        for line in dump.splitlines():
            if not line.startswith(" "):
                field = line.rstrip(":").strip()
                hexes[field] = ""
            elif field is not None:
                hexes[field] += line.strip().replace(":", "")
        secret = hexes.get("priv") or hexes.get("privateExponent")
        assert secret, "no secret field in:\n" + dump
        out.append(bytes.fromhex(secret).lstrip(b"\0"))
        return out

    # -- building ------------------------------------------------------
    def build(self):
        d = self.dir
        for sub in ("keys", "csr", "ca", "ca/newcerts", "ext", "certs", "tree", "p12", "extra"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        self._ca_dir = os.path.join(d, "ca")
        with open(os.path.join(self._ca_dir, "ca.cnf"), "w") as f:
            f.write(CA_CONFIG.format(dir=self._ca_dir))
        open(os.path.join(self._ca_dir, "index.txt"), "w").close()
        with open(os.path.join(self._ca_dir, "serial"), "w") as f:
            f.write("1000\n")
        with open(os.path.join(self._ca_dir, "crlnumber"), "w") as f:
            f.write("01\n")

        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as ex:
            # RSA 4096 first: it is the slowest.
            order = sorted(KEYS, key=lambda k: k.kind != "rsa4096")
            list(ex.map(self._genkey, order))
            list(ex.map(self._csr, self.certs.values()))
        for c in self.certs.values():
            c.key_path = self.key_file(c.key)
        for c in self._signing_order():
            self._sign(c)
        self._write_tree()
        self._write_p12()
        self._write_extra()
        return self

    def key_file(self, name):
        return os.path.join(self.dir, "keys", name + ".key")

    def _genkey(self, k):
        openssl("genpkey", *KEY_SPECS[k.kind], "-out", self.key_file(k.name))

    def _is_sm2(self, key_name):
        return self.keys[key_name].kind == "sm2"

    def _csr(self, c):
        args = ["req", "-new", "-key", self.key_file(c.key), "-subj", c.subject,
                "-out", os.path.join(self.dir, "csr", c.name + ".csr")]
        kind = self.keys[c.key].kind
        if kind == "sm2":
            args += ["-sm3", "-sigopt", "distid:" + SM2_ID]
        elif kind != "ed25519":
            args += ["-sha256"]
        openssl(*args)

    def _signing_order(self):
        done, order = set(), []
        while len(order) < len(self.certs):
            for c in self.certs.values():
                if c.name not in done and (c.issuer == c.name or c.issuer in done):
                    done.add(c.name)
                    order.append(c)
        return order

    def _extfile(self, c):
        lines = ["[ ext ]", "subjectKeyIdentifier = hash"]
        if c.issuer != c.name:
            lines.append("authorityKeyIdentifier = keyid:always")
        if c.is_ca:
            lines += ["basicConstraints = critical,CA:TRUE",
                      "keyUsage = critical,keyCertSign,cRLSign"]
        else:
            lines += ["basicConstraints = critical,CA:FALSE",
                      "keyUsage = critical,digitalSignature",
                      "extendedKeyUsage = serverAuth,clientAuth"]
        if c.level:
            lines.append("certificatePolicies = " + POLICY_OID[c.level])
        if c.sans:
            lines.append("subjectAltName = " + ",".join(c.sans))
        path = os.path.join(self.dir, "ext", c.name + ".cnf")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def _sign(self, c):
        # Distinct, whole-second dates far from day boundaries: every
        # not_after is DAYS + 12h + a per-certificate minute, so days_left is
        # stable during a run and no two certificates tie in a sort.
        idx = list(self.certs).index(c.name)
        c.not_before = self.now + int(c.start * DAY) - idx * 60
        c.not_after = self.now + int(c.end * DAY) + DAY // 2 + idx * 60
        issuer = self.certs[c.issuer]
        out = os.path.join(self.dir, "certs", c.name + ".pem")
        args = ["ca", "-batch", "-notext", "-preserveDN",
                "-config", os.path.join(self._ca_dir, "ca.cnf"),
                "-keyfile", issuer.key_path,
                "-in", os.path.join(self.dir, "csr", c.name + ".csr"),
                "-startdate", _asn1_time(c.not_before), "-enddate", _asn1_time(c.not_after),
                "-extfile", self._extfile(c), "-extensions", "ext", "-out", out]
        if c.issuer == c.name:
            args += ["-selfsign"]
        else:
            args += ["-cert", os.path.join(self.dir, "certs", issuer.name + ".pem")]
        issuer_kind = self.keys[issuer.key].kind
        args += ["-md", DIGEST_BY_ISSUER_KEY[issuer_kind]]
        if issuer_kind == "sm2":
            args += ["-sigopt", "distid:" + SM2_ID]
        if self._is_sm2(c.key):
            args += ["-vfyopt", "distid:" + SM2_ID]
        openssl(*args)
        with open(out) as f:
            (c.der,) = pem_to_der(f.read())
        c.pem = der_to_pem(c.der)
        with open(out, "w") as f:
            f.write(c.pem)
        c.fingerprint = hashlib.sha256(c.der).hexdigest()
        c.serial, spki = cert_der_fields(c.der)
        c.spki_sha256 = hashlib.sha256(spki).hexdigest()
        c.ski = hashlib.sha1(spki_key_bits(spki)).hexdigest()   # "hash" method of RFC 5280

    def cert_path(self, name):
        return os.path.join(self.dir, "certs", name + ".pem")

    def _write_tree(self):
        for rel, (fmt, certs, keys) in TREE.items():
            path = self.tree_path(rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if fmt in ("pem", "key"):
                text = "".join(self.certs[c].pem for c in certs)
                for k in keys:
                    with open(self.key_file(k)) as f:
                        text += f.read()
                with open(path, "w") as f:
                    f.write(text)
            elif fmt == "der":
                (c,) = certs
                with open(path, "wb") as f:
                    f.write(self.certs[c].der)
            elif fmt in ("p7b-pem", "p7b-der"):
                args = ["crl2pkcs7", "-nocrl", "-out", path]
                for c in certs:
                    args += ["-certfile", self.cert_path(c)]
                if fmt == "p7b-der":
                    args += ["-outform", "DER"]
                openssl(*args)
            else:
                raise ValueError(fmt)

    def _write_p12(self):
        p = os.path.join(self.dir, "p12")
        chain = os.path.join(p, "chain.pem")
        with open(chain, "w") as f:
            f.write(self.certs["inter"].pem + self.certs["root"].pem)
        self.p12_password_file = os.path.join(p, "password.txt")
        with open(self.p12_password_file, "w") as f:
            f.write(P12_PASSWORD + "\n")
        self.p12_wrong_password_file = os.path.join(p, "wrong.txt")
        with open(self.p12_wrong_password_file, "w") as f:
            f.write("not the password\n")
        self.p12_pw = os.path.join(p, "pw.p12")
        openssl("pkcs12", "-export", "-in", self.cert_path("p12pw"),
                "-inkey", self.key_file("p12pw"), "-certfile", chain,
                "-passout", "pass:" + P12_PASSWORD, "-out", self.p12_pw)
        self.p12_empty = os.path.join(p, "empty.p12")
        openssl("pkcs12", "-export", "-in", self.cert_path("p12empty"),
                "-inkey", self.key_file("p12empty"), "-passout", "pass:",
                "-out", self.p12_empty)

    def _write_extra(self):
        e = os.path.join(self.dir, "extra")
        self.orphan_key = os.path.join(e, "orphan.key")
        with open(self.key_file("orphan")) as src, open(self.orphan_key, "w") as f:
            f.write(src.read())
        self.crl_pem = os.path.join(e, "root.crl")
        openssl("ca", "-gencrl", "-batch", "-config", os.path.join(self._ca_dir, "ca.cnf"),
                "-keyfile", self.certs["root"].key_path, "-cert", self.cert_path("root"),
                "-md", "sha256", "-out", self.crl_pem)
        self.csr_pem = os.path.join(self.dir, "csr", "extra.csr")


def build(root):
    return PKI(root).build()
