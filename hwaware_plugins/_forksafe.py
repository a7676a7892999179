"""What a process forked from a multi-threaded coordinator must not inherit as is.

A worker forked by :class:`~hwaware_plugins.executors.LocalExecutor` gets a copy
of every lock and descriptor of the coordinator.

- Locks: one another thread held at that moment would stay held in the copy for
  ever. :func:`fork_safe` makes ``os.fork`` take a module lock first (so the data
  it guards is consistent in the copy) and release it on both sides afterwards.
- Descriptors: a worker detects a dead coordinator by end-of-file on its command
  pipe, and the coordinator a dead worker by end-of-file on its result pipe; both
  break when a third process holds a copy of a write end. An ``flock`` belongs to
  the open file, so a copy of the lease file's descriptor would keep the lease
  lock held after the coordinator closed its own. Every such descriptor is
  registered here while it is open (:func:`track`); :data:`FD_LOCK` is held while
  one is opened and registered, closed, and while a worker is forked, so the
  registry a fork copies is exact, and the child drops them (:func:`blank_out`).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable
from typing import TypeVar

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


LockT = TypeVar("LockT", bound="threading.Lock | threading.RLock")


def fork_safe(lock: LockT) -> LockT:
    """Register ``lock`` to be held across every ``os.fork`` and released after it on
    both sides; return it. Cost: one acquire/release per fork of this process.

    Only for module-level locks whose critical sections never wait for a fork
    (the forking thread takes them last, in reverse registration order).
    """
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(before=lock.acquire, after_in_parent=lock.release,
                            after_in_child=lock.release)
    return lock


__all__ = ["FD_LOCK", "blank_out", "close_tracked", "forget", "fork_safe", "owned", "track"]
