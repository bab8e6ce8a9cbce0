"""``envctl verify [--json]``: prove the environment is the one in envctl.lock (the CI check).

1. Every blob the lock names is read by digest and hashed (downloaded when missing).
   The unpacked layers this project's environment mounts (when it is up) are re-hashed and
   compared with the tree recorded when they were unpacked (as 'envctl store fsck' does, but
   read-only); a changed one fails the check ('envctl store fsck' quarantines it, 'up' redoes it).
   Changes made inside the environment (its writable upper layer) are not checked.
2. Every build step is rebuilt from scratch in a throwaway store (no cache) on the locked base.
3. Each rebuilt layer's diffID is compared with the lock; where one differs, the paths that
   differ are listed with how (content, mode, owner, mtime, present on one side only).

Exit 0 when everything matches, 1 otherwise, 3 when envctl.lock is missing or stale. Steps
marked ``reproducible: false`` are reported but never fail the check.
"""

from __future__ import annotations

import argparse


def add_parser(sub, name, parents):
    """Register ``envctl verify`` on ``sub`` (argparse subparsers action) with the common option
    ``parents`` (list of ArgumentParser); returns the new subparser (argparse.ArgumentParser).
    """
    p = sub.add_parser(name, parents=parents, help="check blobs and rebuild steps against envctl.lock",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--no-rebuild", action="store_true", help="only check the locked blobs")
    p.add_argument("--cache-from", metavar="REF", help="registry build cache holding the locked step layers "
                   "(default: the spec's cache)")
    return p


def run(args) -> int:
    """``envctl verify [--no-rebuild]``: check the locked blobs and rebuild the steps against
    envctl.lock. Returns the exit code (int: 0 ok, 1 when a blob or step does not match).
    Raises EnvctlError subclasses (the CLI prints them and exits with their ``exit_code``).
    """
    from envctl.output import Output
    from envctl.project import find_project
    from envctl.verify import verify_project

    out = Output(args.json, args.verbosity)
    project = find_project(args.project, args.file)
    report = verify_project(project, out, rebuild=not args.no_rebuild, cache_from=args.cache_from)
    out.result(report.to_dict(), _text(report, rebuilt=not args.no_rebuild))
    return 0 if report.ok else 1


def _text(report, rebuilt: bool = True) -> str:
    from engine.layers.diff import format_report

    bad_blobs = [b for b in report.blobs if b.status == "failed"]
    lines = [f"blobs: {len(report.blobs)} checked, {len(bad_blobs)} failed"
             + (f", {sum(b.status == 'unavailable' for b in report.blobs)} unavailable"
                if any(b.status == "unavailable" for b in report.blobs) else "")]
    lines += [f"  {b.what} {b.digest}: {b.error}" for b in bad_blobs]
    layers = getattr(report, "layers", None)
    if layers is None:
        lines.append("layers: not checked (the environment is not up, or uses the copy driver)")
    else:
        bad = [x for x in layers if x["status"] != "ok"]
        lines.append(f"layers: {len(layers)} unpacked layers of the environment checked, {len(bad)} changed")
        lines += [f"  layer {x['layer']}: {x['error']} (run 'envctl store fsck', then 'envctl up')" for x in bad]
    for s in report.steps:
        head = f"step {s.index + 1} ({s.kind}): {s.status}"
        if s.status != "ok":
            head += f" — locked {s.locked_diff_id}, rebuilt {s.rebuilt_diff_id}"
        lines.append(head)
        if s.paths:
            lines.append(format_report(s.paths))
        if s.note:
            lines.append(f"  {s.note}")
    ok = ("verify: OK, the environment rebuilds to envctl.lock" if rebuilt
          else "verify: OK, every locked blob matches its digest (steps not rebuilt: --no-rebuild)")
    lines.append(ok if report.ok else "verify: FAILED, the environment does not match envctl.lock")
    return "\n".join(lines)
