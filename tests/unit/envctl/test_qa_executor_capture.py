"""Regression (QA defect list): the build-step output capture closed the saved stderr before its
echo thread had written the last block, so a step's final output could be lost, printed as a
thread traceback (EBADF), or written to whatever file reused the descriptor."""

import os
import threading
import time

from envctl import executor


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
