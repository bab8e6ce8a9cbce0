"""Image references: parse and normalise exactly as Docker does, plus skopeo's transport prefixes.

Grammar: the distribution project's reference package (github.com/distribution/reference,
``regexp.go`` and ``normalize.go``), re-expressed as Python regular expressions::

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [ domain "/" ] path-component [ "/" path-component ]*   (<= 255 chars)
    domain     := host [ ":" port ]            host: DNS-ish name, IPv4, or [IPv6]
    path-comp  := [a-z0-9]+ ( separator [a-z0-9]+ )*   separator: "." | "_" | "__" | "-"+
    tag        := [\\w][\\w.-]{0,127}

Normalisation (``ParseNormalizedNamed``): no domain -> ``docker.io``; ``index.docker.io`` ->
``docker.io``; a single path component on docker.io gets ``library/``; the first component is
a domain only when it contains ``.`` or ``:``, is ``localhost``, or has uppercase letters.
A 64-hex-digit name is refused (it would be an image ID). No tag and no digest -> ``latest``.

Transports (the names skopeo uses): ``docker://REF`` (same as a bare reference),
``oci:PATH[:TAG]``, ``oci-archive:PATH[:TAG]``, ``docker-archive:PATH[:REF]``. The path ends
at the first ``:`` after the prefix, as in containers/image ``SplitPathAndImage``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from specs.digest import Digest
from specs.errors import InvalidDigest, InvalidReference

__all__ = ["ImageRef", "parse_reference", "DEFAULT_REGISTRY", "TRANSPORTS", "NAME_MAX"]

DEFAULT_REGISTRY = "docker.io"
LEGACY_REGISTRY = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_MAX = 255  # distribution reference.go NameTotalLengthMax
TRANSPORTS = ("docker", "oci", "docker-archive", "oci-archive")

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = _ALNUM + r"(?:" + _SEPARATOR + _ALNUM + r")*"
_REMOTE_NAME = _PATH_COMPONENT + r"(?:/" + _PATH_COMPONENT + r")*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = _DOMAIN_COMPONENT + r"(?:\." + _DOMAIN_COMPONENT + r")*"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN = r"(?:" + _DOMAIN_NAME + "|" + _IPV6 + r")(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_NAME = r"(?:" + _DOMAIN + r"/)?" + _REMOTE_NAME

# re.ASCII: Go's \w is [0-9A-Za-z_]; Python's would accept any Unicode letter.
_REFERENCE_RE = re.compile(r"(" + _NAME + r")(?::(" + _TAG + r"))?(?:@(" + _DIGEST + r"))?", re.ASCII)
_ANCHORED_NAME_RE = re.compile(r"(?:(" + _DOMAIN + r")/)?(" + _REMOTE_NAME + r")", re.ASCII)
_TAG_RE = re.compile(_TAG, re.ASCII)
_IDENTIFIER_RE = re.compile(r"[a-f0-9]{64}")


@dataclass(frozen=True)
class ImageRef:
    """A parsed, normalised image reference.

    Attributes:
        transport: ``"docker"``, ``"oci"``, ``"docker-archive"`` or ``"oci-archive"``.
        registry: registry host[:port] for the docker transport (``"docker.io"``), else None.
        repository: repository path (``"library/debian"``) for the docker transport, else None.
        tag: the tag; for docker it is None only when a digest was given without a tag, and
            ``"latest"`` when neither was given. For ``oci``/``oci-archive`` the image name in
            the layout (None = the only image); for ``docker-archive`` the optional
            ``repo:tag`` inside the archive, verbatim.
        digest: the pinned :class:`~specs.digest.Digest`, or None.
        path: the filesystem path for the file-based transports (as written, may be relative).
    """

    transport: str
    registry: str | None
    repository: str | None
    tag: str | None
    digest: Digest | None
    path: str | None = None

    @property
    def name(self) -> str:
        """``registry/repository`` (docker) or the path (file transports)."""
        if self.transport == "docker":
            return f"{self.registry}/{self.repository}"
        return f"{self.transport}:{self.path}"

    def __str__(self) -> str:
        if self.transport != "docker":
            return f"{self.transport}:{self.path}" + (f":{self.tag}" if self.tag else "")
        return self.name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def with_digest(self, d: Digest) -> "ImageRef":
        """The same reference pinned to digest ``d`` (tag kept). Returns a new ImageRef."""
        return replace(self, digest=d)

    def familiar(self) -> str:
        """Docker's short form: ``debian:bookworm``, ``user/app``, ``localhost:5000/x:1``."""
        if self.transport != "docker":
            return str(self)
        repo = self.repository or ""
        if self.registry == DEFAULT_REGISTRY:
            short = repo
            rest = repo[len(OFFICIAL_PREFIX):]
            if repo.startswith(OFFICIAL_PREFIX) and "/" not in rest:
                short = rest
        else:
            short = f"{self.registry}/{repo}"
        return short + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")


