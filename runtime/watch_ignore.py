"""Ignore rules for the project watcher, applied *before* a directory is walked or watched.

Three layers, checked in this order (issue 7, "ignore rules are applied before watches are
added"):

1. trees that are never walked, whatever ``.gitignore`` says: VCS metadata (``.git`` always),
   dependency and tool caches (``node_modules``, ``.venv``, ``__pycache__`` ...);
2. editor noise: swap/backup/safe-write temporaries and vim's ``4913`` write probe, and our own
   canary file. They never make a change set, even when they survive the debounce window
   (``:set backup`` keeps ``file~``);
3. ``.gitignore`` files (the root one, nested ones as they are met, and ``.git/info/exclude``),
   matched with pathspec's ``GitIgnoreSpec`` (git's wildmatch semantics, including negation
   inside one file). Unless turned off.

A nested ``!pattern`` cannot re-include what a parent ``.gitignore`` excluded: like git, an
excluded directory is never entered, so nothing below it is seen.
"""

from __future__ import annotations

import os
import re

__all__ = ["IgnoreRules", "NEVER_WALK", "is_editor_noise", "CANARY_PREFIX", "compile_globs"]

NEVER_WALK = frozenset({
    ".git", ".hg", ".svn", ".jj", "node_modules", ".venv", "venv", "__pycache__", ".mypy_cache",
    ".pytest_cache", ".ruff_cache", ".tox", ".nox", ".direnv", ".idea", ".vscode", ".cache",
    ".gradle", ".terraform",
})
CANARY_PREFIX = ".envctl-canary-"

# vim's writability probe: 4913, then +123 while the name exists (vim fileio.c, buf_write()).
_VIM_PROBE_BASE, _VIM_PROBE_STEP = 4913, 123
_NOISE = re.compile(
    r"""^(?:
        \..*\.sw[a-p]            # vim swap files .x.swp .x.swo ... (vim tries swp..swa)
      | .*~                      # vim/emacs backups
      | \.\#.*                   # emacs lock symlinks
      | \#.*\#                   # emacs auto-save
      | .*___jb_(?:tmp|old|bak)___   # JetBrains safe-write
      | \.goutputstream-.*       # GTK (gedit) atomic save
      | .*\.kate-swp             # kate
      | \.\~lock\..*\#           # LibreOffice lock
      | \.DS_Store
      | \.envctl-canary-.*       # ours
    )$""", re.X)


def is_editor_noise(name: str) -> bool:
    """True when a file's base name (str) is an editor temporary or our canary, never a change."""
    if name.isdigit():
        n = int(name)
        return n >= _VIM_PROBE_BASE and (n - _VIM_PROBE_BASE) % _VIM_PROBE_STEP == 0 and n < 100_000
    return bool(_NOISE.match(name))


def compile_globs(patterns):
    """A pathspec matcher for project-relative gitwildmatch globs (``**/*.py``), or None if empty."""
    if not patterns:
        return None
    import pathspec

    return pathspec.GitIgnoreSpec.from_lines(list(patterns))


class IgnoreRules:
    """Decides whether a project-relative path is ignored.

    Args:
        root: absolute project directory (str).
        gitignore: honour ``.gitignore`` files and ``.git/info/exclude`` (bool).
        extra: more gitwildmatch patterns relative to the project, ignored everywhere (iterable of str).

    Paths are POSIX-style and relative to ``root``; ``""`` is the root itself.
    """

    def __init__(self, root: str, *, gitignore: bool = True, extra=()):
        self.root = root
        self.gitignore = gitignore
        self._extra = compile_globs(extra)
        self._specs: dict[str, object | None] = {}   # dir rel -> GitIgnoreSpec or None

    def invalidate(self, dir_rel: str) -> None:
        """Forget the parsed ``.gitignore`` of ``dir_rel`` (after it changed)."""
        self._specs.pop(dir_rel, None)
        if dir_rel == "":
            self._specs.pop("\0exclude", None)

    def ignored(self, rel: str, is_dir: bool) -> bool:
        """True when ``rel`` (str, project-relative) must not be walked, watched or reported."""
        return self.classify(rel, is_dir) is not None

    def classify(self, rel: str, is_dir: bool) -> str | None:
        """Why ``rel`` is ignored: ``"hard"`` (never walked, editor noise, extra globs),
        ``"git"`` (only ``.gitignore`` says so), or None (not ignored)."""
        name = rel.rsplit("/", 1)[-1]
        if is_dir and name in NEVER_WALK:
            return "hard"
        if not is_dir and is_editor_noise(name):
            return "hard"
        if self._extra is not None and self._extra.match_file(rel + "/" if is_dir else rel):
            return "hard"
        if self.gitignore and self._git_ignored(rel, is_dir):
            return "git"
        return None

    def _git_ignored(self, rel: str, is_dir: bool) -> bool:
        exclude = self._spec_for("\0exclude")
        if exclude is not None and exclude.match_file(rel + "/" if is_dir else rel):
            return True
        parts = rel.split("/")
        for i in range(len(parts)):     # the root's .gitignore first, then nested ones
            base = "/".join(parts[:i])
            spec = self._spec_for(base)
            if spec is None:
                continue
            sub = "/".join(parts[i:])
            if spec.match_file(sub + "/" if is_dir else sub):
                return True
        return False

    def _spec_for(self, dir_rel: str):
        if dir_rel in self._specs:
            return self._specs[dir_rel]
        if dir_rel == "\0exclude":
            path = os.path.join(self.root, ".git", "info", "exclude")
        else:
            path = os.path.join(self.root, dir_rel, ".gitignore")
        spec = None
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                lines = f.read().splitlines()
        except OSError:
            lines = []
        if any(ln.strip() and not ln.startswith("#") for ln in lines):
            import pathspec

            spec = pathspec.GitIgnoreSpec.from_lines(lines)
        self._specs[dir_rel] = spec
        return spec
