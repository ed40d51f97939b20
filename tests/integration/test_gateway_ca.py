"""aclm gateway with sites whose certificates come from aclm's built-in CA:
cert_source ca (issued in process from the store, ECDSA + RSA, stapled from
the CA's own OCSP responder, reused across restarts, renewed when the CA's
window moves), and cert_source acme against aclm's own ACME server, which
offers ARI: a moved window renews the site's certificate without a restart
and the order names the certificate it replaces."""
import os
import re
import socket
import ssl
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from conftest import BIN, Aclm  # noqa: E402
from gw_helpers import Nginx, free_port, http_request, wait_port  # noqa: E402

NAMES = ("svc.corp.internal", "alt.corp.internal", "*.apps.corp.internal")


@pytest.fixture(scope="module")
def nginx(tmp_path_factory):
    n = Nginx(tmp_path_factory.mktemp("gwcanginx"))
    yield n
    n.stop()


class CaGateway:
    """`aclm gateway` on a test's store, one site (names) from the built-in CA."""

    def __init__(self, aclm, upstream, state, site_extra="", names=NAMES):
        self.aclm = aclm
        self.port = free_port()
        self.state = state
        self.config = os.path.join(aclm.tmp, "gw.yaml")
        ns = ", ".join('"%s"' % n for n in names)
        with open(self.config, "w") as f:
            f.write('listen: ["127.0.0.1:%d"]\nworkers: 2\nstate_dir: %s\nsites:\n'
                    '  - names: [%s]\n    upstreams: ["http://127.0.0.1:%d"]\n'
                    "    cert_source: ca\n%s" % (self.port, state, ns, upstream, site_extra))
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([BIN, "--db", self.aclm.db, "gateway", "--config", self.config],
                                     cwd=self.aclm.tmp, env=self.aclm.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        wait_port(self.port, self.proc)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        err = self.proc.stderr.read() if self.proc else ""
        assert "runtime error" not in err and "AddressSanitizer" not in err, err
        return err


def s_client(port, sni, *args, roots=None):
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername", sni, *args]
    if roots:
        cmd += ["-CAfile", roots, "-verify_return_error"]
    return subprocess.run(cmd, input="", capture_output=True, text=True, timeout=30).stdout


def served(port, sni="svc.corp.internal", *args):
    """(sha256 fingerprint, issuer, subject) of the served leaf."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname=sni) as t:
            der = t.getpeercert(binary_form=True)
    out = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-fingerprint", "-sha256",
                          "-issuer", "-subject"], input=der, capture_output=True).stdout.decode()
    fp = re.search(r"Fingerprint=([0-9A-F:]+)", out).group(1).replace(":", "").lower()
    return fp, out


def wait_for_ca_cert(g, sni="svc.corp.internal", timeout=30):
    deadline = time.time() + timeout
    while True:
        fp, out = served(g.port, sni)
        if "aclm" in out.split("issuer=")[1].split("\n")[0]:
            return fp, out
        assert g.proc.poll() is None, g.proc.stderr.read()
        assert time.time() < deadline, "no certificate from the built-in CA: " + out
        time.sleep(0.2)


def roots(aclm):
    path = os.path.join(aclm.tmp, "roots.pem")
    aclm("ca", "export-roots", "--out", path, check_rc=0)
    return path


def n_issued(aclm):
    return len(aclm.json("ca", "list", "--json"))


def test_ca_site_is_served_from_the_builtin_ca_dual_and_stapled(aclm, nginx, tmp_path):
    """On SQLite and on PostgreSQL (the certificate thread and the OCSP
    thread share the gateway's one store connection)."""
    aclm("ca", "init", check_rc=0)
    state = tmp_path / "state"
    g = CaGateway(aclm, nginx.port, state, "    key_type: [ec256, rsa2048]\n").start()
    try:
        wait_for_ca_cert(g)
        pem = roots(aclm)
        # a default client: the ECDSA certificate, verified against the CA's roots
        deadline = time.time() + 20
        while True:
            out = s_client(g.port, "svc.corp.internal", "-verify_hostname", "svc.corp.internal",
                           roots=pem)
            rsa = s_client(g.port, "svc.corp.internal", "-sigalgs", "RSA-PSS+SHA256:RSA+SHA256",
                           roots=pem)
            if "Peer signature type: RSA-PSS" in rsa:
                break
            assert time.time() < deadline, rsa
            time.sleep(0.3)
        assert "Verify return code: 0 (ok)" in out, out
        assert "Peer signature type: ECDSA" in out, out
        # an RSA-only client: the RSA certificate of the pair, also verified
        assert "Verify return code: 0 (ok)" in rsa, rsa
        assert re.search(r"Server public key is 2048 bit", rsa), rsa
        # every name, the wildcard too
        out = s_client(g.port, "x.apps.corp.internal", "-verify_hostname", "x.apps.corp.internal",
                       roots=pem)
        assert "Verify return code: 0 (ok)" in out, out
        # proxied as usual
        ctx = ssl.create_default_context(cafile=pem)
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", g.port), timeout=5),
                             server_hostname="alt.corp.internal") as s:
            st, _, body = http_request(s, b"GET / HTTP/1.1\r\nHost: alt.corp.internal\r\n\r\n")
        assert st == 200 and b"host=alt.corp.internal" in body
        # OCSP stapled from the built-in CA's responder
        deadline = time.time() + 20
        while True:
            out = s_client(g.port, "svc.corp.internal", "-status")
            if "OCSP Response Status: successful" in out:
                break
            assert time.time() < deadline, out
            time.sleep(0.3)
        assert "Cert Status: good" in out, out
        # files: keys 0600; the store: two managed certificates, current, with
        # sealed keys and an observation of where they are served
        for f in ("svc.corp.internal.key", "svc.corp.internal.rsa.key"):
            assert oct(os.stat(state / f).st_mode & 0o777) == "0o600"
        rows = aclm.sql("SELECT name, current_cert_id, ca, status, id, pair_id FROM "
                        "managed_certificates ORDER BY name")
        assert [r[0] for r in rows] == ["svc.corp.internal/ec256", "svc.corp.internal/rsa2048"], rows
        assert all(r[2] == "ca:main" and r[3] == "valid" for r in rows), rows
        assert rows[0][5] == rows[1][4] and rows[1][5] == rows[0][4], "not paired: %s" % rows
        for r in rows:
            show = aclm.json("show", "--json", r[1])
            assert show["has_private_key"] is True or show.get("private_key") not in (None, False), show
        # `aclm renew` (and the server's scheduler) leave them to the gateway,
        # forced or not: no ACME order can renew them
        for force in ([], ["--force"]):
            rc, out, err = aclm("renew", "--all", "--json", *force)
            assert rc == 0 and out.count("the gateway renews it") == 2, out + err
            assert "failed" not in out and "renewed" not in out, out + err
        obs = aclm.sql("SELECT location FROM observations WHERE location LIKE 'gateway %'")
        assert len(obs) == 2, obs
        # no key in plain text in the database
        assert not aclm.sql("SELECT 1 FROM keys WHERE private_key LIKE '%PRIVATE KEY%'")
    finally:
        g.stop()


def test_a_second_start_reuses_the_certificate(aclm_sqlite, nginx, tmp_path):
    aclm = aclm_sqlite
    aclm("ca", "init", check_rc=0)
    state = tmp_path / "state"
    g = CaGateway(aclm, nginx.port, state).start()
    try:
        first, _ = wait_for_ca_cert(g)
    finally:
        g.stop()
    issued = n_issued(aclm)
    # the files are there: served as they are
    g.start()
    try:
        assert wait_for_ca_cert(g)[0] == first
        time.sleep(2)
        assert served(g.port)[0] == first
    finally:
        g.stop()
    # the state directory is lost: written again from the store
    for f in os.listdir(state):
        if f.endswith((".crt", ".key")):
            os.unlink(state / f)
    g.start()
    try:
        assert wait_for_ca_cert(g)[0] == first
    finally:
        err = g.stop()
    assert "written from the store" in err, err
    # a broken file (a crash while writing, a hand edit): a stand-in, then
    # the certificate from the store again
    (state / "svc.corp.internal.crt").write_text("-----BEGIN CERTIFICATE-----\ngarbage\n")
    g.start()
    try:
        assert wait_for_ca_cert(g)[0] == first
    finally:
        err = g.stop()
    assert "obtained again" in err and "written from the store" in err, err
    assert n_issued(aclm) == issued, "a restart issued another certificate"


def test_check_names_an_unknown_ca_with_file_and_line(aclm_sqlite, nginx, tmp_path):
    aclm = aclm_sqlite
    # no CA at all yet: the default one is named, and how to make it
    g2 = CaGateway(aclm, nginx.port, tmp_path / "state")
    rc, _, err = aclm("gateway", "check", "--config", g2.config)
    assert rc == 1 and "gw.yaml:5:" in err and "'main'" in err and "aclm ca init" in err, err
    aclm("ca", "init", check_rc=0)
    rc, out, err = aclm("gateway", "check", "--config", g2.config)
    assert rc == 0, err
    # a CA name that does not exist: the line of `ca:`
    g = CaGateway(aclm, nginx.port, tmp_path / "state", '    ca: "nosuch"\n')
    rc, _, err = aclm("gateway", "check", "--config", g.config)
    assert rc == 1 and "gw.yaml:8:" in err and "nosuch" in err and "aclm ca init --name nosuch" in err, err
    # and the gateway does not start on it
    p = subprocess.run([BIN, "--db", aclm.db, "gateway", "--config", g.config], cwd=aclm.tmp,
                       env=aclm.env, capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "gw.yaml:8:" in p.stderr and "nosuch" in p.stderr, p.stderr
    # other mistakes of a ca site, each with its line
    for extra, line, words in [('    ca_profile: "forever"\n', 8, "ca_profile"),
                               ('    acme_challenge: "tls-alpn-01"\n', 5, "cert_source acme"),
                               ('    key_type: [ec256, ec384]\n', 8, "one ECDSA and one RSA")]:
        g = CaGateway(aclm, nginx.port, tmp_path / "state", extra)
        rc, _, err = aclm("gateway", "check", "--config", g.config)
        assert rc == 1 and ("gw.yaml:%d:" % line) in err and words in err, (extra, err)
    # names the CA may not issue for (ca.dns_suffixes of aclm.yaml)
    with open(os.path.join(aclm.tmp, "aclm.yaml"), "w") as f:
        f.write("ca:\n  dns_suffixes: [example.net]\n")
    g = CaGateway(aclm, nginx.port, tmp_path / "state")
    rc, _, err = aclm("gateway", "check", "--config", g.config)
    assert rc == 1 and "gw.yaml:5:" in err and "corp.internal is outside" in err, err


def test_ca_site_renews_when_the_ca_moves_its_window(aclm_sqlite, nginx, tmp_path):
    """`aclm ca renew-early` (an incident an hour ago) puts the window in the
    past: the gateway issues a new certificate and serves it, no restart."""
    aclm = aclm_sqlite
    aclm("ca", "init", check_rc=0)
    g = CaGateway(aclm, nginx.port, tmp_path / "state").start()
    try:
        first, _ = wait_for_ca_cert(g)
        time.sleep(1)
        assert served(g.port)[0] == first
        serial = aclm.json("show", "--json", first)["serial"]
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 7200))
        aclm("ca", "renew-early", serial, "--at", at, check_rc=0)
        deadline = time.time() + 30
        while served(g.port)[0] == first:
            assert time.time() < deadline, "the gateway did not follow the CA's window" + g.stop()
            time.sleep(0.3)
        cur = aclm.sql("SELECT c.fingerprint FROM managed_certificates m JOIN certificates c "
                       "ON c.id = m.current_cert_id")
        assert served(g.port)[0] == cur[0][0].replace(":", "").lower()
    finally:
        g.stop()


