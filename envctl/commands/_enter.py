"""Shared by run/shell/exec/down/status/bundle: locate the environment and its env.json.

Warm path (``envctl run`` with everything current): find the project, hash envctl.yaml and
envctl.lock bytes, compare with env.json's ``specSha256``/``lockSha256``, take the cached runtime
config — no YAML parser, no HTTP client, no template engine is imported. Only when env.json is
missing or stale is ``envctl.workflow.ensure_up`` (the ``envctl up`` work) called.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from envctl import _fast
from envctl.envdir import env_dir, env_id  # noqa: F401 (env_id: re-exported for the commands)
from specs.errors import EnvctlError, UsageError

try:  # the builtin module: hashlib would load OpenSSL (~2.5 ms) on every warm run
    from _sha256 import sha256 as _sha256
except ImportError:  # pragma: no cover - builds without the builtin hash modules
    from hashlib import sha256 as _sha256

__all__ = ["env_id", "env_dir", "load_env", "current_env", "process_config", "add_run_args", "runtime_name"]


def _sha256_file(path: Path) -> str | None:
    try:
        return _sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def _strip(h: str | None) -> str | None:
    return h.split(":", 1)[1] if h and h.startswith("sha256:") else h


def _is_current(env: dict | None, project) -> bool:
    if not env or not env.get("runtime") or not env.get("rootfs"):
        return False
    return (_strip(env.get("specSha256")) == _sha256_file(project.spec_path)
            and _strip(env.get("lockSha256")) == _sha256_file(project.lock_path)
            and rootfs_present(env["rootfs"]))


def rootfs_present(rootfs) -> bool:
    """True (bool) when the unpacked trees env.json's ``rootfs`` mounts still exist (one stat per
    layer): ``store fsck`` quarantines a changed layer and gc may remove one, and the next
    run/up must then unpack it again instead of failing to mount (QA M4). One implementation,
    shared with the warm path (envctl/_fast.py).
    """
    return _fast._rootfs_present(rootfs)


def _read_env(d: Path) -> dict | None:
    try:
        return json.loads((d / "env.json").read_text())
    except (OSError, ValueError):
        return None


def current_env(args):
    """(project, env dir, env.json dict or None) without bringing anything up."""
    from envctl.project import find_project

    project = find_project(args.project, args.file)
    d = env_dir(project.spec_path)
    return project, d, _read_env(d)


def load_env(args, out) -> tuple[object, Path, dict]:
    """The project, its env dir and a current env.json; runs ``ensure_up`` when stale or missing.

    Raises EnvctlError (from the workflow) when the environment cannot be brought up.
    """
    project, d, env = current_env(args)
    if _is_current(env, project):
        return project, d, env
    try:
        from envctl.workflow import ensure_up
    except ImportError:
        raise EnvctlError(f"environment for {project.display_spec} is not built",
                          hint="run 'envctl up' first") from None
    out.debug("environment missing or stale: bringing it up")
    ensure_up(project, out, locked=bool(getattr(args, "locked", False)), frozen=bool(getattr(args, "frozen", False)))
    env = _read_env(d)
    if not env or not env.get("runtime"):
        raise EnvctlError(f"environment {d.name}: env.json missing after up", hint="run 'envctl up -v'")
    return project, d, env


def process_config(env: dict, argv: list[str], *, tty: bool, cwd: str | None = None,
                   extra_env: list[str] | None = None) -> dict:
    """A full config.json from env.json's cached template: args, terminal, TERM. Checks that the
    cached config fits the current user (rootless iff not root)."""
    cfg = json.loads(json.dumps(env["runtime"]))  # deep copy
    proc = cfg.setdefault("process", {})
    proc["args"] = list(argv)
    proc["terminal"] = tty
    envl = [e for e in proc.get("env", []) if not (tty and e.startswith("TERM="))]
    if tty:
        envl.append(f"TERM={os.environ.get('TERM') or 'xterm'}")
    proc["env"] = envl + list(extra_env or [])
    if cwd:
        proc["cwd"] = cwd
    elif sub := mapped_cwd(cfg):
        proc["cwd"] = sub
    has_user = any(n.get("type") == "user" for n in cfg.get("linux", {}).get("namespaces", []))
    if os.geteuid() != 0 and not has_user:
        raise EnvctlError("environment was prepared for root but envctl runs unprivileged",
                          hint="run 'envctl up' again as this user (each user has its own store)")
    return cfg


def mapped_cwd(cfg: dict) -> str | None:
    """The current directory's place inside the environment when it is a subdirectory of the
    project (str): the project is bind-mounted at the workdir, so ``cd proj/sub && envctl run``
    starts in ``<workdir>/sub``, like ``nix develop``/devbox keep the cwd (QA L8). None when the
    cwd is the project root or outside it (the workdir then). Shared with envctl/_fast.py.
    """
    return _fast._mapped_cwd(cfg)


def runtime_name(cfg: dict) -> str:
    """``ENVCTL_RUNTIME`` or the config annotation ``dev.envctl.runtime``; default ``builtin``."""
    name = os.environ.get("ENVCTL_RUNTIME") or (cfg.get("annotations") or {}).get("dev.envctl.runtime") or "builtin"
    if name not in ("builtin", "runc", "crun"):
        raise UsageError(f"unknown runtime {name}", hint="use builtin, runc or crun")
    return name


class _EnvAction(argparse.Action):
    """``-e``: ``KEY=VALUE`` as given; ``KEY`` alone takes the host's value and is left out when
    the host has none (like ``docker run -e KEY``); an empty KEY is a usage error (the runtime
    would refuse it only after start-up)."""

    def __call__(self, parser, namespace, value, option_string=None):
        items = list(getattr(namespace, self.dest, None) or [])
        key, eq, _ = value.partition("=")
        if not key:
            raise argparse.ArgumentError(self, f"{value!r}: the variable name is empty (expected KEY=VALUE or KEY)")
        if eq:
            items.append(value)
        elif key in os.environ:
            items.append(f"{key}={os.environ[key]}")
        setattr(namespace, self.dest, items)


def _absolute_dir(value: str) -> str:
    """argparse type for ``-w``: an absolute path inside the environment (str). A relative one is
    a usage error (QA L5: it failed later as 'chdir rel: No such file')."""
    if not value.startswith("/"):
        raise argparse.ArgumentTypeError(f"{value!r}: must be an absolute path inside the environment "
                                         f"(e.g. /workspace/{value.lstrip('./') or 'DIR'})")
    return value


def add_run_args(p) -> None:
    """Arguments shared by run/shell/exec."""
    p.add_argument("-e", "--env", action=_EnvAction, default=[], metavar="KEY=VALUE",
                   help="extra environment variable (repeatable); KEY alone passes the host's value")
    p.add_argument("-w", "--workdir", metavar="DIR", type=_absolute_dir,
                   help="working directory inside the environment (absolute; created if missing)")
