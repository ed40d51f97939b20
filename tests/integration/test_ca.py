"""The built-in CA by hand: `aclm ca init|issue|revoke|list|export-roots|crl|
renew-early`, checked with openssl (verify, x509 -text, crl)."""

import os
import re
import subprocess

import pytest

from helpers import check_list_columns

SM2_ID = "1234567812345678"


def sh(*cmd, check=True, input=None):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, input=input, timeout=60)
    if check and p.returncode != 0:
        pytest.fail("%s: exit %d\n%s%s" % (" ".join(map(str, cmd)), p.returncode,
                                          p.stdout.decode(errors="replace"),
                                          p.stderr.decode(errors="replace")), pytrace=False)
    return p


def pem_blocks(path):
    text = open(path).read()
    return re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n", text, re.S)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return str(path)


def make_csr(tmp, kind, names, cn=None):
    """A key and CSR made by openssl (not by aclm): kind ec|rsa|sm2|rsa1024|k256."""
    key = os.path.join(str(tmp), "%s.key" % kind)
    csr = os.path.join(str(tmp), "%s.csr" % kind)
    if kind == "ec":
        sh("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
           "-out", key)
    elif kind == "k256":
        sh("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:secp256k1",
           "-out", key)
    elif kind == "rsa":
        sh("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key)
    elif kind == "rsa1024":
        sh("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", key)
    elif kind == "sm2":
        sh("openssl", "genpkey", "-algorithm", "SM2", "-out", key)
    san = ",".join(("IP:" if re.match(r"^[0-9.:]+$", n) else "DNS:") + n for n in names)
    cmd = ["openssl", "req", "-new", "-key", key, "-subj", "/CN=%s" % (cn or names[0]),
           "-addext", "subjectAltName=" + san, "-out", csr]
    if kind == "sm2":
        cmd += ["-sm3", "-sigopt", "distid:" + SM2_ID]
    sh(*cmd)
    return csr


_TEMPLATE = {}


@pytest.fixture
def ca(aclm, tmp_path_factory):
    """A CA per test.  On SQLite the first test's database and KEK are copied
    for the others (RSA-4096 key generation is the slow part of init)."""
    import shutil
    if aclm.backend == "sqlite" and "db" in _TEMPLATE:
        shutil.copyfile(_TEMPLATE["db"], aclm.db[len("sqlite:"):])
        shutil.copyfile(_TEMPLATE["kek"], aclm.kek_file)
        os.chmod(aclm.kek_file, 0o600)
        return aclm
    data = aclm.json("ca", "init", "--json")
    assert sorted(h["algo"] for h in data) == ["ecdsa", "rsa", "sm2"]
    if aclm.backend == "sqlite":
        d = tmp_path_factory.mktemp("ca-template")
        _TEMPLATE["db"] = str(d / "aclm.db")
        _TEMPLATE["kek"] = str(d / "aclm.kek")
        shutil.copyfile(aclm.db[len("sqlite:"):], _TEMPLATE["db"])
        shutil.copyfile(aclm.kek_file, _TEMPLATE["kek"])
    return aclm


def split_chain(tmp, chain, name):
    blocks = pem_blocks(chain)
    assert len(blocks) == 2, "leaf and intermediate expected"
    return (write(os.path.join(str(tmp), name + ".leaf.pem"), blocks[0]),
            write(os.path.join(str(tmp), name + ".int.pem"), blocks[1]))


def roots_by_cn(tmp, aclm):
    path = os.path.join(str(tmp), "roots.pem")
    aclm("ca", "export-roots", "--out", path, check_rc=0)
    out = {}
    for i, b in enumerate(pem_blocks(path)):
        p = write(os.path.join(str(tmp), "root%d.pem" % i), b)
        subj = sh("openssl", "x509", "-in", p, "-noout", "-subject").stdout.decode()
        out[re.search(r"(ECDSA|RSA|SM2)", subj).group(1)] = p
    return path, out


def test_init_creates_three_hierarchies_with_sealed_keys(ca, tmp_path):
    roots, by = roots_by_cn(tmp_path, ca)
    assert set(by) == {"ECDSA", "RSA", "SM2"}
    text = sh("openssl", "x509", "-in", by["ECDSA"], "-noout", "-text").stdout.decode()
    assert "NIST CURVE: P-384" in text and "CA:TRUE" in text
    text = sh("openssl", "x509", "-in", by["RSA"], "-noout", "-text").stdout.decode()
    assert "Public-Key: (4096 bit)" in text
    text = sh("openssl", "x509", "-in", by["SM2"], "-noout", "-text").stdout.decode()
    assert "SM2-with-SM3" in text
    # Again: nothing new.
    rc, out, _ = ca("ca", "init", check_rc=0)
    assert "0 hierarchies created" in out
    # Six CA keys, all sealed ("AK1" header), none plain PKCS#8.
    if ca.backend == "sqlite":
        rows = ca.sql("SELECT hex(substr(private_key, 1, 3)) FROM keys WHERE private_key IS NOT NULL")
        assert len(rows) == 6 and all(r[0] == "414B31" for r in rows)
    rows = ca.list("--ca")
    assert len(rows) >= 6
    # Stored one by one (not the bulk import): with their list columns.
    check_list_columns(ca)


@pytest.mark.parametrize("kind,sig", [("ec", "ecdsa-with-SHA256"), ("rsa", "sha256WithRSAEncryption")])
def test_issue_ecdsa_rsa_chain_verifies(ca, tmp_path, kind, sig):
    roots, _ = roots_by_cn(tmp_path, ca)
    csr = make_csr(tmp_path, kind, ["db01.corp.internal", "10.20.30.40"])
    chain = os.path.join(str(tmp_path), kind + ".chain.pem")
    ca("ca", "issue", "--csr", csr, "--out", chain, check_rc=0)
    leaf, inter = split_chain(tmp_path, chain, kind)
    out = sh("openssl", "verify", "-CAfile", roots, "-untrusted", inter, "-purpose", "sslserver",
             leaf).stdout.decode()
    assert out.strip().endswith("OK")
    text = sh("openssl", "x509", "-in", leaf, "-noout", "-text").stdout.decode()
    assert sig in text
    assert "DNS:db01.corp.internal" in text and "IP Address:10.20.30.40" in text
    assert re.search(r"URI:https://[^ ]+/ca/main/crl/" + ("ecdsa" if kind == "ec" else "rsa"), text)
    assert "OCSP - URI:" in text
    assert "CA:FALSE" in text
    # In the inventory, seen by source "ca".
    rows = ca.list("--name", "db01.corp.internal")
    assert len(rows) == 1
    listed = ca.json("ca", "list", "--json")
    assert any(r["cert_id"] == rows[0]["id"] and r["profile"] == "default" for r in listed)
    check_list_columns(ca)


def test_issue_sm2_chain_with_sm2_with_sm3(ca, tmp_path):
    _, by = roots_by_cn(tmp_path, ca)
    csr = make_csr(tmp_path, "sm2", ["sm.corp.internal"])
    chain = os.path.join(str(tmp_path), "sm2.chain.pem")
    ca("ca", "issue", "--csr", csr, "--out", chain, check_rc=0)
    leaf, inter = split_chain(tmp_path, chain, "sm2")
    text = sh("openssl", "x509", "-in", leaf, "-noout", "-text").stdout.decode()
    assert text.count("Signature Algorithm: SM2-with-SM3") == 2
    # openssl 3.0 applies the SM2 ID (-vfyopt distid) to the certificate being
    # checked only: verify each link of the chain with the GB/T 32918 ID.
    out = sh("openssl", "verify", "-vfyopt", "distid:" + SM2_ID, "-CAfile", by["SM2"],
             inter).stdout.decode()
    assert out.strip().endswith("OK")
    out = sh("openssl", "verify", "-vfyopt", "distid:" + SM2_ID, "-partial_chain", "-CAfile",
             inter, leaf).stdout.decode()
    assert out.strip().endswith("OK")
    # Without the ID the signature does not verify: the ID is really used.
    p = sh("openssl", "verify", "-partial_chain", "-CAfile", inter, leaf, check=False)
    assert p.returncode != 0 or b"OK" not in p.stdout


def test_bad_csrs_are_badcsr(ca, tmp_path):
    for kind, why in (("rsa1024", "1024 bits"), ("k256", "secp256k1")):
        csr = make_csr(tmp_path, kind, ["weak.corp.internal"])
        rc, out, err = ca("ca", "issue", "--csr", csr)
        assert rc == 1 and "badCSR" in err and why in err, err
    # A signature that does not verify: flip a byte of the signature.
    csr = make_csr(tmp_path, "ec", ["flip.corp.internal"])
    der = sh("openssl", "req", "-in", csr, "-outform", "DER").stdout
    bad = bytearray(der)
    bad[-5] ^= 0x55
    path = os.path.join(str(tmp_path), "bad.der")
    open(path, "wb").write(bytes(bad))
    rc, out, err = ca("ca", "issue", "--csr", path)
    assert rc == 1 and "badCSR" in err and "signature" in err, err
    # Garbage and a truncated request.
    path = write(os.path.join(str(tmp_path), "garbage.csr"), "hello\n")
    rc, out, err = ca("ca", "issue", "--csr", path)
    assert rc == 1 and "request" in err
    open(path, "wb").write(der[:40])
    rc, out, err = ca("ca", "issue", "--csr", path)
    assert rc == 1 and "badCSR" in err


def test_profiles_set_validity_and_eku(ca, tmp_path):
    csr = make_csr(tmp_path, "ec", ["app.corp.internal"])
    for prof, days, client in (("shortlived", 7, False), ("intranet", 47, True),
                               ("default", 90, False)):
        chain = os.path.join(str(tmp_path), prof + ".pem")
        ca("ca", "issue", "--csr", csr, "--profile", prof, "--out", chain, check_rc=0)
        leaf, _ = split_chain(tmp_path, chain, prof)
        dates = sh("openssl", "x509", "-in", leaf, "-noout", "-startdate", "-enddate",
                   "-ext", "extendedKeyUsage").stdout.decode()
        import datetime
        nb = datetime.datetime.strptime(re.search(r"notBefore=(.*)", dates).group(1).strip(),
                                        "%b %d %H:%M:%S %Y %Z")
        na = datetime.datetime.strptime(re.search(r"notAfter=(.*)", dates).group(1).strip(),
                                        "%b %d %H:%M:%S %Y %Z")
        assert abs((na - nb).total_seconds() - days * 86400) < 300, (prof, na - nb)
        assert ("Client Authentication" in dates) == client
    rc, _, err = ca("ca", "issue", "--csr", csr, "--profile", "forever")
    assert rc == 1 and "unknown profile" in err


def test_identifier_policy(ca, tmp_path):
    env = {"ACLM_CA_DNS_SUFFIXES": "corp.internal"}
    csr = make_csr(tmp_path, "ec", ["www.example.com"])
    rc, _, err = ca("ca", "issue", "--csr", csr, env=env)
    assert rc == 1 and "rejectedIdentifier" in err and "www.example.com" in err
    csr = make_csr(tmp_path, "ec", ["ok.corp.internal", "8.8.8.8"])
    rc, _, err = ca("ca", "issue", "--csr", csr, env=env)
    assert rc == 1 and "rejectedIdentifier" in err and "8.8.8.8" in err
    csr = make_csr(tmp_path, "ec", ["ok.corp.internal", "192.168.1.10"])
    ca("ca", "issue", "--csr", csr, "--out", os.path.join(str(tmp_path), "ok.pem"), env=env,
       check_rc=0)
    # A suffix must match whole labels.
    csr = make_csr(tmp_path, "ec", ["evilcorp.internal"])
    rc, _, err = ca("ca", "issue", "--csr", csr, env=env)
    assert rc == 1 and "rejectedIdentifier" in err


def test_revoke_and_crl(ca, tmp_path):
    csr = make_csr(tmp_path, "ec", ["gone.corp.internal"])
    chain = os.path.join(str(tmp_path), "gone.pem")
    ca("ca", "issue", "--csr", csr, "--out", chain, check_rc=0)
    leaf, inter = split_chain(tmp_path, chain, "gone")
    serial = sh("openssl", "x509", "-in", leaf, "-noout", "-serial").stdout.decode().split("=")[1].strip()
    ca("ca", "revoke", serial.lower(), "--reason", "keyCompromise", check_rc=0)
    rc, _, err = ca("ca", "revoke", serial)
    assert rc == 1 and "revoked already" in err
    rc, _, err = ca("ca", "revoke", "00DEADBEEF")
    assert rc == 1 and "no certificate with serial" in err
    rc, _, err = ca("ca", "revoke", serial, "--reason", "bored")
    assert rc == 2
    revoked = ca.json("ca", "list", "--revoked", "--json")
    assert [r["serial"] for r in revoked] == [serial] and revoked[0]["reason"] == "keyCompromise"
    crl = os.path.join(str(tmp_path), "ecdsa.crl")
    ca("ca", "crl", "--algo", "ecdsa", "--out", crl, check_rc=0)
    text = sh("openssl", "crl", "-inform", "DER", "-in", crl, "-noout", "-text").stdout.decode()
    assert "Serial Number: " + serial in text and "Key Compromise" in text
    assert "X509v3 CRL Number" in text
    out = sh("openssl", "crl", "-inform", "DER", "-in", crl, "-noout", "-CAfile", inter)
    assert b"verify OK" in out.stdout + out.stderr
    # The RSA CRL has no entry; the CRL number grows.
    ca("ca", "crl", "--algo", "rsa", "--out", crl, check_rc=0)
    text = sh("openssl", "crl", "-inform", "DER", "-in", crl, "-noout", "-text").stdout.decode()
    assert "No Revoked Certificates" in text
    # openssl verify with the CRL says revoked.
    roots, _ = roots_by_cn(tmp_path, ca)
    ca("ca", "crl", "--algo", "ecdsa", "--out", crl, check_rc=0)
    pem_crl = sh("openssl", "crl", "-inform", "DER", "-in", crl).stdout.decode()
    crlp = write(os.path.join(str(tmp_path), "crl.pem"), pem_crl)
    p = sh("openssl", "verify", "-crl_check", "-CRLfile", crlp, "-CAfile", roots, "-untrusted",
           inter, leaf, check=False)
    assert p.returncode != 0 and b"revoked" in p.stdout + p.stderr


def test_renew_early(ca, tmp_path):
    csr = make_csr(tmp_path, "ec", ["ari.corp.internal"])
    chain = os.path.join(str(tmp_path), "ari.pem")
    ca("ca", "issue", "--csr", csr, "--out", chain, check_rc=0)
    serial = ca.json("ca", "list", "--json")[0]["serial"]
    rc, out, _ = ca("ca", "renew-early", serial, check_rc=0)
    assert out.startswith("1 certificate")
    rc, out, _ = ca("ca", "renew-early", "--issued-before", "2999-01-01T00:00:00Z", check_rc=0)
    assert out.startswith("1 certificate")
    rc, _, err = ca("ca", "renew-early", "ABCDEF")
    assert rc == 1
    rc, _, err = ca("ca", "renew-early")
    assert rc == 2


def test_bad_names_and_usage(aclm, tmp_path):
    rc, _, err = aclm("ca", "init", "--name", "Bad Name")
    assert rc == 1 and "only a-z" in err
    rc, _, err = aclm("ca", "frobnicate")
    assert rc == 2
    rc, _, err = aclm("ca", "issue")
    assert rc == 2 and "--csr" in err
    rc, _, err = aclm("ca", "export-roots")
    assert rc == 1 and "no CA named" in err


def test_serial_in_any_spelling(ca, tmp_path):
    """A serial typed in lower case, with its leading zeros dropped or added,
    names the same certificate (renew-early, revoke): `"%X" % n` drops the
    leading zero nibble of about one serial in sixteen."""
    csr = make_csr(tmp_path, "ec", ["spell.corp.internal"])
    chain = os.path.join(str(tmp_path), "spell.chain.pem")
    ca("ca", "issue", "--csr", csr, "--out", chain, check_rc=0)
    serial = [r for r in ca.json("ca", "list", "--json")
              if r["cert_id"] == ca.list("--name", "spell.corp.internal")[0]["id"]][0]["serial"]
    bare = serial.lstrip("0").lower()
    ca("ca", "renew-early", bare, check_rc=0)
    ca("ca", "renew-early", "000" + serial, check_rc=0)
    ca("ca", "revoke", "0" + bare, "--reason", "superseded", check_rc=0)
    rc, _, err = ca("ca", "renew-early", serial)
    assert rc == 1 and "no unrevoked certificate" in err  # revoked: the same one
