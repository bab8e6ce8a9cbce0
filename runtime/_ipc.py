"""The control channel between the supervisor and the environment's processes.

Built on ``_socket`` directly: ``import socket`` costs ~2 ms of enum conversions on every
``envctl run`` and we need only a SOCK_SEQPACKET pair and SCM_RIGHTS.
"""

from __future__ import annotations

import _socket
import struct

__all__ = ["socketpair", "send_fds", "recv_fds"]


def socketpair():
    """A connected AF_UNIX SOCK_SEQPACKET pair (message boundaries kept), close-on-exec."""
    return _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)


def send_fds(sock, msg: bytes, fds: list[int]) -> None:
    """Send ``msg`` with file descriptors ``fds`` attached (SCM_RIGHTS)."""
    anc = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))] if fds else []
    sock.sendmsg([msg], anc)


def recv_fds(sock, bufsize: int, maxfds: int) -> tuple[bytes, list[int]]:
    """Receive one message and up to ``maxfds`` descriptors; ``(b"", [])`` at EOF."""
    msg, anc, _flags, _addr = sock.recvmsg(bufsize, _socket.CMSG_SPACE(maxfds * 4))
    fds: list[int] = []
    for level, kind, data in anc:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            n = len(data) // 4
            fds.extend(struct.unpack(f"{n}i", data[: n * 4]))
    return msg, fds
