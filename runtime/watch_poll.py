"""Polling fallback for one tree of the project: scan, compare with the last scan, report.

Used when inotify cannot serve a tree (watch limit reached, or a filesystem that accepts watches
but delivers no events). The scan honours the same :class:`~runtime.watch_ignore.IgnoreRules`
as the inotify walk, and does not cross into another filesystem (that is another tree).
"""

from __future__ import annotations

import os
import threading

__all__ = ["Poller", "scan", "entries"]


def scan(root: str, start: str, dev: int, ignores) -> dict[str, tuple]:
    """Stat every non-ignored entry below ``start`` on device ``dev``.

    Args:
        root: absolute project directory (str).
        start: project-relative tree root (str, ``""`` for the project).
        dev: the tree's ``st_dev`` (int); directories on another device are not entered.
        ignores: an IgnoreRules.

    Returns:
        ``{rel: (mtime_ns, size, inode, mode)}`` for files and directories (dict).
    """
    out: dict[str, tuple] = {}
    stack = [start]
    while stack:
        for child, e in entries(root, stack.pop()):
            try:
                st = e.stat(follow_symlinks=False)
                is_dir = e.is_dir(follow_symlinks=False)
            except OSError:
                continue
            why = ignores.classify(child, is_dir)
            if why == "hard" or (why and is_dir):    # git-ignored files: the rules decide
                continue
            out[child] = (st.st_mtime_ns, st.st_size, st.st_ino, st.st_mode)
            if is_dir and st.st_dev == dev:
                stack.append(child)
    return out


def entries(root: str, rel: str):
    """Yield ``(child_rel, os.DirEntry)`` for each entry of the project directory ``rel``.

    Args:
        root: absolute project directory (str).
        rel: project-relative directory (str, ``""`` for the project itself).

    Yields nothing when the directory cannot be listed (gone, or no permission: OSError is
    swallowed; a watcher sees such races all the time). ``child_rel`` is ``rel/name``.
    """
    try:
        it = os.scandir(os.path.join(root, rel) if rel else root)
    except OSError:
        return
    with it:
        for e in it:
            yield (f"{rel}/{e.name}" if rel else e.name), e


class Poller:
    """A thread that rescans one tree every ``interval`` seconds and reports differences.

    Args:
        root, start, dev, ignores: as for :func:`scan`.
        interval: seconds between scans (float).
        report: called with a list of ``(rel, kind)``, kind ``"created" | "changed" | "deleted"``.
    """

    def __init__(self, root, start, dev, ignores, interval, report):
        self._args = (root, start, dev, ignores)
        self._interval = interval
        self._report = report
        self._stop = threading.Event()
        self._snap = scan(*self._args)
        self._thread = threading.Thread(target=self._loop, name=f"envctl-poll-{start or '.'}", daemon=True)

    def start(self) -> None:
        """Start the polling thread. Returns None."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the polling thread and wait for it (at most 5 seconds; not when called from it). Returns None.
        """
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            new = scan(*self._args)
            old, self._snap = self._snap, new
            changes = [(r, "created") for r in new.keys() - old.keys()]
            changes += [(r, "deleted") for r in old.keys() - new.keys()]
            changes += [(r, "changed") for r in new.keys() & old.keys()
                        if new[r] != old[r] and not os.path.isdir(os.path.join(self._args[0], r))]
            if changes:
                self._report(changes)
