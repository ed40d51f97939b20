"""Revocation from the dashboard: POST /api/v1/certificates/:id/revoke.

A certificate of aclm's built-in CA is revoked in the store at once (the
CRL the server serves, `aclm ca list --revoked` and the certificate page
say so); one that aclm's ACME client ordered is revoked at its CA by a job
(Pebble says Revoked); anything else is refused with the reason.  Roles
as the other write actions; bad reasons named; a second revocation is a
conflict; every revocation is in the audit log.  The dashboard's Revoke
button in Chromium: tests/browser/revoke.mjs."""

import json
import os
import shutil
import subprocess
import time

import pytest

from test_ca import make_csr, pem_blocks, sh
from test_dashboard import BROWSER_DIR, need_browser
from test_server import ADMIN_PW, PW, Server, make_users


def issue_builtin(aclm, tmp_path, name):
    """A leaf of the built-in CA's ECDSA hierarchy; (cert id, serial)."""
    csr = make_csr(tmp_path, "ec", [name])
    chain = os.path.join(str(tmp_path), name + ".pem")
    aclm("ca", "issue", "--csr", csr, "--out", chain, check_rc=0)
    leaf = os.path.join(str(tmp_path), name + ".leaf.pem")
    with open(leaf, "w") as f:
        f.write(pem_blocks(chain)[0])
    serial = sh("openssl", "x509", "-in", leaf, "-noout", "-serial").stdout.decode().split("=")[1].strip()
    rows = [r for r in aclm.list("--name", name) if r["serial"] == serial]
    assert len(rows) == 1, rows
    return rows[0]["id"], serial


def stop(s):
    rc, out, err = s.stop()
    assert "runtime error" not in err and "AddressSanitizer" not in err, err


@pytest.fixture
def ca_server(aclm, pki, tmp_path):
    """A built-in CA with one issued leaf, a third-party certificate
    imported, and the server with a user of every role."""
    cas = aclm.json("ca", "init", "--json")
    cid, serial = issue_builtin(aclm, tmp_path, "gone.corp.internal")
    aclm.run("import", pki.cert_path("extra"), check_rc=0)
    foreign = aclm.list("--name", "extra.example.test")[0]["id"]
    s = Server(aclm)
    who = make_users(s)
    yield {"s": s, "who": who, "cert": cid, "serial": serial, "foreign": foreign,
           "ca": cas[0]["ca"], "aclm": aclm}
    stop(s)


def revoke(s, cert, body, tok):
    return s.request("POST", "/api/v1/certificates/%s/revoke" % cert, body, token=tok)


def test_revoke_builtin_ca_certificate(ca_server, tmp_path):
    s, who, cid, serial = ca_server["s"], ca_server["who"], ca_server["cert"], ca_server["serial"]
    aclm = ca_server["aclm"]
    # roles: viewer and auditor may not; nobody anonymous
    for role in ("viewer", "auditor"):
        st, body, _ = revoke(s, cid, {"reason": "keyCompromise"}, who[role]["token"])
        assert st == 403, (role, st, body)
    st, _, _ = s.request("POST", "/api/v1/certificates/%d/revoke" % cid, {"reason": "superseded"})
    assert st == 401
    op = who["operator"]["token"]
    # bad input: the field is named, nothing revoked
    for body, want in (({"reason": "bored"}, "reason: 'bored' is not an RFC 5280 reason"),
                       ({}, "reason: required"),
                       ({"reason": 1}, "reason: required"),
                       ({"reason": "removeFromCRL"}, "reason: 'removeFromCRL'"),
                       ([1, 2], "want a JSON object"),
                       ("not json", "want a JSON object")):
        st, resp, _ = revoke(s, cid, body, op)
        assert st == 400 and want in resp["detail"], (body, st, resp)
    st, resp, _ = revoke(s, 999999, {"reason": "superseded"}, op)
    assert st == 404, resp
    assert aclm.json("ca", "list", "--revoked", "--json") == []
    st, c, _ = s.request("GET", "/api/v1/certificates/%d" % cid, token=op)
    assert c["revocation"] == {"by": "ca", "ca": ca_server["ca"], "revoked": False}

    # the operator revokes it: at once, in the store
    st, resp, _ = revoke(s, cid, {"reason": "keyCompromise"}, op)
    assert st == 200, resp
    assert resp["revoked"] is True and resp["by"] == "ca" and resp["serial"] == serial
    assert resp["reason"] == "keyCompromise"
    revoked = aclm.json("ca", "list", "--revoked", "--json")
    assert [r["serial"] for r in revoked] == [serial] and revoked[0]["reason"] == "keyCompromise"
    # the certificate page's data says so
    st, c, _ = s.request("GET", "/api/v1/certificates/%d" % cid, token=who["viewer"]["token"])
    assert c["revocation"]["revoked"] is True and c["revocation"]["reason"] == "keyCompromise"
    assert c["revocation"]["revoked_at"]
    # the CRL the server serves lists it
    st, crl, r = s.request("GET", "/ca/%s/crl/ecdsa" % ca_server["ca"])
    assert st == 200 and r.getheader("Content-Type") == "application/pkix-crl"
    p = subprocess.run(["openssl", "crl", "-inform", "DER", "-noout", "-text"], input=crl,
                       capture_output=True, check=True)
    text = p.stdout.decode()
    assert "Serial Number: " + serial in text and "Key Compromise" in text, text
    # a second time: a conflict that says when and why
    st, resp, _ = revoke(s, cid, {"reason": "superseded"}, who["admin"]["token"])
    assert st == 409 and "revoked already" in resp["detail"] and "keyCompromise" in resp["detail"], resp
    # the audit log: the request, and the revocation with who did it
    st, ev, _ = s.request("GET", "/api/v1/events?subject=" + c["fingerprint"],
                          token=who["auditor"]["token"])
    mine = [e for e in ev["items"] if e["type"] == "certificate.revoked"]
    assert len(mine) == 1 and mine[0]["detail"]["actor"].startswith("token:")
    assert mine[0]["detail"]["actor"].endswith("(operator1)") and mine[0]["detail"]["by"] == "ca"
    st, ev, _ = s.request("GET", "/api/v1/events?limit=1000", token=who["auditor"]["token"])
    reqs = [e for e in ev["items"] if e["type"] == "api.request" and
            e["detail"]["route"] == "/api/v1/certificates/:id/revoke"]
    assert sorted(e["detail"]["status"] for e in reqs) == sorted(
        [403, 403, 401, 400, 400, 400, 400, 400, 400, 404, 200, 409]), reqs
    assert aclm.run("audit", "verify")[0] == 0


