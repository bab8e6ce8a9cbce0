"""Helpers shared by the generators: templates, pinned references, the environment's variables."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["render_template", "comment", "pinned_base", "pushed_image", "environment_vars",
           "test_command", "ready_ports", "cap_name", "shell_argv"]


def _yaml_scalar(value) -> str:
    # JSON strings/numbers/booleans are valid YAML 1.2 (and 1.1) flow scalars: always quoted, exact
    return json.dumps(value, ensure_ascii=False)


def render_template(name: str, **context) -> str:
    """Render ``templates/generate/<name>`` (jinja2, StrictUndefined, no autoescape).

    Filters: ``json`` (compact JSON), ``yaml`` (a quoted YAML scalar). Raises jinja2 errors on
    template bugs (a missing variable is an error, never an empty string).
    """
    import jinja2

    import templates

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(Path(templates.__file__).parent / "generate")),
                             undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["json"] = lambda v: json.dumps(v, ensure_ascii=False)
    env.filters["yaml"] = _yaml_scalar
    return env.get_template(name).render(**context)


def comment(lines: list[str], marker: str = "#") -> str:
    """``lines`` as a comment block (each line prefixed by ``marker``), ending in a newline."""
    return "".join(f"{marker} {line}".rstrip() + "\n" for line in lines)


def pinned_base(inputs, what: str) -> str:
    """The locked base image as ``registry/repository@sha256:...`` (no tag: podman 4 and older
    containers/image refuse a reference with both a tag and a digest).

    Raises:
        GenerateError: the base image is not from a registry (``oci:``/archive transports).
    """
    from envctl.generate import GenerateError

    ref = inputs.spec.image
    if ref.transport != "docker":
        raise GenerateError(f"generate {what}: the base image {ref} is not in a registry",
                            hint="push it to a registry and use that reference in envctl.yaml")
    return f"{ref.registry}/{ref.repository}@{inputs.lock.image.digest}"


def pushed_image(options, what: str) -> str | None:
    """``--image`` normalised to ``registry/repository@sha256:...``, or None when not given.

    Raises:
        GenerateError: the reference has no digest (a tag can move: the output would not be pinned).
    """
    from envctl.generate import GenerateError
    from specs.reference import parse_reference

    if not options.image:
        return None
    ref = parse_reference(options.image)
    if ref.transport != "docker" or ref.digest is None:
        raise GenerateError(f"generate {what}: --image {options.image} is not pinned by digest",
                            hint="pass the pushed image as REGISTRY/REPO@sha256:... ('envctl push' prints it)")
    return f"{ref.registry}/{ref.repository}@{ref.digest}"


def environment_vars(spec) -> dict[str, str]:
    """The spec's ``env`` then every ``env`` step, in order (what the environment's processes see
    on top of the image's own Env)."""
    env = dict(spec.env)
    for step in spec.steps:
        if step.kind == "env":
            env.update(dict(step.env))
    return env


def test_command(spec, options) -> str | list[str] | None:
    """``--test-command``, else the spec's ``x-test`` extension key (string or list), else None."""
    if options.test_command:
        return options.test_command
    value = (spec.raw or {}).get("x-test")
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, list) and value and all(isinstance(x, str) for x in value):
        return list(value)
    return None


def ready_ports(spec) -> list[int]:
    """TCP ports of the services' readiness checks (port or http on a port), sorted, unique."""
    ports = set()
    for svc in spec.services:
        if svc.ready is not None and svc.ready.port is not None:
            ports.add(int(svc.ready.port))
    return sorted(ports)


def cap_name(name: str) -> str:
    """``CAP_NET_ADMIN`` -> ``NET_ADMIN`` (Docker and Kubernetes spell capabilities without CAP_)."""
    return name[4:] if name.upper().startswith("CAP_") else name


def shell_argv(command, shell: str | None) -> list[str]:
    """A spec command (string or argv tuple) as an argv: strings run by ``shell -c``."""
    if isinstance(command, (tuple, list)):
        return list(command)
    return [shell or "/bin/sh", "-c", command]
