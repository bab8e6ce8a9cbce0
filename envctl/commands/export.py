"""``envctl export oci:DIR[:TAG] | docker-archive:FILE[:NAME:TAG]``: the environment as an OCI image.

The image is the base image's layers plus one layer per build step, with a config whose Env,
WorkingDir, User and Cmd (the shell) are the environment's, labelled with the spec digest.
Brings the environment up first (building steps) when needed.
"""

from __future__ import annotations

import argparse


def add_parser(sub, name, parents):
    """Register ``envctl export`` on ``sub`` (argparse subparsers action) with the common option
    ``parents`` (list of ArgumentParser); returns the new subparser (argparse.ArgumentParser).
    """
    p = sub.add_parser(name, parents=parents, help="write the environment as an OCI layout or docker archive",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("destination", metavar="oci:DIR[:TAG] | docker-archive:FILE[:NAME:TAG]")
    p.add_argument("--locked", action="store_true", help="never write envctl.lock (exit 3 when stale)")
    return p


def run(args) -> int:
    """``envctl export oci:DIR[:TAG] | docker-archive:FILE[:NAME:TAG]``: write the environment as an
    OCI image (OCI image spec: image-layout.md, or a ``docker load`` archive). Returns the exit
    code (int, 0). Raises UsageError for another transport.
    Raises EnvctlError subclasses (the CLI prints them and exits with their ``exit_code``).
    """
    from engine.publish.export import write_docker_archive, write_oci_layout
    from envctl.output import Output
    from envctl.project import find_project
    from envctl.steps import environment_image
    from specs.errors import EnvctlError, UsageError
    from specs.reference import parse_reference

    dest = parse_reference(args.destination)
    if dest.transport not in ("oci", "docker-archive"):
        raise UsageError(f"export {args.destination}: expected oci:DIR[:TAG] or docker-archive:FILE[:NAME:TAG]",
                         hint="to send it to a registry use 'envctl push REF'")
    out = Output(args.json, args.verbosity)
    project = find_project(args.project, args.file)
    parts, store, spec, _lock, _info = environment_image(project, out, locked=args.locked)
    try:
        if dest.transport == "oci":
            digest = write_oci_layout(parts, store, dest.path, tag=dest.tag)
            image_id = parts.config_digest
        else:
            image_id = write_docker_archive(parts, store, dest.path, repo_tag=dest.tag)
            digest = parts.manifest_digest
    except OSError as e:
        where = f": {e.filename}" if e.filename and str(e.filename).startswith(str(dest.path)) else ""
        raise EnvctlError(f"export {args.destination}: {e.strerror or e}{where}",
                          hint="choose a writable path (oci: a new or existing layout directory)") from None
    data = {"destination": str(dest), "manifestDigest": str(digest), "imageID": str(image_id),
            "layers": len(parts.layers), "specDigest": spec.digest()}
    out.result(data, f"exported {dest} ({len(parts.layers)} layers, manifest {digest})")
    return 0
