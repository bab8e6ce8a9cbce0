"""``envctl oci [--root DIR] create|start|state|kill|delete|run``: the builtin runtime as a
runc-like OCI runtime command line (state JSON per the OCI runtime spec), so OCI runtime test
suites and tools can drive envctl's runtime directly."""

from __future__ import annotations

import argparse


def add_parser(sub, name, parents):
    """Register ``envctl oci`` on ``sub`` (argparse subparsers action) with the common option
    ``parents`` (list of ArgumentParser); returns the new subparser (argparse.ArgumentParser).
    """
    p = sub.add_parser(name, parents=parents, help="OCI runtime command line (runc-like)", description=__doc__)
    p.add_argument("--root", metavar="DIR", help="state directory (default /run/envctl-oci as root)")
    # accepted for compatibility with tools that drive runc (containerd, runtime-tools); ignored
    p.add_argument("--log", metavar="FILE", help=argparse.SUPPRESS)
    p.add_argument("--log-format", metavar="FORMAT", help=argparse.SUPPRESS)
    p.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--systemd-cgroup", action="store_true", help=argparse.SUPPRESS)
    osub = p.add_subparsers(dest="oci_command", metavar="COMMAND", required=True)

    def cmd(n, help_):
        c = osub.add_parser(n, help=help_)
        c.add_argument("--root", metavar="DIR", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        return c

    for n, h in (("create", "create a container from a bundle"), ("run", "create, start and wait")):
        c = cmd(n, h)
        c.add_argument("-b", "--bundle", default=".", metavar="DIR", help="bundle directory (default .)")
        c.add_argument("--pid-file", metavar="FILE", help="write PID 1's host pid here")
        c.add_argument("--console-socket", metavar="PATH", help="not supported: use process.terminal with run")
        c.add_argument("--no-pivot", action="store_true", help=argparse.SUPPRESS)  # always pivots
        c.add_argument("--no-new-keyring", action="store_true", help=argparse.SUPPRESS)
        if n == "run":
            c.add_argument("-d", "--detach", action="store_true", help="do not wait for the container")
        c.add_argument("id")
    for n in ("start", "state"):
        cmd(n, f"{n} a container").add_argument("id")
    k = cmd("kill", "send a signal to a container's PID 1")
    k.add_argument("id")
    k.add_argument("signal", nargs="?", default="TERM")
    d = cmd("delete", "delete a stopped container")
    d.add_argument("-f", "--force", action="store_true")
    d.add_argument("id")
    return p


def run(args) -> int:
    """``envctl oci create|start|state|kill|delete|run ...``: the OCI runtime command line (OCI
    runtime spec, runtime.md: operations) over the builtin runner, state under ``--root``.
    Returns the exit code (int; ``run`` returns the container's exit status).
    Raises EnvctlError subclasses (the CLI prints them and exits with their ``exit_code``).
    """
    import json
    import sys
    from pathlib import Path

    from runtime import oci
    from specs.errors import UsageError

    root = Path(args.root) if args.root else oci.default_root()
    c = args.oci_command
    if c in ("create", "run") and args.console_socket:
        raise UsageError("--console-socket is not supported", hint="run in the foreground with process.terminal")
    if c == "create":
        oci.create(root, args.id, Path(args.bundle).absolute(), pid_file=args.pid_file)
    elif c == "run":
        if args.detach:
            return oci.run(root, args.id, Path(args.bundle).absolute(), detach=True, pid_file=args.pid_file)
        return oci.run(root, args.id, Path(args.bundle).absolute())
    elif c == "start":
        oci.start(root, args.id)
    elif c == "state":
        sys.stdout.write(json.dumps(oci.state(root, args.id), indent=2) + "\n")
    elif c == "kill":
        oci.kill(root, args.id, args.signal)
    elif c == "delete":
        oci.delete(root, args.id, force=args.force)
    return 0
