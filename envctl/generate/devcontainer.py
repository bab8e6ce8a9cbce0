"""``envctl generate devcontainer``: ``.devcontainer/devcontainer.json`` for VS Code / devcontainer CLI.

devcontainer.json is JSONC (the spec's schema sets ``allowComments``), so the header is a ``//``
comment block; the body is ``json.dumps`` of a dict built in a fixed key order (valid JSON,
deterministic bytes).

- ``image``: ``--image`` (the pushed environment, by digest) or the locked base digest; without a
  pushed image the steps are replayed by ``postCreateCommand`` (one ``/bin/sh -ec`` script).
- ``workspaceMount``/``workspaceFolder``: the project bind-mounted at the spec's ``workdir``.
- ``containerEnv``: the spec's ``env`` plus ``env`` steps; ``containerUser``: the spec's ``user``.
- ``forwardPorts``: the services' readiness ports; ``mounts``: the spec's bind mounts.
- ``runArgs``: ``--memory``/``--cpus``/``--pids-limit``, ``--network=none``, ``--cap-drop``;
  ``capAdd`` for added capabilities.
"""

from __future__ import annotations

import glob
import json
import os
import posixpath
import shlex

from envctl.generate import Generated, header_lines
from envctl.generate.common import (cap_name, comment, environment_vars, pinned_base, pushed_image,
                                    ready_ports, render_template)

__all__ = ["render", "post_create_script", "strip_comments"]

PATH = ".devcontainer/devcontainer.json"


def _mount_source(source: str) -> str:
    if source == "~" or source.startswith("~/"):
        return "${localEnv:HOME}" + source[1:]
    if posixpath.isabs(source):
        return source
    return "${localWorkspaceFolder}/" + posixpath.normpath(source)


def _mounts(spec) -> list[str]:
    return [f"source={_mount_source(m.source)},target={m.target},type=bind" + (",readonly" if m.readonly else "")
            for m in spec.mounts]


def _run_args(spec) -> list[str]:
    r = spec.resources
    args = []
    if r.memory is not None:
        args.append(f"--memory={r.memory}b")
    if r.cpus is not None:
        args.append(f"--cpus={r.cpus}")
    if r.pids is not None:
        args.append(f"--pids-limit={r.pids}")
    if spec.network == "none":
        args.append("--network=none")
    args += [f"--cap-drop={cap_name(c)}" for c in spec.cap_drop]
    return args


def _copy_line(spec, step, cwd: str, root) -> tuple[str, str]:
    """(``cp`` line, path to chmod/chown) with a Containerfile COPY's meaning: a directory
    source copies its contents; a destination ending in ``/`` is a directory."""
    dest = posixpath.join(cwd, step.dest)
    src = posixpath.join(spec.workdir, step.src)
    q = shlex.quote
    if glob.has_magic(step.src):
        return f"mkdir -p {q(dest)} && cp -R {src} {q(dest)}", dest
    if root is not None and os.path.isdir(os.path.join(root, step.src)):
        return f"mkdir -p {q(dest)} && cp -R {q(src)}/. {q(dest)}", dest
    target = posixpath.join(dest, posixpath.basename(step.src)) if step.dest.endswith("/") else dest
    return f"mkdir -p {q(posixpath.dirname(target))} && cp {q(src)} {q(target)}", target


def post_create_script(spec, root=None) -> tuple[str, list[str]]:
    """The steps replayed as one shell script run after the container is created.

    Args:
        spec: specs.model.EnvSpec.
        root: the project directory (tells directory copy sources from files), or None.

    Returns:
        (script, notes) — notes name what a script cannot replay (``user`` steps).
    """
    lines, notes, cwd = ["set -e"], [], "/"
    for i, step in enumerate(spec.steps):
        lines.append(f"# step {i + 1}: {step.kind}")
        if step.kind == "run":
            cmd = step.run if isinstance(step.run, str) else shlex.join(step.run)
            lines.append(f"(cd {shlex.quote(cwd)} && /bin/sh -c {shlex.quote(cmd)})")
        elif step.kind == "copy":
            line, dest = _copy_line(spec, step, cwd, root)
            lines.append(line)
            if step.mode is not None:
                lines.append(f"chmod -R {step.mode:o} {shlex.quote(dest)}")
            if step.owner:
                lines.append(f"chown -R {shlex.quote(step.owner)} {shlex.quote(dest)}")
        elif step.kind == "env":
            lines += [f"export {k}={shlex.quote(v)}" for k, v in step.env]
        elif step.kind == "workdir":
            cwd = posixpath.normpath(posixpath.join(cwd, step.workdir))
        else:
            notes.append(f"step {i + 1} (user: {step.user}): postCreateCommand runs every step as the container user")
    return "\n".join(lines) + "\n", notes


def _document(inputs, options) -> tuple[dict, list[str]]:
    spec = inputs.spec
    pushed = pushed_image(options, "devcontainer")
    doc: dict = {"name": f"envctl: {spec.image.familiar()}",
                 "image": pushed or pinned_base(inputs, "devcontainer"),
                 "workspaceMount": f"source=${{localWorkspaceFolder}},target={spec.workdir},type=bind",
                 "workspaceFolder": spec.workdir}
    notes: list[str] = []
    if env := environment_vars(spec):
        doc["containerEnv"] = env
    if spec.user:
        doc["containerUser"] = spec.user
    if mounts := _mounts(spec):
        doc["mounts"] = mounts
    if ports := ready_ports(spec):
        doc["forwardPorts"] = ports
    if spec.cap_add:
        doc["capAdd"] = [cap_name(c) for c in spec.cap_add]
    if run_args := _run_args(spec):
        doc["runArgs"] = run_args
    if not pushed and any(s.kind in ("run", "copy") for s in spec.steps):
        script, notes = post_create_script(spec, inputs.root)
        doc["postCreateCommand"] = ["/bin/sh", "-ec", script]
    if spec.services:
        notes.append("services (start them with 'envctl up' or the service commands in the container)")
    return doc, notes


def render(inputs, options) -> Generated:
    """devcontainer.json bytes (JSONC: ``//`` header, then JSON). Raises GenerateError."""
    doc, notes = _document(inputs, options)
    text = render_template("devcontainer.json.j2",
                           header=comment(header_lines(inputs, "devcontainer", options, notes), "//"),
                           body=json.dumps(doc, indent=2, ensure_ascii=False))
    return Generated("devcontainer", PATH, text.encode(), tuple(notes))


def strip_comments(text: str) -> str:
    """Drop whole-line ``//`` comments (the only JSONC feature our output uses) -> plain JSON text."""
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))
