"""The built-in CA's ACME server on `aclm server`, driven by real clients:
certbot (Debian), lego, aclm's own client (ECDSA and SM2), openssl ocsp /
crl, and a small hostile JWS client (python3-cryptography) for the problem
types of RFC 8555 section 6."""

import base64
import calendar
import hashlib
import http.client
import http.server
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest

from conftest import Aclm
from test_server import Server
from helpers import free_port

SM2_ID = "1234567812345678"


def sh(*cmd, env=None, timeout=180, check=True, cwd=None):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, env=env, timeout=timeout,
                       cwd=cwd)
    if check and p.returncode != 0:
        pytest.fail("%s: exit %d\n%s%s" % (" ".join(map(str, cmd)), p.returncode,
                                          p.stdout.decode(errors="replace"),
                                          p.stderr.decode(errors="replace")), pytrace=False)
    return p


class CaServer:
    """aclm server with an initialised built-in CA; validation goes to
    127.0.0.1 on the ports chosen here."""

    def __init__(self, aclm, env=None):
        self.aclm = aclm
        self.http_port = free_port()
        self.tls_port = free_port()
        aclm("ca", "init", check_rc=0)
        self.env = {"ACLM_CA_HTTP01_PORT": str(self.http_port),
                    "ACLM_CA_TLSALPN01_PORT": str(self.tls_port),
                    "ACLM_CA_VALIDATION_CONNECT_TO": "127.0.0.1"}
        self.env.update(env or {})
        self.start()

    def start(self):
        self.srv = Server(self.aclm, extra_env=self.env)
        self.port = self.srv.port
        self.directory = "https://127.0.0.1:%d/acme/main/directory" % self.port
        self.trust = os.path.join(self.aclm.tmp, "aclm-tls", "server.crt")

    def stop(self):
        rc, out, err = self.srv.stop()
        assert "runtime error" not in err and "AddressSanitizer" not in err, err
        return err

    def get(self, path):
        ctx = ssl.create_default_context(cafile=self.trust)
        ctx.check_hostname = False
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=20)
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read(), r


@pytest.fixture
def casrv(aclm_sqlite):
    s = CaServer(aclm_sqlite)
    yield s
    s.stop()


def roots(ca):
    path = os.path.join(ca.aclm.tmp, "roots.pem")
    ca.aclm("ca", "export-roots", "--out", path, check_rc=0)
    return path


def blocks(path):
    return re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n",
                      open(path).read(), re.S)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


# ---------------------------------------------------------------- certbot

@pytest.mark.skipif(shutil.which("certbot") is None, reason="certbot not installed")
def test_certbot_ecdsa_and_rsa_get_renew_revoke(casrv, tmp_path):
    d = str(tmp_path / "certbot")
    env = dict(os.environ, REQUESTS_CA_BUNDLE=casrv.trust)
    base = ["certbot", "--config-dir", d + "/etc", "--work-dir", d + "/work", "--logs-dir",
            d + "/logs", "--non-interactive"]
    root_bundle = roots(casrv)
    for name, kt in (("ec.corp.internal", "ecdsa"), ("rsa.corp.internal", "rsa")):
        sh(*base, "certonly", "--standalone", "--http-01-port", casrv.http_port,
           "--http-01-address", "127.0.0.1", "--server", casrv.directory, "-d", name,
           "--register-unsafely-without-email", "--agree-tos", "--key-type", kt, env=env)
        live = os.path.join(d, "etc", "live", name)
        out = sh("openssl", "verify", "-CAfile", root_bundle, "-untrusted",
                 live + "/chain.pem", live + "/cert.pem").stdout.decode()
        assert out.strip().endswith("OK")
        text = sh("openssl", "x509", "-in", live + "/cert.pem", "-noout", "-text").stdout.decode()
        assert ("ecdsa-with-SHA256" if kt == "ecdsa" else "sha256WithRSAEncryption") in text
        assert "DNS:" + name in text
    first = open(os.path.join(d, "etc", "live", "ec.corp.internal", "cert.pem")).read()
    sh(*base, "renew", "--force-renewal", "--no-random-sleep-on-renew", env=env)
    second = open(os.path.join(d, "etc", "live", "ec.corp.internal", "cert.pem")).read()
    assert first != second
    cert = os.path.join(d, "etc", "live", "ec.corp.internal", "cert.pem")
    sh(*base, "revoke", "--cert-path", cert, "--server", casrv.directory,
       "--no-delete-after-revoke", "--reason", "keycompromise", env=env)
    serial = sh("openssl", "x509", "-in", cert, "-noout", "-serial").stdout.decode().split("=")[1].strip()
    revoked = casrv.aclm.json("ca", "list", "--revoked", "--json")
    assert [r["serial"] for r in revoked] == [serial]
    assert revoked[0]["reason"] == "keyCompromise"


# ---------------------------------------------------------------- lego

def lego(casrv, tmp_path, *args, check=True):
    env = dict(os.environ, LEGO_CA_CERTIFICATES=casrv.trust)
    return sh("lego", "--accept-tos", "--email", "ops@corp.internal", "--server",
              casrv.directory, "--path", str(tmp_path / "lego"), *args, env=env, check=check)


