"""Every public function and class in specs/, engine/, runtime/ and envctl/ has a docstring.

CONTRACTS/STYLE: public functions and classes say their arguments and returns (types, shapes,
units), the errors they raise and the spec section they implement. This test can only check
that a docstring is there; what it says is for review. Public = no leading underscore:
module-level functions and classes, and the methods (properties included) of public classes.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("specs", "engine", "runtime", "envctl")
_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def public_defs(tree: ast.Module):
    """Yield ``(qualified name, node)`` for the public module-level defs and public methods."""
    for node in tree.body:
        if not isinstance(node, _DEFS) or node.name.startswith("_"):
            continue
        yield node.name, node
        if isinstance(node, ast.ClassDef):
            for m in node.body:
                if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)) and not m.name.startswith("_"):
                    yield f"{node.name}.{m.name}", m


def missing_docstrings() -> list[str]:
    """``path:line name`` of every public def without a docstring, sorted."""
    out = []
    for pkg in PACKAGES:
        for path in sorted((REPO / pkg).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            for name, node in public_defs(tree):
                if ast.get_docstring(node) is None:
                    out.append(f"{path.relative_to(REPO)}:{node.lineno} {name}")
    return out


def test_public_defs_are_found():
    # guard against a checker that silently scans nothing (moved packages, wrong REPO)
    tree = ast.parse((REPO / "specs" / "lockfile.py").read_text())
    names = dict(public_defs(tree))
    assert "Lockfile" in names and "Descriptor.to_dict" in names


def test_every_public_function_and_class_has_a_docstring():
    missing = missing_docstrings()
    assert not missing, "public defs without a docstring:\n" + "\n".join(missing)
