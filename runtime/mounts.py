"""Apply a ``runtime.plan`` op list inside the container's fresh mount namespace.

Every target inside the root is resolved with ``openat2(RESOLVE_IN_ROOT)`` and mounted through
its ``/proc/self/fd/N`` handle (crun's ``safe_openat``, runc's securejoin + procfd): a symlink in
the image such as ``/dev -> /`` or ``etc/hosts -> /etc/shadow`` cannot redirect a mount onto the
host. Flag changes on bind mounts use ``mount_setattr(2)`` so locked flags inherited in a user
namespace never need repeating (the classic EPERM of a rootless read-only remount).
"""

from __future__ import annotations

import errno
import os
import stat

from runtime import _sys
from runtime.errors import SyscallError
from runtime.plan import (BindDevice, BindRoot, MakePrivate, MaskPath, Mount, MountOverlay, PivotRoot,
                          ReadonlyPath, Symlink)

__all__ = ["apply_plan", "overlay_options"]

_RESOLVE = _sys.RESOLVE_IN_ROOT | _sys.RESOLVE_NO_MAGICLINKS
_ATTRS = ((_sys.MS_RDONLY, _sys.MOUNT_ATTR_RDONLY), (_sys.MS_NOSUID, _sys.MOUNT_ATTR_NOSUID),
          (_sys.MS_NODEV, _sys.MOUNT_ATTR_NODEV), (_sys.MS_NOEXEC, _sys.MOUNT_ATTR_NOEXEC))


