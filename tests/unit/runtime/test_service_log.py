"""runtime.service_log: compose-style prefixes, colour only on a terminal, log files kept."""

from __future__ import annotations

import io
import os

from runtime.service_log import LogSink


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_plain_prefix_when_not_a_terminal_and_log_file(tmp_path):
    out = io.StringIO()
    sink = LogSink(tmp_path, ["web", "database"], console=out)
    sink.line("web", "hello")
    sink.close()
    assert out.getvalue() == "web      | hello\n"
    assert (tmp_path / "web.log").read_text() == "hello\n"


def test_colour_on_a_terminal_unless_no_color(tmp_path, monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = Tty()
    LogSink(None, ["web", "db"], console=out).line("db", "x")
    assert out.getvalue() == "\x1b[33mdb     | \x1b[0mx\n"
    monkeypatch.setenv("NO_COLOR", "1")
    out = Tty()
    LogSink(None, ["web"], console=out).line("web", "x")
    assert out.getvalue() == "web    | x\n"


def test_pipe_lines_are_split_and_partial_last_line_kept(tmp_path):
    out = io.StringIO()
    sink = LogSink(tmp_path, ["web"], console=out)
    w = sink.open_pipe("web")
    os.write(w, b"one\ntw")
    os.write(w, b"o\r\nthree")
    os.close(w)
    sink.close()
    assert (tmp_path / "web.log").read_text() == "one\ntwo\nthree\n"
