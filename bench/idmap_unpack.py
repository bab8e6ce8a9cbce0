"""Extra cost of the rootless subordinate-id unpack (engine/store/idmap.py) on one image's layers.

Run as an unprivileged user with a /etc/subuid range (bench/idmap.sh does it): unpacks every
layer of the OCI layout ``argv[1]`` into a fresh store RUNS times with ENVCTL_SUBIDS=0 (the
umoci-style fallback) and with subordinate ids, reporting the median seconds of each, and the
median seconds of a keep-id copy (engine.store.idmap.present_layers) of the result.
"""

import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from engine.store.idmap import IdMap, present_layers
from engine.layers.snapshots import default_options, unpack_into_store
from engine.layers.chain import chain_ids
from engine.store.cas import Store
from engine.store import userns
from engine.store.userns import remove_tree_rootless
from specs.digest import Digest


def layers(layout: Path):
    idx = json.loads((layout / "index.json").read_text())
    blobs = layout / "blobs/sha256"
    man = json.loads((blobs / idx["manifests"][0]["digest"][7:]).read_bytes())
    while "manifests" in man:  # an image index: the amd64 manifest
        m = next(x for x in man["manifests"] if (x.get("platform") or {}).get("architecture") == "amd64")
        man = json.loads((blobs / m["digest"][7:]).read_bytes())
    cfg = json.loads((blobs / man["config"]["digest"][7:]).read_bytes())
    return [(blobs / x["digest"][7:], Digest.parse(d)) for x, d in zip(man["layers"], cfg["rootfs"]["diff_ids"])]


NS_SECONDS = []
_real_call = userns.call_in_userns


def _timed_call(*a, **kw):
    t = time.monotonic()
    try:
        return _real_call(*a, **kw)
    finally:
        NS_SECONDS.append(time.monotonic() - t)


userns.call_in_userns = _timed_call


def once(layout: Path, subids: bool, keep: bool = False) -> tuple[float, float]:
    os.environ["ENVCTL_SUBIDS"] = "1" if subids else "0"
    root = Path(tempfile.mkdtemp(prefix="bench-idmap-", dir=os.environ.get("BENCH_DIR", "/var/tmp")))
    try:
        store = Store(root / "s").ensure()
        ls = layers(layout)
        chains = chain_ids([d for _b, d in ls])
        t0 = time.monotonic()
        for (blob, diff), chain in zip(ls, chains):
            with open(blob, "rb") as f:
                unpack_into_store(store, chain, diff, f, default_options())
        t1 = time.monotonic()
        names = sorted(p.name for p in store.layers.iterdir())
        print(f"  {'subuid' if subids else 'fallback'}: {t1 - t0:.2f} s, layers {names}", file=sys.stderr)
        copy = 0.0
        if keep and store.idmap is not None:
            (c, h, n), (c1, s, cnt) = store.idmap.uid
            (gc, gh, gn), (gc1, gs, gcnt) = store.idmap.gid
            target = IdMap(((1000, h, 1), (0, s, 1000), (1001, s + 1000, cnt - 1000)),
                           ((1000, gh, 1), (0, gs, 1000), (1001, gs + 1000, gcnt - 1000)))
            present_layers(store, chains, target)
            copy = time.monotonic() - t1
        return t1 - t0, copy
    finally:
        remove_tree_rootless(root)


def main() -> None:
    layout, runs = Path(sys.argv[1]), int(os.environ.get("RUNS", "3"))
    fb = [once(layout, False)[0] for _ in range(runs)]
    sub = []
    for _ in range(runs):
        NS_SECONDS.clear()
        sub.append(once(layout, True, keep=True))
        print(f"  in the user namespace (chown pass + tree digest): {NS_SECONDS[0]:.2f} s", file=sys.stderr)
    f, s = statistics.median(fb), statistics.median(x[0] for x in sub)
    k = statistics.median(x[1] for x in sub)
    print(f"fallback unpack   {f:.2f} s  (median of {runs}: {', '.join(f'{x:.2f}' for x in fb)})")
    print(f"subuid unpack     {s:.2f} s  (+{s - f:.2f} s, x{s / f:.2f})")
    print(f"keep-id copy      {k:.2f} s  (per-mapping copy of the unpacked layers)")


if __name__ == "__main__":
    main()
