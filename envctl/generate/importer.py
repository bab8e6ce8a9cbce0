"""``envctl import devcontainer.json``: the reverse direction, an envctl.yaml from a dev container.

What maps (containers.dev reference, devContainer.base.schema.json): ``image`` -> ``image``;
``containerEnv``/``remoteEnv`` -> ``env``; ``workspaceFolder`` -> ``workdir``; ``containerUser``
(else ``remoteUser``) -> ``user``; bind ``mounts`` -> ``mounts``; ``capAdd`` and the ``runArgs``
``--memory --cpus --pids-limit --network --cap-add --cap-drop`` -> ``resources``/``network``/
``cap_*``; ``onCreateCommand``/``updateContentCommand``/``postCreateCommand`` -> ``run`` steps
(they then run at build time, without the project mounted). Everything else is listed in the
result's ``skipped`` (and in the file's header) rather than dropped silently.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from envctl.generate import GenerateError

__all__ = ["ImportResult", "parse_jsonc", "import_devcontainer"]

_VAR = re.compile(r"\$\{[^}]*\}")
_COMMANDS = ("onCreateCommand", "updateContentCommand", "postCreateCommand")
_IGNORED = {"name": "name (kept as a comment)", "$schema": None}


@dataclass
class ImportResult:
    """``spec``: the envctl.yaml document (dict, key order kept); ``skipped``: what was not carried
    over, one phrase each; ``name``: the dev container's name or None."""

    spec: dict
    skipped: list[str] = field(default_factory=list)
    name: str | None = None

    def to_yaml(self, source: str) -> str:
        """envctl.yaml text with a header naming ``source`` and listing what was skipped."""
        import yaml

        head = [f"# Imported by envctl from {source}" + (f" ({self.name})" if self.name else "") + "."]
        if self.skipped:
            head.append("# Not carried over:")
            head += [f"#   - {s}" for s in self.skipped]
        body = yaml.safe_dump(self.spec, sort_keys=False, default_flow_style=False, allow_unicode=True, width=4096)
        return "\n".join(head) + "\n" + body


def parse_jsonc(text: str, source: str):
    """Parse JSON with comments (``//``, ``/* */``) and trailing commas, as devcontainer.json allows.

    Raises:
        GenerateError: not valid JSONC (the message has the line).
    """
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            stripped = text[i:(end + 2 if end >= 0 else n)]
            out.append("\n" * stripped.count("\n"))  # keep line numbers for errors
            i = end + 2 if end >= 0 else n
        else:
            out.append(c)
            i += 1
    plain = re.sub(r",(\s*[}\]])", r"\1", "".join(out))
    try:
        return json.loads(plain)
    except ValueError as e:
        raise GenerateError(f"import: {source}: not valid JSON with comments ({e})") from None


def _has_var(value) -> bool:
    return isinstance(value, str) and bool(_VAR.search(value))


def _env(doc, res: ImportResult) -> dict:
    env = {}
    for key in ("containerEnv", "remoteEnv"):
        for k, v in (doc.get(key) or {}).items():
            if v is None or _has_var(v):
                res.skipped.append(f"{key}.{k} (uses ${{...}} variables)" if v is not None else f"{key}.{k}")
            else:
                env[k] = str(v)
    return env


def _mount(m, res: ImportResult):
    if isinstance(m, str):
        parts = dict(p.split("=", 1) if "=" in p else (p, "true") for p in m.split(","))
    else:
        parts = dict(m)
    kind = parts.get("type", "bind")
    src, dst = parts.get("source") or parts.get("src"), parts.get("target") or parts.get("dst")
    if kind != "bind" or not src or not dst:
        res.skipped.append(f"mount {m!r} (only bind mounts map)")
        return None
    src = src.replace("${localEnv:HOME}", "~").replace("${localWorkspaceFolder}/", "./")
    if _has_var(src):
        res.skipped.append(f"mount {m!r} (source uses ${{...}} variables)")
        return None
    return {"source": src, "target": dst, "readonly": parts.get("readonly") in ("true", "1") or "ro" in parts}


