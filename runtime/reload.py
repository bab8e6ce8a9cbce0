"""Hot reload: connect the project watcher's change sets to the supervisor and to rebuilds.

One :class:`~runtime.watch.WatchRule` per service with a ``watch`` (action ``restart``;
``reload`` sends SIGHUP to the service's process group instead; ``rebuild`` also reruns the
environment's steps first; ``none`` only watches), plus one rule for
the environment's own inputs (``envctl.yaml``, ``envctl.lock``, files read by ``copy`` steps).
A change there calls ``rebuild(paths)``; when it returns True every service restarts, when it
returns False (a broken ``envctl.yaml``: the callback has printed the error) the old services
keep running.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Callable

from runtime.watch import ChangeSet, ProjectWatcher, WatchRule

__all__ = ["ServiceWatch", "Reloader", "REBUILD_RULE", "describe_change"]

REBUILD_RULE = "\0environment"


@dataclass(frozen=True)
class ServiceWatch:
    """A service's ``watch:`` block.

    Attributes:
        paths: globs relative to the project (tuple of str; empty = every file).
        ignore: globs left out (tuple of str).
        action: ``"restart" | "reload" | "rebuild" | "none"``.
        debounce: seconds (float, default 0.1).
        gitignore: False also reports files that ``.gitignore`` lists.
    """

    paths: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    action: str = "restart"
    debounce: float = 0.1
    gitignore: bool = True


def describe_change(cs: ChangeSet) -> str:
    """``src/app.py changed`` / ``src/a.py and 3 more changed`` / ``events lost`` (str)."""
    if not cs.paths:
        return "file events were lost; assuming everything changed"
    more = f" and {len(cs.paths) - 1} more" if len(cs.paths) > 1 else ""
    return f"{cs.paths[0]}{more} changed"


class Reloader:
    """Owns a :class:`ProjectWatcher` and turns its change sets into restarts and rebuilds.

    Args:
        root: host project directory (str or Path).
        supervisor: a :class:`runtime.services.Supervisor`.
        watches: ``{service name: ServiceWatch}`` for services that have a ``watch`` block.
        rebuild: ``rebuild(paths) -> bool`` (rebuild affected steps; False keeps the old
            environment), or None when nothing can be rebuilt.
        rebuild_paths: the environment's inputs, project-relative (tuple of str).
        gitignore: honour ``.gitignore`` (bool).
        on_warning: one-line warnings (fallback to polling).
        watcher_options: passed to ProjectWatcher (poll_interval, canary_timeout, ...).
    """

    def __init__(self, root, supervisor, watches: dict[str, ServiceWatch], *,
                 rebuild: Callable[[tuple[str, ...]], bool] | None = None, rebuild_paths=(),
                 gitignore: bool = True, on_warning=None, **watcher_options):
        self.supervisor = supervisor
        self.watches = watches
        self.rebuild = rebuild
        rules = [WatchRule(name, tuple(w.paths), tuple(w.ignore), w.debounce, w.gitignore)
                 for name, w in watches.items()]
        if rebuild is not None and rebuild_paths:
            rules.append(WatchRule(REBUILD_RULE, tuple(rebuild_paths), debounce=0.2, gitignore=False))
        self.change_sets = 0
        self.watcher = ProjectWatcher(root, rules, self._on_change, gitignore=gitignore,
                                      on_warning=on_warning, **watcher_options)

    def start(self) -> None:
        """Start watching (walks the project; see ProjectWatcher.start)."""
        self.watcher.start()

    def stop(self) -> None:
        """Stop watching."""
        self.watcher.stop()

    def _on_change(self, cs: ChangeSet) -> None:
        self.change_sets += 1
        why = describe_change(cs)
        if cs.rule == REBUILD_RULE:
            if self.rebuild(cs.paths):
                self.supervisor.restart(None, reason=f"environment rebuilt: {why}")
            return
        action = self.watches[cs.rule].action
        if action == "none":
            return
        if action == "reload":
            self.supervisor.signal([cs.rule], signal.SIGHUP, reason=why)
            return
        if action == "rebuild" and self.rebuild is not None and not self.rebuild(cs.paths):
            return
        self.supervisor.restart([cs.rule], reason=why)
