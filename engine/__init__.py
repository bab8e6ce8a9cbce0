"""envctl engine: from a locked reference to a composed root filesystem, one subpackage per stage.

Stages, bottom (imported by all) to top (imports those below, never the other way):

    errors      the engine's exception family (tree in specs/errors.py)
    store/      blobs, layer and environment directories, locks, id mappings, gc, fsck
    sources/    image sources (registry, oci layout, archives), auth, mirrors, platforms, resolve
    layers/     pull, decompress, unpack safely, commit snapshots, write and diff layer tars
    build/      build steps, cache keys, step records, verify's rebuild
    rootfs/     compose: overlay mount plan or flattened copy
    publish/    export, push, registry build cache

May import specs/ and the leaf syscall module runtime._sys; never the rest of runtime/.
docs/architecture.md has the module map; tests/unit/test_layering.py enforces the order.
"""
