"""aclm server: first start, the REST API with every role, tokens, sessions
and CSRF, lockout, audit of API changes, metrics, OpenAPI, signals; on
SQLite and PostgreSQL."""

import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import time

import pytest

from conftest import BIN

ADMIN_PW = "admin password 1234"
PW = "a good long password"


class Server:
    def __init__(self, aclm, extra_env=None, config=None):
        self.aclm = aclm
        env = dict(aclm.env)
        env["ACLM_ADMIN_PASSWORD"] = ADMIN_PW
        env.update(extra_env or {})
        cmd = [BIN, "--db", aclm.db]
        if config:
            path = os.path.join(aclm.tmp, "aclm.yaml")
            with open(path, "w") as f:
                f.write(config)
            cmd += ["--config", path]
        cmd += ["server", "--listen", "127.0.0.1:0"]
        self.proc = subprocess.Popen(cmd, cwd=aclm.tmp, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.first_lines = []
        deadline = time.time() + 30
        self.port = None
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.first_lines.append(line)
            m = re.search(r"listening on https://127\.0\.0\.1:(\d+)/", line)
            if m:
                self.port = int(m.group(1))
                break
        if self.port is None:
            self.proc.kill()
            out, err = self.proc.communicate()
            pytest.fail("server did not start:\n%s%s\n%s" % ("".join(self.first_lines), out, err))
        self.ctx = ssl.create_default_context()
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE

    def request(self, method, path, body=None, headers=None, token=None, session=None):
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=20)
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        if session:
            h["Cookie"] = "aclm_session=" + session["cookie"]
            if method not in ("GET", "HEAD") and "X-CSRF-Token" not in h:
                h["X-CSRF-Token"] = session["csrf"]
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        data = r.read()
        conn.close()
        ctype = r.getheader("Content-Type", "")
        parsed = json.loads(data) if ctype.startswith("application/json") and data else data
        return r.status, parsed, r

    def login(self, user, pw):
        st, body, r = self.request("POST", "/api/v1/login", {"username": user, "password": pw})
        assert st == 200, body
        cookie = r.getheader("Set-Cookie")
        m = re.match(r"aclm_session=([^;]+);", cookie)
        assert m, cookie
        for attr in ("HttpOnly", "Secure", "SameSite=Strict"):
            assert attr in cookie
        return {"cookie": m.group(1), "csrf": body["csrf_token"]}

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        out, err = self.proc.communicate()
        return self.proc.returncode, out, err


@pytest.fixture
def server(aclm):
    s = Server(aclm)
    yield s
    rc, out, err = s.stop()
    assert "runtime error" not in err and "AddressSanitizer" not in err, err


def make_users(server):
    """One session and one token per role."""
    admin = server.login("admin", ADMIN_PW)
    who = {"admin": {"session": admin}}
    for role in ("operator", "auditor", "viewer"):
        st, body, _ = server.request("POST", "/api/v1/users",
                                     {"name": role + "1", "password": PW, "role": role},
                                     session=admin)
        assert st == 201, body
        who[role] = {"session": server.login(role + "1", PW)}
    for role, w in who.items():
        st, body, _ = server.request("POST", "/api/v1/tokens", {"name": "t-" + role},
                                     session=w["session"])
        assert st == 201, body
        w["token"] = body["token"]
    return who


def test_first_start_and_restart(aclm):
    s = Server(aclm, extra_env={"ACLM_ADMIN_PASSWORD": ""})
    lines = "".join(s.first_lines)
    m = re.search(r"password \(shown once\): (\S+)", lines)
    assert m, lines
    s.login("admin", m.group(1))
    rc, out, err = s.stop()
    assert rc == 0, err
    key = os.path.join(aclm.tmp, "aclm-tls", "server.key")
    assert os.stat(key).st_mode & 0o777 == 0o600
    # the second start keeps the user and says no password
    s = Server(aclm)
    assert "shown once" not in "".join(s.first_lines)
    s.login("admin", m.group(1))
    assert s.stop()[0] == 0


