"""aclm report and /api/v1/reports, /api/v1/compliance, /api/v1/policies:
CSV that Python's csv module reads back with the right columns, JSON, HTML
whose totals equal the JSON's and the API's, expiry buckets, algorithm
counts, PQ readiness of scanned endpoints, roles; on SQLite and PostgreSQL."""

import csv
import html.parser
import io
import json
import os
import time

import pytest

import test_pq
from test_policy import DAY, MiniPKI, build_pki
from test_server import Server, make_users

INVENTORY_COLS = ["id", "fingerprint", "subject", "subject_cn", "issuer", "issuer_cn", "serial",
                  "key", "signature_algorithm", "not_before", "not_after", "days_left", "status",
                  "is_ca", "sans", "has_private_key", "first_seen", "last_seen"]
EXPIRY_COLS = ["id", "fingerprint", "subject_cn", "issuer_cn", "is_ca", "sans", "not_after",
               "days_left", "bucket"]
KINDS = ["inventory", "expiry", "compliance", "algorithms", "pq-readiness"]


@pytest.fixture(scope="module")
def mini_pki(tmp_path_factory):
    return build_pki(tmp_path_factory.mktemp("report-pki"))


@pytest.fixture(scope="module")
def expiry_pki(tmp_path_factory):
    """Leaves in each expiry bucket, 12 hours from any boundary."""
    now = int(time.time())
    p = MiniPKI(tmp_path_factory.mktemp("expiry-pki"))
    for cn, days in [("gone.example", -3), ("d3.example", 3), ("d20.example", 20),
                     ("d60.example", 60), ("d200.example", 200), ("d250.example", 250)]:
        p.key(cn, "p256")
        p.leaf(cn, cn, [cn], now - 100 * DAY, now + days * DAY + DAY // 2)
    return p


class Totals(html.parser.HTMLParser):
    """data-key -> number of an HTML report's summary; rows of its table."""

    def __init__(self):
        super().__init__()
        self.totals, self.rows, self.key, self.in_row, self.styles = {}, 0, None, False, ""
        self.in_style = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "td" and "data-key" in a:
            self.key = a["data-key"]
        if tag == "tr" and self.in_tbody:
            self.rows += 1
        if tag == "tbody":
            self.in_tbody = True
        if tag == "style":
            self.in_style = True
        assert tag != "script" and "src" not in a and "href" not in a, (tag, a)

    in_tbody = False

    def handle_endtag(self, tag):
        if tag == "tbody":
            self.in_tbody = False
        if tag == "style":
            self.in_style = False

    def handle_data(self, data):
        if self.key is not None:
            self.totals[self.key] = int(data)
            self.key = None
        if self.in_style:
            self.styles += data


def parse_html(text):
    t = Totals()
    t.feed(text)
    t.close()
    return t


def report(aclm, kind, fmt, *extra):
    rc, out, err = aclm("report", kind, "--format", fmt, *extra)
    assert rc == 0, err
    return out


def test_inventory_csv(aclm, mini_pki, tmp_path):
    aclm.import_json(os.path.join(mini_pki.d, "out"))
    listed = {r["fingerprint"]: r for r in aclm.list()}
    out = tmp_path / "inv.csv"
    aclm("report", "inventory", "--format", "csv", "--out", out, check_rc=0)
    raw = out.read_bytes()
    assert b"\r\n" in raw                           # RFC 4180 line ends
    rows = list(csv.reader(io.StringIO(raw.decode(), newline="")))
    assert rows[0] == INVENTORY_COLS
    body = [dict(zip(rows[0], r)) for r in rows[1:]]
    assert all(len(r) == len(INVENTORY_COLS) for r in rows)
    assert {r["fingerprint"] for r in body} == set(listed)
    www = [r for r in body if r["subject_cn"] == "www.example.com"][0]
    # a field with a comma comes back whole
    assert www["sans"] == "DNS:www.example.com,DNS:example.com"
    assert www["key"] == "ECDSA P-256" and www["status"] == "valid" and www["is_ca"] == "false"
    ca = [r for r in body if r["subject_cn"] == "Policy Test CA"][0]
    assert ca["is_ca"] == "true"
    # a name that starts like a formula is defused, and still parses
    wild = [r for r in body if r["subject_cn"] == "*.*.example.com"][0]
    assert wild["sans"] == "DNS:*.*.example.com"
    small = [r for r in body if r["subject_cn"] == "old.example.com"][0]
    assert small["key"] == "RSA 1024"
    # the same as JSON
    doc = json.loads(report(aclm, "inventory", "json"))
    assert doc["columns"] == INVENTORY_COLS
    assert doc["summary"]["total"] == len(body) == 12
    assert doc["summary"]["ca"] == 1 and doc["summary"]["leaf"] == 11
    assert {r["fingerprint"] for r in doc["rows"]} == set(listed)


def test_expiry_buckets(aclm, expiry_pki):
    aclm.import_json(os.path.join(expiry_pki.d, "out"))
    rows = list(csv.DictReader(io.StringIO(report(aclm, "expiry", "csv"), newline="")))
    assert list(rows[0].keys()) == EXPIRY_COLS
    got = {r["subject_cn"]: r["bucket"] for r in rows}
    assert got == {"gone.example": "expired", "d3.example": "7d", "d20.example": "30d",
                   "d60.example": "90d", "d200.example": "later", "d250.example": "later",
                   "Policy Test CA": "later"}
    # soonest first
    assert [r["subject_cn"] for r in rows][:3] == ["gone.example", "d3.example", "d20.example"]
    assert [int(r["days_left"]) for r in rows][:2] == [-3, 3]
    doc = json.loads(report(aclm, "expiry", "json"))
    assert doc["summary"] == {"total": 7, "expired": 1, "7d": 1, "30d": 1, "90d": 1, "later": 3}
    page = parse_html(report(aclm, "expiry", "html"))
    assert page.totals == doc["summary"]
    assert page.rows == 7
    assert "@media print" in page.styles


def test_every_report_html_matches_json(aclm, mini_pki):
    aclm.import_json(os.path.join(mini_pki.d, "out"))
    for kind in KINDS:
        doc = json.loads(report(aclm, kind, "json"))
        page = parse_html(report(aclm, kind, "html"))
        assert page.totals == doc["summary"], kind
        assert page.rows == len(doc["rows"]), kind
        rows = list(csv.reader(io.StringIO(report(aclm, kind, "csv"), newline="")))
        assert rows[0] == doc["columns"], kind
        assert len(rows) - 1 == len(doc["rows"]), kind
    alg = json.loads(report(aclm, "algorithms", "json"))
    counts = {(r["family"], r["detail"]): r["certificates"] for r in alg["rows"]}
    assert counts == {("RSA", "1024"): 1, ("RSA", "2048"): 1, ("ECDSA", "P-256"): 9,
                      ("Ed25519", ""): 1}
    assert alg["summary"]["ecdsa"] == 9 and alg["summary"]["rsa_1024"] == 1
    comp = json.loads(report(aclm, "compliance", "json"))
    check = aclm.json("policy", "check", "--json", "--all", check_rc=1)
    assert comp["policy"] == "cabf-baseline"
    assert comp["summary"]["certificates_violating"] == check["summary"]["certificates"]["violating"]
    assert comp["summary"]["rule_key-size"] == 1
    by_label = {r["label"]: r for r in comp["rows"]}
    assert by_label["old.example.com"]["status"] == "violating"
    assert by_label["old.example.com"]["rules"] == "key-size"
    assert by_label["www.example.com"]["status"] == "compliant"


def test_pq_readiness(aclm, mini_pki):
    cert, key = mini_pki.certs["www.example.com"][0], mini_pki.keys["good"]
    pq = test_pq.Server(cert, key, "X25519MLKEM768:X25519")
    plain = test_pq.Server(cert, key, "X25519", with_provider=False)
    try:
        aclm("scan", "--no-progress", "127.0.0.1:%d" % pq.port, "127.0.0.1:%d" % plain.port,
             check_rc=0)
    finally:
        pq.stop()
        plain.stop()
    doc = json.loads(report(aclm, "pq-readiness", "json"))
    classes = {r["endpoint"]: r["class"] for r in doc["rows"]}
    assert classes == {"127.0.0.1:%d" % pq.port: "X25519MLKEM768",
                       "127.0.0.1:%d" % plain.port: "none"}
    assert doc["summary"] == {"total": 2, "x25519mlkem768": 1, "curvesm2mlkem768": 0,
                              "both": 0, "none": 1, "unknown": 0}
    assert parse_html(report(aclm, "pq-readiness", "html")).totals == doc["summary"]


def test_report_usage(aclm_sqlite, tmp_path):
    assert aclm_sqlite("report")[0] == 2
    rc, out, err = aclm_sqlite("report", "nope")
    assert rc == 2 and "unknown report 'nope'" in err
    assert aclm_sqlite("report", "expiry", "--format", "pdf")[0] == 2
    assert aclm_sqlite("report", "expiry", "--policy", "x")[0] == 2
    rc, out, err = aclm_sqlite("report", "expiry", "--out", tmp_path / "no" / "such" / "f")
    assert rc == 1 and "no/such/f" in err


# --------------------------------------------------------------------- the API

def api_routes(pq_kind="expiry"):
    return [
        ("GET", "/api/v1/policies", None, "auditor"),
        ("GET", "/api/v1/policies/cabf-baseline", None, "auditor"),
        ("GET", "/api/v1/compliance", None, "auditor"),
        ("GET", "/api/v1/reports/%s?format=csv" % pq_kind, None, "auditor"),
        ("POST", "/api/v1/policies", {"name": "api-pol", "rules": {"wildcards": "deny"}},
         "admin"),
        ("POST", "/api/v1/policies/api-pol/default", None, "admin"),
        ("POST", "/api/v1/policies/cabf-baseline/default", None, "admin"),
        ("DELETE", "/api/v1/policies/api-pol", None, "admin"),
    ]


ROLES = ["viewer", "auditor", "operator", "admin"]


def test_api_reports_and_roles(aclm, mini_pki):
    late = mini_pki.certs["old.example.com"][0]
    out = os.path.join(mini_pki.d, "out")
    aclm.import_json(*[os.path.join(out, f) for f in sorted(os.listdir(out))
                       if os.path.join(out, f) != late])
    srv = Server(aclm)
    try:
        who = make_users(srv)
        tok = {r: who[r]["token"] for r in ROLES}
        # roles: each route refused below its role, allowed from it up
        for method, path, body, need in api_routes():
            for role in ROLES:
                st, resp, _ = srv.request(method, path, body, token=tok[role])
                if ROLES.index(role) >= ROLES.index(need):
                    assert st in (200, 201, 409), (method, path, role, st, resp)
                else:
                    assert st == 403, (method, path, role, st, resp)
            assert srv.request(method, path, body)[0] == 401
        # the same reports as the CLI; HTML totals equal the API's JSON
        for kind in KINDS:
            st, doc, r = srv.request("GET", "/api/v1/reports/%s?format=json" % kind,
                                     token=tok["auditor"])
            assert st == 200 and r.getheader("Content-Type") == "application/json"
            cli = json.loads(report(aclm, kind, "json"))
            assert doc["summary"] == cli["summary"], kind
            assert doc["rows"] == cli["rows"] or kind in ("inventory", "expiry"), kind
            st, page, r = srv.request("GET", "/api/v1/reports/%s?format=html" % kind,
                                      token=tok["auditor"])
            assert st == 200 and r.getheader("Content-Type").startswith("text/html")
            assert "default-src 'none'" in r.getheader("Content-Security-Policy")
            assert parse_html(page.decode()).totals == doc["summary"], kind
            st, data, r = srv.request("GET", "/api/v1/reports/%s?format=csv" % kind,
                                      token=tok["auditor"])
            assert st == 200 and r.getheader("Content-Type").startswith("text/csv")
            assert "attachment" in r.getheader("Content-Disposition")
            rows = list(csv.reader(io.StringIO(data.decode(), newline="")))
            assert rows[0] == doc["columns"] and len(rows) - 1 == len(doc["rows"])
        st, page, _ = srv.request("GET", "/api/v1/reports/algorithms?format=html&lang=zh",
                                  token=tok["auditor"])
        assert st == 200 and '<html lang="zh-CN">' in page.decode()
        st, doc, _ = srv.request("GET", "/api/v1/reports/algorithms?format=html&lang=xx",
                                 token=tok["auditor"])
        assert st == 400 and "xx" in doc["detail"]
        # compliance is cached, but a new certificate shows at once
        st, doc, _ = srv.request("GET", "/api/v1/compliance", token=tok["auditor"])
        assert doc["summary"]["certificates"] == {"total": 11, "compliant": 5, "violating": 6}
        st, doc, _ = srv.request("POST", "/api/v1/certificates", open(late, "rb").read(),
                                 token=tok["operator"])
        assert st == 201, doc
        # compliance: the summary of `aclm policy check`, paged items
        check = aclm.json("policy", "check", "--json", "--all", check_rc=1)
        st, doc, _ = srv.request("GET", "/api/v1/compliance?violating=1&limit=2",
                                 token=tok["auditor"])
        assert st == 200, doc
        assert doc["summary"] == check["summary"]
        assert len(doc["items"]) == 2 and doc["total_items"] == 7
        assert all(not i["compliant"] for i in doc["items"])
        st, doc, _ = srv.request("GET", "/api/v1/compliance?offset=2&limit=2",
                                 token=tok["auditor"])
        assert [i["label"] for i in doc["items"]] == [i["label"] for i in check["items"][2:4]]
        # the list behind a figure: one rule, one kind
        st, doc, _ = srv.request("GET", "/api/v1/compliance?rule=one-site-one-key",
                                 token=tok["auditor"])
        assert sorted(i["label"] for i in doc["items"]) == ["a.example.com", "b.example.com"]
        assert doc["total_items"] == doc["summary"]["by_rule"]["one-site-one-key"] == 2
        st, doc, _ = srv.request("GET", "/api/v1/compliance?kind=site", token=tok["auditor"])
        assert st == 200 and doc["items"] == []
        st, doc, _ = srv.request("GET", "/api/v1/compliance?rule=nope", token=tok["auditor"])
        assert st == 400
        st, doc, _ = srv.request("GET", "/api/v1/compliance?kind=nope", token=tok["auditor"])
        assert st == 400
        # a stored policy through the API, then used by the compliance view
        st, doc, _ = srv.request("POST", "/api/v1/policies?default=1",
                                 {"name": "nowild", "rules": {"wildcards": "deny"}},
                                 session=who["admin"]["session"])
        assert st == 201 and doc["default"] is True, doc
        st, doc, _ = srv.request("GET", "/api/v1/compliance", token=tok["auditor"])
        assert doc["policy"] == "nowild"
        assert doc["summary"]["certificates"]["violating"] == 1       # the wildcard
        st, doc, _ = srv.request("GET", "/api/v1/policies", token=tok["auditor"])
        assert [(p["name"], p["default"]) for p in doc["items"]] == [("cabf-baseline", False),
                                                                    ("nowild", True)]
        # bad input: named, never a crash
        st, doc, _ = srv.request("POST", "/api/v1/policies", {"name": "x", "rules": {"bogus": 1}},
                                 token=tok["admin"])
        assert st == 400 and "rules.bogus" in doc["detail"]
        st, doc, _ = srv.request("POST", "/api/v1/policies", b"\x00\xff garbage",
                                 token=tok["admin"])
        assert st == 400
        st, doc, _ = srv.request("GET", "/api/v1/reports/nope", token=tok["auditor"])
        assert st == 404
        st, doc, _ = srv.request("GET", "/api/v1/reports/expiry?format=pdf", token=tok["auditor"])
        assert st == 400 and "pdf" in doc["detail"]
        st, doc, _ = srv.request("GET", "/api/v1/compliance?policy=missing", token=tok["auditor"])
        assert st == 404
        st, doc, _ = srv.request("GET", "/api/v1/compliance?limit=0", token=tok["auditor"])
        assert st == 400
        st, doc, _ = srv.request("DELETE", "/api/v1/policies/cabf-baseline", token=tok["admin"])
        assert st == 400
        # every change is audited with who made it
        st, doc, _ = srv.request("GET", "/api/v1/events?limit=1000", token=tok["auditor"])
        added = [e for e in doc["items"] if e["type"] == "policy.added" and e["subject"] == "nowild"]
        assert added and added[0]["detail"]["actor"].startswith("user:admin")
    finally:
        rc, out, err = srv.stop()
        assert "runtime error" not in err and "AddressSanitizer" not in err, err


class Receiver:
    """A webhook endpoint on loopback that keeps what it is sent."""

    def __init__(self):
        import http.server
        import threading
        got = self.got = []

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = http.server.HTTPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


def test_report_sent_through_alert_channel(aclm, expiry_pki):
    aclm.import_json(os.path.join(expiry_pki.d, "out"))
    rx = Receiver()
    try:
        aclm("alert", "channel", "add", "ops", "--kind", "webhook",
             "--url", "http://127.0.0.1:%d/hook" % rx.port, check_rc=0)
        rc, out, err = aclm("report", "expiry", "--send", "ops", "--every", "7d")
        assert rc == 0, err
        assert len(rx.got) == 1
        msg = rx.got[0]
        assert msg["subject"].startswith("aclm expiry report ")
        text = msg["text"]
        assert "Certificate expiry" in text
        for line in ["expired                      1", "7d                           1",
                     "later                        3"]:
            assert line in text, text
        assert "subject_cn=gone.example" in text and "bucket=expired" in text
        # a weekly schedule run daily: the second run this week sends nothing
        rc, out, err = aclm("report", "expiry", "--send", "ops", "--every", "7d")
        assert rc == 0 and "already" in err
        assert len(rx.got) == 1
        # without --every it goes again; an unknown channel is named
        aclm("report", "algorithms", "--send", "ops", check_rc=0)
        assert len(rx.got) == 2 and "Key algorithms" in rx.got[1]["text"]
        rc, out, err = aclm("report", "expiry", "--send", "nope")
        assert rc == 1 and "nope" in err
        assert aclm("report", "expiry", "--every", "7d")[0] == 2
    finally:
        rx.stop()


def test_policy_violations_alerted(aclm, mini_pki):
    """aclm policy check --alert: one digest when the set of violations
    changes, none while it stays the same."""
    out = os.path.join(mini_pki.d, "out")
    late = mini_pki.certs["old.example.com"][0]
    aclm.import_json(*[os.path.join(out, f) for f in sorted(os.listdir(out))
                       if os.path.join(out, f) != late])
    rx = Receiver()
    try:
        aclm("alert", "channel", "add", "sec", "--kind", "webhook",
             "--url", "http://127.0.0.1:%d/hook" % rx.port, check_rc=0)
        rc, _, err = aclm("policy", "check", "--alert", "sec")
        assert rc == 1, err                        # violations: still exit 1
        assert len(rx.got) == 1
        msg = rx.got[0]
        assert msg["subject"] == "aclm: 6 subjects violate policy cabf-baseline"
        assert "late.example.com\n  max-validity: valid for 398 days" in msg["text"]
        assert "old.example.com" not in msg["text"]
        # the same set again: nothing new
        rc, _, err = aclm("policy", "check", "--alert", "sec")
        assert rc == 1 and "alerted already" in err and len(rx.got) == 1
        # a new violation changes the set: a new alert
        aclm.import_json(late)
        aclm("policy", "check", "--alert", "sec", check_rc=1)
        assert len(rx.got) == 2
        assert rx.got[1]["subject"] == "aclm: 7 subjects violate policy cabf-baseline"
        assert "old.example.com\n  key-size: RSA key of 1024 bits" in rx.got[1]["text"]
        assert aclm("policy", "check", "--every", "1d")[0] == 2
    finally:
        rx.stop()


def test_hostile_names_stay_text(aclm, tmp_path):
    """Names come from strangers (scanned certificates): markup stays text in
    HTML, formulas are defused in CSV, quotes and commas survive."""
    now = int(time.time())
    p = MiniPKI(tmp_path / "pki")
    names = {"img": "<img src=x onerror=alert(1)>", "formula": "=SUM(1)", "quote": 'a,"b" c'}
    for key, cn in names.items():
        p.key(key, "p256")
        p.leaf(cn, key, [key + ".example.com"], now - DAY, now + 30 * DAY)
    aclm.import_json(os.path.join(p.d, "out"))
    page = report(aclm, "inventory", "html")
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    parse_html(page)                               # no script, src or href anywhere
    rows = {r["subject_cn"]: r for r in
            csv.DictReader(io.StringIO(report(aclm, "inventory", "csv"), newline=""))}
    assert "'=SUM(1)" in rows and "=SUM(1)" not in rows
    assert 'a,"b" c' in rows and names["img"] in rows
    doc = json.loads(report(aclm, "inventory", "json"))
    assert {r["subject_cn"] for r in doc["rows"]} >= set(names.values())


def test_html_report_in_chinese(aclm, expiry_pki):
    aclm.import_json(os.path.join(expiry_pki.d, "out"))
    page = report(aclm, "expiry", "html", "--lang", "zh")
    assert '<html lang="zh-CN">' in page and "<h1>证书到期</h1>" in page
    assert "<th>7 天内到期</th>" in page and "明细（7 行）" in page
    doc = json.loads(report(aclm, "expiry", "json"))
    assert parse_html(page).totals == doc["summary"]
    assert aclm("report", "expiry", "--lang", "fr")[0] == 2


def test_html_report_prints_to_pdf(aclm_sqlite, expiry_pki, tmp_path):
    """Chromium prints the HTML report to PDF with its print stylesheet
    (A4 landscape from @page)."""
    import re
    import subprocess
    aclm_sqlite.import_json(os.path.join(expiry_pki.d, "out"))
    html = tmp_path / "expiry.html"
    pdf = tmp_path / "expiry.pdf"
    aclm_sqlite("report", "expiry", "--format", "html", "--out", html, check_rc=0)
    p = subprocess.run(["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu",
                        "--disable-background-networking", "--disable-component-update",
                        "--disable-sync", "--user-data-dir=%s" % (tmp_path / "chromium"),
                        "--no-pdf-header-footer", "--print-to-pdf=%s" % pdf, html.as_uri()],
                       capture_output=True, timeout=90)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    boxes = re.findall(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", data)
    assert boxes, "no page in the PDF"
    for w, h in boxes:
        assert abs(float(w) - 841.9) < 2 and abs(float(h) - 595.3) < 2, (w, h)
