"""Make a ready environment for runtime tests without the engine: a busybox-static directory
rootfs and an env.json (as ``envctl.workflow.ensure_up`` would write it) for a project.

Runnable as a script so rootless tests can create it as the unprivileged user:
``python -m tests.integration.runtime_env PROJECT ROOTFS [spec-json]``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUSYBOX = shutil.which("busybox") or "/bin/busybox"

PASSWD = "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n"
GROUP = "root:x:0:\ntty:x:5:\nuser:x:1000:\nnogroup:x:65534:\n"


def make_busybox_rootfs(root: Path) -> Path:
    """A minimal rootfs: /bin/busybox + applet symlinks, passwd/group, /tmp, /home/user."""
    (root / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for a in applets:
        if a != "busybox":
            os.symlink("busybox", root / "bin" / a)
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    (root / "tmp").mkdir(mode=0o1777)
    os.chmod(root / "tmp", 0o1777)
    (root / "home" / "user").mkdir(parents=True)
    os.chown(root / "home" / "user", 1000 if os.geteuid() == 0 else -1, 1000 if os.geteuid() == 0 else -1)
    (root / "root").mkdir(mode=0o700)
    return root


def _spec(opts: dict):
    res = types.SimpleNamespace(memory=opts.get("memory"), cpus=opts.get("cpus"), pids=opts.get("pids"))
    return types.SimpleNamespace(workdir=opts.get("workdir", "/workspace"), network=opts.get("network", "host"),
                                 env_dict=lambda: opts.get("env", {}), resources=res, mounts=(),
                                 user=opts.get("user"), cap_add=tuple(opts.get("cap_add", ())),
                                 cap_drop=tuple(opts.get("cap_drop", ())))


def make_env(project: Path, rootfs: Path, opts: dict | None = None) -> Path:
    """Write envctl.yaml/envctl.lock (placeholder bytes) and ENVCTL_HOME/envs/<id>/env.json."""
    sys.path.insert(0, str(REPO))
    from envctl.commands._enter import env_dir
    from runtime.config import generate_config

    opts = opts or {}
    spec_path = project / "envctl.yaml"
    if not spec_path.exists():
        spec_path.write_text("version: 1\nimage: busybox\n")
    lock_path = project / "envctl.lock"
    if not lock_path.exists():
        lock_path.write_text("{}\n")
    rootfs_plan = opts.get("rootfs") or {"driver": "copy", "path": str(rootfs)}
    cfg = generate_config(_spec(opts), image_config={"Env": ["PATH=/bin"]}, rootfs=rootfs_plan,
                          project_root=str(project), rootless=os.geteuid() != 0, args=None, tty=False,
                          use_subids=opts.get("subids"))
    if opts.get("shell"):
        cfg["annotations"]["dev.envctl.shell"] = opts["shell"]
    d = env_dir(spec_path)
    d.mkdir(parents=True, exist_ok=True)
    env = {"envId": d.name, "project": str(project),
           "specSha256": hashlib.sha256(spec_path.read_bytes()).hexdigest(),
           "lockSha256": hashlib.sha256(lock_path.read_bytes()).hexdigest(),
           "platform": "linux/amd64", "rootfs": rootfs_plan, "imageConfig": {}, "runtime": cfg}
    (d / "env.json").write_text(json.dumps(env, indent=2))
    return d


if __name__ == "__main__":
    if not Path(sys.argv[2]).exists():
        make_busybox_rootfs(Path(sys.argv[2]))
    make_env(Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3]) if len(sys.argv) > 3 else None)
