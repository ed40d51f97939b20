"""SQLite and PostgreSQL behind one interface: the same input gives the same
answers."""

import os

import pytest

from conftest import Aclm
from helpers import diff_rows, strip_seen

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
