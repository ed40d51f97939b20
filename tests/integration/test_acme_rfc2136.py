"""dns-01 by RFC 2136 dynamic update with TSIG, against a real BIND
started here on a loopback port, serving the zone Pebble resolves through
(Pebble's -dnsserver is that BIND).  aclm adds the TXT record, waits until
every authoritative server of the zone (its NS, here the primary) answers
it, tells the CA, and deletes it afterwards."""

import os
import shutil
import socket
import struct
import subprocess

import pytest

from acme_pebble import Pebble, free_port, pebble_ca, wait_port, write_config

ZONE = "dyn.test"


def start_named(d):
    named = shutil.which("named") or "/usr/sbin/named"
    if not os.path.exists(named):
        pytest.fail("BIND (named) is not installed: run scripts/install-deps --test")
    os.makedirs(d, exist_ok=True)
    key = subprocess.run(["tsig-keygen", "-a", "hmac-sha256", "aclm-key"], capture_output=True,
                         text=True, check=True).stdout
    with open(os.path.join(d, "key.conf"), "w") as f:
        f.write(key)
    port = free_port()
    with open(os.path.join(d, "dyn.test.zone"), "w") as f:
        f.write("$TTL 60\n"
                "@ IN SOA ns1.dyn.test. hostmaster.dyn.test. 1 60 60 600 60\n"
                "@ IN NS ns1.dyn.test.\n"
                "ns1 IN A 127.0.0.1\n"
                "@ IN A 127.0.0.1\n"
                "* IN A 127.0.0.1\n")
    with open(os.path.join(d, "named.conf"), "w") as f:
        f.write("""
options {
    directory "%(d)s";
    pid-file "%(d)s/named.pid";
    listen-on port %(port)d { 127.0.0.1; };
    listen-on-v6 { none; };
    recursion no;
    dnssec-validation no;
    notify no;
};
include "%(d)s/key.conf";
zone "dyn.test" { type primary; file "%(d)s/dyn.test.zone"; allow-update { key "aclm-key"; }; };
""" % {"d": d, "port": port})
    log = open(os.path.join(d, "named.log"), "w")
    proc = subprocess.Popen([named, "-g", "-c", os.path.join(d, "named.conf")],
                            stdout=log, stderr=subprocess.STDOUT)
    wait_port(port, proc, "named")
    return proc, port, os.path.join(d, "key.conf")


def txt(port, name):
    """TXT strings for name from the server (a small query, no dig needed)."""
    q = struct.pack(">HHHHHH", 0x4242, 0, 1, 0, 0, 0)
    q += b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split(".")) + b"\0"
    q += struct.pack(">HH", 16, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(3)
        s.sendto(q, ("127.0.0.1", port))
        a = s.recv(4096)
    an = struct.unpack(">H", a[6:8])[0]
    off = len(q)
    out = []
    for _ in range(an):
        if a[off] & 0xC0 == 0xC0:
            off += 2
        else:
            while a[off]:
                off += a[off] + 1
            off += 1
        t, _, _, rdlen = struct.unpack(">HHIH", a[off:off + 10])
        off += 10
        if t == 16:
            out.append(a[off + 1:off + 1 + a[off]].decode())
        off += rdlen
    return out


@pytest.fixture(scope="module")
def dns(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("named"))
    proc, port, key = start_named(d)
    peb = Pebble(tmp_path_factory.mktemp("pebble"), dnsserver="127.0.0.1:%d" % port).start()
    yield peb, port, key
    peb.stop()
    proc.kill()
    proc.wait()


def test_rfc2136_wildcard(aclm_sqlite, dns):
    peb, port, key = dns
    write_config(aclm_sqlite, [pebble_ca(peb)])
    out = aclm_sqlite.json("issue", "--json", "*.dyn.test", "www.dyn.test", "--challenge", "dns-01",
                           "--dns-server", "127.0.0.1:%d" % port, "--dns-zone", ZONE,
                           "--tsig-key", key, timeout=90)
    assert out[0]["cert_id"] > 0
    pem = aclm_sqlite.run("export", out[0]["cert_id"], check_rc=0)[1]
    text = subprocess.run(["openssl", "x509", "-noout", "-text"], input=pem.encode(),
                          capture_output=True, check=True).stdout.decode()
    assert "DNS:*.dyn.test" in text and "DNS:www.dyn.test" in text
    # the records are gone afterwards
    assert txt(port, "_acme-challenge.dyn.test") == []
    assert txt(port, "_acme-challenge.www.dyn.test") == []
    # renewing uses the same settings (stored with the managed certificate)
    res = aclm_sqlite.json("renew", "--all", "--force", "--json", timeout=90)
    assert res[0]["result"] == "renewed"


def test_rfc2136_errors(aclm_sqlite, dns, tmp_path):
    peb, port, key = dns
    write_config(aclm_sqlite, [pebble_ca(peb)])
    bad = tmp_path / "bad.key"
    bad.write_text('key "aclm-key" { algorithm hmac-sha256; secret "c2VjcmV0c2VjcmV0c2VjcmV0"; };\n')
    rc, out, err = aclm_sqlite.run("issue", "e.dyn.test", "--challenge", "dns-01",
                                   "--dns-server", "127.0.0.1:%d" % port, "--dns-zone", ZONE,
                                   "--tsig-key", str(bad), check_rc=1)
    assert "NOTAUTH" in err and "e.dyn.test" in err and "CA pebble" in err
    rc, out, err = aclm_sqlite.run("issue", "e.dyn.test", "--challenge", "dns-01",
                                   "--dns-server", "127.0.0.1:%d" % free_port(), "--dns-zone",
                                   ZONE, "--tsig-key", key, check_rc=1, timeout=60)
    assert "DNS server 127.0.0.1:" in err and ("refused" in err or "does not answer" in err)
    assert "CA pebble: order https://" in err
    notkey = tmp_path / "nokey"
    notkey.write_text("hello\n")
    rc, out, err = aclm_sqlite.run("issue", "e.dyn.test", "--challenge", "dns-01",
                                   "--dns-server", "127.0.0.1:%d" % port, "--dns-zone", ZONE,
                                   "--tsig-key", str(notkey), check_rc=1)
    assert "not a TSIG key file" in err
