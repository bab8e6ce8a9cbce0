"""The ``envctl`` entry point, with a fast path for a warm ``envctl run``.

``envctl run -- CMD`` on a current environment is the command users type most, and the DESIGN.md
target is "within 2x of ``python3 -c pass`` + ``bwrap ... true``". The full CLI
(:func:`envctl.cli.main`) builds an argparse tree (argparse, gettext, locale, shutil: ~5 ms) and
the workflow's helpers use pathlib, json and dataclasses (re, enum, inspect: ~10 ms more) before
any container work starts. This module does the same job for the common case with none of that:

1. :func:`parse_run` accepts the plain forms of ``run``'s grammar (``-C DIR``, ``--project DIR``,
   ``-f FILE``, ``--file FILE``, ``--json``, ``-q``, ``-v``, ``-e K=V``, ``-w DIR``, ``-t``, and
   the command after ``--`` or the first non-option word) and gives up (None) on anything else:
   ``--opt=value``, bundled short options, abbreviations, ``-h``, values starting with ``-``, no
   command;
2. :func:`warm_run` finds the project and env.json exactly as ``envctl.project.find_project`` and
   ``envctl.commands._enter`` do, and gives up when anything is not the plain warm case: no
   envctl.yaml, a stale or missing env.json, an external runtime (runc/crun), a config prepared
   for another user;
3. only then does it start the container through :func:`runtime.runner.run_config`.

``envctl exec`` (same grammar plus ``-i``/``--interactive``) takes the same shortcut to
:func:`runtime.exec.exec_in` when the project has a running environment (state.json).

Giving up hands the unchanged argv to :func:`envctl.cli.main`, which produces the same result,
errors and exit codes as before (nothing observable happens before the container starts). Errors
raised once the container is starting are reported as ``envctl.cli.main`` reports them.
tests/unit/envctl/test_fast_entry.py checks the grammar against the argparse parser.

The installed ``envctl`` script (``envctl/bin/envctl``, hand-written: pip's console-script
wrapper imports ``re``, ~3 ms) and ``python -m envctl`` call :func:`entry`.
"""

from __future__ import annotations

import os
import sys

try:  # the builtin module: hashlib would load OpenSSL (~2.5 ms)
    from _sha256 import sha256 as _sha256
except ImportError:  # pragma: no cover - builds without the builtin hash modules
    from hashlib import sha256 as _sha256

__all__ = ["entry", "main", "parse_run", "warm_run", "warm_exec", "RunArgs"]

SPEC_NAME = "envctl.yaml"  # as envctl.project (not imported: its dataclass costs ~5 ms)
LOCK_NAME = "envctl.lock"

_VALUE_OPTS = {"-C": "project", "--project": "project", "-f": "file", "--file": "file",
               "-w": "workdir", "--workdir": "workdir", "-e": "env", "--env": "env"}
_FLAG_OPTS = {"--json": "json", "-q": "quiet", "--quiet": "quiet", "-v": "verbose", "--verbose": "verbose",
              "-t": "tty", "--tty": "tty"}
_EXEC_FLAGS = {**_FLAG_OPTS, "-i": "interactive", "--interactive": "interactive"}


class RunArgs:
    """``envctl run`` arguments as the argparse parser would set them (plain class: no dataclass)."""

    def __init__(self):
        self.project: str | None = None
        self.file: str | None = None
        self.json = False
        self.quiet = 0
        self.verbose = 0
        self.env: list[str] = []
        self.workdir: str | None = None
        self.tty = False
        self.interactive = False  # exec only
        self.cmd: list[str] = []


def parse_run(argv: list[str], *, command: str = "run") -> RunArgs | None:
    """Parse the arguments after ``run`` (or ``exec``: also ``-i``/``--interactive``); None when
    they are not in the plain forms listed in the module docstring (the caller then uses the full
    argparse parser)."""
    flags = _EXEC_FLAGS if command == "exec" else _FLAG_OPTS
    a = RunArgs()
    i, n = 0, len(argv)
    while i < n:
        tok = argv[i]
        if tok == "--":
            a.cmd = argv[i:]
            break
        if not tok.startswith("-") or tok == "-":
            if tok == "-":
                return None
            a.cmd = argv[i:]
            break
        if tok in flags:
            name = flags[tok]
            if name in ("quiet", "verbose"):
                setattr(a, name, getattr(a, name) + 1)
            else:
                setattr(a, name, True)
            i += 1
            continue
        name = _VALUE_OPTS.get(tok)
        if name is None or i + 1 >= n or argv[i + 1].startswith("-"):
            return None
        if name == "env":
            value = argv[i + 1]
            if "=" not in value or value.startswith("="):
                return None  # `-e KEY` (host's value) and `-e =x` (usage error): the full CLI's rules
            a.env.append(value)
        elif name == "workdir" and not argv[i + 1].startswith("/"):
            return None  # a relative -w is the full parser's usage error
        else:
            setattr(a, name, argv[i + 1])
        i += 2
    argv_cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    return a if argv_cmd else None


