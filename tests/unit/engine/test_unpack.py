"""QA L1: ``ENVCTL_UNPACK_WORKERS=abc`` was an internal ValueError; now one StoreError line naming
the setting (like ENVCTL_STORAGE_DRIVER=zfs)."""

import io
import tarfile

import pytest

from engine.errors import StoreError
from engine.layers.unpack import UnpackOptions, unpack_tar


def _tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        data = b"hello\n"
        info = tarfile.TarInfo("etc/hello")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("value", ["abc", "0", "-2", "1.5"])
def test_bad_setting_is_one_error(tmp_path, monkeypatch, value):
    monkeypatch.setenv("ENVCTL_UNPACK_WORKERS", value)
    with pytest.raises(StoreError) as e:
        unpack_tar(io.BytesIO(_tar()), tmp_path, UnpackOptions())
    assert e.value.message == f"ENVCTL_UNPACK_WORKERS={value}: not a number of threads"
    assert "1 or more" in e.value.hint


@pytest.mark.parametrize("value", ["", "1", "4", " 2 "])
def test_good_settings_unpack(tmp_path, monkeypatch, value):
    monkeypatch.setenv("ENVCTL_UNPACK_WORKERS", value)
    unpack_tar(io.BytesIO(_tar()), tmp_path, UnpackOptions())
    assert (tmp_path / "etc" / "hello").read_text() == "hello\n"
