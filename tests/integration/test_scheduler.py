"""The server's scheduler renews a managed certificate from Pebble when it
nears expiry, not before, and its jobs survive a restart."""

import json
import time

import pytest

from acme_pebble import Pebble, pebble_ca, write_config
from test_server import ADMIN_PW, Server

LIFETIME = 40  # seconds: renewal at half the lifetime (short-lived rule), with jitter


@pytest.fixture(scope="module")
def short_pebble(tmp_path_factory):
    p = Pebble(tmp_path_factory.mktemp("pebble-short"),
               config={"certificateValidityPeriod": LIFETIME}).start()
    yield p
    p.stop()


def managed(aclm):
    return aclm.sql("SELECT id, current_cert_id, renew_at FROM managed_certificates")


def wait_for(pred, timeout, step=0.5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return None


def test_scheduler_renews_when_due_and_resumes_after_restart(aclm, short_pebble):
    extra = "scheduler:\n  interval: 1s\n"
    path = write_config(aclm, [pebble_ca(short_pebble)], extra)
    config = open(path).read()
    out = aclm.json("issue", "--json", "s.example.test", "--standalone",
                    "127.0.0.1:%d" % short_pebble.http_port)
    first_cert = out[0]["cert_id"]
    (mid, cur, renew_at), = managed(aclm)
    assert int(cur) == first_cert
    renew_at = int(renew_at)
    assert renew_at > time.time()  # not due yet

    # A server up before the renewal time plans the job and does not renew early.
    s = Server(aclm, config=config)
    try:
        job = wait_for(lambda: aclm.sql("SELECT state, run_at FROM jobs WHERE kind = 'renew'"), 10)
        assert job and job[0][0] == "pending" and int(job[0][1]) == renew_at
        if renew_at - time.time() > 3:
            time.sleep(1.5)
            assert int(managed(aclm)[0][1]) == first_cert, "renewed before it was due"
    finally:
        rc, _, err = s.stop()
    assert rc == 0, err
    # the job is still there after the restart
    assert aclm.sql("SELECT state FROM jobs WHERE kind = 'renew'")[0][0] == "pending"

    s = Server(aclm, config=config)
    try:
        new = wait_for(lambda: int(managed(aclm)[0][1]) != first_cert and managed(aclm), LIFETIME + 30)
        assert new, "not renewed by the scheduler"
        assert time.time() >= renew_at
        sess = s.login("admin", ADMIN_PW)
        st, jobs, _ = s.request("GET", "/api/v1/jobs?state=done", session=sess)
        assert st == 200 and any(j["kind"] == "renew" and j["subject"] == str(mid)
                                 for j in jobs["items"])
        ev = aclm.sql("SELECT type, detail FROM events WHERE type = 'job.done'")
        assert ev and json.loads(ev[0][1])["actor"] == "system"
        # the renewed certificate is stored and the next renewal is planned
        new_renew_at = int(managed(aclm)[0][2])
        assert new_renew_at > renew_at
        assert wait_for(lambda: aclm.sql(
            "SELECT 1 FROM jobs WHERE kind = 'renew' AND state = 'pending' AND run_at = %d"
            % new_renew_at), 10)
    finally:
        rc, _, err = s.stop()
    assert rc == 0, err
    assert "runtime error" not in err and "AddressSanitizer" not in err


def test_two_servers_share_postgres_one_leader(aclm, short_pebble):
    """Two servers on one PostgreSQL database: both are nodes, one plans,
    a due renewal is done once (one new order, not two)."""
    if aclm.backend != "postgres":
        pytest.skip("several servers share state through PostgreSQL only")
    path = write_config(aclm, [pebble_ca(short_pebble)], "scheduler:\n  interval: 1s\n")
    config = open(path).read()
    aclm.json("issue", "--json", "two.example.test", "--standalone",
              "127.0.0.1:%d" % short_pebble.http_port)
    (mid, first, renew_at), = managed(aclm)
    a = Server(aclm, config=config)
    b = Server(aclm, config=config)
    try:
        sess = a.login("admin", ADMIN_PW)
        nodes = wait_for(lambda: len(a.request("GET", "/api/v1/nodes", session=sess)[1]["items"]) == 2
                         and a.request("GET", "/api/v1/nodes", session=sess)[1]["items"], 15)
        assert nodes and {n["address"] for n in nodes} == {
            "https://127.0.0.1:%d/" % a.port, "https://127.0.0.1:%d/" % b.port}
        # one open renew job for the certificate, whichever server planned it
        assert len(aclm.sql("SELECT id FROM jobs WHERE kind = 'renew' AND state = 'pending'")) == 1
        renewed = wait_for(lambda: int(managed(aclm)[0][1]) != int(first), LIFETIME + 30)
        assert renewed, "not renewed"
        time.sleep(2)
        orders = aclm.sql("SELECT state FROM acme_orders WHERE managed_id = %s" % mid)
        assert [o[0] for o in orders] == ["done", "done"], orders  # issue + one renewal
    finally:
        for s in (a, b):
            rc, _, err = s.stop()
            assert rc == 0, err
