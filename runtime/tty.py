"""Host terminal handling for interactive environments: raw mode (restored), window size, relay."""

from __future__ import annotations

import errno
import fcntl
import os
import select
import struct

__all__ = ["RawMode", "get_winsize", "set_winsize", "relay"]

# <asm-generic/ioctls.h>; termios is imported only for raw mode (not on the non-tty warm path)
TIOCGWINSZ, TIOCSWINSZ = 0x5413, 0x5414


def get_winsize(fd: int) -> tuple[int, int] | None:
    """(rows, cols) of terminal ``fd``, or None when it is not a terminal."""
    try:
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, TIOCGWINSZ, b"\0" * 8))
        return rows, cols
    except OSError:
        return None


def set_winsize(fd: int, size: tuple[int, int] | None) -> None:
    """Set the window size of pty ``fd`` (the kernel then sends SIGWINCH to its foreground group)."""
    if size:
        fcntl.ioctl(fd, TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))


class RawMode:
    """Context manager: put ``fd`` in raw mode when it is a terminal; restore on exit, always."""

    def __init__(self, fd: int = 0):
        self.fd, self.saved = fd, None

    def __enter__(self):
        if os.isatty(self.fd):
            import termios
            import tty as _tty

            self.saved = termios.tcgetattr(self.fd)
            _tty.setraw(self.fd, termios.TCSANOW)
        return self

    def __exit__(self, *exc):
        if self.saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSAFLUSH, self.saved)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        n = os.write(fd, data)
        data = data[n:]


def relay(master: int, *, stdin: int = 0, stdout: int = 1, done=lambda: False) -> None:
    """Copy stdin -> pty master and master -> stdout until the pty is hung up (EIO) or ``done()``."""
    fds = [master, stdin]
    while True:
        try:
            r, _, _ = select.select(fds, [], [], 0.25)
        except InterruptedError:
            continue
        if not r and done():
            return
        if master in r:
            try:
                data = os.read(master, 65536)
            except OSError as e:
                if e.errno in (errno.EIO, errno.EBADF):
                    return
                raise
            if not data:
                return
            _write_all(stdout, data)
        if stdin in r:
            data = os.read(stdin, 65536)
            if not data:
                fds.remove(stdin)  # host stdin closed: send EOF (^D) once, keep reading output
                _write_all(master, b"\x04")
            else:
                _write_all(master, data)
