"""Harness of the integration suite: the binary, one way to run it, one
database per test (SQLite and a real PostgreSQL), and the generated PKI.

    /usr/bin/python3 -m pytest tests/integration          # build/src/cli/aclm
    ACLM_BIN=/tmp/b/src/cli/aclm /usr/bin/python3 -m pytest tests/integration

Every test runs in its own temporary directory with its own database and its
own key-encryption key; nothing is read from the repository's working tree
or from ACLM_* variables of the calling environment.
"""

import glob
import itertools
import json
import os
import pwd
import shutil
import sqlite3
import subprocess
import tempfile

import pytest

import pki as pki_mod
from helpers import free_port as _free_port

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIMEOUT = 60  # seconds for one aclm command; nothing here should take a tenth of it


def _binary():
    path = os.environ.get("ACLM_BIN") or os.path.join(REPO, "build", "src", "cli", "aclm")
    return os.path.abspath(path)


BIN = _binary()


def pytest_sessionstart(session):
    if not (os.path.isfile(BIN) and os.access(BIN, os.X_OK)):
        pytest.exit("aclm binary not found or not executable: %s\n"
                    "build it (meson setup build && ninja -C build) or set ACLM_BIN" % BIN,
                    returncode=1)


def base_env(tmp):
    """The calling environment without ACLM_* / PG* variables, plus isolation."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ACLM_") and not k.startswith("PG")}
    env["ACLM_SECURITY_KEK_FILE"] = os.path.join(str(tmp), "secrets", "aclm.kek")
    # A half-hour offset catches any local-time conversion of certificate dates.
    env["TZ"] = "ACLMTEST-05:30"
    env["LC_ALL"] = "C.UTF-8"
    env["HOME"] = str(tmp)
    return env


class Aclm:
    """Runs the binary in one test's directory against one test's database."""

    def __init__(self, tmp, db_url=None, backend=None, pg=None, pg_db=None):
        self.tmp = str(tmp)
        self.db = db_url
        self.backend = backend
        self.pg = pg
        self.pg_db = pg_db
        self.env = base_env(tmp)
        os.makedirs(os.path.join(self.tmp, "secrets"), exist_ok=True)

    @property
    def kek_file(self):
        return self.env["ACLM_SECURITY_KEK_FILE"]

    def run(self, *args, env=None, input=None, check_rc=None, db=True,
            binary=False, timeout=TIMEOUT, cwd=None):
        """(rc, stdout, stderr) of `aclm [--db URL] ARGS`.  env adds to (and a
        None value removes from) the isolated environment."""
        cmd = [BIN]
        if db and self.db:
            cmd += ["--db", self.db]
        cmd += [str(a) for a in args]
        e = dict(self.env)
        for k, v in (env or {}).items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = v
        if isinstance(input, str):
            input = input.encode()
        try:
            p = subprocess.run(cmd, input=input, capture_output=True, env=e,
                               cwd=cwd or self.tmp, timeout=timeout,
                               stdin=None if input is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            pytest.fail("timed out after %ss: %s" % (timeout, " ".join(cmd)), pytrace=False)
        out = p.stdout if binary else p.stdout.decode("utf-8", "replace")
        err = p.stderr.decode("utf-8", "replace")
        if check_rc is not None and p.returncode != check_rc:
            pytest.fail("exit %d (expected %d): %s\n--- stdout\n%s\n--- stderr\n%s"
                        % (p.returncode, check_rc, " ".join(cmd),
                           out if not binary else "<%d bytes>" % len(out), err), pytrace=False)
        return p.returncode, out, err

    __call__ = run

    def json(self, *args, check_rc=0, **kw):
        rc, out, err = self.run(*args, check_rc=check_rc, **kw)
        try:
            return json.loads(out)
        except ValueError as ex:
            pytest.fail("%s: stdout is not JSON (%s):\n%s\n--- stderr\n%s"
                        % (" ".join(map(str, args)), ex, out, err), pytrace=False)

    def list(self, *args, **kw):
        rows = self.json("list", "--json", *args, **kw)
        assert isinstance(rows, list), rows
        return rows

    def import_json(self, *paths, check_rc=0, **kw):
        return self.json("import", "--json", *paths, check_rc=check_rc, **kw)

    def sql(self, query):
        """Run SQL directly on this test's database; rows as lists of strings."""
        if self.backend == "sqlite":
            con = sqlite3.connect(self.db[len("sqlite:"):])
            try:
                rows = [[str(v) for v in r] for r in con.execute(query).fetchall()]
                con.commit()
            finally:
                con.close()
            return rows
        return self.pg.psql(self.pg_db, query)

    def tables(self):
        if self.backend == "sqlite":
            q = "SELECT name FROM sqlite_master WHERE type = 'table'"
        else:
            q = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        return sorted(r[0] for r in self.sql(q))

    def columns(self, table):
        if self.backend == "sqlite":
            return [r[1] for r in self.sql("PRAGMA table_info(%s)" % table)]
        return [r[0] for r in self.sql(
            "SELECT column_name FROM information_schema.columns WHERE table_name = '%s' "
            "ORDER BY ordinal_position" % table)]


