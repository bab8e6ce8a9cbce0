"""Platforms (``os/architecture[/variant]``): normalisation, the host's platform, choice from an index.

Normalisation follows containerd's ``platforms`` package: ``x86_64``/``x86-64`` -> ``amd64``,
``aarch64`` -> ``arm64``, ``arm64`` means ``arm64/v8``, ``arm`` means ``arm/v7``, ``armhf`` ->
``arm/v7``, ``armel`` -> ``arm/v6``, ``i386``/``i686`` -> ``386``, ``ppc64el`` -> ``ppc64le``.
The canonical text drops arm64's ``v8`` (``linux/arm64``, not ``linux/arm64/v8``) and spells
arm's default (``linux/arm/v7``), as containerd's ``Normalize`` does. Image-index entries that are attestations (Docker BuildKit's
``unknown/unknown`` platform with ``vnd.docker.reference.type: attestation-manifest``) are never
chosen. OCI image spec image-index.md "platform".
"""

from __future__ import annotations

import os
import platform as _pyplatform
from dataclasses import dataclass

from engine.errors import PlatformNotFound
from specs.errors import UsageError

__all__ = ["Platform", "parse_platform", "host_platform", "platform_of", "is_attestation",
           "index_platforms", "select_manifest", "platform_missing"]

_ARCH_ALIASES = {
    "x86_64": ("amd64", ""), "x86-64": ("amd64", ""), "amd64": ("amd64", ""),
    "aarch64": ("arm64", ""), "arm64": ("arm64", ""),
    "armhf": ("arm", "v7"), "armel": ("arm", "v6"), "arm": ("arm", ""),
    "i386": ("386", ""), "i486": ("386", ""), "i586": ("386", ""), "i686": ("386", ""), "386": ("386", ""),
    "ppc64el": ("ppc64le", ""),
}
_DEFAULT_VARIANT = {"arm64": "v8", "arm": "v7"}
_VARIANT_ALIASES = {"8": "v8", "7": "v7", "6": "v6", "5": "v5"}


@dataclass(frozen=True, order=True)
class Platform:
    """A normalised platform.

    Attributes:
        os: ``"linux"``, ``"windows"``, ...
        architecture: GOARCH spelling (``"amd64"``, ``"arm64"``, ``"arm"``, ...).
        variant: normalised variant with defaults filled in (``"v8"`` for arm64), ``""`` when none.
    """

    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        parts = [self.os, self.architecture]
        if self.variant and not (self.architecture == "arm64" and self.variant == "v8"):
            parts.append(self.variant)
        return "/".join(parts)


def _normalise(os_: str, arch: str, variant: str) -> Platform:
    os_ = os_.lower()
    arch = arch.lower()
    variant = variant.lower()
    arch, implied = _ARCH_ALIASES.get(arch, (arch, ""))
    variant = _VARIANT_ALIASES.get(variant, variant) or implied or _DEFAULT_VARIANT.get(arch, "")
    if os_ == "darwin" or os_ == "macos":
        os_ = "darwin"
    return Platform(os_, arch, variant)


def parse_platform(text: str) -> Platform:
    """Parse ``os/arch[/variant]`` (or a bare ``arch``, meaning linux) into a normalised Platform.

    Raises:
        UsageError: empty parts or more than three parts.
    """
    parts = text.strip().split("/")
    if len(parts) == 1:
        parts = ["linux", parts[0]]
    if len(parts) > 3 or not all(parts):
        raise UsageError(f"invalid platform {text!r}: expected os/architecture[/variant], e.g. linux/amd64")
    return _normalise(parts[0], parts[1], parts[2] if len(parts) == 3 else "")


def host_platform() -> Platform:
    """The platform of this machine (from ``uname -m``; linux unless Python says otherwise)."""
    machine = _pyplatform.machine() or "amd64"
    os_ = os.uname().sysname.lower() if hasattr(os, "uname") else "linux"
    if machine.startswith("armv"):  # armv7l, armv6l
        return _normalise(os_, "arm", "v" + machine[4])
    return _normalise(os_, machine, "")


def platform_of(obj: dict) -> Platform | None:
    """The normalised platform of an index entry's ``platform`` or an image config (dict), or None."""
    src = obj.get("platform", obj) if isinstance(obj, dict) else None
    if not isinstance(src, dict):
        return None
    os_, arch = src.get("os"), src.get("architecture")
    if not isinstance(os_, str) or not isinstance(arch, str) or not os_ or not arch:
        return None
    variant = src.get("variant") if isinstance(src.get("variant"), str) else ""
    return _normalise(os_, arch, variant)


def is_attestation(desc: dict) -> bool:
    """True for index entries that describe attestations/signatures, not runnable images."""
    ann = desc.get("annotations") or {}
    if ann.get("vnd.docker.reference.type") == "attestation-manifest":
        return True
    p = desc.get("platform") or {}
    return p.get("os") == "unknown" or p.get("architecture") == "unknown"


def index_platforms(index: dict) -> list[Platform]:
    """Platforms of the runnable manifests in an image index, in index order, attestations skipped."""
    seen: list[Platform] = []
    for desc in index.get("manifests", []):
        if is_attestation(desc):
            continue
        p = platform_of(desc)
        if p is not None and p not in seen:
            seen.append(p)
    return seen


def select_manifest(index: dict, wanted: Platform, what: str) -> dict:
    """Pick the index entry (descriptor dict) for ``wanted``.

    Exact os/architecture/variant match first (variants normalised); when the index gives no
    variant for that architecture, the single entry for the architecture is accepted.

    Args:
        index: parsed image index / manifest list.
        wanted: normalised platform.
        what: the reference, for the error message.

    Raises:
        PlatformNotFound: no entry fits; the message lists the platforms the image has.
    """
    candidates = []
    for desc in index.get("manifests", []):
        if is_attestation(desc):
            continue
        p = platform_of(desc)
        if p is None:
            continue
        if (p.os, p.architecture) == (wanted.os, wanted.architecture):
            if p.variant == wanted.variant:
                return desc
            candidates.append((p, desc))
    loose = [d for p, d in candidates if not (d.get("platform") or {}).get("variant")]
    if len(loose) == 1 and len(candidates) == 1:
        return loose[0]
    raise platform_missing(what, wanted, index_platforms(index))


def platform_missing(what: str, wanted: Platform, available: list[Platform]) -> PlatformNotFound:
    """The PlatformNotFound error for ``wanted``, listing ``available`` (may be empty)."""
    have = ", ".join(str(p) for p in available) or "none"
    return PlatformNotFound(f"image {what} has no {wanted} manifest (it has: {have})",
                            hint="choose platforms the image provides in envctl.yaml 'platforms:'")
