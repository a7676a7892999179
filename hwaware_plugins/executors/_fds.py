"""The pipe ends the executors own, so that a forked worker can drop the others' ends.

A worker detects a dead coordinator by end-of-file on its command pipe, and the
coordinator detects a dead worker by end-of-file on its result pipe. Both break
when a third process holds a copy of the write end: a forked worker inherits
every descriptor of the coordinator, so it must drop every pipe end the
executors own but its own. Every such descriptor is registered here while it is
open; :data:`FD_LOCK` is held while pipes are created, handed over, closed and
while a worker is forked, so the registry a fork copies is always exact.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable

FD_LOCK = threading.RLock()
"""Held across pipe creation, registration, closing and ``os.fork``."""

_OWNED: set[int] = set()


def track(*fds: int) -> None:
    """Register ``fds`` as pipe ends the executor owns (call with :data:`FD_LOCK` held)."""
    with FD_LOCK:
        _OWNED.update(fds)


def close_tracked(fd: int) -> None:
    """Forget ``fd`` and close it, atomically with respect to forks. Never raises OSError."""
    with FD_LOCK:
        _OWNED.discard(fd)
        with contextlib.suppress(OSError):
            os.close(fd)


def forget(fd: int) -> None:
    """Unregister ``fd``; hold :data:`FD_LOCK` until the caller has closed it."""
    with FD_LOCK:
        _OWNED.discard(fd)


def owned() -> frozenset[int]:
    """The registered descriptors now (in a forked child: those of the coordinator)."""
    with FD_LOCK:
        return frozenset(_OWNED)


def blank_out(fds: Iterable[int]) -> None:
    """Point each of ``fds`` at ``/dev/null`` (in a forked child).

    The inherited pipe ends are released, but the descriptor numbers stay taken,
    so an inherited object that still names one (and might close it) can never
    reach a file the child opens later. Cost: one ``dup2`` per descriptor.
    """
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        for fd in fds:
            if fd != devnull:
                with contextlib.suppress(OSError):
                    os.dup2(devnull, fd, inheritable=False)
    finally:
        os.close(devnull)
    _OWNED.clear()


__all__ = ["FD_LOCK", "blank_out", "close_tracked", "forget", "owned", "track"]
