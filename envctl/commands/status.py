"""``envctl status [--all]``: running environments (pid, uptime, image digest) and, for an
environment that runs services, one row per service: name, state, pid, ready, restarts, last exit."""

from __future__ import annotations


def add_parser(sub, name, parents):
    """Register ``envctl status`` on ``sub`` (argparse subparsers action) with the common option
    ``parents`` (list of ArgumentParser); returns the new subparser (argparse.ArgumentParser).
    """
    p = sub.add_parser(name, parents=parents, help="show environments and their services", description=__doc__)
    p.add_argument("-a", "--all", action="store_true", help="every environment in the store, not just this project's")
    return p


def _row(d, env: dict | None, state: dict | None) -> dict:
    import time

    from runtime.state import is_alive

    running = bool(state and is_alive(state))
    return {"env": d.name, "project": (env or {}).get("project"), "running": running,
            "pid": state.get("pid") if running else None,
            "uptime": round(time.time() - state.get("started", time.time()), 1) if running else None,
            "image": ((env or {}).get("image") or {}).get("digest") or ((env or {}).get("imageBlobs") or [None])[0]}


def _service_rows(d) -> list[dict]:
    """Per-service rows from the services supervisor's status (envctl.services_up); [] if none."""
    from envctl.services_up import services_status

    keys = ("name", "state", "pid", "ready", "restarts", "lastExit")
    return [{k: r.get(k) for k in keys} for r in services_status(d) or []]


def _service_text(s: dict) -> str:
    last = s["lastExit"]
    return (f"  {s['name']}  {s['state']}" + (f"  pid {s['pid']}" if s["pid"] else "")
            + ("  ready" if s["ready"] else "  not ready") + f"  restarts {s['restarts'] or 0}"
            + (f"  last exit {last}" if last is not None else ""))


def _text(rows: list[dict]) -> str:
    lines = []
    for r in rows:
        lines.append(f"{r['env']}  {'running' if r['running'] else 'stopped'}"
                     + (f"  pid {r['pid']}  up {r['uptime']}s" if r["running"] else "")
                     + (f"  {r['image']}" if r["image"] else "") + (f"  {r['project']}" if r["project"] else ""))
        lines.extend(_service_text(s) for s in r["services"])
    return "\n".join(lines) or "no environments"


def run(args) -> int:
    """``envctl status [-a]``: show this project's environment (or every one with ``-a``), whether it
    runs, and its services. Returns the exit code (int, 0).
    Raises EnvctlError subclasses (the CLI prints them and exits with their ``exit_code``).
    """
    import json

    from envctl.commands._enter import current_env
    from envctl.output import Output
    from envctl.settings import envctl_home
    from runtime.state import read_state

    out = Output(args.json, args.verbosity)
    if args.all:
        dirs = sorted(p for p in (envctl_home() / "envs").glob("*") if p.is_dir())
    else:
        dirs = [current_env(args)[1]]
    rows = []
    for d in dirs:
        try:
            env = json.loads((d / "env.json").read_text())
        except (OSError, ValueError):
            env = None
        rows.append({**_row(d, env, read_state(d)), "services": _service_rows(d)})
    out.result(rows, _text(rows))
    return 0
