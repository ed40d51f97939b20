"""The ACME client's life-cycle against Pebble: crash and resume at every
step, failover between CAs, External Account Binding required by the CA,
and renewal of short-lived certificates (Pebble's certificateValidityPeriod)
at the right time and not before."""

import json
import os
import subprocess
import time

import pytest

from acme_pebble import Pebble, free_port, pebble_ca, write_config

EAB_KID = "kid-aclm"
EAB_HMAC = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"
LIFETIME = 3600


@pytest.fixture(scope="module")
def peb(tmp_path_factory):
    p = Pebble(tmp_path_factory.mktemp("pebble"), config={
        "externalAccountBindingRequired": True,
        "externalAccountMACKeys": {EAB_KID: EAB_HMAC},
        "certificateValidityPeriod": LIFETIME}).start()
    yield p
    p.stop()


def eab_ca(peb, name="pebble"):
    return pebble_ca(peb, name, eab_kid=EAB_KID, eab_hmac=EAB_HMAC)


@pytest.fixture
def acme(aclm_sqlite, peb):
    write_config(aclm_sqlite, [eab_ca(peb)])
    return aclm_sqlite


@pytest.fixture
def acme_any(aclm, peb):
    """On SQLite and on PostgreSQL."""
    write_config(aclm, [eab_ca(peb)])
    return aclm


def sa(peb):
    return ["--standalone", "127.0.0.1:%d" % peb.http_port]


def test_eab_required(aclm_sqlite, peb):
    write_config(aclm_sqlite, [pebble_ca(peb)])
    rc, out, err = aclm_sqlite.run("issue", "e.example.test", *sa(peb), check_rc=1)
    assert "requires External Account Binding" in err
    write_config(aclm_sqlite, [pebble_ca(peb, eab_kid=EAB_KID,
                                          eab_hmac="AAAA" + EAB_HMAC[4:])])
    rc, out, err = aclm_sqlite.run("issue", "e.example.test", *sa(peb), check_rc=1)
    assert "CA pebble: newAccount" in err
    write_config(aclm_sqlite, [eab_ca(peb)])
    aclm_sqlite.run("issue", "e.example.test", *sa(peb), check_rc=0)
    assert aclm_sqlite.sql("SELECT COUNT(*) FROM acme_accounts") == [["1"]]


@pytest.mark.parametrize("step", ["new", "ordered", "ready", "finalized", "valid"])
def test_crash_and_resume(acme_any, peb, step):
    acme = acme_any
    name = "crash-%s.example.test" % step
    rc, out, err = acme.run("issue", name, *sa(peb), env={"ACLM_TEST_ACME_KILL_AT": step})
    assert rc == -9, (rc, err)
    orders = acme.sql("SELECT id, state, url, key_spki FROM acme_orders")
    assert len(orders) == 1 and orders[0][1] == step
    url_before, spki_before = orders[0][2], orders[0][3]
    assert acme.list() == []  # nothing issued yet
    out = acme.json("issue", "--json", name, *sa(peb))
    assert out[0]["resumed"] is True
    orders = acme.sql("SELECT id, state, url, key_spki, cert_id FROM acme_orders")
    # the same order (same URL at the CA), the same key, no second order
    assert len(orders) == 1 and orders[0][1] == "done"
    if step != "new":
        assert orders[0][2] == url_before
    assert orders[0][3] == spki_before
    rows = acme.list("--leaf")
    assert len(rows) == 1 and rows[0]["spki_sha256"] == spki_before and rows[0]["has_private_key"]
    # and as the CA sees it: our account has exactly this one order
    assert acme.json("accounts", "orders", "pebble") == [orders[0][2]]


def test_crash_after_store(acme, peb):
    rc, out, err = acme.run("issue", "stored.example.test", *sa(peb),
                            env={"ACLM_TEST_ACME_KILL_AT": "done"})
    assert rc == -9
    assert acme.sql("SELECT state FROM acme_orders") == [["done"]]
    rows = acme.list("--leaf")
    assert len(rows) == 1 and rows[0]["has_private_key"]
    m = acme.sql("SELECT current_cert_id, status FROM managed_certificates")
    assert m == [[str(rows[0]["id"]), "valid"]]


def test_failover_closed_port_then_stopped_ca(aclm_sqlite, peb, tmp_path):
    closed = {"name": "closed", "directory": "https://127.0.0.1:%d/dir" % free_port(),
              "trust": peb.trust}
    # a second Pebble validating against the same responder port
    peb2 = Pebble(tmp_path / "p2", config={"httpPort": peb.http_port,
                                           "externalAccountBindingRequired": False}).start()
    try:
        write_config(aclm_sqlite, [closed, pebble_ca(peb2, "second"), eab_ca(peb)])
        # killed mid-order at "second" (closed is skipped first)
        rc, out, err = aclm_sqlite.run("issue", "fo.example.test", *sa(peb),
                                       env={"ACLM_TEST_ACME_KILL_AT": "ordered"})
        assert rc == -9, err
        assert aclm_sqlite.sql("SELECT ca, state FROM acme_orders") == [["second", "ordered"]]
    finally:
        peb2.stop()
    out = aclm_sqlite.json("issue", "--json", "fo.example.test", *sa(peb))
    assert out[0]["ca"] == "pebble"
    orders = aclm_sqlite.sql("SELECT ca, state FROM acme_orders ORDER BY id")
    assert orders == [["second", "failed"], ["pebble", "done"]]
    ev = [json.loads(r[0]) for r in
          aclm_sqlite.sql("SELECT detail FROM events WHERE type = 'acme.failover' ORDER BY id")]
    by_ca = {}
    for e in ev:
        by_ca.setdefault(e["ca"], []).append(e["reason"])
    assert any("CA closed" in r for r in by_ca["closed"])
    assert any("CA second" in r for r in by_ca["second"])
    # never two orders in flight for one certificate
    assert aclm_sqlite.sql("SELECT COUNT(*) FROM acme_orders WHERE state NOT IN ('done', 'failed')") \
        == [["0"]]