def test_third_party_certificate_refused(ca_server):
    s, who = ca_server["s"], ca_server["who"]
    st, resp, _ = revoke(s, ca_server["foreign"], {"reason": "keyCompromise"},
                         who["admin"]["token"])
    assert st == 422 and resp["error"] == "not_revocable", resp
    assert "not issued by aclm's built-in CA nor ordered through aclm's ACME client" in resp["detail"]
    st, c, _ = s.request("GET", "/api/v1/certificates/%d" % ca_server["foreign"],
                         token=who["viewer"]["token"])
    assert c["revocation"] is None
    # the CA's own certificates are not its issued leaves either
    cas = [r for r in ca_server["aclm"].list("--ca") if r["subject"].endswith(",O=aclm")]
    assert len(cas) == 6, cas   # root and issuing CA of ECDSA, RSA, SM2
    for c in cas:
        st, resp, _ = revoke(s, c["id"], {"reason": "superseded"}, who["admin"]["token"])
        assert st == 422 and resp["error"] == "not_revocable", resp


def test_revoke_acme_certificate_at_pebble(aclm_sqlite, tmp_path):
    """A certificate aclm ordered from Pebble: the API queues a job, the job
    revokes at Pebble with the account key, the page data shows it."""
    if shutil.which("pebble") is None:
        pytest.skip("pebble is not installed (scripts/install-deps --test)")
    from acme_pebble import Pebble, pebble_ca, write_config
    peb = Pebble(str(tmp_path / "pebble")).start()
    try:
        path = write_config(aclm_sqlite, [pebble_ca(peb)], "scheduler:\n  interval: 1s\n")
        out = aclm_sqlite.json("issue", "--json", "acmerev.example.test", "--standalone",
                               "127.0.0.1:%d" % peb.http_port)
        cid = out[0]["cert_id"]
        serial = aclm_sqlite.json("show", "--json", cid)["serial"]
        assert peb.cert_status(serial)["Status"] == "Valid"
        with open(path) as f:
            s = Server(aclm_sqlite, config=f.read())
        try:
            who = make_users(s)
            tok = who["operator"]["token"]
            st, c, _ = s.request("GET", "/api/v1/certificates/%d" % cid, token=tok)
            assert c["revocation"] == {"by": "acme", "ca": "pebble", "revoked": False}
            # a CA-compromise reason is not the subscriber's to give
            st, resp, _ = revoke(s, cid, {"reason": "cACompromise"}, tok)
            assert st == 400 and "reason" in resp["detail"], resp
            st, resp, r = revoke(s, cid, {"reason": "superseded"}, tok)
            assert st == 202 and resp["by"] == "acme" and resp["ca"] == "pebble", resp
            assert r.getheader("Location") == "/api/v1/jobs/%d" % resp["job_id"]
            # asked again at once: one revocation at a time, no second job
            st, again, _ = revoke(s, cid, {"reason": "superseded"}, tok)
            assert st == 409 and ("under way" in again["detail"] or
                                  "revoked already" in again["detail"]), again
            deadline = time.time() + 90
            while time.time() < deadline:
                st, job, _ = s.request("GET", "/api/v1/jobs/%d" % resp["job_id"], token=tok)
                if job["state"] in ("done", "failed"):
                    break
                time.sleep(0.3)
            assert job["state"] == "done", job
            assert peb.cert_status(serial)["Status"] == "Revoked"
            st, jobs, _ = s.request("GET", "/api/v1/jobs", token=tok)
            assert [j["id"] for j in jobs["items"] if j["kind"] == "revoke"] == [resp["job_id"]]
            st, c, _ = s.request("GET", "/api/v1/certificates/%d" % cid, token=tok)
            assert c["revocation"]["revoked"] is True and c["revocation"]["reason"] == "superseded", c
            st, resp, _ = revoke(s, cid, {"reason": "superseded"}, tok)
            assert st == 409 and "revoked already" in resp["detail"], resp
            ev = aclm_sqlite.sql("SELECT detail FROM events WHERE type = 'acme.revoked'")
            assert json.loads(ev[0][0])["reason"] == 4
            ev = aclm_sqlite.sql("SELECT detail FROM events WHERE type = 'certificate.revoked'")
            d = json.loads(ev[0][0])
            assert d["by"] == "acme" and d["actor"].endswith("(operator1)"), d
        finally:
            stop(s)
    finally:
        peb.stop()


