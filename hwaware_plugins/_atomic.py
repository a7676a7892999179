"""Replacing a file atomically: a reader sees the old content or the new, never a part."""

from __future__ import annotations

import contextlib
import os
import secrets


def write_atomic(
    path: str | os.PathLike[str], data: bytes, *, durable: bool = True,
    permissions: int = 0o666,
) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    A process killed at any point leaves ``path`` either as it was or with all
    of ``data``; the temporary file (``.<name>.<random>.tmp``) is removed when
    writing fails with an exception (a killed process may leave it behind, never
    in place of ``path``). With ``durable`` the data and then the folder are
    fsynced, so the new content also survives a power loss.

    :param permissions: mode of a new file, before the umask.
    :raises OSError: the folder is not writable, the disk is full, ...

    Cost: one file write, plus two fsyncs with ``durable``.
    """
    target = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(target))
    temp = os.path.join(folder, f".{os.path.basename(target)}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, permissions)
    except OSError as exc:  # name the file asked for, not the temporary one
        raise type(exc)(exc.errno, f"cannot write {target}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    if durable:
        _fsync_folder(folder)


def _fsync_folder(folder: str) -> None:
    # Makes the rename itself durable; some file systems cannot fsync a folder.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
