"""``envctl logs [-f] [-n N] [SERVICE...]``: print the kept output of the project's services.

Reads ``envs/<id>/services/<name>.log`` (written by ``envctl up``, foreground or ``-d``). Several
services are shown prefixed by name, like ``docker compose logs``; ``-f`` keeps following until
Ctrl-C or until the services stop. ``-t``/``--timestamps`` shows when each line was written (UTC,
as ``docker logs -t``); a line ``[envctl] ---- new session ...`` separates one ``envctl up``'s
output from the next.

Here ``-f`` is ``--follow`` (``docker compose logs -f``, ``kubectl logs -f``), not the spec file:
name a spec with ``--file FILE``.
"""

from __future__ import annotations


def add_parser(sub, name, parents):
    # -f means --follow here (docker/compose/kubectl habit); the spec file stays --file
    """Register ``envctl logs`` on ``sub`` (argparse subparsers action) with the common option
    ``parents`` (list of ArgumentParser); returns the new subparser (argparse.ArgumentParser).
    """
    p = sub.add_parser(name, parents=parents, help="show the services' output", description=__doc__,
                       conflict_handler="resolve")
    p.add_argument("-f", "--follow", action="store_true",
                   help="keep printing new output (here -f is --follow; the spec file is --file FILE)")
    p.add_argument("-t", "--timestamps", action="store_true", help="show each line's time (UTC)")
    p.add_argument("-n", "--tail", type=_count, metavar="N", help="only the last N lines of each service")
    p.add_argument("services", nargs="*", metavar="SERVICE", help="services to show (default: all)")
    return p


def _count(text: str) -> int:
    """argparse type for ``-n``: a whole number >= 0 (int); negative numbers are refused (QA L7)."""
    import argparse

    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of lines: {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"number of lines must be 0 or more, got {n}")
    return n


def _names(sdir, wanted, known=()):
    """The services to show (list of str): ``wanted``, else every service with a log or a row in
    status.json (``known``: a running service that has printed nothing has no log file yet, QA M12).
    Raises UsageError for a wanted name that is neither."""
    from specs.errors import UsageError

    have = sorted({p.stem for p in sdir.glob("*.log") if p.name not in ("daemon.log", "environment.log")}
                  | set(known))
    for n in wanted:
        if n not in have:
            hint = f"services with logs: {', '.join(have) or 'none'}"
            if n.endswith((".yaml", ".yml")):
                hint += "; for logs -f is --follow (as in docker compose logs -f): name the spec with --file FILE"
            raise UsageError(f"no logs for service {n}", hint=hint)
    return list(wanted) or have


def run(args) -> int:
    """``envctl logs [-f] [-n N] [SERVICE...]``: print the services' output (``-f`` follows until
    the supervisor exits or Ctrl-C). Returns the exit code (int, 0).
    Raises EnvctlError subclasses (the CLI prints them and exits with their ``exit_code``).
    """
    import sys
    import time

    from envctl.commands._enter import current_env
    from envctl.services_up import _pid_alive, _read_status, services_dir
    from runtime.service_log import LogSink, split_stamp

    _project, d, _env = current_env(args)
    sdir = services_dir(d)
    names = _names(sdir, args.services, [r.get("name") for r in (_read_status(d) or {}).get("services") or ()
                                         if isinstance(r, dict) and r.get("name")])
    sink = LogSink(None, names, console=sys.stdout)
    emit = (lambda n, ln: sink.line(n, ln)) if len(names) > 1 else (lambda n, ln: sys.stdout.write(ln + "\n"))

    def write(n, ln):
        when, text = split_stamp(ln)
        emit(n, f"{when or ' ' * 24} {text}" if args.timestamps else text)

    files, bufs = {}, {}
    for n in names:
        f = files[n] = _open_log(sdir, n)
        lines = f.read().decode("utf-8", "replace").splitlines() if f else []
        for ln in lines[len(lines) - args.tail:] if args.tail is not None else lines:
            write(n, ln)
        bufs[n] = b""
    sys.stdout.flush()
    try:
        while args.follow:
            alive = _pid_alive((_read_status(d) or {}).get("supervisorPid"))
            for n, f in files.items():
                if f is None:
                    f = files[n] = _open_log(sdir, n)
                    if f is None:
                        continue   # nothing printed yet
                chunk = f.read()
                if chunk:
                    *lines, bufs[n] = (bufs[n] + chunk).split(b"\n")
                    for ln in lines:
                        write(n, ln.decode("utf-8", "replace"))
            sys.stdout.flush()
            if not alive:
                break
            time.sleep(0.1)
    except KeyboardInterrupt:
        pass
    finally:
        for f in files.values():
            if f is not None:
                f.close()
    return 0


def _open_log(sdir, name):
    """The service's log opened for reading (binary file), or None when it has printed nothing yet."""
    try:
        return open(sdir / f"{name}.log", "rb")
    except FileNotFoundError:
        return None