@pytest.mark.skipif(shutil.which("lego") is None, reason="lego not installed")
def test_lego_http01_tlsalpn01_ip_and_revoke(casrv, tmp_path):
    lego(casrv, tmp_path, "--domains", "h.corp.internal", "--http", "--http.port",
         "127.0.0.1:%d" % casrv.http_port, "run")
    lego(casrv, tmp_path, "--domains", "t.corp.internal", "--key-type", "rsa2048", "--tls",
         "--tls.port", "127.0.0.1:%d" % casrv.tls_port, "run")
    lego(casrv, tmp_path, "--domains", "127.0.0.1", "--http", "--http.port",
         "127.0.0.1:%d" % casrv.http_port, "run")
    certs = str(tmp_path / "lego" / "certificates")
    text = sh("openssl", "x509", "-in", certs + "/127.0.0.1.crt", "-noout", "-text").stdout.decode()
    assert "IP Address:127.0.0.1" in text
    text = sh("openssl", "x509", "-in", certs + "/t.corp.internal.crt", "-noout",
              "-text").stdout.decode()
    assert "sha256WithRSAEncryption" in text and "DNS:t.corp.internal" in text
    lego(casrv, tmp_path, "--domains", "h.corp.internal", "revoke")
    assert len(casrv.aclm.json("ca", "list", "--revoked", "--json")) == 1


# ---------------------------------------------------------------- aclm's own client

def test_aclm_client_issues_ecdsa_and_sm2(casrv, tmp_path):
    client = Aclm(tmp_path / "client", "sqlite:%s" % (tmp_path / "client" / "c.db"), "sqlite")
    write(os.path.join(client.tmp, "aclm.yaml"),
          "acme:\n  cas:\n    - name: builtin\n      directory: %s\n      trust: %s\n"
          % (casrv.directory, casrv.trust))
    root_bundle = roots(casrv)
    os.makedirs(os.path.join(client.tmp, "out"), exist_ok=True)
    for key, name in (("ec256", "e.corp.internal"), ("sm2", "sm.corp.internal")):
        out = client.json("issue", "--json", "--ca", "builtin", "--key", key, "--standalone",
                          "127.0.0.1:%d" % casrv.http_port, name, "--out",
                          os.path.join(client.tmp, "out"))
        assert out[0]["ca"] == "builtin"
    crt = os.path.join(client.tmp, "out", "sm.corp.internal.crt")
    leaf, inter = blocks(crt)[:2]
    leafp = write(os.path.join(client.tmp, "sm.leaf"), leaf)
    interp = write(os.path.join(client.tmp, "sm.int"), inter)
    text = sh("openssl", "x509", "-in", leafp, "-noout", "-text").stdout.decode()
    assert "Signature Algorithm: SM2-with-SM3" in text
    sm2_root = None
    for i, b in enumerate(blocks(root_bundle)):
        p = write(os.path.join(client.tmp, "r%d.pem" % i), b)
        if "SM2" in sh("openssl", "x509", "-in", p, "-noout", "-subject").stdout.decode():
            sm2_root = p
    out = sh("openssl", "verify", "-vfyopt", "distid:" + SM2_ID, "-CAfile", sm2_root,
             interp).stdout.decode()
    assert out.strip().endswith("OK")
    out = sh("openssl", "verify", "-vfyopt", "distid:" + SM2_ID, "-partial_chain", "-CAfile",
             interp, leafp).stdout.decode()
    assert out.strip().endswith("OK")
    # A dual pair (SM2 + ECDSA) for one name, renewed together.
    out = client.json("issue", "--json", "--ca", "builtin", "--dual", "sm2,ec256", "--standalone",
                      "127.0.0.1:%d" % casrv.http_port, "dual.corp.internal")
    assert sorted(o["key"] for o in out) == ["ec256", "sm2"]
    issued = casrv.aclm.json("ca", "list", "--json")
    assert sorted(r["algo"] for r in issued) == ["ecdsa", "ecdsa", "sm2", "sm2"]
    crt = os.path.join(client.tmp, "out", "e.corp.internal.crt")
    leaf, inter = blocks(crt)[:2]
    out = sh("openssl", "verify", "-CAfile", root_bundle, "-untrusted",
             write(os.path.join(client.tmp, "e.int"), inter),
             write(os.path.join(client.tmp, "e.leaf"), leaf)).stdout.decode()
    assert out.strip().endswith("OK")


# ---------------------------------------------------------------- OCSP and CRL over HTTP

