"""Validation of envctl.yaml against its JSON Schema (specs/envctl.schema.json), with every
error mapped to ``file:line:col: key.path: message``.

The schema (draft 2020-12) is the contract; jsonschema checks it and this module turns its
errors into sentences a user can act on: unknown keys get a "did you mean", ``oneOf`` /
``anyOf`` failures are narrowed to the branch the user evidently meant (the step kind key
present, or the value's type), and values YAML 1.1 turned into booleans, numbers or dates
where a string belongs get "quote it". All errors are reported, not the first.

jsonschema is imported only when a document is invalid (it costs ~55 ms, more than the rest
of loading a spec): valid documents are accepted by the small checker in specs/schema_fast.py,
which a differential test keeps in agreement with jsonschema.
"""

from __future__ import annotations

import difflib
import json
from functools import lru_cache
from importlib import resources

from specs.errors import SpecError, SpecErrors
from specs.document import Document, format_path

__all__ = ["SUPPORTED_VERSION", "load_schema", "validate_document", "check_document", "schema_errors", "describe_value", "json_type_name"]

SUPPORTED_VERSION = 1
_TYPE_PHRASE = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
                "number": "a number", "boolean": "true or false", "null": "nothing (null)"}


@lru_cache(maxsize=1)
def load_schema() -> dict:
    """The envctl.yaml JSON Schema (dict), read from the installed package."""
    return json.loads(resources.files("specs").joinpath("envctl.schema.json").read_text("utf-8"))


@lru_cache(maxsize=1)
def _validator():
    import jsonschema

    return jsonschema.Draft202012Validator(load_schema())


