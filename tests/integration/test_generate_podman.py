"""The generated Containerfile, built by `podman build` (an independent builder) from the loopback
registry, gives the same root filesystem as `envctl up` for the same spec: same paths, types,
modes, owners, file contents and symlink targets.

The only differences allowed are the mount points each builder's RUN leaves behind (listed in
ARTIFACTS, and each must be an empty file or directory, so nothing real can hide there).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.registry, pytest.mark.needs_root]
if os.geteuid() != 0:
    pytest.skip("podman with vfs storage and the overlay mount of envctl's layers need root",
                allow_module_level=True)

SPEC = """\
version: 1
image: {image}
steps:
  - run: mkdir -p /opt/app && echo hello > /opt/app/hello && chmod 0640 /opt/app/hello && ln -s hello /opt/app/link
  - copy: files/ /opt/app/files/
  - copy: {{src: tool.sh, dest: /usr/local/bin/tool, mode: "0750"}}
  - env: {{GREETING: "hi $there"}}
  - workdir: /opt/app
  - run: |
      echo "$GREETING $A" > greeting
      mkdir sub && chmod 0700 sub
  - run: [/bin/sh, -c, "rm /etc/envctl-test && touch /tmp/made-by-exec"]
env: {{A: "1"}}
resources: {{memory: 256MiB, cpus: 0.5, pids: 200}}
"""
# mount points a builder's RUN creates in the image: envctl's runtime binds /etc/hosts and
# /etc/resolv.conf; buildah binds /etc/hostname and makes /run
ARTIFACTS = {"envctl": {"/etc/hosts", "/etc/resolv.conf"}, "podman": {"/etc/hostname", "/run"}}


def _tree(top: str) -> dict:
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    extra = hashlib.sha256(f.read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                extra = os.readlink(path)
            else:
                extra = ""
            out["/" + os.path.relpath(path, top)] = (stat.filemode(st.st_mode), st.st_uid, st.st_gid, extra)
    return out


def _envctl_rootfs(home: Path) -> dict:
    (env_json,) = (home / "envs").glob("*/env.json")
    lowers = json.loads(env_json.read_text())["rootfs"]["lowerdirs"]
    mnt = tempfile.mkdtemp(prefix="envctl-gen-mnt-")
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", "ro,lowerdir=" + ":".join(lowers), mnt],
                   check=True, capture_output=True)
    try:
        return _tree(mnt)
    finally:
        subprocess.run(["umount", mnt], check=True)
        os.rmdir(mnt)


@pytest.fixture
def podman():
    if not shutil.which("podman"):
        pytest.fail("podman is missing: apt-get install podman (.ci/run installs it)")
    root = Path(tempfile.mkdtemp(prefix="envctl-pm-"))  # podman wants a short runroot
    base = ["podman", "--root", str(root / "root"), "--runroot", str(root / "run"), "--cgroup-manager",
            "cgroupfs", "--events-backend", "file", "--storage-driver", "vfs",
            # crun 1.8 refuses this host's hybrid cgroups (and podman prefers crun when installed)
            "--runtime", "runc"]

    def run(*args, cwd=None):
        r = subprocess.run([*base, *args], cwd=cwd, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"podman {args[0]} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        return r.stdout

    try:
        yield run
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _project(tmp_path: Path, image: str) -> Path:
    proj = tmp_path / "proj"
    (proj / "files" / "b").mkdir(parents=True)
    (proj / "files" / "a.txt").write_text("a\n")
    (proj / "files" / "b" / "c.txt").write_text("c\n")
    os.chmod(proj / "files" / "b" / "c.txt", 0o600)
    (proj / "tool.sh").write_text("#!/bin/sh\necho tool\n")
    (proj / "envctl.yaml").write_text(SPEC.format(image=image))
    return proj


def test_podman_build_of_the_containerfile_matches_envctl_rootfs(test_images, run_envctl, envctl_home,
                                                                 tmp_path, podman):
    proj = _project(tmp_path, test_images.refs["single"])
    for args in (("lock",), ("up",), ("generate", "containerfile")):
        r = run_envctl(*args, cwd=proj)
        assert r.returncode == 0, f"envctl {args}: {r.stderr}"
    text = (proj / "Containerfile").read_text()
    assert f"FROM {test_images.registry.host}/envctl/busybox@sha256:" in text

    podman("build", "--tls-verify=false", "--network", "none", "-t", "localhost/envctl-gen:test", "-f",
           "Containerfile", ".", cwd=proj)
    built = podman("image", "mount", "localhost/envctl-gen:test").strip()
    theirs, ours = _tree(built), _envctl_rootfs(envctl_home)

    for who, tree in (("envctl", ours), ("podman", theirs)):
        for path in ARTIFACTS[who]:
            mode, _, _, extra = tree.pop(path)
            assert mode.startswith("d") or extra == hashlib.sha256(b"").hexdigest(), f"{who} {path} is not empty"
    diff = {p: (ours.get(p), theirs.get(p)) for p in set(ours) | set(theirs) if ours.get(p) != theirs.get(p)}
    assert not diff, "envctl vs podman rootfs differ:\n" + "\n".join(f"{p}: {a} != {b}" for p, (a, b) in sorted(diff.items()))
    # the steps really ran: content, modes and the whiteout are there
    assert ours["/opt/app/hello"][0] == "-rw-r-----" and ours["/opt/app/link"][3] == "hello"
    assert ours["/usr/local/bin/tool"][0] == "-rwxr-x---" and ours["/opt/app/files/b/c.txt"][0] == "-rw-------"
    assert ours["/opt/app/sub"][0] == "drwx------" and "/etc/envctl-test" not in ours
    assert "/tmp/made-by-exec" in ours
    with open(os.path.join(built, "opt/app/greeting")) as f:
        assert f.read() == "hi $there 1\n"  # ENV quoting kept the literal $ as envctl does

    config = json.loads(podman("image", "inspect", "localhost/envctl-gen:test"))[0]["Config"]
    assert {"A=1", "GREETING=hi $there"} <= set(config["Env"])
    assert config["WorkingDir"] == "/workspace" and config["Cmd"] == ["/bin/sh"]
    spec_digest = next(l for l in text.splitlines() if l.startswith("# spec digest: ")).split(": ")[1]
    assert config["Labels"]["dev.envctl.spec.digest"] == spec_digest


def test_pushed_image_in_devcontainer_and_k8s_runs_in_podman(test_images, run_envctl, tmp_path, podman):
    """`envctl push`, then devcontainer.json/k8s with --image: podman runs what they describe."""
    proj = _project(tmp_path, test_images.refs["single"])
    registry = test_images.registry
    assert run_envctl("lock", cwd=proj).returncode == 0
    r = run_envctl("push", f"{registry.host}/envctl/generated:dev", "--json", cwd=proj)
    assert r.returncode == 0, r.stderr
    pushed = json.loads(r.stdout)["pushed"]
    for target in ("devcontainer", "k8s"):
        r = run_envctl("generate", target, "--image", pushed, cwd=proj)
        assert r.returncode == 0, r.stderr
    from envctl.generate.devcontainer import strip_comments

    dc = json.loads(strip_comments((proj / ".devcontainer" / "devcontainer.json").read_text()))
    assert dc["image"] == pushed and "postCreateCommand" not in dc
    assert dc["runArgs"] == ["--memory=268435456b", "--cpus=0.5", "--pids-limit=200"]
    # what the devcontainer CLI does with these keys, done with podman by hand
    env = [a for k, v in dc["containerEnv"].items() for a in ("-e", f"{k}={v}")]
    mount = dc["workspaceMount"].replace("${localWorkspaceFolder}", str(proj))
    # (the ulimits: this sandbox's hard limits are below podman's defaults; as in test_build_export_push)
    out = podman("run", "--rm", "--tls-verify=false", "--network", "none", "--ulimit", "nofile=1024:1024",
                 "--ulimit", "nproc=1024:1024", *dc.get("runArgs", []), *env,
                 "--mount", mount, "-w", dc["workspaceFolder"], pushed, "/bin/sh", "-c",
                 'cat /opt/app/greeting; echo "$GREETING"; pwd; ls envctl.yaml')
    assert out.splitlines() == ["hi $there 1", "hi $there", "/workspace", "envctl.yaml"]
    import yaml

    pod = yaml.safe_load((proj / "k8s" / "envctl-k8s.yaml").read_text())
    (c,) = pod["spec"]["containers"]
    assert c["image"] == pushed and c["workingDir"] == "/workspace"
    assert {"name": "GREETING", "value": "hi $there"} in c["env"]


def test_devcontainer_post_create_replays_the_steps(test_images, run_envctl, tmp_path, podman):
    """Without a pushed image, devcontainer.json's postCreateCommand rebuilds the steps' files."""
    proj = _project(tmp_path, test_images.refs["single"])
    for args in (("lock",), ("generate", "devcontainer")):
        assert run_envctl(*args, cwd=proj).returncode == 0
    from envctl.generate.devcontainer import strip_comments

    dc = json.loads(strip_comments((proj / ".devcontainer" / "devcontainer.json").read_text()))
    assert dc["image"].startswith(f"{test_images.registry.host}/envctl/busybox@sha256:")
    env = [a for k, v in dc["containerEnv"].items() for a in ("-e", f"{k}={v}")]
    mount = dc["workspaceMount"].replace("${localWorkspaceFolder}", str(proj))
    shell, flags, script = dc["postCreateCommand"]
    check = ("cat /opt/app/greeting; stat -c '%n %a' /opt/app/hello /usr/local/bin/tool /opt/app/files/a.txt "
             "/opt/app/files/b/c.txt /opt/app/sub; readlink /opt/app/link; test ! -e /etc/envctl-test && echo gone")
    out = podman("run", "--rm", "--tls-verify=false", "--network", "none", "--ulimit", "nofile=1024:1024",
                 "--ulimit", "nproc=1024:1024", *env, "--mount", mount, "-w", dc["workspaceFolder"], dc["image"],
                 shell, flags, script + check)
    assert out.splitlines() == ["hi $there 1", "/opt/app/hello 640", "/usr/local/bin/tool 750",
                                "/opt/app/files/a.txt 644", "/opt/app/files/b/c.txt 600", "/opt/app/sub 700",
                                "hello", "gone"]
