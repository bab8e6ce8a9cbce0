"""``envctl restart [SERVICE...]``: restart services of the running ``envctl up`` (all by default).

The request goes to the running supervisor (foreground or ``-d``); a service restarts with
SIGTERM to its process group, the grace period, SIGKILL, then starts and is waited for again.
"""

from __future__ import annotations


def add_parser(sub, name, parents):
    """Register ``envctl restart`` on ``sub`` (argparse subparsers action) with the common option
    ``parents`` (list of ArgumentParser); returns the new subparser (argparse.ArgumentParser).
    """
    p = sub.add_parser(name, parents=parents, help="restart services", description=__doc__)
    p.add_argument("services", nargs="*", metavar="SERVICE", help="services to restart (default: all)")
    return p


def run(args) -> int:
    """``envctl restart [SERVICE...]``: ask the supervisor to restart services (default: all).
    Returns the exit code (int, 0).
    Raises EnvctlError subclasses (the CLI prints them and exits with their ``exit_code``).
    """
    from envctl.commands._enter import current_env
    from envctl.output import Output
    from envctl.services_up import request_restart

    out = Output(args.json, args.verbosity)
    _project, d, _env = current_env(args)
    request_restart(d, list(args.services))
    out.result({"restarting": list(args.services) or "all"},
               f"restarting {', '.join(args.services) or 'all services'}")
    return 0
