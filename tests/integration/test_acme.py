"""ACME client against Debian's Pebble in fast mode (no VA sleeps, no nonce
rejection, -strict): ECDSA / RSA / dual issuance by http-01 (standalone and
webroot behind a real nginx), tls-alpn-01, dns-01 through challtestsrv's
DNS, wildcards, revocation, accounts, and bad input.  One Pebble for the
module."""

import json
import os
import shutil
import stat
import subprocess

import pytest

from acme_pebble import Pebble, free_port, pebble_ca, wait_port, write_config


@pytest.fixture(scope="module")
def peb(tmp_path_factory):
    p = Pebble(tmp_path_factory.mktemp("pebble"), env={"PEBBLE_ALTERNATE_ROOTS": "1"}).start()
    yield p
    p.stop()


@pytest.fixture
def aclm_sqlite_other(tmp_path):
    """A second, independent inventory (its own database and KEK)."""
    from conftest import Aclm
    d = tmp_path / "other"
    d.mkdir()
    return Aclm(d, "sqlite:%s" % (d / "aclm.db"), "sqlite")


@pytest.fixture
def acme(aclm_sqlite, peb):
    write_config(aclm_sqlite, [pebble_ca(peb)])
    return aclm_sqlite


def issue(aclm, *args, check_rc=0):
    out = aclm.json("issue", "--json", *args, check_rc=check_rc)
    return out


def cert_pem(aclm, cert_id):
    rc, out, err = aclm.run("export", cert_id, check_rc=0)
    return out


def openssl_text(pem):
    return subprocess.run(["openssl", "x509", "-noout", "-text"], input=pem.encode(),
                          capture_output=True, check=True).stdout.decode()


def test_issue_http01_standalone_both_backends(aclm, peb):
    write_config(aclm, [pebble_ca(peb)])
    out = issue(aclm, "a.example.test", "www.a.example.test",
                "--standalone", "127.0.0.1:%d" % peb.http_port)
    assert len(out) == 1 and out[0]["ca"] == "pebble" and out[0]["key"] == "ec256"
    cid = out[0]["cert_id"]
    row = aclm.json("show", "--json", cid)
    text = json.dumps(row)
    assert "a.example.test" in text and "www.a.example.test" in text
    rows = aclm.list("--name", "www.a.example.test")
    assert [r["id"] for r in rows] == [cid]
    assert rows[0]["has_private_key"] is True
    # the chain was stored too, and the leaf links to its issuer
    assert rows[0].get("issuer_id") not in (None, 0)
    # an observation with source acme; a managed certificate pointing at it
    obs = aclm.sql("SELECT source, location FROM observations WHERE cert_id = %d" % cid)
    assert obs[0][0] == "acme" and "pebble" in obs[0][1]
    m = aclm.sql("SELECT id, current_cert_id, status, key_type, cas, solver FROM managed_certificates")
    assert len(m) == 1
    assert m[0][1] == str(cid) and m[0][2] == "valid" and m[0][3] == "ec256"
    assert json.loads(m[0][4]) == ["pebble"]
    assert json.loads(m[0][5])["standalone"] == "127.0.0.1:%d" % peb.http_port
    # keys are sealed in the database, never plain
    for blob in aclm.sql("SELECT private_key FROM keys WHERE private_key IS NOT NULL"):
        assert "PRIVATE KEY" not in blob[0]
    orders = aclm.sql("SELECT state, status, url FROM acme_orders")
    assert orders[0][0] == "done" and orders[0][1] == "valid"
    assert orders[0][2].startswith("https://127.0.0.1:%d/" % peb.port)
    ev = [r[0] for r in aclm.sql("SELECT type FROM events ORDER BY id")]
    assert "acme.account.created" in ev and "acme.issued" in ev


def test_out_dir_and_key_match(acme, peb, tmp_path):
    outdir = tmp_path / "out"
    outdir.mkdir()
    out = issue(acme, "files.example.test", "--standalone", "127.0.0.1:%d" % peb.http_port,
                "--key", "ec384", "--out", str(outdir))
    crt, key = outdir / "files.example.test.crt", outdir / "files.example.test.key"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    pem = crt.read_text()
    assert pem.count("BEGIN CERTIFICATE") >= 2  # leaf + intermediate
    pub_c = subprocess.run(["openssl", "x509", "-noout", "-pubkey", "-in", str(crt)],
                           capture_output=True, check=True).stdout
    pub_k = subprocess.run(["openssl", "pkey", "-pubout", "-in", str(key)],
                           capture_output=True, check=True).stdout
    assert pub_c == pub_k
    assert "NIST CURVE: P-384" in openssl_text(pem)
    assert out[0]["key"] == "ec384"