# (method, path, body, minimal role); roles in power order
ROLES = ["viewer", "auditor", "operator", "admin"]
ROUTES = [
    ("GET", "/api/v1/certificates", None, "viewer"),
    ("GET", "/api/v1/certificates/1", None, "viewer"),
    ("GET", "/api/v1/certificates/1/pem", None, "viewer"),
    ("GET", "/metrics", None, "viewer"),
    ("GET", "/api/v1/events", None, "auditor"),
    ("GET", "/api/v1/audit/verify", None, "auditor"),
    ("POST", "/api/v1/certificates", "PEM", "operator"),
    ("GET", "/api/v1/users", None, "admin"),
    ("POST", "/api/v1/users", {"name": "x", "password": PW, "role": "viewer"}, "admin"),
    ("DELETE", "/api/v1/users/x", None, "admin"),
    ("GET", "/api/v1/me", None, "viewer"),
    ("GET", "/api/v1/tokens", None, "viewer"),
]


def test_every_route_with_every_role(server, pki):
    who = make_users(server)
    pem = open(pki.tree_path("leaves/ip.pem"), "rb").read()
    # a certificate to show
    st, body, _ = server.request("POST", "/api/v1/certificates", pem,
                                 session=who["admin"]["session"])
    assert st == 201, body
    for method, path, body, need in ROUTES:
        for role in ROLES:
            for how in ("session", "token"):
                cred = {how: who[role][how]}
                if body == "PEM":
                    b = pem
                else:
                    b = body
                st, resp, _ = server.request(method, path, b, **cred)
                allowed = ROLES.index(role) >= ROLES.index(need)
                if allowed:
                    # allowed: never 401/403 (409/404 when the session did it first)
                    assert st not in (401, 403) and st < 500, (method, path, role, how, st, resp)
                else:
                    assert st == 403, (method, path, role, how, st, resp)
                    assert resp["error"] == "forbidden"
        # anonymous
        st, resp, r = server.request(method, path, body if body != "PEM" else pem)
        assert st == 401, (method, path, st)
        assert r.getheader("WWW-Authenticate", "").startswith("Bearer")


def test_tokens_missing_bad_expired_revoked(server, aclm):
    who = make_users(server)
    tok = who["viewer"]["token"]
    assert server.request("GET", "/api/v1/me", token=tok)[0] == 200
    for bad in ("garbage", tok[:-1], tok[:-1] + ("A" if tok[-1] != "A" else "B")):
        st, resp, _ = server.request("GET", "/api/v1/me", token=bad)
        assert st == 401, bad
    st, resp, _ = server.request("GET", "/api/v1/me", headers={"Authorization": "Basic eDp5"})
    assert st == 401 and "Bearer" in resp["detail"]
    # expired: move its expiry into the past
    lookup = tok.split("_")[1]
    aclm.sql("UPDATE api_tokens SET expires_at = 1 WHERE lookup = '%s'" % lookup)
    st, resp, _ = server.request("GET", "/api/v1/me", token=tok)
    assert st == 401 and "expired" in resp["detail"]
    # revoked, through the API by its owner
    tok2 = who["operator"]["token"]
    lookup2 = tok2.split("_")[1]
    st, resp, _ = server.request("DELETE", "/api/v1/tokens/" + lookup2,
                                 session=who["operator"]["session"])
    assert st == 200, resp
    st, resp, _ = server.request("GET", "/api/v1/me", token=tok2)
    assert st == 401 and "revoked" in resp["detail"]
    # someone else's token: forbidden unless admin
    lookup3 = who["auditor"]["token"].split("_")[1]
    st, _, _ = server.request("DELETE", "/api/v1/tokens/" + lookup3,
                              session=who["viewer"]["session"])
    assert st == 403
    # a token cannot be made stronger than its maker
    st, resp, _ = server.request("POST", "/api/v1/tokens", {"name": "up", "role": "admin"},
                                 session=who["viewer"]["session"])
    assert st == 403
    # secrets are stored hashed only
    rows = aclm.sql("SELECT secret_hash FROM api_tokens")
    assert all(tok.split("_")[2] not in r[0] for r in rows)


