"""QA L12 / L5: the size bound blamed aliases in a large plain spec; a recursive alias printed its
key path 64 levels long. Now: aliases are named only when used, and deep paths are shortened."""

import pytest

from specs.errors import SpecError
from specs.load import MAX_NODES, read_document


def test_large_plain_spec_does_not_blame_aliases():
    text = "version: 1\nimage: busybox\nenv:\n" + "".join(f"  K{i}: v\n" for i in range(MAX_NODES + 5))
    with pytest.raises(SpecError) as e:
        read_document(text, "envctl.yaml")
    assert f"document has more than {MAX_NODES} values" in e.value.message
    assert "alias" not in e.value.message + (e.value.hint or "")


def test_alias_bomb_still_named():
    text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcde", "bcdef"))
    with pytest.raises(SpecError) as e:
        read_document(text, "envctl.yaml")
    assert "alias/anchor bomb" in e.value.message


def test_recursive_alias_path_is_short():
    with pytest.raises(SpecError) as e:
        read_document("a: &x [*x]\n", "envctl.yaml")
    assert "alias" in e.value.message and len(e.value.message) < 200, e.value.message
    assert "a[0][0][0]... (" in e.value.path
