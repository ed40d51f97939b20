"""aclm scan / aclm findings against a ground-truth fleet on loopback
(scan_fleet.py): every attribute and every finding of every endpoint must
match what the fleet was configured to be, on SQLite and PostgreSQL; bad
targets, the 65,536-address guard, unresolvable names, rescans (certificate
changed, findings resolved), --known, excludes and the progress line."""

import json
import os
import pty
import subprocess
import time

import pytest

from conftest import BIN
from scan_fleet import CLASSIC, PQ, Fleet, free_port, wait_port

FAST = ["--connect-timeout", "1", "--handshake-timeout", "2"]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    f = Fleet(tmp_path_factory.mktemp("fleet"))
    try:
        yield f
    finally:
        f.close()


def prime_inventory(aclm, fleet):
    """aclm's own CAs and the one managed leaf ("good") are imported."""
    p = fleet.pki
    aclm.import_json(p.root_pem, p.inter_pem, p.certs["good"].path)


def scan(aclm, fleet, *extra):
    targets = ["127.0.0.1:%d" % e.port for e in fleet.endpoints]
    starttls = []
    for proto, port in fleet.starttls.items():
        starttls += ["--starttls", "%d:%s" % (port, proto)]
    return aclm.json("scan", "--json", "--no-progress", *FAST, "--wildcard-max", "1",
                     *starttls, *targets, *extra)


def check_endpoint(e, got, fleet):
    x = e.expect
    why = "%s (port %d): %s" % (e.name, e.port, json.dumps(got, indent=1)[:3000])
    assert got["ip"] == "127.0.0.1" and got["host"] == "" and got["sni"] == "", why
    assert got["reachable"] is x["reachable"], why
    assert got["reason"] == x["reason"], why
    assert got["protocol"] == x["protocol"], why
    assert set(got["findings"]) == x["findings"], why
    assert len(got["findings"]) == len(x["findings"]), why   # each once
    assert len(got["chain"]) == x["chain_len"], why
    if not x["reachable"]:
        assert got["detail"], why              # a reason a person can read
        if e.name == "bigchain":
            assert "excessive message size" in got["detail"], why
        assert got["leaf"] is None, why
        return
    assert got["versions"] == x["versions"], why
    assert got["groups"] == x["groups"], why
    assert got["pq"] == x["pq"], why
    # each PQ group probed and answered, per group
    assert got["pq_groups"] == {g: (x["pq"] != "none" and g in x["pq"]) for g in PQ}, why
    assert got["negotiated_version"] == max(v for v, ok in x["versions"].items() if ok), why
    assert got["leaf"]["trust"] == x["trust"], why
    assert got["leaf"]["hostname_match"] is x["hostname_match"], why
    c = fleet.pki.certs[x["cert"]]
    assert got["chain"][0]["fingerprint"] == c.fingerprint, why
    if x["chain_len"] == 2:
        assert got["chain"][1]["subject"] == "CN=aclm scan test intermediate", why
    assert got["leaf"]["valid"] is (x["cert"] not in ("expired", "notyet")), why
    assert got["ocsp_stapled"] is x["ocsp"], why


def test_ground_truth(aclm, fleet):
    prime_inventory(aclm, fleet)
    before = {k: h.accepted for k, h in fleet.hostile.items()}
    t0 = time.time()
    res = scan(aclm, fleet)
    elapsed = time.time() - t0
    # A hostile server that never completes a handshake costs one connection
    # (and at most one timeout); one that speaks TLS but fails it is probed
    # further, each probe bounded.
    for kind in ("silent", "garbage", "reset", "drip"):
        assert fleet.hostile[kind].accepted - before[kind] == 1, kind
    by_port = fleet.by_port()
    got = {ep["port"]: ep for ep in res["endpoints"]}
    assert sorted(got) == sorted(by_port)
    for port, e in by_port.items():
        check_endpoint(e, got[port], fleet)
    reachable = sum(1 for e in fleet.endpoints if e.expect["reachable"])
    assert res["summary"]["endpoints"] == len(fleet.endpoints)
    assert res["summary"]["reachable"] == reachable
    # Hostile servers cost one timeout, not one per probe.
    assert elapsed < 25, elapsed

    # --- findings, as stored: per endpoint, plus the inventory-wide ones
    rows = aclm.json("findings", "--json")
    per_ep = {}
    glob = []
    for r in rows:
        assert r["resolved_at"] is None
        if r["port"] is None:
            glob.append(r)
        else:
            per_ep.setdefault(r["port"], []).append(r["type"])
    for port, e in by_port.items():
        assert sorted(per_ep.get(port, [])) == sorted(e.expect["findings"]), e.name
    c = fleet.pki.certs
    assert sorted((r["type"], r["subject"]) for r in glob) == sorted([
        ("key-reuse", c["shared_a"].spki),
        ("wildcard-overuse", c["wild"].fingerprint),
    ])
    assert res["summary"]["findings"] == len(rows)
    # filters
    only = aclm.json("findings", "--json", "--type", "expired")
    assert [r["port"] for r in only] == [e.port for e in fleet.endpoints if e.name == "s-expired"]
    high = aclm.json("findings", "--json", "--severity", "high")
    assert {r["severity"] for r in high} <= {"high", "critical"}
    assert len(high) == sum(1 for r in rows if r["severity"] in ("high", "critical"))
    assert {r["type"] for r in high} == {"expired", "not-yet-valid", "self-signed", "untrusted",
                                         "hostname-mismatch", "weak-key", "sha1-signature"}

    # --- the inventory: endpoints, observations (source scan), certificates
    n_results = aclm.sql("SELECT COUNT(*) FROM scan_results")[0][0]
    assert int(n_results) == len(fleet.endpoints)
    served = {c[e.expect["cert"]].fingerprint for e in fleet.endpoints if e.expect["cert"]}
    listed = {r["fingerprint"] for r in aclm.list()}
    assert served <= listed
    obs = aclm.sql("SELECT COUNT(*) FROM observations WHERE source = 'scan' "
                   "AND endpoint_id IS NOT NULL")[0][0]
    assert int(obs) == sum(e.expect["chain_len"] for e in fleet.endpoints)
    pq_rows = dict(aclm.sql("SELECT e.port, r.pq_groups FROM scan_results r "
                            "JOIN endpoints e ON e.id = r.endpoint_id WHERE r.reachable = 1"))
    for port, e in by_port.items():
        if e.expect["reachable"]:
            want = ",".join(e.expect["pq"]) if e.expect["pq"] != "none" else "none"
            assert pq_rows[str(port)] == want, e.name


