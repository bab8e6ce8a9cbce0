"""config.json -> the ordered list of filesystem operations for the new root (pure data).

Like bubblewrap's ``SetupOp`` list: ``build_plan`` computes everything from the config (no I/O),
unit tests assert on the list, and ``runtime.mounts.apply_plan`` applies it in one loop.
Paths in ops are absolute inside the container unless the field says ``host``.
"""

from __future__ import annotations


from runtime import _sys
from specs import fastjson  # not json: re/enum cost ~4 ms on the warm `envctl run` path

__all__ = ["MakePrivate", "MountOverlay", "BindRoot", "Mount", "BindDevice", "Symlink", "MaskPath",
           "ReadonlyPath", "PivotRoot", "build_plan", "parse_options", "DEVICES", "Op"]

# runc libcontainer/specconv: option string -> (clear?, flag)
_FLAGS = {
    "ro": _sys.MS_RDONLY, "rw": 0, "nosuid": _sys.MS_NOSUID, "suid": 0, "nodev": _sys.MS_NODEV, "dev": 0,
    "noexec": _sys.MS_NOEXEC, "exec": 0, "sync": _sys.MS_SYNCHRONOUS, "async": 0,
    "dirsync": _sys.MS_DIRSYNC, "remount": _sys.MS_REMOUNT, "mand": _sys.MS_MANDLOCK,
    "noatime": _sys.MS_NOATIME, "nodiratime": _sys.MS_NODIRATIME, "bind": _sys.MS_BIND,
    "rbind": _sys.MS_BIND | _sys.MS_REC, "relatime": _sys.MS_RELATIME,
    "strictatime": _sys.MS_STRICTATIME, "defaults": 0,
}
_PROPAGATION = {"private": _sys.MS_PRIVATE, "rprivate": _sys.MS_PRIVATE | _sys.MS_REC,
                "slave": _sys.MS_SLAVE, "rslave": _sys.MS_SLAVE | _sys.MS_REC,
                "shared": _sys.MS_SHARED, "rshared": _sys.MS_SHARED | _sys.MS_REC,
                "unbindable": _sys.MS_UNBINDABLE, "runbindable": _sys.MS_UNBINDABLE | _sys.MS_REC}

# the device nodes every container gets (runtime-spec "Default Devices"), bind-mounted from the host
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
_DEV_LINKS = (("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
              ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr"),
              ("pts/ptmx", "/dev/ptmx"), ("/proc/kcore", "/dev/core"))


class _Op:
    """A small immutable value (like a frozen dataclass, without dataclasses' ~0.3 ms per class
    at import: this module is on every ``envctl run``). Subclasses list ``_fields`` and defaults."""

    __slots__ = ("_values",)
    _fields: tuple[str, ...] = ()
    _defaults: dict = {}

    def __init__(self, *args, **kw):
        if len(args) > len(self._fields):
            raise TypeError(f"{type(self).__name__} takes {len(self._fields)} arguments")
        values = dict(self._defaults)
        values.update(zip(self._fields, args))
        values.update(kw)
        missing = [f for f in self._fields if f not in values]
        if missing or len(values) != len(self._fields):
            raise TypeError(f"{type(self).__name__}: bad fields {sorted(set(values) ^ set(self._fields))}")
        object.__setattr__(self, "_values", tuple(values[f] for f in self._fields))

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        cls.__match_args__ = cls._fields
        for i, f in enumerate(cls._fields):
            setattr(cls, f, property(lambda self, i=i: self._values[i]))

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other):
        return type(self) is type(other) and self._values == other._values

    def __hash__(self):
        return hash((type(self), self._values))

    def __repr__(self):
        inner = ", ".join(f"{f}={v!r}" for f, v in zip(self._fields, self._values))
        return f"{type(self).__name__}({inner})"


class MakePrivate(_Op):
    """Make every mount in the new namespace private so nothing propagates back to the host."""
    __slots__ = ()


class MountOverlay(_Op):
    """Mount the overlay plan (lowerdirs top first, upperdir, workdir) on host path ``target``
    (fields: lowerdirs, upperdir, workdir, target, userxattr)."""
    __slots__ = ()
    _fields = ("lowerdirs", "upperdir", "workdir", "target", "userxattr")


