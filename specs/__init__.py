"""envctl specs: the envctl.yaml model and schema, image references, digests, the lockfile.

Pure data: parse, validate, serialise. Imports nothing of engine/, runtime/ or envctl/.
Names are resolved lazily (PEP 562) so that ``import specs.errors`` on the CLI's start-up
path costs nothing; yaml and jsonschema load only when a spec is loaded.
"""

from __future__ import annotations

# public name -> defining module
_EXPORTS = {
    "load_spec": "specs.load",
    "parse_spec": "specs.load",
    "EnvSpec": "specs.model",
    "Step": "specs.model",
    "Mount": "specs.model",
    "Resources": "specs.model",
    "Service": "specs.model",
    "Ready": "specs.model",
    "Watch": "specs.model",
    "Cache": "specs.model",
    "ImageRef": "specs.reference",
    "parse_reference": "specs.reference",
    "Digest": "specs.digest",
    "Lockfile": "specs.lockfile",
    "canonical_json": "specs.canonical",
    "canonical_digest": "specs.canonical",
    "EnvctlError": "specs.errors",
    "SpecError": "specs.errors",
    "SpecErrors": "specs.errors",
    "InvalidReference": "specs.errors",
    "InvalidDigest": "specs.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'specs' has no attribute {name!r}")
    import importlib  # here: importlib/__init__ (and warnings) cost ~0.5 ms on `envctl run`

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
