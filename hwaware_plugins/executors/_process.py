"""Processes leading their own process group: finding their members, ending groups.

A worker is started in a process group of its own (``process_group=0``, or
``setpgid`` in a forked child), so its pid is also the id of a process group
holding everything it spawns. The worker is reaped only after its group was
terminated: while unreaped (a zombie at worst) its pid cannot be reused, so
signalling the group can never hit a stranger.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from typing import Protocol

import psutil

_POLL_S = 0.02


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid``.

    Cost: one ``getpgid`` call per process on the host (a few ms for thousands).
    """
    members: list[int] = []
    for pid in psutil.pids():
        try:
            if os.getpgid(pid) != pgid:
                continue
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                continue
        except (ProcessLookupError, psutil.Error):
            continue
        members.append(pid)
    return members


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)



def exited_unreaped(pid: int) -> bool:
    """True once the child ``pid`` has exited (or is not our child); it is left unreaped,
    so its pid cannot be reused. Cost: one ``waitid`` call."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None

class GroupLeader(Protocol):
    """A worker process leading its own process group (``PooledWorker``)."""

    pid: int

    def has_members(self) -> bool:
        """True while a live process remains in the group."""

    def signal_group(self, signum: int) -> None:
        """Send ``signum`` to the whole group."""


def terminate_workers(workers: Iterable[GroupLeader], *, grace_s: float) -> list[int]:
    """Stop every process in each worker's group: SIGTERM, then SIGKILL after ``grace_s``.

    All groups are signalled at once, so the wait is ``grace_s`` in total, not
    per worker. Returns the pids of the workers whose group needed SIGKILL;
    returns at once when the groups are already empty.
    """
    remaining = [worker for worker in workers if worker.has_members()]
    for worker in remaining:
        worker.signal_group(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while remaining and time.monotonic() < deadline:
        time.sleep(_POLL_S)
        remaining = [worker for worker in remaining if worker.has_members()]
    for worker in remaining:
        worker.signal_group(signal.SIGKILL)
    killed = [worker.pid for worker in remaining]
    deadline = time.monotonic() + 2.0
    while remaining and time.monotonic() < deadline:
        time.sleep(_POLL_S)
        remaining = [worker for worker in remaining if worker.has_members()]
    return killed
