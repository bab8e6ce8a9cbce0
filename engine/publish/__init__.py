"""Image out: the environment as a standard OCI image, and the registry build cache.

Owns assembling and writing an image (``export``: OCI layout, docker-archive), pushing by the
distribution spec (``push``), and sharing step layers through a registry repository
(``registry_cache``).

May import: ``specs``, ``engine.errors`` and every stage below it (store, sources, layers, build).
"""