def test_summary_table_and_ndjson(aclm, fleet):
    prime_inventory(aclm, fleet)
    ports = {e.name: e.port for e in fleet.endpoints}
    targets = ["127.0.0.1:%d" % ports[n] for n in ("ng-x25519mlkem", "s-expired", "refused")]
    rc, out, err = aclm("scan", "--no-progress", *FAST, *targets, check_rc=0)
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["ENDPOINT", "STATUS", "VERSIONS"]
    row = next(l for l in lines if l.startswith("127.0.0.1:%d " % ports["ng-x25519mlkem"]))
    assert row.split()[1] == "ok" and row.split()[-1] == "X25519MLKEM768"
    row = next(l for l in lines if l.startswith("127.0.0.1:%d " % ports["s-expired"]))
    assert row.split()[-1] == "none"
    assert "3 endpoints, 2 reachable, 1 did not answer" in out
    rc, out, err = aclm("scan", "--ndjson", *FAST, *targets, check_rc=0)
    objs = [json.loads(l) for l in out.splitlines()]
    assert [o["kind"] for o in objs].count("endpoint") == 3
    assert objs[-1]["kind"] == "summary" and objs[-1]["endpoints"] == 3


def test_rescan_certificate_changed(aclm, fleet, tmp_path):
    c = fleet.pki.certs
    p = fleet.pki
    aclm.import_json(p.root_pem, p.inter_pem)
    e, proc = fleet.s_server("s-swap", c["expired"], [], None, register=False)
    target = "127.0.0.1:%d" % e.port
    first = aclm.json("scan", "--json", "--no-groups", "--no-versions", *FAST, target)
    assert set(first["endpoints"][0]["findings"]) == {"expired", "unmanaged"}
    proc.terminate()
    proc.wait(timeout=5)
    fleet.s_server("s-swap2", c["other"], [], None, port=e.port, register=False)
    second = aclm.json("scan", "--json", "--no-groups", "--no-versions", *FAST, target)
    assert set(second["endpoints"][0]["findings"]) == {"unmanaged", "certificate-changed"}
    open_ = {r["type"]: r for r in aclm.json("findings", "--json")}
    assert set(open_) == {"unmanaged", "certificate-changed"}
    assert open_["unmanaged"]["fingerprint"] == c["other"].fingerprint
    every = aclm.json("findings", "--json", "--all")
    resolved = {(r["type"], r["fingerprint"]) for r in every if r["resolved_at"] is not None}
    assert resolved == {("expired", c["expired"].fingerprint),
                        ("unmanaged", c["expired"].fingerprint)}
    # --known rescans what the inventory knows: the same endpoint
    third = aclm.json("scan", "--json", "--known", "--no-groups", "--no-versions", *FAST)
    assert [(x["ip"], x["port"]) for x in third["endpoints"]] == [("127.0.0.1", e.port)]
    assert set(third["endpoints"][0]["findings"]) == {"unmanaged"}


