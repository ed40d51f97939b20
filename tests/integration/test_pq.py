"""The aclm-pq provider against real peers: Debian's openssl s_server /
s_client for every hybrid group (direct, after HelloRetryRequest, and a
mismatch), a hand-made hostile ClientHello that must be refused with
illegal_parameter, and Chromium negotiating X25519MLKEM768 with nginx."""
import hashlib
import json
import os
import shutil
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest
from helpers import free_port

REPO = Path(__file__).resolve().parents[2]
GROUPS = ["X25519MLKEM768", "SecP256r1MLKEM768", "SecP384r1MLKEM1024",
          "curveSM2MLKEM768", "MLKEM768", "MLKEM1024"]
CODEPOINTS = {"X25519MLKEM768": 0x11EC, "SecP256r1MLKEM768": 0x11EB,
              "SecP384r1MLKEM1024": 0x11ED, "curveSM2MLKEM768": 0x11EE,
              "MLKEM768": 0x0201, "MLKEM1024": 0x0202}
EK_LEN = {768: 1184, 1024: 1568}


def module_dir():
    d = Path(os.environ.get("ACLM_PQ_MODULE_DIR", REPO / "build" / "src" / "crypto"))
    if not (d / "aclm-pq.so").exists():
        pytest.fail(f"{d}/aclm-pq.so not found: build it (make build) or set ACLM_PQ_MODULE_DIR")
    return d


