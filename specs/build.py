"""From a schema-checked document to an :class:`~specs.model.EnvSpec`: the checks JSON Schema
cannot express (image reference grammar, size and duration units with ranges, env numbers YAML
rewrote, platform aliases, capability names, service dependency cycles) and normalisation.

Every converter is defensive: a value of the wrong type was already reported by the schema
pass and is skipped here, so one run reports every problem in the file.
"""

from __future__ import annotations

import difflib
import posixpath
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path

from specs.errors import InvalidReference, SpecError
from specs.document import Document, format_path
from specs.model import (DEFAULT_WORKDIR, Cache, EnvSpec, Mount, Ready, Resources, Service, Step,
                         Watch)
from specs.reference import parse_reference

__all__ = ["build_spec", "parse_size", "parse_duration_ms", "normalize_platform", "normalize_capability",
           "CAPABILITIES", "MIN_MEMORY", "MAX_MEMORY", "UnitFormatError", "build_with_errors"]

MIN_MEMORY = 6 << 20   # Docker's minimum; below it the kernel OOM-kills the shell at once
MAX_MEMORY = 1 << 50   # 1 PiB: anything larger is a typo
_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([bB]|[kKmMgGtT][iI]?[bB]?)?")
_UNITS = {"b": 0, "k": 1, "m": 2, "g": 3, "t": 4}
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_DURATION_MS = {"ms": 1, "s": 1000, "m": 60000, "h": 3600000}
_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm/v7",
                 "armel": "arm/v6", "i386": "386", "i686": "386"}
# include/uapi/linux/capability.h, Linux 6.x (0..40)
CAPABILITIES = (
    "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE "
    "NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO SYS_CHROOT "
    "SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE "
    "AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ "
    "PERFMON BPF CHECKPOINT_RESTORE").split()


class UnitFormatError(ValueError):
    """The text is not a size/duration at all (the schema pass reports it with its position)."""