def _cap(name: str) -> str:
    name = name.upper()
    return name if name.startswith("CAP_") or name == "ALL" else "CAP_" + name


def _run_args(args, spec: dict, res: ImportResult) -> None:
    i = 0
    while i < len(args):
        a = args[i]
        key, eq, val = a.partition("=")
        if not eq and key in ("--memory", "-m", "--cpus", "--pids-limit", "--network", "--net", "--cap-add",
                              "--cap-drop") and i + 1 < len(args):
            val, i = args[i + 1], i + 1
        if key in ("--memory", "-m"):
            spec.setdefault("resources", {})["memory"] = val.upper().removesuffix("B") or val
        elif key == "--cpus":
            spec.setdefault("resources", {})["cpus"] = float(val)
        elif key == "--pids-limit":
            spec.setdefault("resources", {})["pids"] = int(val)
        elif key in ("--network", "--net") and val in ("host", "none"):
            spec["network"] = val
        elif key in ("--cap-add", "--cap-drop"):
            spec.setdefault(key[2:].replace("-", "_"), []).append(_cap(val))
        else:
            res.skipped.append(f"runArgs {a}" + (f" {val}" if not eq and val and key not in ("--network",) else ""))
        i += 1


def _steps(doc, res: ImportResult) -> list:
    steps = []
    for key in _COMMANDS:
        cmd = doc.get(key)
        if cmd is None:
            continue
        items = sorted(cmd.items()) if isinstance(cmd, dict) else [(None, cmd)]
        for _name, c in items:
            if _has_var(c if isinstance(c, str) else " ".join(map(str, c))):
                res.skipped.append(f"{key} {c!r} (uses ${{...}} variables)")
                continue
            steps.append({"run": c if isinstance(c, str) else [str(x) for x in c]})
        res.skipped.append(f"{key}: became build steps (they run without the project mounted)")
    return steps


def import_devcontainer(doc, source: str = "devcontainer.json") -> ImportResult:
    """Map a parsed devcontainer.json (dict) to an envctl.yaml document.

    Raises:
        GenerateError: not an object, or no ``image`` (Dockerfile and compose setups have none to pin).
    """
    if not isinstance(doc, dict):
        raise GenerateError(f"import: {source}: expected a JSON object")
    image = doc.get("image")
    if not isinstance(image, str) or _has_var(image):
        what = "build.dockerfile" if "build" in doc or "dockerFile" in doc else \
            "dockerComposeFile" if "dockerComposeFile" in doc else "image"
        raise GenerateError(f"import: {source}: no image to import ({what})",
                            hint="envctl starts from an image: build and push the Dockerfile, then set "
                                 "\"image\" to it (or write envctl.yaml by hand with copy/run steps)")
    res = ImportResult({"version": 1, "image": image}, name=doc.get("name"))
    spec = res.spec
    if steps := _steps(doc, res):
        spec["steps"] = steps
    if env := _env(doc, res):
        spec["env"] = env
    wf = doc.get("workspaceFolder")
    if isinstance(wf, str) and wf.startswith("/") and not _has_var(wf):
        spec["workdir"] = wf
    elif wf is not None:
        res.skipped.append(f"workspaceFolder {wf!r} (not an absolute path without variables)")
    user = doc.get("containerUser") or doc.get("remoteUser")
    if isinstance(user, str) and not _has_var(user):
        spec["user"] = user
    mounts = [m for m in (_mount(x, res) for x in doc.get("mounts") or []) if m]
    if mounts:
        spec["mounts"] = mounts
    for cap in doc.get("capAdd") or []:
        spec.setdefault("cap_add", []).append(_cap(cap))
    _run_args([str(a) for a in doc.get("runArgs") or []], spec, res)
    handled = {"image", "containerEnv", "remoteEnv", "workspaceFolder", "containerUser", "remoteUser",
               "mounts", "capAdd", "runArgs", "workspaceMount", *_COMMANDS, *_IGNORED}
    for key in doc:
        if key not in handled:
            res.skipped.append(key)
    return res
