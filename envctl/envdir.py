"""Where an environment lives: its id and its directory ``$ENVCTL_HOME/envs/<env id>``.

Library code (envctl.workflow, the services modules) and the commands (through
envctl/commands/_enter.py) name an environment's directory through this module. Import-light on
purpose: the warm ``envctl run`` path uses it (no hashlib/OpenSSL, no yaml, no store).
"""

from __future__ import annotations

from pathlib import Path

try:  # the builtin module: hashlib would load OpenSSL (~2.5 ms) on every warm run
    from _sha256 import sha256 as _sha256
except ImportError:  # pragma: no cover - builds without the builtin hash modules
    from hashlib import sha256 as _sha256

__all__ = ["env_id", "env_dir"]


def env_id(spec_path: Path) -> str:
    """Environment id: first 16 hex of sha256(absolute spec path) (CONTRACTS.md)."""
    return _sha256(str(Path(spec_path).absolute()).encode()).hexdigest()[:16]


def env_dir(spec_path: Path) -> Path:
    """The environment directory ``$ENVCTL_HOME/envs/<env id>`` of the spec at ``spec_path`` (Path;
    not created). No yaml/store import: the warm path of ``envctl run``.
    """
    from envctl.settings import envctl_home

    return envctl_home() / "envs" / env_id(spec_path)
