"""python3 -m wordstat [--top N] [FILE...]  (stdin when no FILE)."""

from __future__ import annotations

import argparse
import sys

from wordstat import count


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="wordstat", description="count lines, words and frequent words")
    p.add_argument("files", nargs="*", help="text files (default: stdin)")
    p.add_argument("--top", type=int, default=3, help="how many frequent words to show")
    a = p.parse_args(argv)
    try:
        texts = [open(f, encoding="utf-8").read() for f in a.files] if a.files else [sys.stdin.read()]
    except OSError as e:
        print(f"wordstat: error: {e.filename}: {e.strerror}", file=sys.stderr)
        return 1
    s = count("".join(texts), a.top)
    print(f"lines {s.lines}  words {s.words}  chars {s.chars}")
    for word, n in s.top:
        print(f"{n:6d} {word}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
