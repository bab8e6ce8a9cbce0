"""A fast "is this valid?" check for the subset of JSON Schema that envctl.schema.json uses.

Importing jsonschema costs ~55 ms, more than parsing and building a spec together. Most
loads are of valid files, so :func:`is_valid` (no imports, ~0.2 ms) accepts them, and only
an invalid document pays for jsonschema, whose errors we need to explain it. Keywords
outside the subset raise :class:`UnsupportedKeyword`, so a schema change that needs more
makes the differential test (tests/unit/specs/test_schema_fast.py) fail instead of letting the
two validators disagree silently.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["is_valid", "UnsupportedKeyword"]

_ANNOTATIONS = {"$schema", "$id", "title", "description", "default", "examples", "x-message", "$defs"}


class UnsupportedKeyword(Exception):
    """The schema uses a keyword this checker does not implement (a bug to fix here)."""


@lru_cache(maxsize=None)
def _re(pattern: str) -> re.Pattern:
    return re.compile(pattern)


def _type_ok(inst, t) -> bool:
    if isinstance(t, list):
        return any(_type_ok(inst, x) for x in t)
    if t == "object":
        return isinstance(inst, dict)
    if t == "array":
        return isinstance(inst, list)
    if t == "string":
        return isinstance(inst, str)
    if t == "boolean":
        return isinstance(inst, bool)
    if t == "null":
        return inst is None
    if t == "integer":
        return isinstance(inst, int) and not isinstance(inst, bool) or isinstance(inst, float) and inst.is_integer()
    if t == "number":
        return isinstance(inst, (int, float)) and not isinstance(inst, bool)
    raise UnsupportedKeyword(f"type {t!r}")


def is_valid(inst, schema: dict, root: dict | None = None) -> bool:
    """True when ``inst`` satisfies ``schema`` (the subset used by envctl.schema.json)."""
    root = schema if root is None else root
    for key, value in schema.items():
        if key in _ANNOTATIONS:
            continue
        check = _CHECKS.get(key)
        if check is None:
            raise UnsupportedKeyword(key)
        if not check(inst, value, schema, root):
            return False
    return True


def _ref(inst, ref, schema, root) -> bool:
    target = root
    for part in ref.lstrip("#/").split("/"):
        target = target[part]
    return is_valid(inst, target, root)


def _properties(inst, props, schema, root) -> bool:
    if not isinstance(inst, dict):
        return True
    return all(is_valid(inst[k], sub, root) for k, sub in props.items() if k in inst)


def _additional(inst, extra, schema, root) -> bool:
    if not isinstance(inst, dict):
        return True
    known = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    rest = [k for k in inst if k not in known and not any(_re(p).search(k) for p in patterns)]
    if extra is False:
        return not rest
    return all(is_valid(inst[k], extra, root) for k in rest)


def _pattern_props(inst, pats, schema, root) -> bool:
    if not isinstance(inst, dict):
        return True
    return all(is_valid(v, sub, root) for p, sub in pats.items() for k, v in inst.items() if _re(p).search(k))


def _unique(inst, flag, schema, root) -> bool:
    if not flag or not isinstance(inst, list):
        return True
    seen = []
    for x in inst:
        if any(x == y and type(x) is type(y) for y in seen):
            return False
        seen.append(x)
    return True


def _num(op):
    return lambda inst, v, s, r: not _type_ok(inst, "number") or op(inst, v)


def _sized(kind, op):
    return lambda inst, v, s, r: not isinstance(inst, kind) or op(len(inst), v)


_CHECKS = {
    "type": lambda inst, t, s, r: _type_ok(inst, t),
    "$ref": _ref,
    "properties": _properties,
    "additionalProperties": _additional,
    "patternProperties": _pattern_props,
    "required": lambda inst, req, s, r: not isinstance(inst, dict) or all(k in inst for k in req),
    "enum": lambda inst, vals, s, r: any(inst == v and type(inst) is type(v) for v in vals),
    "pattern": lambda inst, p, s, r: not isinstance(inst, str) or _re(p).search(inst) is not None,
    "minimum": _num(lambda a, b: a >= b),
    "maximum": _num(lambda a, b: a <= b),
    "minItems": _sized(list, lambda n, v: n >= v),
    "minLength": _sized(str, lambda n, v: n >= v),
    "maxLength": _sized(str, lambda n, v: n <= v),
    "minProperties": _sized(dict, lambda n, v: n >= v),
    "uniqueItems": _unique,
    "items": lambda inst, sub, s, r: not isinstance(inst, list) or all(is_valid(x, sub, r) for x in inst),
    "anyOf": lambda inst, subs, s, r: any(is_valid(inst, b, r) for b in subs),
    "oneOf": lambda inst, subs, s, r: sum(is_valid(inst, b, r) for b in subs) == 1,
    "propertyNames": lambda inst, sub, s, r: not isinstance(inst, dict) or all(is_valid(k, sub, r) for k in inst),
}
