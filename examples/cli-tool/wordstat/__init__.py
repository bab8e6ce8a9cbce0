"""wordstat: count lines, words and the most frequent words of text files."""

from __future__ import annotations

import collections
import re
from dataclasses import dataclass

__all__ = ["Stats", "count"]

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")


@dataclass(frozen=True)
class Stats:
    lines: int
    words: int
    chars: int
    top: list[tuple[str, int]]


def count(text: str, top: int = 3) -> Stats:
    """Statistics of ``text``: line, word and character counts and the ``top`` words (lowercased)."""
    words = [w.lower() for w in _WORD.findall(text)]
    common = collections.Counter(words).most_common()
    common.sort(key=lambda kv: (-kv[1], kv[0]))     # ties in alphabetical order: stable output
    lines = text.count("\n") + (1 if text and not text.endswith("\n") else 0)
    return Stats(lines, len(words), len(text), common[:top])
