"""aclm import on input that cannot be used: one stderr line per bad file
naming the path and the reason, the rest still imported, exit 1, and a
database that is otherwise left alone."""

import json
import os
import random
import re
import shutil

import pytest

from helpers import by_name, stderr_lines, strip_seen

# Each case: name -> (builder, reason regex).  A builder gets (directory, pki)
# and makes the bad thing inside it; it returns (path named in the error,
# extra import arguments, extra environment).


def _write(path, data):
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(path, mode) as f:
        f.write(data)
    return path


def garbage(d, pki):
    return _write(os.path.join(d, "garbage.pem"), random.Random(7).randbytes(3000)), [], {}


def garbage_der(d, pki):
    der = pki.certs["ec256"].der
    return _write(os.path.join(d, "truncated.der"), der[:len(der) // 2]), [], {}


def empty(d, pki):
    return _write(os.path.join(d, "empty.pem"), b""), [], {}


def truncated_in_base64(d, pki):
    pem = pki.certs["ec256"].pem
    return _write(os.path.join(d, "cut-body.pem"), pem[:len(pem) // 2]), [], {}


def truncated_before_end(d, pki):
    pem = pki.certs["ec256"].pem
    cut = pem[:pem.index("-----END")]
    return _write(os.path.join(d, "cut-end.pem"), cut), [], {}


def corrupt_base64(d, pki):
    lines = pki.certs["ec256"].pem.splitlines()
    lines[3] = lines[3][:10] + "!!**" + lines[3][14:]
    return _write(os.path.join(d, "corrupt.pem"), "\n".join(lines) + "\n"), [], {}


def csr(d, pki):
    path = os.path.join(d, "request.pem")
    shutil.copy(pki.csr_pem, path)
    return path, [], {}


def fifo(d, pki):
    path = os.path.join(d, "fifo.pem")
    os.mkfifo(path)
    return path, [], {}


def dangling_symlink(d, pki):
    path = os.path.join(d, "dangling.pem")
    os.symlink(os.path.join(d, "nowhere.pem"), path)
    return path, [], {}


def self_symlink(d, pki):
    path = os.path.join(d, "self.pem")
    os.symlink("self.pem", path)
    return path, [], {}


def dir_symlink_loop(d, pki):
    sub = os.path.join(d, "sub")
    os.mkdir(sub)
    path = os.path.join(sub, "up")
    os.symlink("..", path)
    return path, [], {}


def over_configured_limit(d, pki):
    text = pki.certs["root"].pem * 3           # > 4k; good.pem is < 4k
    assert len(text) > 4096 and len(pki.certs["extra"].pem) < 4096
    return _write(os.path.join(d, "big.pem"), text), [], {"ACLM_IMPORT_MAX_FILE_SIZE": "4k"}


def sparse_300m(d, pki):
    path = os.path.join(d, "huge.pem")
    with open(path, "wb") as f:
        f.truncate(300 * 1024 * 1024)          # sparse: costs nothing on disk
    return path, [], {}


def p12_wrong_password(d, pki):
    path = os.path.join(d, "pw.p12")
    shutil.copy(pki.p12_pw, path)
    return path, ["--password-file", pki.p12_wrong_password_file], {}


def p12_no_password(d, pki):
    path = os.path.join(d, "pw.p12")
    shutil.copy(pki.p12_pw, path)
    return path, [], {}


def unreadable_file(d, pki):
    path = _write(os.path.join(d, "secret.pem"), pki.certs["ec256"].pem)
    os.chmod(path, 0)
    return path, [], {}


def unreadable_dir(d, pki):
    path = os.path.join(d, "locked")
    os.mkdir(path)
    _write(os.path.join(path, "x.pem"), pki.certs["ec256"].pem)
    os.chmod(path, 0)
    return path, [], {}


CASES = {
    "garbage": (garbage, r"."),
    "truncated-der": (garbage_der, r"."),
    "empty": (empty, r"empty|no certificate"),
    "truncated-in-base64": (truncated_in_base64, r"."),
    "truncated-before-end": (truncated_before_end, r"(?i)truncat|END|incomplete"),
    "corrupt-base64": (corrupt_base64, r"(?i)base64|PEM"),
    "csr": (csr, r"PEM block 1 \(line 1\): CERTIFICATE REQUEST is not a certificate"),
    "fifo": (fifo, r"(?i)special|not a regular|fifo"),
    "dangling-symlink": (dangling_symlink, r"(?i)no such file|does not exist|dangling|not found"),
    "self-symlink": (self_symlink, r"(?i)loop|too many levels"),
    "dir-symlink-loop": (dir_symlink_loop, r"(?i)loop"),
    "over-configured-limit": (over_configured_limit, r"(?i)size|large|limit|4k|4096"),
    "sparse-300M": (sparse_300m, r"(?i)size|large|limit|64M"),
    "p12-wrong-password": (p12_wrong_password, r"(?i)password|mac"),
    "p12-no-password": (p12_no_password, r"(?i)password"),
    "unreadable-file": (unreadable_file, r"(?i)permission"),
    "unreadable-dir": (unreadable_dir, r"(?i)permission"),
}
NEEDS_NON_ROOT = {"unreadable-file", "unreadable-dir"}


def make_input(tmp, pki, case):
    d = os.path.join(tmp, "in")
    os.makedirs(d, exist_ok=True)
    _write(os.path.join(d, "good.pem"), pki.certs["extra"].pem)
    builder, reason = CASES[case]
    path, args, env = builder(d, pki)
    return d, path, args, env, reason


def assert_one_problem(err, summary, path, reason):
    lines = stderr_lines(err)
    assert len(lines) == 1, "expected exactly one stderr line, got:\n" + err
    line = lines[0]
    assert line.startswith("aclm: error: "), line
    assert path in line, "stderr line does not name %s: %s" % (path, line)
    after = line.split(path, 1)[1]
    assert re.search(reason, after), "reason %r not in: %s" % (reason, line)
    assert len(summary["problems"]) == 1, summary
    (p,) = summary["problems"]
    assert p["path"] == path, summary
    assert p["error"], summary


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_file_reported_rest_imported(aclm, pki, case):
    if case in NEEDS_NON_ROOT and os.geteuid() == 0:
        pytest.skip("root reads files whatever their mode")
    d, path, args, env, reason = make_input(aclm.tmp, pki, case)
    rc, out, err = aclm("import", "--json", *args, d, env=env)
    assert rc == 1, "exit %d\n%s\n%s" % (rc, out, err)
    assert_one_problem(err, json.loads(out), path, reason)
    assert "extra" in by_name(aclm.list(), pki), "the good certificate was not imported"


def test_bad_path_as_argument(aclm, pki):
    missing = os.path.join(aclm.tmp, "missing.pem")
    good = pki.cert_path("extra")
    rc, out, err = aclm("import", "--json", missing, good)
    assert rc == 1, err
    assert_one_problem(err, json.loads(out), missing, r"(?i)no such file|does not exist|not found")
    assert list(by_name(aclm.list(), pki)) == ["extra"]


def test_fifo_as_argument_does_not_block(aclm, pki):
    path = os.path.join(aclm.tmp, "fifo")
    os.mkfifo(path)
    rc, out, err = aclm("import", "--json", path, timeout=20)
    assert rc == 1
    assert_one_problem(err, json.loads(out), path, r"(?i)special|not a regular|fifo")


def test_crl_block_after_a_certificate(aclm, pki):
    """The docs' own example: 'PATH: PEM block 2 (line N): X509 CRL is not a
    certificate'; the certificate in block 1 is imported."""
    with open(pki.crl_pem) as f:
        crl = f.read()
    cert = pki.certs["extra"].pem
    path = _write(os.path.join(aclm.tmp, "with-crl.pem"), cert + crl)
    line_no = len(cert.splitlines()) + 1
    rc, out, err = aclm("import", "--json", path)
    assert rc == 1, err
    assert_one_problem(err, json.loads(out), path,
                       r"^: PEM block 2 \(line %d\): X509 CRL is not a certificate$" % line_no)
    assert list(by_name(aclm.list(), pki)) == ["extra"]


def test_every_bad_file_once_in_one_run(aclm, pki):
    """All the bad things together: one line each, the good file imported."""
    d = os.path.join(aclm.tmp, "in")
    os.makedirs(d)
    _write(os.path.join(d, "good.pem"), pki.certs["extra"].pem)
    bad = {}
    for case, (builder, reason) in CASES.items():
        if case in NEEDS_NON_ROOT and os.geteuid() == 0:
            continue
        if case in ("p12-wrong-password", "over-configured-limit"):
            continue                          # need their own options
        sub = os.path.join(d, case)
        os.makedirs(sub)
        path, _, _ = builder(sub, pki)
        bad[path] = reason
    rc, out, err = aclm("import", "--json", d)
    assert rc == 1, err
    s = json.loads(out)
    lines = stderr_lines(err)
    assert len(lines) == len(bad), "want %d lines, got:\n%s" % (len(bad), err)
    for path, reason in bad.items():
        mine = [ln for ln in lines if path + ":" in ln]
        assert len(mine) == 1, "%s: %r" % (path, mine)
    assert sorted(p["path"] for p in s["problems"]) == sorted(bad)
    assert s["new"] == 1
    assert list(by_name(aclm.list(), pki)) == ["extra"]


def test_bad_run_leaves_inventory_alone(aclm, pki):
    aclm.import_json(pki.tree)
    before = aclm.list()
    d = os.path.join(aclm.tmp, "bad")
    os.makedirs(d)
    for case in ("garbage", "empty", "truncated-in-base64", "csr", "dangling-symlink"):
        sub = os.path.join(d, case)
        os.makedirs(sub)
        CASES[case][0](sub, pki)
    rc, out, err = aclm("import", "--json", d)
    assert rc == 1
    assert json.loads(out)["new"] == 0
    after = aclm.list()
    assert strip_seen(after) == strip_seen(before)


def test_garbage_database_file_is_refused_and_kept(aclm_sqlite, pki):
    path = os.path.join(aclm_sqlite.tmp, "garbage.db")
    data = random.Random(3).randbytes(8192)
    _write(path, data)
    for args in (["list"], ["import", pki.cert_path("extra")], ["db", "migrate"]):
        rc, out, err = aclm_sqlite("--db", "sqlite:garbage.db", *args, db=False)
        assert rc == 1, (args, rc, out, err)
        lines = stderr_lines(err)
        assert lines and lines[0].startswith("aclm: error: "), err
        assert "garbage.db" in err, err
        assert re.search(r"(?i)not a database|database|corrupt", err), err
        with open(path, "rb") as f:
            assert f.read() == data, "%s overwrote the garbage database file" % args


def test_text_file_as_database_is_refused_and_kept(aclm_sqlite):
    path = _write(os.path.join(aclm_sqlite.tmp, "notes.txt"), "just some notes\n" * 200)
    rc, out, err = aclm_sqlite("--db", "sqlite:" + path, "list", db=False)
    assert rc == 1
    assert path in err
    with open(path) as f:
        assert f.read() == "just some notes\n" * 200


def test_unreachable_postgres(aclm_sqlite):
    url = "postgres://postgres@127.0.0.1:1/nothing"
    rc, out, err = aclm_sqlite("--db", url, "list", db=False, timeout=30)
    assert rc == 1, err
    lines = stderr_lines(err)
    assert lines and lines[0].startswith("aclm: error: "), err
    assert "127.0.0.1" in err, err
