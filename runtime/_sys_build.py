"""Generates ``runtime/_sys_ffi.py``, the out-of-line ABI-mode cffi module used by ``runtime._sys``.

Run ``python -m runtime._sys_build`` after editing ``CDEF``; a unit test fails when the committed
file is stale. Why out-of-line: in-line ABI mode (``ffi.cdef`` at import) parses C with pycparser,
~30 ms on every ``envctl run``; the generated module only needs ``_cffi_backend`` (~1.3 ms).
No C compiler is involved in either mode.
"""

from __future__ import annotations

from pathlib import Path

CDEF = """
int unshare(int flags);
int setns(int fd, int nstype);
int mount(const char *source, const char *target, const char *filesystemtype,
          unsigned long mountflags, const void *data);
int umount2(const char *target, int flags);
int prctl(int option, ...);
int sethostname(const char *name, size_t len);
int mknodat(int dirfd, const char *pathname, unsigned int mode, unsigned long dev);
long syscall(long number, ...);

typedef struct {
    uint32_t version;
    int pid;
} cap_user_header_t;
typedef struct {
    uint32_t effective;
    uint32_t permitted;
    uint32_t inheritable;
} cap_user_data_t;
int capget(cap_user_header_t *hdrp, cap_user_data_t *datap);
int capset(cap_user_header_t *hdrp, const cap_user_data_t *datap);

struct open_how {
    uint64_t flags;
    uint64_t mode;
    uint64_t resolve;
};
struct sock_fprog {
    unsigned short len;
    void *filter;
};
struct mount_attr {
    uint64_t attr_set;
    uint64_t attr_clr;
    uint64_t propagation;
    uint64_t userns_fd;
};
"""


def build() -> Path:
    """Write ``runtime/_sys_ffi.py`` next to this file; returns its path."""
    import cffi

    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    ffi.set_source("_sys_ffi", None)
    here = Path(__file__).resolve().parent
    ffi.emit_python_code(str(here / "_sys_ffi.py"))
    return here / "_sys_ffi.py"


if __name__ == "__main__":
    print(build())
