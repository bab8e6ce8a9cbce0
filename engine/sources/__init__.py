"""Stage 1, sources and resolve: where images come from, and a reference pinned to digests.

Owns the ``ImageSource`` protocol and its dispatch (``source``), the distribution-spec registry
client (``registry``) with auth (``auth``), mirrors and insecure registries
(``registry_config``), the ``oci:`` layout and ``docker-archive:``/``oci-archive:`` sources,
manifest parsing (``manifest``), platform matching (``platform``), and resolving a spec's image to
the lock's digests (``resolve``).

May import: ``specs``, ``engine.errors``. Never the store or anything above it: a source only
serves bytes, which the layers stage verifies into the store.
"""
