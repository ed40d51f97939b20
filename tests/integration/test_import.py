"""aclm import: the generated PKI, idempotence, private keys, PKCS#12, and
Debian's whole CA store."""

import ipaddress
import json
import os
import re
import stat

import pytest

from helpers import by_name, iso_to_epoch, norm_fp, stderr_lines
from pki import openssl

SUMMARY_RE = re.compile(
    r"^imported (\d+) certificates? from (\d+) files?: (\d+) new, (\d+) already known; "
    r"(\d+) private keys? stored; (\d+) problems?$")


def norm_san(s):
    """'IP:2001:DB8:0:0:0:0:0:10' and 'IP:2001:db8::10' are the same SAN."""
    kind, _, value = s.partition(":")
    if kind == "IP":
        return "IP:" + str(ipaddress.ip_address(value))
    return s


def import_tree(aclm, pki, *extra, **kw):
    return aclm.import_json(pki.tree, *extra, **kw)


def test_import_tree_summary(aclm, pki):
    s = import_tree(aclm, pki)
    assert s == {
        "files": pki.tree_files(),
        "certificates": pki.tree_occurrences(),
        "new": len(pki.tree_certs()),
        "known": pki.tree_occurrences() - len(pki.tree_certs()),
        "keys_stored": len(set(pki.tree_key_names())),
        "problems": [],
    }


def test_import_text_summary_and_second_run(aclm, pki):
    rc, out, err = aclm("import", pki.tree, check_rc=0)
    m = SUMMARY_RE.match(out.strip())
    assert m, "summary line does not match docs/cli.md:\n" + out
    n_cert, n_files, n_new, n_known, n_keys, n_problems = map(int, m.groups())
    assert (n_cert, n_files, n_new, n_problems) == (
        pki.tree_occurrences(), pki.tree_files(), len(pki.tree_certs()), 0)
    assert n_known == n_cert - n_new
    assert n_keys == len(set(pki.tree_key_names()))

    rc, out, err = aclm("import", pki.tree, check_rc=0)
    m = SUMMARY_RE.match(out.strip())
    assert m, out
    n_cert, n_files, n_new, n_known, n_keys, n_problems = map(int, m.groups())
    assert (n_cert, n_new, n_known, n_keys, n_problems) == (pki.tree_occurrences(), 0,
                                                           pki.tree_occurrences(), 0, 0)
    assert " 0 new" in out


def test_every_field_of_every_certificate(aclm, pki):
    import_tree(aclm, pki)
    rows = by_name(aclm.list(), pki)
    assert sorted(rows) == sorted(pki.tree_certs())
    for name, row in rows.items():
        want = pki.expect(name)
        got = row
        ctx = "certificate %s: %r" % (name, row)
        assert norm_fp(got["fingerprint"]) == want["fingerprint"], ctx
        assert norm_fp(got["spki_sha256"]) == want["spki_sha256"], ctx
        assert got["subject_cn"] == want["subject_cn"], ctx
        assert got["issuer_cn"] == want["issuer_cn"], ctx
        assert "CN=" + want["subject_cn"] in got["subject"] and "O=aclm tests" in got["subject"], ctx
        assert "CN=" + want["issuer_cn"] in got["issuer"], ctx
        assert int(got["serial"], 16) == want["serial"], ctx
        assert iso_to_epoch(got["not_before"]) == want["not_before"], ctx
        assert iso_to_epoch(got["not_after"]) == want["not_after"], ctx
        assert got["key_type"] == want["key_type"], ctx
        assert got["key"] == want["key"], ctx
        if want["key_bits"] is not None:
            assert got["key_bits"] == want["key_bits"], ctx
        assert got["curve"] == want["curve"], ctx
        assert got["sig_alg"] == want["sig_alg"], ctx
        assert (got["level"] or "") == want["level"], ctx
        assert sorted(map(norm_san, got["sans"])) == sorted(map(norm_san, want["sans"])), ctx
        assert got["is_ca"] is want["is_ca"], ctx
        days = (want["not_after"] - pki.now) / 86400
        assert abs(got["days_left"] - days) <= 1, ctx


@pytest.mark.parametrize("name, label, curve, sig_alg", [
    ("sm2leaf", "sm2", "SM2", "SM2-with-SM3"),
    ("sm2root", "sm2", "SM2", "SM2-with-SM3"),
    ("ed25519", "ed25519", None, "ecdsa-with-SHA384"),
    ("ec521", "ec521", "P-521", "ecdsa-with-SHA384"),
    ("root", "rsa4096", None, "sha256WithRSAEncryption"),
])
def test_key_labels(aclm, pki, name, label, curve, sig_alg):
    """The same facts as above, spelled out for the key types people ask about."""
    import_tree(aclm, pki)
    row = by_name(aclm.list(), pki)[name]
    assert (row["key"], row["curve"], row["sig_alg"]) == (label, curve, sig_alg)
    if label == "sm2":
        assert row["key_type"] == "sm2"


