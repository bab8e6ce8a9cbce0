"""QA L5: ``envctl init -f custom.yaml`` printed "next: ... 'envctl validate' and 'envctl lock'"
without ``-f custom.yaml`` (those commands would not find the new spec)."""

from envctl.cli import main


def test_hint_carries_the_file(tmp_path, capsys):
    assert main(["init", "-C", str(tmp_path), "-f", "custom.yaml", "--image", "busybox"]) == 0
    out = capsys.readouterr().out
    assert "'envctl validate -f custom.yaml' and 'envctl lock -f custom.yaml'" in out
    assert main(["validate", "-C", str(tmp_path), "-f", "custom.yaml"]) == 0


def test_default_file_hint_unchanged(tmp_path, capsys):
    assert main(["init", "-C", str(tmp_path), "--image", "busybox"]) == 0
    assert "then 'envctl validate' and 'envctl lock'" in capsys.readouterr().out