def test_rsa_and_dual(acme, peb):
    out = issue(acme, "dual.example.test", "--dual", "ec256,rsa3072",
                "--standalone", "127.0.0.1:%d" % peb.http_port)
    assert [o["key"] for o in out] == ["ec256", "rsa3072"]
    a, b = out
    assert a["fingerprint"] != b["fingerprint"]
    ta = openssl_text(cert_pem(acme, a["cert_id"]))
    tb = openssl_text(cert_pem(acme, b["cert_id"]))
    assert "id-ecPublicKey" in ta and "rsaEncryption" in tb and "3072 bit" in tb
    pairs = acme.sql("SELECT id, pair_id FROM managed_certificates ORDER BY id")
    assert pairs == [[str(a["managed_id"]), str(b["managed_id"])],
                     [str(b["managed_id"]), str(a["managed_id"])]]
    # a fresh key per certificate ("one site, one key")
    spkis = acme.sql("SELECT DISTINCT key_id FROM certificates WHERE id IN (%d, %d)"
                     % (a["cert_id"], b["cert_id"]))
    assert len(spkis) == 2


def nginx_webroot(tmp, port, root):
    conf = tmp / "nginx.conf"
    conf.write_text(f"""
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
""")
    return conf


def test_webroot_served_by_nginx(acme, peb, tmp_path):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(nginx):
        pytest.fail("nginx not installed: run scripts/install-deps --test")
    root = tmp_path / "www"
    root.mkdir()
    os.chmod(tmp_path, 0o755)
    ng = tmp_path / "nginx"
    ng.mkdir()
    proc = subprocess.Popen([nginx, "-c", str(nginx_webroot(ng, peb.http_port, root)), "-p", str(ng)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_port(peb.http_port, proc, "nginx")
        out = issue(acme, "web.example.test", "--webroot", str(root))
        assert out[0]["cert_id"] > 0
        log = (ng / "access.log").read_text()
        assert "/.well-known/acme-challenge/" in log and " 200 " in log
        # the challenge file is cleaned up afterwards
        assert os.listdir(root / ".well-known" / "acme-challenge") == []
    finally:
        proc.kill()
        proc.wait()


def test_tls_alpn01_with_ip(acme, peb):
    out = issue(acme, "alpn.example.test", "127.0.0.1", "--challenge", "tls-alpn-01",
                "--standalone", "127.0.0.1:%d" % peb.tls_port)
    text = openssl_text(cert_pem(acme, out[0]["cert_id"]))
    assert "DNS:alpn.example.test" in text and "IP Address:127.0.0.1" in text
    assert acme.sql("SELECT DISTINCT challenge_type FROM acme_authorizations") == [["tls-alpn-01"]]


def test_dns01_hook_and_wildcard(acme, peb, tmp_path):
    hook, log = peb.hook_script(str(tmp_path / "hook.py"))
    out = issue(acme, "*.wild.example.test", "wild.example.test", "--challenge", "dns-01",
                "--dns-hook", hook)
    text = openssl_text(cert_pem(acme, out[0]["cert_id"]))
    assert "DNS:*.wild.example.test" in text and "DNS:wild.example.test" in text
    calls = open(log).read().split("\n")
    adds = [c for c in calls if c.startswith("add _acme-challenge.wild.example.test. ")]
    removes = [c for c in calls if c.startswith("remove _acme-challenge.wild.example.test. ")]
    assert len(adds) == 2 and len(removes) == 2  # one per authorization, then cleaned up


def test_wildcard_with_http01_refused_before_any_order(acme, peb):
    rc, out, err = acme.run("issue", "*.w.example.test", "--standalone",
                            "127.0.0.1:%d" % peb.http_port, check_rc=1)
    assert "wildcard" in err and "dns-01" in err
    assert acme.sql("SELECT COUNT(*) FROM acme_orders") == [["0"]]


def test_revoke(acme, peb):
    out = issue(acme, "rev.example.test", "--standalone", "127.0.0.1:%d" % peb.http_port)
    cid = out[0]["cert_id"]
    serial = acme.json("show", "--json", cid)["serial"]
    assert peb.cert_status(serial)["Status"] == "Valid"
    acme.run("revoke", "--reason", "keyCompromise", cid, check_rc=0)
    assert peb.cert_status(serial)["Status"] == "Revoked"
    assert acme.sql("SELECT status FROM managed_certificates") == [["revoked"]]
    ev = acme.sql("SELECT detail FROM events WHERE type = 'acme.revoked'")
    assert json.loads(ev[0][0])["reason"] == 1
    # a second revocation is reported by the CA, with its problem type
    rc, _, err = acme.run("revoke", cid, check_rc=1)
    assert "alreadyRevoked" in err or "already" in err


def test_accounts_rollover_and_deactivate(acme, peb):
    issue(acme, "acct.example.test", "--standalone", "127.0.0.1:%d" % peb.http_port)
    accts = acme.json("accounts", "--json")
    assert len(accts) == 1 and accts[0]["status"] == "valid"
    old_spki = accts[0]["key_spki"]
    acme.run("accounts", "rollover", "pebble", check_rc=0)
    accts = acme.json("accounts", "--json")
    assert accts[0]["key_spki"] != old_spki
    # the new key works: another order on the same account
    issue(acme, "acct2.example.test", "--standalone", "127.0.0.1:%d" % peb.http_port)
    assert len(acme.json("accounts", "--json")) == 1
    acme.run("accounts", "deactivate", "pebble", check_rc=0)
    assert acme.json("accounts", "--json")[0]["status"] == "deactivated"


def test_bad_input(acme, peb, tmp_path):
    sa = ["--standalone", "127.0.0.1:%d" % peb.http_port]
    for name, why in [("_x.example.test", "underscores"), ("a..example.test", "empty label"),
                      ("bad name.example.test", "character")]:
        rc, out, err = acme.run("issue", name, *sa, check_rc=2)
        assert why in err, err
    rc, out, err = acme.run("issue", "a.example.test", "--ca", "nosuch", *sa, check_rc=2)
    assert "nosuch" in err
    rc, out, err = acme.run("issue", "a.example.test", "--key", "dsa1024", *sa, check_rc=2)
    assert "dsa1024" in err
    # IDNs become A-labels
    out = issue(acme, "bücher.example.test", *sa)
    assert "xn--bcher-kva.example.test" in openssl_text(cert_pem(acme, out[0]["cert_id"]))
    # Pebble refuses SM2 CSRs: one clear error naming the CA and the step
    rc, out, err = acme.run("issue", "sm2.example.test", "--key", "sm2", *sa, check_rc=1)
    assert "CA pebble" in err and "finalize" in err
    # the CA's TLS is checked: without the trust anchor the directory fails
    write_config(acme, [{"name": "untrusted", "directory": peb.directory}])
    rc, out, err = acme.run("issue", "t.example.test", *sa, check_rc=1)
    assert "CA untrusted" in err and "directory" in err
    # a closed port
    write_config(acme, [{"name": "closed", "directory": "https://127.0.0.1:%d/dir" % free_port()}])
    rc, out, err = acme.run("issue", "t.example.test", *sa, check_rc=1)
    assert "CA closed" in err
    # a bad configuration entry
    write_config(acme, [{"name": "nodir"}])
    rc, out, err = acme.run("issue", "t.example.test", *sa, check_rc=1)
    assert "needs a name and a directory" in err and "aclm.yaml:3" in err
    # Pebble 2.4 advertises no profiles: --profile is refused before any order
    write_config(acme, [pebble_ca(peb)])
    n_orders = acme.sql("SELECT COUNT(*) FROM acme_orders")
    rc, out, err = acme.run("issue", "p.example.test", "--profile", "shortlived", *sa, check_rc=1)
    assert "advertises no profiles" in err and "shortlived" in err
    assert acme.sql("SELECT COUNT(*) FROM acme_orders") == n_orders
    # unknown fields of acme.cas are reported with file:line by config check
    write_config(acme, [dict(pebble_ca(peb), diretcory="x")])
    rc, out, err = acme.run("config", "check", check_rc=1)
    assert "aclm.yaml:6:" in out + err and "diretcory" in out + err
    # nothing stored before is lost
    assert len(acme.list()) >= 2


def subject_cn(pem):
    out = subprocess.run(["openssl", "x509", "-noout", "-subject", "-nameopt", "multiline"],
                         input=pem.encode(), capture_output=True, check=True).stdout.decode()
    return [l.split("=", 1)[1].strip() for l in out.splitlines() if "commonName" in l][0]


def test_preferred_chain_from_alternates(acme, peb, aclm_sqlite_other):
    default_root = subject_cn(peb.root_pem(0))
    alt_root = subject_cn(peb.root_pem(1))
    assert default_root != alt_root
    for inv, want in ((acme, alt_root), (aclm_sqlite_other, default_root)):
        write_config(inv, [pebble_ca(peb, preferred_chain=want)])
        issue(inv, "chain.example.test", "--standalone", "127.0.0.1:%d" % peb.http_port)
        # only the chosen chain is stored: its intermediate is issued by that root
        cas = inv.list("--ca")
        assert [c["issuer_cn"] for c in cas] == [want]


def test_revoke_by_certificate_key(acme, peb, tmp_path, aclm_sqlite_other):
    """A certificate aclm did not order (imported with its key) is revoked
    with a JWS signed by the certificate's own key."""
    outdir = tmp_path / "o"
    outdir.mkdir()
    out = issue(acme, "ck.example.test", "--standalone", "127.0.0.1:%d" % peb.http_port,
                "--out", str(outdir))
    serial = acme.json("show", "--json", out[0]["cert_id"])["serial"]
    other = aclm_sqlite_other
    write_config(other, [pebble_ca(peb)])
    other.json("import", "--json", str(outdir), check_rc=0)
    rows = other.list("--name", "ck.example.test")
    assert len(rows) == 1 and rows[0]["has_private_key"]
    other.run("revoke", rows[0]["id"], check_rc=0)
    assert peb.cert_status(serial)["Status"] == "Revoked"
    ev = other.sql("SELECT detail FROM events WHERE type = 'acme.revoked'")
    assert json.loads(ev[0][0])["by"] == "certificate key"
    assert other.sql("SELECT COUNT(*) FROM acme_accounts") == [["0"]]


def test_responder_survives_idle_garbage_and_oversized(acme, peb):
    """While aclm answers challenges, hostile clients of its responder (an
    idle connection, garbage, an oversized request, a path outside the
    challenge directory) get 404s or are closed; issuing goes on, and the
    process exits cleanly (ASan builds check for leaks)."""
    import socket
    import time
    names = ["r%02d.example.test" % i for i in range(12)]
    from conftest import BIN
    p = subprocess.Popen([BIN, "--db", acme.db, "issue", "--json", "--each", "--concurrency", "2",
                          *names, "--standalone", "127.0.0.1:%d" % peb.http_port],
                         cwd=acme.tmp, env=acme.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    socks = []
    try:
        end = time.time() + 10
        while time.time() < end:
            try:
                s = socket.create_connection(("127.0.0.1", peb.http_port), timeout=1)
                break
            except OSError:
                time.sleep(0.01)
        socks.append(s)                                   # idle
        g = socket.create_connection(("127.0.0.1", peb.http_port), timeout=5)
        g.sendall(b"\x16\x03\x01garbage\r\n\r\n")
        assert g.recv(100).startswith(b"HTTP/1.1 404")
        g.close()
        t = socket.create_connection(("127.0.0.1", peb.http_port), timeout=5)
        t.sendall(b"GET /.well-known/acme-challenge/../../etc/passwd HTTP/1.1\r\n\r\n")
        assert t.recv(100).startswith(b"HTTP/1.1 404")
        t.close()
        o = socket.create_connection(("127.0.0.1", peb.http_port), timeout=5)
        o.sendall(b"GET /" + b"a" * 5000)
        data = o.recv(100)
        assert data == b"" or data.startswith(b"HTTP/1.1 404")
        o.close()
        out, err = p.communicate(timeout=60)
    finally:
        for s in socks:
            s.close()
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    res = json.loads(out)
    assert len(res) == 12 and all("error" not in r for r in res)
