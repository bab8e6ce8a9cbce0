"""scripts/gen-error-docs finds the EnvctlError family by AST and renders every message."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_generator_lists_messages_from_every_package(tmp_path):
    out = tmp_path / "errors.md"
    subprocess.run([sys.executable, str(REPO / "scripts" / "gen-error-docs"), str(out)], check=True,
                   capture_output=True)
    text = out.read_text()
    for section in ("`envctl/`", "`specs/`", "`engine/`", "`runtime/`"):
        assert section in text
    assert "| no {SPEC_NAME} in {start} or any parent directory | run 'envctl init'" in text
    assert "| 3 | LockDrift |" in text                     # exit codes inherited through the tree
    assert ": {strerror} |" in text                        # SyscallError rendered as its message
