"""aclm user / token / audit: accounts, API tokens and the tamper-evident log,
on SQLite and PostgreSQL."""

import json
import re

import pytest

GOOD_PW = "correct horse battery"


def add_user(aclm, name, role="viewer", pw=GOOD_PW):
    aclm("user", "add", name, "--role", role, env={"ACLM_PASSWORD": pw}, check_rc=0)


def test_user_add_prints_random_password_once(aclm):
    rc, out, err = aclm("user", "add", "alice", "--role", "admin", check_rc=0)
    m = re.search(r"password for alice \(shown once\): (\S+)", out)
    assert m and len(m.group(1)) >= 20
    # only a hash is stored, never the password
    rows = aclm.sql("SELECT password_hash FROM users WHERE name = 'alice'")
    assert rows[0][0].startswith("$argon2id$")
    assert m.group(1) not in rows[0][0]
    users = aclm.json("user", "list", "--json")
    assert [(u["name"], u["role"], u["locked"]) for u in users] == [("alice", "admin", False)]


@pytest.mark.parametrize("args, env, msg", [
    (["user", "add", "bob"], {"ACLM_PASSWORD": "short"}, "password too short"),
    (["user", "add", "bad name"], {"ACLM_PASSWORD": GOOD_PW}, "invalid user name"),
    (["user", "add", "bob", "--role", "root"], {"ACLM_PASSWORD": GOOD_PW}, "unknown role"),
    (["user", "frobnicate"], {}, "unknown subcommand"),
    (["user", "del"], {}, "missing user name"),
])
def test_user_bad_input(aclm, args, env, msg):
    rc, out, err = aclm(*args, env=env)
    assert rc in (1, 2)
    assert msg in err
    assert aclm.json("user", "list", "--json") == []


def test_user_duplicate_and_last_admin(aclm):
    add_user(aclm, "alice", "admin")
    rc, _, err = aclm("user", "add", "alice", env={"ACLM_PASSWORD": GOOD_PW})
    assert rc == 1 and "exists already" in err
    rc, _, err = aclm("user", "del", "alice")
    assert rc == 1 and "last admin" in err
    rc, _, err = aclm("user", "role", "alice", "viewer")
    assert rc == 1 and "last admin" in err
    add_user(aclm, "root2", "admin")
    aclm("user", "role", "alice", "operator", check_rc=0)
    aclm("user", "del", "alice", check_rc=0)
    assert [u["name"] for u in aclm.json("user", "list", "--json")] == ["root2"]
    rc, _, err = aclm("user", "del", "nobody")
    assert rc == 1 and "no user 'nobody'" in err


def test_password_file(aclm, tmp_path):
    pwf = tmp_path / "pw"
    pwf.write_text(GOOD_PW + "\nignored second line\n")
    aclm("user", "add", "carol", "--password-file", str(pwf), check_rc=0)
    rc, _, err = aclm("user", "passwd", "carol", "--password-file", str(tmp_path / "missing"))
    assert rc == 1 and "missing" in err


def test_tokens(aclm):
    add_user(aclm, "admin", "admin")
    add_user(aclm, "bob", "operator")
    rc, _, err = aclm("token", "create", "--user", "bob", "--name", "ci", "--role", "admin")
    assert rc == 1 and "cannot have the role admin" in err
    t = aclm.json("token", "create", "--user", "bob", "--name", "ci", "--json")
    assert re.fullmatch(r"aclm_[a-z2-7]{12}_[A-Za-z0-9_-]{43}", t["token"])
    stored = aclm.sql("SELECT lookup, secret_hash, role FROM api_tokens")
    assert stored[0][0] == t["lookup"] and stored[0][2] == "operator"
    assert t["token"].split("_", 2)[2] not in stored[0][1]
    listed = aclm.json("token", "list", "--json")
    assert [(x["user"], x["name"], x["state"]) for x in listed] == [("bob", "ci", "valid")]
    aclm("token", "revoke", t["lookup"], check_rc=0)
    aclm("token", "revoke", str(t["id"]), check_rc=0)  # twice is fine
    assert aclm.json("token", "list", "--json")[0]["state"] == "revoked"
    rc, _, err = aclm("token", "revoke", "nosuchtoken")
    assert rc == 1 and "no token" in err
    rc, _, err = aclm("token", "create", "--user", "bob", "--name", "x", "--expires", "soon")
    assert rc == 2 and "--expires" in err
    # deleting the user takes the tokens along
    aclm("user", "del", "bob", check_rc=0)
    assert aclm.json("token", "list", "--json") == []


