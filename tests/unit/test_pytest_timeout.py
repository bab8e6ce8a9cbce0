"""The test suite has a per-test time limit, so one hung test cannot eat CI's 90 minutes."""

from __future__ import annotations


def test_pytest_timeout_plugin_active_with_default(pytestconfig):
    assert pytestconfig.pluginmanager.hasplugin("timeout"), "pytest-timeout is not installed"
    limit = float(pytestconfig.getini("timeout"))
    assert 60 <= limit <= 1800, limit


def test_pytest_timeout_is_in_the_test_extra():
    import tomllib
    from pathlib import Path

    data = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert any(r.startswith("pytest-timeout") for r in data["project"]["optional-dependencies"]["test"])
