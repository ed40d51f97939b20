"""aclm list: filters, sorting, paging, table and JSON output, bad values."""

import os
import re

import pytest

from helpers import iso_to_epoch, names, ordered_names
from pki import dns_match

DAY = 86400


@pytest.fixture
def inv(aclm, pki):
    """An inventory holding the generated tree."""
    aclm.import_json(pki.tree)
    return aclm


def kind(pki, n):
    return pki.keys[pki.certs[n].key].kind


def where(pki, pred):
    return sorted(n for n in pki.tree_certs() if pred(pki.certs[n]))


def wildcard_finds(pki, query):
    """--name: "a.example.com" also finds "*.example.com", "*.example.com"
    finds every "x.example.com"."""
    return where(pki, lambda c: any(dns_match(query, x) or dns_match(x, query)
                                    for x in pki.names_of(c.name)))


# args -> function(pki) giving the expected certificate names
FILTERS = [
    (["--expiring", "30d"], lambda p: ["exp20", "exp5"]),
    (["--expiring", "6d"], lambda p: ["exp5"]),
    (["--expiring", "2w"], lambda p: ["exp5"]),
    (["--expiring", "144h"], lambda p: ["exp5"]),
    (["--expiring", "1d"], lambda p: []),
    (["--expired"], lambda p: ["expired"]),
    (["--valid"], lambda p: where(p, lambda c: c.name not in ("expired", "notyet"))),
    (["--key-type", "rsa"], lambda p: ["root", "rsa2048", "rsa3072"]),
    (["--key-type", "rsa2048"], lambda p: ["rsa2048"]),
    (["--key-type", "rsa4096"], lambda p: ["root"]),
    (["--key-type", "ec"], lambda p: where(p, lambda c: kind(p, c.name) in ("p256", "p384", "p521"))),
    (["--key-type", "ecdsa"], lambda p: where(p, lambda c: kind(p, c.name) in ("p256", "p384", "p521"))),
    (["--key-type", "p256"], lambda p: where(p, lambda c: kind(p, c.name) == "p256")),
    (["--key-type", "ec256"], lambda p: where(p, lambda c: kind(p, c.name) == "p256")),
    (["--key-type", "p384"], lambda p: ["ec384", "inter"]),
    (["--key-type", "ec384"], lambda p: ["ec384", "inter"]),
    (["--key-type", "p521"], lambda p: ["ec521"]),
    (["--key-type", "sm2"], lambda p: ["sm2leaf", "sm2root"]),
    (["--key-type", "ed25519"], lambda p: ["ed25519"]),
    (["--key-type", "ed448"], lambda p: []),
    (["--issuer", "intermediate ca"], lambda p: where(p, lambda c: c.issuer == "inter")),
    (["--issuer", "SM2 ROOT"], lambda p: ["sm2leaf", "sm2root"]),
    (["--issuer", "ACLM TESTS"], lambda p: sorted(p.tree_certs())),
    (["--issuer", "nobody"], lambda p: []),
    (["--name", "rsa2048.example.test"], lambda p: ["rsa2048", "wild"]),
    (["--name", "RSA2048.Example.Test"], lambda p: ["rsa2048", "wild"]),
    (["--name", "exp5.example.test"], lambda p: wildcard_finds(p, "exp5.example.test")),
    (["--name", "www.rsa2048.example.test"], lambda p: ["rsa2048"]),
    (["--name", "rsa2048"], lambda p: []),
    (["--name", "anything.example.test"], lambda p: ["wild"]),
    (["--name", "example.test"], lambda p: ["wild"]),
    (["--name", "a.b.example.test"], lambda p: []),
    (["--name", "*.example.test"], lambda p: wildcard_finds(p, "*.example.test")),
    (["--name", "192.0.2.10"], lambda p: ["ip"]),
    (["--name", "2001:db8::10"], lambda p: ["ip"]),
    (["--name", "admin@example.test"], lambda p: ["mail"]),
    (["--name", "ip leaf"], lambda p: ["ip"]),
    (["--level", "ov"], lambda p: ["rsa2048", "sm2leaf", "wild"]),
    (["--level", "ev"], lambda p: ["ec256"]),
    (["--level", "dv"], lambda p: ["ec384"]),
    (["--level", "iv"], lambda p: []),
    (["--ca"], lambda p: ["inter", "root", "sm2root"]),
    (["--leaf"], lambda p: where(p, lambda c: not c.is_ca)),
    (["--key-type", "ec", "--expiring", "30d"], lambda p: ["exp20", "exp5"]),
    (["--leaf", "--level", "ov", "--key-type", "sm2"], lambda p: ["sm2leaf"]),
    (["--ca", "--issuer", "aclm test root"], lambda p: ["inter", "root"]),
]


