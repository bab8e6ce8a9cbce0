"""engine.layers.diff: the reproducibility report names each differing path and how it differs."""

import io
import os

from engine.layers.diff import diff_tars, diff_trees, format_report
from engine.layers.writer import write_layer


def tree(root, date="Sun Nov 29"):
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "same").write_text("same\n")
    (root / "etc" / "date").write_text(date + "\n")
    (root / "etc" / "mode").write_text("m\n")
    return root


def test_tar_report_names_paths_and_aspects(tmp_path):
    a, b = tree(tmp_path / "a"), tree(tmp_path / "b", "Mon Nov 30")
    os.chmod(b / "etc" / "mode", 0o600)
    (b / "etc" / "extra").write_text("x")
    (a / "etc" / "gone").write_text("x")
    ba, bb = io.BytesIO(), io.BytesIO()
    write_layer(a, ba)
    write_layer(b, bb, compression="zstd")
    ba.seek(0), bb.seek(0)
    diffs = {d.path: d.kinds for d in diff_tars(ba, bb)}
    assert diffs == {"etc/date": ("content",), "etc/mode": ("mode",), "etc/extra": ("only-right",),
                     "etc/gone": ("only-left",)}


def test_tree_report_mtime_owner(tmp_path):
    a, b = tree(tmp_path / "a"), tree(tmp_path / "b")
    os.utime(a / "etc" / "same", (1, 1))
    os.utime(b / "etc" / "same", (2, 2))
    for t in (a, b):
        os.utime(t / "etc", (5, 5))
        for n in ("date", "mode"):
            os.utime(t / "etc" / n, (5, 5))
    d = diff_trees(a, b)
    assert [(x.path, x.kinds) for x in d] == [("etc/same", ("mtime",))]
    assert "/etc/same: mtime (1 -> 2)" in format_report(d)
