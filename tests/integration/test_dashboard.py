"""The web dashboard of aclm server: its files (caching, CSP, gzip), the
overview API against the list API, and the whole UI in Debian's Chromium
driven by playwright-core (tests/browser/dashboard.mjs): log in, the
overview's numbers, filters, an import through the UI, roles, Chinese and
English, no console errors.  Screenshots of every page are kept under the
test's tmp directory (dashboard-shots/)."""

import gzip
import json
import os
import re
import shutil
import subprocess
import urllib.parse

import pytest

from test_server import ADMIN_PW, Server

HERE = os.path.dirname(os.path.abspath(__file__))
BROWSER_DIR = os.path.join(HERE, "..", "browser")
CHROMIUM = "/usr/bin/chromium"


def need_browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (scripts/install-deps --test)")
    if not os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "playwright-core")) or \
            shutil.which("node") is None:
        pytest.skip("node or playwright-core missing (scripts/install-deps --test)")


@pytest.fixture
def server(aclm_sqlite, pki):
    aclm_sqlite.run("import", pki.tree, check_rc=0)
    s = Server(aclm_sqlite)
    yield s
    rc, out, err = s.stop()
    assert "runtime error" not in err and "AddressSanitizer" not in err, err


@pytest.fixture
def server_both(aclm, pki):
    """The server on SQLite and on PostgreSQL, with the test PKI imported."""
    aclm.run("import", pki.tree, check_rc=0)
    s = Server(aclm)
    yield s
    rc, out, err = s.stop()
    assert "runtime error" not in err and "AddressSanitizer" not in err, err


def index_asset_paths(html):
    return re.findall(r'(?:src|href)="(/assets/[^"]+)"', html)


def test_static_files_headers_and_caching(server):
    st, body, r = server.request("GET", "/")
    assert st == 200
    html = body.decode()
    if "was not built into this binary" in html:
        pytest.fail("the dashboard was not built into aclm (node/npm missing at build time)")
    assert r.getheader("Content-Type") == "text/html; charset=utf-8"
    csp = r.getheader("Content-Security-Policy")
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe" not in csp
    assert "frame-ancestors 'none'" in csp
    assert r.getheader("X-Content-Type-Options") == "nosniff"
    assert r.getheader("Cache-Control") == "no-cache"
    etag = r.getheader("ETag")
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    # no inline script: every script is a file of /assets
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    # revalidation
    for inm in (etag, "W/" + etag, '"other", ' + etag, "*"):
        st, body, r = server.request("GET", "/", headers={"If-None-Match": inm})
        assert st == 304 and body == b"" and r.getheader("ETag") == etag, inm
    st, body, r = server.request("GET", "/", headers={"If-None-Match": '"other"'})
    assert st == 200 and body
    assets = index_asset_paths(html)
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
    total_gz = 0
    for a in assets:
        st, plain, r = server.request("GET", a)
        assert st == 200
        assert "immutable" in r.getheader("Cache-Control")
        assert r.getheader("Content-Type").startswith("text/javascript" if a.endswith(".js") else "text/css")
        st, packed, r = server.request("GET", a, headers={"Accept-Encoding": "gzip, deflate"})
        assert st == 200
        if len(plain) < 1024:      # too small for gzip to pay: sent as is
            assert r.getheader("Content-Encoding") is None and packed == plain
            total_gz += len(plain)
            continue
        assert r.getheader("Content-Encoding") == "gzip"
        assert r.getheader("Vary") == "Accept-Encoding"
        assert gzip.decompress(packed) == plain
        if a.endswith(".js"):
            total_gz += len(packed)
        # gzip;q=0 refuses it
        st, again, r = server.request("GET", a, headers={"Accept-Encoding": "gzip;q=0"})
        assert r.getheader("Content-Encoding") is None and again == plain
    # the budget: initial JavaScript at most 400 KB gzip
    assert 0 < total_gz <= 400 * 1024, total_gz
    st, body, _ = server.request("GET", "/assets/nothing-here.js")
    assert st == 404
    # HEAD has the headers and no body
    st, body, r = server.request("HEAD", assets[0])
    assert st == 200 and body == b"" and r.getheader("ETag")
    # the API is not shadowed by the dashboard's routes
    st, body, _ = server.request("GET", "/api/v1/certificates")
    assert st == 401


