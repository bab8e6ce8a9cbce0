"""Every example's envctl.yaml is valid against the schema and has the shape the docs promise."""

from pathlib import Path

import pytest

from specs import load_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("name", sorted(p.parent.name for p in EXAMPLES.glob("*/envctl.yaml")))
def test_example_spec_is_valid(name):
    spec = load_spec(EXAMPLES / name / "envctl.yaml")
    assert str(spec.image) == "docker.io/library/debian:bookworm"    # what the mirror serves
    assert spec.steps and spec.network == "host"                      # steps need the archive


def test_webapp_has_a_ready_web_service_with_reload():
    spec = load_spec(EXAMPLES / "webapp" / "envctl.yaml")
    (web,) = spec.services
    assert web.name == "web" and web.ready.port == 8000
    assert "**/*.py" in web.watch.paths and web.watch.action == "restart"
    assert (EXAMPLES / "webapp" / ".gitignore").is_file()
    assert (EXAMPLES / "webapp" / "requirements.txt").is_file()