def test_bad_targets_scan_nothing(aclm):
    rc, out, err = aclm("scan", "127.0.0.1", "10.0.0.0/33", check_rc=2)
    assert "target 2 '10.0.0.0/33': IPv4 prefix length out of range 0-32" in err
    assert "nothing was scanned" in err
    rc, out, err = aclm("scan", "localhost", "a..b:443", check_rc=2)
    assert "target 2 'a..b:443'" in err
    rc, out, err = aclm("scan", "10.0.0.0/15", check_rc=2)
    assert "131072 addresses" in err and "--yes" in err
    rc, out, err = aclm("scan", "127.0.0.1", "--ports", "443,70000", check_rc=2)
    assert "--ports item 2 '70000'" in err
    assert aclm.json("findings", "--json") == []
    assert aclm.sql("SELECT COUNT(*) FROM scans")[0][0] == "0"


def test_unresolvable_name_is_a_finding(aclm):
    res = aclm.json("scan", "--json", *FAST, "no-such-host.invalid:443")
    ep = res["endpoints"][0]
    assert ep["reachable"] is False and ep["reason"] == "unresolved"
    assert ep["findings"] == ["unresolved"]
    assert [r["type"] for r in aclm.json("findings", "--json")] == ["unresolved"]


def test_excludes_and_names(aclm, fleet, tmp_path):
    port = next(e.port for e in fleet.endpoints if e.name == "ng-x25519mlkem")
    cfg = tmp_path / "aclm.yaml"
    cfg.write_text("scan:\n  exclude: [127.0.0.2]\n")
    res = aclm.json("--config", cfg, "scan", "--json", *FAST, "127.0.0.1-3:%d" % port,
                    "--exclude", "127.0.0.3")
    assert [x["ip"] for x in res["endpoints"]] == ["127.0.0.1"]
    # a name is probed with SNI on each of its addresses
    res = aclm.json("scan", "--json", *FAST, "localhost:%d" % port)
    v4 = [x for x in res["endpoints"] if x["ip"] == "127.0.0.1"]
    assert v4 and v4[0]["sni"] == "localhost" and v4[0]["leaf"]["hostname_match"] is True
    # the address alone is now also probed with the name the inventory knows
    res = aclm.json("scan", "--json", *FAST, "127.0.0.1:%d" % port)
    assert sorted(x["sni"] for x in res["endpoints"]) == ["", "localhost"]


def test_progress_line_on_a_terminal(aclm_sqlite, fleet):
    port = next(e.port for e in fleet.endpoints if e.name == "ng-plain")
    master, slave = pty.openpty()
    p = subprocess.Popen([BIN, "--db", aclm_sqlite.db, "scan", *FAST, "127.0.0.1:%d" % port,
                          "127.0.0.1:%d" % next(e.port for e in fleet.endpoints
                                                 if e.name == "silent")],
                         stdout=subprocess.PIPE, stderr=slave, env=aclm_sqlite.env,
                         cwd=aclm_sqlite.tmp)
    os.close(slave)
    out, _ = p.communicate(timeout=30)
    err = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        err += chunk
    os.close(master)
    assert p.returncode == 0
    assert b"scan: " in err and b"endpoints" in err and b"/s" in err and b"findings" in err
    assert b"scan 1: 2 endpoints, 1 reachable" in out


def test_rate_and_per_host_limits(aclm_sqlite, fleet):
    port = next(e.port for e in fleet.endpoints if e.name == "ng-plain")
    target = "127.0.0.1:%d" % port
    t0 = time.time()
    free = aclm_sqlite.json("scan", "--json", *FAST, target)
    t_free = time.time() - t0
    t0 = time.time()
    slow = aclm_sqlite.json("scan", "--json", *FAST, "--rate", "10", "--per-host", "1", target)
    t_slow = time.time() - t0
    # 1 basic + 3 versions + 6 classic + 6 PQ probes = 16 connections at 10/s
    assert t_slow >= 1.4, (t_slow, t_free)
    keep = ("versions", "groups", "pq_groups", "pq", "reachable")
    assert {k: slow["endpoints"][0][k] for k in keep} == {k: free["endpoints"][0][k] for k in keep}


def test_ipv6(aclm, fleet):
    prime_inventory(aclm, fleet)
    c = fleet.pki.certs
    port = free_port("::1")
    e, proc = fleet.s_server("s-v6", c["v6"], [], None, port=port, register=False, host="::1")
    for target in ("[::1]:%d" % port, "::1/128"):
        extra = [] if target.startswith("[") else ["--ports", str(port)]
        res = aclm.json("scan", "--json", "--no-groups", *FAST, target, *extra)
        ep = res["endpoints"][0]
        assert (ep["ip"], ep["port"], ep["reachable"]) == ("::1", port, True), ep
        assert ep["leaf"]["hostname_match"] is True and ep["leaf"]["trust"] == "trusted", ep
        assert ep["versions"] == {"TLSv1.0": False, "TLSv1.1": False, "TLSv1.2": True,
                                  "TLSv1.3": True}
        assert ep["chain"][0]["fingerprint"] == c["v6"].fingerprint
    rows = aclm.json("findings", "--json")
    assert [r["endpoint"] for r in rows if r["type"] == "unmanaged"] == ["[::1]:%d" % port]