def test_csrf_and_logout(server):
    admin = server.login("admin", ADMIN_PW)
    body = {"name": "y", "password": PW, "role": "viewer"}
    st, resp, _ = server.request("POST", "/api/v1/users", body,
                                 headers={"X-CSRF-Token": ""}, session=admin)
    assert st == 403 and resp["error"] == "csrf"
    st, resp, _ = server.request("POST", "/api/v1/users", body,
                                 headers={"X-CSRF-Token": "wrong"}, session=admin)
    assert st == 403 and resp["error"] == "csrf"
    st, resp, _ = server.request("POST", "/api/v1/users", body, session=admin)
    assert st == 201
    # GET needs no CSRF token
    assert server.request("GET", "/api/v1/users", session=admin)[0] == 200
    assert server.request("POST", "/api/v1/logout", session=admin)[0] == 200
    st, resp, _ = server.request("GET", "/api/v1/users", session=admin)
    assert st == 401


def test_login_lockout(server, aclm):
    admin = server.login("admin", ADMIN_PW)
    server.request("POST", "/api/v1/users", {"name": "eve", "password": PW, "role": "viewer"},
                   session=admin)
    for i in range(4):
        st, resp, _ = server.request("POST", "/api/v1/login",
                                     {"username": "eve", "password": "wrong %d" % i})
        assert st == 401, resp
    st, resp, _ = server.request("POST", "/api/v1/login", {"username": "eve", "password": "x"})
    assert st == 423, resp
    # now even the right password is refused, and the audit log says why
    st, resp, _ = server.request("POST", "/api/v1/login", {"username": "eve", "password": PW})
    assert st == 423 and "locked" in resp["detail"]
    _, out, _ = aclm("audit", "export", check_rc=0)
    assert any(json.loads(l)["type"] == "user.locked" for l in out.splitlines())
    # an unknown user looks the same as a wrong password
    st, resp, _ = server.request("POST", "/api/v1/login", {"username": "nobody", "password": "x"})
    assert st == 401 and resp["detail"] == "wrong user name or password"
    # bad bodies
    for body in ("not json", json.dumps({"username": "admin"}), ""):
        st, resp, _ = server.request("POST", "/api/v1/login", body)
        assert st == 400, body
    # the password reset lifts the lock
    aclm("user", "passwd", "eve", env={"ACLM_PASSWORD": PW + "2"}, check_rc=0)
    server.login("eve", PW + "2")


def test_audit_records_api_changes(server, aclm):
    admin = server.login("admin", ADMIN_PW)
    server.request("POST", "/api/v1/users", {"name": "z1", "password": PW, "role": "viewer"},
                   session=admin)
    server.request("POST", "/api/v1/users", {"name": "z1", "password": PW, "role": "viewer"},
                   session=admin)  # 409
    st, body, _ = server.request("GET", "/api/v1/events?limit=1000", session=admin)
    assert st == 200
    api = [e for e in body["items"] if e["type"] == "api.request"]
    posts = [(e["detail"]["route"], e["detail"]["status"], e["detail"]["actor"]) for e in api
             if e["detail"]["method"] == "POST"]
    assert ("/api/v1/users", 201, "user:admin") in posts
    assert ("/api/v1/users", 409, "user:admin") in posts
    assert ("/api/v1/login", 200, "anonymous") in posts
    added = [e for e in body["items"] if e["type"] == "user.added" and e["subject"] == "z1"]
    assert added and added[0]["detail"]["actor"] == "user:admin"
    st, v, _ = server.request("GET", "/api/v1/audit/verify", session=admin)
    assert st == 200 and v["intact"] is True
    aclm.sql("UPDATE events SET subject = 'tampered' WHERE id = 2")
    st, v, _ = server.request("GET", "/api/v1/audit/verify", session=admin)
    assert v["intact"] is False and v["problems"][0]["id"] == 2


