"""The ground-truth fleet of the scanner tests, built on loopback by the test
itself: nginx with and without the aclm-pq provider (groups differ per
port), `openssl s_server` variants, a STARTTLS SMTP server and hostile
servers written here (silent, garbage, reset, slow drip, a 1 MB handshake
message).  Every endpoint carries what aclm must report about it
(`Endpoint.expect`), written from the configuration, never from a run."""

import datetime
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from helpers import free_port

REPO = Path(__file__).resolve().parents[2]
DAY = datetime.timedelta(days=1)
CLASSIC = ["X25519", "P-256", "P-384", "P-521", "X448", "ffdhe2048"]
PQ = ["X25519MLKEM768", "SecP256r1MLKEM768", "SecP384r1MLKEM1024", "curveSM2MLKEM768",
      "MLKEM768", "MLKEM1024"]
VERSIONS = ["TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"]


def wait_port(port, proc=None, timeout=10, host="127.0.0.1"):
    end = time.time() + timeout
    while time.time() < end:
        if proc is not None and proc.poll() is not None:
            raise AssertionError("server on %d exited: %s" % (
                port, proc.stderr.read() if proc.stderr else ""))
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("nothing listening on port %d" % port)


# --------------------------------------------------------------- certificates

@dataclass
class Cert:
    name: str
    path: Path            # PEM of the certificate
    key: Path             # PEM of the key
    chain: Path           # leaf + intermediate (what a correct server sends)
    fingerprint: str
    spki: str
    serial: int = 0


