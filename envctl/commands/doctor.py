"""``envctl doctor``: what this host allows envctl to do, and what to change when it does not.

Prints runtime.host's findings (user namespaces and their sysctls, overlayfs and rootless overlay,
cgroup layout and enforcement, newuidmap/newgidmap and the user's /etc/subuid range, openat2,
seccomp, the store and its filesystem, runc/crun), each ok/warn/fail with the exact setting or
package to change. Exit 1 when something required fails (envctl cannot work as this user);
warnings (fallbacks, limits not enforced, optional tools) exit 0. Needs no envctl.yaml.
"""

from __future__ import annotations


def add_parser(sub, name, parents):
    """Register ``envctl doctor`` on ``sub`` (argparse subparsers action) with the common option
    ``parents`` (list of ArgumentParser); returns the new subparser (argparse.ArgumentParser).
    """
    return sub.add_parser(name, parents=parents, help="check what this host allows (namespaces, overlay, cgroups...)",
                          description="Check the kernel and host features envctl uses and name the setting or "
                                      "package to change for each problem. Exit 1 when something required fails.")


def _text(findings) -> str:
    width = max(len(f.name) for f in findings)
    lines = []
    for f in findings:
        lines.append(f"{f.status:<4}  {f.name:<{width}}  {f.detail}")
        if f.hint and f.status != "ok":
            lines.append(f"{'':<4}  {'':<{width}}  fix: {f.hint}")
    failed = sum(f.status == "fail" for f in findings)
    warned = sum(f.status == "warn" for f in findings)
    lines.append(f"{failed} failed, {warned} warnings" + ("" if failed else ": envctl can run here"))
    return "\n".join(lines)


def run(args) -> int:
    """Probe the host and print the findings. Returns 1 when a finding fails, else 0."""
    import os

    from envctl.output import Output
    from envctl.settings import envctl_home
    from runtime.host import FAIL, probe

    findings = probe(envctl_home())
    failed = any(f.status == FAIL for f in findings)
    data = {"ok": not failed, "rootless": os.geteuid() != 0,
            "findings": [f.to_dict() for f in findings]}
    Output(args.json, args.verbosity).result(data, _text(findings))
    return 1 if failed else 0