def test_certificates_api(server, pki, aclm):
    admin = server.login("admin", ADMIN_PW)
    aclm("import", pki.tree, check_rc=None)
    st, body, _ = server.request("GET", "/api/v1/certificates?limit=500", session=admin)
    assert st == 200
    cli = aclm.list()
    assert body["total"] == len(cli)
    assert [c["fingerprint"] for c in body["items"]] == [c["fingerprint"] for c in cli]
    # the same filters as the CLI
    for q, args in [("expiring=30d", ["--expiring", "30d"]), ("expired=1", ["--expired"]),
                    ("key_type=sm2", ["--key-type", "sm2"]), ("level=ov", ["--level", "ov"]),
                    ("sort=-subject&limit=3", ["--sort", "-subject", "--limit", "3"])]:
        st, b, _ = server.request("GET", "/api/v1/certificates?" + q, session=admin)
        assert st == 200
        assert [c["id"] for c in b["items"]] == [c["id"] for c in aclm.list(*args)], q
    # pagination
    st, p1, _ = server.request("GET", "/api/v1/certificates?limit=2&offset=0", session=admin)
    st, p2, _ = server.request("GET", "/api/v1/certificates?limit=2&offset=2", session=admin)
    assert [c["id"] for c in p1["items"] + p2["items"]] == [c["id"] for c in cli[:4]]
    # show by id and by fingerprint prefix, pem
    first = cli[0]
    st, one, _ = server.request("GET", "/api/v1/certificates/%d" % first["id"], session=admin)
    assert st == 200 and one["fingerprint"] == first["fingerprint"] and one["observations"]
    st, one2, _ = server.request("GET", "/api/v1/certificates/" + first["fingerprint"][:16],
                                 session=admin)
    assert one2["id"] == first["id"]
    st, pem, r = server.request("GET", "/api/v1/certificates/%d/pem" % first["id"], session=admin)
    assert st == 200 and pem.startswith(b"-----BEGIN CERTIFICATE-----")
    # its history, and the certificates sharing its key (the fixture reuses one key)
    st, hist, _ = server.request("GET", "/api/v1/events?subject=%s" % first["fingerprint"],
                                 session=admin)
    assert st == 200 and [e["type"] for e in hist["items"]] == ["cert.added"]
    shared = [c for c in cli if c["spki_sha256"] in
              {x["spki_sha256"] for x in cli if x["id"] != c["id"]}]
    assert shared, "the fixture has no shared key"
    st, same, _ = server.request("GET", "/api/v1/certificates/%d/same-key" % shared[0]["id"],
                                 session=admin)
    assert st == 200 and same["items"]
    assert all(x["spki_sha256"] == shared[0]["spki_sha256"] and x["id"] != shared[0]["id"]
               for x in same["items"])
    # bad input: clear errors, nothing lost
    for q in ("expiring=soon", "limit=0", "limit=100000", "sort=bogus", "level=xx",
              "offset=-1"):
        st, b, _ = server.request("GET", "/api/v1/certificates?" + q, session=admin)
        assert st == 400 and b["error"] == "bad_request", q
    assert server.request("GET", "/api/v1/certificates/999999", session=admin)[0] == 404
    st, b, _ = server.request("POST", "/api/v1/certificates", b"garbage", session=admin)
    assert st == 400 and b["detail"]
    key = subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519"], check=True,
                         capture_output=True).stdout + pem
    st, b, _ = server.request("POST", "/api/v1/certificates", key, session=admin)
    assert st == 400 and "private key" in b["detail"]
    assert len(aclm.list()) == len(cli)


def test_openapi_matches_routes(server):
    st, doc, _ = server.request("GET", "/api/v1/openapi.json")
    assert st == 200 and doc["openapi"].startswith("3.")
    admin = server.login("admin", ADMIN_PW)
    n = 0
    for path, ops in doc["paths"].items():
        real = path.replace("{id}", "1").replace("{name}", "nobody")
        for method in ops:
            n += 1
            st, _, _ = server.request(method.upper(), real, session=admin,
                                      body={} if method in ("post", "put") else None)
            assert st not in (404, 405) or "{" in path, (method, path, st)
    assert n >= 15
    # a route not in the document does not exist
    assert server.request("GET", "/api/v1/nothing-here", session=admin)[0] == 404
    assert server.request("PATCH", "/api/v1/certificates", session=admin)[0] == 405


