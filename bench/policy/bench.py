#!/usr/bin/python3
"""Policy evaluation and reports at scale: N certificates (default 100,000)
and N/10 endpoints with scan results, written straight into a SQLite
inventory, then timed:

    aclm list --json          (the peer: one plain pass over the same rows)
    aclm policy check --json  (cabf-baseline, every rule)
    aclm report compliance / expiry / inventory --format csv

    bench/policy/bench.py [--bin build-x/src/cli/aclm] [-n 100000] [--postgres]

--postgres: the same rows in a throw-away PostgreSQL cluster on loopback
(the integration suite's PgServer), copied there from the SQLite file.

Prints seconds and the ratio to the listing."""

import argparse
import hashlib
import os
import random
import sqlite3
import subprocess
import tempfile
import time

ap = argparse.ArgumentParser()
ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "..", "build",
                                              "src", "cli", "aclm"))
ap.add_argument("-n", type=int, default=100000)
ap.add_argument("--postgres", action="store_true")
args = ap.parse_args()
args.bin = os.path.abspath(args.bin)

tmp = tempfile.mkdtemp(prefix="aclm-bench-policy-")
db = os.path.join(tmp, "aclm.db")
env = dict(os.environ, ACLM_SECURITY_KEK_FILE=os.path.join(tmp, "kek"))


URL = ["sqlite:" + db]


def aclm(*a):
    t = time.perf_counter()
    p = subprocess.run([args.bin, "--db", URL[0], *a], capture_output=True, env=env)
    if p.returncode not in (0, 1):
        raise SystemExit(p.stderr.decode())
    return time.perf_counter() - t, len(p.stdout)


aclm("db", "migrate")
con = sqlite3.connect(db)
rnd = random.Random(1)
now = int(time.time())
kinds = [("ec", 256, "P-256", "ecdsa-with-SHA256")] * 6 + [("rsa", 2048, None,
         "sha256WithRSAEncryption")] * 3 + [("rsa", 1024, None, "sha1WithRSAEncryption"),
        ("sm2", 256, "SM2", "SM2-with-SM3"), ("ed25519", 256, None, "ED25519")]
keys, certs = [], []
for i in range(1, args.n + 1):
    kt, bits, curve, sig = rnd.choice(kinds)
    key_id = i if i % 50 else i - 1          # every 50th reuses its neighbour's key
    if key_id == i:
        keys.append((i, hashlib.sha256(b"k%d" % i).hexdigest(), kt, bits, curve))
    nb = now - rnd.randrange(0, 400) * 86400
    na = nb + rnd.choice([90, 200, 398, 825]) * 86400 - 1
    name = "h%d.example.com" % i
    certs.append((i, hashlib.sha256(b"c%d" % i).hexdigest(), key_id, "CN=" + name,
                  "CN=Bench CA", name, "Bench CA", "s", "i", "%x" % i, nb, na, kt, bits, curve,
                  sig, "DNS:%s,DNS:www.%s" % (name, name), now))
con.executemany("INSERT INTO keys (id, spki_sha256, key_type, key_bits, curve) "
                "VALUES (?, ?, ?, ?, ?)", keys)
con.executemany("INSERT INTO certificates (id, fingerprint, key_id, subject, issuer, subject_cn, "
                "issuer_cn, subject_hash, issuer_hash, serial, not_before, not_after, key_type, "
                "key_bits, curve, sig_alg, sans, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", certs)
con.execute("INSERT INTO scans (id, started_at) VALUES (1, ?)", (now,))
eps = []
res = []
for e in range(1, args.n // 10 + 1):
    eps.append((e, "h%d.example.com" % e, "10.%d.%d.%d" % (e >> 16 & 255, e >> 8 & 255, e & 255),
                443, now, now))
    res.append((1, e, now, 1, rnd.choice(["X25519MLKEM768", "none", "curveSM2MLKEM768", ""]), e))
con.executemany("INSERT INTO endpoints (id, host, ip, port, first_seen, last_seen) "
                "VALUES (?, ?, ?, ?, ?, ?)", eps)
con.executemany("INSERT INTO scan_results (scan_id, endpoint_id, scanned_at, reachable, "
                "pq_groups, leaf_cert_id) VALUES (?, ?, ?, ?, ?, ?)", res)
con.commit()
con.close()

pg = None
if args.postgres:
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                    "tests", "integration"))
    import conftest
    pg = conftest.PgServer().start()
    name = pg.create_db()
    URL[0] = pg.url(name)
    aclm("db", "migrate")
    src = sqlite3.connect(db)
    dump = os.path.join(tmp, "rows.sql")
    with open(dump, "w") as f:
        for table, cols in [("keys", "id, spki_sha256, key_type, key_bits, curve"),
                            ("certificates", "id, fingerprint, key_id, subject, issuer, "
                             "subject_cn, issuer_cn, subject_hash, issuer_hash, serial, "
                             "not_before, not_after, key_type, key_bits, curve, sig_alg, sans, "
                             "created_at"),
                            ("scans", "id, started_at"),
                            ("endpoints", "id, host, ip, port, first_seen, last_seen"),
                            ("scan_results", "scan_id, endpoint_id, scanned_at, reachable, "
                             "pq_groups, leaf_cert_id")]:
            f.write("COPY %s (%s) FROM STDIN;\n" % (table, cols))
            for row in src.execute("SELECT %s FROM %s" % (cols, table)):
                f.write("\t".join("\\N" if v is None else str(v) for v in row) + "\n")
            f.write("\\.\n")
    src.close()
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
                    str(pg.port), "-U", "postgres", "-d", name, "-f", dump], check=True,
                   env=conftest.base_env(tmp))

base, _ = aclm("list", "--json", "--limit", "0")
print("%d certificates, %d endpoints (%s)" % (args.n, args.n // 10,
                                             "PostgreSQL" if pg else "SQLite"))
print("%-34s %7.2f s" % ("aclm list --json (peer)", base))
for label, cmd in [("aclm policy check --json", ["policy", "check", "--json"]),
                   ("aclm report compliance --format csv", ["report", "compliance"]),
                   ("aclm report expiry --format csv", ["report", "expiry"]),
                   ("aclm report inventory --format html", ["report", "inventory", "--format",
                                                           "html"])]:
    t, size = aclm(*cmd)
    print("%-34s %7.2f s  %5.2fx the listing  (%d bytes)" % (label, t, t / base, size))
if pg is not None:
    pg.stop()