def json_type_name(value) -> str:
    """A phrase for the type of a loaded YAML value: ``a mapping``, ``a list``, ``a boolean``..."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "nothing (null)"
    return "a date" if type(value).__name__ in ("date", "datetime") else type(value).__name__


def describe_value(doc: Document, path, value) -> str:
    """What the user wrote, for ``got ...``; says so when YAML 1.1 changed its type."""
    scalar = doc.locations.scalar(path)
    if scalar is not None and scalar.raw != "":
        shown = "true" if value is True else "false" if value is False else repr(value)
        if scalar.kind == "null" or str(value) == scalar.raw or shown == scalar.raw.lower():
            return f"{scalar.kind} ({scalar.raw})"
        return f"{scalar.kind}: YAML 1.1 reads `{scalar.raw}` as {shown}"
    if isinstance(value, (dict, list)) or value is None:
        return json_type_name(value)
    return f"{json_type_name(value)} ({value!r})"


def _quote_hint(doc: Document, path, schema: dict) -> str | None:
    """'quote it' advice, only when the quoted text would be valid where it stands."""
    from specs.schema_fast import is_valid

    scalar = doc.locations.scalar(path)
    if scalar is None:
        return None
    text = "" if scalar.kind == "null" else scalar.raw
    if not is_valid(text, schema, load_schema()):
        return None
    return 'write "" for an empty string' if scalar.kind == "null" else f'quote it: "{scalar.raw}"'


def validate_document(doc: Document) -> dict:
    """Check a parsed document against the schema.

    Args:
        doc: the output of :func:`specs.document.read_document`.

    Returns:
        The document's data (dict), unchanged, when it is valid.

    Raises:
        SpecError: empty file, top level not a mapping, version newer than supported.
        SpecErrors: every schema violation, in file order.
    """
    check_document(doc)
    errors = schema_errors(doc)
    if errors:
        raise SpecErrors(errors)
    return doc.data


def check_document(doc: Document) -> None:
    """The checks that stop everything else: empty, not a mapping, version too new.

    Raises:
        SpecError: one of those, located.
    """
    data = doc.data
    if data is None:
        raise SpecError("the file is empty", file=doc.file, line=1, col=1,
                        hint="run 'envctl init', or write at least 'version: 1' and 'image: REF'")
    if not isinstance(data, dict):
        line, col = doc.locations.value(())
        raise SpecError(f"expected a mapping of settings (key: value lines) at the top level, got "
                        f"{describe_value(doc, (), data)}", file=doc.file, line=line, col=col)
    version = data.get("version")
    if isinstance(version, (int, float)) and not isinstance(version, bool) and version > SUPPORTED_VERSION:
        line, col = doc.locations.value(("version",))
        raise SpecError(f"version {version} is newer than this envctl understands (newest: {SUPPORTED_VERSION})",
                        file=doc.file, line=line, col=col, path="version",
                        hint="upgrade envctl, or write the file for version 1")


def schema_errors(doc: Document) -> list[SpecError]:
    """All schema violations of ``doc`` as SpecError objects (deduplicated, unsorted).

    A valid document is recognised by :func:`specs.schema_fast.is_valid` without importing
    jsonschema; only an invalid one is handed to jsonschema to explain every error.
    """
    from specs.schema_fast import is_valid

    if is_valid(doc.data, load_schema()):
        return []
    out: dict[tuple, SpecError] = {}
    for err in _validator().iter_errors(doc.data):
        for path, message, at_key, hint in _explain(err, doc):
            if hint and hint.startswith(("quote it", "write \"\"")):
                message, hint = f"{message}; {hint}", None
            line, col = doc.locations.key(path) if at_key else doc.locations.value(path)
            e = SpecError(message, file=doc.file, line=line, col=col, path=format_path(path), hint=hint)
            out.setdefault((line, col, e.path, message), e)
    return list(out.values())


def _explain(err, doc: Document):
    """Yield (path, message, at_key, hint) for one jsonschema error (recursing into oneOf/anyOf)."""
    path = tuple(err.absolute_path)
    kind = err.validator
    if "propertyNames" in err.schema_path:
        msg = err.schema.get("x-message") or f"invalid name {err.instance!r}"
        yield path + (err.instance,), f"invalid name {err.instance!r}: {msg}", True, None
    elif kind in ("oneOf", "anyOf"):
        yield from _explain_branches(err, doc, path)
    elif kind == "additionalProperties":
        yield from _explain_unknown(err, path)
    elif kind == "required":
        for key in err.validator_value:
            if key not in err.instance:
                hint = "add 'version: 1' as the first line" if key == "version" and not path else None
                yield path, f"missing required key {key!r}", False, hint
    elif kind == "type":
        yield path, _type_message(err, doc, path), False, _maybe_quote(err, doc, path)
    else:
        yield path, _simple_message(err, doc, path), False, _maybe_quote(err, doc, path)


def _maybe_quote(err, doc, path):
    return _quote_hint(doc, path, err.schema)


def _type_message(err, doc, path) -> str:
    if err.schema.get("x-message"):
        return f"{err.schema['x-message']}, got {describe_value(doc, path, err.instance)}"
    expected = err.validator_value
    if isinstance(expected, list):
        expected = "string" if "string" in expected else expected[0]
    return f"expected {_TYPE_PHRASE.get(expected, expected)}, got {describe_value(doc, path, err.instance)}"


def _simple_message(err, doc, path) -> str:
    kind, value, inst = err.validator, err.validator_value, err.instance
    got = describe_value(doc, path, inst)
    if kind == "enum":
        close = difflib.get_close_matches(str(inst), [str(v) for v in value], n=1)
        tail = f" (did you mean {close[0]!r}?)" if close else ""
        return f"expected one of {', '.join(map(str, value))}, got {got}{tail}"
    if kind == "pattern":
        return f"{err.schema.get('x-message') or 'does not match ' + value}, got {inst!r}"
    if kind in ("minimum", "exclusiveMinimum"):
        return f"{inst} is too small (minimum {value})"
    if kind in ("maximum", "exclusiveMaximum"):
        return f"{inst} is too large (maximum {value})"
    if kind == "minItems":
        return "must not be empty" if value == 1 else f"needs at least {value} items"
    if kind == "minLength":
        return "must not be empty"
    if kind == "maxLength":
        return f"is longer than {value} characters"
    if kind == "uniqueItems":
        dup = next((x for i, x in enumerate(inst) if x in inst[:i]), None)
        return f"lists {dup!r} more than once"
    if kind == "minProperties":
        return err.schema.get("x-message") or f"needs one of {', '.join(err.schema.get('properties', {}))}"
    return err.message


def _explain_unknown(err, path):
    import re

    allowed = list(err.schema.get("properties", {}))
    patterns = list(err.schema.get("patternProperties", {}))
    for key in err.instance:
        if key in allowed or any(re.search(p, key) for p in patterns):
            continue
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        if close:
            yield path + (key,), f"unknown key {key!r} (did you mean {close[0]!r}?)", True, None
        else:
            extra = " and x-* extension keys" if patterns else ""
            yield path + (key,), f"unknown key {key!r}", True, f"allowed here: {', '.join(allowed)}{extra}"


def _branch_applies(branch: dict, inst) -> bool:
    """Did the user evidently mean this branch? By type when it has one (string vs mapping
    forms), else by its key (the step kinds: the branch requiring ``run`` for a run step)."""
    t = branch.get("type")
    if t is not None:
        return any(_is_type(inst, x) for x in (t if isinstance(t, list) else [t]))
    if "required" in branch:
        return isinstance(inst, dict) and all(k in inst for k in branch["required"])
    return True


def _is_type(inst, t: str) -> bool:
    return {"object": isinstance(inst, dict), "array": isinstance(inst, list), "string": isinstance(inst, str),
            "boolean": isinstance(inst, bool), "null": inst is None,
            "integer": isinstance(inst, int) and not isinstance(inst, bool),
            "number": isinstance(inst, (int, float)) and not isinstance(inst, bool)}.get(t, False)


def _explain_branches(err, doc, path):
    branches = err.validator_value
    inst = err.instance
    applicable = [i for i, b in enumerate(branches) if _branch_applies(b, inst)]
    keyed = [b["required"][0] for b in branches if "required" in b and "type" not in b]
    if keyed and len(keyed) == len(branches) and not isinstance(inst, dict):
        return  # not a mapping at all: the schema's own "type" error says so
    if keyed and len(keyed) == len(branches) and isinstance(inst, dict) and len(applicable) != 1:
        present = [k for k in keyed if k in inst]
        if present:
            msg = f"a step has exactly one of {', '.join(keyed)}; this one has {' and '.join(present)}"
            yield path, msg, False, "split it into separate steps"
        else:
            extra = [k for k in inst if k != "reproducible"]
            close = difflib.get_close_matches(extra[0], keyed, n=1) if extra else []
            if close:
                yield path + (extra[0],), f"unknown key {extra[0]!r} (did you mean {close[0]!r}?)", True, None
            else:
                yield path, f"a step needs one of {', '.join(keyed)}", False, None
        return
    if len(applicable) != 1:
        msg = err.schema.get("x-message") or "expected " + " or ".join(
            _TYPE_PHRASE.get(b.get("type"), "a value") for b in branches if isinstance(b.get("type"), str))
        yield path, f"{msg}, got {describe_value(doc, path, inst)}", False, _quote_hint(doc, path, err.schema)
        return
    for sub in err.context:
        if sub.relative_schema_path and sub.relative_schema_path[0] == applicable[0]:
            yield from _explain(sub, doc)
