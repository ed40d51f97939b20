"""Pebble + pebble-challtestsrv for the ACME tests, on loopback ports chosen
here, with a TLS CA for Pebble's own listener made with the openssl CLI.

    peb = Pebble(tmpdir, env={"PEBBLE_WFE_NONCEREJECT": "0"}, config={...}).start()
    peb.directory, peb.trust, peb.http_port, peb.tls_port, peb.set_txt(...)
    peb.stop()

challtestsrv answers every A query with 127.0.0.1, so whatever name is
ordered, Pebble's VA connects to our responder on http_port / tls_port.
"""

import json
import os
import socket
import ssl
import subprocess
import time
import urllib.request
from helpers import free_port

FAST_ENV = {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"}


def openssl(*args, cwd=None):
    subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=cwd, timeout=60)


def make_tls_ca(d):
    """ca.pem (trust anchor), srv.pem/srv.key for 127.0.0.1 and localhost."""
    os.makedirs(d, exist_ok=True)
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=aclm test pebble TLS CA",
            cwd=d)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=localhost", cwd=d)
    with open(os.path.join(d, "ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "srv.pem", "-days", "2", "-extfile", "ext", cwd=d)
    return os.path.join(d, "ca.pem")


def wait_port(port, proc, what, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %s" % (what, proc.returncode))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("%s did not listen on %d" % (what, port))


class Pebble:
    def __init__(self, workdir, env=None, config=None, dnsserver=None):
        self.dir = str(workdir)
        self.dnsserver = dnsserver  # default: challtestsrv
        self.env = dict(FAST_ENV)
        self.env.update(env or {})
        self.config = config or {}
        self.procs = []

    def start(self):
        self.trust = make_tls_ca(os.path.join(self.dir, "tls"))
        self.port = free_port()
        self.mgmt_port = free_port()
        self.http_port = free_port()
        self.tls_port = free_port()
        self.dns_port = free_port()
        self.cts_port = free_port()
        cfg = {"listenAddress": "127.0.0.1:%d" % self.port,
               "managementListenAddress": "127.0.0.1:%d" % self.mgmt_port,
               "certificate": os.path.join(self.dir, "tls", "srv.pem"),
               "privateKey": os.path.join(self.dir, "tls", "srv.key"),
               "httpPort": self.http_port, "tlsPort": self.tls_port,
               "ocspResponderURL": "", "externalAccountBindingRequired": False}
        cfg.update(self.config)
        path = os.path.join(self.dir, "pebble.json")
        with open(path, "w") as f:
            json.dump({"pebble": cfg}, f)
        self.cts_log = open(os.path.join(self.dir, "challtestsrv.log"), "w")
        cts = subprocess.Popen(["pebble-challtestsrv", "-dns01", "127.0.0.1:%d" % self.dns_port,
                                "-http01", "", "-https01", "", "-tlsalpn01", "",
                                "-management", "127.0.0.1:%d" % self.cts_port,
                                "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""],
                               stdout=self.cts_log, stderr=subprocess.STDOUT)
        self.procs.append(cts)
        self.log = open(os.path.join(self.dir, "pebble.log"), "w")
        env = dict(os.environ)
        env.update(self.env)
        peb = subprocess.Popen(["pebble", "-config", path, "-strict",
                                "-dnsserver", self.dnsserver or "127.0.0.1:%d" % self.dns_port],
                               stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.procs.append(peb)
        self.pebble = peb
        wait_port(self.cts_port, cts, "pebble-challtestsrv")
        wait_port(self.port, peb, "pebble")
        return self

    @property
    def directory(self):
        return "https://127.0.0.1:%d/dir" % self.port

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
        self.procs = []

    def _mgmt(self, port, path, body=None, tls=False):
        ctx = None
        url = "%s://127.0.0.1:%d%s" % ("https" if tls else "http", port, path)
        if tls:
            ctx = ssl.create_default_context(cafile=self.trust)
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data)
        with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
            return r.read()

    def cert_status(self, serial_hex):
        """Pebble's view of a certificate: {"Status": "Valid"|"Revoked", ...}."""
        return json.loads(self._mgmt(self.mgmt_port, "/cert-status-by-serial/%s" % serial_hex.lower(),
                                     tls=True))

    def root_pem(self, n=0):
        return self._mgmt(self.mgmt_port, "/roots/%d" % n, tls=True).decode()

    def hook_script(self, path):
        """A dns-01 hook for `aclm issue --dns-hook`: add/remove TXT records
        through challtestsrv's management API; logs each call."""
        log = path + ".log"
        with open(path, "w") as f:
            f.write("""#!/usr/bin/python3
import json, sys, urllib.request
action, fqdn, value = sys.argv[1:4]
with open(%r, "a") as log:
    log.write("%%s %%s %%s\\n" %% (action, fqdn, value))
path = "/set-txt" if action == "add" else "/clear-txt"
body = {"host": fqdn, "value": value} if action == "add" else {"host": fqdn}
urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:%d" + path,
                       data=json.dumps(body).encode()), timeout=10).read()
""" % (log, self.cts_port))
        os.chmod(path, 0o755)
        return path, log


def write_config(aclm, cas, extra=""):
    """aclm.yaml in the test's directory with acme.cas = cas (list of dicts)."""
    lines = ["acme:", "  cas:"]
    for ca in cas:
        first = True
        for k, v in ca.items():
            lines.append("    %s %s: %s" % ("-" if first else " ", k, json.dumps(str(v))))
            first = False
    path = os.path.join(aclm.tmp, "aclm.yaml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n" + extra)
    return path


def pebble_ca(peb, name="pebble", **kw):
    d = {"name": name, "directory": peb.directory, "trust": peb.trust}
    d.update(kw)
    return d


def main():
    """Try aclm against Pebble by hand: starts Pebble and challtestsrv on
    loopback, writes aclm-pebble.yaml here, prints the command, waits for
    Ctrl-C."""
    import argparse
    import tempfile
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--config", default="aclm-pebble.yaml")
    a = ap.parse_args()
    import signal
    import sys
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # run the finally below
    work = tempfile.mkdtemp(prefix="aclm-pebble-")
    peb = Pebble(work).start()
    try:
        with open(a.config, "w") as f:
            f.write("acme:\n  cas:\n    - name: pebble\n      directory: %s\n      trust: %s\n"
                    % (peb.directory, peb.trust))
        print("Pebble is at %s (files in %s); %s written.\n" % (peb.directory, work, a.config))
        print("  aclm --config %s issue a.example.test --standalone 127.0.0.1:%d"
              % (a.config, peb.http_port))
        print("  aclm --config %s issue b.example.test --challenge tls-alpn-01 "
              "--standalone 127.0.0.1:%d" % (a.config, peb.tls_port))
        print("\nCtrl-C stops Pebble.")
        peb.pebble.wait()
    except KeyboardInterrupt:
        pass
    finally:
        peb.stop()
        import shutil
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