def test_issuer_links(aclm, pki):
    import_tree(aclm, pki)
    rows = by_name(aclm.list(), pki)
    for name, row in rows.items():
        c = pki.certs[name]
        if c.issuer == name:
            assert row["issuer_id"] in (None, row["id"]), "self-signed %s: %r" % (name, row)
        else:
            assert row["issuer_id"] == rows[c.issuer]["id"], \
                "%s should link to %s (id %s): %r" % (name, c.issuer, rows[c.issuer]["id"], row)


def test_issuer_linked_when_issuer_arrives_later(aclm, pki):
    """A leaf imported before its issuer gets linked when the issuer comes."""
    aclm.import_json(pki.tree_path("leaves/ec256.pem"))
    (row,) = aclm.list()
    assert row["issuer_id"] is None
    aclm.import_json(pki.tree_path("ca/intermediate.pem"))
    rows = by_name(aclm.list(), pki)
    assert rows["ec256"]["issuer_id"] == rows["inter"]["id"]


def test_reimport_adds_observations_not_certificates(aclm, pki):
    import_tree(aclm, pki)
    first = by_name(aclm.list(), pki)
    s = import_tree(aclm, pki)
    assert (s["new"], s["known"], s["certificates"]) == (0, pki.tree_occurrences(), pki.tree_occurrences())
    second = by_name(aclm.list(), pki)
    assert sorted(second) == sorted(first)
    assert {n: r["id"] for n, r in second.items()} == {n: r["id"] for n, r in first.items()}
    for name in ("root", "inter", "rsa2048"):
        show = aclm.json("show", "--json", first[name]["id"])
        obs = show["observations"]
        files = pki.files_containing(name)
        assert len(obs) == 2 * len(files), "%s: %r" % (name, obs)
        assert sorted({o["location"] for o in obs}) == sorted(files)
        assert {o["source"] for o in obs} == {"import"}
        for o in obs:
            iso_to_epoch(o["seen_at"])


def test_private_keys_stored_and_matched_by_public_key(aclm, pki):
    import_tree(aclm, pki)
    rows = by_name(aclm.list(), pki)
    with_key = set(pki.certs_with_private_key())
    for name, row in rows.items():
        assert row["has_private_key"] is (name in with_key), "%s: %r" % (name, row)
    # exp5 and exp20 share one key: the key row is shared, so is the flag
    assert rows["exp5"]["has_private_key"] and rows["exp20"]["has_private_key"]
    show = aclm.json("show", "--json", rows["exp5"]["id"])
    assert show["same_key"] == [rows["exp20"]["id"]]


def test_kek_file_created_0600_where_configured(aclm, pki):
    assert not os.path.exists(aclm.kek_file)
    import_tree(aclm, pki)
    st = os.stat(aclm.kek_file)
    assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
    assert st.st_size > 0
    assert not os.path.exists(os.path.join(aclm.tmp, "aclm.kek")), \
        "ACLM_SECURITY_KEK_FILE ignored: ./aclm.kek was created"


def test_kek_file_reused_not_replaced(aclm, pki):
    aclm.import_json(pki.tree_path("leaves"))
    with open(aclm.kek_file, "rb") as f:
        kek = f.read()
    s = aclm.import_json(pki.tree_path("sm2"))
    assert s["keys_stored"] == 1
    with open(aclm.kek_file, "rb") as f:
        assert f.read() == kek, "the KEK file was rewritten: stored keys would be lost"


@pytest.mark.parametrize("with_password", [True, False])
def test_encrypted_private_key(aclm, pki, with_password):
    enc = os.path.join(aclm.tmp, "rsa2048.enc.key")
    openssl("pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", pki.key_file("rsa2048"),
            "-passout", "file:" + pki.p12_password_file, "-out", enc)
    args = ["--password-file", pki.p12_password_file] if with_password else []
    rc, out, err = aclm("import", "--json", *args, pki.tree_path("leaves/rsa2048.pem"), enc)
    s = json.loads(out)
    (row,) = aclm.list()
    if with_password:
        assert rc == 0, err
        assert s["keys_stored"] == 1 and row["has_private_key"] is True
    else:
        assert rc == 1, err
        lines = stderr_lines(err)
        assert len(lines) == 1 and enc in lines[0] and "password" in lines[0].lower(), err
        assert s["keys_stored"] == 0 and row["has_private_key"] is False


def test_kek_from_environment(aclm, pki):
    kek = {"ACLM_KEK": "00112233445566778899aabbccddeeff" * 2}
    s = import_tree(aclm, pki, env=kek)
    assert s["keys_stored"] == len(set(pki.tree_key_names()))
    assert not os.path.exists(aclm.kek_file), "$ACLM_KEK given, yet a KEK file was created"
    assert not os.path.exists(os.path.join(aclm.tmp, "aclm.kek"))


def test_bad_kek_from_environment(aclm, pki):
    """A malformed $ACLM_KEK stores no key, says so, and keeps the certificates."""
    rc, out, err = aclm("import", "--json", pki.tree, env={"ACLM_KEK": "not-hex"})
    assert rc == 1, err
    assert "ACLM_KEK" in err, err
    assert "not-hex" not in err, "the KEK value is echoed: " + err
    s = json.loads(out)
    assert s["keys_stored"] == 0 and s["new"] == len(pki.tree_certs())
    assert not any(r["has_private_key"] for r in aclm.list())


