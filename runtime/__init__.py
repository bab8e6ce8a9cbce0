"""envctl runtime: namespaces, mounts, cgroups, PID 1, OCI runtime config, file watching.

Receives a rootfs (or an overlay mount plan) and a runtime config; knows nothing of images.
Never imports engine/.
"""
