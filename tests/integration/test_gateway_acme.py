"""aclm gateway obtains a certificate for a site with cert_source acme from
Pebble by http-01, answered on the gateway's own plain listener, while
another site serves normally; the plain listener redirects everything else
to HTTPS."""
import os
import socket
import ssl
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from acme_pebble import Pebble, pebble_ca, write_config  # noqa: E402
from conftest import BIN  # noqa: E402
from gw_helpers import Nginx, free_port, http_request, make_cert, site_yaml, wait_port  # noqa: E402


@pytest.fixture(scope="module")
def peb(tmp_path_factory):
    p = Pebble(tmp_path_factory.mktemp("gwpebble")).start()
    yield p
    p.stop()


@pytest.fixture(scope="module")
def nginx(tmp_path_factory):
    n = Nginx(tmp_path_factory.mktemp("gwacmenginx"))
    yield n
    n.stop()


def peer_cert(port, sni):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname=sni) as t:
            der = t.getpeercert(binary_form=True)
    out = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject", "-issuer"],
                         input=der, capture_output=True).stdout.decode()
    return out


def test_site_gets_its_certificate_by_http01_while_another_serves(aclm_sqlite, peb, nginx, tmp_path):
    aclm = aclm_sqlite
    cfg = write_config(aclm, [pebble_ca(peb)])
    ec = make_cert(tmp_path, "files", "ec", "files-site")
    state = tmp_path / "state"
    port, admin = free_port(), free_port()
    gw_yaml = tmp_path / "gw.yaml"
    gw_yaml.write_text(
        f'listen: ["127.0.0.1:{port}"]\nhttp_listen: ["127.0.0.1:{peb.http_port}"]\n'
        f'admin: "127.0.0.1:{admin}"\nworkers: 2\nstate_dir: {state}\n'
        f"access_log: {tmp_path}/access.log\nsites:\n"
        + site_yaml([nginx.port], [ec])
        + f'  - names: ["gw-acme.example.test"]\n    upstreams: ["http://127.0.0.1:{nginx.port}"]\n'
          f"    cert_source: acme\n    acme_key: [ec256, rsa2048]\n")
    proc = subprocess.Popen([BIN, "--config", cfg, "--db", aclm.db, "gateway", "--config", str(gw_yaml)],
                            cwd=aclm.tmp, env=aclm.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        wait_port(port, proc)
        deadline = time.time() + 60
        served_files = 0
        while True:
            # the other site serves normally all along
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5),
                                 server_hostname="a.test") as s:
                st, _, _ = http_request(s, b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
                assert st == 200
                served_files += 1
            out = peer_cert(port, "gw-acme.example.test")
            if "Pebble" in out or "pebble" in out:
                break
            assert proc.poll() is None, proc.stderr.read()
            assert time.time() < deadline, "no certificate from Pebble in 60 s: " + out
            time.sleep(0.3)
        assert "gw-acme.example.test" in out, out
        assert served_files >= 1
        # the dual pair: an RSA-only client gets the RSA certificate, also from Pebble
        while True:
            r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername",
                                "gw-acme.example.test", "-sigalgs", "RSA-PSS+SHA256:RSA+SHA256"],
                               input="", capture_output=True, text=True, timeout=30)
            if "Pebble" in r.stdout and "Peer signature type: RSA-PSS" in r.stdout:
                break
            assert time.time() < deadline, r.stdout
            time.sleep(0.3)
        r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername",
                            "gw-acme.example.test"], input="", capture_output=True, text=True, timeout=30)
        assert "Pebble" in r.stdout and "Peer signature type: ECDSA" in r.stdout, r.stdout
        assert (state / "gw-acme.example.test.rsa.crt").exists()
        key = state / "gw-acme.example.test.key"
        assert oct(os.stat(key).st_mode & 0o777) == "0o600"
        # the stored state: a managed certificate in aclm's inventory
        rows = aclm.list()
        assert any("gw-acme.example.test" in str(r) for r in rows), rows
        # the plain listener sends everything else to HTTPS
        with socket.create_connection(("127.0.0.1", peb.http_port), timeout=5) as s:
            st, h, _ = http_request(s, b"GET /x?y=1 HTTP/1.1\r\nHost: gw-acme.example.test\r\n\r\n")
        assert st == 301 and h["location"] == "https://gw-acme.example.test/x?y=1"
        with socket.create_connection(("127.0.0.1", peb.http_port), timeout=5) as s:
            st, h, _ = http_request(s, b"GET /.well-known/acme-challenge/nope HTTP/1.1\r\nHost: x\r\n\r\n")
        assert st == 404
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_site_gets_its_certificate_by_tls_alpn01_through_the_gateway(aclm_sqlite, peb, nginx, tmp_path):
    """Pebble validates on the gateway's own TLS port: the gateway passes the
    acme-tls/1 connection to the ACME client's responder, serves the rest."""
    aclm = aclm_sqlite
    cfg = write_config(aclm, [pebble_ca(peb)])
    ec = make_cert(tmp_path, "files", "ec", "files-site")
    state = tmp_path / "state"
    port = peb.tls_port
    gw_yaml = tmp_path / "gw.yaml"
    gw_yaml.write_text(
        f'listen: ["127.0.0.1:{port}"]\nworkers: 2\nstate_dir: {state}\nsites:\n'
        + site_yaml([nginx.port], [ec])
        + f'  - names: ["alpn.example.test"]\n    upstreams: ["http://127.0.0.1:{nginx.port}"]\n'
          f"    cert_source: acme\n    acme_challenge: tls-alpn-01\n    acme_key: rsa2048\n")
    proc = subprocess.Popen([BIN, "--config", cfg, "--db", aclm.db, "gateway", "--config", str(gw_yaml)],
                            cwd=aclm.tmp, env=aclm.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        wait_port(port, proc)
        deadline = time.time() + 60
        while True:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5),
                                 server_hostname="a.test") as s:
                st, _, _ = http_request(s, b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
                assert st == 200
            out = peer_cert(port, "alpn.example.test")
            if "Pebble" in out or "pebble" in out:
                break
            assert proc.poll() is None, proc.stderr.read()
            assert time.time() < deadline, "no certificate from Pebble in 60 s: " + out
            time.sleep(0.3)
        assert "alpn.example.test" in out, out
        # the RSA key asked for
        pem = (state / "alpn.example.test.crt").read_text()
        txt = subprocess.run(["openssl", "x509", "-noout", "-text"], input=pem, capture_output=True,
                             text=True).stdout
        assert "rsaEncryption" in txt
    finally:
        proc.terminate()
        proc.wait(timeout=10)
