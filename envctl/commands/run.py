"""``envctl run [-e K=V] [-w DIR] -- CMD ARGS``: run one command in the environment.

Non-interactive: stdin/stdout/stderr and the exit status pass through (127 not found, 126 not
executable, 128+N killed by signal N, 137 + "killed: out of memory" on an OOM kill).
"""

from __future__ import annotations

import argparse


def add_parser(sub, name, parents):
    """Register ``envctl run`` on ``sub`` (argparse subparsers action) with the common option
    ``parents`` (list of ArgumentParser); returns the new subparser (argparse.ArgumentParser).
    """
    p = sub.add_parser(name, parents=parents, help="run a command in the environment",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    from envctl.commands._enter import add_run_args

    add_run_args(p)
    p.add_argument("-t", "--tty", action="store_true", help="allocate a pty (like docker run -t)")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD [ARGS...]", help="the command")
    return p


def run(args) -> int:
    """``envctl run -- CMD...``: run CMD in a fresh container of the environment.
    Returns CMD's exit status (int). Raises UsageError without a command.
    Raises EnvctlError subclasses (the CLI prints them and exits with their ``exit_code``).
    """
    from envctl.commands._enter import load_env, process_config, runtime_name
    from envctl.output import Output
    from runtime.runner import run_config
    from specs.errors import UsageError

    argv = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not argv:
        raise UsageError("run: no command given", hint="envctl run -- CMD [ARGS...]")
    out = Output(args.json, args.verbosity)
    _project, d, env = load_env(args, out)
    cfg = process_config(env, argv, tty=args.tty, cwd=args.workdir, extra_env=args.env)
    return run_config(cfg, runtime=runtime_name(cfg), state_dir=d, name=d.name, warn=out.warn)