def test_ocsp_and_crl_over_http(casrv, tmp_path):
    a = casrv.aclm
    key = str(tmp_path / "k.key")
    csr = str(tmp_path / "k.csr")
    sh("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
    issued = []
    for n in ("good", "bad"):
        sh("openssl", "req", "-new", "-key", key, "-subj", "/CN=%s.corp.internal" % n, "-out", csr)
        chain = str(tmp_path / (n + ".pem"))
        a("ca", "issue", "--csr", csr, "--out", chain, env={"ACLM_CA_URL": "https://127.0.0.1:%d" % casrv.port},
          check_rc=0)
        leaf, inter = blocks(chain)
        issued.append((write(str(tmp_path / (n + ".leaf")), leaf),
                       write(str(tmp_path / "int.pem"), inter)))
    serial = sh("openssl", "x509", "-in", issued[1][0], "-noout", "-serial").stdout.decode().split("=")[1].strip()
    a("ca", "revoke", serial, "--reason", "superseded", check_rc=0)
    root_bundle = roots(casrv)
    url = "https://127.0.0.1:%d/ca/main/ocsp" % casrv.port
    for (leaf, inter), want in zip(issued, ("good", "revoked")):
        p = sh("openssl", "ocsp", "-issuer", inter, "-cert", leaf, "-url", url, "-CAfile",
               root_bundle, "-resp_text")
        out = p.stdout.decode() + p.stderr.decode()
        assert "Response verify OK" in out, out
        assert "%s: %s" % (leaf, want) in out
        assert "OCSP Nonce" in out
    # GET form (RFC 6960 A.1): base64 of the DER request in the path.
    req = str(tmp_path / "req.der")
    sh("openssl", "ocsp", "-issuer", issued[0][1], "-cert", issued[0][0], "-no_nonce",
       "-reqout", req)
    # A '/' of the base64 goes as is (the HTTP engine refuses an encoded one).
    b64 = base64.b64encode(open(req, "rb").read()).decode()
    if "//" not in b64:
        st, body, r = casrv.get("/ca/main/ocsp/" + b64.replace("+", "%2B").replace("=", "%3D"))
        assert st == 200 and r.getheader("Content-Type") == "application/ocsp-response"
        resp = str(tmp_path / "resp.der")
        open(resp, "wb").write(body)
        out = sh("openssl", "ocsp", "-respin", resp, "-issuer", issued[0][1], "-cert",
                 issued[0][0], "-CAfile", root_bundle, "-no_nonce").stdout.decode()
        assert ": good" in out
    # CRL served over HTTP, lists the revoked serial.
    st, body, r = casrv.get("/ca/main/crl/ecdsa")
    assert st == 200 and r.getheader("Content-Type") == "application/pkix-crl"
    crl = str(tmp_path / "c.crl")
    open(crl, "wb").write(body)
    text = sh("openssl", "crl", "-inform", "DER", "-in", crl, "-noout", "-text").stdout.decode()
    assert "Serial Number: " + serial in text and "Superseded" in text
    # Cached until a revocation: the same bytes again, then a new CRL.
    st2, body2, _ = casrv.get("/ca/main/crl/ecdsa")
    assert st2 == 200 and body2 == body
    serial0 = sh("openssl", "x509", "-in", issued[0][0], "-noout", "-serial").stdout.decode().split("=")[1].strip()
    a("ca", "revoke", serial0, check_rc=0)
    st3, body3, _ = casrv.get("/ca/main/crl/ecdsa")
    open(crl, "wb").write(body3)
    text = sh("openssl", "crl", "-inform", "DER", "-in", crl, "-noout", "-text").stdout.decode()
    assert st3 == 200 and "Serial Number: " + serial0 in text and "Serial Number: " + serial in text
    st, body, r = casrv.get("/ca/main/crl/dsa")
    assert st == 404
    # Garbage to the responder: a malformedRequest response, not an error.
    ctx = ssl.create_default_context(cafile=casrv.trust)
    ctx.check_hostname = False
    conn = http.client.HTTPSConnection("127.0.0.1", casrv.port, context=ctx, timeout=20)
    conn.request("POST", "/ca/main/ocsp", body=b"\x30\x03\x02\x01\x00",
                 headers={"Content-Type": "application/ocsp-request"})
    r = conn.getresponse()
    body = r.read()
    assert r.status == 200 and body == bytes.fromhex("30030a0101")


# ---------------------------------------------------------------- hostile JWS

from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class Client:
    """A minimal RFC 8555 client that can also misbehave."""

    def __init__(self, casrv):
        self.s = casrv
        self.key = ec.generate_private_key(ec.SECP256R1())
        n = self.key.public_key().public_numbers()
        self.jwk = {"crv": "P-256", "kty": "EC", "x": b64u(n.x.to_bytes(32, "big")),
                    "y": b64u(n.y.to_bytes(32, "big"))}
        thumb = json.dumps(self.jwk, sort_keys=True, separators=(",", ":")).encode()
        self.thumb = b64u(hashlib.sha256(thumb).digest())
        self.kid = None
        ctx = ssl.create_default_context(cafile=casrv.trust)
        ctx.check_hostname = False
        self.ctx = ctx
        st, body, _ = self.raw("GET", "/acme/main/directory")
        self.dir = json.loads(body)

    def raw(self, method, path, body=None, headers=None):
        conn = http.client.HTTPSConnection("127.0.0.1", self.s.port, context=self.ctx, timeout=30)
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        conn.close()
        return r.status, data, r

    def nonce(self):
        st, _, r = self.raw("HEAD", "/acme/main/new-nonce")
        return r.getheader("Replay-Nonce")

    def sign(self, url, payload, nonce=None, alg="ES256", use_jwk=None, extra=None, key=None):
        prot = {"alg": alg, "nonce": nonce or self.nonce(), "url": url}
        if use_jwk or (use_jwk is None and self.kid is None):
            prot["jwk"] = self.jwk
        else:
            prot["kid"] = self.kid
        prot.update(extra or {})
        p64 = b64u(json.dumps(prot).encode())
        y64 = "" if payload is None else b64u(json.dumps(payload).encode())
        der = (key or self.key).sign(("%s.%s" % (p64, y64)).encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        sig = b64u(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
        return json.dumps({"protected": p64, "payload": y64, "signature": sig})

    def post(self, url, payload, body=None, ctype="application/jose+json", **kw):
        path = url.split(str(self.s.port), 1)[1]
        st, data, r = self.raw("POST", path, body if body is not None else self.sign(url, payload, **kw),
                               {"Content-Type": ctype})
        try:
            return st, json.loads(data), r
        except ValueError:
            return st, data, r

    def register(self):
        st, body, r = self.post(self.dir["newAccount"], {"termsOfServiceAgreed": True})
        assert st == 201, body
        self.kid = r.getheader("Location")
        return body


def ptype(body):
    return body.get("type", "").replace("urn:ietf:params:acme:error:", "")


def test_hostile_requests_get_the_right_problems(aclm):
    casrv = CaServer(aclm, env={"ACLM_CA_DNS_SUFFIXES": "corp.internal",
                                       "ACLM_CA_ORDERS_PER_HOUR": "2"})
    try:
        c = Client(casrv)
        assert set(c.dir["meta"]["profiles"]) == {"default", "shortlived", "intranet"}
        c.register()
        # Same key again: the existing account, 200.
        st, body, r = c.post(c.dir["newAccount"], {"termsOfServiceAgreed": True}, use_jwk=True)
        assert st == 200 and r.getheader("Location") == c.kid
        order_url = c.dir["newOrder"]
        good = {"identifiers": [{"type": "dns", "value": "ok.corp.internal"}]}
        # Reused nonce.
        n = c.nonce()
        st, body, r = c.post(order_url, good, nonce=n)
        assert st == 201, body
        st, body, r = c.post(order_url, good, nonce=n)
        assert st == 400 and ptype(body) == "badNonce"
        assert r.getheader("Replay-Nonce")
        # Made-up nonce.
        st, body, _ = c.post(order_url, good, nonce="AAAAAAAAAAAAAAAAAAAAAA")
        assert ptype(body) == "badNonce"
        # Wrong url in the protected header.
        body = c.sign(c.dir["newAccount"], good)
        st, body, _ = c.post(order_url, None, body=body)
        assert st == 401 and ptype(body) == "unauthorized"
        # alg none (unsigned), and an algorithm off the list.
        prot = b64u(json.dumps({"alg": "none", "nonce": c.nonce(), "url": order_url,
                                "kid": c.kid}).encode())
        raw = json.dumps({"protected": prot, "payload": b64u(json.dumps(good).encode()),
                          "signature": ""})
        st, body, _ = c.post(order_url, None, body=raw)
        assert st == 400 and ptype(body) == "badSignatureAlgorithm" and "ES256" in body["algorithms"]
        st, body, _ = c.post(order_url, good, alg="HS256")
        assert ptype(body) == "badSignatureAlgorithm"
        # A signature by another key.
        other = ec.generate_private_key(ec.SECP256R1())
        st, body, _ = c.post(order_url, good, key=other)
        assert st == 400 and ptype(body) == "malformed" and "signature" in body["detail"]
        # Both kid and jwk.
        st, body, _ = c.post(order_url, good, extra={"jwk": c.jwk})
        assert st == 400 and ptype(body) == "malformed" and "exactly one" in body["detail"]
        # Payload over the limit.
        big = {"identifiers": [{"type": "dns", "value": "ok.corp.internal"}], "pad": "x" * 70000}
        st, body, _ = c.post(order_url, big)
        assert st == 413 and ptype(body) == "malformed"
        # Not JOSE.
        st, body, _ = c.post(order_url, good, ctype="application/json")
        assert st == 415 and ptype(body) == "malformed"
        # Garbage and truncated bodies.
        for junk in ("{", "[]", "{\"protected\":\"!!\",\"payload\":\"\",\"signature\":\"\"}"):
            st, body, _ = c.post(order_url, None, body=junk)
            assert st == 400 and ptype(body) == "malformed", junk
        # Unknown account.
        real = c.kid
        c.kid = real[:-4] + "zzzz"
        st, body, _ = c.post(order_url, good)
        assert st == 400 and ptype(body) == "accountDoesNotExist"
        c.kid = real
        # An identifier outside the suffixes; a public IP where only private ones are allowed.
        st, body, _ = c.post(order_url, {"identifiers": [{"type": "dns", "value": "www.example.com"}]})
        assert st == 400 and ptype(body) == "rejectedIdentifier" and "www.example.com" in body["detail"]
        st, body, _ = c.post(order_url, {"identifiers": [{"type": "ip", "value": "8.8.8.8"}]})
        assert st == 400 and ptype(body) == "rejectedIdentifier" and "8.8.8.8" in body["detail"]
        st, body, _ = c.post(order_url, {"identifiers": [{"type": "email", "value": "a@b"}]})
        assert ptype(body) == "unsupportedIdentifier"
        st, body, _ = c.post(order_url, {"identifiers": [{"type": "dns", "value": "a.corp.internal"}],
                                         "profile": "forever"})
        assert ptype(body) == "invalidProfile"
        # Finalize too early; then the rate limit (2 orders an hour).
        st, order, r = c.post(order_url, good)
        assert st == 201
        st, body, _ = c.post(order["finalize"], {"csr": "AAAA"})
        assert st == 403 and ptype(body) == "orderNotReady"
        st, body, r = c.post(order_url, good)
        assert st == 429 and ptype(body) == "rateLimited" and int(r.getheader("Retry-After")) > 0
        # Another account cannot read this account's order.
        c2 = Client(casrv)
        c2.register()
        st, body, _ = c2.post(r.getheader("Link") and order["finalize"].rsplit("/", 1)[0], None)
        assert st == 403 and ptype(body) == "unauthorized"
    finally:
        casrv.stop()


def serve_http01(port, tokens):
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            tok = self.path.rsplit("/", 1)[-1]
            if tok in tokens:
                self.send_response(200)
                self.end_headers()
                self.wfile.write(tokens[tok].encode())
            else:
                self.send_response(404)
                self.end_headers()

        def log_message(self, *a):
            pass

    srv = http.server.HTTPServer(("127.0.0.1", port), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    return srv


def test_restart_in_the_middle_of_an_order(aclm, tmp_path):
    casrv = CaServer(aclm)
    c = Client(casrv)
    c.register()
    st, order, r = c.post(c.dir["newOrder"], {"identifiers": [{"type": "dns", "value": "re.corp.internal"}]})
    assert st == 201
    order_url = r.getheader("Location")
    st, authz, _ = c.post(order["authorizations"][0], None)
    chal = [x for x in authz["challenges"] if x["type"] == "http-01"][0]
    casrv.stop()
    # A new process, same database: the order and its authorization are there.
    casrv.start()
    c.s = casrv
    responder = serve_http01(casrv.http_port, {chal["token"]: chal["token"] + "." + c.thumb})
    try:
        chal_url = chal["url"].replace(chal["url"].split("/")[2], "127.0.0.1:%d" % casrv.port)
        base = "https://127.0.0.1:%d" % casrv.port
        fix = lambda u: base + "/" + u.split("/", 3)[3]
        c.dir = {k: (fix(v) if isinstance(v, str) else v) for k, v in c.dir.items()}
        c.kid = fix(c.kid)
        st, body, _ = c.post(chal_url, {})
        assert st == 200 and body["status"] in ("processing", "valid")
        for _ in range(150):
            st, o, _ = c.post(fix(order_url), None)
            if o["status"] != "pending":
                break
            time.sleep(0.2)
        assert o["status"] == "ready", o
        key = ec.generate_private_key(ec.SECP256R1())
        csr = x509.CertificateSigningRequestBuilder().subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "re.corp.internal")])).add_extension(
            x509.SubjectAlternativeName([x509.DNSName("re.corp.internal")]), critical=False).sign(
            key, hashes.SHA256())
        # A CSR for another name is refused with badCSR.
        bad = x509.CertificateSigningRequestBuilder().subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "other.corp.internal")])).sign(
            key, hashes.SHA256())
        st, body, _ = c.post(fix(o["finalize"]), {"csr": b64u(bad.public_bytes(serialization.Encoding.DER))})
        assert st == 400 and ptype(body) == "badCSR"
        st, o, _ = c.post(fix(o["finalize"]), {"csr": b64u(csr.public_bytes(serialization.Encoding.DER))})
        assert st == 200 and o["status"] == "valid", o
        st, acct, _ = c.post(c.kid, None)
        st, lst, _ = c.post(fix(acct["orders"]), None)
        assert st == 200 and fix(order_url) in lst["orders"]
        st, pem, r = c.post(fix(o["certificate"]), None)
        assert st == 200 and r.getheader("Content-Type") == "application/pem-certificate-chain"
        assert pem.count(b"BEGIN CERTIFICATE") == 2
        # ARI: the renewal window of this certificate; renew-early moves it to now.
        cert = x509.load_pem_x509_certificate(pem)
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
        sn = cert.serial_number.to_bytes((cert.serial_number.bit_length() + 8) // 8, "big")
        certid = b64u(aki) + "." + b64u(sn)
        st, body, r = casrv.get("/acme/main/renewal-info/" + certid)
        assert st == 200, body
        win = json.loads(body)["suggestedWindow"]
        assert win["start"] > time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 30 * 86400))
        casrv.aclm("ca", "renew-early", "%X" % cert.serial_number, check_rc=0)
        st, body, r = casrv.get("/acme/main/renewal-info/" + certid)
        win = json.loads(body)["suggestedWindow"]
        assert win["start"] <= time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    finally:
        responder.shutdown()
        casrv.stop()


