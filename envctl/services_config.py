"""The spec's services as the runtime's supervisor sees them (specs.model -> runtime.services).

:func:`services_from_spec` (service configs and watch blocks), :func:`rebuild_inputs` (the files
whose change means "rebuild the environment") and :data:`HOLD` (the environment holder's idle
PID 1 command). Used by envctl.services_session.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["HOLD", "services_from_spec", "rebuild_inputs"]

HOLD = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"


def _argv(command) -> tuple[str, ...]:
    return ("/bin/sh", "-c", command) if isinstance(command, str) else tuple(command)


def services_from_spec(spec, *, host: bool = False, project_root: Path | None = None):
    """Runtime service configs and watch blocks from an EnvSpec.

    Args:
        spec: specs.model.EnvSpec.
        host: build for host processes (cwd = project root instead of the spec's workdir).

    Returns:
        ``(list[runtime.services.ServiceConfig], dict[str, runtime.reload.ServiceWatch])``.
    """
    from runtime.reload import ServiceWatch
    from runtime.services import Readiness, ServiceConfig

    configs, watches = [], {}
    for s in spec.services:
        ready = None
        if s.ready is not None:
            r = s.ready
            url = r.http
            if url and url.startswith("/"):
                url = f"http://127.0.0.1:{r.port or 80}{url}"
            ready = Readiness(port=r.port if r.kind == "port" else None, http=url if r.kind == "http" else None,
                              command=_argv(r.command) if r.kind == "command" and r.command else None,
                              timeout=r.timeout_ms / 1000, interval=max(0.01, min(r.interval_ms / 1000, 0.1)))
        cwd = str(project_root) if host else (s.workdir or spec.workdir)
        configs.append(ServiceConfig(s.name, _argv(s.command), tuple(s.env), cwd, tuple(s.depends_on), ready,
                                     {"never": "no"}.get(s.restart, s.restart)))
        if s.watch is not None:
            w = s.watch
            watches[s.name] = ServiceWatch(tuple(w.paths), tuple(w.ignore), w.action, w.debounce_ms / 1000,
                                           bool(getattr(w, "gitignore", True)))
    return configs, watches


def rebuild_inputs(spec, project) -> tuple[str, ...]:
    """Project-relative globs whose change means "rebuild the environment": the spec, its lock,
    and every file read by a ``copy`` step (a directory source covers everything below it)."""
    root = Path(project.root)
    out = []
    for p in (project.spec_path, project.lock_path):
        try:
            out.append("/" + Path(p).relative_to(root).as_posix())
        except ValueError:
            pass
    for step in spec.steps:
        if step.kind == "copy" and step.src:
            src = step.src.strip("/").removeprefix("./")
            out.append(f"/{src}/**" if (root / src).is_dir() else f"/{src}")
    return tuple(out)
