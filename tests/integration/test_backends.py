"""SQLite and PostgreSQL behind one interface: the same input gives the same
answers."""

import json
import os
import subprocess
import threading
import time
import urllib.parse

import pytest

from conftest import Aclm
from helpers import LIST_CUT, check_list_columns, diff_rows, strip_seen

QUERIES = [
    ["list", "--json"],
    ["list", "--json", "--sort", "subject"],
    ["list", "--json", "--name", "*.example.test"],
    ["list", "--json", "--issuer", "INTERMEDIATE"],
    ["list", "--json", "--key-type", "ec", "--limit", "3", "--offset", "2"],
    ["list", "--json", "--expiring", "30d"],
]


@pytest.fixture
def both(tmp_path, pg_server, pki):
    """(sqlite, postgres), each with the same imports done."""
    os.makedirs(tmp_path / "s")
    os.makedirs(tmp_path / "p")
    lite = Aclm(tmp_path / "s", "sqlite:%s" % (tmp_path / "s" / "aclm.db"), "sqlite")
    name = pg_server.create_db()
    pg = Aclm(tmp_path / "p", pg_server.url(name), "postgres", pg_server, name)
    runs = [[pki.tree], ["--password-file", pki.p12_password_file, pki.p12_pw], [pki.tree]]
    for args in runs:
        summaries = [a.import_json(*args) for a in (lite, pg)]
        assert summaries[0] == summaries[1], args
    return lite, pg


def id_map(lite, pg):
    """postgres id -> sqlite id, through the fingerprints."""
    by_fp = {r["fingerprint"]: r["id"] for r in lite.list()}
    return {r["id"]: by_fp[r["fingerprint"]] for r in pg.list()}


def renumber(obj, ids):
    """Replace the row ids in list/show JSON with the other backend's ids."""
    if isinstance(obj, list):
        return [renumber(x, ids) for x in obj]
    if not isinstance(obj, dict):
        return obj
    out = {}
    for k, v in obj.items():
        if k in ("id", "issuer_id") and isinstance(v, int):
            v = ids.get(v, v)
        elif k == "same_key":
            v = [ids.get(x, x) for x in v]
        else:
            v = renumber(v, ids)
        out[k] = v
    return out


def test_same_answers(both):
    """Every field but the row ids (see test_same_row_ids) is the same."""
    lite, pg = both
    ids = id_map(lite, pg)
    for q in QUERIES:
        a = strip_seen(lite.json(*q))
        b = strip_seen(renumber(pg.json(*q), ids))
        assert a, q
        assert a == b, "sqlite vs postgres, %s:\n%s" % (" ".join(q), diff_rows(a, b))


def test_same_row_ids(both):
    """Row ids are what users type (`aclm show 12`): same input, same ids."""
    lite, pg = both
    a = [(r["id"], r["fingerprint"]) for r in lite.list("--sort", "id")]
    b = [(r["id"], r["fingerprint"]) for r in pg.list("--sort", "id")]
    assert a == b, "sqlite vs postgres ids:\n%s" % "\n".join(
        "%s  %s" % (x, y) for x, y in zip(a, b) if x != y)


def test_same_show(both):
    lite, pg = both
    ids = id_map(lite, pg)
    for r in lite.list():
        fp = r["fingerprint"]
        got = []
        for a in both:
            s = a.json("show", "--json", fp)
            for k in ("first_seen", "last_seen"):
                s.pop(k, None)
            for o in s.get("observations", []):
                o.pop("seen_at", None)
            got.append(s)
        got[1] = renumber(got[1], ids)
        assert got[0] == got[1], "show %s, sqlite vs postgres:\n%s" % (fp, diff_rows([got[0]], [got[1]]))


def test_postgresql_scheme_accepted(pg_server, tmp_path, pki):
    name = pg_server.create_db()
    a = Aclm(tmp_path, pg_server.url(name).replace("postgres://", "postgresql://", 1),
             "postgres", pg_server, name)
    a.import_json(pki.cert_path("ec256"))
    assert len(a.list()) == 1


