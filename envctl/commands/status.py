"""``envctl status [--all]``: running environments (pid, uptime, image digest)."""

from __future__ import annotations


def add_parser(sub, name, parents):
    p = sub.add_parser(name, parents=parents, help="show running environments", description=__doc__)
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


def run(args) -> int:
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
        rows.append(_row(d, env, read_state(d)))
    text = "\n".join(f"{r['env']}  {'running' if r['running'] else 'stopped'}"
                     + (f"  pid {r['pid']}  up {r['uptime']}s" if r["running"] else "")
                     + (f"  {r['image']}" if r["image"] else "") + (f"  {r['project']}" if r["project"] else "")
                     for r in rows) or "no environments"
    out.result(rows, text)
    return 0
