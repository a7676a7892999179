"""Module locks that stay usable in a process forked from a multi-threaded one.

A worker forked by :class:`~hwaware_plugins.executors.LocalExecutor` gets a copy
of every lock in the coordinator; a lock another thread held at that moment
would stay held in the copy for ever. :func:`fork_safe` makes ``os.fork`` take
the lock first (so the data it guards is consistent in the copy) and release it
on both sides afterwards.
"""

from __future__ import annotations

import os
import threading
from typing import TypeVar

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


__all__ = ["fork_safe"]
