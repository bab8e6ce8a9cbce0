"""Loading envctl.yaml: read the document (specs.document), check it against the schema
(specs.schema), build the model (specs.build) -- the one place the three meet.

``read_document``, ``Document``, ``format_path`` and the size bounds live in specs.document and are
re-exported here for callers that know them as ``specs.load.*``.
"""

from __future__ import annotations

from pathlib import Path

from specs.document import (MAX_BYTES, MAX_DEPTH, MAX_NODES, Document, Locations, Scalar, SpecLoader,
                            format_path, read_document)
from specs.errors import SpecError

__all__ = ["load_spec", "parse_spec", "read_document", "Document", "Locations", "SpecLoader",
           "MAX_NODES", "MAX_DEPTH", "MAX_BYTES", "format_path", "Scalar"]


def parse_spec(text: str | bytes, path: str | Path = "envctl.yaml", *, display: str | None = None):
    """Parse and validate spec text into an :class:`~specs.model.EnvSpec`.

    Args:
        text: YAML text (str or UTF-8 bytes).
        path: stored as ``EnvSpec.path`` and used in messages unless ``display`` is given.
        display: the file name for messages (e.g. relative to the current directory).

    Raises:
        SpecError / SpecErrors: every problem found, each with file:line:col and key path.
    """
    from specs.build import build_with_errors
    from specs.errors import SpecErrors
    from specs.schema import check_document, schema_errors

    doc = read_document(text, display or str(path))
    check_document(doc)
    errors = schema_errors(doc)
    spec, more = build_with_errors(doc.data, doc, Path(path))
    if errors or more:
        raise SpecErrors(errors + more)
    return spec


def load_spec(path: str | Path, *, display: str | None = None):
    """Load ``path`` (envctl.yaml) into an :class:`~specs.model.EnvSpec`.

    Args:
        path: the spec file (str or Path).
        display: the name used in error messages (default: ``path`` as given).

    Raises:
        SpecError: the file cannot be read (message names the path and the OS error).
        SpecError / SpecErrors: any problem in its contents (see :func:`parse_spec`).
    """
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise SpecError(f"cannot read the spec file: {e.strerror}", file=display or str(path),
                        hint="run 'envctl init' to create one") from None
    return parse_spec(data, path, display=display)
