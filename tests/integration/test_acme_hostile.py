"""Hostile Pebble: half of all good nonces rejected (badNonce), the VA
sleeping before each validation, authorizations reused at random.  Twenty
certificates issued at once by one `aclm issue --each`, every one must
succeed; then a second round over some of the same names (valid
authorizations reused by the CA)."""

import json

import pytest

from acme_pebble import Pebble, pebble_ca, write_config


@pytest.fixture(scope="module")
def peb(tmp_path_factory):
    p = Pebble(tmp_path_factory.mktemp("pebble"), env={
        "PEBBLE_VA_NOSLEEP": "0", "PEBBLE_VA_SLEEPTIME": "2",
        "PEBBLE_WFE_NONCEREJECT": "50", "PEBBLE_AUTHZREUSE": "50"}).start()
    yield p
    p.stop()


def test_twenty_certificates_all_succeed(aclm_sqlite, peb):
    write_config(aclm_sqlite, [pebble_ca(peb)])
    names = ["h%02d.example.test" % i for i in range(20)]
    rc, stdout, err = aclm_sqlite.run("-v", "issue", "--json", "--each", "--concurrency", "10",
                                      *names, "--standalone", "127.0.0.1:%d" % peb.http_port,
                                      timeout=120, check_rc=0)
    out = json.loads(stdout)
    # the hostile settings did bite: rejected nonces were retried
    assert err.count("bad nonce, retrying") >= 10, err[-2000:]
    errors = [o for o in out if "error" in o]
    assert errors == []
    assert sorted(o["name"] for o in out) == names
    assert len({o["fingerprint"] for o in out}) == 20
    assert aclm_sqlite.sql("SELECT COUNT(*) FROM acme_accounts") == [["1"]]
    assert aclm_sqlite.sql("SELECT COUNT(*) FROM acme_orders WHERE state = 'done'") == [["20"]]
    assert aclm_sqlite.sql("SELECT COUNT(*) FROM managed_certificates WHERE status = 'valid'") \
        == [["20"]]
    # again for five of them: the CA may hand back valid authorizations
    out = aclm_sqlite.json("issue", "--json", "--each", "--concurrency", "5", *names[:5],
                           "--standalone", "127.0.0.1:%d" % peb.http_port, timeout=120)
    assert [o for o in out if "error" in o] == []
    assert aclm_sqlite.sql("SELECT COUNT(*) FROM acme_orders WHERE state = 'done'") == [["25"]]
    # the CA lists the same 25 orders for our one account (3 per page: pagination)
    remote = aclm_sqlite.json("accounts", "orders", "pebble")
    local = [r[0] for r in aclm_sqlite.sql("SELECT url FROM acme_orders")]
    assert sorted(remote) == sorted(local) and len(set(remote)) == 25
