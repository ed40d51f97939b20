"""The command line itself: help, version, usage errors (docs/cli.md)."""

import os
import re

import pytest

from conftest import REPO

# command -> options its help must mention (docs/cli.md)
HELP_OPTIONS = {
    "import": ["--password-file", "--exclude", "--no-keys", "--json"],
    "list": ["--expiring", "--expired", "--valid", "--key-type", "--issuer", "--name",
             "--level", "--ca", "--leaf", "--sort", "--reverse", "--limit", "--offset", "--json"],
    "show": ["--json"],
    "export": ["--format", "--chain", "--key", "--out", "--password-file"],
    "config": ["check", "show", "--json"],
    "db": ["migrate", "status", "verify", "--json"],
}


def project_version():
    with open(os.path.join(REPO, "meson.build")) as f:
        return re.search(r"version\s*:\s*'([^']+)'", f.read()).group(1)


def test_main_help_lists_every_command(aclm_sqlite):
    rc, out, err = aclm_sqlite("--help", db=False, check_rc=0)
    for cmd in HELP_OPTIONS:
        assert re.search(r"^\s+%s\s" % cmd, out, re.M), "command %s missing from --help:\n%s" % (cmd, out)
    assert "--config" in out and "--db" in out


def test_help_does_not_touch_a_database(aclm_sqlite):
    aclm_sqlite("help", db=False, check_rc=0)
    aclm_sqlite("--help", db=False, check_rc=0)
    aclm_sqlite("help", "list", db=False, check_rc=0)
    assert not os.path.exists(os.path.join(aclm_sqlite.tmp, "aclm.db"))
    assert not os.path.exists(aclm_sqlite.kek_file)


@pytest.mark.parametrize("cmd", sorted(HELP_OPTIONS))
def test_help_command(aclm_sqlite, cmd):
    rc, out, err = aclm_sqlite("help", cmd, check_rc=0)
    for opt in HELP_OPTIONS[cmd]:
        assert opt in out, "'aclm help %s' does not mention %s:\n%s" % (cmd, opt, out)
    assert out.startswith("usage: aclm " + cmd) or ("usage: aclm " + cmd) in out


@pytest.mark.parametrize("cmd", sorted(HELP_OPTIONS))
def test_command_dash_dash_help_equals_help_command(aclm_sqlite, cmd):
    _, via_help, _ = aclm_sqlite("help", cmd, check_rc=0)
    _, via_option, err = aclm_sqlite(cmd, "--help", check_rc=0)
    assert via_option == via_help
    assert err == ""


def test_version(aclm_sqlite):
    rc, out, err = aclm_sqlite("--version", db=False, check_rc=0)
    assert re.match(r"^aclm %s\b" % re.escape(project_version()), out), out
    _, out2, _ = aclm_sqlite("version", db=False, check_rc=0)
    assert out2 == out


@pytest.mark.parametrize("argv, needle", [
    (["frobnicate"], "frobnicate"),
    (["help", "frobnicate"], "frobnicate"),
    (["--frobnicate", "list"], "frobnicate"),
    (["list", "--frobnicate"], "frobnicate"),
    ([], "usage"),
])
def test_usage_errors_exit_2(aclm_sqlite, argv, needle):
    rc, out, err = aclm_sqlite(*argv, db=False)
    assert rc == 2, (rc, out, err)
    assert needle in err, err
    assert not os.path.exists(os.path.join(aclm_sqlite.tmp, "aclm.db")), \
        "a usage error must not create the database"


def test_error_format(aclm_sqlite):
    rc, out, err = aclm_sqlite("frobnicate", db=False)
    assert rc == 2
    assert err.splitlines()[0].startswith("aclm: error: "), err