def test_filter_expectations_are_sane(pki):
    """The wildcard expectation must cover the leaves it is meant to."""
    found = wildcard_finds(pki, "*.example.test")
    assert {"rsa2048", "ec256", "wild", "exp5", "sm2leaf"} <= set(found)
    assert "ip" not in found and "mail" not in found and "root" not in found
    assert wildcard_finds(pki, "exp5.example.test") == ["exp5", "wild"]
    assert wildcard_finds(pki, "www.rsa2048.example.test") == ["rsa2048"]


@pytest.mark.parametrize("args, want", FILTERS, ids=[" ".join(a) for a, _ in FILTERS])
def test_filter(inv, pki, args, want):
    rows = inv.list(*args)
    assert names(rows, pki) == sorted(want(pki))


def test_filters_agree_with_row_fields(inv, pki):
    """--expiring/--expired/--valid agree with the dates the rows report."""
    now = pki.now
    for row in inv.list("--expired"):
        assert iso_to_epoch(row["not_after"]) < now
    for row in inv.list("--valid"):
        assert iso_to_epoch(row["not_before"]) <= now <= iso_to_epoch(row["not_after"])
    for row in inv.list("--expiring", "30d"):
        assert now <= iso_to_epoch(row["not_after"]) < now + 30 * DAY
        assert 0 <= row["days_left"] <= 30


def test_default_order_is_soonest_expiry_first(inv, pki):
    got = ordered_names(inv.list(), pki)
    assert got == sorted(pki.tree_certs(), key=lambda n: pki.certs[n].not_after)


@pytest.mark.parametrize("args", [["--sort", "-expiry"], ["--sort", "expiry", "--reverse"],
                                  ["--reverse"]])
def test_descending_expiry(inv, pki, args):
    got = ordered_names(inv.list(*args), pki)
    assert got == sorted(pki.tree_certs(), key=lambda n: -pki.certs[n].not_after)


def test_sort_not_before(inv, pki):
    got = ordered_names(inv.list("--sort", "not-before"), pki)
    assert got == sorted(pki.tree_certs(), key=lambda n: pki.certs[n].not_before)


@pytest.mark.parametrize("field", ["subject", "issuer"])
def test_sort_text_fields(inv, field):
    rows = inv.list("--sort", field)
    values = [r[field] for r in rows]
    assert values == sorted(values), values
    rows = inv.list("--sort", "-" + field)
    values = [r[field] for r in rows]
    assert values == sorted(values, reverse=True), values


def test_sort_id(inv):
    ids = [r["id"] for r in inv.list("--sort", "id")]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    ids = [r["id"] for r in inv.list("--sort", "-id")]
    assert ids == sorted(ids, reverse=True)


def test_sort_key_groups_key_types(inv, pki):
    rows = inv.list("--sort", "key")
    assert len(rows) == len(pki.tree_certs())
    labels = [r["key"] for r in rows]
    # each key label forms one contiguous run
    runs = [l for i, l in enumerate(labels) if i == 0 or labels[i - 1] != l]
    assert len(runs) == len(set(labels)), labels


@pytest.mark.parametrize("limit, offset", [(3, 0), (3, 2), (5, 15), (100, 0), (1, 16), (4, 17), (4, 100)])
def test_limit_offset(inv, limit, offset):
    full = inv.list()
    page = inv.list("--limit", limit, "--offset", offset)
    assert page == full[offset:offset + limit]


def test_paging_with_filter_and_sort(inv):
    full = inv.list("--leaf", "--sort", "subject")
    assert inv.list("--leaf", "--sort", "subject", "--limit", 2, "--offset", 1) == full[1:3]


