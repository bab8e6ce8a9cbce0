"""Stage 0, the store: everything under ``$ENVCTL_HOME`` that the pipeline reads and writes.

Owns the content-addressed blobs (``cas``), the on-disk form of unpacked layers (``layer_dirs``)
and environments (``envs``), file locks and their order (``locking``), digest-checking reads
(``verifying``), rootless id mappings and user-namespace helpers (``idmap``, ``userns``), and the
maintenance passes over it all (``gc``, ``fsck``).

May import: ``specs``, ``engine.errors``, ``runtime._sys`` (userns only). Nothing above it.
"""