def test_bundles_link_and_log_as_one_by_one(tmp_path, pg_server, pki):
    """PostgreSQL writes a bundle with multi-row statements, SQLite one
    certificate at a time: the rows, ids, issuer links, observations and the
    audit chain must come out the same, for the orders that make linking
    hard: leaves before their issuer in one bundle, a duplicate in a bundle,
    an issuer arriving after its children were stored, a leaf before its
    self-signed root."""
    files = {
        "f1.pem": ["rsa2048", "ec256", "rsa2048", "inter"],
        "f2.pem": ["wild", "ec384", "root"],
        "f3.pem": ["sm2leaf", "sm2root"],
        "f4.pem": ["ed25519"],
    }
    paths = []
    for name, certs in files.items():
        path = tmp_path / name
        path.write_text("".join(pki.certs[c].pem for c in certs))
        paths.append(str(path))
    os.makedirs(tmp_path / "s")
    os.makedirs(tmp_path / "p")
    lite = Aclm(tmp_path / "s", "sqlite:%s" % (tmp_path / "s" / "aclm.db"), "sqlite")
    name = pg_server.create_db()
    pg = Aclm(tmp_path / "p", pg_server.url(name), "postgres", pg_server, name)
    for _ in range(2):   # the second time: every certificate known
        summaries = [a.import_json(*paths) for a in (lite, pg)]
        assert summaries[0] == summaries[1]
    assert summaries[1]["new"] == 0 and summaries[1]["known"] == 10

    rows = [strip_seen(a.list("--sort", "id")) for a in (lite, pg)]
    assert rows[0] == rows[1], diff_rows(rows[0], rows[1])
    by_fp = {r["fingerprint"]: r for r in rows[1]}
    fp = {n: pki.certs[n].fingerprint for n in pki.certs}
    for leaf, issuer in (("rsa2048", "inter"), ("ec256", "inter"), ("inter", "root"),
                         ("wild", "inter"), ("ec384", "inter"), ("sm2leaf", "sm2root"),
                         ("ed25519", "inter")):
        assert by_fp[fp[leaf]]["issuer_id"] == by_fp[fp[issuer]]["id"], leaf
    for root in ("root", "sm2root"):
        assert by_fp[fp[root]]["issuer_id"] in (None, 0), root
    for r in rows[1]:
        shown = [a.json("show", "--json", r["fingerprint"]) for a in (lite, pg)]
        obs = [[(o["source"], o["location"]) for o in s["observations"]] for s in shown]
        assert obs[0] == obs[1]
    # rsa2048 is twice in f1, twice imported: four observations.
    shown = pg.json("show", "--json", fp["rsa2048"])
    assert [o["location"] for o in shown["observations"]].count(paths[0]) == 4
    assert shown["first_seen"] is not None and shown["last_seen"] is not None
    for a in (lite, pg):
        a.run("audit", "verify", check_rc=0)
    events = [[(e["type"], e["subject"]) for e in
               (json.loads(line) for line in a.run("audit", "export")[1].splitlines())]
              for a in (lite, pg)]
    assert events[0] == events[1]
    assert [t for t, _ in events[1]].count("cert.added") == 9


def _advisory_waiters(pg_server, name):
    rows = pg_server.psql(name, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                "AND NOT granted")
    return int(rows[0][0])


def test_two_imports_race_on_one_bundle(tmp_path, pg_server, pki):
    """Two imports of the same new bundle at once on PostgreSQL: both find
    every certificate absent, one stores them, the other's multi-row INSERT
    then fails on the fingerprints and is redone one by one, finding them
    known.  Nothing is lost or doubled, both succeed, the chain holds."""
    names = ["rsa2048", "ec256", "ec384", "wild", "inter", "root"]
    bundle = tmp_path / "bundle.pem"
    bundle.write_text("".join(pki.certs[c].pem for c in names))
    name = pg_server.create_db()
    a = Aclm(tmp_path, pg_server.url(name), "postgres", pg_server, name)
    a.run("db", "migrate", check_rc=0)
    # Hold the event log's lock: both imports stop at it, after their check
    # for stored certificates and before their INSERTs.
    holder = subprocess.Popen(["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(pg_server.port),
                               "-U", "postgres", "-d", name], stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env=a.env, text=True)
    try:
        holder.stdin.write("SELECT pg_advisory_lock(6372935010000002);\n")
        holder.stdin.flush()
        deadline = time.time() + 20
        while not pg_server.psql(name, "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' "
                                       "AND granted"):
            assert time.time() < deadline, "the lock holder never got the lock"
            time.sleep(0.05)
        results = [None, None]

        def run(i):
            results[i] = a.import_json(str(bundle))

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        while _advisory_waiters(pg_server, name) < 2:
            assert time.time() < deadline, "the imports never reached the event log's lock"
            time.sleep(0.05)
        holder.stdin.write("SELECT pg_advisory_unlock_all();\n\\q\n")
        holder.stdin.close()
        for t in threads:
            t.join(timeout=60)
    finally:
        holder.wait(timeout=30)
    assert all(r is not None for r in results)
    assert sorted(r["new"] for r in results) == [0, len(names)]
    assert all(r["new"] + r["known"] == len(names) for r in results)
    rows = a.list()
    assert sorted(r["fingerprint"] for r in rows) == sorted(pki.certs[n].fingerprint
                                                            for n in names)
    for r in rows:
        shown = a.json("show", "--json", r["fingerprint"])
        assert [o["location"] for o in shown["observations"]] == [str(bundle)] * 2
    a.run("audit", "verify", check_rc=0)


