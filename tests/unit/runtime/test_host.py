"""runtime.host probes on this machine (the CI host supports all of them), and the hints and
statuses for settings this host does not have (sysctls simulated by replacing the file reader)."""

from __future__ import annotations

import pytest

from runtime import host

SYSCTL_UNPRIV = "/proc/sys/kernel/unprivileged_userns_clone"
SYSCTL_MAX = "/proc/sys/user/max_user_namespaces"
SYSCTL_AA = "/proc/sys/kernel/apparmor_restrict_unprivileged_userns"


def test_probes_run_and_name_fixes(tmp_path):
    findings = {f.name: f for f in host.probe(tmp_path / "store")}
    assert list(findings) == ["user namespaces", "overlay", "rootless overlay", "cgroups", "newuidmap", "newgidmap",
                              "subordinate ids", "openat2", "seccomp", "store", "runc", "crun"]
    for f in findings.values():
        assert f.status in (host.OK, host.WARN, host.FAIL)
        assert f.ok == (f.status == host.OK)
        assert f.ok or f.hint, f
    assert findings["user namespaces"].ok
    assert findings["cgroups"].data["layout"] in ("v1", "v2", "hybrid")
    assert findings["store"].data["filesystem"] != "unknown"
    assert "store" not in {f.name for f in host.probe()}


def test_overlay_userxattr_probe():
    assert host.probe_overlay_userxattr().ok


def test_userns_hint_is_actionable():
    assert "sysctl" in host.userns_hint() or "CONFIG_USER_NS" in host.userns_hint()


@pytest.mark.parametrize("values, fix", [
    ({SYSCTL_UNPRIV: "0", SYSCTL_MAX: "15000"}, "sysctl -w kernel.unprivileged_userns_clone=1"),
    ({SYSCTL_MAX: "0"}, "sysctl -w user.max_user_namespaces=15000"),
    ({SYSCTL_MAX: "15000", SYSCTL_AA: "1"}, "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"),
    ({SYSCTL_MAX: "15000"}, "CONFIG_USER_NS"),
])
def test_userns_hint_names_the_blocking_sysctl(monkeypatch, values, fix):
    monkeypatch.setattr(host, "_read", values.get)
    assert fix in host.userns_hint() and "envctl doctor" in host.userns_hint()
    assert host.userns_sysctls() == {k.removeprefix("/proc/sys/").replace("/", "."): v for k, v in values.items()}


def test_userns_failure_is_required_rootless_and_a_warning_as_root(monkeypatch):
    monkeypatch.setattr(host, "_read", {SYSCTL_UNPRIV: "0", SYSCTL_MAX: "100"}.get)
    monkeypatch.setattr(host, "_in_child", lambda fn: (False, "Operation not permitted"))
    monkeypatch.setattr(host.os, "geteuid", lambda: 1000)
    f = host.probe_userns()
    assert f.status == host.FAIL and "kernel.unprivileged_userns_clone=0" in f.detail
    assert f.hint.startswith("enable them: sysctl -w kernel.unprivileged_userns_clone=1")
    monkeypatch.setattr(host.os, "geteuid", lambda: 0)
    assert host.probe_userns().status == host.WARN
    # root can, unprivileged users cannot: a warning naming the sysctl
    monkeypatch.setattr(host, "_in_child", lambda fn: (True, "ok"))
    f = host.probe_userns()
    assert f.status == host.WARN and "unprivileged users cannot" in f.detail and "sysctl -w" in f.hint


def test_cgroups_without_filesystem_warns(tmp_path):
    f = host.probe_cgroups(tmp_path)
    assert f.status == host.WARN and f.data["layout"] == "none" and "cgroup2" in f.hint


def test_finding_status_defaults_from_ok():
    assert host.Finding("x", True, "d").status == host.OK
    assert host.Finding("x", False, "d", "h").status == host.FAIL
    w = host.Finding("x", True, "d", "h", status=host.WARN)
    assert not w.ok and w.to_dict()["status"] == "warn"
