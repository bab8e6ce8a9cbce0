"""Stage 4, compose: the layer chain plus a writable upper becomes the environment's rootfs.

Owns the storage drivers (``compose``: an overlay mount plan, or a flattened copy), the decision
to reset an environment when its layers change, and resetting on demand.

May import: ``specs``, ``engine.errors``, ``engine.store``, ``engine.layers``.
"""
