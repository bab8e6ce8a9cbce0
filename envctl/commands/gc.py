"""``envctl gc [--dry-run]``: remove store content no project's lock or running environment uses."""

from __future__ import annotations


def add_parser(sub, name, parents):
    """Register ``envctl gc`` on ``sub`` (argparse subparsers action) with the common option
    ``parents`` (list of ArgumentParser); returns the new subparser (argparse.ArgumentParser).
    """
    p = sub.add_parser(name, parents=parents, help="remove unused blobs, layers and environments",
                       description="Every project whose lock 'envctl up' used is a gc root until its "
                                   "envctl.lock disappears; running environments are always kept.")
    p.add_argument("--dry-run", action="store_true", help="only report what would be removed")
    return p


def run(args) -> int:
    """``envctl gc [--dry-run]``: remove blobs, layers and environments no gc root reaches.
    Returns the exit code (int, 0).
    Raises EnvctlError subclasses (the CLI prints them and exits with their ``exit_code``).
    """
    from engine.store.gc import collect
    from envctl.output import Output
    from envctl.stages import clear_env_upper, open_store

    out = Output(args.json, args.verbosity)
    rep = collect(open_store(), dry_run=args.dry_run, prepare_env_removal=clear_env_upper)
    for r in rep.roots_dropped:
        out.info(f"dropped gc root {r} (lock file gone)")
    for p in rep.removed:
        out.debug(f"{'would remove' if rep.dry_run else 'removed'} {p}")
    mib = rep.bytes_freed / (1 << 20)
    verb = "would free" if rep.dry_run else "freed"
    out.result({"dryRun": rep.dry_run, "bytesFreed": rep.bytes_freed, "removed": rep.removed,
                "rootsDropped": rep.roots_dropped, "keptRunning": rep.kept_running},
               f"{verb} {mib:.1f} MiB ({len(rep.removed)} entries)")
    return 0
