"""aclm db: migrations, status, and the hash-chained event log."""

import re

import pytest

from helpers import cert_table, stderr_lines


def flatten(j, prefix=""):
    """{"a": {"b": 1}} -> {"a.b": 1, "b": 1}: status JSON looked up by leaf name."""
    out = {}
    for k, v in j.items():
        if isinstance(v, dict):
            out.update(flatten(v, prefix + k + "."))
        else:
            out[prefix + k] = v
            out.setdefault(k, v)
    return out


def code_schema_version(aclm):
    _, out, _ = aclm("--version", db=False, check_rc=0)
    m = re.search(r"schema (\d+)", out)
    assert m, "--version does not say the schema version: " + out
    return int(m.group(1))


def status(aclm):
    j = flatten(aclm.json("db", "status", "--json"))
    version = [v for k, v in sorted(j.items(), key=lambda kv: kv[0] != "schema_version")
               if "version" in k and isinstance(v, int)]
    assert version, "no schema version in db status --json: %r" % j
    j["_version"] = version[0]
    return j


def test_migrate_is_idempotent(aclm):
    want = code_schema_version(aclm)
    assert want >= 1
    for _ in range(3):
        rc, out, err = aclm("db", "migrate", check_rc=0)
        assert "error" not in err.lower()
        assert status(aclm)["_version"] == want


def test_migrate_fills_a_missing_lower_version(aclm):
    """A version missing below the newest recorded one (a database migrated
    by a branch that skipped it) is applied, and `db migrate` says so rather
    than "up to date"."""
    want = code_schema_version(aclm)
    aclm("db", "migrate", check_rc=0)
    aclm.sql("ALTER TABLE managed_certificates DROP COLUMN ari_check_at")
    aclm.sql("DELETE FROM schema_migrations WHERE version = 7")
    _, out, err = aclm("db", "migrate", check_rc=0)
    assert "applied 1 missing migration; schema version %d" % want in out, (out, err)
    assert aclm.sql("SELECT COUNT(*) FROM schema_migrations WHERE version = 7") == [["1"]]
    assert aclm.sql("SELECT COUNT(ari_check_at) FROM managed_certificates") == [["0"]]
    _, out, _ = aclm("db", "migrate", check_rc=0)
    assert "up to date (version %d)" % want in out, out


def test_status_json(aclm, pki):
    s = status(aclm)
    assert s["backend"] == aclm.backend
    # status may look without migrating: an empty database is version 0
    assert s["_version"] in (0, code_schema_version(aclm))
    assert s["certificates"] == 0
    aclm.import_json(pki.tree)
    s = status(aclm)
    assert s["_version"] == code_schema_version(aclm)
    assert s["certificates"] == len(pki.tree_certs())
    assert s["private_keys"] == len(set(pki.tree_key_names()))
    assert s["keys"] == len({pki.certs[n].key for n in pki.tree_certs()})
    assert s["observations"] == pki.tree_occurrences()
    assert s["events"] >= len(pki.tree_certs())


def test_status_text(aclm):
    rc, out, err = aclm("db", "status", check_rc=0)
    assert aclm.backend in out
    assert str(code_schema_version(aclm)) in out


def migrations_table(aclm):
    t = [t for t in aclm.tables() if "migration" in t or "schema" in t]
    assert len(t) == 1, "which is the migrations table? %s" % aclm.tables()
    return t[0]


def test_newer_schema_is_refused(aclm, pki):
    aclm.import_json(pki.cert_path("ec256"))
    newer = code_schema_version(aclm) + 1
    table = migrations_table(aclm)
    cols = aclm.columns(table)
    vcol = [c for c in cols if "version" in c]
    assert vcol, "no version column in %s: %s" % (table, cols)
    # copy the newest row with a higher version, whatever else the table holds
    others = [c for c in cols if c != vcol[0]]
    aclm.sql("INSERT INTO %s (%s) SELECT %d%s FROM %s ORDER BY %s DESC LIMIT 1" % (
        table, ", ".join([vcol[0]] + others), newer,
        "".join(", " + c for c in others), table, vcol[0]))
    for args in (["list"], ["db", "migrate"], ["import", pki.cert_path("ec384")]):
        rc, out, err = aclm(*args)
        assert rc == 1, (args, rc, err)
        assert str(newer) in err, err
        assert "newer" in err.lower() or "version" in err.lower(), err
    # nothing was written by the refused import
    assert aclm.sql("SELECT count(*) FROM %s" % cert_table(aclm)) == [["1"]]


def events(aclm):
    assert "events" in aclm.tables(), aclm.tables()
    return [int(r[0]) for r in aclm.sql("SELECT id FROM events ORDER BY id")]


def test_verify_intact(aclm, pki):
    aclm.import_json(pki.tree)
    rc, out, err = aclm("db", "verify", check_rc=0)
    assert stderr_lines(err) == []
    assert str(len(events(aclm))) in out, out


