"""specs.schema_fast (the import-free validity check) agrees with jsonschema, exhaustively over
single-value mutations of a spec that uses every key, and over the error-test documents."""

import copy

import jsonschema
import pytest
import yaml

from specs.schema import load_schema
from specs.schema_fast import UnsupportedKeyword, is_valid
from tests.unit.specs.test_spec_model import FULL

ALTERNATIVES = [None, True, False, 0, -1, 1, 2.0, 1.5, 70000, "", "x", "X y", "/abs", "linux/amd64", "2GiB",
                "250ms", "never", "host", "a b", "/a:/b:ro", [], ["x"], [1], ["x", "x"], {}, {"a": 1},
                {"A": "1"}, {"src": "a", "dest": "/b"}, {"run": "x"}, {"paths": ["a"]}]


def _paths(node, path=()):
    yield path
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, path + (i,))


def _replace(doc, path, value):
    doc = copy.deepcopy(doc)
    if not path:
        return value
    target = doc
    for p in path[:-1]:
        target = target[p]
    target[path[-1]] = value
    return doc


def test_agrees_with_jsonschema_on_every_single_mutation():
    schema = load_schema()
    validator = jsonschema.Draft202012Validator(schema)
    base = yaml.safe_load(FULL)
    base["x-anchors"] = {"a": 1}
    checked = 0
    for path in list(_paths(base)):
        for value in ALTERNATIVES:
            doc = _replace(base, path, value)
            expected = not any(True for _ in validator.iter_errors(doc))
            assert is_valid(doc, schema) is expected, (path, value)
            checked += 1
        if path and isinstance(path[-1], str):  # also: the key removed, and an unknown sibling added
            for mutate in (lambda d: d.pop(path[-1]), lambda d: d.__setitem__(path[-1] + "z", 1)):
                doc = copy.deepcopy(base)
                target = doc
                for p in path[:-1]:
                    target = target[p]
                mutate(target)
                assert is_valid(doc, schema) is (not any(True for _ in validator.iter_errors(doc))), path
    assert checked > 2000


def test_unknown_keyword_is_loud():
    with pytest.raises(UnsupportedKeyword):
        is_valid(1, {"multipleOf": 2})
