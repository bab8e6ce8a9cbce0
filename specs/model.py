"""The envctl.yaml model: frozen dataclasses, built by specs.load from a validated document.

``to_dict()`` of every class gives the normalised form with the YAML key names and resolved
defaults, so the output of ``envctl validate --json`` is itself a valid envctl.yaml that loads
to an equal model. ``EnvSpec.digest()`` is the sha256 of its canonical JSON: comments,
formatting, key order and equivalent spellings (``debian`` vs ``docker.io/library/debian:latest``,
``2GiB`` vs ``2147483648``) do not change it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from specs.canonical import canonical_digest
from specs.reference import ImageRef

__all__ = ["EnvSpec", "Step", "Mount", "Resources", "Service", "Ready", "Watch", "Cache",
           "format_duration", "DEFAULT_WORKDIR", "STEP_KINDS"]

DEFAULT_WORKDIR = "/workspace"
STEP_KINDS = ("run", "copy", "env", "workdir", "user")
Env = tuple[tuple[str, str], ...]


def format_duration(ms: int) -> str:
    """Milliseconds (int) -> the shortest exact spelling: ``"250ms"``, ``"2s"``, ``"5m"``."""
    if ms and ms % 60000 == 0:
        return f"{ms // 60000}m"
    if ms and ms % 1000 == 0:
        return f"{ms // 1000}s"
    return f"{ms}ms"


def _command(c):
    return list(c) if isinstance(c, tuple) else c


@dataclass(frozen=True)
class Step:
    """One build step (a layer on top of the image).

    Attributes:
        kind: ``"run"``, ``"copy"``, ``"env"``, ``"workdir"`` or ``"user"``.
        run: (run) shell command string, or an exec-form argv tuple.
        src, dest: (copy) source relative to the project, absolute destination in the image.
        owner: (copy) ``user[:group]`` owning the copied files, None = root.
        mode: (copy) permission bits (int, e.g. 0o644), None = keep the source's.
        env: (env) variables set for later steps and the environment, in file order.
        workdir: (workdir) absolute directory for later steps.
        user: (user) user (name or uid[:gid]) for later steps.
        reproducible: False when the step's output is not expected to be byte-identical
            between runs (``apt-get update``); tools then compare by cache key only.
    """

    kind: str
    run: str | tuple[str, ...] | None = None
    src: str | None = None
    dest: str | None = None
    owner: str | None = None
    mode: int | None = None
    env: Env = ()
    workdir: str | None = None
    user: str | None = None
    reproducible: bool = True

    def to_dict(self) -> dict:
        """Normalised mapping in envctl.yaml form (copy always in its mapping form)."""
        if self.kind == "run":
            d: dict = {"run": _command(self.run)}
        elif self.kind == "copy":
            c = {"src": self.src, "dest": self.dest}
            if self.owner is not None:
                c["owner"] = self.owner
            if self.mode is not None:
                c["mode"] = f"{self.mode:04o}"
            d = {"copy": c}
        elif self.kind == "env":
            d = {"env": dict(self.env)}
        else:
            d = {self.kind: getattr(self, self.kind)}
        d["reproducible"] = self.reproducible
        return d


@dataclass(frozen=True)
class Mount:
    """A bind mount from the host into the environment.

    Attributes:
        source: host path as written (``~`` and relative paths are resolved by
            :meth:`resolve_source`, never stored resolved: the spec digest must not depend
            on the machine).
        target: absolute path inside the environment.
        readonly: mount read-only.
    """

    source: str
    target: str
    readonly: bool = False

    def resolve_source(self, project_root: str | Path) -> str:
        """Absolute host path: ``~`` expanded, relative paths taken from ``project_root``."""
        return os.path.normpath(os.path.join(str(project_root), os.path.expanduser(self.source)))

    def to_dict(self) -> dict:
        """Normalised spec form (dict): ``{"source": str, "target": str, "readonly": bool}``."""
        return {"source": self.source, "target": self.target, "readonly": self.readonly}


@dataclass(frozen=True)
class Resources:
    """Limits for the environment's cgroup (None = unlimited).

    Attributes:
        memory: bytes (int).
        cpus: number of CPUs (float, e.g. 1.5 = 150 ms per 100 ms period).
        pids: maximum number of processes (int).
    """

    memory: int | None = None
    cpus: float | None = None
    pids: int | None = None

    def to_dict(self) -> dict:
        """Normalised spec form (dict) of the set limits only: memory (int bytes), cpus (float), pids (int).
        """
        return {k: v for k, v in (("memory", self.memory), ("cpus", self.cpus), ("pids", self.pids))
                if v is not None}


@dataclass(frozen=True)
class Ready:
    """How to tell that a service is ready (its dependents wait for it).

    Attributes:
        kind: ``"port"`` (TCP connect), ``"http"`` (GET answers 2xx/3xx) or ``"command"`` (exit 0).
        port: (port) TCP port on 127.0.0.1 inside the environment.
        http: (http) URL, or a path such as ``/health`` on ``port``.
        command: (command) shell command string or argv tuple run inside the environment.
        timeout_ms: give up after this many milliseconds (int).
        interval_ms: poll interval in milliseconds (int).
    """

    kind: str
    port: int | None = None
    http: str | None = None
    command: str | tuple[str, ...] | None = None
    timeout_ms: int = 30000
    interval_ms: int = 100

    def to_dict(self) -> dict:
        """Normalised spec form (dict): port/http/command when set; timeout and interval as
        duration strings (from milliseconds, via ``format_duration``).
        """
        d: dict = {}
        if self.port is not None:
            d["port"] = self.port
        if self.http is not None:
            d["http"] = self.http
        if self.command is not None:
            d["command"] = _command(self.command)
        d["timeout"] = format_duration(self.timeout_ms)
        d["interval"] = format_duration(self.interval_ms)
        return d


@dataclass(frozen=True)
class Watch:
    """Files to watch for a service and what to do when they change.

    Attributes:
        paths: glob patterns relative to the project (``**/*.py``).
        ignore: glob patterns excluded from ``paths``.
        action: ``"restart"`` (stop, start), ``"reload"`` (SIGHUP) or ``"none"`` (log only).
        debounce_ms: quiet time in milliseconds before acting on a burst of changes (int).
        gitignore: also ignore what the project's .gitignore files ignore.
    """

    paths: tuple[str, ...]
    ignore: tuple[str, ...] = ()
    action: str = "restart"
    debounce_ms: int = 100
    gitignore: bool = True

    def to_dict(self) -> dict:
        """Normalised spec form (dict): paths, ignore (lists of str), action, debounce (duration string
        from milliseconds), gitignore (bool).
        """
        return {"paths": list(self.paths), "ignore": list(self.ignore), "action": self.action,
                "debounce": format_duration(self.debounce_ms), "gitignore": self.gitignore}


@dataclass(frozen=True)
class Service:
    """A long-running process inside the environment (``envctl up`` starts it).

    Attributes:
        name: service name (the key under ``services``).
        command: shell command string or exec-form argv tuple.
        env: extra variables, in file order.
        workdir: absolute working directory (None = the environment's workdir).
        depends_on: names of services started (and ready) before this one.
        ready: readiness check, or None (ready as soon as started).
        restart: ``"never"``, ``"on-failure"`` or ``"always"``.
        watch: file watching rule, or None.
    """

    name: str
    command: str | tuple[str, ...]
    env: Env = ()
    workdir: str | None = None
    depends_on: tuple[str, ...] = ()
    ready: Ready | None = None
    restart: str = "never"
    watch: Watch | None = None

    def env_dict(self) -> dict[str, str]:
        """The service's environment as a dict (str -> str), in spec order."""
        return dict(self.env)

    def to_dict(self) -> dict:
        """Normalised spec form (dict): command, env, depends_on, restart; workdir, ready and watch
        only when set.
        """
        d: dict = {"command": _command(self.command), "env": dict(self.env),
                   "depends_on": list(self.depends_on), "restart": self.restart}
        if self.workdir is not None:
            d["workdir"] = self.workdir
        if self.ready is not None:
            d["ready"] = self.ready.to_dict()
        if self.watch is not None:
            d["watch"] = self.watch.to_dict()
        return d


@dataclass(frozen=True)
class Cache:
    """Remote build cache. ``registry``: repository to push/pull step layers (a reference without tag)."""

    registry: str

    def to_dict(self) -> dict:
        """Normalised spec form (dict): ``{"registry": str}`` (the build cache repository reference)."""
        return {"registry": self.registry}


@dataclass(frozen=True)
class EnvSpec:
    """A loaded, validated envctl.yaml (see docs/spec.md for every key).

    Attributes:
        version: spec format version (int).
        image: the base image reference (normalised).
        platforms: ``os/arch[/variant]`` strings, normalised; empty = the host's platform.
        steps: build steps, in order.
        env: environment variables, in file order (see :meth:`env_dict`).
        workdir: absolute directory where the project is mounted (default ``/workspace``).
        mounts: extra bind mounts.
        resources: cgroup limits.
        network: ``"host"`` or ``"none"``.
        shell: shell for ``envctl shell`` (None = ``$SHELL`` of the image, else /bin/sh).
        user: user to run as (None = the image's user).
        cap_add, cap_drop: capability names (``CAP_NET_ADMIN`` form; ``ALL`` allowed).
        services: services, in file order.
        path: the spec file's path.
        raw: the parsed YAML document (for tools; not part of equality or the digest).
        runtime: ``"builtin"``, ``"runc"`` or ``"crun"``.
        cache: remote build cache settings, or None.
    """

    version: int
    image: ImageRef
    platforms: tuple[str, ...] = ()
    steps: tuple[Step, ...] = ()
    env: Env = ()
    workdir: str = DEFAULT_WORKDIR
    mounts: tuple[Mount, ...] = ()
    resources: Resources = Resources()
    network: str = "host"
    shell: str | None = None
    user: str | None = None
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    services: tuple[Service, ...] = ()
    path: Path = Path("envctl.yaml")
    raw: dict = field(default_factory=dict, compare=False, repr=False)
    runtime: str = "builtin"
    cache: Cache | None = None

    def env_dict(self) -> dict[str, str]:
        """``env`` as a dict (file order kept)."""
        return dict(self.env)

    def service(self, name: str) -> Service | None:
        """The service called ``name``, or None."""
        return next((s for s in self.services if s.name == name), None)

    def to_dict(self) -> dict:
        """Normalised, JSON-able mapping in envctl.yaml form (defaults resolved, None omitted)."""
        d: dict = {
            "version": self.version,
            "image": str(self.image),
            "platforms": list(self.platforms),
            "steps": [s.to_dict() for s in self.steps],
            "env": dict(self.env),
            "workdir": self.workdir,
            "mounts": [m.to_dict() for m in self.mounts],
            "resources": self.resources.to_dict(),
            "network": self.network,
            "cap_add": list(self.cap_add),
            "cap_drop": list(self.cap_drop),
            "services": {s.name: s.to_dict() for s in self.services},
            "runtime": self.runtime,
        }
        for key in ("shell", "user"):
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        if self.cache is not None:
            d["cache"] = self.cache.to_dict()
        return d

    def digest(self) -> str:
        """``"sha256:<hex>"`` over the canonical JSON of :meth:`to_dict` (floats as decimal text)."""
        return canonical_digest(_no_floats(self.to_dict()))

    def build_digest(self) -> str:
        """``"sha256:<hex>"`` over only what decides the image and its layers: version, image,
        platforms, steps, and env/workdir/user (visible to steps). Editing services, resources,
        mounts, network, shell, capabilities, runtime or cache leaves it unchanged — a lock
        drift check based on it does not fail CI for a changed service command."""
        d = self.to_dict()
        keys = ("version", "image", "platforms", "steps", "env", "workdir", "user")
        return canonical_digest(_no_floats({k: d[k] for k in keys if k in d}))


def _no_floats(obj):
    """Floats -> their shortest round-trip text (``repr``), identical on every IEEE-754 machine."""
    if isinstance(obj, float):
        return repr(obj)
    if isinstance(obj, dict):
        return {k: _no_floats(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_no_floats(v) for v in obj]
    return obj
