"""``envctl generate devcontainer|containerfile|ci|k8s [--stdout] [--check]``: files for other tools.

Rendered from envctl.yaml + envctl.lock (which must be current: exit 3 otherwise). ``--check``
writes nothing and exits 3 naming the file when it is missing or differs; without a target it
checks every generated file found at the standard paths, with the options in its header.
"""

from __future__ import annotations

import argparse

TARGETS = ("devcontainer", "containerfile", "ci", "k8s")


def _options_parser(parents=()) -> argparse.ArgumentParser:
    from envctl.cli import _Parser

    p = _Parser(add_help=False, parents=list(parents))
    p.add_argument("--provider", choices=("github", "gitlab"), default="github", help="(ci) CI system")
    p.add_argument("--image", metavar="REF@DIGEST",
                   help="(devcontainer, k8s) the pushed environment image, pinned by digest")
    p.add_argument("--test-command", metavar="CMD", help="(ci) test command (default: x-test in envctl.yaml)")
    p.add_argument("--kind", choices=("pod", "deployment"), default="pod", help="(k8s) workload kind")
    p.add_argument("--name", default="envctl", help="(k8s) object name (default: envctl)")
    p.add_argument("-o", "--output", metavar="PATH", help="output path relative to the project")
    return p


def add_parser(sub, name, parents):
    """Register ``envctl generate`` on ``sub`` (argparse subparsers action) with the common option
    ``parents`` (list of ArgumentParser); returns the new subparser (argparse.ArgumentParser).
    """
    p = sub.add_parser(name, parents=[*parents, _options_parser()], help="write devcontainer.json, "
                       "Containerfile, CI workflow or Kubernetes manifest", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", nargs="?", choices=TARGETS, help="what to generate (none: with --check, all found)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--stdout", action="store_true", help="print instead of writing")
    mode.add_argument("--check", action="store_true", help="exit 3 if the file is missing or stale")
    return p


def _options(ns):
    from envctl.generate import Options

    return Options(provider=ns.provider, image=ns.image, test_command=ns.test_command, kind=ns.kind,
                   name=ns.name, output=ns.output)


def _check_all(root, inputs, out) -> int:
    from envctl.generate import check, find_generated, generate
    from specs.errors import UsageError

    found = find_generated(root)
    if not found:
        raise UsageError("generate --check: no generated files found at the standard paths",
                         hint="name a target: envctl generate TARGET --check")
    for rel, argv in found:
        if not argv or argv[0] not in TARGETS:
            raise UsageError(f"generate --check: {rel}: cannot read its regenerate line")
        ns = _options_parser().parse_args(argv[1:])
        result = generate(argv[0], inputs, _options(ns))
        if result.path != rel:
            continue  # written with -o elsewhere; the standard path holds something else
        check(root, result)
        out.info(f"{rel}: up to date")
    out.result({"checked": [r for r, _ in found], "current": True}, f"{len(found)} generated file(s) up to date")
    return 0


def run(args) -> int:
    """``envctl generate [TARGET]``: write (or ``--stdout`` print, or ``--check``) devcontainer.json,
    Containerfile, CI workflow or Kubernetes manifest from the spec. Returns the exit code
    (int: 0, or 3 with ``--check`` when a file is missing or stale).
    Raises EnvctlError subclasses (the CLI prints them and exits with their ``exit_code``).
    """
    from envctl.generate import check, generate, load_inputs, write
    from envctl.output import Output
    from envctl.project import find_project
    from specs.errors import UsageError

    out = Output(args.json, args.verbosity)
    project = find_project(args.project, args.file)
    inputs = load_inputs(project)
    if args.target is None:
        if not args.check:
            raise UsageError("generate: no target given", hint="envctl generate devcontainer|containerfile|ci|k8s")
        return _check_all(project.root, inputs, out)
    result = generate(args.target, inputs, _options(args))
    if args.stdout:
        import sys

        sys.stdout.buffer.write(result.data)
        sys.stdout.flush()
        return 0
    if args.check:
        check(project.root, result)
        out.result({"path": result.path, "current": True}, f"{result.path} is up to date")
        return 0
    try:
        changed = write(project.root, result)
    except OSError as e:
        from specs.errors import EnvctlError

        raise EnvctlError(f"generate {args.target}: write {result.path}: {e.strerror or e}",
                          hint="check the -o path and that the directory is writable") from None
    for note in result.notes:
        out.info(f"not carried over: {note}")
    out.result({"path": result.path, "changed": changed, "notes": list(result.notes)},
               f"{'wrote' if changed else 'unchanged:'} {result.path}")
    return 0
