"""aclm config: the file, the environment, and how problems are reported."""

import os
import re

import pytest

from helpers import stderr_lines

GOOD = """\
store:
  url: sqlite:fromfile.db
  busy_timeout: 10s
security:
  kek_file: my.kek
import:
  max_file_size: 10M
  exclude: ["*.bak", old]
  follow_symlinks: false
log:
  level: warn
  format: text
"""

# Each bad line: (line text, key or word the message must name).  Line
# numbers and columns are computed from the text below.
BAD = """\
store:
  url: sqlite:x.db
  urll: sqlite:y.db
  busy_timeout: 5 parsecs
log:
  level: loud
import:
  max_file_size: huge
  follow_symlinks: maybe
metrics:
  port: 9090
"""
BAD_PROBLEMS = [("urll:", "urll"), ("busy_timeout:", "busy_timeout"), ("level:", "level"),
                ("max_file_size:", "max_file_size"), ("follow_symlinks:", "follow_symlinks"),
                ("port:", "metrics")]


def write(aclm, name, text):
    path = os.path.join(aclm.tmp, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def entries(j):
    """config show --json as {key: {"value": ..., "origin": ...}}, accepting an
    object keyed by name or an array of objects with "key"."""
    if isinstance(j, dict) and all(isinstance(v, dict) for v in j.values()):
        return j
    if isinstance(j, list):
        return {e["key"]: e for e in j}
    pytest.fail("config show --json: unexpected shape: %r" % (j,))


def test_check_good_file(aclm_sqlite):
    path = write(aclm_sqlite, "good.yaml", GOOD)
    rc, out, err = aclm_sqlite("--config", path, "config", "check", db=False)
    assert rc == 0, err
    assert stderr_lines(err) == []


def test_check_reports_every_problem_with_position(aclm_sqlite):
    path = write(aclm_sqlite, "bad.yaml", BAD)
    rc, out, err = aclm_sqlite("--config", path, "config", "check", db=False)
    assert rc == 1, (rc, out, err)
    report = out + err
    lines = BAD.splitlines()
    for anchor, word in BAD_PROBLEMS:
        (n,) = [i + 1 for i, ln in enumerate(lines) if ln.strip().startswith(anchor)]
        key_col = lines[n - 1].index(anchor) + 1
        value_col = lines[n - 1].index(":") + 3
        m = re.search(r"^.*%s:%d:(\d+): (.*)$" % (re.escape(path), n), report, re.M)
        assert m, "no %s:%d:COL: line for %s in:\n%s" % (path, n, word, report)
        assert int(m.group(1)) in (key_col, value_col), m.group(0)
        assert word in m.group(2), m.group(0)
    assert "did you mean" in report and "store.url" in report, report


def test_check_unknown_key_column_is_the_key(aclm_sqlite):
    path = write(aclm_sqlite, "bad.yaml", "store:\n  url: sqlite:a.db\n  urll: x\n")
    rc, out, err = aclm_sqlite("--config", path, "config", "check", db=False)
    assert rc == 1
    assert "%s:3:3: " % path in out + err, out + err


def test_check_environment_values(aclm_sqlite):
    rc, out, err = aclm_sqlite("config", "check", db=False,
                               env={"ACLM_STORE_BUSY_TIMEOUT": "forever",
                                    "ACLM_IMPORT_MAX_FILE_SIZE": "lots"})
    assert rc == 1
    report = out + err
    assert re.search(r"ACLM_STORE_BUSY_TIMEOUT: .*busy_timeout", report), report
    assert re.search(r"ACLM_IMPORT_MAX_FILE_SIZE: ", report), report


def test_show_defaults(aclm_sqlite):
    e = entries(aclm_sqlite.json("config", "show", "--json", db=False,
                                 env={"ACLM_SECURITY_KEK_FILE": None}))
    assert e["store.url"]["value"] == "sqlite:aclm.db"
    assert e["store.url"]["origin"] == "default"
    assert e["import.max_file_size"]["value"] in ("64M", 67108864)
    assert e["security.kek_file"]["value"] == "aclm.kek"
    for k in ("store.busy_timeout", "import.exclude", "import.follow_symlinks", "log.level",
              "log.format"):
        assert k in e, k


def test_show_origins(aclm_sqlite):
    write(aclm_sqlite, "aclm.yaml", GOOD)        # found as ./aclm.yaml
    e = entries(aclm_sqlite.json("config", "show", "--json", db=False,
                                 env={"ACLM_LOG_LEVEL": "error"}))
    assert e["store.url"]["value"] == "sqlite:fromfile.db"
    assert e["store.url"]["origin"] == "file:2"
    assert e["import.follow_symlinks"]["origin"] == "file:9"
    assert e["log.level"]["value"] == "error"
    assert e["log.level"]["origin"] == "env:ACLM_LOG_LEVEL"
    assert e["security.kek_file"]["origin"] == "env:ACLM_SECURITY_KEK_FILE"
    rc, out, err = aclm_sqlite("config", "show", db=False, check_rc=0)
    (line,) = [ln for ln in out.splitlines() if "store.url" in ln]
    assert "sqlite:fromfile.db" in line and "file:2" in line, line


def test_store_url_from_environment(aclm_sqlite, pki):
    target = os.path.join(aclm_sqlite.tmp, "fromenv.db")
    aclm_sqlite("import", pki.cert_path("ec256"), db=False, check_rc=0,
                env={"ACLM_STORE_URL": "sqlite:" + target})
    assert os.path.exists(target)
    assert not os.path.exists(os.path.join(aclm_sqlite.tmp, "aclm.db"))
    e = entries(aclm_sqlite.json("config", "show", "--json", db=False,
                                 env={"ACLM_STORE_URL": "sqlite:" + target}))
    assert e["store.url"] == dict(e["store.url"], value="sqlite:" + target,
                                  origin="env:ACLM_STORE_URL")


def test_db_option_beats_environment_beats_file(aclm_sqlite, pki):
    write(aclm_sqlite, "aclm.yaml", GOOD)
    t = aclm_sqlite.tmp
    env = {"ACLM_STORE_URL": "sqlite:" + os.path.join(t, "env.db")}
    aclm_sqlite("--db", "sqlite:" + os.path.join(t, "opt.db"), "import", pki.cert_path("ec256"),
                db=False, env=env, check_rc=0)
    assert os.path.exists(os.path.join(t, "opt.db"))
    assert not os.path.exists(os.path.join(t, "env.db"))
    aclm_sqlite("import", pki.cert_path("ec256"), db=False, env=env, check_rc=0)
    assert os.path.exists(os.path.join(t, "env.db"))
    assert not os.path.exists(os.path.join(t, "fromfile.db"))
    aclm_sqlite("import", pki.cert_path("ec256"), db=False, check_rc=0)
    assert os.path.exists(os.path.join(t, "fromfile.db"))


def test_aclm_config_variable(aclm_sqlite, pki):
    path = write(aclm_sqlite, "elsewhere.yaml", GOOD.replace("fromfile.db", "viaenv.db"))
    aclm_sqlite("import", pki.cert_path("ec256"), db=False, check_rc=0, env={"ACLM_CONFIG": path})
    assert os.path.exists(os.path.join(aclm_sqlite.tmp, "viaenv.db"))


@pytest.mark.parametrize("how", ["option", "env"])
def test_missing_config_file(aclm_sqlite, how):
    path = os.path.join(aclm_sqlite.tmp, "nope.yaml")
    if how == "option":
        rc, out, err = aclm_sqlite("--config", path, "list", db=False)
    else:
        rc, out, err = aclm_sqlite("list", db=False, env={"ACLM_CONFIG": path})
    assert rc == 1, (rc, err)
    lines = stderr_lines(err)
    assert len(lines) == 1 and lines[0].startswith("aclm: error: ") and path in lines[0], err
    assert not os.path.exists(os.path.join(aclm_sqlite.tmp, "aclm.db"))


@pytest.mark.parametrize("text, lines", [
    ("store:\n  url: [unclosed\n", (2, 3)),               # libyaml may point at the end
    ("store:\n  url: a\n    busy_timeout: 5s\n", (3,)),
    ("store:\n\turl: x\n", (2,)),
    ("- just\n- a list\n", (1,)),
    ("store:\n  url: &a x\n  busy_timeout: *a\n", (2, 3)),  # aliases are refused
], ids=["unclosed-flow", "bad-indent", "tab", "top-level-list", "alias"])
def test_yaml_syntax_error(aclm_sqlite, text, lines):
    path = write(aclm_sqlite, "broken.yaml", text)
    for args in (["config", "check"], ["list"]):
        rc, out, err = aclm_sqlite("--config", path, *args, db=False)
        assert rc == 1, (args, rc, err)
        m = re.search(r"%s:(\d+):(\d+): " % re.escape(path), err)
        assert m and int(m.group(1)) in lines and int(m.group(2)) >= 1, \
            "want %s:%s:COL in:\n%s" % (path, lines, err)
    assert not os.path.exists(os.path.join(aclm_sqlite.tmp, "aclm.db"))
