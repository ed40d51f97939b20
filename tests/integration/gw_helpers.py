"""Peers and plumbing of the gateway tests: certificates, an nginx upstream,
a raw-socket upstream for the framings nginx does not produce on demand, and
the gateway process itself.  Everything on 127.0.0.1, ports picked free."""
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

from helpers import free_port  # noqa: F401 (re-exported to the gateway tests)

REPO = Path(__file__).resolve().parents[2]


def aclm_bin():
    return os.path.abspath(os.environ.get("ACLM_BIN") or REPO / "build" / "src" / "cli" / "aclm")


def wait_port(port, proc=None, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        if proc is not None and proc.poll() is not None:
            raise AssertionError("process exited early: %s" % (proc.stderr.read() if proc.stderr else ""))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("nothing listening on port %d" % port)


def make_cert(d, name, kind, cn=None):
    d = Path(d)
    key, cert = d / f"{name}.key", d / f"{name}.pem"
    newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] if kind == "ec" else ["-newkey", "rsa:2048"]
    subprocess.run(["openssl", "req", "-x509", *newkey, "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", f"/CN={cn or name}",
                    "-addext", "subjectAltName=DNS:a.test,DNS:*.b.test,DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


class Nginx:
    """A plain-HTTP upstream that echoes what the gateway forwarded."""

    def __init__(self, tmp):
        self.tmp = Path(tmp) / f"nginx-{os.getpid()}-{id(self)}"
        self.tmp.mkdir(parents=True)
        self.port = free_port()
        (self.tmp / "www").mkdir()
        (self.tmp / "www" / "big").write_bytes(os.urandom(300000))
        (self.tmp / "www" / "1k").write_bytes(b"x" * 1024)
        conf = self.tmp / "nginx.conf"
        conf.write_text(f"""
daemon off;
master_process off;
worker_processes 1;
pid {self.tmp}/nginx.pid;
error_log {self.tmp}/error.log warn;
events {{ worker_connections 2048; }}
http {{
    access_log off;
    client_body_temp_path {self.tmp}/body;
    proxy_temp_path {self.tmp}/proxy;
    fastcgi_temp_path {self.tmp}/fastcgi;
    uwsgi_temp_path {self.tmp}/uwsgi;
    scgi_temp_path {self.tmp}/scgi;
    keepalive_requests 100000;
    server {{
        listen 127.0.0.1:{self.port};
        location /static/ {{ alias {self.tmp}/www/; }}
        location / {{
            add_header X-Upstream-Conn "$connection:$connection_requests";
            return 200 "xff=$http_x_forwarded_for proto=$http_x_forwarded_proto fwd=$http_forwarded host=$host port={self.port} method=$request_method len=$content_length\\n";
        }}
    }}
}}
""")
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.proc = subprocess.Popen([nginx, "-c", str(conf), "-p", str(self.tmp)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait_port(self.port, self.proc)
        self.static = self.tmp / "www"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


class RawUpstream:
    """Answers every request on a connection with the bytes of respond(req)."""

    def __init__(self, respond):
        self.respond = respond
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = 0
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        buf = b""
        with c:
            while True:
                try:
                    data = c.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                buf += data
                while b"\r\n\r\n" in buf:
                    head, buf = buf.split(b"\r\n\r\n", 1)
                    out, close = self.respond(head)
                    c.sendall(out)
                    if close:
                        return

    def stop(self):
        self.stopped = True
        self.sock.close()


class Gateway:
    def __init__(self, tmp, sites, extra="", env=None, workers=2):
        self.tmp = Path(tmp)
        self.port = free_port()
        self.admin = free_port()
        self.log = self.tmp / "access.log"
        self.pid_file = self.tmp / "gw.pid"
        self.config = self.tmp / "gw.yaml"
        self.config.write_text(self.yaml(sites, extra, workers))
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.proc = subprocess.Popen([aclm_bin(), "gateway", "--config", str(self.config)],
                                     cwd=self.tmp, env=self.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        wait_port(self.port, self.proc)
        wait_port(self.admin, self.proc)

    def yaml(self, sites, extra, workers):
        return (f'listen: ["127.0.0.1:{self.port}"]\nadmin: "127.0.0.1:{self.admin}"\n'
                f"workers: {workers}\naccess_log: {self.log}\npid_file: {self.pid_file}\n"
                f"{extra}sites:\n{sites}")

    def ctx(self, **kw):
        c = ssl.create_default_context()
        c.check_hostname = False
        c.verify_mode = ssl.CERT_NONE
        return c

    def connect(self, sni="a.test"):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        return self.ctx().wrap_socket(s, server_hostname=sni)

    def log_lines(self):
        import json
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.stderr.read() if self.proc.stderr else ""


def site_yaml(upstreams, certs, names=("a.test", "*.b.test"), extra=""):
    ups = ", ".join(f'"http://127.0.0.1:{p}"' for p in upstreams)
    cs = "".join(f"      - {{cert: {c}, key: {k}}}\n" for c, k in certs)
    ns = ", ".join(f'"{n}"' for n in names)
    return f"  - names: [{ns}]\n    upstreams: [{ups}]\n    certificates:\n{cs}{extra}"


def http_request(sock, raw):
    """Send raw bytes, read one response (head + Content-Length body)."""
    sock.sendall(raw)
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = sock.recv(65536)
        if not d:
            break
        buf += d
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    while len(body) < n:
        d = sock.recv(65536)
        if not d:
            break
        body += d
    return status, headers, body