def test_overview_matches_the_list_api(server_both, pki):
    server = server_both
    admin = server.login("admin", ADMIN_PW)
    st, o, _ = server.request("GET", "/api/v1/overview", session=admin)
    assert st == 200, o

    def total(q):
        st, body, _ = server.request("GET", "/api/v1/certificates?limit=1" + q, session=admin)
        assert st == 200, body
        return body["total"]

    assert o["total"] == total("") == len(pki.tree_certs())
    assert o["expired"] == total("&expired") == 1
    assert o["expiring_7d"] == total("&expiring=7d") == 1      # exp5
    assert o["expiring_30d"] == total("&expiring=30d") == 2    # exp5, exp20
    assert o["ca"] == total("&ca") and o["leaf"] == total("&leaf")
    assert sum(k["count"] for k in o["keys"]) == o["total"]
    for k in o["keys"]:
        if k["key"] != "unknown":
            assert total("&key_type=" + k["key"]) == k["count"], k
    assert sum(i["count"] for i in o["issuers"]) + o["other_issuers"] == o["total"]
    inter = [i for i in o["issuers"] if i["issuer_cn"] == "aclm Test Intermediate CA"]
    assert inter and inter[0]["count"] == total("&issuer=" + urllib.parse.quote("aclm Test Intermediate CA"))
    # per-day expiries: every unexpired certificate within a year, on its UTC day
    days = dict(o["expiry_by_day"]["counts"])
    st, body, _ = server.request("GET", "/api/v1/certificates?limit=1000", session=admin)
    want = {}
    for c in body["items"]:
        if c["days_left"] >= 0 and c["not_after"][:10] <= max(days):
            want[c["not_after"][:10]] = want.get(c["not_after"][:10], 0) + 1
    assert days == want
    # the answer is reused only while the inventory is unchanged: an import shows at once
    with open(pki.cert_path("extra"), "rb") as f:
        st, body, _ = server.request("POST", "/api/v1/certificates", f.read(), session=admin)
    assert st == 201, body
    st, o2, _ = server.request("GET", "/api/v1/overview", session=admin)
    assert o2["total"] == o["total"] + 1 == total("")
    assert o2["leaf"] == o["leaf"] + 1
    # roles: a viewer may read it, no one anonymous
    st, _, _ = server.request("GET", "/api/v1/overview")
    assert st == 401


def test_dashboard_in_chromium(server, pki, tmp_path):
    need_browser()
    shots = os.path.join(str(tmp_path), "dashboard-shots")
    url = "https://127.0.0.1:%d/" % server.port
    cmd = ["node", os.path.join(BROWSER_DIR, "dashboard.mjs"), "--url", url,
           "--admin-password", ADMIN_PW, "--import", pki.cert_path("extra"),
           "--import-name", "extra.example.test", "--shots", shots]
    p = subprocess.run(cmd, cwd=BROWSER_DIR, capture_output=True, text=True, timeout=240)
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    assert lines, "no result from dashboard.mjs:\n%s\n%s" % (p.stdout, p.stderr)
    result = json.loads(lines[-1])
    assert p.returncode == 0 and result["ok"], json.dumps(result, indent=1) + p.stderr
    # the numbers the browser showed are the server's
    admin = server.login("admin", ADMIN_PW)
    st, o, _ = server.request("GET", "/api/v1/overview", session=admin)
    f = result["figures"]
    # the overview was read before the import through the UI added one
    assert f["total"] == o["total"] - 1 and f["expired"] == o["expired"]
    assert f["expiring_7d"] == o["expiring_7d"]
    # the scan started in the UI found the server itself; the PQ figure counts it
    assert result["scanned"] == "127.0.0.1:%d" % server.port
    assert result["pq"].endswith("/1"), result["pq"]
    # its self-signed certificate is served but not managed: one ghost
    assert result["ghost"] == 1, result
    # the import went through the API under the admin's name, into the audit log
    st, c, _ = server.request("GET", "/api/v1/certificates/%d" % result["imported_id"], session=admin)
    assert st == 200 and "DNS:extra.example.test" in c["sans"]
    # a screenshot of every page
    for name in ("login", "overview", "certificates", "certificate-detail", "audit", "users",
                 "endpoints", "managed", "alerts", "policies", "settings", "overview-dark",
                 "overview-zh", "viewer-certificates", "viewer-users"):
        path = os.path.join(shots, name + ".png")
        assert os.path.getsize(path) > 5000, path
    print("dashboard: %s; screenshots in %s" % (json.dumps(result), shots))


def test_managed_certificate_from_pebble_in_chromium(aclm_sqlite, tmp_path):
    """Create a managed certificate in the dashboard; Pebble issues it; it
    shows with its certificate and that certificate's expiry."""
    need_browser()
    if shutil.which("pebble") is None:
        pytest.skip("pebble is not installed (scripts/install-deps --test)")
    from acme_pebble import Pebble, pebble_ca, write_config
    peb = Pebble(str(tmp_path / "pebble")).start()
    try:
        path = write_config(aclm_sqlite, [pebble_ca(peb)], "scheduler:\n  interval: 1s\n")
        with open(path) as f:
            s = Server(aclm_sqlite, config=f.read())
        try:
            shots = os.path.join(str(tmp_path), "dashboard-shots")
            p = subprocess.run(
                ["node", os.path.join(BROWSER_DIR, "managed.mjs"),
                 "--url", "https://127.0.0.1:%d/" % s.port, "--admin-password", ADMIN_PW,
                 "--name", "dash.example.test", "--ca", "pebble",
                 "--standalone", "127.0.0.1:%d" % peb.http_port, "--shots", shots],
                cwd=BROWSER_DIR, capture_output=True, text=True, timeout=300)
            lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
            assert lines, p.stdout + p.stderr
            result = json.loads(lines[-1])
            assert p.returncode == 0 and result["ok"], json.dumps(result, indent=1) + p.stderr
            admin = s.login("admin", ADMIN_PW)
            st, man, _ = s.request("GET", "/api/v1/managed", session=admin)
            assert [m["current_cert_id"] for m in man["items"]] == [result["cert_id"]]
            st, c, _ = s.request("GET", "/api/v1/certificates/%d" % result["cert_id"], session=admin)
            assert "DNS:dash.example.test" in c["sans"] and c["not_after"] == result["not_after"]
            assert c["days_left"] > 0
            assert os.path.getsize(os.path.join(shots, "managed-issued.png")) > 5000
        finally:
            rc, out, err = s.stop()
            assert "runtime error" not in err and "AddressSanitizer" not in err, err
    finally:
        peb.stop()
