"""Start-up stays light: `envctl --version` / `--help` import no heavy dependency
(checked with `python -X importtime`, as the issue asks), and loading a spec imports yaml
but not httpx, jinja2, watchdog or zstandard — nor jsonschema unless the spec is invalid."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
HEAVY = {"httpx", "jinja2", "watchdog", "zstandard", "jsonschema", "yaml", "cffi", "referencing", "rpds"}


def imported(argv: list[str], cwd: Path) -> set[str]:
    """Top-level module names imported by ``python -X importtime -m envctl ARGV``."""
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "envctl", *argv], cwd=cwd,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    names = set()
    for line in r.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    assert "envctl" in names  # the probe works
    return names


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["version"]])
def test_version_and_help_import_nothing_heavy(argv, tmp_path):
    assert not imported(argv, tmp_path) & HEAVY


def test_loading_a_spec_imports_only_what_it_needs(tmp_path):
    (tmp_path / "envctl.yaml").write_text("version: 1\nimage: debian\n")
    names = imported(["validate"], tmp_path)
    assert "yaml" in names
    assert not names & {"httpx", "jinja2", "watchdog", "zstandard", "jsonschema"}


def test_invalid_spec_loads_jsonschema_to_explain(tmp_path):
    (tmp_path / "envctl.yaml").write_text("version: 1\nimage: debian\nimgae: x\n")
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "envctl", "validate"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "| jsonschema\n" in r.stderr and "did you mean 'image'" in r.stderr


def test_version_flag_imports_only_the_entry(tmp_path):
    """`envctl --version` is answered by the fast entry: no argparse, no CLI module, no specs."""
    names = imported(["--version"], tmp_path)
    assert not names & {"argparse", "specs", "gettext", "json", "envctl.cli"}, sorted(names)
    r = subprocess.run([sys.executable, "-m", "envctl", "--version"], capture_output=True, text=True, timeout=60)
    from envctl import __version__
    assert r.returncode == 0 and r.stdout == f"envctl {__version__}\n"