# ---------------------------------------------------------------- ARI, cert_source acme

def test_acme_site_follows_ari_of_aclms_acme_server(aclm_sqlite, nginx, tmp_path):
    """The gateway's ACME site against aclm's own ACME server (built-in CA,
    ARI with a 2 s Retry-After, clamped to a minute by the client): the
    gateway asks renewalInfo and keeps the CA's Retry-After; when `aclm ca
    renew-early` puts the window in the past, the next question renews the
    certificate, without a restart, the order names the one it replaces,
    and the new certificate is served within a few seconds."""
    from test_ca_acme import CaServer
    casrv = CaServer(aclm_sqlite, env={"ACLM_CA_ARI_RETRY_AFTER": "2s"})
    client = Aclm(tmp_path / "client", "sqlite:%s" % (tmp_path / "client" / "c.db"), "sqlite")
    cfg = os.path.join(client.tmp, "aclm.yaml")
    with open(cfg, "w") as f:
        f.write("acme:\n  cas:\n    - name: builtin\n      directory: %s\n      trust: %s\n"
                % (casrv.directory, casrv.trust))
    port = free_port()
    gw_yaml = os.path.join(client.tmp, "gw.yaml")
    with open(gw_yaml, "w") as f:
        f.write('listen: ["127.0.0.1:%d"]\nhttp_listen: ["127.0.0.1:%d"]\nworkers: 2\n'
                "state_dir: %s/state\nsites:\n"
                '  - names: ["ari.corp.internal"]\n    upstreams: ["http://127.0.0.1:%d"]\n'
                "    cert_source: acme\n" % (port, casrv.http_port, client.tmp, nginx.port))
    proc = subprocess.Popen([BIN, "--config", cfg, "--db", client.db, "gateway", "--config", gw_yaml],
                            cwd=client.tmp, env=client.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)

    def current():
        rows = client.sql("SELECT m.id, c.fingerprint, m.ari_check_at FROM managed_certificates m "
                          "JOIN certificates c ON c.id = m.current_cert_id")
        return rows[0] if rows else None

    try:
        wait_port(port, proc)
        deadline = time.time() + 60
        while True:
            fp, out = served(port, "ari.corp.internal")
            cur = current()
            if cur and fp == cur[1] and int(cur[2]) > 0:
                break
            assert proc.poll() is None, proc.stderr.read()
            assert time.time() < deadline, "no certificate, or ARI not asked: %s %s" % (out, cur)
            time.sleep(0.3)
        first, mid = fp, int(cur[0])
        # asked, and the CA's Retry-After kept (2 s, clamped to at least 60 s)
        assert int(cur[2]) <= time.time() + 70, cur
        serial = client.json("show", "--json", first)["serial"]
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 7200))
        casrv.aclm("ca", "renew-early", serial, "--at", at, check_rc=0)
        deadline = time.time() + 100
        while current()[1] == first:
            assert proc.poll() is None, proc.stderr.read()
            assert time.time() < deadline, "the gateway did not follow the CA's window"
            time.sleep(0.3)
        renewed = time.time()
        new = current()[1]
        while served(port, "ari.corp.internal")[0] != new:
            assert time.time() < renewed + 5, "the renewed certificate is not served"
            time.sleep(0.1)
        orders = client.sql("SELECT replaces FROM acme_orders WHERE managed_id = %d ORDER BY id"
                            % mid)
        assert len(orders) == 2 and orders[0][0] in ("", "None"), orders
        assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", orders[1][0]), orders
        # renewed by someone else on the same store (`aclm renew`, the
        # server's scheduler): the gateway serves that one when it next asks
        # (the CA's Retry-After), instead of ordering another
        client.run("--config", cfg, "renew", "--force", str(mid), check_rc=0)
        third = current()[1]
        assert third != new
        deadline = time.time() + 90
        while served(port, "ari.corp.internal")[0] != third:
            assert proc.poll() is None, proc.stderr.read()
            assert time.time() < deadline, "a certificate renewed elsewhere is not served"
            time.sleep(0.5)
        assert len(client.sql("SELECT id FROM acme_orders WHERE managed_id = %d" % mid)) == 3
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        err = proc.stderr.read()
        casrv.stop()
    assert "runtime error" not in err and "AddressSanitizer" not in err, err
    assert "replacing" in err, err