def wait_port(port, proc, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early: {proc.stderr.read() if proc.stderr else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listening on port {port}")


@pytest.fixture(scope="module")
def server_cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("pqcert")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", d / "key.pem", "-out", d / "cert.pem", "-days", "2",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    return d / "cert.pem", d / "key.pem"


def provider_args(with_provider=True):
    if not with_provider:
        return []
    return ["-provider-path", str(module_dir()), "-provider", "aclm-pq", "-provider", "default"]


class Server:
    def __init__(self, cert, key, groups, with_provider=True):
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["openssl", "s_server", *provider_args(with_provider), "-cert", str(cert), "-key", str(key),
             "-accept", f"127.0.0.1:{self.port}", "-groups", groups, "-tls1_3", "-www", "-quiet"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait_port(self.port, self.proc)

    def stop(self):
        self.proc.kill()
        self.proc.wait(timeout=5)


def s_client(port, groups, with_provider=True):
    return subprocess.run(
        ["openssl", "s_client", *provider_args(with_provider), "-connect", f"127.0.0.1:{port}",
         "-groups", groups, "-tls1_3", "-servername", "localhost", "-ign_eof"],
        input="GET / HTTP/1.0\r\n\r\n", capture_output=True, text=True, timeout=20)


@pytest.mark.parametrize("group", GROUPS)
def test_group_interoperates_with_openssl(server_cert, group):
    srv = Server(*server_cert, groups=group)
    try:
        # only this group on both sides: success means it was negotiated
        r = s_client(srv.port, group)
        assert r.returncode == 0, r.stderr
        assert "Protocol  : TLSv1.3" in r.stdout or "TLSv1.3" in r.stdout
        assert "s_server" in r.stdout.lower() or "HTTP/1.0 200" in r.stdout
        # the client first offers an X25519 share: the server asks again (HRR)
        r = s_client(srv.port, f"X25519:{group}")
        assert r.returncode == 0, r.stderr
    finally:
        srv.stop()


def test_group_mismatch_fails_cleanly(server_cert):
    srv = Server(*server_cert, groups="SecP256r1MLKEM768")
    try:
        r = s_client(srv.port, "X25519MLKEM768")
        assert r.returncode != 0
        assert "handshake failure" in r.stderr or "alert" in r.stderr
    finally:
        srv.stop()


def test_stock_openssl_without_provider_does_not_know_the_groups():
    r = subprocess.run(["openssl", "s_client", "-groups", "X25519MLKEM768", "-connect", "127.0.0.1:9"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode != 0


# --- a hostile ClientHello ---------------------------------------------------

def client_hello(group_id, share):
    def ext(t, body):
        return struct.pack("!HH", t, len(body)) + body
    exts = b"".join([
        ext(43, b"\x02\x03\x04"),                                   # supported_versions: TLS 1.3
        ext(10, struct.pack("!HH", 2, group_id)),                   # supported_groups
        ext(13, struct.pack("!H4H", 8, 0x0403, 0x0804, 0x0805, 0x0401)),  # signature_algorithms
        ext(51, struct.pack("!HHH", len(share) + 4, group_id, len(share)) + share),  # key_share
    ])
    body = (b"\x03\x03" + os.urandom(32) + b"\x20" + os.urandom(32) +
            struct.pack("!HH", 2, 0x1301) + b"\x01\x00" + struct.pack("!H", len(exts)) + exts)
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


def first_record(port, data):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        head = b""
        while len(head) < 7:
            chunk = s.recv(7 - len(head))
            if not chunk:
                break
            head += chunk
        return head


ILLEGAL_PARAMETER = 47


def filler(n, seed):
    """Deterministic bytes (test ids must be the same on every xdist worker)."""
    out = b""
    block = seed.encode()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block
    return out[:n]


BAD_SHARES = [
    pytest.param("X25519MLKEM768", b"\xff\xff" + filler(1182 + 32, "a"), id="x25519mlkem768-ek-coefficient-over-q"),
    pytest.param("X25519MLKEM768", filler(1000, "b"), id="x25519mlkem768-wrong-length"),
    pytest.param("MLKEM768", b"\xff" * 1184, id="mlkem768-ek-modulus-check"),
    pytest.param("SecP256r1MLKEM768", b"\x04" + b"\x01" * 64 + b"\x00" * 1184, id="p256-point-off-curve"),
    pytest.param("curveSM2MLKEM768", b"\x04" + b"\x02" * 64 + b"\x00" * 1184, id="sm2-point-off-curve"),
    pytest.param("SecP384r1MLKEM1024", b"\x02" + b"\x00" * 96 + b"\x00" * 1568, id="p384-compressed-point"),
]


@pytest.mark.parametrize("group,share", BAD_SHARES)
def test_bad_key_share_is_illegal_parameter(server_cert, group, share):
    why = group
    srv = Server(*server_cert, groups=group)
    try:
        rec = first_record(srv.port, client_hello(CODEPOINTS[group], share))
        assert len(rec) == 7, f"{why}: server sent {rec!r}"
        assert rec[0] == 21, f"{why}: expected an alert record, got type {rec[0]}"
        assert rec[5] == 2 and rec[6] == ILLEGAL_PARAMETER, f"{why}: alert {rec[5]}/{rec[6]}"
        # the server is still healthy for the next, honest client
        assert s_client(srv.port, group).returncode == 0
    finally:
        srv.stop()


# --- Chromium and nginx ------------------------------------------------------

def browser_dir():
    d = REPO / "tests" / "browser"
    if not (d / "node_modules" / "playwright-core").exists():
        pytest.fail("playwright-core missing: run scripts/install-deps --test (npm install in tests/browser)")
    return d


def nginx_conf(tmp, port, cert, key, curves):
    conf = tmp / "nginx.conf"
    conf.write_text(f"""
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.3;
        ssl_ecdh_curve {curves};
        location / {{ return 200 "hello from nginx\\n"; }}
    }}
}}
""")
    return conf


def openssl_cnf(tmp):
    cnf = tmp / "openssl.cnf"
    cnf.write_text(f"""
openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
[provider_sect]
default = default_sect
aclm-pq = aclm_pq_sect
[default_sect]
activate = 1
[aclm_pq_sect]
module = {module_dir()}/aclm-pq.so
activate = 1
""")
    return cnf


def run_chromium_against_nginx(tmp, cert, key, curves, with_provider):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(nginx):
        pytest.fail("nginx not installed: run scripts/install-deps --test")
    port = free_port()
    env = dict(os.environ)
    if with_provider:
        env["OPENSSL_CONF"] = str(openssl_cnf(tmp))
    proc = subprocess.Popen([nginx, "-c", str(nginx_conf(tmp, port, cert, key, curves)), "-p", str(tmp)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_port(port, proc)
        r = subprocess.run(["node", "pq_group.mjs", f"https://127.0.0.1:{port}/"], cwd=browser_dir(),
                           capture_output=True, text=True, timeout=90)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout.strip().splitlines()[-1])
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_chromium_negotiates_x25519mlkem768_with_nginx(server_cert, tmp_path):
    res = run_chromium_against_nginx(tmp_path, *server_cert, "X25519MLKEM768:X25519", with_provider=True)
    assert res["protocol"] == "TLS 1.3"
    assert res["group"] == "X25519MLKEM768", res


def test_chromium_falls_back_to_x25519_without_provider(server_cert, tmp_path):
    res = run_chromium_against_nginx(tmp_path, *server_cert, "X25519", with_provider=False)
    assert res["group"] == "X25519", res