def revoke_in_browser(s, cid, tmp_path):
    """tests/browser/revoke.mjs against server s: a viewer, then an operator
    revoking certificate cid (reason superseded); its result."""
    make_users(s)
    shots = os.path.join(str(tmp_path), "dashboard-shots")
    p = subprocess.run(["node", os.path.join(BROWSER_DIR, "revoke.mjs"),
                        "--url", "https://127.0.0.1:%d/" % s.port, "--cert", str(cid),
                        "--operator", "operator1:" + PW, "--viewer", "viewer1:" + PW,
                        "--shots", shots],
                       cwd=BROWSER_DIR, capture_output=True, text=True, timeout=180)
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    assert lines, p.stdout + p.stderr
    result = json.loads(lines[-1])
    assert p.returncode == 0 and result["ok"], json.dumps(result, indent=1) + p.stderr
    for name in ("revoke-viewer", "revoke-dialog-zh", "revoke-dialog", "revoke-done"):
        assert os.path.getsize(os.path.join(shots, name + ".png")) > 5000, name
    return result


def test_revoke_in_chromium(aclm_sqlite, tmp_path):
    """The built-in CA's certificate: revoked at once, the page says so."""
    need_browser()
    aclm_sqlite.json("ca", "init", "--json")
    cid, serial = issue_builtin(aclm_sqlite, tmp_path, "ui.corp.internal")
    s = Server(aclm_sqlite)
    try:
        result = revoke_in_browser(s, cid, tmp_path)
        assert serial in result["result"] and "superseded" in result["result"]
        revoked = aclm_sqlite.json("ca", "list", "--revoked", "--json")
        assert [r["serial"] for r in revoked] == [serial] and revoked[0]["reason"] == "superseded"
    finally:
        stop(s)


def test_revoke_acme_in_chromium(aclm_sqlite, tmp_path):
    """An ACME certificate: the dialog follows the job until Pebble revoked it."""
    need_browser()
    if shutil.which("pebble") is None:
        pytest.skip("pebble is not installed (scripts/install-deps --test)")
    from acme_pebble import Pebble, pebble_ca, write_config
    peb = Pebble(str(tmp_path / "pebble")).start()
    try:
        path = write_config(aclm_sqlite, [pebble_ca(peb)], "scheduler:\n  interval: 1s\n")
        out = aclm_sqlite.json("issue", "--json", "uirev.example.test", "--standalone",
                               "127.0.0.1:%d" % peb.http_port)
        cid = out[0]["cert_id"]
        serial = aclm_sqlite.json("show", "--json", cid)["serial"]
        with open(path) as f:
            s = Server(aclm_sqlite, config=f.read())
        try:
            result = revoke_in_browser(s, cid, tmp_path)
            assert "ACME CA pebble" in result["result"] and "superseded" in result["result"]
            assert "at the ACME CA pebble" in result["state"]
            assert peb.cert_status(serial)["Status"] == "Revoked"
        finally:
            stop(s)
    finally:
        peb.stop()
