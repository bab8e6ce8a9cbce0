#!/usr/bin/env bash
# Cold pull + unpack of one image from a loopback registry, envctl vs the reference tools:
#
#   envctl up (cold)        lock + download + verify + unpack + compose, fresh ENVCTL_HOME
#   skopeo copy + umoci     skopeo copy docker://… oci:DIR  then  umoci unpack --rootless
#   podman pull             fresh --root/--runroot, --cgroup-manager cgroupfs --events-backend file
#   envctl up (warm)        everything cached: no network, no unpack
#   second image            an image sharing the base (one extra small layer): bytes envctl downloads
#
# envctl marks its store's tmp/ with chattr +T (ext4 Orlov allocator: each new layer directory in
# a fresh block group); on a filesystem with heavy create/delete churn that alone divides the
# unpack time by ~3, so umoci is also measured unpacking into a +T directory (umoci_unpack_T).
#
# The image is debian:bookworm minbase as built by scripts/base-images (mmdebstrap, cached; built
# on first use), pushed to a private docker-registry this script starts on 127.0.0.1 and stops.
# Each tool runs RUNS times (default 3) on fresh directories; the median wall time and the
# largest peak RSS (/usr/bin/time -v) are reported, then the ratios.
#
# Usage: bash bench/pull.sh            (as root, like CI; RUNS=N, IMAGE=bookworm|bookworm-slim)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
RUNS=${RUNS:-3}
IMAGE=${IMAGE:-bookworm}
PY=$REPO/.venv/bin/python
work=$(mktemp -d /var/tmp/envctl-bench-pull.XXXXXX)
regpid=""
cleanup() {
    [ -n "$regpid" ] && kill "$regpid" 2>/dev/null && wait "$regpid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# ---- a private registry on a free loopback port
port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PYTHONPATH=$REPO/scripts/lib $PY -c "
import sys; from pathlib import Path; from loopback_registry import render_config
Path(sys.argv[1]).write_text(render_config('127.0.0.1:$port', Path(sys.argv[2])))" "$work/reg.yml" "$work/storage"
/usr/bin/docker-registry serve "$work/reg.yml" >"$work/registry.log" 2>&1 &
regpid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
REG=127.0.0.1:$port
export ENVCTL_INSECURE_REGISTRIES=$REG

# ---- the image, and a second one sharing its base layer
scripts/base-images --registry "$REG" --repo bench/debian "$IMAGE" >"$work/base-images.log" 2>&1
REF=$REG/bench/debian:$IMAGE
skopeo copy -q --src-tls-verify=false "docker://$REF" "oci:$work/layout:base"
$PY - "$work/layout" <<'EOF'
import gzip, hashlib, io, json, sys, tarfile
from pathlib import Path
root = Path(sys.argv[1]); blobs = root / "blobs/sha256"
def put(data):
    d = hashlib.sha256(data).hexdigest(); (blobs / d).write_bytes(data); return "sha256:" + d
idx = json.loads((root / "index.json").read_text())
mdesc = next(m for m in idx["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == "base")
man = json.loads((blobs / mdesc["digest"][7:]).read_bytes())
cfg = json.loads((blobs / man["config"]["digest"][7:]).read_bytes())
(root / "base-layer-bytes").write_text(str(sum(x["size"] for x in man["layers"])))
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
    for i in range(20):
        data = f"app file {i}\n".encode() * 100
        ti = tarfile.TarInfo(f"opt/app/file{i}"); ti.size = len(data); ti.mtime = 1700000000
        tf.addfile(ti, io.BytesIO(data))
tar = buf.getvalue(); gz = gzip.compress(tar, mtime=0)
layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": put(gz), "size": len(gz)}
cfg["rootfs"]["diff_ids"].append("sha256:" + hashlib.sha256(tar).hexdigest())
cfg.setdefault("history", []).append({"created_by": "bench/pull.sh"})
c = json.dumps(cfg).encode()
man["config"] = {"mediaType": man["config"]["mediaType"], "digest": put(c), "size": len(c)}
man["layers"].append(layer)
m = json.dumps(man).encode()
idx["manifests"].append({"mediaType": man.get("mediaType", "application/vnd.oci.image.manifest.v1+json"),
                         "digest": put(m), "size": len(m),
                         "annotations": {"org.opencontainers.image.ref.name": "plus"}})
(root / "index.json").write_text(json.dumps(idx))
EOF
skopeo copy -q --dest-tls-verify=false --preserve-digests "oci:$work/layout:plus" "docker://$REG/bench/debian:plus"
REF2=$REG/bench/debian:plus
layer_bytes=$(cat "$work/layout/base-layer-bytes")

# ---- measuring helpers: "timed NAME CMD..." appends "NAME seconds maxrss_kb" to results
results=$work/results
timed() {
    local name=$1; shift
    local t0 t1
    t0=$(date +%s.%N)
    /usr/bin/time -v -o "$work/time.out" "$@" >"$work/cmd.out" 2>"$work/cmd.err" || {
        echo "bench: $name failed:" >&2; cat "$work/cmd.err" >&2; exit 1; }
    t1=$(date +%s.%N)
    echo "$name $(echo "$t1 - $t0" | bc -l) $(awk -F': ' '/Maximum resident/ {print $2}' "$work/time.out")" >>"$results"
}
project() {  # project DIR REF
    mkdir -p "$1"; printf 'version: 1\nimage: %s\n' "$2" >"$1/envctl.yaml"
}
fresh() { rm -rf "$work/run"; mkdir -p "$work/run"; sync; }

for i in $(seq "$RUNS"); do
    fresh
    project "$work/run/p1" "$REF"; project "$work/run/p2" "$REF2"
    export ENVCTL_HOME=$work/run/home
    (cd "$work/run/p1" && timed envctl_cold "$REPO/.venv/bin/envctl" up)
    (cd "$work/run/p1" && timed envctl_warm "$REPO/.venv/bin/envctl" up)
    (cd "$work/run/p2" && timed envctl_second "$REPO/.venv/bin/envctl" up --json)
    $PY -c 'import json,sys; print("second_image_bytes", json.load(open(sys.argv[1]))["downloadedBytes"], 0)' \
        "$work/cmd.out" >>"$results"
    unset ENVCTL_HOME
    fresh
    timed skopeo_copy skopeo copy -q --src-tls-verify=false "docker://$REF" "oci:$work/run/oci:img"
    timed umoci_unpack umoci unpack --rootless --image "$work/run/oci:img" "$work/run/bundle"
    # the same with the ext4 Orlov hint envctl sets on its tmp/ (chattr +T), for a fair comparison
    mkdir "$work/run/topdir"; chattr +T "$work/run/topdir" 2>/dev/null || true
    timed umoci_unpack_T umoci unpack --rootless --image "$work/run/oci:img" "$work/run/topdir/bundle"
    # GNU tar on the same layer blob (single-threaded reference; plain dir and +T dir)
    blob=$($PY -c 'import json,sys; r=sys.argv[1]; i=json.load(open(r+"/index.json"))["manifests"][0]["digest"][7:]; m=json.load(open(r+"/blobs/sha256/"+i)); print(r+"/blobs/sha256/"+m["layers"][0]["digest"][7:])' "$work/run/oci")
    mkdir "$work/run/tar" "$work/run/topdir/tar"
    timed gnu_tar tar -xzf "$blob" -C "$work/run/tar"
    timed gnu_tar_T tar -xzf "$blob" -C "$work/run/topdir/tar"
    fresh
    timed podman_pull podman --root "$work/run/podman" --runroot "$work/run/podman-run" \
        --cgroup-manager cgroupfs --events-backend file --storage-driver overlay \
        pull -q --tls-verify=false "docker://$REF"
done

# ---- report: medians, peak memory, ratios
$PY - "$results" "$layer_bytes" "$RUNS" "$REF" <<'EOF'
import statistics, sys
from collections import defaultdict
rows = defaultdict(list)
for line in open(sys.argv[1]):
    name, secs, rss = line.split()
    rows[name].append((float(secs), int(rss)))
med = {k: statistics.median(s for s, _ in v) for k, v in rows.items()}
rss = {k: max(r for _, r in v) for k, v in rows.items()}
print(f"image {sys.argv[4]}: layers {int(sys.argv[2]) / 2**20:.1f} MiB compressed; {sys.argv[3]} runs, median wall time")
for k in ("envctl_cold", "skopeo_copy", "umoci_unpack", "umoci_unpack_T", "gnu_tar", "gnu_tar_T",
          "podman_pull", "envctl_warm", "envctl_second"):
    print(f"  {k:15s} {med[k]:7.2f} s   peak RSS {rss[k] / 1024:6.1f} MiB")
su = med["skopeo_copy"] + med["umoci_unpack"]
print(f"  skopeo+umoci    {su:7.2f} s")
print(f"ratio envctl cold / (skopeo copy + umoci unpack) = {med['envctl_cold'] / su:.2f}  (target <= 0.50)")
print(f"ratio envctl cold / (skopeo copy + umoci unpack into a chattr +T dir) = "
      f"{med['envctl_cold'] / (med['skopeo_copy'] + med['umoci_unpack_T']):.2f}")
print(f"ratio envctl cold / podman pull                  = {med['envctl_cold'] / med['podman_pull']:.2f}")
print(f"ratio envctl warm / envctl cold                  = {med['envctl_warm'] / med['envctl_cold']:.3f}")
print(f"second image sharing the base: downloaded {int(med['second_image_bytes'])} bytes "
      f"(its manifest, config and one small layer), {med['envctl_second']:.2f} s")
EOF
