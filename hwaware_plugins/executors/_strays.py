"""Killing what a task left running, from inside the worker process that ran it.

A worker runs in its own process group (it was started in a new session), so
everything its task spawned is in that group, or below the worker in the
process tree when it moved to a session of its own. :func:`kill_strays` ends
those processes but never the worker itself, nor its parent (the executor).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Collection

import psutil

GRACE_ENV = "HWAWARE_KILL_GRACE_S"
"""Environment variable the executor sets: seconds between SIGTERM and SIGKILL."""

DEFAULT_GRACE_S = 3.0
"""SIGTERM-to-SIGKILL delay when :data:`GRACE_ENV` is unset or invalid."""


def grace_from_env() -> float:
    """The SIGTERM-to-SIGKILL delay the executor asked for (:data:`GRACE_ENV`)."""
    try:
        value = float(os.environ.get(GRACE_ENV, DEFAULT_GRACE_S))
    except ValueError:
        return DEFAULT_GRACE_S
    return value if value >= 0 else DEFAULT_GRACE_S


def _in_group(process: psutil.Process, pgid: int) -> bool:
    try:
        return os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE
    except (ProcessLookupError, psutil.Error):
        return False


def stray_processes(keep: Collection[int] = ()) -> list[psutil.Process]:
    """This process's descendants and, when it leads its process group, the other
    members of that group; never this process, its parent or the pids in ``keep``.

    A worker started in a session of its own leads its group, so the group is
    what its task left behind. A process that does not lead its group (run by
    hand, or from a test, in its parent's group) shares it with its parent's
    other processes (a shell, ``timeout``, a CI script), so only its own
    descendants count then. The ``psutil.Process`` objects remember each
    process's start time, so signalling them later cannot hit a process that
    reused the pid. Cost: one ``getpgid`` per process on the host when it leads
    its group (a few ms for thousands), else one walk of its descendants.
    """
    me = psutil.Process()
    spared = {me.pid, os.getppid(), *keep}
    pgid = os.getpgrp()
    found: dict[int, psutil.Process] = {}
    for pid in psutil.pids() if pgid == me.pid else ():
        if pid in spared:
            continue
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(pid)
            if _in_group(process, pgid):  # checked again: the pid may have been reused
                found[pid] = process
    with contextlib.suppress(psutil.Error):
        for child in me.children(recursive=True):
            if child.pid not in spared:
                found.setdefault(child.pid, child)
    return list(found.values())


def kill_strays(keep: Collection[int] = (), *, grace_s: float) -> list[int]:
    """SIGTERM every stray process (see :func:`stray_processes`), SIGKILL those left after
    ``grace_s`` seconds; return the pids that were signalled.

    Repeats (at most three rounds) while new strays appear, as a dying process
    may still spawn one. Blocks for at most about ``3 * grace_s`` plus the
    scans; returns at once when there is nothing to kill.
    """
    signalled: list[int] = []
    for _ in range(3):
        strays = stray_processes(keep)
        if not strays:
            break
        for process in strays:
            with contextlib.suppress(psutil.Error):
                process.terminate()
        _, alive = psutil.wait_procs(strays, timeout=grace_s)
        for process in alive:
            with contextlib.suppress(psutil.Error):
                process.kill()
        psutil.wait_procs(alive, timeout=2.0)
        signalled.extend(process.pid for process in strays)
    return signalled
