"""A non-editable `pip install .` into a fresh venv works: templates and the schema ship in the
wheel, the console script runs, `envctl init` then `envctl validate` succeed in an empty dir.

The build runs in pip's isolated build environment (setuptools + wheel from the configured
index, as for `pip install -e` in .ci/run); the runtime dependencies are borrowed from the test
interpreter's site-packages through a .pth file that sorts after the fresh venv's own
site-packages (--no-deps), so envctl itself must come from the install.
"""

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SHIPPED = ["pyproject.toml", "README.md", "envctl", "specs", "engine", "runtime", "templates"]


def sh(*argv, cwd=None, env=None) -> str:
    r = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"{argv}: {r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout


@pytest.mark.slow
def test_pip_install_then_init_in_empty_dir(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in SHIPPED:  # a copy: building in-tree would write build/ into the shared checkout
        p = REPO / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
        else:
            shutil.copy2(p, src / name)
    venv = tmp_path / "venv"
    sh(getattr(sys, "_base_executable", sys.executable), "-m", "venv", venv)
    py = venv / "bin" / "python"
    purelib = Path(sh(py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())
    (purelib / "zz_envctl_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    sh(py, "-m", "pip", "install", "-q", "--no-deps", str(src))

    empty = tmp_path / "empty"
    empty.mkdir()
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path), "ENVCTL_HOME": str(tmp_path / "home")}
    where = sh(py, "-c", "import envctl, specs, templates; print(envctl.__file__, specs.__file__, templates.__file__)",
               cwd=empty, env=env)
    assert all(p.startswith(str(venv)) for p in where.split()), where
    assert sh(venv / "bin" / "envctl", "--version", cwd=empty, env=env).strip() == "envctl 0.1.0"
    sh(venv / "bin" / "envctl", "init", "--preset", "python", cwd=empty, env=env)
    assert "image: docker.io/library/python:3.12-slim" in (empty / "envctl.yaml").read_text()
    assert "/.envctl/" in (empty / ".gitignore").read_text()
    out = sh(venv / "bin" / "envctl", "validate", "--json", cwd=empty, env=env)
    assert '"image": "docker.io/library/python:3.12-slim"' in out