class Pki:
    """A root, an intermediate and the leaves, made with python3-cryptography."""

    def __init__(self, d):
        self.d = Path(d)
        self.now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        self.certs = {}
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = self._make("root", self.root_key, None, None, "aclm scan test root",
                               ca=True, days=(-1, 3650))
        self.inter_key = ec.generate_private_key(ec.SECP256R1())
        self.inter = self._make("inter", self.inter_key, self.root, self.root_key,
                                "aclm scan test intermediate", ca=True, days=(-1, 1800))
        self.root_pem = self._write("root.pem", self.root)
        self.inter_pem = self._write("inter.pem", self.inter)
        self.inter_keyfile = self.d / "inter.key"
        self.inter_keyfile.write_bytes(self.inter_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        shared = ec.generate_private_key(ec.SECP256R1())
        loop = ["DNS:localhost", "IP:127.0.0.1"]
        self.leaf("good", sans=loop)
        self.leaf("incomplete", sans=loop)
        self.leaf("expired", sans=loop, days=(-100, -10))
        self.leaf("notyet", sans=loop, days=(10, 60))
        self.leaf("selfsigned", sans=loop, self_signed=True)
        self.leaf("wrongname", sans=["DNS:other.example"])
        self.leaf("rsa1024", sans=loop, key=rsa.generate_private_key(65537, 1024))
        self.leaf("sha1", sans=loop, digest=hashes.SHA1())
        self.leaf("longvalid", sans=loop, days=(-1, 364))
        self.leaf("shared_a", sans=["DNS:a.test", "IP:127.0.0.1"], key=shared)
        self.leaf("shared_b", sans=["DNS:b.test", "IP:127.0.0.1"], key=shared)
        self.leaf("wild", sans=["DNS:*.wild.test", "IP:127.0.0.1"])
        self.leaf("other", sans=loop)
        self.leaf("v6", sans=["DNS:localhost", "IP:::1"])
        # a CA nobody imported: its leaf is untrusted
        self.stranger_key = ec.generate_private_key(ec.SECP256R1())
        self.stranger = self._make("stranger", self.stranger_key, None, None, "stranger root",
                                   ca=True, days=(-1, 3650))
        self.leaf("untrusted", sans=loop, issuer=(self.stranger, self.stranger_key))

    def _write(self, name, cert):
        p = self.d / name
        p.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return p

    def _make(self, cn, key, issuer, issuer_key, subject_cn=None, ca=False, days=(-1, 89),
              sans=None, digest=None):
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn or cn)])
        b = (x509.CertificateBuilder()
             .subject_name(name)
             .issuer_name(issuer.subject if issuer is not None else name)
             .public_key(key.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(self.now + days[0] * DAY)
             .not_valid_after(self.now + days[1] * DAY)
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if sans:
            alt = []
            for s in sans:
                kind, _, v = s.partition(":")
                if kind == "DNS":
                    alt.append(x509.DNSName(v))
                else:
                    import ipaddress
                    alt.append(x509.IPAddress(ipaddress.ip_address(v)))
            b = b.add_extension(x509.SubjectAlternativeName(alt), critical=False)
        b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                            critical=False)
        if issuer is not None:
            b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                issuer_key.public_key()), critical=False)
        return b.sign(issuer_key if issuer_key is not None else key, digest or hashes.SHA256())

    def leaf(self, name, sans, days=(-1, 89), key=None, self_signed=False, digest=None,
             issuer=None):
        key = key or ec.generate_private_key(ec.SECP256R1())
        issuer = issuer or (self.inter, self.inter_key)
        if self_signed:
            cert = self._make(name + ".test", key, None, None, sans=sans, days=days,
                              digest=digest)
        else:
            cert = self._make(name + ".test", key, issuer[0], issuer[1], sans=sans,
                              days=days, digest=digest)
        path = self._write(name + ".pem", cert)
        kp = self.d / (name + ".key")
        kp.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()))
        os.chmod(kp, 0o600)
        chain = self.d / (name + ".chain.pem")
        chain.write_bytes(path.read_bytes() + (b"" if self_signed else self.inter_pem.read_bytes()))
        spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)
        import hashlib
        self.certs[name] = Cert(name, path, kp, chain,
                                cert.fingerprint(hashes.SHA256()).hex(),
                                hashlib.sha256(spki).hexdigest(), cert.serial_number)
        return self.certs[name]

    def ocsp_response(self, name):
        """A DER OCSP response 'good' for the leaf, signed by the intermediate
        (openssl ocsp as a one-shot responder)."""
        c = self.certs[name]
        d = self.d / ("ocsp-" + name)
        d.mkdir()
        serial = "%X" % c.serial
        if len(serial) % 2:
            serial = "0" + serial
        (d / "index.txt").write_text("V\t301231235959Z\t\t%s\tunknown\t/CN=%s.test\n"
                                     % (serial, name))
        subprocess.run(["openssl", "ocsp", "-issuer", str(self.inter_pem), "-cert", str(c.path),
                        "-reqout", str(d / "req.der"), "-no_nonce"], check=True,
                       capture_output=True)
        subprocess.run(["openssl", "ocsp", "-index", str(d / "index.txt"), "-rsigner",
                        str(self.inter_pem), "-rkey", str(self.inter_keyfile), "-CA",
                        str(self.inter_pem), "-reqin", str(d / "req.der"), "-respout",
                        str(d / "resp.der"), "-ndays", "2"], check=True, capture_output=True)
        return d / "resp.der"


# --------------------------------------------------------------- endpoints

@dataclass
class Endpoint:
    name: str
    port: int
    expect: dict          # what aclm must report (see Fleet.expectations)
    findings: set = field(default_factory=set)
    cert: str = None      # name of the leaf served
    chain_len: int = 0
    protocol: str = "tls"


def module_dir():
    d = Path(os.environ.get("ACLM_PQ_MODULE_DIR", REPO / "build" / "src" / "crypto"))
    if not (d / "aclm-pq.so").exists():
        # the module sits beside the binary's build tree
        b = Path(os.environ.get("ACLM_BIN", "")).resolve()
        if b.name == "aclm":
            d = b.parent.parent / "crypto"
    if not (d / "aclm-pq.so").exists():
        raise AssertionError(f"{d}/aclm-pq.so not found: build it or set ACLM_PQ_MODULE_DIR")
    return d


