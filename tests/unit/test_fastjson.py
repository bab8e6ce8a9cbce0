"""specs.fastjson (the warm `envctl run` path's JSON without `import json`) agrees with json."""

import json

import pytest

from specs import fastjson

DOCS = [
    {}, [], "", 0, -1, 1.5, 1e300, True, False, None, "é\u2028\x00\"\\/\n",
    {"b": [1, 2.25, {"c": None}], "a": {"x": [], "y": {}}, "ü": "snow ☃", "n": -0.0},
    [[[]], [{}], [1, [2, [3]]]],
    {"ociVersion": "1.0.2", "process": {"args": ["true"], "env": ["PATH=/bin"], "terminal": False},
     "linux": {"namespaces": [{"type": "pid"}], "resources": {"memory": {"limit": 1 << 40}}}},
]


@pytest.mark.parametrize("doc", DOCS)
@pytest.mark.parametrize("indent", [None, 2])
@pytest.mark.parametrize("sort_keys", [False, True])
def test_dumps_matches_json(doc, indent, sort_keys):
    assert fastjson.dumps(doc, indent=indent, sort_keys=sort_keys) == json.dumps(doc, indent=indent, sort_keys=sort_keys)


@pytest.mark.parametrize("doc", DOCS)
def test_loads_round_trips(doc):
    text = json.dumps(doc, indent=2)
    assert fastjson.loads(text) == json.loads(text)
    assert fastjson.loads(text.encode()) == json.loads(text)
    assert fastjson.loads("  \n" + text + "\n\t ") == doc


@pytest.mark.parametrize("bad", ["", "  ", "{", "[1,]", "{'a': 1}", "1 2", "tru", '"\x01"', "[1] x", "\ufeff{}"])
def test_loads_rejects_what_json_rejects(bad):
    with pytest.raises(ValueError):
        json.loads(bad)
    with pytest.raises(ValueError):
        fastjson.loads(bad)


def test_constants_and_errors():
    assert fastjson.loads('[NaN, Infinity, -Infinity]')[1] == float("inf")
    assert fastjson.dumps([float("inf"), float("-inf")]) == json.dumps([float("inf"), float("-inf")])
    with pytest.raises(TypeError):
        fastjson.dumps({"a": object()})
    assert fastjson.dumps({1: 2, None: 3, True: 4}) == json.dumps({1: 2, None: 3, True: 4})
