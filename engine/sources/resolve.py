"""Resolve an image reference to digests for a set of platforms, and make/check envctl.lock.

``resolve_image`` reads the reference's manifest (index or single manifest), picks one manifest
per platform (engine/sources/platform.py), reads each config to take the layers' diffIDs, and returns
lock entries. ``make_lock`` keeps an existing lock's pins unless the spec's image changed (or
``update``), so re-running it changes nothing; ``lock_drift`` compares spec and lock offline.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable, Sequence

from engine.errors import ManifestError, SizeMismatch
from engine.sources.manifest import LAYER_TYPES, is_index, parse_manifest, read_small_blob, verify_bytes
from engine.sources.platform import Platform, host_platform, parse_platform, platform_missing, platform_of, select_manifest
from specs.digest import Digest
from specs.lockfile import Descriptor, ImageLock, LayerLock, Lockfile, PlatformLock

__all__ = ["resolve_image", "make_lock", "lock_drift", "wanted_platforms", "has_layer_steps", "steps_drift", "Resolution"]


@dataclass
class Resolution:
    """What resolving produced.

    Attributes:
        image: the resolved reference and top-level digest.
        platforms: platform name -> PlatformLock.
        requests: HTTP requests made (0 for file sources).
    """

    image: ImageLock
    platforms: dict[str, PlatformLock]
    requests: int = 0


def wanted_platforms(spec) -> list[str]:
    """The spec's platforms, normalised (``linux/arm64``), host's when empty; order kept, no duplicates.

    With no ``platforms:`` in the spec, :func:`make_lock` keeps the platforms already in the lock and
    adds this machine's, so teammates on different machines converge on one lock.
    """
    names = [str(parse_platform(p)) for p in spec.platforms] or [str(host_platform())]
    return list(dict.fromkeys(names))


def _platform_lock(source, what: str, manifest_desc: Descriptor, doc: dict,
                   wanted: Platform, check_platform: bool) -> PlatformLock:
    cfg_d = doc["config"]
    cdigest = Digest.parse(cfg_d["digest"])
    raw = read_small_blob(source, cdigest, cfg_d["size"], f"config of {what}")
    try:
        config = json.loads(raw)
        diff_ids = config["rootfs"]["diff_ids"]
        assert isinstance(diff_ids, list)
    except (ValueError, KeyError, TypeError, AssertionError):
        raise ManifestError(f"config of {what} is not an image config (no rootfs.diff_ids)") from None
    if check_platform:
        have = platform_of(config)
        if have is None or have != wanted:
            raise platform_missing(what, wanted, [have] if have else [])
    layers = doc["layers"]
    if len(diff_ids) != len(layers):
        raise ManifestError(f"{what}: manifest has {len(layers)} layers but its config lists {len(diff_ids)} diff_ids")
    out = []
    for i, (layer, diff_id) in enumerate(zip(layers, diff_ids)):
        if layer["mediaType"] not in LAYER_TYPES:
            raise ManifestError(f"{what}: layer {i} has unsupported media type {layer['mediaType']!r}")
        try:
            did = Digest.parse(diff_id)
        except Exception:
            raise ManifestError(f"config of {what}: diff_ids[{i}] {diff_id!r} is not a digest") from None
        out.append(LayerLock(Digest.parse(layer["digest"]), did, layer["size"], layer["mediaType"]))
    return PlatformLock(manifest_desc, Descriptor(cdigest, cfg_d["mediaType"], cfg_d["size"]), tuple(out))


def resolve_image(ref, platforms: Sequence[str], *, source=None,
                  progress: Callable[[str], None] | None = None) -> Resolution:
    """Resolve ``ref`` for every platform in ``platforms``.

    Args:
        ref: specs.reference.ImageRef (tag, digest, or file transport).
        platforms: platform names (``linux/amd64``...), normalised by the caller or here.
        source: an open ImageSource to use (default: engine.sources.source.open_source(ref); closed after).
        progress: one-line progress callback.

    Returns:
        Resolution (image lock, platform locks keyed by normalised name, request count).

    Raises:
        RegistryError, ManifestError, PlatformNotFound, DigestMismatch, SizeMismatch, BlobNotFound.
    """
    from engine.sources.source import open_source

    own = source is None
    if own:
        source = open_source(ref, progress=progress)
    what = str(ref)
    try:
        if progress:
            progress(f"resolving {what}")
        raw, media_type = source.get_manifest()
        doc, media_type = parse_manifest(raw, media_type, what)
        top = Digest.from_bytes(raw, ref.digest.algorithm if ref.digest else "sha256")
        out: dict[str, PlatformLock] = {}
        for name in platforms:
            wanted = parse_platform(name)
            key = str(wanted)
            if is_index(media_type):
                d = select_manifest(doc, wanted, what)
                mdigest = Digest.parse(d["digest"])
                mraw, mtype = source.get_manifest(mdigest)
                if len(mraw) != d["size"]:
                    raise SizeMismatch(f"manifest {mdigest.short()} of {what}: index says {d['size']} bytes, got {len(mraw)}")
                verify_bytes(mraw, mdigest, f"manifest {mdigest.short()} of {what}")
                mdoc, mtype = parse_manifest(mraw, d["mediaType"], f"{what} ({key})")
                if is_index(mtype):
                    raise ManifestError(f"{what}: nested image index for {key} is not supported")
                out[key] = _platform_lock(source, f"{what} ({key})", Descriptor(mdigest, mtype, len(mraw)),
                                          mdoc, wanted, check_platform=False)
            else:
                out[key] = _platform_lock(source, what, Descriptor(top, media_type, len(raw)), doc, wanted,
                                          check_platform=True)
        image = ImageLock(what if ref.transport == "docker" else _portable(ref), top, media_type)
        return Resolution(image, dict(sorted(out.items())), getattr(source, "requests", 0))
    finally:
        if own:
            source.close()


def _portable(ref) -> str:
    """File references as written (relative paths stay relative: no absolute paths in the lock)."""
    return str(ref)


def make_lock(spec, previous: Lockfile | None = None, *, update: bool = False,
              progress: Callable[[str], None] | None = None, source_factory=None) -> tuple[Lockfile, int]:
    """Build the lock for ``spec`` (specs.model.EnvSpec).

    Pins in ``previous`` are kept when its image reference equals the spec's and ``update`` is
    False: platforms already locked are copied, new ones are resolved by the pinned digest (never
    by tag), dropped ones removed. Otherwise the reference is resolved afresh.

    Args:
        spec: the EnvSpec.
        previous: the current lock, or None.
        update: re-resolve the tag even when pins exist.
        progress: one-line progress callback (stderr in the CLI).
        source_factory: ``f(ref) -> ImageSource | None`` to open the source differently (e.g. file
            references relative to the project); None = engine.sources.source.open_source. Closed after.

    Returns:
        (Lockfile, HTTP requests made).

    Raises:
        the errors of :func:`resolve_image`.
    """
    source = source_factory(spec.image) if source_factory else None
    try:
        return _make_lock(spec, previous, update, progress, source)
    finally:
        if source is not None:
            source.close()


def _make_lock(spec, previous, update, progress, source) -> tuple[Lockfile, int]:
    names = wanted_platforms(spec)
    ref = spec.image
    if not spec.platforms and previous is not None and previous.image.reference == str(ref):
        # no platforms named: this machine's is added to those teammates already locked
        names = sorted(set(previous.platforms) | set(names))
    requests = 0
    if previous is not None and not update and previous.image.reference == str(ref):
        image = previous.image
        platforms = {n: previous.platforms[n] for n in names if n in previous.platforms}
        missing = [n for n in names if n not in platforms]
        if missing:
            pinned = ref.with_digest(previous.image.digest) if ref.transport == "docker" else ref
            res = resolve_image(pinned, missing, source=source, progress=progress)
            if res.image.digest != previous.image.digest:
                raise ManifestError(f"{ref} no longer matches the locked digest {previous.image.digest}",
                                    hint="run 'envctl lock --update' to re-resolve the image")
            platforms.update(res.platforms)
            requests = res.requests
        steps = previous.steps
    else:
        res = resolve_image(ref, names, source=source, progress=progress)
        image, platforms, requests = res.image, res.platforms, res.requests
        # step records were built on the old base: kept only when re-resolving found the same image
        same = previous is not None and previous.image == res.image
        steps = previous.steps if same else ()
    if not has_layer_steps(spec):
        steps = ()  # no step makes a layer any more: nothing of the old records applies
    lock = Lockfile(spec.build_digest(), image, dict(sorted(platforms.items())), tuple(steps))
    return lock, requests


def has_layer_steps(spec) -> bool:
    """True when a ``run`` or ``copy`` step makes a layer (what the lock's ``steps`` record)."""
    return any(s.kind in ("run", "copy") for s in spec.steps)


def _spec_current(spec, lock: Lockfile) -> bool:
    """The lock was made from these build inputs (:meth:`EnvSpec.build_digest`: image, platforms,
    steps, env, workdir, user — not services, resources, mounts...). A lock written before the
    build digest existed holds the whole-spec digest; it is current while the spec is unchanged."""
    return lock.spec_digest in (spec.build_digest(), spec.digest())


def lock_drift(spec, lock: Lockfile | None) -> list[str]:
    """What differs between ``spec`` and ``lock``, one short phrase each (empty = current). No I/O.

    Judged by the spec's build inputs only (:func:`_spec_current`): editing a service, the
    resources or the mounts does not make the lock stale. Whether the steps are recorded is
    :func:`steps_drift` (``lock --check``, ``up --locked``; generated files need only the image).
    """
    if lock is None:
        return ["envctl.lock is missing"]
    want = wanted_platforms(spec)
    current = _spec_current(spec, lock)
    if current:
        out = []
        if not spec.platforms and (missing := [p for p in want if p not in lock.platforms]):
            out.append(f"platform {missing[0]} (this machine; envctl.yaml names no platforms) is not locked")
        return out
    out = []
    if lock.image.reference != str(spec.image):
        out.append(f"image: envctl.yaml has {spec.image}, the lock has {lock.image.reference}")
    elif spec.image.digest is not None and spec.image.digest != lock.image.digest:
        out.append(f"image digest: envctl.yaml pins {spec.image.digest}, the lock has {lock.image.digest}")
    if added := [p for p in want if p not in lock.platforms]:
        out.append("platforms not locked: " + ", ".join(added))
    if spec.platforms and (dropped := [p for p in lock.platforms if p not in want]):
        out.append("platforms locked but no longer wanted: " + ", ".join(dropped))
    if not out:
        out.append(f"envctl.yaml changed since the lock was written (build inputs digest "
                   f"{spec.build_digest()[:19]}…, lock has {lock.spec_digest[:19]}…)")
    return out


def steps_drift(spec, lock: Lockfile | None) -> list[str]:
    """``["steps are not recorded ..."]`` when ``spec`` has ``run``/``copy`` steps and ``lock`` has
    no step records (e.g. written before ``envctl lock`` built steps), else []. No I/O."""
    if lock is not None and has_layer_steps(spec) and not lock.steps:
        return ["steps are not recorded (cache key, diffID and layer digest per step)"]
    return []
