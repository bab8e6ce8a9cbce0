"""runtime.service_log: compose-style prefixes, colour only on a terminal, log files kept."""

from __future__ import annotations

import io
import os

import re

from runtime.service_log import SESSION_MARK, LogSink, read_lines, split_stamp

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z $")


def _texts(path):
    """The lines of a log file without their stamps, checking that each has one."""
    lines = path.read_text().splitlines()
    for line in lines:
        assert STAMP.match(line[:25]), line
    return [line[25:] for line in lines]


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_plain_prefix_when_not_a_terminal_and_log_file(tmp_path):
    out = io.StringIO()
    sink = LogSink(tmp_path, ["web", "database"], console=out)
    sink.line("web", "hello")
    sink.close()
    assert out.getvalue() == "web      | hello\n"
    assert _texts(tmp_path / "web.log") == ["hello"]


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
    assert _texts(tmp_path / "web.log") == ["one", "two", "three"]


def test_each_line_is_stamped_and_a_new_session_is_marked(tmp_path):
    first = LogSink(tmp_path, ["web"], console=None)
    first.line("web", "2026-01-01T00:00:00.000Z looks like a stamp")
    first.close()
    assert not any(SESSION_MARK in t for t in _texts(tmp_path / "web.log"))
    second = LogSink(tmp_path, ["web"], console=None)
    second.line("web", "again")
    second.close()
    texts = _texts(tmp_path / "web.log")
    assert texts[0] == "2026-01-01T00:00:00.000Z looks like a stamp"   # the service's own text kept
    assert texts[1].startswith(SESSION_MARK) and texts[2] == "again"
    assert [t for _, t in read_lines(tmp_path / "web.log")] == texts


def test_lines_without_a_stamp_are_read_as_text():
    assert split_stamp("plain line") == (None, "plain line")
    assert split_stamp("2026-12-02T18:45:01.123Z hi") == ("2026-12-02T18:45:01.123Z", "hi")
