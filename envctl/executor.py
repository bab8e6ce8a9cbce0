"""The build-step Executor (engine.build.steps) over envctl's runtime: ``run`` steps in a real container.

engine/ never forks a container (DESIGN.md); this is where the two meet. Each ``run`` step gets
an OCI config from ``runtime.config.generate_config`` with the step's overlay plan as rootfs,
no project mount (a step sees only what ``copy`` steps put in: that is what makes the cache key
complete), the step's env/workdir/user, and the spec's network. stdin is /dev/null; stdout and
stderr go to the terminal as usual and the last lines are kept for the failure message.
"""

from __future__ import annotations

import collections
import os
import signal
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

from engine.build.steps import RunRequest, RunResult

__all__ = ["RuntimeExecutor", "make_executor"]

TAIL = 20


def _maps(cfg: dict, key: str) -> tuple[tuple[int, int, int], ...]:
    return tuple((m["containerID"], m["hostID"], m["size"]) for m in cfg.get("linux", {}).get(key, []))


class RuntimeExecutor:
    """Runs build commands with the builtin runtime (or runc/crun per ``ENVCTL_RUNTIME``).

    Args:
        network: ``"host"`` or ``"none"`` for run steps.
        rootless: user-namespace container (default: when not root).
        echo: copy the step's output to stderr while it runs (bool).
    """

    def __init__(self, network: str = "host", rootless: bool | None = None, echo: bool = True):
        self.network = network
        self.rootless = os.geteuid() != 0 if rootless is None else rootless
        self.echo = echo
        probe = self._config(RunRequest(("true",), (), "/", None, {"driver": "copy", "path": "/nonexistent"},
                                        network))
        self.uid_map, self.gid_map = _maps(probe, "uidMappings"), _maps(probe, "gidMappings")
        self._linux_maps = {k: probe["linux"][k] for k in ("uidMappings", "gidMappings") if k in probe.get("linux", {})}

    def _config(self, req: RunRequest) -> dict:
        from runtime.config import generate_config

        shim = SimpleNamespace(user=req.user, workdir=req.workdir, network=req.network, cap_add=(), cap_drop=(),
                               mounts=(), resources=None)
        image_config = {"Env": list(req.env), "WorkingDir": req.workdir, "User": req.user or ""}
        try:
            return generate_config(shim, image_config=image_config, rootfs=req.rootfs, project_root=None,
                                   rootless=self.rootless, args=list(req.argv), tty=False)
        except ValueError as e:  # a `user:` step naming a user the image lacks
            from engine.errors import BuildError

            raise BuildError(f"build step {req.step_index + 1}: {e}",
                             hint="create the user in an earlier run step, or give a numeric uid[:gid]") from None

    def run(self, req: RunRequest) -> RunResult:
        """Run one step; returns its exit status and output tail. Raises ContainerError on setup failures."""
        from runtime.runner import run_config

        rootfs = dict(req.rootfs)
        merged = Path(rootfs["upperdir"]).parent.parent / "merged"
        merged.mkdir(exist_ok=True)
        rootfs["merged"] = str(merged)
        cfg = self._config(RunRequest(req.argv, req.env, req.workdir, req.user, rootfs, req.network,
                                      req.step_index))
        # One mapping for every step (container root = the user, others from /etc/subuid), whatever
        # the step's user: the runtime's keep-id mapping for a non-root ``user:`` would show the
        # lower layers' files under another owner and make the layer writer misread owners.
        cfg.setdefault("linux", {}).update(self._linux_maps)
        cfg["process"]["env"] = list(req.env) + [e for e in cfg["process"]["env"]
                                                 if e.split("=", 1)[0] not in {x.split("=", 1)[0] for x in req.env}]
        runtime = os.environ.get("ENVCTL_RUNTIME", "builtin")
        with _Capture(self.echo) as cap:
            status = run_config(cfg, runtime=runtime, state_dir=merged.parent / "state",
                                name=f"envctl-build-{os.getpid()}-{req.step_index}")
        if status != 0 and runtime == "builtin":
            from runtime.supervise import forwarded_signals

            if any(s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP) for s in forwarded_signals()):
                raise KeyboardInterrupt   # Ctrl-C stopped the step: "envctl: interrupted", not a failed step (QA L2)
        return RunResult(status, tuple(cap.tail), self._failure_hint(status, cap.tail))

    def _failure_hint(self, status: int, tail) -> str | None:
        """What ``envctl doctor`` says when a rootless step failed switching users with only the
        user's own id mapped (no /etc/subuid range): apt's ``_apt`` sandbox, su, chown to others."""
        if status == 0 or not self.rootless or sum(n for _, _, n in self.uid_map) > 1:
            return None
        text = "\n".join(tail).lower()
        if not any(w in text for w in _ID_SWITCH_ERRORS):
            return None
        from runtime.host import probe_subids

        fix = probe_subids().hint
        return ("this rootless environment maps only your own user id (no /etc/subuid range), so "
                "commands that switch users fail" + (f": {fix}" if fix else "") + "; see 'envctl doctor' "
                "and docs/rootless.md")


# what tools print when setgroups/setuid/chown to an unmapped id fails (apt: "setgroups 65534
# failed - setgroups (1: Operation not permitted)", "seteuid 100 failed")
_ID_SWITCH_ERRORS = ("setgroups", "setegid", "seteuid", "setgid", "setuid", "chown", "invalid argument")


class _Capture:
    """Point fds 0/1/2 at /dev/null and a pipe for the duration; keep the last lines, echo them."""

    def __init__(self, echo: bool):
        self.echo = echo
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL)

    def __enter__(self) -> "_Capture":
        sys.stdout.flush()
        sys.stderr.flush()
        self.saved = [os.dup(fd) for fd in (0, 1, 2)]
        r, w = os.pipe()
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(w, 1)
        os.dup2(w, 2)
        os.close(null)
        os.close(w)
        self.thread = threading.Thread(target=self._pump, args=(r, self.saved[2]), daemon=True)
        self.thread.start()
        return self

    def _pump(self, r: int, err: int) -> None:
        partial = b""
        with os.fdopen(r, "rb", buffering=0) as f:
            while block := f.read(65536):
                if self.echo:
                    os.write(err, block)
                lines = (partial + block).split(b"\n")
                partial = lines.pop()
                self.tail.extend(line.decode(errors="replace") for line in lines)
        if partial:
            self.tail.append(partial.decode(errors="replace"))

    def __exit__(self, *exc) -> None:
        for fd, saved in zip((0, 1, 2), self.saved):
            os.dup2(saved, fd)
        # the pump may still be echoing the last block to saved[2]: close it only afterwards
        # (closing first made that write fail with EBADF, a thread traceback on the terminal,
        # or land in whatever file reused the descriptor number)
        self.thread.join(timeout=5)
        for saved in self.saved:
            os.close(saved)


def make_executor(spec) -> RuntimeExecutor:
    """The executor for ``spec``'s build steps (called by envctl.stages.build_layers)."""
    return RuntimeExecutor(network=getattr(spec, "network", "host") or "host")