def test_auto_init_first_start_and_tls_from_the_ca(aclm_sqlite):
    a = aclm_sqlite
    srv = Server(a, extra_env={"ACLM_CA_AUTO_INIT": "true"})
    try:
        out = "".join(srv.first_lines)
        assert "built-in CA 'main' created" in out
        crt = os.path.join(a.tmp, "aclm-tls", "server.crt")
        assert len(blocks(crt)) == 3
        assert oct(os.stat(os.path.join(a.tmp, "aclm-tls", "server.key")).st_mode & 0o777) == "0o600"
        # The file is the trust anchor: hostname and chain check out.
        ctx = ssl.create_default_context(cafile=crt)
        conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=ctx, timeout=20)
        conn.request("GET", "/acme/main/directory")
        r = conn.getresponse()
        assert r.status == 200 and "newOrder" in json.loads(r.read())
        assert sorted(h["algo"] for h in a.json("ca", "init", "--json")) == ["ecdsa", "rsa", "sm2"]
    finally:
        rc, _, err = srv.stop()
        assert "AddressSanitizer" not in err
    # A second start creates nothing new.
    srv = Server(a, extra_env={"ACLM_CA_AUTO_INIT": "true"})
    try:
        assert "built-in CA" not in "".join(srv.first_lines)
    finally:
        srv.stop()


