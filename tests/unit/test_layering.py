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


# -- the module graph: every import of ours, at any depth (inside functions, ``if TYPE_CHECKING:``
# blocks and try/except ImportError included: a lazy import is still a dependency) -------------

def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every .py of ours (a package is its ``__init__``)."""
    mods = {}
    for package in sorted(OURS):
        for f in sorted((REPO / package).rglob("*.py")):
            parts = list(f.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            mods[".".join(parts)] = f
    return mods


def _graph() -> dict[str, set[str]]:
    """Module -> the modules of ours it imports (``from pkg import mod`` counts as ``pkg.mod``;
    an attribute import ``from mod import name`` as ``mod``; relative imports resolved). The
    implicit import of a parent package's ``__init__`` is not an edge."""
    mods = _modules()

    def owner(name):
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for mod, f in mods.items():
        targets = set()
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    pkg = mod.split(".") if f.name == "__init__.py" else mod.split(".")[:-1]
                    base = ".".join(pkg[:len(pkg) - node.level + 1] + ([node.module] if node.module else []))
                names = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            for n in names:
                if (o := owner(n)) and o != mod:
                    targets.add(o)
        graph[mod] = targets
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_cycle_finder_sees_lazy_and_relative_imports():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(g) == [["a", "b", "c"]]
    graph = _graph()
    assert "envctl.workflow" in graph["envctl.commands.up"]   # imported inside run()
    assert "specs.build" in graph["specs.load"]               # imported inside parse_spec()


def test_no_import_cycle_between_modules():
    """A circle means one of its files holds something that belongs to another or to a third
    (the library reaching up into a command, two halves of one feature importing each other)."""
    graph = _graph()
    cycles = _cycles(graph)
    lines = [" <-> ".join(c) + "\n    " + "\n    ".join(f"{m} imports {', '.join(sorted(graph[m] & set(c)))}"
                                                     for m in c) for c in cycles]
    assert not cycles, "import cycles:\n" + "\n".join(lines)


def test_nothing_outside_the_commands_imports_them():
    """envctl/commands/ are the CLI's leaves (parse args, call one library function, print);
    only the dispatcher envctl/cli.py names them. The library never reaches up into a command."""
    bad = [f"{m} imports {t}" for m, ts in sorted(_graph().items())
           if not (m == "envctl.commands" or m.startswith("envctl.commands.") or m == "envctl.cli")
           for t in sorted(ts) if t == "envctl.commands" or t.startswith("envctl.commands.")]
    assert not bad, "library modules import commands:\n" + "\n".join(bad)


# engine/'s stages, bottom first (engine/__init__.py): a module imports its own stage or lower ones
STAGES = ["errors", "store", "sources", "layers", "build", "packages", "rootfs", "publish"]


def _stage(mod: str) -> str | None:
    parts = mod.split(".")
    return parts[1] if parts[0] == "engine" and len(parts) > 1 else None


def test_engine_stage_subpackages_are_the_known_stages():
    """Every engine/ subpackage or module is a stage of STAGES (engine/packages may not exist
    yet), so a new one has to be placed in the order before it can be imported."""
    present = {p.stem for p in (REPO / "engine").iterdir()
               if (p.is_dir() and (p / "__init__.py").exists()) or (p.suffix == ".py" and p.stem != "__init__")}
    assert present <= set(STAGES), f"engine/ has {sorted(present - set(STAGES))}, not in STAGES"
    assert {"errors", "store", "sources", "layers", "build", "rootfs", "publish"} <= present


def test_engine_stages_import_only_downwards():
    rank = {s: i for i, s in enumerate(STAGES)}
    bad = []
    for mod, targets in sorted(_graph().items()):
        own = _stage(mod)
        if own is None:
            continue
        for t in sorted(targets):
            other = _stage(t)
            if other is not None and rank[other] > rank[own]:
                bad.append(f"{mod} ({own}) imports {t} ({other}, a later stage)")
    assert not bad, "engine stage order (" + " < ".join(STAGES) + ") violated:\n" + "\n".join(bad)
