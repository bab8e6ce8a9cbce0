"""QA L4: ``envctl -C DIR status`` (git users put -C first) said "argument COMMAND: invalid
choice: 'DIR'"; the common options are now accepted before the command too."""

import json

import pytest

from envctl.cli import _hoist_common, main


@pytest.mark.parametrize("argv,want", [
    (["-C", "d", "status"], ["status", "--project", "d"]),
    (["--json", "-C", "d", "-v", "logs", "-f", "web"], ["logs", "--json", "--project", "d", "-v", "-f", "web"]),
    (["-f", "x.yaml", "logs", "-f"], ["logs", "--file", "x.yaml", "-f"]),
    (["--project=d", "run", "--", "-C", "x"], ["run", "--project", "d", "--", "-C", "x"]),
    (["status", "-C", "d"], ["status", "-C", "d"]),
    (["-C", "d", "nosuchcommand"], ["-C", "d", "nosuchcommand"]),
    (["--version"], ["--version"]), (["-C"], ["-C"]), ([], []),
])
def test_hoist(argv, want):
    assert _hoist_common(argv) == want


def test_status_with_leading_C(tmp_path, capsys):
    (tmp_path / "envctl.yaml").write_text("version: 1\nimage: busybox\n")
    assert main(["-C", str(tmp_path), "--json", "status"]) == 0
    from envctl.commands._enter import env_id
    rows = json.loads(capsys.readouterr().out)
    assert [r["env"] for r in rows] == [env_id(tmp_path.resolve() / "envctl.yaml")]
