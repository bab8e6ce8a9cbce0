"""QA L11: an env value over 128 KiB validated, then every command failed with "sh: argument list
too long"; validate now refuses it with the key's file:line:col."""

import pytest

from specs.errors import SpecError
from specs.load import parse_spec


def _spec(n: int, where: str = "env") -> str:
    big = "x" * n
    if where == "env":
        return f"version: 1\nimage: busybox\nenv:\n  SMALL: a\n  BIG: {big}\n"
    return f"version: 1\nimage: busybox\nservices:\n  web:\n    command: x\n    env:\n      BIG: {big}\n"


@pytest.mark.parametrize("where", ["env", "service"])
def test_over_the_kernel_limit_is_refused(where):
    with pytest.raises(SpecError) as e:
        parse_spec(_spec(500_000, where))
    text = str(e.value)
    assert "BIG=... is 500005 bytes" in text and "MAX_ARG_STRLEN" in text
    assert ":5:" in text or ":7:" in text   # file:line of the key


def test_at_the_limit_is_accepted():
    spec = parse_spec(_spec(131072 - len("BIG=") - 1))
    assert len(spec.env_dict()["BIG"]) == 131067
    with pytest.raises(SpecError):
        parse_spec(_spec(131072 - len("BIG=")))