def test_reload_refuses_what_the_certificate_thread_cannot_serve(aclm_sqlite, nginx, tmp_path):
    """A reload naming a built-in CA that does not exist is refused (the
    running configuration stays); so is a ca site added to a gateway that
    was started without the store."""
    import signal
    from gw_helpers import Gateway, make_cert, site_yaml
    aclm = aclm_sqlite
    aclm("ca", "init", check_rc=0)
    g = CaGateway(aclm, nginx.port, tmp_path / "state").start()
    try:
        first, _ = wait_for_ca_cert(g)
        with open(g.config, "a") as f:
            f.write('    ca: "nosuch"\n')
        g.proc.send_signal(signal.SIGHUP)
        time.sleep(1.5)
        assert served(g.port)[0] == first
    finally:
        err = g.stop()
    assert "reload failed" in err and "gw.yaml:8:" in err and "aclm ca init --name nosuch" in err, err
    # files only at start: no store, no certificate thread
    files = tmp_path / "files"
    files.mkdir()
    cert = make_cert(files, "f", "ec")
    plain = Gateway(files, site_yaml([nginx.port], [cert]), extra=f"state_dir: {files}/state\n")
    try:
        with open(plain.config, "a") as f:
            f.write('  - names: ["new.corp.internal"]\n    upstreams: ["http://127.0.0.1:%d"]\n'
                    "    cert_source: ca\n" % nginx.port)
        plain.proc.send_signal(signal.SIGHUP)
        time.sleep(1.5)
        assert plain.proc.poll() is None
    finally:
        err = plain.stop()
    assert "reload failed" in err and "restart it" in err, err
