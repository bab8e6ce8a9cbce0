"""envctl engine: image sources, registry client, content-addressed store, unpacking, rootfs, build, gc.

May import specs/ and the leaf syscall module runtime._sys; never the rest of runtime/.
"""