def test_metrics(server):
    tok = make_users(server)["viewer"]["token"]
    st, text, r = server.request("GET", "/metrics", token=tok)
    assert st == 200 and r.getheader("Content-Type").startswith("text/plain")
    text = text.decode()
    assert re.search(r'^aclm_certificates\{state="all"\} \d+$', text, re.M)
    assert re.search(r'^aclm_http_requests_total\{code="2xx"\} [1-9]\d*$', text, re.M)
    assert "aclm_http_request_duration_seconds_bucket{le=\"+Inf\"}" in text


def test_sighup_reload_and_sigterm(aclm):
    s = Server(aclm, config="server:\n  session_ttl: 12h\n")
    sess = s.login("admin", ADMIN_PW)
    with open(os.path.join(aclm.tmp, "aclm.yaml"), "w") as f:
        f.write("server:\n  session_ttl: [broken\n")
    s.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    assert s.request("GET", "/api/v1/me", session=sess)[0] == 200  # still serving
    rc, out, err = s.stop(signal.SIGTERM)
    assert rc == 0
    assert "keeping the running configuration" in err


def test_bad_requests_refused(server):
    ctx = server.ctx

    def raw(data):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as so:
            with ctx.wrap_socket(so) as t:
                t.sendall(data)
                buf = b""
                while True:
                    chunk = t.recv(65536)
                    if not chunk:
                        break
                    buf += chunk
                return buf

    assert raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 70000 + b"\r\n\r\n") \
        .startswith(b"HTTP/1.1 431")
    assert raw(b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n").startswith(b"HTTP/1.1 400")
    assert raw(b"garbage\r\n\r\n").startswith(b"HTTP/1.1 400")
    assert raw(b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n") \
        .startswith(b"HTTP/1.1 413")
    # still serving
    assert server.request("GET", "/healthz")[0] == 200


NEED = {"logged-in": "viewer", "read-inventory": "viewer", "read-all": "auditor",
        "write": "operator", "admin": "admin"}


def test_every_documented_route_with_every_role(server):
    """Every route of openapi.json, with a token of each role and without:
    allowed roles are never refused (401/403), the others always are (403),
    and nobody anonymous gets in.  Parameters point at nothing, so nothing
    changes."""
    who = make_users(server)
    st, doc, _ = server.request("GET", "/api/v1/openapi.json")
    n = 0
    for path, ops in doc["paths"].items():
        real = re.sub(r"\{[^}]+\}", "nothing-here-999999", path)
        for method, op in ops.items():
            if op.get("security") == []:
                continue
            need = NEED[op["x-aclm-permission"]]
            body = {} if method in ("post", "put", "patch") else None
            if path == "/api/v1/logout":
                continue  # would end the session it is called with
            for role in ROLES:
                st, resp, _ = server.request(method.upper(), real, body, token=who[role]["token"])
                if ROLES.index(role) >= ROLES.index(need):
                    assert st not in (401, 403) and st < 500, (method, path, role, st, resp)
                else:
                    assert st == 403, (method, path, role, st, resp)
            st, _, _ = server.request(method.upper(), real, body)
            assert st == 401, (method, path, "anonymous", st)
            n += 1
    assert n >= 30, n


def test_server_prefers_hybrid_post_quantum(server, aclm):
    """The server's own TLS offers X25519MLKEM768 (aclm-pq loaded before its
    SSL_CTX is made) and keeps classic groups for everyone else."""
    out = aclm.json("scan", "127.0.0.1:%d" % server.port, "--json", check_rc=None)
    ep = out["endpoints"][0]
    assert ep["pq_groups"]["X25519MLKEM768"] is True, ep
    # a client without the provider still gets in, with X25519
    p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % server.port,
                        "-groups", "X25519", "-brief"], input=b"", capture_output=True,
                       timeout=20)
    assert p.returncode == 0, p.stderr
    assert re.search(rb"(Server Temp Key|Negotiated TLS1.3 group): X25519\b", p.stdout + p.stderr), \
        p.stdout + p.stderr
