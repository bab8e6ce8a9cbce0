"""``envctl init [--image REF] [--preset NAME] [--force]``: write a commented envctl.yaml.

Renders ``templates/envctl.yaml.j2`` (or ``templates/init/<preset>.yaml.j2``) with jinja2,
checks the result loads as a valid spec, writes it without clobbering an existing file unless
``--force``, and adds ``/.envctl/`` (per-project local state) to .gitignore.
"""

from __future__ import annotations

import os
import re

PRESETS = {"default": ("envctl.yaml.j2", "docker.io/library/debian:bookworm-slim"),
           "python": ("init/python.yaml.j2", "docker.io/library/python:3.12-slim")}
GITIGNORE_ENTRY = "/.envctl/"
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@+-]*")


def add_parser(sub, name, parents):
    """Register ``envctl init`` on ``sub`` (argparse subparsers action) with the common option
    ``parents`` (list of ArgumentParser); returns the new subparser (argparse.ArgumentParser).
    """
    p = sub.add_parser(name, parents=parents, help="create a commented envctl.yaml here",
                       description="Write envctl.yaml in the project directory (-C, default: here).")
    p.add_argument("--image", metavar="REF", help="base image reference (default: depends on --preset)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="default", help="starting point")
    p.add_argument("--force", action="store_true", help="overwrite an existing spec file")
    return p


def yaml_str(value: str) -> str:
    """A YAML scalar for ``value``: plain when unambiguous, else double-quoted (JSON is valid YAML)."""
    import json

    if _PLAIN.fullmatch(value) and not value.endswith(":"):
        return value
    return json.dumps(value)


def render(preset: str, image: str) -> str:
    """The spec text for ``preset`` with ``image`` (str). Raises jinja2 errors on template bugs."""
    from pathlib import Path

    import jinja2

    import templates

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(Path(templates.__file__).parent)),
                             undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
    env.filters["yaml_str"] = yaml_str
    return env.get_template(PRESETS[preset][0]).render(image=image)


def _write_new(path, text: str, force: bool) -> None:
    from specs.errors import EnvctlError

    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    try:
        if force:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails with EEXIST instead of clobbering a file created meanwhile
    except FileExistsError:
        raise EnvctlError(f"create {path}: already exists", hint="pass --force to overwrite it") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def ensure_gitignore(root) -> bool:
    """Add ``/.envctl/`` to ``root/.gitignore`` unless already there; returns True when written."""
    path = os.path.join(root, ".gitignore")
    try:
        with open(path, encoding="utf-8") as f:
            current = f.read()
    except FileNotFoundError:
        current = ""
    lines = {line.strip() for line in current.splitlines()}
    if lines & {GITIGNORE_ENTRY, ".envctl/", ".envctl", "/.envctl"}:
        return False
    with open(path, "a", encoding="utf-8") as f:
        f.write(("\n" if current and not current.endswith("\n") else "")
                + "# envctl: per-project local state (envctl.yaml and envctl.lock are committed)\n"
                + GITIGNORE_ENTRY + "\n")
    return True


def _file_opt(file: str | None) -> str:
    """`` -f FILE`` for the next-step hint when the spec is not the default envctl.yaml (str;
    QA L5: the hint named commands that would not find the new spec)."""
    import shlex

    return f" -f {shlex.quote(file)}" if file and file != "envctl.yaml" else ""


def run(args) -> int:
    """``envctl init``: write a commented envctl.yaml from a template (``--preset``, ``--image``).
    Returns the exit code (int, 0). Raises EnvctlError when the spec exists without ``--force``,
    UsageError when the ``-C`` directory is missing, InvalidReference for a bad ``--image``.
    Raises EnvctlError subclasses (the CLI prints them and exits with their ``exit_code``).
    """
    from pathlib import Path

    from envctl.output import Output
    from envctl.project import SPEC_NAME
    from specs.errors import EnvctlError, UsageError
    from specs.load import parse_spec
    from specs.reference import parse_reference

    out = Output(args.json, args.verbosity)
    root = Path(args.project or ".").absolute()
    if not root.is_dir():
        raise UsageError(f"-C {args.project}: no such directory")
    spec_path = root / (args.file or SPEC_NAME)
    if spec_path.exists() and not args.force:
        raise EnvctlError(f"create {spec_path}: already exists", hint="pass --force to overwrite it")
    image = args.image or PRESETS[args.preset][1]
    parse_reference(image)  # InvalidReference (exit 2) names what is wrong
    text = render(args.preset, image)
    parse_spec(text, spec_path)  # the template must always produce a valid spec
    try:
        _write_new(spec_path, text, args.force)
        ignored = ensure_gitignore(root)
    except PermissionError as e:  # EACCES/EPERM; a read-only filesystem is EROFS below
        raise EnvctlError(f"create {e.filename or spec_path}: {e.strerror}",
                          hint="run envctl init in a directory you can write to (or pass -C DIR)") from None
    except OSError as e:
        raise EnvctlError(f"create {e.filename or spec_path}: {e.strerror or e}",
                          hint="run envctl init in a writable directory (or pass -C DIR)") from None
    out.info(f"wrote {spec_path}" + (" and added /.envctl/ to .gitignore" if ignored else ""))
    out.result({"spec": str(spec_path), "image": image, "gitignoreUpdated": ignored},
               f"next: edit {spec_path.name}, then 'envctl validate{_file_opt(args.file)}' and "
               f"'envctl lock{_file_opt(args.file)}'")
    return 0
