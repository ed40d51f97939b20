"""aclm server under hostile and heavy clients (SQLite; the engine is the
same for both backends): slowloris, many idle keep-alive connections,
readiness over sd_notify."""

import os
import resource
import selectors
import socket
import ssl
import statistics
import time

import pytest

from test_server import Server

SLOW_CLIENTS = 500
IDLE_CLIENTS = 10000


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, n) if hard != resource.RLIM_INFINITY else n
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def latency(server, n=20):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        st, _, _ = server.request("GET", "/healthz")
        times.append(time.perf_counter() - t)
        assert st == 200
    return statistics.median(times), max(times)


def tls_connect_many(port, n, ctx, request=None):
    """n TLS connections, handshakes done concurrently, each then sending
    request (if any); returns the sockets."""
    sel = selectors.DefaultSelector()
    pending, done = {}, []
    opened = 0
    deadline = time.time() + 240
    while (opened < n or pending) and time.time() < deadline:
        while opened < n and len(pending) < 512:
            raw = socket.socket()
            raw.setblocking(False)
            raw.connect_ex(("127.0.0.1", port))
            s = ctx.wrap_socket(raw, do_handshake_on_connect=False)
            pending[s.fileno()] = s
            sel.register(s, selectors.EVENT_WRITE)
            opened += 1
        for key, _ in sel.select(timeout=1):
            s = key.fileobj
            try:
                s.do_handshake()
            except ssl.SSLWantReadError:
                sel.modify(s, selectors.EVENT_READ)
                continue
            except ssl.SSLWantWriteError:
                sel.modify(s, selectors.EVENT_WRITE)
                continue
            except OSError as ex:
                sel.unregister(s)
                del pending[s.fileno()]
                s.close()
                raise AssertionError("connection %d refused or dropped: %s" % (len(done), ex))
            sel.unregister(s)
            del pending[s.fileno()]
            s.setblocking(True)
            if request is not None:
                s.sendall(request)
            done.append(s)
    sel.close()
    return done


@pytest.fixture
def srv(aclm_sqlite):
    # handshaking 10,000 clients from Python takes about a minute here
    s = Server(aclm_sqlite, config="server:\n  idle_timeout: 600s\n  header_timeout: 5s\n")
    yield s
    rc, out, err = s.stop()
    assert rc == 0, err
    assert "runtime error" not in err and "AddressSanitizer" not in err, err


def test_slowloris_does_not_hurt_others(srv):
    raise_nofile(SLOW_CLIENTS + 256)
    base_median, _ = latency(srv)
    slow = tls_connect_many(srv.port, SLOW_CLIENTS, srv.ctx)
    try:
        for s in slow:
            s.send(b"G")
        t0 = time.time()
        med, worst = latency(srv)
        for s in slow:
            s.send(b"E")
        assert med < max(0.1, base_median * 10), (base_median, med)
        assert worst < 2.0, worst
        # header timeout (5 s here): the slow clients are dropped
        time.sleep(max(0, 6 - (time.time() - t0)))
        dropped = 0
        for s in slow:
            s.settimeout(5)
            try:
                s.send(b"T / HTTP/1.1\r\n")
                data = s.recv(4096)
                if data == b"" or data.startswith(b"HTTP/1.1 408"):
                    dropped += 1
            except OSError:
                dropped += 1
        assert dropped == len(slow)
    finally:
        for s in slow:
            s.close()
    assert latency(srv, 5)[1] < 2.0


def test_ten_thousand_idle_keepalive(srv):
    n = IDLE_CLIENTS
    limit = raise_nofile(n + 512)
    if limit < n + 100:
        pytest.skip("RLIMIT_NOFILE hard limit %d is below %d" % (limit, n))
    t0 = time.time()
    req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    conns = tls_connect_many(srv.port, n, srv.ctx, request=req)
    print("%d connections in %.1f s" % (n, time.time() - t0))
    try:
        assert len(conns) == n
        # every one was answered and stays open (keep-alive); a second
        # request on a sample of them is answered too
        for i, s in enumerate(conns):
            s.settimeout(30)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                assert chunk, "connection %d closed" % i
                data += chunk
            assert data.startswith(b"HTTP/1.1 200"), data[:40]
        for s in conns[:: max(1, n // 200)]:
            s.sendall(req)
            assert s.recv(4096).startswith(b"HTTP/1.1 200")
        # new clients are still served, quickly
        med, worst = latency(srv)
        assert worst < 2.0, worst
    finally:
        for s in conns:
            s.close()


def test_sd_notify_ready_and_stopping(aclm_sqlite, tmp_path):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(20)
    s = Server(aclm_sqlite, extra_env={"NOTIFY_SOCKET": path})
    assert sock.recv(256) == b"READY=1"
    rc, _, err = s.stop()
    assert rc == 0, err
    assert sock.recv(256) == b"STOPPING=1"
    sock.close()
