"""aclm gateway against real peers on loopback: nginx as the upstream,
Python's ssl and Debian's openssl s_client as clients, wrk for load and
Chromium (playwright-core) for the post-quantum key exchange."""
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from gw_helpers import (Gateway, Nginx, RawUpstream, aclm_bin, free_port, http_request,  # noqa: E402
                        make_cert, site_yaml)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("gwcerts")
    return {"ec": make_cert(d, "ec", "ec", "gw-ecdsa"), "rsa": make_cert(d, "rsa", "rsa", "gw-rsa"),
            "dir": d}


@pytest.fixture(scope="module")
def nginx(tmp_path_factory):
    n = Nginx(tmp_path_factory.mktemp("gwnginx"))
    yield n
    n.stop()


@pytest.fixture
def gw_factory(tmp_path):
    made = []

    def make(sites, extra="", env=None, workers=2):
        g = Gateway(tmp_path, sites, extra, env, workers)
        made.append(g)
        return g
    yield make
    for g in made:
        g.stop()


@pytest.fixture
def gw(gw_factory, nginx, certs):
    return gw_factory(site_yaml([nginx.port], [certs["ec"], certs["rsa"]],
                                extra='    hsts: "max-age=63072000"\n'),
                      extra="timeouts: {header: 2, idle: 5}\nlimits: {header_bytes: 4096, body_bytes: 100000}\n")


def get(g, path="/", sni="a.test", headers=""):
    with g.connect(sni) as s:
        return http_request(s, f"GET {path} HTTP/1.1\r\nHost: {sni}\r\n{headers}\r\n".encode())


# --- configuration -------------------------------------------------------------

def run_check(tmp_path, text):
    p = tmp_path / "gw.yaml"
    p.write_text(text)
    r = subprocess.run([aclm_bin(), "gateway", "check", "--config", str(p)], capture_output=True,
                       text=True, timeout=30)
    return r.returncode, r.stdout + r.stderr, str(p)


def test_check_accepts_a_valid_file(tmp_path, certs):
    rc, out, p = run_check(tmp_path, 'listen: ["127.0.0.1:1"]\nsites:\n' +
                           site_yaml([1], [certs["ec"], certs["rsa"]]))
    assert rc == 0, out
    assert "ok (1 site)" in out


@pytest.mark.parametrize("body,line,words", [
    ('listen: ["127.0.0.1:1"]\nbogus: 1\n', 2, "unknown field 'bogus'"),
    ('listen: ["127.0.0.1:1"]\nsites:\n  - names: [a.test]\n    pq: maybe\n', 4, "pq: expected prefer"),
    ('listen: ["127.0.0.1:1"]\nsites:\n  - names: [a.test]\n    upstreams: ["ftp://x"]\n', 4, "only http://"),
    ('listen: ["127.0.0.1:1"]\nsites:\n  - names: [a.test]\n    upstreams: ["http://127.0.0.1:1"]\n'
     '    certificates:\n      - {cert: /nonexistent.pem, key: /nonexistent.key}\n', 6, "/nonexistent.pem"),
    ('listen: ["127.0.0.1:99999"]\n', 1, "no valid port"),
    ('listen: [\n', 2, ""),
    ('listen: ["127.0.0.1:1"]\nsites:\n  - names: [a.test]\n    pq_canary_percent: 101\n', 4, "outside"),
])
def test_check_names_file_and_line(tmp_path, body, line, words):
    rc, out, p = run_check(tmp_path, body)
    assert rc == 1, out
    assert f"{p}:{line}" in out, out
    assert words in out


def test_check_refuses_a_key_that_does_not_match(tmp_path, certs):
    rc, out, p = run_check(tmp_path, 'listen: ["127.0.0.1:1"]\nsites:\n' +
                           site_yaml([1], [(certs["ec"][0], certs["rsa"][1])]))
    assert rc == 1
    assert f"{p}:3" in out and "does not match" in out, out


# --- proxying ------------------------------------------------------------------

