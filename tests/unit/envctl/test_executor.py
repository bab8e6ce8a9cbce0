"""envctl.executor, which runs build steps through the runtime: the step-output capture echoes a
step's last output before it restores stderr (closing the saved stderr first lost that output,
printed a thread traceback (EBADF), or wrote it to whatever file reused the descriptor); a
``user:`` step naming a user missing from the image's /etc/passwd is a BuildError naming the step
(not an internal ValueError)."""

import os
import threading
import time

import pytest

from engine.build.steps import RunRequest
from engine.errors import BuildError
from envctl import executor
from envctl.executor import RuntimeExecutor


def test_last_output_is_echoed_before_stderr_is_restored(monkeypatch, capfd):
    errors = []
    monkeypatch.setattr(threading, "excepthook", lambda a: errors.append(a.exc_value))
    real_write = os.write

    def slow_echo(fd, data):  # the pump thread echoes late, after the step has ended
        if threading.current_thread() is not threading.main_thread():
            time.sleep(0.2)
        return real_write(fd, data)

    monkeypatch.setattr(executor.os, "write", slow_echo)
    with executor._Capture(echo=True) as cap:
        real_write(1, b"first line\nlast line of the step\n")
    monkeypatch.setattr(executor.os, "write", real_write)
    assert errors == []
    assert list(cap.tail) == ["first line", "last line of the step"]
    assert "last line of the step" in capfd.readouterr().err


def test_unknown_step_user_is_a_build_error(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    ex = RuntimeExecutor(network="host", rootless=False)
    rootfs = {"driver": "copy", "path": str(tmp_path)}
    with pytest.raises(BuildError, match="build step 3: user nosuchuser not found") as e:
        ex._config(RunRequest(("id",), (), "/", "nosuchuser", rootfs, "host", 2))
    assert "uid[:gid]" in e.value.hint
    assert ex._config(RunRequest(("id",), (), "/", "root", rootfs, "host", 2))["process"]["user"]["uid"] == 0