def test_renew_short_lived_at_the_right_time(acme, peb):
    out = acme.json("issue", "--json", "short.example.test", *sa(peb))
    first = out[0]["cert_id"]
    row = acme.json("show", "--json", first)
    nb, na = row["not_before"], row["not_after"]
    m = acme.sql("SELECT id, renew_at FROM managed_certificates")
    mid, renew_at = int(m[0][0]), int(m[0][1])
    # ISO times from show; lifetime as configured
    import datetime
    life = (datetime.datetime.fromisoformat(na.replace("Z", "+00:00")) -
            datetime.datetime.fromisoformat(nb.replace("Z", "+00:00"))).total_seconds()
    assert abs(life - LIFETIME) <= 2
    # <= 10 days: renews at half the lifetime, minus at most 1/20 jitter
    start = int(datetime.datetime.fromisoformat(nb.replace("Z", "+00:00")).timestamp())
    assert start + LIFETIME / 2 - LIFETIME / 20 <= renew_at <= start + LIFETIME / 2
    now = int(time.time())
    res = acme.json("renew", "--all", "--json")
    assert len(res) == 1 and res[0]["result"].startswith("not due")
    res = acme.json("renew", "--all", "--json", env={"ACLM_NOW": str(renew_at - 5)})
    assert res[0]["result"].startswith("not due")
    res = acme.json("renew", "--all", "--dry-run", "--json", env={"ACLM_NOW": str(renew_at + 1)})
    assert res[0]["result"] == "due"
    assert acme.sql("SELECT current_cert_id FROM managed_certificates") == [[str(first)]]
    res = acme.json("renew", "--all", "--json", env={"ACLM_NOW": str(renew_at + 1)})
    assert res[0]["result"] == "renewed"
    cur = acme.sql("SELECT current_cert_id FROM managed_certificates")[0][0]
    assert cur != str(first)
    assert len(acme.sql("SELECT id FROM acme_orders WHERE state = 'done'")) == 2
    # the new certificate is not due again right away
    res = acme.json("renew", str(mid), "--json", env={"ACLM_NOW": str(now + 60)})
    assert res[0]["result"].startswith("not due")
    # --force renews anyway
    res = acme.json("renew", str(mid), "--force", "--json")
    assert res[0]["result"] == "renewed"


def test_renew_bad_ids(acme, peb):
    rc, out, err = acme.run("renew", check_rc=2)
    assert "--all" in err
    rc, out, err = acme.run("renew", "999", check_rc=1)
    assert "no managed certificate 999" in err
    rc, out, err = acme.run("renew", "x1", check_rc=2)
    assert "'x1'" in err


def test_dual_pair_renews_together_and_reuse_key(acme, peb):
    out = acme.json("issue", "--json", "pair.example.test", "--dual", "ec256,rsa2048",
                    "--reuse-key", *sa(peb))
    a, b = out
    spki = {r["id"]: r["spki_sha256"] for r in acme.list("--leaf")}
    # one of the pair is renewed: the other comes along
    res = acme.json("renew", str(a["managed_id"]), "--force", "--json")
    assert {r["managed_id"] for r in res if r["result"] == "renewed"} == \
        {a["managed_id"], b["managed_id"]}
    cur = dict(acme.sql("SELECT id, current_cert_id FROM managed_certificates"))
    assert cur[str(a["managed_id"])] != str(a["cert_id"])
    assert cur[str(b["managed_id"])] != str(b["cert_id"])
    # --reuse-key: the renewed certificates keep their keys
    now = {r["id"]: r["spki_sha256"] for r in acme.list("--leaf")}
    assert now[int(cur[str(a["managed_id"])])] == spki[a["cert_id"]]
    assert now[int(cur[str(b["managed_id"])])] == spki[b["cert_id"]]


def test_configured_rate_limit_fails_over(aclm_sqlite, peb):
    limited = dict(eab_ca(peb, "limited"), rate_limit="1/1h")
    write_config(aclm_sqlite, [limited])
    aclm_sqlite.run("issue", "rl1.example.test", *sa(peb), check_rc=0)
    rc, out, err = aclm_sqlite.run("issue", "rl2.example.test", *sa(peb), check_rc=1)
    assert "CA limited: the configured rate limit of 1 orders per 3600s is reached" in err
    assert aclm_sqlite.sql("SELECT COUNT(*) FROM acme_orders") == [["1"]]
    write_config(aclm_sqlite, [limited, eab_ca(peb, "other")])
    out = aclm_sqlite.json("issue", "--json", "rl2.example.test", *sa(peb))
    assert out[0]["ca"] == "other"
    reasons = [json.loads(r[0])["reason"] for r in
               aclm_sqlite.sql("SELECT detail FROM events WHERE type = 'acme.failover'")]
    assert any("rate limit" in r for r in reasons)
    write_config(aclm_sqlite, [dict(eab_ca(peb), rate_limit="lots")])
    rc, out, err = aclm_sqlite.run("issue", "rl3.example.test", *sa(peb), check_rc=1)
    assert "rate_limit 'lots' is not N/DURATION" in err