# --- the listing's display columns and index (migrations 10 and 11) -------

@pytest.fixture
def odd_names(tmp_path):
    """Self-signed certificates whose names are longer than a listing keeps:
    no CN and a 248-character first SAN; no CN, no SAN and a UTF-8 subject
    DN of more than 200 bytes (twice, one character apart, so that one of
    the two is cut inside a character)."""
    d = tmp_path / "odd"
    d.mkdir()
    long_dns = ".".join(c * 60 for c in "abcd") + ".test"
    ou = "\u00e9" * 60
    subjects = [("/O=Odd Names Org", "subjectAltName=DNS:%s,DNS:b.odd.test,IP:192.0.2.77"
                 % long_dns),
                ("/O=\u00dcn\u00efc\u00f6d\u00e9 Org/OU=%s/OU=x%s/OU=%s" % (ou, ou, ou), None),
                ("/O=\u00dcn\u00efc\u00f6d\u00e9 Org/OU=%s/OU=xy%s/OU=%s" % (ou, ou, ou), None)]
    for i, (subj, ext) in enumerate(subjects):
        cmd = ["openssl", "req", "-x509", "-utf8", "-newkey", "ec", "-pkeyopt",
               "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(d / ("k%d.key" % i)),
               "-out", str(d / ("c%d.pem" % i)), "-days", "10", "-subj", subj]
        if ext:
            cmd += ["-addext", ext]
        subprocess.run(cmd, check=True, capture_output=True)
        os.unlink(d / ("k%d.key" % i))
    return d


def test_list_columns_keep_long_names_short(both, odd_names):
    """list_name and list_issuer hold what the table shows, by the same rule
    on both backends, cut at a character boundary; the table shows them."""
    for a in both:
        assert a.import_json(str(odd_names))["new"] == 3
    tables, now = [], int(time.time())
    for a in both:
        rows = check_list_columns(a)
        odd = [r for r in rows if "Odd Names" in r[1] or "Org" in r[1] and r[2] == ""]
        assert any(r[7].endswith("... (+2)") and len(r[7].encode()) == 203 + 5 for r in odd)
        cut_inside = [r for r in odd if not r[3] and len(r[1].encode()) > LIST_CUT
                      and r[1].encode()[LIST_CUT] & 0xC0 == 0x80]
        assert cut_inside and all(r[7].endswith("...") for r in cut_inside)
        # one clock for both listings: days left would change on a second
        _, out, _ = a("list", env={"ACLM_NOW": str(now)}, check_rc=0)
        for r in odd:
            assert r[7] in out and r[8] in out
        tables.append(out)
    assert tables[0] == tables[1]


def copy_rows_as_old_writer(a, copies):
    """Insert `copies` copies of every certificate row (new fingerprints)
    the way an aclm older than migration 10 does: naming no list column."""
    cols = [c for c in a.columns("certificates")
            if c not in ("id", "fingerprint", "list_name", "list_issuer")]
    a.sql("WITH RECURSIVE k(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM k WHERE k < %d) "
          "INSERT INTO certificates (fingerprint, %s) SELECT c.fingerprint || '.' || "
          "CAST(k.k AS TEXT), %s FROM certificates c CROSS JOIN k ORDER BY k.k, c.id"
          % (copies, ", ".join(cols), ", ".join("c." + x for x in cols)))