class _Root:
    """The new root as an O_PATH fd; every lookup stays inside it."""

    def __init__(self, host: str):
        self.host = host
        self.fd = os.open(host, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def close(self):
        os.close(self.fd)

    def open(self, path: str, flags: int = os.O_PATH) -> int:
        return _sys.openat2(self.fd, path.lstrip("/") or ".", flags | os.O_CLOEXEC, 0, _RESOLVE)

    def exists(self, path: str) -> bool:
        try:
            os.close(self.open(path))
            return True
        except OSError:
            return False

    def make(self, path: str, is_dir: bool) -> int:
        """Create ``path`` (and parents) inside the root when missing; returns an O_PATH fd."""
        try:
            return self.open(path)
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise
        parent, name = os.path.split(path.rstrip("/"))
        pfd = self.make(parent or "/", True)
        try:
            if is_dir:
                os.mkdir(name, 0o755, dir_fd=pfd)
            else:
                os.close(os.open(name, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644, dir_fd=pfd))
        except FileExistsError:
            pass
        except OSError as e:
            raise SyscallError("mkdir" if is_dir else "create", path, e.errno or 0) from None
        finally:
            os.close(pfd)
        return self.open(path)


def _fdpath(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


def _setattr(root: _Root, target: str, flags: int, recursive: bool) -> None:
    attrs = 0
    for ms, attr in _ATTRS:
        if flags & ms:
            attrs |= attr
    if not attrs:
        return
    fd = root.open(target)  # reopen: the new mount, not the directory under it
    try:
        _sys.mount_setattr("", attr_set=attrs, recursive=recursive, dirfd=fd, flags=_sys.AT_EMPTY_PATH)
    except OSError as e:
        raise SyscallError("mount_setattr", target, e.errno or 0) from None
    finally:
        os.close(fd)


def _mount(root: _Root, op: Mount) -> None:
    if op.bind:
        try:
            is_dir = stat.S_ISDIR(os.stat(op.source).st_mode)
        except OSError as e:
            raise SyscallError("stat bind source", op.source, e.errno or 0,
                               hint="create the directory or fix the mount's source") from None
    else:
        is_dir = True
    fd = root.make(op.target, is_dir)
    try:
        if op.bind:
            _sys.mount(op.source, _fdpath(fd), None, op.flags & (_sys.MS_BIND | _sys.MS_REC))
        else:
            _sys.mount(op.source, _fdpath(fd), op.fstype, op.flags, op.data or None)
    except _sys.SysError as e:
        raise SyscallError(e.op, op.target, e.errno) from None
    finally:
        os.close(fd)
    if op.bind:
        _setattr(root, op.target, op.flags, bool(op.flags & _sys.MS_REC))
    if op.propagation:
        fd = root.open(op.target)
        try:
            _sys.mount(None, _fdpath(fd), None, op.propagation)
        finally:
            os.close(fd)


def overlay_options(lowerdirs, upperdir: str, workdir: str, userxattr: bool) -> str:
    """Mount data for an environment's or a build step's overlay (lowerdirs top first).

    Redirects and metacopy are turned off explicitly instead of relying on the kernel's defaults
    (``CONFIG_OVERLAY_FS_REDIRECT_DIR``/``_METACOPY``, module parameters): engine.layers.writer
    refuses upper dirs holding ``overlay.redirect``/``overlay.metacopy`` xattrs. With
    ``userxattr`` (rootless) the kernel rejects ``redirect_dir=off`` ("conflicting options") and
    accepts only ``nofollow`` — redirects neither created nor followed — so that is passed there.

    Returns:
        str: ``lowerdir=...,upperdir=...,workdir=...,redirect_dir=...,metacopy=off[,userxattr]``.
    """
    redirect = "nofollow" if userxattr else "off"
    return (f"lowerdir={':'.join(lowerdirs)},upperdir={upperdir},workdir={workdir},"
            f"redirect_dir={redirect},metacopy=off" + (",userxattr" if userxattr else ""))


def _overlay(op: MountOverlay, rootless: bool) -> None:
    userxattr = bool(op.userxattr or rootless)
    opts = overlay_options(op.lowerdirs, op.upperdir, op.workdir, userxattr)
    cwd = None
    if len(opts) > 3800:  # mount data is one page; relative names from the common parent keep it short
        base = os.path.commonpath([*op.lowerdirs, op.upperdir, op.workdir])
        cwd = os.open(".", os.O_PATH | os.O_CLOEXEC)
        os.chdir(base)
        opts = overlay_options([os.path.relpath(p, base) for p in op.lowerdirs], os.path.relpath(op.upperdir, base),
                               os.path.relpath(op.workdir, base), userxattr)
    try:
        _sys.mount("overlay", op.target, "overlay", 0, opts)
    except _sys.SysError as e:
        hint = ("the kernel refused an unprivileged overlay (needs Linux >= 5.11); run 'envctl doctor'"
                if rootless else "run 'envctl doctor' (overlay support, the store's filesystem); "
                "ENVCTL_STORAGE_DRIVER=copy avoids overlay")
        raise SyscallError("mount overlay", op.target, e.errno, hint) from None
    finally:
        if cwd is not None:
            os.fchdir(cwd)
            os.close(cwd)


def _dev_null(root: _Root) -> str:
    """The container's own /dev/null when it has one (as runc), else the host's."""
    try:
        fd = root.open("/dev/null")
    except OSError:
        return "/dev/null"
    os.close(fd)
    return os.path.join(root.host, "dev/null")


def _mask(root: _Root, path: str) -> None:
    try:
        fd = root.open(path)
    except OSError:
        return  # nothing to mask
    try:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            _sys.mount("tmpfs", _fdpath(fd), "tmpfs", _sys.MS_RDONLY, "size=0")
        else:
            _sys.mount(_dev_null(root), _fdpath(fd), None, _sys.MS_BIND)
    except _sys.SysError as e:
        raise SyscallError("mask", path, e.errno) from None
    finally:
        os.close(fd)


def _readonly(root: _Root, path: str) -> None:
    try:
        fd = root.open(path)
    except OSError:
        return
    try:
        _sys.mount(_fdpath(fd), _fdpath(fd), None, _sys.MS_BIND | _sys.MS_REC)
    except _sys.SysError as e:
        raise SyscallError("bind read-only", path, e.errno) from None
    finally:
        os.close(fd)
    _setattr(root, path, _sys.MS_RDONLY, True)


def _device(root: _Root, name: str) -> None:
    fd = root.make(f"/dev/{name}", False)
    try:
        _sys.mount(f"/dev/{name}", _fdpath(fd), None, _sys.MS_BIND)
    except _sys.SysError as e:
        if e.errno != 2:  # a host without the node (e.g. no /dev/tty in a daemon) still runs
            raise SyscallError("bind device", f"/dev/{name}", e.errno) from None
    finally:
        os.close(fd)


def _symlink(root: _Root, target: str, link: str) -> None:
    parent, name = os.path.split(link)
    pfd = root.open(parent, os.O_PATH | os.O_DIRECTORY)
    try:
        os.symlink(target, name, dir_fd=pfd)
    except FileExistsError:
        pass
    finally:
        os.close(pfd)


def _pivot(host: str) -> None:
    # runc's trick: pivot_root(".", ".") stacks the old root on top; a lazy unmount drops it,
    # so no host path stays reachable and no put_old directory is needed in the image.
    os.chdir(host)
    try:
        _sys.pivot_root(".", ".")
        _sys.mount(None, ".", None, _sys.MS_SLAVE | _sys.MS_REC)
        _sys.umount2(".", _sys.MNT_DETACH)
    except _sys.SysError as e:
        raise SyscallError.from_os_error(e) from None
    os.chdir("/")


def apply_plan(ops, *, rootless: bool = False, readonly_root: bool = False) -> None:
    """Apply ``ops`` (from ``runtime.plan.build_plan``) in the current (new) mount namespace.

    Raises SyscallError naming the failing operation and path. Implements issue 5 "Mounts".
    """
    root: _Root | None = None
    try:
        for op in ops:
            match op:
                case MakePrivate():
                    _sys.mount(None, "/", None, _sys.MS_REC | _sys.MS_PRIVATE)
                case MountOverlay():
                    _overlay(op, rootless)
                case BindRoot(host=host):
                    _sys.mount(host, host, None, _sys.MS_BIND | _sys.MS_REC)
                    root = _Root(host)
                case Mount():
                    _mount(root, op)
                case BindDevice(name=name):
                    _device(root, name)
                case Symlink(target=t, link=link):
                    _symlink(root, t, link)
                case MaskPath(path=p):
                    _mask(root, p)
                case ReadonlyPath(path=p):
                    _readonly(root, p)
                case PivotRoot(host=host):
                    root.close()
                    root = None
                    _pivot(host)
                    if readonly_root:
                        _sys.mount_setattr("/", attr_set=_sys.MOUNT_ATTR_RDONLY, recursive=False)
    except _sys.SysError as e:
        raise SyscallError.from_os_error(e) from None
    finally:
        if root is not None:
            root.close()
