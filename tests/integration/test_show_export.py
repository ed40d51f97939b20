"""aclm show and aclm export: references, details, and round trips through
the openssl command."""

import json
import os
import pty
import re
import stat
import subprocess

import pytest

from conftest import BIN
from helpers import by_name, cert_table, iso_to_epoch, norm_fp, stderr_lines
from pki import openssl, pem_to_der

SIG_ALG_OID = {"ecdsa-with-SHA384": "1.2.840.10045.4.3.3",
               "sha256WithRSAEncryption": "1.2.840.113549.1.1.11",
               "SM2-with-SM3": "1.2.156.10197.1.501"}


@pytest.fixture
def inv(aclm, pki):
    aclm.import_json(pki.tree)
    aclm.ids = {n: r["id"] for n, r in by_name(aclm.list(), pki).items()}
    return aclm


def pubkey_of(path, passin=None):
    args = ["pkey", "-in", path, "-pubout", "-outform", "DER"]
    return openssl(*args)


def certs_in_p12(path, password_file):
    out = openssl("pkcs12", "-in", path, "-passin", "file:" + password_file, "-nokeys")
    return pem_to_der(out.decode())


def key_in_p12(path, password_file, tmp):
    out = openssl("pkcs12", "-in", path, "-passin", "file:" + password_file, "-nocerts", "-nodes")
    key = os.path.join(tmp, "from-p12.key")
    with open(key, "wb") as f:
        f.write(out)
    return pubkey_of(key)


# ------------------------------------------------------------------ show

def test_show_json_details(inv, pki):
    s = inv.json("show", "--json", inv.ids["rsa2048"])
    want = pki.expect("rsa2048")
    assert norm_fp(s["fingerprint"]) == want["fingerprint"]
    assert s["id"] == inv.ids["rsa2048"]
    assert s["version"] == 3
    assert s["sig_alg"] == "ecdsa-with-SHA384"
    assert s["sig_alg_oid"] == SIG_ALG_OID["ecdsa-with-SHA384"]
    assert norm_fp(s["ski"]) == pki.certs["rsa2048"].ski
    assert norm_fp(s["aki"]) == pki.certs["inter"].ski
    assert s["key_usage"] == ["digitalSignature"]
    assert s["eku"] == ["serverAuth", "clientAuth"]
    assert s["policies"] == ["2.23.140.1.2.2"]
    assert s["level"] == "ov"
    assert s["is_ca"] is False
    assert [c["id"] for c in s["chain"]] == [inv.ids["inter"], inv.ids["root"]]
    assert [norm_fp(c["fingerprint"]) for c in s["chain"]] == \
        [pki.certs["inter"].fingerprint, pki.certs["root"].fingerprint]
    assert "aclm Test Intermediate CA" in s["chain"][0]["subject"]
    assert s["same_key"] == []
    assert [o["location"] for o in s["observations"]] == [pki.tree_path("leaves/rsa2048.pem")]
    # everything the list row has is here too, with the same values
    (row,) = [r for r in inv.list() if r["id"] == inv.ids["rsa2048"]]
    for k, v in row.items():
        if k not in ("first_seen", "last_seen", "days_left"):
            assert s[k] == v, k


def test_show_ca_and_sm2(inv, pki):
    root = inv.json("show", "--json", inv.ids["root"])
    assert root["is_ca"] is True
    assert sorted(root["key_usage"]) == ["cRLSign", "keyCertSign"]
    assert root["chain"] == []
    assert root["path_len"] in (None, -1)
    leaf = inv.json("show", "--json", inv.ids["sm2leaf"])
    assert leaf["sig_alg"] == "SM2-with-SM3"
    assert leaf["sig_alg_oid"] == SIG_ALG_OID["SM2-with-SM3"]
    assert [c["id"] for c in leaf["chain"]] == [inv.ids["sm2root"]]
    assert norm_fp(leaf["aki"]) == pki.certs["sm2root"].ski


def test_show_text(inv, pki):
    rc, out, err = inv("show", inv.ids["wild"], check_rc=0)
    c = pki.certs["wild"]
    for needle in ("*.example.test", "example.test", "aclm Test Intermediate CA", "ov",
                   "2.23.140.1.2.2", "serverAuth"):
        assert needle in out, "%r not in:\n%s" % (needle, out)
    assert c.fingerprint in norm_fp(out.replace(" ", "")) or c.fingerprint.upper() in out.replace(":", ""), out


def fp_refs(fp):
    colons = ":".join(fp[i:i + 2] for i in range(0, 64, 2))
    return [fp, fp.upper(), colons, colons.upper(), fp[:8], fp[:12].upper(), colons[:11]]


def test_show_by_fingerprint_and_prefix(inv, pki):
    fp = pki.certs["ec384"].fingerprint
    for ref in fp_refs(fp):
        s = inv.json("show", "--json", ref)
        assert s["id"] == inv.ids["ec384"], ref


