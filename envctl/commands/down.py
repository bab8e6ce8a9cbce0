"""``envctl down [--reset] [-t SECONDS]``: stop the project's services (their supervisor sends
each SIGTERM, waits its grace period, then SIGKILL), then the running environment (SIGTERM,
grace, SIGKILL); ``--reset`` also discards the environment's writable layer (the overlay upperdir)."""

from __future__ import annotations


def _seconds(text: str) -> float:
    """argparse type for ``-t``: a finite number of seconds >= 0 (float); negative is refused (QA L7)."""
    import argparse
    import math

    try:
        t = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of seconds: {text!r}") from None
    if not math.isfinite(t) or t < 0:
        raise argparse.ArgumentTypeError(f"the grace period must be 0 or more seconds, got {text}")
    return t


def add_parser(sub, name, parents):
    """Register ``envctl down`` on ``sub`` (argparse subparsers action) with the common option
    ``parents`` (list of ArgumentParser); returns the new subparser (argparse.ArgumentParser).
    """
    p = sub.add_parser(name, parents=parents, help="stop the services and the environment", description=__doc__)
    p.add_argument("-t", "--timeout", type=_seconds, default=10.0, metavar="SECONDS",
                   help="grace period after SIGTERM before SIGKILL (default 10)")
    p.add_argument("--reset", action="store_true", help="discard changes made inside the environment")
    return p


def run(args) -> int:
    """``envctl down``: stop the services (through their supervisor, SIGTERM then SIGKILL after
    ``--timeout`` seconds) and the environment; ``--reset`` discards its upper layer.
    Returns the exit code (int, 0).
    Raises EnvctlError subclasses (the CLI prints them and exits with their ``exit_code``).
    """
    from envctl.commands._enter import current_env
    from envctl.output import Output
    from envctl.services_up import stop_services
    from runtime.lifecycle import reset_upper, stop

    out = Output(args.json, args.verbosity)
    project, d, env = current_env(args)
    # services first, through their supervisor (SIGTERM + per-service grace), so they are not
    # killed with the environment's PID 1; wait for it a little longer than -t
    services = stop_services(d, timeout=max(15.0, args.timeout + 5))
    stopped = stop(d, timeout=args.timeout)
    reset = False
    if args.reset and env:
        reset = reset_upper(env.get("rootfs") or {}, env.get("runtime"))
    out.result({"env": d.name, "stopped": stopped, "servicesStopped": services, "reset": reset},
               # the supervisor ends the environment with its services, so `stopped` alone
               # would report "not running" right after stopping them
               f"{project.root.name}: {'stopped' if stopped or services else 'not running'}"
               + ("; writable layer reset" if reset else ""))
    return 0
