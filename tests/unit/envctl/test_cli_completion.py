"""`envctl completion SHELL` scripts, generated from the parser, complete in real shells; unknown
commands get one usage error with the closest command names."""

import shutil
import subprocess
import sys

import pytest

ENVCTL = [sys.executable, "-m", "envctl"]


def _script(shell: str) -> str:
    r = subprocess.run([*ENVCTL, "completion", shell], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def _bash_complete(tmp_path, words: list[str]) -> list[str]:
    script = tmp_path / "envctl.bash"
    script.write_text(_script("bash"))
    arr = " ".join(f"'{w}'" for w in words)
    prog = (f"source {script}; COMP_WORDS=({arr}); COMP_CWORD={len(words) - 1}; _envctl; "
            'printf "%s\\n" "${COMPREPLY[@]}"')
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", prog], capture_output=True, text=True,
                       timeout=30, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    return [w for w in r.stdout.splitlines() if w]


def test_bash_completes_an_option_of_the_command(tmp_path):
    assert _bash_complete(tmp_path, ["envctl", "up", "--lo"]) == ["--locked"]


def test_bash_completes_commands_and_skips_leading_option_values(tmp_path):
    assert "status" in _bash_complete(tmp_path, ["envctl", "sta"])
    # -C DIR before the command: DIR is not taken for the command
    assert _bash_complete(tmp_path, ["envctl", "-C", "proj", "up", "--fro"]) == ["--frozen"]


def test_bash_completes_a_commands_choices(tmp_path):
    assert _bash_complete(tmp_path, ["envctl", "generate", "dev"]) == ["devcontainer"]


def test_completion_lists_every_command_of_the_parser():
    from envctl.cli import COMMANDS
    from envctl.commands.completion import commands_table
    from envctl.cli import build_parser

    table = commands_table(build_parser())
    assert set(table) == set(COMMANDS)
    assert "--locked" in table["up"]["options"]


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish not installed (.ci/run installs it)")
def test_fish_completes_an_option_of_the_command(tmp_path):
    script = tmp_path / "envctl.fish"
    script.write_text(_script("fish"))
    r = subprocess.run(["fish", "--no-config", "-c", f"source {script}; complete -C 'envctl up --lo'"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert [line.split("\t")[0] for line in r.stdout.splitlines()] == ["--locked"]


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh not installed (.ci/run installs it)")
def test_zsh_loads_the_script_and_registers_the_completer(tmp_path):
    script = tmp_path / "envctl.zsh"
    script.write_text(_script("zsh"))
    r = subprocess.run(["zsh", "-f", "-c", f"source {script}; print -r -- $_comps[envctl]"],
                       capture_output=True, text=True, timeout=30, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() != "", r.stdout


def test_unknown_command_suggests_the_closest():
    r = subprocess.run([*ENVCTL, "stauts"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.splitlines()[0] == "envctl: error: unknown command 'stauts'"
    assert "did you mean 'envctl status'" in r.stderr
    assert "Traceback" not in r.stderr
