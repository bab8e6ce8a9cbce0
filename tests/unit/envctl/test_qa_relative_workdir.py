"""QA L5: ``envctl run -w rel -- pwd`` failed at chdir with exit 1; a relative -w is a usage error
(exit 2) saying it must be absolute, in the full CLI and through the fast entry."""

import os
import subprocess
import sys

import pytest

from envctl import _fast
from envctl.cli import main


@pytest.mark.parametrize("cmd", ["run", "shell", "exec"])
def test_relative_workdir_is_a_usage_error(tmp_path, capsys, cmd):
    (tmp_path / "envctl.yaml").write_text("version: 1\nimage: busybox\n")
    with pytest.raises(SystemExit) as e:
        main([cmd, "-C", str(tmp_path), "-w", "rel", *(["--", "pwd"] if cmd != "shell" else [])])
    assert e.value.code == 2
    assert "'rel': must be an absolute path inside the environment" in capsys.readouterr().err


def test_fast_entry_hands_relative_workdir_over(tmp_path):
    assert _fast.parse_run(["-w", "rel", "--", "pwd"]) is None
    assert _fast.parse_run(["-w", "/abs", "--", "pwd"]).workdir == "/abs"
    (tmp_path / "envctl.yaml").write_text("version: 1\nimage: busybox\n")
    r = subprocess.run([sys.executable, "-m", "envctl", "run", "-w", "rel", "--", "pwd"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60, env={**os.environ, "ENVCTL_HOME": str(tmp_path / "h")})
    assert r.returncode == 2 and "must be an absolute path" in r.stderr, r.stderr