# ---------------------------------------------------------------- PostgreSQL


class PgServer:
    """A throw-away PostgreSQL cluster on a loopback port, one per session."""

    def __init__(self):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                      key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
        if not bins or not os.path.exists(os.path.join(os.path.dirname(bins[-1]), "pg_ctl")):
            pytest.fail("PostgreSQL server binaries not found: install postgresql", pytrace=False)
        self.bindir = os.path.dirname(bins[-1])
        self.dir = tempfile.mkdtemp(prefix="aclm-pg-")
        self.data = os.path.join(self.dir, "data")
        self.port = None
        self.counter = itertools.count(1)
        self.free = []
        self.as_user = []
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        os.chmod(self.dir, 0o755)

    def _ctl(self, *args, **kw):
        return subprocess.run(self.as_user + [os.path.join(self.bindir, args[0]), *args[1:]],
                              env=base_env(self.dir), cwd=self.dir, **kw)

    def start(self):
        p = self._ctl("initdb", "-D", self.data, "-U", "postgres", "-A", "trust",
                      "--no-locale", "-E", "UTF8", "--no-sync",
                      capture_output=True, timeout=120)
        if p.returncode != 0:
            pytest.fail("initdb failed:\n" + p.stderr.decode(errors="replace"), pytrace=False)
        log = os.path.join(self.dir, "server.log")
        for _ in range(3):
            self.port = _free_port()
            opts = ("-k %s -p %d -c listen_addresses=127.0.0.1 -c fsync=off "
                    "-c synchronous_commit=off -c full_page_writes=off" % (self.dir, self.port))
            # pg_ctl's server inherits stdout: never give it a pipe.
            p = self._ctl("pg_ctl", "-D", self.data, "-l", log, "-w", "-t", "60",
                          "-o", opts, "start", stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, timeout=90)
            if p.returncode == 0:
                return self
        with open(log, errors="replace") as f:
            pytest.fail("PostgreSQL did not start:\n" + f.read()[-3000:], pytrace=False)

    def stop(self):
        if self.port is not None:
            self._ctl("pg_ctl", "-D", self.data, "-m", "immediate", "stop",
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)

    def psql(self, dbname, query):
        p = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1",
                            "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                            "-d", dbname, "-c", query],
                           capture_output=True, env=base_env(self.dir), timeout=60)
        if p.returncode != 0:
            raise RuntimeError("psql %r: %s" % (query, p.stderr.decode(errors="replace")))
        return [line.split("\t") for line in p.stdout.decode().splitlines() if line]

    def create_db(self):
        name = "t_%d_%d" % (os.getpid(), next(self.counter))
        self.psql("postgres", "CREATE DATABASE %s" % name)
        return name

    # CREATE DATABASE copies template1 and costs ~0.3 s; emptying a used
    # database costs ~0.03 s.  A test gets a database nobody else uses, with
    # no schema but an empty "public" -- what CREATE DATABASE gives.
    RESET = ("DO $$DECLARE s text; BEGIN "
             "FOR s IN SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' "
             "AND nspname <> 'information_schema' LOOP "
             "EXECUTE 'DROP SCHEMA ' || quote_ident(s) || ' CASCADE'; END LOOP; "
             "CREATE SCHEMA public; END$$")

    def take_db(self):
        return self.free.pop() if self.free else self.create_db()

    def give_back(self, name):
        try:
            self.psql(name, self.RESET)
        except RuntimeError:
            return                      # still in use or broken: never reused
        self.free.append(name)

    def url(self, name):
        return "postgres://postgres@127.0.0.1:%d/%s" % (self.port, name)


@pytest.fixture(scope="session")
def pg_server():
    srv = PgServer()
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """The generated PKI (see pki.py); read-only for the tests."""
    return pki_mod.build(tmp_path_factory.mktemp("pki"))


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, tmp_path):
    """(backend, URL, server, database name) of a fresh, empty database."""
    if request.param == "sqlite":
        yield ("sqlite", "sqlite:%s" % os.path.join(str(tmp_path), "aclm.db"), None, None)
        return
    srv = request.getfixturevalue("pg_server")
    name = srv.take_db()
    yield ("postgres", srv.url(name), srv, name)
    srv.give_back(name)


@pytest.fixture
def aclm(tmp_path, db):
    """The binary against a fresh database, for each backend."""
    backend, url, srv, name = db
    return Aclm(tmp_path, url, backend, srv, name)


@pytest.fixture
def aclm_sqlite(tmp_path):
    """The binary against a fresh SQLite database (for SQLite-only checks)."""
    return Aclm(tmp_path, "sqlite:%s" % os.path.join(str(tmp_path), "aclm.db"), "sqlite")
