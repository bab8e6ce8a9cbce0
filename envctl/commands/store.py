"""``envctl store fsck``: re-verify every blob and layer of the store, quarantining what is corrupt."""

from __future__ import annotations


def add_parser(sub, name, parents):
    """Register ``envctl store`` on ``sub`` (argparse subparsers action) with the common option
    ``parents`` (list of ArgumentParser); returns the new subparser (argparse.ArgumentParser).
    """
    p = sub.add_parser(name, parents=parents, help="inspect and repair the store")
    ssub = p.add_subparsers(dest="store_command", metavar="SUBCOMMAND", required=True)
    f = ssub.add_parser("fsck", parents=parents, help="verify blobs and layers; quarantine corrupt ones",
                        description="Re-hash every blob, check every layer's tree against what was "
                                    "unpacked, move corrupt entries to quarantine/ (the next 'envctl up' "
                                    "fetches them again). Exit 1 when something was corrupt.")
    f.add_argument("--no-repair", action="store_true", help="report only; move nothing")
    return p


def run(args) -> int:
    """``envctl store fsck [--no-repair]``: re-hash blobs and check layers, quarantining corrupt
    ones. Returns the exit code (int: 0 clean, 1 when something was corrupt).
    Raises EnvctlError subclasses (the CLI prints them and exits with their ``exit_code``).
    """
    from engine.store.fsck import fsck
    from envctl.output import Output
    from envctl.stages import open_store

    out = Output(args.json, args.verbosity)
    rep = fsck(open_store(), repair=not args.no_repair)
    for c in rep.corrupt:
        out.warn(f"{c}{'' if args.no_repair else ' (quarantined)'}")
    if rep.removed_tmp:
        out.info(f"removed {len(rep.removed_tmp)} leftover temporary entries of interrupted runs")
    if rep.partial_downloads:
        out.info(f"kept {len(rep.partial_downloads)} partial downloads (the next up resumes them)")
    text = (f"store ok: {rep.blobs} blobs, {rep.layers} layers verified" if rep.clean else
            f"store had {len(rep.corrupt)} corrupt entries ({rep.blobs} blobs, {rep.layers} layers checked)")
    out.result({"clean": rep.clean, "blobs": rep.blobs, "layers": rep.layers, "corrupt": rep.corrupt,
                "removedTmp": rep.removed_tmp, "partialDownloads": rep.partial_downloads}, text)
    return 0 if rep.clean else 1
