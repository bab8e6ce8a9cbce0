"""Regression (QA defect list): a ``user:`` step naming a user missing from the image's
/etc/passwd ended ``envctl up`` with "internal error: ValueError"; now a BuildError naming the step."""

import pytest

from engine.build.steps import RunRequest
from engine.errors import BuildError
from envctl.executor import RuntimeExecutor


def test_unknown_step_user_is_a_build_error(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    ex = RuntimeExecutor(network="host", rootless=False)
    rootfs = {"driver": "copy", "path": str(tmp_path)}
    with pytest.raises(BuildError, match="build step 3: user nosuchuser not found") as e:
        ex._config(RunRequest(("id",), (), "/", "nosuchuser", rootfs, "host", 2))
    assert "uid[:gid]" in e.value.hint
    assert ex._config(RunRequest(("id",), (), "/", "root", rootfs, "host", 2))["process"]["user"]["uid"] == 0