class TxtServer:
    """A tiny authoritative DNS server on UDP loopback answering TXT queries
    from a file of "fqdn value" lines (written by lego's exec provider)."""

    def __init__(self, path):
        import socketserver
        self.path = path
        open(path, "w").close()
        outer = self

        class H(socketserver.BaseRequestHandler):
            def handle(self):
                data, sock = self.request
                try:
                    sock.sendto(outer.answer(data), self.client_address)
                except Exception:  # a malformed query gets no answer
                    pass

        self.srv = socketserver.UDPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def records(self):
        out = {}
        for line in open(self.path):
            parts = line.split()
            if len(parts) == 2:
                out.setdefault(parts[0].rstrip(".").lower(), []).append(parts[1])
        return out

    def answer(self, q):
        qid, flags = q[:2], q[2:4]
        i, labels = 12, []
        while q[i] != 0:
            labels.append(q[i + 1:i + 1 + q[i]].decode())
            i += 1 + q[i]
        qtype = int.from_bytes(q[i + 1:i + 3], "big")
        question = q[12:i + 5]
        name = ".".join(labels).lower()
        vals = self.records().get(name, []) if qtype == 16 else []
        ans = b""
        for v in vals:
            rd = bytes([len(v)]) + v.encode()
            ans += b"\xc0\x0c" + (16).to_bytes(2, "big") + b"\x00\x01" + (0).to_bytes(4, "big") \
                + len(rd).to_bytes(2, "big") + rd
        rcode = 0 if vals or name in self.records() else 3
        return qid + bytes([0x84, rcode]) + b"\x00\x01" + len(vals).to_bytes(2, "big") + \
            b"\x00\x00\x00\x00" + question + ans

    def stop(self):
        self.srv.shutdown()


