"""Stage 2, layers: locked layer blobs become unpacked, verified layer directories.

Owns pulling (``pull``: bounded parallel downloads, unpacking while downloading), decompression
(``compression``), safe extraction (``unpack`` over ``confine``'s in-root path resolution),
committing a snapshot into the store (``snapshots``), chainIDs (``chain``), writing a directory
back into a deterministic layer tar (``writer``) and comparing layers path by path (``diff``).

May import: ``specs``, ``engine.errors``, ``engine.store``, ``runtime._sys`` (confine only).
"""
