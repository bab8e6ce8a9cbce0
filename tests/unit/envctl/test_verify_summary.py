"""The last line of ``envctl verify``'s text: a full verify says the environment rebuilds to
envctl.lock; ``--no-rebuild`` (blobs only) says the steps were not rebuilt, never "rebuilds"."""

from types import SimpleNamespace

from envctl.commands.verify import _text


def _report():
    blob = SimpleNamespace(status="ok", what="layer", digest="sha256:0", error=None)
    return SimpleNamespace(blobs=[blob], steps=[], ok=True)


def test_no_rebuild_does_not_claim_a_rebuild():
    text = _text(_report(), rebuilt=False)
    assert "rebuilds" not in text and text.endswith("(steps not rebuilt: --no-rebuild)")


def test_full_verify_says_it_rebuilds_to_the_lock():
    assert _text(_report()).endswith("verify: OK, the environment rebuilds to envctl.lock")
