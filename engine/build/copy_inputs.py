"""Inputs of ``copy`` steps: which project files a step copies, where to, honouring ``.envctlignore``.

The same list feeds the cache key (content + mode of every copied file) and the copy itself, so
the key can never miss a file the step really copies.

``.envctlignore`` follows .gitignore's rules in their common subset: blank lines and ``#``
comments skipped, ``!`` re-includes, a trailing ``/`` matches directories only, a ``/`` at the
start or in the middle anchors the pattern at the project root, ``*`` and ``?`` stay inside one
path component, ``**`` spans components. The last matching pattern wins.
"""

from __future__ import annotations

import glob
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from engine.errors import BuildError

__all__ = ["IgnoreRules", "CopyItem", "collect_copy", "IGNORE_FILE"]

IGNORE_FILE = ".envctlignore"


def _translate(pattern: str) -> str:
    """gitignore glob -> regex over a '/'-joined relative path."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("/**", i) and i + 3 == len(pattern):
            out.append("/.*")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        out.append({"*": "[^/]*", "?": "[^/]"}.get(c, re.escape(c)))
        i += 1
    return "".join(out)


@dataclass(frozen=True)
class _Rule:
    regex: re.Pattern
    negate: bool
    dir_only: bool


class IgnoreRules:
    """Parsed ``.envctlignore`` rules.

    Args:
        lines: the file's lines (str).
    """

    def __init__(self, lines: list[str]):
        self.rules: list[_Rule] = []
        for raw in lines:
            line = raw.rstrip("\n").rstrip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            line = line[1:] if negate else line
            dir_only = line.endswith("/")
            line = line.rstrip("/")
            anchored = "/" in line
            body = _translate(line.lstrip("/"))
            regex = re.compile(("" if anchored else "(?:.*/)?") + body + "(?:/.*)?")
            self.rules.append(_Rule(regex, negate, dir_only))

    @classmethod
    def load(cls, project_root: Path) -> "IgnoreRules":
        """Rules from ``project_root/.envctlignore`` (none when the file does not exist)."""
        path = Path(project_root) / IGNORE_FILE
        try:
            return cls(path.read_text().splitlines())
        except FileNotFoundError:
            return cls([])

    def ignored(self, rel: str, is_dir: bool) -> bool:
        """True when the project-relative path ``rel`` ('/'-separated) is excluded."""
        result = False
        for rule in self.rules:
            if rule.dir_only and not is_dir and not _has_dir_match(rule, rel):
                continue
            if rule.regex.fullmatch(rel):
                result = not rule.negate
        return result


def _has_dir_match(rule: _Rule, rel: str) -> bool:
    """A dir-only rule matches a file when it matches one of the file's parent directories."""
    parts = rel.split("/")[:-1]
    return any(rule.regex.fullmatch("/".join(parts[: i + 1])) for i in range(len(parts)))


@dataclass(frozen=True)
class CopyItem:
    """One path a copy step writes.

    Attributes:
        source: absolute host path inside the project (str).
        rel: project-relative source path, '/'-separated (str) — part of the cache key.
        dest: absolute destination inside the environment (str), normalised.
        kind: ``"file"``, ``"dir"`` or ``"symlink"``.
        mode: permission bits of the source without group/other write (int).
    """

    source: str
    rel: str
    dest: str
    kind: str
    mode: int


def _inside(root: str, path: str) -> bool:
    real = os.path.realpath(path)
    return real == root or real.startswith(root + os.sep)


def _expand(root: str, pattern: str) -> list[str]:
    if os.path.isabs(pattern) or ".." in Path(pattern).parts:
        raise BuildError(f"copy {pattern}: source leaves the project directory",
                         hint="copy sources are paths or globs relative to the project root")
    matches = sorted(glob.glob(os.path.join(glob.escape(root), pattern), recursive=True))
    if not matches:
        raise BuildError(f"copy {pattern}: no such file in the project {root}")
    for m in matches:
        if not _inside(root, m):
            raise BuildError(f"copy {pattern}: {os.path.relpath(m, root)} resolves outside the project",
                             hint="a symlink in the project points outside it; copy the target instead")
    return matches


def _item(root: str, path: str, dest: str) -> CopyItem:
    st = os.lstat(path)
    kind = "dir" if stat.S_ISDIR(st.st_mode) else "symlink" if stat.S_ISLNK(st.st_mode) else "file"
    if kind == "file" and not stat.S_ISREG(st.st_mode):
        raise BuildError(f"copy {os.path.relpath(path, root)}: not a regular file, directory or symlink")
    # group/other write dropped (docs/spec.md copy.mode): the checkout's umask must not change the layer
    return CopyItem(path, os.path.relpath(path, root).replace(os.sep, "/"), dest, kind,
                    stat.S_IMODE(st.st_mode) & ~0o022)


def _walk_dir(root: str, top: str, dest: str, rules: IgnoreRules) -> list[CopyItem]:
    items = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        keep = []
        for name in dirnames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            if rules.ignored(rel, not os.path.islink(full)):
                continue
            if os.path.islink(full):
                items.append(_item(root, full, os.path.join(dest, os.path.relpath(full, top))))
                continue
            keep.append(name)
            items.append(_item(root, full, os.path.join(dest, os.path.relpath(full, top))))
        dirnames[:] = keep
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            if not rules.ignored(os.path.relpath(full, root).replace(os.sep, "/"), False):
                items.append(_item(root, full, os.path.join(dest, os.path.relpath(full, top))))
    return items


def collect_copy(project_root: str | os.PathLike, sources: list[str], dest: str, workdir: str = "/",
                 rules: IgnoreRules | None = None) -> list[CopyItem]:
    """Everything a ``copy: SRC... DEST`` step copies, sorted by destination.

    Semantics follow a Containerfile ``COPY``: a directory source copies its contents; a
    destination ending in ``/`` (or several sources, or a glob) is a directory; a relative destination is
    relative to ``workdir``.

    Args:
        project_root: the project directory (only paths inside it may be copied).
        sources: paths or globs relative to the project root.
        dest: destination path in the environment.
        workdir: the working directory at this step (str, absolute).
        rules: ignore rules (default: the project's ``.envctlignore``).

    Returns:
        list[CopyItem] sorted by ``dest``.

    Raises:
        BuildError: a source is absolute, uses ``..``, resolves outside the project, or matches nothing.
    """
    root = os.path.realpath(project_root)
    rules = IgnoreRules.load(Path(root)) if rules is None else rules
    target = os.path.normpath(os.path.join(workdir, dest))
    matches = [m for p in sources for m in _expand(root, p)]
    as_dir = dest.endswith("/") or len(matches) > 1 or len(sources) > 1 or any(map(glob.has_magic, sources))
    items: list[CopyItem] = []
    for m in matches:
        rel = os.path.relpath(m, root).replace(os.sep, "/")
        isdir = os.path.isdir(m) and not os.path.islink(m)
        if rel != "." and rules.ignored(rel, isdir):
            continue
        if isdir:
            items.extend(_walk_dir(root, m, target, rules))
        else:
            items.append(_item(root, m, os.path.join(target, os.path.basename(m)) if as_dir else target))
    return sorted(items, key=lambda i: i.dest)
