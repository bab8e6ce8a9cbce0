"""runtime.plan: config.json -> op list, asserted as data (bubblewrap's SetupOp style)."""

from __future__ import annotations

import json

from runtime import _sys
from runtime.plan import (BindDevice, BindRoot, MakePrivate, MaskPath, Mount, MountOverlay, PivotRoot,
                          ReadonlyPath, Symlink, build_plan, parse_options)


def _cfg(**kw):
    cfg = {"root": {"path": "/r"}, "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
        {"destination": "/sys", "type": "none", "source": "/sys", "options": ["rbind", "ro", "nosuid"]},
        {"destination": "/workspace", "type": "bind", "source": "/p", "options": ["rbind", "rw", "rprivate"]},
    ], "linux": {"maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"]}}
    cfg.update(kw)
    return cfg


def test_order_and_kinds():
    ops = build_plan(_cfg())
    assert ops[0] == MakePrivate() and ops[1] == BindRoot("/r") and ops[-1] == PivotRoot("/r")
    kinds = [type(o).__name__ for o in ops]
    assert kinds.index("MaskPath") > kinds.index("BindDevice") > kinds.index("Mount")
    assert MaskPath("/proc/kcore") in ops and ReadonlyPath("/proc/sys") in ops
    assert BindDevice("null") in ops and Symlink("pts/ptmx", "/dev/ptmx") in ops


def test_bind_and_flags():
    ops = [o for o in build_plan(_cfg()) if isinstance(o, Mount)]
    sys_ = next(o for o in ops if o.target == "/sys")
    assert sys_.bind and sys_.flags & _sys.MS_RDONLY and sys_.flags & _sys.MS_REC and sys_.fstype == ""
    ws = next(o for o in ops if o.target == "/workspace")
    assert ws.propagation == _sys.MS_PRIVATE | _sys.MS_REC and not ws.flags & _sys.MS_RDONLY


def test_overlay_from_annotation():
    plan = {"driver": "overlay", "lowerdirs": ["/l2", "/l1"], "upperdir": "/u", "workdir": "/w",
            "merged": "/r", "userxattr": True}
    ops = build_plan(_cfg(annotations={"dev.envctl.rootfs": json.dumps(plan)}))
    assert ops[1] == MountOverlay(("/l2", "/l1"), "/u", "/w", "/r", True)
    assert ops[2] == BindRoot("/r")


def test_parse_options():
    flags, prop, data = parse_options(["nosuid", "noexec", "mode=0620", "gid=5", "rslave"])
    assert flags == _sys.MS_NOSUID | _sys.MS_NOEXEC and prop == _sys.MS_SLAVE | _sys.MS_REC
    assert data == "mode=0620,gid=5"


def test_no_dev_tmpfs_no_devices():
    cfg = _cfg(mounts=[{"destination": "/proc", "type": "proc", "source": "proc"}])
    assert not any(isinstance(o, (BindDevice, Symlink)) for o in build_plan(cfg))
