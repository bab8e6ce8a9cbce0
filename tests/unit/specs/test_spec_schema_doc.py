"""The JSON Schema is well-formed, documents every key, and docs/spec.md is generated from it."""

import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

import specs
from specs.gendoc import render
from specs.schema import load_schema

REPO = Path(__file__).resolve().parents[3]


def test_schema_is_valid_draft_2020_12():
    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def _keys(node, path="$"):
    """Every (path, schema) that names a key: properties and patternProperties, anywhere."""
    if isinstance(node, dict):
        for group in ("properties", "patternProperties"):
            for k, v in node.get(group, {}).items():
                yield f"{path}.{k}", v
        for k, v in node.items():
            yield from _keys(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _keys(v, f"{path}[{i}]")


def _described(sub: dict, schema: dict) -> bool:
    if sub.get("description"):
        return True
    ref = sub.get("$ref", "")
    return bool(ref) and bool(schema["$defs"][ref.rsplit("/", 1)[-1]].get("description"))


def test_every_key_has_a_description():
    schema = load_schema()
    missing = [p for p, sub in _keys(schema) if not _described(sub, schema)]
    assert not missing, f"keys without description: {missing}"
    assert len(list(_keys(load_schema()))) > 50


@pytest.mark.parametrize("key", ["version", "image", "platforms", "steps", "env", "workdir", "mounts", "resources",
                                 "network", "shell", "user", "cap_add", "cap_drop", "services", "cache", "runtime"])
def test_top_level_keys_covered(key):
    assert key in load_schema()["properties"]


def test_docs_spec_md_is_current():
    doc = (REPO / "docs" / "spec.md").read_text(encoding="utf-8")
    assert doc == render(), "docs/spec.md is stale: run `python -m specs.gendoc > docs/spec.md`"


def test_gendoc_cli_prints_the_same():
    out = subprocess.run([sys.executable, "-m", "specs.gendoc"], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout == render()
    for key in ("`steps[].copy.mode`", "`services.NAME.watch.debounce`", "`services.NAME.ready.http`",
                "`resources.memory`", "`cache.registry`", "`x-*`"):
        assert key in out.stdout


def test_public_api_frozen_and_lazy():
    assert specs.__all__ == sorted([
        "Cache", "Digest", "EnvSpec", "EnvctlError", "ImageRef", "InvalidDigest", "InvalidReference", "Lockfile", "Mount",
        "Ready", "Resources", "Service", "SpecError", "SpecErrors", "Step", "Watch", "canonical_digest",
        "canonical_json", "load_spec", "parse_reference", "parse_spec"])
    for name in specs.__all__:
        assert getattr(specs, name) is not None
    code = "import specs, specs.errors, specs.reference, specs.model, sys; print(sorted(m for m in sys.modules if m in ('yaml', 'jsonschema', 'jinja2', 'httpx')))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
