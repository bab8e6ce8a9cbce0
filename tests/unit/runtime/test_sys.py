"""runtime._sys: the leaf cffi module (generated file in sync, cheap import, wrappers and errors)."""

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runtime import _sys
from runtime._sys_build import CDEF
from runtime.errors import SyscallError

REPO = Path(__file__).resolve().parents[3]


def test_generated_module_is_current(tmp_path):
    import cffi

    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    ffi.set_source("_sys_ffi", None)
    ffi.emit_python_code(str(tmp_path / "gen.py"))
    assert (tmp_path / "gen.py").read_text() == (REPO / "runtime" / "_sys_ffi.py").read_text(), \
        "runtime/_sys_ffi.py is stale: run python -m runtime._sys_build"


def test_import_pulls_no_parser_and_nothing_of_ours():
    code = ("import sys; import runtime._sys; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('pycparser','cffi','specs','engine','envctl') or m.startswith('runtime')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['runtime', 'runtime._sys', 'runtime._sys_ffi']"


def test_syserror_is_oserror_and_renders_op_and_path():
    e = _sys.SysError("mount", "/dev/pts", errno.EPERM)
    assert isinstance(e, OSError) and e.errno == errno.EPERM
    assert str(e) == "mount /dev/pts: Operation not permitted"
    s = SyscallError.from_os_error(e)
    assert s.message == "mount /dev/pts: Operation not permitted"


def test_mount_failure_raises_with_target(tmp_path):
    with pytest.raises(OSError) as ei:
        _sys.mount("none", str(tmp_path / "missing"), "tmpfs")
    assert ei.value.errno in (errno.ENOENT, errno.EPERM)
    assert str(tmp_path / "missing") in str(ei.value)


def test_capget_matches_proc_status():
    eff, prm, inh = _sys.capget()
    status = dict(line.split(":\t", 1) for line in Path("/proc/self/status").read_text().splitlines()
                  if ":\t" in line)
    assert eff == int(status["CapEff"], 16) and prm == int(status["CapPrm"], 16)
    assert inh == int(status["CapInh"], 16)


def test_openat2_in_root_confines_absolute_symlink(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("inside\n")
    os.symlink("/etc/passwd", root / "link")
    dfd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    try:
        fd = _sys.openat2(dfd, "link", os.O_RDONLY | os.O_CLOEXEC, 0, _sys.RESOLVE_IN_ROOT)
        with os.fdopen(fd) as f:
            assert f.read() == "inside\n"
        with pytest.raises(OSError) as ei:
            _sys.openat2(dfd, "../../etc/passwd", os.O_RDONLY, 0, _sys.RESOLVE_BENEATH)
        assert ei.value.errno == errno.EXDEV
    finally:
        os.close(dfd)


def test_prctl_no_new_privs_in_child():
    code = ("from runtime import _sys; _sys.prctl(_sys.PR_SET_NO_NEW_PRIVS, 1); "
            "print(_sys.prctl(_sys.PR_GET_NO_NEW_PRIVS))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"


def test_cap_names():
    assert _sys.cap_number("chown") == 0 and _sys.cap_number("CAP_SYS_ADMIN") == 21
    with pytest.raises(ValueError):
        _sys.cap_number("CAP_NOPE")
