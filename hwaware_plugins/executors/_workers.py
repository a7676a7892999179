"""The executor's persistent workers: one per slot pinning, reused, replaced when unfit.

:class:`WorkerPool` hands an executor thread a worker bound to the pinning of
the lease it holds (started on first need, else an idle one with the same
pinning) and takes it back after the task, keeping it or retiring it
(:func:`retire_reason` says when).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hwaware_plugins.executors._fork import resolve_start_method
from hwaware_plugins.executors._process import terminate_workers
from hwaware_plugins.executors._worker import (
    PooledWorker,
    WorkerKey,
    reap_together,
    stop_in_background,
    stop_together,
)

PER_TASK_VARIABLES: frozenset[str] = frozenset(
    {"HWAWARE_LEASE_ID", "HWAWARE_SLOT_ID", "HWAWARE_TASK_LABEL"}
)
"""Variables that change from task to task; the worker sets them before each task."""

DEFAULT_MAX_TASKS_PER_WORKER = 500
"""Tasks a worker runs before it is replaced (bounds slow leaks in long runs)."""

DEFAULT_MEMORY_LEAK_MB = 256.0
"""Accelerator memory (MiB) a worker may hold beyond its first task's level."""


def worker_key(device_id: str, cpu_affinity: Sequence[int] | None,
               env: Mapping[str, str]) -> WorkerKey:
    """The pinning a worker is bound to: device, cores and the environment but for
    :data:`PER_TASK_VARIABLES`. Pure; cost O(len(env))."""
    pinned = tuple(sorted((k, v) for k, v in env.items() if k not in PER_TASK_VARIABLES))
    cores = None if cpu_affinity is None else tuple(cpu_affinity)
    return (device_id, cores, pinned)


@dataclass(frozen=True)
class Fitness:
    """What the executor learnt about a worker after one task."""

    died: bool
    """The worker gave no record (crash, kill, timeout)."""
    worker_reason: str | None
    """The worker's own reason to leave (out of memory, too many processes kept)."""
    tasks_run: int
    held_mb: float | None
    """Accelerator memory the worker holds now (``None``: unknown or not a GPU slot)."""
    baseline_mb: float | None
    """What it held after its first task."""


def retire_reason(fit: Fitness, *, max_tasks: int | None, memory_leak_mb: float) -> str | None:
    """Why a worker must be replaced after a task, or ``None`` to keep it. Pure.

    Replaced: when it died; when it says so (an out-of-memory failure, too
    many processes left running); after ``max_tasks`` tasks; when it holds more
    than ``memory_leak_mb`` MiB of accelerator memory beyond what it held after
    its first task (memory that does not come back between tasks).
    """
    if fit.died:
        return "the worker died"
    if fit.worker_reason:
        return fit.worker_reason
    if max_tasks is not None and fit.tasks_run >= max_tasks:
        return f"it ran {fit.tasks_run} tasks (max_tasks_per_worker)"
    if fit.held_mb is not None and fit.baseline_mb is not None \
            and fit.held_mb - fit.baseline_mb > memory_leak_mb:
        return (f"it holds {fit.held_mb:.0f} MiB of accelerator memory after the task, "
                f"{fit.held_mb - fit.baseline_mb:.0f} MiB more than after its first "
                f"(memory_leak_mb={memory_leak_mb:g})")
    return None


