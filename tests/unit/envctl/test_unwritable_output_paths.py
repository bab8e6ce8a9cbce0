"""``envctl export``/``bundle``/``generate`` to a path that cannot be written (a file where a
directory is needed, /proc, a read-only directory) is one error line naming the target, with a
hint — not "envctl: internal error: FileNotFoundError/NotADirectoryError/FileExistsError"."""

import errno
from types import SimpleNamespace

import pytest

import envctl.generate
import envctl.steps
import engine.publish.export
import runtime.bundle
from envctl.cli import main


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "envctl.yaml").write_text("version: 1\nimage: docker.io/library/busybox:1.36\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _raise(exc):
    def f(*a, **kw):
        raise exc
    return f


@pytest.mark.parametrize("dest, exc, expect", [
    ("oci:/etc/passwd:t", NotADirectoryError(errno.ENOTDIR, "Not a directory", "/etc/passwd/blobs/sha256"),
     "export oci:/etc/passwd:t: Not a directory: /etc/passwd/blobs/sha256"),
    ("docker-archive:/tmp", IsADirectoryError(errno.EISDIR, "Is a directory", "/.envctl-export-x/archive.tar"),
     "export docker-archive:/tmp: Is a directory\n"),  # the temp file is not named
])
def test_export_unwritable_destination(project, monkeypatch, capsys, dest, exc, expect):
    spec = SimpleNamespace(digest=lambda: "sha256:0")
    monkeypatch.setattr(envctl.steps, "environment_image", lambda *a, **kw: (None, None, spec, None, None))
    monkeypatch.setattr(engine.publish.export, "write_oci_layout", _raise(exc))
    monkeypatch.setattr(engine.publish.export, "write_docker_archive", _raise(exc))
    assert main(["export", dest]) == 1
    err = capsys.readouterr().err
    assert "internal error" not in err and f"envctl: error: {expect}" in err and "hint: " in err


def test_bundle_unwritable_directory(project, monkeypatch, capsys):
    import envctl.commands._enter as enter

    monkeypatch.setattr(enter, "load_env", lambda args, out: (None, None, {"runtime": {}, "rootfs": {}}))
    monkeypatch.setattr(enter, "process_config", lambda *a, **kw: {})
    monkeypatch.setattr(runtime.bundle, "write_bundle", _raise(FileExistsError(errno.EEXIST, "File exists", "/etc/passwd")))
    assert main(["bundle", "/etc/passwd"]) == 1
    err = capsys.readouterr().err
    assert "envctl: error: bundle /etc/passwd: File exists: /etc/passwd" in err and "internal error" not in err


def test_generate_unwritable_output(project, monkeypatch, capsys):
    result = SimpleNamespace(path="/proc/nope/x", notes=(), data=b"")
    monkeypatch.setattr(envctl.generate, "load_inputs", lambda project: None)
    monkeypatch.setattr(envctl.generate, "generate", lambda *a, **kw: result)
    monkeypatch.setattr(envctl.generate, "write", _raise(FileNotFoundError(errno.ENOENT, "No such file or directory")))
    assert main(["generate", "containerfile", "-o", "/proc/nope/x"]) == 1
    err = capsys.readouterr().err
    assert "envctl: error: generate containerfile: write /proc/nope/x: No such file or directory" in err
    assert "internal error" not in err
