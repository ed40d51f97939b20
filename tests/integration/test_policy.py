"""aclm policy: the built-in cabf-baseline and stored policies against a PKI
made here with the openssl CLI (every rule, the CA/B boundary dates), real
TLS endpoints scanned for post-quantum key exchange, exit codes, bad policy
files; on SQLite and PostgreSQL."""

import calendar
import json
import os
import subprocess
import time

import pytest

import test_pq

DAY = 86400

CA_CNF = """\
[ ca ]
default_ca = CA_default
[ CA_default ]
dir = {dir}
database = {dir}/index.txt
serial = {dir}/serial
new_certs_dir = {dir}/newcerts
default_md = sha256
policy = policy_anything
unique_subject = no
copy_extensions = none
email_in_dn = no
[ policy_anything ]
commonName = supplied
"""

KEYGEN = {
    "p256": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    "rsa1024": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"],
    "rsa2048": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    "ed25519": ["-algorithm", "ED25519"],
}


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def utc(s):
    return calendar.timegm(time.strptime(s, "%Y-%m-%d"))


def openssl(*args):
    p = subprocess.run(["openssl", *map(str, args)], capture_output=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError("openssl %s:\n%s" % (" ".join(map(str, args)), p.stderr.decode()))
    return p.stdout


class MiniPKI:
    """One P-256 CA and leaves with chosen keys, names, dates and digests."""

    def __init__(self, d):
        self.d = str(d)
        self.ca = os.path.join(self.d, "ca")
        os.makedirs(os.path.join(self.ca, "newcerts"))
        os.makedirs(os.path.join(self.d, "out"))
        with open(os.path.join(self.ca, "ca.cnf"), "w") as f:
            f.write(CA_CNF.format(dir=self.ca))
        open(os.path.join(self.ca, "index.txt"), "w").close()
        with open(os.path.join(self.ca, "serial"), "w") as f:
            f.write("2000\n")
        self.keys = {}
        self.ca_key = self.key("ca", "p256")
        self.ca_cert = os.path.join(self.d, "out", "ca.pem")
        openssl("req", "-x509", "-new", "-key", self.ca_key, "-subj", "/CN=Policy Test CA",
                "-days", "3650", "-sha256", "-out", self.ca_cert,
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        self.certs = {}   # cn -> (path, not_before, not_after)

    def key(self, name, kind):
        path = os.path.join(self.d, name + ".key")
        openssl("genpkey", *KEYGEN[kind], "-out", path)
        self.keys[name] = path
        return path

    def leaf(self, cn, key, sans, not_before, not_after, md="sha256"):
        csr = os.path.join(self.d, cn.replace("*", "star") + ".csr")
        ext = os.path.join(self.d, cn.replace("*", "star") + ".cnf")
        out = os.path.join(self.d, "out", cn.replace("*", "star") + ".pem")
        openssl("req", "-new", "-key", self.keys[key], "-subj", "/CN=" + cn, "-out", csr)
        with open(ext, "w") as f:
            f.write("[ ext ]\nbasicConstraints = critical,CA:FALSE\n"
                    "keyUsage = critical,digitalSignature\nextendedKeyUsage = serverAuth\n"
                    "subjectAltName = %s\n" % ",".join("DNS:" + s for s in sans))
        openssl("ca", "-batch", "-notext", "-config", os.path.join(self.ca, "ca.cnf"),
                "-keyfile", self.ca_key, "-cert", self.ca_cert, "-in", csr,
                "-startdate", time.strftime("%Y%m%d%H%M%SZ", time.gmtime(not_before)),
                "-enddate", time.strftime("%Y%m%d%H%M%SZ", time.gmtime(not_after)),
                "-md", md, "-extfile", ext, "-extensions", "ext", "-out", out)
        self.certs[cn] = (out, not_before, not_after)
        return out


def build_pki(d):
    now = int(time.time())
    p = MiniPKI(d)
    for name, kind in [("good", "p256"), ("small", "rsa1024"), ("sha1", "p256"),
                       ("edge", "p256"), ("late", "p256"), ("shared", "p256"),
                       ("ed", "ed25519"), ("wild", "p256"), ("rsa", "rsa2048")]:
        p.key(name, kind)
    start, end = now - 10 * DAY, now + 80 * DAY
    p.leaf("www.example.com", "good", ["www.example.com", "example.com"], start, end)
    # the renewal of www: same key, same names -- one site, one key
    p.leaf("www.example.com renewed", "good", ["example.com", "www.example.com"],
           start + DAY, end + DAY)
    p.leaf("old.example.com", "small", ["old.example.com"], start, end)
    p.leaf("sha1.example.com", "sha1", ["sha1.example.com"], start, end, md="sha1")
    # the CA/B boundary: 398 days issued the day before 2026-03-15 ...
    p.leaf("edge.example.com", "edge", ["edge.example.com"], utc("2026-03-14"),
           utc("2026-03-14") + 398 * DAY - 1)
    # ... and on that day
    p.leaf("late.example.com", "late", ["late.example.com"], utc("2026-03-15"),
           utc("2026-03-15") + 398 * DAY - 1)
    p.leaf("a.example.com", "shared", ["a.example.com"], start, end)
    p.leaf("b.example.com", "shared", ["b.example.com"], start, end)
    p.leaf("ed.example.com", "ed", ["ed.example.com"], start, end)
    p.leaf("*.*.example.com", "wild", ["*.*.example.com"], start, end)
    p.leaf("rsa.example.com", "rsa", ["www.example.com"], start, end)
    return p


# What cabf-baseline must find, by subject CN.
BASELINE = {
    "Policy Test CA": [],
    "www.example.com": [],
    "www.example.com renewed": [],
    "old.example.com": ["key-size"],
    "sha1.example.com": ["signature-algorithm"],
    "edge.example.com": [],
    "late.example.com": ["max-validity"],
    "a.example.com": ["one-site-one-key"],
    "b.example.com": ["one-site-one-key"],
    "ed.example.com": ["key-type"],
    "*.*.example.com": ["wildcard"],
    "rsa.example.com": [],
}


@pytest.fixture(scope="module")
def mini_pki(tmp_path_factory):
    return build_pki(tmp_path_factory.mktemp("policy-pki"))


def import_pki(aclm, pki):
    aclm.import_json(os.path.join(pki.d, "out"))


def certs_by_label(doc):
    return {i["label"]: sorted(v["rule"] for v in i["violations"])
            for i in doc["items"] if i["kind"] == "certificate"}


def test_builtin_policy_every_rule(aclm, mini_pki):
    import_pki(aclm, mini_pki)
    rc, out, err = aclm("policy", "check", "--json", "--all")
    assert rc == 1, err
    doc = json.loads(out)
    assert doc["policy"] == "cabf-baseline"
    assert certs_by_label(doc) == {k: sorted(v) for k, v in BASELINE.items()}
    s = doc["summary"]
    assert s["certificates"] == {"total": 12, "compliant": 5, "violating": 7}
    assert s["by_rule"]["one-site-one-key"] == 2
    assert s["by_rule"]["max-validity"] == 1
    assert s["violations"] == 7
    # the detail says what and why
    late = [i for i in doc["items"] if i["label"] == "late.example.com"][0]
    assert "valid for 398 days, more than the 200" in late["violations"][0]["detail"]
    # without --all: only the violating; the text form names rule and detail
    doc = aclm.json("policy", "check", "--json", check_rc=1)
    assert len(doc["items"]) == 7 and all(not i["compliant"] for i in doc["items"])
    # one rule's list
    doc = aclm.json("policy", "check", "--json", "--rule", "one-site-one-key", check_rc=1)
    assert sorted(i["label"] for i in doc["items"]) == ["a.example.com", "b.example.com"]
    assert aclm("policy", "check", "--rule", "bogus")[0] == 2
    rc, out, err = aclm("policy", "check")
    assert rc == 1
    assert "certificate" in out and "key-size" in out and "RSA key of 1024 bits" in out
    assert "7 of 12 certificates" in err


def test_clean_inventory_exits_0(aclm, mini_pki):
    aclm.import_json(mini_pki.certs["www.example.com"][0], mini_pki.ca_cert)
    rc, out, err = aclm("policy", "check")
    assert rc == 0, out + err
    assert "0 of 2 certificates" in err


POLICY_YAML = """\
# the corporate policy
name: corp
description: internal sites
rules:
  key_types:
    ec: {{curves: [P-256]}}
    rsa: {{min_bits: 2048}}
  issuers: ["Corp Issuing CA"]
  san_patterns: ["*.example.com", "example.com"]
  wildcards: deny
  dual_certificates:
    - site: www.example.com
    - site: shop.example.com
      pairs: [[sm2, ec]]
  pq_key_exchange:
    - endpoint: "127.0.0.1:{pq_port}"
    - endpoint: "127.0.0.1:{plain_port}"
    - endpoint: "vpn.example.com"
"""


@pytest.fixture
def tls_peers(tmp_path, mini_pki):
    """Two TLS endpoints on loopback: one accepting X25519MLKEM768 (openssl
    s_server with the aclm-pq provider), one classic only."""
    cert, key = mini_pki.certs["www.example.com"][0], mini_pki.keys["good"]
    pq = test_pq.Server(cert, key, "X25519MLKEM768:X25519")
    plain = test_pq.Server(cert, key, "X25519", with_provider=False)
    yield pq.port, plain.port
    pq.stop()
    plain.stop()


def test_stored_policy_every_rule(aclm, mini_pki, tls_peers, tmp_path):
    pq_port, plain_port = tls_peers
    import_pki(aclm, mini_pki)
    aclm("scan", "--no-progress", "127.0.0.1:%d" % pq_port, "127.0.0.1:%d" % plain_port,
         check_rc=0)
    path = tmp_path / "corp.yaml"
    path.write_text(POLICY_YAML.format(pq_port=pq_port, plain_port=plain_port))
    aclm("policy", "add", path, check_rc=0)
    # a second add of the same name is refused, --replace works
    rc, out, err = aclm("policy", "add", path)
    assert rc == 1 and "exists already" in err
    aclm("policy", "add", "--replace", path, check_rc=0)
    doc = aclm.json("policy", "check", "--json", "--all", "--policy", "corp", check_rc=1)
    assert doc["policy"] == "corp"
    got = certs_by_label(doc)
    # every leaf is from the wrong issuer; the CA itself is not judged on it
    assert got["Policy Test CA"] == []
    assert got["www.example.com"] == ["issuer"]
    assert got["old.example.com"] == ["issuer", "key-size"]
    assert got["ed.example.com"] == ["issuer", "key-type"]
    assert got["*.*.example.com"] == ["issuer", "wildcard"]     # denied (and malformed)
    assert got["late.example.com"] == ["issuer"]                # no validity rule here
    assert got["sha1.example.com"] == ["issuer"]                # nor a signature rule
    items = {(i["kind"], i["label"]): sorted(v["rule"] for v in i["violations"])
             for i in doc["items"]}
    # the scanned endpoints: the PQ one complies, the classic one does not
    assert items[("endpoint", "127.0.0.1:%d" % pq_port)] == []
    assert items[("endpoint", "127.0.0.1:%d" % plain_port)] == ["pq-key-exchange"]
    # sites: www has EC (www, renewed) and RSA (rsa.example.com) valid now: a
    # dual pair; shop has nothing; vpn was never scanned
    assert items[("site", "www.example.com")] == []
    assert items[("site", "shop.example.com")] == ["dual-certificate"]
    assert items[("site", "vpn.example.com")] == ["pq-key-exchange"]
    assert doc["summary"]["endpoints"] == {"total": 2, "compliant": 1, "violating": 1}
    assert doc["summary"]["sites"] == {"total": 3, "compliant": 1, "violating": 2}

    # the default policy follows `policy default`
    aclm("policy", "default", "corp", check_rc=0)
    assert aclm.json("policy", "check", "--json", check_rc=1)["policy"] == "corp"
    rows = aclm.json("policy", "list", "--json")
    assert [(r["name"], r["default"]) for r in rows] == [("cabf-baseline", False),
                                                         ("corp", True)]
    shown = aclm.json("policy", "show", "corp")
    assert shown["rules"]["wildcards"] == "deny"
    assert shown["rules"]["key_types"] == {"rsa": {"min_bits": 2048},
                                           "ec": {"curves": ["P-256"]}}
    aclm("policy", "default", "cabf-baseline", check_rc=0)
    assert aclm.json("policy", "check", "--json", check_rc=1)["policy"] == "cabf-baseline"
    aclm("policy", "del", "corp", check_rc=0)
    rc, out, err = aclm("policy", "check", "--policy", "corp")
    assert rc == 1 and "no policy 'corp'" in err
    # changes are in the audit log
    types = [e["type"] for e in map(json.loads, aclm("audit", "export", check_rc=0)[1].splitlines())]
    assert types.count("policy.added") == 1 and "policy.replaced" in types
    assert "policy.deleted" in types and types.count("policy.default") == 2


@pytest.mark.parametrize("text,want", [
    ("name: x\nrules:\n  key_sizes: 1\n", "rules.key_sizes: unknown rule"),
    ("name: x\nrules:\n  signature_algorithms: [sha1WithRSAEncryption]\n", "SHA-1"),
    ("name: x\nrules: [\n", "line"),
    ("\x00\x01binary", "binary"),
    ("name: cabf-baseline\n", "built-in"),
])
def test_bad_policy_files(aclm_sqlite, tmp_path, text, want):
    path = tmp_path / "p.yaml"
    path.write_bytes(text.encode())
    rc, out, err = aclm_sqlite("policy", "add", path)
    assert rc == 1 and want in err and str(path) in err, err
    assert "Traceback" not in err and "runtime error" not in err


def test_usage_errors(aclm_sqlite):
    assert aclm_sqlite("policy")[0] == 2
    assert aclm_sqlite("policy", "frob")[0] == 2
    assert aclm_sqlite("policy", "show")[0] == 2
    rc, out, err = aclm_sqlite("policy", "del", "cabf-baseline")
    assert rc == 1 and "built in" in err
    rc, out, err = aclm_sqlite("policy", "show", "nope")
    assert rc == 1 and "no policy 'nope'" in err
