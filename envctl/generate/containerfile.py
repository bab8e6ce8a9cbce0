"""``envctl generate containerfile``: a Containerfile that rebuilds the environment image.

``FROM`` is the locked base digest; each step becomes the instruction with the same meaning in
envctl's build (engine/build/steps.py): ``run`` -> ``RUN`` (``/bin/sh -c``, exec form when the script
spans lines), ``copy`` -> ``COPY [--chown] [--chmod]`` (relative destinations follow WORKDIR in
both), ``env`` -> ``ENV``, ``workdir`` -> ``WORKDIR``, ``user`` -> ``USER``. The spec's ``env``
comes first (envctl passes it to every step); the environment's ``workdir``, ``user`` and shell
close the file, as in the image ``envctl push`` assembles (engine/publish/export.py).
"""

from __future__ import annotations

import json
import os

from envctl.generate import GenerateError, Generated, header_lines
from envctl.generate.common import comment, pinned_base, render_template

__all__ = ["render", "instructions"]

PATH = "Containerfile"
SPEC_LABEL = "dev.envctl.spec.digest"


def _env_value(name: str, value: str) -> str:
    if "\n" in value or "\r" in value:
        raise GenerateError(f"generate containerfile: env {name}: a value with a newline cannot be "
                            "written as a Containerfile ENV", hint="drop the newline from the value")
    # ENV substitutes $VAR and honours backslash escapes inside double quotes
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'{name}="{escaped}"'


def _env(pairs) -> list[str]:
    return [f"ENV {_env_value(k, v)}" for k, v in pairs]


def _run(step) -> str:
    if isinstance(step.run, (tuple, list)):
        return "RUN " + json.dumps(list(step.run), ensure_ascii=False)
    script = step.run
    if "\n" in script.strip() or script.rstrip().endswith("\\") or script != script.strip():
        # exec form keeps the script byte for byte: the same argv envctl's executor gets
        return "RUN " + json.dumps(["/bin/sh", "-c", script], ensure_ascii=False)
    return f"RUN {script}"


def _plain(word: str) -> bool:
    return bool(word) and not any(c.isspace() or c in "\"'\\[" for c in word)


def _copy(step) -> str:
    flags = []
    if step.owner:
        flags.append(f"--chown={step.owner}")
    if step.mode is not None:
        flags.append(f"--chmod={step.mode:04o}")
    if _plain(step.src) and _plain(step.dest):
        args = f"{step.src} {step.dest}"
    else:
        args = json.dumps([step.src, step.dest], ensure_ascii=False)
    return " ".join(["COPY", *flags, args])


def _step(step) -> str:
    if step.kind == "run":
        return _run(step)
    if step.kind == "copy":
        return _copy(step)
    if step.kind == "env":
        return "\n".join(_env(step.env))
    if step.kind == "workdir":
        return f"WORKDIR {step.workdir}"
    return f"USER {step.user}"


def instructions(spec) -> list[tuple[str, str]]:
    """(comment, instruction text) per step, in order."""
    out = []
    for i, step in enumerate(spec.steps):
        note = f"step {i + 1}: {step.kind}" + ("" if step.reproducible else " (reproducible: false)")
        out.append((note, _step(step)))
    return out


def _notes(inputs) -> list[str]:
    spec = inputs.spec
    notes = []
    if spec.mounts:
        notes.append("mounts (bind mounts are given at run time: -v SOURCE:TARGET)")
    if spec.resources.to_dict():
        notes.append("resources (limits are given at run time: --memory/--cpus/--pids-limit)")
    if spec.network != "host":
        notes.append(f"network: {spec.network} (given at run time: --network)")
    if spec.cap_add or spec.cap_drop:
        notes.append("cap_add/cap_drop (given at run time: --cap-add/--cap-drop)")
    if spec.services:
        notes.append("services (run by 'envctl up'; see 'envctl generate k8s')")
    if any(s.kind == "copy" for s in spec.steps) and os.path.exists(os.path.join(inputs.root, ".envctlignore")):
        notes.append(".envctlignore (podman/docker read .containerignore/.dockerignore instead)")
    return notes


def render(inputs, options) -> Generated:
    """The Containerfile (see module doc). Raises GenerateError for a base image not in a registry."""
    spec = inputs.spec
    notes = _notes(inputs)
    text = render_template(
        "Containerfile.j2",
        header=comment(header_lines(inputs, "containerfile", options, notes)),
        base=pinned_base(inputs, "containerfile"), base_name=inputs.lock.image.reference,
        label=f'{SPEC_LABEL}="{spec.digest()}"', env=_env(spec.env), steps=instructions(spec),
        workdir=spec.workdir, user=spec.user, cmd=json.dumps([spec.shell or "/bin/sh"]))
    return Generated("containerfile", PATH, text.encode(), tuple(notes))