@pytest.mark.skipif(shutil.which("lego") is None, reason="lego not installed")
def test_lego_dns01_with_wildcard(aclm_sqlite, tmp_path):
    records = str(tmp_path / "txt")
    dns = TxtServer(records)
    casrv = CaServer(aclm_sqlite, env={"ACLM_CA_DNS_RESOLVER": "127.0.0.1:%d" % dns.port})
    try:
        hook = str(tmp_path / "hook.sh")
        write(hook, "#!/bin/sh\n[ \"$1\" = present ] && echo \"$2 $3\" >> %s\nexit 0\n" % records)
        os.chmod(hook, 0o755)
        env = dict(os.environ, LEGO_CA_CERTIFICATES=casrv.trust, EXEC_PATH=hook,
                   EXEC_PROPAGATION_TIMEOUT="10", EXEC_POLLING_INTERVAL="1",
                   EXEC_SEQUENCE_INTERVAL="1")
        sh("lego", "--accept-tos", "--email", "ops@corp.internal", "--server", casrv.directory,
           "--path", str(tmp_path / "lego"), "--domains", "*.w.corp.internal", "--domains",
           "w.corp.internal", "--dns", "exec", "--dns.disable-cp", "run", env=env)
        crt = str(tmp_path / "lego" / "certificates" / "_.w.corp.internal.crt")
        text = sh("openssl", "x509", "-in", crt, "-noout", "-text").stdout.decode()
        assert "DNS:*.w.corp.internal" in text and "DNS:w.corp.internal" in text
        # A wrong TXT value: the authorization becomes invalid.
        write(hook, "#!/bin/sh\n[ \"$1\" = present ] && echo \"$2 wrongvalue\" >> %s\nexit 0\n"
              % records)
        p = sh("lego", "--accept-tos", "--email", "ops@corp.internal", "--server",
               casrv.directory, "--path", str(tmp_path / "lego"), "--domains", "x.corp.internal",
               "--dns", "exec", "--dns.disable-cp", "run", env=env, check=False)
        assert p.returncode != 0 and b"unauthorized" in p.stdout + p.stderr
    finally:
        casrv.stop()
        dns.stop()


def test_external_account_binding(aclm_sqlite, tmp_path):
    import hmac
    key = os.urandom(32)
    casrv = CaServer(aclm_sqlite, env={"ACLM_CA_EAB_KEYS": "team1:" + b64u(key),
                                       "ACLM_CA_EAB_REQUIRED": "true"})
    try:
        c = Client(casrv)
        assert c.dir["meta"]["externalAccountRequired"] is True
        url = c.dir["newAccount"]
        st, body, _ = c.post(url, {"termsOfServiceAgreed": True})
        assert st == 400 and ptype(body) == "externalAccountRequired"

        def eab(kid, k):
            prot = b64u(json.dumps({"alg": "HS256", "kid": kid, "url": url}).encode())
            pay = b64u(json.dumps(c.jwk).encode())
            mac = hmac.new(k, ("%s.%s" % (prot, pay)).encode(), hashlib.sha256).digest()
            return {"protected": prot, "payload": pay, "signature": b64u(mac)}

        st, body, _ = c.post(url, {"externalAccountBinding": eab("team1", os.urandom(32))})
        assert st == 401 and ptype(body) == "unauthorized" and "MAC" in body["detail"]
        st, body, _ = c.post(url, {"externalAccountBinding": eab("team2", key)})
        assert st == 401 and ptype(body) == "unauthorized"
        st, body, _ = c.post(url, {"externalAccountBinding": eab("team1", key)})
        assert st == 201, body
        if shutil.which("lego"):
            lego(casrv, tmp_path, "--eab", "--kid", "team1", "--hmac", b64u(key), "--domains",
                 "eab.corp.internal", "--http", "--http.port", "127.0.0.1:%d" % casrv.http_port,
                 "run")
    finally:
        casrv.stop()


def test_rate_limit_per_registered_name(aclm):
    casrv = CaServer(aclm, env={"ACLM_CA_ORDERS_PER_NAME_PER_HOUR": "2",
                                       "ACLM_CA_ORDERS_PER_HOUR": "0"})
    try:
        c1, c2 = Client(casrv), Client(casrv)
        c1.register()
        c2.register()
        order = lambda c, n: c.post(c.dir["newOrder"], {"identifiers": [{"type": "dns", "value": n}]})
        assert order(c1, "a.x.corp.internal")[0] == 201
        assert order(c2, "b.y.corp.internal")[0] == 201
        st, body, r = order(c2, "c.corp.internal")
        assert st == 429 and ptype(body) == "rateLimited" and "corp.internal" in body["detail"]
        assert int(r.getheader("Retry-After")) > 0
        # Another registered name is not affected.
        assert order(c1, "a.lab.internal")[0] == 201
    finally:
        casrv.stop()


