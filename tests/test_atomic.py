"""``write_atomic``: a file is replaced whole or not at all."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hwaware_plugins._atomic import write_atomic


def test_the_file_is_replaced_and_no_temporary_file_stays(tmp_path: Path) -> None:
    target = tmp_path / "state.bin"
    target.write_bytes(b"old")
    write_atomic(target, b"new content")
    assert target.read_bytes() == b"new content"
    assert os.listdir(tmp_path) == ["state.bin"]


def test_a_write_that_fails_midway_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "state.bin"
    target.write_bytes(b"old")

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_atomic(target, b"new content that never lands")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["state.bin"]


def test_a_new_file_gets_the_usual_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    write_atomic(tmp_path / "new.bin", b"x", durable=False)
    assert (tmp_path / "new.bin").stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_missing_folder_is_named_by_the_file_asked_for(tmp_path: Path) -> None:
    target = tmp_path / "no_such_folder" / "run.pkl"
    expected = r"cannot write .*no_such_folder/run\.pkl: "
    with pytest.raises(FileNotFoundError, match=expected) as error:
        write_atomic(target, b"x")
    assert ".tmp" not in str(error.value)
