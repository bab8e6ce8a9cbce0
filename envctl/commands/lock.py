"""``envctl lock [--update] [--check]``: pin the spec's image to digests in envctl.lock.

Default: keep the existing pins when the spec's image is unchanged (only new platforms are
resolved, by the pinned digest); ``--update`` re-resolves the tag. ``--check`` makes no network
call and writes nothing: exit 0 when the lock is current, exit 3 naming what differs.

With ``run``/``copy`` steps, the steps are built for this machine's platform the way ``envctl up``
builds them (cached steps are not re-run) and each step's cache key, diffID and layer digest are
recorded in the lock's ``steps``. Drift is judged by the spec's build inputs only
(``EnvSpec.build_digest``): editing a service does not make the lock stale (docs/lock.md).
"""

from __future__ import annotations


def add_parser(sub, name, parents):
    """Register ``envctl lock`` on ``sub`` (argparse subparsers action) with the common option
    ``parents`` (list of ArgumentParser); returns the new subparser (argparse.ArgumentParser).
    """
    p = sub.add_parser(name, parents=parents, help="resolve the image to digests and write envctl.lock",
                       description="Resolve the spec's image for every platform and write envctl.lock. "
                                   "Exit 3 with --check when the lock is missing or stale.")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--update", action="store_true", help="re-resolve tags even when the lock has pins")
    g.add_argument("--check", action="store_true",
                   help="only check that envctl.lock is current (no network, no writes; exit 3 if not)")
    p.add_argument("--cache-from", metavar="REF", help="registry build cache to fetch step layers from")
    p.add_argument("--cache-to", metavar="REF", help="registry build cache to publish step layers to")
    return p


def run(args) -> int:
    """``envctl lock``: resolve the image for every platform, build and record the steps, write
    envctl.lock (``--check``: compare only, no network) -- envctl.lockfile_io.lock_project.
    Returns the exit code (int, 0). Raises LockDrift (exit 3) with ``--check`` when the lock is
    missing or stale. Raises EnvctlError subclasses (the CLI prints them and exits with their
    ``exit_code``).
    """
    from envctl.lockfile_io import lock_project
    from envctl.output import Output
    from envctl.project import find_project

    out = Output(args.json, args.verbosity)
    project = find_project(args.project, args.file)
    lock_path = project.lock_path
    res = lock_project(project, out, update=args.update, check=args.check,
                       cache_from=args.cache_from, cache_to=args.cache_to)
    if res is None:
        out.result({"lock": str(lock_path), "current": True}, f"{lock_path.name} is up to date")
        return 0
    lock, changed, requests = res.lock, res.changed, res.requests
    out.debug(f"{requests} HTTP requests")
    platforms = ", ".join(lock.platforms)
    text = (f"{'wrote' if changed else 'unchanged:'} {lock_path.name}: {lock.image.reference} "
            f"@ {lock.image.digest} ({platforms})")
    out.result({"lock": str(lock_path), "changed": changed, "image": lock.image.to_dict(),
                "platforms": sorted(lock.platforms), "requests": requests,
                "steps": sum(1 for e in lock.steps if isinstance(e, dict) and e.get("platforms"))}, text)
    return 0
