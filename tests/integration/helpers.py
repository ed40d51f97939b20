"""Small helpers shared by the test files."""

import calendar
import re
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
