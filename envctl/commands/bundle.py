"""``envctl bundle DIR [--copy] [-- CMD ...]``: write an OCI bundle (config.json + rootfs) of the
environment, runnable by ``envctl oci run``, runc or crun.

Without ``--copy`` config.json points at the environment's rootfs in the store (an overlay plan
in annotation ``dev.envctl.rootfs``, which envctl's runtime mounts itself); ``--copy`` materialises
DIR/rootfs as a plain directory that any OCI runtime can use.
"""

from __future__ import annotations

import argparse


def add_parser(sub, name, parents):
    """Register ``envctl bundle`` on ``sub`` (argparse subparsers action) with the common option
    ``parents`` (list of ArgumentParser); returns the new subparser (argparse.ArgumentParser).
    """
    p = sub.add_parser(name, parents=parents, help="write an OCI runtime bundle of the environment",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir", metavar="DIR", help="bundle directory (created)")
    p.add_argument("--copy", action="store_true", help="copy the rootfs into DIR/rootfs")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD [ARGS...]", help="process.args (default sh)")
    return p


def run(args) -> int:
    """``envctl bundle DIR [-- CMD...]``: write an OCI runtime bundle (OCI runtime spec, bundle.md:
    config.json + rootfs) of the environment to DIR. Returns the exit code (int, 0).
    Raises EnvctlError subclasses (the CLI prints them and exits with their ``exit_code``).
    """
    import json
    from pathlib import Path

    from envctl.commands._enter import load_env, process_config
    from envctl.output import Output
    from runtime.bundle import write_bundle

    out = Output(args.json, args.verbosity)
    _project, _d, env = load_env(args, out)
    argv = (args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd) or ["sh"]
    cfg = process_config(env, argv, tty=False)
    try:
        path = write_bundle(Path(args.dir), cfg, env.get("rootfs") or {}, copy=args.copy)
    except OSError as e:
        from specs.errors import EnvctlError

        raise EnvctlError(f"bundle {args.dir}: {e.strerror or e}" + (f": {e.filename}" if e.filename else ""),
                          hint="choose a new or empty directory you can write") from None
    out.result({"bundle": str(path)}, f"bundle written to {path}")
    return 0
