"""Reading envctl.yaml: YAML with positions, duplicate keys refused, alias bombs bounded.

PyYAML composes a node graph with 0-based marks; :func:`read_document` walks it into plain
Python values and a :class:`Locations` table (key path -> 1-based line/column), so that every
later error can name ``file:line:col``. PyYAML keeps the last of duplicate keys silently; we
refuse them. Aliases are shared nodes in the graph, so a "billion laughs" document is small
until expanded: the walk counts expanded nodes and stops at :data:`MAX_NODES`.

The bottom of specs/: specs.schema and specs.build take the :class:`Document` made here, and
specs.load puts the three together (so none of them imports specs.load).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from specs.errors import SpecError

__all__ = ["read_document", "Document", "Locations", "SpecLoader", "MAX_NODES", "MAX_DEPTH", "MAX_BYTES",
           "format_path", "Scalar"]

MAX_NODES = 20_000   # expanded nodes; a real spec has a few hundred
MAX_DEPTH = 64
MAX_BYTES = 1 << 20  # 1 MiB

_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_TYPE_NAMES = {"tag:yaml.org,2002:bool": "a boolean", "tag:yaml.org,2002:int": "a number",
               "tag:yaml.org,2002:float": "a number", "tag:yaml.org,2002:null": "null",
               "tag:yaml.org,2002:timestamp": "a date"}


def format_path(path: tuple) -> str:
    """``("steps", 1, "run")`` -> ``steps[1].run``; odd keys are quoted: ``env["a b"]``."""
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        elif p and all(c.isalnum() or c in "_-" for c in p):
            out += ("." if out else "") + p
        else:
            out += f"[{p!r}]".replace("'", '"')
    return out


@dataclass
class Scalar:
    """How a plain scalar was written: ``raw`` text and YAML 1.1's reading of it (``kind``)."""

    raw: str
    kind: str  # "a boolean", "a number", "null", "a date"


@dataclass
class Locations:
    """1-based positions of values and keys by key path (tuples of str/int)."""

    values: dict = field(default_factory=dict)
    keys: dict = field(default_factory=dict)
    scalars: dict = field(default_factory=dict)

    def value(self, path) -> tuple[int, int]:
        """(line, col) of the value at ``path``, or of its nearest located ancestor."""
        path = tuple(path)
        while path not in self.values and path:
            path = path[:-1]
        return self.values.get(path, (1, 1))

    def key(self, path) -> tuple[int, int]:
        """(line, col) of the key naming ``path`` (its value's position when not a mapping key)."""
        path = tuple(path)
        return self.keys.get(path) or self.value(path)

    def scalar(self, path) -> Scalar | None:
        """How the plain scalar at ``path`` was written, when YAML turned it into a non-string."""
        return self.scalars.get(tuple(path))


@dataclass
class Document:
    """A parsed YAML document: ``data`` (plain values; None for an empty file) and ``locations``."""

    data: object
    locations: Locations
    file: str


class SpecLoader(yaml.SafeLoader):
    """The ``yaml.SafeLoader`` we parse with: it only composes nodes (our walk constructs
    collections, so duplicate keys and positions are handled there) and builds scalars with
    SafeLoader's YAML 1.1 resolver, so ``yes`` is a boolean and ``0755`` is 493 — which the
    schema layer then reports with a "quote it" hint where a string is expected."""


def read_document(text: str | bytes, file: str = "envctl.yaml") -> Document:
    """Parse YAML text into a :class:`Document`.

    Args:
        text: the file's contents (bytes are decoded as UTF-8, BOM allowed).
        file: the name used in error messages.

    Raises:
        SpecError: invalid UTF-8, YAML syntax, several documents, duplicate keys, non-string
            keys, unknown tags, too many nodes or too deep (alias bombs), file too large.
    """
    if isinstance(text, bytes):
        text = _decode(text, file)
    if len(text) > MAX_BYTES:
        raise SpecError(f"file is {len(text)} bytes, more than the {MAX_BYTES} allowed", file=file, line=1, col=1)
    loader = SpecLoader(text)
    try:
        node = loader.get_single_node()
        walker = _Walker(loader, file)
        return Document(walker.walk(node), walker.loc, file)
    except yaml.MarkedYAMLError as e:
        raise _yaml_error(e, file) from None
    except yaml.YAMLError as e:
        raise SpecError(f"invalid YAML: {e}", file=file, line=1, col=1) from None
    finally:
        loader.dispose()


