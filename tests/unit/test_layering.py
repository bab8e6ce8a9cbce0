"""DESIGN.md's dependency direction, enforced by parsing imports (like ggcr's depcheck_test).

specs/ imports nothing of ours; engine/ imports specs/ and only the leaf runtime._sys of runtime/;
runtime/ imports specs/ only; envctl/ may import everything.
"""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OURS = {"specs", "engine", "runtime", "envctl", "templates"}
ALLOWED = {
    "specs": {"specs"},
    "engine": {"specs", "engine", "runtime._sys"},
    "runtime": {"specs", "runtime"},
    "templates": set(),
}


def _imports(path: Path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
            for a in node.names:
                yield node.lineno, f"{node.module}.{a.name}"


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_dependency_direction(package):
    bad = []
    for f in sorted((REPO / package).rglob("*.py")):
        for line, name in _imports(f):
            top = name.split(".")[0]
            if top not in OURS:
                continue
            allowed = ALLOWED[package]
            if top in allowed or any(name == a or name.startswith(a + ".") for a in allowed):
                continue
            if top == "runtime" and name.split(".")[:2] == ["runtime", "_sys"]:
                if "runtime._sys" in allowed:
                    continue
            # "from runtime import _sys" yields both "runtime" and "runtime._sys"
            if name == "runtime" and "runtime._sys" in allowed:
                src = f.read_text().splitlines()[line - 1]
                if "_sys" in src:
                    continue
            bad.append(f"{f.relative_to(REPO)}:{line}: imports {name}")
    assert not bad, "layering violated:\n" + "\n".join(bad)