@pytest.mark.parametrize("ref", ["999999", "deadbeefdeadbeef", "0" * 64, "nothex!!"])
def test_show_unknown(inv, ref):
    rc, out, err = inv("show", ref)
    assert rc == 1, (rc, out, err)
    lines = stderr_lines(err)
    assert len(lines) == 1 and lines[0].startswith("aclm: error: ") and ref in lines[0], err
    assert out == ""


def test_show_short_prefix_refused(inv, pki):
    ref = pki.certs["ec384"].fingerprint[:7]
    if ref.isdigit():
        ref = pki.certs["ec256"].fingerprint[:7]
    rc, out, err = inv("show", ref)
    assert rc in (1, 2) and ref in err, (rc, err)


def test_show_ambiguous_prefix(inv, pki):
    """Two stored fingerprints sharing a prefix (made by editing the rows: a
    natural 32-bit collision needs ~65k certificates)."""
    t = cert_table(inv)
    a, b = inv.ids["ec256"], inv.ids["ec384"]
    inv.sql("UPDATE %s SET fingerprint = 'abcdef01' || substr(fingerprint, 9) WHERE id IN (%d, %d)"
            % (t, a, b))
    rc, out, err = inv("show", "abcdef01")
    assert rc == 1, (rc, out, err)
    assert "abcdef01" in err and re.search(r"(?i)ambiguous|several|more than one", err), err
    rc, out, err = inv("show", "ABCDEF01" + pki.certs["ec256"].fingerprint[8:].upper())
    assert rc == 0, err


def test_show_digit_only_prefix(inv, pki):
    """A fingerprint prefix made only of digits (1 in 43 eight-digit prefixes)
    is looked up as a prefix when no certificate has that id."""
    t = cert_table(inv)
    a = inv.ids["ec256"]
    old = pki.certs["ec256"].fingerprint
    inv.sql("UPDATE %s SET fingerprint = '52884927' || substr(fingerprint, 9) WHERE id = %d"
            % (t, a))
    try:
        assert inv.json("show", "--json", "52884927")["id"] == a
        rc, out, err = inv("show", "99999999")
        assert rc == 1 and "99999999" in err and "id or fingerprint" in err, err
        assert inv.json("show", "--json", str(a))["id"] == a
    finally:
        inv.sql("UPDATE %s SET fingerprint = '%s' WHERE id = %d" % (t, old, a))


def test_show_observations_json(inv, pki):
    s = inv.json("show", "--json", inv.ids["inter"])
    assert sorted(o["location"] for o in s["observations"]) == sorted(pki.files_containing("inter"))
    for o in s["observations"]:
        assert o["source"] == "import"
        iso_to_epoch(o["seen_at"])


# ------------------------------------------------------------------ export

def test_export_pem_stdout(inv, pki):
    rc, out, err = inv("export", inv.ids["ec256"], check_rc=0)
    assert pem_to_der(out) == [pki.certs["ec256"].der]
    assert "PRIVATE KEY" not in out


def test_export_der_stdout_and_file(inv, pki):
    rc, out, err = inv("export", "--format", "der", inv.ids["sm2leaf"], binary=True, check_rc=0)
    assert out == pki.certs["sm2leaf"].der
    path = os.path.join(inv.tmp, "c.der")
    inv("export", "--format", "der", "--out", path, inv.ids["sm2leaf"], check_rc=0)
    with open(path, "rb") as f:
        assert f.read() == pki.certs["sm2leaf"].der
    text = openssl("x509", "-inform", "DER", "-in", path, "-noout", "-subject").decode()
    assert "sm2.example.test" in text


@pytest.mark.parametrize("name, chain", [("wild", ["wild", "inter", "root"]),
                                         ("sm2leaf", ["sm2leaf", "sm2root"]),
                                         ("root", ["root"])])
def test_export_chain_pem(inv, pki, name, chain):
    rc, out, err = inv("export", "--chain", inv.ids[name], check_rc=0)
    assert pem_to_der(out) == [pki.certs[n].der for n in chain]


def test_export_key_needs_out(inv):
    rc, out, err = inv("export", "--key", inv.ids["rsa2048"])
    assert rc == 2, (rc, err)
    assert "--out" in err, err
    assert "PRIVATE KEY" not in out and out == ""


@pytest.mark.parametrize("name", ["rsa2048", "ec384", "ed25519", "sm2leaf", "exp20"])
def test_export_key_pem_0600(inv, pki, name):
    path = os.path.join(inv.tmp, name + "-out.pem")
    rc, out, err = inv("export", "--key", "--out", path, inv.ids[name], check_rc=0)
    assert "PRIVATE KEY" not in out + err
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path) as f:
        text = f.read()
    assert pem_to_der(text) == [pki.certs[name].der]
    assert text.index("END CERTIFICATE") < text.index("PRIVATE KEY"), "key must follow the certificate"
    assert pubkey_of(path) == pubkey_of(pki.certs[name].key_path)


