"""runtime.host probes on this machine (the CI host supports all of them)."""

from __future__ import annotations

from runtime import host


def test_probes_run_and_name_fixes():
    findings = {f.name: f for f in host.probe()}
    assert set(findings) == {"user namespaces", "rootless overlay", "cgroups", "subordinate ids", "oci runtimes"}
    for f in findings.values():
        assert f.ok or f.hint, f
    assert findings["user namespaces"].ok
    assert findings["cgroups"].data["layout"] in ("v1", "v2", "hybrid")


def test_overlay_userxattr_probe():
    assert host.probe_overlay_userxattr().ok


def test_userns_hint_is_actionable():
    assert "sysctl" in host.userns_hint() or "CONFIG_USER_NS" in host.userns_hint()
