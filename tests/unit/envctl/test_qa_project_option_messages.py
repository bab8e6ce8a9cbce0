"""Regression (QA defect list): ``-f DIR`` said "no such file" and ``-C FILE`` "no such directory"
although both exist; the messages now say what is wrong and which option was meant."""

import pytest

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


def test_missing_paths_keep_their_messages(tmp_path):
    with pytest.raises(UsageError, match=r"-C .*: no such directory"):
        find_project(str(tmp_path / "nope"))
    with pytest.raises(UsageError, match=r"-f nope.yaml: no such file"):
        find_project(str(tmp_path), "nope.yaml")
