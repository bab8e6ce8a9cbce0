"""JSON for the warm ``envctl run`` path without importing :mod:`json`.

``import json`` pulls in ``re`` (and ``enum`` through it): about 4 ms per process, paid on every
``envctl run``. The parsing and string escaping are in the C accelerator ``_json`` anyway; this
module drives it directly. :func:`loads` accepts exactly what ``json.loads`` accepts (same C
scanner, same ``strict`` rules) and :func:`dumps` writes exactly what ``json.dumps`` writes for
the given ``indent``/``sort_keys`` (checked against :mod:`json` in tests/unit/test_fastjson.py).
Without ``_json`` (not CPython) both fall back to :mod:`json`.

Imports nothing of ours; used by ``runtime/`` (state.json, the overlay plan annotation, PID 1's
error messages) and ``envctl/`` (env.json).
"""

from __future__ import annotations

__all__ = ["loads", "dumps"]

try:
    from _json import encode_basestring_ascii as _enc
    from _json import make_scanner as _make_scanner
except ImportError:  # pragma: no cover - not CPython
    _make_scanner = _enc = None

_WS = " \t\n\r"
_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}


class _Context:
    """The attributes the C scanner reads from a ``json.JSONDecoder`` (its defaults)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__
    memo: dict = {}


_scan = _make_scanner(_Context()) if _make_scanner else None


def loads(s: str | bytes):
    """Parse a JSON document (str, or UTF-8 bytes); returns the Python value.

    Raises ValueError (``json.JSONDecodeError`` from the scanner, or a plain ValueError for
    trailing data / an empty document) on invalid input, like ``json.loads``.
    """
    if isinstance(s, (bytes, bytearray)):
        s = s.decode("utf-8-sig" if s[:3] == b"\xef\xbb\xbf" else "utf-8")
    if _scan is None:  # pragma: no cover
        import json
        return json.loads(s)
    if s.startswith("\ufeff"):
        raise ValueError("Unexpected UTF-8 BOM (decode using utf-8-sig)")
    n = len(s)
    i = 0
    while i < n and s[i] in _WS:
        i += 1
    try:
        obj, end = _scan(s, i)
    except StopIteration:
        raise ValueError(f"Expecting value: char {i}") from None
    finally:
        _Context.memo.clear()
    while end < n and s[end] in _WS:
        end += 1
    if end != n:
        raise ValueError(f"Extra data: char {end}")
    return obj


def dumps(obj, *, indent: int | None = None, sort_keys: bool = False) -> str:
    """``json.dumps(obj, indent=indent, sort_keys=sort_keys)`` for dict/list/tuple/str/int/float/
    bool/None values (anything else: TypeError, as json raises)."""
    if _enc is None:  # pragma: no cover
        import json
        return json.dumps(obj, indent=indent, sort_keys=sort_keys)
    out: list[str] = []
    _encode(obj, out, indent, sort_keys, 0)
    return "".join(out)


def _float(o: float) -> str:
    if o != o:
        return "NaN"
    if o == float("inf"):
        return "Infinity"
    if o == float("-inf"):
        return "-Infinity"
    return float.__repr__(o)


def _key(k) -> str:
    if isinstance(k, str):
        return k
    if k is True:
        return "true"
    if k is False:
        return "false"
    if k is None:
        return "null"
    if isinstance(k, float):
        return _float(k)
    if isinstance(k, int):
        return int.__repr__(k)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(k).__name__}")


def _encode(o, out: list, indent: int | None, sort_keys: bool, level: int) -> None:
    if isinstance(o, str):
        out.append(_enc(o))
    elif o is None:
        out.append("null")
    elif o is True:
        out.append("true")
    elif o is False:
        out.append("false")
    elif isinstance(o, int):
        out.append(int.__repr__(o))
    elif isinstance(o, float):
        out.append(_float(o))
    elif isinstance(o, (list, tuple)):
        if not o:
            out.append("[]")
            return
        nl, sep = _layout(indent, level + 1)
        out.append("[" + nl)
        for i, v in enumerate(o):
            if i:
                out.append("," + (nl or " "))
            _encode(v, out, indent, sort_keys, level + 1)
        out.append(_layout(indent, level)[0] + "]")
    elif isinstance(o, dict):
        if not o:
            out.append("{}")
            return
        items = [(_key(k), v) for k, v in o.items()]
        if sort_keys:
            items.sort(key=lambda kv: kv[0])
        nl, sep = _layout(indent, level + 1)
        out.append("{" + nl)
        for i, (k, v) in enumerate(items):
            if i:
                out.append("," + (nl or " "))
            out.append(_enc(k) + ": ")
            _encode(v, out, indent, sort_keys, level + 1)
        out.append(_layout(indent, level)[0] + "}")
    else:
        raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


def _layout(indent: int | None, level: int) -> tuple[str, str]:
    if indent is None:
        return "", ""
    return "\n" + " " * (indent * level), ""