def _absolute(p: str) -> str | None:
    """``str(Path(p).absolute())`` without pathlib (None for ``//x``, which pathlib keeps)."""
    if not p.startswith("/"):
        p = os.getcwd() + "/" + p
    if p.startswith("//") and not p.startswith("///"):
        return None
    return "/" + "/".join(x for x in p.split("/") if x and x != ".")


def _join(d: str, name: str) -> str:
    return d + name if d.endswith("/") else d + "/" + name


def _find_spec(directory: str | None, file: str | None) -> str | None:
    """The spec path as ``envctl.project.find_project`` finds it; None where it would raise."""
    start = _absolute(directory) if directory else os.getcwd()
    if start is None or (directory and not os.path.isdir(start)):
        return None
    start = os.path.realpath(start)  # physical, as find_project (Path.resolve) and getcwd()
    if file:
        spec = _absolute(file if file.startswith("/") else _join(start, file))
        if not spec:
            return None
        d, name = spec.rsplit("/", 1)
        spec = _join(os.path.realpath(d or "/"), name)
        return spec if os.path.isfile(spec) else None
    d = start
    while True:
        candidate = _join(d, SPEC_NAME)
        if os.path.isfile(candidate):
            return candidate
        if d == "/":
            return None
        d = d.rsplit("/", 1)[0] or "/"


def _lock_path(spec: str) -> str:
    d, name = spec.rsplit("/", 1)
    if name != SPEC_NAME:
        i = name.rfind(".")
        name = name[:i] if 0 < i < len(name) - 1 else name  # pathlib's stem
        return _join(d or "/", name + ".lock")
    return _join(d or "/", LOCK_NAME)


def _home() -> str | None:
    """``envctl.settings.envctl_home()`` as a str."""
    if v := os.environ.get("ENVCTL_HOME"):
        return _absolute(v)
    if os.geteuid() == 0:
        return "/var/lib/envctl"
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data, "envctl")


