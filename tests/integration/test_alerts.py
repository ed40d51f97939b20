"""Alerts: rules over the inventory, delivered to real receivers on loopback
-- an SMTP server with STARTTLS (aiosmtpd) and HTTP receivers that check the
signatures and payloads of the webhook and the four chat robots; dedup,
re-notify, retries with backoff, errors in `aclm alert list`, the server's
timer, and the REST API; on SQLite and PostgreSQL."""

import base64
import concurrent.futures
import email
import email.policy
import hashlib
import hmac
import http.server
import json
import os
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse

import pytest

from test_server import ADMIN_PW, PW, Server, make_users
from helpers import free_port

DAY = 86400


def make_cert(tmp, name, days, ip=None):
    """A self-signed leaf (CA:FALSE) valid for `days`; (cert, key) paths."""
    cert = os.path.join(str(tmp), name + ".pem")
    key = os.path.join(str(tmp), name + ".key")
    san = "IP:%s" % ip if ip else "DNS:%s" % name
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", str(days), "-subj",
                    "/CN=%s" % name, "-addext", "subjectAltName=" + san, "-addext",
                    "basicConstraints=critical,CA:FALSE", "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=30)
    return cert, key


def fingerprint(cert):
    der = ssl.PEM_cert_to_DER_cert(open(cert).read())
    return hashlib.sha256(der).hexdigest()


def secret_file(tmp, name, value):
    path = os.path.join(str(tmp), name)
    with open(path, "w") as f:
        f.write(value + "\n")
    os.chmod(path, 0o600)
    return path


# ------------------------------------------------------------------ receivers

class Receiver:
    """An HTTP server on a loopback port that records every POST and answers
    with the next status of `statuses` (then 200)."""

    def __init__(self, statuses=None, replies=None, delay=0):
        self.requests = []
        self.delay = delay                     # seconds before answering
        self.error_body = b'{"error":"receiver says no"}'
        self.statuses = list(statuses or [])
        self.replies = dict(replies or {})     # path -> body of a 2xx answer
        self.cond = threading.Condition()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                u = urllib.parse.urlsplit(self.path)
                with outer.cond:
                    status = outer.statuses.pop(0) if outer.statuses else 200
                    outer.requests.append({
                        "path": u.path, "query": urllib.parse.parse_qs(u.query),
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body, "status": status, "at": time.time()})
                    outer.cond.notify_all()
                if outer.delay:
                    time.sleep(outer.delay)
                reply = outer.replies.get(u.path, b'{"ok":true}') if status < 400 \
                    else outer.error_body
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        class Httpd(http.server.ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

        self.httpd = Httpd(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path="/hook"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def delivered(self):
        """Requests answered with 2xx."""
        return [r for r in self.requests if r["status"] < 300]

    def wait(self, n, timeout=20):
        deadline = time.time() + timeout
        with self.cond:
            while len(self.requests) < n and time.time() < deadline:
                self.cond.wait(0.2)
        return len(self.requests) >= n

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


class Smtp:
    """aiosmtpd on a loopback port: STARTTLS with a certificate made here by
    the openssl command, AUTH required (after TLS) when a user is given."""

    def __init__(self, tmp, user=None, password=None, starttls=True):
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        self.cert, self.key = make_cert(tmp, "smtp-server", 2, ip="127.0.0.1")
        self.messages = []
        self.auth_attempts = []
        outer = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                outer.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                                       "content": envelope.content,
                                       "tls": session.ssl is not None})
                return "250 OK"

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (isinstance(auth_data, LoginPassword) and user is not None
                  and auth_data.login == user.encode() and auth_data.password == password.encode())
            outer.auth_attempts.append((mechanism, ok))
            return AuthResult(success=ok, handled=False)

        kw = {}
        if starttls:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(self.cert, self.key)
            kw.update(tls_context=ctx, require_starttls=True)
        if user is not None:
            kw.update(authenticator=authenticator, auth_required=True, auth_require_tls=True)
        self.port = free_port()
        self.ctl = Controller(Handler(), hostname="127.0.0.1", port=self.port, **kw)
        self.ctl.start()

    @property
    def url(self):
        return "smtp://127.0.0.1:%d" % self.port

    def stop(self):
        self.ctl.stop()


def alerts(aclm, *args, **kw):
    return aclm.json("alert", "list", "--json", "--limit", "0", *args, **kw)


def events(aclm, prefix="alert."):
    rc, out, err = aclm.run("audit", "export", check_rc=0)
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    return [r for r in rows if r["type"].startswith(prefix)]


def expiring(aclm, tmp, name="soon.example", days=5):
    cert, _ = make_cert(tmp, name, days)
    aclm.run("import", cert, check_rc=0)
    return cert


# ------------------------------------------------------------------- e-mail