class BindRoot(_Op):
    """Bind the rootfs (host path ``host``) onto itself so pivot_root has a mount point."""
    __slots__ = ()
    _fields = ("host",)


class Mount(_Op):
    """A config.json mount: ``flags``/``data`` parsed from options; ``bind`` sources are host paths
    (fields: source, target, fstype, flags, data, propagation=0, bind=False)."""
    __slots__ = ()
    _fields = ("source", "target", "fstype", "flags", "data", "propagation", "bind")
    _defaults = {"propagation": 0, "bind": False}


class BindDevice(_Op):
    """Create ``/dev/<name>`` and bind the host's device node onto it."""
    __slots__ = ()
    _fields = ("name",)


class Symlink(_Op):
    """Create symlink ``link`` -> ``target`` inside the root."""
    __slots__ = ()
    _fields = ("target", "link")


class MaskPath(_Op):
    """runc maskedPaths: /dev/null over files, an empty read-only tmpfs over directories."""
    __slots__ = ()
    _fields = ("path",)


class ReadonlyPath(_Op):
    """runc readonlyPaths: a recursive read-only bind of the path onto itself."""
    __slots__ = ()
    _fields = ("path",)


class PivotRoot(_Op):
    """pivot_root into ``host``, then detach the old root."""
    __slots__ = ()
    _fields = ("host",)


Op = MakePrivate | MountOverlay | BindRoot | Mount | BindDevice | Symlink | MaskPath | ReadonlyPath | PivotRoot


def parse_options(options) -> tuple[int, int, str]:
    """OCI mount options -> (mount flags, propagation flags, fs data string)."""
    flags, prop, data = 0, 0, []
    for o in options or ():
        if o in _FLAGS:
            flags |= _FLAGS[o]
        elif o in _PROPAGATION:
            prop |= _PROPAGATION[o]
        else:
            data.append(o)
    return flags, prop, ",".join(data)


def _overlay_op(config: dict, root: str) -> MountOverlay | None:
    raw = (config.get("annotations") or {}).get("dev.envctl.rootfs")
    if not raw:
        return None
    plan = fastjson.loads(raw)
    if plan.get("driver") != "overlay":
        return None
    return MountOverlay(tuple(plan["lowerdirs"]), plan["upperdir"], plan["workdir"],
                        plan.get("merged") or root, bool(plan.get("userxattr")))


def build_plan(config: dict, *, rootless: bool = False) -> list[Op]:
    """The ordered filesystem operations for ``config`` (pure; no I/O).

    Args:
        config: OCI config.json dict (root.path must be absolute).
        rootless: the runtime has no real root: userxattr overlays, sysfs via bind (decided in config).
    Returns: list of ops; order: private, overlay, root bind, mounts in config order, devices,
    links, read-only then masked paths, pivot_root.
    """
    root = config["root"]["path"]
    ops: list[Op] = [MakePrivate()]
    ov = _overlay_op(config, root)
    if ov:
        ops.append(ov)
    ops.append(BindRoot(root))
    has_dev_tmpfs = False
    for m in config.get("mounts", ()):
        flags, prop, data = parse_options(m.get("options"))
        fstype = m.get("type") or ("bind" if flags & _sys.MS_BIND else "")
        bind = bool(flags & _sys.MS_BIND) or fstype == "bind"
        if bind:
            flags |= _sys.MS_BIND
        has_dev_tmpfs |= m["destination"] == "/dev" and not bind
        ops.append(Mount(m.get("source", fstype), m["destination"], "" if bind else fstype, flags, data, prop, bind))
    if has_dev_tmpfs:
        ops += [BindDevice(n) for n in DEVICES]
        ops += [Symlink(t, link) for t, link in _DEV_LINKS]
    linux = config.get("linux") or {}
    # runc's order: read-only paths first, then masks (a mask inside a read-only path still applies)
    ops += [ReadonlyPath(p) for p in linux.get("readonlyPaths", ())]
    ops += [MaskPath(p) for p in linux.get("maskedPaths", ())]
    ops.append(PivotRoot(root))
    return ops
