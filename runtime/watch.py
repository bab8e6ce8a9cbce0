"""Watch the host project directory and turn file events into debounced change sets.

Implements issue 7's "Watching" section:

* one inotify instance (watchdog's ``InotifyFD``) with one watch per *non-ignored* directory:
  ignore rules (:mod:`runtime.watch_ignore`) are applied while walking, before any watch is
  added, so ignored trees cost nothing however large;
* events are coalesced per rule over a debounce window (trailing, default 100 ms, flushed at the
  latest ``max_wait`` after the first event so a file written forever still produces change
  sets); a path that appeared and vanished inside the window (``4913``, ``sedXXXXXX``,
  ``x___jb_tmp___``) is dropped, so one save is one change set whatever the editor does;
* the project is split into *trees* at mount points (a change of ``st_dev``). A tree falls back
  to polling when inotify watches run out (one warning naming ``fs.inotify.max_user_watches``),
  or when a canary file written at start-up produces no event within ``canary_timeout``
  (network and VM filesystems that accept watches and deliver nothing).

Threads: watchdog's reader thread calls :meth:`ProjectWatcher._on_inotify`; one dispatcher thread
calls ``on_change`` (never under a lock); one thread per polled tree.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from dataclasses import dataclass
from typing import Callable

from runtime.watch_ignore import CANARY_PREFIX, IgnoreRules, compile_globs
from runtime.watch_poll import Poller, entries

__all__ = ["WatchRule", "ChangeSet", "ProjectWatcher", "inotify_limit"]

_DIR_MASK = None  # computed lazily (importing watchdog costs ~10 ms; keep `import runtime.watch` cheap)


@dataclass(frozen=True)
class WatchRule:
    """What one consumer (a service, the spec rebuild) wants to hear about.

    Attributes:
        name: identifies the rule in change sets (str), e.g. the service name.
        paths: gitwildmatch globs relative to the project; empty = every file (tuple[str, ...]).
        ignore: globs whose matches are left out (tuple[str, ...]).
        debounce: quiet time in seconds that closes a change set (float, default 0.1).
        gitignore: False reports files even when ``.gitignore`` lists them (``envctl.yaml``,
            copy-step inputs); never-walked trees and editor noise stay ignored.
    """

    name: str
    paths: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    debounce: float = 0.1
    gitignore: bool = True


@dataclass(frozen=True)
class ChangeSet:
    """One debounced batch for one rule: project-relative POSIX ``paths`` (sorted tuple of str);
    ``overflow`` is True when the kernel dropped events and anything may have changed."""

    rule: str
    paths: tuple[str, ...]
    overflow: bool = False


class _RuleState:
    def __init__(self, rule: WatchRule):
        self.rule = rule
        self.include = compile_globs(rule.paths)
        self.exclude = compile_globs(rule.ignore)
        self.pending: dict[str, str] = {}     # rel -> first kind seen in this window
        self.first = self.last = 0.0
        self.overflow = False

    def wants(self, rel: str, git_ignored: bool) -> bool:
        if git_ignored and self.rule.gitignore:
            return False
        if self.include is not None and not self.include.match_file(rel):
            return False
        return self.exclude is None or not self.exclude.match_file(rel)


class _Tree:
    """A part of the project on one filesystem (mount), watched one way."""

    def __init__(self, rel: str, dev: int):
        self.rel, self.dev = rel, dev
        self.mode = "inotify"
        self.poller: Poller | None = None
        self.canary_seen = threading.Event()


class _Exhausted(Exception):
    pass


def inotify_limit() -> int | None:
    """The current ``fs.inotify.max_user_watches`` (int), or None when unreadable."""
    for p in ("/proc/sys/user/max_inotify_watches", "/proc/sys/fs/inotify/max_user_watches"):
        try:
            with open(p) as f:
                return int(f.read())
        except (OSError, ValueError):
            continue
    return None


class ProjectWatcher:
    """Watches ``root`` and calls ``on_change(ChangeSet)`` once per debounced batch per rule.

    Args:
        root: the project directory on the host (str or Path).
        rules: what to report (list of :class:`WatchRule`).
        on_change: called from the dispatcher thread with a :class:`ChangeSet`.
        gitignore: honour ``.gitignore`` (bool).
        ignore: extra globs never walked or reported (iterable of str).
        on_warning: called with one-line warnings (fallback to polling); default: ignored.
        poll_interval: seconds between scans of a polled tree (float).
        max_wait: longest a change set is held while events keep coming (float seconds).
        canary_timeout: how long start() waits for the canary event per tree (float seconds);
            0 disables the canary.
        use_inotify: False polls every tree (bool).

    Errors: :meth:`start` raises ``OSError`` only for an unreadable project root.
    """

    def __init__(self, root, rules, on_change: Callable[[ChangeSet], None], *, gitignore=True,
                 ignore=(), on_warning: Callable[[str], None] | None = None,
                 poll_interval: float = 0.5, max_wait: float = 1.0, canary_timeout: float = 1.0,
                 use_inotify: bool = True):
        self.root = os.path.abspath(os.fspath(root))
        self.ignores = IgnoreRules(self.root, gitignore=gitignore, extra=ignore)
        self._rules = [_RuleState(r) for r in rules]
        self._on_change = on_change
        self._warn = on_warning or (lambda msg: None)
        self.poll_interval, self.max_wait, self.canary_timeout = poll_interval, max_wait, canary_timeout
        self._use_inotify = use_inotify
        self._cond = threading.Condition(threading.RLock())
        self._trees: dict[str, _Tree] = {}
        self._wd_dir: dict[int, str] = {}
        self._dir_wd: dict[str, int] = {}
        self._fd = None
        self._stopped = False
        self._warned_limit = False
        self._dispatcher = threading.Thread(target=self._dispatch_loop, name="envctl-watch-dispatch",
                                            daemon=True)

    # -- public -----------------------------------------------------------------------------
    def start(self) -> None:
        """Walk the project (skipping ignored trees), add watches, check canaries, start threads."""
        st = os.stat(self.root)
        if self._use_inotify:
            self._fd = self._new_inotify()
        root_tree = self._trees.setdefault("", _Tree("", st.st_dev))
        if self._fd is None:
            root_tree.mode = "polling"
        with self._cond:
            self._walk_tree(root_tree)
        self._check_canaries()
        for tree in list(self._trees.values()):
            if tree.mode == "polling" and tree.poller is None:
                self._start_poller(tree)
        self._dispatcher.start()

    def stop(self) -> None:
        """Stop every thread and remove every watch (idempotent)."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
            pollers = [t.poller for t in self._trees.values() if t.poller]
        for p in pollers:
            p.stop()
        if self._fd is not None:
            self._fd.stop()
            self._fd = None
        if self._dispatcher.is_alive() and threading.current_thread() is not self._dispatcher:
            self._dispatcher.join(timeout=5)

    def modes(self) -> dict[str, str]:
        """How each tree is watched: ``{tree rel path: "inotify" | "polling"}`` (``""`` = root)."""
        with self._cond:
            return {rel: t.mode for rel, t in self._trees.items()}

    def watch_count(self) -> int:
        """Number of inotify watches held (int)."""
        with self._cond:
            return len(self._dir_wd)

    # -- inotify ----------------------------------------------------------------------------
    def _new_inotify(self):
        global _DIR_MASK
        from watchdog.observers.inotify_c import InotifyConstants as C, InotifyFD

        _DIR_MASK = (C.IN_CREATE | C.IN_DELETE | C.IN_MODIFY | C.IN_CLOSE_WRITE | C.IN_ATTRIB
                     | C.IN_MOVED_FROM | C.IN_MOVED_TO | C.IN_DELETE_SELF | C.IN_ONLYDIR
                     | C.IN_DONT_FOLLOW | C.IN_EXCL_UNLINK)
        try:
            fd = InotifyFD()
        except OSError as e:   # EMFILE: max_user_instances reached; poll everything
            self._warn(f"cannot create an inotify instance ({e.strerror}); polling the project "
                       f"every {self.poll_interval:g}s (raise fs.inotify.max_user_instances)")
            return None
        fd.start()
        return fd

    def _add_watch(self, rel: str) -> None:
        if rel in self._dir_wd:
            return
        path = os.path.join(self.root, rel) if rel else self.root
        try:
            wd = self._fd.add_callback(os.fsencode(path), _DIR_MASK, self, "envctl")
        except OSError as e:
            if e.errno == errno.ENOSPC:
                raise _Exhausted() from e
            if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.EACCES):
                return       # vanished meanwhile, or unreadable: nothing to watch
            raise
        self._wd_dir[wd] = rel
        self._dir_wd[rel] = wd

    def _forget_dirs(self, prefix: str, rm_watch: bool) -> None:
        gone = [d for d in self._dir_wd if d == prefix or d.startswith(prefix + "/") or prefix == ""]
        for d in gone:
            wd = self._dir_wd.pop(d)
            self._wd_dir.pop(wd, None)
            if rm_watch and self._fd is not None:
                self._fd.remove_callbacks([(wd, "envctl")])

    # watchdog's WatchCallback protocol ------------------------------------------------------
    def on_event(self, event) -> None:
        """watchdog inotify callback: map ``event`` (its wd and name) to a project-relative path,
        walk new directories, and mark the matching watch rules changed. Returns None.
        """
        with self._cond:
            if self._stopped:
                return
            d = self._wd_dir.get(event.wd)
            if d is None or not event.name:
                return
            name = os.fsdecode(event.name)
            rel = f"{d}/{name}" if d else name
            if name.startswith(CANARY_PREFIX):
                tree = self._tree_of(d)
                if tree is not None and tree.rel == d:
                    tree.canary_seen.set()
                return
            self._handle(rel, event)

    def on_watch_deleted(self, wd) -> None:
        """watchdog callback: forget the watch descriptor ``wd`` (int) the kernel removed. Returns None."""
        with self._cond:
            d = self._wd_dir.pop(wd, None)
            if d is not None and self._dir_wd.get(d) == wd:
                del self._dir_wd[d]

    def on_queue_overflow(self) -> None:
        """watchdog callback for IN_Q_OVERFLOW (inotify(7)): events were lost, so re-walk inotify
        trees and mark every rule changed (overflow). Returns None.
        """
        with self._cond:
            for tree in list(self._trees.values()):   # directories made meanwhile need watches
                if tree.mode == "inotify":
                    self._walk_tree(tree)
            now = time.monotonic()
            for rs in self._rules:
                rs.overflow = True
                self._touch(rs, now)
            self._cond.notify_all()

    def _handle(self, rel: str, ev) -> None:
        is_dir = ev.is_directory
        if is_dir:
            if self.ignores.ignored(rel, True):
                return
            if ev.is_create or ev.is_moved_to:
                tree = self._tree_of(rel.rpartition("/")[0])
                self._record(rel, "created")
                if tree is not None and tree.mode == "inotify":
                    self._walk_new_dir(tree, rel)
            elif ev.is_delete or ev.is_moved_from:
                self._forget_dirs(rel, rm_watch=ev.is_moved_from)
                self._record(rel, "deleted")
            return
        kind = "created" if (ev.is_create or ev.is_moved_to) else \
            "deleted" if (ev.is_delete or ev.is_moved_from) else "changed"
        if rel.endswith(".gitignore") and rel.rsplit("/", 1)[-1] == ".gitignore":
            self.ignores.invalidate(rel.rpartition("/")[0])
        self._record(rel, kind)

    def _walk_new_dir(self, tree: _Tree, rel: str) -> None:
        """A directory appeared (mkdir, mv, git checkout): watch it, report files already in it."""
        try:
            for f in self._walk(tree, rel):
                self._record(f, "created")
        except _Exhausted:
            self._fall_back(tree, exhausted=True)

    # -- walking ----------------------------------------------------------------------------
    def _walk_tree(self, tree: _Tree) -> None:
        try:
            list(self._walk(tree, tree.rel))
        except _Exhausted:
            self._fall_back(tree, exhausted=True)

    def _walk(self, tree: _Tree, start: str):
        """Yield files under ``start`` (not ignored); add a watch per directory when inotify.

        A directory on another device starts a new tree (walked on its own)."""
        stack = [start]
        while stack:
            rel = stack.pop()
            if tree.mode == "inotify":
                self._add_watch(rel)
            for child, e in entries(self.root, rel):
                try:
                    is_dir = e.is_dir(follow_symlinks=False)
                except OSError:
                    continue
                if self.ignores.ignored(child, is_dir):
                    continue
                if not is_dir:
                    yield child
                    continue
                dev = e.stat(follow_symlinks=False).st_dev
                if dev != tree.dev:
                    sub = self._trees.setdefault(child, _Tree(child, dev))
                    sub.mode = tree.mode if self._fd is not None else "polling"
                    try:
                        yield from self._walk(sub, child)
                    except _Exhausted:
                        self._fall_back(sub, exhausted=True)
                else:
                    stack.append(child)

    def _tree_of(self, rel: str) -> _Tree | None:
        best = None
        for t in self._trees.values():
            if t.rel == "" or rel == t.rel or rel.startswith(t.rel + "/"):
                if best is None or len(t.rel) > len(best.rel):
                    best = t
        return best

    # -- fallbacks --------------------------------------------------------------------------
    def _fall_back(self, tree: _Tree, *, exhausted: bool) -> None:
        if tree.mode == "polling":
            return
        tree.mode = "polling"
        self._forget_dirs(tree.rel, rm_watch=True)
        where = tree.rel or "the project"
        if exhausted:
            if not self._warned_limit:
                self._warned_limit = True
                self._warn(f"inotify watch limit reached (fs.inotify.max_user_watches={inotify_limit()})"
                           f" while watching {where}; polling it every {self.poll_interval:g}s instead;"
                           " raise it with: sysctl fs.inotify.max_user_watches=524288")
        else:
            self._warn(f"file events from {where} are not delivered (network or VM filesystem?);"
                       f" polling it every {self.poll_interval:g}s instead")
        if self._dispatcher.is_alive():
            self._start_poller(tree)

    def _start_poller(self, tree: _Tree) -> None:
        tree.poller = Poller(self.root, tree.rel, tree.dev, self.ignores, self.poll_interval,
                             self._on_poll)
        tree.poller.start()

    def _on_poll(self, changes) -> None:
        with self._cond:
            for rel, kind in changes:
                self._record(rel, kind)

    def _check_canaries(self) -> None:
        """Write one canary per inotify tree; a tree whose canary makes no event is polled."""
        if self.canary_timeout <= 0:
            return
        made = []
        for tree in list(self._trees.values()):
            if tree.mode != "inotify":
                continue
            path = os.path.join(self.root, tree.rel, f"{CANARY_PREFIX}{os.getpid()}")
            try:
                with open(path, "w"):
                    pass
            except OSError:
                continue     # read-only tree: nothing in it can change from our side either
            made.append((tree, path))
        deadline = time.monotonic() + self.canary_timeout
        for tree, path in made:
            seen = tree.canary_seen.wait(max(0.0, deadline - time.monotonic()))
            try:
                os.unlink(path)
            except OSError:
                pass
            if not seen:
                with self._cond:
                    self._fall_back(tree, exhausted=False)

    # -- coalescing -------------------------------------------------------------------------
    def _record(self, rel: str, kind: str) -> None:
        why = self.ignores.classify(rel, False)
        if why == "hard":
            return
        now = time.monotonic()
        for rs in self._rules:
            if rs.wants(rel, git_ignored=why == "git"):
                rs.pending.setdefault(rel, kind)
                self._touch(rs, now)
        self._cond.notify_all()

    @staticmethod
    def _touch(rs: _RuleState, now: float) -> None:
        rs.first = rs.first or now
        rs.last = now

    def _due(self, rs: _RuleState, now: float) -> float | None:
        if not rs.first:
            return None
        return min(rs.last + rs.rule.debounce, rs.first + self.max_wait) - now

    def _dispatch_loop(self) -> None:
        while True:
            ready = []
            with self._cond:
                while not self._stopped:
                    now = time.monotonic()
                    waits = [w for rs in self._rules if (w := self._due(rs, now)) is not None]
                    ready = [rs for rs in self._rules if (w := self._due(rs, now)) is not None and w <= 0]
                    if ready:
                        break
                    self._cond.wait(min(waits) if waits else None)
                if self._stopped:
                    return
                batches = [self._take(rs) for rs in ready]
            for cs in batches:
                if cs is not None:
                    self._on_change(cs)

    def _take(self, rs: _RuleState) -> ChangeSet | None:
        pending, overflow = rs.pending, rs.overflow
        rs.pending, rs.overflow, rs.first, rs.last = {}, False, 0.0, 0.0
        paths = sorted(rel for rel, first in pending.items()
                       if not (first == "created" and not os.path.lexists(os.path.join(self.root, rel))))
        if not paths and not overflow:
            return None          # only transients (vim 4913, sed's temp file): nothing happened
        return ChangeSet(rs.rule.name, tuple(paths), overflow)
