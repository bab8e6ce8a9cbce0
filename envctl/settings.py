"""User settings: where the store lives, and environment-variable knobs.

``ENVCTL_HOME`` wins; otherwise ``/var/lib/envctl`` for root and
``$XDG_DATA_HOME/envctl`` (default ``~/.local/share/envctl``) for everyone else.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["envctl_home", "config_dir"]


def envctl_home() -> Path:
    """The store root (Path, not created here)."""
    if v := os.environ.get("ENVCTL_HOME"):
        return Path(v).absolute()
    if os.geteuid() == 0:
        return Path("/var/lib/envctl")
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(data) / "envctl"


def config_dir() -> Path:
    """User configuration directory: ``$XDG_CONFIG_HOME/envctl`` (default ``~/.config/envctl``)."""
    if v := os.environ.get("ENVCTL_CONFIG_DIR"):
        return Path(v)
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "envctl"