def test_no_keys(aclm, pki):
    s = import_tree(aclm, pki, "--no-keys")
    assert s["keys_stored"] == 0
    assert not any(r["has_private_key"] for r in aclm.list())


def test_key_matched_to_certificate_already_in_inventory(aclm, pki):
    aclm.import_json(pki.tree_path("leaves/rsa2048.pem"))
    s = aclm.import_json(pki.tree_path("leaves/rsa2048.key"))
    assert (s["certificates"], s["keys_stored"]) == (0, 1)
    (row,) = aclm.list()
    assert row["has_private_key"] is True


def test_key_matching_nothing_is_reported_not_stored(aclm, pki):
    rc, out, err = aclm("import", "--json", pki.orphan_key, pki.tree_path("leaves/ec256.pem"))
    assert pki.orphan_key in err, "orphan key not reported:\n" + err
    s = json.loads(out)
    assert s["keys_stored"] == 0
    assert s["new"] == 1
    (row,) = aclm.list()
    assert row["has_private_key"] is False


def test_private_key_never_in_clear(aclm_sqlite, pki):
    """Neither the PEM lines nor the DER of any private key may appear in the
    SQLite files or in the output, even with -v."""
    rc, out, err = aclm_sqlite("-v", "import", pki.tree, check_rc=0)
    aclm_sqlite("-v", "list", "--json", check_rc=0)
    blobs = {"stdout": out.encode(), "stderr": err.encode()}
    for f in os.listdir(aclm_sqlite.tmp):
        if f.startswith("aclm.db"):
            with open(os.path.join(aclm_sqlite.tmp, f), "rb") as fh:
                blobs[f] = fh.read()
    assert "aclm.db" in blobs
    for key in set(pki.tree_key_names()):
        with open(pki.key_file(key), "rb") as f:
            pem = f.read()
        secrets = pki.key_secrets(key)
        # positive control: the PEM lines and the DER are findable this way
        found = [x for x in secrets if x in pem]
        assert len(found) == len(secrets) - 2, "scanner broken for %s" % key
        for secret in secrets:
            for where, blob in blobs.items():
                assert secret not in blob, "private key %s: %r found in %s" % (key, secret[:16], where)


def test_p12_with_password_file(aclm, pki):
    s = aclm.import_json("--password-file", pki.p12_password_file, pki.p12_pw)
    assert (s["certificates"], s["new"], s["keys_stored"], s["problems"]) == (3, 3, 1, [])
    rows = by_name(aclm.list(), pki)
    assert sorted(rows) == ["inter", "p12pw", "root"]
    assert rows["p12pw"]["has_private_key"] is True
    assert rows["inter"]["has_private_key"] is False
    assert rows["p12pw"]["issuer_id"] == rows["inter"]["id"]
    assert rows["inter"]["issuer_id"] == rows["root"]["id"]


def test_p12_with_empty_password(aclm, pki):
    s = aclm.import_json(pki.p12_empty)
    assert (s["certificates"], s["new"], s["keys_stored"], s["problems"]) == (1, 1, 1, [])
    (row,) = aclm.list()
    assert pki.by_fingerprint(row["fingerprint"]) == "p12empty"
    assert row["has_private_key"] is True


@pytest.mark.parametrize("pattern, gone", [
    ("*.p7b", ["ec521", "mail"]),                  # base name glob
    ("sm2", ["sm2root", "sm2leaf"]),               # a directory's base name
    ("*/leaves/e*.pem", ["expired", "exp5", "exp20", "ec256", "ed25519"]),  # full path glob
])
def test_exclude(aclm, pki, pattern, gone):
    aclm.import_json("--exclude", pattern, pki.tree)
    got = sorted(by_name(aclm.list(), pki))
    assert got == sorted(set(pki.tree_certs()) - set(gone))


def test_exclude_from_config(aclm, pki):
    aclm.import_json(pki.tree, env={"ACLM_IMPORT_EXCLUDE": "*.p7b,sm2"})
    got = sorted(by_name(aclm.list(), pki))
    assert got == sorted(set(pki.tree_certs()) - {"ec521", "mail", "sm2root", "sm2leaf"})


def test_import_debian_ca_store(aclm):
    store = "/etc/ssl/certs"
    if not os.path.isdir(store):
        pytest.fail("%s missing: install ca-certificates" % store)
    args = ["--exclude", "java"] if os.path.isdir(os.path.join(store, "java")) else []
    rc, out, err = aclm("import", "--json", *args, store)
    assert rc == 0, err
    assert stderr_lines(err) == [], err
    s = json.loads(out)
    assert s["problems"] == []
    rows = aclm.list()
    assert len(rows) > 100
    assert s["new"] == len(rows)
    assert all(r["is_ca"] for r in rows), [r["subject"] for r in rows if not r["is_ca"]]
    assert aclm.list("--expiring", "3650d") != []