def _decode(data: bytes, file: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        before = data[: e.start]
        line = before.count(b"\n") + 1
        col = e.start - (before.rfind(b"\n") + 1) + 1
        raise SpecError(f"invalid UTF-8 (byte 0x{data[e.start]:02x})", file=file, line=line, col=col,
                        hint="save the file as UTF-8") from None


def _yaml_error(e, file: str) -> SpecError:
    mark = e.problem_mark or e.context_mark
    problem = e.problem or "syntax error"
    if e.context and e.context_mark and mark is e.problem_mark:
        problem = f"{problem} ({e.context} at line {e.context_mark.line + 1})"
    hint = "YAML indents with spaces, never tabs" if "\\t" in problem or "tab" in problem else None
    return SpecError(f"invalid YAML: {problem}", file=file, line=mark.line + 1 if mark else 1,
                     col=mark.column + 1 if mark else 1, hint=hint)


class _Walker:
    """Turns a composed node graph into plain values, recording positions; bounds expansion."""

    def __init__(self, loader, file: str):
        self.loader = loader
        self.file = file
        self.count = 0
        self.loc = Locations()
        self.seen: set[int] = set()   # composed nodes walked: one seen again is an alias expansion
        self.aliased = False

    def walk(self, node):
        if node is None:
            return None
        return self._value(node, (), 0)

    def _err(self, msg: str, mark, path=(), hint=None) -> SpecError:
        return SpecError(msg, file=self.file, line=mark.line + 1, col=mark.column + 1,
                         path=format_path(path), hint=hint)

    def _value(self, node, path: tuple, depth: int):
        self.count += 1
        if id(node) in self.seen:
            self.aliased = True
        else:
            self.seen.add(id(node))
        if self.count > MAX_NODES or depth > MAX_DEPTH:
            raise self._too_big(node, path, depth)
        self.loc.values.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self._value(n, path + (i,), depth + 1) for i, n in enumerate(node.value)]
        value = self.loader.construct_object(node, deep=True)
        if node.tag in _TYPE_NAMES and node.style is None:
            self.loc.scalars[path] = Scalar(node.value, _TYPE_NAMES[node.tag])
        return value

    def _too_big(self, node, path: tuple, depth: int) -> SpecError:
        """The size/depth bound error: blames aliases only when the document used them (QA L12);
        a very deep path (a recursive alias) is shortened to its first levels (QA L5)."""
        what = f"more than {MAX_NODES} values" if self.count > MAX_NODES else f"nested deeper than {MAX_DEPTH}"
        shown = format_path(path) if len(path) <= 8 else f"{format_path(path[:4])}... ({len(path)} levels)"
        if self.aliased:
            msg, hint = (f"document expands to {what} (alias/anchor bomb?)",
                         "envctl.yaml should not need this many aliases (or an alias inside its own anchor); "
                         "write the values out")
        else:
            msg, hint = (f"document has {what}",
                         f"envctl.yaml is limited to {MAX_NODES} values nested at most {MAX_DEPTH} deep; "
                         "keep large data in a file the environment reads")
        return SpecError(msg, file=self.file, line=node.start_mark.line + 1, col=node.start_mark.column + 1,
                         path=shown, hint=hint)

    def _mapping(self, node, path: tuple, depth: int) -> dict:
        out: dict = {}
        first_at: dict = {}
        merges = []
        for knode, vnode in node.value:
            if knode.tag == _MERGE:
                merges.append(vnode)
                continue
            if not isinstance(knode, yaml.ScalarNode):
                raise self._err("keys must be plain strings, not a list or mapping", knode.start_mark, path)
            key = knode.value  # keys verbatim: `on:` stays "on", `1:` stays "1"
            if key in first_at:
                raise self._err(f"duplicate key {key!r} (first set at line {first_at[key]})", knode.start_mark,
                                path + (key,), hint="remove one of them: YAML keeps only the last silently")
            first_at[key] = knode.start_mark.line + 1
            self.loc.keys[path + (key,)] = (knode.start_mark.line + 1, knode.start_mark.column + 1)
            out[key] = self._value(vnode, path + (key,), depth + 1)
        for m in merges:  # "<<: *base": explicit keys win, as YAML's merge key spec says
            sources = m.value if isinstance(m, yaml.SequenceNode) else [m]
            for src in sources:
                if not isinstance(src, yaml.MappingNode):
                    raise self._err("'<<' merges a mapping or a list of mappings", src.start_mark, path)
                for k, v in self._mapping(src, path, depth + 1).items():
                    out.setdefault(k, v)
        return out
