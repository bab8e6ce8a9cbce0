"""Registry configuration: mirrors and insecure (plain http / unverified TLS) registries.

Sources, later ones adding to earlier ones:

1. ``registries.conf`` in the envctl config directory (``$ENVCTL_REGISTRIES_CONF``, else
   ``$ENVCTL_CONFIG_DIR/registries.conf``, else ``$XDG_CONFIG_HOME/envctl/registries.conf``), the
   TOML v2 format of containers-registries.conf(5), subset::

       [[registry]]
       location = "docker.io"          # or prefix = "docker.io/library"
       insecure = false
       [[registry.mirror]]
       location = "mirror.example.com/dockerhub"
       insecure = false

2. ``ENVCTL_REGISTRY_MIRRORS="docker.io=https://mirror.a,http://127.0.0.1:5001;quay.io=..."``:
   ``http://`` marks that mirror insecure (dockerd's ``registry-mirrors`` syntax per origin).
3. ``ENVCTL_INSECURE_REGISTRIES="host:port,host2"``.

Mirrors are tried first, in order, then the origin (containers-registries.conf semantics; for
docker.io this is dockerd's ``registry-mirrors``). A mirror repository is the mirror location
plus what follows the matched prefix: ``docker.io/library/debian`` with mirror ``m.example/hub``
becomes ``m.example/hub/library/debian``. Loopback registries may always use plain http.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from specs.errors import UsageError

__all__ = ["Endpoint", "RegistryConfig", "is_loopback", "api_host", "canonical_host"]

_DOCKER_ALIASES = {"index.docker.io": "docker.io", "registry-1.docker.io": "docker.io"}


def canonical_host(host: str) -> str:
    """``index.docker.io``/``registry-1.docker.io`` -> ``docker.io``; others unchanged (lowercase)."""
    host = host.lower()
    return _DOCKER_ALIASES.get(host, host)


def api_host(registry: str) -> str:
    """The host serving the distribution API for ``registry`` (docker.io -> registry-1.docker.io)."""
    return "registry-1.docker.io" if registry == "docker.io" else registry


def is_loopback(host: str) -> bool:
    """True when ``host`` (``name[:port]`` or ``[v6]:port``) is localhost or a loopback address."""
    h = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    h = h.strip("[]").lower()
    if h == "localhost" or h.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Endpoint:
    """Where to fetch one repository from.

    Attributes:
        host: API host[:port] to contact.
        repository: repository name on that host.
        insecure: plain http (or unverified TLS) allowed.
        mirror: True for a mirror (errors fall through to the next endpoint).
    """

    host: str
    repository: str
    insecure: bool
    mirror: bool


@dataclass
class RegistryConfig:
    """Mirrors (prefix -> list of (location, insecure)) and insecure registry hosts."""

    mirrors: dict[str, list[tuple[str, bool]]] = field(default_factory=dict)
    insecure: set[str] = field(default_factory=set)

    @classmethod
    def from_env(cls) -> "RegistryConfig":
        """Build from registries.conf plus ENVCTL_REGISTRY_MIRRORS / ENVCTL_INSECURE_REGISTRIES.

        Raises:
            UsageError: a malformed file or variable (names it).
        """
        cfg = cls()
        path = _conf_path()
        if path.is_file():
            cfg._load_toml(path)
        if v := os.environ.get("ENVCTL_REGISTRY_MIRRORS"):
            cfg._load_env_mirrors(v)
        for h in filter(None, (x.strip() for x in os.environ.get("ENVCTL_INSECURE_REGISTRIES", "").split(","))):
            cfg.insecure.add(canonical_host(h))
        return cfg

    def _load_toml(self, path: Path) -> None:
        import tomllib

        try:
            doc = tomllib.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise UsageError(f"cannot read registry config {path}: {e}") from None
        for i, reg in enumerate(doc.get("registry", [])):
            prefix = reg.get("prefix") or reg.get("location")
            if not isinstance(prefix, str) or not prefix:
                raise UsageError(f"{path}: registry[{i}] needs a 'location' or 'prefix'")
            prefix = _canon_prefix(prefix)
            if reg.get("insecure"):
                self.insecure.add(prefix.split("/")[0])
            for m in reg.get("mirror", []):
                loc = m.get("location")
                if not isinstance(loc, str) or not loc:
                    raise UsageError(f"{path}: registry[{i}].mirror needs a 'location'")
                self.mirrors.setdefault(prefix, []).append((loc.rstrip("/"), bool(m.get("insecure"))))

    def _load_env_mirrors(self, value: str) -> None:
        for part in filter(None, (p.strip() for p in value.split(";"))):
            prefix, sep, urls = part.partition("=")
            if not sep or not prefix.strip() or not urls.strip():
                raise UsageError(f"ENVCTL_REGISTRY_MIRRORS: expected REGISTRY=URL[,URL];..., got {part!r}")
            for url in filter(None, (u.strip() for u in urls.split(","))):
                insecure = url.startswith("http://")
                loc = url.split("://", 1)[-1].rstrip("/")
                self.mirrors.setdefault(_canon_prefix(prefix.strip()), []).append((loc, insecure))

    def is_insecure(self, host: str) -> bool:
        """Plain http allowed for ``host``: loopback, or listed as insecure."""
        return is_loopback(host) or canonical_host(host) in self.insecure

    def endpoints(self, registry: str, repository: str) -> list[Endpoint]:
        """Mirrors for ``registry/repository`` (longest matching prefix), then the origin."""
        registry = canonical_host(registry)
        full = f"{registry}/{repository}"
        best = ""
        for prefix in self.mirrors:
            if (full == prefix or full.startswith(prefix + "/")) and len(prefix) > len(best):
                best = prefix
        out = []
        for loc, insecure in self.mirrors.get(best, []):
            target = loc + full[len(best):]
            host, _, repo = target.partition("/")
            if not repo:
                continue
            out.append(Endpoint(host, repo, insecure or self.is_insecure(host), True))
        out.append(Endpoint(api_host(registry), repository, self.is_insecure(registry), False))
        return out


def _canon_prefix(prefix: str) -> str:
    prefix = prefix.split("://", 1)[-1].rstrip("/")
    host, sep, rest = prefix.partition("/")
    return canonical_host(host) + sep + rest


def _conf_path() -> Path:
    if v := os.environ.get("ENVCTL_REGISTRIES_CONF"):
        return Path(v)
    if v := os.environ.get("ENVCTL_CONFIG_DIR"):
        return Path(v) / "registries.conf"
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "envctl" / "registries.conf"
