"""``envctl exec [-it] -- CMD ARGS``: run a command in the running environment (joins its namespaces)."""

from __future__ import annotations

import argparse


def add_parser(sub, name, parents):
    """Register ``envctl exec`` on ``sub`` (argparse subparsers action) with the common option
    ``parents`` (list of ArgumentParser); returns the new subparser (argparse.ArgumentParser).
    """
    p = sub.add_parser(name, parents=parents, help="run a command in the running environment",
                       description=__doc__)
    from envctl.commands._enter import add_run_args

    add_run_args(p)
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin open (always on)")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a pty")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD [ARGS...]")
    return p


def run(args) -> int:
    """``envctl exec -- CMD...``: run CMD in the running environment (joins its namespaces).
    Returns CMD's exit status (int). Raises UsageError without a command, ContainerNotFound
    when the environment is not running.
    Raises EnvctlError subclasses (the CLI prints them and exits with their ``exit_code``).
    """
    from envctl.commands._enter import current_env
    from runtime.errors import ContainerNotFound
    from runtime.exec import exec_in
    from runtime.state import read_state
    from specs.errors import UsageError

    argv = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not argv:
        raise UsageError("exec: no command given", hint="envctl exec -- CMD [ARGS...]")
    project, d, _env = current_env(args)
    state = read_state(d)
    if state is None:
        raise ContainerNotFound(f"no running environment for {project.display_spec}",
                                hint="start one with 'envctl run' or 'envctl shell'")
    return exec_in(state, argv, tty=args.tty, env=args.env, cwd=args.workdir)