@pytest.mark.parametrize("column", ["subject", "type", "detail", "at"])
def test_verify_finds_altered_row(aclm, pki, column):
    aclm.import_json(pki.tree)
    ids = events(aclm)
    assert len(ids) >= 7
    victim = ids[len(ids) // 2]
    cols = aclm.columns("events")
    col = [c for c in cols if c == column or c.startswith(column)]
    assert col, "events has no %s column: %s" % (column, cols)
    if column == "at":
        aclm.sql("UPDATE events SET %s = %s + 1 WHERE id = %d" % (col[0], col[0], victim))
    else:
        aclm.sql("UPDATE events SET %s = 'x' WHERE id = %d" % (col[0], victim))
    rc, out, err = aclm("db", "verify")
    assert rc == 1, (rc, out, err)
    assert re.search(r"(?<!\d)%d(?!\d)" % victim, err), "row %d not named:\n%s" % (victim, err)


def test_verify_finds_deleted_row(aclm, pki):
    aclm.import_json(pki.tree)
    ids = events(aclm)
    victim = ids[len(ids) // 2]
    aclm.sql("DELETE FROM events WHERE id = %d" % victim)
    rc, out, err = aclm("db", "verify")
    assert rc == 1, (rc, out, err)
    nxt = ids[ids.index(victim) + 1]
    assert re.search(r"(?<!\d)(%d|%d)(?!\d)" % (victim, nxt), err), err


@pytest.mark.parametrize("args", [["db"], ["db", "frobnicate"], ["db", "status", "--frobnicate"]])
def test_db_usage_errors(aclm_sqlite, args):
    rc, out, err = aclm_sqlite(*args)
    assert rc == 2, (rc, err)


def test_sqlite_checks_as_comparisons_keep_rows(aclm_sqlite, pki):
    """Migration 9 rebuilds cert_names and observations on SQLite with their
    CHECKs as comparisons (an IN list of more than two values made every
    INSERT build a temporary table).  From a database in the old shape, with
    rows: same rows, same ids, same answers; the checks still refuse a bad
    value."""
    a = aclm_sqlite
    a.import_json(pki.tree)
    names_before = a.sql("SELECT cert_id, name, type, parent FROM cert_names ORDER BY 1, 2, 3")
    obs_before = a.sql("SELECT id, cert_id, endpoint_id, source, location, seen_at "
                       "FROM observations ORDER BY id")
    listing = a.list()
    # Back to the shape of versions 1-8.
    for sql in [
        "CREATE TABLE cn_old (cert_id BIGINT NOT NULL REFERENCES certificates (id), "
        "name TEXT NOT NULL, type TEXT NOT NULL CHECK (type IN ('DNS', 'IP', 'email', 'CN')), "
        "parent TEXT, PRIMARY KEY (cert_id, name, type))",
        "INSERT INTO cn_old SELECT cert_id, name, type, parent FROM cert_names",
        "DROP TABLE cert_names",
        "ALTER TABLE cn_old RENAME TO cert_names",
        "CREATE INDEX cert_names_name ON cert_names (name)",
        "CREATE INDEX cert_names_parent ON cert_names (parent)",
        "CREATE TABLE ob_old (id INTEGER PRIMARY KEY, cert_id BIGINT NOT NULL REFERENCES "
        "certificates (id), endpoint_id BIGINT REFERENCES endpoints (id), source TEXT NOT NULL "
        "CHECK (source IN ('import', 'scan', 'acme', 'ca')), location TEXT NOT NULL, "
        "seen_at BIGINT NOT NULL)",
        "INSERT INTO ob_old SELECT * FROM observations",
        "DROP TABLE observations",
        "ALTER TABLE ob_old RENAME TO observations",
        "CREATE INDEX observations_cert_id ON observations (cert_id, seen_at, id)",
        "DELETE FROM schema_migrations WHERE version = 9",
    ]:
        a.sql(sql)
    _, out, err = a("db", "migrate", check_rc=0)
    # Versions 10 and up stay recorded: 9 is a missing one, applied alone.
    assert "applied 1 missing migration" in out, (out, err)
    schema = a.sql("SELECT sql FROM sqlite_master WHERE name IN ('cert_names', 'observations')")
    assert len(schema) == 2 and all(" IN (" not in s[0] for s in schema), schema
    assert a.sql("SELECT cert_id, name, type, parent FROM cert_names ORDER BY 1, 2, 3") \
        == names_before
    assert a.sql("SELECT id, cert_id, endpoint_id, source, location, seen_at "
                 "FROM observations ORDER BY id") == obs_before
    assert a.list() == listing
    with pytest.raises(Exception):
        a.sql("INSERT INTO cert_names (cert_id, name, type) VALUES (1, 'x', 'bogus')")
    assert a.import_json(pki.tree)["new"] == 0
