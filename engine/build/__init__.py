"""Stage 3, build: the spec's steps run on the layer chain and become cached layers.

Owns running steps through the ``Executor`` protocol (``steps``), cache keys and the local cache
index (``cache``), ``copy`` inputs and ``.envctlignore`` (``copy_inputs``) and applying a copy
without a container (``copy_apply``), the lock's per-step records and checks (``records``), and
``envctl verify``'s from-scratch rebuild (``reproduce``).

May import: ``specs``, ``engine.errors``, ``engine.store``, ``engine.layers``. Never runtime
(except through the Executor the CLI passes in).
"""
