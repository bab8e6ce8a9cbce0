"""QA M2: an unusable ENVCTL_HOME (a file; another user's store) is one StoreError line naming the
store with an ENVCTL_HOME hint, not an internal OSError."""

import os
import subprocess
import sys

import pytest

from engine.errors import StoreError
from engine.store.cas import Store

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def test_home_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    for root in (f, f / "sub"):
        with pytest.raises(StoreError) as e:
            Store(root).ensure()
        assert e.value.message.startswith(f"open store {root}: ") and "ENVCTL_HOME" in e.value.hint


def test_cli_reports_one_line(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    r = subprocess.run([sys.executable, "-m", "envctl", "store", "fsck"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=60, env={**os.environ, "ENVCTL_HOME": str(f), "PYTHONPATH": REPO})
    assert r.returncode == 1
    assert r.stderr.splitlines()[0] == f"envctl: error: open store {f}: not a directory", r.stderr


def test_other_users_store(tmp_path, rootless_user):
    root_store = tmp_path / "store"
    Store(root_store).ensure()
    os.chmod(tmp_path, 0o755)
    code = ("import sys; from pathlib import Path; from engine.store.cas import Store\n"
            "from engine.errors import StoreError\n"
            "try:\n    Store(Path(sys.argv[1])).ensure()\n"
            "except StoreError as e:\n    print(e.message); sys.exit(7)\n")
    r = rootless_user.run([rootless_user.python, "-c", code, str(root_store)])
    assert r.returncode == 7, r.stderr
    assert r.stdout.strip() in (f"open store {root_store}: Operation not permitted",
                                f"open store {root_store}: Permission denied")
