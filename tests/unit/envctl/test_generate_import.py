"""envctl.generate.importer: JSONC parsing and the devcontainer.json -> envctl.yaml mapping."""

import pytest

from envctl.generate import GenerateError
from envctl.generate.importer import import_devcontainer, parse_jsonc
from specs.load import parse_spec


def test_jsonc_comments_and_trailing_commas_but_not_inside_strings():
    text = '{\n  // c1\n  "a": "http://x/*y*/", /* c2\n spans */ "b": [1, 2,],\n  "c": "q\\"//",\n}\n'
    assert parse_jsonc(text, "x") == {"a": "http://x/*y*/", "b": [1, 2], "c": 'q"//'}


def test_jsonc_error_names_the_file():
    with pytest.raises(GenerateError, match=r"import: dc.json: not valid JSON with comments \(.*line 2"):
        parse_jsonc('{\n "a": }', "dc.json")


@pytest.mark.parametrize("doc, key, expected", [
    ({"runArgs": ["--network=none"]}, "network", "none"),
    ({"runArgs": ["--pids-limit", "64"]}, "resources", {"pids": 64}),
    ({"runArgs": ["--cap-drop=ALL"]}, "cap_drop", ["ALL"]),
    ({"containerUser": "app", "remoteUser": "other"}, "user", "app"),
    ({"onCreateCommand": ["make", "deps"], "postCreateCommand": {"b": "echo b", "a": "echo a"}}, "steps",
     [{"run": ["make", "deps"]}, {"run": "echo a"}, {"run": "echo b"}]),
    ({"mounts": [{"type": "bind", "source": "/srv/data", "target": "/data"}]}, "mounts",
     [{"source": "/srv/data", "target": "/data", "readonly": False}]),
])
def test_mappings_make_valid_specs(doc, key, expected):
    res = import_devcontainer({"image": "debian:bookworm", **doc})
    assert res.spec[key] == expected
    parse_spec(res.to_yaml("devcontainer.json"))  # the result is always a valid envctl.yaml


def test_skipped_are_listed_in_the_header():
    res = import_devcontainer({"image": "debian", "hostRequirements": {"cpus": 2}, "workspaceFolder": "${x}"})
    text = res.to_yaml("dc.json")
    assert "#   - hostRequirements\n" in text and "workspaceFolder '${x}'" in text


@pytest.mark.parametrize("doc, what", [({"dockerComposeFile": "c.yml", "service": "s"}, "dockerComposeFile"),
                                       ({"image": "${localEnv:IMG}"}, "image"), ([], None)])
def test_unimportable(doc, what):
    with pytest.raises(GenerateError, match=what or "expected a JSON object"):
        import_devcontainer(doc)
