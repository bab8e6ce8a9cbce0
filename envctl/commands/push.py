"""``envctl push REF``: push the environment as a standard OCI image to a registry.

Blobs the registry has are skipped (HEAD), blobs of the base image are mounted from its
repository when it lives on the same registry, the rest are uploaded (chunked above
ENVCTL_PUSH_CHUNK bytes, default 16 MiB). Prints the pushed manifest digest. Credentials come
from 'envctl login' / the usual auth files.
"""

from __future__ import annotations

import argparse


def add_parser(sub, name, parents):
    """Register ``envctl push`` on ``sub`` (argparse subparsers action) with the common option
    ``parents`` (list of ArgumentParser); returns the new subparser (argparse.ArgumentParser).
    """
    p = sub.add_parser(name, parents=parents, help="push the environment as an OCI image",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("reference", metavar="REF", help="registry/repository[:tag]")
    p.add_argument("--locked", action="store_true", help="never write envctl.lock (exit 3 when stale)")
    return p


def run(args) -> int:
    """``envctl push REF``: push the environment as an OCI image to a registry (distribution spec:
    pushing blobs and manifests). Returns the exit code (int, 0). Raises UsageError for a
    non-registry or digest reference, RegistryError when the push fails.
    Raises EnvctlError subclasses (the CLI prints them and exits with their ``exit_code``).
    """
    from engine.publish.push import push_image
    from engine.sources.registry_config import canonical_host
    from envctl.output import Output
    from envctl.project import find_project
    from envctl.steps import environment_image
    from specs.errors import UsageError
    from specs.reference import parse_reference

    ref = parse_reference(args.reference)
    if ref.transport != "docker":
        raise UsageError(f"push {args.reference}: not a registry reference",
                         hint="for a directory or tarball use 'envctl export oci:DIR' / 'docker-archive:FILE'")
    if ref.digest is not None:
        raise UsageError(f"push {args.reference}: cannot push to a digest", hint="give a tag, e.g. REPO:dev")
    out = Output(args.json, args.verbosity)
    project = find_project(args.project, args.file)
    parts, store, spec, lock, _info = environment_image(project, out, locked=args.locked)
    base = spec.image
    mount = ()
    if base.transport == "docker" and canonical_host(base.registry) == canonical_host(ref.registry):
        mount = (base.repository,)
    fallback = _base_source(base, project)
    try:
        digest, stats = push_image(parts, store, ref.registry, ref.repository, ref.tag, mount_from=mount,
                                   fallback=fallback, progress=out.debug)
    finally:
        if fallback is not None:
            fallback.close()
    pushed = f"{ref.registry}/{ref.repository}@{digest}"
    out.result({"reference": str(ref), "digest": str(digest), "pushed": pushed, **stats.to_dict()},
               f"pushed {ref} ({digest})\n{pushed}")
    return 0


class _LazySource:
    """Opens the base image's source only if a blob really has to be read from it."""

    def __init__(self, ref):
        self.ref, self._src = ref, None

    def open_blob(self, digest, size=None, offset=0):
        from engine.sources.source import open_source

        if self._src is None:
            self._src = open_source(self.ref)
        return self._src.open_blob(digest, size, offset)

    def close(self) -> None:
        if self._src is not None:
            self._src.close()


def _base_source(base, project):
    import os
    from dataclasses import replace

    if base.transport != "docker" and base.path and not os.path.isabs(base.path):
        base = replace(base, path=str(project.root / base.path))
    return _LazySource(base)
