#!/usr/bin/env python3
"""Print RESULT lines (bench/README.md) from hyperfine --export-json files.

Usage: python3 bench/hf_results.py FILE.json [PREFIX]
Every command whose name contains "envctl" is paired with every other command of the file.
"""
from __future__ import annotations

import json
import re
import sys


def result_lines(path: str, prefix: str = "") -> list[str]:
    """RESULT lines (list of str) for one hyperfine JSON export."""
    results = json.load(open(path))["results"]
    ours = [r for r in results if "envctl" in r["command"]]
    peers = [r for r in results if "envctl" not in r["command"]]
    lines = []
    for o in ours:
        for p in peers or [None]:
            name = _slug(prefix + o["command"] + (f" vs {p['command']}" if len(peers) > 1 else ""))
            peer = _slug(p["command"]) if p else "none"
            peer_ms = f"{p['median'] * 1000:.2f}" if p else "-"
            lines.append(f"RESULT name={name} envctl_ms={o['median'] * 1000:.2f} peer={peer} "
                         f"peer_ms={peer_ms} runs={len(o.get('times') or [])}")
    return lines


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+:-]+", "_", text).strip("_")[:80]


if __name__ == "__main__":
    print("\n".join(result_lines(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "")))