def test_email_starttls_auth(aclm, tmp_path):
    cert = expiring(aclm, tmp_path)
    smtp = Smtp(tmp_path, user="aclm-sender", password="smtp pass 123")
    try:
        pw = secret_file(tmp_path, "smtp.pw", "smtp pass 123")
        aclm.run("alert", "channel", "add", "mail", "--kind", "email", "--url", smtp.url,
                 "--from", "aclm@example.test", "--to", "ops@example.test", "--to",
                 "sec@example.test", "--user", "aclm-sender", "--password-file", pw,
                 "--ca-file", smtp.cert, check_rc=0)
        aclm.run("alert", "rule", "add", "expiring", "--kind", "expiry", "--channel", "mail",
                 check_rc=0)
        rc, out, err = aclm.run("alert", "run", check_rc=0)
        assert "1 raised" in out and "1 sent" in out, out + err
        assert len(smtp.messages) == 1, (out, err)
        m = smtp.messages[0]
        assert m["tls"], "message was not sent over STARTTLS"
        assert m["from"] == "aclm@example.test"
        assert m["to"] == ["ops@example.test", "sec@example.test"]
        msg = email.message_from_bytes(m["content"], policy=email.policy.default)
        assert msg["Subject"].startswith("[aclm] certificate soon.example expires in 5 days"), \
            msg["Subject"]
        body = msg.get_content()
        assert fingerprint(cert) in body
        assert "threshold 7 days" in body
        assert "DNS:soon.example" in body
        assert ("PLAIN", True) in smtp.auth_attempts or ("LOGIN", True) in smtp.auth_attempts
        # the password is nowhere in the store or the output
        rows = aclm.sql("SELECT config FROM alert_channels")
        assert "smtp pass 123" not in rows[0][0] and "password_sealed" in rows[0][0]
        assert "smtp pass 123" not in out + err
        listed = aclm.json("alert", "channel", "list", "--json")
        assert listed[0]["config"]["password"] == "(sealed)"
        a = alerts(aclm)
        assert [x["state"] for x in a] == ["sent"] and a[0]["attempts"] == 1
        ev = events(aclm)
        assert [e["type"] for e in ev if e["type"] == "alert.sent"] == ["alert.sent"]
    finally:
        smtp.stop()


def test_email_wrong_password_and_unreachable(aclm, tmp_path):
    expiring(aclm, tmp_path)
    smtp = Smtp(tmp_path, user="aclm-sender", password="right password")
    closed = free_port()
    try:
        bad = secret_file(tmp_path, "bad.pw", "wrong password")
        aclm.run("alert", "channel", "add", "badpw", "--kind", "email", "--url", smtp.url,
                 "--from", "aclm@example.test", "--to", "ops@example.test", "--user",
                 "aclm-sender", "--password-file", bad, "--ca-file", smtp.cert, check_rc=0)
        aclm.run("alert", "channel", "add", "nowhere", "--kind", "email", "--url",
                 "smtp://127.0.0.1:%d" % closed, "--from", "aclm@example.test", "--to",
                 "ops@example.test", check_rc=0)
        aclm.run("alert", "rule", "add", "r-badpw", "--kind", "expiry", "--channel", "badpw",
                 check_rc=0)
        aclm.run("alert", "rule", "add", "r-nowhere", "--kind", "expiry", "--channel",
                 "nowhere", check_rc=0)
        rc, out, err = aclm.run("alert", "run", check_rc=0)
        assert "2 delivery attempts failed" in out, out
        assert smtp.messages == []
        by_rule = {a["rule"]: a for a in alerts(aclm)}
        a = by_rule["r-badpw"]
        assert a["state"] == "pending" and a["attempts"] == 1
        assert "authentication as 'aclm-sender' refused" in a["last_error"], a["last_error"]
        assert "smtp://127.0.0.1:%d" % smtp.port in a["last_error"]
        assert "wrong password" not in a["last_error"]
        assert a["next_attempt_at"] is not None
        b = by_rule["r-nowhere"]
        assert "smtp://127.0.0.1:%d" % closed in b["last_error"], b["last_error"]
        assert "connect" in b["last_error"].lower(), b["last_error"]
        # the text listing shows the errors too
        rc, out, err = aclm.run("alert", "list", check_rc=0)
        assert "last error: SMTP smtp://127.0.0.1:%d: authentication" % smtp.port in out, out
        ev = [e for e in events(aclm) if e["type"] == "alert.failed"]
        assert len(ev) == 2
        assert all("wrong password" not in json.dumps(e) for e in ev)
    finally:
        smtp.stop()


def test_email_refuses_server_without_starttls(aclm, tmp_path):
    expiring(aclm, tmp_path)
    smtp = Smtp(tmp_path, starttls=False)
    try:
        aclm.run("alert", "channel", "add", "plain", "--kind", "email", "--url", smtp.url,
                 "--from", "aclm@example.test", "--to", "ops@example.test", check_rc=0)
        rc, out, err = aclm.run("alert", "channel", "test", "plain", check_rc=1)
        assert "STARTTLS" in err, err
        assert smtp.messages == []
    finally:
        smtp.stop()


# ---------------------------------------------------------- webhook and robots

