"""A CA that misbehaves (a hostile peer written here, plain HTTP on
loopback): garbage and oversized documents, a missing nonce, wrong content
types, a bogus problem document.  Each is one clear error naming the CA and
the step; nothing stored before is lost; responses are bounded."""

import http.server
import json
import threading

import pytest

from acme_pebble import write_config


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def _send(self, code, body, ctype="application/json", headers=()):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def directory(self, mode):
        base = "http://127.0.0.1:%d/%s" % (self.server.server_port, mode)
        return json.dumps({"newNonce": base + "/nonce", "newAccount": base + "/acct",
                           "newOrder": base + "/order"})

    def do_GET(self):
        mode, _, what = self.path.strip("/").partition("/")
        if what != "dir":
            return self._send(404, "{}")
        if mode == "garbage":
            return self._send(200, "not json {")
        if mode == "huge":
            return self._send(200, "{" + " " * (2 << 20) + "}")
        if mode == "array":
            return self._send(200, "[1,2]")
        return self._send(200, self.directory(mode))

    do_HEAD = do_GET

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(n)
        mode, _, what = self.path.strip("/").partition("/")
        nonce = [("Replay-Nonce", "n%d" % id(self))]
        if what == "acct":
            return self._send(201, "{}", headers=nonce + [("Location", "http://127.0.0.1/acct/1")])
        if what == "order" and mode == "ctype":
            return self._send(201, "<html>", ctype="text/html", headers=nonce + [("Location", "x")])
        if what == "order" and mode == "problem":
            return self._send(403, json.dumps({
                "type": "urn:ietf:params:acme:error:rejectedIdentifier",
                "detail": "policy forbids", "subproblems": [{
                    "type": "urn:ietf:params:acme:error:rejectedIdentifier", "detail": "nope",
                    "identifier": {"type": "dns", "value": "bad.example.test"}}]}),
                ctype="application/problem+json", headers=nonce)
        if what == "order" and mode == "noloc":
            return self._send(201, json.dumps({"status": "pending"}), headers=nonce)
        return self._send(500, "oops", ctype="text/plain", headers=nonce)


class NonceHandler(Handler):
    def do_HEAD(self):
        mode, _, what = self.path.strip("/").partition("/")
        if what == "nonce":
            hdr = [] if mode == "nononce" else [("Replay-Nonce", "abc")]
            return self._send(200, "", headers=hdr)
        return Handler.do_GET(self)


@pytest.fixture(scope="module")
def badca():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NonceHandler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv.server_port
    srv.shutdown()


CASES = [
    ("garbage", "directory is not JSON"),
    ("array", "directory is not a JSON object"),
    ("huge", "larger than 1048576 bytes"),
    ("nononce", "newNonce: no Replay-Nonce header"),
    ("ctype", "newOrder: expected application/json, got 'text/html'"),
    ("problem", "newOrder: urn:ietf:params:acme:error:rejectedIdentifier: policy forbids "
                "(bad.example.test: urn:ietf:params:acme:error:rejectedIdentifier: nope)"),
    ("noloc", "newOrder: no Location header"),
]


@pytest.mark.parametrize("mode,expect", CASES)
def test_bad_ca(aclm_sqlite, pki, badca, mode, expect):
    aclm_sqlite.import_json(pki.tree)
    before = len(aclm_sqlite.list())
    write_config(aclm_sqlite, [{"name": "bad-" + mode,
                                "directory": "http://127.0.0.1:%d/%s/dir" % (badca, mode)}])
    rc, out, err = aclm_sqlite.run("issue", "bad.example.test", "--standalone", "127.0.0.1:0",
                                   check_rc=1)
    assert "CA bad-%s" % mode in err and expect in err, err
    assert len(err.strip().splitlines()) <= 2, err
    assert len(aclm_sqlite.list()) == before


def test_failures_back_off(aclm_sqlite, badca):
    import time
    write_config(aclm_sqlite, [{"name": "bad", "directory": "http://127.0.0.1:%d/garbage/dir" % badca}])
    for _ in range(3):
        aclm_sqlite.run("issue", "bo.example.test", "--standalone", "127.0.0.1:0", check_rc=1)
    failures, nxt, err = aclm_sqlite.sql(
        "SELECT failures, next_attempt_at, last_error FROM managed_certificates")[0]
    assert failures == "3" and "CA bad" in err
    # 5 min, doubled per failure before this one: 20 min
    assert abs(int(nxt) - (int(time.time()) + 1200)) < 60
    res = aclm_sqlite.json("renew", "--all", "--json")
    assert res[0]["result"].startswith("backing off")
