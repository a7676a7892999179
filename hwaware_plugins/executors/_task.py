"""Running one task to its outcome: place, run pinned, classify, re-place after an OOM.

:func:`run_task` is what an executor thread calls for each task. Every lease
it takes is released in a ``finally`` block, whatever the worker did.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hwaware_plugins.errors import LeaseTimeoutError, NoSuitableDeviceError
from hwaware_plugins.events import TrialFinished, TrialPlaced, emit
from hwaware_plugins.executors._oom import next_memory_need
from hwaware_plugins.executors._outcome import Attempt, TaskOutcome, describe_exit
from hwaware_plugins.executors._payload import loads
from hwaware_plugins.executors._process import WorkerProcess
from hwaware_plugins.executors._strays import GRACE_ENV

_log = logging.getLogger("hwaware_plugins.executors")

# How often a thread waiting for a lease checks whether its task was cancelled.
_ACQUIRE_POLL_S = 0.25


@dataclass(frozen=True)
class RunSettings:
    """Executor-wide settings every task runs with (validated by the executor)."""

    python: str
    kill_grace_s: float
    max_oom_retries: int
    oom_growth: float
    exclusive: bool
    framework: str | None = None
    emit_events: bool = True


@dataclass(eq=False)
class Task:
    """A submitted task. ``worker`` is the live worker process, if any (read by interrupt).

    ``oom_device_filter`` chooses the devices of re-placements after an
    out-of-memory failure (``None``: ``device_filter`` again).
    """

    label: str
    payload: bytes
    memory_mb: float | None
    prefer: Any
    device_filter: Callable[[Any], bool] | None
    timeout: float | None
    oom_device_filter: Callable[[Any], bool] | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)
    worker: WorkerProcess | None = None


@dataclass(frozen=True)
class _Run:
    state: str
    value: Any
    error: str | None
    traceback: str | None
    runtime_s: float
    exit_code: int | None
    peak_memory_mb: float | None
    peak_rss_mb: float | None


def _worker_env(lease: Any, label: str, kill_grace_s: float) -> dict[str, str]:
    env = dict(lease.env(os.environ))
    env[GRACE_ENV] = repr(float(kill_grace_s))
    env.setdefault("HWAWARE_DEVICE_ID", str(lease.device.id))
    env.setdefault("HWAWARE_SLOT_ID", str(lease.slot_id))
    env.setdefault("HWAWARE_LEASE_ID", str(lease.lease_id))
    env["HWAWARE_TASK_LABEL"] = label
    return env


def _classify(
    record: dict[str, Any] | None, *, returncode: int, timed_out: bool, cancelled: bool,
    timeout: float | None, wall_s: float,
) -> _Run:
    if record is None:
        if cancelled:
            state, error = "cancelled", "interrupted: the worker's process group was terminated"
        elif timed_out:
            state = "timeout"
            error = f"task ran past its {timeout:g} s timeout; its process group was killed"
        else:
            state, error = "crash", describe_exit(returncode)
        return _Run(state, None, error, None, wall_s, returncode, None, None)
    # A record means the callable finished: keep its result even if a kill raced it.
    rss = record.get("peak_rss_mb")
    cuda = record.get("peak_cuda_mb")
    peak = cuda if cuda is not None else rss
    runtime = float(record.get("runtime_s", wall_s))
    if record["ok"]:
        try:
            value = loads(record["value"])
        except Exception as exc:
            error = f"the return value cannot be loaded here: {type(exc).__name__}: {exc}"
            return _Run("fail", None, error, None, runtime, returncode, peak, rss)
        return _Run("complete", value, None, None, runtime, returncode, peak, rss)
    error = f"{record['exc_type']}: {record['exc_message']}".rstrip(": ")
    state = "oom" if record.get("is_oom") else "fail"
    return _Run(state, None, error, record.get("traceback"), runtime, returncode, peak, rss)


def _run_once(task: Task, lease: Any, settings: RunSettings) -> _Run:
    started = time.monotonic()
    try:
        worker = WorkerProcess.start(
            task.payload,
            python=settings.python,
            env=_worker_env(lease, task.label, settings.kill_grace_s),
            cpu_affinity=getattr(lease, "cpu_affinity", None),
        )
    except OSError as exc:
        error = f"cannot start a worker with {settings.python!r}: {exc}"
        return _Run("crash", None, error, None, 0.0, None, None, None)
    task.worker = worker
    timed_out = False
    try:
        if task.cancel_event.is_set():  # interrupt() ran before it could see this worker
            worker.terminate(settings.kill_grace_s)
        if not worker.wait(task.timeout):
            timed_out = True
            worker.terminate(settings.kill_grace_s)
            worker.wait(None)
    finally:
        returncode = worker.reap(settings.kill_grace_s)
        task.worker = None
        record = worker.read_result()
        worker.cleanup()
    return _classify(
        record, returncode=returncode, timed_out=timed_out,
        cancelled=task.cancel_event.is_set(), timeout=task.timeout,
        wall_s=time.monotonic() - started,
    )


def _acquire(pool: Any, task: Task, memory_mb: float | None, replacing: bool) -> Any:
    device_filter = task.device_filter
    if replacing and task.oom_device_filter is not None:
        device_filter = task.oom_device_filter
    while not task.cancel_event.is_set():
        try:
            return pool.acquire(
                memory_mb=memory_mb, device_filter=device_filter, prefer=task.prefer,
                timeout=_ACQUIRE_POLL_S, label=task.label,
            )
        except LeaseTimeoutError:
            continue
    return None


def _emit(settings: RunSettings, hook: str, event: object) -> None:
    if settings.emit_events:
        emit(hook, event)


def _loss(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def run_task(task: Task, pool: Any, settings: RunSettings) -> TaskOutcome:
    """Run ``task`` to its outcome; never raises for a task failure.

    Each attempt leases a slot, runs one pinned worker and releases the lease.
    An ``oom`` attempt is re-placed with a larger memory need
    (:func:`~hwaware_plugins.executors._oom.next_memory_need`) at most
    ``settings.max_oom_retries`` times, on the devices ``task.oom_device_filter``
    allows (``task.device_filter`` when it is ``None``); the decision is logged
    at warning level and recorded in ``TaskOutcome.attempts``.

    Cost: one worker process start per attempt plus the task's own runtime.
    """
    attempts: list[Attempt] = []
    need = task.memory_mb
    run: _Run | None = None
    lease_info: tuple[str | None, str | None, str | None] = (None, None, None)
    for attempt_no in range(settings.max_oom_retries + 1):
        try:
            lease = _acquire(pool, task, need, replacing=attempt_no > 0)
        except NoSuitableDeviceError as exc:
            why = f"{type(exc).__name__}: {exc}"
            if run is None:
                run = _Run("fail", None, why, None, 0.0, None, None, None)
                attempts.append(Attempt(None, "fail", why))
            else:
                attempts.append(Attempt(None, "oom", f"re-placement impossible: {why}"))
            break
        if lease is None:
            run = _Run("cancelled", None, "interrupted before the task started",
                       None, 0.0, None, None, None)
            attempts.append(Attempt(None, "cancelled", run.error))
            break
        device = lease.device
        lease_info = (device.id, device.device_class, str(lease.slot_id))
        try:
            _emit(settings, "hwaware_trial_placed", TrialPlaced(
                framework=settings.framework, trial_id=task.label, device_id=device.id,
                device_class=device.device_class, subspace=None,
                extra={"executor": "local", "slot_id": str(lease.slot_id),
                       "attempt": attempt_no + 1, "memory_mb": need},
            ))
            run = _run_once(task, lease, settings)
        finally:
            leased_mb = getattr(lease, "memory_mb", None)
            lease.release()
        reason: str | None = run.error
        retry_need: int | None = None
        if run.state == "oom" and attempt_no < settings.max_oom_retries:
            retry_need = next_memory_need(
                requested_mb=need, leased_mb=leased_mb, peak_mb=run.peak_memory_mb,
                device_memory_mb=device.memory_total_mb or device.memory_free_mb,
                exclusive=settings.exclusive, growth=settings.oom_growth,
            )
            if retry_need is not None:
                reason = f"{run.error}; re-placing with {retry_need} MiB"
                _log.warning("task %s ran out of memory on %s; re-placing with %d MiB "
                             "(attempt %d of %d)", task.label, device.id, retry_need,
                             attempt_no + 2, settings.max_oom_retries + 1)
            else:
                reason = f"{run.error}; not re-placed: no memory size known to grow from " \
                         "(pass memory_mb)"
        attempts.append(Attempt(device.id, run.state, reason))
        _emit(settings, "hwaware_trial_finished", TrialFinished(
            framework=settings.framework, trial_id=task.label, device_id=device.id,
            device_class=device.device_class, subspace=None, state=run.state,
            runtime_s=run.runtime_s, loss=_loss(run.value), peak_memory_mb=run.peak_memory_mb,
            reason=reason,
        ))
        if retry_need is None:
            break
        need = retry_need
    assert run is not None
    return TaskOutcome(
        state=run.state, value=run.value, error=run.error, traceback=run.traceback,
        runtime_s=run.runtime_s, device_id=lease_info[0], device_class=lease_info[1],
        slot_id=lease_info[2], peak_memory_mb=run.peak_memory_mb, exit_code=run.exit_code,
        attempts=attempts, label=task.label, memory_mb=need, peak_rss_mb=run.peak_rss_mb,
    )
