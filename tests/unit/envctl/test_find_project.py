"""envctl.project.find_project, the -C/-f resolution every command shares.

``-f DIR`` and ``-C FILE`` say what is wrong and which option was meant (not "no such file" /
"no such directory" for paths that exist). A project reached through a symlink (``-C LINK``,
``-f LINK/envctl.yaml``) is the same project, with the same environment id, as running inside it
(getcwd() is physical; otherwise ``envctl up -d -C link`` and ``envctl down`` from the project
would miss each other), and the fast entry (envctl/_fast.py) finds the same spec.
"""

import pytest

from envctl import _fast
from envctl.commands._enter import env_id
from envctl.project import find_project
from specs.errors import UsageError


def test_f_names_a_directory(tmp_path):
    with pytest.raises(UsageError, match=r"-f .*: is a directory") as e:
        find_project(None, str(tmp_path))
    assert e.value.exit_code == 2 and "use -C" in e.value.hint


def test_c_names_a_file(tmp_path):
    f = tmp_path / "envctl.yaml"
    f.write_text("version: 1\nimage: busybox\n")
    with pytest.raises(UsageError, match=r"-C .*: not a directory") as e:
        find_project(str(f))
    assert "use -f" in e.value.hint


def test_missing_paths_say_no_such_directory_or_file(tmp_path):
    with pytest.raises(UsageError, match=r"-C .*: no such directory"):
        find_project(str(tmp_path / "nope"))
    with pytest.raises(UsageError, match=r"-f nope.yaml: no such file"):
        find_project(str(tmp_path), "nope.yaml")


@pytest.fixture
def linked(tmp_path, monkeypatch):
    real = tmp_path / "real project"
    (real / "sub").mkdir(parents=True)
    (real / "envctl.yaml").write_text("version: 1\nimage: busybox\n")
    (tmp_path / "link").symlink_to(real)
    monkeypatch.chdir(tmp_path / "link")
    return tmp_path, real


@pytest.mark.parametrize("how", [(None, None), ("LINK", None), (None, "LINK/envctl.yaml"), ("LINK/sub", None),
                                 ("link", None), ("link/sub/..", None), (None, "link/sub/../envctl.yaml")])
def test_symlinked_project_is_the_same_project(linked, monkeypatch, how):
    tmp_path, real = linked
    if "link" in (how[0] or "") + (how[1] or ""):
        monkeypatch.chdir(tmp_path)
    directory, file = (x and x.replace("LINK", str(tmp_path / "link")) for x in how)
    p = find_project(directory, file)
    assert p.spec_path == real.resolve() / "envctl.yaml"
    assert env_id(p.spec_path) == env_id(real / "envctl.yaml")
    assert _fast._find_spec(directory, file) == str(p.spec_path)


def test_symlinked_spec_file_keeps_its_name(tmp_path, monkeypatch):
    (tmp_path / "shared.yaml").write_text("version: 1\nimage: busybox\n")
    (tmp_path / "dev.yaml").symlink_to(tmp_path / "shared.yaml")
    p = find_project(str(tmp_path), "dev.yaml")
    assert p.spec_path.name == "dev.yaml" and p.lock_path.name == "dev.lock"
    monkeypatch.chdir(tmp_path)
    spec = _fast._find_spec(None, "dev.yaml")
    assert spec == str(p.spec_path) and _fast._lock_path(spec) == str(p.lock_path)
