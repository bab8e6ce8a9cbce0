"""``envctl up [--locked] [--frozen] [--cache-from REF] [--cache-to REF] [-d]``: fetch, unpack and
compose the environment, building its steps (envctl.workflow)."""

from __future__ import annotations


def add_parser(sub, name, parents):
    """Register ``envctl up`` on ``sub`` (argparse subparsers action) with the common option
    ``parents`` (list of ArgumentParser); returns the new subparser (argparse.ArgumentParser).
    """
    p = sub.add_parser(name, parents=parents, help="prepare the environment: lock, fetch, unpack, compose",
                       description="Lock the image if envctl.lock is missing or stale, download and unpack "
                                   "the layers the store lacks, and compose the environment's root "
                                   "filesystem. Prints what was cached, downloaded and unpacked.")
    p.add_argument("--locked", action="store_true",
                   help="fail (exit 3) instead of writing envctl.lock when it is missing or stale")
    p.add_argument("--frozen", action="store_true", help="like --locked, and fail instead of downloading")
    p.add_argument("--cache-from", metavar="REF",
                   help="registry repository to fetch cached step layers from (overrides the spec's cache:)")
    p.add_argument("--cache-to", metavar="REF",
                   help="registry repository to publish built step layers to (overrides the spec's cache:)")
    p.add_argument("-d", "--detach", action="store_true",
                   help="with services: run them in the background (envctl logs/restart/down)")
    return p


def run(args) -> int:
    """``envctl up``: lock if needed, fetch, unpack and build, compose the environment and start
    its services. Returns the exit code (int, 0 or the services' exit status in the foreground).
    Raises LockDrift (exit 3) with ``--locked``/``--frozen`` when envctl.lock is stale.
    Raises EnvctlError subclasses (the CLI prints them and exits with their ``exit_code``).
    """
    from envctl.output import Output
    from envctl.project import find_project
    from envctl.workflow import ensure_up

    out = Output(args.json, args.verbosity)
    project = find_project(args.project, args.file)
    info = ensure_up(project, out, locked=args.locked, frozen=args.frozen,
                     cache_from=args.cache_from, cache_to=args.cache_to)
    r = info.report
    out.result({"envId": info.env_id, "envJson": str(info.env_json), "seconds": round(info.seconds, 3),
                "downloadedBytes": r.downloaded_bytes, "layersUnpacked": r.unpacked,
                "layersCached": r.cached, "rootfsReset": info.reset, "lockWritten": info.locked_now,
                "rootfs": info.data["rootfs"]},
               f"{info.env_json}")
    from envctl.services_up import run_services  # issue 7: services + hot reload (None: no services)

    rc = run_services(project, out, detach=args.detach)
    return 0 if rc is None else rc