def test_listing_migrations_fill_old_rows(both):
    """From a database of version 9 (no list columns, the old expiry index),
    with more rows than one fill step takes: migrations 10 and 11 give every
    row the columns new rows get, and the same listings as before."""
    for a in both:
        table = a("list", check_rc=0)[1]
        listing = a.list()
        for sql in ["DROP INDEX certificates_listing",
                    "DROP INDEX certificates_list_unfilled",
                    "CREATE INDEX certificates_not_after ON certificates (not_after, id)",
                    "ALTER TABLE certificates DROP COLUMN list_issuer",
                    "ALTER TABLE certificates DROP COLUMN list_name",
                    "DELETE FROM schema_migrations WHERE version >= 10"]:
            a.sql(sql)
        copy_rows_as_old_writer(a, 300)   # beyond two fill steps
        _, out, err = a("db", "migrate", check_rc=0)
        assert "from version 9 to 11" in out, (out, err)
        rows = check_list_columns(a)
        assert len(rows) > 2 * 2000, len(rows)   # LIST_FILL_CHUNK
        # The copies (ids above the originals) list after them on ties.
        assert a.list("--limit", str(len(listing)), "--sort", "id") == \
            sorted(listing, key=lambda r: r["id"])
        first = a("list", "--limit", str(table.count("\n") - 1), "--sort", "id", check_rc=0)[1]
        assert sorted(first.splitlines()) == sorted(table.splitlines())


def test_rows_of_an_older_aclm_list_right_and_get_filled(both):
    """An aclm older than migration 10, still running after the upgrade,
    inserts rows without list columns.  A listing shows them right all the
    same (PostgreSQL made read-only here, so that nothing fills them), and
    the next open that can write fills them."""
    lite, pg = both
    clock = {"ACLM_NOW": str(int(time.time()))}
    for a in both:
        copy_rows_as_old_writer(a, 2)
    want = lite("list", env=clock, check_rc=0)[1]
    assert pg("list", env=clock, check_rc=0)[1] == want
    assert lite.sql("SELECT COUNT(*) FROM certificates WHERE list_name IS NULL") == [["0"]]
    check_list_columns(lite)

    pg.sql("UPDATE certificates SET list_name = NULL, list_issuer = NULL WHERE id % 2 = 0")
    pg.pg.psql("postgres", "ALTER DATABASE %s SET default_transaction_read_only = on"
               % pg.pg_db)
    try:
        _, out, err = pg("list", env=clock, check_rc=0)
        assert out == want
        assert "have no list columns yet" in err and "read-only" in err, err
        _, out, _ = pg("list", "--expiring", "400d", env=clock, check_rc=0)
        assert out == lite("list", "--expiring", "400d", env=clock, check_rc=0)[1]
    finally:
        pg.pg.psql("postgres", "ALTER DATABASE %s RESET default_transaction_read_only"
                   % pg.pg_db)
    _, out, err = pg("list", env=clock, check_rc=0)
    assert out == want and "list columns" not in err, err
    check_list_columns(pg)


def test_listing_reads_one_index(both):
    """A listing by expiry reads the listing index alone: SQLite plans a
    covering-index search, PostgreSQL (made to choose an index) an
    index-only scan."""
    q = ("SELECT c.id, c.not_after, c.key_type, c.key_bits, c.level, c.list_name, "
         "c.list_issuer FROM certificates c WHERE c.not_after >= 0 AND c.not_after < 99 "
         "ORDER BY c.not_after, c.id")
    lite, pg = both
    plan = " ".join(" ".join(r) for r in lite.sql("EXPLAIN QUERY PLAN " + q))
    assert "COVERING INDEX certificates_listing" in plan, plan
    pg.sql("VACUUM ANALYZE certificates")
    plan = " ".join(" ".join(r) for r in pg.sql(
        "SET enable_seqscan = off; SET enable_bitmapscan = off; EXPLAIN " + q))
    assert "Index Only Scan using certificates_listing" in plan, plan
    # aclm's own SELECT, its plan sent back by auto_explain as a notice
    # (printed by -v), the planner steered off the table: an index-only
    # scan is possible only while the SELECT names indexed columns alone.
    opts = ("-c session_preload_libraries=auto_explain -c auto_explain.log_min_duration=0 "
            "-c auto_explain.log_level=notice -c enable_seqscan=off "
            "-c enable_bitmapscan=off")
    explained = Aclm(pg.tmp, pg.db + "?options=" + urllib.parse.quote(opts), "postgres",
                     pg.pg, pg.pg_db)
    _, out, err = explained("-v", "list", "--expiring", "30d", check_rc=0)
    assert out.count("\n") > 1, out
    assert "Index Only Scan using certificates_listing" in err, err