def parse_reference(text: str) -> ImageRef:
    """Parse and normalise an image reference.

    Args:
        text: ``debian:bookworm``, ``docker://ghcr.io/o/r@sha256:...``, ``oci:./layout:v1``, ...

    Returns:
        ImageRef, normalised (docker.io, library/, latest).

    Raises:
        InvalidReference: the text breaks the reference grammar; the message names the input
            and the rule (empty, uppercase, too long, bad tag, bad digest, 64-hex name, ...).
    """
    if not isinstance(text, str):
        raise InvalidReference(f"invalid image reference {text!r}: expected a string")
    for transport in ("docker-archive", "oci-archive", "oci"):
        if text.startswith(transport + ":"):
            return _parse_path_transport(transport, text[len(transport) + 1:], text)
    if text.startswith("docker://"):
        return _parse_docker(text[len("docker://"):], text)
    return _parse_docker(text, text)


def _parse_path_transport(transport: str, rest: str, original: str) -> ImageRef:
    path, sep, tag = rest.partition(":")
    if not path:
        raise InvalidReference(f"invalid image reference {original!r}: {transport}: needs a path",
                               hint=f"write it as {transport}:PATH[:TAG]")
    if sep and not tag:
        raise InvalidReference(f"invalid image reference {original!r}: empty name after the path")
    if transport != "docker-archive" and tag and not _TAG_RE.fullmatch(tag):
        raise InvalidReference(f"invalid image reference {original!r}: invalid tag {tag!r}")
    return ImageRef(transport, None, None, tag or None, None, path)


def _fail(original: str, why: str, hint: str | None = None) -> InvalidReference:
    return InvalidReference(f"invalid image reference {original!r}: {why}", hint=hint)


def _parse_docker(s: str, original: str) -> ImageRef:
    if not s:
        raise _fail(original, "repository name must have at least one component")
    if _IDENTIFIER_RE.fullmatch(s):
        raise _fail(original, "cannot be a 64-character hexadecimal string (that is an image ID)",
                    hint="name the repository, e.g. repo@sha256:<digest>")
    domain, remainder = _split_docker_domain(s)
    remote = remainder.split(":", 1)[0].split("@", 1)[0]
    if remote.lower() != remote:
        shown = remote if s.startswith(remote) or "/" in s else remote.removeprefix(OFFICIAL_PREFIX)
        raise _fail(original, f"repository name ({shown}) must be lowercase",
                    hint="only the registry host may contain uppercase letters")
    full = f"{domain}/{remainder}"
    m = _REFERENCE_RE.fullmatch(full)
    if not m:
        raise _fail(original, _diagnose(domain, remainder))
    name, tag, digest_text = m.group(1), m.group(2), m.group(3)
    if len(name) > NAME_MAX:
        raise _fail(original, f"repository name is {len(name)} characters long (at most {NAME_MAX})")
    digest = None
    if digest_text:
        try:
            digest = Digest.parse(digest_text)
        except InvalidDigest as e:
            raise _fail(original, e.message.removeprefix("invalid digest ")) from None
    nm = _ANCHORED_NAME_RE.fullmatch(name)
    if nm is None or nm.group(1) is None:
        # e.g. "foo_bar.com/x": the first component looks like a host (it has a dot) but is not
        # one; Parse would silently take it as a path component of a domain-less name.
        raise _fail(original, _diagnose(domain, remainder))
    registry, repository = nm.group(1), nm.group(2)
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return ImageRef("docker", registry, repository, tag, digest, None)


def _split_docker_domain(name: str) -> tuple[str, str]:
    """normalize.go splitDockerDomain: (domain, remainder)."""
    first, slash, rest = name.partition("/")
    if not slash:
        return DEFAULT_REGISTRY, OFFICIAL_PREFIX + name
    if first == "localhost" or ("." in first or ":" in first) or first.lower() != first:
        domain, remote = (DEFAULT_REGISTRY if first == LEGACY_REGISTRY else first), rest
    else:
        domain, remote = DEFAULT_REGISTRY, name
    if domain == DEFAULT_REGISTRY and "/" not in remote.split("@", 1)[0].split(":", 1)[0]:
        remote = OFFICIAL_PREFIX + remote
    return domain, remote


def _diagnose(domain: str, remainder: str) -> str:
    """A specific reason for a reference the grammar refused (the first rule broken)."""
    head, at, digest_text = remainder.partition("@")
    remote, colon, tag = head.partition(":")
    if not re.fullmatch(_DOMAIN, domain, re.ASCII):
        return (f"invalid registry host {domain!r} (a DNS name, IPv4 address or [IPv6] address, "
                "optionally with :port)")
    shown = remote.removeprefix(OFFICIAL_PREFIX) if "/" not in remote.removeprefix(OFFICIAL_PREFIX) else remote
    if not shown:
        return "repository name is empty"
    if not re.fullmatch(_REMOTE_NAME, remote, re.ASCII):
        return (f"invalid repository name {shown!r} (lowercase letters, digits and separators "
                "'.', '_', '__', '-'; components separated by '/')")
    if colon and not _TAG_RE.fullmatch(tag):
        return f"invalid tag {tag!r} (letters, digits, '_', '.', '-'; at most 128; not starting with '.' or '-')"
    if at and not re.fullmatch(_DIGEST, digest_text):
        return f"invalid digest {digest_text!r} (expected algorithm:hex such as sha256:<64 hex digits>)"
    return "invalid reference format"
