"""Finding the project: the directory holding envctl.yaml (searched upwards like git)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from specs.errors import EnvctlError, UsageError

__all__ = ["Project", "find_project", "SPEC_NAME", "LOCK_NAME"]

SPEC_NAME = "envctl.yaml"
LOCK_NAME = "envctl.lock"


@dataclass(frozen=True)
class Project:
    """A located project.

    Attributes:
        root: absolute project directory (Path).
        spec_path: absolute path of the spec file (Path).
        lock_path: absolute path of the lock file beside it (Path).
    """

    root: Path
    spec_path: Path

    @property
    def lock_path(self) -> Path:
        """The lock file beside the spec (Path): ``envctl.lock`` for ``envctl.yaml``, else ``<stem>.lock``."""
        return self.spec_path.with_name(LOCK_NAME if self.spec_path.name == SPEC_NAME
                                        else self.spec_path.stem + ".lock")

    @property
    def display_spec(self) -> str:
        """The spec path relative to the current directory when shorter (for messages)."""
        try:
            rel = os.path.relpath(self.spec_path)
        except ValueError:
            return str(self.spec_path)
        return rel if len(rel) < len(str(self.spec_path)) else str(self.spec_path)


def find_project(directory: str | None = None, file: str | None = None, must_exist: bool = True) -> Project:
    """Locate the project.

    Args:
        directory: ``-C`` value; the search starts there (default: the current directory).
        file: ``-f`` value; an explicit spec file (relative to ``directory``).
        must_exist: raise when no spec is found (else return the start directory).

    Raises:
        UsageError: ``-C`` names no directory, or ``-f`` names no file.
        EnvctlError: no envctl.yaml here or in any parent (with a hint to run ``envctl init``).
    """
    # physical paths (symlinks resolved), as getcwd() gives inside the project: `-C LINK`, `-f
    # LINK/envctl.yaml` and `cd LINK` are one project with one env id (QA M3); the -f file keeps its
    # own name so `dev.yaml -> shared.yaml` still locks to dev.lock. envctl/_fast.py mirrors this.
    start = Path(directory).resolve() if directory else Path.cwd()
    if directory and not start.is_dir():
        if start.exists():
            raise UsageError(f"-C {directory}: not a directory",
                             hint="-C takes the project directory; use -f for a spec file")
        raise UsageError(f"-C {directory}: no such directory")
    if file:
        spec = (start / file).absolute()
        spec = spec.parent.resolve() / spec.name
        if must_exist and not spec.is_file():
            if spec.is_dir():
                raise UsageError(f"-f {file}: is a directory",
                                 hint="-f takes the spec file (e.g. DIR/envctl.yaml); use -C for a directory")
            raise UsageError(f"-f {file}: no such file", hint="check the path, or run 'envctl init'")
        return Project(spec.parent, spec)
    for d in [start, *start.parents]:
        candidate = d / SPEC_NAME
        if candidate.is_file():
            return Project(d, candidate)
    if must_exist:
        raise EnvctlError(f"no {SPEC_NAME} in {start} or any parent directory",
                          hint="run 'envctl init' to create one, or pass -C DIR / -f FILE")
    return Project(start, start / SPEC_NAME)
