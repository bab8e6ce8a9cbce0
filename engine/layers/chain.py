"""Unpacked-layer snapshots keyed by chainID (OCI image-spec config.md "Layer ChainID").

``chainID(L0) = diffID(L0)``; ``chainID(Ln) = sha256(chainID(Ln-1) + " " + diffID(Ln))``. A layer
directory depends on its whole chain (whiteouts and hardlinks refer to lower layers), so it is
stored under ``layers/<chainID hex>/`` and shared by every image with the same chain prefix.
"""

from __future__ import annotations

import hashlib

from specs.digest import Digest

__all__ = ["chain_ids"]


def chain_ids(diff_ids: list[Digest | str]) -> list[Digest]:
    """The chainID of every prefix of ``diff_ids`` (bottom layer first); returns Digests."""
    out: list[Digest] = []
    for d in diff_ids:
        d = d if isinstance(d, Digest) else Digest.parse(d)
        if not out:
            out.append(d)
        else:
            out.append(Digest("sha256", hashlib.sha256(f"{out[-1]} {d}".encode()).hexdigest()))
    return out