def audit_events(aclm):
    _, out, _ = aclm("audit", "export", check_rc=0)
    return [json.loads(line) for line in out.splitlines()]


def make_log(aclm, n_users=6):
    add_user(aclm, "admin", "admin")
    for i in range(n_users - 1):
        add_user(aclm, "user%d" % i)
    v = aclm.json("audit", "verify", "--json")
    assert v["intact"] and v["events"] == n_users and v["problems"] == []
    return v


def test_audit_export_records_who(aclm):
    make_log(aclm, 3)
    ev = audit_events(aclm)
    assert [e["type"] for e in ev] == ["user.added"] * 3
    assert all(e["detail"]["actor"].startswith("cli:") for e in ev)
    assert [e["id"] for e in ev] == [1, 2, 3]
    assert ev[1]["prev_hash"] == ev[0]["hash"]
    assert audit_events(aclm) == ev
    _, out, _ = aclm("audit", "export", "--since", "1d", check_rc=0)
    assert len(out.splitlines()) == 3
    _, out, _ = aclm("audit", "export", "--since", "2999-01-01T00:00:00Z", check_rc=0)
    assert out == ""
    rc, _, err = aclm("audit", "export", "--since", "yesterday-ish")
    assert rc == 2 and "--since" in err


def problems(aclm):
    rc, out, err = aclm("audit", "verify", "--json")
    assert rc == 1, "tampering not detected"
    v = json.loads(out)
    assert v["intact"] is False
    return [(p["problem"], p["id"], p.get("was", p.get("last"))) for p in v["problems"]]


def test_audit_detects_edit(aclm):
    make_log(aclm)
    aclm.sql("UPDATE events SET subject = 'mallory' WHERE id = 3")
    assert problems(aclm) == [("edited", 3, None)]
    rc, _, err = aclm("audit", "verify")
    assert rc == 1 and "event 3 does not match its hash (edited)" in err


def test_audit_detects_delete(aclm):
    make_log(aclm)
    aclm.sql("DELETE FROM events WHERE id IN (3, 4)")
    assert problems(aclm) == [("deleted", 3, 4)]
    rc, _, err = aclm("audit", "verify")
    assert "events 3..4 are missing (deleted)" in err


def test_audit_detects_reorder(aclm):
    make_log(aclm)
    # swap the records of events 2 and 4, keeping the ids in place
    cols = "at, type, subject, detail, prev_hash, hash"
    r2 = aclm.sql("SELECT %s FROM events WHERE id = 2" % cols)[0]
    r4 = aclm.sql("SELECT %s FROM events WHERE id = 4" % cols)[0]

    def put(i, r):
        aclm.sql("UPDATE events SET at = %s, type = '%s', subject = '%s', detail = '%s', "
                 "prev_hash = '%s', hash = '%s' WHERE id = %d" % (r[0], r[1], r[2], r[3], r[4],
                                                                 r[5], i))
    put(2, r4)
    put(4, r2)
    assert problems(aclm) == [("reordered", 2, 4), ("reordered", 4, 2)]


def test_audit_detects_rewritten_chain_and_truncation(aclm):
    v = make_log(aclm)
    head = "%d:%s" % (v["head"]["id"], v["head"]["hash"])
    aclm("audit", "verify", "--expect-head", head, check_rc=0)
    # cut the last event: the chain alone is intact, the remembered head is not
    aclm.sql("DELETE FROM events WHERE id = %d" % v["head"]["id"])
    aclm("audit", "verify", check_rc=0)
    rc, _, err = aclm("audit", "verify", "--expect-head", head)
    assert rc == 1 and "no longer holds event" in err
    rc, _, err = aclm("audit", "verify", "--expect-head", "garbage")
    assert rc == 2 and "--expect-head" in err


def test_audit_verify_empty_log(aclm):
    v = aclm.json("audit", "verify", "--json")
    assert v == {"events": 0, "intact": True, "head": None, "problems": []}
