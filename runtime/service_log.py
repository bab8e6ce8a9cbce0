"""Service output: prefixed, optionally coloured console lines plus one log file per service.

Like ``docker compose up``: ``web  | listening on :8000``, the name padded to the longest one and
coloured per service on a terminal (``NO_COLOR`` turns colour off). Every line also goes to
``<log_dir>/<name>.log`` (append, kept across restarts), read back by ``envctl logs``.
Supervisor events (restarts, exits, backoff) are written the same way, marked ``[envctl]``.

In the file each line starts with its UTC time, ``2026-12-02T18:45:01.123Z <text>`` (what
``envctl logs --timestamps`` shows; plain ``envctl logs`` strips it), and a new session (a new
``envctl up``) first writes a separator line when the file already holds an earlier session's output.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

__all__ = ["LogSink", "log_path", "COLOURS", "stamp", "split_stamp", "read_lines", "SESSION_MARK"]

# compose's palette order (cyan, yellow, green, magenta, blue, then bright variants)
COLOURS = ("36", "33", "32", "35", "34", "96", "93", "92", "95", "94")


SESSION_MARK = "[envctl] ---- new session"


def stamp(t: float | None = None) -> str:
    """UTC time ``t`` (seconds since the epoch, default now) as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (str)."""
    t = time.time() if t is None else t
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def split_stamp(line: str) -> tuple[str | None, str]:
    """``(stamp, text)`` of one log-file line; ``(None, line)`` for a line written without one."""
    if len(line) >= 25 and line[4] == "-" and line[10] == "T" and line[23] == "Z" and line[24] == " " \
            and line[:4].isdigit():
        return line[:24], line[25:]
    return None, line


def read_lines(path: Path) -> list[tuple[str | None, str]]:
    """Every line of a service log as ``(stamp or None, text)``; [] when the file is missing."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    return [split_stamp(x) for x in text.splitlines()]


def log_path(log_dir: Path, name: str) -> Path:
    """The log file of service ``name`` (Path)."""
    return Path(log_dir) / f"{name}.log"


class LogSink:
    """Fans service output out to the console and the log files.

    Args:
        log_dir: directory for ``<name>.log`` files (created), or None for console only.
        names: all service names (for padding and colour assignment).
        console: text stream for the prefixed lines (default sys.stdout), or None for files only.
        colour: True/False, or None = when ``console`` is a terminal and NO_COLOR is unset.
    """

    def __init__(self, log_dir, names, console=sys.stdout, colour: bool | None = None):
        self.log_dir = Path(log_dir) if log_dir is not None else None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        self.console = console
        if colour is None:
            colour = bool(console is not None and hasattr(console, "isatty") and console.isatty()
                          and not os.environ.get("NO_COLOR"))
        width = max([len(n) for n in names] + [6])
        self._prefix = {}
        for i, n in enumerate(names):
            text = f"{n:<{width}} | "
            self._prefix[n] = f"\x1b[{COLOURS[i % len(COLOURS)]}m{text}\x1b[0m" if colour else text
        self._files: dict[str, object] = {}
        self._lock = threading.Lock()
        self._readers: list[threading.Thread] = []

    def open_pipe(self, name: str) -> int:
        """A write fd for a service's stdout+stderr; a reader thread forwards its lines (int)."""
        r, w = os.pipe2(os.O_CLOEXEC)
        t = threading.Thread(target=self._pump, args=(name, r), name=f"envctl-log-{name}", daemon=True)
        t.start()
        self._readers = [x for x in self._readers if x.is_alive()] + [t]
        return w

    def line(self, name: str, text: str) -> None:
        """Write one line of service output (str, without newline)."""
        with self._lock:
            f = self._file(name)
            if f is not None:
                f.write(f"{stamp()} {text}\n")
                f.flush()
            if self.console is not None:
                try:
                    self.console.write(self._prefix.get(name, f"{name} | ") + text + "\n")
                    self.console.flush()
                except (OSError, ValueError):
                    pass

    def event(self, name: str, text: str) -> None:
        """A supervisor message about service ``name`` (restart, exit, backoff)."""
        self.line(name, f"[envctl] {time.strftime('%H:%M:%S')} {text}")

    def close(self) -> None:
        """Wait briefly for output readers, then close the log files."""
        for t in self._readers:
            t.join(timeout=1.0)
        with self._lock:
            for f in self._files.values():
                f.close()
            self._files.clear()

    def _file(self, name: str):
        if self.log_dir is None:
            return None
        f = self._files.get(name)
        if f is None:
            f = self._files[name] = open(log_path(self.log_dir, name), "a", encoding="utf-8",
                                         errors="replace")
            if f.tell() > 0:  # the file holds an earlier session: mark where this one starts
                f.write(f"{stamp()} {SESSION_MARK} {time.strftime('%Y-%m-%d %H:%M:%S %Z')} ----\n")
        return f

    def _pump(self, name: str, fd: int) -> None:
        buf = b""
        with os.fdopen(fd, "rb", buffering=0) as r:
            while True:
                chunk = r.read(65536)
                if not chunk:
                    break
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for ln in lines:
                    self.line(name, ln.decode("utf-8", "replace").rstrip("\r"))
        if buf:
            self.line(name, buf.decode("utf-8", "replace"))
