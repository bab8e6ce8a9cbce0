"""The machine's configured apt sources for one Debian suite, and the Release files behind them.

The base images are built from whatever archive this machine is configured to use (a mirror, a
proxy, a snapshot); no host name is ever written into the repository. The InRelease files are the
archive's state: their hashes key the image cache and their newest ``Date:`` becomes
SOURCE_DATE_EPOCH, so the same archive state always gives the same image bytes.
"""

from __future__ import annotations

import email.utils
import hashlib
import os
import re
import urllib.request
from dataclasses import dataclass
from pathlib import Path

APT_ETC = Path(os.environ.get("ENVCTL_APT_ETC", "/etc/apt"))   # override: tests


@dataclass(frozen=True)
class Source:
    """One ``deb`` source: archive root URI, suite, and the Signed-By keyring (or None)."""

    uri: str
    suite: str
    signed_by: str | None = None


@dataclass(frozen=True)
class Release:
    """A fetched InRelease file: its source, sha256 hex of its bytes and its Date (unix seconds)."""

    source: Source
    sha256: str
    date: int


def suite_family(suite: str) -> tuple[str, ...]:
    """The suites a Docker-style Debian image uses: the release, its updates and its security."""
    return (suite, f"{suite}-updates", f"{suite}-security")


def host_sources(suite: str, etc: Path | None = None) -> list[Source]:
    """The host's enabled ``deb`` sources whose suite is in ``suite_family(suite)``.

    Reads ``sources.list``, ``sources.list.d/*.list`` (one-line style) and ``*.sources``
    (deb822). Returns them sorted (family order, then URI), deduplicated. Raises RuntimeError
    when none is configured for the release itself.
    """
    etc = etc or APT_ETC
    found: set[Source] = set()
    one_line = [etc / "sources.list", *sorted((etc / "sources.list.d").glob("*.list"))]
    for path in one_line:
        if path.is_file():
            found.update(_parse_one_line(path.read_text()))
    for path in sorted((etc / "sources.list.d").glob("*.sources")):
        found.update(_parse_deb822(path.read_text()))
    family = suite_family(suite)
    wanted = sorted((s for s in found if s.suite in family),
                    key=lambda s: (family.index(s.suite), s.uri))
    if not any(s.suite == suite for s in wanted):
        raise RuntimeError(f"no apt source for suite {suite!r} in {etc}; "
                           f"add one (e.g. the Debian archive or a mirror) and retry")
    return wanted


def render_deb822(sources: list[Source]) -> str:
    """deb822 text (one stanza per source, component ``main`` only, like the official images)."""
    stanzas = []
    for s in sources:
        lines = ["Types: deb", f"URIs: {s.uri}", f"Suites: {s.suite}", "Components: main"]
        if s.signed_by:
            lines.append(f"Signed-By: {s.signed_by}")
        stanzas.append("\n".join(lines) + "\n")
    return "\n".join(stanzas)


def fetch_release(source: Source, timeout: float = 30.0) -> Release:
    """Download ``dists/<suite>/InRelease`` for ``source``; returns its hash and Date.

    Raises OSError (urllib errors are OSErrors) when the archive cannot be reached.
    """
    url = f"{source.uri.rstrip('/')}/dists/{source.suite}/InRelease"
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        data = resp.read()
    match = re.search(rb"^Date: (.+)$", data, re.M)
    if not match:
        raise OSError(f"InRelease of {source.suite} has no Date field")
    date = email.utils.parsedate_to_datetime(match.group(1).decode().strip())
    return Release(source, hashlib.sha256(data).hexdigest(), int(date.timestamp()))


def _parse_one_line(text: str) -> list[Source]:
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        options = {}
        if m := re.match(r"^deb\s+\[([^\]]*)\]\s+(.*)$", line):
            options = dict(o.split("=", 1) for o in m.group(1).split() if "=" in o)
            rest = m.group(2).split()
        elif line.startswith("deb "):
            rest = line.split()[1:]
        else:
            continue
        if len(rest) >= 2:
            out.append(Source(rest[0], rest[1], options.get("signed-by")))
    return out


def _parse_deb822(text: str) -> list[Source]:
    out = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in stanza.splitlines():
            if line.startswith("#"):
                continue
            if line[:1] in (" ", "\t") and key:        # continuation (e.g. an inline key block)
                fields[key] += "\n" + line
            elif ":" in line:
                key, value = line.split(":", 1)
                key = key.strip().lower()
                fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes") == "no":
            continue
        signed_by = fields.get("signed-by")
        if signed_by and "\n" in signed_by:            # inline keys are not reproducible input
            signed_by = None
        for uri in fields.get("uris", "").split():
            for suite in fields.get("suites", "").split():
                out.append(Source(uri, suite, signed_by))
    return out