@pytest.mark.skipif(shutil.which("lego") is None, reason="lego not installed")
def test_lego_dns01_rfc2136_bind_wildcard(aclm_sqlite, tmp_path):
    """lego adds the TXT records to a real BIND by RFC 2136 (TSIG); aclm's
    validator asks that BIND (ca.dns_resolver)."""
    from test_acme_rfc2136 import start_named
    proc, port, keyfile = start_named(str(tmp_path / "named"))
    casrv = CaServer(aclm_sqlite, env={"ACLM_CA_DNS_RESOLVER": "127.0.0.1:%d" % port,
                                       "ACLM_CA_DNS_SUFFIXES": "dyn.test"})
    try:
        secret = re.search(r'secret "([^"]+)"', open(keyfile).read()).group(1)
        env = dict(os.environ, LEGO_CA_CERTIFICATES=casrv.trust,
                   RFC2136_NAMESERVER="127.0.0.1:%d" % port, RFC2136_TSIG_KEY="aclm-key",
                   RFC2136_TSIG_SECRET=secret, RFC2136_TSIG_ALGORITHM="hmac-sha256.",
                   RFC2136_PROPAGATION_TIMEOUT="20", RFC2136_POLLING_INTERVAL="1",
                   RFC2136_SEQUENCE_INTERVAL="1", RFC2136_TTL="60")
        sh("lego", "--accept-tos", "--email", "ops@dyn.test", "--server", casrv.directory,
           "--path", str(tmp_path / "lego"), "--domains", "*.dyn.test", "--domains", "dyn.test",
           "--dns", "rfc2136", "--dns.resolvers", "127.0.0.1:%d" % port, "--dns.disable-cp",
           "run", env=env)
        crt = str(tmp_path / "lego" / "certificates" / "_.dyn.test.crt")
        text = sh("openssl", "x509", "-in", crt, "-noout", "-text").stdout.decode()
        assert "DNS:*.dyn.test" in text and "DNS:dyn.test" in text
    finally:
        casrv.stop()
        proc.kill()
        proc.wait()


