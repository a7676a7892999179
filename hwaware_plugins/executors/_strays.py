"""Killing what a task left running, from inside the worker process that ran it.

A worker runs in its own process group, so everything its task spawned is in
that group, or below the worker in the process tree when it moved to a group
or session of its own. The persistent worker
keeps what the task left for reuse (its live descendants: joblib/loky pools,
resource trackers) and kills only what truly leaked (group members whose
parent is gone, descendants holding the slot's GPU memory; see
:func:`leaked_processes`), never itself nor its parent (the executor).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import TypeVar

import psutil

from hwaware_plugins.executors._process import group_members

T = TypeVar("T", int, float)

GRACE_ENV = "HWAWARE_KILL_GRACE_S"
"""Environment variable the executor sets: seconds between SIGTERM and SIGKILL."""

DEFAULT_GRACE_S = 3.0
"""SIGTERM-to-SIGKILL delay when :data:`GRACE_ENV` is unset or invalid."""

MAX_KEPT_ENV = "HWAWARE_MAX_KEPT_PROCESSES"
"""Environment variable the executor sets: how many processes a worker may keep."""

DEFAULT_MAX_KEPT = 64
"""Processes a worker keeps alive between tasks before it asks to be replaced."""


def _non_negative_from_env(name: str, default: T, parse: Callable[[str], T]) -> T:
    """``name``'s value from the environment, read by ``parse``, when it parses and is
    >= 0; else ``default``."""
    try:
        value = parse(os.environ.get(name, str(default)))
    except ValueError:
        return default
    return value if value >= 0 else default


def max_kept_from_env() -> int:
    """How many live descendants a worker may keep between tasks (:data:`MAX_KEPT_ENV`)."""
    return _non_negative_from_env(MAX_KEPT_ENV, DEFAULT_MAX_KEPT, int)


def grace_from_env() -> float:
    """The SIGTERM-to-SIGKILL delay the executor asked for (:data:`GRACE_ENV`)."""
    return _non_negative_from_env(GRACE_ENV, DEFAULT_GRACE_S, float)


def _in_group(process: psutil.Process, pgid: int) -> bool:
    try:
        return os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE
    except (ProcessLookupError, psutil.Error):
        return False


def leaked_processes(*, gpu_visible: str = "") -> tuple[list[psutil.Process], list[psutil.Process]]:
    """Split what surrounds this worker into ``(leaked, kept)``.

    Leaked: members of this process's group (when it leads one) that are not
    its descendants (their parent died, so nothing will reuse or reap them),
    and descendants that hold memory on the GPU ``gpu_visible`` names (a
    ``CUDA_VISIBLE_DEVICES`` value; checked through NVML only when there are
    descendants). Kept: the other live descendants, e.g. a joblib/loky worker
    pool and its resource tracker, reused by the next task. Never this process
    or its parent. A process leading its group looks at the group only (a
    descendant that started a session of its own is not seen). Cost: one
    ``getpgid`` per process on the host and a status read per member of the
    group (about 1 ms for a few hundred) when the group holds nobody else; else
    a walk of the process tree plus, with descendants on a GPU slot, one NVML
    session.
    """
    me = psutil.Process()
    spared = {me.pid, os.getppid()}
    pgid = os.getpgrp()
    leads = pgid == me.pid
    members = [pid for pid in group_members(pgid) if pid not in spared] if leads else []
    if leads and not members:
        return [], []
    kept: dict[int, psutil.Process] = {}
    with contextlib.suppress(psutil.Error):
        for child in me.children(recursive=True):
            if child.pid not in spared and _alive(child):
                kept[child.pid] = child
    leaked: dict[int, psutil.Process] = {}
    for pid in members:
        if pid in kept:
            continue
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(pid)
            if _in_group(process, pgid):  # checked again: the pid may have been reused
                leaked[pid] = process
    if kept and gpu_visible.strip():
        from hwaware_plugins.executors._gpumem import process_memory_mb

        for pid, used in process_memory_mb(gpu_visible).items():
            if pid in kept and used > 0:
                leaked[pid] = kept.pop(pid)
    return list(leaked.values()), list(kept.values())


def _alive(process: psutil.Process) -> bool:
    try:
        return bool(process.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def kill_processes(processes: list[psutil.Process], *, grace_s: float) -> list[int]:
    """SIGTERM ``processes``, SIGKILL those left after ``grace_s``; return their pids.

    Returns at once for an empty list. Cost: at most ``grace_s`` plus 2 s.
    """
    if not processes:
        return []
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, alive = psutil.wait_procs(processes, timeout=grace_s)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(alive, timeout=2.0)
    return [process.pid for process in processes]
