"""STYLE rule/example 10: each specs/ module's ``__all__`` equals its public names.

Public names = module-level functions and classes without a leading underscore, defined in the
module (imports are not counted). ``__all__`` may also list public constants; every name it
lists must exist. The package's own ``specs.__all__`` is frozen in test_spec_schema_doc.py.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

SPECS = Path(__file__).resolve().parents[3] / "specs"
MODULES = sorted(p.stem for p in SPECS.glob("*.py") if p.stem != "__init__")


def _public_defs(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.name for n in tree.body
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not n.name.startswith("_")}


@pytest.mark.parametrize("name", MODULES)
def test_module_all_lists_its_public_names(name):
    mod = importlib.import_module(f"specs.{name}")
    exported = getattr(mod, "__all__", None)
    assert exported is not None, f"specs/{name}.py has no __all__"
    assert len(exported) == len(set(exported)), f"specs/{name}.py: duplicate names in __all__"
    assert not _public_defs(SPECS / f"{name}.py") - set(exported), f"specs/{name}.py: public but not in __all__"
    assert all(hasattr(mod, n) for n in exported), f"specs/{name}.py: __all__ names something undefined"