class WorkerPool:
    """Live workers of one executor, idle ones keyed by pinning.

    :param python: the interpreter workers run.
    :param kill_grace_s: SIGTERM-to-SIGKILL delay when a worker's group is ended.
    :param limit: most workers alive at once (the executor's ``max_workers``);
        an idle worker of another pinning is retired to make room.
    :param start_method: ``"auto"``, ``"fork"`` or ``"spawn"`` (validated by the
        executor); ``"auto"`` is resolved at each start
        (:func:`~hwaware_plugins.executors._fork.resolve_start_method`).

    Thread-safety: every method may be called from any thread.
    """

    def __init__(self, *, python: str, kill_grace_s: float, limit: int,
                 start_method: str = "spawn") -> None:
        self.python = python
        self.start_method = start_method
        self.kill_grace_s = kill_grace_s
        self.limit = max(1, limit)
        self._lock = threading.Lock()
        self._idle: list[PooledWorker] = []
        self._busy: set[PooledWorker] = set()
        self.started = 0

    def checkout(self, *, key: WorkerKey, env: Mapping[str, str],
                 cpu_affinity: Sequence[int] | None) -> PooledWorker:
        """An idle worker bound to ``key``, else a new one started with ``env``.

        :raises OSError: the worker process cannot be started.
        Cost: nothing when an idle worker fits; else one worker start, and the
        stop of an idle worker of another pinning when the pool is full.
        """
        evicted: PooledWorker | None = None
        with self._lock:
            for worker in reversed(self._idle):
                if worker.key == key:
                    self._idle.remove(worker)
                    self._busy.add(worker)
                    return worker
            if self._idle and len(self._idle) + len(self._busy) >= self.limit:
                evicted = min(self._idle, key=lambda w: w.last_used)
                self._idle.remove(evicted)
        if evicted is not None:
            evicted.stop(self.kill_grace_s)
        method = resolve_start_method(self.start_method, python=self.python)
        worker = PooledWorker.start(python=self.python, env=env, cpu_affinity=cpu_affinity,
                                    key=key, start_method=method)
        with self._lock:
            self._busy.add(worker)
            self.started += 1
        return worker

    def checkin(self, worker: PooledWorker, *, retire: str | None) -> int | None:
        """Take ``worker`` back: keep it idle, or stop it when ``retire`` gives a reason
        (or it is broken). Returns its exit status when it was stopped."""
        with self._lock:
            self._busy.discard(worker)
            keep = retire is None and not worker.broken
            if keep:
                self._idle.append(worker)
        if keep:
            return None
        return worker.stop(self.kill_grace_s)

    def pids(self) -> list[int]:
        """Process ids of every live worker, busy or idle (each leads its own group)."""
        with self._lock:
            return sorted(w.pid for w in (*self._busy, *self._idle))

    def kill_all(self) -> None:
        """Kill every busy worker's group at once (their tasks end); idle workers are
        asked to leave (exit hooks: pools close quietly) and their groups ended, all
        together. Blocks up to about ``kill_grace_s``."""
        with self._lock:
            idle, self._idle = self._idle, []
            busy = list(self._busy)
        for worker in idle:
            worker.quit()
        for worker in busy:
            worker.broken = True
        terminate_workers(busy, grace_s=self.kill_grace_s)
        reap_together(idle, grace_s=self.kill_grace_s)
        for worker in idle:
            worker.collect()

    def stop_idle(self, *, background: bool = False) -> None:
        """Let every idle worker run its exit hooks and leave, all at once; end their
        groups. Blocks as long as the slowest one takes to leave, or, with
        ``background``, not at all (see :func:`stop_in_background`)."""
        with self._lock:
            idle, self._idle = self._idle, []
        if background:
            stop_in_background(idle, grace_s=self.kill_grace_s)
        else:
            stop_together(idle, grace_s=self.kill_grace_s)


def held_memory_mb(
    worker: PooledWorker, *, visible: str, record: Mapping[str, Any]
) -> float | None:
    """Accelerator memory ``worker`` holds now: NVML's count for its pid where NVML
    knows the device, else what torch reported holding in the worker, else ``None``.

    Cost: one NVML session on GPU slots, nothing on CPU slots (``visible`` empty).
    """
    if not visible.strip():
        return None
    from hwaware_plugins.executors._gpumem import process_memory_mb

    used = process_memory_mb(visible)
    if used:
        return used.get(worker.pid, 0.0)
    held = record.get("held_cuda_mb")
    return None if held is None else float(held)
