"""Small helpers shared by the test files."""

import calendar
import os
import re
import socket
import time

ISO_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def by_name(rows, pki):
    """{certificate name from pki.CERTS: row} of list/show JSON rows; fails
    on a row that is not one of ours."""
    out = {}
    for r in rows:
        name = pki.by_fingerprint(r["fingerprint"])
        assert name is not None, "unexpected certificate in the inventory: %r" % r
        assert name not in out, "certificate listed twice: %s" % name
        out[name] = r
    return out


def names(rows, pki):
    """Sorted certificate names of rows."""
    return sorted(by_name(rows, pki))


def ordered_names(rows, pki):
    return [pki.by_fingerprint(r["fingerprint"]) for r in rows]


def stderr_lines(err):
    return [ln for ln in err.splitlines() if ln.strip()]


def strip_seen(rows):
    """Rows without the timestamps that differ between runs."""
    return [{k: v for k, v in r.items() if k not in ("first_seen", "last_seen")} for r in rows]


def iso_to_epoch(s):
    assert isinstance(s, str) and ISO_RE.match(s), "not ISO 8601 UTC with Z: %r" % (s,)
    return calendar.timegm(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ"))


def norm_fp(s):
    return s.replace(":", "").lower()


def cert_table(aclm):
    """The table of certificates (for the tests that edit rows directly)."""
    if "certificates" in aclm.tables():
        return "certificates"
    t = [t for t in aclm.tables() if "fingerprint" in aclm.columns(t) and "cert" in t]
    assert t, aclm.tables()
    return t[0]


def diff_rows(a, b):
    """A short description of how two lists of JSON objects differ."""
    if len(a) != len(b):
        return "lengths %d != %d" % (len(a), len(b))
    out = []
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            keys = sorted(k for k in set(x) | set(y) if x.get(k) != y.get(k))
            out.append("row %d: " % i + ", ".join("%s: %r != %r" % (k, x.get(k), y.get(k)) for k in keys))
    return "\n".join(out[:10])


# ------------------------------------------------------------------ ports

_PORTS_PER_WORKER = 1500
_MAX_WORKERS = 8
_next_port = None


def _port_range():
    """This process's ports: a slice, by pytest-xdist worker, of the ports
    just below the kernel's ephemeral range, so that neither another test
    process nor an outgoing connection is given the same port."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            ephemeral_low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    n = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    base = ephemeral_low - _MAX_WORKERS * _PORTS_PER_WORKER
    if base < 1024:
        return None
    return base + (n % _MAX_WORKERS) * _PORTS_PER_WORKER


def _bindable(host, port):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(family, kind) as s:
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def free_port(host="127.0.0.1"):
    """A loopback port that is free now (TCP and UDP) and that this test
    process has not handed out recently.  Binding port 0 and closing is not
    enough: the kernel gives that port to the next outgoing connection or
    to another worker, and a server started a moment later then fails with
    "Address already in use"."""
    global _next_port
    lo = _port_range()
    if lo is None:
        with socket.socket() as s:
            s.bind((host, 0))
            return s.getsockname()[1]
    if _next_port is None or not lo <= _next_port < lo + _PORTS_PER_WORKER:
        _next_port = lo + os.getpid() % _PORTS_PER_WORKER
    for _ in range(_PORTS_PER_WORKER):
        port = _next_port
        _next_port = lo + (port - lo + 1) % _PORTS_PER_WORKER
        if _bindable(host, port):
            return port
    raise RuntimeError("no free port in %d..%d" % (lo, lo + _PORTS_PER_WORKER - 1))


# --- the listing columns (certificates.list_name, list_issuer) -------------

LIST_CUT = 200   # bytes; STORE_LIST_CUT


def _cut(s):
    b = s.encode()
    if len(b) <= LIST_CUT:
        return s
    n = LIST_CUT
    while b[n] & 0xC0 == 0x80:
        n -= 1
    return b[:n].decode() + "..."


def expected_list_columns(subject, subject_cn, sans, issuer, issuer_cn):
    """What a one-line summary shows, written from its definition: the CN,
    else the first SAN's value, else the subject DN, with " (+N)" for N more
    SANs; the issuer's CN, else its DN; each cut to 200 bytes at a character
    boundary."""
    n = len(sans.split(",")) if sans else 0
    if subject_cn:
        name = subject_cn
    elif sans:
        first = sans.split(",")[0]
        name = first.split(":", 1)[1] if ":" in first else first
    else:
        name, n = subject, 0
    name = _cut(name) + (" (+%d)" % (n - 1) if n > 1 else "")
    return name, _cut(issuer if issuer_cn is None else issuer_cn)


LIST_ROWS = ("SELECT id, subject, COALESCE(subject_cn, ''), sans, issuer, "
             "COALESCE(issuer_cn, ''), CASE WHEN issuer_cn IS NULL THEN 1 ELSE 0 END, "
             "list_name, list_issuer FROM certificates ORDER BY id")


def check_list_columns(a):
    """Every certificate of a's database has the list columns the definition
    gives (none missing); returns the rows of LIST_ROWS."""
    rows = a.sql(LIST_ROWS)
    assert rows
    for r in rows:
        want = expected_list_columns(r[1], r[2], r[3], r[4], None if r[6] == "1" else r[5])
        assert (r[7], r[8]) == want, (a.backend, r)
    return rows