class Hostile(threading.Thread):
    """A TCP server that misbehaves in one way per connection."""

    def __init__(self, kind):
        super().__init__(daemon=True)
        self.kind = kind
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.open = []
        self.accepted = 0

    def run(self):
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        try:
            c.settimeout(10)
            if self.kind == "silent":
                self.open.append(c)         # keep it open, say nothing
                return
            if self.kind == "garbage":
                c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n" * 4)
                time.sleep(0.5)
            elif self.kind == "reset":
                c.recv(4096)
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            elif self.kind == "drip":
                c.recv(4096)
                for b in b"\x16\x03\x03\x40\x00" + b"\x02" * 200:
                    if self.stop.is_set():
                        break
                    c.sendall(bytes([b]))
                    time.sleep(0.2)
            elif self.kind == "bigchain":
                # A TLS 1.2 ServerHello, then a Certificate message of 1 MB
                # (a chain of ~700 certificates), streamed in full records.
                c.recv(4096)
                body = b"\x03\x03" + b"\x5a" * 32 + b"\x00" + b"\xc0\x2b" + b"\x00"
                sh = b"\x02" + len(body).to_bytes(3, "big") + body
                c.sendall(b"\x16\x03\x03" + len(sh).to_bytes(2, "big") + sh)
                total = 1 << 20
                msg = b"\x0b" + (total + 3).to_bytes(3, "big") + total.to_bytes(3, "big")
                sent = 0
                while sent < total + 7 and not self.stop.is_set():
                    chunk = (msg + b"\x30" * 0x4000)[:0x4000] if sent == 0 else b"\x30" * 0x4000
                    c.sendall(b"\x16\x03\x03" + len(chunk).to_bytes(2, "big") + chunk)
                    sent += len(chunk)
        except OSError:
            pass
        finally:
            if self.kind != "silent":
                c.close()

    def close(self):
        self.stop.set()
        for c in self.open:
            c.close()
        self.sock.close()


class StarttlsServer(threading.Thread):
    """A small SMTP, IMAP or POP3 server with STARTTLS (Debian's python3 ssl
    module): just enough dialogue to reach the TLS handshake."""

    def __init__(self, cert, proto="smtp"):
        super().__init__(daemon=True)
        self.proto = proto
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self.ctx.load_cert_chain(str(cert.chain), str(cert.key))
        self.ctx.set_ecdh_curve("prime256v1")    # one group: P-256
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()

    def run(self):
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    GREETING = {"smtp": b"220 mx.test ESMTP ready\r\n", "imap": b"* OK IMAP4rev1 ready\r\n",
                "pop3": b"+OK POP3 ready\r\n"}

    def answer(self, line):
        """(reply, go TLS after it) for one command line."""
        cmd = line.strip()
        up = cmd.upper()
        if self.proto == "smtp":
            if up.startswith(b"EHLO"):
                return b"250-mx.test\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n", False
            if up == b"STARTTLS":
                return b"220 2.0.0 go ahead\r\n", True
            return b"502 unknown\r\n", False
        if self.proto == "imap":
            tag, _, rest = cmd.partition(b" ")
            if rest.upper() == b"CAPABILITY":
                return (b"* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\n" + tag +
                        b" OK CAPABILITY completed\r\n"), False
            if rest.upper() == b"STARTTLS":
                return tag + b" OK Begin TLS negotiation now\r\n", True
            return tag + b" BAD unknown\r\n", False
        if up == b"CAPA":
            return b"+OK Capability list follows\r\nUSER\r\nSTLS\r\n.\r\n", False
        if up == b"STLS":
            return b"+OK Begin TLS\r\n", True
        return b"-ERR unknown\r\n", False

    def serve(self, c):
        try:
            c.settimeout(5)
            f = c.makefile("rb")
            c.sendall(self.GREETING[self.proto])
            while True:
                line = f.readline(1024)
                if not line:
                    return
                reply, go_tls = self.answer(line)
                c.sendall(reply)
                if go_tls:
                    t = self.ctx.wrap_socket(c, server_side=True)
                    try:
                        t.recv(100)
                    except (OSError, ssl.SSLError):
                        pass
                    t.close()
                    return
        except (OSError, ssl.SSLError):
            pass
        finally:
            c.close()

    def close(self):
        self.stop.set()
        self.sock.close()