def check_webhook(req, secret):
    sig = req["headers"]["x-aclm-signature"]
    want = "sha256=" + hmac.new(secret.encode(), req["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(sig, want), (sig, want)
    body = json.loads(req["body"])
    ts = int(req["headers"]["x-aclm-timestamp"])
    assert body["timestamp"] == ts and abs(time.time() - ts) < 300
    return body


def test_webhook_hmac(aclm, tmp_path, receiver):
    cert = expiring(aclm, tmp_path)
    sec = secret_file(tmp_path, "hook.secret", "whsec-0123456789")
    aclm.run("alert", "channel", "add", "hook", "--kind", "webhook", "--url",
             receiver.url("/aclm"), "--secret-file", sec, check_rc=0)
    aclm.run("alert", "rule", "add", "exp", "--kind", "expiry", "--channel", "hook",
             check_rc=0)
    aclm.run("alert", "run", check_rc=0)
    assert len(receiver.requests) == 1
    req = receiver.requests[0]
    assert req["path"] == "/aclm"
    assert req["headers"]["content-type"].startswith("application/json")
    body = check_webhook(req, "whsec-0123456789")
    assert body["rule"] == "exp" and body["kind"] == "expiry"
    assert body["target"] == "soon.example"
    assert fingerprint(cert) in body["text"]
    # a tampered body no longer matches (the check can fail)
    forged = dict(req, body=req["body"].replace(b"soon.example", b"evil.example"))
    with pytest.raises(AssertionError):
        check_webhook(forged, "whsec-0123456789")
    rows = aclm.sql("SELECT config FROM alert_channels")
    assert "whsec-0123456789" not in rows[0][0]


def test_robot_formats(aclm, tmp_path, receiver):
    expiring(aclm, tmp_path)
    ding = secret_file(tmp_path, "ding.secret", "SECdingtalk")
    feishu = secret_file(tmp_path, "feishu.secret", "feishu-secret")
    aclm.run("alert", "channel", "add", "slack", "--kind", "slack", "--url",
             receiver.url("/slack/T0/B0/x"), check_rc=0)
    aclm.run("alert", "channel", "add", "ding", "--kind", "dingtalk", "--url",
             receiver.url("/robot/send?access_token=tok"), "--secret-file", ding, check_rc=0)
    aclm.run("alert", "channel", "add", "wecom", "--kind", "wecom", "--url",
             receiver.url("/cgi-bin/webhook/send?key=k1"), check_rc=0)
    aclm.run("alert", "channel", "add", "feishu", "--kind", "feishu", "--url",
             receiver.url("/open-apis/bot/v2/hook/h1"), "--secret-file", feishu, check_rc=0)
    for ch in ("slack", "ding", "wecom", "feishu"):
        aclm.run("alert", "rule", "add", "r-" + ch, "--kind", "expiry", "--channel", ch,
                 check_rc=0)
    # robot URLs carry tokens: the listing shows scheme://host:port/... only
    listed = {c["name"]: c for c in aclm.json("alert", "channel", "list", "--json")}
    assert listed["ding"]["config"]["url"] == "http://127.0.0.1:%d/..." % receiver.port
    assert listed["ding"]["config"]["secret"] == "(sealed)"
    rc, out, err = aclm.run("alert", "run", check_rc=0)
    assert "4 sent" in out, out + err
    by_path = {r["path"]: r for r in receiver.requests}
    assert len(by_path) == 4, list(by_path)

    slack = json.loads(by_path["/slack/T0/B0/x"]["body"])
    assert list(slack) == ["text"] and "soon.example expires in 5 days" in slack["text"]

    wecom = json.loads(by_path["/cgi-bin/webhook/send"]["body"])
    assert wecom["msgtype"] == "text" and "soon.example" in wecom["text"]["content"]
    assert by_path["/cgi-bin/webhook/send"]["query"] == {"key": ["k1"]}

    d = by_path["/robot/send"]
    body = json.loads(d["body"])
    assert body["msgtype"] == "text" and "soon.example" in body["text"]["content"]
    q = d["query"]
    assert q["access_token"] == ["tok"]
    ts = q["timestamp"][0]
    assert abs(int(ts) / 1000 - time.time()) < 300
    want = base64.b64encode(hmac.new(b"SECdingtalk", ("%s\nSECdingtalk" % ts).encode(),
                                     hashlib.sha256).digest()).decode()
    assert q["sign"] == [want]

    f = json.loads(by_path["/open-apis/bot/v2/hook/h1"]["body"])
    assert f["msg_type"] == "text" and "soon.example" in f["content"]["text"]
    key = ("%s\nfeishu-secret" % f["timestamp"]).encode()
    assert f["sign"] == base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    assert abs(int(f["timestamp"]) - time.time()) < 300


def test_robot_refusal_in_a_200_answer(aclm, tmp_path):
    """DingTalk, WeCom and Feishu say 'no' with HTTP 200 and an error code."""
    receiver = Receiver(replies={
        "/ding": b'{"errcode":310000,"errmsg":"sign not match"}',
        "/wecom": b'{"errcode":0,"errmsg":"ok"}',
        "/feishu": b'{"code":19021,"msg":"sign match fail or timestamp is not within one hour"}'})
    try:
        expiring(aclm, tmp_path)
        for kind, path in (("dingtalk", "/ding"), ("wecom", "/wecom"), ("feishu", "/feishu")):
            aclm.run("alert", "channel", "add", kind, "--kind", kind, "--url",
                     receiver.url(path), check_rc=0)
            aclm.run("alert", "rule", "add", "r-" + kind, "--kind", "expiry", "--channel", kind,
                     check_rc=0)
        aclm.run("alert", "run", check_rc=0)
        by_rule = {a["rule"]: a for a in alerts(aclm)}
        assert by_rule["r-wecom"]["state"] == "sent"
        d = by_rule["r-dingtalk"]
        assert d["state"] == "pending" and "errcode 310000: sign not match" in d["last_error"]
        f = by_rule["r-feishu"]
        assert f["state"] == "pending" and "code 19021: sign match fail" in f["last_error"]
    finally:
        receiver.close()


# ----------------------------------------------------- dedup, renotify, retry

def test_dedup_threshold_and_renotify(aclm, tmp_path, receiver):
    expiring(aclm, tmp_path, "ten.example", days=10)
    aclm.run("alert", "channel", "add", "hook", "--kind", "webhook", "--url", receiver.url(),
             check_rc=0)
    aclm.run("alert", "rule", "add", "exp", "--kind", "expiry", "--channel", "hook",
             "--renotify", "2d", check_rc=0)
    now = int(time.time())
    aclm.run("alert", "run", check_rc=0)
    rc, out, err = aclm.run("alert", "run", check_rc=0)
    assert "0 raised (1 already notified)" in out, out
    assert len(receiver.requests) == 1
    assert json.loads(receiver.requests[0]["body"])["subject"].startswith(
        "[aclm] certificate ten.example expires in 10 days")
    # four days later the 7-day threshold is crossed: a new alert at once
    env = {"ACLM_NOW": str(now + 4 * DAY)}
    aclm.run("alert", "run", env=env, check_rc=0)
    aclm.run("alert", "run", env=env, check_rc=0)
    assert len(receiver.requests) == 2
    assert "expires in 6 days" in json.loads(receiver.requests[1]["body"])["subject"]
    # the same threshold again only after the renotify interval (2 days)
    aclm.run("alert", "run", env={"ACLM_NOW": str(now + 5 * DAY)}, check_rc=0)
    assert len(receiver.requests) == 2
    aclm.run("alert", "run", env={"ACLM_NOW": str(now + 6 * DAY + 3600)}, check_rc=0)
    assert len(receiver.requests) == 3
    keys = [a["dedup_key"] for a in alerts(aclm)]
    assert len(keys) == 3 and keys[0] == keys[1] != keys[2]
    assert keys[0].endswith("|7d") and keys[2].endswith("|14d")


def test_concurrent_runs_send_once(aclm, tmp_path, receiver):
    """cron and the server (or two servers) at the same moment: each alert is
    raised once and delivered once."""
    for i in range(3):
        expiring(aclm, tmp_path, "c%d.example" % i)
    aclm.run("alert", "channel", "add", "hook", "--kind", "webhook", "--url", receiver.url(),
             check_rc=0)
    aclm.run("alert", "rule", "add", "exp", "--kind", "expiry", "--channel", "hook",
             check_rc=0)
    results = []
    threads = [threading.Thread(target=lambda: results.append(aclm.run("alert", "run")))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r[0] for r in results] == [0, 0, 0, 0], [r[2] for r in results]
    assert len(alerts(aclm)) == 3
    subjects = sorted(json.loads(r["body"])["subject"][:30] for r in receiver.requests)
    assert len(subjects) == 3 and len(set(subjects)) == 3, subjects


def test_more_alerts_than_one_batch(aclm, tmp_path, receiver):
    d = tmp_path / "many"
    d.mkdir()
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        list(ex.map(lambda i: make_cert(d, "m%03d.example" % i, 3), range(105)))
    aclm.run("import", str(d), check_rc=0)
    aclm.run("alert", "channel", "add", "hook", "--kind", "webhook", "--url", receiver.url(),
             check_rc=0)
    aclm.run("alert", "rule", "add", "exp", "--kind", "expiry", "--channel", "hook",
             check_rc=0)
    rc, out, err = aclm.run("alert", "run", "--json", check_rc=0)
    assert json.loads(out)["sent"] == 105, out
    assert len(receiver.requests) == 105
    assert len(alerts(aclm, "--state", "sent")) == 105


def test_failed_channel_is_left_alone_for_the_run(aclm, tmp_path):
    for i in range(3):
        expiring(aclm, tmp_path, "d%d.example" % i)
    dead = free_port()
    aclm.run("alert", "channel", "add", "dead", "--kind", "webhook", "--url",
             "http://127.0.0.1:%d/" % dead, check_rc=0)
    aclm.run("alert", "rule", "add", "exp", "--kind", "expiry", "--channel", "dead",
             check_rc=0)
    r = json.loads(aclm.run("alert", "run", "--json", check_rc=0)[1])
    assert (r["raised"], r["failed"], r["deferred"], r["sent"]) == (3, 1, 2, 0), r
    a = sorted(alerts(aclm), key=lambda x: x["id"])
    assert [x["attempts"] for x in a] == [1, 0, 0]
    assert "127.0.0.1:%d" % dead in a[0]["last_error"]
    # the next run tries the others (the first waits for its backoff)
    r = json.loads(aclm.run("alert", "run", "--json", check_rc=0)[1])
    assert (r["failed"], r["deferred"]) == (1, 1), r


def test_retry_with_backoff_then_success(aclm, tmp_path):
    receiver = Receiver(statuses=[500])
    try:
        expiring(aclm, tmp_path)
        aclm.run("alert", "channel", "add", "hook", "--kind", "webhook", "--url",
                 receiver.url(), check_rc=0)
        aclm.run("alert", "rule", "add", "exp", "--kind", "expiry", "--channel", "hook",
                 check_rc=0)
        env = {"ACLM_ALERTS_RETRY_BASE": "10m"}
        now = int(time.time())
        rc, out, err = aclm.run("alert", "run", env=env, check_rc=0)
        a = alerts(aclm)[0]
        assert a["state"] == "pending" and a["attempts"] == 1
        assert "HTTP 500" in a["last_error"] and "receiver says no" in a["last_error"]
        # not due yet: nothing is sent
        aclm.run("alert", "run", env=env, check_rc=0)
        assert len(receiver.requests) == 1
        # after the backoff the receiver works
        aclm.run("alert", "run", env=dict(env, ACLM_NOW=str(now + 11 * 60)), check_rc=0)
        assert [r["status"] for r in receiver.requests] == [500, 200]
        a = alerts(aclm)[0]
        assert a["state"] == "sent" and a["attempts"] == 2
        assert len(a["attempt_log"]) == 1 and "HTTP 500" in a["attempt_log"][0]["error"]
        assert [e["type"] for e in events(aclm) if e["type"] in ("alert.sent", "alert.failed")] \
            == ["alert.failed", "alert.sent"]
    finally:
        receiver.close()


def test_hostile_receiver_answer(aclm, tmp_path):
    """An error answer that is long and not UTF-8 is cut and cleaned, and the
    attempt is still recorded (PostgreSQL refuses invalid UTF-8 text)."""
    receiver = Receiver(statuses=[500])
    try:
        expiring(aclm, tmp_path)
        aclm.run("alert", "channel", "add", "hook", "--kind", "webhook", "--url",
                 receiver.url("/bad"), check_rc=0)
        aclm.run("alert", "rule", "add", "exp", "--kind", "expiry", "--channel", "hook",
                 check_rc=0)
        receiver.error_body = b"\xff\xfe oops \xc3(" + b"x" * 100000
        aclm.run("alert", "run", check_rc=0)
        a = alerts(aclm)[0]
        assert a["state"] == "pending" and a["attempts"] == 1
        assert "HTTP 500" in a["last_error"] and len(a["last_error"]) < 500
        assert "?? oops ?(xxx" in a["last_error"], a["last_error"]
    finally:
        receiver.close()


def test_gives_up_after_max_attempts(aclm, tmp_path):
    receiver = Receiver(statuses=[503] * 10)
    try:
        expiring(aclm, tmp_path)
        aclm.run("alert", "channel", "add", "hook", "--kind", "webhook", "--url",
                 receiver.url(), check_rc=0)
        aclm.run("alert", "rule", "add", "exp", "--kind", "expiry", "--channel", "hook",
                 check_rc=0)
        env = {"ACLM_ALERTS_RETRY_BASE": "60s", "ACLM_ALERTS_MAX_ATTEMPTS": "3"}
        now = int(time.time())
        # backoff 60 s, then 120 s
        for t in (now, now + 61, now + 61 + 121, now + 3600):
            aclm.run("alert", "run", env=dict(env, ACLM_NOW=str(t)), check_rc=0)
        assert len(receiver.requests) == 3
        a = alerts(aclm)[0]
        assert a["state"] == "failed" and a["attempts"] == 3
        assert [e["attempt"] for e in a["attempt_log"]] == [1, 2, 3]
        assert alerts(aclm, "--state", "failed")[0]["id"] == a["id"]
        assert alerts(aclm, "--state", "sent") == []
        final = [e for e in events(aclm) if e["type"] == "alert.failed"]
        assert [e["detail"]["final"] for e in final] == [False, False, True]
    finally:
        receiver.close()


# --------------------------------------------- rules over scans and renewals

class TlsServer:
    """A TLS listener whose certificate can be swapped between scans."""

    def __init__(self, cert, key):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.use(cert, key)
        self.running = True
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def use(self, cert, key):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.ctx = ctx

    def loop(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.settimeout(3)
            try:
                with self.ctx.wrap_socket(conn, server_side=True) as t:
                    t.recv(1)
            except (OSError, ssl.SSLError):
                pass
            finally:
                conn.close()

    def close(self):
        self.running = False
        self.sock.close()


class Mute:
    """Accepts connections and closes them at once: something listens, no TLS."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.close()

    def close(self):
        self.sock.close()


def scan(aclm, target):
    aclm.run("scan", "--no-versions", "--no-groups", "--no-progress", "--connect-timeout", "1",
             "--handshake-timeout", "2", target, timeout=60)


def test_ghost_changed_unreachable(aclm, tmp_path, receiver):
    a_cert, a_key = make_cert(tmp_path, "a.example", 90)
    b_cert, b_key = make_cert(tmp_path, "b.example", 90)
    c_cert, c_key = make_cert(tmp_path, "c.example", 90)
    tls = TlsServer(a_cert, a_key)
    mute = Mute()
    closed = mute.port
    try:
        aclm.run("alert", "channel", "add", "hook", "--kind", "webhook", "--url",
                 receiver.url(), check_rc=0)
        for kind in ("ghost", "cert-changed", "unreachable"):
            aclm.run("alert", "rule", "add", kind, "--kind", kind, "--channel", "hook",
                     check_rc=0)
        scan(aclm, "127.0.0.1:%d" % tls.port)
        scan(aclm, "127.0.0.1:%d" % closed)
        aclm.run("alert", "run", check_rc=0)
        subjects = sorted(json.loads(r["body"])["subject"] for r in receiver.requests)
        assert subjects == sorted([
            "[aclm] unmanaged certificate served on 127.0.0.1:%d" % tls.port,
            "[aclm] scan target 127.0.0.1:%d is unreachable" % closed]), subjects
        ghost = [json.loads(r["body"]) for r in receiver.requests
                 if "unmanaged" in json.loads(r["body"])["subject"]][0]
        assert fingerprint(a_cert) in ghost["text"]

        # a change to a certificate aclm knows (imported): expected, no alert
        aclm.run("import", b_cert, check_rc=0)
        tls.use(b_cert, b_key)
        scan(aclm, "127.0.0.1:%d" % tls.port)
        aclm.run("alert", "run", check_rc=0)
        assert not any("changed" in json.loads(r["body"])["subject"] for r in receiver.requests)

        # a change to an unknown certificate: alert
        tls.use(c_cert, c_key)
        scan(aclm, "127.0.0.1:%d" % tls.port)
        n = len(receiver.requests)
        aclm.run("alert", "run", check_rc=0)
        changed = [json.loads(r["body"]) for r in receiver.requests[n:]
                   if "changed" in json.loads(r["body"])["subject"]]
        assert len(changed) == 1, [json.loads(r["body"])["subject"] for r in receiver.requests]
        assert changed[0]["subject"] == "[aclm] certificate changed on 127.0.0.1:%d" % tls.port
        assert fingerprint(c_cert) in changed[0]["text"]
    finally:
        tls.close()
        mute.close()


def test_renewal_failed_and_filters(aclm, tmp_path, receiver):
    aclm.run("alert", "channel", "add", "hook", "--kind", "webhook", "--url", receiver.url(),
             check_rc=0)
    aclm.run("alert", "rule", "add", "renewals", "--kind", "renewal-failed", "--channel", "hook",
             "--name", "shop-*", check_rc=0)
    aclm.run("alert", "rule", "add", "exp-internal", "--kind", "expiry", "--channel", "hook",
             "--name", "*.internal.example", check_rc=0)
    expiring(aclm, tmp_path, "soon.example")
    expiring(aclm, tmp_path, "db.internal.example")
    # Real failures of the ACME client: a CA that is not there.
    dead = free_port()
    cfg = os.path.join(str(tmp_path), "acme.yaml")
    with open(cfg, "w") as f:
        f.write("acme:\n  cas:\n    - name: dead\n      directory: https://127.0.0.1:%d/dir\n"
                % dead)
    for name in ("shop-web.example", "blog.example"):
        rc, out, err = aclm.run("--config", cfg, "issue", "--webroot", str(tmp_path), name,
                                check_rc=1)
        assert "127.0.0.1:%d" % dead in err, err
    aclm.run("alert", "run", check_rc=0)
    subjects = sorted(json.loads(r["body"])["subject"] for r in receiver.requests)
    assert len(subjects) == 2, subjects
    assert subjects[0].startswith("[aclm] certificate db.internal.example expires in 5 days")
    assert subjects[1] == "[aclm] renewal of shop-web.example/ec256 failed"
    text = [json.loads(r["body"])["text"] for r in receiver.requests
            if "renewal" in json.loads(r["body"])["subject"]][0]
    assert "CA dead" in text and "127.0.0.1:%d" % dead in text and "failed 1 time " in text
    # the next failure of the same certificate is no news within a day
    aclm.run("--config", cfg, "issue", "--webroot", str(tmp_path), "shop-web.example",
             check_rc=1)
    aclm.run("alert", "run", check_rc=0)
    assert len(receiver.requests) == 2


def test_cli_refusals(aclm, tmp_path):
    rc, out, err = aclm.run("alert", "channel", "add", "x", "--kind", "pager", "--url",
                            "https://a.example/", check_rc=2)
    assert "unknown channel kind 'pager'" in err
    rc, out, err = aclm.run("alert", "channel", "add", "x", "--kind", "email", "--url",
                            "http://a.example/", "--from", "a@b.example", "--to", "c@d.example",
                            check_rc=2)
    assert "smtp://" in err
    rc, out, err = aclm.run("alert", "channel", "add", "x", "--kind", "email", "--url",
                            "smtp://a.example:25", "--from", "a@b.example", "--to",
                            "c@d.example>, <e@f", check_rc=2)
    assert "is not an address" in err
    rc, out, err = aclm.run("alert", "channel", "add", "x", "--kind", "webhook", "--url",
                            "https://a.example/", "--ca-file", "/nonexistent/ca.pem", check_rc=2)
    assert "CA file /nonexistent/ca.pem: No such file or directory" in err
    rc, out, err = aclm.run("alert", "rule", "add", "r", "--kind", "expiry", "--channel", "none",
                            check_rc=1)
    assert "no alert channel 'none'" in err
    aclm.run("alert", "channel", "add", "hook", "--kind", "webhook", "--url",
             "https://hooks.example/x", check_rc=0)
    rc, out, err = aclm.run("alert", "channel", "add", "hook", "--kind", "webhook", "--url",
                            "https://hooks.example/x", check_rc=1)
    assert "exists already" in err
    rc, out, err = aclm.run("alert", "rule", "add", "r", "--kind", "expiry", "--channel", "hook",
                            "--days", "7,x", check_rc=2)
    assert "--days" in err
    aclm.run("alert", "rule", "add", "r", "--kind", "expiry", "--channel", "hook", "--days",
             "1,7", check_rc=0)
    rc, out, err = aclm.run("alert", "channel", "del", "hook", check_rc=1)
    assert "used by rule 'r'" in err
    aclm.run("alert", "rule", "del", "r", check_rc=0)
    aclm.run("alert", "channel", "del", "hook", check_rc=0)
    assert aclm.json("alert", "channel", "list", "--json") == []
    types = [e["type"] for e in events(aclm)]
    assert types == ["alert.channel.added", "alert.rule.added", "alert.rule.deleted",
                     "alert.channel.deleted"]


# ------------------------------------------------------------------ the server

def test_server_timer_delivers_without_cli(aclm, tmp_path, receiver):
    expiring(aclm, tmp_path)
    sec = secret_file(tmp_path, "hook.secret", "server-secret")
    aclm.run("alert", "channel", "add", "hook", "--kind", "webhook", "--url", receiver.url(),
             "--secret-file", sec, check_rc=0)
    aclm.run("alert", "rule", "add", "exp", "--kind", "expiry", "--channel", "hook",
             check_rc=0)
    s = Server(aclm, config="alerts:\n  interval: 1s\n")
    try:
        assert receiver.wait(1, timeout=30), "no alert delivered by the server"
        check_webhook(receiver.requests[0], "server-secret")
        admin = s.login("admin", ADMIN_PW)
        deadline = time.time() + 10
        while True:
            st, body, _ = s.request("GET", "/api/v1/alerts", session=admin)
            assert st == 200, body
            if body["items"] and body["items"][0]["state"] == "sent" or time.time() > deadline:
                break
            time.sleep(0.2)
        assert body["total"] == 1 and body["items"][0]["state"] == "sent", body
        time.sleep(2.5)     # more timer runs: still one delivery (dedup)
        assert len(receiver.requests) == 1
    finally:
        rc, out, err = s.stop()
    assert rc == 0, err
    assert "AddressSanitizer" not in err and "runtime error" not in err, err


def test_api_roles_and_crud(aclm, tmp_path, receiver):
    s = Server(aclm, config="alerts:\n  interval: 0\n")
    try:
        admin = s.login("admin", ADMIN_PW)
        who = {}
        for role in ("operator", "auditor", "viewer"):
            st, body, _ = s.request("POST", "/api/v1/users", {"name": role + "1", "password": PW,
                                                              "role": role}, session=admin)
            assert st == 201, body
            who[role] = s.login(role + "1", PW)
        chan = {"name": "hook", "kind": "webhook", "url": receiver.url(), "secret": "api-secret"}
        rule = {"name": "exp", "kind": "expiry", "channel": "hook",
                "params": {"days": [14, 3]}, "renotify": "12h"}
        for role in ("auditor", "viewer"):
            st, _, _ = s.request("POST", "/api/v1/alert-channels", chan, session=who[role])
            assert st == 403
        for path in ("/api/v1/alerts", "/api/v1/alert-rules", "/api/v1/alert-channels"):
            st, _, _ = s.request("GET", path, session=who["viewer"])
            assert st == 403, path
            st, body, _ = s.request("GET", path, session=who["auditor"])
            assert st == 200 and body["items"] == [], (path, body)
        st, body, _ = s.request("POST", "/api/v1/alert-channels", chan, session=who["operator"])
        assert st == 201, body
        st, body, _ = s.request("POST", "/api/v1/alert-channels", chan, session=who["operator"])
        assert st == 409, body
        st, body, _ = s.request("POST", "/api/v1/alert-channels",
                                dict(chan, name="bad", kind="pager"), session=who["operator"])
        assert st == 400 and "pager" in body["detail"], body
        st, body, _ = s.request("POST", "/api/v1/alert-rules", rule, session=who["auditor"])
        assert st == 403
        st, body, _ = s.request("POST", "/api/v1/alert-rules", dict(rule, params={"days": [0]}),
                                session=who["operator"])
        assert st == 400, body
        st, body, _ = s.request("POST", "/api/v1/alert-rules", rule, session=who["operator"])
        assert st == 201, body
        st, body, _ = s.request("GET", "/api/v1/alert-channels", session=who["auditor"])
        assert body["items"][0]["config"]["secret"] == "(sealed)"
        assert "api-secret" not in json.dumps(body)
        st, body, _ = s.request("GET", "/api/v1/alert-rules", session=who["auditor"])
        r = body["items"][0]
        assert r["params"] == {"days": [14, 3]} and r["renotify_seconds"] == 43200
        assert r["channel"] == "hook"
        st, body, _ = s.request("DELETE", "/api/v1/alert-channels/hook", session=who["operator"])
        assert st == 409, body
        st, _, _ = s.request("DELETE", "/api/v1/alert-rules/exp", session=who["auditor"])
        assert st == 403
        st, _, _ = s.request("DELETE", "/api/v1/alert-rules/exp", session=who["operator"])
        assert st == 200
        st, _, _ = s.request("DELETE", "/api/v1/alert-channels/hook", session=who["operator"])
        assert st == 200
        st, body, _ = s.request("GET", "/api/v1/alerts?state=bogus", session=who["auditor"])
        assert st == 400
    finally:
        rc, out, err = s.stop()
    assert rc == 0 and "AddressSanitizer" not in err, err
    # the secret sent in the API body was sealed with the same KEK the CLI uses
    assert "api-secret" not in json.dumps(aclm.sql("SELECT * FROM events"))


ROLES = ["viewer", "auditor", "operator", "admin"]
ALERT_ROUTES = [
    ("GET", "/api/v1/alerts", None, "auditor"),
    ("GET", "/api/v1/alert-rules", None, "auditor"),
    ("GET", "/api/v1/alert-channels", None, "auditor"),
    ("POST", "/api/v1/alert-channels", {"name": "c1", "kind": "slack",
                                        "url": "https://hooks.example/x"}, "operator"),
    ("POST", "/api/v1/alert-rules", {"name": "r1", "kind": "ghost", "channel": "c1"}, "operator"),
    ("DELETE", "/api/v1/alert-rules/r1", None, "operator"),
    ("DELETE", "/api/v1/alert-channels/c1", None, "operator"),
]


def test_alert_routes_with_every_role(aclm):
    s = Server(aclm, config="alerts:\n  interval: 0\n")
    try:
        who = make_users(s)
        for method, path, body, need in ALERT_ROUTES:
            for role in ROLES:
                for how in ("session", "token"):
                    st, resp, _ = s.request(method, path, body, **{how: who[role][how]})
                    if ROLES.index(role) >= ROLES.index(need):
                        # allowed: never 401/403 (409/404 once an earlier call did it)
                        assert st not in (401, 403) and st < 500, (method, path, role, how, st,
                                                                   resp)
                    else:
                        assert st == 403 and resp["error"] == "forbidden", (method, path, role)
            st, resp, r = s.request(method, path, body)
            assert st == 401, (method, path, st)
        # everything the operators did is in the audit log, by whom
        st, ev, _ = s.request("GET", "/api/v1/events?limit=1000", session=who["admin"]["session"])
        types = [e["type"] for e in ev["items"]]
        for t in ("alert.channel.added", "alert.rule.added", "alert.rule.deleted",
                  "alert.channel.deleted"):
            assert t in types, types
    finally:
        rc, out, err = s.stop()
    assert rc == 0 and "AddressSanitizer" not in err, err


def test_server_stops_during_a_slow_delivery(aclm, tmp_path):
    """SIGTERM while a receiver takes its time: the delivery is abandoned,
    the server exits at once, the alert stays pending with the reason."""
    receiver = Receiver(delay=30)
    try:
        expiring(aclm, tmp_path)
        aclm.run("alert", "channel", "add", "slow", "--kind", "webhook", "--url", receiver.url(),
                 check_rc=0)
        aclm.run("alert", "rule", "add", "exp", "--kind", "expiry", "--channel", "slow",
                 check_rc=0)
        s = Server(aclm, config="alerts:\n  interval: 1s\n  timeout: 60s\n")
        assert receiver.wait(1, timeout=30)
        t0 = time.time()
        rc, out, err = s.stop()
        assert time.time() - t0 < 10 and rc == 0, err
        assert "AddressSanitizer" not in err
        a = alerts(aclm)[0]
        assert a["state"] == "pending" and a["attempts"] == 1
        assert "abandoned (shutting down)" in a["last_error"], a["last_error"]
    finally:
        receiver.close()
