"""Canonical JSON: the one byte form used for envctl.lock, spec identity and cache keys.

Rules: UTF-8, keys sorted, two-space indent, ``": "`` and ``","`` separators, one trailing
newline; values are dict (str keys), list/tuple, str, int, bool and None only. Floats are
refused: their text differs between languages and they are never needed for identity
(callers turn them into decimal strings first).
"""

from __future__ import annotations

import hashlib
import json

__all__ = ["canonical_json", "canonical_digest", "CanonicalError"]


class CanonicalError(TypeError):
    """A value that has no canonical JSON form (a float, a non-str key, an object). A bug, not user input."""


def _check(obj, where: str = "$") -> None:
    if obj is None or isinstance(obj, (str, bool, int)):
        if isinstance(obj, str):
            try:
                obj.encode("utf-8")
            except UnicodeEncodeError as e:
                raise CanonicalError(f"canonical json: {where}: string is not valid unicode") from e
        return
    if isinstance(obj, float):
        raise CanonicalError(f"canonical json: {where}: floats are not allowed ({obj!r})")
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, str):
                raise CanonicalError(f"canonical json: {where}: key {k!r} is not a string")
            _check(v, f"{where}.{k}")
        return
    if isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _check(v, f"{where}[{i}]")
        return
    raise CanonicalError(f"canonical json: {where}: unsupported type {type(obj).__name__}")


def canonical_json(obj) -> bytes:
    """Canonical UTF-8 JSON bytes of ``obj`` (see module doc). Raises CanonicalError on floats etc."""
    _check(obj)
    text = json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False, separators=(",", ": "))
    return (text + "\n").encode("utf-8")


def canonical_digest(obj) -> str:
    """``"sha256:<hex>"`` of :func:`canonical_json` of ``obj``."""
    return "sha256:" + hashlib.sha256(canonical_json(obj)).hexdigest()
