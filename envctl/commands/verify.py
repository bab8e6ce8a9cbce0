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

    out = Output(args.json, args.verbosity)
    project = find_project(args.project, args.file)
    report = _verify(project, out, rebuild=not args.no_rebuild, cache_from=args.cache_from)
    out.result(report.to_dict(), _text(report, rebuilt=not args.no_rebuild))
    return 0 if report.ok else 1


def _verify(project, out, rebuild: bool, cache_from: str | None = None):
    import json

    from engine.errors import EngineError
    from engine.sources.platform import host_platform
    from engine.layers.pull import LayerRef, ensure_layers
    from engine.build.reproduce import VerifyReport, check_blobs, rebuild_and_compare
    from engine.sources.resolve import lock_drift
    from envctl.executor import make_executor
    from envctl.stages import remote_cache_for
    from envctl.stages import open_store
    from specs.errors import LockDrift
    from specs.load import load_spec
    from specs.lockfile import Lockfile

    spec = load_spec(project.spec_path)
    lock = Lockfile.load(project.lock_path) if project.lock_path.exists() else None
    if drift := lock_drift(spec, lock):
        raise LockDrift(f"verify: {project.lock_path.name} is " + ("missing" if lock is None else "stale: " +
                        "; ".join(drift)), hint="run 'envctl lock' (then 'envctl up') and commit envctl.lock")
    platform = str(host_platform())
    store = open_store()
    opener = _opener(spec.image, project.root, out)
    cache = remote_cache_for(spec, out, cache_from=cache_from)
    report = VerifyReport(platform)
    with store.store_lock(shared=True):
        out.info("verify: checking every locked blob")
        report.blobs = check_blobs(store, lock, opener, step_blobs=cache.blob_source if cache else None)
        report.layers = _check_env_layers(store, project, out)
        if not rebuild or not any(s.kind in ("run", "copy") for s in spec.steps):
            return report
        plat = lock.platform(platform)
        try:
            config = json.loads(store.read_blob(plat.config.digest, plat.config.size))
            ensure_layers(store, opener, [LayerRef(x.digest, x.diff_id, x.size, x.media_type) for x in plat.layers],
                          warn=out.warn)
        except (EngineError, ValueError) as e:
            out.warn(f"verify: base image unavailable, steps not rebuilt: {getattr(e, 'message', e)}")
            return report
        out.info("verify: rebuilding every step from scratch")
        report.steps = rebuild_and_compare(
            spec.steps, lock.steps, store=store, platform=platform,
            base_diff_ids=[str(x.diff_id) for x in plat.layers], image_config=config.get("config") or {},
            spec_env=spec.env_dict(), project_root=project.root, executor=make_executor(spec),
            locked_blob=cache.open_locked if cache else None, network=spec.network, notify=out.info)
    return report


def _check_env_layers(store, project, out) -> list[dict] | None:
    """Re-check the unpacked layers the project's environment mounts (env.json's overlay
    lowerdirs) with fsck's tree comparison. Returns a list of {"layer", "path", "status" ("ok" |
    "changed"), "error"} (list of dict), or None when the environment is not up or uses the copy
    driver (nothing per-layer to check). Raises EngineError when an id-mapped tree cannot be read.
    """
    import json
    from pathlib import Path

    from engine.store.fsck import layer_problem
    from envctl.commands._enter import env_dir

    try:
        env = json.loads((env_dir(project.spec_path) / "env.json").read_text())
    except (OSError, ValueError):
        return None
    rootfs = env.get("rootfs") if isinstance(env, dict) else None
    if not isinstance(rootfs, dict) or rootfs.get("driver") != "overlay":
        return None
    out.info("verify: checking the environment's unpacked layers")
    checks = []
    for lower in rootfs.get("lowerdirs") or ():
        d = Path(lower).parent
        problem = layer_problem(store, d) if Path(lower).is_dir() else "missing (run 'envctl up')"
        checks.append({"layer": f"sha256:{d.name.partition('.')[0]}", "path": str(d),
                       "status": "ok" if problem is None else "changed", "error": problem})
    return checks


def _opener(ref, project_root, out):
    """Opens the base image's source lazily (relative oci:/docker-archive: paths from the project)."""
    import os
    from dataclasses import replace

    from engine.sources.source import open_source

    if ref.transport != "docker" and ref.path and not os.path.isabs(ref.path):
        ref = replace(ref, path=str(project_root / ref.path))
    return lambda: open_source(ref, progress=out.info)


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