def test_export_key_with_chain_pem(inv, pki):
    path = os.path.join(inv.tmp, "full.pem")
    inv("export", "--key", "--chain", "--out", path, inv.ids["rsa2048"], check_rc=0)
    with open(path) as f:
        text = f.read()
    assert pem_to_der(text) == [pki.certs[n].der for n in ("rsa2048", "inter", "root")]
    assert text.rindex("END CERTIFICATE") < text.index("PRIVATE KEY")
    assert pubkey_of(path) == pubkey_of(pki.certs["rsa2048"].key_path)


def test_export_key_of_certificate_without_key(inv):
    path = os.path.join(inv.tmp, "nokey.pem")
    rc, out, err = inv("export", "--key", "--out", path, inv.ids["ec256"])
    assert rc == 1, (rc, err)
    assert "aclm: error: " in err
    assert not os.path.exists(path) or "PRIVATE KEY" not in open(path).read()


@pytest.mark.parametrize("name", ["rsa2048", "ed25519", "sm2leaf"])
def test_export_p12_round_trip(inv, pki, name):
    path = os.path.join(inv.tmp, name + ".p12")
    inv("export", "--format", "p12", "--chain", "--password-file", pki.p12_password_file,
        "--out", path, inv.ids[name], check_rc=0)
    chain = [pki.certs[n].der for n in pki.chain_of(name)]
    assert sorted(certs_in_p12(path, pki.p12_password_file)) == sorted(chain)
    # "P12: the key is always included when known"
    assert key_in_p12(path, pki.p12_password_file, inv.tmp) == pubkey_of(pki.certs[name].key_path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_export_p12_imports_back(inv, pki):
    path = os.path.join(inv.tmp, "rt.p12")
    inv("export", "--format", "p12", "--password-file", pki.p12_password_file,
        "--out", path, inv.ids["ed25519"], check_rc=0)
    other = "sqlite:" + os.path.join(inv.tmp, "other.db")
    inv("--db", other, "import", "--password-file", pki.p12_password_file, path,
        db=False, check_rc=0)
    rc, out, err = inv("--db", other, "list", "--json", db=False, check_rc=0)
    (row,) = json.loads(out)
    assert norm_fp(row["fingerprint"]) == pki.certs["ed25519"].fingerprint
    assert row["has_private_key"] is True


def test_export_p12_with_key_needs_password(inv, pki):
    path = os.path.join(inv.tmp, "nopw.p12")
    rc, out, err = inv("export", "--format", "p12", "--out", path, inv.ids["rsa2048"])
    assert rc in (1, 2), (rc, err)
    assert "password" in err.lower(), err
    assert not os.path.exists(path)


def test_export_p12_without_key(inv, pki):
    path = os.path.join(inv.tmp, "cert-only.p12")
    inv("export", "--format", "p12", "--password-file", pki.p12_password_file,
        "--out", path, inv.ids["ec256"], check_rc=0)
    assert certs_in_p12(path, pki.p12_password_file) == [pki.certs["ec256"].der]


def test_export_key_with_wrong_kek_fails(aclm, pki):
    aclm.import_json(pki.tree, env={"ACLM_KEK": "11" * 32})
    (row,) = [r for r in aclm.list() if norm_fp(r["fingerprint"]) == pki.certs["rsa2048"].fingerprint]
    good = os.path.join(aclm.tmp, "good.pem")
    aclm("export", "--key", "--out", good, row["id"], env={"ACLM_KEK": "11" * 32}, check_rc=0)
    assert pubkey_of(good) == pubkey_of(pki.certs["rsa2048"].key_path)
    bad = os.path.join(aclm.tmp, "bad.pem")
    rc, out, err = aclm("export", "--key", "--out", bad, row["id"], env={"ACLM_KEK": "22" * 32})
    assert rc == 1, (rc, err)
    assert not os.path.exists(bad) or "PRIVATE KEY" not in open(bad).read()


def test_export_binary_refused_on_terminal(inv, pki):
    """der/p12 to stdout are refused when stdout is a terminal."""
    master, slave = pty.openpty()
    try:
        p = subprocess.run([BIN, "--db", inv.db, "export", "--format", "der", str(inv.ids["ec256"])],
                           stdout=slave, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                           env=inv.env, cwd=inv.tmp, timeout=30)
    finally:
        os.close(slave)
    os.set_blocking(master, False)
    try:
        written = os.read(master, 65536)
    except (BlockingIOError, OSError):
        written = b""
    os.close(master)
    assert p.returncode in (1, 2), p.returncode
    assert pki.certs["ec256"].der[:64] not in written
    assert b"terminal" in p.stderr.lower() or b"--out" in p.stderr, p.stderr


@pytest.mark.parametrize("args, needle", [
    (["--format", "jks"], "--format"),
    (["--frobnicate"], "--frobnicate"),
    ([], "REF"),
])
def test_export_usage_errors(inv, args, needle):
    ref = [] if needle == "REF" else [str(inv.ids["ec256"])]
    rc, out, err = inv("export", *args, *ref)
    assert rc == 2, (rc, err)
    if needle != "REF":
        assert needle in err, err