def parse_size(value) -> int:
    """Bytes (int) from an int or a string such as ``512M``, ``2GiB``, ``1.5G`` (1024-based units,
    as Docker's RAMInBytes). Raises ValueError with a user-facing reason."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    m = _SIZE.fullmatch(str(value).strip())
    if not m:
        raise UnitFormatError(f"expected a size such as 512M, 2GiB or 1.5G, got {value!r}")
    unit = (m.group(2) or "b")[0].lower()
    size = Decimal(m.group(1)) * (1024 ** _UNITS[unit])
    if size != size.to_integral_value():
        raise ValueError(f"{value!r} is not a whole number of bytes")
    return int(size)


def parse_duration_ms(value) -> int:
    """Milliseconds (int) from ``250ms``, ``2s``, ``1.5m``, ``1h`` or a number of seconds."""
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            ms = Decimal(str(value)) * 1000
        else:
            m = _DURATION.fullmatch(str(value))
            if not m:
                raise UnitFormatError(f"expected a duration such as 250ms, 2s or 1m, got {value!r}")
            ms = Decimal(m.group(1)) * _DURATION_MS[m.group(2)]
    except InvalidOperation:
        raise UnitFormatError(f"expected a duration such as 250ms, 2s or 1m, got {value!r}") from None
    if ms != ms.to_integral_value():
        raise ValueError(f"{value!r} is not a whole number of milliseconds")
    return int(ms)


def normalize_platform(text: str) -> str:
    """``linux/x86_64`` -> ``linux/amd64``, ``linux/arm64/v8`` -> ``linux/arm64`` (containerd's rules)."""
    os_, _, rest = text.lower().partition("/")
    arch, _, variant = rest.partition("/")
    arch = _ARCH_ALIASES.get(arch, arch)
    if "/" in arch:
        arch, variant = arch.split("/")[0], variant or arch.split("/")[1]
    if arch == "arm64" and variant == "v8":
        variant = ""
    return f"{os_}/{arch}" + (f"/{variant}" if variant else "")


def normalize_capability(name: str) -> str:
    """``net_admin`` / ``NET_ADMIN`` / ``CAP_NET_ADMIN`` -> ``CAP_NET_ADMIN``; ``all`` -> ``ALL``.
    Raises ValueError for an unknown name (with a suggestion)."""
    up = name.upper().removeprefix("CAP_")
    if up == "ALL":
        return "ALL"
    if up not in CAPABILITIES:
        close = difflib.get_close_matches(up, CAPABILITIES, n=1)
        raise ValueError(f"unknown capability {name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return "CAP_" + up


class _Ctx:
    def __init__(self, doc: Document):
        self.doc = doc
        self.errors: list[SpecError] = []

    def err(self, path: tuple, message: str, hint: str | None = None, at_key: bool = False) -> None:
        loc = self.doc.locations
        line, col = loc.key(path) if at_key else loc.value(path)
        self.errors.append(SpecError(message, file=self.doc.file, line=line, col=col,
                                     path=format_path(path), hint=hint))


def _str(v) -> str | None:
    return v if isinstance(v, str) else None


def _int(v) -> int | None:
    """An int from an int or an integral float (JSON Schema's "integer" accepts 2.0)."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    return int(v) if isinstance(v, float) and v.is_integer() else None


def _command(v):
    if isinstance(v, str):
        return v
    if isinstance(v, list) and v and all(isinstance(x, str) for x in v):
        return tuple(v)
    return None


def _env(ctx: _Ctx, value, path: tuple) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        return ()
    out = []
    for k, v in value.items():
        if isinstance(v, str):
            out.append((k, v))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            scalar = ctx.doc.locations.scalar(path + (k,))
            raw = scalar.raw if scalar else str(v)
            if raw == (repr(v) if isinstance(v, float) else str(v)):
                out.append((k, raw))
            else:
                shown = repr(v) if isinstance(v, float) else str(v)
                ctx.err(path + (k,), f'YAML 1.1 reads `{raw}` as the number {shown}, not the text {raw}; '
                        f'quote it: "{raw}"')
    for k, v in out:   # the kernel refuses one env string over MAX_ARG_STRLEN at exec (E2BIG)
        size = len(k.encode()) + 1 + len(v.encode()) + 1
        if size > MAX_ENV_STRLEN:
            ctx.err(path + (k,), f"{k}=... is {size} bytes; one environment variable can be at most "
                                 f"{MAX_ENV_STRLEN} (the kernel's MAX_ARG_STRLEN; exec would fail with "
                                 "'argument list too long')")
    return tuple(out)


MAX_ENV_STRLEN = 131072   # Linux MAX_ARG_STRLEN (32 pages): "KEY=VALUE" plus its NUL (QA L11)


def build_spec(data: dict, doc: Document, path: Path) -> EnvSpec:
    """Build the model from schema-valid ``data``.

    Raises:
        SpecErrors: every semantic problem found (see module doc).
    """
    from specs.errors import SpecErrors

    spec, errors = build_with_errors(data, doc, path)
    if errors:
        raise SpecErrors(errors)
    return spec


def build_with_errors(data: dict, doc: Document, path: Path) -> tuple[EnvSpec | None, list[SpecError]]:
    """Like :func:`build_spec` but returns (spec or None, errors) and tolerates invalid data."""
    ctx = _Ctx(doc)
    image = None
    if isinstance(data.get("image"), str) and data["image"]:
        try:
            image = parse_reference(data["image"])
        except InvalidReference as e:
            ctx.err(("image",), e.message, hint=e.hint or "see docs/spec.md#image for the reference grammar")
    fields = dict(
        version=_int(data.get("version")),
        platforms=_platforms(ctx, data.get("platforms")),
        steps=tuple(s for i, raw in enumerate(data.get("steps") or [])
                    if (s := _step(ctx, raw, ("steps", i))) is not None),
        env=_env(ctx, data.get("env"), ("env",)),
        workdir=_str(data.get("workdir")) or DEFAULT_WORKDIR,
        mounts=tuple(m for i, raw in enumerate(data.get("mounts") or [])
                     if (m := _mount(raw)) is not None),
        resources=_resources(ctx, data.get("resources")),
        network=_str(data.get("network")) or "host",
        shell=_str(data.get("shell")),
        user=_str(data.get("user")),
        cap_add=_caps(ctx, data.get("cap_add"), "cap_add"),
        cap_drop=_caps(ctx, data.get("cap_drop"), "cap_drop"),
        services=_services(ctx, data.get("services")),
        runtime=_str(data.get("runtime")) or "builtin",
        cache=_cache(ctx, data.get("cache")),
    )
    if ctx.errors or image is None:
        return None, ctx.errors
    return EnvSpec(image=image, path=path, raw=data, **fields), []


def _platforms(ctx: _Ctx, value) -> tuple[str, ...]:
    out: list[str] = []
    for i, p in enumerate(value if isinstance(value, list) else []):
        if not isinstance(p, str):
            continue
        norm = normalize_platform(p)
        if norm in out:
            ctx.err(("platforms", i), f"platform {norm} is listed twice" + (f" (as {p})" if p != norm else ""))
        out.append(norm)
    return tuple(out)


def _step(ctx: _Ctx, raw, path: tuple) -> Step | None:
    if not isinstance(raw, dict):
        return None
    kinds = [k for k in ("run", "copy", "env", "workdir", "user") if k in raw]
    if len(kinds) != 1:
        return None
    kind = kinds[0]
    repro = raw.get("reproducible", True) is not False
    v = raw[kind]
    if kind == "run":
        return Step("run", run=_command(v), reproducible=repro)
    if kind == "copy":
        return _copy(ctx, v, path + ("copy",), repro)
    if kind == "env":
        return Step("env", env=_env(ctx, v, path + ("env",)), reproducible=repro)
    return Step(kind, **{kind: _str(v)}, reproducible=repro)


def _copy(ctx: _Ctx, v, path: tuple, repro: bool) -> Step | None:
    src_path = path + ("src",) if isinstance(v, dict) else path
    if isinstance(v, str):
        parts = v.split()
        if len(parts) != 2:
            return None
        v = {"src": parts[0], "dest": parts[1]}
    if not isinstance(v, dict) or not isinstance(v.get("src"), str) or not isinstance(v.get("dest"), str):
        return None
    src = posixpath.normpath(v["src"])
    if src.startswith("/") or src == ".." or src.startswith("../"):
        ctx.err(src_path, f"copy source {v['src']!r} is outside the project",
                hint="copy sources are relative to the project directory and stay inside it")
        return None
    mode = None
    if isinstance(v.get("mode"), str) and re.fullmatch(r"0?[0-7]{3,4}", v["mode"]):
        mode = int(v["mode"], 8)
    dest = v["dest"]
    return Step("copy", src=src, dest=dest, owner=_str(v.get("owner")), mode=mode, reproducible=repro)


def _mount(raw) -> Mount | None:
    if isinstance(raw, str):
        parts = raw.split(":")
        if len(parts) not in (2, 3):
            return None
        return Mount(parts[0], posixpath.normpath(parts[1]), len(parts) == 3 and parts[2] == "ro")
    if isinstance(raw, dict) and isinstance(raw.get("source"), str) and isinstance(raw.get("target"), str):
        return Mount(raw["source"], posixpath.normpath(raw["target"]), raw.get("readonly") is True)
    return None


def _resources(ctx: _Ctx, value) -> Resources:
    if not isinstance(value, dict):
        return Resources()
    memory = None
    raw = value.get("memory")
    if isinstance(raw, (str, int)) and not isinstance(raw, bool):
        try:
            memory = parse_size(raw)
        except UnitFormatError:
            pass
        except ValueError as e:
            ctx.err(("resources", "memory"), str(e))
        else:
            if not MIN_MEMORY <= memory <= MAX_MEMORY:
                ctx.err(("resources", "memory"),
                        f"{raw} ({memory} bytes) is out of range: between 6MiB and 1PiB",
                        hint="sizes use K, M, G, T (1024-based): 512M, 2GiB")
                memory = None
    cpus = value.get("cpus")
    cpus = float(cpus) if isinstance(cpus, (int, float)) and not isinstance(cpus, bool) else None
    pids = _int(value.get("pids"))
    return Resources(memory, cpus, pids)


def _caps(ctx: _Ctx, value, key: str) -> tuple[str, ...]:
    out = []
    for i, name in enumerate(value if isinstance(value, list) else []):
        if not isinstance(name, str):
            continue
        try:
            out.append(normalize_capability(name))
        except ValueError as e:
            ctx.err((key, i), str(e))
    return tuple(out)


def _duration(ctx: _Ctx, value, path: tuple, default: int, positive: bool = False) -> int:
    if value is None:
        return default
    try:
        ms = parse_duration_ms(value)
    except UnitFormatError:
        return default
    except ValueError as e:
        ctx.err(path, str(e))
        return default
    if positive and ms <= 0:
        ctx.err(path, "must be longer than 0")
    return ms


def _ready(ctx: _Ctx, value, path: tuple) -> Ready | None:
    if not isinstance(value, dict):
        return None
    port, http, command = value.get("port"), _str(value.get("http")), _command(value.get("command"))
    port = _int(port)
    if command is not None and (port is not None or http is not None):
        ctx.err(path, "ready takes one check: port, http or command", hint="keep only one of them")
    elif http is not None and http.startswith("/") and port is None:
        ctx.err(path + ("http",), f"the path {http} needs a port", hint="add 'port: N' next to 'http:'")
    elif port is None and http is None and command is None:
        if value:  # {} is reported by the schema (minProperties)
            ctx.err(path, "needs a check: port, http or command", hint="e.g. ready: {port: 8000}")
        return None
    kind = "command" if command is not None else "http" if http is not None else "port"
    return Ready(kind, port=port, http=http, command=command,
                 timeout_ms=_duration(ctx, value.get("timeout"), path + ("timeout",), 30000, positive=True),
                 interval_ms=_duration(ctx, value.get("interval"), path + ("interval",), 100, positive=True))


def _watch(ctx: _Ctx, value, path: tuple) -> Watch | None:
    if not isinstance(value, dict) or not isinstance(value.get("paths"), list):
        return None
    strs = lambda xs: tuple(x for x in xs if isinstance(x, str)) if isinstance(xs, list) else ()  # noqa: E731
    return Watch(paths=strs(value["paths"]), ignore=strs(value.get("ignore")),
                 action=_str(value.get("action")) or "restart",
                 debounce_ms=_duration(ctx, value.get("debounce"), path + ("debounce",), 100),
                 gitignore=value.get("gitignore") is not False)


def _services(ctx: _Ctx, value) -> tuple[Service, ...]:
    if not isinstance(value, dict):
        return ()
    out = []
    for name, raw in value.items():
        if not isinstance(raw, dict):
            continue
        path = ("services", name)
        deps = tuple(d for d in raw.get("depends_on") or [] if isinstance(d, str)) \
            if isinstance(raw.get("depends_on"), list) else ()
        for i, d in enumerate(deps):
            if d == name:
                ctx.err(path + ("depends_on", i), f"service {name!r} depends on itself")
            elif d not in value:
                close = difflib.get_close_matches(d, list(value), n=1)
                ctx.err(path + ("depends_on", i), f"no service named {d!r}"
                        + (f" (did you mean {close[0]!r}?)" if close else ""))
        out.append(Service(name=name, command=_command(raw.get("command")) or "",
                           env=_env(ctx, raw.get("env"), path + ("env",)), workdir=_str(raw.get("workdir")),
                           depends_on=deps, ready=_ready(ctx, raw.get("ready"), path + ("ready",)),
                           restart=_str(raw.get("restart")) or "never",
                           watch=_watch(ctx, raw.get("watch"), path + ("watch",))))
    _check_cycles(ctx, out)
    return tuple(out)


def _check_cycles(ctx: _Ctx, services: list[Service]) -> None:
    deps = {s.name: [d for d in s.depends_on if d != s.name] for s in services}
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(n: str, trail: list[str]) -> None:
        if state.get(n) == 2 or n not in deps:
            return
        if state.get(n) == 1:
            cycle = trail[trail.index(n):] + [n]
            ctx.err(("services", n, "depends_on"), "dependency cycle: " + " -> ".join(cycle),
                    hint="remove one of these depends_on entries")
            return
        state[n] = 1
        for d in deps[n]:
            visit(d, trail + [n])
        state[n] = 2

    for name in deps:
        visit(name, [])


def _cache(ctx: _Ctx, value) -> Cache | None:
    if not isinstance(value, dict) or not isinstance(value.get("registry"), str):
        return None
    text = value["registry"]
    last = text.rsplit("/", 1)[-1]
    if "@" in text or ":" in last:
        ctx.err(("cache", "registry"), f"{text!r}: name a repository without tag or digest",
                hint="e.g. localhost:5000/team/cache")
        return None
    try:
        ref = parse_reference(text)
    except InvalidReference as e:
        ctx.err(("cache", "registry"), e.message)
        return None
    return Cache(ref.name)