def test_proxies_with_forwarded_headers_and_hsts(gw, nginx):
    status, h, body = get(gw)
    assert status == 200, body
    text = body.decode()
    assert "xff=127.0.0.1 " in text
    assert "proto=https " in text
    assert 'fwd=for=127.0.0.1;proto=https;host="a.test"' in text
    assert f"port={nginx.port}" in text
    assert h["strict-transport-security"] == "max-age=63072000"
    # an existing X-Forwarded-For is extended, not replaced
    status, h, body = get(gw, headers="X-Forwarded-For: 192.0.2.7\r\n")
    assert "xff=192.0.2.7, 127.0.0.1 " in body.decode()


def test_keep_alive_on_both_sides(gw, nginx):
    conns = set()
    with gw.connect() as s:
        for _ in range(20):
            status, h, body = http_request(s, b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
            assert status == 200
            conns.add(h["x-upstream-conn"].split(":")[0])
    # 20 requests on one client connection and (two workers, one pool each)
    # far fewer upstream connections
    assert len(conns) <= 2, conns
    # one access-log line per request (written just after the response)
    end = time.time() + 2
    while len(gw.log_lines()) < 20 and time.time() < end:
        time.sleep(0.05)
    lines = gw.log_lines()
    assert len(lines) == 20
    assert {l["status"] for l in lines} == {200} and {l["sni"] for l in lines} == {"a.test"}
    assert all(l["tls_version"] == "TLSv1.3" and l["suite"].startswith("TLS_") for l in lines)


def test_streams_a_large_body_and_posts(gw, nginx):
    big = (nginx.static / "big").read_bytes()
    with gw.connect() as s:
        for _ in range(2):
            status, h, body = http_request(s, b"GET /static/big HTTP/1.1\r\nHost: a.test\r\n\r\n")
            assert status == 200 and body == big
        data = os.urandom(50000)
        status, h, body = http_request(s, b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: %d\r\n\r\n"
                                       % len(data) + data)
        assert status == 200 and "method=POST len=50000" in body.decode()
        # chunked request bodies reach the upstream with a Content-Length
        status, h, body = http_request(s, b"POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked"
                                       b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        assert status == 200 and "len=5" in body.decode()


def read_all(s):
    out = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                return out, True
            out += d
    except (ConnectionResetError, ssl.SSLError):
        return out, True
    except socket.timeout:
        return out, False


def test_smuggling_shapes_get_400_and_close(gw):
    for raw in [b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
                b"GET / HTTP/1.1\r\nHost: a.test\r\n Folded: x\r\n\r\n",
                b"GET / HTTP/1.1\r\nHost : a.test\r\n\r\n"]:
        with gw.connect() as s:
            s.settimeout(5)
            s.sendall(raw)
            out, closed = read_all(s)
            assert out.startswith(b"HTTP/1.1 400 "), (raw, out)
            assert b"Connection: close" in out
            assert closed


def test_oversized_headers_get_431_and_body_413(gw):
    with gw.connect() as s:
        s.settimeout(5)
        s.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\nX-Big: " + b"a" * 8000 + b"\r\n\r\n")
        out, closed = read_all(s)
        assert out.startswith(b"HTTP/1.1 431 "), out[:100]
    with gw.connect() as s:
        s.settimeout(5)
        s.sendall(b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 200000\r\n\r\n")
        out, closed = read_all(s)
        assert out.startswith(b"HTTP/1.1 413 "), out[:100]


def test_slowloris_dropped_at_header_timeout_while_others_work(gw):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2300:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    ctx = gw.ctx()
    slow = []
    start = time.time()
    for i in range(1000):
        s = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
        t = ctx.wrap_socket(s, server_hostname="a.test")
        t.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\n")   # and never the blank line
        slow.append(t)
    opened = time.time() - start
    # meanwhile, normal requests are answered at once
    for _ in range(5):
        t0 = time.time()
        status, _, _ = get(gw)
        assert status == 200
        assert time.time() - t0 < 1.0
    # the header timeout is 2 s from the handshake: all are gone 3 s after
    time.sleep(max(0.0, 3.0 - (time.time() - start - opened)) + 0.5)
    closed = 0
    for t in slow:
        t.settimeout(2)
        try:
            d = t.recv(100)
            closed += d == b""
        except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
            closed += 1
        except socket.timeout:
            pass
        t.close()
    assert closed == 1000
    assert get(gw)[0] == 200


def test_upstream_down_next_upstream_then_502(gw_factory, nginx, certs):
    dead = free_port()
    g = gw_factory(site_yaml([dead, nginx.port], [certs["ec"]]))
    for _ in range(10):
        status, _, body = get(g)
        assert status == 200, body
    g2 = gw_factory(site_yaml([dead, free_port()], [certs["ec"]]))
    status, _, body = get(g2)
    assert status == 502
    m = subprocess.run(["curl", "-s", f"http://127.0.0.1:{g.admin}/metrics"], capture_output=True,
                       text=True).stdout
    assert f'aclm_gateway_upstream_up{{site="a.test",upstream="http://127.0.0.1:{dead}"}} 0' in m


def test_chunked_and_close_delimited_responses(gw_factory, certs):
    def respond(head):
        path = head.split(b" ")[1]
        if path == b"/chunked":
            return (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n", False)
        return (b"HTTP/1.0 200 OK\r\n\r\nuntil close", True)
    up = RawUpstream(respond)
    try:
        g = gw_factory(site_yaml([up.port], [certs["ec"]]))
        with g.connect() as s:
            s.settimeout(5)
            s.sendall(b"GET /chunked HTTP/1.1\r\nHost: a.test\r\n\r\n")
            buf = b""
            while not buf.endswith(b"0\r\nX-Trailer: t\r\n\r\n"):
                d = s.recv(65536)
                assert d, buf
                buf += d
            assert b"Transfer-Encoding: chunked" in buf and b"hello" in buf
            # the same connection goes on
            status, h, body = http_request(s, b"GET /chunked HTTP/1.0\r\nHost: a.test\r\n\r\n")
            rest, closed = read_all(s)
            assert status == 200 and (body + rest) == b"hello world" and closed
        with g.connect() as s:
            s.settimeout(5)
            s.sendall(b"GET /close HTTP/1.1\r\nHost: a.test\r\n\r\n")
            out, closed = read_all(s)
            assert out.endswith(b"\r\n\r\nuntil close") and b"Connection: close" in out and closed
    finally:
        up.stop()


# --- TLS: dual certificates, PQ groups -------------------------------------------

def s_client(port, *args, env=None):
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "a.test",
                        *args], input="", capture_output=True, text=True, timeout=30, env=env)
    return r.stdout + r.stderr


def test_rsa_only_client_gets_rsa_default_gets_ecdsa(gw):
    out = s_client(gw.port, "-sigalgs", "RSA-PSS+SHA256:RSA+SHA256")
    assert "CN = gw-rsa" in out, out
    out = s_client(gw.port)
    assert "CN = gw-ecdsa" in out, out
    out = s_client(gw.port, "-tls1_2", "-sigalgs", "RSA+SHA256")
    assert "CN = gw-rsa" in out, out


def module_dir():
    """aclm-pq.so for Debian's openssl: ACLM_PQ_MODULE_DIR, else the one built
    beside the binary unless that is a sanitizer build (openssl cannot load
    it), else build/."""
    for b in [os.environ.get("ACLM_PQ_MODULE_DIR"), Path(aclm_bin()).parents[1] / "crypto",
              REPO / "build" / "src" / "crypto"]:
        if not b or not (Path(b) / "aclm-pq.so").exists():
            continue
        ldd = subprocess.run(["ldd", str(Path(b) / "aclm-pq.so")], capture_output=True, text=True).stdout
        if "libasan" not in ldd:
            return Path(b)
    pytest.fail("aclm-pq.so not found next to the binary: build it or set ACLM_PQ_MODULE_DIR")


def pq_env(tmp):
    cnf = Path(tmp) / "openssl-pq.cnf"
    cnf.write_text(f"""openssl_conf = openssl_init
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
    env = dict(os.environ)
    env["OPENSSL_CONF"] = str(cnf)
    return env


def last_group(g):
    return g.log_lines()[-1]["group"]


def request_with_s_client(g, *args, env=None):
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{g.port}", "-servername", "a.test",
                        "-quiet", *args], input="GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
                       capture_output=True, text=True, timeout=30, env=env)
    assert "200 OK" in r.stdout, r.stdout + r.stderr


def test_s_client_with_and_without_the_provider(gw, tmp_path):
    request_with_s_client(gw, "-groups", "X25519MLKEM768:X25519", env=pq_env(tmp_path))
    assert last_group(gw) == "X25519MLKEM768"
    request_with_s_client(gw)
    assert last_group(gw).lower() == "x25519"
    m = subprocess.run(["curl", "-s", f"http://127.0.0.1:{gw.admin}/metrics"], capture_output=True,
                       text=True).stdout
    assert 'aclm_gateway_handshakes_total{group="X25519MLKEM768",version="TLSv1.3"} 1' in m


def test_pq_off_and_offer(gw_factory, nginx, certs, tmp_path):
    g = gw_factory(site_yaml([nginx.port], [certs["ec"]], extra="    pq: off\n"))
    # a client that only sends a hybrid key share is sent a HelloRetryRequest
    request_with_s_client(g, "-groups", "X25519MLKEM768:X25519", env=pq_env(tmp_path))
    assert last_group(g).lower() == "x25519"


def browser_dir():
    d = REPO / "tests" / "browser"
    if not (d / "node_modules" / "playwright-core").exists():
        pytest.fail("playwright-core missing: run scripts/install-deps --test (npm install in tests/browser)")
    return d


def chromium_group(port):
    r = subprocess.run(["node", "pq_group.mjs", f"https://127.0.0.1:{port}/"], cwd=browser_dir(),
                       capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("extra,group", [
    ("", "X25519MLKEM768"),
    ("    pq: off\n", "X25519"),
    ("    pq: offer\n", "X25519"),
    ("    pq_canary_percent: 0\n", "X25519"),
])
def test_chromium_key_exchange_through_the_gateway(gw_factory, nginx, certs, extra, group):
    g = gw_factory(site_yaml([nginx.port], [certs["ec"]], names=("a.test", "127.0.0.1"), extra=extra))
    res = chromium_group(g.port)
    assert res["protocol"] == "TLS 1.3"
    assert res["status"] == 200
    assert res["group"] == group, res


# --- hot swap and reload -----------------------------------------------------------

def served_cn(port):
    out = s_client(port)
    for line in out.splitlines():
        if line.startswith("subject="):
            return line.split("CN = ")[-1].strip()
    return None


def test_certificate_swap_and_reload_under_wrk(gw_factory, nginx, certs, tmp_path):
    if not shutil.which("wrk"):
        pytest.fail("wrk not installed: scripts/install-deps --test")
    d = tmp_path / "live"
    d.mkdir()
    cert, key = make_cert(d, "site", "ec", "first")
    g = gw_factory(site_yaml([nginx.port], [(cert, key)]))
    assert served_cn(g.port) == "first"
    wrk = subprocess.Popen(["wrk", "-t1", "-c20", "-d6s", f"https://127.0.0.1:{g.port}/static/1k"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    # replace the files (as a deploy or renewal would): picked up within 1 s
    new = tmp_path / "new"
    new.mkdir()
    c2, k2 = make_cert(new, "site", "ec", "second")
    os.replace(k2, key)
    os.replace(c2, cert)
    t0 = time.time()
    while served_cn(g.port) != "second":
        assert time.time() - t0 < 1.5, "new certificate not served within a second"
        time.sleep(0.1)
    # a changed configuration (HSTS added) applied by `aclm gateway reload`
    # (SIGHUP) in the middle, and a second plain SIGHUP
    g.config.write_text(g.yaml(site_yaml([nginx.port], [(cert, key)], extra='    hsts: "max-age=5"\n'),
                               "", 2))
    r = subprocess.run([aclm_bin(), "gateway", "reload", "--config", str(g.config)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    t0 = time.time()
    while get(g)[1].get("strict-transport-security") != "max-age=5":
        assert time.time() - t0 < 2, "reloaded configuration not in use"
        time.sleep(0.1)
    os.kill(g.proc.pid, signal.SIGHUP)
    out, err = wrk.communicate(timeout=30)
    assert "requests in" in out, out + err
    assert "Non-2xx" not in out and "Socket errors" not in out, out
    assert served_cn(g.port) == "second"


def test_connections_per_client_ip(gw_factory, nginx, certs):
    g = gw_factory(site_yaml([nginx.port], [certs["ec"]]), extra="limits: {connections_per_ip: 3}\n")
    held = [g.connect() for _ in range(3)]
    with pytest.raises((ConnectionResetError, ssl.SSLError, OSError)):
        with g.connect() as s:
            http_request(s, b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
    held.pop().close()
    time.sleep(0.3)
    status, _, _ = get(g)
    assert status == 200
    for s in held:
        s.close()
    m = subprocess.run(["curl", "-s", f"http://127.0.0.1:{g.admin}/metrics"], capture_output=True,
                       text=True).stdout
    assert "aclm_gateway_refused_connections_total 1" in m


def resumed(g, session=None, ctx=None):
    with socket.create_connection(("127.0.0.1", g.port), timeout=5) as raw:
        ctx = ctx or g.ctx()
        with ctx.wrap_socket(raw, server_hostname="a.test", session=session) as s:
            # TLS 1.3 tickets come after the handshake: one exchange gets them
            status, _, _ = http_request(s, b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
            assert status == 200
            return s.session_reused, s.session


def test_session_tickets_shared_by_workers_and_reloads(gw_factory, nginx, certs):
    g = gw_factory(site_yaml([nginx.port], [certs["ec"]]), workers=2)
    ctx = g.ctx()
    _, sess = resumed(g, ctx=ctx)
    # new connections land on either worker: every one resumes
    for _ in range(6):
        reused, _ = resumed(g, sess, ctx)
        assert reused
    os.kill(g.proc.pid, signal.SIGHUP)
    time.sleep(0.5)
    reused, _ = resumed(g, sess, ctx)
    assert reused


def tickets_sent(g, sess_in=None, sess_out=None):
    """NewSessionTicket messages the gateway sends on one connection (one
    request, then the gateway closes); and whether it was a resumption."""
    cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{g.port}", "-servername", "a.test",
           "-msg", "-ign_eof"]
    cmd += ["-sess_in", str(sess_in)] if sess_in else []
    cmd += ["-sess_out", str(sess_out)] if sess_out else []
    r = subprocess.run(cmd, input=b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
                       capture_output=True, timeout=20)
    out = r.stdout.decode("latin-1")
    assert "HTTP/1.1 200" in out, out[-2000:]
    return out.count("NewSessionTicket"), "Reused, TLSv1.3" in out


def test_one_session_ticket_per_handshake(gw_factory, nginx, certs, tmp_path):
    g = gw_factory(site_yaml([nginx.port], [certs["ec"]]))
    sess = tmp_path / "sess.pem"
    # OpenSSL's default is two; one is all a client resumes with
    assert tickets_sent(g, sess_out=sess) == (1, False)
    # and it resumes with it
    assert tickets_sent(g, sess_in=sess)[1]
    off = gw_factory(site_yaml([nginx.port], [certs["ec"]]), extra="tls: {session_tickets: false}\n")
    assert tickets_sent(off, sess_out=sess) == (0, False)


def connections_total(g):
    m = subprocess.run(["curl", "-s", f"http://127.0.0.1:{g.admin}/metrics"], capture_output=True,
                       text=True).stdout
    return int(next(line.split()[1] for line in m.splitlines()
                    if line.startswith("aclm_gateway_connections_total ")))


def test_silent_connection_waits_in_the_kernel(gw_factory, nginx, certs):
    g = gw_factory(site_yaml([nginx.port], [certs["ec"]]))
    before = connections_total(g)
    raw = socket.create_connection(("127.0.0.1", g.port), timeout=10)
    try:
        # TCP_DEFER_ACCEPT: no connection (and no struct conn) until the
        # ClientHello is there
        time.sleep(0.5)
        assert connections_total(g) == before
        with g.ctx().wrap_socket(raw, server_hostname="a.test") as s:
            assert http_request(s, b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")[0] == 200
    finally:
        raw.close()
    assert connections_total(g) == before + 1


def test_session_ticket_keys_rotate(gw_factory, nginx, certs):
    g = gw_factory(site_yaml([nginx.port], [certs["ec"]]), extra="tls: {ticket_rotation: 1}\n")
    ctx = g.ctx()
    _, sess = resumed(g, ctx=ctx)
    assert resumed(g, sess, ctx)[0]
    # two rotations later the key that sealed it is gone: a full handshake
    time.sleep(3.5)
    reused, _ = resumed(g, sess, ctx)
    assert not reused


def test_active_health_check_takes_a_sick_upstream_out(gw_factory, nginx, certs):
    served = {"n": 0, "healthy": False}

    def respond(head):
        path = head.split(b" ")[1]
        if path == b"/health":
            code = b"200 OK" if served["healthy"] else b"503 Service Unavailable"
            return b"HTTP/1.1 " + code + b"\r\nContent-Length: 0\r\n\r\n", False
        served["n"] += 1
        return b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nsick", False
    sick = RawUpstream(respond)
    try:
        g = gw_factory(site_yaml([sick.port, nginx.port], [certs["ec"]]),
                       extra="health_check: {interval: 0.2, timeout: 1, path: /health}\n")
        time.sleep(1.0)
        for _ in range(8):
            status, _, body = get(g)
            assert status == 200 and b"port=%d" % nginx.port in body, body
        assert served["n"] == 0
        # healthy again: back in the rotation
        served["healthy"] = True
        time.sleep(1.0)
        bodies = [get(g)[2] for _ in range(8)]
        assert b"sick" in bodies and served["n"] > 0
    finally:
        sick.stop()


@pytest.mark.parametrize("answer,expect", [
    (b"garbage\r\n\r\n", 502),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", 502),
    (b"HTTP/1.1 200 OK\r\nX: " + b"a" * 40000 + b"\r\n\r\n", 502),
    (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", 502),
    (b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n", 502),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", 204),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 502),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", "reset"),
])
def test_hostile_upstream_answers(gw_factory, certs, answer, expect):
    up = RawUpstream(lambda head: (answer, True))
    try:
        g = gw_factory(site_yaml([up.port], [certs["ec"]]))
        with g.connect() as s:
            s.settimeout(5)
            s.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
            out, closed = read_all(s) if expect == "reset" else (None, None)
            if expect == "reset":
                # the head went out, the body broke: the client sees the cut
                assert closed and (not out.startswith(b"HTTP/1.1 200") or not out.endswith(b"\r\n0\r\n\r\n"))
                assert len(out) < 200
            else:
                status, _, _ = http_request(s, b"")
                assert status == expect
        # the gateway is still fine
        assert g.proc.poll() is None
        m = subprocess.run(["curl", "-s", f"http://127.0.0.1:{g.admin}/metrics"], capture_output=True,
                           text=True).stdout
        assert "aclm_gateway_requests_total 1" in m
    finally:
        up.stop()


class OcspResponder:
    """A minimal OCSP responder on 127.0.0.1 (python3-cryptography): "good"
    for the one certificate it knows, signed by its CA."""

    def __init__(self, ca_pem, ca_key, leaf_pem, port, signer=None):
        """signer: (cert, key) PEM paths of the responder that signs, when
        not the CA itself (a delegated responder, or an impostor)."""
        import datetime
        import http.server
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.x509 import ocsp
        ca = x509.load_pem_x509_certificate(Path(ca_pem).read_bytes())
        key = serialization.load_pem_private_key(Path(ca_key).read_bytes(), None)
        leaf = x509.load_pem_x509_certificate(Path(leaf_pem).read_bytes())
        sign_cert, sign_key, extra = ca, key, []
        if signer:
            sign_cert = x509.load_pem_x509_certificate(Path(signer[0]).read_bytes())
            sign_key = serialization.load_pem_private_key(Path(signer[1]).read_bytes(), None)
            extra = [sign_cert]
        outer = self
        self.served = 0

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                req = ocsp.load_der_ocsp_request(body)
                now = datetime.datetime.utcnow()
                if req.serial_number == leaf.serial_number:
                    b = ocsp.OCSPResponseBuilder().add_response(
                        cert=leaf, issuer=ca, algorithm=hashes.SHA1(), cert_status=ocsp.OCSPCertStatus.GOOD,
                        this_update=now - datetime.timedelta(minutes=1),
                        next_update=now + datetime.timedelta(hours=1), revocation_time=None,
                        revocation_reason=None).responder_id(ocsp.OCSPResponderEncoding.HASH,
                                                             sign_cert)
                    if extra:
                        b = b.certificates(extra)
                    der = b.sign(sign_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
                else:
                    der = ocsp.OCSPResponseBuilder.build_unsuccessful(
                        ocsp.OCSPResponseStatus.UNAUTHORIZED).public_bytes(serialization.Encoding.DER)
                outer.served += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/ocsp-response")
                self.send_header("Content-Length", str(len(der)))
                self.end_headers()
                self.wfile.write(der)

            def log_message(self, *a):
                pass
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


def test_ocsp_stapling_from_the_issuers_responder(gw_factory, nginx, tmp_path):
    d = tmp_path / "ocsp"
    d.mkdir()
    ocsp_port = free_port()

    def ossl(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)
    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
         "-out", "ca.pem", "-days", "2", "-subj", "/CN=gw test CA")
    ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "leaf.key",
         "-out", "leaf.csr", "-subj", "/CN=a.test")
    (d / "ext").write_text(f"subjectAltName=DNS:a.test\nauthorityInfoAccess=OCSP;URI:http://127.0.0.1:{ocsp_port}\n")
    ossl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
         "-out", "leaf.pem", "-days", "2", "-extfile", "ext")
    (d / "chain.pem").write_text((d / "leaf.pem").read_text() + (d / "ca.pem").read_text())
    responder = OcspResponder(d / "ca.pem", d / "ca.key", d / "leaf.pem", ocsp_port)
    try:
        g = gw_factory(site_yaml([nginx.port], [(d / "chain.pem", d / "leaf.key")]))
        deadline = time.time() + 10
        while True:
            out = s_client(g.port, "-status")
            if "OCSP Response Status: successful" in out:
                break
            assert time.time() < deadline, out + g.stop()
            time.sleep(0.3)
        assert "Cert Status: good" in out
        assert responder.served >= 1
    finally:
        responder.stop()


@pytest.mark.parametrize("signer,stapled", [("delegated", True), ("impostor", False)])
def test_ocsp_response_must_come_from_the_issuer(gw_factory, nginx, tmp_path, signer, stapled):
    """A response signed by a responder the CA delegated to (id-kp-OCSPSigning)
    is stapled; one signed by anybody else is not (clients would refuse it)."""
    d = tmp_path / "ocsp"
    d.mkdir()
    ocsp_port = free_port()

    def ossl(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    ossl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=gw test CA")
    ossl("req", *ec, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=a.test")
    (d / "ext").write_text(f"subjectAltName=DNS:a.test\nauthorityInfoAccess=OCSP;URI:http://127.0.0.1:{ocsp_port}\n")
    ossl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
         "-out", "leaf.pem", "-days", "2", "-extfile", "ext")
    if signer == "delegated":
        ossl("req", *ec, "-keyout", "resp.key", "-out", "resp.csr", "-subj", "/CN=gw test OCSP")
        (d / "rext").write_text("extendedKeyUsage=OCSPSigning\n")
        ossl("x509", "-req", "-in", "resp.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "resp.pem", "-days", "2", "-extfile", "rext")
    else:
        ossl("req", "-x509", *ec, "-keyout", "resp.key", "-out", "resp.pem", "-days", "2",
             "-subj", "/CN=gw test CA")
    (d / "chain.pem").write_text((d / "leaf.pem").read_text() + (d / "ca.pem").read_text())
    responder = OcspResponder(d / "ca.pem", d / "ca.key", d / "leaf.pem", ocsp_port,
                              signer=(d / "resp.pem", d / "resp.key"))
    try:
        g = gw_factory(site_yaml([nginx.port], [(d / "chain.pem", d / "leaf.key")]))
        deadline = time.time() + 10
        while True:
            out = s_client(g.port, "-status")
            if "OCSP Response Status: successful" in out or (not stapled and responder.served >= 1):
                break
            assert time.time() < deadline, out + g.stop()
            time.sleep(0.3)
        if stapled:
            assert "Cert Status: good" in out
        else:
            time.sleep(1)
            out = s_client(g.port, "-status")
            assert "OCSP response: no response sent" in out, out
            assert "not signed by the certificate's issuer" in g.stop()
    finally:
        responder.stop()