def test_tlsalpn01_for_an_ip_address(aclm_sqlite, tmp_path):
    """RFC 8737 + RFC 8738: the validator connects with ALPN acme-tls/1 and
    the reverse-mapping SNI, and checks the acmeIdentifier extension."""
    import datetime
    import ipaddress
    casrv = CaServer(aclm_sqlite)
    seen = {}
    srv_sock = None
    try:
        c = Client(casrv)
        c.register()
        st, order, r = c.post(c.dir["newOrder"], {"identifiers": [{"type": "ip", "value": "127.0.0.1"}]})
        assert st == 201, order
        st, authz, _ = c.post(order["authorizations"][0], None)
        chal = [x for x in authz["challenges"] if x["type"] == "tls-alpn-01"][0]
        keyauth = chal["token"] + "." + c.thumb
        digest = hashlib.sha256(keyauth.encode()).digest()
        k = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.utcnow()
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alpn")]))
                .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alpn")]))
                .public_key(k.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
                .add_extension(x509.UnrecognizedExtension(
                    x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31"), b"\x04\x20" + digest), critical=True)
                .sign(k, hashes.SHA256()))
        cp, kp = str(tmp_path / "alpn.crt"), str(tmp_path / "alpn.key")
        open(cp, "wb").write(cert.public_bytes(serialization.Encoding.PEM))
        open(kp, "wb").write(k.private_bytes(serialization.Encoding.PEM,
                                             serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cp, kp)
        ctx.set_alpn_protocols(["acme-tls/1"])
        def on_sni(sock, name, ctx_):
            seen["sni"] = name  # returns None: go on with the handshake

        ctx.sni_callback = on_sni
        srv_sock = socket.socket()
        srv_sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv_sock.bind(("127.0.0.1", casrv.tls_port))
        srv_sock.listen(4)

        def serve():
            try:
                conn, _ = srv_sock.accept()
                with ctx.wrap_socket(conn, server_side=True) as t:
                    seen["alpn"] = t.selected_alpn_protocol()
                    t.recv(1)
            except (OSError, ssl.SSLError):
                pass

        threading.Thread(target=serve, daemon=True).start()
        st, body, _ = c.post(chal["url"], {})
        assert st == 200, body
        for _ in range(100):
            st, a, _ = c.post(order["authorizations"][0], None)
            if a["status"] != "pending":
                break
            time.sleep(0.1)
        assert a["status"] == "valid", json.dumps([x.get("error") for x in a["challenges"]])
        assert seen.get("alpn") == "acme-tls/1"
        assert seen.get("sni") == "1.0.0.127.in-addr.arpa"
    finally:
        if srv_sock is not None:
            srv_sock.close()
        casrv.stop()


# ---------------------------------------------------------------- ARI and profiles, aclm's client

def test_aclm_client_follows_ari_and_profiles(casrv, tmp_path):
    """aclm's ACME client against aclm's ACME server (issue 5's ARI and
    profile proof, which Debian's Pebble cannot give): a certificate is not
    renewed inside its window; `aclm ca renew-early` moves the window to now
    and `aclm renew --all` renews at once, sending `replaces`; a profile the
    directory does not advertise is refused before any order; a known one
    shapes the certificate."""
    client = Aclm(tmp_path / "client", "sqlite:%s" % (tmp_path / "client" / "c.db"), "sqlite")
    write(os.path.join(client.tmp, "aclm.yaml"),
          "acme:\n  cas:\n    - name: builtin\n      directory: %s\n      trust: %s\n"
          % (casrv.directory, casrv.trust))
    solver = ["--standalone", "127.0.0.1:%d" % casrv.http_port]
    # an unknown profile: a clear error, and no order at the CA
    orders_before = len(casrv.aclm.json("ca", "list", "--json"))
    rc, out, err = client.run("issue", "--ca", "builtin", "--profile", "forever", *solver,
                              "p.corp.internal")
    assert rc != 0 and "forever" in err, err
    assert len(casrv.aclm.json("ca", "list", "--json")) == orders_before
    # a known profile: shortlived is 7 days
    out = client.json("issue", "--json", "--ca", "builtin", "--profile", "shortlived", *solver,
                      "short.corp.internal")
    row = client.json("show", "--json", str(out[0]["cert_id"]))
    life = (time.mktime(time.strptime(row["not_after"], "%Y-%m-%dT%H:%M:%SZ")) -
            time.mktime(time.strptime(row["not_before"], "%Y-%m-%dT%H:%M:%SZ")))
    assert 6 * 86400 < life <= 7 * 86400 + 60, row
    # the default profile (90 days): not due now; the CA's window is weeks away
    out = client.json("issue", "--json", "--ca", "builtin", *solver, "ari.corp.internal")
    first = out[0]["cert_id"]
    mid = out[0]["managed_id"]

    def planned():
        rows = client.json("renew", "--all", "--json")
        r = [x for x in rows if x["name"].startswith("ari.corp.internal")][0]["result"]
        m = re.search(r"renews after (\S+?)(,|\))", r)
        assert m and "suggested by the CA" in r, r
        return calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%SZ"))

    before = planned()
    assert before > time.time() + 30 * 86400
    cur = client.sql("SELECT current_cert_id FROM managed_certificates WHERE id = %d" % mid)
    assert int(cur[0][0]) == first, "renewed before its window"
    # the operator moves the window to now (mass early renewal, spread over
    # an hour): the client follows it at its next run
    serial = client.json("show", "--json", str(first))["serial"]
    casrv.aclm("ca", "renew-early", serial, check_rc=0)
    after = planned()
    assert after <= time.time() + 3600 + 60, (before, after)
    # a window in the past (renew-early as of an incident two hours ago):
    # the next run renews at once, without --force, naming what it replaces
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 7200))
    casrv.aclm("ca", "renew-early", serial, "--at", at, check_rc=0)
    client.run("renew", "--all", check_rc=0)
    cur = client.sql("SELECT current_cert_id FROM managed_certificates WHERE id = %d" % mid)
    assert int(cur[0][0]) != first, "a window in the past did not renew at once"
    orders = client.sql("SELECT replaces FROM acme_orders WHERE managed_id = %d ORDER BY id" % mid)
    assert orders[-1][0] not in ("", "None"), "the renewal did not send replaces"
    replaced = orders[-1][0]
    # A CA that rejects `replaces`: the certificate was replaced already, so
    # a client that lost track and names it again gets alreadyReplaced
    # (RFC 9773) and orders without it.
    second = int(client.sql("SELECT current_cert_id FROM managed_certificates WHERE id = %d"
                            % mid)[0][0])
    client.sql("UPDATE managed_certificates SET current_cert_id = %d WHERE id = %d" % (first, mid))
    rc, _, err = client.run("renew", "--force", str(mid))
    assert rc == 0, err
    assert "replaces refused" in err and "alreadyReplaced" in err, err
    orders = client.sql("SELECT replaces FROM acme_orders WHERE managed_id = %d ORDER BY id" % mid)
    assert orders[-1][0] in ("", "None"), orders
    cur = int(client.sql("SELECT current_cert_id FROM managed_certificates WHERE id = %d"
                         % mid)[0][0])
    assert cur not in (first, second)
    # what was sent is an ARI certificate id (base64url AKI "." base64url serial)
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", replaced), replaced


@pytest.fixture
def casrv_quick_ari(aclm_sqlite):
    s = CaServer(aclm_sqlite, env={"ACLM_CA_ARI_RETRY_AFTER": "2s"})
    yield s
    s.stop()


def test_server_follows_a_moved_ari_window(casrv_quick_ari, tmp_path):
    """A fleet renews when its CA says so: aclm server's scheduler asks ARI
    again at the Retry-After of the CA's last answer (2 s here), so after
    `aclm ca renew-early` (an incident an hour ago) the managed certificate
    is renewed without anyone running a command."""
    casrv = casrv_quick_ari
    client = Aclm(tmp_path / "client", "sqlite:%s" % (tmp_path / "client" / "c.db"), "sqlite")
    cfg = ("acme:\n  cas:\n    - name: builtin\n      directory: %s\n      trust: %s\n"
           "scheduler:\n  interval: 1s\n  ari_recheck: 2s\n" % (casrv.directory, casrv.trust))
    write(os.path.join(client.tmp, "aclm.yaml"), cfg)
    out = client.json("issue", "--json", "--ca", "builtin", "--standalone",
                      "127.0.0.1:%d" % casrv.http_port, "fleet.corp.internal")
    first, mid = out[0]["cert_id"], out[0]["managed_id"]
    srv = Server(client, config=cfg)
    try:
        # the first renew run asks ARI and keeps the CA's Retry-After
        deadline = time.time() + 30
        while time.time() < deadline and int(client.sql(
                "SELECT ari_check_at FROM managed_certificates WHERE id = %d" % mid)[0][0]) == 0:
            time.sleep(0.5)
        check_at = int(client.sql("SELECT ari_check_at FROM managed_certificates WHERE id = %d"
                                  % mid)[0][0])
        assert 0 < check_at <= time.time() + 70, check_at  # 2 s, clamped to at least 60 s
        cur = client.sql("SELECT current_cert_id FROM managed_certificates WHERE id = %d" % mid)
        assert int(cur[0][0]) == first
        serial = client.json("show", "--json", str(first))["serial"]
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 7200))
        casrv.aclm("ca", "renew-early", serial, "--at", at, check_rc=0)
        deadline = time.time() + 100
        while time.time() < deadline:
            cur = client.sql("SELECT current_cert_id FROM managed_certificates WHERE id = %d"
                             % mid)
            if int(cur[0][0]) != first:
                break
            time.sleep(0.5)
        assert int(cur[0][0]) != first, "the scheduler did not follow the CA's window"
        orders = client.sql("SELECT replaces FROM acme_orders WHERE managed_id = %d ORDER BY id"
                            % mid)
        assert orders[-1][0] not in ("", "None")
    finally:
        rc, _, err = srv.stop()
    assert rc == 0, err
