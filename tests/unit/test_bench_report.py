"""bench/report.py and bench/hf_results.py: the RESULT convention (bench/README.md) → the table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))
import report  # noqa: E402


def hyperfine_json(path: Path, **medians: float) -> Path:
    path.write_text(json.dumps({"results": [{"command": c, "median": m, "times": [m] * 3}
                                            for c, m in medians.items()]}))
    return path


def test_result_lines_and_fallback_to_hyperfine_exports(tmp_path):
    (tmp_path / "a.log").write_text("noise\nRESULT name=warm envctl_ms=12.5 peer=bwrap peer_ms=5 runs=30\n"
                                    "RESULT name=broken envctl_ms=1\n")
    (tmp_path / "a.rc").write_text("0\n")
    (tmp_path / "b.log").write_text("no result lines here\n")
    (tmp_path / "b.rc").write_text("0\n")
    hyperfine_json(tmp_path / "b.1.hyperfine.json", **{"envctl lock": 0.2, "skopeo inspect": 0.05})
    (tmp_path / "c.rc").write_text("1\n")
    text = report.render(str(tmp_path), ["a", "b", "c"])
    assert "| a | warm | 12.5 | bwrap | 5 | 2.50 | runs=30 |" in text
    assert "| b | envctl_lock | 200.00 | skopeo_inspect | 50.00 | 4.00 | runs=3 |" in text
    assert "| c | (no results) |" in text and "failed (exit 1)" in text
    assert "broken" not in text.split("## Runs")[0]


def test_ratio_without_peer_is_a_dash():
    assert report.ratio({"envctl_ms": "3", "peer_ms": "-"}) == "-"


def test_run_all_shim_keeps_hyperfine_json(tmp_path):
    env = {**os.environ, "BENCH_OUT": str(tmp_path), "BENCH_NAME": "x",
           "PATH": f"{BENCH / '_shim'}:{os.environ['PATH']}"}
    subprocess.run(["hyperfine", "-N", "--runs", "2", "-n", "envctl true", "true", "-n", "peer", "true"],
                   env=env, check=True, capture_output=True)
    (kept,) = tmp_path.glob("x.*.hyperfine.json")
    assert [r["command"] for r in json.loads(kept.read_text())["results"]] == ["envctl true", "peer"]


def test_summary_adapters_for_scripts_without_result_lines(tmp_path):
    (tmp_path / "pull.log").write_text("  envctl_cold        1.39 s   peak RSS   42.3 MiB\n"
                                       "  podman_pull        6.29 s   peak RSS   57.7 MiB\n"
                                       "  skopeo+umoci       6.96 s\n")
    (tmp_path / "reload.log").write_text("envctl                          155.6    167.9         104.6\n"
                                         "watchmedo auto-restart          300.6    316.3         252.9\n")
    text = report.render(str(tmp_path), ["pull", "reload"])
    assert "| pull | cold-pull-unpack | 1390 | skopeo+umoci | 6960 | 0.20 |" in text
    assert "| reload | save-to-served-p50 | 155.6 | watchmedo_auto-restart | 300.6 | 0.52 |" in text
    assert "summary lines (script prints no RESULT lines yet)" in text