def nginx_conf(tmp, servers):
    blocks = []
    for port, cert, protocols, curves in servers:
        blocks.append(f"""
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert.chain};
        ssl_certificate_key {cert.key};
        ssl_protocols {protocols};
        ssl_ecdh_curve {curves};
        location / {{ return 200 "ok\\n"; }}
    }}""")
    conf = tmp / "nginx.conf"
    conf.write_text(f"""
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
{''.join(blocks)}
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


def expect(reachable=True, reason="ok", versions=(), classic=(), pq=(), trust="trusted",
           hostname=True, protocol="tls", findings=(), cert=None, chain_len=2, ocsp=False):
    return {
        "ocsp": ocsp,
        "reachable": reachable, "reason": reason, "protocol": protocol,
        "versions": {v: (v in versions) for v in VERSIONS} if reachable else None,
        "groups": {g: (g in classic) for g in CLASSIC} if reachable else None,
        "pq": (list(pq) if pq else "none") if reachable else None,
        "trust": trust if reachable else None,
        "hostname_match": hostname if reachable else None,
        "findings": set(findings), "cert": cert, "chain_len": chain_len if reachable else 0,
    }


class Fleet:
    def __init__(self, tmp):
        self.tmp = Path(tmp)
        self.pki = Pki(self.tmp)
        self.procs = []
        self.threads = []
        self.endpoints = []
        c = self.pki.certs
        nopq = "no-pq-group"
        um = "unmanaged"

        # nginx with the provider: groups differ per port
        pq_servers = [
            ("ng-x25519mlkem", free_port(), c["good"], "TLSv1.2 TLSv1.3", "X25519MLKEM768:X25519",
             expect(versions=["TLSv1.2", "TLSv1.3"], classic=["X25519"], pq=["X25519MLKEM768"],
                    cert="good")),
            ("ng-nist-pq", free_port(), c["good"], "TLSv1.2 TLSv1.3",
             "SecP256r1MLKEM768:SecP384r1MLKEM1024:MLKEM1024:prime256v1",
             expect(versions=["TLSv1.2", "TLSv1.3"], classic=["P-256"],
                    pq=["SecP256r1MLKEM768", "SecP384r1MLKEM1024", "MLKEM1024"], cert="good")),
            ("ng-pq-only", free_port(), c["good"], "TLSv1.3", "curveSM2MLKEM768:MLKEM768",
             expect(versions=["TLSv1.3"], classic=[], pq=["curveSM2MLKEM768", "MLKEM768"],
                    cert="good")),
        ]
        plain_servers = [
            ("ng-plain", free_port(), c["good"], "TLSv1.2 TLSv1.3", "X25519:secp384r1",
             expect(versions=["TLSv1.2", "TLSv1.3"], classic=["X25519", "P-384"],
                    findings=[nopq], cert="good")),
        ]
        self._nginx("pq", pq_servers, with_provider=True)
        self._nginx("plain", plain_servers, with_provider=False)

        tls = ["TLSv1.2", "TLSv1.3"]
        grp = ["X25519", "P-256"]
        variants = [
            ("s-tls12", "good", ["-no_tls1_3"], expect(versions=["TLSv1.2"], classic=grp,
                                                       findings=[nopq], cert="good")),
            ("s-legacy", "good", ["-min_protocol", "TLSv1", "-cipher", "ALL:@SECLEVEL=0"],
             expect(versions=VERSIONS, classic=grp, findings=[nopq], cert="good")),
            ("s-expired", "expired", [], expect(versions=tls, classic=grp, cert="expired",
                                                findings=["expired", um, nopq])),
            ("s-notyet", "notyet", [], expect(versions=tls, classic=grp, cert="notyet",
                                              findings=["not-yet-valid", um, nopq])),
            ("s-selfsigned", "selfsigned", ["leaf-only"], expect(versions=tls, classic=grp, cert="selfsigned",
                                                      trust="self-signed", chain_len=1,
                                                      findings=["self-signed", um, nopq])),
            ("s-wrongname", "wrongname", [], expect(versions=tls, classic=grp, cert="wrongname",
                                                    hostname=False,
                                                    findings=["hostname-mismatch", um, nopq])),
            ("s-rsa1024", "rsa1024", [], expect(versions=tls, classic=grp, cert="rsa1024",
                                                findings=["weak-key", um, nopq])),
            ("s-sha1", "sha1", [], expect(versions=tls, classic=grp, cert="sha1",
                                          findings=["sha1-signature", um, nopq])),
            ("s-incomplete", "incomplete", ["leaf-only"],
             expect(versions=tls, classic=grp, cert="incomplete", trust="incomplete", chain_len=1,
                    findings=["incomplete-chain", um, nopq])),
            ("s-longvalid", "longvalid", [], expect(versions=tls, classic=grp, cert="longvalid",
                                                    findings=["validity-too-long", um, nopq])),
            ("s-shared-a", "shared_a", [], expect(versions=tls, classic=grp, cert="shared_a",
                                                  findings=[um, nopq])),
            ("s-shared-b", "shared_b", [], expect(versions=tls, classic=grp, cert="shared_b",
                                                  findings=[um, nopq])),
            ("s-wild-1", "wild", [], expect(versions=tls, classic=grp, cert="wild",
                                            findings=[um, nopq])),
            ("s-wild-2", "wild", [], expect(versions=tls, classic=grp, cert="wild",
                                            findings=[um, nopq])),
            ("s-untrusted", "untrusted", ["leaf-only"],
             expect(versions=tls, classic=grp, cert="untrusted", trust="untrusted", chain_len=1,
                    findings=["untrusted", um, nopq])),
            ("s-ocsp", "good", ["-status_file", str(self.pki.ocsp_response("good"))],
             expect(versions=tls, classic=grp, cert="good", ocsp=True, findings=[nopq])),
        ]
        for name, cert, extra, exp in variants:
            self.s_server(name, c[cert], extra, exp)

        self.starttls = {}
        for proto in ("smtp", "imap", "pop3"):
            srv = StarttlsServer(c["good"], proto)
            srv.start()
            self.threads.append(srv)
            self.endpoints.append(Endpoint(proto, srv.port, expect(
                versions=tls, classic=["P-256"], protocol=proto, findings=[nopq], cert="good")))
            self.starttls[proto] = srv.port

        self.hostile = {}
        for kind, reason, finding in [("silent", "timeout", "unreachable"),
                                      ("garbage", "not-tls", "not-tls"),
                                      ("reset", "reset", "unreachable"),
                                      ("drip", "timeout", "unreachable"),
                                      ("bigchain", "handshake", "unreachable")]:
            h = Hostile(kind)
            h.start()
            self.threads.append(h)
            self.hostile[kind] = h
            self.endpoints.append(Endpoint(kind, h.port, expect(
                reachable=False, reason=reason, findings=[finding])))
        self.endpoints.append(Endpoint("refused", free_port(),
                                       expect(reachable=False, reason="refused")))
        for e in self.endpoints:
            if e.expect["reachable"] and e.protocol == "tls":
                wait_port(e.port)

    def _nginx(self, tag, servers, with_provider):
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        d = self.tmp / ("nginx-" + tag)
        d.mkdir()
        env = dict(os.environ)
        if with_provider:
            env["OPENSSL_CONF"] = str(openssl_cnf(d))
        conf = nginx_conf(d, [(p, cert, protos, curves) for _, p, cert, protos, curves, _ in servers])
        proc = subprocess.Popen([nginx, "-c", str(conf), "-p", str(d)], env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        self.procs.append(proc)
        for name, port, cert, _, _, exp in servers:
            wait_port(port, proc)
            self.endpoints.append(Endpoint(name, port, exp))

    def s_server(self, name, cert, extra, exp, port=None, register=True, host="127.0.0.1"):
        port = port or free_port()
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        args = ["openssl", "s_server", "-accept", where, "-cert", str(cert.path),
                "-key", str(cert.key), "-groups", "X25519:P-256", "-www", "-quiet", "-naccept",
                "100000"]
        if "leaf-only" not in extra:
            args += ["-cert_chain", str(self.pki.inter_pem)]
        extra = [x for x in extra if x != "leaf-only"]
        if "-cipher" not in extra:
            # SECLEVEL 0 so RSA-1024 and SHA-1 load; then TLS 1.0/1.1 would be
            # on too unless the minimum says otherwise.
            args += ["-cipher", "DEFAULT:@SECLEVEL=0", "-min_protocol", "TLSv1.2"]
        proc = subprocess.Popen(args + extra, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        self.procs.append(proc)
        wait_port(port, proc, host=host)
        e = Endpoint(name, port, exp)
        if register:
            self.endpoints.append(e)
        return e, proc

    def by_port(self):
        return {e.port: e for e in self.endpoints}

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        for t in self.threads:
            t.close()