def _file_sha256(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return _sha256(f.read()).hexdigest()
    except FileNotFoundError:
        return None


def _strip(h):
    return h.split(":", 1)[1] if isinstance(h, str) and h.startswith("sha256:") else h


def _rootfs_present(rootfs) -> bool:
    """Used by envctl.commands._enter.rootfs_present too: every unpacked tree env.json mounts exists (a
    quarantined or collected layer sends the run to the full path, which unpacks it again)."""
    if not isinstance(rootfs, dict):
        return False
    dirs = rootfs.get("lowerdirs") if rootfs.get("driver") == "overlay" else [rootfs.get("path")]
    return bool(dirs) and all(isinstance(p, str) and os.path.isdir(p) for p in dirs)


def _mapped_cwd(cfg: dict) -> str | None:
    """Used by envctl.commands._enter.mapped_cwd too: a project subdirectory maps to the same one under the
    workdir (the project's bind mount); None at the project root or outside it."""
    workdir = (cfg.get("process") or {}).get("cwd")
    try:
        here = os.getcwd()
    except OSError:
        return None
    for m in cfg.get("mounts") or ():
        if workdir and m.get("destination") == workdir and m.get("type") == "bind" and m.get("source"):
            src = os.path.realpath(m["source"]).rstrip("/")
            if here.startswith(src + "/"):
                return workdir.rstrip("/") + "/" + here[len(src) + 1:]
            return None
    return None


def _current_config(args: RunArgs):
    """(env dir, env id, config dict) for the warm case, else None."""
    spec = _find_spec(args.project, args.file)
    home = _home()
    if spec is None or home is None:
        return None
    env_id = _sha256(spec.encode()).hexdigest()[:16]
    d = os.path.join(home, "envs", env_id)
    from specs.fastjson import loads

    try:
        with open(os.path.join(d, "env.json"), "rb") as f:
            env = loads(f.read())
        current = (isinstance(env, dict) and env.get("runtime") and env.get("rootfs")
                   and _strip(env.get("specSha256")) == _file_sha256(spec)
                   and _strip(env.get("lockSha256")) == _file_sha256(_lock_path(spec))
                   and _rootfs_present(env["rootfs"]))
    except (OSError, ValueError):
        return None
    if not current or not isinstance(env["runtime"], dict):
        return None
    cfg = env["runtime"]
    runtime = os.environ.get("ENVCTL_RUNTIME") or (cfg.get("annotations") or {}).get("dev.envctl.runtime") or "builtin"
    if runtime != "builtin":
        return None
    has_user = any(n.get("type") == "user" for n in cfg.get("linux", {}).get("namespaces", []))
    if os.geteuid() != 0 and not has_user:
        return None
    return d, env_id, cfg


def warm_run(args: RunArgs) -> int | None:
    """Run ``args.cmd`` in a current environment; None (nothing done) when it is not the warm case.

    Does what ``envctl.commands.run.run`` does with ``load_env``/``process_config``. Raises
    EnvctlError (ContainerError and friends) from the runtime once the container is starting.
    """
    found = _current_config(args)
    if found is None:
        return None
    d, env_id, cfg = found
    proc = cfg.setdefault("process", {})
    proc["args"] = args.cmd[1:] if args.cmd[:1] == ["--"] else list(args.cmd)
    proc["terminal"] = args.tty
    envl = [e for e in proc.get("env", []) if not (args.tty and e.startswith("TERM="))]
    if args.tty:
        envl.append(f"TERM={os.environ.get('TERM') or 'xterm'}")
    proc["env"] = envl + list(args.env)
    if args.workdir:
        proc["cwd"] = args.workdir
    else:
        sub = _mapped_cwd(cfg)
        if sub:
            proc["cwd"] = sub
    from envctl.output import Output
    from runtime.runner import run_config

    out = Output(args.json, args.verbose - args.quiet)
    return run_config(cfg, runtime="builtin", state_dir=d, name=env_id, warn=out.warn)


def warm_exec(args: RunArgs) -> int | None:
    """``envctl exec``: join the running environment; None (nothing done) when there is no project
    or no running environment (the full CLI then reports it)."""
    spec = _find_spec(args.project, args.file)
    home = _home()
    if spec is None or home is None:
        return None
    from runtime.state import read_state

    state = read_state(os.path.join(home, "envs", _sha256(spec.encode()).hexdigest()[:16]))
    if state is None:
        return None
    from runtime.exec import exec_in

    argv = args.cmd[1:] if args.cmd[:1] == ["--"] else list(args.cmd)
    return exec_in(state, argv, tty=args.tty, env=args.env, cwd=args.workdir)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status. The warm ``run`` case is handled here, everything
    else by :func:`envctl.cli.main`."""
    argv = sys.argv[1:] if argv is None else argv
    rc = _fast(argv)
    if rc is None:
        from envctl.cli import main as full_main

        return full_main(argv)
    return rc


def _fast(argv: list[str]) -> int | None:
    if argv == ["--version"]:  # what argparse's version action prints, without building the parser
        from envctl import __version__

        sys.stdout.write(f"envctl {__version__}\n")
        return 0
    if argv[:1] != ["run"] and argv[:1] != ["exec"]:
        return None
    debug = os.environ.get("ENVCTL_DEBUG") == "1"
    try:
        args = parse_run(argv[1:], command=argv[0])
        if args is None:
            return None
        rc = warm_run(args) if argv[0] == "run" else warm_exec(args)
        return None if rc is None else int(rc or 0)
    except BaseException as e:  # noqa: BLE001 - reported exactly as envctl.cli.main reports it
        return _report(e, debug)


def _report(e: BaseException, debug: bool) -> int:
    """envctl.cli.main's error handling (keep the two in step)."""
    from specs.errors import EXIT_FAILURE, EnvctlError

    if isinstance(e, EnvctlError):
        if debug:
            import traceback
            traceback.print_exception(e)
        sys.stderr.write(f"envctl: error: {e.message}\n")
        if e.hint:
            sys.stderr.write(f"hint: {e.hint}\n")
        return e.exit_code
    if isinstance(e, KeyboardInterrupt):
        sys.stderr.write("envctl: interrupted\n")
        return 130
    if isinstance(e, BrokenPipeError):
        return EXIT_FAILURE
    if not isinstance(e, Exception) or debug:
        raise e
    sys.stderr.write(f"envctl: internal error: {type(e).__name__}: {e}\n"
                     "hint: this is a bug in envctl; rerun with ENVCTL_DEBUG=1 and report the traceback\n")
    return EXIT_FAILURE


def entry() -> None:
    """Console entry (``envctl`` script, ``python -m envctl``): exits with :func:`main`'s status.

    After a fast-path run the process ends with ``os._exit`` once stdout/stderr are flushed:
    nothing is left to clean up (state and cgroup are removed by the supervisor), and tearing
    down the interpreter's modules would add a few milliseconds to every ``envctl run``.
    """
    argv = sys.argv[1:]
    rc = _fast(argv)
    if rc is None:
        from envctl.cli import main as full_main

        sys.exit(full_main(argv))
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # noqa: BLE001 - let the interpreter report it as usual
        sys.exit(rc)
    os._exit(rc)
