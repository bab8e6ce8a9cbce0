"""``envctl import devcontainer.json [-o envctl.yaml] [--stdout] [--force]``: start from a dev container.

Writes an envctl.yaml carrying over what maps (image, env, workspace folder, user, bind mounts,
resource/network/capability run arguments, create commands as build steps) and lists, on stderr
and in the file's header, everything it could not carry over. The result is validated by loading it.
"""

from __future__ import annotations

import argparse


def add_parser(sub, name, parents):
    """Register ``envctl import`` on ``sub`` (argparse subparsers action) with the common option
    ``parents`` (list of ArgumentParser); returns the new subparser (argparse.ArgumentParser).
    """
    p = sub.add_parser(name, parents=parents, help="create envctl.yaml from a devcontainer.json",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", metavar="DEVCONTAINER_JSON", help="path of the devcontainer.json to import")
    p.add_argument("-o", "--output", metavar="FILE", help="envctl.yaml to write (default: in the project directory)")
    p.add_argument("--stdout", action="store_true", help="print instead of writing")
    p.add_argument("--force", action="store_true", help="overwrite an existing envctl.yaml")
    return p


def _validate(text: str, display: str) -> None:
    import tempfile
    from pathlib import Path

    from specs.load import load_spec

    with tempfile.TemporaryDirectory(prefix="envctl-import-") as d:
        path = Path(d) / "envctl.yaml"
        path.write_text(text)
        load_spec(path, display=display)


def run(args) -> int:
    """``envctl import DEVCONTAINER_JSON``: write envctl.yaml from a devcontainer.json (JSONC).
    Returns the exit code (int, 0). Raises UsageError when the source is unreadable or the
    target exists without ``--force``.
    Raises EnvctlError subclasses (the CLI prints them and exits with their ``exit_code``).
    """
    from pathlib import Path

    from envctl.generate.importer import import_devcontainer, parse_jsonc
    from envctl.output import Output
    from specs.errors import UsageError

    out = Output(args.json, args.verbosity)
    src = Path(args.source)
    try:
        text = src.read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"import: cannot read {args.source}: {e.strerror}") from None
    result = import_devcontainer(parse_jsonc(text, args.source), args.source)
    yaml_text = result.to_yaml(src.name if src.parent.name != ".devcontainer" else f".devcontainer/{src.name}")
    target = Path(args.output) if args.output else Path(args.project or ".") / "envctl.yaml"
    _validate(yaml_text, str(target))
    for item in result.skipped:
        out.warn(f"not carried over: {item}")
    if args.stdout:
        import sys

        sys.stdout.write(yaml_text)
        return 0
    if target.exists() and not args.force:
        raise UsageError(f"import: {target} exists", hint="pass --force to overwrite it, or -o FILE")
    target.write_text(yaml_text)
    out.result({"path": str(target), "skipped": result.skipped}, f"wrote {target}")
    return 0