def test_table(inv, pki):
    rows = inv.list()
    rc, out, err = inv("list", check_rc=0)
    assert "\x1b[" not in out, "colour codes when stdout is not a terminal"
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "EXPIRES", "DAYS", "KEY", "LEVEL", "NAME", "ISSUER"], lines[0]
    data = [ln for ln in lines[1:] if re.match(r"^\s*\d+\s", ln)]
    assert [int(ln.split()[0]) for ln in data] == [r["id"] for r in rows]
    for ln, r in zip(data, rows):
        n = pki.by_fingerprint(r["fingerprint"])
        cols = ln.split()
        assert str(r["days_left"]) in cols, ln
        assert r["key"] in cols, ln
        assert pki.certs[n].cn in ln, ln
        assert pki.certs[pki.certs[n].issuer].cn in ln, ln
        assert r["not_after"][:10] in ln, ln
        if pki.certs[n].level:
            assert pki.certs[n].level in cols, ln


def test_table_name_column_counts_more_sans(inv, pki):
    """NAME is the CN or the first SAN, with (+N) when there are more SANs."""
    rows = inv.list()
    _, out, _ = inv("list", check_rc=0)
    data = [ln for ln in out.splitlines() if re.match(r"^\s*\d+\s", ln)]
    for ln, r in zip(data, rows):
        c = pki.certs[pki.by_fingerprint(r["fingerprint"])]
        name = c.cn + (" (+%d)" % (len(c.sans) - 1) if len(c.sans) > 1 else "")
        assert re.search(r"\s%s\s" % re.escape(name), ln), "NAME %r not in: %s" % (name, ln)


def test_empty_inventory(aclm):
    assert aclm.list() == []
    rc, out, err = aclm("list", check_rc=0)
    assert not [ln for ln in out.splitlines() if re.match(r"^\s*\d+\s", ln)], out
    assert "error" not in err


def test_json_is_an_array_of_objects_with_the_documented_keys(inv):
    keys = {"id", "fingerprint", "spki_sha256", "subject", "issuer", "subject_cn", "issuer_cn",
            "serial", "not_before", "not_after", "days_left", "key_type", "key_bits", "curve",
            "key", "sig_alg", "level", "sans", "is_ca", "issuer_id", "has_private_key",
            "first_seen", "last_seen"}
    for r in inv.list():
        assert keys <= set(r), "missing: %s" % sorted(keys - set(r))
        for k in ("not_before", "not_after", "first_seen", "last_seen"):
            iso_to_epoch(r[k])
        assert re.fullmatch(r"[0-9a-f]{64}", r["fingerprint"]), r["fingerprint"]
        assert re.fullmatch(r"[0-9a-f]{64}", r["spki_sha256"]), r["spki_sha256"]


BAD = [
    (["--expiring", "3x"], "--expiring"),
    (["--expiring", ""], "--expiring"),
    (["--expiring", "-5d"], "--expiring"),
    (["--expiring"], "--expiring"),
    (["--sort", "nope"], "--sort"),
    (["--sort", "-"], "--sort"),
    (["--limit", "-1"], "--limit"),
    (["--limit", "ten"], "--limit"),
    (["--limit", "99999999999999999999999"], "--limit"),
    (["--offset", "-3"], "--offset"),
    (["--key-type", "rsa1234x"], "--key-type"),
    (["--key-type", "nope"], "--key-type"),
    (["--level", "xx"], "--level"),
    (["--frobnicate"], "--frobnicate"),
    (["stray-argument"], "stray-argument"),
]


@pytest.mark.parametrize("args, needle", BAD, ids=[" ".join(a) or "empty" for a, _ in BAD])
def test_bad_option_values_exit_2(aclm_sqlite, args, needle):
    rc, out, err = aclm_sqlite("list", *args)
    assert rc == 2, "exit %d for %r\n%s" % (rc, args, err)
    assert needle in err, err
    assert out == ""
    assert not os.path.exists(os.path.join(aclm_sqlite.tmp, "aclm.db")), \
        "a usage error opened (created) the database"
