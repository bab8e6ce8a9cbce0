"""Writing envctl.lock where the project cannot be written (parent is a file, read-only file system,
directory not writable by the user) is one LockError line naming the file (not an internal
OSError), and no temp file is left behind."""

import os
import subprocess

import pytest

from envctl.steps import _write_atomic
from specs.errors import LockError


def test_lock_parent_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(LockError) as e:
        _write_atomic(tmp_path / "f" / "envctl.lock", b"{}")
    assert str(tmp_path / "f" / "envctl.lock") in e.value.message and "Not a directory" in e.value.message
    assert e.value.exit_code == 1 and "--locked" in e.value.hint


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a read-only tmpfs")
def test_read_only_project(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "envctl-test-ro", str(ro)], check=True)
    try:
        with pytest.raises(LockError) as e:
            _write_atomic(ro / "envctl.lock", b"{}")
        assert e.value.message == f"write {ro / 'envctl.lock'}: Read-only file system"
        assert os.listdir(ro) == []
    finally:
        subprocess.run(["umount", str(ro)], check=True)


def test_unwritable_directory_leaves_no_temp_file(tmp_path, rootless_user):
    d = rootless_user.tmpdir()
    os.chown(d, 0, 0)  # root-owned, not writable by the user
    os.chmod(d, 0o755)
    code = ("import sys; from pathlib import Path; from envctl.steps import _write_atomic\n"
            "from specs.errors import LockError\n"
            "try:\n    _write_atomic(Path(sys.argv[1]) / 'envctl.lock', b'{}')\n"
            "except LockError as e:\n    print(e.message); sys.exit(7)\n")
    r = rootless_user.run([rootless_user.python, "-c", code, str(d)])
    assert r.returncode == 7, r.stderr
    assert "Permission denied" in r.stdout and os.listdir(d) == []
