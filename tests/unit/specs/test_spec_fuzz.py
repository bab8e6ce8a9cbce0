"""Mutated spec text never escapes as anything but a located SpecError (no traceback)."""

import random

from specs.errors import SpecError
from specs.load import parse_spec
from tests.unit.specs.test_spec_model import FULL

TOKENS = list(": -[]{}&*!|>'\"#\n\t,?%@`~01yYnN.") + ["yes", "no", "0755", "<<", "*a", "&a ", "\udcff", "é", "~", "1e3"]


def test_mutations_only_raise_located_spec_errors():
    rnd = random.Random(20261129)
    outcomes = {"ok": 0, "error": 0}
    for i in range(800):
        text = list(FULL)
        for _ in range(rnd.randint(1, 5)):
            pos = rnd.randrange(len(text))
            op = rnd.random()
            if op < 0.4:
                text[pos] = rnd.choice(TOKENS)
            elif op < 0.7:
                text.insert(pos, rnd.choice(TOKENS))
            else:
                del text[pos]
        data = "".join(text).encode("utf-8", "surrogateescape")  # \udcff -> an invalid UTF-8 byte
        try:
            parse_spec(data, "envctl.yaml")
            outcomes["ok"] += 1
        except SpecError as e:
            assert e.line is not None and e.col is not None and e.message.startswith("envctl.yaml:"), e
            outcomes["error"] += 1
    assert outcomes["ok"] > 30 and outcomes["error"] > 300, outcomes
